//! The local runtime, built from template.yaml (its [`Topology`]) and nothing else: each function
//! of the template gets its own SDK clients behind the IAM gate of its own policy
//! ([`crate::iam`]), its own store, and exactly the environment variables the template gives it;
//! the HTTP routes, schedules and event source mappings that run are the template's.
//!
//! `make dev` (`main.rs`), the integration tests and the bench all build it here. What stands in
//! for AWS itself (API Gateway's routing, EventBridge Scheduler, Lambda's event source mappings)
//! is this runtime; what the functions do is the `inventory` crate's handlers, as in Lambda.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use inventory::config::FunctionEnv;
use inventory::http::{FunctionOptions, RouterOptions, LAMBDA_MARGIN, ROUTES};
use inventory::publish::Publisher;
use inventory::Store;
use lambda_runtime::LambdaEvent;
use tokio::task::JoinHandle;

use crate::iam::{FunctionPolicy, GatedHttpClient, ResourcePolicy, Statement};
use crate::topology::{FunctionSpec, MappingKind, MappingSpec, Names, Topology};
use crate::{poll_queue, poll_stream, QueuePollerOptions, StreamPollerOptions};

/// The clients the functions' own are made from: where the local stack is, with what
/// credentials, through which HTTP client (a test's fault injector, say). Each function gets
/// copies behind its own gate.
#[derive(Clone, Debug)]
pub struct BaseClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
}

impl BaseClients {
    /// From the environment (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`, the standard AWS
    /// variables): `make dev`'s.
    pub async fn from_env() -> Self {
        let aws = inventory::config::aws_config().await;
        BaseClients {
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            streams: crate::streams_client(&aws),
            sqs: aws_sdk_sqs::Client::new(&aws),
            events: aws_sdk_eventbridge::Client::new(&aws),
        }
    }
}

/// The SDK's own HTTP client (TLS too), for base clients that name none.
fn default_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .build_https()
}

/// A function of the template, as it runs locally.
#[derive(Debug)]
pub struct LocalFunction {
    pub name: String,
    pub spec: FunctionSpec,
    /// Exactly the template's variables (Globals and its own), resolved to the local names.
    pub env: FunctionEnv,
    pub policy: Arc<FunctionPolicy>,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
}

impl LocalFunction {
    fn new(
        name: &str,
        spec: &FunctionSpec,
        env: FunctionEnv,
        (statements, from_template): (Vec<Statement>, bool),
        (principal, resource_policies): (String, Vec<ResourcePolicy>),
        base: &BaseClients,
    ) -> Self {
        let policy = Arc::new(FunctionPolicy {
            function: name.to_owned(),
            principal,
            statements,
            resource_policies,
            from_template,
        });
        let gate = |inner: Option<SharedHttpClient>| {
            SharedHttpClient::new(GatedHttpClient::new(
                policy.clone(),
                inner.unwrap_or_else(default_http_client),
            ))
        };
        let dynamodb = base.dynamodb.config();
        let dynamodb = dynamodb.to_builder().http_client(gate(dynamodb.http_client())).build();
        let streams = base.streams.config();
        let streams = streams.to_builder().http_client(gate(streams.http_client())).build();
        let sqs = base.sqs.config();
        let sqs = sqs.to_builder().http_client(gate(sqs.http_client())).build();
        let events = base.events.config();
        let events = events.to_builder().http_client(gate(events.http_client())).build();
        LocalFunction {
            name: name.to_owned(),
            spec: spec.clone(),
            env,
            policy,
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            streams: aws_sdk_dynamodbstreams::Client::from_conf(streams),
            sqs: aws_sdk_sqs::Client::from_conf(sqs),
            events: aws_sdk_eventbridge::Client::from_conf(events),
        }
    }

    /// Its time per invocation: the template's `Timeout`.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.spec.timeout_seconds)
    }

    /// What a request keeps of it: the timeout less [`LAMBDA_MARGIN`].
    pub fn request_budget(&self) -> Duration {
        self.timeout().saturating_sub(LAMBDA_MARGIN)
    }
}

