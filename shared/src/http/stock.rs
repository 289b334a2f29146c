//! `/v1/stock/...`: set, adjust and read stock items.

use axum::extract::State;
use axum::Json;
use futures::StreamExt;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use axum::response::{IntoResponse, Response};

use super::error::{error_body, status_of};
use super::extract::{not_null, JsonBody, PageParams, Params, PathParams};
use super::idempotency::NotKept;
use super::AppState;
use crate::domain::{self, Movement, Provenance, SkuStock, StockChange, StockItem};
use crate::error::{Error, Result};
use crate::store::{Claim, WriteContext};
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
    /// Absent: unchanged.
    #[serde(default, deserialize_with = "not_null")]
    shards: Option<i64>,
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
    ctx: WriteContext,
    JsonBody(body): JsonBody<PutStockBody>,
) -> Result<(StatusCode, Json<StockItem>)> {
    domain::validate_on_hand(body.on_hand)?;
    if let Some(Some(threshold)) = body.low_stock_threshold {
        domain::validate_threshold(threshold)?;
    }
    let shards = body.shards.map(domain::validate_shards).transpose()?;
    let change =
        StockChange::Put { on_hand: body.on_hand, low_stock_threshold: body.low_stock_threshold, shards };
    let why = why(body.reason, body.reference)?;
    let written = write(&store, &path, change, body.expected_version, &why, &ctx).await?;
    let status = if written.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(written.item)))
}

/// `POST /v1/stock/{sku}/{locationId}/adjustments`.
pub(super) async fn adjust_stock(
    State(store): State<AppState>,
    Params(path): Params<StockPath>,
    ctx: WriteContext,
    JsonBody(body): JsonBody<AdjustBody>,
) -> Result<Json<StockItem>> {
    domain::validate_delta(body.delta)?;
    let change = StockChange::Adjust { delta: body.delta };
    let why = why(body.reason, body.reference)?;
    let written = write(&store, &path, change, body.expected_version, &why, &ctx).await?;
    Ok(Json(written.item))
}

/// Why a stock write is asked for, checked: `reason` and `reference` within their limits (who
/// asks is the write's context).
fn why(reason: Option<String>, reference: Option<String>) -> Result<Provenance> {
    domain::validate_reason(reason.as_deref())?;
    domain::validate_reference(reference.as_deref())?;
    Ok(Provenance { reason, reference, ..Provenance::default() })
}

