//! The conditional actions the store's transactions are made of: puts, updates and deletes; the
//! reservation's guard (its version and PENDING status, and with a moment, not yet due); units
//! taken into holds and given back; the hold items; the outbox record of an event.

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use super::items::{
    hold_item, hold_key, n, outbox_item, outbox_key, reservation_item, s, shard_key, Item, TTL,
};
use super::{Store, WriteContext};
use crate::domain::{timestamp, Reservation, ShardKey, StockDeltas, Transition};
use crate::error::{Error, Result};
use crate::events::OutboxEvent;

/// The hold items a reservation leaving PENDING deletes: one per shard item it holds units on.
pub(crate) fn released_holds(reservation: &Reservation) -> impl Iterator<Item = (ShardKey, Option<i64>)> {
    reservation.units().into_keys().map(|key| (key, None))
}

impl Store {
    /// A conditional put (no condition when `condition` is empty).
    pub(crate) fn put(
        &self,
        item: Item,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if !condition.is_empty() {
            put = put.condition_expression(condition);
        }
        for (name, value) in values {
            put = put.expression_attribute_values(name, value);
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(Error::internal)?).build())
    }

    /// A conditional update.
    pub(crate) fn update(
        &self,
        key: Item,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem> {
        let mut builder = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, value) in values {
            builder = builder.expression_attribute_values(name, value);
        }
        Ok(TransactWriteItem::builder().update(builder.build().map_err(Error::internal)?).build())
    }

    /// An unconditional delete.
    pub(crate) fn delete(&self, key: Item) -> Result<TransactWriteItem> {
        let delete =
            Delete::builder().table_name(&self.table).set_key(Some(key)).build().map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A reservation's hold items, one per shard item it holds units on: put (with their
    /// quantities) or, with `None`, deleted.
    pub(crate) fn holds(
        &self,
        reservation: &Reservation,
        holds: impl IntoIterator<Item = (ShardKey, Option<i64>)>,
    ) -> Result<Vec<TransactWriteItem>> {
        holds
            .into_iter()
            .map(|((sku, location_id, shard), quantity)| match quantity {
                Some(q) => self.put(hold_item(&sku, &location_id, shard, reservation, q), "", vec![]),
                None => self.delete(hold_key(&sku, &location_id, shard, reservation)),
            })
            .collect()
    }

    /// The outbox record of an event, put once.
    pub(crate) fn outbox(&self, event: &OutboxEvent) -> Result<TransactWriteItem> {
        self.put(outbox_item(event), "attribute_not_exists(pk)", vec![])
    }

    /// Puts `next` only if the reservation is still `current`'s version and PENDING (and, with
    /// `live_at`, not yet due then).
    pub(crate) fn reservation_guard(
        &self,
        current: &Reservation,
        next: &Reservation,
        live_at: Option<&DateTime<Utc>>,
    ) -> Result<TransactWriteItem> {
        let mut condition = "version = :v AND #status = :pending".to_owned();
        let mut values = vec![(":v", n(current.version)), (":pending", s("PENDING"))];
        if let Some(now) = live_at {
            condition.push_str(" AND expiresAt > :now");
            values.push((":now", s(timestamp::format(now))));
        }
        let mut item = reservation_item(next)?;
        if next.status.is_final() {
            item.insert(TTL.to_owned(), n(self.retained_until(next.created_at)));
        }
        let mut guard = self.put(item, &condition, values)?;
        if let Some(put) = guard.put.as_mut() {
            put.expression_attribute_names = Some([("#status".to_owned(), "status".to_owned())].into());
        }
        Ok(guard)
    }

    /// The outbox record of a transition, and its key.
    pub(crate) fn transition_event(
        &self,
        next: &Reservation,
        transition: Transition,
        ctx: &WriteContext,
    ) -> Result<(TransactWriteItem, Item)> {
        let data = serde_json::to_value(next).map_err(Error::internal)?;
        let event = ctx.event(transition.event(), data, next.updated_at);
        Ok((self.outbox(&event)?, outbox_key(&event)))
    }

    /// Gives back (or takes out) the units of holds, per item: guarded so `reserved` never goes
    /// negative.
    pub(crate) fn stock_updates(
        &self,
        deltas: &StockDeltas,
        now: &DateTime<Utc>,
    ) -> Result<Vec<TransactWriteItem>> {
        deltas
            .iter()
            .map(|((sku, location_id, shard), (on_hand_delta, reserved_delta))| {
                let update = if *on_hand_delta == 0 {
                    "SET reserved = reserved - :q, available = available + :q, version = version + :one, updatedAt = :now"
                } else {
                    "SET onHand = onHand - :q, reserved = reserved - :q, version = version + :one, updatedAt = :now"
                };
                self.update(
                    shard_key(sku, location_id, *shard),
                    update,
                    "reserved >= :q",
                    vec![(":q", n(-reserved_delta)), (":one", n(1)), (":now", s(timestamp::format(now)))],
                )
            })
            .collect()
    }
    /// Takes `quantity` units of an item's shard into holds, if it has them available.
    pub(crate) fn take_units(
        &self,
        sku: &str,
        location_id: &str,
        shard: u32,
        (quantity, safety): (i64, i64),
        now: &DateTime<Utc>,
    ) -> Result<TransactWriteItem> {
        // The units a channel keeps back are in the condition, never judged on a read before it.
        self.update(
            shard_key(sku, location_id, shard),
            "SET reserved = reserved + :q, available = available - :q, version = version + :one, updatedAt = :now",
            "attribute_exists(pk) AND available >= :need",
            vec![
                (":q", n(quantity)),
                (":need", n(quantity + safety)),
                (":one", n(1)),
                (":now", s(timestamp::format(now))),
            ],
        )
    }
}
