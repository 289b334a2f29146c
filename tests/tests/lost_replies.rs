//! A write whose reply is lost after DynamoDB applied it (injected at the SDK's HTTP client: the
//! request is forwarded to DynamoDB Local, then the client sees a timeout) is never applied twice
//! by the store's own retries: for every write, the stock, the reservation and the events show it
//! exactly once, and the caller gets the answer of the write that was applied. Each write is made
//! by the store of the function that makes it, behind its IAM gate: a resend that finds its first
//! attempt applied reads the transaction's outbox record (GetItem), which its policy must allow.

use std::time::Duration;

use integration_tests::{hold, set_stock, Fault, TestTable};
use inventory::domain::{merge_lines, Line, LineRequest, Status};
use inventory::expiry::ExpirySweep;
use inventory::store::StockChange;

/// The next transaction is applied, and its reply lost.
fn lose_the_next_reply(t: &TestTable) {
    t.faults.clear();
    t.faults.plan("TransactWriteItems", Fault::LoseReply, 1);
}

/// The reply was lost once, and the write was sent again.
fn assert_lost_and_resent(t: &TestTable) {
    assert_eq!(t.faults.injected(), 1, "the fault was not injected");
    assert!(t.faults.seen("TransactWriteItems") >= 2, "the write was not sent again");
}

fn lines(sku: &str, quantity: i64) -> Vec<Line> {
    merge_lines(&[LineRequest { sku: sku.into(), location_id: "w1".into(), quantity }]).unwrap()
}

#[tokio::test]
async fn a_put_or_an_adjustment_whose_reply_was_lost_is_applied_once() {
    let t = TestTable::new().await;
    lose_the_next_reply(&t);
    let put = StockChange::Set { on_hand: 10 };
    let created = t
        .function("put-stock")
        .write_stock("L", "w1", put, Some(0), None, &Default::default())
        .await
        .expect("put");
    assert_eq!((created.created, created.item.version, created.item.on_hand), (true, 1, 10));
    assert_lost_and_resent(&t);

    lose_the_next_reply(&t);
    let adjust = StockChange::Adjust { delta: 5 };
    let adjust_stock = t.function("adjust-stock");
    let adjusted = adjust_stock
        .write_stock("L", "w1", adjust, Some(1), Some("delivery"), &Default::default())
        .await
        .expect("adjust");
    assert_eq!((adjusted.item.on_hand, adjusted.item.version), (15, 2));
    assert_lost_and_resent(&t);

    let item = t.store.get_stock("L", "w1").await.unwrap();
    assert_eq!((item.on_hand, item.available, item.version), (15, 15, 2));
    assert_eq!(t.count_events("StockAdjusted").await, 2, "one event per write");
}

#[tokio::test]
async fn a_reserve_whose_reply_was_lost_is_applied_once() {
    let t = TestTable::new().await;
    set_stock(&t.store, "L", "w1", 5).await;
    lose_the_next_reply(&t);
    let reserved = t
        .function("reserve")
        .reserve("o-lost", lines("L", 2), 900, &Default::default())
        .await
        .expect("reserve");
    assert!(reserved.created, "the first answer of a new reservation is 201");
    assert_lost_and_resent(&t);
    let item = t.store.get_stock("L", "w1").await.unwrap();
    assert_eq!((item.reserved, item.available, item.version), (2, 3, 2));
    assert_eq!(t.store.get_order_reservation("o-lost").await.unwrap(), reserved.reservation);
    assert_eq!(t.count_items("RES#").await, 1);
    assert_eq!(t.count_events("ReservationCreated").await, 1);
}

#[tokio::test]
async fn a_confirm_release_or_extend_whose_reply_was_lost_is_applied_once() {
    let t = TestTable::new().await;
    set_stock(&t.store, "L", "w1", 10).await;
    let to_confirm =
        t.store.reserve("o-1", lines("L", 2), 900, &Default::default()).await.unwrap().reservation;
    let to_release =
        t.store.reserve("o-2", lines("L", 3), 900, &Default::default()).await.unwrap().reservation;

    lose_the_next_reply(&t);
    let confirmed = t
        .function("confirm")
        .confirm(&to_confirm.reservation_id, &Default::default())
        .await
        .expect("confirm");
    assert!(confirmed.applied);
    assert_eq!((confirmed.reservation.status, confirmed.reservation.version), (Status::Confirmed, 2));
    assert_lost_and_resent(&t);

    lose_the_next_reply(&t);
    let extended = t
        .function("extend")
        .extend(&to_release.reservation_id, 3600, &Default::default())
        .await
        .expect("extend");
    assert_eq!((extended.reservation.status, extended.reservation.version), (Status::Pending, 2));
    assert_lost_and_resent(&t);
    assert_eq!(t.store.get_reservation(&to_release.reservation_id).await.unwrap(), extended.reservation);

    lose_the_next_reply(&t);
    let released = t
        .function("release")
        .release(&to_release.reservation_id, &Default::default())
        .await
        .expect("release");
    assert!(released.applied);
    assert_eq!((released.reservation.status, released.reservation.version), (Status::Released, 3));
    assert_lost_and_resent(&t);

    let item = t.store.get_stock("L", "w1").await.unwrap();
    assert_eq!((item.on_hand, item.reserved, item.available), (8, 0, 8), "2 sold, 3 given back, once each");
    for event in ["ReservationConfirmed", "ReservationExtended", "ReservationReleased"] {
        assert_eq!(t.count_events(event).await, 1, "{event}");
    }
}

#[tokio::test]
async fn an_expiry_whose_reply_was_lost_is_applied_once() {
    let t = TestTable::new().await;
    set_stock(&t.store, "L", "w1", 10).await;
    hold(&t.store, "o-expiring", "L", 4, 1).await;
    t.clock.advance(Duration::from_secs(2));
    lose_the_next_reply(&t);
    let sweep = t.function("expire-reservations");
    let report = ExpirySweep::default().run(&sweep, inventory::expiry::RUN_TIMEOUT).await;
    assert_eq!((report.found, report.expired, report.failed), (1, 1, 0), "{report:?}");
    assert_lost_and_resent(&t);
    let item = t.store.get_stock("L", "w1").await.unwrap();
    assert_eq!((item.on_hand, item.reserved, item.available), (10, 0, 10), "the units came back once");
    assert_eq!(t.count_events("ReservationExpired").await, 1);
}
