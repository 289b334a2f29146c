//! Operating it: the metrics a scripted run leaves at `GET /metrics` (Prometheus) and in a
//! function's EMF lines, the trace header carried into the outbox, and the consistency audit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Method, Request};
use integration_tests::event_stack::EventStack;
use integration_tests::{set_stock, Fault, TestTable};
use inventory::audit::{audit, handle_scheduled, AuditOptions};
use inventory::http::{router_with, Operation, RouterOptions};
use inventory::store::items::stock_key;
use serde_json::{json, Value};
use tower::ServiceExt;

/// One request through `app`; the status, the body as text and whether it was a replay.
async fn send(
    app: &axum::Router,
    method: Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, String) {
    let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let response = app.clone().oneshot(request.body(Body::from(body)).unwrap()).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Samples by metric name: `(labels, value)`.
type Samples = BTreeMap<String, Vec<(BTreeMap<String, String>, f64)>>;

/// The Prometheus text as `name -> [(labels, value)]` (summaries' quantile lines included).
fn parse_prometheus(text: &str) -> Samples {
    let mut metrics: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (series, value) = line.rsplit_once(' ').expect("a sample line");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let labels = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').expect("label=value");
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect();
        metrics.entry(name.to_owned()).or_default().push((labels, value.parse().expect("a number")));
    }
    metrics
}

/// The sum of `name`'s samples whose labels include every pair of `filter`.
fn total(metrics: &Samples, name: &str, filter: &[(&str, &str)]) -> f64 {
    metrics
        .get(name)
        .into_iter()
        .flatten()
        .filter(|(labels, _)| filter.iter().all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|(_, v)| v)
        .sum()
}

