//! The expiry sweep against DynamoDB Local: exactly once, never after a confirm or release, cost
//! that follows what is due.

use std::time::Duration;

use integration_tests::{hold, set_stock, sweeper, TestTable};
use inventory::domain::Status;
use inventory::expiry::{handle_scheduled, ExpirySweep};
use inventory::Error;

const BUDGET: Duration = inventory::expiry::RUN_TIMEOUT;

#[tokio::test]
async fn holds_with_a_one_second_ttl_all_expire_in_one_sweep_exactly_once() {
    let t = TestTable::new().await;
    set_stock(&t.store, "TTL", "w1", 30).await;
    for i in 0..10 {
        hold(&t.store, &format!("o-{i}"), "TTL", 2, 1).await;
    }
    // One live hold that must stay.
    let live = hold(&t.store, "live", "TTL", 1, 3600).await;
    assert_eq!(t.store.get_stock("TTL", "w1").await.unwrap().reserved, 21);
    t.clock.advance(Duration::from_millis(1500));

    let report = ExpirySweep::default().run(&t.function("expire-reservations"), BUDGET).await;
    assert_eq!((report.found, report.expired, report.skipped, report.failed), (10, 10, 0, 0), "{report:?}");
    assert!(!report.stopped_early);
    let stock = t.store.get_stock("TTL", "w1").await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved, stock.available), (30, 1, 29));
    assert_eq!(t.store.get_reservation(&live.reservation_id).await.unwrap().status, Status::Pending);

    let again = ExpirySweep::default().run(&t.function("expire-reservations"), BUDGET).await;
    assert_eq!((again.found, again.expired), (0, 0), "{again:?}");
    assert_eq!(t.store.get_stock("TTL", "w1").await.unwrap().reserved, 1, "units returned exactly once");
    assert_eq!(t.count_events("ReservationExpired").await, 10);
}

