//! `make bench`: measures the service against the local stack and writes `bench/results.json`,
//! `bench/contention.svg` and `BENCHMARKS.md` from the same run.
//!
//! Sections: hot-SKU contention (ours vs the seed strategy), per-operation latency and DynamoDB
//! cost through the local HTTP server, the expiry sweep at scale, and cold-start proxies.
//! `BENCH_QUICK=1` runs a small configuration (for trying the harness, not for figures).
//! `bench --render` rewrites BENCHMARKS.md and the chart from `bench/results.json` alone;
//! `bench --ops-only` runs section 2 alone and prints its requests per operation beside those of
//! `bench/results.json` (a restructure must not change them).

mod cold_start;
mod contention;
mod expiry;
mod hot_model;
mod http_ops;
mod report;
mod sale_sim;
mod stats;
mod storefront;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use contention::{Plan, Scenario, Strategy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub rustc: String,
    pub build: String,
    pub dynamodb: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ratio {
    pub scenario: Scenario,
    pub clients: usize,
    /// Successful reservations per second, ours / baseline.
    pub throughput_ratio: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Goals {
    pub no_oversells: bool,
    pub no_spurious_failures_ours: bool,
    pub ratio_at_128_at_least_5x: Option<bool>,
    pub reserve_one_request: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    pub generated_at: String,
    pub command: String,
    pub quick: bool,
    pub machine: Machine,
    pub contention: Vec<contention::Cell>,
    pub ratios: Vec<Ratio>,
    pub operations: Vec<http_ops::OperationCost>,
    pub expiry: Vec<expiry::SweepRun>,
    pub expiry_load_seconds: f64,
    pub cold_starts: Vec<cold_start::ColdStart>,
    /// One hot item under the contention model of real DynamoDB.
    #[serde(default)]
    pub model: Option<hot_model::ModelRun>,
    /// The simulation of one SKU's sale past the emulator.
    #[serde(default)]
    pub simulation: Option<sale_sim::SimRun>,
    pub goals: Goals,
    pub total_seconds: f64,
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let dirty = !command_output("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        memory_gib: stats::round(mem_kib / 1024.0 / 1024.0),
        os: command_output("uname", &["-srm"]),
        rustc: command_output("rustc", &["--version"]),
        build: "bench client and local HTTP server: dev profile (dependencies at opt-level 1); functions: release profile, host target".into(),
        dynamodb: std::env::var("BENCH_DYNAMODB").unwrap_or_else(|_| "DynamoDB Local".into()),
        commit: format!("{}{}", command_output("git", &["rev-parse", "--short", "HEAD"]), if dirty { " (modified)" } else { "" }),
    }
}

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let started = Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::args().any(|a| a == "--render") {
        // Rewrites BENCHMARKS.md and the chart from bench/results.json (same figures, new text).
        let json = std::fs::read_to_string(root.join("bench/results.json")).expect("bench/results.json");
        let results: Results = serde_json::from_str(&json).expect("results.json parses");
        report::write(&root, &results).expect("write the results");
        println!("rendered BENCHMARKS.md and bench/contention.svg from bench/results.json");
        return;
    }
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
    let model_clients = env_list("BENCH_MODEL_CLIENTS", if quick { "1,32" } else { "1,32,256,1024" });
    let model_shards = env_list("BENCH_MODEL_SHARDS", if quick { "1,16" } else { "1,16,64" });
    // Every client count on one shard; on more shards, the counts past 1.
    let model_clients: Vec<(usize, u32)> = model_shards
        .iter()
        .flat_map(|&s| model_clients.iter().filter(move |&&c| s == 1 || c > 1).map(move |&c| (c, s as u32)))
        .collect();
    let model_seconds = Duration::from_secs(if quick { 2 } else { 8 });
    // Each section 5 row is the sum of this many runs (its conflicts at a sale's opening vary
    // from run to run on this machine).
    let model_reps: u32 = std::env::var("BENCH_MODEL_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    if std::env::args().any(|a| a == "--model-only") {
        // Only section 5, merged into the last full run's results (its machine and commit kept).
        let json = std::fs::read_to_string(root.join("bench/results.json")).expect("bench/results.json");
        let mut results: Results = serde_json::from_str(&json).expect("results.json parses");
        results.model = Some(hot_model::run(&model_clients, model_seconds, model_reps).await);
        results.simulation = sale_sim::run_for(&results);
        report::write(&root, &results).expect("write the results");
        println!("wrote sections 5 and 6 into bench/results.json and BENCHMARKS.md");
        return;
    }
    if std::env::args().any(|a| a == "--simulate") {
        // Only section 6, from the last results (DynamoDB Local's rate and section 5's rows).
        let json = std::fs::read_to_string(root.join("bench/results.json")).expect("bench/results.json");
        let mut results: Results = serde_json::from_str(&json).expect("results.json parses");
        results.simulation = sale_sim::run_for(&results);
        report::write(&root, &results).expect("write the results");
        println!("wrote section 6 into bench/results.json and BENCHMARKS.md");
        return;
    }
    if std::env::args().any(|a| a == "--ops-only") {
        ops_only(&root, if quick { 40 } else { 400 }).await;
        return;
    }
    if std::env::args().any(|a| a == "--gate-overhead") {
        gate_overhead(if quick { 40 } else { 400 }).await;
        return;
    }
    let machine = machine();
    println!("bench on {} ({} cores), commit {}", machine.cpu, machine.cores, machine.commit);

    // 1. Hot-SKU contention.
    let plan = Plan {
        clients: env_list("BENCH_CLIENTS", if quick { "1,8" } else { "1,8,32,128" }),
        plenty_duration: Duration::from_secs(if quick { 2 } else { 8 }),
        scarce_requests: if quick { |c| (c * 4).max(20) } else { |c| (c * 4).max(100) },
    };
    contention::warm_up(Duration::from_secs(if quick { 1 } else { 4 })).await;
    let mut cells = Vec::new();
    for scenario in [Scenario::Plenty, Scenario::Scarce] {
        for &clients in &plan.clients {
            for strategy in [Strategy::Ours, Strategy::Baseline] {
                let cell = contention::run_cell(strategy, scenario, clients, &plan).await;
                println!(
                    "contention {:?} {:?} C={}: {} ok / {} requests, {:.1}/s, p99 {} ms, spurious {}, oversells {}, retries/ok {}",
                    scenario, strategy, clients, cell.successes, cell.requests, cell.successes_per_s,
                    cell.latency.p99_ms, cell.spurious_failures, cell.oversells, cell.retries_per_success
                );
                cells.push(cell);
            }
        }
    }
    let ratios: Vec<Ratio> = cells
        .iter()
        .filter(|c| c.strategy == Strategy::Ours)
        .filter_map(|ours| {
            let base = cells.iter().find(|b| {
                b.strategy == Strategy::Baseline && b.scenario == ours.scenario && b.clients == ours.clients
            })?;
            Some(Ratio {
                scenario: ours.scenario,
                clients: ours.clients,
                throughput_ratio: stats::round(
                    ours.successes_per_s / base.successes_per_s.max(f64::MIN_POSITIVE),
                ),
            })
        })
        .collect();

    // 5 (run here, while the machine is as warm as for section 1). One hot item under the model.
    let model = hot_model::run(&model_clients, model_seconds, model_reps).await;

    // 2. Per-operation latency and cost through the local HTTP server.
    let operations = http_ops::run(if quick { 40 } else { 400 }).await;
    for op in &operations {
        println!(
            "operation {}: p50 {} ms, p99 {} ms, {} DynamoDB requests, {} capacity units",
            op.operation,
            op.latency.p50_ms,
            op.latency.p99_ms,
            op.dynamodb_requests_mean,
            op.capacity_units_mean
        );
    }

    // 3. The expiry sweep at scale.
    let (not_due, big) = if quick { (5_000, 2_000) } else { (100_000, 10_000) };
    let (expiry, expiry_load_seconds) = expiry::run(not_due, big).await;
    for run in &expiry {
        println!(
            "expiry: {} due amid {} not due: {} s, {} items read, verified {}",
            run.due, run.not_due, run.seconds, run.items_read, run.verified
        );
    }

    // 4. Cold-start proxies.
    let table = integration_tests::TestTable::new().await;
    // Each function with the variables its template entry gives it (resolved to this stack's
    // table, bus and queues), as Lambda would start it, plus the stack's endpoints.
    let topology = integration_tests::runtime::topology();
    let localstack = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let queues = integration_tests::runtime::local_queues(&localstack);
    let bus = std::env::var("EVENT_BUS_NAME").unwrap_or_else(|_| "inventory-events".into());
    let names = integration_tests::runtime::names(table.store.table(), &bus, queues);
    let mut stack_env = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), table.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
    ];
    for name in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"] {
        if let Ok(value) = std::env::var(name) {
            stack_env.push((name.to_owned(), value));
        }
    }
    let service_env = |function: &str| {
        let spec = topology.function(function).expect("a function of the template");
        let mut env: Vec<(String, String)> =
            names.environment(topology, spec).expect("its environment resolves").into_iter().collect();
        env.extend(stack_env.iter().cloned());
        env
    };
    let bin_dir =
        std::env::var("BENCH_BIN_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target/release"));
    let cold_starts = cold_start::run(&root, &bin_dir, if quick { 3 } else { 7 }, service_env).await;
    for c in &cold_starts {
        println!(
            "cold start {}: {} bytes, ready {} ms, first response {} ms, ok {}",
            c.function, c.binary_bytes, c.ready_ms, c.first_response_ms, c.all_ok
        );
    }

    let reserve_requests =
        operations.iter().find(|o| o.operation == "reserve").map(|o| o.dynamodb_requests_max);
    let at_128 = ratios.iter().find(|r| r.scenario == Scenario::Plenty && r.clients == 128);
    let goals = Goals {
        no_oversells: cells.iter().all(|c| c.oversells == 0 && c.consistent),
        no_spurious_failures_ours: cells
            .iter()
            .filter(|c| c.strategy == Strategy::Ours)
            .all(|c| c.spurious_failures == 0),
        ratio_at_128_at_least_5x: at_128.map(|r| r.throughput_ratio >= 5.0),
        reserve_one_request: reserve_requests == Some(1),
    };
    let mut results = Results {
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: "make bench".into(),
        quick,
        machine,
        contention: cells,
        ratios,
        operations,
        expiry,
        expiry_load_seconds,
        cold_starts,
        model: Some(model),
        simulation: None,
        goals,
        total_seconds: stats::round(started.elapsed().as_secs_f64()),
    };
    // 6. The sale simulated past the emulator (no I/O).
    results.simulation = sale_sim::run_for(&results);
    let out_dir = std::env::var("BENCH_OUT").map(PathBuf::from).unwrap_or_else(|_| root.clone());
    report::write(&out_dir, &results).expect("write the results");
    println!("goals: {:?}", results.goals);
    println!("wrote bench/results.json, bench/contention.svg and BENCHMARKS.md in {}", out_dir.display());
}

