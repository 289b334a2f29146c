//! Lambda function for `GET /v1/stock/{sku} and GET /v1/stock/{sku}/{locationId}` (API Gateway HTTP API, payload 2.0).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inventory::lambda::run_http(inventory::http::Operation::GetStock).await
}
