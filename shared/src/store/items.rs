//! The single-table layout: keys and item (de)serialisation.
//!
//! | entity      | pk                 | sk         | notes                                       |
//! |-------------|--------------------|------------|---------------------------------------------|
//! | stock item  | `STOCK#{sku}`      | `LOC#{loc}`| Query on pk = every location of a SKU        |
//! | shard k > 0 | `STOCK#{sku}#LOC#{loc}#S{k:02}` | `LOC#{loc}#{k:02}` | a partition of its own per shard |
//! | movement    | the shard's pk     | `MOV#{loc}#{seq, 12 digits}[#{k:02}]` | the on-hand ledger, kept for good |
//! | movements   | shard 0's pk       | `MOV#{loc}#{seq, 12 digits}` | a sharded item's stock write: a movement per shard |
//! | hold        | the shard's pk     | `HOLD#{loc}#{createdAt}#{id}` | a PENDING reservation's units on that shard |
//! | reservation | `RES#{id}`         | `RES`      | + `gsi1pk`/`gsi1sk` only while PENDING, `ttl` once final |
//! | order key   | `ORDER#{orderId}`  | `ORDER`    | the latest reservationId and its request, `ttl` |
//! | order's res.| `ORDER#{orderId}`  | `RES#{createdAt}#{id}` | one per reservation: the history, `ttl` |
//! | outbox      | `OUTBOX#{eventId}` | `OUTBOX`   | one per state change; `ttl` cleans it up      |
//! | channel     | `CHANNEL#{id}`     | `CHANNEL`  | its locations in order, safetyStock, version  |
//! | sku         | `STOCK#{sku}`      | `KIND`     | `kind` STOCK or KIT; a kit's components, version |
//! | stock level | `LEVEL#{sku}#{loc}`| `LEVEL`    | a sharded item's total available as the publisher last saw it |
//!
//! `gsi1` is sparse: only PENDING reservations carry `gsi1pk = PENDING#{shard}` and
//! `gsi1sk = {expiresAt}#{id}` (fixed-width RFC 3339, so string order is time order), so the
//! expiry sweep queries `gsi1sk < now` per shard and reads only what is due. `ttl` (DynamoDB's
//! TTL attribute, seconds since the epoch): `domain::retained_until` on finished reservations and
//! their order items; every read treats an item past it as gone.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};

use crate::domain::{Movement, Reservation, StockItem};
use crate::error::Error;
use crate::events::{OutboxEvent, EVENT_SOURCE};
use crate::status::Status;
use crate::timestamp;

pub type Item = HashMap<String, AttributeValue>;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// The by-location index (KEYS_ONLY): `gsi2pk = LOC#{loc}`, `gsi2sk = sku`, on stock items only.
/// Its keys never change after an item is created, so no write but an item's creation writes it.
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
pub const TTL: &str = "ttl";
/// Partitions of the due-holds index (`PENDING#{n}`), so a burst of reservations spreads its
/// index writes; the sweep queries each. (Not to be confused with an item's shards.)
pub const DUE_PARTITIONS: u32 = 4;
/// How long outbox records stay after being written (the stream has 24 h; this is a margin).
pub const OUTBOX_RETENTION_DAYS: i64 = 7;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Sort-key prefix of a sku's stock items (beside their movements and holds).
pub const STOCK_ITEM_PREFIX: &str = "LOC#";

pub fn stock_key(sku: &str, location_id: &str) -> Item {
    HashMap::from([
        (PK.into(), s(stock_pk(sku))),
        (SK.into(), s(format!("{STOCK_ITEM_PREFIX}{location_id}"))),
    ])
}

/// The partition of shard `shard` of an item, with the shard's holds and ledger: shard 0 is the
/// item itself, in its sku's partition (`STOCK#{sku}`, beside the sku's other locations); shard
/// k > 0 has a partition of its own, `STOCK#{sku}#LOC#{loc}#S{k:02}` (DynamoDB's write sharding:
/// its write and read budgets are per partition, so a sale on N shards has N partitions' worth).
/// Skus and location ids have no `#`, so these never meet a sku's partition.
pub fn shard_pk(sku: &str, location_id: &str, shard: u32) -> String {
    if shard == 0 {
        stock_pk(sku)
    } else {
        format!("STOCK#{sku}#LOC#{location_id}#S{shard:02}")
    }
}

