//! The expiry sweep at scale: the time and the items read to expire N due holds, amid 100,000
//! holds that are not due (and, as the control, amid none). The sweep reads the sparse due-holds
//! index, so its cost should follow N and not the table.

use std::time::{Duration, Instant};

use integration_tests::{sweeper, TestTable};
use inventory::domain::{Line, Reservation, StockItem};
use inventory::expiry::ExpirySweep;
use inventory::store::items::{reservation_item, stock_item};
use serde::{Deserialize, Serialize};

use crate::stats::round;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepRun {
    pub due: u64,
    pub not_due: u64,
    pub expired: u64,
    pub failed: u64,
    /// Items DynamoDB read (the index pages' ScannedCount).
    pub items_read: u64,
    pub dynamodb_requests: u64,
    pub capacity_units: f64,
    pub seconds: f64,
    pub holds_per_s: f64,
    /// Every due hold's units are back and no not-due hold was touched.
    pub verified: bool,
}

/// Writes `count` PENDING holds of one unit over `skus` stock items named `{prefix}-{i}`, held
/// for `ttl_seconds` from now, and the stock items with the matching `reserved`.
async fn bulk_holds(t: &TestTable, prefix: &str, count: usize, skus: usize, ttl_seconds: i64) {
    let now = t.store.now();
    let mut items = Vec::with_capacity(count + skus);
    for i in 0..count {
        let line = Line::new(format!("{prefix}-{}", i % skus), "w1".into(), 1);
        let r = Reservation::new(format!("{prefix}-order-{i}"), vec![line], ttl_seconds, now);
        items.push(reservation_item(&r).expect("reservation item"));
    }
    for i in 0..skus {
        let reserved = (count / skus + usize::from(i < count % skus)) as i64;
        let stock = StockItem {
            sku: format!("{prefix}-{i}"),
            location_id: "w1".into(),
            on_hand: 1_000_000,
            reserved,
            available: 1_000_000 - reserved,
            version: 1,
            updated_at: now,
            low_stock_threshold: None,
            shards: 1,
        };
        items.push(stock_item(&stock).expect("stock item"));
    }
    t.batch_put(items, 16).await;
}

async fn reserved_total(t: &TestTable, prefix: &str, skus: usize) -> i64 {
    let mut total = 0;
    for i in 0..skus {
        total += t.store.get_stock(&format!("{prefix}-{i}"), "w1").await.expect("stock").reserved;
    }
    total
}

async fn sweep(t: &TestTable, prefix: &str, due: usize, not_due: usize) -> SweepRun {
    const DUE_SKUS: usize = 50;
    bulk_holds(t, prefix, due, DUE_SKUS, 60).await;
    // The expire-reservations function's store (behind its IAM gate), a minute ahead.
    let store = integration_tests::runtime::runtime_over(&sweeper(t, Duration::from_secs(61)))
        .store("expire-reservations")
        .expect("the expire-reservations function");
    let requests = store.stats().requests();
    let started = Instant::now();
    let report = ExpirySweep::default().run(&store, Duration::from_secs(900)).await;
    let seconds = started.elapsed().as_secs_f64();
    let requests = store.stats().requests() - requests;
    let verified = report.expired == due as u64 && reserved_total(t, prefix, DUE_SKUS).await == 0;
    SweepRun {
        due: due as u64,
        not_due: not_due as u64,
        expired: report.expired,
        failed: report.failed,
        items_read: report.items_read,
        dynamodb_requests: requests,
        capacity_units: round(report.capacity_units),
        seconds: round(seconds),
        holds_per_s: round(report.expired as f64 / seconds),
        verified,
    }
}

/// The control (1,000 due, nothing else), then 1,000 and `big` due amid `not_due` not-due holds.
pub async fn run(not_due: usize, big: usize) -> (Vec<SweepRun>, f64) {
    let mut runs = Vec::new();
    let control = TestTable::new().await;
    runs.push(sweep(&control, "CTRL", 1_000, 0).await);

    let t = TestTable::new().await;
    const NOT_DUE_SKUS: usize = 100;
    let load = Instant::now();
    bulk_holds(&t, "LATER", not_due, NOT_DUE_SKUS, 86_400).await;
    let load_s = load.elapsed().as_secs_f64();
    for (prefix, due) in [("DUE1", 1_000), ("DUE2", big)] {
        let mut run = sweep(&t, prefix, due, not_due).await;
        run.verified &= reserved_total(&t, "LATER", NOT_DUE_SKUS).await == not_due as i64;
        runs.push(run);
    }
    (runs, round(load_s))
}
