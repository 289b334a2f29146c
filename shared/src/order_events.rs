//! `order-events`: the order service's events, from the `inventory-order-events` queue (fed by the
//! bus rule on `source: "orders"`).
//!
//! - `OrderCancelled {orderId, reservationId?}`: release the order's hold (nothing to do if there
//!   is none, or it was released or expired already; a confirmed one cannot be released and is
//!   logged).
//! - `OrderCompleted {orderId, reservationId?}`: confirm it (nothing to do if confirmed already);
//!   if it cannot be (expired, released, unknown order) record a `ReservationConfirmFailed` event
//!   instead.
//! - With `reservationId`, the event acts only if it names the order's latest reservation: a late
//!   or replayed event never acts on a newer hold (OrderCompleted records `ReservationConfirmFailed`
//!   with reason `RESERVATION_MISMATCH`, OrderCancelled releases nothing).
//!
//! Idempotent: every outcome is a state the store reaches once (a second release or confirm
//! changes nothing), and `ReservationConfirmFailed` has an event id derived from the inbound
//! event's id, written with `attribute_not_exists`, so a redelivered message records it once.
//! A message that cannot be parsed, or whose processing failed for a reason that may pass, is
//! reported as a batch item failure: SQS redelivers it, and after maxReceiveCount (5) moves it
//! to the dead-letter queue. The other messages of the batch are processed and deleted.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::domain::Reservation;
use crate::domain::{validate_order_id, Status};
use crate::error::Error;
use crate::events::{DetailType, OutboxEvent};
use crate::store::{Transitioned, WriteContext};
use crate::Store;

/// What the consumer needs of the store: a port, so that its rules (which outcome for which
/// answer) are unit-tested against a fake, while the DynamoDB store it runs with in production is
/// tested against DynamoDB Local.
pub trait OrderReservations: Sync {
    fn order_reservation(&self, order_id: &str) -> impl Future<Output = Result<Reservation, Error>> + Send;
    fn confirm(
        &self,
        id: &str,
        ctx: &WriteContext,
    ) -> impl Future<Output = Result<Transitioned, Error>> + Send;
    fn release(
        &self,
        id: &str,
        ctx: &WriteContext,
    ) -> impl Future<Output = Result<Transitioned, Error>> + Send;
    /// Records an event that goes with no state change, once per event id.
    fn record_event(&self, event: &OutboxEvent) -> impl Future<Output = Result<bool, Error>> + Send;
    fn now(&self) -> DateTime<Utc>;
}

impl OrderReservations for Store {
    fn order_reservation(&self, order_id: &str) -> impl Future<Output = Result<Reservation, Error>> + Send {
        self.get_order_reservation(order_id)
    }
    fn confirm(
        &self,
        id: &str,
        ctx: &WriteContext,
    ) -> impl Future<Output = Result<Transitioned, Error>> + Send {
        Store::confirm(self, id, ctx)
    }
    fn release(
        &self,
        id: &str,
        ctx: &WriteContext,
    ) -> impl Future<Output = Result<Transitioned, Error>> + Send {
        Store::release(self, id, ctx)
    }
    fn record_event(&self, event: &OutboxEvent) -> impl Future<Output = Result<bool, Error>> + Send {
        Store::record_event(self, event)
    }
    fn now(&self) -> DateTime<Utc> {
        Store::now(self)
    }
}

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
    /// The reservation the order service completed or cancelled, when it says.
    #[serde(default)]
    reservation_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
}

