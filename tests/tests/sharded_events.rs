//! Stock events of sharded items, through the real publisher (the local runtime's stream
//! pipeline): StockDepleted, StockLow and StockReplenished follow the item's total, once per
//! crossing, also after `shards` was lowered with holds left on former shards.

use std::sync::Arc;
use std::time::Duration;

use integration_tests::event_stack::{eventually, EventStack};
use integration_tests::TestTable;
use inventory::domain::{Line, StockChange};
use inventory::store::Reserved;
use inventory::Store;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const STOCK_EVENTS: [&str; 3] = ["StockDepleted", "StockLow", "StockReplenished"];

fn put(on_hand: i64, shards: u32, threshold: Option<i64>) -> StockChange {
    StockChange::Put { on_hand, low_stock_threshold: Some(threshold), shards: Some(shards) }
}

async fn reserve(store: &Store, order: &str, quantity: i64) -> inventory::Result<Reserved> {
    let line = Line::new("HOT".into(), "w1".into(), quantity);
    store.reserve(order, vec![line], 900, &Default::default()).await
}

/// The stock events on the bus once `done` holds of what came and the publisher has published
/// every outbox record (its own among them) and the queue stays empty.
async fn stock_events(t: &TestTable, stack: &EventStack, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut got = stack.receive_until(&stack.tap_queue_url, WAIT, |events| done(&stock_only(events))).await;
    eventually("the publisher to publish every outbox record", WAIT, || async {
        let outbox = t.scan("begins_with(pk, :p)", &[(":p", "OUTBOX#")]).await.len() as u64;
        (stack.publisher().stats().published() >= outbox).then_some(())
    })
    .await;
    loop {
        let batch = stack.receive_batch(&stack.tap_queue_url).await;
        if batch.is_empty() {
            return stock_only(&got);
        }
        got.extend(batch);
    }
}

fn stock_only(events: &[Value]) -> Vec<Value> {
    events.iter().filter(|e| STOCK_EVENTS.iter().any(|t| e["detail-type"] == *t)).cloned().collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["detail-type"].as_str().unwrap()).collect()
}

/// The review's sequence: PUT 15 on 4 shards, reserve 3 (off shard 0), PUT 15 on 1 shard (the 3
/// stay held where they are), release them, reserve 12 (shard 0 empties, 3 are left elsewhere):
/// no StockDepleted; selling the last 3 gives one, with the item's total numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_shard_count_with_holds_left_behind_gives_exactly_the_right_events() {
    let t = TestTable::new().await;
    let stack = EventStack::new().await;
    let _pipelines = stack.start_pipelines(&t).await;
    let s = &t.store;
    s.write_stock("HOT", "w1", put(15, 4, None), None, None, &Default::default()).await.unwrap();
    // A hold of 3 on a shard other than 0 (placement is random: hold until one lands there).
    let mut off_zero = None;
    for attempt in 0..40 {
        let held = reserve(s, &format!("first-{attempt}"), 3).await.unwrap().reservation;
        if !held.shard_holds.is_empty() && held.shard_holds.iter().all(|h| h.shard != 0) {
            off_zero = Some(held);
            break;
        }
        s.release(&held.reservation_id, &Default::default()).await.unwrap();
    }
    let first = off_zero.expect("40 reserves on 4 shards, none off shard 0");
    s.write_stock("HOT", "w1", put(15, 1, None), None, None, &Default::default()).await.unwrap();
    s.release(&first.reservation_id, &Default::default()).await.unwrap();
    let twelve = reserve(s, "twelve", 12).await.unwrap().reservation;
    let item = s.get_stock("HOT", "w1").await.unwrap();
    assert_eq!((item.available, item.shards), (3, 1), "3 left, on the former shard");
    assert!(twelve.shard_holds.is_empty(), "all 12 on shard 0: {:?}", twelve.shard_holds);
    reserve(s, "last", 3).await.unwrap();

    let got = stock_events(&t, &stack, |events| !events.is_empty()).await;
    assert_eq!(types(&got), ["StockDepleted"], "{got:#?}");
    let data = &got[0]["detail"]["data"];
    assert_eq!((&data["onHand"], &data["reserved"], &data["available"]), (&15.into(), &15.into(), &0.into()));
    assert_eq!(
        (&data["sku"], &data["locationId"], &data["shards"]),
        (&"HOT".into(), &"w1".into(), &1.into())
    );
    assert_eq!(data["version"], s.get_stock("HOT", "w1").await.unwrap().version, "the total's version");
}

