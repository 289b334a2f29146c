//! One hot item under the contention model of real DynamoDB (`integration_tests::contention`):
//! C clients reserving one unit at a time, through the service's store (its own retry policy),
//! its DynamoDB requests going through the model. DynamoDB Local serialises transactions, so
//! without the model they never meet; with it, they conflict and meet the item's write budget as
//! they would on AWS. The item is split into 1, 16 or 64 shards (`domain::shards`). The buyers
//! arrive evenly over the row's first second ([`ARRIVAL`]), a sale's opening.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::{ContentionModel, ContentionParams, ModelCounts, TestTable};
use inventory::domain::Line;
use inventory::store::StockChange;
use inventory::{Error, Store};
use serde::{Deserialize, Serialize};

use crate::stats::{round, Latency};

const SKU: &str = "HOT-SKU";
const LOCATION: &str = "w1";
/// Over how long a row's buyers arrive (the first at once).
pub const ARRIVAL: Duration = Duration::from_secs(1);

/// One row: C clients for `duration` on one item (split into `shards`) with plenty of stock.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelCell {
    pub clients: usize,
    /// How many runs of the row (each on a fresh table) its figures sum.
    #[serde(default = "one")]
    pub reps: u32,
    /// The model's median hold time, when the row is one of the sensitivity rows (else the
    /// run's parameters'), in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_p50_ms: Option<f64>,
    #[serde(default = "one")]
    pub shards: u32,
    pub requests: u64,
    pub successes: u64,
    pub successes_per_s: f64,
    /// INSUFFICIENT_STOCK answers (all spurious here: the stock cannot run out).
    pub spurious_rejections: u64,
    /// 503 SERVICE_UNAVAILABLE: the store gave up within its deadline.
    pub unavailable: u64,
    /// Of those, the ones that were applied all the same (an attempt cut off at the deadline
    /// after DynamoDB took it: retrying the same orderId returns the reservation), found by
    /// reading each such order afterwards.
    #[serde(default)]
    pub unavailable_applied: u64,
    pub unavailable_pct: f64,
    /// How late, on average, a transaction was answered after its drawn hold time (ms): this
    /// machine's timers fire late under load (the model frees the items on time all the same).
    #[serde(default)]
    pub release_lateness_ms: f64,
    /// The bench process's CPU time (its clients, the store, the SDK, the model) per
    /// transaction attempted (sent on, conflicted or throttled), in ms.
    #[serde(default)]
    pub client_cpu_ms_per_attempt: f64,
    /// Transactions the model cancelled with TransactionConflict, and throttled.
    pub conflicts: u64,
    /// Of those, the ones in the row's first second (the sale's opening).
    #[serde(default)]
    pub opening_conflicts: u64,
    pub throttles: u64,
    pub conflicts_per_success: f64,
    /// The store's attempts beyond the first (conflicts, throttling, stale reads), per success.
    pub retries_per_success: f64,
    pub latency: Latency,
    /// Units reserved beyond onHand, or a `reserved` that is not the successes.
    pub oversells: i64,
    pub consistent: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRun {
    /// The model's parameters, as it prints them.
    pub model: String,
    pub params: serde_json::Value,
    pub seconds_per_cell: f64,
    /// Over how long each row's buyers arrived (s); 0: all at once (runs before it was kept).
    #[serde(default)]
    pub arrival_seconds: f64,
    pub cells: Vec<ModelCell>,
}

impl ModelCell {
    /// The transactions DynamoDB Local applied a second: the successes and the 503s applied all
    /// the same, over the row's whole time (its last requests' answers included).
    pub fn applied_per_s(&self) -> f64 {
        if self.successes == 0 || self.successes_per_s <= 0.0 {
            return 0.0;
        }
        let elapsed = self.successes as f64 / self.successes_per_s;
        (self.successes + self.unavailable_applied) as f64 / elapsed
    }
}

fn one() -> u32 {
    1
}

/// The sensitivity rows' median hold times (ms), at C = 256 on 16 shards; the 99th percentile
/// keeps the default's ratio to the median.
pub const SENSITIVITY_HOLD_P50_MS: [u64; 2] = [10, 100];