/// Every function of the template, ready to run locally.
pub struct LocalRuntime {
    pub topology: Topology,
    pub names: Names,
    functions: BTreeMap<String, LocalFunction>,
    /// Each function's store (its gated client over the table its `TABLE_NAME` names), with
    /// the base store's clock, retry policy and counters.
    stores: BTreeMap<String, Arc<Store>>,
}

impl LocalRuntime {
    /// Every function of `topology` over the local stack `names` and `base` name. `base_store`
    /// gives the stores their clock, retry policy and counters (a test's clock, say).
    pub fn new(
        topology: Topology,
        names: Names,
        base: &BaseClients,
        base_store: &Store,
    ) -> Result<Self, String> {
        Self::with_statements(topology, names, base, base_store, &BTreeMap::new())
    }

    /// The same, with some functions' policies replaced (`statements` by function name): what a
    /// template with other grants would run, for tests of the gate itself.
    pub fn with_statements(
        topology: Topology,
        names: Names,
        base: &BaseClients,
        base_store: &Store,
        statements: &BTreeMap<String, Vec<Statement>>,
    ) -> Result<Self, String> {
        let mut functions = BTreeMap::new();
        let mut stores = BTreeMap::new();
        let resource_policies = names.resource_policies(&topology)?;
        for (name, spec) in &topology.functions {
            let env = FunctionEnv::from_vars(
                names.environment(&topology, spec).map_err(|e| format!("{name}: {e}"))?,
            );
            let granted = match statements.get(name) {
                Some(replaced) => (replaced.clone(), false),
                None => (names.statements(&topology, spec).map_err(|e| format!("{name}: {e}"))?, true),
            };
            let principal = (names.principal(spec), resource_policies.clone());
            let function = LocalFunction::new(name, spec, env, granted, principal, base);
            if let Ok(table) = function.env.table_name() {
                let store = base_store
                    .with_client(function.dynamodb.clone(), table)
                    .with_limits_of(&function.env)
                    .map_err(|e| format!("{name}: {e}"))?;
                stores.insert(name.clone(), Arc::new(store));
            }
            functions.insert(name.clone(), function);
        }
        Ok(LocalRuntime { topology, names, functions, stores })
    }

    pub fn function(&self, name: &str) -> Result<&LocalFunction, String> {
        self.functions.get(name).ok_or_else(|| format!("template.yaml has no function {name}"))
    }

    pub fn functions(&self) -> impl Iterator<Item = &LocalFunction> {
        self.functions.values()
    }

    /// A function's store, or why it has none (its environment names no table).
    pub fn store(&self, name: &str) -> Result<Arc<Store>, String> {
        let function = self.function(name)?;
        match self.stores.get(name) {
            Some(store) => Ok(store.clone()),
            None => Err(function.env.table_name().err().unwrap_or_default()),
        }
    }

    /// The HTTP API as the template routes it: each of its routes served by its function's
    /// handler, store and timeout; any other path 404, as API Gateway answers.
    pub fn router(&self, options: RouterOptions) -> Result<axum::Router, String> {
        let mut router = axum::Router::new();
        for function in self.functions.values() {
            for key in &function.spec.routes {
                let (method, path) = key.split_once(' ').ok_or_else(|| format!("route key {key:?}"))?;
                let &(m, p, operation) =
                    ROUTES.iter().find(|(m, p, _)| *m == method && *p == path).ok_or_else(|| {
                        format!("template.yaml routes {key}, which the service has no handler for")
                    })?;
                if operation.function() != function.name {
                    return Err(format!(
                        "template.yaml routes {key} to {}, but its handler is {}'s",
                        function.name,
                        operation.function()
                    ));
                }
                let store = self.store(&function.name).map_err(|e| format!("{}: {e}", function.name))?;
                let options = FunctionOptions {
                    require_scopes: function.env.require_scopes(),
                    budget: Some(function.request_budget()),
                };
                router = inventory::http::with_route(router, store, (m, p, operation), &options);
            }
        }
        Ok(inventory::http::serve(router, options))
    }

