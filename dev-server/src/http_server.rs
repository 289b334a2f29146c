//! The local HTTP API: the router the local runtime builds from template.yaml
//! ([`crate::LocalRuntime::router`]) served by `axum::serve`. `make dev`, the tests and the bench
//! all start it through [`serve_http`].

use std::future::Future;

use tokio::net::TcpListener;

/// Serves every connection `listener` accepts until `shutdown` completes (then lets the requests
/// in flight finish).
pub async fn serve_http(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "the local HTTP server stopped");
    }
}
