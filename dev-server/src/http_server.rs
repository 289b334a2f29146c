//! The local HTTP API: the full router of `inventory::http` (every operation's routes) served by
//! `axum::serve`. `make dev`, the tests and the bench all start it through [`serve_http`].

use std::future::Future;
use std::sync::Arc;

use inventory::http::{router_with, Operation, RouterOptions};
use inventory::Store;
use tokio::net::TcpListener;

/// Serves every connection `listener` accepts until `shutdown` completes (then lets the requests
/// in flight finish). The process's metrics go to a Prometheus recorder, rendered at `GET /metrics`.
pub async fn serve_http(
    listener: TcpListener,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let options =
        RouterOptions { metrics: inventory::metrics::install_prometheus(), ..RouterOptions::from_env() };
    let app = router_with(store, &Operation::ALL, options);
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "the local HTTP server stopped");
    }
}
