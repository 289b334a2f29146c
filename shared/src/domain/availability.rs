//! What a storefront can sell (docs/api.md, "Channels and availability"): per sku, the units
//! available over its locations, or over a channel's locations each less the channel's safety
//! stock.

use serde::Serialize;

use std::collections::BTreeMap;

use super::channels::Channel;
use super::kits::{whole_kits, Component};
use super::stock::StockItem;
use super::validate::validate_sku;
use crate::error::{Error, Result};

/// At most this many skus per request.
pub const MAX_AVAILABILITY_SKUS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuAvailability {
    pub sku: String,
    pub available: i64,
    /// With `byLocation`: each location counted, sorted by locationId.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<LocationAvailability>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationAvailability {
    pub location_id: String,
    pub available: i64,
}

/// 1-100 distinct, valid skus.
pub fn validate_availability_skus(skus: &[String]) -> Result<()> {
    if skus.is_empty() || skus.len() > MAX_AVAILABILITY_SKUS {
        return Err(Error::invalid_field("skus", "skus must have 1-100 skus"));
    }
    for (i, sku) in skus.iter().enumerate() {
        validate_sku(sku).map_err(|_| {
            Error::invalid_field(&format!("skus[{i}]"), "each sku must be 1-64 characters of [A-Za-z0-9._-]")
        })?;
        if skus[..i].contains(sku) {
            return Err(Error::invalid_field(&format!("skus[{i}]"), format!("{sku} is listed twice")));
        }
    }
    Ok(())
}

/// A sku's availability from its stock items, each as the channel can sell it
/// (`domain::sellable`: its shards summed, each less the channel's safety stock): every location,
/// or only the channel's.
pub fn availability_of(
    sku: &str,
    items: &[StockItem],
    channel: Option<&Channel>,
    by_location: bool,
) -> SkuAvailability {
    let mut locations: Vec<LocationAvailability> = items
        .iter()
        .filter(|item| item.sku == sku)
        .filter_map(|item| {
            if channel.is_some_and(|c| !c.locations.contains(&item.location_id)) {
                return None;
            }
            Some(LocationAvailability { location_id: item.location_id.clone(), available: item.available })
        })
        .collect();
    locations.sort_by(|a, b| a.location_id.cmp(&b.location_id));
    SkuAvailability {
        sku: sku.to_owned(),
        available: locations.iter().map(|l| l.available).sum(),
        locations: by_location.then_some(locations),
    }
}

/// A kit's availability: per location where every component has a stock item (with a channel:
/// each of the channel's), the whole kits its components make there, each component counted as
/// [`availability_of`] counts it.
pub fn kit_availability_of(
    sku: &str,
    components: &[Component],
    items: &[StockItem],
    channel: Option<&Channel>,
    by_location: bool,
) -> SkuAvailability {
    let per_component: Vec<BTreeMap<String, i64>> = components
        .iter()
        .map(|c| {
            let counted = availability_of(&c.sku, items, channel, true).locations.unwrap_or_default();
            counted.into_iter().map(|l| (l.location_id, l.available)).collect()
        })
        .collect();
    let locations: Vec<LocationAvailability> = per_component
        .first()
        .map(|first| {
            first
                .keys()
                .filter(|location_id| per_component.iter().all(|units| units.contains_key(*location_id)))
                .map(|location_id| {
                    let units = |component: &str| {
                        let i = components.iter().position(|c| c.sku == component).unwrap_or(0);
                        per_component[i][location_id]
                    };
                    LocationAvailability {
                        location_id: location_id.clone(),
                        available: whole_kits(components, units),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    SkuAvailability {
        sku: sku.to_owned(),
        available: locations.iter().map(|l| l.available).sum(),
        locations: by_location.then_some(locations),
    }
}

#[cfg(test)]
mod tests {
    use super::super::allocation::tests::item;
    use super::super::shards::sellable;
    use super::*;
    use chrono::Utc;

    #[test]
    fn a_channel_counts_its_own_locations_each_less_its_safety_stock_never_below_zero() {
        // A sharded item keeps the safety stock on every shard: 2 shards of 5 and 1, safety 2.
        let mut shard = item("A", "paris", 1);
        shard.on_hand = 1;
        shard.reserved = 0;
        assert_eq!(sellable(&[item("A", "paris", 5), shard], 2).unwrap().available, 3, "3 + max(0, 1 - 2)");
        let items = [item("A", "paris", 5), item("A", "berlin", 1), item("A", "madrid", 7)];
        let all = availability_of("A", &items, None, false);
        assert_eq!((all.available, all.locations), (13, None));
        let web = Channel {
            channel_id: "web".into(),
            locations: vec!["paris".into(), "berlin".into()],
            safety_stock: 2,
            version: 1,
            updated_at: Utc::now(),
        };
        let sold_through: Vec<StockItem> =
            items.iter().filter_map(|i| sellable(std::slice::from_ref(i), 2)).collect();
        let through = availability_of("A", &sold_through, Some(&web), true);
        assert_eq!(through.available, 3, "paris 5 - 2, berlin max(0, 1 - 2), madrid not the channel's");
        let ids: Vec<_> =
            through.locations.unwrap().into_iter().map(|l| (l.location_id, l.available)).collect();
        assert_eq!(ids, [("berlin".to_owned(), 0), ("paris".to_owned(), 3)]);
        let none = availability_of("B", &items, None, true);
        assert_eq!((none.available, none.locations), (0, Some(vec![])));
    }

    #[test]
    fn a_kit_counts_the_whole_kits_each_location_makes() {
        let items = [
            item("A", "paris", 5),
            item("B", "paris", 3),
            item("A", "berlin", 9),
            item("B", "berlin", 9),
            item("A", "rome", 40),
        ];
        let components =
            [Component { sku: "A".into(), quantity: 2 }, Component { sku: "B".into(), quantity: 1 }];
        let all = kit_availability_of("BOX", &components, &items, None, true);
        // paris: min(5 / 2, 3) = 2; berlin: min(9 / 2, 9) = 4; rome has no B.
        let each: Vec<_> = all.locations.unwrap().into_iter().map(|l| (l.location_id, l.available)).collect();
        assert_eq!(each, [("berlin".to_owned(), 4), ("paris".to_owned(), 2)]);
        assert_eq!(all.available, 6);
        let web = Channel {
            channel_id: "web".into(),
            locations: vec!["paris".into()],
            safety_stock: 1,
            version: 1,
            updated_at: Utc::now(),
        };
        // paris less 1 of each: min(4 / 2, 2) = 2.
        let sold_through: Vec<StockItem> =
            items.iter().filter_map(|i| sellable(std::slice::from_ref(i), 1)).collect();
        assert_eq!(kit_availability_of("BOX", &components, &sold_through, Some(&web), false).available, 2);
    }

    #[test]
    fn one_to_a_hundred_distinct_valid_skus() {
        let skus = |n: usize| (0..n).map(|i| format!("S{i}")).collect::<Vec<_>>();
        assert!(validate_availability_skus(&skus(100)).is_ok());
        assert!(validate_availability_skus(&skus(101)).is_err());
        assert!(validate_availability_skus(&[]).is_err());
        let twice = validate_availability_skus(&["A".into(), "A".into()]).unwrap_err();
        assert_eq!(twice, Error::invalid_field("skus[1]", "A is listed twice"));
        assert!(validate_availability_skus(&["no space".into()]).is_err());
    }
}
