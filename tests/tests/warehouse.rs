//! The warehouse side (docs/api.md, "Stock"): the on-hand ledger under concurrent writers, batches
//! (with and without an Idempotency-Key), and the lists of movements, holds and a location's items,
//! against DynamoDB Local through the router the Lambdas run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use http::Method;
use integration_tests::invariants::Snapshot;
use integration_tests::{hold, set_stock, stock_record, TestTable};
use inventory::domain::{Line, MovementKind, StockChange};
use inventory::http::{router, Operation};
use inventory::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

/// One request through the full router: status and JSON body.
async fn call(
    store: &Store,
    method: Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = request.body(Body::from(body)).expect("request");
    let response = integration_tests::runtime::app(store).oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Versions written, per stock item.
type Versions = BTreeMap<(String, String), Vec<u64>>;

fn assert_no_violations(snapshot: &Snapshot) {
    let violations = snapshot.violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_leave_every_ledger_replaying_to_its_on_hand_with_no_gap_or_duplicate() {
    let t = TestTable::new().await;
    let items = [("L-A", "w1"), ("L-A", "w2"), ("L-B", "w1"), ("L-B", "w2")];
    for (sku, location) in items {
        set_stock(&t.store, sku, location, 50).await;
    }
    // What the writers were told: changes of onHand acknowledged, per item.
    let acknowledged: Arc<Mutex<Versions>> = Arc::default();
    // Acknowledged adjustments (their delta is never 0: each must have its movement).
    let adjusted: Arc<Mutex<Versions>> = Arc::default();
    let sold: Arc<Mutex<usize>> = Arc::default();
    let clients = (0..16u64).map(|c| {
        let (store, acknowledged, adjusted, sold) =
            (t.store.clone(), acknowledged.clone(), adjusted.clone(), sold.clone());
        tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(c + 1);
            for n in 0..12 {
                let (sku, location) = items[rng.usize(..items.len())];
                let key = (sku.to_owned(), location.to_owned());
                match rng.u32(0..4) {
                    0 => {
                        let change = StockChange::Set { on_hand: rng.i64(20..=80) };
                        if let Ok(w) = store.write_stock(sku, location, change, None, Some("count"), &Default::default()).await {
                            acknowledged.lock().unwrap().entry(key).or_default().push(w.item.version);
                        }
                    }
                    1 => {
                        let change = StockChange::Adjust { delta: [-3, -1, 2, 5][rng.usize(..4)] };
                        if let Ok(w) = store.write_stock(sku, location, change, None, None, &Default::default()).await {
                            adjusted.lock().unwrap().entry(key).or_default().push(w.item.version);
                        }
                    }
                    2 => {
                        let body = json!({"items": [
                            {"sku": "L-A", "locationId": location, "delta": 1, "reference": format!("c{c}-{n}")},
                            {"sku": "L-B", "locationId": location, "delta": 2},
                        ]});
                        let (status, answer) = call(&store, Method::POST, "/v1/stock/batch", Some(body), None).await;
                        assert_eq!(status, 200, "{answer}");
                        for result in answer["results"].as_array().expect("results") {
                            if result["status"] == 200 {
                                let key = (
                                    result["sku"].as_str().unwrap().to_owned(),
                                    result["locationId"].as_str().unwrap().to_owned(),
                                );
                                let version = result["item"]["version"].as_u64().unwrap();
                                adjusted.lock().unwrap().entry(key).or_default().push(version);
                            }
                        }
                    }
                    _ => {
                        let order = format!("c{c}-{n}");
                        let line = Line::new(sku.to_owned(), location.to_owned(), 1);
                        let Ok(r) = store.reserve(&order, vec![line], 600, &Default::default()).await else { continue };
                        if store.confirm(&r.reservation.reservation_id, &Default::default()).await.is_ok() {
                            *sold.lock().unwrap() += 1;
                        }
                    }
                }
            }
        })
    });
    for client in futures::future::join_all(clients).await {
        client.expect("client");
    }
    let snapshot = Snapshot::take(&t).await;
    // Among the invariants: each item's ledger replays from its first movement to its onHand.
    assert_no_violations(&snapshot);
    let acknowledged = acknowledged.lock().unwrap();
    let mut movements = 0;
    for ((sku, location), ledger) in &snapshot.movements {
        let versions: BTreeSet<u64> = ledger.iter().map(|m| m.version).collect();
        assert_eq!(versions.len(), ledger.len(), "{sku}/{location}: a version twice");
        // Every acknowledged adjustment is in the ledger, at its version, as an ADJUST; every
        // acknowledged PUT is a SET there unless it left onHand as it was.
        let key = (sku.clone(), location.clone());
        for version in adjusted.lock().unwrap().get(&key).into_iter().flatten() {
            let m = ledger.iter().find(|m| m.version == *version);
            assert!(
                m.is_some_and(|m| m.kind == MovementKind::Adjust && m.delta != 0),
                "{sku}/{location} v{version}"
            );
        }
        for version in acknowledged.get(&key).into_iter().flatten() {
            let m = ledger.iter().find(|m| m.version == *version);
            assert!(m.is_none_or(|m| m.kind == MovementKind::Set), "{sku}/{location} v{version}");
        }
        movements += ledger.len();
    }
    let sold_movements =
        snapshot.movements.values().flatten().filter(|m| m.kind == MovementKind::Sold).count();
    assert_eq!(sold_movements, *sold.lock().unwrap(), "one SOLD movement per confirmed line");
    assert!(snapshot
        .movements
        .values()
        .flatten()
        .filter(|m| m.kind == MovementKind::Sold)
        .all(|m| m.delta == -1 && m.reference.as_deref().is_some_and(|r| uuid::Uuid::parse_str(r).is_ok())));
    eprintln!("ledger: {movements} movements over {} items, {sold_movements} sold", snapshot.movements.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_100_applies_the_good_items_once_and_reports_the_bad_ones_in_their_slots() {
    let t = TestTable::new().await;
    for i in 0..60 {
        set_stock(&t.store, &format!("B{i:03}"), "w1", 10).await;
    }
    // 0-59 exist (version 1): every 10th carries a wrong expectedVersion; 60-89 are new PUTs;
    // 90-99 adjust items that do not exist.
    let items: Vec<Value> = (0..100)
        .map(|i| {
            let sku = format!("B{i:03}");
            match i {
                _ if i < 60 && i % 10 == 0 => {
                    json!({"sku": sku, "locationId": "w1", "delta": 1, "expectedVersion": 7})
                }
                _ if i < 60 => json!({"sku": sku, "locationId": "w1", "delta": -2, "reason": "damaged"}),
                _ if i < 90 => json!({"sku": sku, "locationId": "w1", "onHand": 5}),
                _ => json!({"sku": sku, "locationId": "w1", "delta": 3}),
            }
        })
        .collect();
    let body = json!({ "items": items });
    let (status, first) =
        call(&t.store, Method::POST, "/v1/stock/batch", Some(body.clone()), Some("batch-1")).await;
    assert_eq!(status, 200, "{first}");
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.len(), 100);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["sku"], format!("B{i:03}"), "request order");
        let (want_status, want_code) = match i {
            _ if i < 60 && i % 10 == 0 => (409, Some("VERSION_CONFLICT")),
            _ if i < 60 => (200, None),
            _ if i < 90 => (201, None),
            _ => (404, Some("NOT_FOUND")),
        };
        assert_eq!(result["status"], want_status, "{i}: {result}");
        assert_eq!(result["error"]["code"].as_str(), want_code, "{i}: {result}");
        assert_eq!(result.get("item").is_some(), want_code.is_none(), "{i}: {result}");
    }
    let after_first = Snapshot::take(&t).await;
    assert_no_violations(&after_first);
    for i in 0..100 {
        let got =
            after_first.stock.get(&(format!("B{i:03}"), "w1".to_owned())).map(|s| (s.on_hand, s.version));
        let want = match i {
            _ if i < 60 && i % 10 == 0 => Some((10, 1)),
            _ if i < 60 => Some((8, 2)),
            _ if i < 90 => Some((5, 1)),
            _ => None,
        };
        assert_eq!(got, want, "B{i:03}");
    }
    let adjusted = after_first.of_type("StockAdjusted").count();

    // The same batch with the same key: the kept answer, and nothing written.
    let (status, again) =
        call(&t.store, Method::POST, "/v1/stock/batch", Some(body.clone()), Some("batch-1")).await;
    assert_eq!((status, &again), (200, &first));
    let after_replay = Snapshot::take(&t).await;
    assert_eq!(after_replay.stock, after_first.stock);
    assert_eq!(after_replay.of_type("StockAdjusted").count(), adjusted);
    // A run cut short keeps no answer for the batch, only its items': the same batch again
    // answers each applied item from its part (the expectedVersion ones too) and applies nothing.
    let whole = [("pk", "IDEM#batch-1"), ("sk", "CALLER#local")]
        .map(|(k, v)| (k.to_owned(), aws_sdk_dynamodb::types::AttributeValue::S(v.to_owned())));
    t.store
        .client()
        .delete_item()
        .table_name(t.store.table())
        .set_key(Some(whole.into()))
        .send()
        .await
        .unwrap();
    let (status, rerun) =
        call(&t.store, Method::POST, "/v1/stock/batch", Some(body.clone()), Some("batch-1")).await;
    assert_eq!((status, &rerun), (200, &first));
    assert_eq!(Snapshot::take(&t).await.stock, after_first.stock);
    // Without a key the same batch runs again: the adjustments apply a second time.
    let (_, unkeyed) = call(&t.store, Method::POST, "/v1/stock/batch", Some(body), None).await;
    assert_eq!(unkeyed["results"][1]["item"]["onHand"], 6);

    // One bad item refuses the whole batch, and nothing is written.
    for bad in [
        json!({"items": [{"sku": "B001", "locationId": "w1", "delta": 1}, {"sku": "B001", "locationId": "w1", "delta": 1}]}),
        json!({"items": [{"sku": "B001", "locationId": "w1", "delta": 1}, {"sku": "B002", "locationId": "w1"}]}),
        json!({"items": [{"sku": "B001", "locationId": "w1", "delta": 1, "onHand": 3}]}),
        json!({"items": [{"sku": "B001", "locationId": "w1", "delta": 0}]}),
        json!({"items": []}),
        json!({"items": (0..101).map(|i| json!({"sku": format!("X{i}"), "locationId": "w1", "onHand": 1})).collect::<Vec<_>>()}),
    ] {
        let before = Snapshot::take(&t).await.stock;
        let (status, answer) = call(&t.store, Method::POST, "/v1/stock/batch", Some(bad.clone()), None).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("VALIDATION_ERROR")), "{bad}");
        assert_eq!(Snapshot::take(&t).await.stock, before, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_duplicates_of_a_keyed_batch_apply_each_item_once() {
    let t = TestTable::new().await;
    set_stock(&t.store, "D1", "w1", 10).await;
    set_stock(&t.store, "D2", "w1", 10).await;
    set_stock(&t.store, "D3", "w1", 10).await;
    let body = json!({"items": [
        {"sku": "D1", "locationId": "w1", "delta": 1},
        {"sku": "D2", "locationId": "w1", "delta": -1},
        {"sku": "D3", "locationId": "w1", "onHand": 4, "expectedVersion": 1},
    ]});
    let calls =
        (0..20).map(|_| call(&t.store, Method::POST, "/v1/stock/batch", Some(body.clone()), Some("dup")));
    let answers = futures::future::join_all(calls).await;
    let (_, first) = answers.iter().find(|(status, _)| *status == 200).expect("one answered");
    assert_eq!(first["results"][2]["status"], 200, "the expectedVersion item applied: {first}");
    for (status, answer) in &answers {
        assert_eq!((status, answer), (&200, first), "every duplicate gets the one answer");
    }
    assert_eq!(t.store.get_stock("D1", "w1").await.unwrap().on_hand, 11);
    assert_eq!(t.store.get_stock("D2", "w1").await.unwrap().on_hand, 9);
    assert_eq!(t.store.get_stock("D3", "w1").await.unwrap().version, 2);
    assert_no_violations(&Snapshot::take(&t).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_a_location_of_1050_items_gives_each_once_in_sku_order() {
    let t = TestTable::new().await;
    let now = t.store.now();
    let items: Vec<_> =
        (0..1050).map(|i| stock_record(&format!("P{:05}", (i * 7919) % 1050), "big", 1, now)).collect();
    t.batch_put(items, 4).await;
    set_stock(&t.store, "P00001", "elsewhere", 3).await;
    for (limit, want_pages) in [(100, 11), (37, 29), (50, 21)] {
        let mut skus = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/locations/big/stock?limit={limit}&cursor={c}"),
                None => format!("/v1/locations/big/stock?limit={limit}"),
            };
            let (status, page) = call(&t.store, Method::GET, &path, None, None).await;
            assert_eq!(status, 200, "{page}");
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= limit);
            assert!(items.iter().all(|i| i["locationId"] == "big"));
            skus.extend(items.iter().map(|i| i["sku"].as_str().unwrap().to_owned()));
            pages += 1;
            match page["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
            assert!(pages < 100, "paging ends");
        }
        let expected: Vec<String> = (0..1050).map(|i| format!("P{i:05}")).collect();
        assert_eq!(skus, expected, "limit {limit}: each once, sorted");
        assert_eq!(pages, want_pages, "limit {limit}: no empty last page");
    }
    let (status, empty) = call(&t.store, Method::GET, "/v1/locations/nowhere/stock", None, None).await;
    assert_eq!((status, empty), (200, json!({"items": [], "nextCursor": null})));
    let (status, _) = call(&t.store, Method::GET, "/v1/locations/big/stock?limit=0", None, None).await;
    assert_eq!(status, 400);
    let (status, _) = call(&t.store, Method::GET, "/v1/locations/big/stock?page=2", None, None).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn movements_and_holds_are_listed_page_by_page() {
    let t = TestTable::new().await;
    let (status, _) = call(
        &t.store,
        Method::PUT,
        "/v1/stock/M/w1",
        Some(json!({"onHand": 10, "reason": "count", "reference": "PO-1"})),
        None,
    )
    .await;
    assert_eq!(status, 201);
    for delta in [5, -2, 4] {
        let body = json!({"delta": delta, "reference": format!("d{delta}")});
        assert_eq!(call(&t.store, Method::POST, "/v1/stock/M/w1/adjustments", Some(body), None).await.0, 200);
    }
    let holds: Vec<_> = futures::future::join_all((0..5).map(|i| {
        let store = t.store.clone();
        async move { hold(&store, &format!("o{i}"), "M", i + 1, 600).await }
    }))
    .await;
    let confirmed = &holds[0];
    t.function("confirm")
        .confirm(&confirmed.reservation_id, &inventory::store::WriteContext::correlated("corr-sold"))
        .await
        .unwrap();

    let (status, first) = call(&t.store, Method::GET, "/v1/stock/M/w1/movements?limit=3", None, None).await;
    assert_eq!(status, 200, "{first}");
    let kinds: Vec<_> = first["items"].as_array().unwrap().iter().map(|m| m["kind"].clone()).collect();
    assert_eq!(kinds, ["SOLD", "ADJUST", "ADJUST"], "newest first");
    assert_eq!(first["items"][0]["reference"], confirmed.reservation_id.as_str());
    assert_eq!(
        (first["items"][0]["delta"].clone(), first["items"][0]["onHand"].clone()),
        (json!(-1), json!(16))
    );
    let cursor = first["nextCursor"].as_str().expect("more").to_owned();
    let (_, rest) =
        call(&t.store, Method::GET, &format!("/v1/stock/M/w1/movements?cursor={cursor}"), None, None).await;
    let rest = rest["items"].as_array().unwrap().clone();
    assert_eq!(rest.len(), 2);
    assert_eq!(
        rest[1],
        json!({"version": 1, "at": rest[1]["at"], "kind": "SET", "delta": 10, "onHand": 10,
        "reason": "count", "reference": "PO-1", "correlationId": rest[1]["correlationId"]})
    );

    // Holds: the four PENDING ones, oldest first, over pages, summing to reserved.
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => {
                format!("/v1/stock/M/w1/holds?limit=3&cursor={c}")
            }
            None => "/v1/stock/M/w1/holds?limit=3".to_owned(),
        };
        let (status, page) = call(&t.store, Method::GET, &path, None, None).await;
        assert_eq!(status, 200, "{page}");
        listed.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let reserved = t.store.get_stock("M", "w1").await.unwrap().reserved;
    assert_eq!(listed.len(), 4);
    assert_eq!(listed.iter().map(|h| h["quantity"].as_i64().unwrap()).sum::<i64>(), reserved);
    let mut by_age: Vec<_> = holds[1..].iter().collect();
    by_age.sort_by_key(|r| (r.created_at, r.reservation_id.clone()));
    let ids: Vec<_> = listed.iter().map(|h| h["reservationId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, by_age.iter().map(|r| r.reservation_id.clone()).collect::<Vec<_>>(), "oldest first");
    assert!(listed.iter().all(|h| h["expiresAt"].is_string() && h["orderId"].is_string()));

    for path in ["/v1/stock/M/nowhere/movements", "/v1/stock/M/nowhere/holds"] {
        assert_eq!(call(&t.store, Method::GET, path, None, None).await.0, 404, "{path}");
    }
    for path in [
        "/v1/stock/M/w1/movements?cursor=abc",
        "/v1/stock/M/w1/holds?cursor=abc",
        "/v1/stock/M/w1/holds?limit=101",
    ] {
        assert_eq!(call(&t.store, Method::GET, path, None, None).await.0, 400, "{path}");
    }
    assert_no_violations(&Snapshot::take(&t).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_jwt_sub_is_the_actor_of_its_movements() {
    let t = TestTable::new().await;
    set_stock(&t.store, "SNEAKER-42", "berlin", 10).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("events/adjust-stock.json")).unwrap())
            .unwrap();
    // As API Gateway passes a request its JWT authorizer let through.
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": "warehouse-bot-7", "scope": "inventory/stock.write"}, "scopes": null}});
    let request = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event");
    let store = integration_tests::runtime::runtime_over(&t.store).store("adjust-stock").unwrap();
    let response = router(store, &[Operation::AdjustStock]).oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let page = t.store.list_movements("SNEAKER-42", "berlin", 10, None).await.unwrap();
    assert_eq!(page.items[0].actor.as_deref(), Some("warehouse-bot-7"));
    assert_eq!(page.items[0].reason.as_deref(), Some("delivery"));
    assert_eq!(page.items[1].actor, None, "set without a token");
}

/// A batch item on a sharded item is applied as its single route applies it: every shard
/// rewritten (read from their partitions), the units spread evenly.
#[tokio::test]
async fn a_batch_item_on_a_sharded_item_rewrites_every_shard() {
    let t = TestTable::new().await;
    let put = json!({"onHand": 8, "shards": 4});
    assert_eq!(call(&t.store, Method::PUT, "/v1/stock/BS/w1", Some(put), None).await.0, 201);
    let body = json!({"items": [{"sku": "BS", "locationId": "w1", "delta": 4}]});
    let (status, answer) = call(&t.store, Method::POST, "/v1/stock/batch", Some(body), None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["results"][0]["status"], &answer["results"][0]["item"]["onHand"]),
        (&json!(200), &json!(12))
    );
    let snapshot = Snapshot::take(&t).await;
    assert_no_violations(&snapshot);
    let on_hands: Vec<i64> =
        snapshot.shards[&("BS".to_owned(), "w1".to_owned())].values().map(|s| s.on_hand).collect();
    assert_eq!(on_hands, [3, 3, 3, 3]);
}
