//! DynamoDB's limit of [`MAX_ACTIONS`] actions per transaction, and what each write of the
//! service costs in actions. [`Write::actions`] is the one count: the store's transaction builder
//! checks what it built against it, and a reservation is refused when it is made or changed if
//! one of the transactions that finish it (confirm, release, expiry) could not be written
//! ([`check_reservation`]): no hold is accepted that cannot be let go of.

use super::reservation::Reservation;
use crate::error::Error;

/// The most actions one `TransactWriteItems` may carry.
pub const MAX_ACTIONS: usize = 100;

/// A transaction the service writes, by what its actions are. `shard_items` counts the stock
/// items (or shard items of sharded stock) whose units it moves, `holds` the hold items it puts
/// or deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// A new reservation: the order key, a take per shard item, the reservation, the order's
    /// reservation item, the outbox record and a hold item per line.
    Reserve { shard_items: usize, holds: usize },
    /// A PENDING hold's lines replaced: the reservation, an update per shard item whose units
    /// change, the order key, the outbox record and each hold item that changes.
    Modify { shard_items: usize, holds: usize },
    /// Confirm: the reservation, per shard item its update and a SOLD movement, the outbox
    /// record and the deletes of the hold items.
    Confirm { shard_items: usize, holds: usize },
    /// Release, or expiry of one hold: the reservation, an update per shard item, the outbox
    /// record and the deletes of the hold items.
    Release { shard_items: usize, holds: usize },
    /// Extend: the reservation and the outbox record.
    Extend,
    /// Expiry of several holds at once: per hold its reservation and outbox record, the deletes
    /// of their hold items, and each shard item once.
    ExpireBatch { reservations: usize, shard_items: usize, holds: usize },
    /// A stock write: a put per shard item, the ledger items of the shards whose onHand changes
    /// (on a sharded item, one for all of them), and the outbox record; the item's creation also marks its sku as stocked; the
    /// write that makes it sharded also puts its level item and the stock events it crosses
    /// (`level`: those actions).
    Stock { shard_items: usize, movements: usize, created: bool, level: usize },
    /// A channel's put: the channel and the outbox record.
    Channel,
    /// A kit's put: the kit, each component marked as stocked, and the outbox record.
    Kit { components: usize },
    /// A sharded item's total seen by the publisher: its level item and the outbox record of
    /// each stock event the change of total crosses.
    Level { events: usize },
}

/// Whether the transaction also carries the record of an `Idempotency-Key` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyed {
    Yes,
    No,
}

impl Write {
    /// How many actions the transaction carries.
    pub fn actions(self, keyed: Keyed) -> usize {
        let own = match self {
            Write::Reserve { shard_items, holds } => 4 + shard_items + holds,
            Write::Modify { shard_items, holds } => 3 + shard_items + holds,
            Write::Confirm { shard_items, holds } => 2 + 2 * shard_items + holds,
            Write::Release { shard_items, holds } => 2 + shard_items + holds,
            Write::Extend => 2,
            Write::ExpireBatch { reservations, shard_items, holds } => 2 * reservations + shard_items + holds,
            Write::Stock { shard_items, movements, created, level } => {
                1 + shard_items + movements + usize::from(created) + level
            }
            Write::Channel => 2,
            Write::Kit { components } => 2 + components,
            Write::Level { events } => 1 + events,
        };
        own + usize::from(keyed == Keyed::Yes)
    }

    /// Whether it fits one transaction.
    pub fn fits(self, keyed: Keyed) -> bool {
        self.actions(keyed) <= MAX_ACTIONS
    }

    /// The writes that make `reservation` and finish it: its reserve, confirm and release (an
    /// expiry is a release without an idempotency record).
    pub fn of_reservation(reservation: &Reservation) -> [Write; 3] {
        // A hold item per shard item holding units.
        let (shard_items, holds) = (reservation.units().len(), reservation.units().len());
        [
            Write::Reserve { shard_items, holds },
            Write::Confirm { shard_items, holds },
            Write::Release { shard_items, holds },
        ]
    }
}

/// `Ok` when `reservation` can be made, confirmed, released and expired, each in one
/// transaction with an idempotency record; else the 400 that refuses the lines.
pub fn check_reservation(reservation: &Reservation) -> Result<(), Error> {
    if Write::of_reservation(reservation).iter().all(|w| w.fits(Keyed::Yes)) {
        return Ok(());
    }
    Err(Error::invalid_field(
        "lines",
        format!(
            "these lines would hold units on {} stock and shard items: too many for one transaction",
            reservation.units().len()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Line, ShardHold};
    use chrono::Utc;

    fn reservation(lines: usize, shards_per_line: u32) -> Reservation {
        let lines: Vec<Line> =
            (0..lines).map(|i| Line::new(format!("S{i}"), "w1".into(), shards_per_line as i64)).collect();
        let mut r = Reservation::new("o".into(), lines.clone(), 900, Utc::now());
        if shards_per_line > 1 {
            r.shard_holds = lines
                .iter()
                .flat_map(|l| {
                    (0..shards_per_line).map(|k| ShardHold {
                        sku: l.sku.clone(),
                        location_id: l.location_id.clone(),
                        shard: k,
                        quantity: 1,
                    })
                })
                .collect();
        }
        r
    }

    #[test]
    fn a_confirm_writes_two_actions_per_shard_item() {
        let confirm = Write::Confirm { shard_items: 3, holds: 2 };
        assert_eq!(confirm.actions(Keyed::No), 1 + 2 * 3 + 1 + 2);
        assert_eq!(confirm.actions(Keyed::Yes), 11);
        assert_eq!(Write::Reserve { shard_items: 3, holds: 2 }.actions(Keyed::Yes), 1 + 3 + 3 + 2 + 1);
        assert_eq!(Write::ExpireBatch { reservations: 2, shard_items: 3, holds: 4 }.actions(Keyed::No), 11);
    }

    #[test]
    fn a_reservation_is_refused_when_its_confirm_would_not_fit() {
        // 32 unsharded lines: a confirm of 3 * 32 + 3 = 99 actions.
        assert!(check_reservation(&reservation(32, 1)).is_ok());
        // 33 lines: 102.
        assert_eq!(check_reservation(&reservation(33, 1)).unwrap_err().code(), "VALIDATION_ERROR");
        // Two lines over 32 shards each: 64 shard items, a confirm of 133 actions.
        assert!(check_reservation(&reservation(2, 32)).is_err());
        // One such line: 2 + 2 x 32 + 32 + 1 = 99. (On 64 shards, a line placed over more
        // than 32 of them is refused so: near a sale's end, with a few units on each shard.)
        assert!(check_reservation(&reservation(1, 32)).is_ok());
    }

    #[test]
    fn a_stock_write_of_the_most_shards_fits_one_transaction() {
        use crate::domain::MAX_SHARDS;
        // Creating it sharded, with its level item and two events crossed, under a key: its
        // movements in one ledger item.
        let most = Write::Stock { shard_items: MAX_SHARDS as usize, movements: 1, created: true, level: 3 };
        assert_eq!(most.actions(Keyed::Yes), 1 + 64 + 1 + 1 + 3 + 1);
        assert!(most.fits(Keyed::Yes));
        // A movement item per shard would not.
        let per_shard = Write::Stock { shard_items: 64, movements: 64, created: false, level: 0 };
        assert!(!per_shard.fits(Keyed::No));
    }
}
