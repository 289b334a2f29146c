//! The HTTP contract of API.md, through the real handlers against DynamoDB Local: requests go
//! through the router the local runtime builds from template.yaml (each route's function with its
//! own store behind its IAM gate), in-process.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method};
use integration_tests::{Fault, OpenApi, TestTable};
use inventory::http::{router, Operation, ROUTES};
use inventory::store::RetryPolicy;
use inventory::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Reply {
    status: u16,
    body: Value,
    headers: HeaderMap,
}

async fn call_with(
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
fn route_template(method: &Method, path: &str) -> Option<&'static str> {
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

async fn call(store: &Store, method: Method, path: &str, body: Option<Value>) -> Reply {
    let bytes = body.map(|b| b.to_string().into_bytes());
    call_with(store, method, path, bytes.as_deref(), HeaderMap::new()).await
}

fn openapi() -> &'static OpenApi {
    static SPEC: std::sync::OnceLock<OpenApi> = std::sync::OnceLock::new();
    SPEC.get_or_init(OpenApi::load)
}

#[test]
fn openapi_describes_exactly_the_routes() {
    let mut routes: Vec<(String, String)> =
        ROUTES.iter().map(|(m, t, _)| (m.to_string(), t.to_string())).collect();
    routes.sort();
    assert_eq!(openapi().operations(), routes);
    // The checker itself rejects what does not match.
    let spec = openapi();
    assert!(spec.check_response("GET", "/health", 200, &json!({"status": "ok"})).is_ok());
    assert!(spec.check_response("GET", "/health", 200, &json!({"status": "ok", "extra": 1})).is_err());
    assert!(spec.check_response("GET", "/health", 418, &json!({"status": "ok"})).is_err());
    let bad_error = json!({"error": {"code": "NOPE", "message": "m", "details": {}}});
    assert!(spec.check_response("GET", "/v1/stock/{sku}", 404, &bad_error).is_err());
}

fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.body);
    assert!(reply.body["error"]["message"].is_string());
    assert!(reply.body["error"]["details"].is_object());
    assert_eq!(reply.headers["content-type"], "application/json");
}

async fn put_stock(store: &Store, sku: &str, loc: &str, on_hand: i64) -> Reply {
    call(store, Method::PUT, &format!("/v1/stock/{sku}/{loc}"), Some(json!({ "onHand": on_hand }))).await
}

async fn reserve(store: &Store, order: &str, lines: Value) -> Reply {
    call(store, Method::POST, "/v1/reservations", Some(json!({ "orderId": order, "lines": lines }))).await
}

