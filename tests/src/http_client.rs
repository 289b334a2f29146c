//! The local HTTP API in-process, and a small HTTP/1.1 client for it (bench and tests).

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use inventory::http::RouterOptions;
use inventory::Store;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};

/// Starts the local HTTP server (the one `make dev` runs: template.yaml's routes, each function
/// behind its IAM gate) on a free port, over `store`'s table, until the test's runtime ends.
/// `GET /metrics` serves the process's Prometheus recorder.
pub async fn start_local_api(store: Arc<Store>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let options =
        RouterOptions { metrics: inventory::metrics::install_prometheus(), ..RouterOptions::default() };
    let app = crate::runtime::app_with(&store, options);
    tokio::spawn(dev_server::serve_http(listener, app, std::future::pending()));
    port
}

/// An answer: status, `Retry-After` if any, JSON body (`Null` if not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

/// An HTTP/1.1 keep-alive connection to a local server.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect to the local server");
        let (sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(conn);
        Connection { sender }
    }

    pub async fn send(&mut self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let mut builder = http::Request::builder().method(method).uri(path).header("host", "localhost");
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = builder.body(Full::new(bytes)).expect("request");
        self.sender.ready().await.expect("connection ready");
        let response = self.sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.into_body().collect().await.expect("body").to_bytes();
        Answer { status, retry_after, body: serde_json::from_slice(&body).unwrap_or(Value::Null) }
    }
}
