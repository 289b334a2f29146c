//! `publish-events`: the DynamoDB stream of the table in, the `inventory-events` bus out.
//!
//! Every state change wrote one outbox record in its own transaction; this function turns each
//! new outbox record into one EventBridge event, unchanged (so a retried publish carries the same
//! `eventId` and consumers can dedupe). It also derives `StockDepleted`, `StockLow` and
//! `StockReplenished` from stock item images (`plan` reads them, `domain::stock_crossings`
//! decides), each with an event id fixed by the item, its version and the type, so those too are
//! the same on every retry. Entries go out through [`EventBus`] (`crate::bus`).
//!
//! Failure handling follows the Lambda event source mapping for streams:
//! - a PutEvents entry (or call) that failed for a reason that may pass (throttling, an outage)
//!   is reported as a batch item failure; Lambda resumes from the lowest one reported, so later
//!   chunks of the batch are not sent once one failed (fewer duplicates);
//! - a record that can never be published (an outbox record that is not one, a detail EventBridge
//!   calls malformed, an entry it refuses for good) is sent to the publish dead-letter queue with
//!   everything needed to publish it later (`redrive`), and counts as handled.

mod plan;

use std::sync::atomic::{AtomicU64, Ordering};

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_smithy_types::error::display::DisplayErrorContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use plan::{plan_record, Planned};

use crate::bus::{calls, BusEntry, Delivery, EventBus};
use crate::Store;

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
    bus: EventBus,
    /// The table, for the stock events of sharded items (`Store::settle_stock_level`).
    store: Store,
    sqs: aws_sdk_sqs::Client,
    dead_letter_queue_url: String,
    stats: PublishStats,
}

impl Publisher {
    pub fn new(
        events: aws_sdk_eventbridge::Client,
        sqs: aws_sdk_sqs::Client,
        bus_name: impl Into<String>,
        dead_letter_queue_url: impl Into<String>,
        store: Store,
    ) -> Self {
        Publisher {
            bus: EventBus::new(events, bus_name),
            store,
            sqs,
            dead_letter_queue_url: dead_letter_queue_url.into(),
            stats: PublishStats::default(),
        }
    }

    pub fn stats(&self) -> &PublishStats {
        &self.stats
    }

    pub fn bus_name(&self) -> &str {
        self.bus.name()
    }

    /// Handles one batch of stream records; the response names the records to retry.
    pub async fn handle(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let records = event.records;
        let mut to_publish = Vec::new();
        let mut dead = Vec::new();
        let mut levels: Vec<(usize, String, String)> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            match plan_record(record) {
                Planned::Nothing => {}
                Planned::Publish(entries) => to_publish.extend(entries.into_iter().map(|entry| (i, entry))),
                Planned::Poison { reason } => dead.push((i, dead_letter(record, None, reason))),
                Planned::SettleLevel { sku, location_id } => {
                    if !levels.iter().any(|(_, s, l)| *s == sku && *l == location_id) {
                        levels.push((i, sku, location_id));
                    }
                }
            }
        }

        // A sharded item's total, once per item of the batch: its events are outbox records,
        // published when the stream brings them. Where one cannot be settled now, the stream
        // resumes from that record, so nothing after it is sent now.
        let mut failed: Vec<usize> = Vec::new();
        for (i, sku, location_id) in levels {
            match self.store.settle_stock_level(&sku, &location_id).await {
                Ok(_) => {}
                // DynamoDB did not answer in time (busy, throttled, unreachable): the stream
                // brings the record again.
                Err(e @ crate::Error::Unavailable { .. }) => {
                    tracing::warn!(%sku, %location_id, error = %e, "cannot settle a sharded item's stock level; will retry");
                    failed.push(i);
                    break;
                }
                // Anything else would fail again: the record goes to the dead-letter queue with
                // the reason, and does not hold up the stream.
                Err(e) => {
                    let reason = format!("cannot settle the stock level of {sku}/{location_id}: {e}");
                    dead.push((i, dead_letter(&records[i], None, reason)));
                }
            }
        }
        if let Some(&first) = failed.first() {
            let (now, later): (Vec<_>, Vec<_>) = to_publish.into_iter().partition(|(i, _)| *i < first);
            failed.extend(later.into_iter().map(|(i, _)| i));
            to_publish = now;
        }
        let mut published = 0;
        for chunk in calls(to_publish) {
            if !failed.is_empty() {
                // The stream resumes from the first failure: sending these now would only
                // publish them twice.
                failed.extend(chunk.iter().map(|(i, _)| *i));
                continue;
            }
            let entries: Vec<BusEntry> = chunk.iter().map(|(_, e)| e.clone()).collect();
            let deliveries = self.bus.put(&entries).await;
            for ((i, entry), delivery) in chunk.into_iter().zip(deliveries) {
                match delivery {
                    Delivery::Sent => {
                        self.stats.published.fetch_add(1, Ordering::Relaxed);
                        published += 1;
                    }
                    Delivery::Retryable(why) => {
                        tracing::warn!(event_id = %entry.event_id, reason = %why, "publish failed; will retry");
                        failed.push(i);
                    }
                    Delivery::Permanent(code) => {
                        let reason = format!("EventBridge refused the entry: {code}");
                        dead.push((i, dead_letter(&records[i], Some(entry), reason)));
                    }
                }
            }
        }
        // The stream resumes from the first failure, so a record after it comes again: it is
        // neither published nor dead-lettered now (it would be dead-lettered twice).
        let first_failure = failed.iter().min().copied();
        let (mut now, later): (Vec<_>, Vec<_>) =
            dead.into_iter().partition(|(i, _)| first_failure.is_none_or(|first| *i < first));
        now.sort_by_key(|(i, _)| *i);
        failed.extend(later.iter().map(|(i, _)| *i));
        let letters = now.len() as u64;
        let unsent = self.send_dead_letters(now).await;
        let dead_lettered = letters - unsent.len() as u64;
        failed.extend(unsent);

        failed.sort_unstable();
        failed.dedup();
        self.stats.failed.fetch_add(failed.len() as u64, Ordering::Relaxed);
        crate::metrics::events(published, failed.len() as u64, dead_lettered);
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

    /// Sends dead letters (in record order) to the queue; returns the records whose letter was not
    /// sent. After a chunk with a failure no more are sent: the stream delivers those records
    /// again, and a letter sent now would be sent twice.
    async fn send_dead_letters(&self, letters: Vec<(usize, DeadLetter)>) -> Vec<usize> {
        let mut unsent = Vec::new();
        for chunk in letters.chunks(10) {
            if !unsent.is_empty() {
                unsent.extend(chunk.iter().map(|(i, _)| *i));
                continue;
            }
            for (_, letter) in chunk {
                tracing::error!(stream_event_id = %letter.stream_event_id, error = %letter.error, "dead-lettering a record");
            }
            let entries = crate::sqs::send_entries(
                chunk.iter().map(|(_, l)| (serde_json::to_string(l).unwrap_or_default(), None)),
            );
            let sent = self
                .sqs
                .send_message_batch()
                .queue_url(&self.dead_letter_queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match sent {
                Ok(out) => {
                    let failed: Vec<usize> = out
                        .failed
                        .iter()
                        .filter_map(|f| crate::sqs::entry_position(&f.id).and_then(|n| chunk.get(n)))
                        .map(|(i, _)| *i)
                        .collect();
                    let sent = chunk.len().saturating_sub(failed.len());
                    self.stats.dead_lettered.fetch_add(sent as u64, Ordering::Relaxed);
                    unsent.extend(failed);
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