#[tokio::test]
async fn stock_routes() {
    let t = TestTable::new().await;
    let s = &t.store;
    assert_eq!(call(s, Method::GET, "/health", None).await.body, json!({"status": "ok"}));
    let created = put_stock(s, "SKU-1", "w2", 10).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["available"], 10);
    assert_eq!(created.body["version"], 1);
    let updated = put_stock(s, "SKU-1", "w2", 12).await;
    assert_eq!((updated.status, updated.body["onHand"].as_i64()), (200, Some(12)));
    assert_eq!(put_stock(s, "SKU-1", "w1", 3).await.status, 201);
    let adj = call(
        s,
        Method::POST,
        "/v1/stock/SKU-1/w2/adjustments",
        Some(json!({"delta": -2, "reason": "broken"})),
    )
    .await;
    assert_eq!(
        (adj.status, adj.body["onHand"].as_i64(), adj.body["version"].as_i64()),
        (200, Some(10), Some(3))
    );
    let one = call(s, Method::GET, "/v1/stock/SKU-1/w2", None).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body, adj.body);
    let all = call(s, Method::GET, "/v1/stock/SKU-1", None).await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["locations"][0]["locationId"], "w1");
    assert_eq!((all.body["totalOnHand"].as_i64(), all.body["totalAvailable"].as_i64()), (Some(13), Some(13)));
    // Sharded: the item shows its shards summed, every listing too; bad counts are 400, unchanged.
    for bad in [json!(0), json!(33), json!(null), json!("4")] {
        let refused =
            call(s, Method::PUT, "/v1/stock/SKU-S/w5", Some(json!({"onHand": 10, "shards": bad}))).await;
        assert_eq!(
            (refused.status, refused.body["error"]["code"].as_str()),
            (400, Some("VALIDATION_ERROR")),
            "{bad}"
        );
    }
    assert_error(&call(s, Method::GET, "/v1/stock/SKU-S/w5", None).await, 404, "NOT_FOUND");
    let sharded = call(s, Method::PUT, "/v1/stock/SKU-S/w5", Some(json!({"onHand": 10, "shards": 4}))).await;
    assert_eq!(
        (sharded.status, sharded.body["shards"].as_i64(), sharded.body["onHand"].as_i64()),
        (201, Some(4), Some(10))
    );
    let held = call(
        s,
        Method::POST,
        "/v1/reservations",
        Some(json!({"orderId": "sharded-1", "lines": [{"sku": "SKU-S", "locationId": "w5", "quantity": 2}]})),
    )
    .await;
    assert_eq!(held.status, 201);
    let listed = call(s, Method::GET, "/v1/locations/w5/stock", None).await;
    assert_eq!(
        (listed.body["items"][0]["reserved"].as_i64(), listed.body["items"][0]["shards"].as_i64()),
        (Some(2), Some(4))
    );
    let movements = call(s, Method::GET, "/v1/stock/SKU-S/w5/movements?limit=2", None).await;
    let next = movements.body["nextCursor"].as_str().expect("more than one page").to_owned();
    let page =
        call(s, Method::GET, &format!("/v1/stock/SKU-S/w5/movements?limit=100&cursor={next}"), None).await;
    assert_eq!(page.status, 200, "a cursor of a sharded ledger pages on: {}", page.body);
    assert_eq!(call(s, Method::GET, "/v1/stock/SKU-S/w5/movements?cursor=5s99", None).await.status, 400);
    let back = call(
        s,
        Method::POST,
        &format!("/v1/reservations/{}/release", held.body["reservationId"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(back.status, 200);
    let one_shard =
        call(s, Method::PUT, "/v1/stock/SKU-S/w5", Some(json!({"onHand": 10, "shards": 1}))).await;
    assert_eq!(
        (one_shard.body["shards"].as_i64(), one_shard.body["available"].as_i64()),
        (Some(1), Some(10))
    );
    // Timestamps: RFC 3339 UTC with milliseconds.
    let ts = one.body["updatedAt"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");

    assert_error(&call(s, Method::GET, "/v1/stock/NONE", None).await, 404, "NOT_FOUND");
    assert_error(&call(s, Method::GET, "/v1/stock/SKU-1/w9", None).await, 404, "NOT_FOUND");
    let missing = call(s, Method::POST, "/v1/stock/NONE/w1/adjustments", Some(json!({"delta": 1}))).await;
    assert_error(&missing, 404, "NOT_FOUND");
    let conflict =
        call(s, Method::PUT, "/v1/stock/SKU-1/w2", Some(json!({"onHand": 1, "expectedVersion": 1}))).await;
    assert_error(&conflict, 409, "VERSION_CONFLICT");
    assert_eq!(conflict.body["error"]["details"]["currentVersion"], 3);
    let exists =
        call(s, Method::PUT, "/v1/stock/SKU-1/w2", Some(json!({"onHand": 1, "expectedVersion": 0}))).await;
    assert_error(&exists, 409, "VERSION_CONFLICT");
    assert_eq!(
        reserve(s, "o-1", json!([{"sku": "SKU-1", "locationId": "w2", "quantity": 6}])).await.status,
        201
    );
    let below = put_stock(s, "SKU-1", "w2", 5).await;
    assert_error(&below, 409, "STOCK_BELOW_RESERVED");
    assert_eq!(below.body["error"]["details"], json!({"onHand": 5, "reserved": 6}));
    let below_adj = call(s, Method::POST, "/v1/stock/SKU-1/w2/adjustments", Some(json!({"delta": -5}))).await;
    assert_error(&below_adj, 409, "STOCK_BELOW_RESERVED");
}

#[tokio::test]
async fn reservation_routes() {
    let t = TestTable::new().await;
    let s = &t.store;
    put_stock(s, "A", "w1", 5).await;
    put_stock(s, "B", "w1", 5).await;
    let lines = json!([{"sku": "B", "locationId": "w1", "quantity": 1}, {"sku": "A", "locationId": "w1", "quantity": 2},
                       {"sku": "B", "locationId": "w1", "quantity": 1}]);
    let created = reserve(s, "order-1", lines.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let r = &created.body;
    assert_eq!(r["status"], "PENDING");
    assert_eq!(
        r["lines"],
        json!([{"sku": "A", "locationId": "w1", "quantity": 2}, {"sku": "B", "locationId": "w1", "quantity": 2}])
    );
    let id = r["reservationId"].as_str().unwrap().to_owned();
    assert_eq!(reserve(s, "order-1", lines).await.body, *r, "a retry returns the same reservation");
    assert_eq!(reserve(s, "order-1", json!([{"sku": "A", "locationId": "w1", "quantity": 2}, {"sku": "B", "locationId": "w1", "quantity": 2}])).await.status, 200);
    let other = reserve(s, "order-1", json!([{"sku": "A", "locationId": "w1", "quantity": 1}])).await;
    assert_error(&other, 409, "ORDER_ALREADY_RESERVED");
    assert_eq!(other.body["error"]["details"]["reservationId"], id.as_str());
    let short = reserve(s, "order-2", json!([{"sku": "A", "locationId": "w1", "quantity": 4}])).await;
    assert_error(&short, 409, "INSUFFICIENT_STOCK");
    assert_eq!(
        short.body["error"]["details"]["lines"],
        json!([{"sku": "A", "locationId": "w1", "requested": 4, "available": 3}])
    );
    assert_error(
        &reserve(s, "order-3", json!([{"sku": "Z", "locationId": "w1", "quantity": 1}])).await,
        404,
        "NOT_FOUND",
    );

    assert_eq!(call(s, Method::GET, &format!("/v1/reservations/{id}"), None).await.body, *r);
    assert_eq!(call(s, Method::GET, "/v1/orders/order-1/reservation", None).await.body, *r);
    assert_error(&call(s, Method::GET, "/v1/orders/order-9/reservation", None).await, 404, "NOT_FOUND");
    let unknown = uuid::Uuid::new_v4();
    assert_error(&call(s, Method::GET, &format!("/v1/reservations/{unknown}"), None).await, 404, "NOT_FOUND");
    assert_error(
        &call(s, Method::POST, &format!("/v1/reservations/{unknown}/confirm"), None).await,
        404,
        "NOT_FOUND",
    );

    let extended =
        call(s, Method::POST, &format!("/v1/reservations/{id}/extend"), Some(json!({"ttlSeconds": 3600})))
            .await;
    assert_eq!(extended.status, 200);
    assert!(extended.body["expiresAt"].as_str() > r["expiresAt"].as_str());
    let confirmed = call(s, Method::POST, &format!("/v1/reservations/{id}/confirm"), None).await;
    assert_eq!((confirmed.status, confirmed.body["status"].as_str()), (200, Some("CONFIRMED")));
    let again = call(s, Method::POST, &format!("/v1/reservations/{id}/confirm"), Some(json!({}))).await;
    assert_eq!((again.status, again.body["status"].as_str()), (200, Some("CONFIRMED")));
    let release = call(s, Method::POST, &format!("/v1/reservations/{id}/release"), None).await;
    assert_error(&release, 409, "INVALID_STATE");
    assert_eq!(release.body["error"]["details"]["status"], "CONFIRMED");
    let ext =
        call(s, Method::POST, &format!("/v1/reservations/{id}/extend"), Some(json!({"ttlSeconds": 60})))
            .await;
    assert_error(&ext, 409, "INVALID_STATE");
    let a = call(s, Method::GET, "/v1/stock/A/w1", None).await.body;
    assert_eq!((a["onHand"].as_i64(), a["reserved"].as_i64()), (Some(3), Some(0)));

    // Release, released again (200), then confirm refused.
    let r2 = reserve(s, "order-4", json!([{"sku": "A", "locationId": "w1", "quantity": 1}])).await.body;
    let id2 = r2["reservationId"].as_str().unwrap();
    for _ in 0..2 {
        let rel = call(s, Method::POST, &format!("/v1/reservations/{id2}/release"), None).await;
        assert_eq!((rel.status, rel.body["status"].as_str()), (200, Some("RELEASED")));
    }
    assert_error(
        &call(s, Method::POST, &format!("/v1/reservations/{id2}/confirm"), None).await,
        409,
        "INVALID_STATE",
    );
}

#[tokio::test]
async fn expired_holds_answer_410_and_release_answers_expired() {
    let t = TestTable::new().await;
    let s = &t.store;
    put_stock(s, "E", "w1", 2).await;
    let body = json!({"orderId": "late", "lines": [{"sku": "E", "locationId": "w1", "quantity": 2}], "ttlSeconds": 30});
    let r = call(s, Method::POST, "/v1/reservations", Some(body)).await.body;
    let id = r["reservationId"].as_str().unwrap();
    t.clock.advance(Duration::from_secs(31));
    let confirm = call(s, Method::POST, &format!("/v1/reservations/{id}/confirm"), None).await;
    assert_error(&confirm, 410, "RESERVATION_EXPIRED");
    let e = call(s, Method::GET, "/v1/stock/E/w1", None).await.body;
    assert_eq!(
        (e["reserved"].as_i64(), e["available"].as_i64()),
        (Some(0), Some(2)),
        "units back without a sweep"
    );
    let ext =
        call(s, Method::POST, &format!("/v1/reservations/{id}/extend"), Some(json!({"ttlSeconds": 60})))
            .await;
    assert_error(&ext, 410, "RESERVATION_EXPIRED");
    let rel = call(s, Method::POST, &format!("/v1/reservations/{id}/release"), None).await;
    assert_eq!((rel.status, rel.body["status"].as_str()), (200, Some("EXPIRED")));

    // Extend of a PENDING hold past its expiresAt: expired on the spot, 410.
    let body = json!({"orderId": "late-2", "lines": [{"sku": "E", "locationId": "w1", "quantity": 1}], "ttlSeconds": 30});
    let r = call(s, Method::POST, "/v1/reservations", Some(body)).await.body;
    t.clock.advance(Duration::from_secs(31));
    let id = r["reservationId"].as_str().unwrap();
    let ext =
        call(s, Method::POST, &format!("/v1/reservations/{id}/extend"), Some(json!({"ttlSeconds": 60})))
            .await;
    assert_error(&ext, 410, "RESERVATION_EXPIRED");
    assert_eq!(call(s, Method::GET, &format!("/v1/reservations/{id}"), None).await.body["status"], "EXPIRED");
}

#[tokio::test]
async fn throttled_past_the_deadline_is_503_with_retry_after_and_internals_never_leak() {
    let t = TestTable::new().await;
    put_stock(&t.store, "T", "w1", 2).await;
    let impatient = t.store.clone().with_retry_policy(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
        deadline: Duration::from_secs(1),
    });
    t.faults.plan("TransactWriteItems", Fault::Throttled, 3);
    let r = reserve(&impatient, "t-1", json!([{"sku": "T", "locationId": "w1", "quantity": 1}])).await;
    assert_error(&r, 503, "SERVICE_UNAVAILABLE");
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(call(&t.store, Method::GET, "/v1/stock/T/w1", None).await.body["reserved"], 0);

    // A store pointed at a table that does not exist: a misconfiguration, 500 INTERNAL, and the
    // body says nothing of DynamoDB.
    let broken = Store::new(t.store.client().clone(), "no-such-table");
    let r = call(&broken, Method::GET, "/v1/stock/T/w1", None).await;
    assert_error(&r, 500, "INTERNAL");
    let text = r.body.to_string();
    assert!(!text.contains("ResourceNotFound") && !text.contains("no-such-table"), "{text}");
}

#[tokio::test]
async fn correlation_ids_are_echoed_or_generated() {
    let t = TestTable::new().await;
    let mut headers = HeaderMap::new();
    headers.insert("x-correlation-id", HeaderValue::from_static("checkout-42"));
    let r = call_with(&t.store, Method::GET, "/health", None, headers).await;
    assert_eq!(r.headers["x-correlation-id"], "checkout-42");
    // ... and carried into the events the request causes.
    put_stock(&t.store, "C", "w1", 1).await;
    let mut headers = HeaderMap::new();
    headers.insert("x-correlation-id", HeaderValue::from_static("checkout-43"));
    let body =
        json!({"orderId": "c-1", "lines": [{"sku": "C", "locationId": "w1", "quantity": 1}]}).to_string();
    let r = call_with(&t.store, Method::POST, "/v1/reservations", Some(body.as_bytes()), headers).await;
    assert_eq!(r.status, 201);
    let created = t.event_details("ReservationCreated").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["correlationId"], "checkout-43");
    assert_eq!(created[0]["data"]["reservationId"], r.body["reservationId"]);
    let generated = call(&t.store, Method::GET, "/health", None).await;
    assert!(uuid::Uuid::parse_str(generated.headers["x-correlation-id"].to_str().unwrap()).is_ok());
    let not_found = call(&t.store, Method::GET, "/v2/anything", None).await;
    assert_error(&not_found, 404, "NOT_FOUND");
    assert!(not_found.headers.contains_key("x-correlation-id"));
}

/// At least 25 malformed requests: each gets a 4xx with the error body, and nothing changes.
#[tokio::test]
async fn malformed_requests_get_4xx_and_change_nothing() {
    let t = TestTable::new().await;
    let s = &t.store;
    put_stock(s, "M", "w1", 10).await;
    let held = reserve(s, "m-1", json!([{"sku": "M", "locationId": "w1", "quantity": 1}])).await.body;
    let id = held["reservationId"].as_str().unwrap().to_owned();
    let line =
        |q: Value| json!({"orderId": "m-2", "lines": [{"sku": "M", "locationId": "w1", "quantity": q}]});
    let too_many: Vec<Value> =
        (0..26).map(|i| json!({"sku": format!("M{i}"), "locationId": "w1", "quantity": 1})).collect();
    let big = format!("{{\"orderId\": \"{}\", \"lines\": []}}", "x".repeat(70_000));
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let confirm = format!("/v1/reservations/{id}/confirm");
    let extend = format!("/v1/reservations/{id}/extend");
    let cases: Vec<(Method, String, Vec<u8>, u16)> = vec![
        (Method::POST, "/v1/reservations".into(), b"{not json".to_vec(), 400),
        (Method::POST, "/v1/reservations".into(), b"".to_vec(), 400),
        (Method::POST, "/v1/reservations".into(), b"null".to_vec(), 400),
        (Method::POST, "/v1/reservations".into(), b"[]".to_vec(), 400),
        (Method::POST, "/v1/reservations".into(), line(json!(1)).to_string().replace("m-2", "m 2").into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), line(json!(0)).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), line(json!(-3)).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), line(json!(100_001)).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), line(json!(1.5)).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), line(json!("1")).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), line(json!(1e30)).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), json!({"orderId": "m-2", "lines": []}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), json!({"orderId": "m-2", "lines": too_many}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), json!({"orderId": "m-2", "lines": [{"sku": "M", "locationId": "w1", "quantity": 1}], "ttlSeconds": 0}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), json!({"orderId": "m-2", "lines": [{"sku": "M", "locationId": "w1", "quantity": 1}], "ttlSeconds": 86_401}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), json!({"orderId": "m-2", "lines": [{"sku": "M", "locationId": "w1", "quantity": 1}], "ttl": 60}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), json!({"orderId": "m-2", "lines": [{"sku": "M", "locationId": "w1", "quantity": 1, "qty": 2}]}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), json!({"orderId": "m-2", "lines": [{"sku": "М", "locationId": "w1", "quantity": 1}]}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), json!({"orderId": "x".repeat(129), "lines": [{"sku": "M", "locationId": "w1", "quantity": 1}]}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), json!({"lines": [{"sku": "M", "locationId": "w1", "quantity": 1}]}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), vec![0xff, 0xfe, b'{', b'}'], 400),
        (Method::POST, "/v1/reservations".into(), deep.into_bytes(), 400),
        (Method::POST, "/v1/reservations".into(), big.into_bytes(), 413),
        (Method::PUT, "/v1/stock/M/w1".into(), json!({"onHand": -1}).to_string().into_bytes(), 400),
        (Method::PUT, "/v1/stock/M/w1".into(), json!({"onHand": 5, "expectedVersion": -1}).to_string().into_bytes(), 400),
        (Method::PUT, "/v1/stock/M/w1".into(), json!({"onHand": 5, "reason": "r".repeat(257)}).to_string().into_bytes(), 400),
        (Method::PUT, "/v1/stock/M/w1".into(), json!({"onhand": 5}).to_string().into_bytes(), 400),
        (Method::PUT, "/v1/stock/M%20X/w1".into(), json!({"onHand": 5}).to_string().into_bytes(), 400),
        (Method::PUT, format!("/v1/stock/{}/w1", "S".repeat(65)), json!({"onHand": 5}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/stock/M/w1/adjustments".into(), json!({"delta": 0}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/stock/M/w1/adjustments".into(), json!({"delta": "5"}).to_string().into_bytes(), 400),
        (Method::POST, confirm.clone(), json!({"force": true}).to_string().into_bytes(), 400),
        (Method::POST, "/v1/reservations/not-a-uuid/confirm".into(), vec![], 400),
        (Method::POST, extend.clone(), json!({"ttlSeconds": 0}).to_string().into_bytes(), 400),
        (Method::POST, extend.clone(), b"{}".to_vec(), 400),
        (Method::GET, "/v1/orders/bad%23id/reservation".into(), vec![], 400),
        (Method::DELETE, "/v1/stock/M/w1".into(), vec![], 405),
        (Method::GET, "/v1/stock".into(), vec![], 404),
    ];
    assert!(cases.len() >= 25);
    let before = (call(s, Method::GET, "/v1/stock/M", None).await.body, t.count_items("").await);
    for (method, path, body, status) in &cases {
        let r = call_with(s, method.clone(), path, Some(body), HeaderMap::new()).await;
        assert!((400..500).contains(&r.status), "{method} {path}: {}", r.status);
        assert_eq!(r.status, *status, "{method} {path}: {}", r.body);
        assert!(r.body["error"]["code"].is_string(), "{method} {path}: {}", r.body);
    }
    let after = (call(s, Method::GET, "/v1/stock/M", None).await.body, t.count_items("").await);
    assert_eq!(before, after, "a rejected request changed state");
}

