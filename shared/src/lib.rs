//! The stock-reservation service's library: the domain model, the DynamoDB store, the event
//! envelope, configuration and the HTTP handlers. Every Lambda, the local server and the tests
//! call the same code.

pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod expiry;
pub mod http;
pub mod lambda;
pub mod order_events;
pub mod publish;
pub mod redrive;
pub mod store;
pub mod telemetry;

pub use error::{Error, Result};
pub use store::Store;