    /// The `publish-events` handler, with its function's clients, store and environment.
    pub async fn publisher(&self) -> Result<Publisher, String> {
        let function = self.function("publish-events")?;
        let store = Store::clone(self.store(&function.name)?.as_ref());
        inventory::lambda::publisher_from(&function.env, function.events.clone(), function.sqs.clone(), store)
            .await
    }

    /// The event source mappings of the template, each polling with its function's clients and
    /// calling its function's handler. `stream` and `queue` tune how often they poll (the
    /// template does not say); what the template says (batch sizes, filters, partial batch
    /// responses, retries) comes from it.
    /// `publisher`: the `publish-events` handler to run (one the caller watches), else a new
    /// one ([`Self::publisher`]).
    pub async fn start_mappings(
        &self,
        stream: StreamPollerOptions,
        queue: QueuePollerOptions,
        publisher: Option<Arc<Publisher>>,
    ) -> Result<EventPipelines, String> {
        let mut tasks = Vec::new();
        for function in self.functions.values() {
            for mapping in &function.spec.mappings {
                tasks.push(self.start_mapping(function, mapping, &stream, &queue, publisher.clone()).await?);
            }
        }
        Ok(EventPipelines { tasks })
    }

    async fn start_mapping(
        &self,
        function: &LocalFunction,
        mapping: &MappingSpec,
        stream: &StreamPollerOptions,
        queue: &QueuePollerOptions,
        publisher: Option<Arc<Publisher>>,
    ) -> Result<JoinHandle<()>, String> {
        let unsupported = |what: &str| {
            Err(format!(
                "{}: {what} is not run by the local event source mapping (dev-server/src/runtime.rs)",
                mapping.name
            ))
        };
        match (function.name.as_str(), &mapping.kind) {
            ("publish-events", MappingKind::Stream) => {
                // The local mapping retries a batch until it succeeds (MaximumRetryAttempts -1,
                // MaximumRecordAgeInSeconds -1): records never age out of DynamoDB Local's stream,
                // so no record reaches OnFailure, and the function reports item failures, never
                // failing a batch as a whole (BisectBatchOnFunctionError has nothing to split).
                if mapping.maximum_retry_attempts != -1 || mapping.maximum_record_age_in_seconds != -1 {
                    return unsupported("a finite MaximumRetryAttempts or MaximumRecordAgeInSeconds");
                }
                if !mapping.report_batch_item_failures {
                    return unsupported("a stream mapping without ReportBatchItemFailures");
                }
                let publisher = match publisher {
                    Some(publisher) => publisher,
                    None => Arc::new(self.publisher().await?),
                };
                let options = StreamPollerOptions {
                    batch_size: mapping.batch_size,
                    filters: mapping.filters.clone(),
                    ..stream.clone()
                };
                let (table, timeout) = (self.names.table.clone(), function.timeout());
                Ok(tokio::spawn(poll_stream(function.streams.clone(), table, options, move |event| {
                    let publisher = publisher.clone();
                    async move {
                        let first = event.records.first().and_then(|r| r.change.sequence_number.clone());
                        match tokio::time::timeout(timeout, publisher.handle(event)).await {
                            Ok(response) => response,
                            // Lambda ended the invocation at its timeout: the batch is retried whole.
                            Err(_) => {
                                tracing::error!(
                                    function = "publish-events",
                                    ?timeout,
                                    "invocation timed out"
                                );
                                let mut response = DynamoDbEventResponse::default();
                                response.batch_item_failures.push(failure_at(first));
                                response
                            }
                        }
                    }
                })))
            }
            ("order-events", MappingKind::Queue) => {
                if !mapping.filters.is_empty() {
                    return unsupported("a queue mapping's FilterCriteria");
                }
                // SQS gives at most 10 messages a receive; more needs a batching window.
                if !(1..=10).contains(&mapping.batch_size) {
                    return unsupported("a queue mapping's BatchSize outside 1-10");
                }
                let store = self.store(&function.name)?;
                let url = self
                    .names
                    .queues
                    .get(&mapping.source)
                    .ok_or_else(|| format!("{}: no local queue {}", mapping.name, mapping.source))?
                    .url
                    .clone();
                let options = QueuePollerOptions {
                    batch_size: mapping.batch_size,
                    report_batch_item_failures: mapping.report_batch_item_failures,
                    ..queue.clone()
                };
                let timeout = function.timeout();
                Ok(tokio::spawn(poll_queue(function.sqs.clone(), url, options, move |event| {
                    let store = store.clone();
                    async move {
                        let ids: Vec<String> =
                            event.records.iter().filter_map(|m| m.message_id.clone()).collect();
                        let handled = inventory::order_events::handle_batch(store.as_ref(), event);
                        match tokio::time::timeout(timeout, handled).await {
                            Ok(response) => response,
                            // Lambda ended the invocation at its timeout: every message comes back.
                            Err(_) => {
                                tracing::error!(function = "order-events", ?timeout, "invocation timed out");
                                let mut response = SqsBatchResponse::default();
                                for id in ids {
                                    let mut failure = BatchItemFailure::default();
                                    failure.item_identifier = id;
                                    response.batch_item_failures.push(failure);
                                }
                                response
                            }
                        }
                    }
                })))
            }
            (name, kind) => {
                Err(format!("{}: the local runtime has no {kind:?} handler for {name}", mapping.name))
            }
        }
    }