/// Section 2 alone: each operation's DynamoDB requests (mean, max) now and in the last full run
/// (`bench/results.json`), and whether they are the same.
async fn ops_only(root: &std::path::Path, n: usize) {
    let json = std::fs::read_to_string(root.join("bench/results.json")).expect("bench/results.json");
    let results: Results = serde_json::from_str(&json).expect("results.json parses");
    println!("| operation | requests/op before (mean, max) | now (mean, max) | same | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    let mut differ = 0;
    for op in http_ops::run(n).await {
        let before = results.operations.iter().find(|b| b.operation == op.operation);
        let was = before.map(|b| (b.dynamodb_requests_mean, b.dynamodb_requests_max));
        let now = (op.dynamodb_requests_mean, op.dynamodb_requests_max);
        let same = was == Some(now);
        // An operation the last full run did not have is new, not changed.
        differ += usize::from(was.is_some() && !same);
        let verdict = match (was, same) {
            (None, _) => "new",
            (_, true) => "yes",
            _ => "NO",
        };
        let was = was.map_or("-".to_owned(), |(mean, max)| format!("{mean}, {max}"));
        let (p50, p99) = (op.latency.p50_ms, op.latency.p99_ms);
        println!("| {} | {was} | {}, {} | {verdict} | {p50} | {p99} |", op.operation, now.0, now.1);
    }
    if differ > 0 {
        eprintln!("{differ} operation(s) changed their requests per operation");
        std::process::exit(1);
    }
}

/// Section 2 through the local runtime of template.yaml (every call through its function's IAM
/// gate) and through one ungated router, in one run: a warm-up run (not counted), then gated,
/// ungated, ungated, gated (so a drift of the machine or of DynamoDB Local weighs on both
/// alike); the gate's cost per operation as the ratio of the p50s (each the mean of two runs').
async fn gate_overhead(n: usize) {
    use http_ops::Server;
    http_ops::run_on(Server::Ungated, n).await;
    let mut p50 = std::collections::BTreeMap::<(String, &str), Vec<f64>>::new();
    let mut order = Vec::new();
    let (r, u) = (Server::Runtime, Server::Ungated);
    for server in [r, u, u, r, u, r, r, u] {
        let label = if server == Server::Runtime { "gated" } else { "ungated" };
        for op in http_ops::run_on(server, n).await {
            if !order.contains(&op.operation) {
                order.push(op.operation.clone());
            }
            p50.entry((op.operation, label)).or_default().push(op.latency.p50_ms);
        }
    }
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
    };
    println!("| operation | p50 ungated (ms) | p50 through the IAM gate (ms) | ratio |");
    println!("|---|---:|---:|---:|");
    for operation in order {
        let ungated = median(&p50[&(operation.clone(), "ungated")]);
        let gated = median(&p50[&(operation.clone(), "gated")]);
        println!("| {operation} | {ungated:.2} | {gated:.2} | {:.3} |", gated / ungated);
    }
    gate_cost();
}

