//! The stock-reservation service's library: the domain model, the DynamoDB store, the event
//! envelope, configuration and the HTTP edge. Every Lambda, the local server and the tests call
//! the same code.
//!
//! Dependencies point one way: the leaf modules (`status`, `timestamp`, `error`, `events`, `sqs`)
//! name nothing of the crate but each other; `domain` names only them; the adapters (`store`,
//! `bus`, `publish`, `order_events`, `expiry`, `redrive`, `audit`) use the domain; `http` is the edge, used only
//! by the functions and the local server.

pub mod audit;
pub mod bus;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod expiry;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod order_events;
pub mod publish;
pub mod redrive;
pub mod sqs;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod timestamp;
pub mod xray;

pub use error::{Error, Result};
pub use store::Store;
