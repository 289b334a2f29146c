//! What the audit reads, as entities: stock items (with their shards), holds, reservations and
//! order keys, from the Scan or from a re-read.

use std::collections::{BTreeMap, HashMap};

use super::{ItemKey, Problem};
use crate::domain::{combine, Reservation, Status, StockItem};
use crate::store::items::{from_item, read_hold, shard_of, HoldRead, Item};

/// What the audit reads, as entities.
#[derive(Debug, Default)]
pub struct View {
    /// Each stock item as the API shows it (the sum of its shards).
    pub stock: BTreeMap<ItemKey, StockItem>,
    /// Each stock item's shard items, by shard (an unsharded item: shard 0 alone).
    pub shards: BTreeMap<ItemKey, BTreeMap<u32, StockItem>>,
    /// Hold items: `(item, shard, reservationId, quantity)`.
    pub holds: Vec<(ItemKey, u32, String, i64)>,
    pub reservations: HashMap<String, Reservation>,
    /// Order keys: orderId -> reservationId.
    pub orders: HashMap<String, String>,
}

impl View {
    /// Reads scanned items into entities; an item that does not parse is a problem in itself.
    pub fn add(&mut self, item: Item, problems: &mut Vec<Problem>) {
        let attr = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let (entity, pk, sk) = (attr("entity"), attr("pk"), attr("sk"));
        match entity.as_str() {
            "STOCK" | "STOCK_SHARD" => {
                let shard = shard_of(&item);
                match from_item::<StockItem>(item) {
                    Ok(stock) => self.add_shard(shard, stock),
                    Err(e) => problems.push(Problem::Unreadable {
                        item: format!("stock item {pk}/{sk}"),
                        why: format!("does not parse: {e}"),
                    }),
                }
            }
            "HOLD" => match read_hold(&item) {
                Some(HoldRead { sku, location_id, shard, reservation_id, quantity: Some(q), .. }) => {
                    self.holds.push(((sku, location_id), shard, reservation_id, q))
                }
                _ => problems.push(Problem::Unreadable {
                    item: format!("hold {pk}/{sk}"),
                    why: "has no quantity".to_owned(),
                }),
            },
            "RESERVATION" => match from_item::<Reservation>(item) {
                Ok(r) => {
                    self.reservations.insert(r.reservation_id.clone(), r);
                }
                Err(e) => problems.push(Problem::Unreadable {
                    item: format!("reservation {pk}"),
                    why: format!("does not parse: {e}"),
                }),
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
    pub(super) fn pending_units(&self) -> BTreeMap<(ItemKey, u32), i64> {
        let mut units: BTreeMap<(ItemKey, u32), i64> = BTreeMap::new();
        for r in self.reservations.values().filter(|r| r.status == Status::Pending) {
            for ((sku, location_id, shard), q) in r.units() {
                *units.entry(((sku, location_id), shard)).or_default() += q;
            }
        }
        units
    }

    /// The PENDING reservations' units on each item.
    pub(super) fn pending_lines(&self) -> BTreeMap<ItemKey, Vec<(String, i64)>> {
        let mut lines: BTreeMap<ItemKey, Vec<(String, i64)>> = BTreeMap::new();
        for r in self.reservations.values().filter(|r| r.status == Status::Pending) {
            for line in r.stock_lines() {
                let key = (line.sku.clone(), line.location_id.clone());
                lines.entry(key).or_default().push((r.reservation_id.clone(), line.quantity));
            }
        }
        lines
    }
}
