//! Where a hold's units go. The lines of a cart: as the caller named them, or resolved on a read
//! of the stock (`resolve_lines`); then, per line, the shard items that take its units
//! (`place_units`), with how many shards each item has remembered for a while so that a reserve
//! of an unsharded item still needs no read; and, when a take's condition failed, what that
//! means (`short_takes`): decide again, or the shortfall. A shortfall is only ever answered on a
//! snapshot of the item (its shards read at one moment): a Query is not one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::items::{from_item, number_attr, shard_items_of, shard_key, Item};
use super::retry::Failure;
use super::Store;
use crate::domain::{
    check_resolved, place, sellable, unplace, Cart, Chosen, Line, ShardKey, StockItem, Units,
};
use crate::error::{Error, Result, Shortfall};

/// How long a shard count read is used. A stale count is harmless: a count of 1 sends a reserve
/// to shard 0, which is a shard of every item; a count too large names shards without units, whose
/// conditions fail, and the item is read again. An item whose count is not known (never met, or
/// met too long ago) is taken from blind, at shard 0, like an unsharded one: one request. A take
/// that fails on a sharded item, or one taken from blind that meets another transaction, marks
/// the item to be read before it is placed again.
const SHARD_COUNT_TTL: Duration = Duration::from_secs(10);

/// An item's shards as last read: `count` take new holds; `items` shard items exist (more than
/// `count` after the count was lowered: the shards beyond it still hold, or were given back,
/// units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub count: u32,
    pub items: u32,
}

/// What a process knows of an item's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// Read within [`SHARD_COUNT_TTL`].
    Layout(Layout),
    /// Read it before placing units on it (its last take failed, or met another transaction);
    /// it has this many shard items, as far as this process knows (1: not known).
    ReadFirst(u32),
}

/// Shard layouts as last read, per `(sku, locationId)`.
#[derive(Debug, Default)]
pub(crate) struct ShardCounts(Mutex<HashMap<(String, String), (Known, Instant)>>);

impl ShardCounts {
    /// `None`: not known (never met, or read too long ago).
    fn get(&self, sku: &str, location_id: &str) -> Option<Known> {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get(&(sku.to_owned(), location_id.to_owned()))? {
            (Known::Layout(_), at) if at.elapsed() >= SHARD_COUNT_TTL => None,
            (known, _) => Some(*known),
        }
    }

    fn set(&self, sku: &str, location_id: &str, known: Known) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() > 10_000 {
            counts.clear();
        }
        counts.insert((sku.to_owned(), location_id.to_owned()), (known, Instant::now()));
    }

    fn layout(&self, sku: &str, location_id: &str) -> Option<Layout> {
        match self.get(sku, location_id)? {
            Known::Layout(layout) => Some(layout),
            Known::ReadFirst(_) => None,
        }
    }

    /// How many shard items the item has, as last read or told, however long ago (1: not known).
    fn items_hint(&self, sku: &str, location_id: &str) -> u32 {
        let counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get(&(sku.to_owned(), location_id.to_owned())) {
            Some((Known::Layout(layout), _)) => layout.items,
            Some((Known::ReadFirst(items), _)) => *items,
            None => 1,
        }
    }
}

impl Store {
    pub(crate) fn remember_shards(&self, sku: &str, location_id: &str, count: u32, items: u32) {
        self.shard_counts.set(sku, location_id, Known::Layout(Layout { count, items: items.max(count) }));
    }

    /// The item may have been resharded: read its shards before placing units on it again.
    /// `items`: how many shard items it has, if a write's answer just said (its shard 0 as it
    /// was), so the read takes one request.
    pub(crate) fn forget_shards(&self, sku: &str, location_id: &str, items: Option<u32>) {
        let items = items.unwrap_or_else(|| self.shard_items_hint(sku, location_id));
        self.shard_counts.set(sku, location_id, Known::ReadFirst(items));
    }

    /// How many shard items `(sku, location_id)` has, as this process last knew (1: not known).
    pub(crate) fn shard_items_hint(&self, sku: &str, location_id: &str) -> u32 {
        self.shard_counts.items_hint(sku, location_id)
    }

    /// Whether this process does not know `(sku, location_id)`'s layout: a reserve takes from it
    /// blind, at shard 0.
    pub(crate) fn layout_unknown(&self, sku: &str, location_id: &str) -> bool {
        self.shard_counts.get(sku, location_id).is_none()
    }

