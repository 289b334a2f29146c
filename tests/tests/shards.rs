//! Sharded stock (`inventory::domain::shards`): an item split into shard items, which the API
//! still shows as one item; reserves spread over the shards and never fail while the shards
//! together have the units; units go back where they came from; PUTs rebalance.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_smithy_runtime_api::client::http::SharedHttpClient;
use integration_tests::invariants::Snapshot;
use integration_tests::{ContentionModel, ContentionParams, Fault, TestTable};
use inventory::domain::{replay_break, Line, Movement, StockChange, StockItem};
use inventory::store::Reserved;
use inventory::{Error, Store};

fn put(on_hand: i64, shards: u32) -> StockChange {
    StockChange::Put { on_hand, low_stock_threshold: None, shards: Some(shards) }
}

async fn reserve(store: &Store, order: &str, sku: &str, quantity: i64) -> inventory::Result<Reserved> {
    let line = Line::new(sku.into(), "w1".into(), quantity);
    store.reserve(order, vec![line], 900, &Default::default()).await
}

/// The item's shard items as they are, by shard.
async fn shards(t: &TestTable, sku: &str) -> BTreeMap<u32, StockItem> {
    let snapshot = Snapshot::take(t).await;
    snapshot.shards.get(&(sku.to_owned(), "w1".to_owned())).cloned().unwrap_or_default()
}

fn on_hands(shards: &BTreeMap<u32, StockItem>) -> Vec<i64> {
    shards.values().map(|s| s.on_hand).collect()
}

