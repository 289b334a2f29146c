//! The IAM gate: every AWS call a function makes locally is checked against that function's
//! policy statements from template.yaml, as AWS would check them against its execution role.
//!
//! It sits at the SDK's HTTP client ([`GatedHttpClient`]), in front of whatever client the
//! function would use (the real one, or a test's fault injector): a call its policy does not
//! allow never leaves the process and is answered with AWS's own `AccessDeniedException`
//! (HTTP 400, the service's error shape), so the SDK and the function see exactly what they would
//! see on AWS. At that level the request is the wire request: the operation from `X-Amz-Target`
//! (DynamoDB, DynamoDB Streams, EventBridge and SQS all speak AWS JSON) and the resources from
//! its JSON body, which also names every item of a transaction (an interceptor's typed input
//! would give the same, one type per operation).
//!
//! The evaluator ([`evaluate`]) is a pure function: explicit Deny wins, then any Allow, else the
//! call is not allowed. Actions match case-insensitively with `*` and `?` wildcards; resources
//! case-sensitively with the same wildcards, each within its ARN segment (a `*` ending a segment
//! may run on past colons), as IAM matches them. What a call is, in IAM terms ([`calls_of`]):
//! each DynamoDB operation by its action on the table (a Query or Scan with `IndexName` on
//! `table/NAME/index/INDEX`); a TransactWriteItems item by item (PutItem, UpdateItem, DeleteItem,
//! ConditionCheckItem); a TransactGetItems as one GetItem per item; DynamoDB Streams on the
//! stream; PutEvents per entry on its bus; SQS on the queue (a batch call as its single action).
//!
//! Every call is recorded: which grants (action and resource as the template writes them) an
//! allowed one used, or the action and resource of a denied one. `IAM_USAGE_FILE` (set by `make
//! test`) receives one JSON line for each the first time the process sees it, and
//! `infra/iam_usage.py` fails on a denied call (naming the function and the action) and on a grant
//! no call used.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response, StatusCode};
use aws_smithy_types::body::SdkBody;

/// The local account and region every ARN is written in.
pub const LOCAL_ACCOUNT: &str = "000000000000";
pub const LOCAL_REGION: &str = "us-east-1";

mod evaluate;

pub use evaluate::{
    evaluate, evaluate_with, resource_match, wildcard_match, Call, Case, Condition, Decision, Effect,
    Operator, ResourcePolicy, Statement, PRINCIPAL_ARN,
};

fn table_arn(table: &str) -> String {
    if table.starts_with("arn:") {
        return table.to_owned();
    }
    if table.is_empty() {
        // An operation on no table (DescribeLimits...): IAM names no resource.
        return "*".to_owned();
    }
    format!("arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT}:table/{table}")
}

/// A stream ARN in the local account and region (DynamoDB Local writes `ddblocal` as its region).
fn local_stream_arn(arn: &str) -> String {
    match arn.split_once(":table/") {
        Some((_, rest)) => format!("arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT}:table/{rest}"),
        None => arn.to_owned(),
    }
}

fn queue_arn_of_url(url: &str) -> String {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let name = parts.next().unwrap_or_default();
    let account = parts.next().filter(|a| a.len() == 12).unwrap_or(LOCAL_ACCOUNT);
    format!("arn:aws:sqs:{LOCAL_REGION}:{account}:{name}")
}

fn bus_arn(bus: Option<&str>) -> String {
    match bus {
        Some(arn) if arn.starts_with("arn:") => arn.to_owned(),
        name => {
            format!("arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT}:event-bus/{}", name.unwrap_or("default"))
        }
    }
}