    /// Whether `(sku, location_id)` is known to have more than one shard item.
    pub(crate) fn known_sharded(&self, sku: &str, location_id: &str) -> bool {
        self.shard_counts.layout(sku, location_id).is_some_and(|l| l.items > 1)
    }

    /// How many shards of `(sku, location_id)` take new holds, as last read (1 if unknown).
    pub(crate) fn shard_count(&self, sku: &str, location_id: &str) -> u32 {
        self.shard_counts.layout(sku, location_id).map_or(1, |l| l.count)
    }

    /// Where the units of `lines` are to be held, given the units `held` already (a hold being
    /// changed; empty for a new one): an item's units that stay, stay where they are; fewer units
    /// come off the largest holds; more units go to one random shard of the item that has them
    /// available (as just read), or several when none has them alone (`domain::place`). On an
    /// unsharded item every unit is on shard 0, read or not (its condition decides). When the
    /// shards together (as read) have too few units: for lines the service chose, `Err(Stale)`
    /// (resolve them again); for the caller's, the shortfall of every line of the cart, judged
    /// on a snapshot of each line's item. Shards in `busy` (found busy with another transaction
    /// just now) are not picked blind while others are left.
    pub(crate) async fn place_units(
        &self,
        lines: &[Line],
        held: &Units,
        cart: &Cart,
        busy: &BTreeSet<ShardKey>,
    ) -> Result<Units, Failure> {
        let safety = cart.safety_stock();
        let mut next = Units::new();
        let mut short = false;
        for line in lines {
            let mine = held_on(held, &line.sku, &line.location_id);
            let old: i64 = mine.values().sum();
            let entries = if line.quantity <= old {
                unplace(&mine, old - line.quantity)
            } else {
                let Some(placed) = self.place_more(line, line.quantity - old, safety, busy).await? else {
                    short = true;
                    continue;
                };
                let mut entries = mine;
                for (k, q) in placed {
                    *entries.entry(k).or_default() += q;
                }
                entries
            };
            for (k, q) in entries {
                next.insert((line.sku.clone(), line.location_id.clone(), k), q);
            }
        }
        match (short, cart.chosen()) {
            (false, _) => Ok(next),
            (true, Chosen::ByService) => Err(Failure::Stale),
            (true, Chosen::ByCaller) if cart.has_kits() => {
                Err(self.shortfalls_on_read(cart, &lines_of(held)).await)
            }
            (true, Chosen::ByCaller) => Err(self.shortfalls_on_snapshots(lines, held, safety).await?),
        }
    }

    /// Where `quantity` more units of `line`'s item go; `None` when its shards, as read, do not
    /// have them.
    async fn place_more(
        &self,
        line: &Line,
        quantity: i64,
        safety: i64,
        busy: &BTreeSet<ShardKey>,
    ) -> Result<Option<Vec<(u32, i64)>>, Failure> {
        let (sku, location_id) = (line.sku.as_str(), line.location_id.as_str());
        match self.shard_counts.get(sku, location_id) {
            // Unsharded (or shards left over from a count since lowered to 1: shard 0 first,
            // and should it be short the shards are read); or not known: blind, at shard 0
            // (should it be short or busy, the item is read before placing again).
            Some(Known::Layout(Layout { count: 1, .. })) | None => return Ok(Some(vec![(0, quantity)])),
            // Sharded, as read lately: a random shard (not one just found busy), unread (one
            // request per reserve, as for an unsharded item). Should it be short, its condition
            // fails, and the item is read before placing again.
            Some(Known::Layout(Layout { count, .. })) => {
                let free: Vec<u32> = (0..count)
                    .filter(|k| !busy.contains(&(sku.to_owned(), location_id.to_owned(), *k)))
                    .collect();
                let k = if free.is_empty() {
                    fastrand::u32(..count)
                } else {
                    free[fastrand::usize(..free.len())]
                };
                return Ok(Some(vec![(k, quantity)]));
            }
            Some(Known::ReadFirst(_)) => {}
        }
        let shards = self.read_shards(sku, location_id).await?;
        let Some((_, item)) = shards.first() else {
            // No such item: shard 0's condition answers 404, as for an unsharded item.
            return Ok(Some(vec![(0, quantity)]));
        };
        let count = item.shards;
        let items = shards.last().map_or(1, |(k, _)| k + 1);
        self.remember_shards(sku, location_id, count, items);
        if count <= 1 && items <= 1 {
            return Ok(Some(vec![(0, quantity)]));
        }
        // Every shard item with units available, those beyond the count too (units given back
        // there after the count was lowered).
        let available: Vec<i64> = (0..items.max(count))
            .map(|k| shards.iter().find(|(n, _)| *n == k).map_or(0, |(_, s)| (s.available - safety).max(0)))
            .collect();
        Ok(place(quantity, &available))
    }

