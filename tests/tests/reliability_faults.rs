//! Faults mid-run: clients keep calling the local HTTP API while this test's own DynamoDB Local
//! (file-backed) is killed with SIGKILL and restarted, and its own LocalStack is stopped and
//! started. Checked:
//!
//! - while DynamoDB is down, every request gets 503 SERVICE_UNAVAILABLE with `Retry-After`, within
//!   a deadline (no 500, no hang); once it is back, requests succeed again;
//! - while LocalStack is down, the API is not affected at all (events go through the outbox);
//! - afterwards, retrying every request that got a 503 (same orderId: safe) settles it, and the
//!   table satisfies every invariant (no partial state, one record per change);
//! - every change made before, during and after the outages reaches the bus (a queue
//!   subscribed to it) once LocalStack is back. Delivery is at least once; duplicates are counted.
//!
//! `RELIABILITY_FAULT_CYCLES` (default 1; `make soak` runs more) repeats the two outages.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::event_stack::{event_ids, EventStack};
use integration_tests::figures::{env_usize, seed};
use integration_tests::http_client::{start_local_api, Answer, Connection};
use integration_tests::invariants::Snapshot;
use integration_tests::outage::{GatedProxy, OwnService};
use integration_tests::TestTable;
use inventory::Store;
use serde_json::{json, Value};

/// No answer may take longer than this (the store gives up after 5 s of retries).
const ANSWER_DEADLINE: Duration = Duration::from_secs(10);
const WAIT: Duration = Duration::from_secs(120);
const SKUS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Up,
    DynamoDbDown,
    LocalStackDown,
}

#[derive(Default)]
struct Log {
    /// (phase, status, retry-after present, milliseconds)
    answers: Vec<(Phase, u16, bool, u128)>,
    /// Requests that got a 503 (to retry when everything is back): (method, path, body, when the
    /// hold they act on was acknowledged).
    unsettled: Vec<(String, String, Option<Value>, Option<Instant>)>,
    bad: Vec<String>,
    /// Holds acknowledged just before DynamoDB Local was killed that it did not keep (see
    /// `lost_by_the_emulator`).
    lost_by_emulator: Vec<String>,
    /// When DynamoDB Local was killed.
    kills: Vec<Instant>,
}

/// DynamoDB Local (`-dbPath`) acknowledges some transactions before they are on disk: a SIGKILL
/// right after can drop the last one, whole (reproduced with boto3 alone, no service code: about
/// 1 kill in 8 lost 1 of ~200 acknowledged transactions, atomically). DynamoDB acknowledges a
/// write only once it is durable, so this is the emulator's. A hold found missing is put down to
/// it only if it was acknowledged less than 2 s before a kill; the invariants still hold.
fn lost_by_the_emulator(log: &Log, acknowledged: Instant) -> bool {
    log.kills.iter().any(|k| *k >= acknowledged && k.duration_since(acknowledged) < Duration::from_secs(2))
}

/// What the clients share: stop and pause flags, requests in flight, the phase, the log.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    paused: AtomicBool,
    in_flight: AtomicUsize,
    phase: Mutex<Option<Phase>>,
    log: Mutex<Log>,
}

impl Load {
    fn phase(&self) -> Phase {
        self.phase.lock().unwrap().unwrap_or(Phase::Up)
    }

    fn set_phase(&self, phase: Phase) {
        *self.phase.lock().unwrap() = Some(phase);
    }

