//! Per-operation latency through the local HTTP server (the one `make dev` runs), one request at
//! a time, with the DynamoDB requests and consumed capacity each operation cost (the store's
//! counters, read around every request).

use std::sync::Arc;
use std::time::Instant;

use integration_tests::http_client::{start_local_api, Connection};
use integration_tests::TestTable;
use inventory::store::StockChange;
use inventory::Store;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::stats::{round, Latency};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationCost {
    pub operation: String,
    pub route: String,
    pub latency: Latency,
    /// DynamoDB requests per operation: mean, and the most any one took.
    pub dynamodb_requests_mean: f64,
    pub dynamodb_requests_max: u64,
    /// Consumed capacity units per operation, as DynamoDB reported them (mean).
    pub capacity_units_mean: f64,
    pub statuses: Vec<u16>,
}

pub(crate) struct Recorder {
    name: &'static str,
    route: &'static str,
    latencies_ms: Vec<f64>,
    requests: Vec<u64>,
    capacity: f64,
    statuses: Vec<u16>,
}

impl Recorder {
    pub(crate) fn new(name: &'static str, route: &'static str) -> Self {
        Recorder { name, route, latencies_ms: vec![], requests: vec![], capacity: 0.0, statuses: vec![] }
    }

    pub(crate) async fn time(
        &mut self,
        store: &Store,
        conn: &mut Connection,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (requests, capacity) = (store.stats().requests(), store.stats().capacity_units());
        let t0 = Instant::now();
        let answer = conn.send(method, path, body).await;
        let (status, reply) = (answer.status, answer.body);
        self.latencies_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        self.requests.push(store.stats().requests() - requests);
        self.capacity += store.stats().capacity_units() - capacity;
        if !self.statuses.contains(&status) {
            self.statuses.push(status);
        }
        reply
    }

    /// One sample measured elsewhere (no HTTP status: 200 stands for "answered").
    pub(crate) fn sample(&mut self, ms: f64, requests: u64) {
        self.latencies_ms.push(ms);
        self.requests.push(requests);
        if !self.statuses.contains(&200) {
            self.statuses.push(200);
        }
    }

    pub(crate) fn finish(self) -> OperationCost {
        let n = self.requests.len().max(1) as f64;
        OperationCost {
            operation: self.name.into(),
            route: self.route.into(),
            dynamodb_requests_mean: round(self.requests.iter().sum::<u64>() as f64 / n),
            dynamodb_requests_max: self.requests.iter().copied().max().unwrap_or(0),
            capacity_units_mean: round(self.capacity / n),
            latency: Latency::of(self.latencies_ms),
            statuses: self.statuses,
        }
    }
}

/// How the server under measure serves the routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The local runtime of template.yaml (`make dev`'s): each route's function with its own
    /// store, every AWS call through its IAM gate.
    Runtime,
    /// One router of every operation over one ungated store (the local server before the
    /// runtime was built from the template): the gate's cost is the difference.
    Ungated,
}

/// `n` reserves, then `n / 2` confirms and `n / 2` releases of them, and `n` stock reads; then
/// `n / 4` of each other route (the batch: `n / 10` batches of 10 items), through `make dev`'s
/// server.
pub async fn run(n: usize) -> Vec<OperationCost> {
    run_on(Server::Runtime, n).await
}

/// [`run`], through the server given.
pub async fn run_on(server: Server, n: usize) -> Vec<OperationCost> {
    let t = TestTable::new().await;
    let store = Arc::new(Store::new(t.store.client().clone(), t.store.table()));
    for location in ["w1", "w2"] {
        store
            .write_stock(
                "OPS-SKU",
                location,
                StockChange::Set { on_hand: 1_000_000 },
                None,
                None,
                &Default::default(),
            )
            .await
            .expect("stock");
    }
    let port = match server {
        Server::Runtime => start_local_api(store.clone()).await,
        Server::Ungated => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let port = listener.local_addr().expect("address").port();
            let app = inventory::http::router(store.clone(), &inventory::http::Operation::ALL);
            tokio::spawn(dev_server::serve_http(listener, app, std::future::pending()));
            port
        }
    };
    let mut conn = Connection::open(port).await;
    // Warm the connection and the server's paths once.
    conn.send("GET", "/v1/stock/OPS-SKU", None).await;

    let mut reserve = Recorder::new("reserve", "POST /v1/reservations");
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = json!({"orderId": format!("ops-{i}"), "lines": [{"sku": "OPS-SKU", "locationId": "w1", "quantity": 1}]});
        let reply = reserve.time(&store, &mut conn, "POST", "/v1/reservations", Some(body)).await;
        ids.push(reply["reservationId"].as_str().expect("reservationId").to_owned());
    }
    let mut confirm = Recorder::new("confirm", "POST /v1/reservations/{id}/confirm");
    let mut release = Recorder::new("release", "POST /v1/reservations/{id}/release");
    for (i, id) in ids.iter().enumerate() {
        if i % 2 == 0 {
            confirm.time(&store, &mut conn, "POST", &format!("/v1/reservations/{id}/confirm"), None).await;
        } else {
            release.time(&store, &mut conn, "POST", &format!("/v1/reservations/{id}/release"), None).await;
        }
    }
    let mut get_stock = Recorder::new("get-stock", "GET /v1/stock/{sku}");
    for _ in 0..n {
        get_stock.time(&store, &mut conn, "GET", "/v1/stock/OPS-SKU", None).await;
    }
    let mut costs = vec![reserve.finish(), confirm.finish(), release.finish(), get_stock.finish()];
    costs.extend(other_routes(&store, &mut conn, n / 4).await);
    costs
}

