//! The domain: stock items, reservations, the state machine, the decisions every write makes and
//! the validation rules of API.md. Pure code: no AWS types, no I/O, and nothing of this crate but
//! the leaf modules `error`, `status`, `timestamp` and `events` (the event types a decision names).

mod allocation;
mod ledger;
mod reservation;
mod shards;
mod stock;
mod validate;

pub use crate::status::Status;
pub use crate::timestamp;
pub use crate::timestamp::truncate_to_millis;
pub use allocation::{
    plan_allocation, Cart, CartLine, FlexibleLine, Placement, MAX_LOCATIONS, MAX_RESOLVED_LINES,
};
pub use ledger::{replay_break, Movement, MovementKind, Provenance};
pub use reservation::{
    decide, line_changes, stock_deltas, stock_effect, Action, Decision, Reservation, StockDeltas, Transition,
};
pub use shards::{
    balance, combine, place, shard_holds_of, units_of, unplace, validate_shards, ShardHold, Units, MAX_SHARDS,
};
pub use stock::{plan_stock_write, SkuStock, StockChange, StockItem, StockUpdate};
pub use validate::*;
