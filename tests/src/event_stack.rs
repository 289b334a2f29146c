//! A test's own LocalStack resources, named uniquely so tests run in parallel: an event bus, a
//! "tap" queue subscribed to everything the service publishes on it (what a consumer would see),
//! the order-events queue with its DLQ and rule, and the publisher's DLQ. Plus the local event
//! pipelines (`dev_server::EventPipelines`) wired to them and to a test table.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use dev_server::{EventPipelines, QueuePollerOptions, StreamPollerOptions};
use inventory::publish::Publisher;
use inventory::Store;
use serde_json::{json, Value};

use crate::{FaultInjector, TestTable};

/// LocalStack's endpoint in the test stack (set by `make test`).
pub fn localstack_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: run the integration tests with `make test`, which starts LocalStack")
    })
}

fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "tests"),
        ))
        .endpoint_url(endpoint)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build()
}

pub struct EventStack {
    pub endpoint: String,
    pub sqs: aws_sdk_sqs::Client,
    /// For the test's own calls (putting order events, reading rules).
    pub events: aws_sdk_eventbridge::Client,
    /// The publisher's EventBridge and SQS clients go through this: faults planned here hit only
    /// them.
    pub publish_faults: FaultInjector,
    pub bus: String,
    pub tap_queue_url: String,
    pub order_queue_url: String,
    pub order_dlq_url: String,
    pub publish_dlq_url: String,
    pub publisher: Arc<Publisher>,
}

/// Visibility timeout of the test order queue: short, so a failing message reaches the DLQ
/// (after 3 receives) in seconds.
pub const ORDER_QUEUE_VISIBILITY_SECS: i32 = 1;

impl EventStack {
    /// Fresh resources on the test stack's LocalStack.
    pub async fn new() -> Self {
        Self::at(&localstack_endpoint()).await
    }

    /// Fresh resources on the LocalStack at `endpoint`.
    pub async fn at(endpoint: &str) -> Self {
        Self::with_publisher_via(endpoint, endpoint).await
    }

    /// Fresh resources on the LocalStack at `endpoint`, with the publisher reaching it through
    /// `publisher_endpoint` (a proxy the test can close).
    pub async fn with_publisher_via(endpoint: &str, publisher_endpoint: &str) -> Self {
        let config = sdk_config(endpoint);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let events = aws_sdk_eventbridge::Client::new(&config);
        let publisher_config = sdk_config(publisher_endpoint);
        let publish_faults = FaultInjector::new();
        let faulty = aws_sdk_eventbridge::config::Builder::from(&publisher_config)
            .http_client(SharedHttpClient::new(publish_faults.clone()))
            .build();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("t{}", &id[..12]);
        let queues = create_resources(&sqs, &events, &name).await;
        let faulty_sqs = aws_sdk_sqs::config::Builder::from(&publisher_config)
            .http_client(SharedHttpClient::new(publish_faults.clone()))
            .build();
        let publisher = Publisher::new(
            aws_sdk_eventbridge::Client::from_conf(faulty),
            aws_sdk_sqs::Client::from_conf(faulty_sqs),
            name.clone(),
            queues.publish_dlq.clone(),
        );
        EventStack {
            endpoint: endpoint.to_owned(),
            sqs,
            events,
            publish_faults,
            bus: name,
            tap_queue_url: queues.tap,
            order_queue_url: queues.orders,
            order_dlq_url: queues.orders_dlq,
            publish_dlq_url: queues.publish_dlq,
            publisher: Arc::new(publisher),
        }
    }

    /// An SQS client of this stack whose requests go through `faults`.
    pub fn sqs_via(&self, faults: &FaultInjector) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(&sdk_config(&self.endpoint))
            .http_client(SharedHttpClient::new(faults.clone()))
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    /// Creates the resources again (after a LocalStack restart lost them): same names, same URLs.
    pub async fn recreate_resources(&self) {
        let queues = create_resources(&self.sqs, &self.events, &self.bus).await;
        assert_eq!(queues.tap, self.tap_queue_url);
    }

    /// The local event source mappings, fed by `table`'s stream and this stack's order queue.
    pub fn start_pipelines(&self, table: &TestTable) -> EventPipelines {
        self.start_pipelines_with(Arc::new(table.store.clone()), table.streams_client())
    }

    /// The same, with the store the order-events consumer uses and the stream client given.
    pub fn start_pipelines_with(
        &self,
        store: Arc<Store>,
        streams: aws_sdk_dynamodbstreams::Client,
    ) -> EventPipelines {
        EventPipelines::start(
            store,
            streams,
            self.publisher.clone(),
            self.sqs.clone(),
            self.order_queue_url.clone(),
            StreamPollerOptions {
                idle_wait: Duration::from_millis(100),
                max_backoff: Duration::from_millis(500),
                ..Default::default()
            },
            QueuePollerOptions { wait_time: Duration::from_secs(1), ..Default::default() },
        )
    }

