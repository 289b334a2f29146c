//! `PUT /v1/orders/{orderId}/reservation`: what the order should hold now. Read the order key and
//! its latest reservation, let the domain decide (`domain::decide_put`), then one transaction: a
//! new reservation, or the PENDING one's lines replaced by the new ones. A change is keyed on the
//! reservation's version, PENDING status and expiresAt at the write; per item, more units are
//! taken `IF available >= d` and fewer given back `IF reserved >= d`. A racer that loses reads
//! again and decides again.

use std::collections::BTreeSet;

use super::idempotency::Answer;
use super::items::{order_key, outbox_key, s, string_attr};
use super::reserve::Created;
use super::retry::Failure;
use super::transact::{OnConflict, Tx, TxOutcome};
use super::{Reserved, Store, WriteContext};
use crate::domain::{
    check_reservation, decide_put, hold_change, shard_holds_of, stock_lines, Cart, HoldChange, Line,
    LinesFrom, OrderSlot, PutDecision, Reservation, StockDeltas, Transition, Units, Write,
    DEFAULT_TTL_SECONDS,
};
use crate::error::{Error, Result};

impl Store {
    /// Creates, re-creates or changes the order's hold so that it holds `cart`. `created` tells a
    /// new reservation (201) from a changed or unchanged one (200).
    pub async fn put_order_reservation(
        &self,
        order_id: &str,
        cart: &Cart,
        ttl_seconds: Option<i64>,
        ctx: &WriteContext,
    ) -> Result<Reserved> {
        self.with_retries("put_order_reservation", || async {
            let order = self.get_item(order_key(order_id)).await?;
            let latest = match order.as_ref().and_then(|o| string_attr(o, "reservationId")) {
                Some(id) => Some(self.read_reservation(&id).await?),
                None => None,
            };
            let order_cart = order.as_ref().and_then(|o| string_attr(o, "cartKey"));
            // A cart changed without naming a channel keeps the one its order was held through.
            let kept;
            let cart = match (cart.channel_id(), latest.as_ref().and_then(|r| r.channel_id.as_deref())) {
                (None, Some(channel_id)) => {
                    let channel = self.channel_for_reserve(channel_id).await.map_err(Failure::Fatal)?;
                    kept = cart.clone().through(&channel)?;
                    &kept
                }
                _ => cart,
            };
            let with_kits = self.with_known_kits(cart).await?;
            let cart = &with_kits;
            let now = self.now();
            let slot = match decide_put(latest.as_ref(), order_cart.as_deref(), cart, now) {
                PutDecision::Refuse(e) => return Err(e.into()),
                PutDecision::Change(from) => {
                    let current = latest.as_ref().expect("a change has a reservation");
                    let outcome = self.modify(current, cart, from, ttl_seconds, ctx).await;
                    // A line's stock item is missing: if its sku is a kit, decide again with it.
                    return match outcome {
                        Err(refusal) if self.learn_kit(&refusal).await? => Err(Failure::Stale),
                        outcome => outcome,
                    };
                }
                PutDecision::ExpireThenCreate => {
                    // Expired on the spot (its own change, which keeps no answer).
                    let current = latest.as_ref().expect("an expiry has a reservation");
                    let expired = current.after(Transition::Expire, None, now);
                    self.apply(current, &expired, Transition::Expire, ctx, None).await?;
                    OrderSlot::Replacing(current.reservation_id.clone())
                }
                PutDecision::Create(slot) => slot,
            };
            let ttl = ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
            // (`create` learns the kits among the cart's skus, as a reserve does.)
            match self.create(order_id, cart, ttl, ctx, &slot).await? {
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
        from: LinesFrom,
        ttl_seconds: Option<i64>,
        ctx: &WriteContext,
    ) -> Result<Reserved, Failure> {
        let lines = match from {
            LinesFrom::Hold => current.lines.clone(),
            LinesFrom::Cart => self.resolve_lines(cart, &current.stock_lines()).await?,
        };
        let change = hold_change(&current.lines, &lines, ttl_seconds);
        if change == HoldChange::Unchanged {
            return Ok(Reserved { reservation: current.clone(), created: false });
        }
        let held = current.units();
        let units = self.place_units(&stock_lines(&lines), &held, cart, &BTreeSet::new()).await?;
        // The moment of the write, taken after the reads that placed the units.
        let now = self.now();
        let mut next = current.modified(lines, ttl_seconds, now);
        next.channel_id = cart.channel_id().map(str::to_owned);
        if ttl_seconds.is_some() {
            self.check_hold_lifetime(next.created_at, next.expires_at)?;
        }
        next.shard_holds = shard_holds_of(&units);
        check_reservation(&next)?;
        let unit_changes = unit_changes(&held, &units);

        // A hold item per shard item whose units change.
        let write = Write::Modify { shard_items: unit_changes.len(), holds: unit_changes.len() };
        if !write.fits(crate::domain::Keyed::Yes) {
            let message = format!(
                "this change touches {} stock and shard items at once: too many for one transaction",
                unit_changes.len()
            );
            return Err(Failure::Fatal(Error::invalid_field("lines", message)));
        }
        let mut tx = Tx::new(write);
        let guard = tx.push(self.reservation_guard(current, &next, Some(&now))?);
        let mut takes = Vec::new();
        let mut returns = Vec::new();
        for (key @ (sku, location_id, shard), change) in &unit_changes {
            if *change > 0 {
                takes.push(tx.push_for(
                    key.clone(),
                    self.take_units(sku, location_id, *shard, (*change, cart.safety_stock()), &now)?,
                ));
            } else {
                let back = StockDeltas::from([(key.clone(), (0, *change))]);
                returns.push(tx.push_for(key.clone(), self.stock_updates(&back, &now)?.remove(0)));
            }
        }
        let order = tx.push(self.update(
            order_key(&current.order_id),
            "SET cartKey = :cart",
            "reservationId = :id",
            vec![(":cart", s(cart.key())), (":id", s(&current.reservation_id))],
        )?);
        let (detail_type, data) = change.event(current, &next)?;
        let event = ctx.event(detail_type, data, now);
        tx.push(self.outbox(&event)?);
        let holds = unit_changes.keys().map(|key| (key.clone(), units.get(key).copied().filter(|q| *q > 0)));
        tx.extend(self.holds(&next, holds)?);

        let answer = Answer::new(200, &next)?;
        let cancelled =
            match self.commit("modify", tx, outbox_key(&event), Some(&answer), ctx, OnConflict::Retry).await?
            {
                TxOutcome::Committed => return Ok(Reserved { reservation: next, created: false }),
                TxOutcome::GaveWay => return Err(Failure::Retry("conflict")),
                TxOutcome::Cancelled(cancelled) => cancelled,
            };
        // The hold or the order changed since they were read (or the hold fell due): read and
        // decide again.
        if cancelled.failed(&guard) || cancelled.failed(&order) {
            return Err(Failure::Stale);
        }
        if let Some(((sku, location_id, _), _)) = cancelled.failures(&returns).next() {
            return Err(Failure::Fatal(Error::internal(format!(
                "stock item {sku}/{location_id} has fewer units reserved than reservation {} holds",
                current.reservation_id
            ))));
        }
        let current_held = current.stock_lines();
        let held = |sku: &str, location_id: &str| quantity_of(&current_held, sku, location_id);
        let refusal = self.short_takes(cancelled.failures(&takes), cart, &next.stock_lines(), held);
        Err(self.kit_refusal(refusal, cart, &current_held).await)
    }
}

/// Per shard item: how many more units it holds for a hold going from `held` to `units` (or,
/// negative, fewer); items that do not change are absent.
fn unit_changes(held: &Units, units: &Units) -> Units {
    let mut changes = units.clone();
    for (key, q) in held {
        *changes.entry(key.clone()).or_default() -= q;
    }
    changes.retain(|_, change| *change != 0);
    changes
}

/// The units `lines` hold of one item.
fn quantity_of(lines: &[Line], sku: &str, location_id: &str) -> i64 {
    lines.iter().filter(|l| l.sku == sku && l.location_id == location_id).map(|l| l.quantity).sum()
}
