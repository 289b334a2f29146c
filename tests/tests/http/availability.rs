//! `POST /v1/availability`: what a listing page can sell of many skus in one call, exact after a
//! mix of reserves, confirms and releases (sharded items included), in request order, over every
//! location or a channel's less its safety stock, at the cost docs/api.md states.

use std::collections::BTreeMap;

use http::Method;
use integration_tests::TestTable;
use serde_json::{json, Value};

use super::{call, put_stock, reserve};

const LOCATIONS: [&str; 3] = ["berlin", "paris", "madrid"];

/// Every item's `available` as the stock route reads it: (sku, location) -> available.
async fn stock_of(t: &TestTable, skus: &[String]) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for sku in skus {
        let read = call(&t.store, Method::GET, &format!("/v1/stock/{sku}"), None).await;
        for l in read.body["locations"].as_array().into_iter().flatten() {
            out.insert(
                (sku.clone(), l["locationId"].as_str().unwrap().to_owned()),
                l["available"].as_i64().unwrap(),
            );
        }
    }
    out
}

async fn availability(t: &TestTable, body: Value) -> (u16, Value, u64) {
    let before = t.store.stats().requests();
    let reply = call(&t.store, Method::POST, "/v1/availability", Some(body)).await;
    (reply.status, reply.body, t.store.stats().requests() - before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_skus_answer_in_request_order_with_exact_numbers_after_a_random_mix() {
    let t = TestTable::new().await;
    // 100 skus, in no sorted order; a third of them at three locations, sharded items among them.
    let skus: Vec<String> = (0..100).map(|i| format!("AV-{:03}", (i * 37) % 100)).collect();
    for (i, sku) in skus.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        for (j, loc) in LOCATIONS.iter().enumerate() {
            let body =
                if (i + j) % 4 == 0 { json!({"onHand": 40, "shards": 4}) } else { json!({"onHand": 10 + j}) };
            let put = call(&t.store, Method::PUT, &format!("/v1/stock/{sku}/{loc}"), Some(body)).await;
            assert_eq!(put.status, 201, "{}", put.body);
        }
    }
    let stocked: Vec<&String> = skus.iter().enumerate().filter(|(i, _)| i % 3 == 0).map(|(_, s)| s).collect();
    let mut rng = fastrand::Rng::with_seed(7);
    for n in 0..60 {
        let sku = stocked[rng.usize(..stocked.len())];
        let loc = LOCATIONS[rng.usize(..3)];
        let held = reserve(
            &t.store,
            &format!("mix-{n}"),
            json!([{"sku": sku, "locationId": loc, "quantity": rng.i64(1..4)}]),
        )
        .await;
        if held.status != 201 {
            continue;
        }
        let id = held.body["reservationId"].as_str().unwrap();
        match rng.u8(..3) {
            0 => assert_eq!(
                call(&t.store, Method::POST, &format!("/v1/reservations/{id}/confirm"), None).await.status,
                200
            ),
            1 => assert_eq!(
                call(&t.store, Method::POST, &format!("/v1/reservations/{id}/release"), None).await.status,
                200
            ),
            _ => {}
        }
    }
    let stock = stock_of(&t, &skus).await;
    let (status, body, requests) = availability(&t, json!({"skus": skus, "byLocation": true})).await;
    assert_eq!(status, 200, "{body}");
    // One Query per sku, then the other shards of the sharded items (75 keys: one BatchGetItem).
    assert!(requests <= 101, "one request per sku and one BatchGetItem: {requests}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.iter().map(|i| i["sku"].as_str().unwrap()).collect::<Vec<_>>(), skus, "request order");
    for item in items {
        let sku = item["sku"].as_str().unwrap();
        let expected: i64 = stock.iter().filter(|((s, _), _)| s == sku).map(|(_, a)| a).sum();
        assert_eq!(item["available"].as_i64(), Some(expected), "{sku}");
        let by_location: Vec<(String, i64)> = item["locations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["locationId"].as_str().unwrap().to_owned(), l["available"].as_i64().unwrap()))
            .collect();
        let want: Vec<(String, i64)> =
            stock.iter().filter(|((s, _), _)| s == sku).map(|((_, l), a)| (l.clone(), *a)).collect();
        assert_eq!(by_location, want, "{sku}: each location, sorted");
    }
    assert!(stock.values().any(|a| *a < 40), "the mix moved some stock");

    // Through a channel: its locations only, each shard less its safety stock (as a write's
    // condition keeps it on every shard), never below 0.
    let shards = integration_tests::invariants::Snapshot::take(&t).await.shards;
    let channel = call(
        &t.store,
        Method::PUT,
        "/v1/channels/web",
        Some(json!({"locations": ["paris", "berlin"], "safetyStock": 11})),
    )
    .await;
    assert_eq!(channel.status, 201);
    let (status, body, requests) = availability(&t, json!({"skus": skus, "channelId": "web"})).await;
    assert_eq!(status, 200, "{body}");
    for item in body["items"].as_array().unwrap() {
        let sku = item["sku"].as_str().unwrap();
        let expected: i64 = ["paris", "berlin"]
            .iter()
            .filter_map(|l| shards.get(&(sku.to_owned(), l.to_string())))
            .flat_map(|item| item.values().map(|shard| (shard.available - 11).max(0)))
            .sum();
        assert_eq!(item["available"].as_i64(), Some(expected), "{sku} through the channel");
        assert!(item.get("locations").is_none(), "no locations without byLocation");
    }
    // The channel (1), 200 keys in 2 BatchGetItems, the shard items of sharded ones in 1 more,
    // and the skus with no stock item there looked up as kits in 1 more.
    assert!(requests <= 5, "{requests} requests");
}

#[tokio::test]
async fn unknown_channels_skus_without_stock_and_bad_requests() {
    let t = TestTable::new().await;
    put_stock(&t.store, "ONE", "berlin", 5).await;
    let (status, body, _) = availability(&t, json!({"skus": ["NONE", "ONE"], "byLocation": true})).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["items"],
        json!([{"sku": "NONE", "available": 0, "locations": []}, {"sku": "ONE", "available": 5, "locations": [{"locationId": "berlin", "available": 5}]}])
    );
    let (status, body, _) = availability(&t, json!({"skus": ["ONE"], "channelId": "nowhere"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
    let many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
    for (bad, field) in [
        (json!({"skus": []}), "skus"),
        (json!({"skus": many}), "skus"),
        (json!({"skus": ["A", "A"]}), "skus[1]"),
        (json!({"skus": ["no space"]}), "skus[0]"),
        (json!({"skus": ["A"], "channelId": "bad id"}), "channelId"),
    ] {
        let (status, body, _) = availability(&t, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["details"]["field"].as_str(), Some(field), "{bad}: {body}");
    }
    assert_eq!(availability(&t, json!({"skus": ["A"], "byLocation": "yes"})).await.0, 400);
}