async fn no_violations(t: &TestTable) {
    assert_eq!(Snapshot::take(t).await.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn a_sharded_item_is_its_shards_summed_and_every_put_spreads_the_units_evenly() {
    let t = TestTable::new().await;
    let created = t
        .function("put-stock")
        .write_stock("S", "w1", put(10, 4), Some(0), None, &Default::default())
        .await
        .unwrap();
    assert!(created.created);
    let item = created.item;
    assert_eq!((item.on_hand, item.available, item.shards, item.version), (10, 10, 4, 4));
    assert_eq!(on_hands(&shards(&t, "S").await), [3, 3, 2, 2]);
    assert_eq!(t.store.get_stock("S", "w1").await.unwrap(), item, "reads show the sum");

    // Holds stay on their shards; a PUT spreads what is available around them.
    let r = reserve(&t.store, "o-1", "S", 3).await.unwrap().reservation;
    assert_eq!(r.units().values().sum::<i64>(), 3, "{:?}", r.shard_holds);
    let before = t.store.get_stock("S", "w1").await.unwrap();
    let adjusted = t
        .function("adjust-stock")
        .write_stock("S", "w1", StockChange::Adjust { delta: 5 }, None, None, &Default::default())
        .await
        .unwrap();
    assert_eq!((adjusted.item.on_hand, adjusted.item.reserved, adjusted.item.available), (15, 3, 12));
    assert!(adjusted.item.version > before.version, "a write moves the version");
    let after = shards(&t, "S").await;
    assert_eq!(after.values().map(|s| s.available).collect::<Vec<_>>(), [3, 3, 3, 3]);
    // An expectedVersion is the item's version as the API shows it.
    let stale = t
        .function("put-stock")
        .write_stock("S", "w1", put(20, 4), Some(before.version), None, &Default::default())
        .await;
    assert_eq!(stale.unwrap_err().code(), "VERSION_CONFLICT");

    // The ledger: one chain per shard, each ending at its shard's onHand.
    let mut ledger: Vec<Movement> = Vec::new();
    let mut cursor = None;
    loop {
        let page = t.store.list_movements("S", "w1", 3, cursor.as_deref()).await.unwrap();
        ledger.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ledger.reverse();
    ledger.sort_by_key(|m| (m.shard, m.version));
    assert_eq!(replay_break(&ledger), None);
    for (k, shard) in &after {
        let last = ledger.iter().rfind(|m| m.shard == Some(*k)).expect("each shard has entries");
        assert_eq!(last.on_hand, shard.on_hand, "shard {k}");
    }

    // Back to one shard: the units held elsewhere stay there until their hold ends.
    let one = t
        .function("put-stock")
        .write_stock("S", "w1", put(15, 1), None, None, &Default::default())
        .await
        .unwrap()
        .item;
    assert_eq!((one.shards, one.on_hand, one.reserved), (1, 15, 3));
    let held: Vec<(u32, i64)> = shards(&t, "S").await.iter().map(|(k, s)| (*k, s.reserved)).collect();
    no_violations(&t).await;
    t.function("release").release(&r.reservation_id, &Default::default()).await.unwrap();
    let after = shards(&t, "S").await;
    assert!(after.values().all(|s| s.reserved == 0), "released to the shards they came from: {held:?}");
    let elsewhere: i64 = r.units().iter().filter(|((_, _, k), _)| *k != 0).map(|(_, q)| q).sum();
    assert_eq!(after[&0].available, 15 - elsewhere, "only shard 0 takes holds now");
    // The units given back to the shards beyond the count are sold all the same.
    reserve(&t.store, "o-all", "S", 15).await.expect("every unit of the item");
    assert_eq!(t.store.get_stock("S", "w1").await.unwrap().available, 0);
    no_violations(&t).await;
}

#[tokio::test]
async fn units_are_confirmed_released_and_expired_on_the_shards_they_were_taken_from() {
    let t = TestTable::new().await;
    t.function("put-stock")
        .write_stock("S", "w1", put(32, 8), None, None, &Default::default())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(reserve(&t.store, &format!("o-{i}"), "S", 2).await.unwrap().reservation);
    }
    let used: std::collections::BTreeSet<u32> =
        ids.iter().flat_map(|r| r.units().into_keys().map(|(_, _, shard)| shard)).collect();
    assert!(used.len() > 1, "6 reserves on 8 shards all on one shard: {used:?}");
    no_violations(&t).await;
    t.function("confirm").confirm(&ids[0].reservation_id, &Default::default()).await.unwrap();
    t.function("release").release(&ids[1].reservation_id, &Default::default()).await.unwrap();
    // A changed cart moves units on and off shards.
    let cart = inventory::domain::Cart::from(vec![Line::new("S".into(), "w1".into(), 5)]);
    let modified = t
        .function("put-order-reservation")
        .put_order_reservation("o-2", &cart, None, &Default::default())
        .await
        .unwrap()
        .reservation;
    assert_eq!(modified.units().values().sum::<i64>(), 5);
    no_violations(&t).await;
    let item = t.store.get_stock("S", "w1").await.unwrap();
    assert_eq!((item.on_hand, item.reserved), (30, 5 + 2 * 3));
    // Shard k started with 4 units: the confirmed ones left the shard they were held on.
    let (_, _, sold) = ids[0].units().into_keys().next().expect("a unit");
    let sold_shard = &shards(&t, "S").await[&sold];
    assert_eq!(sold_shard.on_hand, 2, "the confirmed units left shard {sold}: {sold_shard:?}");
}

#[tokio::test]
async fn a_line_no_shard_covers_alone_is_split_and_only_a_real_shortfall_is_refused() {
    let t = TestTable::new().await;
    t.function("put-stock")
        .write_stock("S", "w1", put(16, 16), None, None, &Default::default())
        .await
        .unwrap();
    assert!(shards(&t, "S").await.values().all(|s| s.available == 1));
    let split = reserve(&t.store, "o-1", "S", 5).await.unwrap().reservation;
    assert_eq!(split.shard_holds.len(), 5, "one unit from each of 5 shards: {:?}", split.shard_holds);
    let short = reserve(&t.store, "o-2", "S", 12).await.unwrap_err();
    match short {
        Error::InsufficientStock { lines } => assert_eq!((lines[0].requested, lines[0].available), (12, 11)),
        other => panic!("expected INSUFFICIENT_STOCK, got {other:?}"),
    }
    let last = reserve(&t.store, "o-3", "S", 11).await.expect("the shards together have 11");
    assert_eq!(t.store.get_stock("S", "w1").await.unwrap().available, 0);
    // The same request again, sold out now, from a store that has never seen the item: the
    // reservation it made, not INSUFFICIENT_STOCK.
    let fresh = t.store_via(SharedHttpClient::new(t.faults.clone()));
    let again = reserve(&fresh, "o-3", "S", 11).await.expect("a retry");
    assert_eq!((again.created, again.reservation.reservation_id), (false, last.reservation.reservation_id));
    no_violations(&t).await;
}

#[tokio::test]
async fn a_reservation_its_confirm_could_not_write_in_one_transaction_is_refused() {
    let t = TestTable::new().await;
    for sku in ["A", "B"] {
        t.function("put-stock")
            .write_stock(sku, "w1", put(64, 32), None, None, &Default::default())
            .await
            .unwrap();
    }
    let lines = ["A", "B"].map(|sku| Line::new(sku.into(), "w1".into(), 60)).to_vec();
    let refused = t.function("reserve").reserve("o-big", lines, 900, &Default::default()).await.unwrap_err();
    assert_eq!(refused.code(), "VALIDATION_ERROR", "{refused:?}");
    assert_eq!(t.store.get_stock("A", "w1").await.unwrap().reserved, 0, "nothing held");
}

/// Issue 26, bug 1: a PUT could grow a hold past what its confirm can write in one transaction.
#[tokio::test]
async fn a_change_of_a_hold_its_confirm_could_not_write_in_one_transaction_is_refused() {
    let t = TestTable::new().await;
    for sku in ["A", "B"] {
        t.function("put-stock")
            .write_stock(sku, "w1", put(32, 32), None, None, &Default::default())
            .await
            .unwrap();
    }
    let cart = |q: i64| {
        inventory::domain::Cart::from(["A", "B"].map(|sku| Line::new(sku.into(), "w1".into(), q)).to_vec())
    };
    let put_order = t.function("put-order-reservation");
    let held = put_order
        .put_order_reservation("o-1", &cart(1), None, &Default::default())
        .await
        .unwrap()
        .reservation;
    // 32 units of each, one per shard: its confirm would write 2 actions on each of 64 shard items.
    let refused =
        put_order.put_order_reservation("o-1", &cart(32), None, &Default::default()).await.unwrap_err();
    assert_eq!(refused.code(), "VALIDATION_ERROR", "{refused:?}");
    let kept = t.store.get_reservation(&held.reservation_id).await.unwrap();
    assert_eq!(kept, held, "the hold is as it was");
    assert_eq!(t.store.get_stock("A", "w1").await.unwrap().reserved, 1);
    // What is held can always be confirmed.
    t.function("confirm").confirm(&held.reservation_id, &Default::default()).await.unwrap();
    no_violations(&t).await;
}

/// Issue 26, bug 3: every short line of a cart is reported, sharded or not.
#[tokio::test]
async fn every_short_line_of_a_cart_is_reported_sharded_or_not() {
    let t = TestTable::new().await;
    let put_stock = t.function("put-stock");
    put_stock.write_stock("S1", "w1", put(4, 4), None, None, &Default::default()).await.unwrap();
    put_stock.write_stock("S2", "w1", put(4, 4), None, None, &Default::default()).await.unwrap();
    put_stock.write_stock("U", "w1", put(2, 1), None, None, &Default::default()).await.unwrap();
    put_stock.write_stock("OK", "w1", put(9, 1), None, None, &Default::default()).await.unwrap();
    let line = |sku: &str, quantity| Line::new(sku.into(), "w1".into(), quantity);
    let lines = vec![line("OK", 1), line("S1", 5), line("S2", 6), line("U", 3)];
    let short = t.function("reserve").reserve("o-short", lines, 900, &Default::default()).await.unwrap_err();
    let Error::InsufficientStock { lines } = short else {
        panic!("expected INSUFFICIENT_STOCK, got {short:?}")
    };
    let mut seen: Vec<_> = lines.iter().map(|l| (l.sku.as_str(), l.requested, l.available)).collect();
    seen.sort();
    assert_eq!(seen, [("S1", 5, 4), ("S2", 6, 4), ("U", 3, 2)]);
    assert_eq!(t.store.get_stock("OK", "w1").await.unwrap().reserved, 0, "nothing held");
}

/// A Query of a sharded item's shards torn by a PUT that moved units between them: the first
/// shard with units is seen empty (read before the units came), the others as after.
fn torn_shards(answer: &mut serde_json::Value) {
    let items = answer["Items"].as_array_mut().expect("a Query answer");
    if let Some(first) = items.iter_mut().find(|i| i["available"]["N"].as_str().is_some_and(|n| n != "0")) {
        first["available"]["N"] = "0".into();
    }
}

/// Issue 26, bug 4: lines the service places on sharded items are judged on a snapshot, not on
/// a Query a concurrent PUT can tear.
#[tokio::test]
async fn a_line_the_service_places_is_not_refused_on_a_torn_read_of_a_sharded_item() {
    let t = TestTable::new().await;
    t.function("put-stock").write_stock("T", "w1", put(8, 4), None, None, &Default::default()).await.unwrap();
    let line = |quantity| inventory::domain::CartLine {
        sku: "T".into(),
        location_id: None,
        locations: None,
        quantity,
        split: None,
    };
    let reserve = t.function("reserve");
    t.faults.plan("Query", Fault::Rewrite(torn_shards), 1);
    let cart = inventory::domain::Cart::parse(&[line(8)]).unwrap();
    let held = reserve
        .reserve_cart("o-all", &cart, 900, &Default::default())
        .await
        .expect("the shards have 8 units");
    assert_eq!(held.reservation.lines[0].quantity, 8);
    assert_eq!(t.faults.injected(), 1, "the torn read was seen");
    // A real shortfall is still one, on a snapshot.
    t.faults.plan("Query", Fault::Rewrite(torn_shards), 1);
    let one = inventory::domain::Cart::parse(&[line(1)]).unwrap();
    let short = reserve.reserve_cart("o-more", &one, 900, &Default::default()).await.unwrap_err();
    let Error::InsufficientStock { lines } = short else {
        panic!("expected INSUFFICIENT_STOCK, got {short:?}")
    };
    assert_eq!((lines[0].requested, lines[0].available), (1, 0));
    no_violations(&t).await;
}

#[tokio::test]
async fn a_hundred_buyers_of_the_last_unit_over_16_shards_under_the_model_exactly_one_wins() {
    let t = TestTable::new().await;
    t.function("put-stock")
        .write_stock("LAST", "w1", put(16, 16), None, None, &Default::default())
        .await
        .unwrap();
    for i in 0..15 {
        reserve(&t.store, &format!("early-{i}"), "LAST", 1).await.unwrap();
    }
    assert_eq!(t.store.get_stock("LAST", "w1").await.unwrap().available, 1);
    let model =
        ContentionModel::in_front_of(ContentionParams::default(), SharedHttpClient::new(t.faults.clone()));
    let store = Arc::new(t.store_via(model.clone()));
    let buyers: Vec<_> = (0..100)
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move { reserve(&store, &format!("buyer-{b}"), "LAST", 1).await })
        })
        .collect();
    let (mut won, mut short, mut unavailable) = (0, 0, 0);
    for buyer in buyers {
        match buyer.await.unwrap() {
            Ok(r) => {
                assert!(r.created);
                won += 1;
            }
            Err(Error::InsufficientStock { .. }) => short += 1,
            Err(Error::Unavailable { .. }) => unavailable += 1,
            Err(e) => panic!("unexpected answer: {e}"),
        }
    }
    assert_eq!(won, 1, "exactly one buyer gets the last unit (short {short}, 503 {unavailable})");
    let item = t.store.get_stock("LAST", "w1").await.unwrap();
    assert_eq!((item.reserved, item.available), (16, 0));
    no_violations(&t).await;
    eprintln!(
        "last unit over 16 shards: 1 won, {short} INSUFFICIENT_STOCK, {unavailable} 503, {:?}",
        model.counts()
    );
}

