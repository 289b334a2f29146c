//! The input rules of docs/api.md: identifiers, ranges, and the merging of reservation lines.

use serde::{Deserialize, Serialize};

use super::allocation::{Cart, CartLine};
use super::kits::Component;
use crate::error::{Error, Result};

pub const MAX_LINES: usize = 25;
pub const MAX_QUANTITY: i64 = 100_000;
pub const MIN_TTL_SECONDS: i64 = 1;
pub const MAX_TTL_SECONDS: i64 = 86_400;
pub const DEFAULT_TTL_SECONDS: i64 = 900;
/// Upper bound for an absolute on-hand count or an adjustment, to keep arithmetic far from overflow.
pub const MAX_ON_HAND: i64 = 1_000_000_000;
pub const MAX_REASON_CHARS: usize = 256;
/// Items of one `POST /v1/stock/batch`.
pub const MAX_BATCH_ITEMS: usize = 100;

pub(super) fn valid_identifier(value: &str, max_len: usize, extra: &[char]) -> bool {
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

pub const MAX_REFERENCE_CHARS: usize = 128;

pub fn validate_reference(reference: Option<&str>) -> Result<()> {
    match reference {
        Some(r) if r.chars().count() > MAX_REFERENCE_CHARS => Err(Error::invalid_field(
            "reference",
            format!("reference must be at most {MAX_REFERENCE_CHARS} characters"),
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

pub fn validate_threshold(threshold: i64) -> Result<()> {
    if (0..=MAX_ON_HAND).contains(&threshold) {
        Ok(())
    } else {
        Err(Error::invalid_field("lowStockThreshold", format!("lowStockThreshold must be 0-{MAX_ON_HAND}")))
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
    /// A kit line: the units of each component it holds at its location (`domain::kits`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

impl Line {
    /// A line of `quantity` units of `sku` at `location_id`.
    pub fn new(sku: String, location_id: String, quantity: i64) -> Line {
        Line { sku, location_id, quantity, components: Vec::new() }
    }
}

/// Validates every line, merges lines naming the same `(sku, locationId)` (summing quantities) and
/// returns them sorted by `(sku, locationId)`. A cart naming one SKU twice is checked against the
/// sum, never against each line alone. (Lines that let the service pick the location: `Cart`.)
pub fn merge_lines(lines: &[LineRequest]) -> Result<Vec<Line>> {
    let requests: Vec<CartLine> = lines
        .iter()
        .map(|l| CartLine {
            sku: l.sku.clone(),
            location_id: Some(l.location_id.clone()),
            locations: None,
            quantity: l.quantity,
            split: None,
        })
        .collect();
    Ok(Cart::parse(&requests)?.fixed().expect("every line names its location"))
}

/// For optional fields that may be absent but not `null` (docs/api.md: `null` is refused wherever only
/// absence is allowed): `#[serde(default, deserialize_with = "not_null")]`.
pub fn not_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, loc: &str, q: i64) -> LineRequest {
        LineRequest { sku: sku.into(), location_id: loc.into(), quantity: q }
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
                Line::new("A".into(), "w1".into(), 4),
                Line::new("A".into(), "w2".into(), 1),
                Line::new("B".into(), "w1".into(), 5),
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
}