/// 60 buyers at once on 8 shards of 40 units with a threshold of 10: one StockLow (below 10) and
/// one StockDepleted, however the shards' changes interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_item_sold_out_by_concurrent_buyers_gives_one_stock_low_and_one_stock_depleted() {
    let t = TestTable::new().await;
    let stack = EventStack::new().await;
    let _pipelines = stack.start_pipelines(&t).await;
    t.store.write_stock("HOT", "w1", put(40, 8, Some(10)), None, None, &Default::default()).await.unwrap();
    let store = Arc::new(t.store.clone());
    let buyers: Vec<_> = (0..60)
        .map(|b| {
            let store = store.clone();
            tokio::spawn(async move { reserve(&store, &format!("b-{b}"), 1).await.is_ok() })
        })
        .collect();
    let mut sold = 0;
    for buyer in buyers {
        sold += i64::from(buyer.await.unwrap());
    }
    assert_eq!(sold, 40);

    let got = stock_events(&t, &stack, |events| events.len() >= 2).await;
    let mut kinds = types(&got);
    kinds.sort();
    assert_eq!(kinds, ["StockDepleted", "StockLow"], "{got:#?}");
    for event in &got {
        let data = &event["detail"]["data"];
        assert_eq!(
            (&data["onHand"], &data["shards"], &data["lowStockThreshold"]),
            (&40.into(), &8.into(), &10.into())
        );
        let available = data["available"].as_i64().unwrap();
        match event["detail-type"].as_str().unwrap() {
            "StockLow" => assert!((0..10).contains(&available), "{data}"),
            _ => assert_eq!((available, &data["reserved"]), (0, &40.into())),
        }
    }
}

/// Two publishers (each shard's stream shard has its own) deciding on the same level item: the
/// one whose level item changed since it read it decides again, so a sell-out is recorded once.
/// A reads the total at 0 and its write is slow; meanwhile 3 units are released and held again
/// (the total is 0 again, at a newer version) and B reads the same level item and that newer
/// total, its write slower still; A's write lands, then B's.
#[tokio::test]
async fn publishers_deciding_on_the_same_level_item_record_a_sell_out_once() {
    use integration_tests::FaultInjector;
    use inventory::events::DetailType;
    let t = TestTable::new().await;
    let s = &t.store;
    s.write_stock("HOT", "w1", put(3, 4, None), None, None, &Default::default()).await.unwrap();
    let first = reserve(s, "o-1", 3).await.unwrap().reservation;
    let (a_faults, b_faults) = (FaultInjector::new(), FaultInjector::new());
    let (a, b) = (t.store_via(a_faults.clone()), t.store_via(b_faults.clone()));
    a_faults.plan("TransactWriteItems", integration_tests::Fault::Delay(Duration::from_millis(1500)), 1);
    b_faults.plan("TransactWriteItems", integration_tests::Fault::Delay(Duration::from_millis(3000)), 1);
    let a = tokio::spawn(async move { a.settle_stock_level("HOT", "w1").await });
    eventually("A to send its write", WAIT, || async { (a_faults.injected() == 1).then_some(()) }).await;
    s.release(&first.reservation_id, &Default::default()).await.unwrap();
    reserve(s, "o-2", 3).await.unwrap();
    let b = tokio::spawn(async move { b.settle_stock_level("HOT", "w1").await });
    eventually("B to send its write", WAIT, || async { (b_faults.injected() == 1).then_some(()) }).await;
    let a = a.await.unwrap().unwrap();
    let b = b.await.unwrap().unwrap();
    let depleted = t.count_events(DetailType::StockDepleted.as_str()).await;
    assert_eq!(depleted, 1, "A: {a:?}, B: {b:?}");
    assert_eq!(a, inventory::store::Settled::Recorded(vec![DetailType::StockDepleted]));
}

/// A level write with no event that met another transaction, sent again and refused because
/// another publisher recorded an older total meanwhile, reads again: the newer total's crossing
/// is recorded (the sell-out after a re-stock), not dropped as if the write had been applied.
#[tokio::test]
async fn a_refused_resend_of_a_level_write_reads_again_and_records_the_newer_crossing() {
    use integration_tests::{Fault, FaultInjector};
    use inventory::events::DetailType;
    let t = TestTable::new().await;
    let s = &t.store;
    s.write_stock("HOT", "w1", put(2, 4, None), None, None, &Default::default()).await.unwrap();
    let first = reserve(s, "o-1", 2).await.unwrap().reservation;
    s.settle_stock_level("HOT", "w1").await.unwrap();
    assert_eq!(t.count_events(DetailType::StockDepleted.as_str()).await, 1);
    // Back in stock: B sees 2 available and its write (StockReplenished) is slow.
    s.release(&first.reservation_id, &Default::default()).await.unwrap();
    let b_faults = FaultInjector::new();
    b_faults.plan("TransactWriteItems", Fault::Delay(Duration::from_millis(1500)), 1);
    let b = t.store_via(b_faults.clone());
    let b = tokio::spawn(async move { b.settle_stock_level("HOT", "w1").await });
    eventually("B to send its write", WAIT, || async { (b_faults.injected() == 1).then_some(()) }).await;
    // Sold out again: A sees 0 against the level's 0 (no event); its write meets another
    // transaction, and is sent again after B's has landed.
    reserve(s, "o-2", 2).await.unwrap();
    let a_faults = FaultInjector::new();
    a_faults.plan("TransactWriteItems", Fault::TransactionConflict, 1);
    a_faults.plan("TransactWriteItems", Fault::Delay(Duration::from_millis(3000)), 1);
    let a = t.store_via(a_faults.clone()).settle_stock_level("HOT", "w1").await.unwrap();
    let b = b.await.unwrap().unwrap();
    assert_eq!(b, inventory::store::Settled::Recorded(vec![DetailType::StockReplenished]));
    assert_eq!(a, inventory::store::Settled::Recorded(vec![DetailType::StockDepleted]), "A read again");
    assert_eq!(t.count_events(DetailType::StockDepleted.as_str()).await, 2);
}
