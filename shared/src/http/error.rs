//! The one mapping of errors to HTTP: each error's status, its public message and details, and
//! the contract's error body `{"error": {"code", "message", "details"}}`. Internal errors are
//! logged here and answered with a fixed text: no SDK text or stack trace ever reaches a client.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::error::Error;

/// The HTTP status of an error.
pub fn status_of(error: &Error) -> StatusCode {
    match error {
        Error::Validation { .. } => StatusCode::BAD_REQUEST,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::InsufficientStock { .. }
        | Error::VersionConflict { .. }
        | Error::StockBelowReserved { .. }
        | Error::OrderAlreadyReserved { .. }
        | Error::InvalidState { .. }
        | Error::SkuKind { .. }
        | Error::HoldLifetimeExceeded { .. } => StatusCode::CONFLICT,
        Error::ReservationExpired { .. } => StatusCode::GONE,
        Error::IdempotencyKeyReused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Replay { status, .. } => StatusCode::from_u16(*status).unwrap_or(StatusCode::OK),
        Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The client-facing message. Internal errors get a fixed text: their detail is for logs.
fn public_message(error: &Error) -> String {
    match error {
        Error::Internal(_) => "internal error".to_owned(),
        Error::NotFound { what, id } if !id.is_empty() => format!("{what} '{id}' not found"),
        other => other.to_string(),
    }
}

/// `error.details` of the contract's error body.
fn details(error: &Error) -> Value {
    match error {
        Error::Validation { field: Some(field), .. } => json!({ "field": field }),
        Error::InsufficientStock { lines } => json!({ "lines": lines }),
        Error::VersionConflict { current_version } => json!({ "currentVersion": current_version }),
        Error::StockBelowReserved { on_hand, reserved } => json!({ "onHand": on_hand, "reserved": reserved }),
        Error::OrderAlreadyReserved { reservation_id } | Error::ReservationExpired { reservation_id } => {
            json!({ "reservationId": reservation_id })
        }
        Error::InvalidState { status } => json!({ "status": status }),
        Error::SkuKind { sku, kind } => json!({ "status": kind, "sku": sku }),
        Error::HoldLifetimeExceeded { max_expires_at } => {
            json!({ "maxExpiresAt": crate::timestamp::format(max_expires_at) })
        }
        Error::IdempotencyKeyReused { key } => json!({ "key": key }),
        Error::Forbidden { scope } => json!({ "requiredScope": scope }),
        Error::Unavailable { retry_after_secs } => json!({ "retryAfterSeconds": retry_after_secs }),
        _ => json!({}),
    }
}

/// The contract's error body.
pub fn error_body(error: &Error) -> Value {
    json!({ "error": { "code": error.code(), "message": public_message(error), "details": details(error) } })
}

/// The contract's error code of an error answer, left in the response's extensions (metrics).
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// The response header that marks a kept answer sent again.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Replay { status, body } = self {
            let mut response =
                (status_of(&Error::Replay { status, body: String::new() }), body).into_response();
            let headers = response.headers_mut();
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            return response;
        }
        if let Error::Internal(detail) = &self {
            tracing::error!(detail = %detail, "internal error");
        }
        let mut response = (status_of(&self), Json(error_body(&self))).into_response();
        response.extensions_mut().insert(ErrorCode(self.code()));
        if let Error::Unavailable { retry_after_secs } = &self {
            response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Shortfall;

    #[test]
    fn error_bodies_follow_the_contract() {
        let e = Error::InsufficientStock {
            lines: vec![Shortfall {
                sku: "A".into(),
                location_id: Some("w".into()),
                requested: 2,
                available: 1,
            }],
        };
        assert_eq!(status_of(&e), 409);
        let body = error_body(&e);
        assert_eq!(body["error"]["code"], "INSUFFICIENT_STOCK");
        assert_eq!(body["error"]["details"]["lines"][0]["locationId"], "w");
        let internal = Error::internal("dynamodb said something secret");
        assert!(!error_body(&internal).to_string().contains("secret"));
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let response = Error::Unavailable { retry_after_secs: 1 }.into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
        assert_eq!(response.headers()[http::header::CONTENT_TYPE], "application/json");
    }
}
