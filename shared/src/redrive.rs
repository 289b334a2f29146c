//! Moving messages out of a dead-letter queue once their cause is fixed.
//!
//! - From the order-events DLQ (or any DLQ with a redrive policy pointing at it) the messages go
//!   back to the source queue, found with ListDeadLetterSourceQueues, bodies and attributes kept.
//! - From the publish-events DLQ (letters of [`crate::publish::DeadLetter`]) the entries are put
//!   on the event bus again, with their original event ids.
//!
//! A message is deleted from the DLQ only after its move succeeded (failed deletes are tried
//! again, so a moved message does not stay behind to be moved twice); one that could not be moved
//! is made visible again at once and stays. The dry run receives every message, reports it, and
//! makes it visible again without moving anything.

use std::collections::HashSet;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::bus::{Delivery, EventBus};
use crate::publish::DeadLetter;
use crate::sqs as sqs_entries;

/// Seconds a message stays hidden while it is being moved.
const MOVE_VISIBILITY_SECONDS: i32 = 60;
/// Tries at deleting moved messages from the DLQ.
const DELETE_ATTEMPTS: u32 = 4;

/// Where the messages of a DLQ go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Queue(String),
    Bus(String),
}

/// One message seen in the DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub message_id: String,
    pub receive_count: Option<String>,
    /// A short description of the body (detail-type and order id, or the publish entry).
    pub summary: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub seen: Vec<Seen>,
    pub moved: usize,
    pub failed: usize,
    /// Moved, but still in the DLQ after every delete attempt: a later run would move them again.
    pub undeleted: usize,
}

/// The queue whose redrive policy sends its dead letters to `dlq_url`.
pub async fn source_queue(sqs: &aws_sdk_sqs::Client, dlq_url: &str) -> Result<String, String> {
    let out =
        sqs.list_dead_letter_source_queues().queue_url(dlq_url).send().await.map_err(|e| {
            format!("cannot list the source queues of {dlq_url}: {}", DisplayErrorContext(&e))
        })?;
    match out.queue_urls.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no queue sends its dead letters to {dlq_url}; give the target explicitly")),
        many => Err(format!(
            "several queues send dead letters to {dlq_url} ({many:?}); give the target explicitly"
        )),
    }
}

/// Moves (or with `dry_run`, lists) every message of `dlq_url` to `target`.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    events: &aws_sdk_eventbridge::Client,
    dlq_url: &str,
    target: &Target,
    dry_run: bool,
) -> Result<Report, String> {
    let mut report = Report::default();
    let mut handled: HashSet<String> = HashSet::new();
    let mut to_unhide = Vec::new();
    loop {
        let messages = receive(sqs, dlq_url).await?;
        // A message seen twice in this run is one we could not move (or, dry, all of them).
        let fresh: Vec<Message> = messages
            .into_iter()
            .filter(|m| handled.insert(m.message_id.clone().unwrap_or_default()))
            .collect();
        if fresh.is_empty() {
            break;
        }
        report.seen.extend(fresh.iter().map(seen));
        if dry_run {
            to_unhide.extend(fresh);
            continue;
        }
        let moved = match target {
            Target::Queue(url) => send_to_queue(sqs, url, &fresh).await,
            Target::Bus(bus) => put_on_bus(events, bus, &fresh).await,
        };
        let (mut done, mut not_done) = (Vec::new(), Vec::new());
        for (i, message) in fresh.into_iter().enumerate() {
            if moved.contains(&i) {
                done.push(message);
            } else {
                not_done.push(message);
            }
        }
        report.moved += done.len();
        report.undeleted += delete(sqs, dlq_url, &done).await;
        report.failed += not_done.len();
        to_unhide.extend(not_done);
    }
    unhide(sqs, dlq_url, &to_unhide).await;
    Ok(report)
}

async fn receive(sqs: &aws_sdk_sqs::Client, dlq_url: &str) -> Result<Vec<Message>, String> {
    let out = sqs
        .receive_message()
        .queue_url(dlq_url)
        .max_number_of_messages(10)
        .visibility_timeout(MOVE_VISIBILITY_SECONDS)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| format!("cannot receive from {dlq_url}: {}", DisplayErrorContext(&e)))?;
    Ok(out.messages.unwrap_or_default())
}

