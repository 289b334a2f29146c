//! Kits over HTTP: defined by the rules of docs/api.md, reserved as their components in the one
//! all-or-nothing transaction (checked with the parts bought alone against their sum), confirmed,
//! released and changed on the components, and counted in whole kits by availability.

use std::time::Duration;

use http::Method;
use integration_tests::{sweeper, TestTable};
use inventory::expiry::{ExpirySweep, RUN_TIMEOUT};
use serde_json::{json, Value};

use super::{assert_error, call, put_stock, reserve};

/// GIFT = 1 MUG + 2 TEA.
async fn gift(t: &TestTable) -> super::Reply {
    let body = json!({"components": [{"sku": "TEA", "quantity": 2}, {"sku": "MUG", "quantity": 1}]});
    call(&t.store, Method::PUT, "/v1/kits/GIFT", Some(body)).await
}

/// `available` and `reserved` of one stock item.
async fn item(t: &TestTable, sku: &str, location: &str) -> (i64, i64, i64) {
    let read = call(&t.store, Method::GET, &format!("/v1/stock/{sku}/{location}"), None).await;
    assert_eq!(read.status, 200, "{}", read.body);
    let n = |k: &str| read.body[k].as_i64().unwrap();
    (n("onHand"), n("reserved"), n("available"))
}

fn line(sku: &str, location: &str, quantity: i64) -> Value {
    json!({"sku": sku, "locationId": location, "quantity": quantity})
}

#[tokio::test]
async fn a_kit_is_defined_by_the_rules_read_back_and_never_both_a_kit_and_stocked() {
    let t = TestTable::new().await;
    assert_eq!(put_stock(&t.store, "MUG", "w1", 5).await.status, 201);
    let created = gift(&t).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["components"],
        json!([{"sku": "MUG", "quantity": 1}, {"sku": "TEA", "quantity": 2}])
    );
    assert_eq!(created.body["version"], 1);
    assert_eq!(call(&t.store, Method::GET, "/v1/kits/GIFT", None).await.body, created.body);
    assert_eq!(gift(&t).await.status, 200, "the same components again");
    assert_eq!(t.event_details("KitUpdated").await.len(), 1, "one event per change");

    // A kit has no stock items, and gets none.
    assert_error(&call(&t.store, Method::GET, "/v1/stock/GIFT", None).await, 404, "NOT_FOUND");
    let stocked = put_stock(&t.store, "GIFT", "w1", 3).await;
    assert_error(&stocked, 409, "INVALID_STATE");
    assert_eq!(stocked.body["error"]["details"]["status"], "KIT");
    let batch = json!({"items": [{"sku": "GIFT", "locationId": "w1", "onHand": 3}]});
    let batch = call(&t.store, Method::POST, "/v1/stock/batch", Some(batch)).await;
    assert_eq!(batch.body["results"][0]["status"], 409, "{}", batch.body);
    // A stocked sku, or a component (TEA has no stock yet), cannot become a kit.
    for sku in ["MUG", "TEA"] {
        let body = json!({"components": [{"sku": "SPOON", "quantity": 1}]});
        let refused = call(&t.store, Method::PUT, &format!("/v1/kits/{sku}"), Some(body)).await;
        assert_error(&refused, 409, "INVALID_STATE");
        assert_eq!(refused.body["error"]["details"]["status"], "STOCKED", "{sku}");
    }
    // A kit of a kit, of itself, of one sku twice, of nothing: 400.
    for components in [
        json!([{"sku": "GIFT", "quantity": 1}]),
        json!([{"sku": "BIG", "quantity": 1}]),
        json!([{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}]),
        json!([]),
        json!([{"sku": "MUG", "quantity": 0}]),
        json!([{"sku": "MUG", "quantity": 1001}]),
    ] {
        let refused =
            call(&t.store, Method::PUT, "/v1/kits/BIG", Some(json!({ "components": components }))).await;
        assert_error(&refused, 400, "VALIDATION_ERROR");
    }
    assert_error(&call(&t.store, Method::GET, "/v1/kits/BIG", None).await, 404, "NOT_FOUND");
    let stale = call(
        &t.store,
        Method::PUT,
        "/v1/kits/GIFT",
        Some(json!({"components": [{"sku": "MUG", "quantity": 2}], "expectedVersion": 0})),
    )
    .await;
    assert_error(&stale, 409, "VERSION_CONFLICT");
}

