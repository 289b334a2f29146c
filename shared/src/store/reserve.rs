//! Reserve: one transaction. It takes the order key (the idempotency of reserve), the units of
//! each shard item the lines are placed on (`reserved += q, available -= q IF available >= q`;
//! an unsharded item is its own shard 0), and puts the reservation, the order's reservation item,
//! the outbox record and a hold item per line. Where the units go is `placement`'s: lines that
//! each name their location need no read first; lines the service places are resolved on a
//! strongly consistent read of their skus. Should a condition fail, the stock moved since: read and decide again
//! (bounded, inside the request's deadline), so INSUFFICIENT_STOCK only ever comes from a fresh
//! read (for a sharded item, a snapshot of its shards).

use std::collections::BTreeSet;

use super::idempotency::Answer;
use super::items::{
    n, order_item, order_key, order_reservation_item, outbox_key, reservation_item, s, string_attr, Item, TTL,
};
use super::retry::Failure;
use super::transact::{OnConflict, Tx, TxOutcome};
use super::{Reserved, Store, WriteContext};
use crate::domain::{
    answer_to_taken_order, check_reservation, may_be_a_retry, shard_holds_of, stock_lines, Cart, Line,
    OrderSlot, Reservation, ShardKey, Units, Write,
};
use crate::error::{Error, Result};
use crate::events::DetailType;

/// How many other shards one attempt of a reserve moves to, one after the other, while each it
/// tries is busy with another transaction; then it backs off and tries again (`Failure::Busy`:
/// within the request's deadline, not counted among the retry policy's attempts).
const MAX_SHARD_HOPS: usize = 2;

/// What one attempt at creating a reservation came to.
pub(crate) enum Created {
    Done(Reservation),
    /// The order key was not as expected: here it is, as it was.
    OrderTaken(Item),
}

impl Store {
    /// Reserves every line or none. `lines` must be merged and validated (`domain::merge_lines`).
    pub async fn reserve(
        &self,
        order_id: &str,
        lines: Vec<Line>,
        ttl_seconds: i64,
        ctx: &WriteContext,
    ) -> Result<Reserved> {
        self.reserve_cart(order_id, &Cart::from(lines), ttl_seconds, ctx).await
    }

    /// `POST /v1/reservations`: a new reservation of the cart for an order that has none; for an
    /// order that has one, the same request is a safe retry (its latest reservation), another a
    /// conflict (`domain::answer_to_taken_order`).
    pub async fn reserve_cart(
        &self,
        order_id: &str,
        cart: &Cart,
        ttl_seconds: i64,
        ctx: &WriteContext,
    ) -> Result<Reserved> {
        self.with_retries("reserve", || async {
            let order = match self.create(order_id, cart, ttl_seconds, ctx, &OrderSlot::Free).await {
                Ok(Created::Done(reservation)) => return Ok(Reserved { reservation, created: true }),
                Ok(Created::OrderTaken(order)) => order,
                Err(Failure::Fatal(refusal)) if may_be_a_retry(&refusal) => {
                    match self.get_item(order_key(order_id)).await? {
                        Some(order) => order,
                        None => return Err(Failure::Fatal(refusal)),
                    }
                }
                Err(e) => return Err(e),
            };
            let existing = match string_attr(&order, "reservationId") {
                Some(id) => self.read_reservation(&id).await?,
                None => self.get_order_reservation(order_id).await?,
            };
            let order_cart = string_attr(&order, "cartKey");
            let reservation = answer_to_taken_order(cart, order_cart.as_deref(), existing)?;
            Ok(Reserved { reservation, created: false })
        })
        .await
    }

    /// One attempt at a new reservation of `cart` taking the order key from `slot`.
    /// `Err(Stale)` when the stock it was decided on changed: decide again. Lines on the kits
    /// this process knows are held as their components; should a line's stock item be missing,
    /// its sku is looked up as a kit, and if it is one, the attempt is made again at once.
    pub(crate) async fn create(
        &self,
        order_id: &str,
        cart: &Cart,
        ttl_seconds: i64,
        ctx: &WriteContext,
        slot: &OrderSlot,
    ) -> Result<Created, Failure> {
        // At most one kit learnt per line.
        for _ in 0..=cart.lines().len() {
            let with_kits = self.with_known_kits(cart).await?;
            match self.create_once(order_id, &with_kits, ttl_seconds, ctx, slot).await {
                Err(refusal) if self.learn_kit(&refusal).await? => continue,
                outcome => return outcome,
            }
        }
        Err(Failure::Stale)
    }

