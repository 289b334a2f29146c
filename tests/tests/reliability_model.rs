//! Randomized concurrency against the store, checked against a model. Clients run a seeded
//! random mix of adjust / reserve (1-3 lines, some letting the service pick the location, some
//! split, some on a kit of two of the items) / retried reserve / PUT of an order's cart (create, re-create or change the hold) /
//! confirm / release / extend / expire / expiry sweeps / clock ticks over a few hot stock items,
//! racing on the same holds.
//! Between phases (everyone paused) the test puts new on-hand counts and checks:
//!
//! - the store's invariants (`integration_tests::invariants`): bounds, reserved = PENDING holds,
//!   one created record and at most one final-state record per reservation, matching its status;
//! - the model: onHand = put + acknowledged adjustments - acknowledged confirms; every
//!   acknowledged change has exactly one outbox record (stock writes by version, reservations by
//!   id and state, every version a PUT answered by the one record that wrote it); an acknowledged
//!   final state is the reservation's state; a retried reserve returns the order's latest
//!   reservation; expiries = acknowledged + swept (+ confirms/extends refused as expired and PUTs
//!   that may have met a hold past due, which expire it on the spot).
//!
//! Quick in `make test`; `make soak` sets RELIABILITY_CLIENTS/OPS/PHASES higher. The seed is
//! printed; RELIABILITY_SEED replays a run's choices (the interleaving is the machine's).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use integration_tests::figures::{env_usize, seed};
use integration_tests::invariants::{Key, Snapshot};
use integration_tests::TestTable;
use inventory::domain::{Cart, CartLine, Component, Status};
use inventory::expiry::ExpirySweep;
use inventory::store::StockChange;
use inventory::{Error, Store};
use serde_json::json;

const SKUS: &[&str] = &["HOT-A", "HOT-B", "HOT-C"];
/// A kit of 1 HOT-A and 2 HOT-C: its lines hold both, beside lines of them bought alone.
const KIT: &str = "HOT-KIT";
const LOCATIONS: &[&str] = &["w1", "w2"];

fn keys() -> Vec<Key> {
    SKUS.iter().flat_map(|s| LOCATIONS.iter().map(move |l| (s.to_string(), l.to_string()))).collect()
}

/// What the clients were told, shared by all of them.
#[derive(Default)]
struct Ledger {
    /// Acknowledged stock writes: (item, version written).
    stock_writes: Vec<(Key, u64)>,
    /// This phase: acknowledged adjustment deltas and confirmed quantities per item.
    adjusted: HashMap<Key, i64>,
    confirmed_units: HashMap<Key, i64>,
    /// Reservations acknowledged as created, and every order's request and reservation.
    created: HashSet<String>,
    orders: HashMap<String, (Vec<CartLine>, i64, Option<String>)>,
    /// `(reservationId, version)` of every hold a PUT answered 200 with.
    put_answers: Vec<(String, u64)>,
    /// PUTs that may have expired a hold on the spot, and PUTs answered 503.
    put_may_expire: u64,
    put_unavailable: u64,
    /// Ids any client may act on.
    pool: Vec<String>,
    /// Acknowledged transitions to a final state.
    finals: HashMap<String, Vec<Status>>,
    /// Confirms/extends refused as expired (each may have expired the hold on the spot).
    refused_expired: u64,
    swept: u64,
    ops: BTreeMap<&'static str, u64>,
    outcomes: BTreeMap<String, u64>,
    unexpected: Vec<String>,
}

impl Ledger {
    fn outcome(&mut self, op: &'static str, outcome: &str) {
        *self.ops.entry(op).or_default() += 1;
        *self.outcomes.entry(format!("{op}: {outcome}")).or_default() += 1;
    }
}

struct Client {
    store: Store,
    t_clock: integration_tests::TestClock,
    ledger: Arc<Mutex<Ledger>>,
    rng: fastrand::Rng,
    name: String,
    my_orders: Vec<String>,
}

impl Client {
    fn random_key(&mut self) -> Key {
        let k = keys();
        k[self.rng.usize(..k.len())].clone()
    }

    fn random_id(&mut self) -> Option<String> {
        let ledger = self.ledger.lock().unwrap();
        (!ledger.pool.is_empty()).then(|| ledger.pool[self.rng.usize(..ledger.pool.len())].clone())
    }

    fn ttl(&mut self) -> i64 {
        if self.rng.bool() {
            self.rng.i64(1..=4)
        } else {
            900
        }
    }

