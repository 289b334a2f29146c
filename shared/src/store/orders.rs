//! `PUT /v1/orders/{orderId}/reservation`: what the order should hold now. Read the order key and
//! its latest reservation, then one transaction: a new reservation (none yet, or the latest is
//! final, or PENDING but past due: expired on the spot first), or the PENDING one's lines replaced
//! by the new ones (the same request again, or the same lines without ttlSeconds: nothing written).
//! A change is keyed on the reservation's version, PENDING status and expiresAt;
//! per item, more units are taken `IF available >= d` and fewer given back `IF reserved >= d`.
//! A racer that loses reads again and decides again.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::idempotency::Answer;
use super::items::{order_key, outbox_key, s, string_attr};
use super::reserve::{shortfalls, Created, OrderSlot};
use super::retry::Failure;
use super::transact::TxOutcome;
use super::{Reserved, Store, MAX_TRANSACTION_ITEMS};
use crate::domain::{
    line_changes, shard_holds_of, Cart, Line, Reservation, Status, StockDeltas, Transition,
    DEFAULT_TTL_SECONDS,
};
use crate::error::{Error, Result};
use crate::events::{DetailType, OutboxEvent};

impl Store {
    /// Creates, re-creates or changes the order's hold so that it holds `cart`. `created` tells a
    /// new reservation (201) from a changed or unchanged one (200).
    pub async fn put_order_reservation(
        &self,
        order_id: &str,
        cart: &Cart,
        ttl_seconds: Option<i64>,
        correlation_id: Option<&str>,
    ) -> Result<Reserved> {
        self.with_retries("put_order_reservation", || async {
            let order = self.get_item(order_key(order_id)).await?;
            let latest = match order.as_ref().and_then(|o| string_attr(o, "reservationId")) {
                Some(id) => Some(self.read_reservation(&id).await?),
                None => None,
            };
            let now = self.now();
            let slot = match latest {
                None => OrderSlot::Free,
                Some(r) => match r.status {
                    Status::Confirmed => return Err(Error::InvalidState { status: r.status }.into()),
                    Status::Pending if !r.is_past_due(now) => {
                        // The same request again keeps the lines it was resolved to, whatever
                        // they would resolve to now: a repeated PUT never moves a hold.
                        let same_cart =
                            order.as_ref().and_then(|o| string_attr(o, "cartKey")) == Some(cart.key());
                        let plan = if same_cart { Plan::Keep } else { Plan::Anew };
                        return self.modify(&r, cart, plan, ttl_seconds, correlation_id, now).await;
                    }
                    Status::Pending => {
                        // Past due: expired on the spot (its own change, which keeps no answer).
                        let expired = r.after(Transition::Expire, None, now);
                        self.apply(&r, &expired, Transition::Expire, correlation_id, None, None).await?;
                        OrderSlot::Replacing(r.reservation_id)
                    }
                    Status::Released | Status::Expired => OrderSlot::Replacing(r.reservation_id),
                },
            };
            let ttl = ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
            match self.create(order_id, cart, ttl, correlation_id, &slot).await? {
                Created::Done(reservation) => Ok(Reserved { reservation, created: true }),
                // Another request gave the order a reservation since it was read.
                Created::OrderTaken(_) => Err(Failure::Stale),
            }
        })
        .await
    }

