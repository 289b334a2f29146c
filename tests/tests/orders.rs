//! Holds that follow the cart (docs/api.md, PUT /v1/orders/{orderId}/reservation and lines that let the
//! service pick the location), against DynamoDB Local: changes in place, races with the other
//! writers of a hold, re-reservation after a final state, the order's history, and allocation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use integration_tests::invariants::Snapshot;
use integration_tests::{set_stock, sweeper, TestTable};
use inventory::domain::{Cart, CartLine, Line, Reservation, Status};
use inventory::store::Reserved;
use inventory::{Error, Store};
use serde_json::{json, Value};

fn cart(lines: Value) -> Cart {
    let lines: Vec<CartLine> = serde_json::from_value(lines).expect("cart lines");
    Cart::parse(&lines).expect("valid cart")
}

fn line(sku: &str, location_id: &str, quantity: i64) -> Line {
    Line::new(sku.into(), location_id.into(), quantity)
}

/// `(onHand, reserved, available)` of an item.
async fn numbers(store: &Store, sku: &str, location_id: &str) -> (i64, i64, i64) {
    let s = store.get_stock(sku, location_id).await.expect("stock item");
    (s.on_hand, s.reserved, s.available)
}

async fn put(store: &Store, order: &str, lines: Value, ttl: Option<i64>) -> Result<Reserved, Error> {
    store
        .put_order_reservation(
            order,
            &cart(lines),
            ttl,
            &inventory::store::WriteContext::correlated("test-corr"),
        )
        .await
}

async fn reserve(store: &Store, order: &str, lines: Value) -> Result<Reserved, Error> {
    store.reserve_cart(order, &cart(lines), 900, &Default::default()).await
}

