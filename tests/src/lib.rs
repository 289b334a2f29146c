//! Shared helpers of the integration tests: every test gets its own fresh table on the local
//! DynamoDB (so tests run in parallel without seeing each other's data), and faults that DynamoDB
//! Local cannot produce (transaction conflicts, throttling) are injected at the SDK's HTTP client.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response as SmithyResponse, StatusCode};
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, Utc};
use inventory::store::{create_table, RetryPolicy};
use inventory::Store;

pub mod event_stack;
pub mod figures;
pub mod http_client;
pub mod invariants;
pub mod outage;

/// The DynamoDB endpoint of the test stack (set by `make test`).
pub fn dynamodb_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_DYNAMODB is not set: run the integration tests with `make test`, which starts DynamoDB Local")
    })
}

/// `access_key` picks the database when DynamoDB Local runs without `-sharedDb` (as `make test`
/// runs it): a test with its own key has a database of its own.
fn sdk_config(http_client: SharedHttpClient, access_key: &str, endpoint: &str) -> aws_sdk_dynamodb::Config {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access_key, "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .http_client(http_client)
        .build()
}

/// A test's own table and a store over it.
pub struct TestTable {
    pub store: Store,
    pub faults: FaultInjector,
    pub clock: TestClock,
    /// The credentials of this test's own DynamoDB Local database.
    pub access_key: String,
    /// The DynamoDB Local it lives on.
    pub endpoint: String,
}

impl TestTable {
    /// A fresh, uniquely named table with the service's schema, in a database of its own.
    pub async fn new() -> Self {
        Self::at(&dynamodb_endpoint()).await
    }

    /// The same, on the DynamoDB Local at `endpoint` (a test's own, which it may kill).
    pub async fn at(endpoint: &str) -> Self {
        let faults = FaultInjector::new();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let access_key = format!("T{}", &id[..16]);
        let client = aws_sdk_dynamodb::Client::from_conf(sdk_config(
            SharedHttpClient::new(faults.clone()),
            &access_key,
            endpoint,
        ));
        let table = format!("test-{id}");
        create_table(&client, &table).await.expect("create test table");
        let clock = TestClock::default();
        let store = Store::new(client, table).with_clock(clock.as_clock()).with_retry_policy(RetryPolicy {
            deadline: Duration::from_secs(20),
            max_attempts: 50,
            ..Default::default()
        });
        TestTable { store, faults, clock, access_key, endpoint: endpoint.to_owned() }
    }

    /// An SDK configuration with this test's credentials (for other clients of its database,
    /// such as DynamoDB Streams).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                Credentials::new(&self.access_key, "test", None, None, "tests"),
            ))
            .build()
    }

    /// A DynamoDB Streams client for this table's DynamoDB Local.
    pub fn streams_client(&self) -> aws_sdk_dynamodbstreams::Client {
        let config =
            aws_sdk_dynamodbstreams::config::Builder::from(&self.sdk_config()).endpoint_url(&self.endpoint);
        aws_sdk_dynamodbstreams::Client::from_conf(config.build())
    }

    /// Counts every item in the table whose pk starts with `prefix` (a Scan: tests only).
    pub async fn count_items(&self, prefix: &str) -> usize {
        self.scan("begins_with(pk, :p)", &[(":p", prefix)]).await.len()
    }

    /// Every item matching a filter expression with string values (a Scan: tests only).
    pub async fn scan(&self, filter: &str, values: &[(&str, &str)]) -> Vec<inventory::store::Item> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .store
                .client()
                .scan()
                .table_name(self.store.table())
                .filter_expression(filter)
                .consistent_read(true)
                .set_exclusive_start_key(start);
            for (name, value) in values {
                request = request.expression_attribute_values(*name, AttributeValue::S((*value).into()));
            }
            let out = request.send().await.expect("scan");
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return items,
            }
        }
    }
}