/// The key of shard `shard` of an item: shard 0 is the item itself (`LOC#{loc}`); shard k > 0 is
/// `LOC#{loc}#{k:02}` in its own partition ([`shard_pk`]).
pub fn shard_key(sku: &str, location_id: &str, shard: u32) -> Item {
    if shard == 0 {
        return stock_key(sku, location_id);
    }
    HashMap::from([
        (PK.into(), s(shard_pk(sku, location_id, shard))),
        (SK.into(), s(format!("{STOCK_ITEM_PREFIX}{location_id}#{shard:02}"))),
    ])
}

/// In each of an item's partitions (its shards'), the sort keys from its holds to its shard item:
/// `BETWEEN` these two. In a shard k > 0's partition that is all there is; in the sku's (shard
/// 0's) the range also takes in the holds of locations that sort after this one, the sku item
/// (`KIND`) and the stock items of locations between: the caller keeps only this location's.
pub fn holds_and_item_range(location_id: &str) -> (String, String) {
    (holds_prefix(location_id), format!("{STOCK_ITEM_PREFIX}{location_id}#~"))
}

/// Which shard a stock or shard item (as read) is: the number after the location in its sort key.
pub fn shard_of(item: &Item) -> u32 {
    string_attr(item, SK)
        .and_then(|sk| {
            sk.strip_prefix(STOCK_ITEM_PREFIX).and_then(|r| r.rsplit_once('#')).map(|(_, k)| k.to_owned())
        })
        .and_then(|k| k.parse().ok())
        .unwrap_or(0)
}

/// Shard `shard` of an item: shard 0 is the stock item (with the item's settings and its
/// by-location index keys); the others are `STOCK_SHARD` items with the same attributes.
pub fn shard_item(stock: &StockItem, shard: u32) -> Result<Item, Error> {
    if shard == 0 {
        return stock_item(stock);
    }
    let mut item = to_item(stock)?;
    item.extend(shard_key(&stock.sku, &stock.location_id, shard));
    item.insert("entity".into(), s(SHARD_ENTITY));
    item.insert("shard".into(), n(shard));
    Ok(item)
}

/// On shard 0 of an item: how many shard items it has (shards 0 to `shardItems - 1`), the current
/// `shards` and those a lowered count left behind. Written by every stock write (each rewrites
/// every shard item), so it never shrinks; an item written before it existed has `shards`.
pub const SHARD_ITEMS: &str = "shardItems";

/// The [`SHARD_ITEMS`] of shard 0 of an item as read (or of one of its images).
pub fn shard_items_of(item: &Item) -> u32 {
    let read = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    };
    read(SHARD_ITEMS).or_else(|| read("shards")).unwrap_or(1)
}

/// The item recording a sharded item's total available as the publisher last derived its stock
/// events from it (`store::levels`): a partition of its own, written only on a change of the
/// item's total.
pub fn level_key(sku: &str, location_id: &str) -> Item {
    HashMap::from([(PK.into(), s(format!("LEVEL#{sku}#{location_id}"))), (SK.into(), s("LEVEL"))])
}

/// The `entity` of a shard item other than shard 0.
pub const SHARD_ENTITY: &str = "STOCK_SHARD";

pub fn stock_pk(sku: &str) -> String {
    format!("STOCK#{sku}")
}

/// Sort-key prefix of an item's movements; the version is zero-padded so string order is version
/// order.
pub fn movements_prefix(location_id: &str) -> String {
    format!("MOV#{location_id}#")
}

/// Sort-key prefix of the holds on an item (oldest reservation first).
pub fn holds_prefix(location_id: &str) -> String {
    format!("HOLD#{location_id}#")
}

/// A hold item as read: the stock item it holds units of, the reservation, and the quantity
/// (`None` when the item has none that reads as a number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRead {
    pub sku: String,
    pub location_id: String,
    /// The shard whose units it holds (its partition's).
    pub shard: u32,
    pub sort_key: String,
    pub reservation_id: String,
    pub quantity: Option<i64>,
}

/// Reads a hold item (its `sku` and `locationId`, `HOLD#{loc}#...`); `None` for any other item.
pub fn read_hold(item: &Item) -> Option<HoldRead> {
    let sort_key = string_attr(item, SK)?;
    let location_id = sort_key.strip_prefix("HOLD#")?.split('#').next()?.to_owned();
    Some(HoldRead {
        sku: string_attr(item, "sku")?,
        location_id,
        shard: number_attr(item, "shard").and_then(|k| u32::try_from(k).ok()).unwrap_or(0),
        reservation_id: string_attr(item, "reservationId").unwrap_or_default(),
        quantity: number_attr(item, "quantity"),
        sort_key,
    })
}

