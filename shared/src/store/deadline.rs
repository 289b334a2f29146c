//! One deadline per request. The HTTP edge (or any caller) runs a request's work inside
//! [`with_deadline`]; every store call made inside it, and every retry of those calls however
//! they nest, stops at that instant: an attempt still running then is cut off, and the caller gets
//! `SERVICE_UNAVAILABLE` in time to answer before the function's own timeout.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as the deadline of every store call it makes.
pub async fn with_deadline<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The deadline of a store call starting now whose own limit is `limit`: the sooner of that and
/// the request's.
pub(crate) fn call_deadline(limit: Duration) -> Instant {
    let own = Instant::now() + limit;
    DEADLINE.try_with(|request| own.min(*request)).unwrap_or(own)
}

/// The time left until an invocation's deadline (epoch milliseconds, as Lambda gives it), less
/// `margin`. A deadline that cannot be an epoch timestamp (0 from a hand-made context, or the
/// relative `600000` cargo-lambda's emulator sends) means "unknown": `None`.
pub fn remaining_before(deadline_ms: u64, now_ms: i64, margin: Duration) -> Option<Duration> {
    const YEAR_2001_MS: u64 = 978_307_200_000;
    if deadline_ms < YEAR_2001_MS {
        return None;
    }
    let left = Duration::from_millis((deadline_ms as i64 - now_ms).max(0) as u64);
    Some(left.saturating_sub(margin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_ends_at_the_sooner_of_its_limit_and_the_request_deadline() {
        let soon = Instant::now() + Duration::from_millis(100);
        let inside = with_deadline(soon, async { call_deadline(Duration::from_secs(5)) }).await;
        assert_eq!(inside, soon);
        let outside = call_deadline(Duration::from_millis(10));
        assert!(outside <= Instant::now() + Duration::from_millis(10));
        let late = Instant::now() + Duration::from_secs(60);
        let capped = with_deadline(late, async { call_deadline(Duration::from_secs(1)) }).await;
        assert!(capped < late);
    }

    #[test]
    fn lambda_deadlines_leave_a_margin_and_unknown_ones_are_none() {
        let now = 1_795_446_245_123;
        let margin = Duration::from_millis(500);
        assert_eq!(remaining_before(now as u64 + 10_000, now, margin), Some(Duration::from_millis(9_500)));
        assert_eq!(remaining_before(now as u64 + 100, now, margin), Some(Duration::ZERO));
        assert_eq!(remaining_before(0, now, margin), None);
        assert_eq!(remaining_before(600_000, now, margin), None);
    }
}
