//! Stock events of sharded items, on the item's total (API.md, "Sharded items").
//!
//! A stream record of one shard says nothing of the item's total, so the publisher derives a
//! sharded item's `StockDepleted`, `StockLow` and `StockReplenished` here instead of from images:
//! it reads every shard item and the item's level item in one `TransactGetItems` (a snapshot, so
//! units a stock write moves between shards are never counted twice or not at all), and writes
//! the level item with the total's available and its `basis` (the sum of the shards' versions,
//! which every write raises) together with an outbox record per line the total crossed since the
//! level item's, all in one transaction conditioned on the level item being older. So:
//!
//! - each crossing is recorded once (two publishers reading the same snapshot write it once; an
//!   older snapshot never overwrites a newer one), and its event is an outbox record like any
//!   other, published through the stream (nothing lost if the publisher stops after the write);
//! - the shards a lowered `shards` left behind count as long as they exist (`shardItems`);
//! - the events carry the item's total (`domain::combine`), as GET shows it.
//!
//! The publisher asks only when a shard's change could move the total across a line
//! (`publish::plan`), so a sale's bulk of reserves, far from every line, reads nothing.

use super::items::{from_item, level_key, n, number_attr, s, shard_items_of, shard_key, Item};
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
            let Some(first) = self.get_item(shard_key(sku, location_id, 0)).await? else {
                return Ok(Settled::NoItem);
            };
            let count = shard_items_of(&first);
            let mut keys: Vec<Item> = (0..count).map(|k| shard_key(sku, location_id, k)).collect();
            keys.push(level_key(sku, location_id));
            let mut read = self.read_snapshot(&keys).await?;
            let level = read.pop().flatten();
            let Some(Some(zero)) = read.first() else { return Ok(Settled::NoItem) };
            if shard_items_of(zero) != count {
                // Shards were added since the first read: read them all.
                return Err(Failure::Stale);
            }
            let shards =
                read.into_iter().flatten().map(from_item::<StockItem>).collect::<Result<Vec<_>>>()?;
            let total = combine(&shards).expect("shard 0 was read");
            let basis = total.version;
            let recorded = level.as_ref().and_then(|l| number_attr(l, "basis"));
            if recorded.is_some_and(|b| b >= basis as i64) {
                return Ok(Settled::AlreadyUpToDate);
            }
            let before = level.as_ref().and_then(|l| number_attr(l, "available"));
            let threshold = total.low_stock_threshold;
            let crossed = before.map_or_else(Vec::new, |available| {
                stock_crossings(
                    StockLevel { available, low_stock_threshold: threshold },
                    StockLevel { available: total.available, low_stock_threshold: threshold },
                )
            });
            let mut tx = Tx::new(Write::Level { events: crossed.len() });
            let guard = tx.push(self.put(
                level_item(&total),
                "attribute_not_exists(pk) OR basis < :basis",
                vec![(":basis", n(basis))],
            )?);
            for event in level_events(&total, &crossed)? {
                tx.push(self.outbox(&event)?);
            }
            let ctx = WriteContext::default();
            let marker = level_key(sku, location_id);
            match self.commit("settle_stock_level", tx, marker, None, &ctx, OnConflict::Retry).await? {
                TxOutcome::Committed => Ok(Settled::Recorded(crossed.clone())),
                // Another publisher recorded a snapshot at least as new: read again.
                TxOutcome::Cancelled(c) if c.failed(&guard) => Err(Failure::Stale),
                TxOutcome::Cancelled(_) => Err(Failure::Stale),
                TxOutcome::GaveWay => Err(Failure::Retry("conflict")),
            }
        })
        .await
    }
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