    /// 1-3 random lines: most name their location, some list the allowed ones or none, some split.
    fn random_lines(&mut self) -> Vec<CartLine> {
        (0..self.rng.usize(1..=3))
            .map(|_| {
                let (sku, location_id) = self.random_key();
                let sku = if self.rng.u32(0..5) == 0 { KIT.to_owned() } else { sku };
                let (location_id, locations) = match self.rng.u32(0..6) {
                    0 => (None, None),
                    1 => (None, Some(vec!["w2".to_owned(), "w1".to_owned()])),
                    _ => (Some(location_id), None),
                };
                let split = (location_id.is_none() && self.rng.bool()).then_some(true);
                CartLine { sku, location_id, locations, quantity: self.rng.i64(1..=3), split }
            })
            .collect()
    }

    async fn reserve(&mut self, order_id: String, lines: Vec<CartLine>, ttl: i64, op: &'static str) {
        let known = self.ledger.lock().unwrap().orders.get(&order_id).cloned();
        let cart = Cart::parse(&lines).expect("valid lines");
        let result = self.store.reserve_cart(&order_id, &cart, ttl, &Default::default()).await;
        let mut l = self.ledger.lock().unwrap();
        match result {
            Ok(r) if r.created => {
                l.outcome(op, "created");
                if known.as_ref().is_some_and(|k| k.2.is_some()) {
                    l.unexpected.push(format!("order {order_id} created twice"));
                }
                let id = r.reservation.reservation_id.clone();
                l.created.insert(id.clone());
                l.pool.push(id.clone());
                l.orders.insert(order_id, (lines, ttl, Some(id)));
            }
            Ok(r) => {
                l.outcome(op, "same reservation returned");
                let expected = known.and_then(|k| k.2);
                if expected.as_deref() != Some(r.reservation.reservation_id.as_str()) {
                    l.unexpected.push(format!(
                        "retry of order {order_id} returned {} instead of {expected:?}",
                        r.reservation.reservation_id
                    ));
                }
            }
            Err(
                e @ (Error::InsufficientStock { .. }
                | Error::OrderAlreadyReserved { .. }
                | Error::Unavailable { .. }),
            ) => {
                l.outcome(op, e.code());
                l.orders.entry(order_id).or_insert((lines, ttl, None));
            }
            Err(e) => l.unexpected.push(format!("reserve {order_id}: {e:?}")),
        }
    }

    /// `PUT /v1/orders/{orderId}/reservation`: a new hold, or the order's PENDING one changed.
    async fn put_cart(&mut self, n: usize) {
        let order_id = if self.my_orders.is_empty() || self.rng.u32(0..4) == 0 {
            let id = format!("{}-put-{n}", self.name);
            self.my_orders.push(id.clone());
            id
        } else {
            self.my_orders[self.rng.usize(..self.my_orders.len())].clone()
        };
        let lines = self.random_lines();
        let ttl = self.rng.bool().then(|| self.ttl());
        let known = self.ledger.lock().unwrap().orders.get(&order_id).cloned();
        let cart = Cart::parse(&lines).expect("valid lines");
        let result = self.store.put_order_reservation(&order_id, &cart, ttl, &Default::default()).await;
        let had_hold = known.as_ref().is_some_and(|k| k.2.is_some());
        let mut l = self.ledger.lock().unwrap();
        let ttl = ttl.unwrap_or(900);
        match result {
            Ok(r) if r.created => {
                l.outcome("put cart", "created");
                // Only an order that had a hold may have had it expired on the spot.
                l.put_may_expire += u64::from(had_hold);
                let id = r.reservation.reservation_id.clone();
                l.created.insert(id.clone());
                l.pool.push(id.clone());
                l.orders.insert(order_id, (lines, ttl, Some(id)));
            }
            Ok(r) => {
                l.outcome("put cart", "changed or unchanged");
                let id = r.reservation.reservation_id.clone();
                if known.as_ref().and_then(|k| k.2.as_deref()) != Some(id.as_str()) {
                    l.unexpected
                        .push(format!("PUT of order {order_id} changed {id}, not its latest {known:?}"));
                }
                l.put_answers.push((id.clone(), r.reservation.version));
                l.orders.insert(order_id, (lines, ttl, Some(id)));
            }
            Err(e @ Error::InvalidState { status: Status::Confirmed }) => l.outcome("put cart", e.code()),
            Err(e @ (Error::InsufficientStock { .. } | Error::Unavailable { .. })) => {
                l.outcome("put cart", e.code());
                l.put_may_expire += u64::from(had_hold);
                if matches!(e, Error::Unavailable { .. }) {
                    l.put_unavailable += 1;
                }
            }
            Err(e) => l.unexpected.push(format!("put cart {order_id}: {e:?}")),
        }
    }