#[derive(Clone, Copy, Debug)]
enum Rival {
    Confirm,
    Release,
    Extend,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_racing_confirm_release_or_extend_has_exactly_one_winner() {
    let t = TestTable::new().await;
    set_stock(&t.store, "RACE", "w1", 100_000).await;
    let sweep_view = sweeper(&t, Duration::from_secs(61));
    let mut expired_total = 0;
    for rival in [Rival::Confirm, Rival::Release, Rival::Extend] {
        for round in 0..50 {
            let h = hold(&t.store, &format!("{rival:?}-{round}"), "RACE", 1, 60).await;
            let id = h.reservation_id.clone();
            let api = async {
                match rival {
                    Rival::Confirm => t.function("confirm").confirm(&id, &Default::default()).await,
                    Rival::Release => t.function("release").release(&id, &Default::default()).await,
                    Rival::Extend => t.function("extend").extend(&id, 3600, &Default::default()).await,
                }
            };
            let ctx = inventory::store::WriteContext::default();
            let (expired, other) = tokio::join!(sweep_view.expire_due(&h, &ctx), api);
            let expired = expired.expect("sweep");
            let other_won = match &other {
                Ok(done) => done.applied,
                Err(Error::ReservationExpired { .. }) => false,
                Err(e) => panic!("{rival:?} round {round}: {e:?}"),
            };
            assert!(expired ^ other_won, "{rival:?} round {round}: expired={expired}, other={other:?}");
            let status = t.store.get_reservation(&id).await.unwrap().status;
            let expected = match (expired, rival) {
                (true, _) => Status::Expired,
                (false, Rival::Confirm) => Status::Confirmed,
                (false, Rival::Release) => Status::Released,
                (false, Rival::Extend) => Status::Pending,
            };
            assert_eq!(status, expected, "{rival:?} round {round}");
            expired_total += expired as usize;
        }
    }
    assert_eq!(t.count_events("ReservationExpired").await, expired_total);
    // Units: confirmed ones left stock, extended ones are still held, the rest came back.
    let confirmed = t.count_events("ReservationConfirmed").await as i64;
    let extended_pending = ExpirySweep::default().run(&t.function("expire-reservations"), BUDGET).await; // nothing due yet
    assert_eq!(extended_pending.expired, 0);
    let stock = t.store.get_stock("RACE", "w1").await.unwrap();
    assert_eq!(stock.on_hand, 100_000 - confirmed);
    assert_eq!(stock.reserved + stock.available, stock.on_hand);
}

#[tokio::test]
async fn the_sample_scheduled_event_runs_a_sweep() {
    let t = TestTable::new().await;
    set_stock(&t.store, "EV", "w1", 5).await;
    hold(&t.store, "ev-1", "EV", 2, 1).await;
    t.clock.advance(Duration::from_secs(2));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/expire-reservations.json");
    let payload = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("a scheduled event");
    let event = lambda_runtime::LambdaEvent::new(payload, lambda_runtime::Context::default());
    // The expire-reservations function's store, behind its IAM gate.
    let store = integration_tests::runtime::runtime_over(&t.store).store("expire-reservations").unwrap();
    let report = handle_scheduled(&store, event).await.expect("sweep");
    assert_eq!(report.expired, 1);
    assert_eq!(t.store.get_stock("EV", "w1").await.unwrap().reserved, 0);
}

#[tokio::test]
async fn a_slow_page_stops_at_the_time_budget_and_the_next_run_finishes_it() {
    let t = TestTable::new().await;
    set_stock(&t.store, "SLOW", "w1", 100).await;
    for i in 0..80 {
        hold(&t.store, &format!("slow-{i}"), "SLOW", 1, 1).await;
    }
    let later = sweeper(&t, Duration::from_secs(5));
    // 80 due holds over the index's 4 shards (a page of about 20 each), one hold per
    // transaction, each transaction 300 ms late: one page alone is seconds of work, against a
    // budget of 600 ms.
    let sweep = ExpirySweep { concurrency: 1, holds_per_transaction: 1, ..ExpirySweep::default() };
    let delay = Duration::from_millis(300);
    t.faults.plan("TransactWriteItems", integration_tests::Fault::Delay(delay), 80);
    let budget = Duration::from_millis(600);
    let report = sweep.run(&later, budget).await;
    assert!(report.stopped_early, "{report:?}");
    let bound = budget + 2 * delay;
    assert!(
        report.duration_ms < bound.as_millis() as u64,
        "ran {} ms, budget {budget:?}",
        report.duration_ms
    );
    assert!(report.expired > 0 && report.expired < 80, "{report:?}");
    t.faults.clear();
    let rest = sweep.run(&later, BUDGET).await;
    assert_eq!(report.expired + rest.expired, 80, "every due hold expired once");
    assert_eq!(t.store.get_stock("SLOW", "w1").await.unwrap().reserved, 0);
}

/// The sweep writes a due hold straight from the index's copy; a hold changed since (here
/// extended, and due again) is read afresh and expired as it is now. The sweep runs as the
/// expire-reservations function, behind its IAM gate: that read is its GetItem.
#[tokio::test]
async fn a_hold_changed_since_the_sweep_read_it_is_read_again_and_expired_once() {
    let t = TestTable::new().await;
    set_stock(&t.store, "STALE", "w1", 5).await;
    let seen_by_the_sweep = hold(&t.store, "stale-1", "STALE", 2, 1).await;
    let extended = t
        .function("extend")
        .extend(&seen_by_the_sweep.reservation_id, 1, &Default::default())
        .await
        .unwrap()
        .reservation;
    assert_eq!(extended.version, seen_by_the_sweep.version + 1);
    t.clock.advance(Duration::from_secs(3));
    let sweep = integration_tests::runtime::runtime_over(&t.store).store("expire-reservations").unwrap();
    assert!(
        sweep.expire_due(&seen_by_the_sweep, &Default::default()).await.unwrap(),
        "expired after a fresh read"
    );
    let now = t.store.get_reservation(&seen_by_the_sweep.reservation_id).await.unwrap();
    assert_eq!((now.status, now.version), (Status::Expired, extended.version + 1));
    assert_eq!(t.store.get_stock("STALE", "w1").await.unwrap().reserved, 0);
    assert!(!sweep.expire_due(&seen_by_the_sweep, &Default::default()).await.unwrap(), "never twice");
    assert_eq!(t.count_events("ReservationExpired").await, 1);
}
