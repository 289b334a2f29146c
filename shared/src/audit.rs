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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use crate::bus::{BusEntry, Delivery, EventBus};
use crate::domain::{combine, Reservation, StockItem};
use crate::error::{Error, Result};
use crate::events::{DetailType, OutboxEvent};
use crate::status::Status;
use crate::store::items::{from_item, order_key, reservation_key, shard_key, shard_of, stock_key, Item};
use crate::store::MAX_TRANSACT_GET;
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

/// One stock item whose numbers disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    pub sku: String,
    pub location_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub version: u64,
    /// The sum of the PENDING reservations' lines on the item.
    pub held_by_reservations: i64,
    /// The sum of the item's hold items.
    pub hold_items: i64,
    pub problems: Vec<String>,
}

/// What one audit found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    pub items_checked: u64,
    pub holds_checked: u64,
    pub pending_reservations: u64,
    pub order_keys: u64,
    /// Stock items whose numbers disagree, confirmed on a settled view.
    pub drift: Vec<Drift>,
    /// Reservations and order keys that disagree with each other (or holds of no stock item).
    pub other_problems: Vec<String>,
    /// Suspects that kept changing while they were re-read: neither cleared nor reported.
    pub unsettled: Vec<String>,
    pub duration_ms: u64,
}

impl AuditReport {
    /// Drifting items and other problems: what `audit_drift` counts.
    pub fn drift_count(&self) -> u64 {
        (self.drift.len() + self.other_problems.len()) as u64
    }

    /// The report as text, one line per finding (what `make audit` prints).
    pub fn render(&self) -> String {
        let mut out = format!(
            "audited {} stock items, {} holds, {} PENDING reservations, {} order keys in {} ms\n",
            self.items_checked,
            self.holds_checked,
            self.pending_reservations,
            self.order_keys,
            self.duration_ms
        );
        for d in &self.drift {
            out += &format!(
                "DRIFT {}/{} v{}: onHand {} reserved {} available {} heldByReservations {} holdItems {}: {}\n",
                d.sku,
                d.location_id,
                d.version,
                d.on_hand,
                d.reserved,
                d.available,
                d.held_by_reservations,
                d.hold_items,
                d.problems.join("; ")
            );
        }
        for p in &self.other_problems {
            out += &format!("PROBLEM {p}\n");
        }
        for u in &self.unsettled {
            out += &format!("UNSETTLED {u} (kept changing while re-read; see the next run)\n");
        }
        out += &format!("{} drifting\n", self.drift_count());
        out
    }
}

/// What the audit reads, as entities.
#[derive(Debug, Default)]
pub struct View {
    /// Each stock item as the API shows it (the sum of its shards).
    pub stock: BTreeMap<ItemKey, StockItem>,
    /// Each stock item's shard items, by shard (an unsharded item: shard 0 alone).
    pub shards: BTreeMap<ItemKey, BTreeMap<u32, StockItem>>,
    /// Hold items: `(item, reservationId, quantity)`.
    pub holds: Vec<(ItemKey, String, i64)>,
    pub reservations: HashMap<String, Reservation>,
    /// Order keys: orderId -> reservationId.
    pub orders: HashMap<String, String>,
}

impl View {
    /// Reads scanned items into entities; an item that does not parse is a problem in itself.
    pub fn add(&mut self, item: Item, problems: &mut Vec<String>) {
        let attr = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let (entity, pk, sk) = (attr("entity"), attr("pk"), attr("sk"));
        match entity.as_str() {
            "STOCK" | "STOCK_SHARD" => {
                let shard = shard_of(&item);
                match from_item::<StockItem>(item) {
                    Ok(stock) => self.add_shard(shard, stock),
                    Err(e) => problems.push(format!("stock item {pk}/{sk} does not parse: {e}")),
                }
            }
            "HOLD" => {
                let sku = pk.trim_start_matches("STOCK#").to_owned();
                let location =
                    sk.trim_start_matches("HOLD#").split('#').next().unwrap_or_default().to_owned();
                let quantity = item.get("quantity").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
                match quantity {
                    Some(q) => self.holds.push(((sku, location), attr("reservationId"), q)),
                    None => problems.push(format!("hold {pk}/{sk} has no quantity")),
                }
            }
            "RESERVATION" => match from_item::<Reservation>(item) {
                Ok(r) => {
                    self.reservations.insert(r.reservation_id.clone(), r);
                }
                Err(e) => problems.push(format!("reservation {pk} does not parse: {e}")),
            },
            "ORDER" => {
                self.orders.insert(attr("orderId"), attr("reservationId"));
            }
            _ => {}
        }
    }

