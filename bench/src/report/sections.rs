//! The figures of each section of BENCHMARKS.md, as the placeholders of `report/benchmarks.md`:
//! one function per section, each setting its own values, flags and table rows.
//!
//! Table rows are built here (one line per row, joined with `\n`, no trailing newline); their
//! headers are in the template.

use super::template::Values;
use super::{cell, clients, yes};
use crate::contention::{Scenario, Strategy};
use crate::hot_model::ModelRun;
use crate::Results;

/// Said after the header line when the run was a quick one.
const QUICK_NOTE: &str =
    " **This was a quick run (`BENCH_QUICK=1`): its figures are not the reference ones.**";

/// The header: when, which commit, how long, and the machine table.
pub fn header(r: &Results, v: &mut Values) {
    let m = &r.machine;
    v.set("generated_at", &r.generated_at)
        .set("commit", &m.commit)
        .set("total_seconds", format!("{:.0}", r.total_seconds))
        .set("quick_note", if r.quick { QUICK_NOTE } else { "" })
        .set("cpu", &m.cpu)
        .set("cores", m.cores)
        .set("memory_gib", m.memory_gib)
        .set("os", &m.os)
        .set("rustc", &m.rustc)
        .set("build", &m.build)
        .set("dynamodb", &m.dynamodb);
}

/// The goals table: each goal reached or not, with its figure when there is one.
pub fn goals(r: &Results, v: &mut Values) {
    let g = &r.goals;
    let ratio128 = r.ratios.iter().find(|x| x.scenario == Scenario::Plenty && x.clients == 128);
    let reserve = r.operations.iter().find(|o| o.operation == "reserve");
    v.set("goal_no_oversells", yes(g.no_oversells))
        .set("goal_no_spurious_failures", yes(g.no_spurious_failures_ours))
        .set(
            "goal_ratio_at_128",
            match (g.ratio_at_128_at_least_5x, ratio128) {
                (Some(ok), Some(x)) => format!("{} ({:.1}x)", yes(ok), x.throughput_ratio),
                _ => "not measured (C = 128 was not run)".into(),
            },
        )
        .set(
            "goal_reserve_one_request",
            match reserve {
                Some(o) => format!(
                    "{} (mean {}, max {})",
                    yes(g.reserve_one_request),
                    o.dynamodb_requests_mean,
                    o.dynamodb_requests_max
                ),
                None => "not measured".into(),
            },
        )
        .set(
            "goal_reserve_new_process",
            match r.operations.iter().find(|o| o.operation == "reserve (new process)") {
                Some(o) => format!(
                    "{} (mean {}, max {})",
                    yes(o.dynamodb_requests_max <= 1),
                    o.dynamodb_requests_mean,
                    o.dynamodb_requests_max
                ),
                None => "not measured".into(),
            },
        )
        .set(
            "goal_reserve_kit",
            match r.operations.iter().find(|o| o.operation == "reserve (kit of 3)") {
                Some(o) => format!(
                    "{} (mean {}, max {})",
                    yes(o.dynamodb_requests_max <= 2),
                    o.dynamodb_requests_mean,
                    o.dynamodb_requests_max
                ),
                None => "not measured".into(),
            },
        )
        .set("goal_availability_all", availability_goal(r, "availability (100 skus)", EMULATOR_QUERIES, 20.0))
        .set(
            "goal_availability_channel",
            availability_goal(r, "availability (100 skus, channel)", EMULATOR_BATCHES, 5.0),
        );
}

/// Whether `operation`'s p50 is at most `limit` times get-stock's, and what the same DynamoDB
/// requests cost the emulator alone over its own Query.
fn availability_goal(r: &Results, operation: &str, alone: &str, limit: f64) -> String {
    let p50 = |name: &str| r.operations.iter().find(|o| o.operation == name).map(|o| o.latency.p50_ms);
    match (p50(operation), p50("get-stock"), p50(alone), p50(EMULATOR_QUERY)) {
        (Some(op), Some(get), Some(alone), Some(query)) if get > 0.0 && query > 0.0 => format!(
            "{} ({:.1}x; its DynamoDB requests alone, sent by the bench: {:.1}x the emulator's own Query)",
            yes(op <= limit * get),
            op / get,
            alone / query
        ),
        _ => "not measured".into(),
    }
}

