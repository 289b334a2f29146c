//! `Idempotency-Key`: the kept answer replayed, a reused key refused, concurrent duplicates applied
//! once, keys compared on the decoded path, and free again after 24 hours.

use super::*;
use http::Method;
use integration_tests::TestTable;
use serde_json::json;
use std::time::Duration;

/// docs/api.md: the path is compared decoded, so `a%3Ab` and `a:b` with one key are one request.
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

/// An API Gateway (payload 2.0) POST as `authorizer` (a JWT's or IAM's) sends it, with `key`.
fn signed_post(
    path: &str,
    body: &serde_json::Value,
    key: &str,
    authorizer: serde_json::Value,
) -> http::Request<lambda_http::Body> {
    let context = json!({"http": {"method": "POST", "path": path}, "routeKey": "POST /v1/stock/{sku}/{locationId}/adjustments",
        "authorizer": authorizer});
    let event = json!({
        "version": "2.0", "routeKey": "POST /v1/stock/{sku}/{locationId}/adjustments", "rawPath": path,
        "rawQueryString": "", "headers": {"content-type": "application/json", "idempotency-key": key},
        "requestContext": context, "isBase64Encoded": false, "body": body.to_string(),
    });
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event")
}

/// docs/api.md: a key belongs to its caller. The same key and request from two callers are two
/// requests; from one caller (one IAM role, whatever its session), one.
#[tokio::test]
async fn the_same_key_from_two_callers_applies_twice_and_from_one_caller_once() {
    use tower::ServiceExt;
    let t = TestTable::new().await;
    put_stock(&t.store, "K", "w1", 10).await;
    let path = "/v1/stock/K/w1/adjustments";
    let body = json!({"delta": 1, "reason": "recount"});
    let jwt = |sub: &str| json!({"jwt": {"claims": {"sub": sub}, "scopes": null}});
    let role = |session: &str| json!({"iam": {"userArn": format!("arn:aws:sts::123456789012:assumed-role/warehouse/{session}")}});
    let send = |authorizer: serde_json::Value| {
        let request = signed_post(path, &body, "recount-1", authorizer);
        let app = integration_tests::runtime::app(&t.store);
        async move {
            let response = app.oneshot(request).await.expect("infallible");
            let replayed = response.headers().get("idempotent-replayed").is_some();
            (response.status().as_u16(), replayed)
        }
    };
    assert_eq!(send(jwt("alice")).await, (200, false));
    assert_eq!(send(jwt("alice")).await, (200, true), "alice's retry");
    assert_eq!(send(jwt("bob")).await, (200, false), "bob's own key");
    assert_eq!(send(role("session-1")).await, (200, false), "the warehouse role's own key");
    assert_eq!(send(role("session-2")).await, (200, true), "another session of the same role");
    assert_eq!(
        call(&t.store, Method::GET, "/v1/stock/K/w1", None).await.body["onHand"],
        13,
        "three callers, three adjustments"
    );
    // Locally, without an identity, every caller is one: its key is none of the above.
    let local = keyed(&t.store, Method::POST, path, body.clone(), "recount-1").await;
    assert_eq!((local.status, replayed(&local)), (200, false));
    let again = keyed(&t.store, Method::POST, path, body.clone(), "recount-1").await;
    assert_eq!((again.status, replayed(&again)), (200, true));
    assert_eq!(call(&t.store, Method::GET, "/v1/stock/K/w1", None).await.body["onHand"], 14);
}
