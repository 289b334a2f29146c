//! `GET /health`, and `GET /health?deep=true`: DynamoDB answers and the table is active.

use axum::extract::{Query, State};
use axum::Json;
use http::Uri;
use serde::Deserialize;
use serde_json::{json, Value};

use super::AppState;
use crate::error::{Error, Result};

#[derive(Deserialize)]
pub(super) struct HealthQuery {
    deep: Option<String>,
}

pub(super) async fn health(State(store): State<AppState>, uri: Uri) -> Result<Json<Value>> {
    let query =
        Query::<HealthQuery>::try_from_uri(&uri).map_err(|e| Error::invalid_field("query", e.body_text()))?;
    let deep = match query.deep.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(Error::invalid_field("deep", "deep must be true or false")),
    };
    if !deep {
        return Ok(Json(json!({ "status": "ok" })));
    }
    store.check_table().await?;
    Ok(Json(json!({ "status": "ok", "checks": { "dynamodb": "ok" } })))
}
