//! Faults DynamoDB Local (or LocalStack) cannot produce, injected at the SDK's HTTP client:
//! transaction conflicts, throttling, server errors, partially failed PutEvents.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Response as SmithyResponse, StatusCode};
use aws_smithy_types::body::SdkBody;

/// A fault to answer one DynamoDB request with, instead of sending it.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// `TransactionCanceledException` whose reasons say `TransactionConflict` (as real DynamoDB
    /// answers when two transactions touch one item at once).
    TransactionConflict,
    /// `ProvisionedThroughputExceededException` (throttling).
    Throttled,
    /// A 500 from the service.
    InternalServerError,
    /// The request is sent on and applied, then its reply is lost: the client sees a timeout
    /// (as after a dropped connection, or a Lambda whose SDK call timed out after DynamoDB
    /// committed).
    LoseReply,
    /// The request is sent on after this delay (a slow dependency).
    Delay(std::time::Duration),
    /// A PutEvents answer in which every entry failed with `ThrottlingException` (EventBridge's
    /// partial failure: HTTP 200, `FailedEntryCount` > 0).
    EntriesThrottled,
    /// The request is sent on and applied; its JSON answer is changed by this function before
    /// the client sees it (a view DynamoDB Local never gives, such as a Query torn by a
    /// transaction that committed while it read).
    Rewrite(fn(&mut serde_json::Value)),
}

impl Fault {
    fn response(self, target_items: usize) -> SmithyResponse<SdkBody> {
        let mut content_type = "application/x-amz-json-1.0";
        let (status, body) = match self {
            Fault::EntriesThrottled => {
                content_type = "application/x-amz-json-1.1";
                let entries: Vec<_> = (0..target_items)
                    .map(|_| serde_json::json!({"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}))
                    .collect();
                (200, serde_json::json!({"FailedEntryCount": target_items, "Entries": entries}))
            }
            Fault::TransactionConflict => {
                let reasons: Vec<_> = (0..target_items.max(1))
                    .map(|i| {
                        if i == 0 {
                            serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
                        } else {
                            serde_json::json!({"Code": "None"})
                        }
                    })
                    .collect();
                (
                    400,
                    serde_json::json!({
                        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                        "CancellationReasons": reasons,
                    }),
                )
            }
            Fault::Throttled => (
                400,
                serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table was exceeded",
                }),
            ),
            Fault::LoseReply | Fault::Delay(_) | Fault::Rewrite(_) => {
                unreachable!("forwarded, not answered here")
            }
            Fault::InternalServerError => (
                500,
                serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                    "message": "Internal server error",
                }),
            ),
        };
        let mut response = SmithyResponse::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::from(body.to_string()),
        );
        response.headers_mut().insert("content-type", content_type);
        response
    }
}

#[derive(Debug, Default)]
struct FaultState {
    /// Faults to answer the next requests of `operation` with, in order.
    planned: Mutex<VecDeque<(String, Fault)>>,
    /// Requests seen per operation (answered by a fault or sent on).
    seen: Mutex<Vec<String>>,
    injected: AtomicUsize,
}

/// An SDK HTTP client that forwards to the real one, except for planned faults.
#[derive(Debug, Clone)]
pub struct FaultInjector {
    inner: SharedHttpClient,
    state: Arc<FaultState>,
}

impl FaultInjector {
    pub fn new() -> Self {
        FaultInjector { inner: aws_smithy_http_client::Builder::new().build_http(), state: Arc::default() }
    }

    /// Answers the next `count` requests of `operation` (e.g. `"TransactWriteItems"`) with `fault`.
    pub fn plan(&self, operation: &str, fault: Fault, count: usize) {
        let mut planned = self.state.planned.lock().unwrap();
        planned.extend(std::iter::repeat_n((operation.to_owned(), fault), count));
    }

    pub fn clear(&self) {
        self.state.planned.lock().unwrap().clear();
        self.state.seen.lock().unwrap().clear();
        self.state.injected.store(0, Ordering::SeqCst);
    }

    /// How many requests of `operation` the client has seen since the last `clear`.
    pub fn seen(&self, operation: &str) -> usize {
        self.state.seen.lock().unwrap().iter().filter(|op| *op == operation).count()
    }

    pub fn injected(&self) -> usize {
        self.state.injected.load(Ordering::SeqCst)
    }
}

impl Default for FaultInjector {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient for FaultInjector {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultConnector {
            inner: self.inner.http_connector(settings, components),
            state: self.state.clone(),
        })
    }
}

/// The API operation a request calls (`TransactWriteItems`...), from its `X-Amz-Target` header.
pub(crate) fn operation_of(request: &HttpRequest) -> String {
    let target = request.headers().get("x-amz-target").and_then(|t| t.rsplit('.').next());
    target.unwrap_or_default().to_owned()
}

#[derive(Debug)]
struct FaultConnector {
    inner: SharedHttpConnector,
    state: Arc<FaultState>,
}

impl HttpConnector for FaultConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = operation_of(&request);
        self.state.seen.lock().unwrap().push(operation.clone());
        let fault = {
            let mut planned = self.state.planned.lock().unwrap();
            match planned.front() {
                Some((op, fault)) if *op == operation => {
                    let fault = *fault;
                    planned.pop_front();
                    Some(fault)
                }
                _ => None,
            }
        };
        match fault {
            Some(Fault::LoseReply) => {
                self.state.injected.fetch_add(1, Ordering::SeqCst);
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    let applied = sent.await;
                    drop(applied);
                    Err(ConnectorError::timeout("the reply was lost after the request was applied".into()))
                })
            }
            Some(Fault::Delay(delay)) => {
                self.state.injected.fetch_add(1, Ordering::SeqCst);
                let inner = self.inner.clone();
                HttpConnectorFuture::new(async move {
                    tokio::time::sleep(delay).await;
                    inner.call(request).await
                })
            }
            Some(Fault::Rewrite(rewrite)) => {
                self.state.injected.fetch_add(1, Ordering::SeqCst);
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move { rewritten(sent.await?, rewrite).await })
            }
            Some(fault) => {
                self.state.injected.fetch_add(1, Ordering::SeqCst);
                let items = request
                    .body()
                    .bytes()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                    .and_then(|v| {
                        v["TransactItems"].as_array().or_else(|| v["Entries"].as_array()).map(Vec::len)
                    })
                    .unwrap_or(1);
                HttpConnectorFuture::ready(Ok(fault.response(items)))
            }
            None => self.inner.call(request),
        }
    }
}

/// `response` with its JSON body changed by `rewrite` (and without the headers that described
/// the old body).
async fn rewritten(
    response: SmithyResponse<SdkBody>,
    rewrite: fn(&mut serde_json::Value),
) -> Result<SmithyResponse<SdkBody>, ConnectorError> {
    use http_body_util::BodyExt;
    let status = response.status();
    let mut headers = response.headers().clone();
    let body = response.into_body().collect().await.map_err(|e| ConnectorError::other(e, None))?.to_bytes();
    let mut json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ConnectorError::other(e.into(), None))?;
    rewrite(&mut json);
    headers.remove("content-length");
    headers.remove("x-amz-crc32");
    let mut out = SmithyResponse::new(status, SdkBody::from(json.to_string()));
    *out.headers_mut() = headers;
    Ok(out)
}
