//! Writes the results: `bench/results.json`, the charts `bench/contention.svg` and
//! `bench/shards.svg`, and `BENCHMARKS.md`, all from one `Results`.
//!
//! Where things are:
//! - `benchmarks.md`: the fixed text of BENCHMARKS.md (headings, explanations, table headers),
//!   with `{{name}}` placeholders for the figures and `{{#if flag}}` blocks for what a run may
//!   lack (section 5, its goals table). Edit the prose there; its lines and blank lines are
//!   the output's, as they are (a paragraph is one long line; the file ends with a blank line,
//!   and two blank lines precede "Reproduce" after section 5, as BENCHMARKS.md always had).
//! - `template.rs`: fills such a template (plain substitution, rules in its docs).
//! - `sections.rs`: the values of each section's placeholders, table rows included.
//! - `charts.rs`: the two SVG charts.
//! - here: `write`, `markdown` (template + sections), the helpers the others share, and the
//!   golden tests (`bench/tests-data/`) that pin the rendered text.

mod charts;
mod sale;
mod sections;
mod template;

use std::path::Path;

use crate::contention::{Cell, Scenario, Strategy};
use crate::Results;
use charts::{chart, shards_chart};
use template::Values;

/// Writes `bench/results.json`, the charts and `BENCHMARKS.md` under `root` (the repository).
pub fn write(root: &Path, results: &Results) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("bench"))?;
    let json = serde_json::to_string_pretty(results).expect("results json");
    std::fs::write(root.join("bench/results.json"), json + "\n")?;
    std::fs::write(root.join("bench/contention.svg"), chart(results))?;
    if let Some(model) = &results.model {
        std::fs::write(root.join("bench/shards.svg"), shards_chart(model))?;
    }
    if let Some(chart) = sale::sale_chart(results) {
        std::fs::write(root.join("bench/sale.svg"), chart)?;
    }
    std::fs::write(root.join("BENCHMARKS.md"), markdown(results))
}

/// The mean of the model's hold time, in ms: the log-normal's (`holdP50`, `holdP99`), or the
/// fixed window of results from before the distribution (`conflictWindow`).
fn mean_hold_ms(params: &serde_json::Value) -> f64 {
    match (params["holdP50"].as_f64(), params["holdP99"].as_f64()) {
        (Some(p50), Some(p99)) => {
            let sigma = (p99 / p50).ln() / 2.326_347_874;
            p50 * (sigma * sigma / 2.0).exp()
        }
        _ => params["conflictWindow"].as_f64().unwrap_or(20.0),
    }
}

/// A goal's or a check's cell: `yes`, or a bold `no`.
fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

/// Section 1's cell for a strategy, scenario and client count, if it ran.
fn cell(results: &Results, strategy: Strategy, scenario: Scenario, clients: usize) -> Option<&Cell> {
    results
        .contention
        .iter()
        .find(|c| c.strategy == strategy && c.scenario == scenario && c.clients == clients)
}