/// Runs every `(clients, shards)` `reps` times for `duration` each, on a fresh table each, and
/// (when C = 256 on 16 shards is among them) the sensitivity rows; prints each row as it goes.
pub async fn run(rows: &[(usize, u32)], duration: Duration, reps: u32) -> ModelRun {
    let params = ContentionParams::default();
    println!("model: {params}");
    let mut cells = Vec::new();
    let mut runs: Vec<(ContentionParams, usize, u32, Option<f64>)> =
        rows.iter().map(|&(c, shards)| (params, c, shards, None)).collect();
    if rows.contains(&(256, 16)) {
        for p50 in SENSITIVITY_HOLD_P50_MS {
            let ratio = params.hold_p99.as_secs_f64() / params.hold_p50.as_secs_f64();
            let hold_p50 = Duration::from_millis(p50);
            let varied = ContentionParams { hold_p50, hold_p99: hold_p50.mul_f64(ratio), ..params };
            runs.push((varied, 256, 16, Some(p50 as f64)));
        }
    }
    for (params, c, shards, hold_p50_ms) in runs {
        let mut cell = run_cell(params, c, shards, duration, reps).await;
        cell.hold_p50_ms = hold_p50_ms;
        println!(
            "model C={} shards={}{}: {} ok / {} requests, {:.1}/s, conflicts/ok {}, retries/ok {}, throttled {}, 503 {} ({}%), spurious {}, p50 {} ms, p99 {} ms, oversells {}, answers {} ms late, client CPU {} ms per attempt, {} conflicts in the first second",
            cell.clients, cell.shards, hold_p50_ms.map(|h| format!(" hold p50 {h} ms")).unwrap_or_default(),
            cell.successes, cell.requests, cell.successes_per_s, cell.conflicts_per_success, cell.retries_per_success,
            cell.throttles, cell.unavailable, cell.unavailable_pct, cell.spurious_rejections, cell.latency.p50_ms,
            cell.latency.p99_ms, cell.oversells, cell.release_lateness_ms, cell.client_cpu_ms_per_attempt,
            cell.opening_conflicts
        );
        cells.push(cell);
    }
    ModelRun {
        model: params.to_string(),
        params: serde_json::to_value(params).unwrap_or_default(),
        seconds_per_cell: duration.as_secs_f64(),
        arrival_seconds: ARRIVAL.as_secs_f64(),
        cells,
    }
}

#[derive(Default)]
struct Tally {
    requests: u64,
    successes: u64,
    rejections: u64,
    unavailable: u64,
    errors: u64,
    latencies_ms: Vec<f64>,
    /// Orders answered 503.
    unavailable_orders: Vec<String>,
}

/// One run of a row, as measured.
struct Rep {
    tally: Tally,
    elapsed: f64,
    cpu: f64,
    counts: ModelCounts,
    opening: u64,
    retries: u64,
    applied: u64,
    oversells: i64,
    consistent: bool,
}

/// A row: `reps` runs of it, each on a fresh table, summed (rates over their summed time).
async fn run_cell(
    params: ContentionParams,
    clients: usize,
    shards: u32,
    duration: Duration,
    reps: u32,
) -> ModelCell {
    let mut runs = Vec::new();
    for _ in 0..reps.max(1) {
        runs.push(run_rep(params, clients, shards, duration).await);
    }
    let sum = |f: &dyn Fn(&Rep) -> u64| runs.iter().map(f).sum::<u64>();
    let (requests, successes) = (sum(&|r| r.tally.requests), sum(&|r| r.tally.successes));
    let (unavailable, conflicts) = (sum(&|r| r.tally.unavailable), sum(&|r| r.counts.conflicts));
    let attempts = sum(&|r| r.counts.transactions + r.counts.conflicts + r.counts.throttles);
    let elapsed: f64 = runs.iter().map(|r| r.elapsed).sum();
    let cpu: f64 = runs.iter().map(|r| r.cpu).sum();
    let (releases, lateness_us) = (sum(&|r| r.counts.releases), sum(&|r| r.counts.release_lateness_us));
    let per_success = successes.max(1) as f64;
    ModelCell {
        clients,
        hold_p50_ms: None,
        shards,
        reps: runs.len() as u32,
        requests,
        successes,
        successes_per_s: round(successes as f64 / elapsed),
        spurious_rejections: sum(&|r| r.tally.rejections),
        unavailable,
        unavailable_applied: sum(&|r| r.applied),
        unavailable_pct: round(100.0 * unavailable as f64 / requests.max(1) as f64),
        release_lateness_ms: round(lateness_us as f64 / 1000.0 / releases.max(1) as f64),
        client_cpu_ms_per_attempt: round(1000.0 * cpu / attempts.max(1) as f64),
        conflicts,
        opening_conflicts: sum(&|r| r.opening),
        throttles: sum(&|r| r.counts.throttles),
        conflicts_per_success: round(conflicts as f64 / per_success),
        retries_per_success: round(sum(&|r| r.retries) as f64 / per_success),
        latency: Latency::of(
            runs.iter_mut().flat_map(|r| std::mem::take(&mut r.tally.latencies_ms)).collect(),
        ),
        oversells: runs.iter().map(|r| r.oversells).max().unwrap_or(0),
        consistent: runs.iter().all(|r| r.consistent),
    }
}