/// Every sample in events/ replays through its function's handler with a 2xx, and every HTTP
/// function has a sample. Samples naming a reservation get the id of a real one.
#[tokio::test]
async fn every_sample_event_replays_through_its_handler() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let function = |name: &str| {
        let name = if name == "get-stock-location" { "get-stock" } else { name };
        Operation::ALL.into_iter().find(|op| op.function() == name)
    };
    let mut replayed = 0;
    for entry in std::fs::read_dir(root.join("events")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let event: Value = serde_json::from_str(&text).unwrap();
        if event.get("routeKey").is_none() {
            continue; // not an HTTP sample
        }
        let op =
            function(&name).unwrap_or_else(|| panic!("events/{name}.json: no HTTP function of that name"));
        let t = TestTable::new().await;
        put_stock(&t.store, "SNEAKER-42", "berlin", 10).await;
        let mut text = text.clone();
        if let Some(sample_id) = event["pathParameters"]["reservationId"].as_str() {
            let lines = json!([{"sku": "SNEAKER-42", "locationId": "berlin", "quantity": 2}]);
            let held = reserve(&t.store, "order-1001", lines).await.body;
            text = text.replace(sample_id, held["reservationId"].as_str().unwrap());
        } else if name == "get-order-reservation" || name == "list-order-reservations" {
            reserve(
                &t.store,
                "order-1001",
                json!([{"sku": "SNEAKER-42", "locationId": "berlin", "quantity": 2}]),
            )
            .await;
        }
        let request =
            lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("events/{name}.json: {e}"));
        // The function's own router, as its Lambda runs it, with its own store behind its IAM gate.
        let store = integration_tests::runtime::runtime_over(&t.store).store(op.function()).unwrap();
        let response = router(store, &[op]).oneshot(request).await.expect("infallible");
        assert!(response.status().is_success(), "events/{name}.json: {}", response.status());
        assert_eq!(response.headers()["x-correlation-id"], format!("sample-{name}").as_str());
        replayed += 1;
    }
    for crate_dir in std::fs::read_dir(root.join("functions")).unwrap() {
        let name = crate_dir.unwrap().file_name().into_string().unwrap();
        if function(&name).is_some() {
            assert!(
                root.join("events").join(format!("{name}.json")).exists(),
                "functions/{name} has no sample in events/"
            );
        }
    }
    assert!(replayed >= 11, "replayed {replayed}");
}

