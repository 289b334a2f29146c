//! The local runtime behind `make dev`. Lambda cannot run on these machines (LocalStack runs it in
//! Docker), so one process runs every function of template.yaml as the template deploys it
//! (`dev_server::LocalRuntime`): its HTTP routes, its schedule, its event source mapping, its
//! environment and its IAM policy, enforced on every AWS call it makes. No business logic lives
//! here.
//!
//! Usage: `dev-server [--seed]` (the topology from `.local/topology.json`, made by `make
//! topology`; PORT, TABLE_NAME, EVENT_BUS_NAME, the AWS_* endpoints from the environment;
//! SWEEP_INTERVAL_SECONDS and AUDIT_INTERVAL_SECONDS run those schedules at another rate than
//! the template's).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dev_server::{serve_http, BaseClients, LocalQueue, LocalRuntime, Names, Topology};
use inventory::config::env_or;
use inventory::config::queue_url;
use inventory::http::RouterOptions;
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
    let topology = Topology::load()?;
    let base = BaseClients::from_env().await;
    let names = local_names(&topology, &base).await?;
    // The stack's own table, as CloudFormation would create it (the functions may not).
    let platform = Store::new(base.dynamodb.clone(), names.table.clone());
    match create_table(platform.client(), platform.table()).await {
        Ok(true) => tracing::info!(table = platform.table(), "created table"),
        Ok(false) => tracing::info!(table = platform.table(), "table exists"),
        Err(e) => return Err(format!("cannot reach DynamoDB to create table {}: {e}", platform.table())),
    }
    if seed {
        seed_demo_stock(&platform).await?;
    }
    let runtime = Arc::new(LocalRuntime::new(topology, names, &base, &platform)?);

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot listen on {addr}: {e} (is another `make dev` running? set PORT to use another port)")
    })?;
    // The metrics recorder first: the mappings and schedules record from their first run.
    let options =
        RouterOptions { metrics: inventory::metrics::install_prometheus(), ..RouterOptions::default() };
    let _mappings = runtime.start_mappings(Default::default(), Default::default(), None).await?;
    let mut periods = BTreeMap::new();
    for (variable, function) in
        [("SWEEP_INTERVAL_SECONDS", "expire-reservations"), ("AUDIT_INTERVAL_SECONDS", "audit-stock")]
    {
        if let Ok(value) = std::env::var(variable) {
            let seconds = value.parse::<u64>().ok().filter(|s| *s > 0);
            let seconds = seconds.ok_or(format!("{variable} must be a positive number of seconds"))?;
            periods.insert(function.to_owned(), Duration::from_secs(seconds));
        }
    }
    let _schedules = runtime.start_schedules(&periods)?;
    let app = runtime.router(options)?;
    let functions = runtime.functions().count();
    tracing::info!(%addr, functions, "local HTTP API ready");
    println!("{functions} functions of template.yaml running, each under its own IAM policy");
    println!("local HTTP API ready on http://{addr} (try: curl http://{addr}/health)");
    println!("metrics (Prometheus text) on http://{addr}/metrics; `make audit` checks the numbers");
    serve_http(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await;
    Ok(())
}

/// `make dev`'s names: the template's resources without their stage suffix (docs/api.md, "Names"),
/// `TABLE_NAME` and `EVENT_BUS_NAME` if set; the queues' URLs from LocalStack.
async fn local_names(topology: &Topology, base: &BaseClients) -> Result<Names, String> {
    let local = |kind: &str| -> Result<String, String> {
        Ok(topology.resources[topology.only(kind)?].local_name.clone())
    };
    let table = env_or("TABLE_NAME", &local("AWS::DynamoDB::Table")?);
    let bus = env_or("EVENT_BUS_NAME", &local("AWS::Events::EventBus")?);
    let mut queues = BTreeMap::new();
    for (id, resource) in topology.resources.iter().filter(|(_, r)| r.kind == "AWS::SQS::Queue") {
        let url = queue_url(&base.sqs, &resource.local_name).await?;
        queues.insert(id.clone(), LocalQueue { name: resource.local_name.clone(), url });
    }
    Ok(Names { table, bus, queues, stage: "local".into() })
}

/// Puts the demo stock in place unless it is there already (`expectedVersion: 0`).
async fn seed_demo_stock(store: &Store) -> Result<(), String> {
    for (sku, location, on_hand) in DEMO_STOCK {
        let change = StockChange::Set { on_hand: *on_hand };
        match store.write_stock(sku, location, change, Some(0), Some("demo seed"), &Default::default()).await
        {
            Ok(_) | Err(Error::VersionConflict { .. }) => {}
            Err(e) => return Err(format!("seeding demo stock failed: {e}")),
        }
    }
    // The web shop's channel: paris first, then berlin, keeping 2 units at each for the stores.
    let locations = ["paris".to_owned(), "berlin".to_owned()];
    match store.put_channel("web-shop", &locations, 2, Some(0), &Default::default()).await {
        Ok(_) | Err(Error::VersionConflict { .. }) => {}
        Err(e) => return Err(format!("seeding the demo channel failed: {e}")),
    }
    println!(
        "demo stock seeded: {} items and the channel web-shop (see README.md, Demo stock)",
        DEMO_STOCK.len()
    );
    Ok(())
}