/// What the gate reads of a request's JSON body: the fields that name resources. serde skips the
/// rest (items, expressions, values) without building them.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Wire {
    table_name: Option<String>,
    index_name: Option<String>,
    transact_items: Option<Vec<BTreeMap<String, WirePart>>>,
    request_items: Option<BTreeMap<String, serde::de::IgnoredAny>>,
    stream_arn: Option<String>,
    shard_iterator: Option<String>,
    entries: Option<Vec<WireEntry>>,
    queue_url: Option<String>,
    queue_name: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct WirePart {
    table_name: Option<String>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct WireEntry {
    event_bus_name: Option<String>,
    source: Option<String>,
}

/// The calls, in IAM terms, of one request to `target` (its `X-Amz-Target`: `Service.Operation`)
/// with JSON `body`. `Err` for a request the gate cannot read (never sent on).
pub fn calls_of(target: &str, body: &[u8]) -> Result<Vec<Call>, String> {
    let (service, operation) = target.split_once('.').ok_or_else(|| format!("no operation in {target:?}"))?;
    let body: Wire = if body.is_empty() {
        Wire::default()
    } else {
        serde_json::from_slice(body).map_err(|e| format!("a body the gate cannot read: {e}"))?
    };
    let text = |field: &Option<String>| field.clone().unwrap_or_default();
    let calls = match service {
        s if s.starts_with("DynamoDBStreams") => {
            let action = format!("dynamodb:{operation}");
            match operation {
                "ListStreams" => vec![Call::new(action, "*")],
                "GetRecords" => {
                    // DynamoDB's shard iterators carry their stream; DynamoDB Local's say it in
                    // clear, after the shard's id.
                    let iterator = text(&body.shard_iterator);
                    let arn = iterator
                        .find("arn:aws:dynamodb:")
                        .map(|at| iterator[at..].split('|').next().unwrap_or_default())
                        .ok_or("a shard iterator that names no stream")?;
                    vec![Call::new(action, local_stream_arn(arn))]
                }
                _ => vec![Call::new(action, local_stream_arn(&text(&body.stream_arn)))],
            }
        }
        s if s.starts_with("DynamoDB_") => match operation {
            "TransactWriteItems" | "TransactGetItems" => {
                let items = body.transact_items.ok_or("TransactItems missing")?;
                let mut calls = Vec::with_capacity(items.len());
                for item in &items {
                    let (kind, part) = item.iter().next().ok_or("an empty transaction item")?;
                    let action = match kind.as_str() {
                        "Put" => "dynamodb:PutItem",
                        "Update" => "dynamodb:UpdateItem",
                        "Delete" => "dynamodb:DeleteItem",
                        "ConditionCheck" => "dynamodb:ConditionCheckItem",
                        "Get" => "dynamodb:GetItem",
                        other => return Err(format!("a transaction item {other}")),
                    };
                    calls.push(Call::new(action, table_arn(&text(&part.table_name))));
                }
                calls
            }
            "BatchGetItem" | "BatchWriteItem" => body
                .request_items
                .ok_or("RequestItems missing")?
                .keys()
                .map(|table| Call::new(format!("dynamodb:{operation}"), table_arn(table)))
                .collect(),
            "ListTables" => vec![Call::new("dynamodb:ListTables", "*")],
            _ => {
                let mut resource = table_arn(&text(&body.table_name));
                if let Some(index) = &body.index_name {
                    resource = format!("{resource}/index/{index}");
                }
                vec![Call::new(format!("dynamodb:{operation}"), resource)]
            }
        },
        "AWSEvents" => match operation {
            "PutEvents" => body
                .entries
                .ok_or("Entries missing")?
                .iter()
                .map(|entry| {
                    let call = Call::new("events:PutEvents", bus_arn(entry.event_bus_name.as_deref()));
                    // IAM judges each entry with its own `events:source`.
                    call.with("events:source", entry.source.clone().unwrap_or_default())
                })
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            // Rules, targets, archives...: their resources are not the bus; no function calls them.
            other => return Err(format!("events:{other}, which the gate does not judge")),
        },
        "AmazonSQS" => {
            let action = match operation {
                "SendMessageBatch" => "SendMessage",
                "DeleteMessageBatch" => "DeleteMessage",
                "ChangeMessageVisibilityBatch" => "ChangeMessageVisibility",
                other => other,
            };
            let resource = match operation {
                "GetQueueUrl" => {
                    format!("arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT}:{}", text(&body.queue_name))
                }
                "ListQueues" => "*".to_owned(),
                _ => queue_arn_of_url(&text(&body.queue_url)),
            };
            vec![Call::new(format!("sqs:{action}"), resource)]
        }
        other => return Err(format!("a call to {other}, which the gate does not know")),
    };
    Ok(calls)
}

/// One function's policy, as the gate applies it.
#[derive(Debug)]
pub struct FunctionPolicy {
    pub function: String,
    /// Its execution role's ARN: the `aws:PrincipalArn` of its calls.
    pub principal: String,
    pub statements: Vec<Statement>,
    /// The resources' own policies (the bus's), applied to the calls on their resources.
    pub resource_policies: Vec<ResourcePolicy>,
    /// The template's own statements (recorded in `IAM_USAGE_FILE`), not a test's stand-ins.
    pub from_template: bool,
}

impl FunctionPolicy {
    /// `Ok` if every call of the request is allowed (and records the grants used), else the
    /// AccessDenied message AWS would give for the first call that is not.
    pub fn check(&self, target: &str, body: &[u8]) -> Result<(), String> {
        let calls = calls_of(target, body).map_err(|why| {
            format!("{} made a call the IAM gate cannot read ({target}): {why}", self.function)
        })?;
        let mut used = Vec::new();
        for call in &calls {
            let call = &call.clone().with(PRINCIPAL_ARN, &self.principal);
            // One policy per resource (`Names::resource_policies`), read in place.
            let resource = self
                .resource_policies
                .iter()
                .find(|p| p.resource == call.resource)
                .map_or(&[][..], |p| p.statements.as_slice());
            let why = match evaluate_with(&self.statements, resource, call) {
                Decision::Allow(grants) => {
                    used.extend(grants);
                    continue;
                }
                Decision::ResourceAllow(_) => continue,
                Decision::ExplicitDeny(_) => "with an explicit deny in an identity-based policy".to_owned(),
                Decision::ResourceDeny(_) => "with an explicit deny in a resource-based policy".to_owned(),
                Decision::NotAllowed => {
                    format!("because no identity-based policy allows the {} action", call.action)
                }
            };
            if self.from_template {
                record(&self.function, &call.action, &call.resource, Seen::Denied);
            }
            return Err(self.denied(call, &why));
        }
        if self.from_template {
            for (s, a, r) in used {
                let statement = &self.statements[s];
                record(&self.function, &statement.actions[a], &statement.written_resources[r], Seen::Granted);
            }
        }
        Ok(())
    }

    fn denied(&self, call: &Call, why: &str) -> String {
        format!(
            "User: arn:aws:sts::{LOCAL_ACCOUNT}:assumed-role/{}/{} is not authorized to perform: {} on resource: {} {why}",
            self.principal.rsplit('/').next().unwrap_or_default(),
            self.function,
            call.action,
            call.resource
        )
    }
}

/// What the gate saw of a grant: used by a call it let through, or a call it denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Granted,
    Denied,
}

