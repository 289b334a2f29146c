//! `GET /health`.

use axum::Json;
use serde_json::{json, Value};

pub(super) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
