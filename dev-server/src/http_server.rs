//! The local HTTP API: each request is served by `inventory::http::serve_raw`, which does what API
//! Gateway's HTTP API and Lambda would (route, payload 2.0 event, lambda_http, the handler).

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use inventory::http::{serve_raw, MAX_BODY_BYTES};
use inventory::Store;
use tokio::net::{TcpListener, TcpStream};

/// Serves every connection `listener` accepts, until the task is dropped.
pub async fn serve_http(listener: TcpListener, store: Arc<Store>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(store.clone(), stream));
            }
            Err(e) => tracing::warn!(error = %e, "accept failed"),
        }
    }
}

/// Serves the HTTP/1.1 requests of one connection.
pub async fn serve_connection(store: Arc<Store>, stream: TcpStream) {
    let service = service_fn(move |req| serve(store.clone(), req));
    if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(error = %e, "connection closed with an error");
    }
}

async fn serve(
    store: Arc<Store>,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    // Read at most one byte more than the limit: enough to know the body is too large.
    let body = Limited::new(body, MAX_BODY_BYTES + 1).collect().await.ok().map(|c| c.to_bytes());
    let response = serve_raw(
        &store,
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        body.as_deref(),
    )
    .await;
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    Ok(hyper::Response::from_parts(parts, Full::new(bytes)))
}
