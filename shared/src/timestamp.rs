//! Timestamps as docs/api.md wants them: RFC 3339 UTC with exactly three fractional digits. A leaf
//! module: the domain, the event envelope and the store all use it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

pub fn format(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// A time truncated to milliseconds, so that what is stored equals what is returned.
pub fn truncate_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(t))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).ok_or_else(|| serde::de::Error::custom("invalid RFC 3339 timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_millisecond_precision() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T15:04:05.123456Z").unwrap().with_timezone(&Utc);
        assert_eq!(format(&truncate_to_millis(t)), "2026-11-23T15:04:05.123Z");
        let whole = DateTime::parse_from_rfc3339("2026-11-23T15:04:05Z").unwrap().with_timezone(&Utc);
        assert_eq!(format(&whole), "2026-11-23T15:04:05.000Z");
    }
}
