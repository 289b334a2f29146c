//! A model of real DynamoDB's contention, at the SDK's HTTP client, for what DynamoDB Local cannot
//! show (it runs transactions one at a time, so they never meet, and it has no throughput limit):
//!
//! - **Transaction conflicts, with a latency that has a tail.** A `TransactWriteItems` that is
//!   sent on holds every item it touches (Put, Update, Delete, ConditionCheck) for a hold time
//!   drawn per transaction from a log-normal distribution (by default p50 25 ms, p99 90 ms: the
//!   published in-region measurements of a 5-item TransactWriteItems, about 25 ms p50 and 93 ms
//!   p99), from the moment it is sent, and its answer reaches the caller no sooner than that (the
//!   hold time stands in for real DynamoDB's transaction latency, which DynamoDB Local does not
//!   have). The hold does not last while DynamoDB Local queues the transaction behind others: it
//!   runs transactions one at a time, on every item alike, which real DynamoDB does not, so that
//!   wait is the emulator's, not the item's. (The hold starts when the client sends, as on AWS;
//!   what the emulator's queue does change is that clients waiting in it send less often than
//!   they would on AWS, so at high C the offered load, and with it the conflicts, are lower than
//!   there: BENCHMARKS.md section 5 says so.) Another transaction that touches a held item
//!   meanwhile is cancelled (`TransactionCanceledException`, reason `TransactionConflict` at that
//!   item, `None` at the others) at once and is not sent on. A single-item write (`PutItem`,
//!   `UpdateItem`, `DeleteItem`) on a held item gets `TransactionConflictException`; a
//!   `TransactGetItems` that reads one is cancelled with `TransactionConflict` too. Other reads
//!   are not affected.
//! - **Throughput per partition, as AWS documents it.** Each partition key (the items sharing
//!   it share the partition) has `partition_write_units_per_second` write units and
//!   `partition_read_units_per_second` read units a second (token buckets with one second of
//!   burst; AWS: 1,000 and 3,000). A transaction spends `transactional_units_per_item` write units
//!   on each item it touches, a single write 1; a strongly consistent GetItem or Query 1 read unit
//!   (items up to 4 KB; a Query is charged 1 whatever it returns), BatchGetItem 1 per key,
//!   TransactGetItems 2 per item, each on its item's partition. A request that finds a partition
//!   without the units is throttled: a transaction is cancelled with reason `ThrottlingError` at
//!   that item (as AWS reports throttling inside a transaction), anything else gets
//!   `ThrottlingException` (a BatchGetItem as a whole: AWS would return the throttled keys
//!   unprocessed, which the store reads again the same way). Nothing is spent on a request that
//!   is refused.
//!
//! Items are told apart by table, `pk` and `sk`, partitions by table and `pk`. Every decision is
//! counted ([`ModelCounts`]), and [`ContentionParams`] prints itself, so every result states the
//! model it was measured under.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response as SmithyResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use serde::Serialize;
use serde_json::{json, Value};

/// The z-score of the 99th percentile of the standard normal distribution.
const Z_99: f64 = 2.326_347_874;

/// The model's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentionParams {
    /// The median of a transaction's hold time (log-normal), from the moment it is sent.
    #[serde(serialize_with = "as_millis")]
    pub hold_p50: Duration,
    /// Its 99th percentile (equal to the median: every transaction holds exactly that long).
    #[serde(serialize_with = "as_millis")]
    pub hold_p99: Duration,
    /// Write units one partition takes per second (AWS: 1,000).
    pub partition_write_units_per_second: f64,
    /// Read units one partition takes per second (AWS: 3,000).
    pub partition_read_units_per_second: f64,
    /// Write units a transaction spends on each item (2 for items up to 1 KB).
    pub transactional_units_per_item: f64,
    /// Requests let into DynamoDB Local at once; the others wait their turn, first come first
    /// served. DynamoDB Local runs one transaction at a time and serves the requests waiting for
    /// it in no fair order, so with hundreds of clients a few would wait for seconds while the
    /// rest go by: a queue of the emulator's that real DynamoDB (which runs transactions on
    /// different items side by side) does not have.
    pub emulator_concurrency: usize,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

impl Default for ContentionParams {
    fn default() -> Self {
        ContentionParams {
            hold_p50: Duration::from_millis(25),
            hold_p99: Duration::from_millis(90),
            partition_write_units_per_second: 1000.0,
            partition_read_units_per_second: 3000.0,
            transactional_units_per_item: 2.0,
            emulator_concurrency: 8,
        }
    }
}

