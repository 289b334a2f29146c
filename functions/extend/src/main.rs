//! Lambda function for `POST /v1/reservations/{reservationId}/extend` (API Gateway HTTP API, payload 2.0).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    inventory::lambda::run_http(inventory::http::Operation::Extend).await
}
