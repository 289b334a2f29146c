//! Section 2's storefront rows: a channel's put, the availability of 100 skus without and with
//! the channel, a reserve through it; and the same reads sent straight to DynamoDB Local by the
//! bench (no service), so the report can say what the emulator itself costs for them.

use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use futures::{StreamExt, TryStreamExt};
use integration_tests::http_client::Connection;
use inventory::domain::Line;
use inventory::store::items::{channel_key, stock_key, stock_pk, STOCK_ITEM_PREFIX};
use inventory::store::{StockChange, AVAILABILITY_IN_FLIGHT, BATCH_GET_KEYS};
use inventory::Store;
use serde_json::json;

use crate::http_ops::{OperationCost, Recorder};

/// The channel's locations, in its order.
const CHANNEL: [&str; 2] = ["s2", "s1"];

/// `m` times each, after 100 skus with stock at two locations of their own.
pub async fn run(store: &Store, conn: &mut Connection, m: usize) -> Vec<OperationCost> {
    let skus: Vec<String> = (0..100).map(|i| format!("OPS-AV{i:03}")).collect();
    for sku in &skus {
        // Locations of their own: the location listing reads w1's first page.
        for location in CHANNEL {
            let change = StockChange::Set { on_hand: 1_000 };
            store.write_stock(sku, location, change, None, None, &Default::default()).await.expect("stock");
        }
    }
    let mut channel = Recorder::new("put-channel", "PUT /v1/channels/{channelId}");
    for i in 0..m {
        let body = json!({"locations": CHANNEL, "safetyStock": 1 + i % 2});
        channel.time(store, conn, "PUT", "/v1/channels/ops-web", Some(body)).await;
    }
    let mut all = Recorder::new("availability (100 skus)", "POST /v1/availability");
    let mut through = Recorder::new("availability (100 skus, channel)", "POST /v1/availability");
    let mut reserve = Recorder::new("reserve (channel)", "POST /v1/reservations");
    for i in 0..m {
        all.time(store, conn, "POST", "/v1/availability", Some(json!({ "skus": skus }))).await;
        let body = json!({"skus": skus, "channelId": "ops-web"});
        through.time(store, conn, "POST", "/v1/availability", Some(body)).await;
        let line = json!({"sku": skus[i % skus.len()], "quantity": 1});
        let body = json!({"orderId": format!("ops-c-{i}"), "lines": [line], "channelId": "ops-web"});
        reserve.time(store, conn, "POST", "/v1/reservations", Some(body)).await;
    }
    let mut costs = vec![channel.finish(), all.finish(), through.finish(), reserve.finish()];
    costs.extend(kits(store, conn, m).await);
    costs.push(new_process(store, m).await);
    costs.extend(emulator_alone(store, &skus, m).await);
    costs
}

/// A kit of 3 components: its put, and `m` reserves of one kit at a named location, after one
/// reserve of it (the process then knows the kit, as a warm Lambda does).
async fn kits(store: &Store, conn: &mut Connection, m: usize) -> Vec<OperationCost> {
    let parts = ["OPS-K1", "OPS-K2", "OPS-K3"];
    for sku in parts {
        let change = StockChange::Set { on_hand: 1_000_000 };
        store.write_stock(sku, "s1", change, None, None, &Default::default()).await.expect("stock");
    }
    let mut put = Recorder::new("put-kit", "PUT /v1/kits/{sku}");
    for i in 0..m {
        let components: Vec<_> =
            parts.iter().map(|sku| json!({"sku": sku, "quantity": 1 + (i + 1) % 2})).collect();
        put.time(store, conn, "PUT", "/v1/kits/OPS-KIT", Some(json!({ "components": components }))).await;
    }
    let line = json!([{"sku": "OPS-KIT", "locationId": "s1", "quantity": 1}]);
    let first =
        conn.send("POST", "/v1/reservations", Some(json!({"orderId": "ops-k-first", "lines": line}))).await;
    assert_eq!(first.status, 201, "the kit reserves: {}", first.body);
    let mut reserve = Recorder::new("reserve (kit of 3)", "POST /v1/reservations");
    for i in 0..m {
        let body = json!({"orderId": format!("ops-k-{i}"), "lines": line});
        reserve.time(store, conn, "POST", "/v1/reservations", Some(body)).await;
    }
    vec![put.finish(), reserve.finish()]
}

