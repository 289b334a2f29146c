//! Metrics: the `metrics` crate is the one facade every part of the service records through; what
//! receives them depends on where the code runs:
//! - in Lambda, CloudWatch Embedded Metric Format (EMF) lines on stdout, flushed after every
//!   invocation (`metrics_cloudwatch_embedded`; no API calls), namespace [`NAMESPACE`], one
//!   dimension per label;
//! - in the local server, Prometheus text at `GET /metrics` (`metrics-exporter-prometheus`).
//!
//! The names below are the whole list (docs/operating.md, "Metrics"). Labels are low-cardinality: the
//! operation (the function's name), the status code, the outcome, the cause of a retry.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram, Unit};
use metrics_cloudwatch_embedded::Collector;
pub use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};

/// The CloudWatch namespace of every metric when `METRICS_NAMESPACE` does not name another
/// (template.yaml sets `Inventory/{Stage}`, which its dashboard and alarms read).
pub const NAMESPACE: &str = "Inventory";

/// Every HTTP answer: labels `operation`, `status`, `outcome` (see [`http_outcome`]).
pub const HTTP_REQUESTS: &str = "http_requests";
/// Milliseconds from a request's arrival to its answer: label `operation`.
pub const HTTP_LATENCY: &str = "http_latency";
/// Roll-ups of [`HTTP_REQUESTS`] with no label, for alarms on rates across every route: every
/// answer, the 5xx answers, the 503 answers.
pub const HTTP_ALL: &str = "http_all";
pub const HTTP_5XX: &str = "http_5xx";
pub const HTTP_503: &str = "http_503";
/// A store call tried again: labels `operation` (the store's) and `cause` (`conflict`,
/// `throttled`, `timeout`, `lost_reply`, `server_error`, `stale_read`).
pub const STORE_RETRIES: &str = "store_retries";
/// The store gave up within its deadline (the caller answers 503): label `operation`.
pub const STORE_GAVE_UP: &str = "store_gave_up";
/// publish-events: entries EventBridge accepted, entries left to the stream's retry, records sent
/// to the publish dead-letter queue.
pub const EVENTS_PUBLISHED: &str = "events_published";
pub const EVENTS_RETRIED: &str = "events_retried";
pub const EVENTS_DEAD_LETTERED: &str = "events_dead_lettered";
/// order-events: one per message, label `outcome` (`applied`, `confirm_failed`, `ignored`,
/// `failed`).
pub const ORDER_EVENTS: &str = "order_events";
/// expire-reservations, per run: due holds found, expired, failed (left for the next run),
/// whether the run stopped before the index was drained (1/0), the run's duration.
pub const SWEEP_FOUND: &str = "sweep_found";
pub const SWEEP_EXPIRED: &str = "sweep_expired";
pub const SWEEP_FAILED: &str = "sweep_failed";
pub const SWEEP_BEHIND: &str = "sweep_behind";
pub const SWEEP_DURATION: &str = "sweep_duration";
/// audit-stock, per run: stock items checked, and items whose numbers disagree.
pub const AUDIT_ITEMS: &str = "audit_items";
pub const AUDIT_DRIFT: &str = "audit_drift";
/// audit-stock, per run: suspects that kept changing while re-read (checked again next run).
pub const AUDIT_UNSETTLED: &str = "audit_unsettled";

/// Units and descriptions, once per recorder (EMF writes the units; Prometheus the help text).
fn describe() {
    metrics::describe_counter!(HTTP_REQUESTS, Unit::Count, "HTTP answers by operation, status and outcome");
    metrics::describe_histogram!(HTTP_LATENCY, Unit::Milliseconds, "HTTP latency by operation");
    metrics::describe_counter!(HTTP_ALL, Unit::Count, "every HTTP answer");
    metrics::describe_counter!(HTTP_5XX, Unit::Count, "HTTP answers with a 5xx status");
    metrics::describe_counter!(HTTP_503, Unit::Count, "HTTP answers 503 SERVICE_UNAVAILABLE");
    metrics::describe_counter!(STORE_RETRIES, Unit::Count, "store calls retried, by operation and cause");
    metrics::describe_counter!(STORE_GAVE_UP, Unit::Count, "store calls given up (503), by operation");
    metrics::describe_counter!(EVENTS_PUBLISHED, Unit::Count, "events EventBridge accepted");
    metrics::describe_counter!(EVENTS_RETRIED, Unit::Count, "stream records left to the stream's retry");
    metrics::describe_counter!(EVENTS_DEAD_LETTERED, Unit::Count, "records sent to the publish DLQ");
    metrics::describe_counter!(ORDER_EVENTS, Unit::Count, "order events by outcome");
    metrics::describe_counter!(SWEEP_FOUND, Unit::Count, "due holds the expiry sweep found");
    metrics::describe_counter!(SWEEP_EXPIRED, Unit::Count, "holds the expiry sweep expired");
    metrics::describe_counter!(SWEEP_FAILED, Unit::Count, "due holds left for the next sweep after an error");
    metrics::describe_gauge!(SWEEP_BEHIND, Unit::Count, "1 when the last sweep ran out of time");
    metrics::describe_histogram!(SWEEP_DURATION, Unit::Milliseconds, "expiry sweep run time");
    metrics::describe_gauge!(AUDIT_ITEMS, Unit::Count, "stock items the last audit checked");
    metrics::describe_gauge!(AUDIT_DRIFT, Unit::Count, "stock items whose numbers disagree (last audit)");
    metrics::describe_gauge!(AUDIT_UNSETTLED, Unit::Count, "audit suspects that kept changing (last audit)");
}

