//! The publisher's failure paths, batch by batch, as Lambda's stream event source mapping drives
//! them: after a failure it delivers the batch again from the lowest failed record, so nothing
//! after that record may be sent yet, or it would be sent twice.

use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use integration_tests::event_stack::EventStack;
use integration_tests::Fault;
use inventory::events::{DetailType, OutboxEvent};
use inventory::store::items::{outbox_item, s};
use serde_json::json;

/// A stream record inserting an outbox record; `poison`: one EventBridge can never take.
fn outbox_insert(seq: usize, poison: bool) -> EventRecord {
    let event = OutboxEvent::new(DetailType::StockAdjusted, json!({"n": seq}), chrono::Utc::now(), None);
    let mut item = outbox_item(&event);
    if poison {
        item.insert("detail".into(), s("{not json"));
    }
    let mut record = EventRecord::default();
    record.event_name = "INSERT".into();
    record.event_id = format!("e{seq}");
    record.change.sequence_number = Some(format!("{seq:06}"));
    record.change.new_image = serde_dynamo::Item::from(item);
    record
}

/// What the mapping delivers next: the batch from its lowest failed record on.
fn redelivered(records: &[EventRecord], response: &DynamoDbEventResponse) -> Vec<EventRecord> {
    let failed: Vec<&Option<String>> =
        response.batch_item_failures.iter().map(|f| &f.item_identifier).collect();
    let from = records.iter().position(|r| failed.contains(&&r.change.sequence_number)).expect("a failure");
    records[from..].to_vec()
}

async fn handle(stack: &EventStack, records: Vec<EventRecord>) -> DynamoDbEventResponse {
    let mut event = StreamEvent::default();
    event.records = records;
    stack.publisher.handle(event).await
}

#[tokio::test]
async fn dead_letters_after_a_failed_chunk_are_sent_once_on_the_retry() {
    let stack = EventStack::new().await;
    // 15 records that can never be published: two chunks of dead letters (10 + 5).
    let records: Vec<EventRecord> = (0..15).map(|i| outbox_insert(i, true)).collect();
    stack.publish_faults.plan("SendMessageBatch", Fault::InternalServerError, 1);
    let first = handle(&stack, records.clone()).await;
    assert_eq!(first.batch_item_failures.len(), 15, "nothing after the failed chunk is sent");
    assert_eq!(stack.publisher.stats().dead_lettered(), 0);

    let retry = handle(&stack, redelivered(&records, &first)).await;
    assert!(retry.batch_item_failures.is_empty());
    assert_eq!(stack.publisher.stats().dead_lettered(), 15);
    assert_eq!(stack.depth(&stack.publish_dlq_url).await, 15, "each record dead-lettered once");
}

#[tokio::test]
async fn a_record_after_a_failed_publish_is_not_dead_lettered_until_its_turn() {
    let stack = EventStack::new().await;
    let records = vec![outbox_insert(0, false), outbox_insert(1, true)];
    stack.publish_faults.plan("PutEvents", Fault::EntriesThrottled, 1);
    let first = handle(&stack, records.clone()).await;
    assert_eq!(first.batch_item_failures.len(), 2);
    assert_eq!(stack.depth(&stack.publish_dlq_url).await, 0, "not before the record ahead of it");

    let retry = handle(&stack, redelivered(&records, &first)).await;
    assert!(retry.batch_item_failures.is_empty());
    assert_eq!(stack.publisher.stats().published(), 1);
    assert_eq!(stack.publisher.stats().dead_lettered(), 1);
    assert_eq!(stack.depth(&stack.publish_dlq_url).await, 1, "dead-lettered once");
}
