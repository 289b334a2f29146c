//! The audit's rules, pure: which stock items drift (their bounds, `available`, `reserved`
//! against the PENDING reservations' lines and the hold items, per shard too), which reservations
//! and order keys disagree, and which holds or lines name no stock item.

use std::collections::{BTreeMap, BTreeSet};

use super::{Drift, ItemKey, Problem, View};
use crate::domain::{Reservation, Status};

impl View {
    /// The stock items whose numbers disagree, each with what is wrong.
    pub fn drifting_items(&self) -> Vec<Drift> {
        let pending = self.pending_lines();
        let pending_units = self.pending_units();
        // A reservation's hold items on an item (one per shard it holds units on), summed.
        let mut summed: BTreeMap<&ItemKey, BTreeMap<&str, i64>> = BTreeMap::new();
        let mut per_shard: BTreeMap<(&ItemKey, u32), i64> = BTreeMap::new();
        for (key, shard, reservation_id, quantity) in &self.holds {
            *summed.entry(key).or_default().entry(reservation_id).or_default() += *quantity;
            *per_shard.entry((key, *shard)).or_default() += *quantity;
        }
        let holds: BTreeMap<&ItemKey, Vec<(&str, i64)>> =
            summed.into_iter().map(|(key, by_id)| (key, by_id.into_iter().collect())).collect();
        let mut drift = Vec::new();
        for (key, stock) in &self.stock {
            let by_reservations = pending.get(key).map_or(&[][..], Vec::as_slice);
            let item_holds = holds.get(key).map_or(&[][..], Vec::as_slice);
            let held_by_reservations: i64 = by_reservations.iter().map(|(_, q)| q).sum();
            let hold_items: i64 = item_holds.iter().map(|(_, q)| q).sum();
            let mut problems = Vec::new();
            if stock.on_hand < 0 {
                problems.push(Problem::NegativeOnHand);
            }
            if stock.reserved < 0 {
                problems.push(Problem::NegativeReserved);
            }
            if stock.reserved > stock.on_hand {
                problems.push(Problem::ReservedExceedsOnHand);
            }
            if stock.available != stock.on_hand - stock.reserved {
                problems.push(Problem::AvailableNotOnHandMinusReserved {
                    expected: stock.on_hand - stock.reserved,
                });
            }
            if stock.reserved != held_by_reservations {
                problems.push(Problem::ReservedNotPendingLines { held_by_reservations });
            }
            if stock.reserved != hold_items {
                problems.push(Problem::ReservedNotHoldItems { hold_items });
            }
            for (reservation_id, quantity) in item_holds {
                if !by_reservations.iter().any(|(id, q)| id == reservation_id && q == quantity) {
                    problems.push(Problem::HoldWithoutLine {
                        reservation_id: (*reservation_id).to_owned(),
                        quantity: *quantity,
                    });
                }
            }
            for (reservation_id, quantity) in by_reservations {
                if !item_holds.iter().any(|(id, q)| id == reservation_id && q == quantity) {
                    problems.push(Problem::LineWithoutHold {
                        reservation_id: reservation_id.clone(),
                        quantity: *quantity,
                    });
                }
            }
            // A sharded item: each shard on its own, against the units held on it.
            let shards = self.shards.get(key).filter(|s| s.len() > 1 || stock.shards > 1);
            for (k, shard) in shards.into_iter().flatten() {
                let held = pending_units.get(&(key.clone(), *k)).copied().unwrap_or(0);
                if shard.reserved < 0 || shard.reserved > shard.on_hand {
                    problems.push(Problem::ShardOutOfBounds {
                        shard: *k,
                        reserved: shard.reserved,
                        on_hand: shard.on_hand,
                    });
                }
                if shard.available != shard.on_hand - shard.reserved {
                    problems.push(Problem::ShardAvailableWrong { shard: *k });
                }
                if shard.reserved != held {
                    problems.push(Problem::ShardNotPendingUnits {
                        shard: *k,
                        reserved: shard.reserved,
                        held,
                    });
                }
                let hold_items = per_shard.get(&(key, *k)).copied().unwrap_or(0);
                if shard.reserved != hold_items {
                    problems.push(Problem::ShardNotHoldItems {
                        shard: *k,
                        reserved: shard.reserved,
                        hold_items,
                    });
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
    pub fn other_problems(&self) -> Vec<Problem> {
        let mut problems = self.order_problems();
        problems.extend(self.orphans().into_iter().map(|(_, problem)| problem));
        problems
    }

    /// PENDING reservations and order keys that disagree.
    pub(super) fn order_problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut pending: Vec<&Reservation> =
            self.reservations.values().filter(|r| r.status == Status::Pending).collect();
        pending.sort_by(|a, b| a.reservation_id.cmp(&b.reservation_id));
        for r in pending {
            match self.orders.get(&r.order_id) {
                Some(id) if *id == r.reservation_id => {}
                Some(id) => problems.push(Problem::OrderKeyNamesAnother {
                    reservation_id: r.reservation_id.clone(),
                    order_id: r.order_id.clone(),
                    named: id.clone(),
                }),
                None => problems.push(Problem::NoOrderKey {
                    reservation_id: r.reservation_id.clone(),
                    order_id: r.order_id.clone(),
                }),
            }
        }
        let orders: BTreeMap<_, _> = self.orders.iter().collect();
        for (order_id, reservation_id) in orders {
            if !self.reservations.contains_key(reservation_id) {
                problems.push(Problem::OrderReservationMissing {
                    order_id: order_id.clone(),
                    reservation_id: reservation_id.clone(),
                });
            }
        }
        problems
    }

    /// Holds and PENDING lines on items that have no stock item (stock items are never deleted),
    /// each with the item it names.
    pub(super) fn orphans(&self) -> Vec<(ItemKey, Problem)> {
        let mut problems = Vec::new();
        let mut pending: Vec<&Reservation> =
            self.reservations.values().filter(|r| r.status == Status::Pending).collect();
        pending.sort_by(|a, b| a.reservation_id.cmp(&b.reservation_id));
        for r in pending {
            for line in r.stock_lines() {
                let key = (line.sku.clone(), line.location_id.clone());
                if !self.stock.contains_key(&key) {
                    let problem = Problem::LineOfNoItem {
                        reservation_id: r.reservation_id.clone(),
                        sku: line.sku.clone(),
                        location_id: line.location_id.clone(),
                    };
                    problems.push((key, problem));
                }
            }
        }
        let unknown: BTreeSet<_> =
            self.holds.iter().filter(|(k, _, _, _)| !self.stock.contains_key(k)).collect();
        for ((sku, location), _, reservation_id, quantity) in unknown {
            let problem = Problem::HoldOfNoItem {
                quantity: *quantity,
                reservation_id: reservation_id.clone(),
                sku: sku.clone(),
                location_id: location.clone(),
            };
            problems.push(((sku.clone(), location.clone()), problem));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::View;
    use crate::domain::{Line, Reservation, StockItem};

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
        let r =
            Reservation::new("o1".into(), vec![Line::new("A".into(), "w".into(), 2)], 60, chrono::Utc::now());
        v.holds.push((("A".into(), "w".into()), 0, r.reservation_id.clone(), 2));
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
        assert_eq!(v.other_problems(), Vec::<Problem>::new());
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
        assert!(
            drift[0].problems.iter().any(|p| matches!(p, Problem::LineWithoutHold { .. })),
            "{:?}",
            drift[0].problems
        );
        assert_eq!(v.other_problems().len(), 1);
    }

    fn only_pending(v: &View) -> Reservation {
        v.reservations.values().next().unwrap().clone()
    }

    #[test]
    fn order_keys_that_disagree_with_reservations_are_named() {
        let mut v = view();
        let r = only_pending(&v);
        v.orders.insert("o1".into(), "r-other".into());
        assert_eq!(
            v.other_problems(),
            vec![
                Problem::OrderKeyNamesAnother {
                    reservation_id: r.reservation_id.clone(),
                    order_id: "o1".into(),
                    named: "r-other".into(),
                },
                Problem::OrderReservationMissing { order_id: "o1".into(), reservation_id: "r-other".into() },
            ]
        );
        v.orders.clear();
        assert_eq!(
            v.order_problems(),
            vec![Problem::NoOrderKey { reservation_id: r.reservation_id.clone(), order_id: "o1".into() }]
        );
        // A reservation no longer PENDING needs no order key naming it.
        v.reservations.get_mut(&r.reservation_id).unwrap().status = Status::Confirmed;
        assert_eq!(v.order_problems(), vec![]);
    }

    #[test]
    fn holds_and_lines_of_no_stock_item_are_orphans() {
        let mut v = view();
        let r = only_pending(&v);
        v.stock.remove(&("A".into(), "w".into()));
        assert_eq!(
            v.orphans(),
            vec![
                (
                    ("A".into(), "w".into()),
                    Problem::LineOfNoItem {
                        reservation_id: r.reservation_id.clone(),
                        sku: "A".into(),
                        location_id: "w".into(),
                    }
                ),
                (
                    ("A".into(), "w".into()),
                    Problem::HoldOfNoItem {
                        quantity: 2,
                        reservation_id: r.reservation_id.clone(),
                        sku: "A".into(),
                        location_id: "w".into(),
                    }
                ),
            ]
        );
        assert!(v.drifting_items().is_empty(), "no item, nothing of it drifts");
    }

    #[test]
    fn a_hold_of_another_quantity_is_no_line_and_the_line_has_no_hold() {
        let mut v = view();
        let r = only_pending(&v);
        v.holds[0].3 = 3;
        let drift = v.drifting_items();
        assert_eq!(drift.len(), 1);
        let id = r.reservation_id.clone();
        assert_eq!(
            drift[0].problems,
            vec![
                Problem::ReservedNotHoldItems { hold_items: 3 },
                Problem::HoldWithoutLine { reservation_id: id.clone(), quantity: 3 },
                Problem::LineWithoutHold { reservation_id: id, quantity: 2 },
            ]
        );
        assert_eq!((drift[0].held_by_reservations, drift[0].hold_items), (2, 3));
    }

    #[test]
    fn the_item_bounds_and_available_are_checked() {
        let mut v = view();
        let b = v.stock.get_mut(&("B".into(), "w".into())).unwrap();
        b.on_hand = -1;
        b.available = 4;
        let drift = v.drifting_items();
        assert_eq!(
            drift[0].problems,
            vec![
                Problem::NegativeOnHand,
                Problem::ReservedExceedsOnHand,
                Problem::AvailableNotOnHandMinusReserved { expected: -1 },
            ]
        );
    }

    #[test]
    fn each_shard_is_checked_against_the_units_placed_on_it() {
        let mut v = View::default();
        let r =
            Reservation::new("o1".into(), vec![Line::new("S".into(), "w".into(), 2)], 60, chrono::Utc::now());
        v.holds.push((("S".into(), "w".into()), 0, r.reservation_id.clone(), 2));
        v.orders.insert("o1".into(), r.reservation_id.clone());
        v.reservations.insert(r.reservation_id.clone(), r);
        // Two shards of 5 each, 1 reserved on each: the item's sums agree (2 reserved, 2 held),
        // but the reservation's units are all on shard 0.
        for k in 0..2 {
            let mut shard = stock("S", 5, 1);
            shard.shards = 2;
            v.add_shard(k, shard);
        }
        assert_eq!(v.stock[&("S".to_owned(), "w".to_owned())].reserved, 2);
        let drift = v.drifting_items();
        assert_eq!(drift.len(), 1);
        assert_eq!(
            drift[0].problems,
            vec![
                Problem::ShardNotPendingUnits { shard: 0, reserved: 1, held: 2 },
                Problem::ShardNotHoldItems { shard: 0, reserved: 1, hold_items: 2 },
                Problem::ShardNotPendingUnits { shard: 1, reserved: 1, held: 0 },
                Problem::ShardNotHoldItems { shard: 1, reserved: 1, hold_items: 0 },
            ]
        );
        // Both on shard 0, as placed: no drift.
        let mut v2 = View { holds: v.holds.clone(), reservations: v.reservations.clone(), ..View::default() };
        v2.orders = v.orders.clone();
        for (k, reserved) in [(0, 2), (1, 0)] {
            let mut shard = stock("S", 5, reserved);
            shard.shards = 2;
            v2.add_shard(k, shard);
        }
        assert_eq!(v2.drifting_items(), vec![]);
    }
}
