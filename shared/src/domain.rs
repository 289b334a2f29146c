//! The domain: stock items, reservations, the state machine and the validation rules of API.md.
//! Pure code: no AWS types, no I/O.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const MAX_LINES: usize = 25;
pub const MAX_QUANTITY: i64 = 100_000;
pub const MIN_TTL_SECONDS: i64 = 1;
pub const MAX_TTL_SECONDS: i64 = 86_400;
pub const DEFAULT_TTL_SECONDS: i64 = 900;
/// Upper bound for an absolute on-hand count or an adjustment, to keep arithmetic far from overflow.
pub const MAX_ON_HAND: i64 = 1_000_000_000;
pub const MAX_REASON_CHARS: usize = 256;

/// Timestamps as API.md wants them: RFC 3339 UTC with exactly three fractional digits.
pub mod timestamp {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn parse(s: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom("invalid RFC 3339 timestamp"))
    }
}

/// Current time truncated to milliseconds, so that what is stored equals what is returned.
pub fn truncate_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn valid_identifier(value: &str, max_len: usize, extra: &[char]) -> bool {
    !value.is_empty()
        && value.len() <= max_len
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' || extra.contains(&c))
}

/// `sku`: 1-64 chars of `[A-Za-z0-9._-]`.
pub fn validate_sku(sku: &str) -> Result<()> {
    if valid_identifier(sku, 64, &[]) {
        Ok(())
    } else {
        Err(Error::invalid_field("sku", "sku must be 1-64 characters of [A-Za-z0-9._-]"))
    }
}

/// `locationId`: 1-64 chars of `[A-Za-z0-9._-]`.
pub fn validate_location_id(location_id: &str) -> Result<()> {
    if valid_identifier(location_id, 64, &[]) {
        Ok(())
    } else {
        Err(Error::invalid_field("locationId", "locationId must be 1-64 characters of [A-Za-z0-9._-]"))
    }
}

/// `orderId`: 1-128 chars of `[A-Za-z0-9._:-]`.
pub fn validate_order_id(order_id: &str) -> Result<()> {
    if valid_identifier(order_id, 128, &[':']) {
        Ok(())
    } else {
        Err(Error::invalid_field("orderId", "orderId must be 1-128 characters of [A-Za-z0-9._:-]"))
    }
}

/// `reservationId`: a UUID v4 in its canonical hyphenated lowercase form.
pub fn parse_reservation_id(id: &str) -> Result<uuid::Uuid> {
    let bad = || Error::invalid_field("reservationId", "reservationId must be a UUID");
    let parsed = uuid::Uuid::try_parse(id).map_err(|_| bad())?;
    if parsed.hyphenated().to_string() != id {
        return Err(bad());
    }
    Ok(parsed)
}

pub fn validate_ttl_seconds(ttl: i64) -> Result<()> {
    if (MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&ttl) {
        Ok(())
    } else {
        Err(Error::invalid_field(
            "ttlSeconds",
            format!("ttlSeconds must be {MIN_TTL_SECONDS}-{MAX_TTL_SECONDS}"),
        ))
    }
}

