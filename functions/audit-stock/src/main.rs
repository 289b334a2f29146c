//! Lambda function for the consistency audit, invoked by EventBridge Scheduler every hour: reports
//! (logs, the `audit_drift` metric, one `InventoryDriftDetected` event per drifting item), never
//! repairs.
// The AWS SDK's and lambda_runtime's nested future types exceed the default query depth here.
#![recursion_limit = "256"]

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    inventory::lambda::run_audit().await
}
