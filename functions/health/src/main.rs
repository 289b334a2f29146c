//! Lambda function for `GET /health` (API Gateway HTTP API, payload 2.0).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inventory::lambda::run_http(inventory::http::Operation::Health).await
}
