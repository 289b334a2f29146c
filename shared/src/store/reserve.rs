//! Reserve: one transaction. Action 0 takes the order key (the idempotency of reserve), action
//! `1 + i` takes the units of the `i`-th shard item the lines are placed on (`reserved += q,
//! available -= q IF available >= q`; an unsharded item is its own shard 0), then the
//! reservation, the order's reservation item and the outbox record. Lines that each name their
//! location need no read first (a sharded item's shards are read when its count is not known, or
//! after one of them was short), and on an unsharded item a rejection means the stock really was
//! short at that instant. Lines that let the service pick the location are planned on a strongly
//! consistent read of their skus; should a condition fail, the stock moved since: read and plan
//! again (bounded, inside the request's deadline), so INSUFFICIENT_STOCK only ever comes from a
//! fresh read (for a sharded item, a snapshot of its shards).

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};

use super::idempotency::Answer;
use super::items::{
    n, number_attr, order_item, order_key, order_reservation_item, outbox_key, reservation_item, s,
    shard_key, string_attr, Item,
};
use super::retry::Failure;
use super::transact::TxOutcome;
use super::{Reserved, Store, MAX_TRANSACTION_ITEMS};
use crate::domain::{shard_holds_of, timestamp, Cart, Line, Reservation, Units};
use crate::error::{Error, Result, Shortfall};
use crate::events::{DetailType, OutboxEvent};

/// How many other shards one attempt of a reserve moves to, one after the other, while each it
/// tries is busy with another transaction; then it backs off and tries again (`Failure::Busy`:
/// within the request's deadline, not counted among the retry policy's attempts).
const MAX_SHARD_HOPS: usize = 2;

/// The index of the order key among a reserve's actions.
const ORDER_KEY_ACTION: usize = 0;

/// The index of line `i`'s stock update among a reserve's actions.
fn line_action(i: usize) -> usize {
    ORDER_KEY_ACTION + 1 + i
}

