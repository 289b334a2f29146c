//! Lambda function fed by the table's DynamoDB stream: publishes outbox records to EventBridge.
// The AWS SDK's and lambda_runtime's nested future types exceed the default query depth here.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    inventory::lambda::run_publish_events().await
}
