//! The service's typed errors, each with its docs/api.md error code. A leaf module (it names only
//! [`Status`] and timestamps): the HTTP status and wire body of each are the HTTP edge's business
//! (`crate::http::error`), nobody else's.

use serde::Serialize;

use crate::status::Status;

/// One reservation line that could not be met, reported in `details.lines[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shortfall {
    pub sku: String,
    /// `None` for a line that let the service pick the location (`locationId: null` on the wire).
    pub location_id: Option<String>,
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

    /// The caller's token lacks the scope the route needs (with `REQUIRE_SCOPES=true`).
    #[error("the token lacks the scope {scope}")]
    Forbidden { scope: String },

    /// A known path asked with a method it does not have.
    #[error("method {method} is not allowed here")]
    MethodNotAllowed { method: String },

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

    /// A sku with stock items cannot become a kit (`kind` STOCKED), nor a kit get stock items
    /// (`kind` KIT).
    #[error("{sku} is {}", if *kind == "KIT" { "a kit: it has no stock items of its own" } else { "stocked: it cannot become a kit" })]
    SkuKind { sku: String, kind: &'static str },

    #[error("reservation has expired")]
    ReservationExpired { reservation_id: String },

    /// The write would keep the hold past the longest a hold may live (`MAX_HOLD_SECONDS` after
    /// its createdAt).
    #[error("a hold may not live past {}", crate::timestamp::format(max_expires_at))]
    HoldLifetimeExceeded { max_expires_at: chrono::DateTime<chrono::Utc> },

    /// An `Idempotency-Key` seen before with another method, path or body.
    #[error("the Idempotency-Key was used before for another request")]
    IdempotencyKeyReused { key: String },

    /// Not a failure: the answer kept for this request's `Idempotency-Key`, sent again as it was
    /// (status and JSON body). It travels as an error so that it ends the request wherever it is
    /// found, as the other answers that are not the handler's do.
    #[error("a kept answer")]
    Replay { status: u16, body: String },

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

    /// The docs/api.md error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation { .. } => "VALIDATION_ERROR",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            Error::Forbidden { .. } => "FORBIDDEN",
            Error::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Error::InsufficientStock { .. } => "INSUFFICIENT_STOCK",
            Error::VersionConflict { .. } => "VERSION_CONFLICT",
            Error::StockBelowReserved { .. } => "STOCK_BELOW_RESERVED",
            Error::OrderAlreadyReserved { .. } => "ORDER_ALREADY_RESERVED",
            Error::InvalidState { .. } | Error::SkuKind { .. } => "INVALID_STATE",
            Error::ReservationExpired { .. } => "RESERVATION_EXPIRED",
            Error::HoldLifetimeExceeded { .. } => "HOLD_LIFETIME_EXCEEDED",
            Error::IdempotencyKeyReused { .. } => "IDEMPOTENCY_KEY_REUSED",
            Error::Replay { .. } => "REPLAY",
            Error::Unavailable { .. } => "SERVICE_UNAVAILABLE",
            Error::Internal(_) => "INTERNAL",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