/// A run through the local server's router, its metrics recorded by a Prometheus recorder of its
/// own (local to this test's thread, so other tests' metrics stay out): a created item, three
/// reserves that succeed (one after an injected transaction conflict, one after injected
/// throttling), one replayed, one short of stock, one read, a 404, a 405, and a reserve throttled
/// until it gives up (503). `/metrics` shows exactly those.
#[test]
fn metrics_shows_exactly_the_counts_of_a_scripted_run() {
    let recorder = inventory::metrics::prometheus_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let text = metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let t = TestTable::new().await;
            // A short request budget, so that the throttled request below gives up soon.
            let options = RouterOptions {
                local_budget: Duration::from_millis(1500),
                require_scopes: false,
                metrics: Some(handle),
            };
            let app = router_with(Arc::new(t.store.clone()), &Operation::ALL, options);
            let line = |qty: i64| json!({"lines": [{"sku": "M", "locationId": "w1", "quantity": qty}]});
            let reserve = |order: &str, qty: i64| {
                let mut body = line(qty);
                body["orderId"] = json!(order);
                body
            };
            let put = send(&app, Method::PUT, "/v1/stock/M/w1", Some(json!({"onHand": 3})), None).await;
            assert_eq!(put.0, 201, "{put:?}");

            t.faults.plan("TransactWriteItems", Fault::TransactionConflict, 1);
            let conflicted = send(&app, Method::POST, "/v1/reservations", Some(reserve("o1", 1)), None).await;
            assert_eq!(conflicted.0, 201, "{conflicted:?}");
            t.faults.plan("TransactWriteItems", Fault::Throttled, 1);
            let throttled = send(&app, Method::POST, "/v1/reservations", Some(reserve("o2", 1)), None).await;
            assert_eq!(throttled.0, 201, "{throttled:?}");
            assert_eq!(t.faults.injected(), 2, "both faults were injected");

            let keyed =
                send(&app, Method::POST, "/v1/reservations", Some(reserve("o3", 1)), Some("k-1")).await;
            let replay =
                send(&app, Method::POST, "/v1/reservations", Some(reserve("o3", 1)), Some("k-1")).await;
            assert_eq!((keyed.0, replay.0), (201, 201));
            assert_eq!(keyed.1, replay.1, "the replay answers the kept body");
            let short = send(&app, Method::POST, "/v1/reservations", Some(reserve("o4", 1)), None).await;
            assert_eq!(short.0, 409, "{short:?}");
            assert!(short.1.contains("INSUFFICIENT_STOCK"));
            assert_eq!(send(&app, Method::GET, "/v1/stock/M/w1", None, None).await.0, 200);
            let missing =
                send(&app, Method::GET, "/v1/reservations/00000000-0000-4000-8000-000000000000", None, None)
                    .await;
            assert_eq!(missing.0, 404, "{missing:?}");
            assert_eq!(send(&app, Method::DELETE, "/v1/reservations", None, None).await.0, 405);

            // Throttled on every attempt until the request's deadline: 503, the store gave up.
            t.faults.clear();
            t.faults.plan("TransactWriteItems", Fault::Throttled, 10_000);
            let unavailable =
                send(&app, Method::POST, "/v1/reservations", Some(reserve("o5", 1)), None).await;
            assert_eq!(unavailable.0, 503, "{unavailable:?}");
            let attempts = t.faults.injected();
            assert!(attempts >= 2, "retried before giving up ({attempts})");
            t.faults.clear();

            let (status, text) = send(&app, Method::GET, "/metrics", None, None).await;
            assert_eq!(status, 200);
            (text, attempts)
        })
    });
    let (text, attempts) = text;
    let m = parse_prometheus(&text);
    let requests = |filter: &[(&str, &str)]| total(&m, "http_requests", filter);
    assert_eq!(
        requests(&[("operation", "put-stock"), ("status", "201"), ("outcome", "created")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        requests(&[("operation", "reserve"), ("status", "201"), ("outcome", "created")]),
        3.0,
        "{text}"
    );
    assert_eq!(
        requests(&[("operation", "reserve"), ("status", "201"), ("outcome", "replayed")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        requests(&[("operation", "reserve"), ("status", "409"), ("outcome", "INSUFFICIENT_STOCK")]),
        1.0,
        "{text}"
    );
    assert_eq!(requests(&[("operation", "get-stock"), ("status", "200"), ("outcome", "ok")]), 1.0, "{text}");
    assert_eq!(
        requests(&[("operation", "get-reservation"), ("status", "404"), ("outcome", "NOT_FOUND")]),
        1.0,
        "{text}"
    );
    assert_eq!(
        requests(&[("operation", "reserve"), ("status", "405"), ("outcome", "METHOD_NOT_ALLOWED")]),
        1.0,
        "a method the path lacks is counted under the path's operation: {text}"
    );
    assert_eq!(
        requests(&[("operation", "reserve"), ("status", "503"), ("outcome", "SERVICE_UNAVAILABLE")]),
        1.0,
        "{text}"
    );
    assert_eq!(requests(&[]), 10.0, "nothing else was answered (and /metrics itself is not counted): {text}");
    assert_eq!(total(&m, "http_all", &[]), 10.0, "{text}");
    assert_eq!((total(&m, "http_5xx", &[]), total(&m, "http_503", &[])), (1.0, 1.0), "{text}");
    assert_eq!(total(&m, "store_retries", &[("cause", "conflict")]), 1.0, "{text}");
    // One before the first success, and every attempt of the 503 but its last.
    let throttled = 1.0 + (attempts - 1) as f64;
    assert_eq!(total(&m, "store_retries", &[("cause", "throttled")]), throttled, "{text}");
    assert_eq!(total(&m, "store_retries", &[]), 1.0 + throttled, "no other retry: {text}");
    assert_eq!(total(&m, "store_gave_up", &[("operation", "reserve")]), 1.0, "{text}");
    assert_eq!(total(&m, "store_gave_up", &[]), 1.0, "{text}");
    assert_eq!(total(&m, "http_latency_count", &[("operation", "reserve")]), 7.0, "{text}");
}

/// Environment variable that makes [`emf_child`] do its work (set by the parent test only).
const EMF_CHILD: &str = "INVENTORY_EMF_CHILD";

/// A function's metrics as its Lambda writes them: the test runs itself again as a child process
/// (so the EMF recorder is the process's own, as in Lambda), the child runs the reserve function's
/// handler twice and an expiry sweep, and this parses the EMF lines it wrote to stdout.
#[test]
fn a_function_handler_writes_its_metrics_as_emf_lines() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["observability::emf_child", "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(EMF_CHILD, "1")
        .env("RUST_LOG", "off")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // libtest may print the test's name on the line the first document starts.
    let docs: Vec<Value> = stdout
        .lines()
        .filter_map(|l| l.find("{\"_aws\"").map(|at| &l[at..]))
        .map(|l| serde_json::from_str(l).expect("an EMF line is JSON"))
        .collect();
    assert!(stdout.contains("child done"), "{stdout}");
    let find = |metric: &str, dims: &[(&str, &str)]| -> Vec<&Value> {
        docs.iter()
            .filter(|d| {
                let declared = &d["_aws"]["CloudWatchMetrics"][0];
                declared["Metrics"].as_array().unwrap().iter().any(|m| m["Name"] == metric)
                    && dims.iter().all(|(k, v)| d[*k] == *v)
            })
            .collect()
    };
    for doc in &docs {
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "Inventory", "{doc}");
        assert!(doc["_aws"]["Timestamp"].as_u64().is_some(), "{doc}");
        // Every dimension declared is in the document.
        for dim in declared["Dimensions"][0].as_array().unwrap() {
            assert!(doc[dim.as_str().unwrap()].is_string(), "{doc}");
        }
    }
    let created =
        find("http_requests", &[("operation", "reserve"), ("status", "201"), ("outcome", "created")]);
    assert_eq!(created.len(), 1, "one flush has the 201, the next does not repeat it: {docs:#?}");
    assert_eq!(created[0]["http_requests"], 1);
    assert_eq!(
        created[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["operation", "status", "outcome"]])
    );
    let short = find(
        "http_requests",
        &[("operation", "reserve"), ("status", "409"), ("outcome", "INSUFFICIENT_STOCK")],
    );
    assert_eq!(short.len(), 1, "{docs:#?}");
    assert_eq!(short[0]["http_requests"], 1);
    let latency = find("http_latency", &[("operation", "reserve")]);
    assert_eq!(latency.len(), 2, "one per flush: {docs:#?}");
    for doc in latency {
        assert_eq!(doc["http_latency"].as_array().map(Vec::len), Some(1), "{doc}");
        let unit = &doc["_aws"]["CloudWatchMetrics"][0]["Metrics"];
        assert!(unit
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["Name"] == "http_latency" && m["Unit"] == "Milliseconds"));
    }
    let all = find("http_all", &[]);
    assert_eq!(all.len(), 2, "one roll-up per request's flush: {docs:#?}");
    assert!(all.iter().all(|d| d["http_all"] == 1));
    let sweep = find("sweep_expired", &[]);
    assert_eq!(sweep.len(), 1, "{docs:#?}");
    assert_eq!(sweep[0]["sweep_expired"], 1, "the sweep expired the one due hold");
    assert_eq!(sweep[0]["sweep_found"], 1);
    assert_eq!(sweep[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
}

/// The child of [`a_function_handler_writes_its_metrics_as_emf_lines`] (does nothing unless run by it).
#[test]
#[ignore = "run by a_function_handler_writes_its_metrics_as_emf_lines in a process of its own"]
fn emf_child() {
    if std::env::var(EMF_CHILD).is_err() {
        return;
    }
    assert!(inventory::metrics::install_emf().is_some(), "the child's recorder is the EMF one");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let t = TestTable::new().await;
        set_stock(&t.store, "SNEAKER-42", "berlin", 3).await;
        let sample = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/reserve.json")).unwrap();
        let handler = inventory::lambda::http_handler(Arc::new(t.store.clone()), Operation::Reserve);
        for (order, quantity) in [("order-emf-1", 2), ("order-emf-2", 5)] {
            let mut event: Value = serde_json::from_str(&sample).unwrap();
            let body = json!({"orderId": order, "ttlSeconds": 60, "lines": [{"sku": "SNEAKER-42", "locationId": "berlin", "quantity": quantity}]});
            event["body"] = json!(body.to_string());
            let request = lambda_http::request::from_str(&event.to_string()).unwrap();
            let response = handler.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), if quantity == 2 { 201 } else { 409 });
        }
        // The expiry function's handler, once the hold is due.
        t.clock.advance(Duration::from_secs(61));
        let context = lambda_runtime::Context::default();
        let event = lambda_runtime::LambdaEvent::new(Default::default(), context);
        let report = inventory::lambda::flushing(inventory::expiry::handle_scheduled(&t.store, event)).await.unwrap();
        assert_eq!(report.expired, 1);
    });
    println!("child done");
}

