//! Planning, with no I/O: what a stream record asks of the publisher (an outbox record to publish
//! unchanged, `StockDepleted`/`StockLow`/`StockReplenished` derived from a stock item's images,
//! nothing, or poison).

use aws_lambda_events::event::dynamodb::EventRecord;
use serde::Deserialize;
use serde_json::Value;

use crate::bus::{BusEntry, MAX_BYTES_PER_CALL};
use crate::domain::{stock_crossings, StockItem, StockLevel};
use crate::events::{DetailType, OutboxEvent};
use crate::store::items::SHARD_ENTITY;
use crate::timestamp;

/// Names the ids of events derived from stock items (UUID v5 of `[type|]pk|sk|version`): the same
/// stream record always yields the same ids.
const STOCK_EVENT_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5f1e_0c47_9a2d_4b7e_8c31_6d0a_e4b2_9f15);

/// What one stream record asks of the publisher.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// Not an event (a reservation or order key write, an outbox record's TTL removal...).
    Nothing,
    /// One or more entries (a stock item's change may cross several lines at once).
    Publish(Vec<BusEntry>),
    /// Can never be published as it is: straight to the dead-letter queue.
    Poison { reason: String },
    /// A shard of a sharded item changed so that the item's total may have crossed a line: its
    /// stock events are decided on the total (`Store::settle_stock_level`).
    SettleLevel { sku: String, location_id: String },
}

/// The outbox record as the store writes it (`store::items::outbox_item`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutboxRecord {
    event_id: String,
    source: String,
    detail_type: String,
    detail: String,
    occurred_at: String,
    #[serde(default)]
    trace_header: Option<String>,
}

#[derive(Deserialize)]
struct Entity {
    entity: Option<String>,
}

fn entity(image: &serde_dynamo::Item) -> Option<String> {
    serde_dynamo::from_item::<_, Entity>(image.clone()).ok().and_then(|e| e.entity)
}

/// Decides what a stream record means for the bus. Pure: no I/O.
pub fn plan_record(record: &EventRecord) -> Planned {
    let new = &record.change.new_image;
    match (record.event_name.as_str(), entity(new).as_deref()) {
        ("INSERT", Some("OUTBOX")) => plan_outbox(new),
        ("INSERT" | "MODIFY", Some("STOCK")) => plan_stock_events(&record.change.old_image, new),
        ("INSERT" | "MODIFY", Some(SHARD_ENTITY)) => plan_shard(&record.change.old_image, new),
        _ => Planned::Nothing,
    }
}

fn plan_outbox(image: &serde_dynamo::Item) -> Planned {
    let record: OutboxRecord = match serde_dynamo::from_item(image.clone()) {
        Ok(r) => r,
        Err(e) => return Planned::Poison { reason: format!("not an outbox record: {e}") },
    };
    let Some(time) = timestamp::parse(&record.occurred_at) else {
        return Planned::Poison { reason: format!("occurredAt {:?} is not a timestamp", record.occurred_at) };
    };
    if serde_json::from_str::<Value>(&record.detail).map_or(true, |d| !d.is_object()) {
        return Planned::Poison { reason: "detail is not a JSON object".into() };
    }
    let entry = BusEntry {
        event_id: record.event_id,
        source: record.source,
        detail_type: record.detail_type,
        detail: record.detail,
        time,
        trace_header: record.trace_header,
    };
    if entry.size() > MAX_BYTES_PER_CALL {
        return Planned::Poison {
            reason: format!("entry of {} bytes exceeds PutEvents' limit", entry.size()),
        };
    }
    Planned::Publish(vec![entry])
}

/// How many shard items an image of shard 0 says its item has (`store::items::SHARD_ITEMS`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShardItems {
    shard_items: Option<u32>,
    shards: Option<u32>,
}

fn shard_items(image: &serde_dynamo::Item) -> Option<u32> {
    let read = serde_dynamo::from_item::<_, ShardItems>(image.clone()).ok()?;
    read.shard_items.or(read.shards)
}

/// Whether a shard's change from `before` to `after` may move its item's total across a line:
/// unless the shard had and keeps at least `max(1, lowStockThreshold)` available (then the total
/// did too, before and after, so no line was crossed).
fn may_cross(before: Option<&StockItem>, after: &StockItem) -> bool {
    let Some(before) = before else { return true };
    let line = before.low_stock_threshold.max(after.low_stock_threshold).unwrap_or(1).max(1);
    before.available < line || after.available < line
}

