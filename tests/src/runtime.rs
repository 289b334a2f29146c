//! The local runtime of template.yaml (`dev_server::LocalRuntime`) over a test's own table and
//! LocalStack resources: every function with its routes, environment and IAM policy, the gate on
//! every AWS call. Tests reach the service's HTTP API, schedules and event source mappings
//! through it, so a grant the template lacks fails them as it would fail on AWS.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use dev_server::{BaseClients, LocalQueue, LocalRuntime, Names, Topology};
use inventory::http::RouterOptions;
use inventory::Store;

/// The topology of the repository's template.yaml (`make test` writes it first).
pub fn topology() -> &'static Topology {
    static TOPOLOGY: OnceLock<Topology> = OnceLock::new();
    TOPOLOGY.get_or_init(|| Topology::load().unwrap_or_else(|e| panic!("{e}")))
}

fn localstack() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

/// Clients of LocalStack that no test resource answers to: for runtimes of HTTP functions only.
fn unused_localstack() -> (aws_sdk_sqs::Client, aws_sdk_eventbridge::Client) {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "tests"),
        ))
        .endpoint_url(localstack())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    (aws_sdk_sqs::Client::new(&config), aws_sdk_eventbridge::Client::new(&config))
}

/// A streams client no test's stream answers to (a runtime over a store alone runs no mapping:
/// `EventStack::start_pipelines` gives its runtime the test table's own streams client).
fn unused_streams(store: &Store) -> aws_sdk_dynamodbstreams::Client {
    let builder = aws_sdk_dynamodbstreams::config::Builder::new()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(store.client().config().region().cloned())
        .endpoint_url(localstack());
    aws_sdk_dynamodbstreams::Client::from_conf(builder.build())
}

/// The template's queues under their local names (as `make dev` makes them), at `base_url`.
pub fn local_queues(base_url: &str) -> BTreeMap<String, LocalQueue> {
    let queues = topology().resources.iter().filter(|(_, r)| r.kind == "AWS::SQS::Queue");
    queues
        .map(|(id, r)| {
            let url = format!("{base_url}/000000000000/{}", r.local_name);
            (id.clone(), LocalQueue { name: r.local_name.clone(), url })
        })
        .collect()
}

/// Names for a runtime over `table` whose bus and queues are `stack`'s, or names no test
/// resource has (HTTP functions never call them).
pub fn names(table: &str, bus: &str, queues: BTreeMap<String, LocalQueue>) -> Names {
    let mut queues = queues;
    for (id, resource) in topology().resources.iter().filter(|(_, r)| r.kind == "AWS::SQS::Queue") {
        queues.entry(id.clone()).or_insert_with(|| {
            let name = format!("{table}-{}", resource.local_name);
            LocalQueue { url: format!("{}/000000000000/{name}", localstack()), name }
        });
    }
    Names { table: table.to_owned(), bus: bus.to_owned(), queues, stage: "test".into() }
}

/// Clients for a runtime over `store`: its DynamoDB client (a test's fault injector, say), and
/// clients of LocalStack no test resource answers to (the HTTP functions and the schedules call
/// none of them but the audit's bus; `EventStack::runtime_over` gives a runtime its own).
pub fn base_clients(store: &Store) -> BaseClients {
    let (sqs, events) = unused_localstack();
    BaseClients { dynamodb: store.client().clone(), streams: unused_streams(store), sqs, events }
}

/// `topology`'s functions over `store`'s table (clock, retry policy and client of `store`), with
/// the policies of the functions `statements` names replaced: what another template would run.
pub fn runtime_of(
    store: &Store,
    topology: Topology,
    statements: &BTreeMap<String, Vec<dev_server::iam::Statement>>,
) -> Result<LocalRuntime, String> {
    let names = names(store.table(), &format!("{}-bus", store.table()), BTreeMap::new());
    LocalRuntime::with_statements(topology, names, &base_clients(store), store, statements)
}

/// Every function of the template over `store`'s table, through `store`'s DynamoDB client (a
/// test's fault injector, say) and with its clock and retry policy, each behind its own IAM
/// gate. Its LocalStack resources are none: for the HTTP API and the schedules.
pub fn runtime_over(store: &Store) -> LocalRuntime {
    runtime_of(store, topology().clone(), &BTreeMap::new()).unwrap_or_else(|e| panic!("local runtime: {e}"))
}

/// The store `function` of the template has over `store`'s table: `store`'s client (and fault
/// injector), clock, retry policy and counters, behind the function's IAM gate. Tests make each
/// write as the function that makes it in the service.
pub fn function_store(store: &Store, function: &str) -> Store {
    let mut only = topology().clone();
    only.functions.retain(|name, _| name == function);
    let runtime = runtime_of(store, only, &BTreeMap::new()).unwrap_or_else(|e| panic!("local runtime: {e}"));
    runtime.store(function).unwrap_or_else(|e| panic!("{function}: {e}")).as_ref().clone()
}

/// The HTTP API as the template routes it, over `store` ([`runtime_over`]).
pub fn app(store: &Store) -> axum::Router {
    app_with(store, RouterOptions::default())
}

/// The same, with the router's options (a metrics handle; its local budget bounds only what no
/// function serves, such as a 404: each route's deadline is its function's template timeout).
pub fn app_with(store: &Store, options: RouterOptions) -> axum::Router {
    runtime_over(store).router(options).unwrap_or_else(|e| panic!("local runtime: {e}"))
}
