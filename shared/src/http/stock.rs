//! `/v1/stock/...`: set, adjust and read stock items.

use axum::extract::State;
use axum::Json;
use http::StatusCode;
use serde::Deserialize;

use super::extract::{not_null, Actor, CorrelationId, JsonBody, PageParams, Params, PathParams};
use super::AppState;
use crate::domain::{self, Movement, Provenance, SkuStock, StockChange, StockItem};
use crate::error::Result;
use crate::store::{Hold, Page, StockWrite};

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
    #[serde(default, deserialize_with = "not_null")]
    reference: Option<String>,
    /// Absent: unchanged; `null`: removed; a number: set.
    #[serde(default, deserialize_with = "present")]
    low_stock_threshold: Option<Option<i64>>,
}

/// For a field where `null` means something (removal): present with its value, or absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AdjustBody {
    delta: i64,
    #[serde(default, deserialize_with = "not_null")]
    expected_version: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    reason: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    reference: Option<String>,
}

/// `PUT /v1/stock/{sku}/{locationId}`: 201 when created, 200 when updated.
pub(super) async fn put_stock(
    State(store): State<AppState>,
    Params(path): Params<StockPath>,
    correlation: CorrelationId,
    actor: Actor,
    JsonBody(body): JsonBody<PutStockBody>,
) -> Result<(StatusCode, Json<StockItem>)> {
    domain::validate_on_hand(body.on_hand)?;
    let change = match body.low_stock_threshold {
        None => StockChange::Set { on_hand: body.on_hand },
        Some(low_stock_threshold) => {
            if let Some(threshold) = low_stock_threshold {
                domain::validate_threshold(threshold)?;
            }
            StockChange::SetWithThreshold { on_hand: body.on_hand, low_stock_threshold }
        }
    };
    let provenance = provenance(body.reason, body.reference, actor, &correlation)?;
    let written = write(&store, &path, change, body.expected_version, &provenance).await?;
    let status = if written.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(written.item)))
}

/// `POST /v1/stock/{sku}/{locationId}/adjustments`.
pub(super) async fn adjust_stock(
    State(store): State<AppState>,
    Params(path): Params<StockPath>,
    correlation: CorrelationId,
    actor: Actor,
    JsonBody(body): JsonBody<AdjustBody>,
) -> Result<Json<StockItem>> {
    domain::validate_delta(body.delta)?;
    let change = StockChange::Adjust { delta: body.delta };
    let provenance = provenance(body.reason, body.reference, actor, &correlation)?;
    let written = write(&store, &path, change, body.expected_version, &provenance).await?;
    Ok(Json(written.item))
}

/// Who asks for a stock write and why, checked: `reason` and `reference` within their limits.
fn provenance(
    reason: Option<String>,
    reference: Option<String>,
    actor: Actor,
    correlation: &CorrelationId,
) -> Result<Provenance> {
    domain::validate_reason(reason.as_deref())?;
    domain::validate_reference(reference.as_deref())?;
    Ok(Provenance {
        reason,
        reference,
        actor: actor.0,
        correlation_id: Some(correlation.as_str().to_owned()),
    })
}

/// What PUT and adjustments share: the check of `expectedVersion`, then the write.
async fn write(
    store: &AppState,
    path: &StockPath,
    change: StockChange,
    expected_version: Option<i64>,
    provenance: &Provenance,
) -> Result<StockWrite> {
    let expected = domain::validate_expected_version(expected_version)?;
    let (sku, location_id) = path.item();
    store.write_stock_as(sku, location_id, change, expected, provenance).await
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

/// `GET /v1/stock/{sku}/{locationId}/movements`: the item's on-hand ledger, newest first.
pub(super) async fn list_movements(
    State(store): State<AppState>,
    Params(path): Params<StockPath>,
    page: PageParams,
) -> Result<Json<Page<Movement>>> {
    let (sku, location_id) = path.item();
    Ok(Json(store.list_movements(sku, location_id, page.limit, page.cursor.as_deref()).await?))
}

/// `GET /v1/stock/{sku}/{locationId}/holds`: the PENDING reservations holding its units, oldest
/// first.
pub(super) async fn list_holds(
    State(store): State<AppState>,
    Params(path): Params<StockPath>,
    page: PageParams,
) -> Result<Json<Page<Hold>>> {
    let (sku, location_id) = path.item();
    Ok(Json(store.list_holds(sku, location_id, page.limit, page.cursor.as_deref()).await?))
}
