//! Stock events of sharded items, on the item's total (API.md, "Sharded items").
//!
//! A stream record of one shard says nothing of the item's total, so the publisher derives a
//! sharded item's `StockDepleted`, `StockLow` and `StockReplenished` here instead of from images:
//! it reads every shard item and the item's level item (BatchGetItem: reads that never get in a
//! reserve's way), and when the total is on the other side of a line (0, the low-stock threshold)
//! from the level item's, it reads the shards again as one snapshot (`TransactGetItems`, so units
//! writes move between shards are never counted twice or not at all: a line is judged crossed,
//! or crossed back, only on a snapshot). It then writes the
//! level item with the total's available and its `basis` (the sum of the shards' versions, which
//! every write raises), with an outbox record per line crossed, in one transaction conditioned on
//! the level item being exactly the one it read. So:
//!
//! - each crossing is recorded once: a publisher whose level item changed since it read it reads
//!   and decides again, from the other's record (two publishers deciding on the same level item
//!   never both write); its event is an outbox record like any other, published through the
//!   stream (nothing lost if the publisher stops after the write);
//! - every decision ends in a write of the level item, so the last one stands for the item as
//!   the last write left it (a total that crossed and came back between two reads is not seen);
//!   a write with no event that is refused when sent again reads again (it cannot tell it was
//!   not applied);
//! - the shards a lowered `shards` left behind count as long as they exist (`shardItems`);
//! - the events carry the item's total (`domain::combine`), as GET shows it.
//!
//! The publisher asks only when a shard's change could move the total across a line
//! (`publish::plan`), so a sale's bulk of reserves, far from every line, reads nothing.

use super::items::{level_key, n, number_attr, outbox_key, s, shard_items_of, shard_key, Item};
use super::retry::Failure;
use super::transact::{OnConflict, Tx, TxOutcome};
use super::{Store, WriteContext};
use crate::domain::{combine, stock_crossings, timestamp, StockItem, StockLevel, Write};
use crate::error::{Error, Result};
use crate::events::{DetailType, OutboxEvent};

/// Names the ids of stock events derived from a sharded item's total (UUID v5 of
/// `type|LEVEL#{sku}#{loc}|basis`): the same snapshot always yields the same ids.
const LEVEL_EVENT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x2b6c_51d0_7e94_4f3a_9d18_c0a5_6e7f_b243);

/// What settling an item's level came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// The item does not exist.
    NoItem,
    /// The level item already stands for this snapshot or a later one.
    AlreadyUpToDate,
    /// The level item now stands for the total read, with these events recorded.
    Recorded(Vec<DetailType>),
}

impl Store {
    /// Brings the level item of a sharded item up to its current total, recording the stock
    /// events the total crossed since. (The stock write that makes an item sharded writes its
    /// first level item; without one, the total is recorded with no event.)
    pub async fn settle_stock_level(&self, sku: &str, location_id: &str) -> Result<Settled> {
        self.with_retries("settle_stock_level", || async {
            // Shard 0 names the shard items; they and the level item are read as they are
            // (BatchGetItem: no transaction, so never in a reserve's way).
            let Some(first) = self.get_item(shard_key(sku, location_id, 0)).await? else {
                return Ok(Settled::NoItem);
            };
            let count = shard_items_of(&first);
            let mut keys: Vec<Item> = (1..count).map(|k| shard_key(sku, location_id, k)).collect();
            keys.push(level_key(sku, location_id));
            let mut read = vec![first];
            read.extend(self.batch_get_all(keys).await?);
            let level = read.iter().position(is_level).map(|i| read.remove(i));
            let recorded = level.as_ref().and_then(|l| number_attr(l, "basis"));
            let before = level.as_ref().and_then(|l| number_attr(l, "available"));
            let mut total = total_of(read)?;
            let mut crossed = crossings(before, &total);
            if before.is_some_and(|b| zone(b, &total) != zone(total.available, &total)) {
                // A total on the other side of a line (crossing it or not: going back up above
                // the threshold is no event) is decided on a snapshot of the shards
                // (TransactGetItems): a read of them as they are may be torn by writes between them.
                let keys: Vec<Item> = (0..count).map(|k| shard_key(sku, location_id, k)).collect();
                let snapshot: Vec<Item> = self.read_snapshot(&keys).await?.into_iter().flatten().collect();
                if snapshot.first().is_some_and(|zero| shard_items_of(zero) != count) {
                    // Shards were added since the first read: read them all.
                    return Err(Failure::Stale);
                }
                total = total_of(snapshot)?;
                crossed = crossings(before, &total);
            }
            if recorded.is_some_and(|b| b >= total.version as i64) {
                return Ok(Settled::AlreadyUpToDate);
            }
            // Only over the level item as read: another publisher's record since then (a
            // snapshot of its own, older or newer) makes this one read and decide again.
            let (condition, values) = match recorded {
                Some(read) => ("basis = :read", vec![(":read", n(read))]),
                None => ("attribute_not_exists(pk)", vec![]),
            };
            let mut tx = Tx::new(Write::Level { events: crossed.len() });
            tx.push(self.put(level_item(&total), condition, values)?);
            let events = level_events(&total, &crossed)?;
            // What tells a resent write it was applied: its first event. Without one, nothing
            // does (the level item exists whoever wrote it): a cancelled resend reads again.
            let marker = events.first().map(outbox_key).unwrap_or_else(|| never_written(sku, location_id));
            for event in &events {
                tx.push(self.outbox(event)?);
            }
            let ctx = WriteContext::default();
            match self.commit("settle_stock_level", tx, marker, None, &ctx, OnConflict::Retry).await? {
                TxOutcome::Committed => Ok(Settled::Recorded(crossed)),
                TxOutcome::Cancelled(_) => Err(Failure::Stale),
                TxOutcome::GaveWay => Err(Failure::Retry("conflict")),
            }
        })
        .await
    }
}