/// A request's X-Ray trace header goes into the outbox record its change writes (and from there
/// onto the PutEvents entry: `publish::plan` tests that step).
#[tokio::test]
async fn the_trace_header_of_a_request_is_kept_with_its_event() {
    let t = TestTable::new().await;
    set_stock(&t.store, "T", "w1", 5).await;
    let app = integration_tests::runtime::app(&t.store);
    let trace = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1";
    assert_eq!(app.clone().oneshot(reserve_request("o-trace", Some(trace))).await.unwrap().status(), 201);

    // In Lambda the invocation's trace is the one kept (API Gateway's header names its own).
    let invoked = "Root=1-67891234-0123456789abcdef01234567;Parent=1111111111111111;Sampled=1";
    let mut context = lambda_runtime::Context::default();
    context.xray_trace_id = Some(invoked.to_owned());
    let mut traced = reserve_request("o-lambda", Some(trace));
    traced.extensions_mut().insert(context);
    assert_eq!(app.clone().oneshot(traced).await.unwrap().status(), 201);
    // A request without a header after them keeps none: nothing leaks from one to the next.
    assert_eq!(app.oneshot(reserve_request("o-plain", None)).await.unwrap().status(), 201);

    let traces = created_traces(&t).await;
    assert_eq!(traces.get("o-trace").cloned().flatten().as_deref(), Some(trace));
    assert_eq!(traces.get("o-lambda").cloned().flatten().as_deref(), Some(invoked));
    assert_eq!(traces.get("o-plain"), Some(&None));
}

