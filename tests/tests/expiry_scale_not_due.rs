//! Expiry at scale, part 2: among 25,000 holds that are not due, a sweep reads only the 100
//! that are (a Scan would read 250 times as many; `make bench` times sweeps amid 100,000). It
//! holds `heavy_load_lock`, so it never shares DynamoDB Local with the other heavy test.

use std::time::{Duration, Instant};

use integration_tests::{heavy_load_lock, hold, set_stock, sweeper, TestTable};
use inventory::domain::{merge_lines, LineRequest, Reservation};
use inventory::expiry::{ExpirySweep, RUN_TIMEOUT};
use inventory::store::items::reservation_item;

/// Holds not due: enough that reading them would show (the sweep reads 100 items), few enough to
/// load in seconds.
const NOT_DUE: usize = 25_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_reads_only_the_due_holds_not_the_table() {
    let _exclusive = heavy_load_lock().await;
    let t = TestTable::new().await;
    // 25,000 holds due tomorrow, written straight into the table (they are only ever read by a
    // sweep that should not read them).
    let now = t.store.now();
    let lines =
        merge_lines(&[LineRequest { sku: "NOTDUE".into(), location_id: "w1".into(), quantity: 1 }]).unwrap();
    let not_due: Vec<_> = (0..NOT_DUE)
        .map(|i| {
            reservation_item(&Reservation::new(format!("later-{i}"), lines.clone(), 86_400, now)).unwrap()
        })
        .collect();
    let written = Instant::now();
    t.batch_put(not_due, 16).await;
    eprintln!("{NOT_DUE} not-due holds written in {:?}", written.elapsed());
    set_stock(&t.store, "DUE", "w1", 1_000).await;
    for i in 0..100 {
        hold(&t.store, &format!("due-{i}"), "DUE", 1, 60).await;
    }
    let report = ExpirySweep::default().run(&sweeper(&t, Duration::from_secs(61)), RUN_TIMEOUT).await;
    eprintln!("sweep: {report:?}");
    assert_eq!((report.found, report.expired), (100, 100), "{report:?}");
    assert_eq!(report.items_read, 100, "the sweep read items that were not due: {report:?}");
    assert_eq!(t.store.get_stock("DUE", "w1").await.unwrap().reserved, 0);
}
