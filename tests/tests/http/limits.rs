//! Bounded holds and reads (docs/api.md): a hold cannot be kept past createdAt + `MAX_HOLD_SECONDS`
//! (template.yaml's default, 86400), an order's history is paged, and a sku stocked at 2,000
//! locations answers in one piece within the deadline and Lambda's payload limit.

use super::*;
use http::Method;
use integration_tests::stock_record;
use integration_tests::TestTable;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const DAY: i64 = 86_400;

#[tokio::test]
async fn a_hold_is_never_kept_past_its_lifetime_by_extend_put_or_reserve() {
    let t = TestTable::new().await;
    let s = &t.store;
    assert_eq!(put_stock(s, "L-1", "w1", 10).await.status, 201);
    let line = json!([{"sku": "L-1", "locationId": "w1", "quantity": 1}]);
    let body = json!({"orderId": "o-life", "lines": line, "ttlSeconds": 3600});
    let created = call(s, Method::POST, "/v1/reservations", Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["reservationId"].as_str().unwrap().to_owned();
    let created_at =
        chrono::DateTime::parse_from_rfc3339(created.body["createdAt"].as_str().unwrap()).unwrap();
    let max_expires_at = inventory::timestamp::format(&(created_at + chrono::Duration::seconds(DAY)).into());

    // Half an hour on, a day more would pass the limit: refused, nothing changed.
    t.clock.advance(Duration::from_secs(1800));
    let extend_path = format!("/v1/reservations/{id}/extend");
    let extend = |ttl: i64| call(s, Method::POST, &extend_path, Some(json!({"ttlSeconds": ttl})));
    let refused = extend(DAY).await;
    assert_error(&refused, 409, "HOLD_LIFETIME_EXCEEDED");
    assert_eq!(refused.body["error"]["details"]["maxExpiresAt"], max_expires_at.as_str());
    let unchanged = call(s, Method::GET, &format!("/v1/reservations/{id}"), None).await;
    assert_eq!(unchanged.body, created.body, "nothing written");
    // Up to the limit is allowed (a minute short of it, as the test's own time runs on).
    assert_eq!(extend(DAY - 1800 - 60).await.status, 200);
    assert_eq!(extend(DAY - 1800 + 1).await.body["error"]["code"], "HOLD_LIFETIME_EXCEEDED");

    // A cart change with ttlSeconds: the same rule; without it, expiresAt stays and it applies.
    let put = |ttl: Option<i64>| {
        let mut body = json!({"lines": [{"sku": "L-1", "locationId": "w1", "quantity": 2}]});
        if let Some(ttl) = ttl {
            body["ttlSeconds"] = json!(ttl);
        }
        call(s, Method::PUT, "/v1/orders/o-life/reservation", Some(body))
    };
    assert_error(&put(Some(DAY)).await, 409, "HOLD_LIFETIME_EXCEEDED");
    assert_eq!(call(s, Method::GET, "/v1/stock/L-1/w1", None).await.body["reserved"], 1, "nothing held more");
    let changed = put(None).await;
    assert_eq!((changed.status, changed.body["lines"][0]["quantity"].as_i64()), (200, Some(2)));

    // A new hold may ask the whole lifetime, from its own creation.
    let body = json!({"orderId": "o-life-2", "lines": line, "ttlSeconds": DAY});
    assert_eq!(call(s, Method::POST, "/v1/reservations", Some(body)).await.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_250_reservations_are_paged_each_exactly_once_newest_first() {
    let t = TestTable::new().await;
    let s = &t.store;
    assert_eq!(put_stock(s, "H-1", "w1", 5).await.status, 201);
    // A customer who checks out and leaves 250 times: each hold released before the next.
    let mut made = Vec::new();
    for i in 0..250 {
        let body = json!({"lines": [{"sku": "H-1", "locationId": "w1", "quantity": 1 + i % 2}]});
        let reply = call(s, Method::PUT, "/v1/orders/o-many/reservation", Some(body)).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let id = reply.body["reservationId"].as_str().unwrap().to_owned();
        if i < 249 {
            let released = call(s, Method::POST, &format!("/v1/reservations/{id}/release"), None).await;
            assert_eq!(released.status, 200);
        }
        made.push(id);
        t.clock.advance(Duration::from_millis(5));
    }
    made.reverse();
    for limit in [1usize, 7, 100] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/orders/o-many/reservations?limit={limit}&cursor={c}"),
                None => format!("/v1/orders/o-many/reservations?limit={limit}"),
            };
            let page = call(s, Method::GET, &path, None).await;
            assert_eq!(page.status, 200, "{}", page.body);
            assert_eq!(page.body["orderId"], "o-many");
            let reservations = page.body["reservations"].as_array().unwrap();
            assert!(
                !reservations.is_empty() && reservations.len() <= limit,
                "limit {limit}: {}",
                reservations.len()
            );
            seen.extend(reservations.iter().map(|r| r["reservationId"].as_str().unwrap().to_owned()));
            pages += 1;
            match page.body["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
            assert!(pages <= 250, "paging ends");
        }
        assert_eq!(seen, made, "limit {limit}: each once, newest first");
        assert_eq!(pages, 250usize.div_ceil(limit), "limit {limit}: no empty last page");
    }
    let default = call(s, Method::GET, "/v1/orders/o-many/reservations", None).await;
    assert_eq!(default.body["reservations"].as_array().unwrap().len(), 20, "default limit 20");
    assert_eq!(default.body["reservations"][0]["status"], "PENDING", "the latest first");
    for bad in ["limit=0", "limit=101", "cursor=zz", "cursor=746f70"] {
        let reply = call(s, Method::GET, &format!("/v1/orders/o-many/reservations?{bad}"), None).await;
        assert_error(&reply, 400, "VALIDATION_ERROR");
    }
    assert_error(&call(s, Method::GET, "/v1/orders/nobody/reservations", None).await, 404, "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sku_at_2000_locations_answers_whole_within_the_deadline_and_the_payload_limit() {
    const LOCATIONS: i64 = 2_000;
    let t = TestTable::new().await;
    let now = t.store.now();
    let items: Vec<_> =
        (0..LOCATIONS).map(|i| stock_record("WIDE-1", &format!("store-{i:04}"), i % 7, now)).collect();
    t.batch_put(items, 4).await;
    let started = Instant::now();
    let reply = call(&t.store, Method::GET, "/v1/stock/WIDE-1", None).await;
    let took = started.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let locations = reply.body["locations"].as_array().unwrap();
    let ids: BTreeSet<&str> = locations.iter().map(|l| l["locationId"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), LOCATIONS as usize, "every location once");
    let total: i64 = (0..LOCATIONS).map(|i| i % 7).sum();
    assert_eq!(
        (reply.body["totalOnHand"].as_i64(), reply.body["totalAvailable"].as_i64()),
        (Some(total), Some(total))
    );
    let bytes = reply.body.to_string().len();
    // Lambda's response payload limit is 6 MB; the get-stock function's timeout is template.yaml's.
    assert!(bytes < 6 * 1024 * 1024 / 4, "{bytes} bytes: far under Lambda's 6 MB");
    assert!(took < Duration::from_secs(5), "answered in {took:?}");
    eprintln!("GET /v1/stock/WIDE-1 at {LOCATIONS} locations: {bytes} bytes in {took:?}");
}
