//! Expiry at scale, part 1: 10,000 due holds expire within one run's time budget. It holds
//! `heavy_load_lock`, so it never shares DynamoDB Local with the other heavy test.

use std::time::Duration;

use integration_tests::{heavy_load_lock, sweeper, TestTable};
use inventory::domain::{merge_lines, LineRequest, Reservation, StockItem};
use inventory::expiry::{ExpirySweep, RUN_TIMEOUT};
use inventory::store::items::{reservation_item, stock_item};

/// 10,000 PENDING holds over 50 SKUs, written in bulk (reservation items plus stock items whose
/// `reserved` matches), all due after 60 s.
async fn bulk_due_holds(t: &TestTable, count: usize, skus: usize) -> Vec<String> {
    let now = t.store.now();
    let names: Vec<String> = (0..skus).map(|i| format!("BULK-{i}")).collect();
    let mut items = Vec::with_capacity(count + skus);
    for i in 0..count {
        let line = LineRequest { sku: names[i % skus].clone(), location_id: "w1".into(), quantity: 1 };
        let r = Reservation::new(format!("bulk-{i}"), merge_lines(&[line]).unwrap(), 60, now);
        items.push(reservation_item(&r).unwrap());
    }
    for (i, sku) in names.iter().enumerate() {
        let reserved = (count / skus + usize::from(i < count % skus)) as i64;
        items.push(
            stock_item(&StockItem {
                sku: sku.clone(),
                location_id: "w1".into(),
                on_hand: 1_000,
                reserved,
                available: 1_000 - reserved,
                version: 1,
                updated_at: now,
                low_stock_threshold: None,
                shards: 1,
            })
            .unwrap(),
        );
    }
    t.batch_put(items, 16).await;
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_over_ten_thousand_due_holds_finishes_within_one_run() {
    let _exclusive = heavy_load_lock().await;
    let t = TestTable::new().await;
    let skus = bulk_due_holds(&t, 10_000, 50).await;
    let sweep = ExpirySweep::default();
    let report = sweep.run(&sweeper(&t, Duration::from_secs(61)), RUN_TIMEOUT).await;
    eprintln!("sweep of 10,000 due holds: {report:?}");
    assert_eq!((report.found, report.expired, report.failed), (10_000, 10_000, 0), "{report:?}");
    assert!(!report.stopped_early && report.duration_ms < RUN_TIMEOUT.as_millis() as u64);
    for sku in &skus {
        let s = t.store.get_stock(sku, "w1").await.unwrap();
        assert_eq!((s.reserved, s.available), (0, 1_000));
    }
}
