//! Retention: a finished reservation, its order reservation item and the order key that names it
//! carry DynamoDB's TTL attribute (all one value, `domain::retained_until`); PENDING reservations,
//! holds, the ledger and stock items never do; past it, every read and the audit treat them as
//! gone, whether or not DynamoDB has deleted them yet.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{hold, set_stock, TestTable};
use inventory::audit::{audit, AuditOptions};
use inventory::domain::{retained_until, DEFAULT_RETENTION_DAYS};
use inventory::expiry::ExpirySweep;
use inventory::store::items::{number_attr, string_attr};
use inventory::Error;

#[tokio::test]
async fn finished_reservations_and_their_order_items_carry_the_ttl_and_nothing_else_does() {
    let t = TestTable::new().await;
    set_stock(&t.store, "RET", "w1", 20).await;
    let pending = hold(&t.store, "o-pending", "RET", 1, 3600).await;
    let confirmed = hold(&t.store, "o-confirmed", "RET", 2, 3600).await;
    t.function("confirm").confirm(&confirmed.reservation_id, &Default::default()).await.unwrap();
    let released = hold(&t.store, "o-released", "RET", 3, 3600).await;
    t.function("release").release(&released.reservation_id, &Default::default()).await.unwrap();
    let expired = hold(&t.store, "o-expired", "RET", 4, 1).await;
    t.clock.advance(Duration::from_millis(1500));
    let sweep =
        ExpirySweep::default().run(&t.function("expire-reservations"), inventory::expiry::RUN_TIMEOUT).await;
    assert_eq!(sweep.expired, 1, "{sweep:?}");

    let ttl_of: HashMap<String, i64> = [&pending, &confirmed, &released, &expired]
        .iter()
        .map(|r| (r.reservation_id.clone(), retained_until(r.created_at, DEFAULT_RETENTION_DAYS)))
        .collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for item in t.scan("attribute_exists(pk)", &[]).await {
        let (entity, ttl) = (string_attr(&item, "entity").unwrap_or_default(), number_attr(&item, "ttl"));
        let of_its_reservation =
            || ttl_of.get(&string_attr(&item, "reservationId").unwrap_or_default()).copied();
        let kind = match entity.as_str() {
            "RESERVATION" if string_attr(&item, "status").as_deref() == Some("PENDING") => {
                assert_eq!(ttl, None, "a PENDING reservation never expires: {item:?}");
                "pending reservation"
            }
            "RESERVATION" => {
                assert_eq!(ttl, of_its_reservation(), "a finished reservation: {item:?}");
                "finished reservation"
            }
            "ORDER" | "ORDER_RESERVATION" => {
                assert_eq!(ttl, of_its_reservation(), "an order item: its reservation's TTL: {item:?}");
                "order item"
            }
            "STOCK" | "STOCK_SHARD" | "HOLD" | "MOVEMENT" | "MOVEMENTS" => {
                assert_eq!(ttl, None, "stock, holds and the ledger never expire: {item:?}");
                "stock, hold or movement"
            }
            _ => continue,
        };
        *seen.entry(kind).or_default() += 1;
    }
    assert_eq!(seen.get("pending reservation"), Some(&1), "{seen:?}");
    assert_eq!(seen.get("finished reservation"), Some(&3), "{seen:?}");
    // Four order keys and four order reservation items.
    assert_eq!(seen.get("order item"), Some(&8), "{seen:?}");
    // The stock item, its SET movement, the SOLD movement and the pending hold.
    assert_eq!(seen.get("stock, hold or movement"), Some(&4), "{seen:?}");
}

#[tokio::test]
async fn past_its_ttl_a_finished_reservation_and_its_order_are_gone_to_every_read_and_the_audit() {
    let t = TestTable::new().await;
    set_stock(&t.store, "GONE", "w1", 10).await;
    let old = hold(&t.store, "o-1", "GONE", 2, 3600).await;
    t.function("confirm").confirm(&old.reservation_id, &Default::default()).await.unwrap();
    let until = retained_until(old.created_at, DEFAULT_RETENTION_DAYS);
    let now = t.store.now().timestamp();

    t.clock.advance(Duration::from_secs((until - now - 60) as u64));
    assert!(t.store.get_reservation(&old.reservation_id).await.is_ok(), "kept until its TTL");
    assert_eq!(t.store.list_order_reservations("o-1", 20, None).await.unwrap().items.len(), 1);

    t.clock.advance(Duration::from_secs(120));
    let gone = |r: Result<_, Error>| matches!(r, Err(Error::NotFound { .. }));
    assert!(gone(t.store.get_reservation(&old.reservation_id).await.map(|_| ())));
    assert!(gone(t.store.get_order_reservation("o-1").await.map(|_| ())));
    assert!(gone(t.store.list_order_reservations("o-1", 20, None).await.map(|_| ())));
    // DynamoDB deletes expired items within days, in any order: here the reservation first, the
    // order key still there. The audit sees neither (no "order key names a missing reservation").
    t.store
        .client()
        .delete_item()
        .table_name(t.store.table())
        .key("pk", AttributeValue::S(format!("RES#{}", old.reservation_id)))
        .key("sk", AttributeValue::S("RES".into()))
        .send()
        .await
        .unwrap();
    let report = audit(&t.store, &AuditOptions::default()).await.unwrap();
    assert_eq!((report.order_keys, report.drift_count()), (0, 0), "{report:?}");
    assert!(report.other_problems.is_empty(), "{report:?}");

    // The order id is free again (its old order key, past its TTL, is replaced), and the stock
    // and its ledger are as they were.
    let again = hold(&t.store, "o-1", "GONE", 1, 3600).await;
    assert_ne!(again.reservation_id, old.reservation_id);
    let listed = t.store.list_order_reservations("o-1", 20, None).await.unwrap().items;
    assert_eq!(listed.iter().map(|r| &r.reservation_id).collect::<Vec<_>>(), [&again.reservation_id]);
    let stock = t.store.get_stock("GONE", "w1").await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (8, 1));
    assert_eq!(t.store.list_movements("GONE", "w1", 10, None).await.unwrap().items.len(), 2);
}
