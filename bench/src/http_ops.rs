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

struct Recorder {
    name: &'static str,
    route: &'static str,
    latencies_ms: Vec<f64>,
    requests: Vec<u64>,
    capacity: f64,
    statuses: Vec<u16>,
}

impl Recorder {
    fn new(name: &'static str, route: &'static str) -> Self {
        Recorder { name, route, latencies_ms: vec![], requests: vec![], capacity: 0.0, statuses: vec![] }
    }

    async fn time(
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

    fn finish(self) -> OperationCost {
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

/// `n` reserves, then `n / 2` confirms and `n / 2` releases of them, and `n` stock reads.
pub async fn run(n: usize) -> Vec<OperationCost> {
    let t = TestTable::new().await;
    let store = Arc::new(Store::new(t.store.client().clone(), t.store.table()));
    for location in ["w1", "w2"] {
        store
            .write_stock("OPS-SKU", location, StockChange::Set { on_hand: 1_000_000 }, None, None, None)
            .await
            .expect("stock");
    }
    let port = start_local_api(store.clone()).await;
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
    vec![reserve.finish(), confirm.finish(), release.finish(), get_stock.finish()]
}