/// Section 1's client counts, ascending, each once.
fn clients(results: &Results) -> Vec<usize> {
    let mut c: Vec<usize> = results.contention.iter().map(|c| c.clients).collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// The template of BENCHMARKS.md: all its fixed text, with `{{name}}` where the figures go.
const TEMPLATE: &str = include_str!("benchmarks.md");

/// BENCHMARKS.md for `r`: the template filled section by section.
fn markdown(r: &Results) -> String {
    let mut values = Values::default();
    sections::header(r, &mut values);
    sections::goals(r, &mut values);
    sections::contention(r, &mut values);
    sections::operations(r, &mut values);
    sections::expiry(r, &mut values);
    sections::cold_starts(r, &mut values);
    sections::model(r, &mut values);
    sale::simulation(r, &mut values);
    template::fill(TEMPLATE, &values)
}

#[cfg(test)]
mod tests {
    //! Golden tests: the report rendered from fixed, hand-built results must match
    //! `bench/tests-data/*.golden.*`, captured from the renderer before the template refactor.
    //! On a mismatch the actual text is written next to the test binary's temp dir for a diff.

    use super::*;
    use crate::cold_start::ColdStart;
    use crate::expiry::SweepRun;
    use crate::hot_model::{ModelCell, ModelRun};
    use crate::http_ops::OperationCost;
    use crate::stats::Latency;
    use crate::{Goals, Machine, Ratio};

    fn lat(count: usize, p50_ms: f64, p95_ms: f64, p99_ms: f64) -> Latency {
        Latency { count, p50_ms, p95_ms, p99_ms, max_ms: p99_ms + 12.5 }
    }

    /// One contention cell: `(clients, requests, successes, spurious, successes/s, retries/success,
    /// p50, p95, p99)`, its stock from the scenario.
    #[allow(clippy::type_complexity)]
    fn contention_cell(
        strategy: Strategy,
        scenario: Scenario,
        (clients, requests, successes, spurious, per_s, retries, p50, p95, p99): (
            usize,
            u64,
            u64,
            u64,
            f64,
            f64,
            f64,
            f64,
            f64,
        ),
    ) -> Cell {
        let initial_stock = if scenario == Scenario::Plenty { 100_000 } else { requests as i64 / 2 };
        Cell {
            strategy,
            scenario,
            clients,
            initial_stock,
            requests,
            successes,
            rejections: requests - successes,
            spurious_failures: spurious,
            oversells: 0,
            errors: 0,
            retries_per_success: retries,
            elapsed_s: 10.0,
            successes_per_s: per_s,
            latency: lat(requests as usize, p50, p95, p99),
            consistent: true,
            sold_out: scenario == Scenario::Scarce && successes as i64 == initial_stock,
        }
    }

    fn op(operation: &str, route: &str, p50: f64, requests: (f64, u64), capacity: f64) -> OperationCost {
        OperationCost {
            operation: operation.into(),
            route: route.into(),
            latency: lat(200, p50, crate::stats::round(p50 * 1.8), crate::stats::round(p50 * 2.6)),
            dynamodb_requests_mean: requests.0,
            dynamodb_requests_max: requests.1,
            capacity_units_mean: capacity,
            statuses: if operation == "release" { vec![200, 409] } else { vec![200] },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn model_cell(
        clients: usize,
        shards: u32,
        requests: u64,
        per_s: f64,
        conflicts: u64,
        unavailable: u64,
        p50: f64,
        p99: f64,
    ) -> ModelCell {
        let successes = requests - unavailable;
        ModelCell {
            clients,
            reps: 1,
            hold_p50_ms: None,
            release_lateness_ms: 0.0,
            client_cpu_ms_per_attempt: 0.0,
            shards,
            requests,
            successes,
            successes_per_s: per_s,
            spurious_rejections: 0,
            unavailable,
            unavailable_applied: unavailable / 3,
            unavailable_pct: (unavailable as f64 * 10_000.0 / requests as f64).round() / 100.0,
            conflicts,
            opening_conflicts: conflicts / 4,
            throttles: 0,
            conflicts_per_success: (conflicts as f64 * 100.0 / successes as f64).round() / 100.0,
            retries_per_success: (conflicts as f64 * 110.0 / successes as f64).round() / 100.0,
            latency: lat(requests as usize, p50, p99 * 0.8, p99),
            oversells: 0,
            consistent: true,
        }
    }

    /// A full run: every section, C = 1, 8, 128 and the model at 1 and 16 shards up to C = 256.
    fn full() -> Results {
        use Scenario::{Plenty, Scarce};
        use Strategy::{Baseline, Ours};
        let contention = vec![
            contention_cell(Ours, Plenty, (1, 1210, 1210, 0, 121.0, 0.0, 8.1, 9.9, 12.4)),
            contention_cell(Baseline, Plenty, (1, 640, 640, 0, 64.0, 0.0, 15.2, 18.7, 22.3)),
            contention_cell(Ours, Plenty, (8, 1984, 1984, 0, 198.4, 0.0, 40.3, 52.8, 61.2)),
            contention_cell(Baseline, Plenty, (8, 1702, 402, 1300, 40.2, 4.23, 47.5, 60.1, 77.9)),
            contention_cell(Ours, Plenty, (128, 2013, 2013, 0, 201.3, 0.0, 633.0, 702.4, 741.9)),
            contention_cell(Baseline, Plenty, (128, 2391, 187, 2204, 18.7, 12.79, 540.2, 612.8, 688.1)),
            contention_cell(Ours, Scarce, (1, 400, 200, 0, 118.34, 0.0, 8.2, 10.1, 12.0)),
            contention_cell(Baseline, Scarce, (1, 400, 200, 0, 63.5, 0.0, 15.0, 18.2, 21.7)),
            contention_cell(Ours, Scarce, (8, 800, 400, 0, 196.0, 0.0, 39.9, 50.2, 60.0)),
            contention_cell(Baseline, Scarce, (8, 800, 352, 448, 35.2, 5.1, 45.0, 58.3, 70.2)),
            contention_cell(Ours, Scarce, (128, 2560, 1280, 0, 199.87, 0.0, 620.5, 690.0, 730.3)),
            contention_cell(Baseline, Scarce, (128, 2560, 230, 2330, 17.6, 13.0, 530.1, 600.9, 670.4)),
        ];
        let ratio = |scenario, clients, throughput_ratio| Ratio { scenario, clients, throughput_ratio };
        Results {
            generated_at: "2025-06-01T12:34:56Z".into(),
            command: "make bench".into(),
            quick: false,
            machine: Machine {
                cpu: "AMD EPYC 7B13".into(),
                cores: 2,
                memory_gib: 7.76,
                os: "Linux 6.8.0 x86_64".into(),
                rustc: "rustc 1.87.0 (17067e9ac 2025-05-09)".into(),
                build: "bench client and local HTTP server: dev profile".into(),
                dynamodb: "DynamoDB Local".into(),
                commit: "abc1234".into(),
            },
            contention,
            ratios: vec![
                ratio(Plenty, 1, 1.89),
                ratio(Plenty, 8, 4.94),
                ratio(Plenty, 128, 10.76),
                ratio(Scarce, 1, 1.86),
                ratio(Scarce, 8, 5.57),
                ratio(Scarce, 128, 11.36),
            ],
            operations: vec![
                op("reserve", "PUT /v1/reservations/{orderId}", 9.8, (1.0, 1), 6.0),
                op("confirm", "POST /v1/reservations/{orderId}/confirm", 12.4, (3.0, 3), 4.5),
                op("release", "POST /v1/reservations/{orderId}/release", 10.1, (2.0, 2), 3.5),
                op("get-stock", "GET /v1/stock/{sku}", 3.2, (1.0, 1), 0.5),
                op("list-holds", "GET /v1/stock/{sku}/holds", 4.75, (1.5, 3), 1.25),
                op("reserve (kit of 3)", "POST /v1/reservations", 11.0, (1.0, 1), 10.0),
                op("reserve (new process)", "(the store of a new process, no HTTP)", 6.0, (1.0, 1), 6.0),
                op("availability (100 skus)", "POST /v1/availability", 60.0, (100.0, 100), 100.0),
                op("availability (100 skus, channel)", "POST /v1/availability", 12.8, (3.0, 3), 101.0),
                op("emulator alone: 1 Query (get-stock's)", "(the bench)", 1.2, (1.0, 1), 0.0),
                op("emulator alone: 100 Queries (availability's)", "(the bench)", 36.0, (100.0, 100), 0.0),
                op(
                    "emulator alone: GetItem + 2 BatchGetItem (availability, channel)",
                    "(the bench)",
                    12.0,
                    (3.0, 3),
                    0.0,
                ),
            ],
            expiry: vec![
                SweepRun {
                    due: 1000,
                    not_due: 20000,
                    expired: 1000,
                    failed: 0,
                    items_read: 1000,
                    dynamodb_requests: 43,
                    capacity_units: 4012.5,
                    seconds: 4.62,
                    holds_per_s: 216.45,
                    verified: true,
                },
                SweepRun {
                    due: 10000,
                    not_due: 20000,
                    expired: 10000,
                    failed: 0,
                    items_read: 10000,
                    dynamodb_requests: 421,
                    capacity_units: 40120.0,
                    seconds: 47.9,
                    holds_per_s: 208.77,
                    verified: true,
                },
            ],
            expiry_load_seconds: 38.21,
            cold_starts: vec![
                ColdStart {
                    function: "api".into(),
                    binary_bytes: 9_876_543,
                    arm64_zip_bytes: Some(3_456_789),
                    runs: 5,
                    ready_ms: 21.4,
                    first_response_ms: 48.9,
                    all_ok: true,
                },
                ColdStart {
                    function: "expiry".into(),
                    binary_bytes: 8_765_432,
                    arm64_zip_bytes: None,
                    runs: 5,
                    ready_ms: 19.8,
                    first_response_ms: 61.0,
                    all_ok: false,
                },
            ],
            model: Some(ModelRun {
                model: "conflict window 20 ms, 1000 WCU/s per item".into(),
                params: serde_json::json!({ "conflictWindow": 20.0, "wcuPerItem": 1000 }),
                seconds_per_cell: 8.0,
                arrival_seconds: 1.0,
                cells: vec![
                    model_cell(1, 1, 420, 52.5, 0, 0, 18.9, 24.1),
                    model_cell(32, 1, 1530, 47.8, 6120, 3, 640.2, 2210.0),
                    model_cell(256, 1, 1602, 44.1, 25240, 96, 4980.0, 5002.3),
                    model_cell(32, 16, 1610, 201.2, 310, 0, 150.3, 410.8),
                    model_cell(256, 16, 1655, 198.7, 1490, 1, 1250.0, 2890.4),
                ],
            }),
            simulation: Some(crate::sale_sim::SimRun {
                model: "hold time log-normal p50 25 ms, p99 90 ms".into(),
                simulated_seconds: 5.0,
                cells: vec![
                    sim_cell(32, 1, Some(170.0), 47.2, 6.5, 0.0),
                    sim_cell(256, 1, Some(170.0), 45.0, 180.2, 0.0),
                    sim_cell(32, 16, Some(170.0), 170.0, 0.4, 0.0),
                    sim_cell(256, 16, Some(170.0), 170.0, 1.3, 0.0),
                    sim_cell(256, 1, None, 34.0, 60.0, 85.0),
                    sim_cell(256, 64, None, 1900.0, 6.0, 0.0),
                    sim_cell(1024, 1, None, 33.0, 250.0, 96.0),
                    sim_cell(1024, 64, None, 2050.0, 12.9, 0.17),
                ],
            }),
            goals: Goals {
                no_oversells: true,
                no_spurious_failures_ours: true,
                ratio_at_128_at_least_5x: Some(true),
                reserve_one_request: true,
            },
            total_seconds: 912.4,
        }
    }

    fn sim_cell(
        clients: usize,
        shards: u32,
        emulator_rate: Option<f64>,
        per_s: f64,
        conflicts: f64,
        unavailable_pct: f64,
    ) -> crate::sale_sim::SimCell {
        crate::sale_sim::SimCell {
            clients,
            shards,
            emulator_rate,
            client_cpu_ms: emulator_rate.map(|_| 0.8),
            requests: (per_s * 5.0) as u64,
            successes_per_s: per_s,
            conflicts_per_success: conflicts,
            opening_conflicts: 0,
            throttles: 0,
            unavailable: (unavailable_pct * per_s) as u64,
            unavailable_applied: 0,
            seconds: 5.0,
            unavailable_pct,
            latency: crate::stats::Latency::of(vec![30.0, 45.0, 900.0]),
        }
    }

    /// A quick run with gaps: no C = 128, no reserve row, the model on 1 shard only (so no
    /// goals table for 16 shards), a failed goal.
    fn quick() -> Results {
        let mut r = full();
        r.quick = true;
        r.machine.commit = "abc1234 (modified)".into();
        r.contention.retain(|c| c.clients != 128);
        r.ratios.retain(|x| x.clients != 128);
        r.operations.retain(|o| o.operation != "reserve");
        r.cold_starts.truncate(1);
        if let Some(m) = &mut r.model {
            m.cells.retain(|c| c.shards == 1);
        }
        r.goals.ratio_at_128_at_least_5x = None;
        r.goals.no_spurious_failures_ours = false;
        r.total_seconds = 61.0;
        r
    }

    /// Compares `actual` with the golden file `name` in `bench/tests-data`; on a mismatch
    /// writes the actual text to the temp dir and fails with both paths.
    fn golden(name: &str, actual: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests-data").join(name);
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        let out = std::env::temp_dir().join(format!("bench-actual-{name}"));
        let _ = std::fs::remove_file(&out);
        if actual != expected {
            std::fs::write(&out, actual).expect("write the actual text");
            panic!("{} differs from the golden file; actual: {}", path.display(), out.display());
        }
    }

    #[test]
    fn benchmarks_md_matches_golden() {
        golden("report-full.golden.md", &markdown(&full()));
    }

    #[test]
    fn benchmarks_md_quick_run_matches_golden() {
        golden("report-quick.golden.md", &markdown(&quick()));
    }

    #[test]
    fn benchmarks_md_without_model_matches_golden() {
        let mut r = full();
        r.model = None;
        golden("report-no-model.golden.md", &markdown(&r));
    }

    #[test]
    fn charts_match_golden() {
        let r = full();
        golden("contention.golden.svg", &chart(&r));
        golden("shards.golden.svg", &shards_chart(r.model.as_ref().expect("model")));
    }
}