/// A process that has not met an item (a cold Lambda) takes its units blind, at shard 0: one
/// transaction. It reads the item's shards only when that take is refused (shard 0 short) or
/// meets another transaction, and then places as it would have.
#[tokio::test]
async fn a_new_process_reserves_blind_at_shard_0_and_reads_the_shards_only_after_a_refusal_or_a_conflict() {
    let t = TestTable::new().await;
    // 10 units on each of 4 shards.
    t.store.write_stock("S", "w1", put(40, 4), None, None, &Default::default()).await.unwrap();
    t.store.write_stock("U", "w1", put(5, 1), None, None, &Default::default()).await.unwrap();
    let process = || Store::new(t.store.client().clone(), t.store.table());

    // Unsharded: one transaction.
    let cold = process();
    reserve(&cold, "u-1", "U", 1).await.unwrap();
    assert_eq!(cold.stats().requests(), 1);
    // Sharded, and shard 0 has the units: one transaction, there.
    let cold = process();
    let held = reserve(&cold, "s-1", "S", 8).await.unwrap().reservation;
    assert_eq!(cold.stats().requests(), 1);
    assert!(held.shard_holds.is_empty(), "on shard 0: {:?}", held.shard_holds);
    // Shard 0 has 2 left: 3 units are refused there, the shards are read, another shard takes them.
    let cold = process();
    let held = reserve(&cold, "s-2", "S", 3).await.unwrap().reservation;
    // (The refusal returned shard 0 as it was, which names the shard items: one BatchGetItem.)
    assert_eq!(cold.stats().requests(), 3, "the refused take, the shards' read, the transaction");
    assert!(held.shard_holds.iter().all(|h| h.shard != 0 && h.quantity == 3), "{:?}", held.shard_holds);
    // Another transaction on the item: the shards are read, and the reserve goes to one of them.
    let cold = process();
    t.faults.plan("TransactWriteItems", Fault::TransactionConflict, 1);
    reserve(&cold, "s-3", "S", 1).await.unwrap();
    // (Nothing said how many shard items: shard 0, then the others from their partitions.)
    assert_eq!(cold.stats().requests(), 4, "the conflict, the shards' read (2), the transaction");
    // (Every shard still has a unit: whichever this process picks, it takes it.)
    let before = cold.stats().requests();
    reserve(&cold, "s-4", "S", 1).await.unwrap();
    assert_eq!(cold.stats().requests() - before, 1, "the layout is known now");
    assert_eq!(shards(&t, "S").await.values().map(|s| s.reserved).sum::<i64>(), 13);
    no_violations(&t).await;
}