fn assert_invariants(snapshot: &Snapshot) {
    let violations = snapshot.violations();
    assert!(violations.is_empty(), "invariants: {violations:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_hold_grows_shrinks_changes_shape_and_shortens_in_one_put() {
    let t = TestTable::new().await;
    for sku in ["A", "B", "C", "D"] {
        set_stock(&t.store, sku, "w1", 10).await;
    }
    let first = put(
        &t.store,
        "o-1",
        json!([{"sku": "A", "locationId": "w1", "quantity": 3}, {"sku": "B", "locationId": "w1", "quantity": 2},
               {"sku": "C", "locationId": "w1", "quantity": 1}]),
        Some(900),
    )
    .await
    .unwrap();
    assert!(first.created, "an order without a reservation gets a new one");
    let before = first.reservation;

    // A grows by 2, B shrinks by 1, C is dropped, D is added; the hold now lasts 60 s.
    let changed = put(
        &t.store,
        "o-1",
        json!([{"sku": "A", "locationId": "w1", "quantity": 5}, {"sku": "B", "locationId": "w1", "quantity": 1},
               {"sku": "D", "locationId": "w1", "quantity": 4}]),
        Some(60),
    )
    .await
    .unwrap();
    let after = changed.reservation;
    assert!(!changed.created);
    assert_eq!(after.reservation_id, before.reservation_id);
    assert_eq!((after.version, after.status), (before.version + 1, Status::Pending));
    assert_eq!(after.lines, [line("A", "w1", 5), line("B", "w1", 1), line("D", "w1", 4)]);
    assert_eq!(after.expires_at, after.updated_at + chrono::Duration::seconds(60));
    assert!(after.expires_at < before.expires_at, "shortened");
    assert_eq!(numbers(&t.store, "A", "w1").await, (10, 5, 5));
    assert_eq!(numbers(&t.store, "B", "w1").await, (10, 1, 9));
    assert_eq!(numbers(&t.store, "C", "w1").await, (10, 0, 10));
    assert_eq!(numbers(&t.store, "D", "w1").await, (10, 4, 6));
    let snapshot = Snapshot::take(&t).await;
    assert_invariants(&snapshot);
    let modified: Vec<_> = snapshot.of_type("ReservationModified").collect();
    assert_eq!(modified.len(), 1, "one ReservationModified record");
    assert_eq!(modified[0].data()["reservationId"], json!(after.reservation_id));
    assert_eq!(modified[0].data()["version"], json!(after.version));
    assert_eq!(modified[0].data()["previousLines"], serde_json::to_value(&before.lines).unwrap());
    assert_eq!(modified[0].detail["correlationId"], json!("test-corr"));
    let records = snapshot.records.len();

    // A growth that cannot be met changes nothing: A has 5 free and 5 held, so 11 is short by 1.
    let short = put(&t.store, "o-1", json!([{"sku": "A", "locationId": "w1", "quantity": 11}]), None).await;
    let Err(Error::InsufficientStock { lines }) = short else { panic!("{short:?}") };
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0].sku.as_str(), lines[0].location_id.as_deref(), lines[0].requested, lines[0].available),
        ("A", Some("w1"), 11, 10)
    );
    // So does a line on an item that does not exist (404), and the same lines again.
    let missing = put(&t.store, "o-1", json!([{"sku": "Z", "locationId": "w1", "quantity": 1}]), None).await;
    assert_eq!(missing.unwrap_err().code(), "NOT_FOUND");
    let same = put(
        &t.store,
        "o-1",
        json!([{"sku": "D", "locationId": "w1", "quantity": 4}, {"sku": "A", "locationId": "w1", "quantity": 5},
               {"sku": "B", "locationId": "w1", "quantity": 1}]),
        None,
    )
    .await
    .unwrap();
    assert_eq!((same.created, &same.reservation), (false, &after), "the same lines: nothing written");
    let snapshot = Snapshot::take(&t).await;
    assert_eq!(snapshot.records.len(), records, "no record written by a refused or unchanged PUT");
    assert_eq!(t.store.get_reservation(&after.reservation_id).await.unwrap(), after);
    assert_eq!(numbers(&t.store, "A", "w1").await, (10, 5, 5));
    assert_invariants(&snapshot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_carts_for_one_order_leave_exactly_one_of_them_held() {
    let t = TestTable::new().await;
    let skus = ["K1", "K2", "K3", "K4"];
    for sku in skus {
        set_stock(&t.store, sku, "w1", 100).await;
    }
    let carts: Vec<Value> = (0..50)
        .map(|i: usize| {
            json!([{"sku": skus[i % 4], "locationId": "w1", "quantity": i % 7 + 1},
                   {"sku": skus[(i + 1) % 4], "locationId": "w1", "quantity": i % 3 + 1}])
        })
        .collect();
    let store = Arc::new(t.store.clone());
    let tasks = carts.iter().cloned().map(|c| {
        let store = store.clone();
        tokio::spawn(async move { put(&store, "hot-order", c, None).await })
    });
    let results: Vec<_> = join_all(tasks).await.into_iter().map(|r| r.expect("task")).collect();
    let answered: Vec<&Reservation> =
        results.iter().filter_map(|r| r.as_ref().ok()).map(|r| &r.reservation).collect();
    for r in &results {
        assert!(matches!(r, Ok(_) | Err(Error::Unavailable { .. })), "{r:?}");
    }
    assert!(answered.len() >= 45, "{} of 50 answered", answered.len());
    assert_eq!(results.iter().filter(|r| r.as_ref().is_ok_and(|r| r.created)).count(), 1, "one creates");

    let history = t.store.list_order_reservations("hot-order", 100, None).await.unwrap().items;
    assert_eq!(history.len(), 1, "one reservation for the order");
    let held = &history[0];
    let carts: Vec<Vec<Line>> = carts.iter().map(|c| cart(c.clone()).fixed().unwrap()).collect();
    assert!(carts.contains(&held.lines), "the hold is one of the carts: {:?}", held.lines);
    assert!(
        answered.iter().any(|r| r.lines == held.lines && r.version == held.version),
        "and an answered one"
    );
    for sku in skus {
        let want: i64 = held.lines.iter().filter(|l| l.sku == sku).map(|l| l.quantity).sum();
        assert_eq!(numbers(&t.store, sku, "w1").await, (100, want, 100 - want), "{sku}");
    }
    let snapshot = Snapshot::take(&t).await;
    assert_invariants(&snapshot);
    // Every change that answered 200 with a new version wrote one record, and no other did.
    let versions: std::collections::BTreeSet<u64> = answered.iter().map(|r| r.version).collect();
    assert_eq!(snapshot.of_type("ReservationModified").count() as u64, held.version - 1);
    assert_eq!(versions.last().copied(), Some(held.version));
    assert_eq!(versions.len(), answered.len(), "no two answers claim one version");
}

/// What raced a change of a hold.
#[derive(Debug, Clone, Copy)]
enum Rival {
    Confirm,
    Release,
    Expire,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_racing_confirm_release_or_expiry_is_applied_in_one_order_or_not_at_all() {
    let t = TestTable::new().await;
    // The sweep sees the hold due; the API side still sees it live.
    let sweep = sweeper(&t, Duration::from_secs(3600));
    let mut tally: BTreeMap<String, u32> = BTreeMap::new();
    for rival in [Rival::Confirm, Rival::Release, Rival::Expire] {
        for round in 0..50 {
            let sku = format!("R-{rival:?}-{round}");
            let order = format!("race-{rival:?}-{round}");
            set_stock(&t.store, &sku, "w1", 10).await;
            let hold = put(&t.store, &order, json!([{"sku": sku, "locationId": "w1", "quantity": 2}]), None)
                .await
                .unwrap()
                .reservation;
            let change =
                put(&t.store, &order, json!([{"sku": sku, "locationId": "w1", "quantity": 5}]), None);
            let other = async {
                match rival {
                    Rival::Confirm => {
                        t.function("confirm").confirm(&hold.reservation_id, &Default::default()).await
                    }
                    Rival::Release => {
                        t.function("release").release(&hold.reservation_id, &Default::default()).await
                    }
                    Rival::Expire => sweep.expire(&hold.reservation_id, &Default::default()).await,
                }
            };
            // Rounds 0 and 1 take each order for sure; the others race.
            let (changed, other) = match round {
                0 => {
                    let changed = change.await;
                    (changed, other.await)
                }
                1 => {
                    let other = other.await;
                    (change.await, other)
                }
                _ => tokio::join!(change, other),
            };
            let other = other.expect("the rival always applies to a live hold");
            assert!(other.applied, "{rival:?} round {round}: {other:?}");
            let first = t.store.get_reservation(&hold.reservation_id).await.unwrap();
            let stock = numbers(&t.store, &sku, "w1").await;
            // Either the change came first (the rival then acted on the changed hold) or the rival
            // did (the change then met a final hold: a new reservation, or INVALID_STATE).
            let change_first = match &changed {
                Ok(r) if !r.created => {
                    assert_eq!(r.reservation.reservation_id, hold.reservation_id);
                    assert_eq!(first.lines, [line(&sku, "w1", 5)], "the rival acted on the changed hold");
                    assert_eq!(other.reservation.version, 3);
                    true
                }
                Ok(r) => {
                    assert!(matches!(rival, Rival::Release | Rival::Expire), "{rival:?}: {r:?}");
                    assert_ne!(r.reservation.reservation_id, hold.reservation_id);
                    assert_eq!(first.lines, [line(&sku, "w1", 2)]);
                    false
                }
                Err(Error::InvalidState { status: Status::Confirmed }) => {
                    assert!(matches!(rival, Rival::Confirm));
                    assert_eq!(first.lines, [line(&sku, "w1", 2)]);
                    false
                }
                Err(e) => panic!("{rival:?} round {round}: the change answered {e:?}"),
            };
            let expected = match (rival, change_first) {
                (Rival::Confirm, true) => (5, 0, 5),
                (Rival::Confirm, false) => (8, 0, 8),
                (_, true) => (10, 0, 10),
                (_, false) => (10, 5, 5),
            };
            assert_eq!(stock, expected, "{rival:?} round {round}, change first: {change_first}");
            *tally
                .entry(format!("{rival:?} {}", if change_first { "after the change" } else { "first" }))
                .or_default() += 1;
        }
    }
    eprintln!("modify races: {tally:?}");
    assert_eq!(tally.len(), 6, "each rival came both first and after the change: {tally:?}");
    assert_invariants(&Snapshot::take(&t).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_release_or_expiry_a_put_makes_a_new_reservation_and_the_history_lists_them_all() {
    let t = TestTable::new().await;
    set_stock(&t.store, "H", "w1", 10).await;
    let a = json!([{"sku": "H", "locationId": "w1", "quantity": 2}]);
    let first =
        t.store.reserve_cart("o-h", &cart(a.clone()), 900, &Default::default()).await.unwrap().reservation;
    t.function("release").release(&first.reservation_id, &Default::default()).await.unwrap();

    // Re-checkout after a failed payment: a new hold, not the released one.
    let second =
        put(&t.store, "o-h", json!([{"sku": "H", "locationId": "w1", "quantity": 3}]), Some(30)).await;
    let second = second.unwrap();
    assert!(second.created);
    let second = second.reservation;
    assert_ne!(second.reservation_id, first.reservation_id);
    assert_eq!(t.store.get_order_reservation("o-h").await.unwrap(), second, "the latest");
    // POST compares with the latest: the first request is now another one, the PUT's the same.
    let again = t.store.reserve_cart("o-h", &cart(a), 900, &Default::default()).await;
    assert_eq!(again.unwrap_err().code(), "ORDER_ALREADY_RESERVED");
    let same =
        reserve(&t.store, "o-h", json!([{"sku": "H", "locationId": "w1", "quantity": 3}])).await.unwrap();
    assert_eq!((same.created, &same.reservation), (false, &second));

    // Past its expiresAt and not swept yet: expired on the spot, then a new reservation.
    t.clock.advance(Duration::from_secs(31));
    let third = put(&t.store, "o-h", json!([{"sku": "H", "quantity": 1}]), None).await.unwrap();
    assert!(third.created);
    let third = third.reservation;
    let history = t.store.list_order_reservations("o-h", 100, None).await.unwrap().items;
    let ids: Vec<_> = history.iter().map(|r| (r.reservation_id.as_str(), r.status)).collect();
    assert_eq!(
        ids,
        [
            (third.reservation_id.as_str(), Status::Pending),
            (second.reservation_id.as_str(), Status::Expired),
            (first.reservation_id.as_str(), Status::Released),
        ],
        "newest first"
    );
    assert_eq!(numbers(&t.store, "H", "w1").await, (10, 1, 9));

    // A confirmed order cannot be changed.
    t.function("confirm").confirm(&third.reservation_id, &Default::default()).await.unwrap();
    let late = put(&t.store, "o-h", json!([{"sku": "H", "locationId": "w1", "quantity": 1}]), None).await;
    assert!(matches!(late, Err(Error::InvalidState { status: Status::Confirmed })), "{late:?}");
    assert_eq!(t.store.list_order_reservations("nobody", 20, None).await.unwrap_err().code(), "NOT_FOUND");
    let snapshot = Snapshot::take(&t).await;
    assert_invariants(&snapshot);
    assert_eq!(snapshot.of_type("ReservationCreated").count(), 3);
    assert_eq!(snapshot.of_type("ReservationExpired").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_buyers_over_three_allowed_locations_get_exactly_the_fifty_units() {
    let t = TestTable::new().await;
    let locations = ["w1", "w2", "w3"];
    for (location, units) in locations.iter().zip([20, 20, 10]) {
        set_stock(&t.store, "FLASH", location, units).await;
    }
    let store = Arc::new(t.store.clone());
    let buyers = (0..200).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            // Each buyer prefers the locations in its own order.
            let mut preference = ["w1", "w2", "w3"];
            preference.rotate_left(i % 3);
            let c = cart(json!([{"sku": "FLASH", "locations": preference, "quantity": 1}]));
            let result = store.reserve_cart(&format!("buyer-{i}"), &c, 900, &Default::default()).await;
            // What the allowed locations had right after a rejection.
            let after = match &result {
                Err(_) => Some(store.get_sku_stock("FLASH").await.expect("read").total_available),
                Ok(_) => None,
            };
            (result, after)
        })
    });
    let results: Vec<_> = join_all(buyers).await.into_iter().map(|r| r.expect("task")).collect();
    let mut won: BTreeMap<String, i64> = BTreeMap::new();
    for (result, available_after) in &results {
        match result {
            Ok(r) => {
                assert_eq!(r.reservation.lines.len(), 1);
                *won.entry(r.reservation.lines[0].location_id.clone()).or_default() +=
                    r.reservation.lines[0].quantity;
            }
            Err(Error::InsufficientStock { lines }) => {
                assert_eq!(available_after, &Some(0), "rejected while an allowed location had a unit");
                assert_eq!(
                    (lines[0].location_id.as_deref(), lines[0].requested, lines[0].available),
                    (None, 1, 0)
                );
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(won.values().sum::<i64>(), 50, "exactly 50 succeed: {won:?}");
    for (location, units) in locations.iter().zip([20, 20, 10]) {
        assert_eq!(won.get(*location).copied(), Some(units), "{location}");
        assert_eq!(numbers(&t.store, "FLASH", location).await, (units, units, 0));
    }
    assert_invariants(&Snapshot::take(&t).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_covers_a_line_from_two_locations_in_preference_order_and_without_it_the_best_one_is_reported()
{
    let t = TestTable::new().await;
    set_stock(&t.store, "S", "w1", 3).await;
    set_stock(&t.store, "S", "w2", 4).await;
    set_stock(&t.store, "S", "w3", 9).await;
    let whole = cart(json!([{"sku": "S", "locations": ["w2", "w1"], "quantity": 6}]));
    let refused = t.store.reserve_cart("o-whole", &whole, 900, &Default::default()).await;
    let Err(Error::InsufficientStock { lines }) = refused else { panic!("{refused:?}") };
    assert_eq!((lines[0].location_id.as_deref(), lines[0].requested, lines[0].available), (None, 6, 4));

    let split = cart(json!([{"sku": "S", "locations": ["w2", "w1"], "quantity": 6, "split": true}]));
    let r = t.store.reserve_cart("o-split", &split, 900, &Default::default()).await.unwrap();
    assert_eq!(r.reservation.lines, [line("S", "w1", 2), line("S", "w2", 4)], "w2 first, then w1");
    assert_eq!(numbers(&t.store, "S", "w2").await, (4, 4, 0));
    assert_eq!(numbers(&t.store, "S", "w1").await, (3, 2, 1));
    // The same body again is a safe retry, whatever was resolved; without a list, most available.
    let again = t.store.reserve_cart("o-split", &split, 900, &Default::default()).await.unwrap();
    assert_eq!((again.created, again.reservation), (false, r.reservation));
    let anywhere = reserve(&t.store, "o-any", json!([{"sku": "S", "quantity": 2}])).await;
    assert_eq!(anywhere.unwrap().reservation.lines, [line("S", "w3", 2)]);
    let short = reserve(&t.store, "o-short", json!([{"sku": "S", "quantity": 9, "split": true}])).await;
    let Err(Error::InsufficientStock { lines }) = short else { panic!("{short:?}") };
    assert_eq!((lines[0].requested, lines[0].available), (9, 8), "with split: the sum of the allowed");
    let unknown = reserve(&t.store, "o-unknown", json!([{"sku": "NOPE", "quantity": 1}])).await;
    assert_eq!(unknown.unwrap_err().code(), "NOT_FOUND");
    assert_invariants(&Snapshot::take(&t).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_cart_again_is_a_safe_retry_and_a_new_ttl_alone_is_an_extension() {
    let t = TestTable::new().await;
    set_stock(&t.store, "P", "w1", 1).await;
    set_stock(&t.store, "P", "w2", 5).await;
    let lines = json!([{"sku": "P", "locations": ["w1", "w2"], "quantity": 2}]);
    let first = put(&t.store, "o-p", lines.clone(), None).await.unwrap().reservation;
    assert_eq!(first.lines, [line("P", "w2", 2)], "w1 cannot cover 2");
    // w1 is restocked: the same request again must not move the hold.
    set_stock(&t.store, "P", "w1", 10).await;
    let again = put(&t.store, "o-p", lines.clone(), None).await.unwrap();
    assert_eq!((again.created, &again.reservation), (false, &first));
    let posted = t.store.reserve_cart("o-p", &cart(lines.clone()), 900, &Default::default()).await.unwrap();
    assert_eq!((posted.created, &posted.reservation), (false, &first), "a POST of the same body too");
    // The same lines with a ttl: expiresAt moves, and that is a ReservationExtended.
    let extended = put(&t.store, "o-p", lines, Some(3600)).await.unwrap().reservation;
    assert_eq!((extended.version, &extended.lines), (first.version + 1, &first.lines));
    assert_eq!(extended.expires_at, extended.updated_at + chrono::Duration::seconds(3600));
    let snapshot = Snapshot::take(&t).await;
    assert_eq!(snapshot.of_type("ReservationModified").count(), 0);
    let ext: Vec<_> = snapshot.of_type("ReservationExtended").collect();
    assert_eq!(ext.len(), 1);
    assert_eq!(ext[0].data(), &serde_json::to_value(&extended).unwrap());
    assert_invariants(&snapshot);
}