impl ContentionParams {
    /// The log-normal's `(mu, sigma)`, of the hold time in seconds.
    pub fn hold_distribution(&self) -> (f64, f64) {
        let p50 = self.hold_p50.as_secs_f64().max(1e-6);
        let p99 = self.hold_p99.as_secs_f64().max(p50);
        (p50.ln(), (p99 / p50).ln() / Z_99)
    }

    /// One transaction's hold time, drawn from the distribution.
    pub fn hold_time(&self, rng: &mut fastrand::Rng) -> Duration {
        let (mu, sigma) = self.hold_distribution();
        // Box-Muller: a standard normal from two uniforms.
        let (u1, u2) = (rng.f64().max(f64::MIN_POSITIVE), rng.f64());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        Duration::from_secs_f64((mu + sigma * z).exp())
    }
}

impl fmt::Display for ContentionParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mu, sigma) = self.hold_distribution();
        write!(
            f,
            "hold time log-normal p50 {} ms, p99 {} ms (mu {:.3}, sigma {:.3} of ln s), {} write and {} read \
             units/s per partition, {} write units per item per transaction, {} requests at once into \
             DynamoDB Local (first come first served)",
            self.hold_p50.as_millis(),
            self.hold_p99.as_millis(),
            mu,
            sigma,
            self.partition_write_units_per_second,
            self.partition_read_units_per_second,
            self.transactional_units_per_item,
            self.emulator_concurrency
        )
    }
}

/// What the model decided, since it was made (or [`ContentionModel::reset`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelCounts {
    /// Transactions sent on to DynamoDB.
    pub transactions: u64,
    /// Transactions cancelled with `TransactionConflict`.
    pub conflicts: u64,
    /// Writes (transactions or single writes) throttled on a partition's write units.
    pub throttles: u64,
    /// Reads throttled on a partition's read units.
    #[serde(default)]
    pub read_throttles: u64,
    /// Single writes refused with `TransactionConflictException`, and TransactGetItems cancelled
    /// on an item a transaction holds.
    pub write_conflicts: u64,
    /// Transactions answered, and how late after their hold time in all (µs): the client's timer
    /// firing late on a loaded machine (the items are free on time all the same).
    #[serde(default)]
    pub releases: u64,
    #[serde(default)]
    pub release_lateness_us: u64,
}

impl ModelCounts {
    /// How late, on average, a transaction was answered after its hold time (ms).
    pub fn mean_release_lateness_ms(&self) -> f64 {
        self.release_lateness_us as f64 / 1000.0 / self.releases.max(1) as f64
    }
}

#[derive(Debug)]
struct Bucket {
    units: f64,
    at: Instant,
}

#[derive(Debug)]
struct ModelState {
    /// Item -> the transaction (its number) holding it, and until when: the item is free from
    /// then, whenever the client's timer that answers the transaction fires (late, on a loaded
    /// machine).
    held: HashMap<String, (u64, Instant)>,
    /// Partition -> its write units, and its read units.
    writes: HashMap<String, Bucket>,
    reads: HashMap<String, Bucket>,
    rng: fastrand::Rng,
    transactions: AtomicU64,
    conflicts: AtomicU64,
    throttles: AtomicU64,
    read_throttles: AtomicU64,
    write_conflicts: AtomicU64,
    releases: u64,
    release_lateness_us: u64,
}

impl Default for ModelState {
    fn default() -> Self {
        ModelState {
            held: HashMap::new(),
            writes: HashMap::new(),
            reads: HashMap::new(),
            rng: fastrand::Rng::new(),
            transactions: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            throttles: AtomicU64::new(0),
            read_throttles: AtomicU64::new(0),
            write_conflicts: AtomicU64::new(0),
            releases: 0,
            release_lateness_us: 0,
        }
    }
}