    /// Adds shard `shard` of a stock item (0: the item itself).
    pub fn add_shard(&mut self, shard: u32, stock: StockItem) {
        let key = (stock.sku.clone(), stock.location_id.clone());
        let shards = self.shards.entry(key.clone()).or_default();
        shards.insert(shard, stock);
        let parts: Vec<StockItem> = shards.values().cloned().collect();
        if let Some(item) = combine(&parts) {
            self.stock.insert(key, item);
        }
    }

    /// The PENDING reservations' units on each shard of each item.
    fn pending_units(&self) -> BTreeMap<(ItemKey, u32), i64> {
        let mut units: BTreeMap<(ItemKey, u32), i64> = BTreeMap::new();
        for r in self.reservations.values().filter(|r| r.status == Status::Pending) {
            for ((sku, location_id, shard), q) in r.units() {
                *units.entry(((sku, location_id), shard)).or_default() += q;
            }
        }
        units
    }

    /// The PENDING reservations' units on each item.
    fn pending_lines(&self) -> BTreeMap<ItemKey, Vec<(String, i64)>> {
        let mut lines: BTreeMap<ItemKey, Vec<(String, i64)>> = BTreeMap::new();
        for r in self.reservations.values().filter(|r| r.status == Status::Pending) {
            for line in &r.lines {
                let key = (line.sku.clone(), line.location_id.clone());
                lines.entry(key).or_default().push((r.reservation_id.clone(), line.quantity));
            }
        }
        lines
    }

    /// The stock items whose numbers disagree, each with what is wrong.
    pub fn drifting_items(&self) -> Vec<Drift> {
        let pending = self.pending_lines();
        let pending_units = self.pending_units();
        let mut holds: BTreeMap<&ItemKey, Vec<(&str, i64)>> = BTreeMap::new();
        for (key, reservation_id, quantity) in &self.holds {
            holds.entry(key).or_default().push((reservation_id, *quantity));
        }
        let mut drift = Vec::new();
        for (key, stock) in &self.stock {
            let by_reservations = pending.get(key).map_or(&[][..], Vec::as_slice);
            let item_holds = holds.get(key).map_or(&[][..], Vec::as_slice);
            let held_by_reservations: i64 = by_reservations.iter().map(|(_, q)| q).sum();
            let hold_items: i64 = item_holds.iter().map(|(_, q)| q).sum();
            let mut problems = Vec::new();
            if stock.on_hand < 0 {
                problems.push("onHand is negative".to_owned());
            }
            if stock.reserved < 0 {
                problems.push("reserved is negative".to_owned());
            }
            if stock.reserved > stock.on_hand {
                problems.push("reserved exceeds onHand".to_owned());
            }
            if stock.available != stock.on_hand - stock.reserved {
                problems
                    .push(format!("available is not onHand - reserved ({})", stock.on_hand - stock.reserved));
            }
            if stock.reserved != held_by_reservations {
                problems.push(format!("reserved is not the PENDING reservations' {held_by_reservations}"));
            }
            if stock.reserved != hold_items {
                problems.push(format!("reserved is not the hold items' {hold_items}"));
            }
            for (reservation_id, quantity) in item_holds {
                if !by_reservations.iter().any(|(id, q)| id == reservation_id && q == quantity) {
                    problems.push(format!("hold of {quantity} for {reservation_id} is no PENDING line"));
                }
            }
            for (reservation_id, quantity) in by_reservations {
                if !item_holds.iter().any(|(id, q)| id == reservation_id && q == quantity) {
                    problems.push(format!("PENDING line of {quantity} for {reservation_id} has no hold"));
                }
            }
            // A sharded item: each shard on its own, against the units held on it.
            let shards = self.shards.get(key).filter(|s| s.len() > 1 || stock.shards > 1);
            for (k, shard) in shards.into_iter().flatten() {
                let held = pending_units.get(&(key.clone(), *k)).copied().unwrap_or(0);
                if shard.reserved < 0 || shard.reserved > shard.on_hand {
                    problems.push(format!(
                        "shard {k}: reserved {} is not within 0..=onHand {}",
                        shard.reserved, shard.on_hand
                    ));
                }
                if shard.available != shard.on_hand - shard.reserved {
                    problems.push(format!("shard {k}: available is not onHand - reserved"));
                }
                if shard.reserved != held {
                    problems.push(format!(
                        "shard {k}: reserved {} is not the PENDING units on it {held}",
                        shard.reserved
                    ));
                }
            }
            if !problems.is_empty() {
                drift.push(Drift {
                    sku: key.0.clone(),
                    location_id: key.1.clone(),
                    on_hand: stock.on_hand,
                    reserved: stock.reserved,
                    available: stock.available,
                    version: stock.version,
                    held_by_reservations,
                    hold_items,
                    problems,
                });
            }
        }
        drift
    }