/// The outcome label of an HTTP answer: `replayed` for a kept answer sent again, the contract's
/// error code for an error (`INSUFFICIENT_STOCK`...), else `ok` (200/204) or `created` (201).
pub fn http_outcome(status: u16, error_code: Option<&str>, replayed: bool) -> String {
    match (replayed, error_code) {
        (true, _) => "replayed".to_owned(),
        (false, Some(code)) => code.to_owned(),
        (false, None) if status == 201 => "created".to_owned(),
        (false, None) => "ok".to_owned(),
    }
}

/// Records one HTTP answer.
pub fn http_answer(operation: &'static str, status: u16, outcome: String, elapsed: Duration) {
    counter!(HTTP_REQUESTS, "operation" => operation, "status" => status.to_string(), "outcome" => outcome)
        .increment(1);
    histogram!(HTTP_LATENCY, "operation" => operation).record(elapsed.as_secs_f64() * 1000.0);
    counter!(HTTP_ALL).increment(1);
    if status >= 500 {
        counter!(HTTP_5XX).increment(1);
    }
    if status == 503 {
        counter!(HTTP_503).increment(1);
    }
}

pub fn store_retry(operation: &'static str, cause: &'static str) {
    counter!(STORE_RETRIES, "operation" => operation, "cause" => cause).increment(1);
}

pub fn store_gave_up(operation: &'static str) {
    counter!(STORE_GAVE_UP, "operation" => operation).increment(1);
}

pub fn events(published: u64, retried: u64, dead_lettered: u64) {
    counter!(EVENTS_PUBLISHED).increment(published);
    counter!(EVENTS_RETRIED).increment(retried);
    counter!(EVENTS_DEAD_LETTERED).increment(dead_lettered);
}

pub fn order_event(outcome: &'static str) {
    counter!(ORDER_EVENTS, "outcome" => outcome).increment(1);
}

pub fn sweep(found: u64, expired: u64, failed: u64, behind: bool, duration: Duration) {
    counter!(SWEEP_FOUND).increment(found);
    counter!(SWEEP_EXPIRED).increment(expired);
    counter!(SWEEP_FAILED).increment(failed);
    gauge!(SWEEP_BEHIND).set(if behind { 1.0 } else { 0.0 });
    histogram!(SWEEP_DURATION).record(duration.as_secs_f64() * 1000.0);
}

pub fn audit(items: u64, drifting: u64, unsettled: u64) {
    gauge!(AUDIT_ITEMS).set(items as f64);
    gauge!(AUDIT_DRIFT).set(drifting as f64);
    gauge!(AUDIT_UNSETTLED).set(unsettled as f64);
}

/// A Prometheus recorder as the local server uses it (tests install it locally to one thread).
pub fn prometheus_recorder() -> PrometheusRecorder {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, describe);
    recorder
}

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs [`prometheus_recorder`] as the process's recorder (the local server), once; its
/// handle renders `GET /metrics`. `None` when another recorder was installed first.
pub fn install_prometheus() -> Option<PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            let recorder = prometheus_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            // Histograms keep their samples until upkeep folds them in: every few seconds.
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(Duration::from_secs(5));
                loop {
                    ticks.tick().await;
                    upkeep.run_upkeep();
                }
            });
            Some(handle)
        })
        .clone()
}

static EMF: OnceLock<&'static Collector> = OnceLock::new();

/// Installs the EMF collector as the process's recorder (a Lambda function, once per cold start).
/// Later calls return the same collector; `None` when another recorder was installed first.
pub fn install_emf() -> Option<&'static Collector> {
    if let Some(collector) = EMF.get() {
        return Some(collector);
    }
    let namespace = std::env::var("METRICS_NAMESPACE").ok().filter(|n| !n.is_empty());
    let namespace = namespace.unwrap_or_else(|| NAMESPACE.to_owned());
    let collector =
        metrics_cloudwatch_embedded::Builder::new().cloudwatch_namespace(namespace).init().ok()?;
    describe();
    Some(*EMF.get_or_init(|| collector))
}

/// Writes what was recorded since the last flush as EMF lines to `out` (stdout in Lambda, where
/// CloudWatch Logs turns them into metrics). A no-op without [`install_emf`].
pub fn flush_emf(out: impl std::io::Write) {
    if let Some(collector) = EMF.get() {
        if let Err(e) = collector.flush(out) {
            tracing::warn!(error = %e, "cannot write metrics");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_name_the_answer() {
        assert_eq!(http_outcome(201, None, false), "created");
        assert_eq!(http_outcome(200, None, false), "ok");
        assert_eq!(http_outcome(201, None, true), "replayed");
        assert_eq!(http_outcome(409, Some("INSUFFICIENT_STOCK"), false), "INSUFFICIENT_STOCK");
    }

    #[test]
    fn the_prometheus_text_has_the_counts_recorded() {
        let recorder = prometheus_recorder();
        metrics::with_local_recorder(&recorder, || {
            store_retry("reserve", "conflict");
            store_retry("reserve", "conflict");
            http_answer(
                "reserve",
                503,
                http_outcome(503, Some("SERVICE_UNAVAILABLE"), false),
                Duration::ZERO,
            );
        });
        let text = recorder.handle().render();
        assert!(text.contains(r#"store_retries{operation="reserve",cause="conflict"} 2"#), "{text}");
        assert!(text.contains("http_503 1"), "{text}");
    }
}