/// Each shard k > 0 has a partition of its own, with its holds and ledger: the holds listing
/// merges them, oldest first, a reservation holding units on several shards once with their sum,
/// over pages that each end where every partition read is complete.
#[tokio::test]
async fn the_holds_of_a_sharded_item_are_listed_from_every_shards_partition_once_per_reservation() {
    let t = TestTable::new().await;
    t.function("put-stock")
        .write_stock("P", "w1", put(16, 4), None, None, &Default::default())
        .await
        .unwrap();
    let mut held = Vec::new();
    for i in 0..6 {
        held.push(reserve(&t.store, &format!("o-{i}"), "P", 1).await.unwrap().reservation);
    }
    // 10 left, at most 3 on a shard: 7 units need several shards.
    let split = reserve(&t.store, "o-split", "P", 7).await.unwrap().reservation;
    assert!(split.shard_holds.len() > 1, "{:?}", split.shard_holds);
    held.push(split);
    let snapshot = Snapshot::take(&t).await;
    assert!(snapshot.holds.iter().any(|(_, k, _, _)| *k > 0), "hold items on other shards' partitions");
    assert_eq!(snapshot.violations(), Vec::<String>::new(), "every item in its shard's partition");

    for limit in [1, 2, 3, 100] {
        let mut listed = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = t.store.list_holds("P", "w1", limit, cursor.as_deref()).await.unwrap();
            assert!(!page.items.is_empty() || listed.is_empty(), "no empty page after the first");
            listed.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let got: Vec<(String, i64)> = listed.iter().map(|h| (h.reservation_id.clone(), h.quantity)).collect();
        let mut expected: Vec<_> = held.iter().collect();
        expected.sort_by_key(|r| (r.created_at, r.reservation_id.clone()));
        let expected: Vec<(String, i64)> =
            expected.iter().map(|r| (r.reservation_id.clone(), r.lines[0].quantity)).collect();
        assert_eq!(got, expected, "limit {limit}: every hold once, with its sum, oldest first");
    }
}

