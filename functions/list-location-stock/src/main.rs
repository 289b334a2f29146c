//! Lambda function for `GET /v1/locations/{locationId}/stock` (API Gateway HTTP API, payload 2.0).
//! The router holds only this function's route(s); anything else answers 404/405 like the local
//! server's full router would.

use std::sync::Arc;

use inventory::http::{router, Operation};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inventory::telemetry::init();
    let store = Arc::new(inventory::lambda::store_from_env().await);
    lambda_http::run(router(store, &[Operation::ListLocationStock])).await
}
