//! `order-events`: the order service's events, from the `inventory-order-events` queue (fed by the
//! bus rule on `source: "orders"`).
//!
//! - `OrderCancelled {orderId}`: release the order's hold (nothing to do if there is none, or it
//!   was released or expired already; a confirmed one cannot be released and is logged).
//! - `OrderCompleted {orderId}`: confirm it (nothing to do if confirmed already); if it cannot be
//!   (expired, released, unknown order) record a `ReservationConfirmFailed` event instead.
//!
//! Idempotent: every outcome is a state the store reaches once (a second release or confirm
//! changes nothing), and `ReservationConfirmFailed` has an event id derived from the inbound
//! event's id, written with `attribute_not_exists`, so a redelivered message records it once.
//! A message that cannot be parsed, or whose processing failed for a reason that may pass, is
//! reported as a batch item failure: SQS redelivers it, and after maxReceiveCount (3) moves it
//! to the dead-letter queue. The other messages of the batch are processed and deleted.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::domain::{validate_order_id, Status};
use crate::error::Error;
use crate::events::{DetailType, OutboxEvent};
use crate::Store;

/// `source` of the events this function acts on.
pub const ORDERS_SOURCE: &str = "orders";
/// Messages of one batch processed at once.
const CONCURRENCY: usize = 10;

/// Names `ReservationConfirmFailed` event ids (UUID v5 of the inbound event id).
const CONFIRM_FAILED_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x8d2c_51aa_03f4_4c1b_b7e9_2a6f_0d3e_71c8);

/// The EventBridge event an SQS target receives (the rule sends the whole event as the body).
#[derive(Debug, Deserialize)]
struct InboundEvent {
    id: String,
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: serde_json::Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderDetail {
    order_id: String,
    #[serde(default)]
    correlation_id: Option<String>,
}

/// What handling one message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome {
    Released,
    Confirmed,
    /// Nothing to do: no hold, or already in the state asked for (or a final one).
    Unchanged(&'static str),
    /// `ReservationConfirmFailed` recorded with this reason.
    ConfirmFailed(&'static str),
    /// Not an event this function acts on (another source or detail-type).
    Ignored,
}

/// Why a message was not handled; it will be redelivered, and dead-lettered after
/// maxReceiveCount.
#[derive(Debug, thiserror::Error)]
pub enum OrderEventError {
    #[error("unparseable message: {0}")]
    Unparseable(String),
    #[error(transparent)]
    Store(#[from] Error),
}

/// Handles one SQS batch; the response names the messages to redeliver.
pub async fn handle_batch(store: &Store, event: SqsEvent) -> SqsBatchResponse {
    let results: Vec<(Option<String>, Result<OrderOutcome, OrderEventError>)> =
        futures::stream::iter(event.records)
            .map(|message| async move {
                let id = message.message_id.clone();
                (id, handle_message(store, &message).await)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let mut response = SqsBatchResponse::default();
    for (message_id, result) in results {
        let message_id = message_id.unwrap_or_default();
        match result {
            Ok(outcome) => tracing::info!(%message_id, ?outcome, "order event handled"),
            Err(e) => {
                tracing::warn!(%message_id, error = %e, "order event failed; it will be redelivered");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}

/// Handles one message.
pub async fn handle_message(store: &Store, message: &SqsMessage) -> Result<OrderOutcome, OrderEventError> {
    let body = message.body.as_deref().unwrap_or_default();
    let event: InboundEvent =
        serde_json::from_str(body).map_err(|e| OrderEventError::Unparseable(e.to_string()))?;
    if event.source != ORDERS_SOURCE
        || !matches!(event.detail_type.as_str(), "OrderCancelled" | "OrderCompleted")
    {
        return Ok(OrderOutcome::Ignored);
    }
    let detail: OrderDetail = serde_json::from_value(event.detail.clone())
        .map_err(|e| OrderEventError::Unparseable(format!("detail: {e}")))?;
    validate_order_id(&detail.order_id).map_err(|e| OrderEventError::Unparseable(e.to_string()))?;
    // The order service's correlation id if it sent one, else its event id: either way the
    // resulting inventory event can be traced back to the order event.
    let correlation_id = detail.correlation_id.clone().unwrap_or_else(|| event.id.clone());
    if event.detail_type == "OrderCancelled" {
        cancel(store, &detail.order_id, &correlation_id).await
    } else {
        complete(store, &event, &detail.order_id, &correlation_id).await
    }
}

async fn cancel(
    store: &Store,
    order_id: &str,
    correlation_id: &str,
) -> Result<OrderOutcome, OrderEventError> {
    let reservation = match store.get_order_reservation(order_id).await {
        Ok(r) => r,
        Err(Error::NotFound { .. }) => return Ok(OrderOutcome::Unchanged("no reservation")),
        Err(e) => return Err(e.into()),
    };
    match store.release(&reservation.reservation_id, Some(correlation_id)).await {
        Ok(t) if t.applied => Ok(OrderOutcome::Released),
        Ok(_) => Ok(OrderOutcome::Unchanged("released or expired already")),
        Err(Error::InvalidState { status: Status::Confirmed }) => {
            tracing::warn!(order_id, reservation_id = %reservation.reservation_id, "OrderCancelled for a confirmed reservation: left confirmed");
            Ok(OrderOutcome::Unchanged("confirmed"))
        }
        Err(e) => Err(e.into()),
    }
}

async fn complete(
    store: &Store,
    event: &InboundEvent,
    order_id: &str,
    correlation_id: &str,
) -> Result<OrderOutcome, OrderEventError> {
    let reservation = match store.get_order_reservation(order_id).await {
        Ok(r) => Some(r),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let reason = match &reservation {
        None => "unknown",
        Some(r) => match store.confirm(&r.reservation_id, Some(correlation_id)).await {
            Ok(t) if t.applied => return Ok(OrderOutcome::Confirmed),
            Ok(_) => return Ok(OrderOutcome::Unchanged("confirmed already")),
            Err(Error::ReservationExpired { .. }) => "expired",
            Err(Error::InvalidState { status: Status::Released }) => "released",
            Err(Error::InvalidState { status: Status::Expired }) => "expired",
            Err(e) => return Err(e.into()),
        },
    };
    let mut data = json!({"orderId": order_id, "reason": reason});
    if let Some(r) = &reservation {
        data["reservationId"] = json!(r.reservation_id);
    }
    let mut failed =
        OutboxEvent::new(DetailType::ReservationConfirmFailed, data, store.now(), Some(correlation_id));
    failed.event_id = uuid::Uuid::new_v5(&CONFIRM_FAILED_NAMESPACE, event.id.as_bytes()).to_string();
    store.record_event(&failed).await?;
    Ok(OrderOutcome::ConfirmFailed(reason))
}
