//! Reservations and their state machine: PENDING -> CONFIRMED | RELEASED | EXPIRED; nothing leaves
//! a final state. `decide` says what a request does to a reservation, `Reservation::after` is the
//! reservation once a transition is written, and `stock_deltas` what it does to stock.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::kits::stock_lines;
use super::shards::{units_of, ShardHold, Units};
use super::validate::Line;
use crate::error::Error;
use crate::events::DetailType;
use crate::status::Status;
use crate::timestamp::{self, truncate_to_millis};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub reservation_id: String,
    pub order_id: String,
    pub status: Status,
    pub lines: Vec<Line>,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub expires_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
    pub version: u64,
    /// Where the units of lines on sharded items are held (absent: every unit on shard 0, the
    /// item itself); see `domain::shards`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_holds: Vec<ShardHold>,
    /// The sales channel it was made (or last changed) through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
}

impl Reservation {
    /// A new PENDING reservation of already merged lines.
    pub fn new(order_id: String, lines: Vec<Line>, ttl_seconds: i64, now: DateTime<Utc>) -> Self {
        let now = truncate_to_millis(now);
        Reservation {
            reservation_id: uuid::Uuid::new_v4().to_string(),
            order_id,
            status: Status::Pending,
            lines,
            created_at: now,
            expires_at: now + Duration::seconds(ttl_seconds),
            updated_at: now,
            version: 1,
            shard_holds: Vec::new(),
            channel_id: None,
        }
    }

    /// The units this reservation holds, per `(sku, locationId, shard)` (a kit line's are its
    /// components').
    pub fn units(&self) -> Units {
        units_of(&self.stock_lines(), &self.shard_holds)
    }

    /// The stock its lines hold: one line per stock item, kits as their components.
    pub fn stock_lines(&self) -> Vec<Line> {
        stock_lines(&self.lines)
    }

    pub fn is_past_due(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }

    /// The reservation once `transition` is written at `now`: its target status, the next
    /// version, and for an extension (with `ttl_seconds`) the new expiresAt.
    pub fn after(&self, transition: Transition, ttl_seconds: Option<i64>, now: DateTime<Utc>) -> Reservation {
        let mut next = self.clone();
        next.status = transition.target();
        next.version += 1;
        next.updated_at = now;
        if let (Transition::Extend, Some(ttl)) = (transition, ttl_seconds) {
            next.expires_at = now + Duration::seconds(ttl);
        }
        next
    }

    /// The PENDING reservation once its lines are replaced by `lines` at `now` (docs/api.md, PUT
    /// /v1/orders/{orderId}/reservation): same id, next version, expiresAt = now + ttl when given.
    pub fn modified(&self, lines: Vec<Line>, ttl_seconds: Option<i64>, now: DateTime<Utc>) -> Reservation {
        let mut next = self.clone();
        next.lines = lines;
        next.version += 1;
        next.updated_at = now;
        if let Some(ttl) = ttl_seconds {
            next.expires_at = now + Duration::seconds(ttl);
        }
        next
    }
}

/// The longest a hold may live unless configured otherwise (docs/api.md: `MAX_HOLD_SECONDS`).
pub const DEFAULT_MAX_HOLD_SECONDS: i64 = 86_400;

/// A hold created at `created_at` may not be kept past `created_at + max_hold`: a write that
/// would set its expiresAt later is refused (HOLD_LIFETIME_EXCEEDED, with the latest allowed).
pub fn check_hold_lifetime(
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    max_hold: Duration,
) -> Result<(), Error> {
    let max_expires_at = created_at + max_hold;
    if expires_at > max_expires_at {
        return Err(Error::HoldLifetimeExceeded { max_expires_at });
    }
    Ok(())
}

/// How many more units (or, negative, fewer) each `(sku, locationId)` holds when a hold's lines
/// go from `old` to `new` (kit lines as their components); items whose quantity does not change
/// are absent.
pub fn line_changes(old: &[Line], new: &[Line]) -> BTreeMap<(String, String), i64> {
    let mut changes: BTreeMap<(String, String), i64> = BTreeMap::new();
    let (old, new) = (stock_lines(old), stock_lines(new));
    for (line, sign) in old.iter().map(|l| (l, -1)).chain(new.iter().map(|l| (l, 1))) {
        *changes.entry((line.sku.clone(), line.location_id.clone())).or_default() += sign * line.quantity;
    }
    changes.retain(|_, change| *change != 0);
    changes
}