#[tokio::test]
async fn a_known_path_with_another_method_is_405_with_allow_and_the_error_body() {
    let t = TestTable::new().await;
    let id = uuid::Uuid::new_v4();
    let cases = [
        (Method::DELETE, "/v1/stock/M/w1".to_owned(), &["GET", "PUT"][..]),
        (Method::POST, "/v1/stock/M".to_owned(), &["GET"][..]),
        (Method::GET, "/v1/reservations".to_owned(), &["POST"][..]),
        (Method::TRACE, format!("/v1/reservations/{id}/confirm"), &["POST"][..]),
        (Method::PATCH, "/health".to_owned(), &["GET"][..]),
    ];
    for (method, path, allowed) in cases {
        let r = call_with(&t.store, method.clone(), &path, None, HeaderMap::new()).await;
        assert_error(&r, 405, "METHOD_NOT_ALLOWED");
        let allow = r.headers["allow"].to_str().unwrap();
        for m in allowed {
            assert!(allow.split(',').any(|a| a.trim() == *m), "{method} {path}: Allow {allow} lacks {m}");
        }
        assert!(r.headers.contains_key("x-correlation-id"));
    }
    // An unknown path is still 404.
    assert_error(&call(&t.store, Method::DELETE, "/v1/nothing", None).await, 404, "NOT_FOUND");
}

