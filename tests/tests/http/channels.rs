//! Sales channels over HTTP: defined and changed keyed on their version, read back, each change
//! one `ChannelUpdated` event; bad input refused whole.

use http::Method;
use integration_tests::TestTable;
use serde_json::json;

use super::{call, keyed};

#[tokio::test]
async fn a_channel_is_created_changed_keyed_on_its_version_and_read_back_each_change_one_event() {
    let t = TestTable::new().await;
    let path = "/v1/channels/web-shop";
    assert_eq!(call(&t.store, Method::GET, path, None).await.status, 404);

    let created = call(
        &t.store,
        Method::PUT,
        path,
        Some(json!({"locations": ["paris", "berlin"], "safetyStock": 2, "expectedVersion": 0})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["locations"], json!(["paris", "berlin"]));
    assert_eq!((created.body["safetyStock"].as_i64(), created.body["version"].as_i64()), (Some(2), Some(1)));

    // The same again: 200, nothing written.
    let same =
        call(&t.store, Method::PUT, path, Some(json!({"locations": ["paris", "berlin"], "safetyStock": 2})))
            .await;
    assert_eq!((same.status, same.body["version"].as_i64()), (200, Some(1)));
    // Another order of locations, keyed on version 1; then a stale version is refused.
    let changed = call(
        &t.store,
        Method::PUT,
        path,
        Some(json!({"locations": ["berlin", "paris"], "expectedVersion": 1})),
    )
    .await;
    assert_eq!((changed.status, changed.body["version"].as_i64()), (200, Some(2)), "{}", changed.body);
    assert_eq!(changed.body["safetyStock"].as_i64(), Some(0), "safetyStock defaults to 0");
    let stale =
        call(&t.store, Method::PUT, path, Some(json!({"locations": ["madrid"], "expectedVersion": 1}))).await;
    assert_eq!((stale.status, stale.body["error"]["code"].as_str()), (409, Some("VERSION_CONFLICT")));
    assert_eq!(stale.body["error"]["details"]["currentVersion"].as_i64(), Some(2));
    let exists =
        call(&t.store, Method::PUT, path, Some(json!({"locations": ["madrid"], "expectedVersion": 0}))).await;
    assert_eq!(exists.status, 409);

    let read = call(&t.store, Method::GET, path, None).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, changed.body);
    let events = t.event_details("ChannelUpdated").await;
    assert_eq!(events.len(), 2, "one event per change: {events:?}");
    assert_eq!(events.iter().filter(|e| e["data"]["version"] == json!(2)).count(), 1);

    // A keyed retry of a change is answered again without a second change.
    let body = json!({"locations": ["lyon"], "safetyStock": 1});
    let first = keyed(&t.store, Method::PUT, "/v1/channels/stores", body.clone(), "k-1").await;
    let again = keyed(&t.store, Method::PUT, "/v1/channels/stores", body, "k-1").await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.body, again.body);
}

#[tokio::test]
async fn bad_channels_are_refused_whole() {
    let t = TestTable::new().await;
    let path = "/v1/channels/web";
    for (body, field) in [
        (json!({"locations": []}), "locations"),
        (json!({"locations": ["a", "b", "a"]}), "locations[2]"),
        (json!({"locations": ["not valid"]}), "locations[0]"),
        (json!({"locations": ["a"], "safetyStock": -1}), "safetyStock"),
        (json!({"locations": ["a"], "safetyStock": 1_000_001}), "safetyStock"),
        (json!({"locations": ["a"], "expectedVersion": -1}), "expectedVersion"),
    ] {
        let refused = call(&t.store, Method::PUT, path, Some(body.clone())).await;
        assert_eq!(refused.status, 400, "{body}: {}", refused.body);
        assert_eq!(
            refused.body["error"]["details"]["field"].as_str(),
            Some(field),
            "{body}: {}",
            refused.body
        );
    }
    let many: Vec<String> = (0..51).map(|i| format!("l{i}")).collect();
    assert_eq!(call(&t.store, Method::PUT, path, Some(json!({"locations": many}))).await.status, 400);
    assert_eq!(
        call(&t.store, Method::PUT, path, Some(json!({"locations": ["a"], "extra": 1}))).await.status,
        400
    );
    assert_eq!(
        call(&t.store, Method::PUT, "/v1/channels/bad%20id", Some(json!({"locations": ["a"]}))).await.status,
        400
    );
    assert_eq!(call(&t.store, Method::GET, path, None).await.status, 404, "nothing was written");
    assert_eq!(t.event_details("ChannelUpdated").await.len(), 0);
}

/// A channel over paris then berlin keeping 2 units at each (`onHand` per location given).
async fn web_channel(t: &TestTable, stock: &[(&str, i64)]) {
    for (location, on_hand) in stock {
        assert_eq!(super::put_stock(&t.store, "TEE", location, *on_hand).await.status, 201);
    }
    let put = call(
        &t.store,
        Method::PUT,
        "/v1/channels/web",
        Some(json!({"locations": ["paris", "berlin"], "safetyStock": 2})),
    )
    .await;
    assert_eq!(put.status, 201, "{}", put.body);
}

async fn reserve_through(
    t: &TestTable,
    order: &str,
    lines: serde_json::Value,
    channel: Option<&str>,
) -> super::Reply {
    let mut body = json!({"orderId": order, "lines": lines});
    if let Some(channel) = channel {
        body["channelId"] = json!(channel);
    }
    call(&t.store, Method::POST, "/v1/reservations", Some(body)).await
}