    /// Pauses the clients and waits until none has a request in flight.
    async fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

/// One client: reserves (new orderId), confirms or releases its holds, adjusts stock.
async fn client(port: u16, id: usize, seed: u64, load: Arc<Load>) {
    let (stop, log) = (&load.stop, &load.log);
    let mut rng = fastrand::Rng::with_seed(seed ^ id as u64);
    let mut conn = Connection::open(port).await;
    let mut holds: Vec<(String, Instant)> = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        load.in_flight.fetch_add(1, Ordering::SeqCst);
        if load.paused.load(Ordering::SeqCst) {
            load.in_flight.fetch_sub(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        n += 1;
        let sku = format!("F-{}", rng.usize(..SKUS));
        let mut acknowledged = None;
        let (method, path, body) = match rng.u32(0..10) {
            0..=4 => (
                "POST",
                "/v1/reservations".to_owned(),
                Some(
                    json!({"orderId": format!("c{id}-{n}"), "lines": [{"sku": sku, "locationId": "w1", "quantity": 1}]}),
                ),
            ),
            5..=7 if !holds.is_empty() => {
                let (hold, at) = holds.swap_remove(rng.usize(..holds.len()));
                acknowledged = Some(at);
                let action = if rng.bool() { "confirm" } else { "release" };
                ("POST", format!("/v1/reservations/{hold}/{action}"), None)
            }
            _ => (
                "POST",
                format!("/v1/stock/{sku}/w1/adjustments"),
                Some(json!({"delta": 1, "reason": "fault test"})),
            ),
        };
        let at = load.phase();
        let started = Instant::now();
        let answer = tokio::time::timeout(ANSWER_DEADLINE, conn.send(method, &path, body.clone())).await;
        let ms = started.elapsed().as_millis();
        load.in_flight.fetch_sub(1, Ordering::SeqCst);
        let Ok(Answer { status, retry_after, body: reply }) = answer else {
            log.lock().unwrap().bad.push(format!("{method} {path}: no answer within {ANSWER_DEADLINE:?}"));
            break;
        };
        {
            let mut log = log.lock().unwrap();
            log.answers.push((at, status, retry_after.is_some(), ms));
            match status {
                200 | 201 => {
                    if let Some(id) = reply["reservationId"].as_str().filter(|_| path == "/v1/reservations") {
                        holds.push((id.to_owned(), Instant::now()));
                    }
                }
                503 => {
                    if retry_after.is_none() || reply["error"]["code"] != "SERVICE_UNAVAILABLE" {
                        log.bad.push(format!(
                            "{method} {path}: 503 without Retry-After or the error body: {reply}"
                        ));
                    }
                    log.unsettled.push((method.to_owned(), path, body, acknowledged));
                }
                409 if reply["error"]["code"] == "STOCK_BELOW_RESERVED"
                    || reply["error"]["code"] == "INSUFFICIENT_STOCK" => {}
                404 if acknowledged.is_some_and(|at| lost_by_the_emulator(&log, at)) => {
                    log.lost_by_emulator.push(path.clone())
                }
                _ => log.bad.push(format!("{method} {path} ({at:?}): {status} {reply}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn step(what: &str) {
    eprintln!("reliability_faults: {what}");
}

/// Waits until `count` more answers are logged (the load is moving).
async fn more_answers(log: &Mutex<Log>, count: usize, what: &str) {
    let from = log.lock().unwrap().answers.len();
    integration_tests::event_stack::eventually(what, WAIT, || async {
        (log.lock().unwrap().answers.len() >= from + count).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_killed_and_localstack_stopped_mid_run_lose_nothing() {
    let seed = seed("reliability_faults");
    let cycles = env_usize("RELIABILITY_FAULT_CYCLES", 1);
    let clients = env_usize("RELIABILITY_FAULT_CLIENTS", 4);
    let dynamodb = OwnService::start_with("dynamodb", &[("DDB_PERSIST", "1")]);
    step("dynamodb up");
    let localstack = OwnService::start("localstack");
    let proxy = GatedProxy::start(localstack.port).await;
    let stack = EventStack::with_publisher_via(&localstack.endpoint(), &proxy.endpoint()).await;
    let t = TestTable::at(&dynamodb.endpoint()).await;
    // The service's own retry policy: it gives up (503) after 5 s.
    let store = Arc::new(Store::new(t.store.client().clone(), t.store.table()));
    let _pipelines = stack.start_pipelines_with(store.clone(), t.streams_client()).await;
    let port = start_local_api(store.clone()).await;
    step("stack up");
    let mut setup = Connection::open(port).await;
    for i in 0..SKUS {
        let answer =
            setup.send("PUT", &format!("/v1/stock/F-{i}/w1"), Some(json!({"onHand": 100_000}))).await;
        assert_eq!(answer.status, 201, "{:?}", answer.body);
    }

    let load = Arc::new(Load::default());
    let tasks: Vec<_> = (0..clients).map(|i| tokio::spawn(client(port, i, seed, load.clone()))).collect();
    // The subscriber: a queue on the bus, read all along (what is in LocalStack's queues when it
    // stops is lost with its memory, as it would not be with SQS).
    let stack = Arc::new(stack);
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let subscriber = {
        let (stack, received) = (stack.clone(), received.clone());
        tokio::spawn(async move {
            loop {
                match stack.try_receive_batch(&stack.tap_queue_url).await {
                    Ok(batch) => received.lock().unwrap().extend(event_ids(&batch)),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        })
    };
    let all_received = |outbox: HashSet<String>| {
        let received = received.clone();
        async move {
            integration_tests::event_stack::eventually("every change on the bus", WAIT, || async {
                let got: HashSet<String> = received.lock().unwrap().iter().cloned().collect();
                outbox.iter().all(|id| got.contains(id)).then_some(())
            })
            .await
        }
    };
    let outbox_ids =
        || async { Snapshot::take(&t).await.records.into_iter().map(|r| r.event_id).collect::<HashSet<_>>() };

    let mut outages = Vec::new();
    for cycle in 0..cycles {
        more_answers(&load.log, 20, "requests before the outage").await;

        // DynamoDB Local dies mid-run, then comes back with its files.
        step("killing dynamodb");
        dynamodb.kill();
        load.log.lock().unwrap().kills.push(Instant::now());
        load.set_phase(Phase::DynamoDbDown);
        let down_at = Instant::now();
        let mut probe = Connection::open(port).await;
        let started = Instant::now();
        let answer = probe.send("GET", "/v1/stock/F-0", None).await;
        assert_eq!(answer.status, 503, "{:?}", answer.body);
        assert_eq!(answer.body["error"]["code"], "SERVICE_UNAVAILABLE");
        assert!(answer.retry_after.is_some(), "Retry-After on a 503");
        assert!(started.elapsed() < ANSWER_DEADLINE);
        more_answers(&load.log, clients, "requests during the outage").await;
        step("restarting dynamodb");
        dynamodb.up();
        outages.push(json!({"cycle": cycle, "service": "dynamodb", "fault": "SIGKILL, restart", "downSeconds": down_at.elapsed().as_secs_f64()}));
        load.set_phase(Phase::Up);
        let back = load.log.lock().unwrap().answers.len();
        integration_tests::event_stack::eventually("a success after DynamoDB is back", WAIT, || async {
            load.log.lock().unwrap().answers[back..].iter().any(|a| a.1 < 300).then_some(())
        })
        .await;

        // LocalStack stops (once the subscriber has what was published so far): the API does
        // not notice; publishing waits.
        load.pause().await;
        all_received(outbox_ids().await).await;
        step("stopping localstack");
        localstack.down();
        proxy.set_open(false);
        load.set_phase(Phase::LocalStackDown);
        load.resume();
        let down_at = Instant::now();
        more_answers(&load.log, 20, "requests while LocalStack is down").await;
        step("starting localstack");
        localstack.up();
        stack.recreate_resources().await;
        proxy.set_open(true);
        outages.push(json!({"cycle": cycle, "service": "localstack", "fault": "stop, start", "downSeconds": down_at.elapsed().as_secs_f64()}));
        load.set_phase(Phase::Up);
    }
    more_answers(&load.log, 20, "requests after the outages").await;
    step("stopping the load");
    load.stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("client");
    }

    // Every request that got a 503 is retried as a client would (same orderId: safe) and settles.
    // A confirm or release of a hold DynamoDB Local dropped at the kill is a 404 here too.
    let unsettled = std::mem::take(&mut load.log.lock().unwrap().unsettled);
    let mut retried: BTreeMap<u16, u64> = BTreeMap::new();
    for (method, path, body, acknowledged) in &unsettled {
        let answer = setup.send(method, path, body.clone()).await;
        *retried.entry(answer.status).or_default() += 1;
        let mut log = load.log.lock().unwrap();
        if answer.status == 404 && acknowledged.is_some_and(|at| lost_by_the_emulator(&log, at)) {
            log.lost_by_emulator.push(path.clone());
            continue;
        }
        drop(log);
        assert!(
            [200, 201].contains(&answer.status) || answer.body["error"]["code"] == "STOCK_BELOW_RESERVED",
            "retry of {method} {path}: {} {}",
            answer.status,
            answer.body
        );
    }

    step("checking");
    let snapshot = Snapshot::take(&t).await;
    let violations = snapshot.violations();
    let outbox: HashSet<String> = snapshot.records.iter().map(|r| r.event_id.clone()).collect();
    all_received(outbox.clone()).await;
    subscriber.abort();
    let seen = received.lock().unwrap().clone();
    let distinct: HashSet<&String> = seen.iter().collect();
    let missing = outbox.iter().filter(|id| !distinct.contains(id)).count();

    let log = load.log.lock().unwrap();
    let mut by_phase: BTreeMap<String, BTreeMap<u16, u64>> = BTreeMap::new();
    for (phase, status, _, _) in &log.answers {
        *by_phase.entry(format!("{phase:?}")).or_default().entry(*status).or_default() += 1;
    }
    let slowest_ms = log.answers.iter().map(|a| a.3).max().unwrap_or(0);
    let figures = json!({
        "seed": seed,
        "cycles": cycles,
        "clients": clients,
        "faultsInjected": outages.len(),
        "outages": outages,
        "requests": log.answers.len(),
        "statusesByPhase": by_phase,
        "slowestAnswerMs": slowest_ms,
        "retriedAfterOutage": retried.iter().map(|(s, n)| (s.to_string(), *n)).collect::<BTreeMap<_, _>>(),
        "outboxRecords": outbox.len(),
        "eventsReceived": seen.len(),
        "duplicateDeliveries": seen.len() - distinct.len(),
        "missingEvents": missing,
        "holdsLostByDynamoDbLocal": log.lost_by_emulator.len(),
        "violations": violations.len() + log.bad.len(),
    });
    eprintln!("reliability_faults: {figures}");
    integration_tests::figures::write("faults", &figures);
    assert!(log.bad.is_empty(), "seed {seed}: bad answers:\n{}", log.bad.join("\n"));
    assert!(violations.is_empty(), "seed {seed}: invariants:\n{}", violations.join("\n"));
    assert_eq!(missing, 0, "every change was published");
    let during = |p: Phase, s: u16| log.answers.iter().filter(|a| a.0 == p && a.1 == s).count();
    assert!(during(Phase::DynamoDbDown, 503) > 0, "the outage was seen as 503s");
    assert_eq!(
        log.answers.iter().filter(|a| a.0 == Phase::LocalStackDown && a.1 >= 500).count(),
        0,
        "LocalStack down: the API did not notice"
    );
    assert!(during(Phase::LocalStackDown, 201) + during(Phase::LocalStackDown, 200) > 0);
}