/// A state transition a caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Confirm,
    Release,
    Extend,
    /// The expiry sweep.
    Expire,
}

/// What to do with a reservation given its current state, the request and the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write this transition (from PENDING).
    Apply(Transition),
    /// The request is already satisfied (a retried confirm or release): return the reservation.
    Unchanged,
    /// The hold is past its expiresAt: expire it on the spot, then fail with this error.
    ExpireThenFail(Error),
    /// Refuse without writing anything.
    Refuse(Error),
}

/// A write that moves a reservation's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Confirm,
    Release,
    Expire,
    /// Stay PENDING with a new expiresAt.
    Extend,
}

impl Transition {
    /// The status after the transition.
    pub fn target(self) -> Status {
        match self {
            Transition::Confirm => Status::Confirmed,
            Transition::Release => Status::Released,
            Transition::Expire => Status::Expired,
            Transition::Extend => Status::Pending,
        }
    }

    /// The event the transition writes.
    pub fn event(self) -> DetailType {
        match self {
            Transition::Confirm => DetailType::ReservationConfirmed,
            Transition::Release => DetailType::ReservationReleased,
            Transition::Expire => DetailType::ReservationExpired,
            Transition::Extend => DetailType::ReservationExtended,
        }
    }
}

/// The state machine: PENDING -> CONFIRMED | RELEASED | EXPIRED; nothing leaves a final state.
pub fn decide(reservation: &Reservation, action: Action, now: DateTime<Utc>) -> Decision {
    use Status::*;
    let expired = || Error::ReservationExpired { reservation_id: reservation.reservation_id.clone() };
    let invalid = || Error::InvalidState { status: reservation.status };
    let past_due = reservation.is_past_due(now);
    match (action, reservation.status) {
        (Action::Confirm, Pending) if past_due => Decision::ExpireThenFail(expired()),
        (Action::Confirm, Pending) => Decision::Apply(Transition::Confirm),
        (Action::Confirm, Confirmed) => Decision::Unchanged,
        (Action::Confirm, Released) => Decision::Refuse(invalid()),
        (Action::Confirm, Expired) => Decision::Refuse(expired()),

        // Releasing a hold that is past due but not yet swept gives the units back all the same;
        // the client's explicit release wins over the sweep.
        (Action::Release, Pending) => Decision::Apply(Transition::Release),
        (Action::Release, Released | Expired) => Decision::Unchanged,
        (Action::Release, Confirmed) => Decision::Refuse(invalid()),

        (Action::Extend, Pending) if past_due => Decision::ExpireThenFail(expired()),
        (Action::Extend, Pending) => Decision::Apply(Transition::Extend),
        (Action::Extend, Expired) => Decision::Refuse(expired()),
        (Action::Extend, Confirmed | Released) => Decision::Refuse(invalid()),

        (Action::Expire, Pending) if past_due => Decision::Apply(Transition::Expire),
        (Action::Expire, _) => Decision::Unchanged,
    }
}

/// What a transition does to one stock item, as `(onHand delta, reserved delta)`.
pub fn stock_effect(transition: Transition, quantity: i64) -> (i64, i64) {
    match transition {
        Transition::Confirm => (-quantity, -quantity),
        Transition::Release | Transition::Expire => (0, -quantity),
        Transition::Extend => (0, 0),
    }
}

/// Stock changes per shard item, `(sku, locationId, shard)` -> `(onHand delta, reserved delta)`.
pub type StockDeltas = BTreeMap<(String, String, u32), (i64, i64)>;

