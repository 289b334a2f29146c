//! `publish-events`: the DynamoDB stream of the table in, the `inventory-events` bus out.
//!
//! Every state change wrote one outbox record in its own transaction; this function turns each
//! new outbox record into one EventBridge event, unchanged (so a retried publish carries the same
//! `eventId` and consumers can dedupe). It also derives `StockDepleted` from stock item images
//! (available > 0 before, 0 after), with an event id fixed by the item and its version, so that
//! one too is the same on every retry.
//!
//! Failure handling follows the Lambda event source mapping for streams:
//! - a PutEvents entry (or call) that failed for a reason that may pass (throttling, an outage)
//!   is reported as a batch item failure; Lambda resumes from the lowest one reported, so later
//!   chunks of the batch are not sent once one failed (fewer duplicates);
//! - a record that can never be published (an outbox record that is not one, a detail EventBridge
//!   calls malformed, an entry it refuses for good) is sent to the publish dead-letter queue with
//!   everything needed to publish it later (`redrive`), and counts as handled.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{timestamp, StockItem};
use crate::events::{DetailType, OutboxEvent, EVENT_SOURCE};

/// PutEvents takes at most 10 entries and 256 KiB per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;

/// Names `StockDepleted` event ids (UUID v5 of `pk|sk|version`): the same stream record always
/// yields the same id.
const STOCK_DEPLETED_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5f1e_0c47_9a2d_4b7e_8c31_6d0a_e4b2_9f15);

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
            .build()
    }

    fn from_event(event: &OutboxEvent) -> Self {
        BusEntry {
            event_id: event.event_id.clone(),
            source: EVENT_SOURCE.to_owned(),
            detail_type: event.detail_type.as_str().to_owned(),
            detail: event.detail().to_string(),
            time: event.occurred_at,
        }
    }
}

/// What one stream record asks of the publisher.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Not an event (a reservation or order key write, an outbox record's TTL removal...).
    Nothing,
    Publish(BusEntry),
    /// Can never be published as it is: straight to the dead-letter queue.
    Poison {
        reason: String,
    },
}

/// The outbox record as the store writes it (`store::items::outbox_item`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutboxRecord {
    event_id: String,
    source: String,
    detail_type: String,
    detail: String,
    occurred_at: String,
}

#[derive(Deserialize)]
struct Entity {
    entity: Option<String>,
}

fn entity(image: &serde_dynamo::Item) -> Option<String> {
    serde_dynamo::from_item::<_, Entity>(image.clone()).ok().and_then(|e| e.entity)
}

/// Decides what a stream record means for the bus. Pure: no I/O.
pub fn plan_record(record: &EventRecord) -> Planned {
    let new = &record.change.new_image;
    match (record.event_name.as_str(), entity(new).as_deref()) {
        ("INSERT", Some("OUTBOX")) => plan_outbox(new),
        ("INSERT" | "MODIFY", Some("STOCK")) => plan_stock_depleted(&record.change.old_image, new),
        _ => Planned::Nothing,
    }
}

fn plan_outbox(image: &serde_dynamo::Item) -> Planned {
    let record: OutboxRecord = match serde_dynamo::from_item(image.clone()) {
        Ok(r) => r,
        Err(e) => return Planned::Poison { reason: format!("not an outbox record: {e}") },
    };
    let Some(time) = timestamp::parse(&record.occurred_at) else {
        return Planned::Poison { reason: format!("occurredAt {:?} is not a timestamp", record.occurred_at) };
    };
    if serde_json::from_str::<Value>(&record.detail).map_or(true, |d| !d.is_object()) {
        return Planned::Poison { reason: "detail is not a JSON object".into() };
    }
    let entry = BusEntry {
        event_id: record.event_id,
        source: record.source,
        detail_type: record.detail_type,
        detail: record.detail,
        time,
    };
    if entry.size() > MAX_BYTES_PER_CALL {
        return Planned::Poison {
            reason: format!("entry of {} bytes exceeds PutEvents' limit", entry.size()),
        };
    }
    Planned::Publish(entry)
}

