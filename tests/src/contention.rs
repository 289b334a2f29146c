//! A model of real DynamoDB's contention, at the SDK's HTTP client, for what DynamoDB Local cannot
//! show (it runs transactions one at a time, so they never meet, and it has no per-item limit):
//!
//! - **Transaction conflicts.** A `TransactWriteItems` that is sent on holds every item it
//!   touches (Put, Update, Delete, ConditionCheck) for `conflict_window` from the moment it is
//!   sent, and its answer reaches the caller no sooner than that (the window stands in for real
//!   DynamoDB's transaction latency, which DynamoDB Local does not have). The hold does not last
//!   while DynamoDB Local queues the transaction behind others: it runs transactions one at a
//!   time, on every item alike, which real DynamoDB does not, so that wait is the emulator's, not
//!   the item's. (The window starts when the client sends, as on AWS; what the emulator's queue
//!   does change is that clients waiting in it send less often than they would on AWS, so at
//!   high C the offered load, and with it the conflicts, are lower than there: BENCHMARKS.md
//!   section 5 says so.) Another transaction that touches a held item meanwhile is cancelled
//!   (`TransactionCanceledException`, reason `TransactionConflict` at that item, `None` at the
//!   others) at once and is not sent on. A single-item write (`PutItem`, `UpdateItem`, `DeleteItem`) on a
//!   held item gets `TransactionConflictException`. Reads are not affected.
//! - **A per-item write budget.** Each item has `item_write_units_per_second` write units a
//!   second (a token bucket with one second of burst); a transaction spends
//!   `transactional_units_per_item` on each item it touches, a single write 1. A request that
//!   finds an item without the units is throttled: a transaction is cancelled with reason
//!   `ThrottlingError` at that item, a single write gets `ThrottlingException`. Nothing is spent
//!   on a request that is refused.
//!
//! Items are told apart by table, `pk` and `sk`. Every decision is counted ([`ModelCounts`]), and
//! [`ContentionParams`] prints itself, so every result states the model it was measured under.

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

/// The model's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentionParams {
    /// How long a transaction takes at least, holding its items, from the moment it is sent.
    #[serde(serialize_with = "as_millis")]
    pub conflict_window: Duration,
    /// Write units one item takes per second (DynamoDB's per-partition limit is 1,000).
    pub item_write_units_per_second: f64,
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
            conflict_window: Duration::from_millis(20),
            item_write_units_per_second: 1000.0,
            transactional_units_per_item: 2.0,
            emulator_concurrency: 8,
        }
    }
}

impl fmt::Display for ContentionParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conflict window {} ms, {} write units/s per item, {} units per item per transaction, \
             {} requests at once into DynamoDB Local (first come first served)",
            self.conflict_window.as_millis(),
            self.item_write_units_per_second,
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
    /// Requests (transactions or single writes) throttled on an item's budget.
    pub throttles: u64,
    /// Single writes refused with `TransactionConflictException`.
    pub write_conflicts: u64,
}

#[derive(Debug)]
struct Bucket {
    units: f64,
    at: Instant,
}

