//! The one path to EventBridge, used by the publisher, the audit and redrive: [`EventBus`] puts
//! entries on the bus in PutEvents calls (at most 10 entries and 256 KiB each, [`calls`]) and
//! says what became of each entry ([`Delivery`]: sent, retryable, or refused for good). What to
//! do with an entry that was not sent is each caller's policy.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::{OutboxEvent, EVENT_SOURCE};
use crate::timestamp;

/// PutEvents takes at most 10 entries and 256 KiB per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;

/// One event to put on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusEntry {
    pub event_id: String,
    pub source: String,
    pub detail_type: String,
    /// The `detail` JSON text: `{eventId, eventVersion, occurredAt, correlationId?, data}`.
    pub detail: String,
    #[serde(with = "timestamp")]
    pub time: DateTime<Utc>,
    /// The X-Ray trace header of the request that caused the event (`crate::xray`), put on the
    /// PutEvents entry so that one trace shows both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_header: Option<String>,
}

impl BusEntry {
    /// EventBridge's size of an entry (the 256 KiB limit counts these bytes).
    pub fn size(&self) -> usize {
        14 + self.source.len() + self.detail_type.len() + self.detail.len()
    }

    /// The PutEvents entry for the bus `bus_name`.
    pub fn request_entry(&self, bus_name: &str) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(bus_name)
            .source(&self.source)
            .detail_type(&self.detail_type)
            .detail(&self.detail)
            .time(aws_smithy_types::DateTime::from_millis(self.time.timestamp_millis()))
            .set_trace_header(self.trace_header.clone())
            .build()
    }

    pub(crate) fn from_event(event: &OutboxEvent) -> Self {
        BusEntry {
            event_id: event.event_id.clone(),
            source: EVENT_SOURCE.to_owned(),
            detail_type: event.detail_type.as_str().to_owned(),
            detail: event.detail().to_string(),
            time: event.occurred_at,
            trace_header: event.trace_header.clone(),
        }
    }
}

/// A bus and the client that reaches it.
#[derive(Debug, Clone)]
pub struct EventBus {
    events: aws_sdk_eventbridge::Client,
    name: String,
}

impl EventBus {
    pub fn new(events: aws_sdk_eventbridge::Client, name: impl Into<String>) -> Self {
        EventBus { events, name: name.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One PutEvents call (at most [`MAX_ENTRIES_PER_CALL`] entries, as [`calls`] groups them):
    /// one delivery per entry, in order. A failed call is a retryable failure of every entry.
    pub async fn put(&self, entries: &[BusEntry]) -> Vec<Delivery> {
        let request: Vec<PutEventsRequestEntry> =
            entries.iter().map(|e| e.request_entry(&self.name)).collect();
        match self.events.put_events().set_entries(Some(request)).send().await {
            Ok(out) => {
                let results = out.entries.unwrap_or_default();
                (0..entries.len())
                    .map(|i| match results.get(i) {
                        Some(r) => delivery(r.error_code()),
                        // A response with fewer results than entries says nothing of the rest.
                        None => Delivery::Retryable("no result for the entry".into()),
                    })
                    .collect()
            }
            Err(e) => {
                let why = format!("PutEvents failed: {}", DisplayErrorContext(&e));
                vec![Delivery::Retryable(why); entries.len()]
            }
        }
    }

    /// Every entry, in as many calls as it takes: one delivery per entry, in order.
    pub async fn send(&self, entries: Vec<BusEntry>) -> Vec<Delivery> {
        let mut deliveries = Vec::with_capacity(entries.len());
        for call in calls(entries.into_iter().map(|e| ((), e)).collect()) {
            let entries: Vec<BusEntry> = call.into_iter().map(|(_, e)| e).collect();
            deliveries.extend(self.put(&entries).await);
        }
        deliveries
    }
}

/// Groups entries into PutEvents calls (at most 10 entries and 256 KiB each), keeping order.
pub fn calls<T>(entries: Vec<(T, BusEntry)>) -> Vec<Vec<(T, BusEntry)>> {
    let mut chunks: Vec<Vec<(T, BusEntry)>> = Vec::new();
    let mut bytes = 0;
    for (tag, entry) in entries {
        let size = entry.size();
        match chunks.last_mut() {
            Some(chunk) if chunk.len() < MAX_ENTRIES_PER_CALL && bytes + size <= MAX_BYTES_PER_CALL => {
                bytes += size;
                chunk.push((tag, entry));
            }
            _ => {
                bytes = size;
                chunks.push(vec![(tag, entry)]);
            }
        }
    }
    chunks
}

/// What became of one entry sent to the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Not sent, for a reason that may pass (throttling, an internal failure, an outage).
    Retryable(String),
    /// EventBridge refuses this entry for good: sending it again never helps.
    Permanent(String),
}

/// EventBridge's per-entry error codes that retrying never fixes (PutEventsResultEntry docs).
/// Anything else (InternalFailure, ThrottlingException, codes we do not know) is retried.
pub fn delivery(error_code: Option<&str>) -> Delivery {
    match error_code {
        None => Delivery::Sent,
        Some(
            code @ ("MalformedDetail"
            | "InvalidArgument"
            | "ValidationException"
            | "RedactionFailure"
            | "AccessDeniedException"
            | "InvalidAccountIdException"
            | "NotAuthorizedForSourceException"
            | "NotAuthorizedForDetailTypeException"),
        ) => Delivery::Permanent(code.to_owned()),
        Some(code) => Delivery::Retryable(code.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_at_most_ten_entries_and_256_kib() {
        let entry = |n: usize| BusEntry {
            event_id: "x".into(),
            source: "inventory".into(),
            detail_type: "T".into(),
            detail: "x".repeat(n),
            time: Utc::now(),
            trace_header: None,
        };
        let sizes: Vec<usize> =
            calls((0..25).map(|i| (i, entry(10))).collect()).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        let big = calls((0..3).map(|i| (i, entry(100 * 1024))).collect());
        assert_eq!(big.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(big[1][0].0, 2, "order is kept");
    }

    #[test]
    fn entry_errors_that_never_pass_are_refused_and_others_retried() {
        assert_eq!(delivery(None), Delivery::Sent);
        assert!(matches!(delivery(Some("MalformedDetail")), Delivery::Permanent(_)));
        assert!(matches!(delivery(Some("ThrottlingException")), Delivery::Retryable(_)));
        assert!(matches!(delivery(Some("InternalFailure")), Delivery::Retryable(_)));
    }
}
