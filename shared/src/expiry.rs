//! The expiry sweep: finds PENDING holds whose expiresAt has passed through the sparse due-holds
//! index (never a Scan: its cost follows what is due, not the table) and expires each with a
//! version-keyed transaction that returns its units and writes the outbox record. It works in
//! bounded parallel batches, page by page, until nothing due remains or the invocation's time
//! budget is nearly spent; then it stops cleanly and the next run continues.

use std::time::{Duration, Instant};

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt};
use lambda_runtime::LambdaEvent;
use serde::Serialize;

use crate::domain::Reservation;
use crate::store::{pack_expiry_batches, with_deadline, WriteContext, DUE_PARTITIONS};
use crate::Store;

/// What one sweep did; logged as one line per run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Due holds the index returned.
    pub found: u64,
    pub expired: u64,
    /// Holds that had moved on (confirmed, released, extended, expired by someone else).
    pub skipped: u64,
    pub failed: u64,
    /// Items DynamoDB read from the index.
    pub items_read: u64,
    pub capacity_units: f64,
    pub duration_ms: u64,
    /// True when the time budget ran out before the index was drained.
    pub stopped_early: bool,
}

#[derive(Debug, Clone)]
pub struct ExpirySweep {
    /// Transactions in flight at once.
    pub concurrency: usize,
    /// Holds expired per transaction (each keeps its own version condition and event).
    pub holds_per_transaction: usize,
    /// Index items per page.
    pub page_size: i32,
    /// No new page is started when less than this remains of the budget (at most a tenth of it).
    pub safety_margin: Duration,
    /// The context of its expiries (the scheduled invocation's trace).
    pub ctx: WriteContext,
}

impl Default for ExpirySweep {
    fn default() -> Self {
        ExpirySweep {
            concurrency: 4,
            holds_per_transaction: 25,
            page_size: 500,
            safety_margin: Duration::from_secs(3),
            ctx: WriteContext::default(),
        }
    }
}

impl ExpirySweep {
    /// How long a run with `budget` may start new pages: all of it but a margin, which is at
    /// most a tenth of a short budget (a 2 s local sweep period still gets 1.8 s of work).
    pub fn working_time(&self, budget: Duration) -> Duration {
        budget.saturating_sub(self.safety_margin.min(budget / 10))
    }

    /// Expires what is due at the store's `now`, until done or `budget` is nearly spent.
    pub async fn run(&self, store: &Store, budget: Duration) -> SweepReport {
        let started = Instant::now();
        let stop_at = started + self.working_time(budget);
        // The deadline of every store call of the run: a batch still running then is cut off
        // (its holds are counted failed, and the next run sees what it did).
        with_deadline(stop_at, self.sweep(store, started, stop_at)).await
    }

    async fn sweep(&self, store: &Store, started: Instant, stop_at: Instant) -> SweepReport {
        let now = store.now();
        let mut report = SweepReport::default();
        'partitions: for partition in 0..DUE_PARTITIONS {
            let mut start = None;
            loop {
                if Instant::now() >= stop_at {
                    report.stopped_early = true;
                    break 'partitions;
                }
                let page = match store.due_page(partition, now, start, self.page_size).await {
                    Ok(page) => page,
                    Err(e) => {
                        // This partition waits for the next run; the others still get their turn.
                        tracing::warn!(partition, error = %e, "expiry sweep could not read due holds");
                        report.failed += 1;
                        continue 'partitions;
                    }
                };
                report.found += page.reservations.len() as u64;
                report.items_read += page.items_read;
                report.capacity_units += page.capacity_units;
                let batches = pack_expiry_batches(page.reservations, self.holds_per_transaction);
                let total = batches.len();
                // No batch starts once the budget is spent, even within a page: a slow page must
                // not run past it. What is left waits for the next run.
                let outcomes: Vec<_> = stream::iter(batches)
                    .take_while(|_| std::future::ready(Instant::now() < stop_at))
                    .map(|batch| expire_batch(store, &self.ctx, batch))
                    .buffer_unordered(self.concurrency.max(1))
                    .collect()
                    .await;
                if outcomes.len() < total {
                    report.stopped_early = true;
                }
                for (holds, outcome) in outcomes {
                    match outcome {
                        Ok(expired) => {
                            report.expired += expired as u64;
                            report.skipped += (holds - expired) as u64;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, holds, "expiring a batch failed; the next run retries it");
                            report.failed += holds as u64;
                        }
                    }
                }
                match page.next {
                    _ if report.stopped_early => break 'partitions,
                    Some(next) => start = Some(next),
                    None => break,
                }
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        crate::metrics::sweep(
            report.found,
            report.expired,
            report.failed,
            report.stopped_early,
            started.elapsed(),
        );
        tracing::info!(
            found = report.found,
            expired = report.expired,
            skipped = report.skipped,
            failed = report.failed,
            items_read = report.items_read,
            duration_ms = report.duration_ms,
            stopped_early = report.stopped_early,
            "expiry sweep"
        );
        report
    }
}

