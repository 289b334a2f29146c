//! The domain: stock items, reservations, the state machine, the decisions every write makes and
//! the validation rules of docs/api.md. What is where:
//!
//! - `validate`: the limits and validation rules of request fields, and merged lines;
//! - `allocation`: carts, and lines without a location resolved over the stock read;
//! - `reservation`: the reservation, its state machine (`decide`) and what a transition does to
//!   stock;
//! - `orders`: what an order holds (the decisions of reserve and of a PUT of the cart);
//! - `actions`: what each write costs in DynamoDB actions, against the limit of one transaction;
//! - `kits`: kits (bundles), their validation, and the stock a kit line holds;
//! - `shards`: sharded stock (where units are placed and given back, PUTs spreading them);
//! - `stock`: stock items and the decision of a stock write;
//! - `stock_events`: which of StockDepleted, StockLow and StockReplenished a change crosses into;
//! - `ledger`: movements and the replay of a chain.
//!
//! Pure code: no AWS types, no I/O, and nothing of this crate but
//! the leaf modules `error`, `status`, `timestamp` and `events` (the event types a decision names).

mod actions;
mod allocation;
mod availability;
mod channels;
mod kits;
mod ledger;
mod orders;
mod reservation;
mod retention;
mod shards;
mod stock;
mod stock_events;
mod validate;

pub use crate::status::Status;
pub use crate::timestamp;
pub use crate::timestamp::truncate_to_millis;
pub use actions::{check_reservation, Keyed, Write, MAX_ACTIONS};
pub use allocation::{
    allocate, check_resolved, Cart, CartLine, Chosen, FlexibleLine, Placement, MAX_LOCATIONS,
    MAX_RESOLVED_LINES,
};
pub use availability::{
    availability_of, kit_availability_of, validate_availability_skus, LocationAvailability, SkuAvailability,
    MAX_AVAILABILITY_SKUS,
};
pub use channels::{
    decide_channel_write, validate_channel, validate_channel_id, Channel, ChannelWrite,
    MAX_CHANNEL_LOCATIONS, MAX_SAFETY_STOCK,
};
pub use kits::{
    decide_kit_write, stock_lines, validate_kit, whole_kits, Component, Kit, KitWrite, MAX_COMPONENTS,
    MAX_COMPONENT_QUANTITY,
};
pub use ledger::{replay_break, Movement, MovementKind, Provenance};
pub use orders::{
    answer_to_taken_order, decide_put, hold_change, may_be_a_retry, HoldChange, LinesFrom, OrderSlot,
    PutDecision,
};
pub use reservation::{
    check_hold_lifetime, decide, line_changes, stock_deltas, stock_effect, Action, Decision, Reservation,
    StockDeltas, Transition, DEFAULT_MAX_HOLD_SECONDS,
};
pub use retention::{is_past_ttl, retained_until, DEFAULT_RETENTION_DAYS, MAX_HOLD_CEILING_SECONDS};
pub use shards::{
    balance, combine, place, sellable, shard_holds_of, units_of, unplace, validate_shards, ShardHold,
    ShardKey, Units, MAX_SHARDS,
};
pub use stock::{decide_stock_write, SkuStock, StockChange, StockItem, StockUpdate};
pub use stock_events::{stock_crossings, StockLevel};
pub use validate::*;
