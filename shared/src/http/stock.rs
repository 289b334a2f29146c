//! `/v1/stock/...`: set, adjust and read stock items.

use axum::extract::State;
use axum::Json;
use http::StatusCode;
use serde::Deserialize;

use super::extract::{not_null, CorrelationId, JsonBody, Params, PathParams};
use super::AppState;
use crate::domain::{self, SkuStock, StockChange, StockItem};
use crate::error::Result;

/// `{sku}` and, on item routes, `{locationId}`.
#[derive(Deserialize)]
pub(super) struct StockPath {
    sku: String,
    #[serde(rename = "locationId")]
    location_id: Option<String>,
}

impl PathParams for StockPath {
    fn validate(&self) -> Result<()> {
        domain::validate_sku(&self.sku)?;
        self.location_id.as_deref().map_or(Ok(()), domain::validate_location_id)
    }
}

impl StockPath {
    /// `(sku, locationId)` of an item route.
    fn item(&self) -> (&str, &str) {
        (&self.sku, self.location_id.as_deref().unwrap_or_default())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PutStockBody {
    on_hand: i64,
    #[serde(default, deserialize_with = "not_null")]
    expected_version: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AdjustBody {
    delta: i64,
    #[serde(default, deserialize_with = "not_null")]
    expected_version: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    reason: Option<String>,
}

/// `PUT /v1/stock/{sku}/{locationId}`: 201 when created, 200 when updated.
pub(super) async fn put_stock(
    State(store): State<AppState>,
    Params(path): Params<StockPath>,
    correlation: CorrelationId,
    JsonBody(body): JsonBody<PutStockBody>,
) -> Result<(StatusCode, Json<StockItem>)> {
    let (sku, location_id) = path.item();
    domain::validate_on_hand(body.on_hand)?;
    domain::validate_reason(body.reason.as_deref())?;
    let expected = domain::validate_expected_version(body.expected_version)?;
    let change = StockChange::Set { on_hand: body.on_hand };
    let reason = body.reason.as_deref();
    let written =
        store.write_stock(sku, location_id, change, expected, reason, Some(correlation.as_str())).await?;
    let status = if written.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(written.item)))
}

/// `POST /v1/stock/{sku}/{locationId}/adjustments`.
pub(super) async fn adjust_stock(
    State(store): State<AppState>,
    Params(path): Params<StockPath>,
    correlation: CorrelationId,
    JsonBody(body): JsonBody<AdjustBody>,
) -> Result<Json<StockItem>> {
    let (sku, location_id) = path.item();
    domain::validate_delta(body.delta)?;
    domain::validate_reason(body.reason.as_deref())?;
    let expected = domain::validate_expected_version(body.expected_version)?;
    let change = StockChange::Adjust { delta: body.delta };
    let reason = body.reason.as_deref();
    let written =
        store.write_stock(sku, location_id, change, expected, reason, Some(correlation.as_str())).await?;
    Ok(Json(written.item))
}

/// What `GET /v1/stock/{sku}[/{locationId}]` answers: one item, or every location of the sku.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub(super) enum StockView {
    Item(StockItem),
    Sku(SkuStock),
}

/// `GET /v1/stock/{sku}` and `GET /v1/stock/{sku}/{locationId}` (one function in AWS).
pub(super) async fn get_stock(
    State(store): State<AppState>,
    Params(path): Params<StockPath>,
) -> Result<Json<StockView>> {
    match &path.location_id {
        Some(location_id) => Ok(Json(StockView::Item(store.get_stock(&path.sku, location_id).await?))),
        None => Ok(Json(StockView::Sku(store.get_sku_stock(&path.sku).await?))),
    }
}
