//! `/v1/channels/{channelId}`: define and read a sales channel; `/v1/availability`: what a
//! storefront can sell of many skus at once.

use axum::extract::State;
use axum::Json;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::{not_null, JsonBody, Params, PathParams};
use super::AppState;
use crate::domain::{self, Channel, SkuAvailability};
use crate::error::Result;
use crate::store::WriteContext;

/// `{channelId}`.
#[derive(Deserialize)]
pub(super) struct ChannelPath {
    #[serde(rename = "channelId")]
    channel_id: String,
}

impl PathParams for ChannelPath {
    fn validate(&self) -> Result<()> {
        domain::validate_channel_id(&self.channel_id)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PutChannelBody {
    locations: Vec<String>,
    #[serde(default, deserialize_with = "not_null")]
    safety_stock: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    expected_version: Option<i64>,
}

/// `PUT /v1/channels/{channelId}`: 201 created, 200 changed or unchanged.
pub(super) async fn put_channel(
    State(store): State<AppState>,
    Params(path): Params<ChannelPath>,
    ctx: WriteContext,
    JsonBody(body): JsonBody<PutChannelBody>,
) -> Result<(StatusCode, Json<Channel>)> {
    let safety_stock = body.safety_stock.unwrap_or(0);
    domain::validate_channel(&body.locations, safety_stock)?;
    let expected = domain::validate_expected_version(body.expected_version)?;
    let put = store.put_channel(&path.channel_id, &body.locations, safety_stock, expected, &ctx).await?;
    let status = if put.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(put.channel)))
}

/// `GET /v1/channels/{channelId}`.
pub(super) async fn get_channel(
    State(store): State<AppState>,
    Params(path): Params<ChannelPath>,
) -> Result<Json<Channel>> {
    Ok(Json(store.get_channel(&path.channel_id).await?))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct AvailabilityBody {
    skus: Vec<String>,
    #[serde(default, deserialize_with = "not_null")]
    channel_id: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    by_location: Option<bool>,
}

#[derive(Serialize)]
pub(super) struct AvailabilityAnswer {
    items: Vec<SkuAvailability>,
}

/// `POST /v1/availability`: what can be sold of each sku, in request order (a read).
pub(super) async fn availability(
    State(store): State<AppState>,
    JsonBody(body): JsonBody<AvailabilityBody>,
) -> Result<Json<AvailabilityAnswer>> {
    domain::validate_availability_skus(&body.skus)?;
    if let Some(channel_id) = &body.channel_id {
        domain::validate_channel_id(channel_id)?;
    }
    let by_location = body.by_location.unwrap_or(false);
    let items = store.availability(&body.skus, body.channel_id.as_deref(), by_location).await?;
    Ok(Json(AvailabilityAnswer { items }))
}
