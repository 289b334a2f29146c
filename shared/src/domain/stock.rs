//! Stock items and the decision of a stock write: from the item as read (or its absence) and the
//! change asked for, the item to write, or why it may not be written.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validate::MAX_ON_HAND;
use crate::error::{Error, Result};
use crate::timestamp;

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
    /// StockLow is published when available drops below it (absent: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_stock_threshold: Option<i64>,
    /// How many shard items hold the units (1: the item alone); see `domain::shards`.
    #[serde(default = "one_shard")]
    pub shards: u32,
}

fn one_shard() -> u32 {
    1
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

/// `PUT /v1/stock/{sku}/{locationId}` (an absolute count) or an adjustment (a delta).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChange {
    Set {
        on_hand: i64,
    },
    /// A PUT that also sets (`Some(n)`) or removes (`None`) the low-stock threshold.
    SetWithThreshold {
        on_hand: i64,
        low_stock_threshold: Option<i64>,
    },
    Adjust {
        delta: i64,
    },
    /// `PUT /v1/stock/...` with everything it may say: the count, the threshold (absent: kept;
    /// `Some(None)`: removed) and the number of shards (absent: kept).
    Put {
        on_hand: i64,
        low_stock_threshold: Option<Option<i64>>,
        shards: Option<u32>,
    },
}

/// What a stock write will write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockUpdate {
    /// The item after the write (version one above the one read).
    pub item: StockItem,
    /// onHand after - before.
    pub delta: i64,
    /// No item existed: the write creates it.
    pub created: bool,
    /// The number of shards changes.
    pub resharded: bool,
}

