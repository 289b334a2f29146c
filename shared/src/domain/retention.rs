//! How long finished reservations and their order items stay in the table (docs/api.md, "Retention").
//!
//! A reservation in a final state, its order reservation item and the order key that names it
//! carry DynamoDB's TTL attribute, all with one value computed from the reservation's creation:
//! `createdAt + MAX_HOLD_CEILING + retentionDays`. No hold can live past `createdAt` plus the
//! longest hold any configuration allows ([`MAX_HOLD_CEILING_SECONDS`]), so the moment is at
//! least `retentionDays` after the reservation finished, whatever `MAX_HOLD_SECONDS` was when it
//! was made or changed; and it is the same for the three items, so they leave together (every
//! read treats an item past its TTL as gone: DynamoDB deletes within days of it). A PENDING
//! reservation, holds, the ledger and stock items never carry it.

use chrono::{DateTime, Duration, Utc};

/// The longest `MAX_HOLD_SECONDS` may be (the template's `MaxHoldSeconds` MaxValue): 7 days.
pub const MAX_HOLD_CEILING_SECONDS: i64 = 7 * 86_400;

/// How long finished reservations are kept unless configured otherwise (`RETENTION_DAYS`).
pub const DEFAULT_RETENTION_DAYS: i64 = 90;

/// The TTL (seconds since the epoch) of a finished reservation created at `created_at`, of its
/// order reservation item and of the order key naming it.
pub fn retained_until(created_at: DateTime<Utc>, retention_days: i64) -> i64 {
    (created_at + Duration::seconds(MAX_HOLD_CEILING_SECONDS) + Duration::days(retention_days)).timestamp()
}

/// Whether an item with TTL `ttl` (if any) is gone at `now` (seconds since the epoch): past its
/// TTL, whether or not DynamoDB has deleted it yet.
pub fn is_past_ttl(ttl: Option<i64>, now: i64) -> bool {
    ttl.is_some_and(|ttl| ttl <= now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_reservation_is_kept_its_retention_after_the_longest_its_hold_could_last() {
        let created = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let until = retained_until(created, 90);
        let latest_end = created + Duration::seconds(MAX_HOLD_CEILING_SECONDS);
        assert_eq!(until, (latest_end + Duration::days(90)).timestamp());
        assert!(!is_past_ttl(Some(until), until - 1));
        assert!(is_past_ttl(Some(until), until), "gone at its TTL");
        assert!(!is_past_ttl(None, i64::MAX), "no TTL: never gone");
    }
}