#[tokio::test]
async fn percent_encoded_path_segments_are_decoded_before_validation() {
    let t = TestTable::new().await;
    let s = &t.store;
    let created = call(s, Method::PUT, "/v1/stock/A%2D1/w%2E1", Some(json!({"onHand": 3}))).await;
    assert_eq!(
        (created.status, &created.body["sku"], &created.body["locationId"]),
        (201, &json!("A-1"), &json!("w.1"))
    );
    assert_eq!(call(s, Method::GET, "/v1/stock/A-1/w.1", None).await.body["onHand"], 3);
    let held = reserve(s, "a:b", json!([{"sku": "A-1", "locationId": "w.1", "quantity": 1}])).await;
    assert_eq!(held.status, 201, "{}", held.body);
    let by_order = call(s, Method::GET, "/v1/orders/a%3Ab/reservation", None).await;
    assert_eq!((by_order.status, &by_order.body["orderId"]), (200, &json!("a:b")));
    assert_eq!(by_order.body, held.body);
    // Decoded, a space or a slash is still not part of an identifier.
    assert_error(&call(s, Method::GET, "/v1/orders/a%20b/reservation", None).await, 400, "VALIDATION_ERROR");
    assert_error(&call(s, Method::GET, "/v1/stock/A%2F1/w.1", None).await, 400, "VALIDATION_ERROR");
    // The path is checked before the body, as API Gateway's path parameters were.
    let both_bad =
        call_with(s, Method::PUT, "/v1/stock/bad%20sku/w1", Some(br#"{"onhand": 5}"#), HeaderMap::new())
            .await;
    assert_error(&both_bad, 400, "VALIDATION_ERROR");
    assert_eq!(both_bad.body["error"]["details"]["field"], "sku");
}

#[tokio::test]
async fn a_functions_router_holds_only_its_own_routes() {
    let t = TestTable::new().await;
    let app = router(Arc::new(t.store.clone()), &[Operation::GetStock]);
    let status = |method: Method, path: &'static str| {
        let app = app.clone();
        async move {
            let request = http::Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
            app.oneshot(request).await.unwrap().status().as_u16()
        }
    };
    assert_eq!(status(Method::GET, "/v1/stock/NONE").await, 404, "its route, an unknown sku");
    assert_eq!(status(Method::GET, "/health").await, 404, "another function's route");
    assert_eq!(status(Method::PUT, "/v1/stock/A/w1").await, 405, "another function's method on its path");
}

#[tokio::test]
async fn a_hanging_dependency_answers_503_with_retry_after_within_the_request_deadline() {
    let t = TestTable::new().await;
    put_stock(&t.store, "H", "w1", 5).await;
    let budget = Duration::from_millis(1500);
    let app = inventory::http::router_with_budget(Arc::new(t.store.clone()), &Operation::ALL, budget);
    let put = || {
        let request = http::Request::builder()
            .method(Method::PUT)
            .uri("/v1/stock/H/w1")
            .body(Body::from(json!({"onHand": 6}).to_string()))
            .unwrap();
        app.clone().oneshot(request)
    };
    let hang = integration_tests::Fault::Delay(Duration::from_secs(60));
    // The PUT's read never answers; then its read answers and its transaction never does (the
    // store's retry loop around the transaction's own).
    for operation in ["Query", "TransactWriteItems"] {
        t.faults.clear();
        t.faults.plan(operation, hang, 100);
        let started = std::time::Instant::now();
        let response = put().await.unwrap();
        let took = started.elapsed();
        assert_eq!(response.status(), 503, "{operation}");
        assert_eq!(response.headers()["retry-after"], "1");
        assert!(took < budget + Duration::from_millis(500), "{operation}: answered after {took:?}");
        assert!(took >= budget - Duration::from_millis(100), "{operation}: gave up early, after {took:?}");
    }
    // In Lambda the deadline is the invocation's, less a margin, whatever the local budget.
    t.faults.clear();
    t.faults.plan("Query", hang, 100);
    let patient = inventory::http::router_with_budget(
        Arc::new(t.store.clone()),
        &Operation::ALL,
        Duration::from_secs(60),
    );
    let mut invocation = lambda_runtime::Context::default();
    invocation.deadline =
        (chrono::Utc::now() + chrono::Duration::milliseconds(1200)).timestamp_millis() as u64;
    let mut request = http::Request::builder()
        .method(Method::PUT)
        .uri("/v1/stock/H/w1")
        .body(Body::from(json!({"onHand": 6}).to_string()))
        .unwrap();
    request.extensions_mut().insert(invocation);
    let started = std::time::Instant::now();
    let response = patient.oneshot(request).await.unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 503);
    let answer_by = Duration::from_millis(1200) - inventory::http::LAMBDA_MARGIN;
    assert!(
        took < answer_by + Duration::from_millis(300),
        "answered after {took:?}, the invocation ends at 1.2 s"
    );
    t.faults.clear();
    assert_eq!(
        call(&t.store, Method::GET, "/v1/stock/H/w1", None).await.body["onHand"],
        5,
        "nothing applied"
    );
}

async fn keyed(store: &Store, method: Method, path: &str, body: Value, key: &str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert("idempotency-key", HeaderValue::from_str(key).unwrap());
    call_with(store, method, path, Some(body.to_string().as_bytes()), headers).await
}

