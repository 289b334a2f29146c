//! Every test's own table on the local DynamoDB (in a database of its own, so tests run in
//! parallel without seeing each other's data), and the helpers that read and write it.

use std::time::Duration;

use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use inventory::store::{create_table, RetryPolicy};
use inventory::Store;

use crate::{FaultInjector, TestClock};

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
    /// The store `function` of the template has over this table (this test's client, faults,
    /// clock and retry policy), behind the function's IAM gate.
    pub fn function(&self, function: &str) -> Store {
        crate::runtime::function_store(&self.store, function)
    }

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

    /// A store over this table whose DynamoDB requests go through `http_client` (a
    /// [`crate::ContentionModel`], say), with the service's own retry policy and this test's clock.
    pub fn store_via(
        &self,
        http_client: impl aws_smithy_runtime_api::client::http::HttpClient + 'static,
    ) -> Store {
        let client = aws_sdk_dynamodb::Client::from_conf(sdk_config(
            SharedHttpClient::new(http_client),
            &self.access_key,
            &self.endpoint,
        ));
        Store::new(client, self.store.table()).with_clock(self.clock.as_clock())
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

/// The table item of an unsharded stock item with `on_hand` units, none reserved, version 1 (for
/// `TestTable::batch_put`: thousands of items without thousands of transactions).
pub fn stock_record(
    sku: &str,
    location_id: &str,
    on_hand: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> inventory::store::Item {
    inventory::store::items::stock_item(&inventory::domain::StockItem {
        sku: sku.into(),
        location_id: location_id.into(),
        on_hand,
        reserved: 0,
        available: on_hand,
        version: 1,
        updated_at: at,
        low_stock_threshold: None,
        shards: 1,
    })
    .expect("a stock item")
}

/// Sets the on-hand count of `(sku, location_id)`, as the put-stock function does (behind its
/// IAM gate).
pub async fn set_stock(store: &Store, sku: &str, location_id: &str, on_hand: i64) {
    let change = inventory::store::StockChange::Set { on_hand };
    let put_stock = crate::runtime::function_store(store, "put-stock");
    put_stock
        .write_stock(sku, location_id, change, None, Some("test"), &Default::default())
        .await
        .expect("set stock");
}

/// Reserves `quantity` of `(sku, "w1")` for `order`, held for `ttl` seconds, as the reserve
/// function does (behind its IAM gate).
pub async fn hold(
    store: &Store,
    order: &str,
    sku: &str,
    quantity: i64,
    ttl: i64,
) -> inventory::domain::Reservation {
    use inventory::domain::{merge_lines, LineRequest};
    let lines = merge_lines(&[LineRequest { sku: sku.into(), location_id: "w1".into(), quantity }]).unwrap();
    let reserve = crate::runtime::function_store(store, "reserve");
    reserve.reserve(order, lines, ttl, &Default::default()).await.expect("reserve").reservation
}

/// A second view of the same table whose clock runs `ahead` of the test's: the expiry sweep (the
/// expire-reservations function) as it would run after that much time, while the API side still
/// sees holds as live.
pub fn sweeper(t: &TestTable, ahead: Duration) -> Store {
    let clock = TestClock::default();
    clock.advance(ahead);
    // The expire-reservations function's store, behind its IAM gate.
    crate::runtime::function_store(&t.store.clone().with_clock(clock.as_clock()), "expire-reservations")
}

/// Held by the tests that load DynamoDB Local the most (the expiry-at-scale tests), so that no two
/// of them run at once in the one test binary.
pub async fn heavy_load_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(())).lock().await
}
