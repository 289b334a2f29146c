//! The store's invariants, checked on a snapshot of a test's table (a Scan: tests only). They
//! hold whatever ran before, faults included: the reliability tests check them at checkpoints,
//! after outages, and at the end.
//!
//! - every stock item: `0 <= reserved <= onHand`, `available = onHand - reserved`; so is every
//!   shard of a sharded item, whose `reserved` is the PENDING units placed on it (`shardHolds`);
//! - every stock item's `reserved` = the sum of the PENDING holds' quantities on it;
//! - an order has at most one PENDING reservation;
//! - the hold items are exactly the PENDING reservations' lines (so they sum to `reserved`);
//! - each item's ledger, replayed from its first movement, reaches its onHand with no break (per
//!   shard: each shard's chain reaches that shard's onHand);
//! - every reservation has exactly one `ReservationCreated` record and at most one record of a
//!   final state, which matches its status (none while PENDING);
//! - every stock item's version has exactly one `StockAdjusted` record or came from a
//!   reservation change (versions never repeat in the outbox);
//! - every outbox record has a distinct UUID event id and a JSON detail.

use std::collections::{BTreeMap, HashMap, HashSet};

use inventory::domain::{combine, replay_break, Movement, Reservation, Status, StockItem};
use inventory::store::items::{from_item, ledger_entries, shard_of, shard_pk, MOVEMENTS_ENTITY};
use serde_json::Value;

use crate::TestTable;

/// One outbox record.
#[derive(Debug, Clone)]
pub struct Record {
    pub event_id: String,
    pub detail_type: String,
    pub detail: Value,
}

impl Record {
    pub fn data(&self) -> &Value {
        &self.detail["data"]
    }
}

/// Everything in a test's table, read at one moment (when nothing else writes).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Each item as the API shows it (the sum of its shards).
    pub stock: BTreeMap<(String, String), StockItem>,
    /// Each item's shard items by shard (shard 0: the item itself).
    pub shards: BTreeMap<(String, String), BTreeMap<u32, StockItem>>,
    /// Each item's ledger, oldest first.
    pub movements: BTreeMap<(String, String), Vec<Movement>>,
    /// Hold items: `(item, shard, reservationId, quantity)`.
    pub holds: Vec<(Key, u32, String, i64)>,
    /// Items not in the partition the layout puts them in (`store::items::shard_pk`).
    pub misplaced: Vec<String>,
    pub reservations: HashMap<String, Reservation>,
    pub records: Vec<Record>,
}

pub type Key = (String, String);

impl Snapshot {
    pub async fn take(t: &TestTable) -> Self {
        let mut snapshot = Snapshot::default();
        for item in t.scan("begins_with(pk, :s)", &[(":s", "STOCK#")]).await {
            let attr = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            match attr("entity").as_str() {
                "STOCK" | "STOCK_SHARD" => {
                    let shard = shard_of(&item);
                    let pk = attr("pk");
                    let stock: StockItem = from_item(item).expect("stock item parses");
                    if pk != shard_pk(&stock.sku, &stock.location_id, shard) {
                        snapshot
                            .misplaced
                            .push(format!("shard {shard} of {}/{} at {pk}", stock.sku, stock.location_id));
                    }
                    let key = (stock.sku.clone(), stock.location_id.clone());
                    snapshot.shards.entry(key).or_default().insert(shard, stock);
                }
                "MOVEMENT" => {
                    let sku = attr("sku");
                    let location = attr("locationId");
                    let pk = attr("pk");
                    let movement: Movement = from_item(item).expect("movement parses");
                    if pk != shard_pk(&sku, &location, movement.shard.unwrap_or(0)) {
                        snapshot
                            .misplaced
                            .push(format!("movement v{} of {sku}/{location} at {pk}", movement.version));
                    }
                    snapshot.movements.entry((sku, location)).or_default().push(movement);
                }
                // A sharded item's stock write: its shards' movements, in the item's own partition.
                MOVEMENTS_ENTITY => {
                    let sku = attr("sku");
                    let location = attr("locationId");
                    if attr("pk") != shard_pk(&sku, &location, 0) {
                        snapshot.misplaced.push(format!("movements {}/{}", attr("pk"), attr("sk")));
                    }
                    for entry in ledger_entries(item).expect("movements item expands") {
                        let movement: Movement = from_item(entry).expect("movement parses");
                        snapshot.movements.entry((sku.clone(), location.clone())).or_default().push(movement);
                    }
                }
                "HOLD" => {
                    let sku = attr("sku");
                    let location = attr("locationId");
                    let number =
                        |name: &str| item.get(name).and_then(|v| v.as_n().ok()).cloned().unwrap_or_default();
                    let shard: u32 = number("shard").parse().unwrap_or_default();
                    if attr("pk") != shard_pk(&sku, &location, shard) {
                        snapshot.misplaced.push(format!("hold {}/{}", attr("pk"), attr("sk")));
                    }
                    let quantity: i64 = number("quantity").parse().unwrap_or_default();
                    snapshot.holds.push(((sku, location), shard, attr("reservationId"), quantity));
                }
                // Whether the sku is stocked or a kit (`store::kits`).
                "SKU" => {}
                other => panic!("an item of entity {other:?} under STOCK#"),
            }
        }
        for ledger in snapshot.movements.values_mut() {
            ledger.sort_by_key(|m| (m.shard.unwrap_or(0), m.version));
        }
        for (key, shards) in &snapshot.shards {
            let parts: Vec<StockItem> = shards.values().cloned().collect();
            snapshot.stock.insert(key.clone(), combine(&parts).expect("a shard"));
        }
        for item in t.scan("begins_with(pk, :r)", &[(":r", "RES#")]).await {
            let r: Reservation = from_item(item).expect("reservation parses");
            snapshot.reservations.insert(r.reservation_id.clone(), r);
        }
        for item in t.scan("begins_with(pk, :o)", &[(":o", "OUTBOX#")]).await {
            let attr = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let pk = attr("pk");
            snapshot.records.push(Record {
                event_id: pk.trim_start_matches("OUTBOX#").to_owned(),
                detail_type: attr("detailType"),
                detail: serde_json::from_str(&attr("detail")).unwrap_or(Value::Null),
            });
        }
        snapshot
    }

