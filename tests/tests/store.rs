//! The store against DynamoDB Local: concurrency, idempotency, versions and retries.
//! Every test has its own table, so they run in parallel.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use integration_tests::{set_stock, Fault, TestTable};
use inventory::domain::{merge_lines, Line, LineRequest, Status};
use inventory::store::{RetryPolicy, StockChange};
use inventory::{Error, Store};

fn lines(spec: &[(&str, &str, i64)]) -> Vec<Line> {
    let requests: Vec<LineRequest> = spec
        .iter()
        .map(|(sku, loc, q)| LineRequest { sku: (*sku).into(), location_id: (*loc).into(), quantity: *q })
        .collect();
    merge_lines(&requests).expect("valid lines")
}

async fn reserve(
    store: &Store,
    order: &str,
    spec: &[(&str, &str, i64)],
) -> Result<inventory::store::Reserved, Error> {
    store.reserve(order, lines(spec), 900, &inventory::store::WriteContext::correlated("test-corr")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_buyers_for_the_last_unit_exactly_one_wins() {
    let t = TestTable::new().await;
    set_stock(&t.store, "LAST", "w1", 1).await;
    let store = Arc::new(t.store.clone());
    let attempts = (0..100).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { reserve(&store, &format!("order-{i}"), &[("LAST", "w1", 1)]).await })
    });
    let results: Vec<_> = join_all(attempts).await.into_iter().map(|r| r.expect("task")).collect();
    let won = results.iter().filter(|r| r.is_ok()).count();
    let short = results.iter().filter(|r| matches!(r, Err(Error::InsufficientStock { .. }))).count();
    assert_eq!(
        (won, short),
        (1, 99),
        "{:?}",
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .find(|e| !matches!(e, Error::InsufficientStock { .. }))
    );
    if let Some(Err(Error::InsufficientStock { lines })) = results.iter().find(|r| r.is_err()) {
        assert_eq!((lines[0].requested, lines[0].available), (1, 0));
    }
    let stock = t.store.get_stock("LAST", "w1").await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved, stock.available), (1, 1, 0));
    assert_eq!(stock.version, 2, "one write to create, one reserve");
    // One outbox record per change: the stock PUT and the single reservation.
    assert_eq!(t.count_items("OUTBOX#").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_buyers_for_fifty_units_exactly_fifty_win() {
    let t = TestTable::new().await;
    set_stock(&t.store, "HOT", "w1", 50).await;
    let store = Arc::new(t.store.clone());
    let attempts = (0..200).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { reserve(&store, &format!("order-{i}"), &[("HOT", "w1", 1)]).await })
    });
    let results: Vec<_> = join_all(attempts).await.into_iter().map(|r| r.expect("task")).collect();
    let won = results.iter().filter(|r| r.is_ok()).count();
    let short = results.iter().filter(|r| matches!(r, Err(Error::InsufficientStock { .. }))).count();
    assert_eq!((won, short), (50, 150));
    let stock = t.store.get_stock("HOT", "w1").await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved, stock.available), (50, 50, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossing_multi_line_orders_never_reserve_partially() {
    let t = TestTable::new().await;
    for round in 0..30 {
        let (a, b) = (format!("A{round}"), format!("B{round}"));
        // Only one of the two orders can be served: one unit of each SKU.
        set_stock(&t.store, &a, "w1", 1).await;
        set_stock(&t.store, &b, "w1", 1).await;
        let (x, y) = (format!("x-{round}"), format!("y-{round}"));
        let (ab, ba) =
            ([(a.as_str(), "w1", 1), (b.as_str(), "w1", 1)], [(b.as_str(), "w1", 1), (a.as_str(), "w1", 1)]);
        let first = reserve(&t.store, &x, &ab);
        let second = reserve(&t.store, &y, &ba);
        let (r1, r2) = tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(first, second) })
            .await
            .expect("no deadlock");
        assert_eq!([&r1, &r2].iter().filter(|r| r.is_ok()).count(), 1, "round {round}: {r1:?} / {r2:?}");
        let loser = if r1.is_ok() { &r2 } else { &r1 };
        assert!(matches!(loser, Err(Error::InsufficientStock { .. })), "round {round}: {loser:?}");
        let winner = r1.or(r2).expect("one winner");
        assert_eq!(winner.reservation.lines.len(), 2);
        for sku in [&a, &b] {
            let s = t.store.get_stock(sku, "w1").await.unwrap();
            assert_eq!(
                (s.reserved, s.available),
                (1, 0),
                "round {round}: {sku} must be reserved exactly once"
            );
        }
    }
    // When both can be served, both are.
    set_stock(&t.store, "C", "w1", 2).await;
    set_stock(&t.store, "D", "w1", 2).await;
    let (r1, r2) = tokio::join!(
        reserve(&t.store, "both-1", &[("C", "w1", 1), ("D", "w1", 1)]),
        reserve(&t.store, "both-2", &[("D", "w1", 1), ("C", "w1", 1)])
    );
    assert!(r1.is_ok() && r2.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repeated_reserve_returns_the_same_reservation_and_holds_stock_once() {
    let t = TestTable::new().await;
    set_stock(&t.store, "IDEM", "w1", 100).await;
    let first = reserve(&t.store, "order-1", &[("IDEM", "w1", 2), ("IDEM", "w1", 1)]).await.unwrap();
    assert!(first.created);
    // The same merged lines, written differently: a safe retry.
    let again = reserve(&t.store, "order-1", &[("IDEM", "w1", 3)]).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.reservation, first.reservation);
    let stock = t.store.get_stock("IDEM", "w1").await.unwrap();
    assert_eq!(stock.reserved, 3);

    // Different lines for the same order are refused, naming the existing reservation.
    match reserve(&t.store, "order-1", &[("IDEM", "w1", 4)]).await {
        Err(Error::OrderAlreadyReserved { reservation_id }) => {
            assert_eq!(reservation_id, first.reservation.reservation_id)
        }
        other => panic!("expected ORDER_ALREADY_RESERVED, got {other:?}"),
    }

    // Twenty identical requests at once: one reservation, stock held once.
    let store = Arc::new(t.store.clone());
    let attempts = (0..20).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { reserve(&store, "order-20", &[("IDEM", "w1", 5)]).await })
    });
    let results: Vec<_> = join_all(attempts).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.created).count(), 1);
    let id = &results[0].reservation.reservation_id;
    assert!(results.iter().all(|r| &r.reservation.reservation_id == id));
    assert_eq!(t.store.get_stock("IDEM", "w1").await.unwrap().reserved, 8);
    assert_eq!(t.store.get_order_reservation("order-20").await.unwrap().reservation_id, *id);
    assert_eq!(t.count_items("RES#").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirm_and_release_racing_on_one_hold_have_exactly_one_winner() {
    let t = TestTable::new().await;
    set_stock(&t.store, "RACE", "w1", 1000).await;
    let mut confirmed = 0;
    let (confirm, release) = (t.function("confirm"), t.function("release"));
    for round in 0..40 {
        let held = reserve(&t.store, &format!("race-{round}"), &[("RACE", "w1", 2)]).await.unwrap();
        let id = held.reservation.reservation_id.clone();
        let ctx = inventory::store::WriteContext::default();
        let (c, r) = tokio::join!(confirm.confirm(&id, &ctx), release.release(&id, &ctx));
        let winners = [c.as_ref().is_ok_and(|x| x.applied), r.as_ref().is_ok_and(|x| x.applied)];
        assert_eq!(winners.iter().filter(|w| **w).count(), 1, "round {round}: {c:?} / {r:?}");
        let loser = if winners[0] { &r } else { &c };
        assert!(matches!(loser, Err(Error::InvalidState { .. })), "round {round}: {loser:?}");
        let final_status = t.store.get_reservation(&id).await.unwrap().status;
        if winners[0] {
            confirmed += 1;
            assert_eq!(final_status, Status::Confirmed);
        } else {
            assert_eq!(final_status, Status::Released);
        }
    }
    let stock = t.store.get_stock("RACE", "w1").await.unwrap();
    assert_eq!(stock.reserved, 0);
    assert_eq!(stock.on_hand, 1000 - 2 * confirmed);
    assert_eq!(stock.available, stock.on_hand);
}

#[tokio::test]
async fn transitions_follow_the_contract() {
    let t = TestTable::new().await;
    set_stock(&t.store, "T", "w1", 10).await;
    let r = reserve(&t.store, "t-1", &[("T", "w1", 4)]).await.unwrap().reservation;
    let confirmed = t.function("confirm").confirm(&r.reservation_id, &Default::default()).await.unwrap();
    assert!(confirmed.applied);
    assert_eq!(confirmed.reservation.status, Status::Confirmed);
    assert_eq!(confirmed.reservation.version, 2);
    // A retried confirm is a no-op; release of a confirmed hold is refused.
    assert!(!t.function("confirm").confirm(&r.reservation_id, &Default::default()).await.unwrap().applied);
    assert!(matches!(
        t.function("release").release(&r.reservation_id, &Default::default()).await,
        Err(Error::InvalidState { status: Status::Confirmed })
    ));
    let s = t.store.get_stock("T", "w1").await.unwrap();
    assert_eq!((s.on_hand, s.reserved, s.available), (6, 0, 6));

    let r2 = reserve(&t.store, "t-2", &[("T", "w1", 1)]).await.unwrap().reservation;
    let extended =
        t.function("extend").extend(&r2.reservation_id, 3600, &Default::default()).await.unwrap().reservation;
    assert!(extended.expires_at > r2.expires_at);
    assert_eq!(extended.status, Status::Pending);
    assert!(t.function("release").release(&r2.reservation_id, &Default::default()).await.unwrap().applied);
    assert!(!t.function("release").release(&r2.reservation_id, &Default::default()).await.unwrap().applied);
    assert!(matches!(
        t.function("confirm").confirm(&r2.reservation_id, &Default::default()).await,
        Err(Error::InvalidState { status: Status::Released })
    ));
    assert!(matches!(
        t.store.get_reservation(&uuid::Uuid::new_v4().to_string()).await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(t.store.get_order_reservation("nobody").await, Err(Error::NotFound { .. })));
    // Events: PUT, 2 creations, 1 confirm, 1 extend (ReservationExtended), 1 release.
    assert_eq!(t.count_items("OUTBOX#").await, 6);
}

#[tokio::test]
async fn confirm_after_expiry_expires_on_the_spot_and_returns_the_units() {
    let t = TestTable::new().await;
    set_stock(&t.store, "EXP", "w1", 5).await;
    let r = t
        .function("reserve")
        .reserve("late", lines(&[("EXP", "w1", 3)]), 60, &Default::default())
        .await
        .unwrap()
        .reservation;
    t.clock.advance(Duration::from_secs(61));
    assert!(matches!(
        t.function("confirm").confirm(&r.reservation_id, &Default::default()).await,
        Err(Error::ReservationExpired { .. })
    ));
    let stored = t.store.get_reservation(&r.reservation_id).await.unwrap();
    assert_eq!(stored.status, Status::Expired);
    let s = t.store.get_stock("EXP", "w1").await.unwrap();
    assert_eq!((s.on_hand, s.reserved, s.available), (5, 0, 5));
    // Extend of an expired hold is 410 too, and releasing it is a no-op answering EXPIRED.
    assert!(matches!(
        t.function("extend").extend(&r.reservation_id, 60, &Default::default()).await,
        Err(Error::ReservationExpired { .. })
    ));
    let released = t.function("release").release(&r.reservation_id, &Default::default()).await.unwrap();
    assert_eq!((released.applied, released.reservation.status), (false, Status::Expired));
}

#[tokio::test]
async fn expected_version_mismatch_is_a_version_conflict_with_the_current_version() {
    let t = TestTable::new().await;
    let created = t
        .function("put-stock")
        .write_stock("V", "w1", StockChange::Set { on_hand: 10 }, Some(0), None, &Default::default())
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(created.item.version, 1);
    // expectedVersion 0 means "must not exist yet".
    match t
        .function("put-stock")
        .write_stock("V", "w1", StockChange::Set { on_hand: 10 }, Some(0), None, &Default::default())
        .await
    {
        Err(Error::VersionConflict { current_version }) => assert_eq!(current_version, 1),
        other => panic!("{other:?}"),
    }
    reserve(&t.store, "v-1", &[("V", "w1", 2)]).await.unwrap();
    match t
        .function("adjust-stock")
        .write_stock("V", "w1", StockChange::Adjust { delta: 5 }, Some(1), None, &Default::default())
        .await
    {
        Err(Error::VersionConflict { current_version }) => assert_eq!(current_version, 2),
        other => panic!("{other:?}"),
    }
    let adjusted = t
        .function("adjust-stock")
        .write_stock("V", "w1", StockChange::Adjust { delta: 5 }, Some(2), None, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        (adjusted.item.on_hand, adjusted.item.reserved, adjusted.item.available, adjusted.item.version),
        (15, 2, 13, 3)
    );
    // Nothing changed by the refused writes.
    assert_eq!(t.store.get_stock("V", "w1").await.unwrap(), adjusted.item);
}

#[tokio::test]
async fn stock_cannot_drop_below_what_is_reserved() {
    let t = TestTable::new().await;
    set_stock(&t.store, "B", "w1", 5).await;
    reserve(&t.store, "b-1", &[("B", "w1", 4)]).await.unwrap();
    assert!(matches!(
        t.function("put-stock")
            .write_stock("B", "w1", StockChange::Set { on_hand: 3 }, None, None, &Default::default())
            .await,
        Err(Error::StockBelowReserved { on_hand: 3, reserved: 4 })
    ));
    assert!(matches!(
        t.function("adjust-stock")
            .write_stock("B", "w1", StockChange::Adjust { delta: -2 }, None, None, &Default::default())
            .await,
        Err(Error::StockBelowReserved { .. })
    ));
    assert!(matches!(
        t.function("adjust-stock")
            .write_stock("NOPE", "w1", StockChange::Adjust { delta: 1 }, None, None, &Default::default())
            .await,
        Err(Error::NotFound { .. })
    ));
    let ok = t
        .function("adjust-stock")
        .write_stock("B", "w1", StockChange::Adjust { delta: -1 }, None, None, &Default::default())
        .await
        .unwrap();
    assert_eq!((ok.item.on_hand, ok.item.available), (4, 0));
}

#[tokio::test]
async fn reserve_of_an_unknown_item_is_not_found_and_changes_nothing() {
    let t = TestTable::new().await;
    set_stock(&t.store, "K", "w1", 5).await;
    let r = reserve(&t.store, "nf", &[("K", "w1", 1), ("UNKNOWN", "w1", 1)]).await;
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    let short = reserve(&t.store, "short", &[("K", "w1", 1), ("K", "w2", 1)]).await;
    assert!(matches!(short, Err(Error::NotFound { .. })), "{short:?}");
    set_stock(&t.store, "L", "w1", 1).await;
    match reserve(&t.store, "many", &[("K", "w1", 6), ("L", "w1", 2)]).await {
        Err(Error::InsufficientStock { lines }) => {
            assert!(lines.iter().any(|l| l.sku == "K" && l.requested == 6 && l.available == 5), "{lines:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.store.get_stock("K", "w1").await.unwrap().reserved, 0);
    assert_eq!(t.count_items("RES#").await + t.count_items("ORDER#").await, 0);
    let sku = t.store.get_sku_stock("K").await.unwrap();
    assert_eq!(sku.total_on_hand, 5);
    assert!(matches!(t.store.get_sku_stock("UNKNOWN").await, Err(Error::NotFound { .. })));
}

#[tokio::test]
async fn sku_stock_lists_locations_sorted_with_totals() {
    let t = TestTable::new().await;
    for (loc, n) in [("w3", 3), ("w1", 1), ("w2", 2)] {
        set_stock(&t.store, "S", loc, n).await;
    }
    reserve(&t.store, "s-1", &[("S", "w2", 2)]).await.unwrap();
    let s = t.store.get_sku_stock("S").await.unwrap();
    let locs: Vec<_> = s.locations.iter().map(|l| l.location_id.as_str()).collect();
    assert_eq!(locs, ["w1", "w2", "w3"]);
    assert_eq!((s.total_on_hand, s.total_reserved, s.total_available), (6, 2, 4));
}

#[tokio::test]
async fn injected_conflicts_and_throttling_are_retried() {
    let t = TestTable::new().await;
    set_stock(&t.store, "F", "w1", 10).await;
    t.faults.clear();
    t.faults.plan("TransactWriteItems", Fault::TransactionConflict, 2);
    t.faults.plan("TransactWriteItems", Fault::Throttled, 1);
    t.faults.plan("TransactWriteItems", Fault::InternalServerError, 1);
    let retries_before = t.store.stats().retries();
    let r = reserve(&t.store, "f-1", &[("F", "w1", 3)]).await.expect("retried to success");
    assert!(r.created);
    assert_eq!(t.faults.injected(), 4);
    assert_eq!(t.faults.seen("TransactWriteItems"), 5, "4 faults, then the real write");
    assert_eq!(t.store.stats().retries() - retries_before, 4);
    assert_eq!(t.store.get_stock("F", "w1").await.unwrap().reserved, 3, "held exactly once");

    // Reads are retried too.
    t.faults.clear();
    t.faults.plan("GetItem", Fault::Throttled, 2);
    assert_eq!(t.store.get_stock("F", "w1").await.unwrap().reserved, 3);
    assert_eq!(t.faults.seen("GetItem"), 3);

    // Transitions: a conflicted confirm is retried and applied once.
    t.faults.clear();
    t.faults.plan("TransactWriteItems", Fault::TransactionConflict, 1);
    let c = t.function("confirm").confirm(&r.reservation.reservation_id, &Default::default()).await.unwrap();
    assert!(c.applied);
    let s = t.store.get_stock("F", "w1").await.unwrap();
    assert_eq!((s.on_hand, s.reserved), (7, 0));
}

#[tokio::test]
async fn a_condition_failure_is_not_retried() {
    let t = TestTable::new().await;
    set_stock(&t.store, "G", "w1", 1).await;
    t.faults.clear();
    let retries_before = t.store.stats().retries();
    let r = reserve(&t.store, "g-1", &[("G", "w1", 2)]).await;
    assert!(matches!(r, Err(Error::InsufficientStock { .. })), "{r:?}");
    assert_eq!(t.faults.seen("TransactWriteItems"), 1, "one attempt, no retry");
    assert_eq!(t.store.stats().retries(), retries_before);
}

#[tokio::test]
async fn persistent_throttling_ends_as_unavailable_without_a_change() {
    let t = TestTable::new().await;
    set_stock(&t.store, "H", "w1", 5).await;
    let store = t.store.clone().with_retry_policy(RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        deadline: Duration::from_secs(2),
    });
    t.faults.clear();
    t.faults.plan("TransactWriteItems", Fault::Throttled, 10);
    let r = store.reserve("h-1", lines(&[("H", "w1", 1)]), 60, &Default::default()).await;
    assert!(matches!(r, Err(Error::Unavailable { .. })), "{r:?}");
    assert_eq!(t.faults.seen("TransactWriteItems"), 4);
    t.faults.clear();
    assert_eq!(t.store.get_stock("H", "w1").await.unwrap().reserved, 0);
    assert_eq!(t.count_items("RES#").await, 0);
}

/// A clock that reads `t`'s time on its first call and `late` later on every call after: the
/// moment of a write comes after the moment of the read that decided it.
fn late_after_the_first_read(t: &TestTable, late: Duration) -> inventory::store::Clock {
    let (clock, calls) = (t.clock.as_clock(), Arc::new(std::sync::atomic::AtomicUsize::new(0)));
    Arc::new(move || {
        let first = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        if first {
            clock()
        } else {
            clock() + chrono::Duration::from_std(late).unwrap()
        }
    })
}

/// docs/api.md: confirm and extend check `expiresAt` at the moment they write, not only when they
/// read. A hold read live and written past its expiresAt is expired on the spot (410), its units
/// back: never CONFIRMED or extended.
#[tokio::test]
async fn confirm_and_extend_written_after_expiry_answer_410_never_confirmed_or_extended() {
    let t = TestTable::new().await;
    set_stock(&t.store, "LATE", "w1", 10).await;
    for action in ["confirm", "extend"] {
        let held = reserve(&t.store, &format!("late-{action}"), &[("LATE", "w1", 2)]).await.unwrap();
        let id = held.reservation.reservation_id;
        let late = t.function(action).with_clock(late_after_the_first_read(&t, Duration::from_secs(901)));
        let answer = match action {
            "confirm" => late.confirm(&id, &Default::default()).await,
            _ => late.extend(&id, 600, &Default::default()).await,
        };
        assert!(matches!(answer, Err(Error::ReservationExpired { .. })), "{action}: {answer:?}");
        let after = t.store.get_reservation(&id).await.unwrap();
        assert_eq!(after.status, Status::Expired, "{action}");
    }
    let stock = t.store.get_stock("LATE", "w1").await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (10, 0), "no unit sold, every unit back");
}
