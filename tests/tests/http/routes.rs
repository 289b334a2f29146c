//! The routes of docs/api.md as the router serves them: stock, reservations, an order's cart, the
//! samples in events/, and how paths are matched and decoded.

use super::*;
use axum::body::Body;
use http::{HeaderMap, Method};
use integration_tests::TestTable;
use inventory::http::{router, Operation, ROUTES};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

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
    for bad in [json!(0), json!(65), json!(null), json!("4")] {
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
        } else if name == "get-channel" {
            let locations = ["berlin".to_owned()];
            t.store.put_channel("web-shop", &locations, 2, None, &Default::default()).await.unwrap();
        } else if name == "get-kit" {
            let components = [inventory::domain::Component { sku: "MUG-01".into(), quantity: 1 }];
            t.store.put_kit("GIFT-BOX", &components, None, &Default::default()).await.unwrap();
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