    /// The answer to a cart of the caller's lines some of which looked short: every line short
    /// on a snapshot of its item (its shard items read at one moment: a Query is not one, a PUT
    /// may have moved units between shards while it read), counting the units `held` already;
    /// `Stale` when none is short after all. An item that does not exist is 404.
    async fn shortfalls_on_snapshots(
        &self,
        lines: &[Line],
        held: &Units,
        safety: i64,
    ) -> Result<Failure, Failure> {
        let reads = lines.iter().map(|line| async move {
            let shards = self.read_shards(&line.sku, &line.location_id).await?;
            let keys: Vec<_> =
                shards.iter().map(|(k, _)| shard_key(&line.sku, &line.location_id, *k)).collect();
            let snapshot = if keys.is_empty() { Vec::new() } else { self.audit_snapshot(&keys).await? };
            Ok::<_, Failure>((line, snapshot))
        });
        let mut short = Vec::new();
        for (line, snapshot) in futures::future::try_join_all(reads).await? {
            if snapshot.first().is_none_or(Option::is_none) {
                let id = format!("{}/{}", line.sku, line.location_id);
                return Ok(Failure::Fatal(Error::NotFound { what: "stock item", id }));
            }
            // Each shard item keeps the safety stock (the condition of a write to it says so).
            let total: i64 = snapshot
                .iter()
                .flatten()
                .filter_map(|item| number_attr(item, "available"))
                .map(|available| (available - safety).max(0))
                .sum();
            let mine: i64 = held_on(held, &line.sku, &line.location_id).values().sum();
            if total + mine < line.quantity {
                short.push(Shortfall {
                    sku: line.sku.clone(),
                    location_id: Some(line.location_id.clone()),
                    requested: line.quantity,
                    available: total.max(0) + mine,
                });
            }
        }
        if short.is_empty() {
            return Ok(Failure::Stale);
        }
        Ok(Failure::Fatal(Error::InsufficientStock { lines: short }))
    }

