//! What an order holds: the decisions of `POST /v1/reservations` and `PUT
//! /v1/orders/{orderId}/reservation`, made on what the store read, with no I/O.
//!
//! - [`decide_put`]: given the order's latest reservation, a new one, a change of the PENDING one,
//!   an expiry on the spot first, or a refusal;
//! - [`hold_change`]: whether a change of a PENDING hold is nothing, an extension or a
//!   modification, and [`HoldChange::event`] the event it writes;
//! - [`answer_to_taken_order`]: what a reserve answers when the order already has a
//!   reservation (a safe retry, or a conflict), and [`may_be_a_retry`] which refusals are first
//!   checked against the order's reservation (a retry after a sell-out answers as the first
//!   request did).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::allocation::Cart;
use super::reservation::Reservation;
use super::validate::Line;
use crate::error::Error;
use crate::events::DetailType;
use crate::status::Status;

/// Whose the order key is when a new reservation takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderSlot {
    /// The order has no reservation yet.
    Free,
    /// The order's latest reservation is this one (final): the new one replaces it as latest.
    Replacing(String),
}

/// Where a change of a PENDING hold takes its lines from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinesFrom {
    /// The cart is the one the hold was made or last changed with: its lines as they are (a
    /// repeated PUT never moves a hold).
    Hold,
    /// Another cart: resolved now.
    Cart,
}

/// What a PUT of the order's cart does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutDecision {
    /// A new reservation taking the order key from this slot.
    Create(OrderSlot),
    /// The latest reservation, PENDING and live, changed to hold the cart.
    Change(LinesFrom),
    /// The latest reservation is PENDING but past due: expire it on the spot, then create a new
    /// one in its place.
    ExpireThenCreate,
    Refuse(Error),
}

/// `latest`: the order's latest reservation, if any; `order_cart`: the cart the order key records
/// it was made or last changed with; `cart`: the one asked for now.
pub fn decide_put(
    latest: Option<&Reservation>,
    order_cart: Option<&str>,
    cart: &Cart,
    now: DateTime<Utc>,
) -> PutDecision {
    let Some(latest) = latest else { return PutDecision::Create(OrderSlot::Free) };
    let same_cart = order_cart == Some(cart.key().as_str());
    match latest.status {
        Status::Confirmed => PutDecision::Refuse(Error::InvalidState { status: latest.status }),
        Status::Pending if latest.is_past_due(now) => PutDecision::ExpireThenCreate,
        Status::Pending if same_cart => PutDecision::Change(LinesFrom::Hold),
        Status::Pending => PutDecision::Change(LinesFrom::Cart),
        Status::Released | Status::Expired => {
            PutDecision::Create(OrderSlot::Replacing(latest.reservation_id.clone()))
        }
    }
}

/// What a change of a PENDING hold to `lines` (and a new expiresAt when `ttl_seconds`) comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldChange {
    /// The same lines and no new ttl: nothing to write.
    Unchanged,
    /// Only expiresAt moves: `ReservationExtended`.
    Extended,
    /// Lines replaced: `ReservationModified`.
    Modified,
}

pub fn hold_change(current: &[Line], lines: &[Line], ttl_seconds: Option<i64>) -> HoldChange {
    if lines == current && ttl_seconds.is_none() {
        HoldChange::Unchanged
    } else if sorted(lines) == sorted(current) {
        HoldChange::Extended
    } else {
        HoldChange::Modified
    }
}

fn sorted(lines: &[Line]) -> Vec<&Line> {
    let mut sorted: Vec<&Line> = lines.iter().collect();
    sorted.sort();
    sorted
}

impl HoldChange {
    /// The event a written change announces, and its detail: the reservation as it is now, and
    /// for a modification its lines before (`previousLines`).
    pub fn event(self, current: &Reservation, next: &Reservation) -> Result<(DetailType, Value), Error> {
        let mut data = serde_json::to_value(next).map_err(Error::internal)?;
        match self {
            HoldChange::Modified => {
                data["previousLines"] = serde_json::to_value(&current.lines).map_err(Error::internal)?;
                Ok((DetailType::ReservationModified, data))
            }
            HoldChange::Extended | HoldChange::Unchanged => Ok((DetailType::ReservationExtended, data)),
        }
    }
}

/// Whether a reserve's refusal may be the answer to a request that already succeeded (its retry
/// after the stock ran out, or after the item went): then the order's reservation answers it.
pub fn may_be_a_retry(refusal: &Error) -> bool {
    matches!(refusal, Error::InsufficientStock { .. } | Error::NotFound { .. })
}