/// Whether `sk` is the sort key of the stock item at `location_id` or one of its shards.
pub fn is_item_or_shard(sk: &str, location_id: &str) -> bool {
    let item = format!("{STOCK_ITEM_PREFIX}{location_id}");
    sk == item || sk.strip_prefix(&item).is_some_and(|rest| rest.starts_with('#'))
}

/// The key of `reservation`'s hold on shard `shard` of `(sku, location_id)`, in the shard's
/// partition.
pub fn hold_key(sku: &str, location_id: &str, shard: u32, reservation: &Reservation) -> Item {
    let sk = format!(
        "{}{}#{}",
        holds_prefix(location_id),
        timestamp::format(&reservation.created_at),
        reservation.reservation_id
    );
    HashMap::from([(PK.into(), s(shard_pk(sku, location_id, shard))), (SK.into(), s(sk))])
}

/// `reservation`'s hold of `quantity` units on shard `shard` of `(sku, location_id)`: the holds on
/// a shard sum to its `reserved`, kept so by the transactions that move `reserved`.
pub fn hold_item(sku: &str, location_id: &str, shard: u32, reservation: &Reservation, quantity: i64) -> Item {
    let mut item = hold_key(sku, location_id, shard, reservation);
    item.extend([
        ("entity".into(), s("HOLD")),
        ("sku".into(), s(sku)),
        ("locationId".into(), s(location_id)),
        ("shard".into(), n(shard)),
        ("reservationId".into(), s(&reservation.reservation_id)),
        ("orderId".into(), s(&reservation.order_id)),
        ("quantity".into(), n(quantity)),
    ]);
    item
}

/// On a stock or shard item: the ledger position (`seq`) of its last movement. Movements sort by
/// it, shard by shard; a stock write puts all its shards' movements at one position past every
/// shard's ([`ledger_seq_of`], `max + 1`), so they list together, while each shard's `version`
/// still grows by one per write. An item written before it existed has its movements at its
/// versions.
pub const LEDGER_SEQ: &str = "ledgerSeq";

/// A ledger position at or past a stock or shard item's last movement (as read): the larger of
/// [`LEDGER_SEQ`] and its version (a movement written at its version, by this code before it
/// had ledger positions or by a process still running it, is never caught up with).
pub fn ledger_seq_of(item: &Item) -> u64 {
    number_attr(item, LEDGER_SEQ).max(number_attr(item, "version")).map_or(0, |seq| seq.max(0) as u64)
}

/// The sort key of shard `shard`'s movement at ledger position `seq`: of shard 0
/// `MOV#{loc}#{seq}`, of shard k > 0 (its own chain) `MOV#{loc}#{seq}#{k:02}`.
fn movement_sort_key(location_id: &str, seq: u64, shard: u32) -> String {
    let mut sk = format!("{}{seq:012}", movements_prefix(location_id));
    if shard > 0 {
        sk.push_str(&format!("#{shard:02}"));
    }
    sk
}

/// One movement of the ledger of `(sku, location_id)`, in its shard's partition at ledger
/// position `seq` (an unsharded item's: its version).
pub fn movement_item(sku: &str, location_id: &str, seq: u64, movement: &Movement) -> Result<Item, Error> {
    let mut item = to_item(movement)?;
    let shard = movement.shard.unwrap_or(0);
    item.insert(PK.into(), s(shard_pk(sku, location_id, shard)));
    item.insert("sku".into(), s(sku));
    item.insert("locationId".into(), s(location_id));
    item.insert(SK.into(), s(movement_sort_key(location_id, seq, shard)));
    item.insert("entity".into(), s("MOVEMENT"));
    Ok(item)
}

/// The `entity` of a sharded item's stock write's movements, one item for all its shards.
pub const MOVEMENTS_ENTITY: &str = "MOVEMENTS";

