//! The service's typed errors. Every variant maps to exactly one API.md error code and HTTP
//! status; the mapping to the wire body happens only at the HTTP edge (`crate::http`).

use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::Status;

/// One reservation line that could not be met, reported in `details.lines[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shortfall {
    pub sku: String,
    pub location_id: String,
    pub requested: i64,
    pub available: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Malformed input: bad JSON, wrong types, out-of-range values, bad identifiers.
    #[error("{message}")]
    Validation { message: String, field: Option<String> },

    #[error("{what} not found")]
    NotFound { what: &'static str, id: String },

    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge { limit: usize },

    #[error("insufficient stock")]
    InsufficientStock { lines: Vec<Shortfall> },

    #[error("expectedVersion does not match the current version")]
    VersionConflict { current_version: u64 },

    #[error("onHand would drop below the reserved count")]
    StockBelowReserved { on_hand: i64, reserved: i64 },

    #[error("order already has a reservation with different lines")]
    OrderAlreadyReserved { reservation_id: String },

    #[error("transition not allowed from status {status}")]
    InvalidState { status: Status },

    #[error("reservation has expired")]
    ReservationExpired { reservation_id: String },

    /// A dependency stayed throttled, conflicted or unreachable past the retry deadline.
    #[error("service temporarily unavailable")]
    Unavailable { retry_after_secs: u64 },

    /// A bug or a misconfiguration. The text is logged, never sent to a client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn validation(message: impl Into<String>) -> Self {
        Error::Validation { message: message.into(), field: None }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Error::Validation { message: message.into(), field: Some(field.to_owned()) }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }

    /// The API.md error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation { .. } => "VALIDATION_ERROR",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Error::InsufficientStock { .. } => "INSUFFICIENT_STOCK",
            Error::VersionConflict { .. } => "VERSION_CONFLICT",
            Error::StockBelowReserved { .. } => "STOCK_BELOW_RESERVED",
            Error::OrderAlreadyReserved { .. } => "ORDER_ALREADY_RESERVED",
            Error::InvalidState { .. } => "INVALID_STATE",
            Error::ReservationExpired { .. } => "RESERVATION_EXPIRED",
            Error::Unavailable { .. } => "SERVICE_UNAVAILABLE",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            Error::Validation { .. } => 400,
            Error::NotFound { .. } => 404,
            Error::PayloadTooLarge { .. } => 413,
            Error::InsufficientStock { .. }
            | Error::VersionConflict { .. }
            | Error::StockBelowReserved { .. }
            | Error::OrderAlreadyReserved { .. }
            | Error::InvalidState { .. } => 409,
            Error::ReservationExpired { .. } => 410,
            Error::Unavailable { .. } => 503,
            Error::Internal(_) => 500,
        }
    }

    /// The client-facing message. Internal errors get a fixed text: their detail is for logs.
    pub fn public_message(&self) -> String {
        match self {
            Error::Internal(_) => "internal error".to_owned(),
            Error::NotFound { what, id } if !id.is_empty() => format!("{what} '{id}' not found"),
            other => other.to_string(),
        }
    }

    /// `error.details` of the API.md error body.
    pub fn details(&self) -> Value {
        match self {
            Error::Validation { field: Some(field), .. } => json!({ "field": field }),
            Error::InsufficientStock { lines } => json!({ "lines": lines }),
            Error::VersionConflict { current_version } => {
                json!({ "currentVersion": current_version })
            }
            Error::StockBelowReserved { on_hand, reserved } => {
                json!({ "onHand": on_hand, "reserved": reserved })
            }
            Error::OrderAlreadyReserved { reservation_id } => {
                json!({ "reservationId": reservation_id })
            }
            Error::InvalidState { status } => json!({ "status": status }),
            Error::ReservationExpired { reservation_id } => {
                json!({ "reservationId": reservation_id })
            }
            Error::Unavailable { retry_after_secs } => {
                json!({ "retryAfterSeconds": retry_after_secs })
            }
            _ => json!({}),
        }
    }

    /// The full API.md error body.
    pub fn body(&self) -> Value {
        json!({ "error": { "code": self.code(), "message": self.public_message(), "details": self.details() } })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
