//! Bad input and failing dependencies: 4xx with the contract's error body and nothing changed,
//! 503 with Retry-After within the deadline, correlation ids, the deep health check.

use super::*;
use axum::body::Body;
use http::{HeaderMap, HeaderValue, Method};
use integration_tests::{Fault, TestTable};
use inventory::http::Operation;
use inventory::store::RetryPolicy;
use inventory::Store;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

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
    for operation in ["GetItem", "TransactWriteItems"] {
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
    t.faults.plan("GetItem", hang, 100);
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