/// Takes `cost` units (per partition) from `buckets` refilled at `rate` a second, all or none:
/// `Err(partition)` names one that has too few.
fn spend(
    buckets: &mut HashMap<String, Bucket>,
    cost: &[(String, f64)],
    rate: f64,
    now: Instant,
) -> Result<(), String> {
    let mut per_partition: Vec<(&String, f64)> = Vec::new();
    for (partition, units) in cost {
        match per_partition.iter_mut().find(|(p, _)| *p == partition) {
            Some((_, total)) => *total += units,
            None => per_partition.push((partition, *units)),
        }
    }
    for (partition, units) in &per_partition {
        let bucket = buckets.entry((*partition).clone()).or_insert(Bucket { units: rate, at: now });
        bucket.units = (bucket.units + rate * now.duration_since(bucket.at).as_secs_f64()).min(rate);
        bucket.at = now;
        if bucket.units < *units {
            return Err((*partition).clone());
        }
    }
    for (partition, units) in per_partition {
        if let Some(bucket) = buckets.get_mut(partition) {
            bucket.units -= units;
        }
    }
    Ok(())
}

/// One item a request touches: the item, and its partition.
#[derive(Debug, Clone)]
struct Touched {
    item: String,
    partition: String,
}

/// What a request is, to the model.
enum Request {
    Transaction(Vec<Touched>),
    Write(Touched),
    /// Reads, with the read units each item costs; `transactional`: a TransactGetItems.
    Read {
        items: Vec<Touched>,
        units: f64,
        transactional: bool,
    },
    Other,
}

/// An SDK HTTP client applying the model, in front of another one (the real client, or a
/// [`crate::FaultInjector`]).
#[derive(Debug, Clone)]
pub struct ContentionModel {
    params: ContentionParams,
    inner: SharedHttpClient,
    state: Arc<Mutex<ModelState>>,
    /// The turns into DynamoDB Local (`emulator_concurrency`).
    turns: Arc<tokio::sync::Semaphore>,
}

impl ContentionModel {
    pub fn new(params: ContentionParams) -> Self {
        Self::in_front_of(params, SharedHttpClient::new(aws_smithy_http_client::Builder::new().build_http()))
    }

    pub fn in_front_of(params: ContentionParams, inner: SharedHttpClient) -> Self {
        let turns = Arc::new(tokio::sync::Semaphore::new(params.emulator_concurrency.max(1)));
        ContentionModel { params, inner, state: Arc::default(), turns }
    }

    pub fn params(&self) -> ContentionParams {
        self.params
    }

    pub fn counts(&self) -> ModelCounts {
        let state = self.state.lock().unwrap();
        ModelCounts {
            transactions: state.transactions.load(Ordering::Relaxed),
            conflicts: state.conflicts.load(Ordering::Relaxed),
            throttles: state.throttles.load(Ordering::Relaxed),
            read_throttles: state.read_throttles.load(Ordering::Relaxed),
            write_conflicts: state.write_conflicts.load(Ordering::Relaxed),
            releases: state.releases,
            release_lateness_us: state.release_lateness_us,
        }
    }

    pub fn reset(&self) {
        let mut state = self.state.lock().unwrap();
        *state = ModelState::default();
    }

