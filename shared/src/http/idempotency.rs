//! `Idempotency-Key` on POST and PUT (docs/api.md, "Idempotent writes"): a request with a key seen
//! before gets the kept answer again (`Idempotent-Replayed: true`) when it is the same request
//! (method, path, and body compared as JSON values), else 422 `IDEMPOTENCY_KEY_REUSED`; a new one
//! runs with a claim on the key (left in the request's extensions, whence the handler's
//! `WriteContext` takes it), so the store keeps its answer with the change it makes; a success
//! that changed nothing keeps its answer on its own.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::REPLAYED_HEADER;
use super::extract::caller;
use super::{AppState, MAX_BODY_BYTES};
use crate::error::Error;
use crate::store::{Answer, Claim};

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// In a response's extensions: a success not to keep (a batch with an item that may or may not
/// have been applied), so the same request with the key runs again.
#[derive(Clone, Copy, Debug)]
pub(super) struct NotKept;

/// `Idempotency-Key`: 1-128 chars of `[A-Za-z0-9._:-]`.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
}

/// What makes two requests the same: method, path and body, the path compared decoded (`a%3Ab`
/// is `a:b`, as the handlers see it) and the body as a JSON value (key order and spacing do not
/// matter) when it is JSON.
pub fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str());
    hash.update(b"\n");
    hash.update(percent_encoding::percent_decode_str(path).collect::<Vec<u8>>());
    hash.update(b"\n");
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => hash.update(canonical(&value)),
        Err(_) => hash.update(body),
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON value's text with object keys sorted, at every depth.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by_key(|(k, _)| *k);
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String((*k).clone()), canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The middleware (POST and PUT only).
pub(super) async fn idempotency(State(store): State<AppState>, request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::POST | Method::PUT) {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_HEADER) else { return next.run(request).await };
    let Some(key) = key.to_str().ok().filter(|k| valid_key(k)).map(str::to_owned) else {
        let message = "Idempotency-Key must be 1-128 characters of [A-Za-z0-9._:-]";
        return Error::invalid_field("Idempotency-Key", message).into_response();
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return Error::PayloadTooLarge { limit: MAX_BODY_BYTES }.into_response();
    };
    let claim =
        Claim::new(caller(&parts.extensions), key, fingerprint(&parts.method, parts.uri.path(), &bytes));
    match store.kept_answer(&claim).await {
        Err(e) => return e.into_response(),
        Ok(Some(kept)) => return kept.answer_to(&claim).into_response(),
        Ok(None) => {}
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(claim.clone());
    let response = next.run(request).await;
    if !response.status().is_success()
        || claim.kept()
        || response.headers().contains_key(REPLAYED_HEADER)
        || response.extensions().get::<NotKept>().is_some()
    {
        return response;
    }
    // A success that wrote nothing (a retried reserve, a confirm of a confirmed hold): keep it too.
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        return Error::internal("cannot read a response body").into_response();
    };
    let answer = Answer { status: parts.status.as_u16(), body: String::from_utf8_lossy(&body).into_owned() };
    match store.keep_answer(&claim, &answer).await {
        Ok(()) => {}
        // A concurrent request with the key kept its answer first: that is the answer (this one
        // changed nothing, so nothing else needs undoing).
        Err(e @ (Error::Replay { .. } | Error::IdempotencyKeyReused { .. })) => return e.into_response(),
        // The answer stands; a repeat runs again, which for a request that changed nothing is safe.
        Err(e) => tracing::warn!(error = %e, "could not keep an idempotent answer"),
    }
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_compare_json_bodies_by_value() {
        let a = fingerprint(
            &Method::POST,
            "/v1/reservations",
            br#"{"orderId":"o","lines":[{"sku":"A","quantity":1}]}"#,
        );
        let b = fingerprint(
            &Method::POST,
            "/v1/reservations",
            br#"{ "lines": [ {"quantity": 1, "sku": "A"} ], "orderId": "o" }"#,
        );
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint(
                &Method::PUT,
                "/v1/reservations",
                br#"{"orderId":"o","lines":[{"sku":"A","quantity":1}]}"#
            )
        );
        assert_ne!(
            a,
            fingerprint(&Method::POST, "/v1/other", br#"{"orderId":"o","lines":[{"sku":"A","quantity":1}]}"#)
        );
        assert_ne!(
            a,
            fingerprint(
                &Method::POST,
                "/v1/reservations",
                br#"{"orderId":"o","lines":[{"sku":"A","quantity":2}]}"#
            )
        );
        assert_ne!(fingerprint(&Method::POST, "/p", b"[1,2]"), fingerprint(&Method::POST, "/p", b"[2,1]"));
        // The path is compared decoded (docs/api.md): `a%3Ab` is `a:b`.
        assert_eq!(
            fingerprint(&Method::PUT, "/v1/orders/a%3Ab/reservation", b"{}"),
            fingerprint(&Method::PUT, "/v1/orders/a:b/reservation", b"{}")
        );
        assert_eq!(fingerprint(&Method::POST, "/p", b""), fingerprint(&Method::POST, "/p", b""));
    }

    #[test]
    fn keys_follow_the_contract() {
        assert!(valid_key("order-42:attempt.1_a"));
        assert!(valid_key(&"k".repeat(128)));
        assert!(!valid_key(&"k".repeat(129)));
        assert!(!valid_key(""));
        assert!(!valid_key("a b"));
        assert!(!valid_key("a/b"));
    }
}