/// The audit checks each shard's `reserved` against the hold items in its own partition: a hold
/// item moved to another shard's partition (the item's sums still agree) is drift on both shards.
#[tokio::test]
async fn the_audit_finds_a_hold_item_in_another_shards_partition() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use inventory::audit::{audit, AuditOptions, Problem};
    use inventory::store::items::{n, shard_pk};
    let t = TestTable::new().await;
    t.function("put-stock").write_stock("A", "w1", put(8, 4), None, None, &Default::default()).await.unwrap();
    reserve(&t.store, "o-1", "A", 2).await.unwrap();
    let clean = audit(&t.store, &AuditOptions::default()).await.unwrap();
    assert_eq!(clean.drift_count(), 0, "{}", clean.render());
    // The hold item, moved to the next shard's partition.
    let holds = t.scan("entity = :h", &[(":h", "HOLD")]).await;
    let [hold] = &holds[..] else { panic!("one hold item: {holds:?}") };
    let from: u32 = hold["shard"].as_n().unwrap().parse().unwrap();
    let to = (from + 1) % 4;
    let key = |item: &inventory::store::Item| {
        item.iter().filter(|(k, _)| *k == "pk" || *k == "sk").map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    t.store.client().delete_item().table_name(t.store.table()).set_key(Some(key(hold))).send().await.unwrap();
    let mut moved = hold.clone();
    moved.insert("pk".into(), AttributeValue::S(shard_pk("A", "w1", to)));
    moved.insert("shard".into(), n(to));
    t.store.client().put_item().table_name(t.store.table()).set_item(Some(moved)).send().await.unwrap();
    let report = audit(&t.store, &AuditOptions::default()).await.unwrap();
    assert_eq!(report.drift_count(), 1, "{}", report.render());
    let problems = &report.drift[0].problems;
    let misplaced: Vec<u32> = problems
        .iter()
        .filter_map(|p| match p {
            Problem::ShardNotHoldItems { shard, .. } => Some(*shard),
            _ => None,
        })
        .collect();
    assert_eq!(misplaced, [from.min(to), from.max(to)], "{problems:?}");
    assert!(!problems.iter().any(|p| matches!(p, Problem::ReservedNotHoldItems { .. })), "the sums agree");
}

