//! Events against DynamoDB Local + LocalStack: the outbox published through the table's stream
//! onto the bus (seen by a queue subscribed to it), order events in through SQS, dead letters and
//! redrive. The pipelines are the local runtime's (`dev_server::EventPipelines`) over the same
//! handlers Lambda runs.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use integration_tests::event_stack::{event_ids, eventually, EventStack};
use integration_tests::{hold, set_stock, sweeper, Fault, TestTable};
use inventory::domain::{Cart, CartLine, Status};
use inventory::order_events::{handle_batch, handle_message, OrderOutcome};
use inventory::redrive::{redrive, source_queue, Target};
use inventory::store::StockChange;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// Every outbox record's event id, and the count per detail-type.
async fn outbox(t: &TestTable) -> (Vec<String>, HashMap<String, usize>) {
    let items = t.scan("begins_with(pk, :p)", &[(":p", "OUTBOX#")]).await;
    let mut per_type = HashMap::new();
    let ids = items
        .iter()
        .map(|item| {
            let detail_type = item["detailType"].as_s().unwrap().clone();
            *per_type.entry(detail_type).or_insert(0) += 1;
            item["eventId"].as_s().unwrap().clone()
        })
        .collect();
    (ids, per_type)
}

fn of_type<'a>(events: &'a [Value], detail_type: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["detail-type"] == detail_type).collect()
}

/// The next `ReservationConfirmFailed` on the bus.
async fn next_confirm_failed(stack: &EventStack) -> Value {
    let got = stack
        .receive_until(&stack.tap_queue_url, WAIT, |events| {
            !of_type(events, "ReservationConfirmFailed").is_empty()
        })
        .await;
    of_type(&got, "ReservationConfirmFailed")[0].clone()
}

/// Drains the tap queue until it stays empty for one long poll; returns what came.
async fn drain(stack: &EventStack) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let batch = stack.receive_batch(&stack.tap_queue_url).await;
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

/// An SQS message as Lambda hands it over, carrying an EventBridge event (or any body).
fn sqs_message(id: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_owned());
    m.body = Some(body.to_owned());
    m
}

