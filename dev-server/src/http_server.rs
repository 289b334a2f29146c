//! The local HTTP API: the full router of `inventory::http` (every operation's routes) served by
//! `axum::serve`. `make dev`, the tests and the bench all start it through [`serve_http`].

use std::future::Future;
use std::sync::Arc;

use inventory::http::{router, Operation};
use inventory::Store;
use tokio::net::TcpListener;

/// Serves every connection `listener` accepts until `shutdown` completes (then lets the requests
/// in flight finish).
pub async fn serve_http(
    listener: TcpListener,
    store: Arc<Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = router(store, &Operation::ALL);
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "the local HTTP server stopped");
    }
}
