//! What the functions build once per execution environment (cold start) and every invocation
//! borrows: the store and the publisher from the environment, the EMF metrics recorder (flushed
//! to stdout after every invocation), and the entry points of every function.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use tower::ServiceExt;

use crate::config::{aws_config, dynamodb_client, queue_url, Config};
use crate::http::{router, Operation};
use crate::publish::Publisher;
use crate::Store;

/// Builds the store from the environment (`TABLE_NAME`, the standard AWS variables).
pub async fn store_from_env() -> Store {
    let config = Config::from_env();
    Store::new(dynamodb_client().await, config.table_name)
}

/// Builds the `publish-events` handler from the environment (`EVENT_BUS_NAME`, `PUBLISH_DLQ`)
/// and an AWS configuration the caller has loaded already.
pub async fn publisher_from_env(aws: &aws_config::SdkConfig) -> Result<Publisher, String> {
    let config = Config::from_env();
    let sqs = aws_sdk_sqs::Client::new(aws);
    let dead_letters = queue_url(&sqs, &config.publish_dead_letter_queue).await?;
    Ok(Publisher::new(aws_sdk_eventbridge::Client::new(aws), sqs, config.event_bus_name, dead_letters))
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
    let router = router(store, &[operation]);
    tower::service_fn(move |request: lambda_http::Request| flushing(router.clone().oneshot(request)))
}

/// Runs the function of an HTTP operation (API Gateway HTTP API, payload 2.0).
pub async fn run_http(operation: Operation) -> Result<(), lambda_http::Error> {
    init();
    let store = Arc::new(store_from_env().await);
    lambda_http::run(http_handler(store, operation)).await
}

/// Runs the `expire-reservations` function (EventBridge Scheduler, every minute).
pub async fn run_expiry() -> Result<(), lambda_runtime::Error> {
    init();
    let store = store_from_env().await;
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
    let store = store_from_env().await;
    let events = aws_sdk_eventbridge::Client::new(&aws);
    let bus = Config::from_env().event_bus_name;
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
    let publisher = publisher_from_env(&aws_config().await).await?;
    let publisher = &publisher;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<_>| {
        flushing(async move { Ok::<_, Infallible>(publisher.handle(event.payload).await) })
    }))
    .await
}

/// Runs the `order-events` function (the `inventory-order-events` SQS queue).
pub async fn run_order_events() -> Result<(), lambda_runtime::Error> {
    init();
    let store = store_from_env().await;
    let store = &store;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<_>| {
        flushing(
            async move { Ok::<_, Infallible>(crate::order_events::handle_batch(store, event.payload).await) },
        )
    }))
    .await
}