/// Section 1: the stock of the plenty scenario and one table per scenario.
pub fn contention(r: &Results, v: &mut Values) {
    v.set("max_on_hand", inventory::domain::MAX_ON_HAND)
        .set("plenty_rows", contention_rows(r, Scenario::Plenty))
        .set("scarce_rows", contention_rows(r, Scenario::Scarce));
}

/// Section 1's rows for one scenario: by client count, ours then the baseline.
fn contention_rows(r: &Results, scenario: Scenario) -> String {
    let mut rows = Vec::new();
    for c in clients(r) {
        for strategy in [Strategy::Ours, Strategy::Baseline] {
            let Some(x) = cell(r, strategy, scenario, c) else { continue };
            let ratio = if strategy == Strategy::Ours {
                r.ratios
                    .iter()
                    .find(|q| q.scenario == scenario && q.clients == c)
                    .map(|q| format!("{:.1}x", q.throughput_ratio))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let stock =
                if scenario == Scenario::Plenty { "plenty".to_owned() } else { x.initial_stock.to_string() };
            rows.push(format!(
                "| {c} | {:?} | {stock} | {} | {} | {:.1} | {ratio} | {} | {} | {} | {} | {} | {} | {} | {} |",
                strategy,
                x.requests,
                x.successes,
                x.successes_per_s,
                x.latency.p50_ms,
                x.latency.p95_ms,
                x.latency.p99_ms,
                x.spurious_failures,
                x.oversells,
                x.retries_per_success,
                if scenario == Scenario::Plenty { "-".to_owned() } else { yes(x.sold_out).to_owned() },
                yes(x.consistent)
            ));
        }
    }
    rows.join("\n")
}

/// Section 2: one row per operation, with its p50 over get-stock's (the emulator-alone rows: over
/// the emulator's own Query).
pub fn operations(r: &Results, v: &mut Values) {
    let p50 = |name: &str| r.operations.iter().find(|o| o.operation == name).map(|o| o.latency.p50_ms);
    let rows: Vec<String> = r
        .operations
        .iter()
        .map(|o| {
            let statuses: Vec<String> = o.statuses.iter().map(u16::to_string).collect();
            let base =
                if o.operation.starts_with(EMULATOR_ALONE) { p50(EMULATOR_QUERY) } else { p50("get-stock") };
            let ratio = match base {
                Some(base) if base > 0.0 => format!("{:.1}x", o.latency.p50_ms / base),
                _ => "-".into(),
            };
            format!(
                "| {} | `{}` | {} | {} | {} | {} | {} | {}, {} | {} | {} |",
                o.operation,
                o.route,
                o.latency.count,
                o.latency.p50_ms,
                ratio,
                o.latency.p95_ms,
                o.latency.p99_ms,
                o.dynamodb_requests_mean,
                o.dynamodb_requests_max,
                // Rows measured outside the HTTP server (routes in parentheses) count no capacity.
                if o.route.starts_with('(') { "-".to_owned() } else { o.capacity_units_mean.to_string() },
                statuses.join(", ")
            )
        })
        .collect();
    v.set("operation_rows", rows.join("\n"));
}

/// Rows measured by the bench straight against DynamoDB Local (`storefront::emulator_alone`).
const EMULATOR_ALONE: &str = "emulator alone:";
const EMULATOR_QUERY: &str = "emulator alone: 1 Query (get-stock's)";
const EMULATOR_QUERIES: &str = "emulator alone: 100 Queries (availability's)";
const EMULATOR_BATCHES: &str = "emulator alone: GetItem + 2 BatchGetItem (availability, channel)";

/// Section 3: the not-due holds loaded first, and one row per sweep.
pub fn expiry(r: &Results, v: &mut Values) {
    let rows: Vec<String> = r
        .expiry
        .iter()
        .map(|e| {
            format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
                e.due,
                e.not_due,
                e.expired,
                e.failed,
                e.items_read,
                e.dynamodb_requests,
                e.capacity_units,
                e.seconds,
                e.holds_per_s,
                yes(e.verified)
            )
        })
        .collect();
    v.set("not_due", r.expiry.iter().map(|e| e.not_due).max().unwrap_or(0))
        .set("expiry_load_seconds", r.expiry_load_seconds)
        .set("expiry_rows", rows.join("\n"));
}