    /// Decides one request: send it on (`Ok`, with the number of the transaction that now holds
    /// its items and for how long, if it is one), or the answer to give instead (`Err`).
    /// Public for tests that drive the model with requests of their own.
    pub fn decide(
        &self,
        operation: &str,
        body: &Value,
    ) -> Result<Option<(u64, Duration)>, Box<SmithyResponse<SdkBody>>> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        let held_at = |state: &ModelState, items: &[Touched]| {
            items.iter().position(|t| state.held.get(&t.item).is_some_and(|(_, until)| *until > now))
        };
        match request_of(operation, body) {
            Request::Other => Ok(None),
            Request::Write(touched) => {
                if state.held.get(&touched.item).is_some_and(|(_, until)| *until > now) {
                    state.write_conflicts.fetch_add(1, Ordering::Relaxed);
                    return Err(Box::new(error(
                        "TransactionConflictException",
                        "Transaction is ongoing for the item",
                    )));
                }
                let rate = self.params.partition_write_units_per_second;
                if spend(&mut state.writes, &[(touched.partition, 1.0)], rate, now).is_err() {
                    state.throttles.fetch_add(1, Ordering::Relaxed);
                    return Err(Box::new(throttled()));
                }
                Ok(None)
            }
            Request::Read { items, units, transactional } => {
                if transactional {
                    if let Some(i) = held_at(&state, &items) {
                        state.write_conflicts.fetch_add(1, Ordering::Relaxed);
                        return Err(Box::new(cancelled(
                            items.len(),
                            i,
                            "TransactionConflict",
                            "Transaction is ongoing for the item",
                        )));
                    }
                }
                let cost: Vec<(String, f64)> = items.iter().map(|t| (t.partition.clone(), units)).collect();
                let rate = self.params.partition_read_units_per_second;
                if let Err(partition) = spend(&mut state.reads, &cost, rate, now) {
                    state.read_throttles.fetch_add(1, Ordering::Relaxed);
                    let at = items.iter().position(|t| t.partition == partition).unwrap_or(0);
                    return Err(Box::new(if transactional {
                        cancelled(
                            items.len(),
                            at,
                            "ThrottlingError",
                            "Throughput exceeds the current capacity of your table or index",
                        )
                    } else {
                        throttled()
                    }));
                }
                Ok(None)
            }
            Request::Transaction(items) => {
                if let Some(i) = held_at(&state, &items) {
                    state.conflicts.fetch_add(1, Ordering::Relaxed);
                    return Err(Box::new(cancelled(
                        items.len(),
                        i,
                        "TransactionConflict",
                        "Transaction is ongoing for the item",
                    )));
                }
                let per_item = self.params.transactional_units_per_item;
                let cost: Vec<(String, f64)> =
                    items.iter().map(|t| (t.partition.clone(), per_item)).collect();
                let rate = self.params.partition_write_units_per_second;
                if let Err(partition) = spend(&mut state.writes, &cost, rate, now) {
                    state.throttles.fetch_add(1, Ordering::Relaxed);
                    let at = items.iter().position(|t| t.partition == partition).unwrap_or(0);
                    return Err(Box::new(cancelled(
                        items.len(),
                        at,
                        "ThrottlingError",
                        "Throughput exceeds the current capacity of your table or index",
                    )));
                }
                let number = state.transactions.fetch_add(1, Ordering::Relaxed) + 1;
                let hold = self.params.hold_time(&mut state.rng);
                for touched in items {
                    state.held.insert(touched.item, (number, now + hold));
                }
                Ok(Some((number, hold)))
            }
        }
    }

    /// The transaction `number` is done: its items are free.
    pub fn release(&self, number: u64) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).held.retain(|_, (holder, _)| *holder != number);
    }

    /// The transaction `number`, due to be done at `due`, is done now.
    fn release_late(&self, number: u64, due: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.held.retain(|_, (holder, _)| *holder != number);
        state.releases += 1;
        state.release_lateness_us += Instant::now().saturating_duration_since(due).as_micros() as u64;
    }
}

/// Transaction `.1`'s hold on its items until `.2`, released when dropped.
struct Held(ContentionModel, u64, Instant);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.release_late(self.1, self.2);
    }
}

fn request_of(operation: &str, body: &Value) -> Request {
    match operation {
        "TransactWriteItems" => Request::Transaction(transaction_items(body)),
        "PutItem" | "UpdateItem" | "DeleteItem" => single_item(body).map_or(Request::Other, Request::Write),
        "GetItem" => single_item(body).map_or(Request::Other, |t| Request::Read {
            items: vec![t],
            units: 1.0,
            transactional: false,
        }),
        // A Query of the store's: `pk = :pk` (a Query of an index is not charged).
        "Query" => match (body["TableName"].as_str(), body["ExpressionAttributeValues"][":pk"].as_object()) {
            (Some(table), Some(pk)) if body["IndexName"].is_null() => {
                let partition = format!("{table}|{}", Value::Object(pk.clone()));
                Request::Read {
                    items: vec![Touched { item: partition.clone(), partition }],
                    units: 1.0,
                    transactional: false,
                }
            }
            _ => Request::Other,
        },
        "BatchGetItem" => {
            let items = body["RequestItems"]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(table, request)| {
                    request["Keys"].as_array().into_iter().flatten().map(move |key| touched(table, key))
                })
                .collect();
            Request::Read { items, units: 1.0, transactional: false }
        }
        "TransactGetItems" => {
            Request::Read { items: transaction_items(body), units: 2.0, transactional: true }
        }
        _ => Request::Other,
    }
}

/// The items a `TransactWriteItems` or `TransactGetItems` body touches, in order.
fn transaction_items(body: &Value) -> Vec<Touched> {
    body["TransactItems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|action| {
            let (_, op) = action.as_object()?.iter().next()?;
            let key = if op["Item"].is_object() { &op["Item"] } else { &op["Key"] };
            Some(touched(op["TableName"].as_str()?, key))
        })
        .collect()
}

