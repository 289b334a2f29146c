//! Hot-SKU contention: C clients reserving one unit at a time from one stock item, with the
//! service's strategy (one conditional transaction, no read) and with the seed strategy as the
//! baseline (read, check in memory, write `IF version = :read`, retry up to 3 times with backoff).

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use integration_tests::runtime::runtime_over;
use integration_tests::TestTable;
use inventory::domain::{timestamp, Cart, Line, Reservation, StockItem};
use inventory::events::{DetailType, OutboxEvent};
use inventory::store::items::{from_item, order_item, outbox_item, reservation_item, stock_key};
use inventory::store::{RetryPolicy, StockChange};
use inventory::{Error, Store};
use serde::{Deserialize, Serialize};

use crate::stats::{round, Latency};

pub const SKU: &str = "HOT-SKU";
pub const LOCATION: &str = "w1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The service: `Store::reserve`.
    Ours,
    /// The seed strategy, implemented here.
    Baseline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Far more stock than the run can sell: every rejection is spurious.
    Plenty,
    /// Stock for half of the requests: the first half of the demand should be served.
    Scarce,
}

/// One cell of the contention table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    pub strategy: Strategy,
    pub scenario: Scenario,
    pub clients: usize,
    pub initial_stock: i64,
    pub requests: u64,
    pub successes: u64,
    pub rejections: u64,
    /// Rejections after which the item still had a unit available.
    pub spurious_failures: u64,
    /// Units reserved beyond the stock (successes over the initial stock, or a stock item whose
    /// `reserved` exceeds `onHand`).
    pub oversells: i64,
    /// Store errors other than a rejection (should be 0).
    pub errors: u64,
    /// DynamoDB attempts beyond the first, per successful reservation.
    pub retries_per_success: f64,
    pub elapsed_s: f64,
    /// Successes over the time from the start to the last success (in the scarce scenario,
    /// the rejections after the sell-out do not dilute it).
    pub successes_per_s: f64,
    pub latency: Latency,
    /// After the run: `reserved` = successes, reservation items = successes, `available` =
    /// `onHand - reserved` >= 0.
    pub consistent: bool,
    /// For the scarce scenario: every unit was sold.
    pub sold_out: bool,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub clients: Vec<usize>,
    /// How long each plenty-stock cell runs.
    pub plenty_duration: Duration,
    /// Scarce cells: total requests for `clients` (stock is half of it).
    pub scarce_requests: fn(usize) -> usize,
}

enum Outcome {
    Reserved {
        retries: u32,
    },
    /// The strategy said no: out of stock (ours, or the baseline's read), or retries spent.
    Rejected {
        retries: u32,
    },
    Error(String),
}

