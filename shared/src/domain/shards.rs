//! Sharded stock (flash sales): one `(sku, locationId)` split into N shard items, each with its own
//! slice of the units (`onHand`, `reserved`, `available`, `version`), so concurrent reserves of a
//! hot item land on different DynamoDB items instead of conflicting on one. Shard 0 is the item
//! itself (it also carries the item's settings: `shards`, `lowStockThreshold`).
//!
//! - What the API shows of an item is the sum of its shards ([`combine`]).
//! - A reserve takes a line's units from one random shard that can cover them, or, when none can
//!   alone, from several ([`place`]); the reservation records where (`shardHolds`), so confirm,
//!   release and expiry give the units back to (or take them from) those shards ([`units_of`]).
//! - A PUT or an adjustment rewrites every shard in one transaction, spreading the available
//!   units evenly ([`balance`]). When the shard count goes down, the shards beyond it keep their
//!   reserved units (and nothing available) until those holds end; units given back there are
//!   available again (a reserve that reads the shards places on them), and the next PUT or
//!   adjustment moves them to the shards that take holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stock::StockItem;
use super::validate::Line;
use crate::error::{Error, Result};

/// Shards of one item at most: a PUT rewrites every shard, with one ledger item for all their
/// movements, in one transaction of at most 100 actions (64 shard items and a few more).
pub const MAX_SHARDS: u32 = 64;

/// Units of a reservation held on one shard of an item other than shard 0 alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardHold {
    pub sku: String,
    pub location_id: String,
    pub shard: u32,
    pub quantity: i64,
}

/// A shard item: `(sku, locationId, shard)`; shard 0 is the stock item itself.
pub type ShardKey = (String, String, u32);

/// Units per shard item.
pub type Units = BTreeMap<ShardKey, i64>;

/// Where the units of `lines` are: as `shard_holds` says for the items it names, else on shard 0.
pub fn units_of(lines: &[Line], shard_holds: &[ShardHold]) -> Units {
    let mut units = Units::new();
    for line in lines {
        let on: Vec<&ShardHold> =
            shard_holds.iter().filter(|h| h.sku == line.sku && h.location_id == line.location_id).collect();
        if on.is_empty() {
            *units.entry((line.sku.clone(), line.location_id.clone(), 0)).or_default() += line.quantity;
        }
        for h in on {
            *units.entry((h.sku.clone(), h.location_id.clone(), h.shard)).or_default() += h.quantity;
        }
    }
    units.retain(|_, q| *q != 0);
    units
}

/// The `shardHolds` recording `units`: every item whose units are not all on shard 0.
pub fn shard_holds_of(units: &Units) -> Vec<ShardHold> {
    let mut by_item: BTreeMap<(&str, &str), Vec<(u32, i64)>> = BTreeMap::new();
    for ((sku, location_id, shard), q) in units {
        if *q > 0 {
            by_item.entry((sku, location_id)).or_default().push((*shard, *q));
        }
    }
    by_item
        .into_iter()
        .filter(|(_, on)| on.iter().any(|(shard, _)| *shard != 0))
        .flat_map(|((sku, location_id), on)| {
            on.into_iter().map(move |(shard, quantity)| ShardHold {
                sku: sku.to_owned(),
                location_id: location_id.to_owned(),
                shard,
                quantity,
            })
        })
        .collect()
}

/// Where to take `quantity` units, given the units available on each shard that takes new holds
/// (`available[k]` for shard k): one random shard among those that can cover it all (so
/// concurrent buyers spread), else the fewest shards, most available first. `None` when the
/// shards together have fewer units.
pub fn place(quantity: i64, available: &[i64]) -> Option<Vec<(u32, i64)>> {
    let covering: Vec<u32> =
        (0..available.len() as u32).filter(|&k| available[k as usize] >= quantity).collect();
    if !covering.is_empty() {
        return Some(vec![(covering[fastrand::usize(..covering.len())], quantity)]);
    }
    if available.iter().filter(|a| **a > 0).sum::<i64>() < quantity {
        return None;
    }
    let mut order: Vec<u32> = (0..available.len() as u32).collect();
    order.sort_by_key(|&k| (std::cmp::Reverse(available[k as usize]), k));
    let mut left = quantity;
    let mut taken = Vec::new();
    for k in order {
        let q = available[k as usize].min(left);
        if q > 0 {
            taken.push((k, q));
            left -= q;
        }
        if left == 0 {
            break;
        }
    }
    Some(taken)
}

/// Takes `quantity` units back out of an item's holds on shards (`held`: shard -> units), from the
/// largest first: what is left on each shard.
pub fn unplace(held: &BTreeMap<u32, i64>, mut quantity: i64) -> BTreeMap<u32, i64> {
    let mut left = held.clone();
    let mut order: Vec<(u32, i64)> = held.iter().map(|(k, q)| (*k, *q)).collect();
    order.sort_by_key(|&(k, q)| (std::cmp::Reverse(q), k));
    for (k, q) in order {
        let back = q.min(quantity);
        *left.entry(k).or_default() -= back;
        quantity -= back;
    }
    left.retain(|_, q| *q > 0);
    left
}

/// onHand per shard for a count of `on_hand`, given each existing shard's reserved units
/// (`reserved[k]`, as many as there are shard items) and the shards that take holds (`active`):
/// every shard keeps its reserved units and the available ones are spread evenly over the active
/// shards (the first ones get the remainder); shards beyond `active` keep nothing available.
/// The result has `max(active, reserved.len())` entries.
pub fn balance(on_hand: i64, reserved: &[i64], active: u32) -> Result<Vec<i64>> {
    let total_reserved: i64 = reserved.iter().sum();
    let spare = on_hand - total_reserved;
    if spare < 0 {
        return Err(Error::StockBelowReserved { on_hand, reserved: total_reserved });
    }
    let active = active.max(1) as i64;
    let len = (active as usize).max(reserved.len());
    Ok((0..len)
        .map(|k| {
            let held = reserved.get(k).copied().unwrap_or(0);
            let k = k as i64;
            let share = if k < active { spare / active + i64::from(k < spare % active) } else { 0 };
            held + share
        })
        .collect())
}