/// A clock the test can move forward (offset from real time, in milliseconds).
#[derive(Clone, Default)]
pub struct TestClock {
    offset_ms: Arc<AtomicI64>,
}

impl TestClock {
    pub fn advance(&self, by: Duration) {
        self.offset_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    pub fn as_clock(&self) -> inventory::store::Clock {
        let offset = self.offset_ms.clone();
        Arc::new(move || -> DateTime<Utc> {
            Utc::now() + chrono::Duration::milliseconds(offset.load(Ordering::SeqCst))
        })
    }
}

/// A fault to answer one DynamoDB request with, instead of sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `TransactionCanceledException` whose reasons say `TransactionConflict` (as real DynamoDB
    /// answers when two transactions touch one item at once).
    TransactionConflict,
    /// `ProvisionedThroughputExceededException` (throttling).
    Throttled,
    /// A 500 from the service.
    InternalServerError,
    /// A PutEvents answer in which every entry failed with `ThrottlingException` (EventBridge's
    /// partial failure: HTTP 200, `FailedEntryCount` > 0).
    EntriesThrottled,
}

impl Fault {
    fn response(self, target_items: usize) -> SmithyResponse<SdkBody> {
        let mut content_type = "application/x-amz-json-1.0";
        let (status, body) = match self {
            Fault::EntriesThrottled => {
                content_type = "application/x-amz-json-1.1";
                let entries: Vec<_> = (0..target_items)
                    .map(|_| serde_json::json!({"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}))
                    .collect();
                (200, serde_json::json!({"FailedEntryCount": target_items, "Entries": entries}))
            }
            Fault::TransactionConflict => {
                let reasons: Vec<_> = (0..target_items.max(1))
                    .map(|i| {
                        if i == 0 {
                            serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
                        } else {
                            serde_json::json!({"Code": "None"})
                        }
                    })
                    .collect();
                (
                    400,
                    serde_json::json!({
                        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                        "CancellationReasons": reasons,
                    }),
                )
            }
            Fault::Throttled => (
                400,
                serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table was exceeded",
                }),
            ),
            Fault::InternalServerError => (
                500,
                serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                    "message": "Internal server error",
                }),
            ),
        };
        let mut response = SmithyResponse::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::from(body.to_string()),
        );
        response.headers_mut().insert("content-type", content_type);
        response
    }
}

#[derive(Debug, Default)]
struct FaultState {
    /// Faults to answer the next requests of `operation` with, in order.
    planned: Mutex<VecDeque<(String, Fault)>>,
    /// Requests seen per operation (answered by a fault or sent on).
    seen: Mutex<Vec<String>>,
    injected: AtomicUsize,
}

/// An SDK HTTP client that forwards to the real one, except for planned faults.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    inner: SharedHttpClient,
    state: Arc<FaultState>,
}

impl FaultInjector {
    pub fn new() -> Self {
        FaultInjector { inner: aws_smithy_http_client::Builder::new().build_http(), state: Arc::default() }
    }

    /// Answers the next `count` requests of `operation` (e.g. `"TransactWriteItems"`) with `fault`.
    pub fn plan(&self, operation: &str, fault: Fault, count: usize) {
        let mut planned = self.state.planned.lock().unwrap();
        planned.extend(std::iter::repeat_n((operation.to_owned(), fault), count));
    }

    pub fn clear(&self) {
        self.state.planned.lock().unwrap().clear();
        self.state.seen.lock().unwrap().clear();
        self.state.injected.store(0, Ordering::SeqCst);
    }

    /// How many requests of `operation` the client has seen since the last `clear`.
    pub fn seen(&self, operation: &str) -> usize {
        self.state.seen.lock().unwrap().iter().filter(|op| *op == operation).count()
    }

    pub fn injected(&self) -> usize {
        self.state.injected.load(Ordering::SeqCst)
    }
}