fn replayed(reply: &Reply) -> bool {
    reply.headers.get("idempotent-replayed").is_some_and(|v| v == "true")
}

/// API.md: the path is compared decoded, so `a%3Ab` and `a:b` with one key are one request.
#[tokio::test]
async fn a_keyed_request_is_the_same_whether_its_path_is_percent_encoded_or_not() {
    let t = TestTable::new().await;
    put_stock(&t.store, "K", "w1", 5).await;
    let cart = json!({"lines": [{"sku": "K", "locationId": "w1", "quantity": 2}]});
    let first = keyed(&t.store, Method::PUT, "/v1/orders/a%3Ab/reservation", cart.clone(), "cart-1").await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = keyed(&t.store, Method::PUT, "/v1/orders/a:b/reservation", cart, "cart-1").await;
    assert_eq!((again.status, &again.body), (201, &first.body), "the kept answer");
    assert!(replayed(&again));
    assert_eq!(call(&t.store, Method::GET, "/v1/stock/K/w1", None).await.body["reserved"], 2, "held once");
}

#[tokio::test]
async fn the_same_idempotency_key_replays_the_kept_answer_and_writes_nothing() {
    let t = TestTable::new().await;
    let s = &t.store;
    let put = keyed(s, Method::PUT, "/v1/stock/K/w1", json!({"onHand": 5}), "put-1").await;
    assert_eq!((put.status, replayed(&put)), (201, false));
    let again = keyed(s, Method::PUT, "/v1/stock/K/w1", json!({"onHand": 5}), "put-1").await;
    assert_eq!((again.status, replayed(&again), &again.body), (201, true, &put.body));
    assert_eq!(call(s, Method::GET, "/v1/stock/K/w1", None).await.body["version"], 1);

    let body = json!({"orderId": "k-1", "lines": [{"sku": "K", "locationId": "w1", "quantity": 2}]});
    let first = keyed(s, Method::POST, "/v1/reservations", body.clone(), "reserve-1").await;
    assert_eq!(first.status, 201, "{}", first.body);
    // The same body written otherwise (key order, spacing) is the same request.
    let reordered = json!({"lines": [{"quantity": 2, "locationId": "w1", "sku": "K"}], "orderId": "k-1"});
    let replay = keyed(s, Method::POST, "/v1/reservations", reordered, "reserve-1").await;
    assert_eq!((replay.status, replayed(&replay), &replay.body), (201, true, &first.body));
    let id = first.body["reservationId"].as_str().unwrap().to_owned();
    let confirm = format!("/v1/reservations/{id}/confirm");
    let confirmed = keyed(s, Method::POST, &confirm, json!({}), "confirm-1").await;
    let confirmed_again = keyed(s, Method::POST, &confirm, json!({}), "confirm-1").await;
    assert_eq!((confirmed_again.status, replayed(&confirmed_again)), (200, true));
    assert_eq!(confirmed_again.body, confirmed.body);
    assert_eq!(t.count_events("StockAdjusted").await, 1);
    assert_eq!(t.count_events("ReservationCreated").await, 1);
    assert_eq!(t.count_events("ReservationConfirmed").await, 1);

    // A success that wrote nothing (a repeated reserve of the same order) is kept too.
    let retry = keyed(s, Method::POST, "/v1/reservations", body.clone(), "reserve-2").await;
    assert_eq!((retry.status, replayed(&retry)), (200, false));
    let kept = keyed(s, Method::POST, "/v1/reservations", body, "reserve-2").await;
    assert_eq!((kept.status, replayed(&kept), &kept.body), (200, true, &retry.body));
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_422_and_a_failed_request_keeps_nothing() {
    let t = TestTable::new().await;
    let s = &t.store;
    keyed(s, Method::PUT, "/v1/stock/R/w1", json!({"onHand": 5}), "k").await;
    for (method, path, body) in [
        (Method::PUT, "/v1/stock/R/w1", json!({"onHand": 6})),
        (Method::PUT, "/v1/stock/R/w2", json!({"onHand": 5})),
        (Method::POST, "/v1/stock/R/w1/adjustments", json!({"delta": 1})),
    ] {
        let reused = keyed(s, method.clone(), path, body, "k").await;
        assert_error(&reused, 422, "IDEMPOTENCY_KEY_REUSED");
        assert_eq!(reused.body["error"]["details"]["key"], "k", "{method} {path}");
    }
    assert_eq!(call(s, Method::GET, "/v1/stock/R/w1", None).await.body["onHand"], 5);

    let too_much = json!({"delta": -6});
    let refused = keyed(s, Method::POST, "/v1/stock/R/w1/adjustments", too_much.clone(), "adjust-1").await;
    assert_error(&refused, 409, "STOCK_BELOW_RESERVED");
    keyed(s, Method::POST, "/v1/stock/R/w1/adjustments", json!({"delta": 10}), "adjust-2").await;
    let now_fine = keyed(s, Method::POST, "/v1/stock/R/w1/adjustments", too_much, "adjust-1").await;
    assert_eq!((now_fine.status, replayed(&now_fine), &now_fine.body["onHand"]), (200, false, &json!(9)));

    let bad_key = keyed(s, Method::PUT, "/v1/stock/R/w1", json!({"onHand": 5}), "no spaces").await;
    assert_error(&bad_key, 400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn twenty_concurrent_requests_with_one_key_apply_once() {
    let t = TestTable::new().await;
    put_stock(&t.store, "C20", "w1", 10).await;
    let requests = (0..20).map(|_| {
        let store = t.store.clone();
        tokio::spawn(async move {
            keyed(&store, Method::POST, "/v1/stock/C20/w1/adjustments", json!({"delta": 1}), "once").await
        })
    });
    let replies: Vec<Reply> =
        futures::future::join_all(requests).await.into_iter().map(Result::unwrap).collect();
    for reply in &replies {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body, replies[0].body, "every duplicate gets the one answer");
    }
    assert_eq!(replies.iter().filter(|r| !replayed(r)).count(), 1, "one applied, the others replayed");
    let item = call(&t.store, Method::GET, "/v1/stock/C20/w1", None).await.body;
    assert_eq!((item["onHand"].as_i64(), item["version"].as_i64()), (Some(11), Some(2)));
    assert_eq!(t.count_events("StockAdjusted").await, 2, "the PUT and one adjustment");
}

#[tokio::test]
async fn null_is_refused_for_fields_that_may_only_be_absent() {
    let t = TestTable::new().await;
    let s = &t.store;
    put_stock(s, "N", "w1", 5).await;
    let cases = [
        (Method::PUT, "/v1/stock/N/w1", json!({"onHand": 6, "expectedVersion": null})),
        (Method::PUT, "/v1/stock/N/w1", json!({"onHand": 6, "reason": null})),
        (Method::POST, "/v1/stock/N/w1/adjustments", json!({"delta": 1, "expectedVersion": null})),
        (Method::POST, "/v1/stock/N/w1/adjustments", json!({"delta": 1, "reason": null})),
        (
            Method::POST,
            "/v1/reservations",
            json!({"orderId": "n-1", "lines": [{"sku": "N", "locationId": "w1", "quantity": 1}], "ttlSeconds": null}),
        ),
    ];
    for (method, path, body) in cases {
        let r = call(s, method.clone(), path, Some(body.clone())).await;
        assert_error(&r, 400, "VALIDATION_ERROR");
    }
    // Absent is fine.
    assert_eq!(call(s, Method::PUT, "/v1/stock/N/w1", Some(json!({"onHand": 6}))).await.status, 200);
    assert_eq!(
        call(s, Method::GET, "/v1/stock/N/w1", None).await.body["version"],
        2,
        "only the last one applied"
    );
}

#[tokio::test]
async fn a_key_is_free_again_after_24_hours_even_before_its_record_is_removed() {
    let t = TestTable::new().await;
    let s = &t.store;
    assert_eq!(keyed(s, Method::PUT, "/v1/stock/D/w1", json!({"onHand": 5}), "day-1").await.status, 201);
    t.clock.advance(Duration::from_secs(25 * 3600));
    // DynamoDB has not removed the old record (DynamoDB Local never does): the key is free anyway.
    let other = keyed(s, Method::PUT, "/v1/stock/D/w1", json!({"onHand": 7}), "day-1").await;
    assert_eq!((other.status, replayed(&other), &other.body["onHand"]), (200, false, &json!(7)));
    let again = keyed(s, Method::PUT, "/v1/stock/D/w1", json!({"onHand": 7}), "day-1").await;
    assert_eq!((again.status, replayed(&again), &again.body), (200, true, &other.body));
}

#[tokio::test]
async fn an_orders_cart_is_put_changed_listed_and_refused_when_malformed() {
    let t = TestTable::new().await;
    put_stock(&t.store, "MUG", "w1", 10).await;
    put_stock(&t.store, "MUG", "w2", 5).await;
    let path = "/v1/orders/o-cart/reservation";
    let split = json!({"lines": [{"sku": "MUG", "locations": ["w2", "w1"], "quantity": 6, "split": true}]});
    let created = call(&t.store, Method::PUT, path, Some(split.clone())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["lines"],
        json!([{"sku": "MUG", "locationId": "w1", "quantity": 1}, {"sku": "MUG", "locationId": "w2", "quantity": 5}])
    );
    let id = created.body["reservationId"].clone();
    let changed = call(
        &t.store,
        Method::PUT,
        path,
        Some(json!({"lines": [{"sku": "MUG", "locationId": "w1", "quantity": 2}], "ttlSeconds": 60})),
    )
    .await;
    assert_eq!(
        (changed.status, &changed.body["reservationId"], &changed.body["version"]),
        (200, &id, &json!(2))
    );
    let stock = call(&t.store, Method::GET, "/v1/stock/MUG", None).await;
    assert_eq!(stock.body["totalReserved"], 2, "{}", stock.body);
    let listed = call(&t.store, Method::GET, "/v1/orders/o-cart/reservations", None).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body["orderId"], "o-cart");
    assert_eq!(listed.body["reservations"][0]["reservationId"], id);
    assert_eq!(listed.body["reservations"].as_array().map(Vec::len), Some(1));
    let latest = call(&t.store, Method::GET, path, None).await;
    assert_eq!(latest.body, changed.body);

    // Without split, the most one allowed location has; the line's locationId is null.
    let short =
        reserve(&t.store, "o-short", json!([{"sku": "MUG", "locations": ["w1", "w2"], "quantity": 9}])).await;
    assert_error(&short, 409, "INSUFFICIENT_STOCK");
    assert_eq!(
        short.body["error"]["details"]["lines"],
        json!([{"sku": "MUG", "locationId": null, "requested": 9, "available": 8}])
    );

    for (body, field) in [
        (
            json!({"lines": [{"sku": "MUG", "locationId": "w1", "locations": ["w1"], "quantity": 1}]}),
            "locations",
        ),
        (json!({"lines": [{"sku": "MUG", "locations": ["w1", "w1"], "quantity": 1}]}), "locations"),
        (json!({"lines": [{"sku": "MUG", "locations": [], "quantity": 1}]}), "locations"),
        (json!({"lines": [{"sku": "MUG", "quantity": 1, "split": null}]}), "lines[0].split"),
        (json!({"lines": [{"sku": "MUG", "quantity": 1}], "ttlSeconds": 0}), "ttlSeconds"),
        (json!({"lines": [{"sku": "MUG", "quantity": 1}], "orderId": "o-cart"}), "orderId"),
        (json!({"lines": [{"sku": "MUG", "quantity": "1"}]}), "lines[0].quantity"),
        (json!({"lines": []}), "lines"),
    ] {
        let reply = call(&t.store, Method::PUT, path, Some(body.clone())).await;
        assert_error(&reply, 400, "VALIDATION_ERROR");
        assert_eq!(reply.body["error"]["details"]["field"], field, "{body}");
    }
    let bad_order = call(&t.store, Method::PUT, "/v1/orders/o%23x/reservation", Some(split)).await;
    assert_error(&bad_order, 400, "VALIDATION_ERROR");
    assert_error(
        &call(&t.store, Method::GET, "/v1/orders/nobody/reservations", None).await,
        404,
        "NOT_FOUND",
    );
    // Nothing the refused requests asked for was written.
    let after = call(&t.store, Method::GET, path, None).await;
    assert_eq!(after.body, changed.body);

    // With an Idempotency-Key, a PUT's answer (201 or 200) is replayed and nothing is written.
    let new_cart = json!({"lines": [{"sku": "MUG", "quantity": 1}]});
    let made =
        keyed(&t.store, Method::PUT, "/v1/orders/o-keyed/reservation", new_cart.clone(), "k-put-1").await;
    assert_eq!(made.status, 201);
    let bigger = json!({"lines": [{"sku": "MUG", "quantity": 3}]});
    let grown =
        keyed(&t.store, Method::PUT, "/v1/orders/o-keyed/reservation", bigger.clone(), "k-put-2").await;
    assert_eq!((grown.status, &grown.body["version"]), (200, &json!(2)));
    for (body, key, first) in [(new_cart, "k-put-1", &made), (bigger, "k-put-2", &grown)] {
        let again = keyed(&t.store, Method::PUT, "/v1/orders/o-keyed/reservation", body, key).await;
        assert!(replayed(&again));
        assert_eq!((again.status, &again.body), (first.status, &first.body));
    }
    let latest = call(&t.store, Method::GET, "/v1/orders/o-keyed/reservation", None).await;
    assert_eq!(latest.body, grown.body, "the replays changed nothing");
}

#[test]
fn every_route_needs_the_scope_openapi_names() {
    for (method, template, op) in ROUTES {
        let described = &openapi().spec()["paths"][*template][method.to_lowercase()]["x-scope"];
        assert_eq!(described.as_str(), op.scope(), "{method} {template}");
    }
}

/// An API Gateway (payload 2.0) event for `method path` whose JWT carries `scope`, if any.
fn event_with_scope(
    method: &str,
    template: &str,
    path: &str,
    scope: Option<&str>,
) -> http::Request<lambda_http::Body> {
    let mut context =
        json!({"http": {"method": method, "path": path}, "routeKey": format!("{method} {template}")});
    if let Some(scope) = scope {
        context["authorizer"] =
            json!({"jwt": {"claims": {"sub": "caller-1", "scope": scope}, "scopes": null}});
    }
    let event = json!({
        "version": "2.0", "routeKey": format!("{method} {template}"), "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json"}, "requestContext": context, "isBase64Encoded": false,
        "body": if method == "GET" { Value::Null } else { json!("{}") },
    });
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event")
}