/// The item as the API shows it, from its shard items (shard 0 first, which carries the
/// settings): counts summed; `version` the sum of the shards' versions (it goes up with every
/// write to any shard); `updatedAt` the latest.
pub fn combine(shards: &[StockItem]) -> Option<StockItem> {
    let (first, rest) = shards.split_first()?;
    let mut item = first.clone();
    for s in rest {
        item.on_hand += s.on_hand;
        item.reserved += s.reserved;
        item.available += s.available;
        item.version += s.version;
        item.updated_at = item.updated_at.max(s.updated_at);
    }
    Some(item)
}

/// The item as a channel keeping `safety` units at each location can sell from it: its shards
/// summed ([`combine`]), `available` what the writes' conditions let it take, each shard less the
/// safety stock (`Σ max(0, available_k - safety)`; for an unsharded item `max(0, available -
/// safety)`).
pub fn sellable(shards: &[StockItem], safety: i64) -> Option<StockItem> {
    let mut item = combine(shards)?;
    item.available = shards.iter().map(|s| (s.available - safety).max(0)).sum();
    Some(item)
}

/// `shards` of a PUT: 1..=MAX_SHARDS.
pub fn validate_shards(shards: i64) -> Result<u32> {
    if (1..=i64::from(MAX_SHARDS)).contains(&shards) {
        Ok(shards as u32)
    } else {
        Err(Error::invalid_field("shards", format!("shards must be 1-{MAX_SHARDS}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: i64) -> Line {
        Line::new(sku.into(), "w".into(), quantity)
    }

    #[test]
    fn a_line_is_placed_on_one_shard_that_covers_it_else_split_over_the_fewest() {
        for _ in 0..50 {
            let placed = place(2, &[1, 3, 0, 2]).unwrap();
            assert_eq!(placed.len(), 1);
            assert!(matches!(placed[0], (1, 2) | (3, 2)), "{placed:?}");
        }
        assert_eq!(place(5, &[1, 3, 0, 2]).unwrap(), vec![(1, 3), (3, 2)]);
        assert_eq!(place(6, &[1, 3, 0, 2]).unwrap(), vec![(1, 3), (3, 2), (0, 1)]);
        assert_eq!(place(7, &[1, 3, 0, 2]), None);
        assert_eq!(place(1, &[0, 0]), None);
        // Random among the covering shards: over many draws, each is picked.
        let picked: std::collections::BTreeSet<u32> =
            (0..200).map(|_| place(1, &[1; 16]).unwrap()[0].0).collect();
        assert_eq!(picked.len(), 16);
    }

    #[test]
    fn units_go_back_from_the_largest_holds() {
        let held = BTreeMap::from([(0, 1), (3, 4), (5, 2)]);
        assert_eq!(unplace(&held, 3), BTreeMap::from([(0, 1), (3, 1), (5, 2)]));
        assert_eq!(unplace(&held, 6), BTreeMap::from([(0, 1)]));
        assert_eq!(unplace(&held, 7), BTreeMap::new());
    }

    #[test]
    fn a_count_is_spread_evenly_and_every_shard_keeps_its_reserved_units() {
        assert_eq!(balance(10, &[0], 4).unwrap(), vec![3, 3, 2, 2]);
        assert_eq!(balance(10, &[2, 0, 3, 0], 4).unwrap(), vec![4, 1, 4, 1]);
        // Fewer shards: the ones beyond keep their reserved units, nothing available.
        assert_eq!(balance(10, &[2, 0, 3, 1], 2).unwrap(), vec![4, 2, 3, 1]);
        assert_eq!(
            balance(5, &[2, 0, 3, 1], 2).unwrap_err(),
            Error::StockBelowReserved { on_hand: 5, reserved: 6 }
        );
        let spread = balance(1000, &[7, 1], 16).unwrap();
        assert_eq!(spread.iter().sum::<i64>(), 1000);
    }

    #[test]
    fn a_reservation_records_only_the_items_not_all_on_shard_0() {
        let lines = [line("A", 3), line("B", 2)];
        let units = Units::from([
            (("A".into(), "w".into(), 0), 3),
            (("B".into(), "w".into(), 4), 1),
            (("B".into(), "w".into(), 7), 1),
        ]);
        let holds = shard_holds_of(&units);
        assert_eq!(holds.len(), 2);
        assert!(holds.iter().all(|h| h.sku == "B"));
        assert_eq!(units_of(&lines, &holds), units);
        assert_eq!(units_of(&lines, &[]).len(), 2);
    }

    #[test]
    fn the_item_is_the_sum_of_its_shards() {
        let shard = |on_hand: i64, reserved: i64, version: u64| StockItem {
            sku: "A".into(),
            location_id: "w".into(),
            on_hand,
            reserved,
            available: on_hand - reserved,
            version,
            updated_at: chrono::Utc::now(),
            low_stock_threshold: Some(2),
            shards: 2,
        };
        let item = combine(&[shard(5, 1, 3), shard(4, 4, 2)]).unwrap();
        assert_eq!((item.on_hand, item.reserved, item.available, item.version), (9, 5, 4, 5));
        assert_eq!((item.shards, item.low_stock_threshold), (2, Some(2)));
        assert_eq!(validate_shards(0).unwrap_err().code(), "VALIDATION_ERROR");
        assert_eq!(validate_shards(16).unwrap(), 16);
    }
}
