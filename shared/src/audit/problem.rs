//! What the audit can find wrong, one variant per kind, each with what it names. Reports, logs
//! and `InventoryDriftDetected` events carry the text (`Display`); the audit's own decisions
//! (which problems need the item's holds, which name a reservation) look at the variants.

use std::fmt;

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    // ---- one stock item's numbers
    NegativeOnHand,
    NegativeReserved,
    ReservedExceedsOnHand,
    /// `available` is not `onHand - reserved` (the expected value).
    AvailableNotOnHandMinusReserved {
        expected: i64,
    },
    /// `reserved` is not the sum of the PENDING reservations' lines on the item.
    ReservedNotPendingLines {
        held_by_reservations: i64,
    },
    /// `reserved` is not the sum of the item's hold items.
    ReservedNotHoldItems {
        hold_items: i64,
    },
    /// A hold item with no PENDING reservation line of its quantity.
    HoldWithoutLine {
        reservation_id: String,
        quantity: i64,
    },
    /// A PENDING reservation line with no hold item of its quantity.
    LineWithoutHold {
        reservation_id: String,
        quantity: i64,
    },
    ShardOutOfBounds {
        shard: u32,
        reserved: i64,
        on_hand: i64,
    },
    ShardAvailableWrong {
        shard: u32,
    },
    /// A shard's `reserved` is not the PENDING units placed on it.
    ShardNotPendingUnits {
        shard: u32,
        reserved: i64,
        held: i64,
    },
    /// A shard's `reserved` is not the sum of the hold items in its partition.
    ShardNotHoldItems {
        shard: u32,
        reserved: i64,
        hold_items: i64,
    },
    /// The item kept changing while re-read: only what one read of it shows was judged.
    HoldsNotCompared,

    // ---- reservations, order keys and items of no stock item
    OrderKeyNamesAnother {
        reservation_id: String,
        order_id: String,
        named: String,
    },
    NoOrderKey {
        reservation_id: String,
        order_id: String,
    },
    OrderReservationMissing {
        order_id: String,
        reservation_id: String,
    },
    LineOfNoItem {
        reservation_id: String,
        sku: String,
        location_id: String,
    },
    HoldOfNoItem {
        quantity: i64,
        reservation_id: String,
        sku: String,
        location_id: String,
    },
    /// An item of the table that does not read as what its `entity` says.
    Unreadable {
        item: String,
        why: String,
    },
}

impl Problem {
    /// Whether judging it needs the item's holds and the reservations' lines (which a busy item's
    /// single read does not have).
    pub fn needs_holds(&self) -> bool {
        matches!(
            self,
            Problem::ReservedNotPendingLines { .. }
                | Problem::ReservedNotHoldItems { .. }
                | Problem::LineWithoutHold { .. }
                | Problem::ShardNotPendingUnits { .. }
                | Problem::ShardNotHoldItems { .. }
        )
    }

    /// Whether it is a reservation / order key disagreement about `reservation_id`.
    pub fn names_order_reservation(&self, id: &str) -> bool {
        match self {
            Problem::OrderKeyNamesAnother { reservation_id, named, .. } => {
                reservation_id == id || named == id
            }
            Problem::NoOrderKey { reservation_id, .. }
            | Problem::OrderReservationMissing { reservation_id, .. } => reservation_id == id,
            _ => false,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            NegativeOnHand => write!(f, "onHand is negative"),
            NegativeReserved => write!(f, "reserved is negative"),
            ReservedExceedsOnHand => write!(f, "reserved exceeds onHand"),
            AvailableNotOnHandMinusReserved { expected } => {
                write!(f, "available is not onHand - reserved ({expected})")
            }
            ReservedNotPendingLines { held_by_reservations } => {
                write!(f, "reserved is not the PENDING reservations' {held_by_reservations}")
            }
            ReservedNotHoldItems { hold_items } => write!(f, "reserved is not the hold items' {hold_items}"),
            HoldWithoutLine { reservation_id, quantity } => {
                write!(f, "hold of {quantity} for {reservation_id} is no PENDING line")
            }
            LineWithoutHold { reservation_id, quantity } => {
                write!(f, "PENDING line of {quantity} for {reservation_id} has no hold")
            }
            ShardOutOfBounds { shard, reserved, on_hand } => {
                write!(f, "shard {shard}: reserved {reserved} is not within 0..=onHand {on_hand}")
            }
            ShardAvailableWrong { shard } => write!(f, "shard {shard}: available is not onHand - reserved"),
            ShardNotPendingUnits { shard, reserved, held } => {
                write!(f, "shard {shard}: reserved {reserved} is not the PENDING units on it {held}")
            }
            ShardNotHoldItems { shard, reserved, hold_items } => {
                write!(f, "shard {shard}: reserved {reserved} is not its hold items' {hold_items}")
            }
            HoldsNotCompared => write!(f, "its holds were not compared: the item kept changing"),
            OrderKeyNamesAnother { reservation_id, order_id, named } => {
                write!(
                    f,
                    "PENDING reservation {reservation_id} of order {order_id}: the order key names {named}"
                )
            }
            NoOrderKey { reservation_id, order_id } => {
                write!(f, "PENDING reservation {reservation_id} of order {order_id}: no order key")
            }
            OrderReservationMissing { order_id, reservation_id } => {
                write!(f, "order {order_id}: its reservation {reservation_id} does not exist")
            }
            LineOfNoItem { reservation_id, sku, location_id } => write!(
                f,
                "PENDING reservation {reservation_id} holds {sku}/{location_id}, which has no stock item"
            ),
            HoldOfNoItem { quantity, reservation_id, sku, location_id } => write!(
                f,
                "hold of {quantity} for {reservation_id} on {sku}/{location_id}, which has no stock item"
            ),
            Unreadable { item, why } => write!(f, "{item} {why}"),
        }
    }
}

/// As its text, in reports and events.
impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_as_before_and_say_what_they_concern() {
        let line = Problem::LineWithoutHold { reservation_id: "r1".into(), quantity: 2 };
        assert_eq!(line.to_string(), "PENDING line of 2 for r1 has no hold");
        assert_eq!(serde_json::to_value(&line).unwrap(), "PENDING line of 2 for r1 has no hold");
        assert!(line.needs_holds());
        assert!(!Problem::HoldWithoutLine { reservation_id: "r1".into(), quantity: 2 }.needs_holds());
        assert!(!Problem::ReservedExceedsOnHand.needs_holds());
        let other = Problem::OrderKeyNamesAnother {
            reservation_id: "r1".into(),
            order_id: "o".into(),
            named: "r2".into(),
        };
        assert!(other.names_order_reservation("r1") && other.names_order_reservation("r2"));
        assert!(!other.names_order_reservation("r3") && !line.names_order_reservation("r1"));
    }
}