/// What one transition of every reservation given does to stock, summed per shard item
/// (`(sku, locationId, shard)`, the shards the units are held on) as `(onHand delta, reserved
/// delta)`; items it leaves alone are absent.
pub fn stock_deltas<'a>(
    reservations: impl IntoIterator<Item = &'a Reservation>,
    transition: Transition,
) -> StockDeltas {
    let mut deltas = StockDeltas::new();
    for (key, quantity) in reservations.into_iter().flat_map(|r| r.units()) {
        let (on_hand, reserved) = stock_effect(transition, quantity);
        if reserved != 0 {
            let total = deltas.entry(key).or_default();
            *total = (total.0 + on_hand, total.1 + reserved);
        }
    }
    deltas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reservation(status: Status, expires_in_secs: i64) -> Reservation {
        let now = Utc::now();
        let mut r = Reservation::new("o-1".into(), vec![], 60, now);
        r.status = status;
        r.expires_at = now + Duration::seconds(expires_in_secs);
        r
    }

    fn line(sku: &str, quantity: i64) -> Line {
        Line::new(sku.into(), "w".into(), quantity)
    }

    #[test]
    fn state_machine_never_leaves_a_final_state() {
        let now = Utc::now();
        for status in [Status::Confirmed, Status::Released, Status::Expired] {
            for action in [Action::Confirm, Action::Release, Action::Extend, Action::Expire] {
                for expires_in in [-10, 10] {
                    let d = decide(&reservation(status, expires_in), action, now);
                    assert!(
                        matches!(d, Decision::Unchanged | Decision::Refuse(_)),
                        "{status:?} {action:?} -> {d:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn pending_transitions() {
        let now = Utc::now();
        let live = reservation(Status::Pending, 10);
        let due = reservation(Status::Pending, -1);
        assert_eq!(decide(&live, Action::Confirm, now), Decision::Apply(Transition::Confirm));
        assert_eq!(decide(&live, Action::Release, now), Decision::Apply(Transition::Release));
        assert_eq!(decide(&live, Action::Extend, now), Decision::Apply(Transition::Extend));
        assert_eq!(decide(&live, Action::Expire, now), Decision::Unchanged);
        assert!(
            matches!(decide(&due, Action::Confirm, now), Decision::ExpireThenFail(e) if e.code() == "RESERVATION_EXPIRED")
        );
        assert!(
            matches!(decide(&due, Action::Extend, now), Decision::ExpireThenFail(e) if e.code() == "RESERVATION_EXPIRED")
        );
        assert_eq!(decide(&due, Action::Release, now), Decision::Apply(Transition::Release));
        assert_eq!(decide(&due, Action::Expire, now), Decision::Apply(Transition::Expire));
    }

    #[test]
    fn final_state_answers_follow_the_contract() {
        let now = Utc::now();
        let code = |s, a| match decide(&reservation(s, 10), a, now) {
            Decision::Refuse(e) => e.code(),
            Decision::Unchanged => "UNCHANGED",
            other => panic!("{other:?}"),
        };
        assert_eq!(code(Status::Confirmed, Action::Confirm), "UNCHANGED");
        assert_eq!(code(Status::Released, Action::Confirm), "INVALID_STATE");
        assert_eq!(code(Status::Expired, Action::Confirm), "RESERVATION_EXPIRED");
        assert_eq!(code(Status::Released, Action::Release), "UNCHANGED");
        assert_eq!(code(Status::Expired, Action::Release), "UNCHANGED");
        assert_eq!(code(Status::Confirmed, Action::Release), "INVALID_STATE");
        assert_eq!(code(Status::Expired, Action::Extend), "RESERVATION_EXPIRED");
        assert_eq!(code(Status::Confirmed, Action::Extend), "INVALID_STATE");
        assert_eq!(code(Status::Released, Action::Extend), "INVALID_STATE");
    }

    #[test]
    fn stock_effects_keep_available_consistent() {
        // Confirm takes units out of stock: onHand and reserved drop, available is unchanged.
        assert_eq!(stock_effect(Transition::Confirm, 3), (-3, -3));
        assert_eq!(stock_effect(Transition::Release, 3), (0, -3));
        assert_eq!(stock_effect(Transition::Expire, 3), (0, -3));
        assert_eq!(stock_effect(Transition::Extend, 3), (0, 0));
    }

    #[test]
    fn a_transition_moves_status_and_version_and_only_extend_moves_expiry() {
        let now = Utc::now() + Duration::seconds(5);
        let live = reservation(Status::Pending, 10);
        let confirmed = live.after(Transition::Confirm, None, now);
        assert_eq!((confirmed.status, confirmed.version, confirmed.updated_at), (Status::Confirmed, 2, now));
        assert_eq!(confirmed.expires_at, live.expires_at);
        let extended = live.after(Transition::Extend, Some(3600), now);
        assert_eq!((extended.status, extended.expires_at), (Status::Pending, now + Duration::seconds(3600)));
        assert_eq!(Transition::Confirm.event(), DetailType::ReservationConfirmed);
        assert_eq!(Transition::Expire.event(), DetailType::ReservationExpired);
        assert_eq!(Transition::Extend.event(), DetailType::ReservationExtended);
    }

    #[test]
    fn a_modified_hold_keeps_its_id_and_moves_expiry_only_when_asked() {
        let now = Utc::now() + Duration::seconds(5);
        let live = reservation(Status::Pending, 10);
        let kept = live.modified(vec![line("A", 2)], None, now);
        assert_eq!(
            (kept.reservation_id.as_str(), kept.version),
            (live.reservation_id.as_str(), live.version + 1)
        );
        assert_eq!((kept.expires_at, kept.updated_at, kept.status), (live.expires_at, now, Status::Pending));
        assert_eq!(kept.lines, [line("A", 2)]);
        let moved = live.modified(vec![line("A", 2)], Some(60), now);
        assert_eq!(moved.expires_at, now + Duration::seconds(60));
    }

    #[test]
    fn a_hold_may_live_up_to_its_limit_and_not_a_millisecond_more() {
        let created = Utc::now();
        let max = Duration::seconds(DEFAULT_MAX_HOLD_SECONDS);
        assert_eq!(check_hold_lifetime(created, created + max, max), Ok(()));
        assert_eq!(check_hold_lifetime(created, created + Duration::seconds(60), max), Ok(()));
        let late = check_hold_lifetime(created, created + max + Duration::milliseconds(1), max);
        assert_eq!(late, Err(Error::HoldLifetimeExceeded { max_expires_at: created + max }));
        assert_eq!(late.unwrap_err().code(), "HOLD_LIFETIME_EXCEEDED");
        // An extension counts from the hold's createdAt, not from the moment it is asked.
        let hour = Duration::seconds(3600);
        let live = reservation(Status::Pending, 600);
        let extended = live.after(Transition::Extend, Some(3600), live.created_at + Duration::seconds(1800));
        assert!(check_hold_lifetime(extended.created_at, extended.expires_at, hour).is_err());
        assert!(check_hold_lifetime(extended.created_at, extended.expires_at, hour * 2).is_ok());
    }

    #[test]
    fn line_changes_are_the_differences_per_item() {
        let old = [line("A", 3), line("B", 2), line("C", 1)];
        let new = [line("A", 5), line("B", 2), line("D", 4)];
        let changes = line_changes(&old, &new);
        let key = |s: &str| (s.to_owned(), "w".to_owned());
        assert_eq!(changes.len(), 3, "B is unchanged: {changes:?}");
        assert_eq!((changes[&key("A")], changes[&key("C")], changes[&key("D")]), (2, -1, 4));
        assert!(line_changes(&old, &old).is_empty());
    }

    #[test]
    fn stock_deltas_sum_per_item_over_holds() {
        let mut a = Reservation::new("a".into(), vec![line("A", 2), line("B", 1)], 60, Utc::now());
        let mut b = Reservation::new("b".into(), vec![line("A", 3)], 60, Utc::now());
        b.shard_holds = vec![
            ShardHold { sku: "A".into(), location_id: "w".into(), shard: 0, quantity: 1 },
            ShardHold { sku: "A".into(), location_id: "w".into(), shard: 5, quantity: 2 },
        ];
        let deltas = stock_deltas([&a, &b], Transition::Expire);
        assert_eq!(deltas[&("A".to_owned(), "w".to_owned(), 0)], (0, -3));
        assert_eq!(deltas[&("A".to_owned(), "w".to_owned(), 5)], (0, -2));
        assert_eq!(deltas[&("B".to_owned(), "w".to_owned(), 0)], (0, -1));
        a.lines.truncate(1);
        assert_eq!(stock_deltas([&a], Transition::Confirm).into_values().collect::<Vec<_>>(), [(-2, -2)]);
        assert!(stock_deltas([&a, &b], Transition::Extend).is_empty());
    }
}