#[tokio::test]
async fn with_require_scopes_each_route_refuses_a_token_without_its_scope_and_accepts_one_with_it() {
    use inventory::http::{router_with, RouterOptions};
    let t = TestTable::new().await;
    let options = RouterOptions { local_budget: Duration::from_secs(9), require_scopes: true, metrics: None };
    let id = uuid::Uuid::new_v4().to_string();
    for (method, template, op) in ROUTES {
        let path = template
            .replace("{sku}", "S")
            .replace("{locationId}", "w1")
            .replace("{reservationId}", &id)
            .replace("{orderId}", "o-1");
        let status = |scope: Option<&'static str>| {
            let app = router_with(Arc::new(t.store.clone()), &[*op], options.clone());
            let request = event_with_scope(method, template, &path, scope);
            async move {
                let response = app.oneshot(request).await.expect("infallible");
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
                (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
            }
        };
        let Some(scope) = op.scope() else {
            assert_eq!(status(None).await.0, 200, "{method} {template} needs no token");
            continue;
        };
        for wrong in [None, Some("inventory/other"), Some("inventory/read.not")] {
            let (code, body) = status(wrong).await;
            assert_eq!(code, 403, "{method} {template} with {wrong:?}: {body}");
            assert_eq!(body["error"]["code"], "FORBIDDEN");
            assert_eq!(body["error"]["details"]["requiredScope"], scope);
        }
        let both = Box::leak(format!("openid {scope}").into_boxed_str());
        let (code, body) = status(Some(both)).await;
        assert_ne!(code, 403, "{method} {template} with {scope}: {body}");
    }
}