/// 64 shards: a PUT and an adjustment rewrite all of them in one transaction, their movements in
/// one ledger item; the listing shows every movement once at any page size, each shard's chain
/// newest first (a confirm's SOLD after the stock write before it, though the shard's version is
/// below the others'), a stock write's movements together, each chain replaying to its shard.
#[tokio::test]
async fn an_item_of_64_shards_is_written_in_one_transaction_and_its_ledger_lists_every_shards_chain_in_order()
{
    let t = TestTable::new().await;
    let created = t
        .function("put-stock")
        .write_stock("H", "w1", put(640, 64), Some(0), None, &Default::default())
        .await
        .unwrap()
        .item;
    assert_eq!((created.on_hand, created.available, created.shards, created.version), (640, 640, 64, 64));
    assert_eq!(on_hands(&shards(&t, "H").await), vec![10; 64]);
    // Units sold from a few shards (their versions move ahead of the others'), then an adjustment
    // over all 64, then more sold.
    let mut sold = Vec::new();
    for i in 0..4 {
        let r = reserve(&t.store, &format!("o-{i}"), "H", 3).await.unwrap().reservation;
        t.function("confirm").confirm(&r.reservation_id, &Default::default()).await.unwrap();
        sold.push(r);
    }
    let adjusted = t
        .function("adjust-stock")
        .write_stock("H", "w1", StockChange::Adjust { delta: 128 }, None, None, &Default::default())
        .await
        .unwrap()
        .item;
    // 756 units over 64 shards: 12 or 11 on each, so every shard's onHand changes.
    assert_eq!((adjusted.on_hand, adjusted.reserved), (640 - 12 + 128, 0));
    let spread: Vec<i64> = shards(&t, "H").await.values().map(|s| s.available).collect();
    assert!(spread.iter().all(|a| *a == 11 || *a == 12), "{spread:?}");
    for i in 4..6 {
        let r = reserve(&t.store, &format!("o-{i}"), "H", 2).await.unwrap().reservation;
        t.function("confirm").confirm(&r.reservation_id, &Default::default()).await.unwrap();
        sold.push(r);
    }
    no_violations(&t).await;
    let item_shards = shards(&t, "H").await;
    let snapshot = Snapshot::take(&t).await;
    let mut all = snapshot.movements[&("H".to_owned(), "w1".to_owned())].clone();
    all.sort_by_key(|m| (m.shard, m.version));
    // The PUT's 64, 4 SOLD, the adjustment's 64, 2 SOLD.
    assert_eq!(all.len(), 64 + 4 + 64 + 2);

    let mut pages = Vec::new();
    for limit in [7, 100] {
        let mut listed: Vec<Movement> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = t.store.list_movements("H", "w1", limit, cursor.as_deref()).await.unwrap();
            assert!(page.items.len() <= limit as usize && !page.items.is_empty(), "limit {limit}");
            listed.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut once = listed.clone();
        once.sort_by_key(|m| (m.shard, m.version));
        assert_eq!(once, all, "limit {limit}: every movement once");
        // Newest first, shard by shard.
        let mut chains: BTreeMap<Option<u32>, Vec<u64>> = BTreeMap::new();
        for m in &listed {
            chains.entry(m.shard).or_default().push(m.version);
        }
        for (shard, versions) in &chains {
            assert!(versions.windows(2).all(|w| w[0] > w[1]), "limit {limit}, shard {shard:?}: {versions:?}");
        }
        // The adjustment's 64 movements together.
        let adjustment: Vec<usize> = (0..listed.len())
            .filter(|i| listed[*i].kind == inventory::domain::MovementKind::Adjust)
            .collect();
        assert_eq!(adjustment.len(), 64);
        assert_eq!(adjustment[63] - adjustment[0], 63, "limit {limit}: one write's movements together");
        // Each chain replays to its shard's onHand.
        listed.reverse();
        assert_eq!(replay_break(&listed), None);
        for (k, shard) in &item_shards {
            let last = listed.iter().rfind(|m| m.shard == Some(*k)).expect("each shard has movements");
            assert_eq!(last.on_hand, shard.on_hand, "shard {k}");
        }
        pages.push(listed);
    }
    assert_eq!(pages[0], pages[1], "the same order at any page size");
}