/// A grant used (as the template writes it), or a call denied, the first time this process sees
/// it: appended to `IAM_USAGE_FILE` when set (`make test`, for `infra/iam_usage.py`).
fn record(function: &str, action: &str, resource: &str, seen: Seen) {
    /// (function, action, resource, denied)
    type Recorded = BTreeSet<(String, String, String, bool)>;
    static SEEN: OnceLock<Mutex<Recorded>> = OnceLock::new();
    let denied = seen == Seen::Denied;
    let key = (function.to_owned(), action.to_owned(), resource.to_owned(), denied);
    let new = SEEN.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner()).insert(key);
    if !new {
        return;
    }
    let Some(path) = std::env::var_os("IAM_USAGE_FILE") else { return };
    let line =
        serde_json::json!({"function": function, "action": action, "resource": resource, "denied": denied});
    // One write(2) per line: the test processes append to one file at once, and `writeln!` would
    // send the line and its newline in pieces that another process's line can come between.
    let line = format!("{line}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot record IAM usage");
    }
}

/// An SDK HTTP client that lets through only what `policy` allows.
#[derive(Debug, Clone)]
pub struct GatedHttpClient {
    policy: Arc<FunctionPolicy>,
    inner: SharedHttpClient,
}

impl GatedHttpClient {
    pub fn new(policy: Arc<FunctionPolicy>, inner: SharedHttpClient) -> Self {
        GatedHttpClient { policy, inner }
    }
}

impl HttpClient for GatedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(GatedConnector {
            policy: self.policy.clone(),
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct GatedConnector {
    policy: Arc<FunctionPolicy>,
    inner: SharedHttpConnector,
}

impl HttpConnector for GatedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or_default().to_owned();
        let body = request.body().bytes().unwrap_or_default();
        match self.policy.check(&target, body) {
            Ok(()) => self.inner.call(request),
            Err(message) => {
                tracing::error!(function = %self.policy.function, denied = %message, "IAM gate: AccessDenied");
                HttpConnectorFuture::ready(Ok(access_denied(&target, &message)))
            }
        }
    }
}

/// The answer AWS gives a call its policy does not allow, in the service's JSON protocol.
fn access_denied(target: &str, message: &str) -> Response<SdkBody> {
    let (content_type, kind) = if target.starts_with("AWSEvents") {
        ("application/x-amz-json-1.1", "AccessDeniedException")
    } else {
        ("application/x-amz-json-1.0", "com.amazon.coral.service#AccessDeniedException")
    };
    let body = serde_json::json!({"__type": kind, "message": message, "Message": message});
    let mut response =
        Response::new(StatusCode::try_from(400).expect("400"), SdkBody::from(body.to_string()));
    response.headers_mut().insert("content-type", content_type);
    if target.starts_with("AmazonSQS") {
        response.headers_mut().insert("x-amzn-query-error", "AccessDenied;Sender");
    }
    response
}