/// `m` reserves of one unit at a named location, each by a store of its own, as a Lambda's first
/// reserve after a cold start (no layout or kit known): the store alone, no HTTP.
async fn new_process(store: &Store, m: usize) -> OperationCost {
    let mut reserve = Recorder::new("reserve (new process)", "(the store of a new process, no HTTP)");
    let line = Line::new("OPS-AV000".into(), "s1".into(), 1);
    for i in 0..m {
        let cold = Store::new(store.client().clone(), store.table());
        let t0 = Instant::now();
        cold.reserve(&format!("ops-n-{i}"), vec![line.clone()], 900, &Default::default())
            .await
            .expect("reserve");
        reserve.sample(ms(t0), cold.stats().requests());
    }
    reserve.finish()
}

/// The DynamoDB requests of get-stock and of both availability calls, sent by the bench itself
/// (the SDK client, no HTTP server, no handler): one Query; 100 Queries, as many in flight as the
/// store allows; the channel's GetItem, then the BatchGetItems of 100 keys at once.
async fn emulator_alone(store: &Store, skus: &[String], m: usize) -> Vec<OperationCost> {
    const ROUTE: &str = "(the bench to DynamoDB Local, no service)";
    let mut one = Recorder::new("emulator alone: 1 Query (get-stock's)", ROUTE);
    let mut queries = Recorder::new("emulator alone: 100 Queries (availability's)", ROUTE);
    let mut batches =
        Recorder::new("emulator alone: GetItem + 2 BatchGetItem (availability, channel)", ROUTE);
    let keys: Vec<_> = skus.iter().flat_map(|sku| CHANNEL.map(|location| stock_key(sku, location))).collect();
    for _ in 0..m {
        let t0 = Instant::now();
        query(store, &skus[0]).await;
        one.sample(ms(t0), 1);
        let t0 = Instant::now();
        futures::stream::iter(skus)
            .map(|sku| async move {
                query(store, sku).await;
                Ok::<_, ()>(())
            })
            .buffered(AVAILABILITY_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await
            .expect("queries");
        queries.sample(ms(t0), skus.len() as u64);
        let t0 = Instant::now();
        let channel =
            store.client().get_item().table_name(store.table()).set_key(Some(channel_key("ops-web")));
        channel.consistent_read(true).send().await.expect("the channel").item.expect("the channel item");
        let chunks: Vec<_> = keys.chunks(BATCH_GET_KEYS).map(<[_]>::to_vec).collect();
        let requests = 1 + chunks.len() as u64;
        futures::stream::iter(chunks)
            .map(|chunk| async move {
                let request =
                    KeysAndAttributes::builder().set_keys(Some(chunk)).consistent_read(true).build();
                let out = store
                    .client()
                    .batch_get_item()
                    .request_items(store.table(), request.expect("keys"))
                    .send()
                    .await
                    .expect("BatchGetItem");
                assert!(
                    out.unprocessed_keys.unwrap_or_default().is_empty(),
                    "DynamoDB Local left keys unprocessed"
                );
                Ok::<_, ()>(())
            })
            .buffer_unordered(AVAILABILITY_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await
            .expect("batches");
        batches.sample(ms(t0), requests);
    }
    vec![one.finish(), queries.finish(), batches.finish()]
}

async fn query(store: &Store, sku: &str) {
    store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
        .expression_attribute_values(":pk", AttributeValue::S(stock_pk(sku)))
        .expression_attribute_values(":prefix", AttributeValue::S(STOCK_ITEM_PREFIX.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("Query");
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