impl Default for FaultInjector {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient for FaultInjector {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultConnector {
            inner: self.inner.http_connector(settings, components),
            state: self.state.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultConnector {
    inner: SharedHttpConnector,
    state: Arc<FaultState>,
}

impl HttpConnector for FaultConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        self.state.seen.lock().unwrap().push(operation.clone());
        let fault = {
            let mut planned = self.state.planned.lock().unwrap();
            match planned.front() {
                Some((op, fault)) if *op == operation => {
                    let fault = *fault;
                    planned.pop_front();
                    Some(fault)
                }
                _ => None,
            }
        };
        match fault {
            Some(fault) => {
                self.state.injected.fetch_add(1, Ordering::SeqCst);
                let items = request
                    .body()
                    .bytes()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                    .and_then(|v| {
                        v["TransactItems"].as_array().or_else(|| v["Entries"].as_array()).map(Vec::len)
                    })
                    .unwrap_or(1);
                HttpConnectorFuture::ready(Ok(fault.response(items)))
            }
            None => self.inner.call(request),
        }
    }
}

/// The checked-in `openapi.json`, and a check of real responses against it (the subset of JSON
/// Schema the description uses: `$ref`, `type`, `required`, `properties`,
/// `additionalProperties: false`, `items`, `enum`, `minimum`/`maximum`, `minItems`/`maxItems`,
/// `format: uuid | date-time`).
pub struct OpenApi {
    spec: serde_json::Value,
}

impl OpenApi {
    pub fn load() -> Self {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json");
        let text = std::fs::read_to_string(&path).expect("openapi.json");
        OpenApi { spec: serde_json::from_str(&text).expect("openapi.json is JSON") }
    }

    /// `(METHOD, path template)` of every operation described.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.spec["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
        ops.sort();
        ops
    }

    /// Checks a response of the operation at `(method, template)` against the description.
    pub fn check_response(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &serde_json::Value,
    ) -> Result<(), String> {
        let op = &self.spec["paths"][template][method.to_lowercase()];
        if op.is_null() {
            return Err(format!("{method} {template} is not described"));
        }
        let response = &op["responses"][status.to_string()];
        if response.is_null() {
            return Err(format!("{method} {template}: status {status} is not described"));
        }
        let schema = &response["content"]["application/json"]["schema"];
        self.check(schema, body, "$")
    }

    fn resolve<'a>(&'a self, schema: &'a serde_json::Value) -> &'a serde_json::Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                &self.spec["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    fn check(&self, schema: &serde_json::Value, value: &serde_json::Value, at: &str) -> Result<(), String> {
        use serde_json::Value;
        let schema = self.resolve(schema);
        let fail = |what: String| Err(format!("{at}: {what} (value {value})"));
        if let Some(options) = schema["enum"].as_array() {
            if !options.contains(value) {
                return fail(format!("not one of {options:?}"));
            }
        }
        match (schema["type"].as_str(), value) {
            (None, _) => {}
            (Some("object"), Value::Object(map)) => {
                let props = schema["properties"].as_object();
                for required in schema["required"].as_array().into_iter().flatten() {
                    if !map.contains_key(required.as_str().unwrap_or_default()) {
                        return fail(format!("missing required {required}"));
                    }
                }
                for (key, v) in map {
                    match props.and_then(|p| p.get(key)) {
                        Some(sub) => self.check(sub, v, &format!("{at}.{key}"))?,
                        None if schema["additionalProperties"] == Value::Bool(false) => {
                            return fail(format!("undocumented property {key}"))
                        }
                        None => {}
                    }
                }
            }
            (Some("array"), Value::Array(items)) => {
                if let Some(min) = schema["minItems"].as_u64() {
                    if (items.len() as u64) < min {
                        return fail(format!("fewer than {min} items"));
                    }
                }
                if let Some(max) = schema["maxItems"].as_u64() {
                    if items.len() as u64 > max {
                        return fail(format!("more than {max} items"));
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    self.check(&schema["items"], item, &format!("{at}[{i}]"))?;
                }
            }
            (Some("integer"), Value::Number(n)) if n.is_i64() || n.is_u64() => {
                let n = n.as_f64().unwrap_or_default();
                if schema["minimum"].as_f64().is_some_and(|min| n < min)
                    || schema["maximum"].as_f64().is_some_and(|max| n > max)
                {
                    return fail("out of range".into());
                }
            }
            (Some("string"), Value::String(s)) => match schema["format"].as_str() {
                Some("uuid") if uuid::Uuid::parse_str(s).is_err() => return fail("not a uuid".into()),
                Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                    return fail("not RFC 3339".into())
                }
                _ => {}
            },
            (Some(t), _) => return fail(format!("not of type {t}")),
        }
        Ok(())
    }
}