/// The gate's own cost: one check of a reserve's transaction (5 items) and of a Query, against
/// the reserve function's policy, timed over many rounds (no I/O).
fn gate_cost() {
    let topology = integration_tests::runtime::topology();
    let names = integration_tests::runtime::names("bench", "bench-bus", Default::default());
    let spec = topology.function("reserve").expect("reserve");
    let policy = dev_server::iam::FunctionPolicy {
        function: "reserve".into(),
        principal: names.principal(spec),
        statements: names.statements(topology, spec).expect("statements"),
        resource_policies: names.resource_policies(topology).expect("resource policies"),
        from_template: false,
    };
    let item = |kind: &str| serde_json::json!({kind: {"TableName": "bench", "Key": {"pk": {"S": "STOCK#A"}, "sk": {"S": "LOC#w1"}}, "ConditionExpression": "available >= :q"}});
    let transaction = serde_json::json!({"TransactItems": [item("Update"), item("Put"), item("Put"), item("Put"), item("Put")]});
    let query = serde_json::json!({"TableName": "bench", "KeyConditionExpression": "pk = :p"});
    let (bytes_tx, bytes_q) = (transaction.to_string(), query.to_string());
    let rounds = 20_000;
    let started = Instant::now();
    for _ in 0..rounds {
        // What the gate does per call: read the body, map it to IAM calls, evaluate them.
        policy.check("DynamoDB_20120810.TransactWriteItems", bytes_tx.as_bytes()).expect("allowed");
        policy.check("DynamoDB_20120810.Query", bytes_q.as_bytes()).expect("allowed");
    }
    let per_pair = started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    println!("gate: {per_pair:.1} us for one TransactWriteItems (5 items) and one Query, parse included ({rounds} rounds, this build)");
}
