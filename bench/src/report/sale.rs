//! Section 6 of BENCHMARKS.md (the sale simulated past the emulator) and its chart,
//! `bench/sale.svg`.

use std::fmt::Write as _;

use super::template::Values;
use super::{mean_hold_ms, yes};
use crate::sale_sim::SimCell;
use crate::Results;

/// The goal of issue 27 for the simulation: one SKU at 64 shards.
const GOAL_RATE: f64 = 2500.0;
const GOAL_503_PCT: f64 = 0.1;

/// Section 6, when it ran (flag `simulation`): the rows against section 5 (with the difference
/// in conflicts per success), the rows on AWS, and what they show.
pub fn simulation(r: &Results, v: &mut Values) {
    v.flag("simulation", r.simulation.is_some() && r.model.is_some());
    let (Some(s), Some(m)) = (&r.simulation, &r.model) else { return };
    let mean_hold = mean_hold_ms(&m.params);
    let measured = |c: &SimCell| {
        m.cells.iter().find(|x| x.clients == c.clients && x.shards == c.shards && x.hold_p50_ms.is_none())
    };
    let mut within = 0;
    let mut compared = 0;
    let compare: Vec<String> = s
        .cells
        .iter()
        .filter(|c| c.emulator_rate.is_some())
        .filter_map(|c| {
            let x = measured(c)?;
            let diff = 100.0 * (c.conflicts_per_success - x.conflicts_per_success)
                / x.conflicts_per_success.max(0.01);
            compared += 1;
            within += usize::from(diff.abs() <= 25.0);
            Some(format!(
                "| {} | {} | {} | {} | {:+.0}% | {} | {} | {} | {} | {} | {} | {} |",
                c.clients,
                c.shards,
                x.conflicts_per_success,
                c.conflicts_per_success,
                diff,
                yes(diff.abs() <= 25.0),
                x.successes_per_s,
                c.successes_per_s,
                x.unavailable_pct,
                c.unavailable_pct,
                x.unavailable_applied,
                c.unavailable_applied
            ))
        })
        .collect();
    let aws: Vec<&SimCell> = s.cells.iter().filter(|c| c.emulator_rate.is_none()).collect();
    let aws_rows: Vec<String> = aws
        .iter()
        .map(|c| {
            format!(
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
                c.clients,
                c.shards,
                c.successes_per_s,
                f64::from(c.shards) * 1000.0 / mean_hold,
                c.conflicts_per_success,
                c.throttles,
                c.unavailable_pct,
                c.latency.p50_ms,
                c.latency.p99_ms
            )
        })
        .collect();
    // The goal: at 64 shards, a load that sells 2,500/s with under 0.1% 503.
    let at_64: Vec<&&SimCell> = aws.iter().filter(|c| c.shards == 64).collect();
    let met = at_64.iter().find(|c| c.successes_per_s >= GOAL_RATE && c.unavailable_pct < GOAL_503_PCT);
    let best = at_64
        .iter()
        .filter(|c| c.unavailable_pct < GOAL_503_PCT)
        .max_by(|a, b| a.successes_per_s.total_cmp(&b.successes_per_s));
    let goal = match (met, best) {
        (Some(c), _) => {
            format!("yes: {}/s at C = {}, 503 {}%", c.successes_per_s, c.clients, c.unavailable_pct)
        }
        (None, Some(c)) => format!(
            "**no**: at most {}/s with 503 under {GOAL_503_PCT}% (C = {}, 503 {}%)",
            c.successes_per_s, c.clients, c.unavailable_pct
        ),
        (None, None) => "**no**: no load kept 503 under 0.1%".to_owned(),
    };
    v.set("sim_model", &s.model)
        .set("sim_seconds", s.simulated_seconds)
        .set("sim_compare_rows", compare.join("\n"))
        .set("sim_within", format!("{within} of {compared}"))
        .set("sim_aws_rows", aws_rows.join("\n"))
        .set("sim_goal", goal)
        .set("sim_mean_hold_ms", format!("{mean_hold:.1}"))
        .set("sim_ceiling_64", format!("{:.0}", 64000.0 / mean_hold))
        .set("sim_shards_for_goal", format!("{:.0}", (GOAL_RATE * mean_hold / 1000.0).ceil()));
}