fn reserve_request(order: &str, trace: Option<&str>) -> Request<Body> {
    let body = json!({"orderId": order, "lines": [{"sku": "T", "locationId": "w1", "quantity": 1}]});
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/v1/reservations")
        .header("content-type", "application/json");
    if let Some(trace) = trace {
        request = request.header("x-amzn-trace-id", trace);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

/// The trace header of each order's `ReservationCreated` outbox record.
async fn created_traces(t: &TestTable) -> BTreeMap<String, Option<String>> {
    let records = t.scan("begins_with(pk, :p)", &[(":p", "OUTBOX#")]).await;
    records
        .iter()
        .filter(|r| {
            r.get("detailType").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("ReservationCreated")
        })
        .map(|r| {
            let detail: Value = serde_json::from_str(r["detail"].as_s().unwrap()).unwrap();
            let order = detail["data"]["orderId"].as_str().unwrap().to_owned();
            (order, r.get("traceHeader").and_then(|v| v.as_s().ok()).cloned())
        })
        .collect()
}

/// Sets up a table with stock, PENDING, confirmed and released holds across items and orders.
async fn busy_table(t: &TestTable) {
    for (sku, loc, qty) in [("A", "w1", 10), ("B", "w1", 5), ("C", "w2", 3)] {
        set_stock(&t.store, sku, loc, qty).await;
    }
    let app = integration_tests::runtime::app(&t.store);
    let lines = |a: i64, b: i64| json!([{"sku": "A", "locationId": "w1", "quantity": a}, {"sku": "B", "locationId": "w1", "quantity": b}]);
    let mut ids = Vec::new();
    for (i, (a, b)) in [(2, 1), (1, 1), (3, 2)].into_iter().enumerate() {
        let body = json!({"orderId": format!("o{i}"), "lines": lines(a, b)});
        let (status, text) = send(&app, Method::POST, "/v1/reservations", Some(body), None).await;
        assert_eq!(status, 201, "{text}");
        ids.push(serde_json::from_str::<Value>(&text).unwrap()["reservationId"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        send(&app, Method::POST, &format!("/v1/reservations/{}/confirm", ids[1]), None, None).await.0,
        200
    );
    assert_eq!(
        send(&app, Method::POST, &format!("/v1/reservations/{}/release", ids[2]), None, None).await.0,
        200
    );
}

/// The audit finds nothing on a table the service wrote; after one item is changed behind the
/// service's back (a direct UpdateItem) it reports exactly that item, and its
/// `InventoryDriftDetected` event reaches a subscriber of the bus.
#[tokio::test]
async fn the_audit_reports_exactly_the_item_changed_behind_its_back() {
    let (t, stack) = tokio::join!(TestTable::new(), EventStack::new());
    busy_table(&t).await;
    let options = AuditOptions::default();
    let clean = audit(&t.store, &options).await.expect("audit");
    assert_eq!(clean.drift_count(), 0, "{}", clean.render());
    assert_eq!(
        (clean.items_checked, clean.pending_reservations, clean.order_keys),
        (3, 1, 3),
        "{}",
        clean.render()
    );
    assert_eq!(clean.holds_checked, 2, "o0's PENDING lines: {}", clean.render());

    // Behind the service's back: B/w1 gets one more unit reserved, and nothing else changes.
    let mut key = stock_key("B", "w1");
    key.retain(|k, _| k == "pk" || k == "sk");
    t.store
        .client()
        .update_item()
        .table_name(t.store.table())
        .set_key(Some(key))
        .update_expression("SET reserved = reserved + :one")
        .expression_attribute_values(":one", inventory::store::items::n(1))
        .send()
        .await
        .expect("direct update");
    // The audit-stock function's handler, on its sample scheduled event.
    let sample =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/audit-stock.json")).unwrap();
    let event: aws_lambda_events::event::cloudwatch_events::CloudWatchEvent =
        serde_json::from_str(&sample).unwrap();
    assert_eq!(event.source.as_deref(), Some("aws.scheduler"));
    // As the local runtime runs it: its own store and EventBridge client, behind its IAM gate.
    let runtime = stack.runtime_over(&t.store, t.streams_client());
    let (store, function) = (runtime.store("audit-stock").unwrap(), runtime.function("audit-stock").unwrap());
    let report = handle_scheduled(&store, &function.events, &stack.bus).await.expect("audit");
    assert_eq!(report.drift_count(), 1, "{}", report.render());
    let drift = &report.drift[0];
    assert_eq!((drift.sku.as_str(), drift.location_id.as_str()), ("B", "w1"));
    // B/w1: 5 on hand, 1 confirmed (4 left), 1 held by o0's PENDING line; now reserved 2.
    assert_eq!((drift.on_hand, drift.reserved, drift.held_by_reservations, drift.hold_items), (4, 2, 1, 1));
    assert!(
        drift
            .problems
            .iter()
            .any(|p| matches!(p, inventory::audit::Problem::AvailableNotOnHandMinusReserved { .. })),
        "{:?}",
        drift.problems
    );
    assert!(report.render().contains("DRIFT B/w1"), "{}", report.render());

    let got = stack
        .receive_until(&stack.tap_queue_url, Duration::from_secs(30), |got| {
            got.iter().any(|e| e["detail-type"] == "InventoryDriftDetected")
        })
        .await;
    let events: Vec<_> = got.iter().filter(|e| e["detail-type"] == "InventoryDriftDetected").collect();
    assert_eq!(events.len(), 1, "{got:#?}");
    let data = &events[0]["detail"]["data"];
    assert_eq!(events[0]["source"], "inventory");
    assert_eq!(
        (
            data["sku"].as_str(),
            data["locationId"].as_str(),
            data["onHand"].as_i64(),
            data["reserved"].as_i64()
        ),
        (Some("B"), Some("w1"), Some(4), Some(2))
    );
    assert_eq!(data["heldByReservations"], 1);
    assert!(!data["problems"].as_array().unwrap().is_empty());
    assert!(events[0]["detail"]["eventId"].is_string());
}

/// The audit never calls a table that is only busy drifting: while writers reserve, change the
/// lines of, confirm, release and re-reserve orders on the audited items (the order key moving to
/// a new reservation), each run's suspects are settled on re-reads, and none is reported.
#[tokio::test]
async fn an_audit_during_writes_reports_no_drift() {
    let t = TestTable::new().await;
    busy_table(&t).await;
    set_stock(&t.store, "A", "w1", 1000).await;
    set_stock(&t.store, "C", "w2", 1000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..6 {
        let (store, stop, writes) = (t.store.clone(), stop.clone(), writes.clone());
        writers.push(tokio::spawn(async move {
            let app = integration_tests::runtime::app(&store);
            let lines = |a: i64, c: i64| {
                json!({"lines": [{"sku": "A", "locationId": "w1", "quantity": a}, {"sku": "C", "locationId": "w2", "quantity": c}]})
            };
            let ok = |status: u16| {
                assert!(status < 300, "a writer's request failed: {status}");
                writes.fetch_add(1, Ordering::Relaxed);
            };
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let path = format!("/v1/orders/busy-{w}-{n}/reservation");
                let (status, text) = send(&app, Method::PUT, &path, Some(lines(1, 1)), None).await;
                ok(status);
                let id = serde_json::from_str::<Value>(&text).unwrap()["reservationId"].as_str().unwrap().to_owned();
                // The same order's cart changes: its hold is modified in place.
                ok(send(&app, Method::PUT, &path, Some(lines(2, 1)), None).await.0);
                if n % 3 == 0 {
                    ok(send(&app, Method::POST, &format!("/v1/reservations/{id}/confirm"), None, None).await.0);
                } else {
                    ok(send(&app, Method::POST, &format!("/v1/reservations/{id}/release"), None, None).await.0);
                    // A re-checkout: the order key moves to a new reservation.
                    ok(send(&app, Method::PUT, &path, Some(lines(1, 2)), None).await.0);
                }
                n += 1;
            }
        }));
    }
    // At least 6 audits, and on until the writers have made 60 changes while audits ran.
    let (mut runs, mut unsettled) = (0, 0);
    let started = std::time::Instant::now();
    while runs < 6 || (writes.load(Ordering::Relaxed) < 60 && started.elapsed() < Duration::from_secs(60)) {
        let report = audit(&t.store, &AuditOptions::default()).await.expect("audit");
        assert_eq!(report.drift_count(), 0, "{}", report.render());
        unsettled += report.unsettled.len();
        runs += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let writes = writes.load(Ordering::Relaxed);
    assert!(writes >= 60, "the writers ran ({writes})");
    eprintln!("{runs} audits during {writes} writes; {unsettled} suspects unsettled");
    let settled = audit(&t.store, &AuditOptions::default()).await.expect("audit");
    assert_eq!((settled.drift_count(), settled.unsettled.len()), (0, 0), "{}", settled.render());
}
