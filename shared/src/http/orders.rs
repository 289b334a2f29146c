//! `/v1/orders/{orderId}/...`: an order's reservations: the latest, all of them, and what the
//! order should hold now (a cart that changed).

use axum::extract::State;
use axum::Json;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::{not_null, JsonBody, PageParams, Params, PathParams, DEFAULT_ORDER_PAGE};
use super::AppState;
use crate::domain::{self, Cart, CartLine, Reservation};
use crate::error::Result;
use crate::store::WriteContext;

/// `{orderId}`, percent-decoded (`a%3Ab` is order `a:b`).
#[derive(Deserialize)]
pub(super) struct OrderPath {
    #[serde(rename = "orderId")]
    order_id: String,
}

impl PathParams for OrderPath {
    fn validate(&self) -> Result<()> {
        domain::validate_order_id(&self.order_id)
    }
}

/// `GET /v1/orders/{orderId}/reservation`.
pub(super) async fn get_order_reservation(
    State(store): State<AppState>,
    Params(path): Params<OrderPath>,
) -> Result<Json<Reservation>> {
    Ok(Json(store.get_order_reservation(&path.order_id).await?))
}

/// `GET /v1/orders/{orderId}/reservations`: a page of the order's reservations, newest first.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderReservations {
    order_id: String,
    reservations: Vec<Reservation>,
    next_cursor: Option<String>,
}

pub(super) async fn list_order_reservations(
    State(store): State<AppState>,
    Params(path): Params<OrderPath>,
    page: PageParams<DEFAULT_ORDER_PAGE>,
) -> Result<Json<OrderReservations>> {
    let page = store.list_order_reservations(&path.order_id, page.limit, page.cursor.as_deref()).await?;
    Ok(Json(OrderReservations {
        order_id: path.order_id,
        reservations: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CartBody {
    lines: Vec<CartLine>,
    #[serde(default, deserialize_with = "not_null")]
    ttl_seconds: Option<i64>,
    #[serde(default, deserialize_with = "not_null")]
    channel_id: Option<String>,
}

/// `PUT /v1/orders/{orderId}/reservation`: 201 when a new reservation was made, 200 when the
/// PENDING one was changed (or already held exactly this).
pub(super) async fn put_order_reservation(
    State(store): State<AppState>,
    Params(path): Params<OrderPath>,
    ctx: WriteContext,
    JsonBody(body): JsonBody<CartBody>,
) -> Result<(StatusCode, Json<Reservation>)> {
    let cart = Cart::parse(&body.lines)?;
    if let Some(ttl) = body.ttl_seconds {
        domain::validate_ttl_seconds(ttl)?;
    }
    let cart = super::reservations::through_channel(&store, cart, body.channel_id.as_deref()).await?;
    let reserved = store.put_order_reservation(&path.order_id, &cart, body.ttl_seconds, &ctx).await?;
    let status = if reserved.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(reserved.reservation)))
}