/// Whose the order key is when a new reservation takes it.
#[derive(Debug, Clone)]
pub(crate) enum OrderSlot {
    /// The order has no reservation yet.
    Free,
    /// The order's latest reservation is this one (final): the new one replaces it as latest.
    Replacing(String),
}

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
        correlation_id: Option<&str>,
    ) -> Result<Reserved> {
        self.reserve_cart(order_id, &Cart::from(lines), ttl_seconds, correlation_id).await
    }

    /// `POST /v1/reservations`: a new reservation of the cart for an order that has none; for an
    /// order that has one, the same request is a safe retry (its latest reservation), another a
    /// conflict.
    pub async fn reserve_cart(
        &self,
        order_id: &str,
        cart: &Cart,
        ttl_seconds: i64,
        correlation_id: Option<&str>,
    ) -> Result<Reserved> {
        self.with_retries("reserve", || async {
            match self.create(order_id, cart, ttl_seconds, correlation_id, &OrderSlot::Free).await {
                Ok(Created::Done(reservation)) => Ok(Reserved { reservation, created: true }),
                Ok(Created::OrderTaken(order)) => Ok(self.existing_order_reservation(cart, &order).await?),
                // A refusal (on a plan's read, the shards' snapshot or a condition): the order may
                // have its reservation already (a retry after the stock ran out answers as the
                // first request did).
                Err(Failure::Fatal(e @ (Error::InsufficientStock { .. } | Error::NotFound { .. }))) => {
                    match self.get_item(order_key(order_id)).await? {
                        Some(order) => Ok(self.existing_order_reservation(cart, &order).await?),
                        None => Err(Failure::Fatal(e)),
                    }
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// One attempt at a new reservation of `cart` taking the order key from `slot`.
    /// `Err(Stale)` when the stock a plan was made on changed: plan again.
    pub(crate) async fn create(
        &self,
        order_id: &str,
        cart: &Cart,
        ttl_seconds: i64,
        correlation_id: Option<&str>,
        slot: &OrderSlot,
    ) -> Result<Created, Failure> {
        let lines = self.plan(cart, &[]).await?;
        // Shards found busy by this attempt: the next placement avoids them.
        let mut busy = BTreeSet::new();
        let mut hops = 0;
        let (reservation, units, cancelled) = loop {
            let units = self.place_units(&lines, &Units::new(), cart.fixed().is_some(), &busy).await?;
            let now = self.now();
            let mut reservation = Reservation::new(order_id.to_owned(), lines.clone(), ttl_seconds, now);
            reservation.shard_holds = shard_holds_of(&units);
            let data = serde_json::to_value(&reservation).map_err(Error::internal)?;
            let event = OutboxEvent::new(DetailType::ReservationCreated, data, now, correlation_id);
            let order = order_item(order_id, &reservation.reservation_id, &cart.key());
            let mut actions = Vec::with_capacity(units.len() + reservation.lines.len() + 4);
            actions.push(match slot {
                OrderSlot::Free => self.put(order, "attribute_not_exists(pk)", vec![])?,
                OrderSlot::Replacing(id) => {
                    self.put(order, "reservationId = :latest", vec![(":latest", s(id))])?
                }
            });
            // Its confirm writes two actions per shard item and one per line, besides the
            // reservation, the outbox record and an idempotency record: all in one transaction.
            if 2 * units.len() + reservation.lines.len() + 3 > MAX_TRANSACTION_ITEMS {
                return Err(Failure::Fatal(Error::invalid_field(
                    "lines",
                    format!(
                        "these lines would hold units on {} stock and shard items: too many for one transaction",
                        units.len()
                    ),
                )));
            }
            for ((sku, location_id, shard), quantity) in &units {
                actions.push(self.take_units(sku, location_id, *shard, *quantity, &now)?);
            }
            actions.push(self.put(reservation_item(&reservation)?, "attribute_not_exists(pk)", vec![])?);
            actions.push(self.put(order_reservation_item(&reservation), "", vec![])?);
            actions.push(self.outbox(&event)?);
            let holds =
                reservation.lines.iter().map(|l| (l.sku.clone(), l.location_id.clone(), Some(l.quantity)));
            actions.extend(self.holds(&reservation, holds)?);

            let answer = Answer::new(201, &reservation)?;
            // On a sharded item a conflict is another buyer on that shard: go to another shard
            // at once (a conflict is a definite "not applied") rather than wait for this one.
            let sharded: Vec<_> = units
                .keys()
                .filter(|(sku, location_id, shard)| *shard > 0 || self.known_sharded(sku, location_id))
                .cloned()
                .collect();
            // At most MAX_SHARD_HOPS moves, and never more than the item has other shards.
            let shards = sharded.iter().map(|(sku, location_id, _)| self.shard_count(sku, location_id)).max();
            let hops_left = shards.is_some_and(|n| hops < MAX_SHARD_HOPS.min((n as usize).saturating_sub(1)));
            let marker = outbox_key(&event);
            let give_way = !sharded.is_empty();
            match self.commit_or_conflict("reserve", actions, marker, Some(&answer), give_way).await? {
                Some(TxOutcome::Committed) => return Ok(Created::Done(reservation)),
                Some(TxOutcome::Cancelled(cancelled)) => break (reservation, units, cancelled),
                None if hops_left => {
                    self.count_retry("reserve", "conflict");
                    busy.extend(sharded);
                    hops += 1;
                }
                // Every shard tried was busy: back off and try again (within the deadline).
                None => return Err(Failure::Busy),
            }
        };
        if let Some(order) = cancelled.old_item(ORDER_KEY_ACTION) {
            return Ok(Created::OrderTaken(order.clone()));
        }
        let failed: Vec<_> = units
            .keys()
            .enumerate()
            .filter_map(|(i, key)| Some((key, cancelled.old_item(line_action(i))?)))
            .collect();
        // A shard of a sharded item ran short (or the item was resharded since its count was
        // read): read it again and place again. Lines the service places: the stock the plan was
        // made on moved; plan again.
        let sharded = self.any_sharded(
            failed.iter().map(|((sku, location_id, shard), old)| (sku, location_id, *shard, *old)),
        );
        if sharded || cart.fixed().is_none() {
            return Err(Failure::Stale);
        }
        let failed = failed.into_iter().filter_map(|((sku, location_id, _), old)| {
            let line = reservation.lines.iter().find(|l| l.sku == *sku && l.location_id == *location_id)?;
            Some((line, old, line.quantity, 0))
        });
        Err(Failure::Fatal(shortfalls(failed)))
    }

    /// The concrete lines of `cart`: as they are when each names its location, else planned on a
    /// strongly consistent read of its skus, counting the units of `held` as available.
    pub(crate) async fn plan(&self, cart: &Cart, held: &[Line]) -> Result<Vec<Line>, Failure> {
        match cart.fixed() {
            Some(lines) => Ok(lines),
            None => Ok(cart.plan(&self.read_skus(cart.skus()).await?, held)?),
        }
    }

    /// Takes `quantity` units of an item's shard into holds, if it has them available.
    pub(crate) fn take_units(
        &self,
        sku: &str,
        location_id: &str,
        shard: u32,
        quantity: i64,
        now: &DateTime<Utc>,
    ) -> Result<TransactWriteItem> {
        self.update(
            shard_key(sku, location_id, shard),
            "SET reserved = reserved + :q, available = available - :q, version = version + :one, updatedAt = :now",
            "attribute_exists(pk) AND available >= :q",
            vec![(":q", n(quantity)), (":one", n(1)), (":now", s(timestamp::format(now)))],
        )
    }

    /// Whether any of these failed takes `(sku, locationId, shard, the item as it was)` was on a
    /// sharded item (or one that may have been resharded since): those are read and placed again.
    /// The shard counts of those items are forgotten.
    pub(crate) fn any_sharded<'a>(
        &self,
        failed: impl Iterator<Item = (&'a String, &'a String, u32, &'a Item)>,
    ) -> bool {
        let mut any = false;
        for (sku, location_id, shard, old) in failed {
            let sharded = shard > 0
                || self.known_sharded(sku, location_id)
                || number_attr(old, "shards").is_some_and(|n| n > 1);
            if sharded {
                self.forget_shards(sku, location_id);
                any = true;
            }
        }
        any
    }

    /// A reserve found the order key taken: the same request (or, for lines that each name their
    /// location, the same merged lines) is a safe retry of the order's latest reservation, another
    /// one a conflict.
    async fn existing_order_reservation(&self, cart: &Cart, order: &Item) -> Result<Reserved> {
        let order_id = string_attr(order, "orderId").unwrap_or_default();
        let existing = match string_attr(order, "reservationId") {
            Some(id) => self.get_reservation(&id).await?,
            None => self.get_order_reservation(&order_id).await?,
        };
        let same_request = string_attr(order, "cartKey").is_some_and(|r| r == cart.key());
        if same_request || cart.fixed().is_some_and(|lines| lines == existing.lines) {
            Ok(Reserved { reservation: existing, created: false })
        } else {
            Err(Error::OrderAlreadyReserved { reservation_id: existing.reservation_id })
        }
    }
}

/// The answer to a transaction whose stock conditions failed: each `(line, item as it was,
/// units asked, units of the item the hold already had)`. An item that does not exist is 404.
pub(crate) fn shortfalls<'a>(failed: impl Iterator<Item = (&'a Line, &'a Item, i64, i64)>) -> Error {
    let mut lines = Vec::new();
    for (line, old, requested, held) in failed {
        let Some(available) = number_attr(old, "available") else {
            return Error::NotFound { what: "stock item", id: format!("{}/{}", line.sku, line.location_id) };
        };
        lines.push(Shortfall {
            sku: line.sku.clone(),
            location_id: Some(line.location_id.clone()),
            requested,
            available: available + held,
        });
    }
    if lines.is_empty() {
        return Error::internal("a transaction was cancelled by a condition on no known item");
    }
    Error::InsufficientStock { lines }
}