    /// Reservations and order keys that disagree, and holds or PENDING lines of no stock item.
    pub fn other_problems(&self) -> Vec<String> {
        let mut problems = self.order_problems();
        problems.extend(self.orphans().into_iter().map(|(_, problem)| problem));
        problems
    }

    /// PENDING reservations and order keys that disagree.
    fn order_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut pending: Vec<&Reservation> =
            self.reservations.values().filter(|r| r.status == Status::Pending).collect();
        pending.sort_by(|a, b| a.reservation_id.cmp(&b.reservation_id));
        for r in pending {
            match self.orders.get(&r.order_id) {
                Some(id) if *id == r.reservation_id => {}
                Some(id) => problems.push(format!(
                    "PENDING reservation {} of order {}: the order key names {id}",
                    r.reservation_id, r.order_id
                )),
                None => problems.push(format!(
                    "PENDING reservation {} of order {}: no order key",
                    r.reservation_id, r.order_id
                )),
            }
        }
        let orders: BTreeMap<_, _> = self.orders.iter().collect();
        for (order_id, reservation_id) in orders {
            if !self.reservations.contains_key(reservation_id) {
                problems.push(format!("order {order_id}: its reservation {reservation_id} does not exist"));
            }
        }
        problems
    }

    /// Holds and PENDING lines on items that have no stock item (stock items are never deleted),
    /// each with the item it names.
    fn orphans(&self) -> Vec<(ItemKey, String)> {
        let mut problems = Vec::new();
        let mut pending: Vec<&Reservation> =
            self.reservations.values().filter(|r| r.status == Status::Pending).collect();
        pending.sort_by(|a, b| a.reservation_id.cmp(&b.reservation_id));
        for r in pending {
            for line in &r.lines {
                let key = (line.sku.clone(), line.location_id.clone());
                if !self.stock.contains_key(&key) {
                    let problem = format!(
                        "PENDING reservation {} holds {}/{}, which has no stock item",
                        r.reservation_id, line.sku, line.location_id
                    );
                    problems.push((key, problem));
                }
            }
        }
        let unknown: BTreeSet<_> =
            self.holds.iter().filter(|(k, _, _)| !self.stock.contains_key(k)).collect();
        for ((sku, location), reservation_id, quantity) in unknown {
            let problem = format!(
                "hold of {quantity} for {reservation_id} on {sku}/{location}, which has no stock item"
            );
            problems.push(((sku.clone(), location.clone()), problem));
        }
        problems
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

/// The problems one consistent read of a busy item shows on its own (its bounds and
/// `available`), as drift (with the Scan's sums of its holds); `None` when it shows none.
async fn busy_item_drift(store: &Store, suspect: &Drift, scanned: &View) -> Result<Option<Drift>> {
    let key = (suspect.sku.clone(), suspect.location_id.clone());
    let shards: Vec<u32> = scanned.shards.get(&key).map_or(vec![0], |s| s.keys().copied().collect());
    let keys: Vec<Item> = shards.iter().map(|k| shard_key(&key.0, &key.1, *k)).collect();
    let read = store.audit_snapshot(&keys).await?;
    let mut view = View::default();
    for (k, item) in shards.iter().zip(read) {
        if let Some(stock) = item.and_then(|i| from_item::<StockItem>(i).ok()) {
            view.add_shard(*k, stock);
        }
    }
    if view.stock.is_empty() {
        return Ok(None);
    }
    Ok(view.drifting_items().into_iter().next().and_then(|mut d| {
        d.problems.retain(|p| {
            !p.starts_with("reserved is not")
                && !p.starts_with("PENDING line")
                && !p.contains("PENDING units")
        });
        d.problems.push("its holds were not compared: the item kept changing".to_owned());
        let drift =
            Drift { held_by_reservations: suspect.held_by_reservations, hold_items: suspect.hold_items, ..d };
        (drift.problems.len() > 1).then_some(drift)
    }))
}

enum Settled {
    View(View),
    Busy,
}

/// One stock item, its holds and the reservations they (or the scan) name, as they were at one
/// moment; `Busy` when every attempt met a change. Two reads of the item's key range (holds, then
/// the stock item) that find the same version and holds bracket the reads of the reservations:
/// every change of a hold, or of a reservation's status or lines on this item, bumps the item's
/// version in the same transaction, so nothing that matters here changed in between.
async fn settled_item(store: &Store, key: &ItemKey, named: &[String], attempts: u32) -> Result<Settled> {
    for attempt in 0..attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(20 << attempt.min(6))).await;
        }
        let first = item_range(store, key).await?;
        let mut ids: BTreeSet<String> = named.iter().cloned().collect();
        ids.extend(first.holds.iter().map(|h| h.reservation_id.clone()));
        let keys: Vec<Item> = ids.iter().map(|id| reservation_key(id)).collect();
        let mut reservations = Vec::new();
        for chunk in keys.chunks(MAX_TRANSACT_GET) {
            reservations.extend(store.audit_snapshot(chunk).await?.into_iter().flatten());
        }
        let second = item_range(store, key).await?;
        if first.version() != second.version() || first.holds != second.holds {
            continue;
        }
        let mut view = View::default();
        let mut problems = Vec::new();
        for item in reservations {
            view.add(item, &mut problems);
        }
        view.holds = second.holds.into_iter().map(|h| (key.clone(), h.reservation_id, h.quantity)).collect();
        for (k, stock) in second.shards {
            view.add_shard(k, stock);
        }
        return Ok(Settled::View(view));
    }
    Ok(Settled::Busy)
}

