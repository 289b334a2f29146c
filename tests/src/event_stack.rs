//! A test's own LocalStack resources, named uniquely so tests run in parallel: an event bus, the
//! queues and rules of template.yaml (the order-events queue with its DLQ, visibility timeout and
//! maxReceiveCount, its rule, the publisher's DLQ), and a "tap" queue subscribed to everything
//! the service publishes on the bus (what a consumer would see). Plus the template's event source
//! mappings (`dev_server::LocalRuntime::start_mappings`) wired to them and to a test table, each
//! function behind its own IAM gate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use dev_server::{
    BaseClients, EventPipelines, LocalQueue, LocalRuntime, QueuePollerOptions, StreamPollerOptions,
};
use inventory::publish::Publisher;
use inventory::Store;
use serde_json::{json, Value};

use crate::runtime::topology;
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
    /// The publish-events handler, over the table of the last pipelines started.
    publisher: std::sync::Mutex<Option<Arc<Publisher>>>,
    /// By the template's logical id, and `tap`.
    queues: HashMap<String, LocalQueue>,
    /// The clients the functions' EventBridge and SQS clients are made from (through
    /// `publish_faults`).
    publisher_clients: (aws_sdk_eventbridge::Client, aws_sdk_sqs::Client),
}

/// The visibility timeout of the tests' queues, in place of the template's (180 s for the order
/// queue): short, so a failing message reaches its DLQ (after the template's maxReceiveCount
/// receives) in seconds. The one thing of the template the tests run faster.
pub const ORDER_QUEUE_VISIBILITY_SECS: i32 = 1;

/// A DynamoDB client for runtimes that make no DynamoDB call (the stack's publisher).
fn dummy_dynamodb() -> aws_sdk_dynamodb::Client {
    let config = sdk_config(&localstack_endpoint());
    aws_sdk_dynamodb::Client::new(&config)
}

