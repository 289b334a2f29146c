//! The two SVG charts: `bench/contention.svg` (section 1, successes/s by client count, ours
//! against the baseline) and `bench/shards.svg` (section 5, successes/s and conflicts per success
//! by shards, against the ceiling on paper).

use std::fmt::Write as _;

use super::{cell, clients};
use crate::contention::{Scenario, Strategy};
use crate::Results;

/// Two panels (plenty, scarce) of grouped bars: successful reservations/s per client count.
pub(super) fn chart(results: &Results) -> String {
    let (width, height) = (900.0, 380.0);
    let panel_w = 400.0;
    let (top, bottom) = (60.0, 320.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Successful reservations/s on one hot SKU (make bench, {})</text>"#,
        width / 2.0,
        results.generated_at
    );
    let _ = writeln!(
        svg,
        r##"<rect x="330" y="32" width="12" height="12" fill="#2b7bb9"/><text x="347" y="43">ours (one conditional transaction)</text>"##
    );
    let _ = writeln!(
        svg,
        r##"<rect x="560" y="32" width="12" height="12" fill="#d9822b"/><text x="577" y="43">baseline (read, IF version, 3 retries)</text>"##
    );
    let cs = clients(results);
    for (p, (scenario, title)) in
        [(Scenario::Plenty, "plenty of stock"), (Scenario::Scarce, "stock for half the demand")]
            .iter()
            .enumerate()
    {
        let x0 = 50.0 + p as f64 * (panel_w + 50.0);
        let max = results
            .contention
            .iter()
            .filter(|c| c.scenario == *scenario)
            .map(|c| c.successes_per_s)
            .fold(1.0, f64::max)
            * 1.15;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{title}</text>"#,
            x0 + panel_w / 2.0,
            top - 2.0
        );
        let _ = writeln!(
            svg,
            r##"<line x1="{x0}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#333"/>"##,
            x0 + panel_w
        );
        let _ = writeln!(svg, r##"<line x1="{x0}" y1="{top}" x2="{x0}" y2="{bottom}" stroke="#333"/>"##);
        for tick in 0..=4 {
            let v = max * tick as f64 / 4.0;
            let y = bottom - (bottom - top) * tick as f64 / 4.0;
            let _ = writeln!(
                svg,
                r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{:.0}</text>"##,
                x0 - 4.0,
                y + 4.0,
                v
            );
        }
        let group = panel_w / cs.len().max(1) as f64;
        for (i, &c) in cs.iter().enumerate() {
            let gx = x0 + group * i as f64;
            for (j, (strategy, color)) in
                [(Strategy::Ours, "#2b7bb9"), (Strategy::Baseline, "#d9822b")].iter().enumerate()
            {
                let Some(cell) = cell(results, *strategy, *scenario, c) else { continue };
                let bar_w = group * 0.35;
                let x = gx + group * 0.12 + j as f64 * bar_w;
                let h = (bottom - top) * cell.successes_per_s / max;
                let _ = writeln!(
                    svg,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{h:.1}" fill="{color}"/>"#,
                    bottom - h
                );
                let _ = writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{:.1}</text>"#,
                    x + bar_w / 2.0,
                    bottom - h - 3.0,
                    cell.successes_per_s
                );
            }
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">C = {c}</text>"#,
                gx + group / 2.0,
                bottom + 16.0
            );
        }
    }
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">{} | {} cores | DynamoDB Local | commit {}</text>"##,
        width / 2.0,
        height - 14.0,
        results.machine.cpu,
        results.machine.cores,
        results.machine.commit
    );
    svg.push_str("</svg>\n");
    svg
}

