//! The re-reads: a suspect from the Scan is judged again on a view taken at one moment (its
//! key range read twice around a TransactGetItems of the reservations), a busy item on one read
//! of its own, and a reservation / order key disagreement on the two read together.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{Drift, ItemKey, Problem, View};
use crate::domain::{Status, StockItem};
use crate::error::Result;
use crate::store::items::{
    from_item, is_item_or_shard, order_key, read_hold, reservation_key, shard_key, shard_of, string_attr,
    Item, SK,
};
use crate::store::MAX_TRANSACT_GET;
use crate::Store;

/// The problems one consistent read of a busy item shows on its own (its bounds and
/// `available`), as drift (with the Scan's sums of its holds); `None` when it shows none.
pub(super) async fn busy_item_drift(store: &Store, suspect: &Drift, scanned: &View) -> Result<Option<Drift>> {
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
        d.problems.retain(|p| !p.needs_holds());
        d.problems.push(Problem::HoldsNotCompared);
        let drift =
            Drift { held_by_reservations: suspect.held_by_reservations, hold_items: suspect.hold_items, ..d };
        (drift.problems.len() > 1).then_some(drift)
    }))
}

pub(super) enum Settled {
    View(View),
    Busy,
}

/// One stock item, its holds and the reservations they (or the scan) name, as they were at one
/// moment; `Busy` when every attempt met a change. Two reads of the item's key range (holds, then
/// the stock item) that find the same version and holds bracket the reads of the reservations:
/// every change of a hold, or of a reservation's status or lines on this item, bumps the item's
/// version in the same transaction, so nothing that matters here changed in between.
pub(super) async fn settled_item(
    store: &Store,
    key: &ItemKey,
    named: &[String],
    attempts: u32,
) -> Result<Settled> {
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
        view.holds =
            second.holds.into_iter().map(|h| (key.clone(), h.shard, h.reservation_id, h.quantity)).collect();
        for (k, stock) in second.shards {
            view.add_shard(k, stock);
        }
        return Ok(Settled::View(view));
    }
    Ok(Settled::Busy)
}

#[derive(Debug, PartialEq)]
struct RangeHold {
    shard: u32,
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
    for item in store.audit_item_range(&key.0, &key.1).await? {
        let sk = string_attr(&item, SK).unwrap_or_default();
        if let Some(hold) = read_hold(&item).filter(|h| h.location_id == key.1) {
            range.holds.push(RangeHold {
                shard: hold.shard,
                sort_key: hold.sort_key,
                reservation_id: hold.reservation_id,
                quantity: hold.quantity.unwrap_or(-1),
            });
        } else if is_item_or_shard(&sk, &key.1) {
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
pub(super) async fn settled_order_problems(store: &Store, view: &View) -> Result<Vec<Problem>> {
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
        if !suspects.iter().any(|p| p.names_order_reservation(&reservation_id)) {
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