fn order_event(id: &str, detail_type: &str, order_id: &str) -> String {
    json!({"version": "0", "id": id, "source": "orders", "detail-type": detail_type,
           "time": "2026-11-23T10:00:00Z", "region": "us-east-1", "resources": [],
           "detail": {"orderId": order_id}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_published_exactly_once_with_the_contract_envelope() {
    let t = TestTable::new().await;
    let stack = EventStack::new().await;
    let _pipelines = stack.start_pipelines(&t).await;
    let s = &t.store;

    set_stock(s, "A", "w1", 5).await;
    s.write_stock(
        "A",
        "w1",
        StockChange::Adjust { delta: 2 },
        None,
        Some("delivery"),
        &inventory::store::WriteContext::correlated("corr-adjust"),
    )
    .await
    .unwrap();
    let o1 = hold(s, "o1", "A", 3, 60).await;
    let o2 = hold(s, "o2", "A", 4, 60).await; // available 7 -> 0: StockDepleted
    s.confirm(&o1.reservation_id, &Default::default()).await.unwrap();
    s.release(&o2.reservation_id, &inventory::store::WriteContext::correlated("corr-release")).await.unwrap();
    let o3 = hold(s, "o3", "A", 1, 1).await;
    assert!(
        sweeper(&t, Duration::from_secs(5))
            .expire(&o3.reservation_id, &Default::default())
            .await
            .unwrap()
            .applied
    );

    let (ids, per_type) = outbox(&t).await;
    let expected_types = [
        ("StockAdjusted", 2),
        ("ReservationCreated", 3),
        ("ReservationConfirmed", 1),
        ("ReservationReleased", 1),
        ("ReservationExpired", 1),
    ];
    for (detail_type, n) in expected_types {
        assert_eq!(per_type.get(detail_type), Some(&n), "{detail_type} outbox records: {per_type:?}");
    }
    // + one StockDepleted (o2's hold) and one StockReplenished (o2's release), derived from the
    // stream.
    let expected_total = ids.len() + 2;

    let mut got = stack
        .receive_until(&stack.tap_queue_url, WAIT, |events| {
            let seen = event_ids(events);
            ids.iter().all(|id| seen.contains(id)) && !of_type(events, "StockDepleted").is_empty()
        })
        .await;
    // Wait until the publisher has sent all it will send, then make sure nothing else comes.
    eventually("the publisher to settle", WAIT, || async {
        (stack.publisher().stats().published() >= expected_total as u64).then_some(())
    })
    .await;
    got.extend(drain(&stack).await);
    assert_eq!(stack.publisher().stats().published(), expected_total as u64);
    assert_eq!(got.len(), expected_total, "one event per change, no duplicate: {got:#?}");
    let mut seen = event_ids(&got);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), expected_total, "distinct event ids");

    for event in &got {
        assert_eq!(event["source"], "inventory");
        let detail = &event["detail"];
        assert_eq!(detail["eventVersion"], 1);
        assert!(uuid::Uuid::parse_str(detail["eventId"].as_str().unwrap()).is_ok());
        assert!(chrono::DateTime::parse_from_rfc3339(detail["occurredAt"].as_str().unwrap()).is_ok());
        assert!(detail["data"].is_object(), "{event}");
    }
    let adjusted = of_type(&got, "StockAdjusted");
    let with_delta = adjusted.iter().find(|e| e["detail"]["data"]["delta"] == 2).expect("the adjustment");
    assert_eq!(with_delta["detail"]["correlationId"], "corr-adjust");
    assert_eq!(with_delta["detail"]["data"]["reason"], "delivery");
    let released = of_type(&got, "ReservationReleased");
    assert_eq!(released[0]["detail"]["correlationId"], "corr-release");
    assert_eq!(released[0]["detail"]["data"]["reservationId"], o2.reservation_id.as_str());
    let depleted = of_type(&got, "StockDepleted");
    assert_eq!(depleted.len(), 1);
    assert_eq!(depleted[0]["detail"]["data"]["sku"], "A");
    assert_eq!(depleted[0]["detail"]["data"]["available"], 0);
    assert_eq!(of_type(&got, "ReservationExpired")[0]["detail"]["data"]["status"], "EXPIRED");
    let replenished = of_type(&got, "StockReplenished");
    assert_eq!(replenished.len(), 1);
    assert_eq!(replenished[0]["detail"]["data"]["available"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_is_retried_and_arrives_later_with_the_same_event_id() {
    let t = TestTable::new().await;
    let stack = EventStack::new().await;
    // Two PutEvents calls fail outright, then one comes back with every entry throttled.
    stack.publish_faults.plan("PutEvents", Fault::InternalServerError, 2);
    stack.publish_faults.plan("PutEvents", Fault::EntriesThrottled, 1);
    let _pipelines = stack.start_pipelines(&t).await;
    set_stock(&t.store, "A", "w1", 5).await;
    let (ids, _) = outbox(&t).await;
    assert_eq!(ids.len(), 1);

    let mut got = stack.receive_until(&stack.tap_queue_url, WAIT, |events| !events.is_empty()).await;
    eventually("the publisher to settle", WAIT, || async {
        (stack.publisher().stats().published() >= 1).then_some(())
    })
    .await;
    got.extend(drain(&stack).await);
    assert_eq!(stack.publish_faults.injected(), 3, "every planned fault was hit");
    assert_eq!(stack.publish_faults.seen("PutEvents"), 4, "3 failed calls, then the one that went through");
    assert!(stack.publisher().stats().failed() >= 3, "each failure was reported for retry");
    assert_eq!(event_ids(&got), ids, "arrived once, with the outbox record's event id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_can_never_be_published_goes_to_the_publish_dlq_and_does_not_block_others() {
    let t = TestTable::new().await;
    let stack = EventStack::new().await;
    // An outbox record whose detail is not JSON: EventBridge would refuse it forever.
    let event = inventory::events::OutboxEvent::new(
        inventory::events::DetailType::StockAdjusted,
        json!({}),
        chrono::Utc::now(),
        None,
    );
    let mut item = inventory::store::items::outbox_item(&event);
    item.insert("detail".into(), inventory::store::items::s("{not json"));
    t.store.client().put_item().table_name(t.store.table()).set_item(Some(item)).send().await.unwrap();
    let _pipelines = stack.start_pipelines(&t).await;
    set_stock(&t.store, "A", "w1", 5).await;

    let got = stack.receive_until(&stack.tap_queue_url, WAIT, |events| !events.is_empty()).await;
    assert_eq!(of_type(&got, "StockAdjusted").len(), 1, "the good change behind it is published");
    eventually("a dead letter", WAIT, || async {
        (stack.depth(&stack.publish_dlq_url).await == 1).then_some(())
    })
    .await;
    assert_eq!(stack.publisher().stats().dead_lettered(), 1);

    // The dry run lists it and leaves it where it is.
    let target = Target::Bus(stack.bus.clone());
    let report = redrive(&stack.sqs, &stack.events, &stack.publish_dlq_url, &target, true).await.unwrap();
    assert_eq!((report.seen.len(), report.moved), (1, 0));
    assert_eq!(stack.depth(&stack.publish_dlq_url).await, 1);
    let letters = stack.receive_batch(&stack.publish_dlq_url).await;
    assert_eq!(letters.len(), 1);
    assert!(letters[0]["error"].as_str().unwrap().contains("detail"), "{}", letters[0]);
    assert_eq!(letters[0]["record"]["dynamodb"]["NewImage"]["eventId"]["S"], event.event_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_events_on_the_bus_release_and_confirm_holds_or_report_why_not() {
    let t = TestTable::new().await;
    let stack = EventStack::new().await;
    let _pipelines = stack.start_pipelines(&t).await;
    set_stock(&t.store, "A", "w1", 10).await;
    let cancelled = hold(&t.store, "o-cancel", "A", 2, 60).await;
    let completed = hold(&t.store, "o-complete", "A", 3, 60).await;

    let cancel_event_id = stack.put_order_event("OrderCancelled", json!({"orderId": "o-cancel"})).await;
    stack.put_order_event("OrderCompleted", json!({"orderId": "o-complete"})).await;
    stack.put_order_event("OrderCompleted", json!({"orderId": "o-ghost"})).await;
    stack.put_order_event("OrderCancelled", json!({"orderId": "o-never-reserved"})).await;

    for (id, status) in
        [(&cancelled.reservation_id, Status::Released), (&completed.reservation_id, Status::Confirmed)]
    {
        eventually("the order event to apply", WAIT, || async {
            (t.store.get_reservation(id).await.unwrap().status == status).then_some(())
        })
        .await;
    }
    let stock = t.store.get_stock("A", "w1").await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved, stock.available), (7, 0, 7));

    let got = stack
        .receive_until(&stack.tap_queue_url, WAIT, |events| {
            !of_type(events, "ReservationConfirmFailed").is_empty()
                && !of_type(events, "ReservationReleased").is_empty()
                && !of_type(events, "ReservationConfirmed").is_empty()
        })
        .await;
    let released = of_type(&got, "ReservationReleased")[0];
    assert_eq!(released["detail"]["correlationId"], cancel_event_id.as_str(), "traceable to the order event");
    let failed = of_type(&got, "ReservationConfirmFailed")[0];
    assert_eq!(failed["detail"]["data"], json!({"orderId": "o-ghost", "reason": "unknown"}));

    // A hold that ran out before the order completed: confirm fails as expired, units go back.
    let late = hold(&t.store, "o-late", "A", 1, 1).await;
    t.clock.advance(Duration::from_secs(5));
    stack.put_order_event("OrderCompleted", json!({"orderId": "o-late"})).await;
    let failed = next_confirm_failed(&stack).await;
    assert_eq!(
        failed["detail"]["data"],
        json!({"orderId": "o-late", "reason": "expired", "reservationId": late.reservation_id})
    );
    assert_eq!(t.store.get_reservation(&late.reservation_id).await.unwrap().status, Status::Expired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_event_naming_an_older_reservation_acts_on_nothing_and_one_naming_the_latest_confirms_it() {
    let t = TestTable::new().await;
    let stack = EventStack::new().await;
    let _pipelines = stack.start_pipelines(&t).await;
    set_stock(&t.store, "A", "w1", 10).await;
    // The customer checks out, leaves, and checks out again: two reservations of one order.
    let first = hold(&t.store, "o-again", "A", 2, 60).await;
    t.function("release").release(&first.reservation_id, &Default::default()).await.unwrap();
    let lines: Vec<CartLine> =
        serde_json::from_value(json!([{"sku": "A", "locationId": "w1", "quantity": 3}])).unwrap();
    let second = t
        .function("put-order-reservation")
        .put_order_reservation("o-again", &Cart::parse(&lines).unwrap(), None, &Default::default())
        .await
        .unwrap()
        .reservation;
    assert_ne!(first.reservation_id, second.reservation_id);

    // A late OrderCompleted and OrderCancelled of the first checkout: nothing happens to the second.
    let detail = json!({"orderId": "o-again", "reservationId": first.reservation_id});
    stack.put_order_event("OrderCancelled", detail.clone()).await;
    stack.put_order_event("OrderCompleted", detail).await;
    let failed = next_confirm_failed(&stack).await;
    assert_eq!(
        failed["detail"]["data"],
        json!({"orderId": "o-again", "reason": "RESERVATION_MISMATCH", "reservationId": first.reservation_id})
    );
    assert_eq!(t.store.get_reservation(&second.reservation_id).await.unwrap().status, Status::Pending);
    assert_eq!(t.store.get_stock("A", "w1").await.unwrap().reserved, 3, "the second hold is whole");

    // The order service's OrderCompleted for the second checkout confirms it.
    stack
        .put_order_event(
            "OrderCompleted",
            json!({"orderId": "o-again", "reservationId": second.reservation_id}),
        )
        .await;
    eventually("the latest confirmed", WAIT, || async {
        (t.store.get_reservation(&second.reservation_id).await.unwrap().status == Status::Confirmed)
            .then_some(())
    })
    .await;
    let stock = t.store.get_stock("A", "w1").await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (7, 0));
}

#[tokio::test]
async fn order_events_are_idempotent_when_redelivered() {
    let t = TestTable::new().await;
    set_stock(&t.store, "A", "w1", 10).await;
    let r = hold(&t.store, "o1", "A", 2, 60).await;
    let cancel = sqs_message("m1", &order_event("evt-cancel", "OrderCancelled", "o1"));
    assert_eq!(handle_message(&t.store, &cancel).await.unwrap(), OrderOutcome::Released);
    assert!(matches!(handle_message(&t.store, &cancel).await.unwrap(), OrderOutcome::Unchanged(_)));
    assert_eq!(t.count_events("ReservationReleased").await, 1);
    assert_eq!(t.store.get_stock("A", "w1").await.unwrap().reserved, 0);

    // Completing a released order fails; the failure is recorded once however often it comes.
    let complete = sqs_message("m2", &order_event("evt-complete", "OrderCompleted", "o1"));
    for _ in 0..3 {
        assert_eq!(
            handle_message(&t.store, &complete).await.unwrap(),
            OrderOutcome::ConfirmFailed("released")
        );
    }
    let failed = t.event_details("ReservationConfirmFailed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["data"],
        json!({"orderId": "o1", "reason": "released", "reservationId": r.reservation_id})
    );

    // Other sources and detail-types are acknowledged and ignored; a bad order id is not.
    let other = sqs_message("m3", &order_event("evt-x", "OrderShipped", "o1"));
    assert_eq!(handle_message(&t.store, &other).await.unwrap(), OrderOutcome::Ignored);
    let bad = sqs_message("m4", &order_event("evt-y", "OrderCancelled", "bad id with spaces"));
    assert!(handle_message(&t.store, &bad).await.is_err());

    // A re-checkout after the failed payment holds again under a new reservation; the order's
    // events now act on that one, its latest.
    let cart = inventory::domain::Cart::from(vec![inventory::domain::Line::new("A".into(), "w1".into(), 3)]);
    let again = t
        .function("put-order-reservation")
        .put_order_reservation("o1", &cart, None, &Default::default())
        .await
        .unwrap();
    assert!(again.created && again.reservation.reservation_id != r.reservation_id);
    let complete = sqs_message("m5", &order_event("evt-complete-2", "OrderCompleted", "o1"));
    assert_eq!(handle_message(&t.store, &complete).await.unwrap(), OrderOutcome::Confirmed);
    let latest = t.store.get_reservation(&again.reservation.reservation_id).await.unwrap();
    assert_eq!(latest.status, Status::Confirmed);
    assert_eq!(t.store.get_reservation(&r.reservation_id).await.unwrap().status, Status::Released);
    let stock = t.store.get_stock("A", "w1").await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (7, 0));
}

#[tokio::test]
async fn a_bad_message_fails_alone_and_the_rest_of_its_batch_is_applied() {
    let t = TestTable::new().await;
    set_stock(&t.store, "A", "w1", 10).await;
    let r1 = hold(&t.store, "o1", "A", 2, 60).await;
    let r2 = hold(&t.store, "o2", "A", 2, 60).await;
    let mut event = SqsEvent::default();
    event.records = vec![
        sqs_message("good-1", &order_event("e1", "OrderCancelled", "o1")),
        sqs_message("poison", "{this is not json"),
        sqs_message(
            "no-order-id",
            &json!({"id": "e3", "source": "orders", "detail-type": "OrderCancelled", "detail": {}})
                .to_string(),
        ),
        sqs_message("good-2", &order_event("e2", "OrderCompleted", "o2")),
    ];
    let store = integration_tests::runtime::runtime_over(&t.store).store("order-events").unwrap();
    let response = handle_batch(store.as_ref(), event).await;
    let mut failed: Vec<_> =
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    failed.sort();
    assert_eq!(failed, vec!["no-order-id", "poison"]);
    assert_eq!(t.store.get_reservation(&r1.reservation_id).await.unwrap().status, Status::Released);
    assert_eq!(t.store.get_reservation(&r2.reservation_id).await.unwrap().status, Status::Confirmed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_ends_in_the_dlq_and_redrive_moves_it_back() {
    let t = TestTable::new().await;
    let stack = EventStack::new().await;
    set_stock(&t.store, "A", "w1", 10).await;
    let r = hold(&t.store, "o1", "A", 2, 60).await;
    let pipelines = stack.start_pipelines(&t).await;

    let entries = inventory::sqs::send_entries([
        ("{this is not json".to_owned(), None),
        (order_event("e1", "OrderCancelled", "o1"), None),
    ]);
    let sent = stack
        .sqs
        .send_message_batch()
        .queue_url(&stack.order_queue_url)
        .set_entries(Some(entries))
        .send()
        .await;
    assert!(sent.unwrap().failed.is_empty());

    eventually("the good message to apply", WAIT, || async {
        (t.store.get_reservation(&r.reservation_id).await.unwrap().status == Status::Released).then_some(())
    })
    .await;
    eventually("the poison message in the DLQ", WAIT, || async {
        (stack.depth(&stack.order_dlq_url).await == 1 && stack.depth(&stack.order_queue_url).await == 0)
            .then_some(())
    })
    .await;
    drop(pipelines); // nothing consumes the queue from here on

    assert_eq!(source_queue(&stack.sqs, &stack.order_dlq_url).await.unwrap(), stack.order_queue_url);
    let target = Target::Queue(stack.order_queue_url.clone());
    let dry = redrive(&stack.sqs, &stack.events, &stack.order_dlq_url, &target, true).await.unwrap();
    assert_eq!((dry.seen.len(), dry.moved, dry.failed), (1, 0, 0));
    assert!(dry.seen[0].receive_count.is_some());
    assert_eq!(stack.depth(&stack.order_dlq_url).await, 1, "the dry run moved nothing");

    let report = redrive(&stack.sqs, &stack.events, &stack.order_dlq_url, &target, false).await.unwrap();
    assert_eq!((report.moved, report.failed), (1, 0));
    assert_eq!(stack.depth(&stack.order_dlq_url).await, 0);
    let back = stack.receive_batch(&stack.order_queue_url).await;
    assert_eq!(
        back,
        vec![Value::String("{this is not json".into())],
        "back in the source queue, body unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_replay_through_their_handlers() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap();

    // publish-events: an outbox insert and a stock item going to 0 available.
    let stack = EventStack::new().await;
    let stream_event = serde_json::from_str(&read("publish-events.json")).expect("a DynamoDB stream event");
    let response = stack.publisher().handle(stream_event).await;
    assert!(response.batch_item_failures.is_empty());
    let got = stack.receive_until(&stack.tap_queue_url, WAIT, |events| events.len() >= 2).await;
    let mut types: Vec<_> = got.iter().map(|e| e["detail-type"].as_str().unwrap().to_owned()).collect();
    types.sort();
    assert_eq!(types, vec!["ReservationCreated", "StockDepleted"]);

    // order-events: OrderCancelled for order-1001.
    let t = TestTable::new().await;
    set_stock(&t.store, "A", "w1", 5).await;
    let r = hold(&t.store, "order-1001", "A", 2, 60).await;
    let sqs_event: SqsEvent = serde_json::from_str(&read("order-events.json")).expect("an SQS event");
    let store = integration_tests::runtime::runtime_over(&t.store).store("order-events").unwrap();
    let response = handle_batch(store.as_ref(), sqs_event).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(t.store.get_reservation(&r.reservation_id).await.unwrap().status, Status::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extension_and_a_change_of_lines_are_published_with_their_contract_data() {
    let t = TestTable::new().await;
    let stack = EventStack::new().await;
    let _pipelines = stack.start_pipelines(&t).await;
    set_stock(&t.store, "X", "w1", 5).await;
    let r = hold(&t.store, "o-x", "X", 1, 60).await;
    let extended = t
        .function("extend")
        .extend(&r.reservation_id, 3600, &inventory::store::WriteContext::correlated("corr-extend"))
        .await
        .unwrap()
        .reservation;
    let got = stack
        .receive_until(&stack.tap_queue_url, WAIT, |events| {
            !of_type(events, "ReservationExtended").is_empty()
        })
        .await;
    let published = of_type(&got, "ReservationExtended");
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["source"], "inventory");
    assert_eq!(published[0]["detail"]["correlationId"], "corr-extend");
    assert_eq!(published[0]["detail"]["data"], serde_json::to_value(&extended).unwrap());

    let cart = inventory::domain::Cart::from(vec![inventory::domain::Line::new("X".into(), "w1".into(), 3)]);
    let modified = t
        .function("put-order-reservation")
        .put_order_reservation("o-x", &cart, None, &inventory::store::WriteContext::correlated("corr-modify"))
        .await
        .unwrap();
    let got = stack
        .receive_until(&stack.tap_queue_url, WAIT, |events| {
            !of_type(events, "ReservationModified").is_empty()
        })
        .await;
    let published = of_type(&got, "ReservationModified");
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["detail"]["correlationId"], "corr-modify");
    let mut data = serde_json::to_value(&modified.reservation).unwrap();
    data["previousLines"] = serde_json::to_value(&extended.lines).unwrap();
    assert_eq!(published[0]["detail"]["data"], data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_crossed_down_up_and_down_is_published_once_per_crossing() {
    let t = TestTable::new().await;
    let stack = EventStack::new().await;
    let _pipelines = stack.start_pipelines(&t).await;
    let s = &t.store;
    let with_threshold = StockChange::SetWithThreshold { on_hand: 10, low_stock_threshold: Some(5) };
    s.write_stock("A", "w1", with_threshold, None, None, &Default::default()).await.unwrap();
    let ctx = inventory::store::WriteContext::default();
    let adjust = |delta| s.write_stock("A", "w1", StockChange::Adjust { delta }, None, None, &ctx);
    adjust(-7).await.unwrap(); // available 10 -> 3: below 5, StockLow
    adjust(-1).await.unwrap(); // 3 -> 2: still below, nothing
    adjust(-2).await.unwrap(); // 2 -> 0: StockDepleted
    adjust(8).await.unwrap(); // 0 -> 8: StockReplenished
    hold(s, "o-low", "A", 6, 600).await; // 8 -> 2: StockLow again

    let (ids, _) = outbox(&t).await;
    let expected_total = ids.len() + 4;
    let mut got = stack
        .receive_until(&stack.tap_queue_url, WAIT, |events| of_type(events, "StockLow").len() >= 2)
        .await;
    eventually("the publisher to settle", WAIT, || async {
        (stack.publisher().stats().published() >= expected_total as u64).then_some(())
    })
    .await;
    got.extend(drain(&stack).await);
    assert_eq!(got.len(), expected_total, "{got:#?}");
    let low = of_type(&got, "StockLow");
    assert_eq!(low.len(), 2, "once per crossing");
    // The bus does not keep order: the two crossings, at 3 and at 2 units, in any order.
    let mut at: Vec<i64> = low.iter().map(|e| e["detail"]["data"]["available"].as_i64().unwrap()).collect();
    at.sort();
    assert_eq!(at, [2, 3]);
    assert!(low.iter().all(|e| e["detail"]["data"]["lowStockThreshold"] == 5));
    let replenished = of_type(&got, "StockReplenished");
    assert_eq!(replenished.len(), 1);
    assert_eq!(replenished[0]["detail"]["data"]["available"], 8);
    assert_eq!(of_type(&got, "StockDepleted").len(), 1);
}