    /// What the takes of units whose conditions failed mean: on a sharded item (or one that may
    /// have been resharded since), or for lines the service chose, the stock moved since it was
    /// read: `Stale`, read and decide again. Else (the caller's lines on unsharded items) the
    /// shortfall of each such line of `lines`, its item as it was at the write, counting the
    /// units `held` of it already (by the hold being changed).
    pub(crate) fn short_takes<'a>(
        &self,
        failed: impl Iterator<Item = (&'a ShardKey, &'a Item)>,
        cart: &Cart,
        lines: &[Line],
        held: impl Fn(&str, &str) -> i64,
    ) -> Failure {
        let chosen = cart.chosen();
        let failed: Vec<_> = failed.collect();
        let mut sharded = false;
        for ((sku, location_id, shard), old) in &failed {
            let resharded = number_attr(old, "shards").is_some_and(|n| n > 1);
            // Taken from blind: shards left from a lowered count may have units; read them first.
            let blind = self.layout_unknown(sku, location_id) && !old.is_empty();
            if *shard > 0 || resharded || blind || self.known_sharded(sku, location_id) {
                // Shard 0 as it was names its shard items.
                let items = (*shard == 0 && !old.is_empty()).then(|| shard_items_of(old));
                self.forget_shards(sku, location_id, items);
                sharded = true;
            }
        }
        if sharded || chosen == Chosen::ByService {
            return Failure::Stale;
        }
        let mut short = Vec::new();
        for ((sku, location_id, _), old) in failed {
            let Some(available) = number_attr(old, "available") else {
                let id = format!("{sku}/{location_id}");
                return Failure::Fatal(Error::NotFound { what: "stock item", id });
            };
            let Some(line) = lines.iter().find(|l| l.sku == *sku && l.location_id == *location_id) else {
                continue;
            };
            short.push(Shortfall {
                sku: sku.clone(),
                location_id: Some(location_id.clone()),
                requested: line.quantity,
                available: (available - cart.safety_stock()).max(0) + held(sku, location_id),
            });
        }
        if short.is_empty() {
            return Failure::Fatal(Error::internal(
                "a transaction was cancelled by a condition on no known item",
            ));
        }
        Failure::Fatal(Error::InsufficientStock { lines: short })
    }

    /// The concrete lines of `cart`: as they are when each names its location, else resolved on
    /// a strongly consistent read of its skus (which also tells the unsharded items), counting the
    /// units of `held` as available. A Query is not a snapshot (a PUT moving units between an
    /// item's shards while it reads can show them short), so a shortfall on sharded items is
    /// decided again on a snapshot of each.
    pub(crate) async fn resolve_lines(&self, cart: &Cart, held: &[Line]) -> Result<Vec<Line>, Failure> {
        if let Some(lines) = cart.fixed() {
            // (Kit lines: before any of their components' layouts is read.)
            return Ok(check_resolved(lines)?);
        }
        self.resolve_on_read(cart, held).await
    }

    /// The answer to a cart with kit lines some of whose takes failed (`refusal`, as the items
    /// alone would answer it): for the caller's lines, the cart resolved again on a fresh read,
    /// so that a kit line's shortfall counts whole kits and sees the other lines on the same
    /// items (or `Stale`, when it fits after all).
    pub(crate) async fn kit_refusal(&self, refusal: Failure, cart: &Cart, held: &[Line]) -> Failure {
        match refusal {
            Failure::Fatal(Error::InsufficientStock { .. } | Error::NotFound { .. }) if cart.has_kits() => {
                self.shortfalls_on_read(cart, held).await
            }
            other => other,
        }
    }

    async fn shortfalls_on_read(&self, cart: &Cart, held: &[Line]) -> Failure {
        match self.resolve_on_read(cart, held).await {
            Ok(_) => Failure::Stale,
            Err(refusal) => refusal,
        }
    }

    /// [`Store::resolve_lines`] on a read, whatever the lines name.
    async fn resolve_on_read(&self, cart: &Cart, held: &[Line]) -> Result<Vec<Line>, Failure> {
        let items = self.read_skus_shards(cart.stock_skus()).await?;
        // The read tells which items are unsharded: their units go to the item itself with no read
        // of its layout. (A sharded item's units are placed on a read of its shards, which can
        // split a line over several.)
        for shards in &items {
            match shards.as_slice() {
                [item] if item.shards <= 1 => self.remember_shards(&item.sku, &item.location_id, 1, 1),
                [item, ..] => self.forget_shards(&item.sku, &item.location_id, Some(shards.len() as u32)),
                [] => {}
            }
        }
        let safety = cart.safety_stock();
        let stock: Vec<StockItem> = items.iter().filter_map(|shards| sellable(shards, safety)).collect();
        match cart.resolve(&stock, held) {
            Err(Error::InsufficientStock { .. }) if items.iter().any(|shards| shards.len() > 1) => {
                let stock = self.snapshots(&items, safety).await?;
                Ok(cart.resolve(&stock, held)?)
            }
            resolved => Ok(resolved?),
        }
    }

    /// Each of `items` (an item as its shard items) read again at one moment when it has several
    /// shard items, and summed as a channel keeping `safety` at each can sell it.
    async fn snapshots(&self, items: &[Vec<StockItem>], safety: i64) -> Result<Vec<StockItem>, Failure> {
        let reads = items.iter().map(|shards| async move {
            if shards.len() <= 1 {
                return Ok(sellable(shards, safety));
            }
            let keys: Vec<_> = (0..shards.len() as u32)
                .map(|k| shard_key(&shards[0].sku, &shards[0].location_id, k))
                .collect();
            let read = self.audit_snapshot(&keys).await?;
            let read = read.into_iter().flatten().map(from_item::<StockItem>).collect::<Result<Vec<_>>>()?;
            Ok::<_, Failure>(sellable(&read, safety))
        });
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }
}

/// The units of `held`, one line per item.
fn lines_of(held: &Units) -> Vec<Line> {
    let mut units: BTreeMap<(String, String), i64> = BTreeMap::new();
    for ((sku, location_id, _), q) in held {
        *units.entry((sku.clone(), location_id.clone())).or_default() += q;
    }
    units.into_iter().map(|((sku, location_id), quantity)| Line::new(sku, location_id, quantity)).collect()
}

/// The units of `held` on the shards of one item, by shard.
fn held_on(held: &Units, sku: &str, location_id: &str) -> BTreeMap<u32, i64> {
    held.iter().filter(|((s, l, _), _)| s == sku && l == location_id).map(|((_, _, k), q)| (*k, *q)).collect()
}
