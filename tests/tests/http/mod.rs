//! The HTTP contract of docs/api.md, through the real handlers against DynamoDB Local: requests go
//! through the router the local runtime builds from template.yaml (each route's function with its
//! own store behind its IAM gate), in-process.
//!
//! By concern: `routes`, `failures` (bad input, failing dependencies), `idempotency`, `limits`
//! (bounded holds and reads), `scopes`.

mod availability;
mod channels;
mod failures;
mod idempotency;
mod kits;
mod limits;
mod routes;
mod scopes;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method};
use integration_tests::OpenApi;
use inventory::http::ROUTES;
use inventory::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

pub(super) struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: HeaderMap,
}

pub(super) async fn call_with(
    store: &Store,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
    headers: HeaderMap,
) -> Reply {
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(path)
        .body(Body::from(body.unwrap_or_default().to_vec()))
        .expect("request");
    *request.headers_mut() = headers;
    // The HTTP API as template.yaml routes it, each function behind its IAM gate.
    let response = integration_tests::runtime::app(store).oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("response body");
    let body: Value = serde_json::from_slice(&bytes).expect("JSON response body");
    // Every response of a described route must match openapi.json.
    if let Some(template) = route_template(&method, path) {
        if let Err(e) = openapi().check_response(method.as_str(), template, status, &body) {
            panic!("{method} {path} -> {status} does not match openapi.json: {e}");
        }
    }
    Reply { status, body, headers }
}

/// The route of `ROUTES` a request names, found segment by segment without the router.
pub(super) fn route_template(method: &Method, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('?').next().unwrap_or_default().split('/').collect();
    let matches = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(p, s)| if p.starts_with('{') { !s.is_empty() } else { p == s })
    };
    ROUTES.iter().find(|(m, t, _)| *m == method.as_str() && matches(t)).map(|(_, t, _)| *t)
}

pub(super) async fn call(store: &Store, method: Method, path: &str, body: Option<Value>) -> Reply {
    let bytes = body.map(|b| b.to_string().into_bytes());
    call_with(store, method, path, bytes.as_deref(), HeaderMap::new()).await
}

pub(super) fn openapi() -> &'static OpenApi {
    static SPEC: std::sync::OnceLock<OpenApi> = std::sync::OnceLock::new();
    SPEC.get_or_init(OpenApi::load)
}

pub(super) fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.body);
    assert!(reply.body["error"]["message"].is_string());
    assert!(reply.body["error"]["details"].is_object());
    assert_eq!(reply.headers["content-type"], "application/json");
}

pub(super) async fn put_stock(store: &Store, sku: &str, loc: &str, on_hand: i64) -> Reply {
    call(store, Method::PUT, &format!("/v1/stock/{sku}/{loc}"), Some(json!({ "onHand": on_hand }))).await
}

pub(super) async fn reserve(store: &Store, order: &str, lines: Value) -> Reply {
    call(store, Method::POST, "/v1/reservations", Some(json!({ "orderId": order, "lines": lines }))).await
}

pub(super) async fn keyed(store: &Store, method: Method, path: &str, body: Value, key: &str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert("idempotency-key", HeaderValue::from_str(key).unwrap());
    call_with(store, method, path, Some(body.to_string().as_bytes()), headers).await
}

pub(super) fn replayed(reply: &Reply) -> bool {
    reply.headers.get("idempotent-replayed").is_some_and(|v| v == "true")
}