/// The reason of a `ReservationConfirmFailed` for an event naming another reservation than the
/// order's latest.
pub const RESERVATION_MISMATCH: &str = "RESERVATION_MISMATCH";

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
pub async fn handle_batch(store: &impl OrderReservations, event: SqsEvent) -> SqsBatchResponse {
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
        crate::metrics::order_event(match &result {
            Ok(OrderOutcome::Released | OrderOutcome::Confirmed) => "applied",
            Ok(OrderOutcome::ConfirmFailed(_)) => "confirm_failed",
            Ok(OrderOutcome::Unchanged(_) | OrderOutcome::Ignored) => "ignored",
            Err(_) => "failed",
        });
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
pub async fn handle_message(
    store: &impl OrderReservations,
    message: &SqsMessage,
) -> Result<OrderOutcome, OrderEventError> {
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
    if let Some(id) = &detail.reservation_id {
        uuid::Uuid::try_parse(id).map_err(|_| {
            OrderEventError::Unparseable(format!("detail.reservationId {id:?} is not a reservation id"))
        })?;
    }
    // The order service's correlation id if it sent one, else its event id: either way the
    // resulting inventory event can be traced back to the order event; and its trace goes on
    // into the events this message causes.
    let correlation_id = detail.correlation_id.clone().unwrap_or_else(|| event.id.clone());
    let trace = message.attributes.get("AWSTraceHeader").cloned();
    let ctx = WriteContext::correlated(correlation_id).traced(trace);
    if event.detail_type == "OrderCancelled" {
        cancel(store, &detail, &ctx).await
    } else {
        complete(store, &event, &detail, &ctx).await
    }
}

/// Whether the order's latest reservation is the one the event names (any, if it names none).
fn names_latest(detail: &OrderDetail, latest: &Reservation) -> bool {
    detail.reservation_id.as_ref().is_none_or(|id| *id == latest.reservation_id)
}

async fn cancel(
    store: &impl OrderReservations,
    detail: &OrderDetail,
    ctx: &WriteContext,
) -> Result<OrderOutcome, OrderEventError> {
    let order_id = detail.order_id.as_str();
    let reservation = match store.order_reservation(order_id).await {
        Ok(r) => r,
        Err(Error::NotFound { .. }) => return Ok(OrderOutcome::Unchanged("no reservation")),
        Err(e) => return Err(e.into()),
    };
    if !names_latest(detail, &reservation) {
        tracing::warn!(order_id, named = ?detail.reservation_id, latest = %reservation.reservation_id, "OrderCancelled for another reservation than the order's latest: nothing released");
        return Ok(OrderOutcome::Unchanged("not the order's latest reservation"));
    }
    match store.release(&reservation.reservation_id, ctx).await {
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
    store: &impl OrderReservations,
    event: &InboundEvent,
    detail: &OrderDetail,
    ctx: &WriteContext,
) -> Result<OrderOutcome, OrderEventError> {
    let order_id = detail.order_id.as_str();
    let reservation = match store.order_reservation(order_id).await {
        Ok(r) => Some(r),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let reason = match &reservation {
        None => "unknown",
        Some(r) if !names_latest(detail, r) => RESERVATION_MISMATCH,
        Some(r) => match store.confirm(&r.reservation_id, ctx).await {
            Ok(t) if t.applied => return Ok(OrderOutcome::Confirmed),
            Ok(_) => return Ok(OrderOutcome::Unchanged("confirmed already")),
            Err(Error::ReservationExpired { .. }) => "expired",
            Err(Error::InvalidState { status: Status::Released }) => "released",
            Err(Error::InvalidState { status: Status::Expired }) => "expired",
            Err(e) => return Err(e.into()),
        },
    };
    let mut data = json!({"orderId": order_id, "reason": reason});
    // The reservation the event named, else the order's latest.
    if let Some(id) = detail.reservation_id.as_ref().or(reservation.as_ref().map(|r| &r.reservation_id)) {
        data["reservationId"] = json!(id);
    }
    let mut failed = ctx.event(DetailType::ReservationConfirmFailed, data, store.now());
    failed.event_id = uuid::Uuid::new_v5(&CONFIRM_FAILED_NAMESPACE, event.id.as_bytes()).to_string();
    store.record_event(&failed).await?;
    Ok(OrderOutcome::ConfirmFailed(reason))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::Line;

    /// An order with at most one reservation, and the answers its confirm and release give.
    struct FakeOrders {
        reservation: Option<Reservation>,
        confirm: Result<bool, Error>,
        release: Result<bool, Error>,
        recorded: Mutex<Vec<OutboxEvent>>,
        /// The trace header of each release's context.
        traces: Mutex<Vec<Option<String>>>,
    }

    impl FakeOrders {
        fn new(
            reservation: Option<Reservation>,
            confirm: Result<bool, Error>,
            release: Result<bool, Error>,
        ) -> Self {
            FakeOrders { reservation, confirm, release, recorded: Mutex::default(), traces: Mutex::default() }
        }

        fn answer(&self, applied: &Result<bool, Error>) -> Result<Transitioned, Error> {
            let reservation = self.reservation.clone().expect("a transition needs a reservation");
            applied.clone().map(|applied| Transitioned { reservation, applied })
        }
    }

    impl OrderReservations for FakeOrders {
        async fn order_reservation(&self, order_id: &str) -> Result<Reservation, Error> {
            self.reservation.clone().ok_or(Error::NotFound { what: "order reservation", id: order_id.into() })
        }
        async fn confirm(&self, _: &str, _: &WriteContext) -> Result<Transitioned, Error> {
            self.answer(&self.confirm)
        }
        async fn release(&self, _: &str, ctx: &WriteContext) -> Result<Transitioned, Error> {
            self.traces.lock().unwrap().push(ctx.trace_header.clone());
            self.answer(&self.release)
        }
        async fn record_event(&self, event: &OutboxEvent) -> Result<bool, Error> {
            let mut recorded = self.recorded.lock().unwrap();
            let new = recorded.iter().all(|e| e.event_id != event.event_id);
            if new {
                recorded.push(event.clone());
            }
            Ok(new)
        }
        fn now(&self) -> DateTime<Utc> {
            Utc::now()
        }
    }

    fn held() -> Option<Reservation> {
        let line = Line::new("A".into(), "w".into(), 1);
        Some(Reservation::new("o-1".into(), vec![line], 60, Utc::now()))
    }

    fn message(id: &str, source: &str, detail_type: &str, detail: serde_json::Value) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("m-{id}"));
        m.body = Some(
            json!({"id": id, "source": source, "detail-type": detail_type, "detail": detail}).to_string(),
        );
        m
    }

    fn completed(id: &str) -> SqsMessage {
        message(id, "orders", "OrderCompleted", json!({"orderId": "o-1"}))
    }

    fn cancelled(id: &str) -> SqsMessage {
        message(id, "orders", "OrderCancelled", json!({"orderId": "o-1"}))
    }

    #[tokio::test]
    async fn each_message_carries_its_own_trace_header_into_the_change() {
        let store = FakeOrders::new(held(), Ok(true), Ok(true));
        let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".to_owned();
        let mut traced = cancelled("e-1");
        traced.attributes.insert("AWSTraceHeader".into(), trace.clone());
        let mut event = SqsEvent::default();
        event.records = vec![traced, cancelled("e-2")];
        handle_batch(&store, event).await;
        let mut traces = store.traces.lock().unwrap().clone();
        traces.sort();
        assert_eq!(traces, vec![None, Some(trace)], "the untraced message gets no trace of the other");
    }

    #[tokio::test]
    async fn a_completed_order_that_cannot_be_confirmed_records_why_once_per_inbound_event() {
        let expired = Error::ReservationExpired { reservation_id: "r".into() };
        let store = FakeOrders::new(held(), Err(expired), Ok(true));
        assert_eq!(
            handle_message(&store, &completed("e-1")).await.unwrap(),
            OrderOutcome::ConfirmFailed("expired")
        );
        assert_eq!(
            handle_message(&store, &completed("e-1")).await.unwrap(),
            OrderOutcome::ConfirmFailed("expired")
        );
        let recorded = store.recorded.lock().unwrap().clone();
        assert_eq!(recorded.len(), 1, "a redelivered message records nothing more");
        assert_eq!(recorded[0].data["reason"], "expired");
        assert_eq!(recorded[0].correlation_id.as_deref(), Some("e-1"));

        let released =
            FakeOrders::new(held(), Err(Error::InvalidState { status: Status::Released }), Ok(true));
        assert_eq!(
            handle_message(&released, &completed("e-2")).await.unwrap(),
            OrderOutcome::ConfirmFailed("released")
        );
        let unknown = FakeOrders::new(None, Ok(true), Ok(true));
        assert_eq!(
            handle_message(&unknown, &completed("e-3")).await.unwrap(),
            OrderOutcome::ConfirmFailed("unknown")
        );
        assert_eq!(unknown.recorded.lock().unwrap()[0].data, json!({"orderId": "o-1", "reason": "unknown"}));
    }

    #[tokio::test]
    async fn confirms_and_releases_report_what_they_did() {
        let store = FakeOrders::new(held(), Ok(true), Ok(false));
        assert_eq!(handle_message(&store, &completed("e-1")).await.unwrap(), OrderOutcome::Confirmed);
        assert_eq!(
            handle_message(&store, &cancelled("e-2")).await.unwrap(),
            OrderOutcome::Unchanged("released or expired already")
        );
        let confirmed =
            FakeOrders::new(held(), Ok(false), Err(Error::InvalidState { status: Status::Confirmed }));
        assert_eq!(
            handle_message(&confirmed, &cancelled("e-3")).await.unwrap(),
            OrderOutcome::Unchanged("confirmed")
        );
        assert_eq!(
            handle_message(&confirmed, &completed("e-4")).await.unwrap(),
            OrderOutcome::Unchanged("confirmed already")
        );
        let none = FakeOrders::new(None, Ok(true), Ok(true));
        assert_eq!(
            handle_message(&none, &cancelled("e-5")).await.unwrap(),
            OrderOutcome::Unchanged("no reservation")
        );
        assert!(store.recorded.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_event_naming_another_reservation_than_the_latest_acts_on_nothing() {
        // Confirm and release fail if called: the outcome shows they were not.
        let never = || Err(Error::internal("not to be called"));
        let store = FakeOrders::new(held(), never(), never());
        let older = uuid::Uuid::new_v4().to_string();
        let naming = |id: &str, kind: &str, reservation: &str| {
            message(id, "orders", kind, json!({"orderId": "o-1", "reservationId": reservation}))
        };
        assert_eq!(
            handle_message(&store, &naming("e-1", "OrderCompleted", &older)).await.unwrap(),
            OrderOutcome::ConfirmFailed(RESERVATION_MISMATCH)
        );
        let recorded = store.recorded.lock().unwrap().clone();
        assert_eq!(
            recorded[0].data,
            json!({"orderId": "o-1", "reason": "RESERVATION_MISMATCH", "reservationId": older})
        );
        assert!(matches!(
            handle_message(&store, &naming("e-2", "OrderCancelled", &older)).await.unwrap(),
            OrderOutcome::Unchanged(_)
        ));
        assert!(store.traces.lock().unwrap().is_empty(), "nothing released");
        // Naming the latest: as without a name.
        let store = FakeOrders::new(held(), Ok(true), Ok(true));
        let latest_id = store.reservation.as_ref().unwrap().reservation_id.clone();
        assert_eq!(
            handle_message(&store, &naming("e-3", "OrderCompleted", &latest_id)).await.unwrap(),
            OrderOutcome::Confirmed
        );
        assert_eq!(
            handle_message(&store, &naming("e-4", "OrderCancelled", &latest_id)).await.unwrap(),
            OrderOutcome::Released
        );
        // Not a reservation id at all: unreadable, redelivered then dead-lettered.
        assert!(matches!(
            handle_message(&store, &naming("e-5", "OrderCompleted", "not-an-id")).await,
            Err(OrderEventError::Unparseable(_))
        ));
    }

    #[tokio::test]
    async fn only_failures_that_may_pass_or_unreadable_messages_are_redelivered() {
        let store = FakeOrders::new(held(), Err(Error::Unavailable { retry_after_secs: 1 }), Ok(true));
        let mut batch = SqsEvent::default();
        let mut garbage = completed("e-0");
        garbage.body = Some("{not json".into());
        batch.records = vec![
            garbage,
            completed("e-1"),
            cancelled("e-2"),
            message("e-3", "payments", "OrderCompleted", json!({"orderId": "o-1"})),
            message("e-4", "orders", "OrderCompleted", json!({"orderId": "bad id"})),
        ];
        let response = handle_batch(&store, batch).await;
        let mut failed: Vec<_> =
            response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        failed.sort();
        assert_eq!(failed, ["m-e-0", "m-e-1", "m-e-4"]);
    }
}
