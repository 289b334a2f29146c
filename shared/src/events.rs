//! The outbound event envelope of docs/api.md. Every state change writes one outbox record in the same
//! DynamoDB transaction as the change; `publish-events` later puts it on the bus unchanged.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::timestamp;

/// `source` of every event this service publishes.
pub const EVENT_SOURCE: &str = "inventory";
pub const EVENT_VERSION: u32 = 1;

/// The `detail-type`s of docs/api.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DetailType {
    StockAdjusted,
    ReservationCreated,
    ReservationModified,
    ReservationExtended,
    ReservationConfirmed,
    ReservationReleased,
    ReservationExpired,
    StockDepleted,
    StockLow,
    StockReplenished,
    ReservationConfirmFailed,
    ChannelUpdated,
    KitUpdated,
    InventoryDriftDetected,
}

impl DetailType {
    pub fn as_str(self) -> &'static str {
        match self {
            DetailType::StockAdjusted => "StockAdjusted",
            DetailType::ReservationCreated => "ReservationCreated",
            DetailType::ReservationModified => "ReservationModified",
            DetailType::ReservationExtended => "ReservationExtended",
            DetailType::ReservationConfirmed => "ReservationConfirmed",
            DetailType::ReservationReleased => "ReservationReleased",
            DetailType::ReservationExpired => "ReservationExpired",
            DetailType::StockDepleted => "StockDepleted",
            DetailType::StockLow => "StockLow",
            DetailType::StockReplenished => "StockReplenished",
            DetailType::ReservationConfirmFailed => "ReservationConfirmFailed",
            DetailType::ChannelUpdated => "ChannelUpdated",
            DetailType::KitUpdated => "KitUpdated",
            DetailType::InventoryDriftDetected => "InventoryDriftDetected",
        }
    }
}

/// One event, as written to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub event_id: String,
    pub detail_type: DetailType,
    pub occurred_at: DateTime<Utc>,
    pub correlation_id: Option<String>,
    pub data: Value,
    /// The X-Ray trace header of the work that wrote it (the outbox record carries it onto the
    /// PutEvents entry).
    pub trace_header: Option<String>,
}

impl OutboxEvent {
    pub fn new(
        detail_type: DetailType,
        data: Value,
        occurred_at: DateTime<Utc>,
        correlation_id: Option<&str>,
    ) -> Self {
        OutboxEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            detail_type,
            occurred_at,
            correlation_id: correlation_id.map(str::to_owned),
            data,
            trace_header: None,
        }
    }

    /// The EventBridge `detail`: `{eventId, eventVersion, occurredAt, correlationId?, data}`.
    pub fn detail(&self) -> Value {
        let mut detail = json!({
            "eventId": self.event_id,
            "eventVersion": EVENT_VERSION,
            "occurredAt": timestamp::format(&self.occurred_at),
            "data": self.data,
        });
        if let Some(id) = &self.correlation_id {
            detail["correlationId"] = json!(id);
        }
        detail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detail_envelope_has_the_contract_fields() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T15:04:05.123Z").unwrap().with_timezone(&Utc);
        let e = OutboxEvent::new(DetailType::ReservationCreated, json!({"x": 1}), at, Some("corr-1"));
        let d = e.detail();
        assert_eq!(d["eventVersion"], 1);
        assert_eq!(d["occurredAt"], "2026-11-23T15:04:05.123Z");
        assert_eq!(d["correlationId"], "corr-1");
        assert_eq!(d["data"]["x"], 1);
        assert!(uuid::Uuid::parse_str(d["eventId"].as_str().unwrap()).is_ok());
        let no_corr = OutboxEvent::new(DetailType::StockAdjusted, json!({}), at, None).detail();
        assert!(no_corr.get("correlationId").is_none());
    }
}
