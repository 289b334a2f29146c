//! Writes the results: `bench/results.json`, the chart `bench/contention.svg` and
//! `BENCHMARKS.md`, all from one `Results`.

use std::fmt::Write as _;
use std::path::Path;

use crate::contention::{Cell, Scenario, Strategy};
use crate::Results;

pub fn write(root: &Path, results: &Results) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join("bench"))?;
    let json = serde_json::to_string_pretty(results).expect("results json");
    std::fs::write(root.join("bench/results.json"), json + "\n")?;
    std::fs::write(root.join("bench/contention.svg"), chart(results))?;
    if let Some(model) = &results.model {
        std::fs::write(root.join("bench/shards.svg"), shards_chart(model))?;
    }
    std::fs::write(root.join("BENCHMARKS.md"), markdown(results))
}

fn yes(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

fn cell(results: &Results, strategy: Strategy, scenario: Scenario, clients: usize) -> Option<&Cell> {
    results
        .contention
        .iter()
        .find(|c| c.strategy == strategy && c.scenario == scenario && c.clients == clients)
}

fn clients(results: &Results) -> Vec<usize> {
    let mut c: Vec<usize> = results.contention.iter().map(|c| c.clients).collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// Two panels (plenty, scarce) of grouped bars: successful reservations/s per client count.
fn chart(results: &Results) -> String {
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

fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let m = &r.machine;
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `make bench` on {} (commit {}), in {:.0} s. Every figure below comes from that one run; \
         `bench/results.json` has all of them. Do not edit by hand: run `make bench` again.{}\n",
        r.generated_at,
        m.commit,
        r.total_seconds,
        if r.quick { " **This was a quick run (`BENCH_QUICK=1`): its figures are not the reference ones.**" } else { "" }
    );
    let _ = writeln!(md, "| machine | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} ({} cores) |", m.cpu, m.cores);
    let _ = writeln!(md, "| memory | {} GiB |", m.memory_gib);
    let _ = writeln!(md, "| OS | {} |", m.os);
    let _ = writeln!(md, "| Rust | {} |", m.rustc);
    let _ = writeln!(md, "| build | {} |", m.build);
    let _ = writeln!(md, "| database | {} |\n", m.dynamodb);
    let _ = writeln!(
        md,
        "These machines are shared and noisy, and DynamoDB Local is not DynamoDB: compare the two strategies \
         as ratios within the run, not the absolute figures with AWS.\n"
    );

    let g = &r.goals;
    let _ = writeln!(md, "## Goals\n\n| goal | reached |\n|---|---|");
    let _ = writeln!(md, "| 0 oversells, at every C, both strategies (and the stock item consistent with the reservations) | {} |", yes(g.no_oversells));
    let _ = writeln!(md, "| 0 spurious failures (ours), at every C | {} |", yes(g.no_spurious_failures_ours));
    let ratio128 = r.ratios.iter().find(|x| x.scenario == Scenario::Plenty && x.clients == 128);
    let _ = writeln!(
        md,
        "| ours / baseline throughput at C = 128 >= 5x | {} |",
        match (g.ratio_at_128_at_least_5x, ratio128) {
            (Some(ok), Some(x)) => format!("{} ({:.1}x)", yes(ok), x.throughput_ratio),
            _ => "not measured (C = 128 was not run)".into(),
        }
    );
    let reserve = r.operations.iter().find(|o| o.operation == "reserve");
    let _ = writeln!(
        md,
        "| reserve = 1 DynamoDB request | {} |\n",
        match reserve {
            Some(o) => format!(
                "{} (mean {}, max {})",
                yes(g.reserve_one_request),
                o.dynamodb_requests_mean,
                o.dynamodb_requests_max
            ),
            None => "not measured".into(),
        }
    );

    let _ = writeln!(md, "## 1. One hot SKU under contention\n");
    let _ = writeln!(md, "![successful reservations per second, ours vs baseline](bench/contention.svg)\n");
    let _ = writeln!(
        md,
        "C clients reserve one unit at a time from one stock item, each waiting for its answer before the next request.\n\n\
         - **ours**: `Store::reserve`, one `TransactWriteItems` with `available >= :q` on the stock item, no read first.\n\
         - **baseline** (the seed strategy, in `bench/src/contention.rs` with the same items and helpers): read the item, \
           check `available` in memory, write the same transaction keyed `IF version = :read`, retry up to 3 times with \
           the store's backoff.\n\
         - **plenty**: {} units; each cell runs for a fixed time, so every rejection is spurious.\n\
         - **scarce**: stock for half of a fixed number of requests (shown as stock); once it is sold out, rejections are right.\n\
         - **successes/s**: successes over the time from the start to the last success (so the fast rejections after a \
           sell-out do not dilute it). Latency percentiles are over all requests, rejected ones included. Before the first \
           cell, both strategies run for a few seconds on a throwaway table to warm DynamoDB Local up.\n\
         - A rejection is **spurious** when a strongly consistent read right after it still finds a unit available (stock only \
           goes down in this run). **Oversells**: successes beyond the stock, or `reserved > onHand`. **Consistent**: afterwards \
           `reserved` = successes = reservation items, `available = onHand - reserved >= 0`.\n\
         - **retries/success**: attempts beyond the first, over the successes (the baseline's count includes the 3 retries of \
           every request that still failed; ours counts the store's own retries of conflicts and throttling, which DynamoDB \
           Local never produces).\n",
        inventory::domain::MAX_ON_HAND
    );
    for (scenario, title) in
        [(Scenario::Plenty, "Plenty of stock"), (Scenario::Scarce, "Stock for half the demand")]
    {
        let _ = writeln!(md, "### {title}\n");
        let _ = writeln!(
            md,
            "| C | strategy | stock | requests | successes | successes/s | ours/baseline | p50 ms | p95 ms | p99 ms | spurious failures | oversells | retries/success | sold out | consistent |"
        );
        let _ = writeln!(md, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
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
                let stock = if scenario == Scenario::Plenty {
                    "plenty".to_owned()
                } else {
                    x.initial_stock.to_string()
                };
                let _ = writeln!(
                    md,
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
                );
            }
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "Reading it: DynamoDB Local runs transactions one at a time (on this machine on the order of 100 a second), so ours is \
         flat in C and its latency grows with the queue. The baseline loses most of its writes to the version check once \
         more than one client is in flight, spends its 3 retries and turns buyers away while units remain. On AWS, \
         DynamoDB would cancel some of our concurrent transactions on the same item with `TransactionConflict`; the store \
         retries those with jittered backoff inside a deadline (tested with injected conflicts in `tests/tests/store.rs`), \
         and one item tops out near 1,000 writes/s, which is where sharded stock would come in.\n"
    );

    let _ = writeln!(md, "## 2. Per operation, through the local HTTP server\n");
    let _ = writeln!(
        md,
        "One client, one request at a time, over a keep-alive connection to the server `make dev` runs (route, API Gateway \
         payload 2.0 event, lambda_http, the handler). DynamoDB requests and consumed capacity are the store's counters, \
         read around each request; capacity is what DynamoDB Local reports with `ReturnConsumedCapacity=TOTAL` (AWS bills a \
         transactional write at 2 write units per item of up to 1 KB, so its figures would be higher).\n"
    );
    let _ = writeln!(md, "| operation | route | requests | p50 ms | p95 ms | p99 ms | DynamoDB requests/op (mean, max) | capacity units/op | statuses |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---|---:|---|");
    for o in &r.operations {
        let statuses: Vec<String> = o.statuses.iter().map(u16::to_string).collect();
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {} | {}, {} | {} | {} |",
            o.operation,
            o.route,
            o.latency.count,
            o.latency.p50_ms,
            o.latency.p95_ms,
            o.latency.p99_ms,
            o.dynamodb_requests_mean,
            o.dynamodb_requests_max,
            o.capacity_units_mean,
            statuses.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "\nGoal: reserve = 1 request (one transaction, no read, when every line names its location; one Query per sku \
         first when the service places it); confirm = 2 + one read per stock item (the ledger's SOLD movement is keyed \
         on the item's version); release = 2 (read the reservation, one transaction); get-stock = 1 (one Query over the \
         SKU's locations); a list = 1 Query (+ the stock item's read for 404, + a read per hold or listed item).\n\n\
         Items each write puts in its transaction (AWS bills 2 write units per item of up to 1 KB in a transaction): \
         reserve of one line = 6 (order key, stock item, reservation, order-reservation item, hold item, outbox record); \
         confirm of one line = 4 (reservation, stock item, SOLD movement, outbox record) + the hold item's delete; \
         release = 3 + the hold item's delete; put-stock and adjust-stock = 3 (stock item, movement, outbox record); a \
         batch = that per item. An Idempotency-Key adds its record to the transaction.\n"
    );

    let _ = writeln!(md, "## 3. The expiry sweep at scale\n");
    let _ = writeln!(
        md,
        "One sweep (`ExpirySweep::default()`: pages of 500 from the sparse due-holds index, 4 transactions in flight, \
         25 holds per transaction) over N due holds of one unit on 50 stock items. The not-due holds ({} of them, 100 stock \
         items, held for a day) were bulk-loaded first in {} s. **Verified**: every due hold expired, their units are back, \
         and the not-due holds' units are still reserved.\n",
        r.expiry.iter().map(|e| e.not_due).max().unwrap_or(0),
        r.expiry_load_seconds
    );
    let _ = writeln!(md, "| due (N) | not due | expired | failed | items read | DynamoDB requests | capacity units | seconds | holds/s | verified |");
    let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for e in &r.expiry {
        let _ = writeln!(
            md,
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
        );
    }
    let _ = writeln!(
        md,
        "\nItems read follow N, not the table: the not-due holds are in the index too (it is keyed by due time), \
         but a page query stops at `now`.\n"
    );

    let _ = writeln!(md, "## 4. Lambda cold-start proxies\n");
    let _ = writeln!(
        md,
        "Release binaries for the host (x86_64; Lambda runs the arm64 build of `make package`, whose zip sizes are shown \
         when `target/lambda` has them). Each run starts the binary with a Lambda environment pointing at a minimal \
         Runtime API served by the bench (`bench/src/cold_start.rs`), and measures process start to its first \
         `GET /runtime/invocation/next` (**ready**: config loaded, AWS clients built) and to its answer to the first event \
         (the function's sample in `events/`, against the local stack: the first DynamoDB or LocalStack connection included). \
         Median of {} runs.\n",
        r.cold_starts.iter().map(|c| c.runs).max().unwrap_or(0)
    );
    let _ = writeln!(md, "| function | binary (bytes) | arm64 zip (bytes) | ready ms (median) | first response ms (median) | all answered |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---|");
    for c in &r.cold_starts {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            c.function,
            c.binary_bytes,
            c.arm64_zip_bytes.map(|z| z.to_string()).unwrap_or_else(|| "-".into()),
            c.ready_ms,
            c.first_response_ms,
            yes(c.all_ok)
        );
    }
    if let Some(m) = &r.model {
        let _ = writeln!(md, "\n## 5. One hot item under a model of real DynamoDB, split into shards\n");
        let _ = writeln!(
            md,
            "DynamoDB Local runs transactions one at a time, so the conflicts of section 1 never happen there. Real DynamoDB \
             cancels a transaction that touches an item another transaction is working on (`TransactionConflict`) and gives \
             one item about 1,000 write units a second (2 per item of a transaction). The contention model \
             (`tests/src/contention.rs`), at the SDK's HTTP client, adds both: **{}**. C clients reserve one unit at a time \
             from one item with stock that cannot run out, split into 1, 4 or 16 shards (`PUT ... {{\"shards\": N}}`), \
             through the service's store and its own retry policy (up to 10 attempts within 5 s, then 503; on a sharded \
             item a conflict sends the reserve to up to 2 other shards at once, then it backs off and tries again within \
             the deadline, these tries not counted among the 10), for {} s per row, \
             each on a fresh table. Every INSUFFICIENT_STOCK here is spurious. A 503 whose last attempt was cut off at \
             the deadline may have been applied all the same (retrying the same orderId returns the reservation): \
             **503 applied** counts those, found by reading each 503's order afterwards, and **consistent** means \
             the item's `reserved` is exactly the successes plus those, and `available = onHand - reserved`.\n",
            m.model, m.seconds_per_cell
        );
        let _ = writeln!(md, "![successes/s and conflicts per success by shards, C = 256, against the ceiling on paper](bench/shards.svg)\n");
        let _ = writeln!(md, "| C | shards | requests | successes/s | conflicts | conflicts / success | retries / success | throttled | 503 | 503 % | 503 applied | spurious rejections | p50 ms | p99 ms | oversells | consistent |");
        let _ =
            writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for c in &m.cells {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.clients,
                c.shards,
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
                yes(c.consistent)
            );
        }
        let at = |shards: u32| m.cells.iter().find(|c| c.clients == 256 && c.shards == shards);
        if let (Some(one), Some(sixteen)) = (at(1), at(16)) {
            let ratio = one.conflicts_per_success / sixteen.conflicts_per_success.max(0.01);
            let _ = writeln!(md, "\n| goal at C = 256, 16 shards | reached |\n|---|---|");
            let _ = writeln!(md, "| 0 oversells | {} ({}) |", yes(sixteen.oversells == 0), sixteen.oversells);
            let _ = writeln!(
                md,
                "| 0 spurious rejections | {} ({}) |",
                yes(sixteen.spurious_rejections == 0),
                sixteen.spurious_rejections
            );
            let _ = writeln!(
                md,
                "| 503 under 0.1% of requests | {} ({}%) |",
                yes(sixteen.unavailable_pct < 0.1),
                sixteen.unavailable_pct
            );
            let _ = writeln!(
                md,
                "| conflicts per success at least 8x lower than 1 shard | {} ({:.1}x: {} against {}) |",
                yes(ratio >= 8.0),
                ratio,
                sixteen.conflicts_per_success,
                one.conflicts_per_success
            );
        }
        let window_ms = m.params["conflictWindow"].as_f64().unwrap_or(20.0);
        let _ = writeln!(
            md,
            "\n**The ceiling on paper.** One item takes at most one transaction per window τ (real DynamoDB's transaction \
             latency, {window_ms} ms here), so about 1/τ reserves a second ({:.0}/s) however many clients there are: more \
             clients only add conflicts, retries and, past the store's deadline, 503s. N shards take N transactions at \
             once: **ceiling(N) ≈ N / τ** ({:.0}/s at 4 shards, {:.0}/s at 16), as long as every shard has units (a reserve \
             goes to a random shard, and to the others when it is busy or short). Two more limits on AWS: each shard item \
             takes 1,000 write units a second, 2 per reserve, so 500 reserves/s per shard, which is above 1/τ; and the shards \
             of one SKU share its partition key (`STOCK#{{sku}}`), so until DynamoDB splits the partition for heat (by sort \
             key, which it does for sustained hot keys) a SKU's partition takes 1,000 write units a second, about 250 \
             reserves/s (a reserve writes the shard and a hold item in that partition, 2 units each). So on AWS: about \
             min(N / τ, 250/s) per SKU at first, and N / τ once the partition is split.\n\n\
             **Against the measured curve.** At 1 shard the model gives what the paper says: successes/s stay near 1/τ \
             whatever C, and conflicts per success grow with C. With shards the conflicts fall about as the paper says \
             (a random shard is busy with probability about load × τ / N), but successes/s here stop near DynamoDB \
             Local's own rate (section 1: about 200 transactions a second on this machine, one at a time, on every item \
             alike), well under N / τ; that ceiling is the emulator's, and the model lets requests into it first come \
             first served, so they wait their turn instead of a few waiting seconds. With too few shards for \
             the load (4 shards at C = 128 and 256) buyers who keep finding every shard they try busy keep trying \
             within their deadline: the conflicts per success stay high and some requests reach the 5 s deadline \
             (503). The emulator's queue also flatters the sharded rows: a client waiting in it sends nothing, so \
             the load offered to the shards is what DynamoDB Local lets through (about 200/s), where on AWS C \
             clients answered in τ would offer up to C / τ, and with C / N clients per shard the conflicts per \
             success would be about those of the 1-shard row at C / N. What this run cannot show: \
             real DynamoDB's latency (τ stands in for it), its partition splitting, and throughput past what DynamoDB \
             Local can do.\n",
            1000.0 / window_ms,
            4000.0 / window_ms,
            16000.0 / window_ms
        );
    }
    let _ = writeln!(
        md,
        "\n## Reproduce\n\n```\nmake bench\n```\n\nIt installs the local stack if needed, builds the functions in release mode for the \
         host, starts a stack of its own on free ports, runs all five sections and rewrites `bench/results.json`, \
         `bench/contention.svg` and this file. `BENCH_QUICK=1 make bench` is a short smoke run; `BENCH_CLIENTS=1,8` \
         picks the client counts (`BENCH_MODEL_CLIENTS=1,32,128,256` and `BENCH_MODEL_SHARDS=1,4,16` those of section 5); `cargo run -p bench -- --model-only` \
         runs section 5 alone into the last results; `cargo run -p bench -- --render` rewrites this file and the chart from \
         `bench/results.json` without measuring again.\n"
    );
    md
}