    async fn step(&mut self, n: usize) {
        let roll = self.rng.u32(0..100);
        match roll {
            0..=21 => {
                let lines = self.random_lines();
                let order_id = format!("{}-{n}", self.name);
                let ttl = self.ttl();
                self.my_orders.push(order_id.clone());
                self.reserve(order_id, lines, ttl, "reserve").await;
            }
            22..=29 => self.put_cart(n).await,
            30..=36 if !self.my_orders.is_empty() => {
                // The same request again (a client retry), or rarely other lines for the order.
                let order_id = self.my_orders[self.rng.usize(..self.my_orders.len())].clone();
                // Looked up first: the ledger's guard must be gone before the `else` locks it again.
                let known = self.ledger.lock().unwrap().orders.get(&order_id).cloned();
                let Some((mut lines, ttl, _)) = known else {
                    self.ledger.lock().unwrap().outcome("retried reserve", "order unknown");
                    return;
                };
                if self.rng.u32(0..5) == 0 {
                    lines[0].quantity += 1;
                    self.reserve(order_id, lines, ttl, "reserve with other lines").await;
                } else {
                    self.reserve(order_id, lines, ttl, "retried reserve").await;
                }
            }
            37..=51 => self.transition("confirm").await,
            52..=65 => self.transition("release").await,
            66..=72 => self.transition("extend").await,
            73..=77 => self.transition("expire").await,
            78..=91 => {
                let key = self.random_key();
                let delta = [-4, -3, -2, -1, 1, 2, 3, 5, 8][self.rng.usize(..9)];
                let result = self
                    .store
                    .write_stock(
                        &key.0,
                        &key.1,
                        StockChange::Adjust { delta },
                        None,
                        None,
                        &Default::default(),
                    )
                    .await;
                let mut l = self.ledger.lock().unwrap();
                match result {
                    Ok(w) => {
                        l.outcome("adjust", "applied");
                        l.stock_writes.push((key.clone(), w.item.version));
                        *l.adjusted.entry(key).or_default() += delta;
                    }
                    Err(e @ (Error::StockBelowReserved { .. } | Error::Unavailable { .. })) => {
                        l.outcome("adjust", e.code())
                    }
                    Err(e) => l.unexpected.push(format!("adjust {key:?} by {delta}: {e:?}")),
                }
            }
            92..=95 => {
                let report = ExpirySweep::default().run(&self.store, Duration::from_secs(10)).await;
                let mut l = self.ledger.lock().unwrap();
                l.outcome("sweep", if report.expired > 0 { "expired some" } else { "nothing due" });
                l.swept += report.expired;
                if report.failed > 0 {
                    l.unexpected.push(format!("sweep failed: {report:?}"));
                }
            }
            _ => {
                self.t_clock.advance(Duration::from_millis(self.rng.u64(300..=2_000)));
                self.ledger.lock().unwrap().outcome("clock tick", "advanced");
            }
        }
    }

    async fn transition(&mut self, op: &'static str) {
        let Some(id) = self.random_id() else {
            self.ledger.lock().unwrap().outcome(op, "no reservation yet");
            return;
        };
        let result = match op {
            "confirm" => self.store.confirm(&id, &Default::default()).await,
            "release" => self.store.release(&id, &Default::default()).await,
            "extend" => {
                let ttl = self.ttl();
                self.store.extend(&id, ttl, &Default::default()).await
            }
            _ => self.store.expire(&id, &Default::default()).await,
        };
        let mut l = self.ledger.lock().unwrap();
        match result {
            Ok(t) if t.applied => {
                l.outcome(op, "applied");
                if op != "extend" {
                    l.finals.entry(id).or_default().push(t.reservation.status);
                }
                if op == "confirm" {
                    for line in t.reservation.stock_lines() {
                        *l.confirmed_units
                            .entry((line.sku.clone(), line.location_id.clone()))
                            .or_default() += line.quantity;
                    }
                }
            }
            Ok(_) => l.outcome(op, "unchanged"),
            Err(e @ Error::ReservationExpired { .. }) => {
                l.outcome(op, e.code());
                l.refused_expired += 1;
            }
            Err(e @ (Error::InvalidState { .. } | Error::Unavailable { .. })) => l.outcome(op, e.code()),
            Err(e) => l.unexpected.push(format!("{op} {id}: {e:?}")),
        }
    }
}

