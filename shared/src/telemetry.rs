//! Logging: JSON lines via `tracing`, one object per event, carrying the current span's fields
//! (the request's correlation id among them). `RUST_LOG` filters (default `info`).

/// Installs the JSON subscriber once; later calls are no-ops (tests call it from many places).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .try_init();
}