/// `bench/sale.svg`: successes/s by C on AWS for each shard count (the simulation), the ceiling
/// N / E[τ] of each on paper, and section 5's measured rows (this machine) as points.
pub fn sale_chart(r: &Results) -> Option<String> {
    let (s, m) = (r.simulation.as_ref()?, r.model.as_ref()?);
    let mean_hold = mean_hold_ms(&m.params);
    let aws: Vec<&SimCell> = s.cells.iter().filter(|c| c.emulator_rate.is_none()).collect();
    let mut shards: Vec<u32> = aws.iter().map(|c| c.shards).collect();
    shards.sort_unstable();
    shards.dedup();
    let (width, height, left, right, top, bottom) = (760.0, 420.0, 70.0, 600.0, 50.0, 350.0);
    let ceiling = |n: u32| f64::from(n) * 1000.0 / mean_hold;
    let max_rate = shards.iter().map(|&n| ceiling(n)).fold(1.0, f64::max) * 1.1;
    let (c_min, c_max) = (
        aws.iter().map(|c| c.clients).min().unwrap_or(1) as f64,
        aws.iter().map(|c| c.clients).max().unwrap_or(10) as f64,
    );
    let x = |c: f64| left + (right - left) * (c.ln() - c_min.ln()) / (c_max.ln() - c_min.ln()).max(1e-9);
    let y = |v: f64| bottom - (bottom - top) * v / max_rate;
    let colors = ["#777777", "#2b7bb9", "#5cb85c", "#d9534f", "#f0ad4e"];
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">One SKU's sale under the model: reserves/s by buyers at once (simulated)</text>"#,
        width / 2.0
    );
    let _ = writeln!(svg, r##"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>"##);
    let _ = writeln!(svg, r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>"##);
    for step in 0..=4 {
        let v = max_rate * f64::from(step) / 4.0;
        let _ =
            writeln!(svg, r##"<text x="{}" y="{}" text-anchor="end">{v:.0}</text>"##, left - 6.0, y(v) + 4.0);
    }
    let mut ticks: Vec<usize> = aws.iter().map(|c| c.clients).collect();
    ticks.sort_unstable();
    ticks.dedup();
    for c in ticks {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle">C = {c}</text>"##,
            x(c as f64),
            bottom + 18.0
        );
    }
    for (i, n) in shards.iter().enumerate() {
        let color = colors[i % colors.len()];
        let mut cells: Vec<&&SimCell> = aws.iter().filter(|c| c.shards == *n).collect();
        cells.sort_by_key(|c| c.clients);
        let points: Vec<String> =
            cells.iter().map(|c| format!("{:.1},{:.1}", x(c.clients as f64), y(c.successes_per_s))).collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"##,
            points.join(" ")
        );
        for c in &cells {
            let _ = writeln!(
                svg,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"##,
                x(c.clients as f64),
                y(c.successes_per_s)
            );
        }
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{right}" y2="{y:.1}" stroke="{color}" stroke-dasharray="4,3"/>"##,
            y = y(ceiling(*n))
        );
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{:.1}" fill="{color}">{n} shard{}: N / E[τ] = {:.0}/s</text>"##,
            right + 8.0,
            y(ceiling(*n)) + 4.0,
            if *n == 1 { "" } else { "s" },
            ceiling(*n)
        );
    }
    // Section 5's measured rows at the same C, on this machine (DynamoDB Local's rate caps them).
    for c in m.cells.iter().filter(|c| c.hold_p50_ms.is_none() && c.clients as f64 >= c_min) {
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="8" height="8" fill="none" stroke="#000"/>"##,
            x(c.clients as f64) - 4.0,
            y(c.successes_per_s) - 4.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{}" text-anchor="middle" font-size="10">lines: simulated on AWS; dashed: the ceiling on paper; squares: section 5 measured on DynamoDB Local (its own rate caps them)</text><text x="{}" y="{}" text-anchor="middle" font-size="10">{}</text>"##,
        width / 2.0,
        height - 28.0,
        width / 2.0,
        height - 12.0,
        s.model
    );
    svg.push_str("</svg>\n");
    Some(svg)
}