#[tokio::test]
async fn a_deep_health_check_asks_dynamodb() {
    let t = TestTable::new().await;
    let reply = call(&t.store, Method::GET, "/health?deep=true", None).await;
    assert_eq!((reply.status, &reply.body), (200, &json!({"status": "ok", "checks": {"dynamodb": "ok"}})));
    assert_eq!(call(&t.store, Method::GET, "/health", None).await.body, json!({"status": "ok"}));
    assert_error(&call(&t.store, Method::GET, "/health?deep=maybe", None).await, 400, "VALIDATION_ERROR");
    let gone = Store::new(t.store.client().clone(), "no-such-table");
    let reply = call(&gone, Method::GET, "/health?deep=true", None).await;
    assert_error(&reply, 503, "SERVICE_UNAVAILABLE");
    assert!(reply.headers.contains_key("retry-after"));
    assert_eq!(call(&gone, Method::GET, "/health", None).await.status, 200, "shallow: no DynamoDB call");
}

/// API Gateway picks a route among those of the request's method: `GET /v1/stock/batch` is the
/// sku "batch" (`GET /v1/stock/{sku}`), though `POST /v1/stock/batch` is a route of its own.
#[tokio::test]
async fn a_sku_named_batch_is_a_sku_like_any_other() {
    let t = TestTable::new().await;
    let s = &t.store;
    assert_error(&call(s, Method::GET, "/v1/stock/batch", None).await, 404, "NOT_FOUND");
    let created = call(s, Method::PUT, "/v1/stock/batch/w1", Some(json!({"onHand": 4}))).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let sku = call(s, Method::GET, "/v1/stock/batch", None).await;
    assert_eq!((sku.status, &sku.body["sku"], &sku.body["totalOnHand"]), (200, &json!("batch"), &json!(4)));
    assert_eq!(call(s, Method::GET, "/v1/stock/batch/w1", None).await.body["onHand"], 4);
    let adjusted = call(s, Method::POST, "/v1/stock/batch/w1/adjustments", Some(json!({"delta": 1}))).await;
    assert_eq!(adjusted.status, 200, "{}", adjusted.body);
    // The batch route is still the batch route, and a method neither has is still 405.
    let one = json!({"items": [{"sku": "batch", "locationId": "w1", "delta": 1}]});
    let batch = call(s, Method::POST, "/v1/stock/batch", Some(one)).await;
    assert_eq!((batch.status, &batch.body["results"][0]["item"]["onHand"]), (200, &json!(6)));
    let other = call(s, Method::DELETE, "/v1/stock/batch", None).await;
    assert_error(&other, 405, "METHOD_NOT_ALLOWED");
    // Its `Allow` is the path's own (OpenAPI's path item), not what `/v1/stock/{sku}` lends it.
    assert_eq!(other.headers["allow"], "POST");
}
