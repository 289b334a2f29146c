//! The consistency audit, once, against the table in the environment (`make audit` points it at
//! the `make dev` stack): prints the report, announces each drifting item on the bus
//! (`InventoryDriftDetected`), and exits 1 when something drifts. It never repairs anything.
//!
//!   audit [--json] [--no-events]

use inventory::audit::{announce, audit, AuditOptions};
use inventory::config::{aws_config, Config};
use inventory::Store;

const USAGE: &str = "usage: audit [--json] [--no-events]";

#[tokio::main]
async fn main() {
    match run().await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    }
}

/// Whether the table is consistent.
async fn run() -> Result<bool, String> {
    let (mut json, mut events) = (false, true);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => json = true,
            "--no-events" => events = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(true);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let store = Store::new(inventory::config::dynamodb_client().await, Config::from_env().table_name);
    let report = audit(&store, &AuditOptions::default()).await.map_err(|e| format!("audit failed: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", report.render());
    }
    if events && !report.drift.is_empty() {
        let bus = Config::from_env().event_bus_name;
        let client = aws_sdk_eventbridge::Client::new(&aws_config().await);
        announce(&inventory::bus::EventBus::new(client, &bus), &report)
            .await
            .map_err(|e| format!("cannot announce the drift: {e}"))?;
        eprintln!("announced {} InventoryDriftDetected event(s) on {bus}", report.drift.len());
    }
    Ok(report.drift_count() == 0)
}