fn single_item(body: &Value) -> Option<Touched> {
    let key = if body["Item"].is_object() { &body["Item"] } else { &body["Key"] };
    Some(touched(body["TableName"].as_str()?, key))
}

fn touched(table: &str, key: &Value) -> Touched {
    Touched {
        item: format!("{table}|{}|{}", key["pk"], key["sk"]),
        partition: format!("{table}|{}", key["pk"]),
    }
}

fn response(body: Value) -> SmithyResponse<SdkBody> {
    let mut response =
        SmithyResponse::new(StatusCode::try_from(400).expect("status"), SdkBody::from(body.to_string()));
    response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
    response
}

fn cancelled(items: usize, at: usize, code: &str, message: &str) -> SmithyResponse<SdkBody> {
    let reasons: Vec<Value> = (0..items)
        .map(|i| if i == at { json!({"Code": code, "Message": message}) } else { json!({"Code": "None"}) })
        .collect();
    response(json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": format!("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
            reasons.iter().map(|r| r["Code"].as_str().unwrap_or("None")).collect::<Vec<_>>().join(", ")),
        "CancellationReasons": reasons,
    }))
}

fn throttled() -> SmithyResponse<SdkBody> {
    error("ThrottlingException", "Throughput exceeds the current capacity of your table or index")
}

fn error(code: &str, message: &str) -> SmithyResponse<SdkBody> {
    response(json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": message}))
}

impl HttpClient for ContentionModel {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ModelConnector {
            inner: self.inner.http_connector(settings, components),
            model: self.clone(),
        })
    }
}

#[derive(Debug)]
struct ModelConnector {
    inner: SharedHttpConnector,
    model: ContentionModel,
}

