//! Sales channels (docs/api.md, "Channels and availability"): a channel sells from an ordered list
//! of locations and keeps `safetyStock` units back at each of them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validate::{valid_identifier, validate_location_id};
use crate::error::{Error, Result};

/// At most this many locations per channel.
pub const MAX_CHANNEL_LOCATIONS: usize = 50;
/// The largest safety stock.
pub const MAX_SAFETY_STOCK: i64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub channel_id: String,
    /// In order of preference.
    pub locations: Vec<String>,
    pub safety_stock: i64,
    pub version: u64,
    #[serde(with = "crate::timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// `channelId`: the charset of `locationId` (1-64 chars of `[A-Za-z0-9._-]`).
pub fn validate_channel_id(channel_id: &str) -> Result<()> {
    if valid_identifier(channel_id, 64, &[]) {
        Ok(())
    } else {
        Err(Error::invalid_field("channelId", "channelId must be 1-64 characters of [A-Za-z0-9._-]"))
    }
}

/// A channel's locations (1-50, distinct, each a valid locationId) and safety stock (0-1000000).
pub fn validate_channel(locations: &[String], safety_stock: i64) -> Result<()> {
    if locations.is_empty() || locations.len() > MAX_CHANNEL_LOCATIONS {
        return Err(Error::invalid_field("locations", "locations must have 1-50 locationIds"));
    }
    for (i, location) in locations.iter().enumerate() {
        validate_location_id(location).map_err(|_| {
            Error::invalid_field(
                &format!("locations[{i}]"),
                "each location must be 1-64 characters of [A-Za-z0-9._-]",
            )
        })?;
        if locations[..i].contains(location) {
            return Err(Error::invalid_field(
                &format!("locations[{i}]"),
                format!("{location} is listed twice"),
            ));
        }
    }
    if !(0..=MAX_SAFETY_STOCK).contains(&safety_stock) {
        return Err(Error::invalid_field("safetyStock", "safetyStock must be 0-1000000"));
    }
    Ok(())
}

/// What a PUT of a channel does, given the channel as read (`None`: absent) and the request's
/// `expected_version` (0: must not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelWrite {
    /// Write this channel (created: version 1).
    Write { channel: Channel, created: bool },
    /// The same locations and safety stock: nothing to write.
    Unchanged(Channel),
}

pub fn decide_channel_write(
    channel_id: &str,
    current: Option<&Channel>,
    locations: Vec<String>,
    safety_stock: i64,
    expected_version: Option<u64>,
    now: DateTime<Utc>,
) -> Result<ChannelWrite> {
    let current_version = current.map_or(0, |c| c.version);
    if expected_version.is_some_and(|expected| expected != current_version) {
        return Err(Error::VersionConflict { current_version });
    }
    if let Some(current) = current.filter(|c| c.locations == locations && c.safety_stock == safety_stock) {
        return Ok(ChannelWrite::Unchanged(current.clone()));
    }
    let channel = Channel {
        channel_id: channel_id.to_owned(),
        locations,
        safety_stock,
        version: current_version + 1,
        updated_at: now,
    };
    Ok(ChannelWrite::Write { channel, created: current.is_none() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locations(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_channel_has_1_to_50_distinct_valid_locations_and_a_bounded_safety_stock() {
        assert!(validate_channel(&locations(&["paris", "berlin"]), 2).is_ok());
        assert_eq!(validate_channel(&[], 0).unwrap_err().code(), "VALIDATION_ERROR");
        let many: Vec<String> = (0..51).map(|i| format!("l{i}")).collect();
        assert!(validate_channel(&many, 0).is_err());
        assert!(validate_channel(&many[..50], 0).is_ok());
        let twice = validate_channel(&locations(&["a", "b", "a"]), 0).unwrap_err();
        assert_eq!(twice, Error::invalid_field("locations[2]", "a is listed twice"));
        assert!(validate_channel(&locations(&["bad id"]), 0).is_err());
        assert!(validate_channel(&locations(&["a"]), -1).is_err());
        assert!(validate_channel(&locations(&["a"]), MAX_SAFETY_STOCK + 1).is_err());
        assert!(validate_channel_id("web-shop").is_ok() && validate_channel_id("web shop").is_err());
    }

    #[test]
    fn a_put_creates_changes_or_leaves_a_channel_keyed_on_the_version_expected() {
        let now = Utc::now();
        let created = match decide_channel_write("web", None, locations(&["a"]), 1, Some(0), now).unwrap() {
            ChannelWrite::Write { channel, created: true } => channel,
            other => panic!("{other:?}"),
        };
        assert_eq!(created.version, 1);
        let same = decide_channel_write("web", Some(&created), locations(&["a"]), 1, None, now).unwrap();
        assert_eq!(same, ChannelWrite::Unchanged(created.clone()));
        let changed =
            decide_channel_write("web", Some(&created), locations(&["b", "a"]), 1, Some(1), now).unwrap();
        assert!(
            matches!(changed, ChannelWrite::Write { ref channel, created: false } if channel.version == 2)
        );
        let stale =
            decide_channel_write("web", Some(&created), locations(&["b"]), 1, Some(0), now).unwrap_err();
        assert_eq!(stale, Error::VersionConflict { current_version: 1 });
    }
}
