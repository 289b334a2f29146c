//! No event is lost while EventBridge is away: this test's own LocalStack is stopped while the
//! service keeps writing, then started again; every change made before, during and after the
//! outage reaches the bus (and a queue subscribed to it) once LocalStack is back.

use std::collections::HashSet;
use std::time::Duration;

use integration_tests::event_stack::{event_ids, eventually, EventStack};
use integration_tests::outage::{GatedProxy, OwnService};
use integration_tests::{set_stock, TestTable};

const WAIT: Duration = Duration::from_secs(90);

async fn outbox_ids(t: &TestTable) -> HashSet<String> {
    let items = t.scan("begins_with(pk, :p)", &[(":p", "OUTBOX#")]).await;
    items.iter().map(|item| item["eventId"].as_s().unwrap().clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_lost_while_localstack_is_stopped_during_writes() {
    let localstack = OwnService::start("localstack");
    let proxy = GatedProxy::start(localstack.port).await;
    let stack = EventStack::with_publisher_via(&localstack.endpoint(), &proxy.endpoint()).await;
    let t = TestTable::new().await;
    let _pipelines = stack.start_pipelines(&t).await;

    // Before: published as usual.
    for i in 0..5 {
        set_stock(&t.store, &format!("BEFORE-{i}"), "w1", 10).await;
    }
    let before = outbox_ids(&t).await;
    let mut seen: HashSet<String> = HashSet::new();
    let got = stack
        .receive_until(&stack.tap_queue_url, WAIT, |events| {
            event_ids(events).iter().collect::<HashSet<_>>().len() >= before.len()
        })
        .await;
    seen.extend(event_ids(&got));
    assert_eq!(seen, before);

    // During: LocalStack is stopped; the writes succeed (DynamoDB is up), publishing fails.
    localstack.down();
    proxy.set_open(false);
    let failed_before = stack.publisher().stats().failed();
    for i in 0..20 {
        set_stock(&t.store, &format!("DURING-{i}"), "w1", 10).await;
    }
    eventually("the publisher to fail several times", WAIT, || async {
        (stack.publisher().stats().failed() >= failed_before + 3).then_some(())
    })
    .await;
    let during: HashSet<String> = outbox_ids(&t).await.difference(&before).cloned().collect();
    assert_eq!(during.len(), 20);
    let published_during_outage = stack.publisher().stats().published();

    // Back: LocalStack starts empty; once the bus and queues exist again, the publisher gets in.
    localstack.up();
    stack.recreate_resources().await;
    proxy.set_open(true);
    for i in 0..5 {
        set_stock(&t.store, &format!("AFTER-{i}"), "w1", 10).await;
    }
    let all = outbox_ids(&t).await;
    assert_eq!(all.len(), 30);
    let got = stack
        .receive_until(&stack.tap_queue_url, WAIT, |events| {
            let ids: HashSet<String> = event_ids(events).into_iter().collect();
            all.difference(&before).all(|id| ids.contains(id))
        })
        .await;
    seen.extend(event_ids(&got));
    assert_eq!(seen, all, "every change, before, during and after the outage, was published");
    assert_eq!(published_during_outage, before.len() as u64, "nothing got through while it was down");
    assert!(stack.publisher().stats().published() >= all.len() as u64);
}