    /// One invocation of a scheduled function, as EventBridge Scheduler makes it: a scheduled
    /// event, and the function's timeout as its deadline.
    pub async fn invoke_scheduled(&self, name: &str) -> Result<(), String> {
        let timeout = self.function(name)?.timeout();
        match tokio::time::timeout(timeout, self.run_scheduled(name)).await {
            Ok(result) => result,
            // As Lambda ends an invocation at the function's timeout.
            Err(_) => Err(format!("{name}: timed out after {timeout:?}")),
        }
    }

    async fn run_scheduled(&self, name: &str) -> Result<(), String> {
        let function = self.function(name)?;
        match name {
            "expire-reservations" => {
                let mut context = lambda_runtime::Context::default();
                context.request_id = format!("local-sweep-{}", chrono::Utc::now().timestamp_millis());
                context.deadline = (chrono::Utc::now() + function.timeout()).timestamp_millis() as u64;
                let mut event = CloudWatchEvent::default();
                event.source = Some("aws.scheduler".into());
                event.detail_type = Some("Scheduled Event".into());
                let store = self.store(name)?;
                inventory::expiry::handle_scheduled(&store, LambdaEvent::new(event, context))
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            "audit-stock" => {
                let store = self.store(name)?;
                let bus = function.env.event_bus_name()?;
                inventory::audit::handle_scheduled(&store, &function.events, &bus)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("the local runtime has no scheduled handler for {other}")),
        }
    }

    /// Every schedule of the template, each at its rate, or at `periods[function]` where given
    /// (`SWEEP_INTERVAL_SECONDS`, `AUDIT_INTERVAL_SECONDS` locally). The first run is at once.
    pub fn start_schedules(
        self: &Arc<Self>,
        periods: &BTreeMap<String, Duration>,
    ) -> Result<EventPipelines, String> {
        let mut tasks = Vec::new();
        for function in self.functions.values() {
            for schedule in &function.spec.schedules {
                if !matches!(function.name.as_str(), "expire-reservations" | "audit-stock") {
                    return Err(format!(
                        "{}: the local runtime has no scheduled handler for {}",
                        schedule.name, function.name
                    ));
                }
                let period = periods
                    .get(&function.name)
                    .copied()
                    .unwrap_or(Duration::from_secs(schedule.rate_seconds));
                let (runtime, name) = (self.clone(), function.name.clone());
                tasks.push(tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        ticks.tick().await;
                        if let Err(e) = runtime.invoke_scheduled(&name).await {
                            tracing::error!(function = %name, error = %e, "scheduled run failed");
                        }
                    }
                }));
            }
        }
        Ok(EventPipelines { tasks })
    }
}

/// Background tasks of the runtime (mappings, schedules), running until dropped.
pub struct EventPipelines {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for EventPipelines {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A stream batch failure at the record with this sequence number (the whole batch when it is
/// the first).
fn failure_at(sequence_number: Option<String>) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = sequence_number;
    failure
}