pub fn validate_reason(reason: Option<&str>) -> Result<()> {
    match reason {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(Error::invalid_field(
            "reason",
            format!("reason must be at most {MAX_REASON_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

pub fn validate_on_hand(on_hand: i64) -> Result<()> {
    if (0..=MAX_ON_HAND).contains(&on_hand) {
        Ok(())
    } else {
        Err(Error::invalid_field("onHand", format!("onHand must be 0-{MAX_ON_HAND}")))
    }
}

pub fn validate_delta(delta: i64) -> Result<()> {
    if delta != 0 && (-MAX_ON_HAND..=MAX_ON_HAND).contains(&delta) {
        Ok(())
    } else {
        Err(Error::invalid_field("delta", format!("delta must be non-zero and within +/-{MAX_ON_HAND}")))
    }
}

pub fn validate_expected_version(version: Option<i64>) -> Result<Option<u64>> {
    match version {
        None => Ok(None),
        Some(v) if v >= 0 => Ok(Some(v as u64)),
        Some(_) => Err(Error::invalid_field("expectedVersion", "expectedVersion must be >= 0")),
    }
}

/// One stock item: a `(sku, locationId)` pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StockItem {
    pub sku: String,
    pub location_id: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub version: u64,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// `GET /v1/stock/{sku}`: every location of a SKU plus totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuStock {
    pub sku: String,
    pub locations: Vec<StockItem>,
    pub total_on_hand: i64,
    pub total_reserved: i64,
    pub total_available: i64,
}

impl SkuStock {
    /// Totals over `locations`, which must be sorted by location id (the store's query order).
    pub fn new(sku: String, locations: Vec<StockItem>) -> Self {
        let total_on_hand = locations.iter().map(|l| l.on_hand).sum();
        let total_reserved = locations.iter().map(|l| l.reserved).sum();
        let total_available = locations.iter().map(|l| l.available).sum();
        SkuStock { sku, locations, total_on_hand, total_reserved, total_available }
    }
}

/// A reservation line as a client sends it (before merging).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineRequest {
    pub sku: String,
    pub location_id: String,
    pub quantity: i64,
}

/// A merged reservation line: one per `(sku, locationId)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub sku: String,
    pub location_id: String,
    pub quantity: i64,
}

/// Validates every line, merges lines naming the same `(sku, locationId)` (summing quantities) and
/// returns them sorted by `(sku, locationId)`. A cart naming one SKU twice is checked against the
/// sum, never against each line alone.
pub fn merge_lines(lines: &[LineRequest]) -> Result<Vec<Line>> {
    if lines.is_empty() {
        return Err(Error::invalid_field("lines", "lines must not be empty"));
    }
    let mut merged: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for line in lines {
        validate_sku(&line.sku)?;
        validate_location_id(&line.location_id)?;
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(Error::invalid_field("quantity", format!("quantity must be 1-{MAX_QUANTITY}")));
        }
        *merged.entry((&line.sku, &line.location_id)).or_insert(0) += line.quantity;
    }
    if merged.len() > MAX_LINES {
        return Err(Error::invalid_field(
            "lines",
            format!("at most {MAX_LINES} distinct (sku, locationId) lines are allowed"),
        ));
    }
    merged
        .into_iter()
        .map(|((sku, location_id), quantity)| {
            if quantity > MAX_QUANTITY {
                return Err(Error::invalid_field(
                    "quantity",
                    format!("merged quantity for {sku}/{location_id} exceeds {MAX_QUANTITY}"),
                ));
            }
            Ok(Line { sku: sku.to_owned(), location_id: location_id.to_owned(), quantity })
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Confirmed,
    Released,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Confirmed => "CONFIRMED",
            Status::Released => "RELEASED",
            Status::Expired => "EXPIRED",
        }
    }

    pub fn is_final(self) -> bool {
        self != Status::Pending
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub reservation_id: String,
    pub order_id: String,
    pub status: Status,
    pub lines: Vec<Line>,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub expires_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl Reservation {
    /// A new PENDING reservation of already merged lines.
    pub fn new(order_id: String, lines: Vec<Line>, ttl_seconds: i64, now: DateTime<Utc>) -> Self {
        let now = truncate_to_millis(now);
        Reservation {
            reservation_id: uuid::Uuid::new_v4().to_string(),
            order_id,
            status: Status::Pending,
            lines,
            created_at: now,
            expires_at: now + Duration::seconds(ttl_seconds),
            updated_at: now,
            version: 1,
        }
    }

    pub fn is_past_due(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

/// A state transition a caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Confirm,
    Release,
    Extend,
    /// The expiry sweep.
    Expire,
}

/// What to do with a reservation given its current state, the request and the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write this transition (from PENDING).
    Apply(Transition),
    /// The request is already satisfied (a retried confirm or release): return the reservation.
    Unchanged,
    /// The hold is past its expiresAt: expire it on the spot, then fail with this error.
    ExpireThenFail(Error),
    /// Refuse without writing anything.
    Refuse(Error),
}

/// A write that moves a reservation's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Confirm,
    Release,
    Expire,
    /// Stay PENDING with a new expiresAt.
    Extend,
}

impl Transition {
    /// The status after the transition.
    pub fn target(self) -> Status {
        match self {
            Transition::Confirm => Status::Confirmed,
            Transition::Release => Status::Released,
            Transition::Expire => Status::Expired,
            Transition::Extend => Status::Pending,
        }
    }
}

/// The state machine: PENDING -> CONFIRMED | RELEASED | EXPIRED; nothing leaves a final state.
pub fn decide(reservation: &Reservation, action: Action, now: DateTime<Utc>) -> Decision {
    use Status::*;
    let expired = || Error::ReservationExpired { reservation_id: reservation.reservation_id.clone() };
    let invalid = || Error::InvalidState { status: reservation.status };
    let past_due = reservation.is_past_due(now);
    match (action, reservation.status) {
        (Action::Confirm, Pending) if past_due => Decision::ExpireThenFail(expired()),
        (Action::Confirm, Pending) => Decision::Apply(Transition::Confirm),
        (Action::Confirm, Confirmed) => Decision::Unchanged,
        (Action::Confirm, Released) => Decision::Refuse(invalid()),
        (Action::Confirm, Expired) => Decision::Refuse(expired()),

        // Releasing a hold that is past due but not yet swept gives the units back all the same;
        // the client's explicit release wins over the sweep.
        (Action::Release, Pending) => Decision::Apply(Transition::Release),
        (Action::Release, Released | Expired) => Decision::Unchanged,
        (Action::Release, Confirmed) => Decision::Refuse(invalid()),

        (Action::Extend, Pending) if past_due => Decision::ExpireThenFail(expired()),
        (Action::Extend, Pending) => Decision::Apply(Transition::Extend),
        (Action::Extend, Expired) => Decision::Refuse(expired()),
        (Action::Extend, Confirmed | Released) => Decision::Refuse(invalid()),

        (Action::Expire, Pending) if past_due => Decision::Apply(Transition::Expire),
        (Action::Expire, _) => Decision::Unchanged,
    }
}

/// What a transition does to one stock item, as `(onHand delta, reserved delta)`.
pub fn stock_effect(transition: Transition, quantity: i64) -> (i64, i64) {
    match transition {
        Transition::Confirm => (-quantity, -quantity),
        Transition::Release | Transition::Expire => (0, -quantity),
        Transition::Extend => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, loc: &str, q: i64) -> LineRequest {
        LineRequest { sku: sku.into(), location_id: loc.into(), quantity: q }
    }

    fn reservation(status: Status, expires_in_secs: i64) -> Reservation {
        let now = Utc::now();
        let mut r = Reservation::new("o-1".into(), vec![], 60, now);
        r.status = status;
        r.expires_at = now + Duration::seconds(expires_in_secs);
        r
    }

    #[test]
    fn identifiers_follow_the_contract() {
        assert!(validate_sku("ABC-1.x_2").is_ok());
        assert!(validate_sku(&"a".repeat(64)).is_ok());
        assert!(validate_sku(&"a".repeat(65)).is_err());
        assert!(validate_sku("").is_err());
        assert!(validate_sku("a b").is_err());
        assert!(validate_sku("a:b").is_err());
        assert!(validate_sku("é").is_err());
        assert!(validate_sku("а").is_err(), "Cyrillic a is a confusable, not ASCII");
        assert!(validate_location_id("wh/1").is_err());
        assert!(validate_order_id("order:2026:42").is_ok());
        assert!(validate_order_id(&"o".repeat(128)).is_ok());
        assert!(validate_order_id(&"o".repeat(129)).is_err());
        assert!(validate_order_id("o#1").is_err());
    }

    #[test]
    fn reservation_ids_must_be_canonical_uuids() {
        let id = uuid::Uuid::new_v4().to_string();
        assert!(parse_reservation_id(&id).is_ok());
        assert!(parse_reservation_id(&id.to_uppercase()).is_err());
        assert!(parse_reservation_id(&id.replace('-', "")).is_err());
        assert!(parse_reservation_id("nope").is_err());
    }

    #[test]
    fn lines_are_merged_summed_and_sorted() {
        let merged =
            merge_lines(&[line("B", "w1", 2), line("A", "w2", 1), line("B", "w1", 3), line("A", "w1", 4)])
                .unwrap();
        assert_eq!(
            merged,
            vec![
                Line { sku: "A".into(), location_id: "w1".into(), quantity: 4 },
                Line { sku: "A".into(), location_id: "w2".into(), quantity: 1 },
                Line { sku: "B".into(), location_id: "w1".into(), quantity: 5 },
            ]
        );
    }

    #[test]
    fn line_limits_apply_after_merging() {
        let many: Vec<_> = (0..26).map(|i| line(&format!("S{i}"), "w", 1)).collect();
        assert_eq!(merge_lines(&many).unwrap_err().code(), "VALIDATION_ERROR");
        // 30 request lines naming 25 distinct items are fine.
        let mut ok: Vec<_> = (0..25).map(|i| line(&format!("S{i}"), "w", 1)).collect();
        ok.extend((0..5).map(|i| line(&format!("S{i}"), "w", 1)));
        assert_eq!(merge_lines(&ok).unwrap().len(), 25);
        assert!(merge_lines(&[]).is_err());
        assert!(merge_lines(&[line("A", "w", 0)]).is_err());
        assert!(merge_lines(&[line("A", "w", -1)]).is_err());
        assert!(merge_lines(&[line("A", "w", MAX_QUANTITY)]).is_ok());
        assert!(merge_lines(&[line("A", "w", MAX_QUANTITY + 1)]).is_err());
        assert!(merge_lines(&[line("A", "w", MAX_QUANTITY), line("A", "w", 1)]).is_err());
        assert!(merge_lines(&[line("A b", "w", 1)]).is_err());
    }

    #[test]
    fn scalar_ranges() {
        assert!(validate_ttl_seconds(0).is_err());
        assert!(validate_ttl_seconds(1).is_ok());
        assert!(validate_ttl_seconds(86_400).is_ok());
        assert!(validate_ttl_seconds(86_401).is_err());
        assert!(validate_delta(0).is_err());
        assert!(validate_delta(-5).is_ok());
        assert!(validate_on_hand(-1).is_err());
        assert!(validate_on_hand(0).is_ok());
        assert!(validate_expected_version(Some(-1)).is_err());
        assert_eq!(validate_expected_version(Some(0)).unwrap(), Some(0));
        assert!(validate_reason(Some(&"x".repeat(256))).is_ok());
        assert!(validate_reason(Some(&"x".repeat(257))).is_err());
    }

    #[test]
    fn timestamps_have_millisecond_precision() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T15:04:05.123456Z").unwrap().with_timezone(&Utc);
        assert_eq!(timestamp::format(&truncate_to_millis(t)), "2026-11-23T15:04:05.123Z");
        let whole = DateTime::parse_from_rfc3339("2026-11-23T15:04:05Z").unwrap().with_timezone(&Utc);
        assert_eq!(timestamp::format(&whole), "2026-11-23T15:04:05.000Z");
    }

    #[test]
    fn state_machine_never_leaves_a_final_state() {
        let now = Utc::now();
        for status in [Status::Confirmed, Status::Released, Status::Expired] {
            for action in [Action::Confirm, Action::Release, Action::Extend, Action::Expire] {
                for expires_in in [-10, 10] {
                    let d = decide(&reservation(status, expires_in), action, now);
                    assert!(
                        matches!(d, Decision::Unchanged | Decision::Refuse(_)),
                        "{status:?} {action:?} -> {d:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn pending_transitions() {
        let now = Utc::now();
        let live = reservation(Status::Pending, 10);
        let due = reservation(Status::Pending, -1);
        assert_eq!(decide(&live, Action::Confirm, now), Decision::Apply(Transition::Confirm));
        assert_eq!(decide(&live, Action::Release, now), Decision::Apply(Transition::Release));
        assert_eq!(decide(&live, Action::Extend, now), Decision::Apply(Transition::Extend));
        assert_eq!(decide(&live, Action::Expire, now), Decision::Unchanged);
        assert!(
            matches!(decide(&due, Action::Confirm, now), Decision::ExpireThenFail(e) if e.status() == 410)
        );
        assert!(
            matches!(decide(&due, Action::Extend, now), Decision::ExpireThenFail(e) if e.status() == 410)
        );
        assert_eq!(decide(&due, Action::Release, now), Decision::Apply(Transition::Release));
        assert_eq!(decide(&due, Action::Expire, now), Decision::Apply(Transition::Expire));
    }

    #[test]
    fn final_state_answers_follow_the_contract() {
        let now = Utc::now();
        let code = |s, a| match decide(&reservation(s, 10), a, now) {
            Decision::Refuse(e) => e.code(),
            Decision::Unchanged => "UNCHANGED",
            other => panic!("{other:?}"),
        };
        assert_eq!(code(Status::Confirmed, Action::Confirm), "UNCHANGED");
        assert_eq!(code(Status::Released, Action::Confirm), "INVALID_STATE");
        assert_eq!(code(Status::Expired, Action::Confirm), "RESERVATION_EXPIRED");
        assert_eq!(code(Status::Released, Action::Release), "UNCHANGED");
        assert_eq!(code(Status::Expired, Action::Release), "UNCHANGED");
        assert_eq!(code(Status::Confirmed, Action::Release), "INVALID_STATE");
        assert_eq!(code(Status::Expired, Action::Extend), "RESERVATION_EXPIRED");
        assert_eq!(code(Status::Confirmed, Action::Extend), "INVALID_STATE");
        assert_eq!(code(Status::Released, Action::Extend), "INVALID_STATE");
    }

    #[test]
    fn stock_effects_keep_available_consistent() {
        // Confirm takes units out of stock: onHand and reserved drop, available is unchanged.
        assert_eq!(stock_effect(Transition::Confirm, 3), (-3, -3));
        assert_eq!(stock_effect(Transition::Release, 3), (0, -3));
        assert_eq!(stock_effect(Transition::Expire, 3), (0, -3));
        assert_eq!(stock_effect(Transition::Extend, 3), (0, 0));
    }

    #[test]
    fn error_bodies_follow_the_contract() {
        let e = Error::InsufficientStock {
            lines: vec![crate::error::Shortfall {
                sku: "A".into(),
                location_id: "w".into(),
                requested: 2,
                available: 1,
            }],
        };
        assert_eq!(e.status(), 409);
        let body = e.body();
        assert_eq!(body["error"]["code"], "INSUFFICIENT_STOCK");
        assert_eq!(body["error"]["details"]["lines"][0]["locationId"], "w");
        let internal = Error::internal("dynamodb said something secret");
        assert!(!internal.body().to_string().contains("secret"));
    }
}