/// One batch's expiry as a boxed future, with the batch's size: erasing the store's deeply nested
/// future types keeps the sweep's own future type small (and `Send` for any lifetime, as
/// `tokio::spawn` needs).
fn expire_batch<'a>(
    store: &'a Store,
    ctx: &'a WriteContext,
    batch: Vec<Reservation>,
) -> BoxFuture<'a, (usize, crate::Result<usize>)> {
    async move { (batch.len(), store.expire_due_batch(&batch, ctx).await) }.boxed()
}

/// The `expire-reservations` function's timeout (`template.yaml` says the same): one run's
/// time budget. The schedule fires every minute; a longer run overlaps the next one harmlessly,
/// since every expiry is conditional on the hold's version.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Budget of a run whose invocation deadline is unknown (e.g. a test's context).
pub const DEFAULT_BUDGET: Duration = RUN_TIMEOUT;

/// The time left until an invocation's deadline (epoch milliseconds, as Lambda gives it). A
/// deadline that cannot be an epoch timestamp (0 from a hand-made context, or the relative
/// `600000` cargo-lambda's emulator sends) means "unknown": [`DEFAULT_BUDGET`].
pub fn budget_until(deadline_ms: u64, now_ms: i64) -> Duration {
    crate::store::remaining_before(deadline_ms, now_ms, Duration::ZERO).unwrap_or(DEFAULT_BUDGET)
}

/// The `expire-reservations` handler: one sweep per scheduled event, within the invocation's
/// remaining time.
pub async fn handle_scheduled(
    store: &Store,
    event: LambdaEvent<CloudWatchEvent>,
) -> Result<SweepReport, lambda_runtime::Error> {
    let budget = budget_until(event.context.deadline, chrono::Utc::now().timestamp_millis());
    tracing::debug!(
        deadline_ms = event.context.deadline,
        budget_ms = budget.as_millis() as u64,
        "sweep budget"
    );
    let ctx = WriteContext::default().traced(event.context.xray_trace_id.clone());
    Ok(ExpirySweep { ctx, ..ExpirySweep::default() }.run(store, budget).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Line;
    use crate::domain::MAX_ACTIONS as MAX_TRANSACTION_ITEMS;

    fn hold(skus: &[&str]) -> Reservation {
        let lines = skus.iter().map(|s| Line::new((*s).into(), "w".into(), 1)).collect();
        Reservation::new("o".into(), lines, 60, chrono::Utc::now())
    }

    fn items(batch: &[Reservation]) -> usize {
        let keys: std::collections::BTreeSet<_> = batch.iter().flat_map(|r| r.units().into_keys()).collect();
        2 * batch.len() + keys.len() + batch.iter().map(|r| r.stock_lines().len()).sum::<usize>()
    }

    #[test]
    fn short_budgets_still_get_most_of_their_time() {
        let sweep = ExpirySweep::default();
        assert_eq!(sweep.working_time(Duration::from_secs(2)), Duration::from_millis(1800));
        assert_eq!(sweep.working_time(RUN_TIMEOUT), RUN_TIMEOUT - Duration::from_secs(3));
        assert_eq!(sweep.working_time(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn budgets_follow_the_invocation_deadline() {
        let now = 1_795_446_245_123;
        assert_eq!(budget_until(now as u64 + 60_000, now), Duration::from_secs(60));
        assert_eq!(budget_until(now as u64 - 5, now), Duration::ZERO);
        assert_eq!(budget_until(0, now), DEFAULT_BUDGET);
        assert_eq!(budget_until(600_000, now), DEFAULT_BUDGET);
    }

    #[test]
    fn batches_respect_the_hold_and_item_limits_and_keep_every_hold() {
        let holds: Vec<_> = (0..60).map(|i| hold(&[&format!("S{}", i % 7)])).collect();
        let batches = pack_expiry_batches(holds.clone(), 25);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [25, 25, 10]);
        assert_eq!(batches.concat(), holds);
        // Holds of 25 distinct lines each: 52 items per hold (reservation, outbox record, 25 stock
        // items and 25 hold items), so 1 fits under 100.
        let wide: Vec<_> = (0..7)
            .map(|i| {
                hold(
                    &(0..25)
                        .map(|j| format!("W{i}-{j}"))
                        .collect::<Vec<_>>()
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let batches = pack_expiry_batches(wide.clone(), 25);
        assert!(batches.iter().all(|b| items(b) <= MAX_TRANSACTION_ITEMS));
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [1; 7]);
        assert_eq!(batches.concat(), wide);
        assert!(pack_expiry_batches(vec![], 25).is_empty());
    }
}