fn dummy_streams() -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::new(&sdk_config(&localstack_endpoint()))
}

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
        let url = |id: &str| {
            queues.get(id).unwrap_or_else(|| panic!("template.yaml has no queue {id}")).url.clone()
        };
        let stack = EventStack {
            endpoint: endpoint.to_owned(),
            sqs,
            events,
            publish_faults,
            bus: name.clone(),
            tap_queue_url: queues["tap"].url.clone(),
            order_queue_url: url("OrderEventsQueue"),
            order_dlq_url: url("OrderEventsDeadLetterQueue"),
            publish_dlq_url: url("PublishEventsDeadLetterQueue"),
            publisher: Default::default(),
            queues,
            publisher_clients: (
                aws_sdk_eventbridge::Client::from_conf(faulty),
                aws_sdk_sqs::Client::from_conf(faulty_sqs),
            ),
        };
        // The publish-events function of the template, behind its gate (on no table until
        // pipelines start over one).
        let runtime = stack.runtime_over(&Store::new(dummy_dynamodb(), "no-table"), dummy_streams());
        stack.set_publisher(&runtime).await;
        stack
    }

    async fn set_publisher(&self, runtime: &LocalRuntime) {
        let publisher = runtime.publisher().await.unwrap_or_else(|e| panic!("publisher: {e}"));
        *self.publisher.lock().unwrap() = Some(Arc::new(publisher));
    }

    /// The publish-events handler the stack's mappings run (its counters are the tests').
    pub fn publisher(&self) -> Arc<Publisher> {
        self.publisher.lock().unwrap().clone().expect("built with the stack")
    }

    /// Every function of the template over `store`'s table and this stack's bus and queues.
    pub fn runtime_over(&self, store: &Store, streams: aws_sdk_dynamodbstreams::Client) -> LocalRuntime {
        let queues =
            self.queues.iter().filter(|(id, _)| *id != "tap").map(|(k, v)| (k.clone(), v.clone())).collect();
        let names = crate::runtime::names(store.table(), &self.bus, queues);
        let (events, sqs) = self.publisher_clients.clone();
        let base = BaseClients { dynamodb: store.client().clone(), streams, sqs, events };
        LocalRuntime::new(topology().clone(), names, &base, store)
            .unwrap_or_else(|e| panic!("local runtime: {e}"))
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
        assert_eq!(queues["tap"].url, self.tap_queue_url);
    }

    /// The template's event source mappings, fed by `table`'s stream and this stack's order queue.
    pub async fn start_pipelines(&self, table: &TestTable) -> EventPipelines {
        self.start_pipelines_with(Arc::new(table.store.clone()), table.streams_client()).await
    }

    /// The same, over the store given (its table, client, clock and retry policy) and the stream
    /// client given.
    pub async fn start_pipelines_with(
        &self,
        store: Arc<Store>,
        streams: aws_sdk_dynamodbstreams::Client,
    ) -> EventPipelines {
        let runtime = self.runtime_over(&store, streams);
        self.set_publisher(&runtime).await;
        let stream = StreamPollerOptions {
            idle_wait: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            ..Default::default()
        };
        let queue = QueuePollerOptions { wait_time: Duration::from_secs(1), ..Default::default() };
        runtime
            .start_mappings(stream, queue, Some(self.publisher()))
            .await
            .unwrap_or_else(|e| panic!("event source mappings: {e}"))
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

/// The bus `name`, the template's queues (as `{name}-{local name}`, the template's redrive
/// policy and the tests' visibility timeout) and rules, and a tap queue with a rule for every
/// event the service publishes. Idempotent. The queues by logical id, and `tap`.
async fn create_resources(
    sqs: &aws_sdk_sqs::Client,
    events: &aws_sdk_eventbridge::Client,
    name: &str,
) -> HashMap<String, LocalQueue> {
    match events.create_event_bus().name(name).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_already_exists_exception()) => {}
        Err(e) => panic!("create bus: {e:?}"),
    }
    let topology = topology();
    let mut queues = HashMap::new();
    // Dead-letter queues first: the others name them.
    let mut ordered: Vec<_> =
        topology.resources.iter().filter(|(_, r)| r.kind == "AWS::SQS::Queue").collect();
    ordered.sort_by_key(|(_, r)| r.dead_letter_queue.is_some());
    for (id, resource) in ordered {
        let queue_name = format!("{name}-{}", resource.local_name);
        let mut attributes = HashMap::new();
        if let (Some(dlq), Some(count)) = (&resource.dead_letter_queue, resource.max_receive_count) {
            let dlq: &LocalQueue =
                queues.get(dlq).unwrap_or_else(|| panic!("{id}: no dead-letter queue {dlq}"));
            let redrive = json!({"deadLetterTargetArn": queue_arn(sqs, &dlq.url).await, "maxReceiveCount": count.to_string()});
            attributes.insert(QueueAttributeName::RedrivePolicy, redrive.to_string());
            attributes.insert(QueueAttributeName::VisibilityTimeout, ORDER_QUEUE_VISIBILITY_SECS.to_string());
        }
        let url = create_queue(sqs, &queue_name, attributes).await;
        queues.insert(id.clone(), LocalQueue { name: queue_name, url });
    }
    for rule in &topology.rules {
        for target in rule.targets.iter().flatten() {
            let queue = queues
                .get(target)
                .unwrap_or_else(|| panic!("rule {}: target {target} is not a queue", rule.name));
            let arn = queue_arn(sqs, &queue.url).await;
            put_rule(events, name, &format!("{name}-{}", rule.name), rule.pattern.clone(), &arn).await;
        }
    }
    let tap = create_queue(sqs, &format!("{name}-tap"), HashMap::new()).await;
    put_rule(
        events,
        name,
        &format!("{name}-tap"),
        json!({"source": ["inventory"]}),
        &queue_arn(sqs, &tap).await,
    )
    .await;
    queues.insert("tap".into(), LocalQueue { name: format!("{name}-tap"), url: tap });
    queues
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