/// The movements of one stock write of a sharded item, every shard's whose onHand changed, in one
/// item (a write of 64 shards would otherwise take 128 of a transaction's 100 actions): in shard
/// 0's partition at ledger position `seq`, listed as if each were at its own shard's key there
/// ([`ledger_entries`]).
pub fn movements_item(sku: &str, location_id: &str, seq: u64, movements: &[Movement]) -> Result<Item, Error> {
    let entries =
        movements.iter().map(|m| to_item(m).map(AttributeValue::M)).collect::<Result<Vec<_>, _>>()?;
    Ok(HashMap::from([
        (PK.into(), s(shard_pk(sku, location_id, 0))),
        (SK.into(), s(movement_sort_key(location_id, seq, 0))),
        ("entity".into(), s(MOVEMENTS_ENTITY)),
        ("sku".into(), s(sku)),
        ("locationId".into(), s(location_id)),
        ("seq".into(), n(seq)),
        ("movements".into(), AttributeValue::L(entries)),
    ]))
}

/// A ledger item as read, as the movements it holds, each as an item of its own at its own sort
/// key: a [`movements_item`]'s one per shard (at its shard's key for the item's position), any
/// other item as is.
pub fn ledger_entries(item: Item) -> Result<Vec<Item>, Error> {
    if string_attr(&item, "entity").as_deref() != Some(MOVEMENTS_ENTITY) {
        return Ok(vec![item]);
    }
    let (Some(location_id), Some(seq), Some(AttributeValue::L(entries))) =
        (string_attr(&item, "locationId"), number_attr(&item, "seq"), item.get("movements"))
    else {
        return Err(Error::internal("a movements item without its location, position or movements"));
    };
    let mut expanded = Vec::with_capacity(entries.len());
    for entry in entries {
        let AttributeValue::M(entry) = entry else {
            return Err(Error::internal("a movements item's entry is not a map"));
        };
        let mut entry = entry.clone();
        let shard = number_attr(&entry, "shard").and_then(|k| u32::try_from(k).ok()).unwrap_or(0);
        entry.insert(SK.into(), s(movement_sort_key(&location_id, seq as u64, shard)));
        for name in [PK, "sku", "locationId"] {
            if let Some(v) = item.get(name) {
                entry.insert(name.into(), v.clone());
            }
        }
        entry.insert("entity".into(), s("MOVEMENT"));
        expanded.push(entry);
    }
    Ok(expanded)
}

pub fn reservation_key(id: &str) -> Item {
    HashMap::from([(PK.into(), s(format!("RES#{id}"))), (SK.into(), s("RES"))])
}

/// The sku item: whether the sku is stocked or a kit (`store::kits`). In the sku's partition, its
/// sort key sorts right before its stock items' (`HOLD#` < `KIND` < `LOC#` < `MOV#`): one Query
/// from [`SKU_SK`] to [`STOCK_ITEMS_END`] reads both.
pub fn sku_key(sku: &str) -> Item {
    HashMap::from([(PK.into(), s(stock_pk(sku))), (SK.into(), s(SKU_SK))])
}

/// Sort key of the sku item.
pub const SKU_SK: &str = "KIND";
/// An upper bound of the sort keys of a sku's stock items (`LOC#...` < `LOC$`).
pub const STOCK_ITEMS_END: &str = "LOC$";

pub fn channel_key(channel_id: &str) -> Item {
    HashMap::from([(PK.into(), s(format!("CHANNEL#{channel_id}"))), (SK.into(), s("CHANNEL"))])
}

pub fn channel_item(channel: &crate::domain::Channel) -> Result<Item, Error> {
    let mut item = to_item(channel)?;
    item.extend(channel_key(&channel.channel_id));
    item.insert("entity".into(), s("CHANNEL"));
    Ok(item)
}

pub fn order_key(order_id: &str) -> Item {
    HashMap::from([(PK.into(), s(order_pk(order_id))), (SK.into(), s(ORDER_SK))])
}

pub fn order_pk(order_id: &str) -> String {
    format!("ORDER#{order_id}")
}

/// Sort key of the order key item.
pub const ORDER_SK: &str = "ORDER";
/// Sort-key prefix of an order's reservation items (`RES#{createdAt}#{id}`: oldest first).
pub const ORDER_RESERVATION_PREFIX: &str = "RES#";

pub fn due_partition_pk(partition: u32) -> String {
    format!("PENDING#{partition}")
}

fn due_partition(reservation_id: &str) -> u32 {
    reservation_id.bytes().fold(0u32, |acc, b| acc.wrapping_mul(31).wrapping_add(b as u32)) % DUE_PARTITIONS
}