/// Section 4: the number of runs and one row per function.
pub fn cold_starts(r: &Results, v: &mut Values) {
    let rows: Vec<String> = r
        .cold_starts
        .iter()
        .map(|c| {
            format!(
                "| {} | {} | {} | {} | {} | {} |",
                c.function,
                c.binary_bytes,
                c.arm64_zip_bytes.map(|z| z.to_string()).unwrap_or_else(|| "-".into()),
                c.ready_ms,
                c.first_response_ms,
                yes(c.all_ok)
            )
        })
        .collect();
    v.set("cold_start_runs", r.cold_starts.iter().map(|c| c.runs).max().unwrap_or(0))
        .set("cold_start_rows", rows.join("\n"));
}

/// Section 5, when the model ran (flag `model`): its rows, the goals at C = 256 on 16 shards
/// when both 1 and 16 shards ran there (flag `shard_goals`), and the ceiling on paper.
pub fn model(r: &Results, v: &mut Values) {
    v.flag("model", r.model.is_some());
    let Some(m) = &r.model else { return };
    let window_ms = super::mean_hold_ms(&m.params);
    v.set("model", &m.model)
        .set("seconds_per_cell", m.seconds_per_cell)
        .set("arrival_seconds", m.arrival_seconds)
        .set("model_reps", m.cells.iter().map(|c| c.reps).max().unwrap_or(1))
        .set("model_rows", model_rows(m))
        .set("mean_hold_ms", format!("{window_ms:.1}"))
        .set("ceiling_1", format!("{:.0}", 1000.0 / window_ms))
        .set("ceiling_16", format!("{:.0}", 16000.0 / window_ms))
        .set("ceiling_64", format!("{:.0}", 64000.0 / window_ms))
        .set("queue_seconds_1024", format!("{:.1}", 1024.0 / best_rate(m)))
        .set("best_rate", format!("{:.0}", best_rate(m)));
    let at = |shards: u32| {
        m.cells.iter().find(|c| c.clients == 256 && c.shards == shards && c.hold_p50_ms.is_none())
    };
    let (Some(one), Some(sixteen)) = (at(1), at(16)) else {
        v.flag("shard_goals", false);
        return;
    };
    let ratio = one.conflicts_per_success / sixteen.conflicts_per_success.max(0.01);
    v.flag("shard_goals", true)
        .set("shard_goal_oversells", format!("{} ({})", yes(sixteen.oversells == 0), sixteen.oversells))
        .set(
            "shard_goal_spurious_rejections",
            format!("{} ({})", yes(sixteen.spurious_rejections == 0), sixteen.spurious_rejections),
        )
        .set(
            "shard_goal_unavailable",
            format!("{} ({}%)", yes(sixteen.unavailable_pct < 0.1), sixteen.unavailable_pct),
        )
        .set(
            "shard_goal_conflicts",
            format!(
                "{} ({:.1}x: {} against {})",
                yes(ratio >= 8.0),
                ratio,
                sixteen.conflicts_per_success,
                one.conflicts_per_success
            ),
        );
}

/// The most successes per second a row of section 5 had: about DynamoDB Local's own rate.
fn best_rate(m: &ModelRun) -> f64 {
    m.cells.iter().map(|c| c.applied_per_s()).fold(1.0, f64::max)
}

/// Section 5's rows, in the order the model ran them.
fn model_rows(m: &ModelRun) -> String {
    let rows: Vec<String> = m
        .cells
        .iter()
        .map(|c| {
            format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.clients,
                c.shards,
                c.hold_p50_ms.map_or_else(|| "model's".to_owned(), |h| format!("{h}")),
                c.requests,
                c.successes_per_s,
                c.conflicts,
                c.conflicts_per_success,
                c.retries_per_success,
                c.throttles,
                c.unavailable,
                c.unavailable_pct,
                c.unavailable_applied,
                c.spurious_rejections,
                c.latency.p50_ms,
                c.latency.p99_ms,
                c.oversells,
                yes(c.consistent),
                c.release_lateness_ms,
                c.client_cpu_ms_per_attempt
            )
        })
        .collect();
    rows.join("\n")
}