    /// One attempt at replacing the lines of the PENDING `current` by the cart's.
    async fn modify(
        &self,
        current: &Reservation,
        cart: &Cart,
        plan: Plan,
        ttl_seconds: Option<i64>,
        correlation_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Reserved, Failure> {
        let lines = match plan {
            Plan::Keep => current.lines.clone(),
            Plan::Anew => self.plan(cart, &current.lines).await?,
        };
        if lines == current.lines && ttl_seconds.is_none() {
            return Ok(Reserved { reservation: current.clone(), created: false });
        }
        let mut next = current.modified(lines, ttl_seconds, now);
        let held = current.units();
        let units = self.place_units(&next.lines, &held, cart.fixed().is_some(), &BTreeSet::new()).await?;
        next.shard_holds = shard_holds_of(&units);
        let changes = line_changes(&current.lines, &next.lines);
        // Per shard item: how many more units it holds for this reservation (or, negative, fewer).
        let mut unit_changes: BTreeMap<(String, String, u32), i64> = units.clone();
        for (key, q) in &held {
            *unit_changes.entry(key.clone()).or_default() -= q;
        }
        unit_changes.retain(|_, change| *change != 0);
        let mut actions = vec![self.reservation_guard(current, &next, Some(&now))?];
        for ((sku, location_id, shard), change) in &unit_changes {
            actions.push(if *change > 0 {
                self.take_units(sku, location_id, *shard, *change, &now)?
            } else {
                let back = StockDeltas::from([((sku.clone(), location_id.clone(), *shard), (0, *change))]);
                self.stock_updates(&back, &now)?.remove(0)
            });
        }
        let order_action = actions.len();
        actions.push(self.update(
            order_key(&current.order_id),
            "SET cartKey = :cart",
            "reservationId = :id",
            vec![(":cart", s(cart.key())), (":id", s(&current.reservation_id))],
        )?);
        // Lines replaced: ReservationModified; only expiresAt moved: ReservationExtended.
        let mut data = serde_json::to_value(&next).map_err(Error::internal)?;
        let detail_type = if changes.is_empty() {
            DetailType::ReservationExtended
        } else {
            data["previousLines"] = serde_json::to_value(&current.lines).map_err(Error::internal)?;
            DetailType::ReservationModified
        };
        let event = OutboxEvent::new(detail_type, data, now, correlation_id);
        actions.push(self.outbox(&event)?);
        let holds = changes.keys().map(|(sku, location_id)| {
            let quantity = quantity_of(&next.lines, sku, location_id);
            (sku.clone(), location_id.clone(), (quantity > 0).then_some(quantity))
        });
        actions.extend(self.holds(&next, holds)?);
        // Two actions per changed item: a change of very many items at once cannot be one
        // transaction (with the idempotency record, at most 100 actions).
        if actions.len() >= MAX_TRANSACTION_ITEMS {
            return Err(Failure::Fatal(Error::invalid_field(
                "lines",
                format!(
                    "this change touches {} stock items at once: too many for one transaction",
                    changes.len()
                ),
            )));
        }

        let answer = Answer::new(200, &next)?;
        let cancelled = match self.commit("modify", actions, outbox_key(&event), Some(&answer)).await? {
            TxOutcome::Committed => return Ok(Reserved { reservation: next, created: false }),
            TxOutcome::Cancelled(cancelled) => cancelled,
        };
        // The hold or the order changed since they were read: read and decide again.
        if cancelled.failed(0) || cancelled.failed(order_action) {
            return Err(Failure::Stale);
        }
        let failed_items = || unit_changes.iter().enumerate().filter(|(i, _)| cancelled.failed(1 + i));
        if let Some((_, ((sku, location_id, _), _))) = failed_items().find(|(_, (_, change))| **change < 0) {
            return Err(Failure::Fatal(Error::internal(format!(
                "stock item {sku}/{location_id} has fewer units reserved than reservation {} holds",
                current.reservation_id
            ))));
        }
        let failed: Vec<_> = failed_items()
            .filter_map(|(i, ((sku, location_id, shard), _))| {
                Some((sku, location_id, *shard, cancelled.old_item(1 + i)?))
            })
            .collect();
        // A shard ran short, or the item was resharded: read it again and place again. Lines the
        // service places: the stock the plan was made on moved; plan again.
        if self.any_sharded(failed.iter().copied()) || cart.fixed().is_none() {
            return Err(Failure::Stale);
        }
        let held = |sku: &str, location_id: &str| quantity_of(&current.lines, sku, location_id);
        let mut shortfall = Vec::new();
        for (sku, location_id, _, old) in failed {
            let line = next.lines.iter().find(|l| l.sku == *sku && l.location_id == *location_id);
            let line = line.expect("a growing item is one of the new lines");
            shortfall.push((line, old, line.quantity, held(sku, location_id)));
        }
        Err(Failure::Fatal(shortfalls(shortfall.into_iter())))
    }
}

/// Where a change of a hold takes its lines from.
enum Plan {
    /// The cart is the one the hold was made or last changed with: its lines as they are.
    Keep,
    /// Another cart: resolved now.
    Anew,
}

/// The units `lines` hold of one item.
fn quantity_of(lines: &[Line], sku: &str, location_id: &str) -> i64 {
    lines.iter().filter(|l| l.sku == sku && l.location_id == location_id).map(|l| l.quantity).sum()
}
