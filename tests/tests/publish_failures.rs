//! Delivery failure paths. The publisher's, batch by batch, as Lambda's stream event source
//! mapping drives them: after a failure it delivers the batch again from the lowest failed record,
//! so nothing after that record may be sent yet, or it would be sent twice. And the redrive's: a
//! moved message must leave the DLQ, or a later run moves it twice.

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
    stack.publisher().handle(event).await
}

#[tokio::test]
async fn dead_letters_after_a_failed_chunk_are_sent_once_on_the_retry() {
    let stack = EventStack::new().await;
    // 15 records that can never be published: two chunks of dead letters (10 + 5).
    let records: Vec<EventRecord> = (0..15).map(|i| outbox_insert(i, true)).collect();
    stack.publish_faults.plan("SendMessageBatch", Fault::InternalServerError, 1);
    let first = handle(&stack, records.clone()).await;
    assert_eq!(first.batch_item_failures.len(), 15, "nothing after the failed chunk is sent");
    assert_eq!(stack.publisher().stats().dead_lettered(), 0);

    let retry = handle(&stack, redelivered(&records, &first)).await;
    assert!(retry.batch_item_failures.is_empty());
    assert_eq!(stack.publisher().stats().dead_lettered(), 15);
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
    assert_eq!(stack.publisher().stats().published(), 1);
    assert_eq!(stack.publisher().stats().dead_lettered(), 1);
    assert_eq!(stack.depth(&stack.publish_dlq_url).await, 1, "dead-lettered once");
}

#[tokio::test]
async fn a_redrive_whose_delete_failed_once_leaves_nothing_behind_to_move_twice() {
    use integration_tests::FaultInjector;
    use inventory::redrive::{redrive, Target};
    let stack = EventStack::new().await;
    let bodies = (0..3).map(|i| (json!({"n": i}).to_string(), None));
    let entries = inventory::sqs::send_entries(bodies);
    stack
        .sqs
        .send_message_batch()
        .queue_url(&stack.order_dlq_url)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();
    let faults = FaultInjector::new();
    faults.plan("DeleteMessageBatch", Fault::InternalServerError, 1);
    let target = Target::Queue(stack.order_queue_url.clone());

    let report = redrive(&stack.sqs_via(&faults), &stack.events, &stack.order_dlq_url, &target, false)
        .await
        .expect("a failed delete does not end the run");
    assert_eq!(faults.injected(), 1);
    assert_eq!((report.moved, report.failed, report.undeleted), (3, 0, 0));
    assert_eq!(stack.depth(&stack.order_dlq_url).await, 0, "nothing moved stays in the DLQ");
    let again = redrive(&stack.sqs, &stack.events, &stack.order_dlq_url, &target, false).await.unwrap();
    assert_eq!(again.moved, 0);
    assert_eq!(stack.depth(&stack.order_queue_url).await, 3, "each message moved once");
}