#[derive(Debug, PartialEq)]
struct RangeHold {
    sort_key: String,
    reservation_id: String,
    quantity: i64,
}

#[derive(Debug)]
struct Range {
    /// The item's shards (shard 0: the item itself).
    shards: BTreeMap<u32, StockItem>,
    holds: Vec<RangeHold>,
}

impl Range {
    /// The item's version as the API shows it (every write to any shard moves it).
    fn version(&self) -> Option<u64> {
        self.shards.contains_key(&0).then(|| self.shards.values().map(|s| s.version).sum())
    }
}

/// The item's holds and stock item from one Query of its key range.
async fn item_range(store: &Store, key: &ItemKey) -> Result<Range> {
    let mut range = Range { shards: BTreeMap::new(), holds: Vec::new() };
    let (item_sk, shard_prefix) = (format!("LOC#{}", key.1), format!("LOC#{}#", key.1));
    let hold_prefix = format!("HOLD#{}#", key.1);
    for item in store.audit_item_range(&key.0, &key.1).await? {
        let attr = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let sk = attr("sk");
        if sk.starts_with(&hold_prefix) {
            let quantity = item.get("quantity").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok());
            let reservation_id = attr("reservationId");
            range.holds.push(RangeHold { sort_key: sk, reservation_id, quantity: quantity.unwrap_or(-1) });
        } else if sk == item_sk || sk.starts_with(&shard_prefix) {
            let shard = shard_of(&item);
            if let Ok(stock) = from_item::<StockItem>(item) {
                range.shards.insert(shard, stock);
            }
        }
    }
    Ok(range)
}

