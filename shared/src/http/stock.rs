//! `/v1/stock/...`: set, adjust and read stock items.

use axum::extract::State;
use axum::Json;
use http::StatusCode;
use serde::Deserialize;

use super::extract::{not_null, CorrelationId, JsonBody, Params, PathParams};
use super::AppState;
use crate::domain::{self, SkuStock, StockChange, StockItem};
use crate::error::Result;
use crate::store::StockWrite;

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
    domain::validate_on_hand(body.on_hand)?;
    let change = StockChange::Set { on_hand: body.on_hand };
    let written =
        write(&store, &path, change, body.expected_version, body.reason.as_deref(), &correlation).await?;
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
    domain::validate_delta(body.delta)?;
    let change = StockChange::Adjust { delta: body.delta };
    let written =
        write(&store, &path, change, body.expected_version, body.reason.as_deref(), &correlation).await?;
    Ok(Json(written.item))
}

/// What PUT and adjustments share: the checks of `reason` and `expectedVersion`, then the write.
async fn write(
    store: &AppState,
    path: &StockPath,
    change: StockChange,
    expected_version: Option<i64>,
    reason: Option<&str>,
    correlation: &CorrelationId,
) -> Result<StockWrite> {
    domain::validate_reason(reason)?;
    let expected = domain::validate_expected_version(expected_version)?;
    let (sku, location_id) = path.item();
    store.write_stock(sku, location_id, change, expected, reason, Some(correlation.as_str())).await
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
