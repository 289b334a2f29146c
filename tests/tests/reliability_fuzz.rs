//! Hostile input, schema-driven: for every route of openapi.json, a seeded generator mutates a
//! valid request (path parameters, body, headers, method, query) into oversized, deeply nested,
//! non-UTF-8, unicode-confusable, mistyped and out-of-range variants, and sends the raw bytes
//! to the local HTTP server. Every answer must come within a deadline, never be a 5xx, be the
//! contract's error body when it is an error, leak nothing, and a rejected request must leave
//! the table exactly as it was (a fingerprint of every item, before and after).
//!
//! Quick in `make test`; `make soak` sets RELIABILITY_FUZZ_CASES higher. The seed is printed;
//! RELIABILITY_SEED replays the same inputs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::figures::{env_usize, seed};
use integration_tests::http_client::start_local_api;
use integration_tests::{hold, TestTable};
use inventory::store::StockChange;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(10);

struct Reply {
    status: u16,
    body: Vec<u8>,
}

/// Sends raw bytes on a fresh connection and reads the whole answer.
async fn send_raw(port: u16, request: &[u8]) -> Result<Reply, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
        // The server may answer (413, 400) and close before reading all of a large body.
        let _ = stream.write_all(request).await;
        let mut raw = Vec::new();
        let read = stream.read_to_end(&mut raw).await;
        if raw.is_empty() {
            return Err(format!("no answer ({read:?})"));
        }
        let text = String::from_utf8_lossy(&raw);
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("no status line")?;
        let body_at = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |i| i + 4);
        Ok(Reply { status, body: raw[body_at..].to_vec() })
    };
    tokio::time::timeout(DEADLINE, exchange).await.map_err(|_| "no answer within the deadline".to_owned())?
}

/// Percent-encodes every byte outside the unreserved set.
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A request being mutated.
#[derive(Clone)]
struct Request {
    method: String,
    /// Path segments, raw (encoded when sent unless `raw_target`).
    segments: Vec<Vec<u8>>,
    /// Indexes of the segments that are parameters.
    params: Vec<usize>,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    raw_target: bool,
}

