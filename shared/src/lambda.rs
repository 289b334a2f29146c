//! The Lambda entry point shared by the HTTP functions: logging, config and the AWS client are
//! set up once per execution environment (cold start), then every invocation borrows them.

use std::convert::Infallible;

use crate::config::{dynamodb_client, Config};
use crate::http::{handle, Operation};
use crate::Store;

/// Builds the store from the environment (`TABLE_NAME`, the standard AWS variables).
pub async fn store_from_env() -> Store {
    let config = Config::from_env();
    Store::new(dynamodb_client().await, config.table_name)
}

/// Runs one HTTP operation as a Lambda function behind API Gateway's HTTP API.
pub async fn run_http(operation: Operation) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let store = store_from_env().await;
    let store = &store;
    lambda_http::run(lambda_http::service_fn(move |request| async move {
        Ok::<_, Infallible>(handle(operation, store, request).await)
    }))
    .await
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
