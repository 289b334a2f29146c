//! `/v1/orders/{orderId}/...`: an order's reservation.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::extract::{Params, PathParams};
use super::AppState;
use crate::domain::{self, Reservation};
use crate::error::Result;

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