#[tokio::test]
async fn a_kit_and_a_part_bought_alone_are_checked_against_their_sum() {
    let t = TestTable::new().await;
    put_stock(&t.store, "MUG", "w1", 5).await;
    put_stock(&t.store, "TEA", "w1", 100).await;
    assert_eq!(gift(&t).await.status, 201);
    // 3 gifts (3 mugs) and 3 mugs: each fits alone, together 6 > 5. Nothing is held.
    let refused = reserve(&t.store, "o-1", json!([line("GIFT", "w1", 3), line("MUG", "w1", 3)])).await;
    assert_error(&refused, 409, "INSUFFICIENT_STOCK");
    assert_eq!(item(&t, "MUG", "w1").await, (5, 0, 5));
    assert_eq!(item(&t, "TEA", "w1").await, (100, 0, 100));
    // The same without a location: resolved on a read, the same sum.
    let anywhere = json!([{"sku": "GIFT", "quantity": 3}, {"sku": "MUG", "quantity": 3}]);
    assert_error(&reserve(&t.store, "o-2", anywhere).await, 409, "INSUFFICIENT_STOCK");
    // 3 gifts and 2 mugs fit exactly.
    let held = reserve(&t.store, "o-3", json!([line("GIFT", "w1", 3), line("MUG", "w1", 2)])).await;
    assert_eq!(held.status, 201, "{}", held.body);
    assert_eq!(
        held.body["lines"],
        json!([
            {"sku": "GIFT", "locationId": "w1", "quantity": 3,
             "components": [{"sku": "MUG", "quantity": 3}, {"sku": "TEA", "quantity": 6}]},
            {"sku": "MUG", "locationId": "w1", "quantity": 2}
        ])
    );
    assert_eq!(item(&t, "MUG", "w1").await, (5, 5, 0));
    assert_eq!(item(&t, "TEA", "w1").await, (100, 6, 94));
    // One hold item per stock item, with the sum.
    let holds = call(&t.store, Method::GET, "/v1/stock/MUG/w1/holds", None).await;
    assert_eq!(holds.body["items"][0]["quantity"], 5, "{}", holds.body);
    // A short kit line names the kit, with how many whole kits the location makes.
    let short = reserve(&t.store, "o-4", json!([line("GIFT", "w1", 1)])).await;
    assert_error(&short, 409, "INSUFFICIENT_STOCK");
    assert_eq!(
        short.body["error"]["details"]["lines"],
        json!([{"sku": "GIFT", "locationId": "w1", "requested": 1, "available": 0}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_buyers_of_a_kit_sell_exactly_what_its_scarcest_component_makes() {
    let t = TestTable::new().await;
    put_stock(&t.store, "MUG", "w1", 10).await;
    put_stock(&t.store, "TEA", "w1", 1_000).await;
    assert_eq!(gift(&t).await.status, 201);
    let buyers = (0..64).map(|i| {
        let t = &t;
        async move { reserve(&t.store, &format!("rush-{i}"), json!([line("GIFT", "w1", 1)])).await.status }
    });
    let statuses = futures::future::join_all(buyers).await;
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 10, "10 mugs make 10 gifts");
    assert_eq!(item(&t, "MUG", "w1").await, (10, 10, 0));
    assert_eq!(item(&t, "TEA", "w1").await, (1_000, 20, 980), "2 teas per gift sold, no more");
}

#[tokio::test]
async fn confirm_release_and_a_changed_cart_move_exactly_the_components_and_a_redefined_kit_changes_nothing_held(
) {
    let t = TestTable::new().await;
    put_stock(&t.store, "MUG", "w1", 10).await;
    put_stock(&t.store, "TEA", "w1", 100).await;
    assert_eq!(gift(&t).await.status, 201);
    let held = reserve(&t.store, "o-1", json!([line("GIFT", "w1", 2), line("MUG", "w1", 1)])).await;
    assert_eq!(held.status, 201, "{}", held.body);
    // The kit changes after the reserve: the reservation confirms what it held.
    let changed = call(
        &t.store,
        Method::PUT,
        "/v1/kits/GIFT",
        Some(json!({"components": [{"sku": "MUG", "quantity": 1}, {"sku": "TEA", "quantity": 5}], "expectedVersion": 1})),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    let id = held.body["reservationId"].as_str().unwrap();
    let confirmed = call(&t.store, Method::POST, &format!("/v1/reservations/{id}/confirm"), None).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(item(&t, "MUG", "w1").await, (7, 0, 7));
    assert_eq!(item(&t, "TEA", "w1").await, (96, 0, 96), "4 teas as held, not 10 as the kit is now");
    let sold = call(&t.store, Method::GET, "/v1/stock/TEA/w1/movements", None).await;
    let kinds: Vec<_> = sold.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["kind"].clone(), m["delta"].clone()))
        .collect();
    assert!(kinds.contains(&(json!("SOLD"), json!(-4))), "{kinds:?}");

    // Under the new definition (5 teas a gift): a cart of 1 gift grows to 3, then is released.
    let order = "/v1/orders/o-2/reservation";
    let put = |n: i64| json!({"lines": [line("GIFT", "w1", n)]});
    assert_eq!(call(&t.store, Method::PUT, order, Some(put(1))).await.status, 201);
    assert_eq!(item(&t, "TEA", "w1").await, (96, 5, 91));
    let grown = call(&t.store, Method::PUT, order, Some(put(3))).await;
    assert_eq!(grown.status, 200, "{}", grown.body);
    assert_eq!(
        grown.body["lines"][0]["components"],
        json!([{"sku": "MUG", "quantity": 3}, {"sku": "TEA", "quantity": 15}])
    );
    assert_eq!((item(&t, "MUG", "w1").await.1, item(&t, "TEA", "w1").await.1), (3, 15));
    let id = grown.body["reservationId"].as_str().unwrap();
    assert_eq!(
        call(&t.store, Method::POST, &format!("/v1/reservations/{id}/release"), None).await.status,
        200
    );
    assert_eq!(item(&t, "MUG", "w1").await, (7, 0, 7));
    assert_eq!(item(&t, "TEA", "w1").await, (96, 0, 96));

    // A kit's hold of one second, swept: its components come back, its holds go.
    let short = json!({"orderId": "o-3", "lines": [line("GIFT", "w1", 1)], "ttlSeconds": 1});
    assert_eq!(call(&t.store, Method::POST, "/v1/reservations", Some(short)).await.status, 201);
    assert_eq!((item(&t, "MUG", "w1").await.1, item(&t, "TEA", "w1").await.1), (1, 5));
    let swept = ExpirySweep::default().run(&sweeper(&t, Duration::from_secs(2)), RUN_TIMEOUT).await;
    assert_eq!((swept.expired, swept.failed), (1, 0), "{swept:?}");
    assert_eq!(item(&t, "MUG", "w1").await, (7, 0, 7));
    assert_eq!(item(&t, "TEA", "w1").await, (96, 0, 96));
    let holds = call(&t.store, Method::GET, "/v1/stock/TEA/w1/holds", None).await;
    assert_eq!(holds.body["items"], json!([]), "{}", holds.body);
}

#[tokio::test]
async fn a_kit_goes_where_whole_kits_are_and_availability_counts_whole_kits() {
    let t = TestTable::new().await;
    // w1 makes 1 gift (1 mug), w2 makes 2 (5 teas), w3 has no tea.
    for (sku, location, on_hand) in
        [("MUG", "w1", 1), ("TEA", "w1", 50), ("MUG", "w2", 9), ("TEA", "w2", 5), ("MUG", "w3", 9)]
    {
        assert_eq!(put_stock(&t.store, sku, location, on_hand).await.status, 201);
    }
    assert_eq!(gift(&t).await.status, 201);
    let counted = call(
        &t.store,
        Method::POST,
        "/v1/availability",
        Some(json!({"skus": ["GIFT", "MUG", "NONE"], "byLocation": true})),
    )
    .await;
    assert_eq!(counted.status, 200, "{}", counted.body);
    assert_eq!(
        counted.body["items"][0],
        json!({"sku": "GIFT", "available": 3, "locations": [{"locationId": "w1", "available": 1}, {"locationId": "w2", "available": 2}]})
    );
    assert_eq!(counted.body["items"][1]["available"], 19);
    assert_eq!(counted.body["items"][2]["available"], 0);
    // Without a location: the one making most whole kits.
    let held = reserve(&t.store, "o-1", json!([{"sku": "GIFT", "quantity": 2}])).await;
    assert_eq!(held.status, 201, "{}", held.body);
    assert_eq!(held.body["lines"][0]["locationId"], "w2");
    // Split, in whole kits: w2 is empty now; 1 from w1, and no more anywhere.
    let short = reserve(&t.store, "o-2", json!([{"sku": "GIFT", "quantity": 2, "split": true}])).await;
    assert_error(&short, 409, "INSUFFICIENT_STOCK");
    assert_eq!(short.body["error"]["details"]["lines"][0]["available"], 1);
    // Through a channel of w1 keeping 1 unit back: 0 mugs to sell there, so 0 gifts.
    let channel = json!({"locations": ["w1"], "safetyStock": 1});
    assert_eq!(call(&t.store, Method::PUT, "/v1/channels/web", Some(channel)).await.status, 201);
    let through = json!({"skus": ["GIFT", "TEA"], "channelId": "web"});
    let through = call(&t.store, Method::POST, "/v1/availability", Some(through)).await;
    assert_eq!(
        through.body["items"],
        json!([{"sku": "GIFT", "available": 0}, {"sku": "TEA", "available": 49}])
    );
    // A checkout through it: its one mug in w1 is the channel's safety stock.
    let body = json!({"orderId": "web-1", "channelId": "web", "lines": [{"sku": "GIFT", "quantity": 1}]});
    let refused = call(&t.store, Method::POST, "/v1/reservations", Some(body)).await;
    assert_error(&refused, 409, "INSUFFICIENT_STOCK");
    assert_eq!(refused.body["error"]["details"]["lines"][0]["available"], 0);
    assert_eq!(
        reserve(&t.store, "till", json!([line("GIFT", "w1", 1)])).await.status,
        201,
        "the till may sell it"
    );
}

#[tokio::test]
async fn a_reserve_of_a_kit_costs_one_request_once_the_process_knows_it_and_without_kits_still_one() {
    let t = TestTable::new().await;
    put_stock(&t.store, "MUG", "w1", 10).await;
    put_stock(&t.store, "TEA", "w1", 100).await;
    assert_eq!(gift(&t).await.status, 201);
    // A process of its own (a fresh Lambda): its first reserve of anything goes to the stock
    // items blind (their layouts unknown to it), one transaction.
    let process = inventory::Store::new(t.store.client().clone(), t.store.table());
    let hold = |order: &str, sku: &str| {
        let lines = vec![inventory::domain::Line::new(sku.into(), "w1".into(), 1)];
        let (process, order) = (&process, order.to_owned());
        async move { process.reserve(&order, lines, 900, &Default::default()).await.unwrap() }
    };
    let requests = || process.stats().requests();
    hold("mug", "MUG").await;
    assert_eq!(requests(), 1, "a cold reserve without kits: the transaction alone");
    hold("tea", "TEA").await;
    let before = requests();
    hold("plain", "MUG").await;
    assert_eq!(requests() - before, 1, "a reserve without kits: the transaction alone");
    // The kit, met for the first time: the transaction finds GIFT's stock item missing, the kit
    // is read, and the expanded lines are written.
    let before = requests();
    let cold = hold("cold", "GIFT").await;
    assert_eq!(requests() - before, 3, "the failed transaction, the kit, the transaction");
    assert_eq!(cold.reservation.lines[0].components.len(), 2);
    let before = requests();
    hold("warm", "GIFT").await;
    assert_eq!(requests() - before, 1, "a kit this process knows: the transaction alone");
    // 2 mugs and a tea alone, 2 gifts of a mug and 2 teas each.
    assert_eq!(item(&t, "MUG", "w1").await, (10, 4, 6));
    assert_eq!(item(&t, "TEA", "w1").await, (100, 5, 95));

    // Another fresh process meets two kits in one cart: it learns both.
    let mini = json!({"components": [{"sku": "MUG", "quantity": 1}]});
    assert_eq!(call(&t.store, Method::PUT, "/v1/kits/MINI", Some(mini)).await.status, 201);
    let fresh = inventory::Store::new(t.store.client().clone(), t.store.table());
    let lines = ["GIFT", "MINI"].map(|sku| inventory::domain::Line::new(sku.into(), "w1".into(), 1)).to_vec();
    let both = fresh.reserve("both", lines, 900, &Default::default()).await.unwrap();
    assert!(both.reservation.lines.iter().all(|l| l.is_kit()), "{:?}", both.reservation.lines);
    assert_eq!(item(&t, "MUG", "w1").await, (10, 6, 4));
}

#[tokio::test]
async fn through_a_channel_each_shard_of_a_component_keeps_the_safety_stock() {
    let t = TestTable::new().await;
    // 10 mugs over 2 shards (5 each); a channel keeping 3 at each: 2 + 2 to sell.
    let mugs = json!({"onHand": 10, "shards": 2});
    assert_eq!(call(&t.store, Method::PUT, "/v1/stock/MUG/w1", Some(mugs)).await.status, 201);
    put_stock(&t.store, "TEA", "w1", 100).await;
    assert_eq!(gift(&t).await.status, 201);
    let channel = json!({"locations": ["w1"], "safetyStock": 3});
    assert_eq!(call(&t.store, Method::PUT, "/v1/channels/web", Some(channel)).await.status, 201);
    let counted = json!({"skus": ["GIFT", "MUG"], "channelId": "web"});
    let counted = call(&t.store, Method::POST, "/v1/availability", Some(counted)).await;
    assert_eq!(
        counted.body["items"],
        json!([{"sku": "GIFT", "available": 4}, {"sku": "MUG", "available": 4}])
    );
    // Five gifts are one too many: refused as such (not retried until 503).
    let through =
        |order: &str, n: i64| json!({"orderId": order, "channelId": "web", "lines": [line("GIFT", "w1", n)]});
    let refused = call(&t.store, Method::POST, "/v1/reservations", Some(through("web-1", 5))).await;
    assert_error(&refused, 409, "INSUFFICIENT_STOCK");
    assert_eq!(refused.body["error"]["details"]["lines"][0]["available"], 4);
    let anywhere = json!({"orderId": "web-2", "channelId": "web", "lines": [{"sku": "GIFT", "quantity": 5}]});
    assert_error(
        &call(&t.store, Method::POST, "/v1/reservations", Some(anywhere)).await,
        409,
        "INSUFFICIENT_STOCK",
    );
    let held = call(&t.store, Method::POST, "/v1/reservations", Some(through("web-3", 4))).await;
    assert_eq!(held.status, 201, "{}", held.body);
    assert_eq!(item(&t, "MUG", "w1").await, (10, 4, 6), "3 left on each shard");
}
