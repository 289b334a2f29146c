//! Lambda function fed by the `inventory-order-events` SQS queue: OrderCancelled / OrderCompleted.
// The AWS SDK's and lambda_runtime's nested future types exceed the default query depth here.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    inventory::lambda::run_order_events().await
}