    async fn create_once(
        &self,
        order_id: &str,
        cart: &Cart,
        ttl_seconds: i64,
        ctx: &WriteContext,
        slot: &OrderSlot,
    ) -> Result<Created, Failure> {
        let now = self.now();
        self.check_hold_lifetime(now, now + chrono::Duration::seconds(ttl_seconds))?;
        let lines = self.resolve_lines(cart, &[]).await?;
        // Shards found busy by this attempt: the next placement avoids them.
        let mut busy = BTreeSet::new();
        let mut hops = 0;
        loop {
            let held = stock_lines(&lines);
            // Items whose layout this process does not know: taken from blind, at shard 0.
            let blind: Vec<Line> =
                held.iter().filter(|l| self.layout_unknown(&l.sku, &l.location_id)).cloned().collect();
            let units = self.place_units(&held, &Units::new(), cart, &busy).await?;
            let now = self.now();
            let mut reservation = Reservation::new(order_id.to_owned(), lines.clone(), ttl_seconds, now);
            reservation.shard_holds = shard_holds_of(&units);
            reservation.channel_id = cart.channel_id().map(str::to_owned);
            check_reservation(&reservation)?;
            let data = serde_json::to_value(&reservation).map_err(Error::internal)?;
            let event = ctx.event(DetailType::ReservationCreated, data, now);
            let retained_until = self.retained_until(reservation.created_at);
            let order = order_item(order_id, &reservation.reservation_id, &cart.key(), retained_until);

            let mut tx = Tx::new(Write::Reserve { shard_items: units.len(), holds: units.len() });
            let order_slot = tx.push(match slot {
                // No order key, or one past its TTL that DynamoDB has not deleted yet.
                OrderSlot::Free => {
                    let condition = "attribute_not_exists(pk) OR #ttl <= :now";
                    let mut put = self.put(order, condition, vec![(":now", n(now.timestamp()))])?;
                    if let Some(put) = put.put.as_mut() {
                        put.expression_attribute_names = Some([("#ttl".to_owned(), TTL.to_owned())].into());
                    }
                    put
                }
                OrderSlot::Replacing(id) => {
                    self.put(order, "reservationId = :latest", vec![(":latest", s(id))])?
                }
            });
            let takes = units
                .iter()
                .map(|((sku, location_id, shard), quantity)| {
                    let take =
                        self.take_units(sku, location_id, *shard, (*quantity, cart.safety_stock()), &now)?;
                    Ok(tx.push_for((sku.clone(), location_id.clone(), *shard), take))
                })
                .collect::<Result<Vec<_>>>()?;
            tx.push(self.put(reservation_item(&reservation)?, "attribute_not_exists(pk)", vec![])?);
            tx.push(self.put(order_reservation_item(&reservation, retained_until), "", vec![])?);
            tx.push(self.outbox(&event)?);
            tx.extend(self.holds(&reservation, units.iter().map(|(key, q)| (key.clone(), Some(*q))))?);

            let answer = Answer::new(201, &reservation)?;
            // On a sharded item a conflict is another buyer on that shard: go to another shard
            // at once (a conflict is a definite "not applied") rather than wait for this one.
            let sharded: Vec<ShardKey> = units
                .keys()
                .filter(|(sku, location_id, shard)| *shard > 0 || self.known_sharded(sku, location_id))
                .cloned()
                .collect();
            // Taken from blind: another transaction on it may be another buyer of a sharded item.
            let on_conflict =
                if sharded.is_empty() && blind.is_empty() { OnConflict::Retry } else { OnConflict::GiveWay };
            match self.commit("reserve", tx, outbox_key(&event), Some(&answer), ctx, on_conflict).await? {
                TxOutcome::Committed => return Ok(Created::Done(reservation)),
                TxOutcome::Cancelled(cancelled) => {
                    if let Some(order) = cancelled.old_item(&order_slot) {
                        return Ok(Created::OrderTaken(order.clone()));
                    }
                    let refusal = self.short_takes(cancelled.failures(&takes), cart, &held, |_, _| 0);
                    return Err(self.kit_refusal(refusal, cart, &[]).await);
                }
                TxOutcome::GaveWay if !blind.is_empty() => {
                    // Read what was taken from blind before placing it again.
                    blind.iter().for_each(|l| self.forget_shards(&l.sku, &l.location_id, None));
                    self.count_retry("reserve", "conflict");
                }
                TxOutcome::GaveWay => {
                    // At most MAX_SHARD_HOPS moves, and never more than the item has other shards.
                    let shards =
                        sharded.iter().map(|(sku, location_id, _)| self.shard_count(sku, location_id));
                    let others = shards.max().map_or(0, |n| (n as usize).saturating_sub(1));
                    if hops >= MAX_SHARD_HOPS.min(others) {
                        // Every shard tried was busy: back off and try again (within the deadline).
                        return Err(Failure::Busy);
                    }
                    self.count_retry("reserve", "conflict");
                    busy.extend(sharded);
                    hops += 1;
                }
            }
        }
    }
}