/// Section 5's chart: at C = 256, successes/s by shards (measured, and the ceiling N / τ on
/// paper) and conflicts per success (measured).
fn shards_chart(m: &crate::hot_model::ModelRun) -> String {
    let cells: Vec<&crate::hot_model::ModelCell> = {
        let top = m.cells.iter().map(|c| c.clients).max().unwrap_or(0);
        let mut cells: Vec<_> = m.cells.iter().filter(|c| c.clients == top).collect();
        cells.sort_by_key(|c| c.shards);
        cells
    };
    let window_ms = m.params["conflictWindow"].as_f64().unwrap_or(20.0);
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
            shards,
            requests,
            successes,
            successes_per_s: per_s,
            spurious_rejections: 0,
            unavailable,
            unavailable_applied: unavailable / 3,
            unavailable_pct: (unavailable as f64 * 10_000.0 / requests as f64).round() / 100.0,
            conflicts,
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
                cells: vec![
                    model_cell(1, 1, 420, 52.5, 0, 0, 18.9, 24.1),
                    model_cell(32, 1, 1530, 47.8, 6120, 3, 640.2, 2210.0),
                    model_cell(256, 1, 1602, 44.1, 25240, 96, 4980.0, 5002.3),
                    model_cell(32, 16, 1610, 201.2, 310, 0, 150.3, 410.8),
                    model_cell(256, 16, 1655, 198.7, 1490, 1, 1250.0, 2890.4),
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
        if actual != expected {
            let out = std::env::temp_dir().join(format!("bench-actual-{name}"));
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