impl HttpConnector for ModelConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = crate::faults::operation_of(&request);
        let body = request.body().bytes().and_then(|b| serde_json::from_slice::<Value>(b).ok());
        let decision = body.map_or(Ok(None), |body| self.model.decide(&operation, &body));
        let (inner, turns) = (self.inner.clone(), self.model.turns.clone());
        // The request, sent on when its turn into DynamoDB Local comes.
        let sent = async move {
            let _turn = turns.acquire_owned().await.expect("never closed");
            inner.call(request).await
        };
        match decision {
            Err(answer) => HttpConnectorFuture::ready(Ok(*answer)),
            Ok(None) => HttpConnectorFuture::new(sent),
            Ok(Some((number, hold))) => {
                let done_at = Instant::now() + hold;
                let held = Held(self.model.clone(), number, done_at);
                HttpConnectorFuture::new(async move {
                    // The items are free once the hold time has passed (or the call is dropped);
                    // the answer comes when DynamoDB Local has given it, and not before then.
                    let free = async move {
                        tokio::time::sleep_until(done_at.into()).await;
                        drop(held);
                    };
                    let (answer, ()) = tokio::join!(sent, free);
                    answer
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(table: &str, pk: &str) -> Value {
        json!({"Update": {"TableName": table, "Key": {"pk": {"S": pk}, "sk": {"S": "X"}}}})
    }

    fn body(answer: Box<SmithyResponse<SdkBody>>) -> Value {
        serde_json::from_slice(answer.body().bytes().unwrap()).unwrap()
    }

    fn with_budget(write_units: f64, read_units: f64) -> ContentionModel {
        ContentionModel::new(ContentionParams {
            partition_write_units_per_second: write_units,
            partition_read_units_per_second: read_units,
            ..ContentionParams::default()
        })
    }

    #[test]
    fn a_transaction_on_a_held_item_conflicts_at_that_item_and_others_pass() {
        let model = ContentionModel::new(ContentionParams::default());
        let first = json!({"TransactItems": [update("t", "A"), update("t", "B")]});
        let (holder, _) =
            model.decide("TransactWriteItems", &first).ok().flatten().expect("sent on, holding A and B");
        let second = json!({"TransactItems": [update("t", "C"), update("t", "B")]});
        let refused = body(model.decide("TransactWriteItems", &second).expect_err("cancelled"));
        assert_eq!(refused["CancellationReasons"][0]["Code"], "None");
        assert_eq!(refused["CancellationReasons"][1]["Code"], "TransactionConflict");
        // Another table's item of the same key passes (and holds it).
        assert!(model.decide("TransactWriteItems", &json!({"TransactItems": [update("u", "A")]})).is_ok());
        let write = json!({"TableName": "t", "Key": {"pk": {"S": "A"}, "sk": {"S": "X"}}});
        let refused = body(model.decide("UpdateItem", &write).expect_err("a write on a held item"));
        assert!(refused["__type"].as_str().unwrap().ends_with("TransactionConflictException"));
        assert!(matches!(model.decide("GetItem", &write), Ok(None)), "reads pass");
        let snapshot = json!({"TransactItems": [{"Get": {"TableName": "t", "Key": {"pk": {"S": "A"}, "sk": {"S": "X"}}}}]});
        let refused =
            body(model.decide("TransactGetItems", &snapshot).expect_err("a snapshot of a held item"));
        assert_eq!(refused["CancellationReasons"][0]["Code"], "TransactionConflict");
        assert_eq!(
            model.counts(),
            ModelCounts { transactions: 2, conflicts: 1, write_conflicts: 2, ..ModelCounts::default() }
        );
        // Once the first has answered, its items are free.
        model.release(holder);
        assert!(model.decide("TransactWriteItems", &second).is_ok());
    }

    #[test]
    fn a_partition_gets_its_units_per_second_and_items_sharing_it_share_them() {
        let model = with_budget(10.0, 4.0);
        // Items A/X and A/Y share partition A: 2 units each a transaction, 10 a second.
        let both = |sk: &str| json!({"TransactItems": [{"Update": {"TableName": "t", "Key": {"pk": {"S": "A"}, "sk": {"S": sk}}}}]});
        let passed = (0..8)
            .filter(|i| match model.decide("TransactWriteItems", &both(if i % 2 == 0 { "X" } else { "Y" })) {
                Ok(Some((number, _))) => {
                    model.release(number);
                    true
                }
                _ => false,
            })
            .count();
        assert_eq!(passed, 5, "10 units at 2 a transaction, over two items of one partition");
        let refused = body(model.decide("TransactWriteItems", &both("Z")).expect_err("throttled"));
        assert_eq!(refused["CancellationReasons"][0]["Code"], "ThrottlingError", "inside a transaction");
        let write = json!({"TableName": "t", "Key": {"pk": {"S": "A"}, "sk": {"S": "W"}}});
        let refused = body(model.decide("PutItem", &write).expect_err("throttled"));
        assert!(refused["__type"].as_str().unwrap().ends_with("ThrottlingException"), "outside one");
        // Another partition has its own.
        let other = json!({"TransactItems": [update("t", "B")]});
        assert!(model.decide("TransactWriteItems", &other).is_ok());
        // Reads: 4 units; a BatchGetItem of 3 keys of A, then a GetItem, then no more.
        let key = |sk: &str| json!({"pk": {"S": "A"}, "sk": {"S": sk}});
        let batch = json!({"RequestItems": {"t": {"Keys": [key("1"), key("2"), key("3")]}}});
        assert!(model.decide("BatchGetItem", &batch).is_ok());
        assert!(model.decide("GetItem", &json!({"TableName": "t", "Key": key("1")})).is_ok());
        let refused = body(
            model.decide("GetItem", &json!({"TableName": "t", "Key": key("1")})).expect_err("no reads left"),
        );
        assert!(refused["__type"].as_str().unwrap().ends_with("ThrottlingException"));
        assert_eq!((model.counts().throttles, model.counts().read_throttles), (5, 1));
    }

    #[test]
    fn hold_times_follow_the_log_normal_of_their_median_and_99th_percentile() {
        let params = ContentionParams::default();
        let mut rng = fastrand::Rng::with_seed(27);
        let mut ms: Vec<f64> =
            (0..50_000).map(|_| params.hold_time(&mut rng).as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let (p50, p99) = (ms[ms.len() / 2], ms[ms.len() * 99 / 100]);
        assert!((p50 - 25.0).abs() < 1.0, "p50 {p50}");
        assert!((p99 - 90.0).abs() < 5.0, "p99 {p99}");
        let fixed = ContentionParams { hold_p99: params.hold_p50, ..params };
        let spread = fixed.hold_time(&mut rng).as_secs_f64() - params.hold_p50.as_secs_f64();
        assert!(spread.abs() < 1e-9, "p99 = p50: no spread");
        assert!(params.to_string().contains("p50 25 ms, p99 90 ms"), "{params}");
    }
}
