//! Lambda function for `GET /v1/kits/{sku}` (API Gateway HTTP API, payload 2.0).
//! The router holds only this function's route(s); anything else answers 404/405 like the local
//! server's full router would. Its metrics go to stdout as EMF lines after every request.

use inventory::http::Operation;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inventory::lambda::run_http(Operation::GetKit).await
}