/// A stock write that leaves shard 0's onHand alone has no movement of shard 0: a page ending on
/// its movement of another shard is followed by the rest, at every page size (its ledger item is
/// read again after that cursor and gives nothing more).
#[tokio::test]
async fn a_stock_write_that_leaves_shard_0_alone_is_listed_once_at_every_page_size() {
    let t = TestTable::new().await;
    let write = |change: StockChange| {
        let f = t.function("put-stock");
        async move { f.write_stock("L", "w1", change, None, None, &Default::default()).await.unwrap() }
    };
    write(put(10, 2)).await;
    // 9 over two shards: [5, 4], only shard 1 moves; then 8: [4, 4], only shard 0.
    write(StockChange::Adjust { delta: -1 }).await;
    assert_eq!(on_hands(&shards(&t, "L").await), [5, 4]);
    write(StockChange::Adjust { delta: -1 }).await;
    let r = reserve(&t.store, "o-1", "L", 1).await.unwrap().reservation;
    t.function("confirm").confirm(&r.reservation_id, &Default::default()).await.unwrap();
    write(StockChange::Adjust { delta: -1 }).await;
    let snapshot = Snapshot::take(&t).await;
    let mut all = snapshot.movements[&("L".to_owned(), "w1".to_owned())].clone();
    all.sort_by_key(|m| (m.shard, m.version));
    for limit in [1, 2, 3, 100] {
        let mut listed: Vec<Movement> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = t.store.list_movements("L", "w1", limit, cursor.as_deref()).await.unwrap();
            assert!(!page.items.is_empty() && page.items.len() <= limit as usize, "limit {limit}");
            listed.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        listed.reverse();
        assert_eq!(replay_break(&listed), None, "limit {limit}: each shard's chain in order");
        listed.sort_by_key(|m| (m.shard, m.version));
        assert_eq!(listed, all, "limit {limit}: every movement once");
    }
}