async fn run_rep(params: ContentionParams, clients: usize, shards: u32, duration: Duration) -> Rep {
    let t = TestTable::new().await;
    let model = ContentionModel::new(params);
    let store = Arc::new(t.store_via(model.clone()));
    let on_hand = inventory::domain::MAX_ON_HAND;
    store
        .write_stock(
            SKU,
            LOCATION,
            StockChange::Put { on_hand, low_stock_threshold: None, shards: Some(shards) },
            None,
            None,
            &Default::default(),
        )
        .await
        .expect("initial stock");
    // The buyers reserve as the reserve function does locally: its store, behind its IAM gate,
    // in front of the model.
    let store =
        integration_tests::runtime::runtime_over(&store).store("reserve").expect("the reserve function");
    model.reset();
    let retries_before = store.stats().retries();
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let stop_at = started + duration;
    let opening = {
        let model = model.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until((started + Duration::from_secs(1)).into()).await;
            model.counts().conflicts
        })
    };
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let store: Arc<Store> = store.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut i = 0;
                // The buyers arrive evenly over the first second, as section 6's do.
                tokio::time::sleep_until((started + ARRIVAL.mul_f64(c as f64 / clients as f64)).into()).await;
                while Instant::now() < stop_at {
                    let line = Line::new(SKU.into(), LOCATION.into(), 1);
                    let t0 = Instant::now();
                    let order = format!("o-{c}-{i}");
                    let answer = store.reserve(&order, vec![line], 900, &Default::default()).await;
                    tally.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                    tally.requests += 1;
                    i += 1;
                    match answer {
                        Ok(_) => tally.successes += 1,
                        Err(Error::InsufficientStock { .. }) => tally.rejections += 1,
                        Err(Error::Unavailable { .. }) => {
                            tally.unavailable += 1;
                            tally.unavailable_orders.push(order);
                        }
                        Err(e) => {
                            tally.errors += 1;
                            eprintln!("  model C={clients} shards={shards}: {e}");
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        let tally = task.await.expect("client");
        total.requests += tally.requests;
        total.successes += tally.successes;
        total.rejections += tally.rejections;
        total.unavailable += tally.unavailable;
        total.errors += tally.errors;
        total.latencies_ms.extend(tally.latencies_ms);
        total.unavailable_orders.extend(tally.unavailable_orders);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu_before;
    let counts: ModelCounts = model.counts();
    let retries = store.stats().retries() - retries_before;
    // DynamoDB Local may still be applying requests cut off at their deadline (the model let
    // their turns go then): read the item until it stops changing, then the 503s' orders.
    let mut item = t.store.get_stock(SKU, LOCATION).await.expect("final stock");
    let settled_by = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let again = t.store.get_stock(SKU, LOCATION).await.expect("final stock");
        let settled = again.version == item.version;
        item = again;
        if settled || Instant::now() > settled_by {
            break;
        }
    }
    let mut unavailable_applied = 0;
    for order in &total.unavailable_orders {
        match t.store.get_order_reservation(order).await {
            Ok(_) => unavailable_applied += 1,
            Err(Error::NotFound { .. }) => {}
            Err(e) => panic!("reading order {order}: {e}"),
        }
    }
    let consistent = item.reserved as u64 == total.successes + unavailable_applied
        && item.available == item.on_hand - item.reserved
        && total.errors == 0;
    Rep {
        elapsed,
        cpu,
        counts,
        opening: opening.await.unwrap_or_default(),
        retries,
        applied: unavailable_applied,
        oversells: (item.reserved - item.on_hand).max(0),
        consistent,
        tally: total,
    }
}

/// This process's CPU time so far (user and system), in seconds, from `/proc/self/stat` (0 where
/// there is none).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name (in parentheses, which may hold spaces): utime and stime are the
    // 12th and 13th fields, in clock ticks (100 a second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
