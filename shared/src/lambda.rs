//! What the functions build once per execution environment (cold start) and every invocation
//! borrows: the store and the publisher from the environment, the EMF metrics recorder (flushed
//! to stdout after every invocation), and the entry points of every function.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use tower::ServiceExt;

use crate::config::{aws_config, queue_url, FunctionEnv};
use crate::http::{router_with, Operation, RouterOptions};
use crate::publish::Publisher;
use crate::Store;

/// The store of a function: its DynamoDB client over the table its environment names
/// (`TABLE_NAME`).
fn store_from(env: &FunctionEnv, dynamodb: aws_sdk_dynamodb::Client) -> Result<Store, String> {
    Store::new(dynamodb, env.table_name()?).with_limits_of(env)
}

/// The store of a Lambda function: the process's environment and AWS configuration.
async fn store_from_env() -> Result<Store, String> {
    store_from(&FunctionEnv::process(), aws_sdk_dynamodb::Client::new(&aws_config().await))
}

/// The `publish-events` handler of a function's environment (`EVENT_BUS_NAME`, `PUBLISH_DLQ`),
/// clients and store.
pub async fn publisher_from(
    env: &FunctionEnv,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    store: Store,
) -> Result<Publisher, String> {
    let dead_letters = queue_url(&sqs, &env.publish_dead_letter_queue()?).await?;
    Ok(Publisher::new(events, sqs, env.event_bus_name()?, dead_letters, store))
}

/// Logging and the EMF recorder, once per cold start.
fn init() {
    crate::telemetry::init();
    crate::metrics::install_emf();
}

/// Runs `work` (one invocation), then writes its metrics to stdout as EMF lines.
pub async fn flushing<T>(work: impl Future<Output = T>) -> T {
    let out = work.await;
    crate::metrics::flush_emf(std::io::stdout().lock());
    out
}

/// The HTTP handler of an operation's function: its router, each request's metrics flushed as
/// EMF lines when it is answered.
pub fn http_handler(
    store: Arc<Store>,
    operation: Operation,
) -> impl tower::Service<
    lambda_http::Request,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Future<Output = Result<axum::response::Response, Infallible>> + Send,
> + Clone {
    let router = router_with(store, &[operation], RouterOptions::from_env(&FunctionEnv::process()));
    tower::service_fn(move |request: lambda_http::Request| flushing(router.clone().oneshot(request)))
}

/// Runs the function of an HTTP operation (API Gateway HTTP API, payload 2.0).
pub async fn run_http(operation: Operation) -> Result<(), lambda_http::Error> {
    init();
    let store = Arc::new(store_from_env().await?);
    lambda_http::run(http_handler(store, operation)).await
}

/// Runs the `expire-reservations` function (EventBridge Scheduler, every minute).
pub async fn run_expiry() -> Result<(), lambda_runtime::Error> {
    init();
    let store = store_from_env().await?;
    let store = &store;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        flushing(crate::expiry::handle_scheduled(store, event))
    }))
    .await
}

/// Runs the `audit-stock` function (EventBridge Scheduler, hourly).
pub async fn run_audit() -> Result<(), lambda_runtime::Error> {
    init();
    let aws = aws_config().await;
    let store = store_from_env().await?;
    let events = aws_sdk_eventbridge::Client::new(&aws);
    let bus = FunctionEnv::process().event_bus_name()?;
    let (store, events, bus) = (&store, &events, bus.as_str());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |_: lambda_runtime::LambdaEvent<serde_json::Value>| {
            async move {
                let report = crate::audit::handle_scheduled(store, events, bus).await?;
                // Only a run that finished writes its gauges (a failed one would repeat the last).
                crate::metrics::flush_emf(std::io::stdout().lock());
                Ok::<_, lambda_runtime::Error>(report)
            }
        },
    ))
    .await
}

/// Runs the `publish-events` function (the table's DynamoDB stream).
pub async fn run_publish_events() -> Result<(), lambda_runtime::Error> {
    init();
    let aws = aws_config().await;
    let (events, sqs) = (aws_sdk_eventbridge::Client::new(&aws), aws_sdk_sqs::Client::new(&aws));
    let env = FunctionEnv::process();
    let store = store_from(&env, aws_sdk_dynamodb::Client::new(&aws))?;
    let publisher = publisher_from(&env, events, sqs, store).await?;
    let publisher = &publisher;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<_>| {
        flushing(async move { Ok::<_, Infallible>(publisher.handle(event.payload).await) })
    }))
    .await
}

/// Runs the `order-events` function (the `inventory-order-events` SQS queue).
pub async fn run_order_events() -> Result<(), lambda_runtime::Error> {
    init();
    let store = store_from_env().await?;
    let store = &store;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<_>| {
        flushing(
            async move { Ok::<_, Infallible>(crate::order_events::handle_batch(store, event.payload).await) },
        )
    }))
    .await
}