/// Which side of the lines a total is on: out of stock, below the low-stock threshold, or not.
fn zone(available: i64, total: &StockItem) -> u8 {
    match available {
        a if a <= 0 => 0,
        a if total.low_stock_threshold.is_some_and(|t| a < t) => 1,
        _ => 2,
    }
}

/// A key no item has: the marker of a level write with no event.
fn never_written(sku: &str, location_id: &str) -> Item {
    let mut key = level_key(sku, location_id);
    key.insert(super::items::SK.into(), s("NO-MARKER"));
    key
}

/// Whether an item read is a level item.
fn is_level(item: &Item) -> bool {
    item.get("entity").and_then(|e| e.as_s().ok()).is_some_and(|e| e == "STOCK_LEVEL")
}

/// The item as the API shows it, from its shard items (shard 0 among them, in any order).
fn total_of(items: Vec<Item>) -> Result<StockItem, Failure> {
    let shards = super::reads::numbered_shards(items)?;
    if shards.first().is_none_or(|(k, _)| *k != 0) {
        return Err(Failure::Stale);
    }
    Ok(combine(&shards.into_iter().map(|(_, s)| s).collect::<Vec<_>>()).expect("shard 0"))
}

/// The stock events a change of the total from `before` (none: nothing recorded yet) crosses.
fn crossings(before: Option<i64>, total: &StockItem) -> Vec<DetailType> {
    let threshold = total.low_stock_threshold;
    before.map_or_else(Vec::new, |available| {
        stock_crossings(
            StockLevel { available, low_stock_threshold: threshold },
            StockLevel { available: total.available, low_stock_threshold: threshold },
        )
    })
}

/// The level item recording `total` (a sharded item as the API shows it) as where its stock
/// events were last decided.
pub(crate) fn level_item(total: &StockItem) -> Item {
    let mut item = level_key(&total.sku, &total.location_id);
    item.extend([
        ("entity".into(), s("STOCK_LEVEL")),
        ("sku".into(), s(&total.sku)),
        ("locationId".into(), s(&total.location_id)),
        ("available".into(), n(total.available)),
        ("basis".into(), n(total.version)),
        ("updatedAt".into(), s(timestamp::format(&total.updated_at))),
    ]);
    item
}

/// The stock events `crossed` by a sharded item's total, carrying the total: ids fixed by the
/// item, the type and the total's version (the same snapshot always yields the same ids).
pub(crate) fn level_events(total: &StockItem, crossed: &[DetailType]) -> Result<Vec<OutboxEvent>> {
    let data = serde_json::to_value(total).map_err(Error::internal)?;
    Ok(crossed
        .iter()
        .map(|detail_type| {
            let mut event = OutboxEvent::new(*detail_type, data.clone(), total.updated_at, None);
            let name = format!(
                "{}|LEVEL#{}#{}|{}",
                detail_type.as_str(),
                total.sku,
                total.location_id,
                total.version
            );
            event.event_id = uuid::Uuid::new_v5(&LEVEL_EVENT_NAMESPACE, name.as_bytes()).to_string();
            event
        })
        .collect())
}