/// The seed strategy: read the item, check in memory, write the same transaction as ours but
/// keyed on the version read (`IF version = :read`), retry up to 3 times with backoff.
async fn baseline_reserve(store: &Store, order_id: &str, policy: &RetryPolicy) -> Outcome {
    let client = store.client();
    const RETRIES: u32 = 3;
    for attempt in 0..=RETRIES {
        if attempt > 0 {
            tokio::time::sleep(policy.delay(attempt)).await;
        }
        let read = client
            .get_item()
            .table_name(store.table())
            .set_key(Some(stock_key(SKU, LOCATION)))
            .consistent_read(true)
            .send()
            .await;
        let stock: StockItem = match read.map(|r| r.item) {
            Ok(Some(item)) => match from_item(item) {
                Ok(stock) => stock,
                Err(e) => return Outcome::Error(e.to_string()),
            },
            Ok(None) => return Outcome::Error("stock item missing".into()),
            Err(e) => return Outcome::Error(format!("{e:?}")),
        };
        if stock.available < 1 {
            return Outcome::Rejected { retries: attempt };
        }
        let now = store.now();
        let line = Line::new(SKU.into(), LOCATION.into(), 1);
        let reservation = Reservation::new(order_id.to_owned(), vec![line], 900, now);
        let event = OutboxEvent::new(
            DetailType::ReservationCreated,
            serde_json::to_value(&reservation).expect("reservation json"),
            now,
            None,
        );
        let n = |v: i64| AttributeValue::N(v.to_string());
        let update = Update::builder()
            .table_name(store.table())
            .set_key(Some(stock_key(SKU, LOCATION)))
            .update_expression("SET reserved = :r, available = :a, version = :next, updatedAt = :now")
            .condition_expression("version = :read")
            .expression_attribute_values(":r", n(stock.reserved + 1))
            .expression_attribute_values(":a", n(stock.available - 1))
            .expression_attribute_values(":next", n(stock.version as i64 + 1))
            .expression_attribute_values(":read", n(stock.version as i64))
            .expression_attribute_values(":now", AttributeValue::S(timestamp::format(&now)))
            .build()
            .expect("update");
        let put = |item, condition: &str| {
            let put = Put::builder()
                .table_name(store.table())
                .set_item(Some(item))
                .condition_expression(condition)
                .build()
                .expect("put");
            TransactWriteItem::builder().put(put).build()
        };
        let actions = vec![
            TransactWriteItem::builder().update(update).build(),
            put(reservation_item(&reservation).expect("reservation item"), "attribute_not_exists(pk)"),
            put(
                order_item(
                    order_id,
                    &reservation.reservation_id,
                    &Cart::from(reservation.lines.clone()).key(),
                    inventory::domain::retained_until(
                        reservation.created_at,
                        inventory::domain::DEFAULT_RETENTION_DAYS,
                    ),
                ),
                "attribute_not_exists(pk)",
            ),
            put(outbox_item(&event), "attribute_not_exists(pk)"),
        ];
        match client.transact_write_items().set_transact_items(Some(actions)).send().await {
            Ok(_) => return Outcome::Reserved { retries: attempt },
            Err(e) => match e.as_service_error() {
                // Someone wrote the item since the read (a version conflict): try again.
                Some(TransactWriteItemsError::TransactionCanceledException(_)) => continue,
                _ => return Outcome::Error(format!("{e:?}")),
            },
        }
    }
    Outcome::Rejected { retries: RETRIES }
}

async fn ours_reserve(store: &Store, order_id: &str) -> Outcome {
    let line = Line::new(SKU.into(), LOCATION.into(), 1);
    match store.reserve(order_id, vec![line], 900, &Default::default()).await {
        // Store::reserve retries inside (conflicts, throttling); those are counted from its stats.
        Ok(_) => Outcome::Reserved { retries: 0 },
        Err(Error::InsufficientStock { .. }) | Err(Error::Unavailable { .. }) => {
            Outcome::Rejected { retries: 0 }
        }
        Err(e) => Outcome::Error(e.to_string()),
    }
}

#[derive(Default)]
struct ClientTally {
    requests: u64,
    successes: u64,
    rejections: u64,
    spurious: u64,
    errors: u64,
    retries: u64,
    latencies_ms: Vec<f64>,
    first_error: Option<String>,
    /// When the client's last success came, from the cell's start.
    last_success: Duration,
}

/// Runs both strategies for a while on a throwaway table, so the first measured cell does not
/// pay for DynamoDB Local's JIT warm-up.
pub async fn warm_up(duration: Duration) {
    let plan = Plan { clients: vec![8], plenty_duration: duration, scarce_requests: |c| c };
    for strategy in [Strategy::Ours, Strategy::Baseline] {
        run_cell(strategy, Scenario::Plenty, 8, &plan).await;
    }
}