impl TestTable {
    /// Outbox records of one detail-type (a Scan: tests only).
    pub async fn count_events(&self, detail_type: &str) -> usize {
        self.event_details(detail_type).await.len()
    }

    /// The `detail` of every outbox record of one detail-type (a Scan: tests only).
    pub async fn event_details(&self, detail_type: &str) -> Vec<serde_json::Value> {
        let filter = "begins_with(pk, :p) AND detailType = :t";
        let items = self.scan(filter, &[(":p", "OUTBOX#"), (":t", detail_type)]).await;
        items
            .iter()
            .map(|item| {
                let detail = item.get("detail").and_then(|d| d.as_s().ok()).expect("outbox detail");
                serde_json::from_str(detail).expect("detail is JSON")
            })
            .collect()
    }

    /// Writes items with BatchWriteItem, `parallel` batches of 25 at a time, resending whatever
    /// DynamoDB leaves unprocessed.
    pub async fn batch_put(&self, items: Vec<inventory::store::Item>, parallel: usize) {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        use futures::StreamExt;
        let batches: Vec<Vec<WriteRequest>> = items
            .chunks(25)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|item| {
                        let put = PutRequest::builder().set_item(Some(item.clone())).build().expect("put");
                        WriteRequest::builder().put_request(put).build()
                    })
                    .collect()
            })
            .collect();
        let table = self.store.table().to_owned();
        let client = self.store.client().clone();
        futures::stream::iter(batches)
            .for_each_concurrent(parallel, |mut batch| {
                let (client, table) = (client.clone(), table.clone());
                async move {
                    while !batch.is_empty() {
                        let out = client
                            .batch_write_item()
                            .request_items(&table, batch)
                            .send()
                            .await
                            .expect("batch write");
                        batch = out.unprocessed_items.and_then(|mut u| u.remove(&table)).unwrap_or_default();
                    }
                }
            })
            .await;
    }
}

/// Sets the on-hand count of `(sku, "w1")`.
pub async fn set_stock(store: &Store, sku: &str, on_hand: i64) {
    let change = inventory::store::StockChange::Set { on_hand };
    store.write_stock(sku, "w1", change, None, None, None).await.expect("stock");
}

/// Reserves `quantity` of `(sku, "w1")` for `order`, held for `ttl` seconds.
pub async fn hold(
    store: &Store,
    order: &str,
    sku: &str,
    quantity: i64,
    ttl: i64,
) -> inventory::domain::Reservation {
    use inventory::domain::{merge_lines, LineRequest};
    let lines = merge_lines(&[LineRequest { sku: sku.into(), location_id: "w1".into(), quantity }]).unwrap();
    store.reserve(order, lines, ttl, None).await.expect("reserve").reservation
}

/// A second view of the same table whose clock runs `ahead` of the test's: the expiry sweep as
/// it would run after that much time, while the API side still sees holds as live.
pub fn sweeper(t: &TestTable, ahead: Duration) -> Store {
    let clock = TestClock::default();
    clock.advance(ahead);
    t.store.clone().with_clock(clock.as_clock())
}