impl Request {
    fn bytes(&self) -> Vec<u8> {
        let mut target = Vec::new();
        for s in &self.segments {
            target.push(b'/');
            if self.raw_target {
                target.extend_from_slice(s);
            } else {
                target.extend_from_slice(encode(s).as_bytes());
            }
        }
        if let Some(q) = &self.query {
            target.push(b'?');
            target.extend_from_slice(q.as_bytes());
        }
        let mut out = Vec::new();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&target);
        out.extend_from_slice(b" HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        let body = self.body.clone().unwrap_or_default();
        if self.body.is_some() {
            out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        out
    }
}

/// A valid request for a route of openapi.json.
fn base_request(method: &str, template: &str, reservation_id: &str, rng: &mut fastrand::Rng) -> Request {
    let mut segments = Vec::new();
    let mut params = Vec::new();
    for part in template.trim_start_matches('/').split('/') {
        let value = match part {
            "{sku}" => "FUZZ-SKU".to_owned(),
            "{locationId}" => "w1".to_owned(),
            "{reservationId}" => reservation_id.to_owned(),
            "{orderId}" => "fuzz-order".to_owned(),
            "{channelId}" => "fuzz-channel".to_owned(),
            p if p.starts_with('{') => {
                panic!("openapi.json has a new parameter {p}: give the fuzz a valid value")
            }
            p => p.to_owned(),
        };
        if part.starts_with('{') {
            params.push(segments.len());
        }
        segments.push(value.into_bytes());
    }
    let body = match (method, template) {
        ("get", _) => None,
        ("put", "/v1/stock/{sku}/{locationId}") => Some(json!({"onHand": rng.i64(20..=60)})),
        ("post", "/v1/stock/{sku}/{locationId}/adjustments") => {
            Some(json!({"delta": rng.i64(1..=3), "reason": "fuzz"}))
        }
        ("post", "/v1/reservations") => Some(json!({
            "orderId": format!("fuzz-{}", rng.u32(..)),
            "lines": [{"sku": "FUZZ-SKU", "locationId": "w1", "quantity": 1}],
            "ttlSeconds": 900
        })),
        ("post", "/v1/stock/batch") => Some(json!({
            "items": [{"sku": "FUZZ-SKU", "locationId": "w1", "delta": rng.i64(1..=3)}]
        })),
        ("put", "/v1/orders/{orderId}/reservation") => Some(json!({
            "lines": [{"sku": "FUZZ-SKU", "locations": ["w1"], "quantity": rng.i64(1..=2)}]
        })),
        ("post", "/v1/reservations/{reservationId}/extend") => Some(json!({"ttlSeconds": 600})),
        ("put", "/v1/channels/{channelId}") => {
            Some(json!({"locations": ["w1"], "safetyStock": rng.i64(0..=2)}))
        }
        ("post", "/v1/availability") => Some(json!({"skus": ["FUZZ-SKU"], "byLocation": true})),
        // FUZZ-SKU has stock: 409, never a kit (a mutation must not make it one either).
        ("put", "/v1/kits/{sku}") => {
            Some(json!({"components": [{"sku": "FUZZ-PART", "quantity": rng.i64(1..=3)}]}))
        }
        ("post", t) if t.ends_with("/confirm") || t.ends_with("/release") => None,
        (m, t) => panic!("openapi.json has {m} {t}: give the fuzz a valid request for it"),
    };
    let mut headers = vec![("x-correlation-id".to_owned(), b"fuzz".to_vec())];
    if body.is_some() {
        headers.push(("content-type".to_owned(), b"application/json".to_vec()));
    }
    Request {
        method: method.to_uppercase(),
        segments,
        params,
        query: None,
        headers,
        body: body.map(|b| b.to_string().into_bytes()),
        raw_target: false,
    }
}

/// Hostile strings for identifiers: confusables, invisible and control characters, and more.
fn hostile_id(rng: &mut fastrand::Rng) -> Vec<u8> {
    let choices: Vec<Vec<u8>> = vec![
        Vec::new(),
        "A".repeat(65).into_bytes(),
        "x".repeat(4000).into_bytes(),
        vec![0xFF, 0xFE, 0xFD],
        vec![b'F', 0xC3, 0x28, b'Z'],
        "FUZZ\u{2010}SKU".into(),  // hyphen lookalike
        "FUΖΖ-SKU".into(),         // Greek capital zeta
        "ＦＵＺＺ-ＳＫＵ".into(),  // fullwidth
        "FUZZ-SKU\u{200B}".into(), // zero-width space
        "\u{202E}UKS-ZZUF".into(), // right-to-left override
        "FUZZ-SKU\u{0000}".into(),
        "../../etc/passwd".into(),
        "a/b".into(),
        "FUZZ SKU".into(),
        "🙂".into(),
        "w1\r\nx-injected: 1".into(),
        "00000000-0000-0000-0000-000000000000".into(),
        "{7c9e6679-7425-40de-944b-e07fc1f90ae7}".into(),
        "7C9E6679-7425-40DE-944B-E07FC1F90AE7".into(),
        "%".into(),
        "null".into(),
    ];
    choices[rng.usize(..choices.len())].clone()
}

/// Replaces the value at a JSON pointer-ish path with `v` (only objects and arrays).
fn set(body: &mut Value, path: &[&str], v: Value) {
    let mut at = body;
    for (i, key) in path.iter().enumerate() {
        let last = i == path.len() - 1;
        let next = match (at, key.parse::<usize>()) {
            (Value::Array(a), Ok(n)) if n < a.len() => &mut a[n],
            (Value::Object(o), _) if last => {
                o.insert((*key).to_owned(), v);
                return;
            }
            (Value::Object(o), _) => match o.get_mut(*key) {
                Some(x) => x,
                None => return,
            },
            _ => return,
        };
        if last {
            *next = v;
            return;
        }
        at = next;
    }
}

fn odd_value(rng: &mut fastrand::Rng) -> Value {
    let choices = [
        json!(0),
        json!(-1),
        json!(1.5),
        json!(1e300),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(100_001),
        json!(86_401),
        json!("1"),
        json!(null),
        json!(true),
        json!([]),
        json!({}),
        json!("x".repeat(300)),
        json!("ＦＵＺＺ-ＳＫＵ"),
        json!(""),
    ];
    choices[rng.usize(..choices.len())].clone()
}

/// Applies one random mutation; returns its name.
fn mutate(r: &mut Request, rng: &mut fastrand::Rng) -> &'static str {
    let json_body: Option<Value> = r.body.as_ref().and_then(|b| serde_json::from_slice(b).ok());
    let kinds: &[&str] = &[
        "none",
        "path-param",
        "raw-target",
        "query",
        "method",
        "no-content-type",
        "text-content-type",
        "long-header",
        "non-ascii-header",
        "body-invalid-json",
        "body-truncated",
        "body-non-utf8",
        "body-deep-nesting",
        "body-oversized",
        "body-top-level",
        "body-bom",
        "body-lone-surrogate",
        "body-field-value",
        "body-missing-field",
        "body-unknown-field",
        "body-duplicate-key",
        "body-lines",
    ];
    let kind = kinds[rng.usize(..kinds.len())];
    match kind {
        "path-param" if !r.params.is_empty() => {
            let i = r.params[rng.usize(..r.params.len())];
            r.segments[i] = hostile_id(rng);
        }
        "raw-target" => {
            r.raw_target = true;
            if let Some(&i) = r.params.first() {
                r.segments[i] = hostile_id(rng);
            }
        }
        "query" => {
            r.query = Some(["%ZZ=%FF", "a=1&a=2", "x=%00", &"q=1&".repeat(2000)][rng.usize(..4)].to_owned())
        }
        "method" => {
            r.method = ["DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO"][rng.usize(..6)].to_owned()
        }
        "no-content-type" => r.headers.retain(|(n, _)| n != "content-type"),
        "text-content-type" => {
            r.headers.retain(|(n, _)| n != "content-type");
            r.headers.push(("content-type".into(), b"text/plain; charset=latin1".to_vec()));
        }
        "long-header" => r.headers.push(("x-correlation-id".into(), "c".repeat(8_000).into_bytes())),
        "non-ascii-header" => r.headers.push(("x-correlation-id".into(), vec![0xC3, 0xA9, 0xFF, b'a'])),
        "body-invalid-json" => r.body = Some(b"{\"orderId\": ,}".to_vec()),
        "body-truncated" => {
            if let Some(b) = &mut r.body {
                b.truncate(b.len() / 2)
            } else {
                r.body = Some(b"{\"ttlSeconds\": 6".to_vec())
            }
        }
        "body-non-utf8" => r.body = Some(vec![b'{', b'"', 0xFF, 0xFE, b'"', b':', b'1', b'}']),
        "body-deep-nesting" => {
            let depth = [200, 5_000, 30_000][rng.usize(..3)];
            r.body = Some(format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes());
        }
        "body-oversized" => {
            let mut v = json_body.unwrap_or(json!({}));
            set(&mut v, &["reason"], json!("x".repeat(70_000)));
            r.body = Some(v.to_string().into_bytes());
        }
        "body-top-level" => {
            r.body = Some(["[]", "1", "\"s\"", "null", "true", ""][rng.usize(..6)].as_bytes().to_vec())
        }
        "body-bom" => {
            let mut b = vec![0xEF, 0xBB, 0xBF];
            b.extend(r.body.clone().unwrap_or_else(|| b"{}".to_vec()));
            r.body = Some(b);
        }
        "body-lone-surrogate" => {
            r.body = Some(br#"{"orderId": "\ud800", "ttlSeconds": 60, "onHand": 1, "delta": 1}"#.to_vec())
        }
        "body-field-value" | "body-missing-field" | "body-unknown-field" | "body-duplicate-key"
        | "body-lines" => {
            let Some(mut v) = json_body else {
                r.body = Some(json!({"unexpected": odd_value(rng)}).to_string().into_bytes());
                return kind;
            };
            let fields: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
            match kind {
                "body-field-value" if !fields.is_empty() => {
                    let f = fields[rng.usize(..fields.len())].clone();
                    if f == "lines" {
                        let field = ["sku", "locationId", "quantity"][rng.usize(..3)];
                        set(&mut v, &["lines", "0", field], odd_value(rng));
                    } else {
                        set(&mut v, &[&f], odd_value(rng));
                    }
                }
                "body-missing-field" if !fields.is_empty() => {
                    let f = fields[rng.usize(..fields.len())].clone();
                    v.as_object_mut().map(|o| o.remove(&f));
                }
                "body-unknown-field" => set(&mut v, &["quantity\u{200B}"], json!(1)),
                "body-duplicate-key" => {
                    let mut s = v.to_string();
                    s.insert_str(1, "\"ttlSeconds\": -5, \"onHand\": -5, \"delta\": 0, ");
                    r.body = Some(s.into_bytes());
                    return kind;
                }
                _ => {
                    let line = json!({"sku": "FUZZ-SKU", "locationId": "w1", "quantity": 1});
                    let n = [0, 26, 1_000][rng.usize(..3)];
                    set(&mut v, &["lines"], Value::Array(vec![line; n]));
                }
            }
            r.body = Some(v.to_string().into_bytes());
        }
        _ => return "none",
    }
    kind
}

/// An attribute value as text, with map keys sorted (the SDK's maps are HashMaps).
fn canonical(value: &AttributeValue) -> String {
    match value {
        AttributeValue::M(m) => {
            let sorted: BTreeMap<_, _> = m.iter().map(|(k, v)| (k, canonical(v))).collect();
            format!("{sorted:?}")
        }
        AttributeValue::L(l) => format!("{:?}", l.iter().map(canonical).collect::<Vec<_>>()),
        other => format!("{other:?}"),
    }
}

/// Every item of the table, in a canonical text form.
async fn fingerprint(t: &TestTable) -> String {
    let mut items: Vec<String> = t
        .scan("attribute_exists(pk)", &[])
        .await
        .into_iter()
        .map(|item| canonical(&AttributeValue::M(item)))
        .collect();
    items.sort();
    items.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_never_gets_a_5xx_or_changes_state() {
    let seed = seed("reliability_fuzz");
    let cases = env_usize("RELIABILITY_FUZZ_CASES", 400);
    let mut rng = fastrand::Rng::with_seed(seed);
    let openapi: Value =
        serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json is JSON");
    let routes: Vec<(String, String)> = openapi["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .as_object()
                .into_iter()
                .flat_map(|m| m.keys())
                .map(|m| (m.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .filter(|(m, _)| ["get", "put", "post", "delete", "patch"].contains(&m.as_str()))
        .collect();

    let t = TestTable::new().await;
    t.store
        .write_stock("FUZZ-SKU", "w1", StockChange::Set { on_hand: 1_000 }, None, None, &Default::default())
        .await
        .unwrap();
    let fixture = hold(&t.store, "fuzz-order", "FUZZ-SKU", 1, 900).await.reservation_id;
    let port = start_local_api(Arc::new(t.store.clone())).await;

    let mut violations = Vec::new();
    let mut by_mutation: BTreeMap<&str, u64> = BTreeMap::new();
    let mut by_status: BTreeMap<u16, u64> = BTreeMap::new();
    let mut by_route: BTreeMap<String, u64> = BTreeMap::new();
    let mut rejected_by_http_layer = 0u64;
    let mut before = fingerprint(&t).await;
    for case in 0..cases {
        let (method, template) = &routes[rng.usize(..routes.len())];
        let mut request = base_request(method, template, &fixture, &mut rng);
        let mut kinds = vec![mutate(&mut request, &mut rng)];
        if rng.u32(0..4) == 0 {
            kinds.push(mutate(&mut request, &mut rng));
        }
        let label = format!("case {case} ({} {template}, {kinds:?})", request.method);
        for k in &kinds {
            *by_mutation.entry(k).or_default() += 1;
        }
        *by_route.entry(format!("{} {template}", method.to_uppercase())).or_default() += 1;
        let reply = match send_raw(port, &request.bytes()).await {
            Ok(reply) => reply,
            Err(e) => {
                violations.push(format!("{label}: {e}"));
                continue;
            }
        };
        *by_status.entry(reply.status).or_default() += 1;
        if reply.status >= 500 {
            violations.push(format!(
                "{label}: status {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
        let body_text = String::from_utf8_lossy(&reply.body);
        for leak in ["DynamoDB", "SdkError", "panicked", "src/", "dispatch failure", "Exception"] {
            if body_text.contains(leak) {
                violations.push(format!("{label}: the answer leaks {leak:?}: {body_text}"));
            }
        }
        if reply.status >= 400 {
            if reply.body.is_empty() && reply.status == 400 {
                // hyper refused the HTTP itself (as API Gateway would, before any function runs).
                rejected_by_http_layer += 1;
            } else if request.method != "HEAD" {
                match serde_json::from_slice::<Value>(&reply.body) {
                    Ok(b) if b["error"]["code"].is_string() && b["error"]["message"].is_string() => {}
                    _ => violations
                        .push(format!("{label}: {} without the error body: {body_text}", reply.status)),
                }
            }
            let after = fingerprint(&t).await;
            if after != before {
                violations.push(format!("{label}: rejected with {} but the table changed", reply.status));
                before = after;
            }
        } else if request.method != "GET" {
            before = fingerprint(&t).await;
        }
    }
    let figures = json!({
        "seed": seed,
        "cases": cases,
        "routes": by_route,
        "mutations": by_mutation,
        "statuses": by_status.iter().map(|(s, n)| (s.to_string(), *n)).collect::<BTreeMap<_, _>>(),
        "rejectedByHttpLayer": rejected_by_http_layer,
        "violations": violations.len(),
    });
    eprintln!("reliability_fuzz: {figures}");
    integration_tests::figures::write("fuzz", &figures);
    assert!(
        violations.is_empty(),
        "seed {seed}: {} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    assert!(by_status.keys().any(|s| (200..300).contains(s)), "some inputs were valid");
    assert!(by_status.keys().any(|s| *s == 400), "some inputs were rejected as invalid");
}