/// A reserve of `cart` found the order's key taken by `existing` (its latest reservation), the
/// key recording `order_cart` as the cart it was made with: the same request (or, for lines that
/// each name their location, the same merged lines) is a safe retry answered with `existing`;
/// another is a conflict.
pub fn answer_to_taken_order(
    cart: &Cart,
    order_cart: Option<&str>,
    existing: Reservation,
) -> Result<Reservation, Error> {
    let same_request = order_cart == Some(cart.key().as_str());
    // (A kit line is the same line whatever components the kit has now.)
    let named = |lines: &[Line]| {
        lines.iter().map(|l| (l.sku.clone(), l.location_id.clone(), l.quantity)).collect::<Vec<_>>()
    };
    if same_request || cart.fixed().is_some_and(|lines| named(&lines) == named(&existing.lines)) {
        Ok(existing)
    } else {
        Err(Error::OrderAlreadyReserved { reservation_id: existing.reservation_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn line(sku: &str, quantity: i64) -> Line {
        Line::new(sku.into(), "w".into(), quantity)
    }

    fn reservation(status: Status, expires_in: i64, now: DateTime<Utc>) -> Reservation {
        let mut r = Reservation::new("o".into(), vec![line("A", 1)], 60, now);
        r.status = status;
        r.expires_at = now + Duration::seconds(expires_in);
        r
    }

    #[test]
    fn a_put_creates_changes_expires_first_or_refuses() {
        let now = Utc::now();
        let cart = Cart::from(vec![line("A", 1)]);
        let (same, other) = (Some(cart.key()), Some("[]".to_owned()));
        let decide = |latest: Option<&Reservation>, order_cart: &Option<String>| {
            decide_put(latest, order_cart.as_deref(), &cart, now)
        };
        assert_eq!(decide(None, &None), PutDecision::Create(OrderSlot::Free));
        let live = reservation(Status::Pending, 10, now);
        assert_eq!(decide(Some(&live), &same), PutDecision::Change(LinesFrom::Hold));
        assert_eq!(decide(Some(&live), &other), PutDecision::Change(LinesFrom::Cart));
        assert_eq!(decide(Some(&live), &None), PutDecision::Change(LinesFrom::Cart));
        // Due exactly now is past due.
        for due in [reservation(Status::Pending, 0, now), reservation(Status::Pending, -5, now)] {
            assert_eq!(decide(Some(&due), &same), PutDecision::ExpireThenCreate);
        }
        for status in [Status::Released, Status::Expired] {
            let r = reservation(status, 10, now);
            let replacing = PutDecision::Create(OrderSlot::Replacing(r.reservation_id.clone()));
            assert_eq!(decide(Some(&r), &same), replacing);
        }
        let confirmed = reservation(Status::Confirmed, 10, now);
        let refused = decide(Some(&confirmed), &same);
        assert!(matches!(refused, PutDecision::Refuse(Error::InvalidState { status: Status::Confirmed })));
    }

    #[test]
    fn a_change_is_nothing_an_extension_or_a_modification() {
        let current = [line("A", 2), line("B", 1)];
        assert_eq!(hold_change(&current, &current, None), HoldChange::Unchanged);
        assert_eq!(hold_change(&current, &current, Some(60)), HoldChange::Extended);
        // The same units in another order of lines: no item changes.
        let reordered = [line("B", 1), line("A", 2)];
        assert_eq!(hold_change(&current, &reordered, None), HoldChange::Extended);
        assert_eq!(hold_change(&current, &[line("A", 3), line("B", 1)], None), HoldChange::Modified);
        assert_eq!(hold_change(&current, &[line("A", 2)], Some(60)), HoldChange::Modified);
    }

    #[test]
    fn a_modification_announces_the_lines_it_replaced_and_an_extension_does_not() {
        let now = Utc::now();
        let current = reservation(Status::Pending, 10, now);
        let next = current.modified(vec![line("A", 5)], None, now);
        let (kind, data) = HoldChange::Modified.event(&current, &next).unwrap();
        assert_eq!(kind, DetailType::ReservationModified);
        assert_eq!(data["previousLines"][0]["quantity"], 1);
        assert_eq!(data["lines"][0]["quantity"], 5);
        let (kind, data) = HoldChange::Extended.event(&current, &next).unwrap();
        assert_eq!(kind, DetailType::ReservationExtended);
        assert!(data.get("previousLines").is_none());
    }

    #[test]
    fn a_taken_order_answers_the_same_request_and_refuses_another() {
        let now = Utc::now();
        let existing = reservation(Status::Pending, 10, now);
        let same_lines = Cart::from(vec![line("A", 1)]);
        // Lines that each name their location: the same merged lines are the same request.
        assert_eq!(answer_to_taken_order(&same_lines, None, existing.clone()).unwrap(), existing);
        let other = Cart::from(vec![line("A", 2)]);
        let refused = answer_to_taken_order(&other, None, existing.clone()).unwrap_err();
        assert_eq!(refused.code(), "ORDER_ALREADY_RESERVED");
        // The order key records the cart: that cart again is the same request.
        assert_eq!(answer_to_taken_order(&other, Some(&other.key()), existing.clone()).unwrap(), existing);
        assert!(may_be_a_retry(&Error::InsufficientStock { lines: vec![] }));
        assert!(!may_be_a_retry(&Error::invalid_field("lines", "too many")));
    }
}