/// The reservation / order key problems of `view`, each judged again on the reservation and
/// the order key read at one moment (TransactGetItems).
async fn settled_order_problems(store: &Store, view: &View) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    for r in view.reservations.values().filter(|r| r.status == Status::Pending) {
        pairs.insert((r.reservation_id.clone(), r.order_id.clone()));
    }
    for (order_id, reservation_id) in &view.orders {
        pairs.insert((reservation_id.clone(), order_id.clone()));
    }
    let suspects = view.order_problems();
    for (reservation_id, order_id) in pairs {
        if !suspects.iter().any(|p| p.contains(&reservation_id)) {
            continue;
        }
        // The order key may name another reservation by now: then that one is read with them.
        let mut keys = vec![reservation_key(&reservation_id), order_key(&order_id)];
        for _ in 0..3 {
            let mut fresh = View::default();
            for item in store.audit_snapshot(&keys).await?.into_iter().flatten() {
                fresh.add(item, &mut problems);
            }
            match fresh.orders.get(&order_id) {
                Some(named) if !keys.contains(&reservation_key(named)) => keys.push(reservation_key(named)),
                _ => {
                    problems.extend(fresh.order_problems());
                    break;
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    Ok(problems)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Line;

    fn stock(sku: &str, on_hand: i64, reserved: i64) -> StockItem {
        StockItem {
            sku: sku.into(),
            location_id: "w".into(),
            on_hand,
            reserved,
            available: on_hand - reserved,
            version: 3,
            updated_at: chrono::Utc::now(),
            low_stock_threshold: None,
            shards: 1,
        }
    }

    fn view() -> View {
        let mut v = View::default();
        let r = Reservation::new(
            "o1".into(),
            vec![Line { sku: "A".into(), location_id: "w".into(), quantity: 2 }],
            60,
            chrono::Utc::now(),
        );
        v.holds.push((("A".into(), "w".into()), r.reservation_id.clone(), 2));
        v.orders.insert("o1".into(), r.reservation_id.clone());
        v.reservations.insert(r.reservation_id.clone(), r);
        v.stock.insert(("A".into(), "w".into()), stock("A", 10, 2));
        v.stock.insert(("B".into(), "w".into()), stock("B", 5, 0));
        v
    }

    #[test]
    fn a_consistent_view_has_no_drift() {
        let v = view();
        assert_eq!(v.drifting_items(), vec![]);
        assert_eq!(v.other_problems(), Vec::<String>::new());
    }

    #[test]
    fn each_disagreement_is_named() {
        let mut v = view();
        v.stock.get_mut(&("B".into(), "w".into())).unwrap().reserved = 1;
        let drift = v.drifting_items();
        assert_eq!(drift.len(), 1);
        assert_eq!(drift[0].sku, "B");
        assert_eq!(drift[0].problems.len(), 3, "{:?}", drift[0].problems);

        let mut v = view();
        v.holds.clear();
        v.orders.clear();
        let drift = v.drifting_items();
        assert_eq!(drift.len(), 1);
        assert!(drift[0].problems.iter().any(|p| p.contains("has no hold")), "{:?}", drift[0].problems);
        assert_eq!(v.other_problems().len(), 1);
    }
}
