//! Lambda cold-start proxies: each function's release binary size, and the time from starting
//! its process to "ready for the first event" (its first `GET .../invocation/next` to a minimal
//! Lambda Runtime API served here) and to its answer to that first event (the sample in
//! `events/`), median of several runs.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::stats::{median, round};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColdStart {
    pub function: String,
    pub binary_bytes: u64,
    /// `target/lambda/<fn>/bootstrap.zip` from `make package` (arm64), when present.
    pub arm64_zip_bytes: Option<u64>,
    pub runs: usize,
    /// Process start to its first `GET /runtime/invocation/next` (median).
    pub ready_ms: f64,
    /// Process start to its response to the first event (median).
    pub first_response_ms: f64,
    /// Every run answered the first event on the `response` route (not `error`).
    pub all_ok: bool,
}

enum Signal {
    Ready(Instant),
    Responded(Instant, bool),
}

async fn runtime_api(
    request: hyper::Request<Incoming>,
    event: Bytes,
    served: Arc<Mutex<bool>>,
    signals: mpsc::UnboundedSender<Signal>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let _ = request.into_body().collect().await;
    if path.ends_with("/invocation/next") {
        let first = !std::mem::replace(&mut *served.lock().unwrap(), true);
        if !first {
            // One event per process: the next one never comes (the process is killed).
            std::future::pending::<()>().await;
        }
        let _ = signals.send(Signal::Ready(Instant::now()));
        let deadline = chrono::Utc::now().timestamp_millis() + 30_000;
        let response = hyper::Response::builder()
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", uuid::Uuid::new_v4().to_string())
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:bench",
            )
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000")
            .body(Full::new(event))
            .expect("response");
        return Ok(response);
    }
    let ok = path.ends_with("/response");
    let _ = signals.send(Signal::Responded(Instant::now(), ok));
    Ok(hyper::Response::builder().status(202).body(Full::new(Bytes::new())).expect("response"))
}

/// One cold start: a fresh Runtime API, the process, the two instants.
async fn one_run(
    binary: &Path,
    function: &str,
    event: Bytes,
    env: &[(String, String)],
) -> Option<(f64, f64, bool)> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let served = Arc::new(Mutex::new(false));
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (event, served, tx) = (event.clone(), served.clone(), tx.clone());
            tokio::spawn(async move {
                let service =
                    service_fn(move |req| runtime_api(req, event.clone(), served.clone(), tx.clone()));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the function binary");
    let mut ready = None;
    let mut answered = None;
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(signal) = rx.recv().await {
            match signal {
                Signal::Ready(at) => ready = Some(at),
                Signal::Responded(at, ok) => {
                    answered = Some((at, ok));
                    break;
                }
            }
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    if waited.is_err() {
        eprintln!("  {function}: no answer within 30 s");
    }
    let ms = |at: Instant| at.duration_since(started).as_secs_f64() * 1000.0;
    Some((ms(ready?), ms(answered?.0), answered?.1))
}

/// The environment of a Lambda execution environment, plus the service's own configuration.
fn lambda_env(service_env: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_REGION", "us-east-1"),
        ("RUST_LOG", "warn"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend_from_slice(service_env);
    env
}

pub fn functions_dir(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("functions"))
        .expect("functions/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Measures every function whose release binary is in `bin_dir`, each with the environment
/// `service_env` gives it (its template entry's, resolved to the bench's stack).
pub async fn run(
    root: &Path,
    bin_dir: &Path,
    runs: usize,
    service_env: impl Fn(&str) -> Vec<(String, String)>,
) -> Vec<ColdStart> {
    let mut results = Vec::new();
    for function in functions_dir(root) {
        let env = lambda_env(&service_env(&function));
        let binary: PathBuf = bin_dir.join(&function);
        let Ok(meta) = std::fs::metadata(&binary) else {
            eprintln!("  {function}: no release binary at {} (make bench builds it)", binary.display());
            continue;
        };
        let event =
            std::fs::read(root.join("events").join(format!("{function}.json"))).expect("sample event");
        let zip = std::fs::metadata(root.join("target/lambda").join(&function).join("bootstrap.zip")).ok();
        let (mut ready, mut first, mut all_ok) = (Vec::new(), Vec::new(), true);
        for _ in 0..runs {
            match one_run(&binary, &function, Bytes::from(event.clone()), &env).await {
                Some((r, f, ok)) => {
                    ready.push(r);
                    first.push(f);
                    all_ok &= ok;
                }
                None => all_ok = false,
            }
        }
        results.push(ColdStart {
            function,
            binary_bytes: meta.len(),
            arm64_zip_bytes: zip.map(|z| z.len()),
            runs: ready.len(),
            ready_ms: round(median(ready)),
            first_response_ms: round(median(first)),
            all_ok,
        });
    }
    results
}