/// Decides a stock write against the item as read (`None`: it does not exist). The
/// `expected_version` (0: "must not exist yet") must equal the version read; an adjustment needs
/// an item; onHand stays within `reserved..=MAX_ON_HAND`.
pub fn decide_stock_write(
    sku: &str,
    location_id: &str,
    current: Option<&StockItem>,
    change: StockChange,
    expected_version: Option<u64>,
    now: DateTime<Utc>,
) -> Result<StockUpdate> {
    let current_version = current.map_or(0, |c| c.version);
    if expected_version.is_some_and(|expected| expected != current_version) {
        return Err(Error::VersionConflict { current_version });
    }
    let (old_on_hand, reserved) = current.map_or((0, 0), |c| (c.on_hand, c.reserved));
    let low_stock_threshold = match change {
        StockChange::SetWithThreshold { low_stock_threshold, .. }
        | StockChange::Put { low_stock_threshold: Some(low_stock_threshold), .. } => low_stock_threshold,
        _ => current.and_then(|c| c.low_stock_threshold),
    };
    let shards = match change {
        StockChange::Put { shards: Some(shards), .. } => shards,
        _ => current.map_or(1, |c| c.shards),
    };
    let on_hand = match change {
        StockChange::Set { on_hand }
        | StockChange::SetWithThreshold { on_hand, .. }
        | StockChange::Put { on_hand, .. } => on_hand,
        StockChange::Adjust { .. } if current.is_none() => {
            return Err(Error::NotFound { what: "stock item", id: format!("{sku}/{location_id}") });
        }
        StockChange::Adjust { delta } => old_on_hand + delta,
    };
    if on_hand < reserved || on_hand < 0 {
        return Err(Error::StockBelowReserved { on_hand, reserved });
    }
    if on_hand > MAX_ON_HAND {
        return Err(Error::invalid_field("delta", "onHand would exceed its maximum"));
    }
    let item = StockItem {
        sku: sku.to_owned(),
        location_id: location_id.to_owned(),
        on_hand,
        reserved,
        available: on_hand - reserved,
        version: current_version + 1,
        updated_at: now,
        low_stock_threshold,
        shards,
    };
    let resharded = current.is_some_and(|c| c.shards != shards);
    Ok(StockUpdate { item, delta: on_hand - old_on_hand, created: current.is_none(), resharded })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(on_hand: i64, reserved: i64, version: u64) -> StockItem {
        StockItem {
            sku: "A".into(),
            location_id: "w".into(),
            on_hand,
            reserved,
            available: on_hand - reserved,
            version,
            updated_at: Utc::now(),
            low_stock_threshold: None,
            shards: 1,
        }
    }

    fn plan(current: Option<&StockItem>, change: StockChange, expected: Option<u64>) -> Result<StockUpdate> {
        decide_stock_write("A", "w", current, change, expected, Utc::now())
    }

    #[test]
    fn a_put_creates_or_replaces_the_count_and_keeps_the_reserved_units() {
        let created = plan(None, StockChange::Set { on_hand: 7 }, Some(0)).unwrap();
        assert_eq!((created.created, created.delta, created.item.version), (true, 7, 1));
        assert_eq!((created.item.on_hand, created.item.reserved, created.item.available), (7, 0, 7));
        let current = item(10, 4, 3);
        let set = plan(Some(&current), StockChange::Set { on_hand: 6 }, Some(3)).unwrap();
        assert_eq!((set.created, set.delta, set.item.version), (false, -4, 4));
        assert_eq!((set.item.on_hand, set.item.reserved, set.item.available), (6, 4, 2));
    }

    #[test]
    fn an_adjustment_adds_to_the_count_and_needs_an_item() {
        let current = item(10, 4, 3);
        let adjusted = plan(Some(&current), StockChange::Adjust { delta: -2 }, None).unwrap();
        assert_eq!((adjusted.item.on_hand, adjusted.delta, adjusted.item.available), (8, -2, 4));
        let missing = plan(None, StockChange::Adjust { delta: 1 }, None).unwrap_err();
        assert_eq!(missing.code(), "NOT_FOUND");
    }

    #[test]
    fn the_expected_version_must_be_the_one_read() {
        let current = item(10, 0, 3);
        let stale = plan(Some(&current), StockChange::Set { on_hand: 1 }, Some(2)).unwrap_err();
        assert_eq!(stale, Error::VersionConflict { current_version: 3 });
        let exists = plan(Some(&current), StockChange::Set { on_hand: 1 }, Some(0)).unwrap_err();
        assert_eq!(exists, Error::VersionConflict { current_version: 3 });
        let absent = plan(None, StockChange::Set { on_hand: 1 }, Some(1)).unwrap_err();
        assert_eq!(absent, Error::VersionConflict { current_version: 0 });
    }

    #[test]
    fn the_threshold_is_set_or_removed_by_a_put_and_kept_by_every_other_write() {
        let set = StockChange::SetWithThreshold { on_hand: 10, low_stock_threshold: Some(3) };
        let with = plan(Some(&item(8, 0, 1)), set, None).unwrap().item;
        assert_eq!(with.low_stock_threshold, Some(3));
        let kept = plan(Some(&with), StockChange::Adjust { delta: -1 }, None).unwrap().item;
        assert_eq!(kept.low_stock_threshold, Some(3));
        let kept = plan(Some(&kept), StockChange::Set { on_hand: 4 }, None).unwrap().item;
        assert_eq!(kept.low_stock_threshold, Some(3));
        let removed = StockChange::SetWithThreshold { on_hand: 4, low_stock_threshold: None };
        assert_eq!(plan(Some(&kept), removed, None).unwrap().item.low_stock_threshold, None);
    }

    #[test]
    fn on_hand_stays_between_reserved_and_the_maximum() {
        let current = item(10, 6, 1);
        let below = plan(Some(&current), StockChange::Set { on_hand: 5 }, None).unwrap_err();
        assert_eq!(below, Error::StockBelowReserved { on_hand: 5, reserved: 6 });
        let negative = plan(Some(&item(1, 0, 1)), StockChange::Adjust { delta: -2 }, None).unwrap_err();
        assert_eq!(negative, Error::StockBelowReserved { on_hand: -1, reserved: 0 });
        assert!(plan(Some(&current), StockChange::Set { on_hand: 6 }, None).is_ok());
        let top = item(MAX_ON_HAND, 0, 1);
        assert_eq!(
            plan(Some(&top), StockChange::Adjust { delta: 1 }, None).unwrap_err().code(),
            "VALIDATION_ERROR"
        );
    }
}