/// Runs one cell on a fresh table.
pub async fn run_cell(strategy: Strategy, scenario: Scenario, clients: usize, plan: &Plan) -> Cell {
    let t = TestTable::new().await;
    // The service's own retry policy (the tests' table uses a longer one).
    let store = Arc::new(Store::new(t.store.client().clone(), t.store.table()));
    let (initial_stock, quota) = match scenario {
        Scenario::Plenty => (inventory::domain::MAX_ON_HAND, None),
        Scenario::Scarce => {
            let total = (plan.scarce_requests)(clients);
            ((total / 2) as i64, Some(total.div_ceil(clients)))
        }
    };
    store
        .write_stock(
            SKU,
            LOCATION,
            StockChange::Set { on_hand: initial_stock },
            None,
            None,
            &Default::default(),
        )
        .await
        .expect("initial stock");
    // Ours reserves as the reserve function does locally: its own store, behind its IAM gate
    // (the counters are the same). The baseline is the seeds' strategy, no function of ours.
    let store = match strategy {
        Strategy::Ours => runtime_over(&store).store("reserve").expect("the reserve function"),
        Strategy::Baseline => store,
    };
    let retries_before = store.stats().retries();
    let policy = RetryPolicy::default();
    let started = Instant::now();
    let stop_at = started + plan.plenty_duration;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let store = store.clone();
            let policy = policy.clone();
            tokio::spawn(async move {
                let mut tally = ClientTally::default();
                let mut i = 0usize;
                loop {
                    match quota {
                        Some(q) if i >= q => break,
                        None if Instant::now() >= stop_at => break,
                        _ => {}
                    }
                    let order_id = format!("o-{c}-{i}");
                    i += 1;
                    let t0 = Instant::now();
                    let outcome = match strategy {
                        Strategy::Ours => ours_reserve(&store, &order_id).await,
                        Strategy::Baseline => baseline_reserve(&store, &order_id, &policy).await,
                    };
                    tally.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
                    tally.requests += 1;
                    match outcome {
                        Outcome::Reserved { retries } => {
                            tally.successes += 1;
                            tally.last_success = started.elapsed();
                            tally.retries += u64::from(retries);
                        }
                        Outcome::Rejected { retries } => {
                            tally.rejections += 1;
                            tally.retries += u64::from(retries);
                            // Stock only goes down in this run: a unit left now was there at the
                            // rejection too.
                            let left = store.get_stock(SKU, LOCATION).await.map(|s| s.available);
                            if left.is_ok_and(|a| a >= 1) {
                                tally.spurious += 1;
                            }
                        }
                        Outcome::Error(e) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert(e);
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = ClientTally::default();
    for task in tasks {
        let tally = task.await.expect("client task");
        total.requests += tally.requests;
        total.successes += tally.successes;
        total.rejections += tally.rejections;
        total.spurious += tally.spurious;
        total.errors += tally.errors;
        total.retries += tally.retries;
        total.latencies_ms.extend(tally.latencies_ms);
        total.last_success = total.last_success.max(tally.last_success);
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(e) = &total.first_error {
        eprintln!("  {strategy:?}/{scenario:?}/C={clients}: {} errors, first: {e}", total.errors);
    }
    let retries = match strategy {
        Strategy::Ours => store.stats().retries() - retries_before,
        Strategy::Baseline => total.retries,
    };
    let stock = store.get_stock(SKU, LOCATION).await.expect("final stock");
    let reservations = t.count_items("RES#").await as u64;
    let over_initial = total.successes as i64 - initial_stock;
    let over_on_hand = stock.reserved - stock.on_hand;
    let consistent = stock.reserved as u64 == total.successes
        && reservations == total.successes
        && stock.available == stock.on_hand - stock.reserved
        && stock.available >= 0;
    Cell {
        strategy,
        scenario,
        clients,
        initial_stock,
        requests: total.requests,
        successes: total.successes,
        rejections: total.rejections,
        spurious_failures: total.spurious,
        oversells: over_initial.max(over_on_hand).max(0),
        errors: total.errors,
        retries_per_success: round(retries as f64 / total.successes.max(1) as f64),
        elapsed_s: round(elapsed),
        successes_per_s: round(total.successes as f64 / total.last_success.as_secs_f64().max(1e-3)),
        latency: Latency::of(total.latencies_ms),
        consistent,
        sold_out: stock.available == 0,
    }
}
