//! What the functions build once per execution environment (cold start) and every invocation
//! borrows: the store and the publisher from the environment, and the entry points of the
//! functions that are not HTTP routes. The HTTP functions run `lambda_http::run` on their
//! operation's router (`crate::http::router`).

use std::convert::Infallible;

use crate::config::{aws_config, dynamodb_client, queue_url, Config};
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

/// Runs the `expire-reservations` function (EventBridge Scheduler, every minute).
pub async fn run_expiry() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let store = store_from_env().await;
    let store = &store;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        crate::expiry::handle_scheduled(store, event)
    }))
    .await
}

/// Runs the `publish-events` function (the table's DynamoDB stream).
pub async fn run_publish_events() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let publisher = publisher_from_env(&aws_config().await).await?;
    let publisher = &publisher;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<_>| async move {
        Ok::<_, Infallible>(publisher.handle(event.payload).await)
    }))
    .await
}

/// Runs the `order-events` function (the `inventory-order-events` SQS queue).
pub async fn run_order_events() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let store = store_from_env().await;
    let store = &store;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<_>| async move {
        Ok::<_, Infallible>(crate::order_events::handle_batch(store, event.payload).await)
    }))
    .await
}