#[derive(Debug, Default)]
struct ModelState {
    /// Item -> the transaction (its number) holding it.
    held: HashMap<String, u64>,
    budgets: HashMap<String, Bucket>,
    transactions: AtomicU64,
    conflicts: AtomicU64,
    throttles: AtomicU64,
    write_conflicts: AtomicU64,
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
            write_conflicts: state.write_conflicts.load(Ordering::Relaxed),
        }
    }

    pub fn reset(&self) {
        let mut state = self.state.lock().unwrap();
        *state = ModelState::default();
    }

    /// Decides one request: send it on (`Ok`, with the number of the transaction that now holds
    /// its items, if it is one), or the answer to give instead (`Err`).
    fn decide(&self, operation: &str, body: &Value) -> Result<Option<u64>, Box<SmithyResponse<SdkBody>>> {
        let transaction = operation == "TransactWriteItems";
        let items = match operation {
            "TransactWriteItems" => transaction_items(body),
            "PutItem" | "UpdateItem" | "DeleteItem" => single_item(body).into_iter().collect(),
            _ => return Ok(None),
        };
        let now = Instant::now();
        let mut state = self.state.lock().unwrap();
        if let Some(i) = items.iter().position(|item| state.held.contains_key(item)) {
            return Err(Box::new(if transaction {
                state.conflicts.fetch_add(1, Ordering::Relaxed);
                cancelled(items.len(), i, "TransactionConflict", "Transaction is ongoing for the item")
            } else {
                state.write_conflicts.fetch_add(1, Ordering::Relaxed);
                error("TransactionConflictException", "Transaction is ongoing for the item")
            }));
        }
        let cost = if transaction { self.params.transactional_units_per_item } else { 1.0 };
        let rate = self.params.item_write_units_per_second;
        for (i, item) in items.iter().enumerate() {
            let bucket = state.budgets.entry(item.clone()).or_insert(Bucket { units: rate, at: now });
            bucket.units = (bucket.units + rate * now.duration_since(bucket.at).as_secs_f64()).min(rate);
            bucket.at = now;
            if bucket.units < cost {
                state.throttles.fetch_add(1, Ordering::Relaxed);
                return Err(Box::new(if transaction {
                    cancelled(
                        items.len(),
                        i,
                        "ThrottlingError",
                        "Throughput exceeds the current capacity for the item",
                    )
                } else {
                    error("ThrottlingException", "Throughput exceeds the current capacity for the item")
                }));
            }
        }
        for item in &items {
            if let Some(bucket) = state.budgets.get_mut(item) {
                bucket.units -= cost;
            }
        }
        if !transaction {
            return Ok(None);
        }
        let number = state.transactions.fetch_add(1, Ordering::Relaxed) + 1;
        for item in items {
            state.held.insert(item, number);
        }
        Ok(Some(number))
    }

    /// The transaction `number` is done: its items are free.
    fn release(&self, number: u64) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).held.retain(|_, holder| *holder != number);
    }
}

/// Transaction `.1`'s hold on its items, released when dropped.
struct Held(ContentionModel, u64);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// The items a `TransactWriteItems` body touches, in order.
fn transaction_items(body: &Value) -> Vec<String> {
    body["TransactItems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|action| {
            let (_, op) = action.as_object()?.iter().next()?;
            let key = if op["Item"].is_object() { &op["Item"] } else { &op["Key"] };
            Some(item_id(op["TableName"].as_str()?, key))
        })
        .collect()
}

fn single_item(body: &Value) -> Option<String> {
    let key = if body["Item"].is_object() { &body["Item"] } else { &body["Key"] };
    Some(item_id(body["TableName"].as_str()?, key))
}

fn item_id(table: &str, key: &Value) -> String {
    format!("{table}|{}|{}", key["pk"], key["sk"])
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
            Ok(Some(number)) => {
                let done_at = Instant::now() + self.model.params.conflict_window;
                let held = Held(self.model.clone(), number);
                HttpConnectorFuture::new(async move {
                    // The items are free once the window has passed (or the call is dropped);
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

    #[test]
    fn a_transaction_on_a_held_item_conflicts_at_that_item_and_others_pass() {
        let model = ContentionModel::new(ContentionParams::default());
        let first = json!({"TransactItems": [update("t", "A"), update("t", "B")]});
        let holder =
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
        assert_eq!(
            model.counts(),
            ModelCounts { transactions: 2, conflicts: 1, throttles: 0, write_conflicts: 1 }
        );
        // Once the first has answered, its items are free.
        model.release(holder);
        assert!(model.decide("TransactWriteItems", &second).is_ok());
    }

    #[test]
    fn an_item_gets_its_write_units_per_second_and_no_more() {
        let params = ContentionParams {
            conflict_window: Duration::ZERO,
            item_write_units_per_second: 10.0,
            transactional_units_per_item: 2.0,
            emulator_concurrency: 8,
        };
        let model = ContentionModel::new(params);
        let tx = json!({"TransactItems": [update("t", "A")]});
        let passed = (0..8)
            .filter(|_| match model.decide("TransactWriteItems", &tx) {
                Ok(Some(number)) => {
                    model.release(number);
                    true
                }
                _ => false,
            })
            .count();
        assert_eq!(passed, 5, "10 units at 2 a transaction");
        assert_eq!(model.counts().throttles, 3);
    }
}