/// `StockDepleted` when a location's available went from > 0 to 0.
fn plan_stock_depleted(old: &serde_dynamo::Item, new: &serde_dynamo::Item) -> Planned {
    let Ok(after) = serde_dynamo::from_item::<_, StockItem>(new.clone()) else {
        return Planned::Nothing;
    };
    let before = serde_dynamo::from_item::<_, StockItem>(old.clone()).ok();
    if after.available != 0 || before.is_none_or(|b| b.available <= 0) {
        return Planned::Nothing;
    }
    let name = format!("STOCK#{}|LOC#{}|{}", after.sku, after.location_id, after.version);
    let data = match serde_json::to_value(&after) {
        Ok(data) => data,
        Err(e) => return Planned::Poison { reason: format!("stock item: {e}") },
    };
    let mut event = OutboxEvent::new(DetailType::StockDepleted, data, after.updated_at, None);
    event.event_id = uuid::Uuid::new_v5(&STOCK_DEPLETED_NAMESPACE, name.as_bytes()).to_string();
    Planned::Publish(BusEntry::from_event(&event))
}

/// Groups entries into PutEvents calls (at most 10 entries and 256 KiB each), keeping order.
pub fn chunk_entries<T>(entries: Vec<(T, BusEntry)>) -> Vec<Vec<(T, BusEntry)>> {
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

/// What became of one entry of a PutEvents call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    Published,
    /// May pass: retry later (throttling, an internal failure, an outage).
    Retry(String),
    /// EventBridge refuses this entry for good: dead-letter it.
    Refused(String),
}

/// EventBridge's per-entry error codes that retrying never fixes (PutEventsResultEntry docs).
/// Anything else (InternalFailure, ThrottlingException, codes we do not know) is retried.
pub fn entry_outcome(error_code: Option<&str>) -> EntryOutcome {
    match error_code {
        None => EntryOutcome::Published,
        Some(
            code @ ("MalformedDetail"
            | "InvalidArgument"
            | "ValidationException"
            | "RedactionFailure"
            | "AccessDeniedException"
            | "InvalidAccountIdException"
            | "NotAuthorizedForSourceException"
            | "NotAuthorizedForDetailTypeException"),
        ) => EntryOutcome::Refused(code.to_owned()),
        Some(code) => EntryOutcome::Retry(code.to_owned()),
    }
}

/// A dead letter of the publisher: the entry (when there is one) and why it was given up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<BusEntry>,
    pub error: String,
    /// The stream record's `eventID` and sequence number, to find it in logs.
    pub stream_event_id: String,
    pub sequence_number: Option<String>,
    /// The record itself when it could not be read as an entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Value>,
}

/// Counters over the publisher's life (logged, and read by tests).
#[derive(Debug, Default)]
pub struct PublishStats {
    pub published: AtomicU64,
    pub failed: AtomicU64,
    pub dead_lettered: AtomicU64,
}

impl PublishStats {
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }
}

/// The `publish-events` handler and its dependencies.
pub struct Publisher {
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    bus_name: String,
    dead_letter_queue_url: String,
    stats: PublishStats,
}

impl Publisher {
    pub fn new(
        events: aws_sdk_eventbridge::Client,
        sqs: aws_sdk_sqs::Client,
        bus_name: impl Into<String>,
        dead_letter_queue_url: impl Into<String>,
    ) -> Self {
        Publisher {
            events,
            sqs,
            bus_name: bus_name.into(),
            dead_letter_queue_url: dead_letter_queue_url.into(),
            stats: PublishStats::default(),
        }
    }