/// A shard item other than shard 0 changed.
fn plan_shard(old: &serde_dynamo::Item, new: &serde_dynamo::Item) -> Planned {
    let Ok(after) = serde_dynamo::from_item::<_, StockItem>(new.clone()) else {
        return Planned::Nothing;
    };
    let before = serde_dynamo::from_item::<_, StockItem>(old.clone()).ok();
    if !may_cross(before.as_ref(), &after) {
        return Planned::Nothing;
    }
    Planned::SettleLevel { sku: after.sku, location_id: after.location_id }
}

/// The events a stock item's change derives (`domain::stock_crossings` decides which), each once
/// per crossing: ids fixed by item, version and type. Never on an item's creation. For a sharded
/// item (or one with shards left from a lowered count), shard 0 holds a slice of the units: the
/// item's total decides ([`Planned::SettleLevel`]).
fn plan_stock_events(old: &serde_dynamo::Item, new: &serde_dynamo::Item) -> Planned {
    let Ok(after) = serde_dynamo::from_item::<_, StockItem>(new.clone()) else {
        return Planned::Nothing;
    };
    let before = serde_dynamo::from_item::<_, StockItem>(old.clone()).ok();
    let sharded = |image| shard_items(image).unwrap_or(1) > 1;
    if sharded(new) || sharded(old) {
        // The stock write that made it sharded recorded its total and crossings itself; after
        // that, only what may cross a line is worth reading the total for.
        let changed = shard_items(old) != shard_items(new)
            || before.as_ref().is_some_and(|b| b.low_stock_threshold != after.low_stock_threshold);
        if !changed && !may_cross(before.as_ref(), &after) {
            return Planned::Nothing;
        }
        return Planned::SettleLevel { sku: after.sku, location_id: after.location_id };
    }
    let Some(before) = before else {
        return Planned::Nothing;
    };
    let data = match serde_json::to_value(&after) {
        Ok(data) => data,
        Err(e) => return Planned::Poison { reason: format!("stock item: {e}") },
    };
    let level = |item: &StockItem| StockLevel {
        available: item.available,
        low_stock_threshold: item.low_stock_threshold,
    };
    let events = stock_crossings(level(&before), level(&after));
    if events.is_empty() {
        return Planned::Nothing;
    }
    let entries = events
        .into_iter()
        .map(|detail_type| {
            let name = match detail_type {
                // The name StockDepleted ids have always had.
                DetailType::StockDepleted => {
                    format!("STOCK#{}|LOC#{}|{}", after.sku, after.location_id, after.version)
                }
                other => format!(
                    "{}|STOCK#{}|LOC#{}|{}",
                    other.as_str(),
                    after.sku,
                    after.location_id,
                    after.version
                ),
            };
            let mut event = OutboxEvent::new(detail_type, data.clone(), after.updated_at, None);
            event.event_id = uuid::Uuid::new_v5(&STOCK_EVENT_NAMESPACE, name.as_bytes()).to_string();
            BusEntry::from_event(&event)
        })
        .collect();
    Planned::Publish(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::items::{outbox_item, stock_item};
    use chrono::Utc;
    use serde_json::json;

    fn record(name: &str, old: Option<crate::store::Item>, new: Option<crate::store::Item>) -> EventRecord {
        let mut r = EventRecord::default();
        r.event_name = name.into();
        r.event_id = "e1".into();
        r.change.sequence_number = Some("100".into());
        r.change.old_image = old.map(serde_dynamo::Item::from).unwrap_or_default();
        r.change.new_image = new.map(serde_dynamo::Item::from).unwrap_or_default();
        r
    }

    fn stock(available: i64, version: u64) -> StockItem {
        StockItem {
            sku: "A".into(),
            location_id: "w1".into(),
            on_hand: 5,
            reserved: 5 - available,
            available,
            version,
            updated_at: timestamp::parse("2026-11-23T10:00:00.000Z").unwrap(),
            low_stock_threshold: None,
            shards: 1,
        }
    }

    #[test]
    fn an_outbox_insert_is_published_unchanged() {
        let at = timestamp::parse("2026-11-23T10:00:00.000Z").unwrap();
        let event = OutboxEvent::new(DetailType::ReservationCreated, json!({"a": 1}), at, Some("c"));
        let Planned::Publish(entries) = plan_record(&record("INSERT", None, Some(outbox_item(&event))))
        else {
            panic!("expected an entry");
        };
        let [entry] = &entries[..] else { panic!("one entry") };
        let entry = entry.clone();
        assert_eq!(entry, BusEntry::from_event(&event));
        assert_eq!(entry.source, "inventory");
        // The outbox record's TTL removal and other writes publish nothing.
        assert_eq!(plan_record(&record("REMOVE", Some(outbox_item(&event)), None)), Planned::Nothing);
    }

    #[test]
    fn a_channel_change_is_published_as_channel_updated_and_the_channel_item_itself_as_nothing() {
        let at = timestamp::parse("2026-12-06T10:00:00.000Z").unwrap();
        let channel = crate::domain::Channel {
            channel_id: "web".into(),
            locations: vec!["paris".into()],
            safety_stock: 2,
            version: 1,
            updated_at: at,
        };
        let event = OutboxEvent::new(DetailType::ChannelUpdated, json!(channel), at, None);
        let Planned::Publish(entries) = plan_record(&record("INSERT", None, Some(outbox_item(&event))))
        else {
            panic!("expected an entry");
        };
        assert_eq!(entries, vec![BusEntry::from_event(&event)]);
        assert_eq!(entries[0].detail_type, "ChannelUpdated");
        let item = crate::store::items::channel_item(&channel).unwrap();
        assert_eq!(plan_record(&record("INSERT", None, Some(item))), Planned::Nothing);
    }

    #[test]
    fn a_kit_change_is_published_as_kit_updated_and_the_kit_item_itself_as_nothing() {
        let at = timestamp::parse("2026-12-06T10:00:00.000Z").unwrap();
        let kit = crate::domain::Kit {
            sku: "GIFT".into(),
            components: vec![crate::domain::Component { sku: "MUG".into(), quantity: 1 }],
            version: 2,
            updated_at: at,
        };
        let event = OutboxEvent::new(DetailType::KitUpdated, json!(kit), at, None);
        let Planned::Publish(entries) = plan_record(&record("INSERT", None, Some(outbox_item(&event))))
        else {
            panic!("expected an entry");
        };
        assert_eq!(entries, vec![BusEntry::from_event(&event)]);
        assert_eq!(entries[0].detail_type, "KitUpdated");
        let detail: Value = serde_json::from_str(&entries[0].detail).unwrap();
        assert_eq!(detail["data"]["components"][0]["sku"], "MUG");
        // The kit's item (under STOCK#GIFT, beside stock items) is not a stock item: no stock event.
        let item = crate::store::kits::kit_item(&kit).unwrap();
        assert_eq!(plan_record(&record("INSERT", None, Some(item.clone()))), Planned::Nothing);
        assert_eq!(plan_record(&record("MODIFY", Some(item.clone()), Some(item))), Planned::Nothing);
    }

    #[test]
    fn the_trace_header_of_the_change_goes_onto_the_put_events_entry() {
        let trace = "Root=1-67891233-abcdef012345678912345678;Sampled=1".to_owned();
        let mut event = OutboxEvent::new(DetailType::ReservationCreated, json!({}), Utc::now(), None);
        let untraced_event = event.clone();
        event.trace_header = Some(trace.clone());
        let item = outbox_item(&event);
        let Planned::Publish(entries) = plan_record(&record("INSERT", None, Some(item))) else {
            panic!("expected an entry");
        };
        assert_eq!(entries[0].request_entry("bus").trace_header(), Some(trace.as_str()));
        let untraced = plan_record(&record("INSERT", None, Some(outbox_item(&untraced_event))));
        let Planned::Publish(entries) = untraced else { panic!("expected an entry") };
        assert_eq!(entries[0].request_entry("bus").trace_header(), None);
    }

    #[test]
    fn a_broken_outbox_record_is_poison() {
        let at = Utc::now();
        let mut item = outbox_item(&OutboxEvent::new(DetailType::StockAdjusted, json!({}), at, None));
        item.insert("detail".into(), crate::store::items::s("not json"));
        assert!(matches!(plan_record(&record("INSERT", None, Some(item))), Planned::Poison { .. }));
    }

    #[test]
    fn stock_depleted_only_when_available_reaches_zero_from_above() {
        let depleted = record(
            "MODIFY",
            Some(stock_item(&stock(1, 3)).unwrap()),
            Some(stock_item(&stock(0, 4)).unwrap()),
        );
        let Planned::Publish(entries) = plan_record(&depleted) else { panic!("expected StockDepleted") };
        let [entry] = &entries[..] else { panic!("one entry") };
        assert_eq!(entry.detail_type, "StockDepleted");
        let detail: Value = serde_json::from_str(&entry.detail).unwrap();
        assert_eq!(detail["data"]["available"], 0);
        assert_eq!(detail["data"]["version"], 4);
        // The same record always gives the same event id.
        let Planned::Publish(again) = plan_record(&depleted) else { panic!() };
        assert_eq!(again[0].event_id, entry.event_id);

        for (old, new) in [(Some(0), 0), (Some(2), 1), (None, 0), (None, 3)] {
            let r = record(
                "MODIFY",
                old.map(|a| stock_item(&stock(a, 1)).unwrap()),
                Some(stock_item(&stock(new, 2)).unwrap()),
            );
            assert_eq!(plan_record(&r), Planned::Nothing, "{old:?} -> {new}");
        }
    }

    #[test]
    fn low_stock_and_back_in_stock_once_per_crossing() {
        let with = |available: i64, version: u64, threshold: Option<i64>| {
            let mut item = stock(available, version);
            item.low_stock_threshold = threshold;
            stock_item(&item).unwrap()
        };
        let types = |old: Option<crate::store::Item>, new: crate::store::Item| match plan_record(&record(
            "MODIFY",
            old,
            Some(new),
        )) {
            Planned::Publish(entries) => entries.into_iter().map(|e| e.detail_type).collect::<Vec<_>>(),
            _ => vec![],
        };
        assert_eq!(types(Some(with(5, 1, Some(5))), with(4, 2, Some(5))), ["StockLow"]);
        assert!(types(Some(with(4, 2, Some(5))), with(3, 3, Some(5))).is_empty(), "already below");
        assert_eq!(
            types(Some(with(2, 3, Some(5))), with(0, 4, Some(5))),
            Vec::<String>::new().into_iter().chain(["StockDepleted".to_owned()]).collect::<Vec<_>>()
        );
        assert_eq!(types(Some(with(6, 1, Some(5))), with(0, 2, Some(5))), ["StockDepleted", "StockLow"]);
        assert_eq!(types(Some(with(0, 4, Some(5))), with(7, 5, Some(5))), ["StockReplenished"]);
        assert!(types(Some(with(0, 4, None)), with(0, 5, None)).is_empty());
        assert!(types(None, with(7, 1, Some(5))).is_empty(), "never on creation");
        assert!(types(Some(with(9, 1, None)), with(1, 2, None)).is_empty(), "no threshold, no StockLow");
        // Ids are fixed by type, item and version, and differ between types.
        let Planned::Publish(a) =
            plan_record(&record("MODIFY", Some(with(6, 1, Some(5))), Some(with(0, 2, Some(5)))))
        else {
            panic!()
        };
        let Planned::Publish(b) =
            plan_record(&record("MODIFY", Some(with(6, 1, Some(5))), Some(with(0, 2, Some(5)))))
        else {
            panic!()
        };
        assert_eq!(a, b);
        assert_ne!(a[0].event_id, a[1].event_id);
        let detail: Value = serde_json::from_str(&a[1].detail).unwrap();
        assert_eq!(detail["data"]["lowStockThreshold"], 5);
    }

    #[test]
    fn a_sharded_items_shards_ask_for_its_total_only_when_it_may_cross_a_line() {
        use crate::store::items::{shard_item, SHARD_ITEMS};
        let shard = |k: u32, available: i64, threshold: Option<i64>, shards: u32, items: u32| {
            let mut s = stock(available, 1);
            (s.shards, s.low_stock_threshold) = (shards, threshold);
            let mut item = shard_item(&s, k).unwrap();
            if k == 0 {
                item.insert(SHARD_ITEMS.into(), crate::store::items::n(items));
            }
            item
        };
        let plan = |old, new| plan_record(&record("MODIFY", Some(old), Some(new)));
        let settle = Planned::SettleLevel { sku: "A".into(), location_id: "w1".into() };
        // Far from every line: nothing read (a sale's bulk of reserves).
        assert_eq!(plan(shard(3, 9, None, 4, 4), shard(3, 8, None, 4, 4)), Planned::Nothing);
        assert_eq!(plan(shard(0, 9, Some(5), 4, 4), shard(0, 5, Some(5), 4, 4)), Planned::Nothing);
        // A shard reaching 0, coming back from 0, or below the threshold: the total decides.
        assert_eq!(plan(shard(3, 1, None, 4, 4), shard(3, 0, None, 4, 4)), settle);
        assert_eq!(plan(shard(3, 0, None, 4, 4), shard(3, 2, None, 4, 4)), settle);
        assert_eq!(plan(shard(0, 5, Some(5), 4, 4), shard(0, 4, Some(5), 4, 4)), settle);
        assert_eq!(plan(shard(2, 7, Some(5), 4, 4), shard(2, 6, Some(5), 4, 4)), Planned::Nothing);
        // Lowered to 1 shard with shards left behind: shard 0 alone is not the item.
        assert_eq!(plan(shard(0, 1, None, 1, 4), shard(0, 0, None, 1, 4)), settle);
        // The record that made the item sharded (its write recorded the total): read once more.
        assert_eq!(plan(shard(0, 1, None, 1, 1), shard(0, 0, None, 4, 4)), settle);
        // An unsharded item: its own images decide, as always.
        let Planned::Publish(entries) = plan(shard(0, 1, None, 1, 1), shard(0, 0, None, 1, 1)) else {
            panic!("StockDepleted from the images")
        };
        assert_eq!(entries[0].detail_type, "StockDepleted");
    }
}