#[tokio::test]
async fn a_channel_resolves_in_its_order_and_leaves_its_safety_stock_which_others_may_still_buy() {
    let t = TestTable::new().await;
    // paris has exactly the safety stock, berlin more, madrid is not the channel's.
    web_channel(&t, &[("paris", 2), ("berlin", 5), ("madrid", 50)]).await;
    let held = reserve_through(&t, "o-1", json!([{"sku": "TEE", "quantity": 3}]), Some("web")).await;
    assert_eq!(held.status, 201, "{}", held.body);
    assert_eq!(
        held.body["lines"],
        json!([{"sku": "TEE", "locationId": "berlin", "quantity": 3}]),
        "paris gives nothing to the channel"
    );
    assert_eq!(held.body["channelId"], "web");
    // berlin now has 2 available: its safety stock. The channel has nothing left anywhere...
    let short = reserve_through(&t, "o-2", json!([{"sku": "TEE", "quantity": 1}]), Some("web")).await;
    assert_eq!(
        (short.status, short.body["error"]["code"].as_str()),
        (409, Some("INSUFFICIENT_STOCK")),
        "{}",
        short.body
    );
    let named = reserve_through(
        &t,
        "o-3",
        json!([{"sku": "TEE", "locationId": "paris", "quantity": 1}]),
        Some("web"),
    )
    .await;
    assert_eq!(named.status, 409);
    assert_eq!(
        named.body["error"]["details"]["lines"][0]["available"].as_i64(),
        Some(0),
        "max(0, available - safetyStock)"
    );
    // ...but a reserve without the channel still sells those units.
    let store_sale =
        reserve_through(&t, "o-4", json!([{"sku": "TEE", "locationId": "paris", "quantity": 2}]), None).await;
    assert_eq!(store_sale.status, 201, "{}", store_sale.body);
    assert!(store_sale.body.get("channelId").is_none());
    // A line outside the channel is refused; an unknown channel is 404.
    let outside = reserve_through(
        &t,
        "o-5",
        json!([{"sku": "TEE", "locationId": "madrid", "quantity": 1}]),
        Some("web"),
    )
    .await;
    assert_eq!(
        (outside.status, outside.body["error"]["details"]["field"].as_str()),
        (400, Some("lines")),
        "{}",
        outside.body
    );
    let listed = reserve_through(
        &t,
        "o-6",
        json!([{"sku": "TEE", "locations": ["berlin", "madrid"], "quantity": 1}]),
        Some("web"),
    )
    .await;
    assert_eq!(listed.status, 400);
    let unknown = reserve_through(&t, "o-7", json!([{"sku": "TEE", "quantity": 1}]), Some("nowhere")).await;
    assert_eq!(unknown.status, 404);
    // A changed cart keeps the channel: growing the hold past berlin's safety stock is refused.
    let grow = call(
        &t.store,
        Method::PUT,
        "/v1/orders/o-1/reservation",
        Some(json!({"lines": [{"sku": "TEE", "quantity": 4}]})),
    )
    .await;
    assert_eq!(grow.status, 409, "{}", grow.body);
    let shrink = call(
        &t.store,
        Method::PUT,
        "/v1/orders/o-1/reservation",
        Some(json!({"lines": [{"sku": "TEE", "quantity": 2}]})),
    )
    .await;
    assert_eq!((shrink.status, shrink.body["channelId"].as_str()), (200, Some("web")), "{}", shrink.body);
    let berlin = call(&t.store, Method::GET, "/v1/stock/TEE/berlin", None).await;
    assert_eq!(berlin.body["available"].as_i64(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_two_concurrent_reserves_through_a_channel_never_take_its_safety_stock() {
    let t = TestTable::new().await;
    web_channel(&t, &[("paris", 20)]).await;
    let buyers = (0..32).map(|i| {
        let t = &t;
        async move {
            // The location named: no read resolves it, only the write's condition can refuse it.
            reserve_through(
                t,
                &format!("rush-{i}"),
                json!([{"sku": "TEE", "locationId": "paris", "quantity": 1}]),
                Some("web"),
            )
            .await
            .status
        }
    });
    let statuses = futures::future::join_all(buyers).await;
    let sold = statuses.iter().filter(|s| **s == 201).count();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    let paris = call(&t.store, Method::GET, "/v1/stock/TEE/paris", None).await;
    assert_eq!(paris.body["available"].as_i64(), Some(2), "the safety stock is left: {}", paris.body);
    assert_eq!(sold, 18, "every unit above the safety stock sold");
}

#[tokio::test]
async fn a_reserve_through_a_channel_the_process_knows_costs_one_request() {
    let t = TestTable::new().await;
    web_channel(&t, &[("paris", 10)]).await;
    let line = json!([{"sku": "TEE", "locationId": "paris", "quantity": 1}]);
    // The first reads the channel; the next ones, within a few seconds, go to the stock item blind.
    assert_eq!(reserve_through(&t, "c-1", line.clone(), Some("web")).await.status, 201);
    let before = t.store.stats().requests();
    assert_eq!(reserve_through(&t, "c-2", line, Some("web")).await.status, 201);
    assert_eq!(t.store.stats().requests() - before, 1, "the transaction alone");
}
