//! The local runtime behind `make dev`. Lambda cannot run on these machines (LocalStack runs it in
//! Docker), so one process serves the same handlers the Lambdas run: the HTTP routes through the
//! same axum router the HTTP functions run (here with every operation's routes); timers stand in for the expiry
//! and audit schedules; and two pollers stand in for the event source mappings of `publish-events` (the
//! table's stream) and `order-events` (the SQS queue). No business logic lives here.
//!
//! Usage: `dev-server [--seed]` (config from the environment: PORT, TABLE_NAME, AWS_* endpoints).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use inventory::expiry::handle_scheduled;
use lambda_runtime::LambdaEvent;

use dev_server::{serve_http, streams_client, EventPipelines, QueuePollerOptions, StreamPollerOptions};
use inventory::config::env_or;
use inventory::config::queue_url;
use inventory::lambda::{publisher_from_env, store_from_env};
use inventory::store::{create_table, StockChange};
use inventory::{Error, Store};
use tokio::net::TcpListener;

/// Demo stock seeded by `--seed`: a few SKUs across a few locations.
const DEMO_STOCK: &[(&str, &str, i64)] = &[
    ("TSHIRT-RED-M", "berlin", 25),
    ("TSHIRT-RED-M", "paris", 10),
    ("TSHIRT-RED-M", "madrid", 0),
    ("MUG-LOGO", "berlin", 100),
    ("MUG-LOGO", "paris", 40),
    ("SNEAKER-42", "berlin", 3),
    ("SNEAKER-42", "madrid", 1),
];

#[tokio::main]
async fn main() {
    inventory::telemetry::init();
    if let Err(message) = run().await {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let seed = std::env::args().any(|a| a == "--seed");
    let port: u16 = env_or("PORT", "3000").parse().map_err(|_| "PORT must be a port number".to_owned())?;
    let store = store_from_env().await;
    match create_table(store.client(), store.table()).await {
        Ok(true) => tracing::info!(table = store.table(), "created table"),
        Ok(false) => tracing::info!(table = store.table(), "table exists"),
        Err(e) => return Err(format!("cannot reach DynamoDB to create table {}: {e}", store.table())),
    }
    if seed {
        seed_demo_stock(&store).await?;
    }

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot listen on {addr}: {e} (is another `make dev` running? set PORT to use another port)")
    })?;
    tracing::info!(%addr, "local HTTP API ready");
    println!("local HTTP API ready on http://{addr} (try: curl http://{addr}/health)");
    println!("metrics (Prometheus text) on http://{addr}/metrics; `make audit` checks the numbers");

    let store = Arc::new(store);
    let _pipelines = start_event_pipelines(store.clone()).await?;
    let sweep_every = env_or("SWEEP_INTERVAL_SECONDS", "60")
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .ok_or("SWEEP_INTERVAL_SECONDS must be a positive number of seconds")?;
    tokio::spawn(run_expiry_schedule(store.clone(), Duration::from_secs(sweep_every)));
    let audit_every = env_or("AUDIT_INTERVAL_SECONDS", "3600")
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .ok_or("AUDIT_INTERVAL_SECONDS must be a positive number of seconds")?;
    tokio::spawn(run_audit_schedule(store.clone(), Duration::from_secs(audit_every)));
    serve_http(listener, store, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await;
    Ok(())
}

/// Starts the stream -> `publish-events` and queue -> `order-events` pollers.
async fn start_event_pipelines(store: Arc<Store>) -> Result<EventPipelines, String> {
    let config = inventory::config::Config::from_env();
    let aws = inventory::config::aws_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let order_queue = queue_url(&sqs, &config.order_events_queue).await?;
    let publisher = publisher_from_env(&aws).await?;
    tracing::info!(bus = publisher.bus_name(), queue = %order_queue, "event pipelines started");
    Ok(EventPipelines::start(
        store,
        streams_client(&aws),
        Arc::new(publisher),
        sqs,
        order_queue,
        StreamPollerOptions::default(),
        QueuePollerOptions::default(),
    ))
}

/// Stands in for EventBridge Scheduler: invokes the `expire-reservations` handler every
/// `period`, with a scheduled event and an invocation deadline one period away (as a Lambda with
/// that timeout would have).
async fn run_expiry_schedule(store: Arc<Store>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let mut context = lambda_runtime::Context::default();
        context.request_id = format!("local-sweep-{}", chrono::Utc::now().timestamp_millis());
        context.deadline = (chrono::Utc::now() + period).timestamp_millis() as u64;
        let mut event = CloudWatchEvent::default();
        event.source = Some("aws.scheduler".into());
        event.detail_type = Some("Scheduled Event".into());
        if let Err(e) = handle_scheduled(&store, LambdaEvent::new(event, context)).await {
            tracing::error!(error = %e, "expiry sweep failed");
        }
    }
}

/// Stands in for the `audit-stock` schedule: the audit every `period`, from the start (its
/// gauges show at `/metrics`; drift is announced on the bus and logged).
async fn run_audit_schedule(store: Arc<Store>, period: Duration) {
    let config = inventory::config::Config::from_env();
    let events = aws_sdk_eventbridge::Client::new(&inventory::config::aws_config().await);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = inventory::audit::handle_scheduled(&store, &events, &config.event_bus_name).await {
            tracing::error!(error = %e, "audit failed");
        }
    }
}

/// Puts the demo stock in place unless it is there already (`expectedVersion: 0`).
async fn seed_demo_stock(store: &Store) -> Result<(), String> {
    for (sku, location, on_hand) in DEMO_STOCK {
        let change = StockChange::Set { on_hand: *on_hand };
        match store.write_stock(sku, location, change, Some(0), Some("demo seed"), None).await {
            Ok(_) | Err(Error::VersionConflict { .. }) => {}
            Err(e) => return Err(format!("seeding demo stock failed: {e}")),
        }
    }
    println!("demo stock seeded: {} items (see README)", DEMO_STOCK.len());
    Ok(())
}
