//! `/v1/reservations/...`: reserve, read, confirm, release, extend.

use axum::extract::State;
use axum::Json;
use http::StatusCode;
use serde::Deserialize;

use super::extract::{not_null, JsonBody, NoParameters, Params, PathParams};
use super::AppState;
use crate::domain::{self, Cart, CartLine, Reservation};
use crate::error::Result;
use crate::store::WriteContext;

/// `{reservationId}`.
#[derive(Deserialize)]
pub(super) struct ReservationPath {
    #[serde(rename = "reservationId")]
    reservation_id: String,
}

impl PathParams for ReservationPath {
    fn validate(&self) -> Result<()> {
        domain::parse_reservation_id(&self.reservation_id).map(|_| ())
    }
}

impl ReservationPath {
    fn id(&self) -> &str {
        &self.reservation_id
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ReserveBody {
    order_id: String,
    lines: Vec<CartLine>,
    #[serde(default, deserialize_with = "not_null")]
    ttl_seconds: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    channel_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ExtendBody {
    ttl_seconds: i64,
}

/// `POST /v1/reservations`: 201 when created, 200 for a safe retry of the same order and lines.
pub(super) async fn reserve(
    State(store): State<AppState>,
    ctx: WriteContext,
    JsonBody(body): JsonBody<ReserveBody>,
) -> Result<(StatusCode, Json<Reservation>)> {
    domain::validate_order_id(&body.order_id)?;
    let cart = Cart::parse(&body.lines)?;
    let ttl = body.ttl_seconds.unwrap_or(domain::DEFAULT_TTL_SECONDS);
    domain::validate_ttl_seconds(ttl)?;
    let cart = through_channel(&store, cart, body.channel_id.as_deref()).await?;
    let reserved = store.reserve_cart(&body.order_id, &cart, ttl, &ctx).await?;
    let status = if reserved.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(reserved.reservation)))
}

/// `cart`, held through the channel `channel_id` names when it names one (404 if there is none).
pub(super) async fn through_channel(store: &AppState, cart: Cart, channel_id: Option<&str>) -> Result<Cart> {
    let Some(channel_id) = channel_id else { return Ok(cart) };
    domain::validate_channel_id(channel_id)?;
    cart.through(&store.channel_for_reserve(channel_id).await?)
}

/// `GET /v1/reservations/{reservationId}`.
pub(super) async fn get_reservation(
    State(store): State<AppState>,
    Params(path): Params<ReservationPath>,
) -> Result<Json<Reservation>> {
    Ok(Json(store.get_reservation(path.id()).await?))
}

/// `POST /v1/reservations/{reservationId}/confirm`.
pub(super) async fn confirm(
    State(store): State<AppState>,
    Params(path): Params<ReservationPath>,
    ctx: WriteContext,
    _: NoParameters,
) -> Result<Json<Reservation>> {
    Ok(Json(store.confirm(path.id(), &ctx).await?.reservation))
}

/// `POST /v1/reservations/{reservationId}/release`.
pub(super) async fn release(
    State(store): State<AppState>,
    Params(path): Params<ReservationPath>,
    ctx: WriteContext,
    _: NoParameters,
) -> Result<Json<Reservation>> {
    Ok(Json(store.release(path.id(), &ctx).await?.reservation))
}

/// `POST /v1/reservations/{reservationId}/extend`.
pub(super) async fn extend(
    State(store): State<AppState>,
    Params(path): Params<ReservationPath>,
    ctx: WriteContext,
    JsonBody(body): JsonBody<ExtendBody>,
) -> Result<Json<Reservation>> {
    let id = path.id();
    domain::validate_ttl_seconds(body.ttl_seconds)?;
    Ok(Json(store.extend(id, body.ttl_seconds, &ctx).await?.reservation))
}