/// Section 5's chart: at C = 256, successes/s by shards (measured, and the ceiling N / τ on
/// paper) and conflicts per success (measured).
pub(super) fn shards_chart(m: &crate::hot_model::ModelRun) -> String {
    let cells: Vec<&crate::hot_model::ModelCell> = {
        let top = m.cells.iter().map(|c| c.clients).max().unwrap_or(0);
        let mut cells: Vec<_> = m.cells.iter().filter(|c| c.clients == top).collect();
        cells.sort_by_key(|c| c.shards);
        cells
    };
    let window_ms = super::mean_hold_ms(&m.params);
    let ceiling = |shards: u32| f64::from(shards) * 1000.0 / window_ms;
    let (width, height, left, right, top, bottom) = (760.0, 400.0, 70.0, 690.0, 60.0, 330.0);
    let max_rate = cells.iter().map(|c| c.successes_per_s.max(ceiling(c.shards))).fold(1.0, f64::max) * 1.1;
    let max_conflicts = cells.iter().map(|c| c.conflicts_per_success).fold(1.0, f64::max) * 1.1;
    let x = |i: usize| left + (right - left) * (i as f64 + 0.5) / cells.len().max(1) as f64;
    let y = |v: f64, max: f64| bottom - (bottom - top) * v / max;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let clients = cells.first().map_or(0, |c| c.clients);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">One hot item under the model, C = {clients}: by shards</text>"#,
        width / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="90" y="34" width="12" height="12" fill="#2b7bb9"/><text x="107" y="45">successes/s (measured)</text><rect x="270" y="34" width="12" height="12" fill="none" stroke="#2b7bb9" stroke-dasharray="4,3"/><text x="287" y="45">ceiling N / τ on paper</text><circle cx="466" cy="40" r="5" fill="#d9534f"/><text x="477" y="45">conflicts per success (measured, right axis)</text>"##
    );
    let _ = writeln!(svg, r##"<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>"##);
    let _ = writeln!(svg, r##"<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>"##);
    let _ = writeln!(svg, r##"<line x1="{right}" y1="{top}" x2="{right}" y2="{bottom}" stroke="#d9534f"/>"##);
    for step in 0..=4 {
        let v = max_rate * f64::from(step) / 4.0;
        let c = max_conflicts * f64::from(step) / 4.0;
        let yy = y(v, max_rate);
        let _ =
            writeln!(svg, r##"<text x="{}" y="{}" text-anchor="end">{v:.0}</text>"##, left - 6.0, yy + 4.0);
        let _ = writeln!(svg, r##"<text x="{}" y="{}" fill="#d9534f">{c:.1}</text>"##, right + 6.0, yy + 4.0);
    }
    let bar = 36.0;
    let mut points = Vec::new();
    for (i, c) in cells.iter().enumerate() {
        let cx = x(i);
        let (rate, paper) = (c.successes_per_s, ceiling(c.shards));
        let _ = writeln!(
            svg,
            r##"<rect x="{}" y="{}" width="{bar}" height="{}" fill="#2b7bb9"/><text x="{}" y="{}" text-anchor="middle">{rate:.0}/s</text>"##,
            cx - bar - 2.0,
            y(rate, max_rate),
            bottom - y(rate, max_rate),
            cx - bar / 2.0 - 2.0,
            y(rate, max_rate) - 4.0
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{}" y="{}" width="{bar}" height="{}" fill="none" stroke="#2b7bb9" stroke-dasharray="4,3"/><text x="{}" y="{}" text-anchor="middle">{paper:.0}/s</text>"##,
            cx + 2.0,
            y(paper, max_rate),
            bottom - y(paper, max_rate),
            cx + bar / 2.0 + 2.0,
            y(paper, max_rate) - 4.0
        );
        let _ = writeln!(
            svg,
            r##"<text x="{cx}" y="{}" text-anchor="middle">{} shard{}, 503 {}%</text>"##,
            bottom + 18.0,
            c.shards,
            if c.shards == 1 { "" } else { "s" },
            c.unavailable_pct
        );
        points.push((cx, y(c.conflicts_per_success, max_conflicts), c.conflicts_per_success));
    }
    let path: Vec<String> = points.iter().map(|(px, py, _)| format!("{px},{py}")).collect();
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#d9534f" stroke-width="2"/>"##,
        path.join(" ")
    );
    for (px, py, v) in points {
        let _ = writeln!(
            svg,
            r##"<circle cx="{px}" cy="{py}" r="5" fill="#d9534f"/><text x="{}" y="{}" fill="#d9534f">{v}</text>"##,
            px + 8.0,
            py - 6.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{}" text-anchor="middle" font-size="10">{}</text><text x="{}" y="{}" text-anchor="middle" font-size="10">DynamoDB Local's own rate (one transaction at a time) caps the measured bars</text>"##,
        width / 2.0,
        height - 26.0,
        m.model,
        width / 2.0,
        height - 12.0
    );
    svg.push_str("</svg>\n");
    svg
}