    /// Records of one detail-type.
    pub fn of_type<'a>(&'a self, detail_type: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        self.records.iter().filter(move |r| r.detail_type == detail_type)
    }

    /// The invariants every state of the table must satisfy; one line per violation.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        let mut pending: HashMap<Key, i64> = HashMap::new();
        for r in self.reservations.values() {
            if r.status == Status::Pending {
                for line in r.stock_lines() {
                    *pending.entry((line.sku.clone(), line.location_id.clone())).or_default() +=
                        line.quantity;
                }
            }
        }
        let mut pending_units: HashMap<(Key, u32), i64> = HashMap::new();
        for r in self.reservations.values().filter(|r| r.status == Status::Pending) {
            for ((sku, location_id, shard), q) in r.units() {
                *pending_units.entry(((sku, location_id), shard)).or_default() += q;
            }
        }
        for (key, shards) in &self.shards {
            if !shards.contains_key(&0) {
                v.push(format!("{key:?}: shards {:?} without the item itself", shards.keys()));
            }
            for (k, s) in shards.iter().filter(|_| shards.len() > 1) {
                if !(0 <= s.reserved && s.reserved <= s.on_hand) || s.available != s.on_hand - s.reserved {
                    v.push(format!(
                        "{key:?} shard {k}: onHand {} reserved {} available {}",
                        s.on_hand, s.reserved, s.available
                    ));
                }
                let held = pending_units.get(&(key.clone(), *k)).copied().unwrap_or(0);
                if s.reserved != held {
                    v.push(format!(
                        "{key:?} shard {k}: reserved {} but PENDING units on it sum to {held}",
                        s.reserved
                    ));
                }
            }
        }
        for ((key, k), q) in &pending_units {
            if self.shards.get(key).is_none_or(|s| !s.contains_key(k)) {
                v.push(format!("{key:?}: {q} PENDING units on shard {k}, which does not exist"));
            }
        }
        for (key, s) in &self.stock {
            if !(0 <= s.reserved && s.reserved <= s.on_hand) {
                v.push(format!("{key:?}: reserved {} outside 0..=onHand {}", s.reserved, s.on_hand));
            }
            if s.available != s.on_hand - s.reserved {
                v.push(format!(
                    "{key:?}: available {} != onHand {} - reserved {}",
                    s.available, s.on_hand, s.reserved
                ));
            }
            let held = pending.get(key).copied().unwrap_or(0);
            if s.reserved != held {
                v.push(format!("{key:?}: reserved {} but PENDING holds sum to {held}", s.reserved));
            }
        }
        v.extend(self.misplaced.iter().map(|m| format!("not in its shard's partition: {m}")));
        // The hold items are exactly the PENDING reservations' units, shard by shard.
        let mut units: BTreeMap<(Key, u32, String), i64> = BTreeMap::new();
        for r in self.reservations.values().filter(|r| r.status == Status::Pending) {
            for ((sku, location_id, shard), q) in r.units() {
                units.insert(((sku, location_id), shard, r.reservation_id.clone()), q);
            }
        }
        let holds: BTreeMap<(Key, u32, String), i64> =
            self.holds.iter().map(|(key, k, id, q)| ((key.clone(), *k, id.clone()), *q)).collect();
        if holds.len() != self.holds.len() {
            v.push("two hold items for one reservation and shard item".into());
        }
        for (key, q) in &units {
            if holds.get(key) != Some(q) {
                v.push(format!("PENDING units {key:?} of {q} have hold item {:?}", holds.get(key)));
            }
        }
        for key in holds.keys().filter(|k| !units.contains_key(*k)) {
            v.push(format!("hold item {key:?} of no PENDING reservation's units"));
        }
        let mut held_per_item: BTreeMap<&Key, i64> = BTreeMap::new();
        for (key, _, _, quantity) in &self.holds {
            *held_per_item.entry(key).or_default() += quantity;
        }
        for (key, s) in &self.stock {
            if held_per_item.get(key).copied().unwrap_or(0) != s.reserved {
                v.push(format!(
                    "{key:?}: hold items sum to {:?}, reserved is {}",
                    held_per_item.get(key),
                    s.reserved
                ));
            }
        }
        // Each item's ledger replays to its onHand, shard by shard.
        for (key, shards) in &self.shards {
            let ledger = self.movements.get(key).map(Vec::as_slice).unwrap_or_default();
            if let Some(why) = replay_break(ledger) {
                v.push(format!("{key:?}: ledger breaks at {why}"));
            }
            for (k, s) in shards {
                let last = ledger.iter().rfind(|m| m.shard.unwrap_or(0) == *k);
                if last.map_or(0, |m| m.on_hand) != s.on_hand {
                    v.push(format!(
                        "{key:?} shard {k}: ledger ends at {:?}, onHand is {}",
                        last.map(|m| m.on_hand),
                        s.on_hand
                    ));
                }
            }
        }
        let mut pending_per_order: HashMap<&str, usize> = HashMap::new();
        for r in self.reservations.values().filter(|r| r.status == Status::Pending) {
            *pending_per_order.entry(r.order_id.as_str()).or_default() += 1;
        }
        for (order, n) in pending_per_order.into_iter().filter(|(_, n)| *n > 1) {
            v.push(format!("order {order} has {n} PENDING reservations"));
        }
        for key in pending.keys() {
            if !self.stock.contains_key(key) {
                v.push(format!("PENDING hold on {key:?}, which has no stock item"));
            }
        }

        let mut ids = HashSet::new();
        for r in &self.records {
            if uuid::Uuid::parse_str(&r.event_id).is_err() || !ids.insert(r.event_id.clone()) {
                v.push(format!("outbox event id {:?} is not a fresh UUID", r.event_id));
            }
            if r.detail["eventId"] != Value::String(r.event_id.clone()) {
                v.push(format!("outbox record {} has detail {:?}", r.event_id, r.detail));
            }
        }
        let mut created: HashMap<&str, usize> = HashMap::new();
        let mut finals: HashMap<&str, Vec<&str>> = HashMap::new();
        for r in &self.records {
            let id = r.data()["reservationId"].as_str().unwrap_or_default();
            match r.detail_type.as_str() {
                "ReservationCreated" => *created.entry(id).or_default() += 1,
                "ReservationConfirmed" | "ReservationReleased" | "ReservationExpired" => {
                    finals.entry(id).or_default().push(&r.detail_type)
                }
                _ => {}
            }
        }
        for (id, r) in &self.reservations {
            if created.get(id.as_str()).copied() != Some(1) {
                v.push(format!(
                    "reservation {id}: {:?} ReservationCreated records",
                    created.get(id.as_str())
                ));
            }
            let f = finals.get(id.as_str()).cloned().unwrap_or_default();
            let expected = match r.status {
                Status::Pending => None,
                Status::Confirmed => Some("ReservationConfirmed"),
                Status::Released => Some("ReservationReleased"),
                Status::Expired => Some("ReservationExpired"),
            };
            if f.len() > 1 || f.first().copied() != expected {
                v.push(format!("reservation {id} is {:?} with final-state records {f:?}", r.status));
            }
        }
        for id in created.keys().chain(finals.keys()) {
            if !self.reservations.contains_key(*id) {
                v.push(format!("outbox record for reservation {id:?}, which does not exist"));
            }
        }
        let mut versions = HashSet::new();
        for r in self.of_type("StockAdjusted") {
            let d = r.data();
            let key = (d["sku"].as_str().unwrap_or_default(), d["locationId"].as_str().unwrap_or_default());
            if !versions.insert((key, d["version"].as_u64())) {
                v.push(format!("two StockAdjusted records for {key:?} version {:?}", d["version"]));
            }
        }
        v
    }
}