/// Model checks of a quiet table against what the clients were told.
fn model_violations(s: &Snapshot, l: &Ledger, base: &HashMap<Key, i64>) -> Vec<String> {
    let mut v = Vec::new();
    for key in keys() {
        let Some(stock) = s.stock.get(&key) else {
            v.push(format!("{key:?} missing"));
            continue;
        };
        let expected =
            base[&key] + l.adjusted.get(&key).unwrap_or(&0) - l.confirmed_units.get(&key).unwrap_or(&0);
        if stock.on_hand != expected {
            v.push(format!("{key:?}: onHand {} but the model says {expected}", stock.on_hand));
        }
    }
    let adjusted: HashMap<(String, String, u64), usize> =
        s.of_type("StockAdjusted").fold(HashMap::new(), |mut m, r| {
            let d = r.data();
            let k = (
                d["sku"].as_str().unwrap_or("").to_owned(),
                d["locationId"].as_str().unwrap_or("").to_owned(),
            );
            *m.entry((k.0, k.1, d["version"].as_u64().unwrap_or(0))).or_default() += 1;
            m
        });
    for ((sku, location), version) in &l.stock_writes {
        let n = adjusted.get(&(sku.clone(), location.clone(), *version)).copied().unwrap_or(0);
        if n != 1 {
            v.push(format!("acknowledged stock write {sku}/{location} v{version} has {n} outbox records"));
        }
    }
    if adjusted.values().sum::<usize>() != l.stock_writes.len() {
        v.push(format!(
            "{} StockAdjusted records for {} acknowledged writes",
            adjusted.len(),
            l.stock_writes.len()
        ));
    }
    let created = s.of_type("ReservationCreated").count();
    if created != l.created.len() || l.created.iter().any(|id| !s.reservations.contains_key(id)) {
        v.push(format!("{created} ReservationCreated records for {} acknowledged reserves", l.created.len()));
    }
    let count = |status: Status| l.finals.values().filter(|f| f.contains(&status)).count();
    for (id, finals) in &l.finals {
        let now = s.reservations.get(id).map(|r| r.status);
        if finals.len() != 1 || now != Some(finals[0]) {
            v.push(format!("reservation {id}: acknowledged final states {finals:?}, now {now:?}"));
        }
    }
    for (detail_type, status) in
        [("ReservationConfirmed", Status::Confirmed), ("ReservationReleased", Status::Released)]
    {
        let records = s.of_type(detail_type).count();
        if records != count(status) {
            v.push(format!("{records} {detail_type} records for {} acknowledged", count(status)));
        }
    }
    // Every hold a PUT answered 200 with was written by exactly one record (made, changed or
    // extended to that version), and every change was answered.
    let mut versions: HashMap<(String, u64), usize> = HashMap::new();
    for r in s.records.iter().filter(|r| {
        ["ReservationCreated", "ReservationModified", "ReservationExtended"].contains(&r.detail_type.as_str())
    }) {
        let d = r.data();
        let key =
            (d["reservationId"].as_str().unwrap_or_default().to_owned(), d["version"].as_u64().unwrap_or(0));
        *versions.entry(key).or_default() += 1;
    }
    for (id, version) in &l.put_answers {
        let n = versions.get(&(id.clone(), *version)).copied().unwrap_or(0);
        if n != 1 {
            v.push(format!("PUT answered {id} v{version}, which {n} records wrote"));
        }
    }
    let modified = s.of_type("ReservationModified").count();
    if modified as u64 > l.put_answers.len() as u64 + l.put_unavailable {
        v.push(format!(
            "{modified} ReservationModified records for {} PUTs answered 200",
            l.put_answers.len()
        ));
    }
    let expired = s.of_type("ReservationExpired").count() as u64;
    let (low, high) = (
        count(Status::Expired) as u64 + l.swept,
        count(Status::Expired) as u64 + l.swept + l.refused_expired + l.put_may_expire,
    );
    if !(low..=high).contains(&expired) {
        v.push(format!("{expired} ReservationExpired records; acknowledged + swept = {low}, + refused as expired = {high}"));
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_concurrent_operations_keep_every_invariant() {
    let seed = seed("reliability_model");
    let (clients, ops, phases) = (
        env_usize("RELIABILITY_CLIENTS", 8),
        env_usize("RELIABILITY_OPS", 30),
        env_usize("RELIABILITY_PHASES", 3),
    );
    let t = TestTable::new().await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let mut violations: Vec<String> = Vec::new();
    let mut checkpoints = 0;
    let mut sharded = 0;
    let mut most_shards = 0;
    let components =
        [("HOT-A", 1), ("HOT-C", 2)].map(|(sku, quantity)| Component { sku: sku.into(), quantity });
    t.function("put-kit").put_kit(KIT, &components, None, &Default::default()).await.expect("the kit");
    let mut snapshot = Snapshot::take(&t).await;
    for phase in 0..phases {
        // Quiet: put new on-hand counts (never below what is reserved) and start the phase's model.
        let mut base = HashMap::new();
        for key in keys() {
            let reserved = snapshot.stock.get(&key).map_or(0, |s| s.reserved);
            let on_hand = reserved + rng.i64(0..=30);
            // Sharded items mixed in: HOT-A and HOT-B get 1, 2, 4, 16 or 64 shards anew each
            // phase (so holds outlive a change of shards), HOT-A the most the store takes
            // (`MAX_SHARDS`) in the first; HOT-C stays one item.
            let shards = match key.0.as_str() {
                "HOT-C" => 1,
                "HOT-A" if phase == 0 => inventory::domain::MAX_SHARDS,
                _ => [1, 2, 4, 16, 64][rng.usize(..5)],
            };
            sharded += usize::from(shards > 1);
            most_shards = most_shards.max(shards);
            let change = StockChange::Put { on_hand, low_stock_threshold: None, shards: Some(shards) };
            let w = t
                .function("put-stock")
                .write_stock(&key.0, &key.1, change, None, None, &Default::default())
                .await;
            let w = w.expect("put stock");
            base.insert(key.clone(), on_hand);
            let mut l = ledger.lock().unwrap();
            l.stock_writes.push((key, w.item.version));
            l.outcome("put", "applied");
        }
        {
            let mut l = ledger.lock().unwrap();
            l.adjusted.clear();
            l.confirmed_units.clear();
        }
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let mut client = Client {
                    store: t.store.clone(),
                    t_clock: t.clock.clone(),
                    ledger: ledger.clone(),
                    rng: fastrand::Rng::with_seed(seed ^ ((phase as u64) << 32) ^ (c as u64 + 1)),
                    name: format!("s{seed}-p{phase}-c{c}"),
                    my_orders: Vec::new(),
                };
                tokio::spawn(async move {
                    for n in 0..ops {
                        client.step(n).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("client");
        }
        snapshot = Snapshot::take(&t).await;
        checkpoints += 1;
        let l = ledger.lock().unwrap();
        for line in snapshot.violations().into_iter().chain(model_violations(&snapshot, &l, &base)) {
            violations.push(format!("phase {phase}: {line}"));
        }
        violations.extend(l.unexpected.iter().map(|u| format!("phase {phase}: unexpected: {u}")));
        if !violations.is_empty() {
            break;
        }
    }
    let l = ledger.lock().unwrap();
    let operations: u64 = l.ops.values().sum();
    let with_kits =
        snapshot.reservations.values().filter(|r| r.lines.iter().any(|line| line.is_kit())).count();
    let figures = json!({
        "seed": seed,
        "clients": clients,
        "opsPerClientPerPhase": ops,
        "phases": phases,
        "operations": operations,
        "byOperation": l.ops,
        "outcomes": l.outcomes,
        "reservations": snapshot.reservations.len(),
        "outboxRecords": snapshot.records.len(),
        "modifiedRecords": snapshot.of_type("ReservationModified").count(),
        "checkpoints": checkpoints,
        "shardedItemPhases": sharded,
        "mostShards": most_shards,
        "reservationsWithKitLines": with_kits,
        "violations": violations.len(),
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    eprintln!("reliability_model: {figures}");
    integration_tests::figures::write("model", &figures);
    assert!(
        violations.is_empty(),
        "seed {seed}: {} violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
    assert!(operations >= (clients * ops * phases) as u64, "every client step counted");
    assert!(!l.finals.is_empty() && !l.created.is_empty(), "the mix exercised reserves and transitions");
    assert!(!l.put_answers.is_empty(), "the mix changed holds in place");
    assert!(sharded > 0, "sharded items were mixed in");
    assert!(with_kits > 0, "kit lines were mixed in");
}