/// Every other route, `m` times each (the batch `m * 4 / 10` times, of 10 items).
async fn other_routes(store: &Store, conn: &mut Connection, m: usize) -> Vec<OperationCost> {
    let mut put = Recorder::new("put-stock", "PUT /v1/stock/{sku}/{locationId}");
    let mut adjust = Recorder::new("adjust-stock", "POST /v1/stock/{sku}/{locationId}/adjustments");
    for i in 0..m {
        put.time(
            store,
            conn,
            "PUT",
            "/v1/stock/OPS-PUT/w1",
            Some(json!({"onHand": 100 + i, "reason": "count"})),
        )
        .await;
        let body = json!({"delta": 1, "reason": "return", "reference": format!("RMA-{i}")});
        adjust.time(store, conn, "POST", "/v1/stock/OPS-PUT/w1/adjustments", Some(body)).await;
    }
    let mut batch = Recorder::new("batch-stock (10 items)", "POST /v1/stock/batch");
    for i in 0..(m * 4 / 10).max(1) {
        let items: Vec<Value> = (0..10)
            .map(|j| json!({"sku": format!("OPS-B{j}"), "locationId": "w1", "onHand": 50 + i}))
            .collect();
        batch.time(store, conn, "POST", "/v1/stock/batch", Some(json!({ "items": items }))).await;
    }
    let mut placed = Recorder::new("reserve (locations)", "POST /v1/reservations");
    let mut modify = Recorder::new("modify", "PUT /v1/orders/{orderId}/reservation");
    let mut extend = Recorder::new("extend", "POST /v1/reservations/{id}/extend");
    for i in 0..m {
        let order = format!("ops-m-{i}");
        let line = json!({"sku": "OPS-SKU", "locations": ["w2", "w1"], "quantity": 1});
        let body = json!({"orderId": order, "lines": [line]});
        let reply = placed.time(store, conn, "POST", "/v1/reservations", Some(body)).await;
        let id = reply["reservationId"].as_str().expect("reservationId").to_owned();
        let cart = json!({"lines": [{"sku": "OPS-SKU", "locationId": "w2", "quantity": 2}]});
        modify.time(store, conn, "PUT", &format!("/v1/orders/{order}/reservation"), Some(cart)).await;
        let ttl = json!({"ttlSeconds": 1800});
        extend.time(store, conn, "POST", &format!("/v1/reservations/{id}/extend"), Some(ttl)).await;
    }
    let reads = [
        (
            "list-movements (20)",
            "GET /v1/stock/{sku}/{locationId}/movements",
            "/v1/stock/OPS-PUT/w1/movements?limit=20",
        ),
        ("list-holds (20)", "GET /v1/stock/{sku}/{locationId}/holds", "/v1/stock/OPS-SKU/w2/holds?limit=20"),
        (
            "list-location-stock (20)",
            "GET /v1/locations/{locationId}/stock",
            "/v1/locations/w1/stock?limit=20",
        ),
        (
            "list-order-reservations",
            "GET /v1/orders/{orderId}/reservations",
            "/v1/orders/ops-m-0/reservations",
        ),
    ];
    let mut costs = vec![
        put.finish(),
        adjust.finish(),
        batch.finish(),
        placed.finish(),
        modify.finish(),
        extend.finish(),
    ];
    costs.extend(crate::storefront::run(store, conn, m).await);
    for (name, route, path) in reads {
        let mut read = Recorder::new(name, route);
        for _ in 0..m {
            read.time(store, conn, "GET", path, None).await;
        }
        costs.push(read.finish());
    }
    costs
}
