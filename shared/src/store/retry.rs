//! Capped, jittered retries inside a deadline, and the classification of DynamoDB failures into
//! "try again" (transaction conflict, throttling, unreachable, stale read) and "answer now".

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No attempt runs past this much time since the first one started (nor past the request's
    /// deadline, `store::with_deadline`).
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(500),
            deadline: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// "Full jitter": a uniform delay in `[0, min(max_delay, base * 2^attempt))`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16));
        let cap = exp.min(self.max_delay).as_micros().max(1) as u64;
        Duration::from_micros(fastrand::u64(0..cap))
    }
}

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Not applied, worth another attempt (a conflict, throttling): the label says why.
    Retry(&'static str),
    /// No answer came (a timeout, a lost connection, a server error): the request may or may not
    /// have been applied. A write is sent again unchanged (`Store::commit`). The label says which:
    /// `timeout`, `lost_reply` or `server_error`.
    NoReply(&'static str),
    /// A conditional write found the item changed since it was read: read again and redecide.
    Stale,
    /// Every shard of a sharded item the attempt tried was busy with another transaction (a
    /// burst of buyers): tried again, with backoff, until the deadline, not counted among the
    /// policy's attempts (a buyer who keeps missing in a burst would otherwise run out of them
    /// long before the burst is served).
    Busy,
    /// The answer: return it.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

/// Error codes that mean "too fast" or "collided with another writer": worth retrying.
fn retryable_code(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "ThrottlingException"
        | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded"
        | "ThrottlingError"
        | "ProvisionedThroughputExceeded" => Some("throttled"),
        "TransactionConflictException" | "TransactionConflict" | "TransactionInProgressException" => {
            Some("conflict")
        }
        _ => None,
    }
}

/// Classifies an SDK error by its type and service error code (never by its message).
pub(crate) fn classify<E, R>(err: SdkError<E, R>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::TimeoutError(_) => Failure::NoReply("timeout"),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => Failure::NoReply("timeout"),
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure::NoReply("lost_reply"),
        SdkError::ServiceError(service) => match service.err().code() {
            Some("InternalServerError" | "ServiceUnavailable" | "InternalFailure") => {
                Failure::NoReply("server_error")
            }
            code => match retryable_code(code) {
                Some(kind) => Failure::Retry(kind),
                None => Failure::Fatal(Error::internal(DisplayErrorContext(&err))),
            },
        },
        _ => Failure::Fatal(Error::internal(DisplayErrorContext(&err))),
    }
}

/// The label a transaction cancellation reason code retries under, if it is retryable.
pub(crate) fn retryable_reason(code: Option<&str>) -> Option<&'static str> {
    retryable_code(code)
}

/// Runs `attempt` until it succeeds, fails for good, or the policy's attempts or deadline run
/// out (then `SERVICE_UNAVAILABLE`). `on_retry` is told each retry's label.
pub(crate) async fn retrying<T, F, Fut>(
    policy: &RetryPolicy,
    operation: &'static str,
    on_retry: impl Fn(&'static str),
    mut attempt: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let deadline = super::deadline::call_deadline(policy.deadline);
    let mut n = 0;
    let mut busy = 0;
    loop {
        // An attempt still running at the deadline is cut off: it may have been applied.
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = tokio::time::timeout(left, attempt()).await.unwrap_or(Err(Failure::NoReply("timeout")));
        match outcome {
            Ok(value) => return Ok(value),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Busy) => {
                busy += 1;
                let delay = policy.delay(busy);
                if Instant::now() + delay >= deadline {
                    tracing::warn!(
                        operation,
                        busy,
                        reason = "conflict",
                        "giving up: every shard stayed busy"
                    );
                    crate::metrics::store_gave_up(operation);
                    return Err(Error::Unavailable { retry_after_secs: 1 });
                }
                on_retry("conflict");
                tokio::time::sleep(delay).await;
            }
            Err(failure @ (Failure::Retry(_) | Failure::NoReply(_) | Failure::Stale)) => {
                let why = match failure {
                    Failure::Retry(why) | Failure::NoReply(why) => why,
                    _ => "stale_read",
                };
                n += 1;
                let delay = policy.delay(n);
                if n >= policy.max_attempts || Instant::now() + delay >= deadline {
                    tracing::warn!(operation, attempts = n, reason = why, "giving up after retries");
                    crate::metrics::store_gave_up(operation);
                    return Err(Error::Unavailable { retry_after_secs: 1 });
                }
                on_retry(why);
                tracing::debug!(
                    operation,
                    attempt = n,
                    reason = why,
                    delay_ms = delay.as_millis() as u64,
                    "retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Runs `retrying` over attempts answering `outcome(n)` for the n-th call (from 0); returns
    /// its result and how many attempts were made.
    async fn run<T>(
        policy: &RetryPolicy,
        outcome: impl Fn(u32) -> Result<T, Failure>,
    ) -> (Result<T, Error>, u32) {
        let calls = AtomicU32::new(0);
        let out =
            retrying(policy, "t", |_| {}, || async { outcome(calls.fetch_add(1, Ordering::SeqCst)) }).await;
        (out, calls.load(Ordering::SeqCst))
    }

    #[test]
    fn delays_are_capped() {
        let p = RetryPolicy::default();
        for attempt in 0..40 {
            assert!(p.delay(attempt) <= p.max_delay);
        }
    }

    #[tokio::test]
    async fn retries_until_success_and_stops_on_fatal() {
        let policy = RetryPolicy { base_delay: Duration::from_millis(1), ..Default::default() };
        let (out, calls) =
            run(&policy, |n| if n < 3 { Err(Failure::Retry("conflict")) } else { Ok(7) }).await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls, 4);

        let (out, calls) = run(&policy, |_| Err::<(), _>(Failure::Fatal(Error::validation("no")))).await;
        assert_eq!(out.unwrap_err().code(), "VALIDATION_ERROR");
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn busy_shards_are_tried_until_the_deadline_not_the_attempts() {
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            deadline: Duration::from_millis(300),
        };
        let (out, calls) = run(&policy, |n| if n < 20 { Err(Failure::Busy) } else { Ok(n) }).await;
        assert_eq!((out.unwrap(), calls), (20, 21), "more than max_attempts, within the deadline");
        let started = Instant::now();
        let (out, _) = run(&policy, |_| Err::<(), _>(Failure::Busy)).await;
        assert_eq!(out.unwrap_err().code(), "SERVICE_UNAVAILABLE");
        assert!(started.elapsed() < Duration::from_millis(400), "bounded by the deadline");
    }

    #[tokio::test]
    async fn gives_up_as_unavailable() {
        let policy =
            RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(1), ..Default::default() };
        let (out, calls) = run(&policy, |_| Err::<(), _>(Failure::Retry("throttled"))).await;
        assert_eq!(out.unwrap_err().code(), "SERVICE_UNAVAILABLE");
        assert_eq!(calls, 4);
    }
}