/// What PUT and adjustments share: the check of `expectedVersion`, then the write.
async fn write(
    store: &AppState,
    path: &StockPath,
    change: StockChange,
    expected_version: Option<i64>,
    why: &Provenance,
    ctx: &WriteContext,
) -> Result<StockWrite> {
    let expected = domain::validate_expected_version(expected_version)?;
    let (sku, location_id) = path.item();
    store.write_stock_as(sku, location_id, change, expected, why, ctx).await
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

/// One item of `POST /v1/stock/batch`: a PUT (`onHand`) or an adjustment (`delta`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct BatchItem {
    sku: String,
    location_id: String,
    #[serde(default, deserialize_with = "not_null")]
    on_hand: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    delta: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    expected_version: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    reason: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    reference: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct BatchBody {
    items: Vec<BatchItem>,
}

/// What became of one item of a batch: its single route's status and item, or error object.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BatchResult {
    sku: String,
    location_id: String,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<StockItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

#[derive(Serialize)]
pub(super) struct BatchResults {
    results: Vec<BatchResult>,
}

/// Items of a batch written at once.
const BATCH_CONCURRENCY: usize = 8;

/// `POST /v1/stock/batch`: every item checked first (one bad item: 400, nothing written), then
/// each applied on its own exactly as its single route would, results in request order. With an
/// `Idempotency-Key`, each item keeps its answer in its own transaction under a part of the key,
/// so a repeat (or a concurrent duplicate) applies no item twice.
pub(super) async fn batch(
    State(store): State<AppState>,
    ctx: WriteContext,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<Response> {
    if body.items.is_empty() || body.items.len() > domain::MAX_BATCH_ITEMS {
        return Err(Error::invalid_field(
            "items",
            format!("items must hold 1-{} items", domain::MAX_BATCH_ITEMS),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut writes = Vec::with_capacity(body.items.len());
    for item in body.items {
        domain::validate_sku(&item.sku)?;
        domain::validate_location_id(&item.location_id)?;
        if !seen.insert((item.sku.clone(), item.location_id.clone())) {
            return Err(Error::invalid_field(
                "items",
                format!("{}/{} appears more than once", item.sku, item.location_id),
            ));
        }
        let change = match (item.on_hand, item.delta) {
            (Some(on_hand), None) => {
                domain::validate_on_hand(on_hand)?;
                StockChange::Set { on_hand }
            }
            (None, Some(delta)) => {
                domain::validate_delta(delta)?;
                StockChange::Adjust { delta }
            }
            _ => return Err(Error::invalid_field("onHand", "each item has exactly one of onHand and delta")),
        };
        let expected = domain::validate_expected_version(item.expected_version)?;
        let why = why(item.reason, item.reference)?;
        writes.push((item.sku, item.location_id, change, expected, why));
    }
    let claim = ctx.claim.clone();
    // With a key: every item applied before under it (an earlier run cut short, or a duplicate
    // running now) answers as it did; a part used by another request makes the key reused, before
    // anything is written.
    let parts: Vec<Option<Arc<Claim>>> =
        (0..writes.len()).map(|i| claim.as_ref().map(|c| c.part(i))).collect();
    let mut kept = Vec::with_capacity(parts.len());
    for part in &parts {
        kept.push(match part {
            Some(part) => kept_part(&store, part).await?,
            None => None,
        });
    }
    let results = futures::stream::iter(writes.into_iter().zip(parts).zip(kept))
        .map(|(((sku, location_id, change, expected, why), part), kept)| {
            let store = store.clone();
            // Each item keeps its answer under its own part of the key.
            let ctx = ctx.clone().claiming(part.clone());
            async move {
                if let Some(answer) = kept {
                    return (sku, location_id, Err(answer));
                }
                let outcome = store.write_stock_as(&sku, &location_id, change, expected, &why, &ctx).await;
                // Refused before its transaction (an expectedVersion, the bounds): a duplicate
                // running at the same moment may have applied it, keeping its answer.
                let outcome = match (outcome, &part) {
                    (Err(e), Some(part))
                        if !matches!(e, Error::Replay { .. } | Error::IdempotencyKeyReused { .. }) =>
                    {
                        match kept_part(&store, part).await {
                            Ok(Some(answer)) => Err(answer),
                            Ok(None) => Err(e),
                            Err(other) => Err(other),
                        }
                    }
                    (outcome, _) => outcome,
                };
                (sku, location_id, outcome)
            }
        })
        .buffered(BATCH_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut out = Vec::with_capacity(results.len());
    let mut unsettled = false;
    for (sku, location_id, outcome) in results {
        let (status, item, error) = match outcome {
            Ok(written) => (if written.created { 201 } else { 200 }, Some(written.item), None),
            // This item was applied by an earlier request with the key: its answer, again.
            Err(Error::Replay { status, body }) => {
                (status, Some(serde_json::from_str(&body).map_err(Error::internal)?), None)
            }
            // The key's part was used for another item: the key was reused for another batch.
            Err(e @ Error::IdempotencyKeyReused { .. }) => return Err(e),
            Err(e) => {
                let status = status_of(&e).as_u16();
                if status >= 500 {
                    tracing::error!(%sku, %location_id, status, error = %e, "batch item failed");
                    unsettled = true;
                }
                (status, None, Some(error_body(&e)["error"].clone()))
            }
        };
        out.push(BatchResult { sku, location_id, status, item, error });
    }
    let mut response = Json(BatchResults { results: out }).into_response();
    if unsettled {
        // An item may or may not have been applied: this answer is not the one to keep; the same
        // request with the key runs again, and items applied already answer from their parts.
        response.extensions_mut().insert(NotKept);
    }
    Ok(response)
}

/// The answer kept for one part of a keyed batch: `Replay` when it is this request's, an error
/// `IdempotencyKeyReused` when another request used it, `None` when it is free.
async fn kept_part(store: &AppState, part: &Claim) -> Result<Option<Error>> {
    Ok(match store.kept_answer(part).await?.map(|kept| kept.answer_to(part)) {
        Some(replay @ Error::Replay { .. }) => Some(replay),
        Some(reused) => return Err(reused),
        None => None,
    })
}

/// `{locationId}` of `/v1/locations/{locationId}/...`.
#[derive(Deserialize)]
pub(super) struct LocationPath {
    #[serde(rename = "locationId")]
    location_id: String,
}

impl PathParams for LocationPath {
    fn validate(&self) -> Result<()> {
        domain::validate_location_id(&self.location_id)
    }
}

/// `GET /v1/locations/{locationId}/stock`: the location's stock items, sorted by sku (200 with no
/// items for a location that has none).
pub(super) async fn list_location_stock(
    State(store): State<AppState>,
    Params(path): Params<LocationPath>,
    page: PageParams,
) -> Result<Json<Page<StockItem>>> {
    Ok(Json(store.list_location_stock(&path.location_id, page.limit, page.cursor.as_deref()).await?))
}