/// `gsi1sk` of a PENDING hold; also the exclusive upper bound "due before `t`" for the sweep.
pub fn due_sort_key(expires_at: &DateTime<Utc>, reservation_id: &str) -> String {
    format!("{}#{reservation_id}", timestamp::format(expires_at))
}

fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, Error> {
    serde_dynamo::to_item(value).map_err(Error::internal)
}

pub fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, Error> {
    serde_dynamo::from_item(item).map_err(Error::internal)
}

pub fn stock_item(stock: &StockItem) -> Result<Item, Error> {
    let mut item = to_item(stock)?;
    item.extend(stock_key(&stock.sku, &stock.location_id));
    item.insert("entity".into(), s("STOCK"));
    item.insert(GSI2_PK.into(), s(location_pk(&stock.location_id)));
    item.insert(GSI2_SK.into(), s(&stock.sku));
    Ok(item)
}

/// `gsi2pk` of a location's stock items.
pub fn location_pk(location_id: &str) -> String {
    format!("LOC#{location_id}")
}

pub fn reservation_item(reservation: &Reservation) -> Result<Item, Error> {
    let mut item = to_item(reservation)?;
    item.extend(reservation_key(&reservation.reservation_id));
    item.insert("entity".into(), s("RESERVATION"));
    if reservation.status == Status::Pending {
        let partition = due_partition(&reservation.reservation_id);
        item.insert(GSI1_PK.into(), s(due_partition_pk(partition)));
        item.insert(GSI1_SK.into(), s(due_sort_key(&reservation.expires_at, &reservation.reservation_id)));
    }
    Ok(item)
}

/// The order key: the order's latest reservation and the request (`Cart::key`) that made or last
/// changed it, which a retried reserve is compared with; `ttl` is that reservation's
/// (`domain::retained_until`).
pub fn order_item(order_id: &str, reservation_id: &str, request: &str, ttl: i64) -> Item {
    let mut item = order_key(order_id);
    item.insert(TTL.into(), n(ttl));
    item.insert("entity".into(), s("ORDER"));
    item.insert("orderId".into(), s(order_id));
    item.insert("reservationId".into(), s(reservation_id));
    item.insert("cartKey".into(), s(request));
    item
}

/// One item per reservation of an order, sorted by creation: `GET .../reservations` is one Query.
/// `ttl`: the reservation's (`domain::retained_until`).
pub fn order_reservation_item(reservation: &Reservation, ttl: i64) -> Item {
    let sk = format!(
        "{ORDER_RESERVATION_PREFIX}{}#{}",
        timestamp::format(&reservation.created_at),
        reservation.reservation_id
    );
    HashMap::from([
        (PK.into(), s(order_pk(&reservation.order_id))),
        (SK.into(), s(sk)),
        ("entity".into(), s("ORDER_RESERVATION")),
        ("reservationId".into(), s(&reservation.reservation_id)),
        (TTL.into(), n(ttl)),
    ])
}

/// The key of an event's outbox record: written by exactly one transaction, so its presence tells
/// whether that transaction was applied.
pub fn outbox_key(event: &OutboxEvent) -> Item {
    HashMap::from([(PK.into(), s(format!("OUTBOX#{}", event.event_id))), (SK.into(), s("OUTBOX"))])
}

pub fn outbox_item(event: &OutboxEvent) -> Item {
    let expires = event.occurred_at + Duration::days(OUTBOX_RETENTION_DAYS);
    let mut item = outbox_key(event);
    item.extend([
        ("entity".into(), s("OUTBOX")),
        ("eventId".into(), s(&event.event_id)),
        ("source".into(), s(EVENT_SOURCE)),
        ("detailType".into(), s(event.detail_type.as_str())),
        ("detail".into(), s(event.detail().to_string())),
        ("occurredAt".into(), s(timestamp::format(&event.occurred_at))),
        (TTL.into(), n(expires.timestamp())),
    ]);
    if let Some(trace) = &event.trace_header {
        item.insert("traceHeader".into(), s(trace));
    }
    item
}