fn seen(m: &Message) -> Seen {
    let body = m.body.as_deref().unwrap_or_default();
    let summary = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) if v.get("detail-type").is_some() => {
            format!("{} orderId={}", v["detail-type"].as_str().unwrap_or("?"), v["detail"]["orderId"])
        }
        Ok(v) if v.get("error").is_some() => format!(
            "{} eventId={} error={}",
            v["entry"]["detailType"].as_str().unwrap_or("(no entry)"),
            v["entry"]["eventId"],
            v["error"]
        ),
        _ => body.chars().take(120).collect(),
    };
    Seen {
        message_id: m.message_id.clone().unwrap_or_default(),
        receive_count: m
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .cloned(),
        summary,
    }
}

/// Sends the messages to the queue; returns the indexes sent.
async fn send_to_queue(sqs: &aws_sdk_sqs::Client, queue_url: &str, messages: &[Message]) -> HashSet<usize> {
    let entries = sqs_entries::send_entries(
        messages.iter().map(|m| (m.body.clone().unwrap_or_default(), m.message_attributes.clone())),
    );
    match sqs.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await {
        Ok(out) => out.successful.iter().filter_map(|s| sqs_entries::entry_position(&s.id)).collect(),
        Err(e) => {
            tracing::error!(error = %DisplayErrorContext(&e), "cannot send to {queue_url}");
            HashSet::new()
        }
    }
}

/// Puts the dead-lettered entries on the bus again; returns the indexes published.
async fn put_on_bus(events: &aws_sdk_eventbridge::Client, bus: &str, messages: &[Message]) -> HashSet<usize> {
    let mut indexes = Vec::new();
    let mut entries = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let letter = serde_json::from_str::<DeadLetter>(m.body.as_deref().unwrap_or_default()).ok();
        let Some(entry) = letter.and_then(|l| l.entry) else {
            tracing::error!(message_id = ?m.message_id, "not a publish dead letter with an entry; left in the DLQ");
            continue;
        };
        indexes.push(i);
        entries.push(entry);
    }
    let deliveries = EventBus::new(events.clone(), bus).send(entries).await;
    let mut sent = HashSet::new();
    for (i, delivery) in indexes.into_iter().zip(deliveries) {
        match delivery {
            Delivery::Sent => {
                sent.insert(i);
            }
            // Left in the DLQ (made visible again) for a later run or a look.
            Delivery::Retryable(why) | Delivery::Permanent(why) => {
                tracing::error!(message_id = ?messages[i].message_id, reason = %why, "not put on {bus}");
            }
        }
    }
    sent
}

/// Deletes moved messages from the DLQ, trying again what failed (a delete by receipt handle is
/// idempotent), so that a moved message does not stay behind for a later run to move again; a
/// failure never ends the run before the messages it could not move are made visible again.
/// Returns how many could not be deleted.
async fn delete(sqs: &aws_sdk_sqs::Client, dlq_url: &str, messages: &[Message]) -> usize {
    let mut pending: Vec<&Message> = messages.iter().collect();
    for attempt in 0..DELETE_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt))).await;
        }
        let receipts = pending.iter().map(|m| m.receipt_handle.as_deref().unwrap_or_default());
        let sent = sqs
            .delete_message_batch()
            .queue_url(dlq_url)
            .set_entries(Some(sqs_entries::delete_entries(receipts)))
            .send()
            .await;
        match sent {
            Ok(out) => {
                let failed: HashSet<usize> =
                    out.failed.iter().filter_map(|f| sqs_entries::entry_position(&f.id)).collect();
                pending = pending
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| failed.contains(i))
                    .map(|(_, m)| m)
                    .collect();
            }
            Err(e) => {
                tracing::warn!(error = %DisplayErrorContext(&e), attempt, "cannot delete moved messages from {dlq_url}")
            }
        }
    }
    if !pending.is_empty() {
        tracing::error!(
            count = pending.len(),
            "moved messages are still in {dlq_url}: a later run would move them again"
        );
    }
    pending.len()
}

/// Makes messages visible again at once (best effort: otherwise they reappear after
/// [`MOVE_VISIBILITY_SECONDS`]).
async fn unhide(sqs: &aws_sdk_sqs::Client, dlq_url: &str, messages: &[Message]) {
    for chunk in messages.chunks(10) {
        let entries = sqs_entries::visibility_entries(
            chunk.iter().map(|m| m.receipt_handle.as_deref().unwrap_or_default()),
            0,
        );
        let sent =
            sqs.change_message_visibility_batch().queue_url(dlq_url).set_entries(Some(entries)).send().await;
        if let Err(e) = sent {
            tracing::warn!(error = %DisplayErrorContext(&e), "messages stay hidden for {MOVE_VISIBILITY_SECONDS}s");
        }
    }
}