    /// Puts an order service event (`source: "orders"`) on the bus.
    pub async fn put_order_event(&self, detail_type: &str, detail: Value) -> String {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source("orders")
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self.events.put_events().entries(entry).send().await.expect("put order event");
        assert_eq!(out.failed_entry_count, 0);
        out.entries.unwrap_or_default()[0].event_id.clone().expect("event id")
    }

    /// Receives (and deletes) messages of `queue_url` until `done` says the bodies so far are
    /// enough, or `timeout` passes (then panics with what arrived).
    pub async fn receive_until(
        &self,
        queue_url: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while !done(&got) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?}; received {}: {got:#?}",
                got.len()
            );
            got.extend(self.receive_batch(queue_url).await);
        }
        got
    }

    /// One receive (long poll of 1 s) of up to 10 messages, deleted once read; bodies as JSON
    /// (a body that is not JSON becomes a JSON string).
    pub async fn receive_batch(&self, queue_url: &str) -> Vec<Value> {
        self.try_receive_batch(queue_url).await.expect("receive")
    }

    /// The same, with an error instead of a panic when LocalStack does not answer.
    pub async fn try_receive_batch(&self, queue_url: &str) -> Result<Vec<Value>, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let mut bodies = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let body = m.body.unwrap_or_default();
            bodies.push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
            if let Some(receipt) = m.receipt_handle {
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(bodies)
    }

    /// Messages in a queue, visible or in flight (approximate, as SQS counts them).
    pub async fn depth(&self, queue_url: &str) -> usize {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        let attributes = out.attributes.unwrap_or_default();
        let count = |name: &QueueAttributeName| {
            attributes.get(name).and_then(|v| v.parse::<usize>().ok()).unwrap_or_default()
        };
        count(&QueueAttributeName::ApproximateNumberOfMessages)
            + count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `detail.eventId` of every event body.
pub fn event_ids(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["detail"]["eventId"].as_str().unwrap_or_default().to_owned()).collect()
}

struct Queues {
    tap: String,
    orders: String,
    orders_dlq: String,
    publish_dlq: String,
}

/// The bus `name`, its tap queue and rule, the order queue (+ DLQ, maxReceiveCount 3) and rule,
/// and the publisher's DLQ. Idempotent.
async fn create_resources(
    sqs: &aws_sdk_sqs::Client,
    events: &aws_sdk_eventbridge::Client,
    name: &str,
) -> Queues {
    match events.create_event_bus().name(name).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_already_exists_exception()) => {}
        Err(e) => panic!("create bus: {e:?}"),
    }
    let publish_dlq = create_queue(sqs, &format!("{name}-publish-dlq"), HashMap::new()).await;
    let tap = create_queue(sqs, &format!("{name}-tap"), HashMap::new()).await;
    let orders_dlq = create_queue(sqs, &format!("{name}-orders-dlq"), HashMap::new()).await;
    let redrive = json!({"deadLetterTargetArn": queue_arn(sqs, &orders_dlq).await, "maxReceiveCount": "3"});
    let orders = create_queue(
        sqs,
        &format!("{name}-orders"),
        HashMap::from([
            (QueueAttributeName::VisibilityTimeout, ORDER_QUEUE_VISIBILITY_SECS.to_string()),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ]),
    )
    .await;
    put_rule(
        events,
        name,
        &format!("{name}-tap"),
        json!({"source": ["inventory"]}),
        &queue_arn(sqs, &tap).await,
    )
    .await;
    put_rule(
        events,
        name,
        &format!("{name}-orders"),
        json!({"source": ["orders"]}),
        &queue_arn(sqs, &orders).await,
    )
    .await;
    Queues { tap, orders, orders_dlq, publish_dlq }
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: HashMap<QueueAttributeName, String>,
) -> String {
    let out = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .expect("create queue");
    out.queue_url.expect("queue url")
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    out.attributes.and_then(|mut a| a.remove(&QueueAttributeName::QueueArn)).expect("queue arn")
}

async fn put_rule(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    name: &str,
    pattern: Value,
    target_arn: &str,
) {
    events
        .put_rule()
        .name(name)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("put rule");
    let target =
        aws_sdk_eventbridge::types::Target::builder().id("queue").arn(target_arn).build().expect("target");
    let out = events
        .put_targets()
        .rule(name)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .expect("put targets");
    assert_eq!(out.failed_entry_count, 0, "targets of {name}");
}