pub fn string_attr(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub fn number_attr(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Line, MovementKind};

    #[test]
    fn holds_and_item_ranges_are_read_from_their_keys() {
        let r = Reservation::new("o".into(), vec![Line::new("A".into(), "w-1".into(), 2)], 60, Utc::now());
        let item = hold_item("A", "w-1", 3, &r, 2);
        let hold = read_hold(&item).expect("a hold");
        assert_eq!((hold.sku.as_str(), hold.location_id.as_str(), hold.quantity), ("A", "w-1", Some(2)));
        assert_eq!(hold.reservation_id, r.reservation_id);
        // In its shard's partition, as the shard item and its ledger are; shard 0's is the sku's.
        assert_eq!(string_attr(&item, PK).unwrap(), "STOCK#A#LOC#w-1#S03");
        assert_eq!(shard_key("A", "w-1", 3)[PK], item[PK]);
        assert_eq!(string_attr(&hold_item("A", "w-1", 0, &r, 2), PK).unwrap(), "STOCK#A");
        let movement =
            Movement::new(MovementKind::Sold, 4, -1, 2, Utc::now(), &Default::default()).on_shard(3, 4);
        assert_eq!(movement_item("A", "w-1", 7, &movement).unwrap()[PK], item[PK]);
        assert_eq!(
            string_attr(&movement_item("A", "w-1", 7, &movement).unwrap(), SK).unwrap(),
            "MOV#w-1#000000000007#03"
        );
        assert_eq!(read_hold(&stock_key("A", "w-1")), None, "not a hold");
        assert!(is_item_or_shard("LOC#w-1", "w-1") && is_item_or_shard("LOC#w-1#03", "w-1"));
        assert!(!is_item_or_shard("LOC#w-10", "w-1") && !is_item_or_shard("HOLD#w-1#x", "w-1"));
    }

    #[test]
    fn a_stock_writes_movements_item_lists_as_each_shards_movement_at_its_shards_key() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let m = |shard: u32, version: u64| {
            Movement::new(MovementKind::Set, version, 5, 5 + version as i64, at, &Default::default())
                .on_shard(shard, 64)
        };
        let movements = [m(0, 3), m(1, 9), m(63, 2)];
        let item = movements_item("A", "w-1", 12, &movements).unwrap();
        assert_eq!(string_attr(&item, PK).unwrap(), "STOCK#A", "in the item's own partition");
        assert_eq!(string_attr(&item, SK).unwrap(), "MOV#w-1#000000000012");
        let entries = ledger_entries(item).unwrap();
        let keys: Vec<String> = entries.iter().map(|e| string_attr(e, SK).unwrap()).collect();
        assert_eq!(keys, ["MOV#w-1#000000000012", "MOV#w-1#000000000012#01", "MOV#w-1#000000000012#63"]);
        let back: Vec<Movement> = entries.into_iter().map(|e| from_item(e).unwrap()).collect();
        assert_eq!(back, movements);
        // Any other item lists as itself.
        let one = movement_item("A", "w-1", 4, &m(0, 4)).unwrap();
        assert_eq!(ledger_entries(one.clone()).unwrap(), vec![one]);
        // A stock or shard item's ledger position: the larger of `ledgerSeq` and its version.
        let mut shard = HashMap::from([("version".to_owned(), n(5))]);
        assert_eq!(ledger_seq_of(&shard), 5);
        shard.insert(LEDGER_SEQ.into(), n(9));
        assert_eq!(ledger_seq_of(&shard), 9);
        shard.insert("version".into(), n(12));
        assert_eq!(ledger_seq_of(&shard), 12);
    }

    #[test]
    fn pending_reservations_carry_the_due_index_and_final_ones_do_not() {
        let mut r = Reservation::new("o".into(), vec![Line::new("A".into(), "w".into(), 1)], 60, Utc::now());
        let item = reservation_item(&r).unwrap();
        assert!(string_attr(&item, GSI1_PK).unwrap().starts_with("PENDING#"));
        assert!(string_attr(&item, GSI1_SK).unwrap().ends_with(&r.reservation_id));
        let back: Reservation = from_item(item).unwrap();
        assert_eq!(back, r);
        r.status = Status::Confirmed;
        let item = reservation_item(&r).unwrap();
        assert!(!item.contains_key(GSI1_PK) && !item.contains_key(GSI1_SK));
    }

    #[test]
    fn due_sort_keys_order_by_time() {
        let t1 = timestamp::parse("2026-11-23T09:59:59.999Z").unwrap();
        let t2 = timestamp::parse("2026-11-23T10:00:00.000Z").unwrap();
        assert!(due_sort_key(&t1, "zzz") < due_sort_key(&t2, "aaa"));
        // A hold due exactly at `now` sorts below the bound used by the sweep.
        assert!(due_sort_key(&t2, "ffffffff-ffff") < due_sort_key(&t2, "~"));
    }
}