    pub fn stats(&self) -> &PublishStats {
        &self.stats
    }

    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    /// Handles one batch of stream records; the response names the records to retry.
    pub async fn handle(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let records = event.records;
        let mut to_publish = Vec::new();
        let mut dead = Vec::new();
        for (i, record) in records.iter().enumerate() {
            match plan_record(record) {
                Planned::Nothing => {}
                Planned::Publish(entry) => to_publish.push((i, entry)),
                Planned::Poison { reason } => dead.push((i, dead_letter(record, None, reason))),
            }
        }

        let mut failed: Vec<usize> = Vec::new();
        for chunk in chunk_entries(to_publish) {
            if !failed.is_empty() {
                // The stream resumes from the first failure: sending these now would only
                // publish them twice.
                failed.extend(chunk.iter().map(|(i, _)| *i));
                continue;
            }
            let entries: Vec<BusEntry> = chunk.iter().map(|(_, e)| e.clone()).collect();
            let outcomes = self.put_events(&entries).await;
            for ((i, entry), outcome) in chunk.into_iter().zip(outcomes) {
                match outcome {
                    EntryOutcome::Published => {
                        self.stats.published.fetch_add(1, Ordering::Relaxed);
                    }
                    EntryOutcome::Retry(why) => {
                        tracing::warn!(event_id = %entry.event_id, reason = %why, "publish failed; will retry");
                        failed.push(i);
                    }
                    EntryOutcome::Refused(code) => {
                        let reason = format!("EventBridge refused the entry: {code}");
                        dead.push((i, dead_letter(&records[i], Some(entry), reason)));
                    }
                }
            }
        }
        failed.extend(self.send_dead_letters(dead).await);

        failed.sort_unstable();
        failed.dedup();
        self.stats.failed.fetch_add(failed.len() as u64, Ordering::Relaxed);
        let mut response = DynamoDbEventResponse::default();
        for i in failed {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = records[i].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        tracing::info!(
            records = records.len(),
            failed = response.batch_item_failures.len(),
            published_total = self.stats.published(),
            "publish batch"
        );
        response
    }

    /// One PutEvents call; one outcome per entry, in order.
    async fn put_events(&self, entries: &[BusEntry]) -> Vec<EntryOutcome> {
        let request: Vec<PutEventsRequestEntry> =
            entries.iter().map(|e| e.request_entry(&self.bus_name)).collect();
        match self.events.put_events().set_entries(Some(request)).send().await {
            Ok(out) => {
                let results = out.entries.unwrap_or_default();
                (0..entries.len())
                    .map(|i| match results.get(i) {
                        Some(r) => entry_outcome(r.error_code()),
                        // A response with fewer results than entries says nothing of the rest.
                        None => EntryOutcome::Retry("no result for the entry".into()),
                    })
                    .collect()
            }
            Err(e) => {
                let why = format!("PutEvents failed: {}", DisplayErrorContext(&e));
                vec![EntryOutcome::Retry(why); entries.len()]
            }
        }
    }

    /// Sends dead letters to the queue; returns the records whose letter could not be sent.
    async fn send_dead_letters(&self, letters: Vec<(usize, DeadLetter)>) -> Vec<usize> {
        let mut unsent = Vec::new();
        for chunk in letters.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (n, (_, letter)) in chunk.iter().enumerate() {
                tracing::error!(stream_event_id = %letter.stream_event_id, error = %letter.error, "dead-lettering a record");
                let body = serde_json::to_string(letter).unwrap_or_default();
                match SendMessageBatchRequestEntry::builder().id(n.to_string()).message_body(body).build() {
                    Ok(entry) => entries.push(entry),
                    Err(_) => unsent.push(chunk[n].0),
                }
            }
            let sent = self
                .sqs
                .send_message_batch()
                .queue_url(&self.dead_letter_queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match sent {
                Ok(out) => {
                    for failure in out.failed {
                        if let Some((i, _)) = failure.id.parse::<usize>().ok().and_then(|n| chunk.get(n)) {
                            unsent.push(*i);
                        }
                    }
                    let sent = chunk.len().saturating_sub(unsent.len());
                    self.stats.dead_lettered.fetch_add(sent as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(error = %DisplayErrorContext(&e), "cannot reach the dead-letter queue");
                    unsent.extend(chunk.iter().map(|(i, _)| *i));
                }
            }
        }
        unsent
    }
}

fn dead_letter(record: &EventRecord, entry: Option<BusEntry>, error: String) -> DeadLetter {
    let raw = if entry.is_none() { serde_json::to_value(record).ok() } else { None };
    DeadLetter {
        entry,
        error,
        stream_event_id: record.event_id.clone(),
        sequence_number: record.change.sequence_number.clone(),
        record: raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::items::{outbox_item, stock_item};
    use serde_json::json;

    fn record(name: &str, old: Option<crate::store::Item>, new: Option<crate::store::Item>) -> EventRecord {
        let mut r = EventRecord::default();
        r.event_name = name.into();
        r.event_id = "e1".into();
        r.change.sequence_number = Some("100".into());
        r.change.old_image = old.map(serde_dynamo::Item::from).unwrap_or_default();
        r.change.new_image = new.map(serde_dynamo::Item::from).unwrap_or_default();
        r
    }

    fn stock(available: i64, version: u64) -> StockItem {
        StockItem {
            sku: "A".into(),
            location_id: "w1".into(),
            on_hand: 5,
            reserved: 5 - available,
            available,
            version,
            updated_at: timestamp::parse("2026-11-23T10:00:00.000Z").unwrap(),
        }
    }

    #[test]
    fn an_outbox_insert_is_published_unchanged() {
        let at = timestamp::parse("2026-11-23T10:00:00.000Z").unwrap();
        let event = OutboxEvent::new(DetailType::ReservationCreated, json!({"a": 1}), at, Some("c"));
        let Planned::Publish(entry) = plan_record(&record("INSERT", None, Some(outbox_item(&event)))) else {
            panic!("expected an entry");
        };
        assert_eq!(entry, BusEntry::from_event(&event));
        assert_eq!(entry.source, "inventory");
        // The outbox record's TTL removal and other writes publish nothing.
        assert_eq!(plan_record(&record("REMOVE", Some(outbox_item(&event)), None)), Planned::Nothing);
    }

    #[test]
    fn a_broken_outbox_record_is_poison() {
        let at = Utc::now();
        let mut item = outbox_item(&OutboxEvent::new(DetailType::StockAdjusted, json!({}), at, None));
        item.insert("detail".into(), crate::store::items::s("not json"));
        assert!(matches!(plan_record(&record("INSERT", None, Some(item))), Planned::Poison { .. }));
    }

    #[test]
    fn stock_depleted_only_when_available_reaches_zero_from_above() {
        let depleted = record(
            "MODIFY",
            Some(stock_item(&stock(1, 3)).unwrap()),
            Some(stock_item(&stock(0, 4)).unwrap()),
        );
        let Planned::Publish(entry) = plan_record(&depleted) else { panic!("expected StockDepleted") };
        assert_eq!(entry.detail_type, "StockDepleted");
        let detail: Value = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(detail["data"]["available"], 0);
        assert_eq!(detail["data"]["version"], 4);
        // The same record always gives the same event id.
        let Planned::Publish(again) = plan_record(&depleted) else { panic!() };
        assert_eq!(again.event_id, entry.event_id);

        for (old, new) in [(Some(0), 0), (Some(2), 1), (None, 0), (Some(0), 3)] {
            let r = record(
                "MODIFY",
                old.map(|a| stock_item(&stock(a, 1)).unwrap()),
                Some(stock_item(&stock(new, 2)).unwrap()),
            );
            assert_eq!(plan_record(&r), Planned::Nothing, "{old:?} -> {new}");
        }
    }

    #[test]
    fn chunks_hold_at_most_ten_entries_and_256_kib() {
        let entry = |n: usize| BusEntry {
            event_id: "x".into(),
            source: "inventory".into(),
            detail_type: "T".into(),
            detail: "x".repeat(n),
            time: Utc::now(),
        };
        let sizes: Vec<usize> =
            chunk_entries((0..25).map(|i| (i, entry(10))).collect()).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        let big = chunk_entries((0..3).map(|i| (i, entry(100 * 1024))).collect());
        assert_eq!(big.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(big[1][0].0, 2, "order is kept");
    }

    #[test]
    fn entry_errors_that_never_pass_are_refused_and_others_retried() {
        assert_eq!(entry_outcome(None), EntryOutcome::Published);
        assert!(matches!(entry_outcome(Some("MalformedDetail")), EntryOutcome::Refused(_)));
        assert!(matches!(entry_outcome(Some("ThrottlingException")), EntryOutcome::Retry(_)));
        assert!(matches!(entry_outcome(Some("InternalFailure")), EntryOutcome::Retry(_)));
    }
}
