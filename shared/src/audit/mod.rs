//! The consistency audit (`audit-stock`, hourly; `make audit` locally). It reads the whole table
//! (a parallel Scan of the stock items, holds, reservations and order keys), rebuilds per stock
//! item the sum of its PENDING reservations' lines and of its hold items, and checks:
//! - every stock item: `0 <= reserved <= onHand`, `available = onHand - reserved`,
//!   `reserved` = its hold items = its PENDING reservations' lines, and each hold item matches a
//!   PENDING reservation's line;
//! - every PENDING reservation: its order key names it;
//! - every order key: the reservation it names exists.
//!
//! A Scan is not a snapshot: a write between two of its reads can look like drift. So each
//! suspect is read again on its own and judged on a view taken at one moment
//! (TransactGetItems, confirmed by a re-read of the item's holds that finds the same holds and
//! version); only what is still wrong there is reported. It reports, counts (`audit_drift`) and
//! announces one `InventoryDriftDetected` per drifting item. It never repairs anything.
//!
//! By job: `view` (what is read, as entities), `rules` (the checks, pure), `settle` (the
//! re-reads of suspects), `problem` (what can be wrong), `render` (the report).

mod problem;
mod render;
mod rules;
mod settle;
mod view;

use std::time::Instant;

use serde_json::json;

pub use problem::Problem;
pub use render::{AuditReport, Drift};
use settle::{busy_item_drift, settled_item, settled_order_problems, Settled};
pub use view::View;

use crate::bus::{BusEntry, Delivery, EventBus};
use crate::domain::Status;
use crate::error::{Error, Result};
use crate::events::{DetailType, OutboxEvent};
use crate::store::items::stock_key;
use crate::Store;

/// `(sku, locationId)`.
pub type ItemKey = (String, String);

#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Segments of the parallel Scan (read at once).
    pub segments: i32,
    /// Re-reads of a suspect before it is called unsettled (busy, not drift).
    pub attempts: u32,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { segments: 4, attempts: 5 }
    }
}

/// Runs the audit over the whole table.
pub async fn audit(store: &Store, options: &AuditOptions) -> Result<AuditReport> {
    let started = Instant::now();
    let segments = options.segments.max(1);
    let pages =
        futures::future::try_join_all((0..segments).map(|segment| store.audit_scan(segment, segments)))
            .await?;
    let mut view = View::default();
    let mut unreadable = Vec::new();
    for item in pages.into_iter().flatten() {
        view.add(item, &mut unreadable);
    }
    let mut report = AuditReport {
        items_checked: view.stock.len() as u64,
        holds_checked: view.holds.len() as u64,
        pending_reservations: view.reservations.values().filter(|r| r.status == Status::Pending).count()
            as u64,
        order_keys: view.orders.len() as u64,
        ..Default::default()
    };
    let pending = view.pending_lines();
    for suspect in view.drifting_items() {
        let key = (suspect.sku.clone(), suspect.location_id.clone());
        let named: Vec<String> = pending
            .get(&key)
            .map(|lines| lines.iter().map(|(id, _)| id.clone()).collect())
            .unwrap_or_default();
        match settled_item(store, &key, &named, options.attempts).await? {
            Settled::View(v) => report.drift.extend(v.drifting_items()),
            Settled::Busy => match busy_item_drift(store, &suspect, &view).await? {
                // What one read of the item shows is wrong however busy it is.
                Some(drift) => report.drift.push(drift),
                None => report.unsettled.push(format!("{}/{}", key.0, key.1)),
            },
        }
    }
    if !view.order_problems().is_empty() {
        report.other_problems = settled_order_problems(store, &view).await?;
    }
    for (key, problem) in view.orphans() {
        // An item created while the Scan ran may be missing from it: only a fresh read says none.
        if store.audit_snapshot(&[stock_key(&key.0, &key.1)]).await?.into_iter().flatten().next().is_none() {
            report.other_problems.push(problem);
        }
    }
    report.other_problems.extend(unreadable);
    report.duration_ms = started.elapsed().as_millis() as u64;
    crate::metrics::audit(report.items_checked, report.drift_count(), report.unsettled.len() as u64);
    tracing::info!(
        items = report.items_checked,
        drifting = report.drift_count(),
        unsettled = report.unsettled.len(),
        duration_ms = report.duration_ms,
        "inventory audit"
    );
    for d in &report.drift {
        tracing::warn!(sku = %d.sku, location_id = %d.location_id, problems = ?d.problems, "inventory drift");
    }
    for problem in &report.other_problems {
        tracing::warn!(%problem, "inventory drift");
    }
    for item in &report.unsettled {
        tracing::info!(%item, "audit suspect kept changing while re-read; the next run checks it again");
    }
    Ok(report)
}

/// The `audit-stock` function's work for one scheduled event: the audit, then one
/// `InventoryDriftDetected` per drifting item on `bus`.
pub async fn handle_scheduled(
    store: &Store,
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
) -> Result<AuditReport> {
    let report = audit(store, &AuditOptions::default()).await?;
    announce(&EventBus::new(events.clone(), bus), &report).await?;
    Ok(report)
}

/// Announces each drifting item as one `InventoryDriftDetected` event on `bus`.
pub async fn announce(bus: &EventBus, report: &AuditReport) -> Result<()> {
    let now = chrono::Utc::now();
    let entries: Vec<BusEntry> = report
        .drift
        .iter()
        .map(|d| {
            let data = json!({
                "sku": d.sku,
                "locationId": d.location_id,
                "onHand": d.on_hand,
                "reserved": d.reserved,
                "heldByReservations": d.held_by_reservations,
                "problems": d.problems,
            });
            BusEntry::from_event(&OutboxEvent::new(DetailType::InventoryDriftDetected, data, now, None))
        })
        .collect();
    // The audit runs again within the hour: an event not sent fails this run (counted, alarmed),
    // and the next run announces the drift again.
    let failures: Vec<String> = bus
        .send(entries)
        .await
        .into_iter()
        .filter_map(|d| match d {
            Delivery::Sent => None,
            Delivery::Retryable(why) | Delivery::Permanent(why) => Some(why),
        })
        .collect();
    match failures.first() {
        None => Ok(()),
        Some(why) => Err(Error::internal(format!(
            "{} InventoryDriftDetected events not sent, e.g.: {why}",
            failures.len()
        ))),
    }
}
