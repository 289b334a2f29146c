//! Reserve: one transaction with no read first. Action 0 is the order key (`attribute_not_exists`:
//! the idempotency of reserve), action `1 + i` takes line `i`'s units
//! (`reserved += q, available -= q IF available >= q`), then the reservation and its outbox record.
//! A rejection means the stock really was short at that instant, never "someone else wrote first".

use super::idempotency::Answer;
use super::items::{
    n, number_attr, order_item, outbox_key, reservation_item, s, stock_key, string_attr, Item,
};
use super::transact::TxOutcome;
use super::{Reserved, Store};
use crate::domain::{timestamp, Line, Reservation};
use crate::error::{Error, Result, Shortfall};
use crate::events::{DetailType, OutboxEvent};

/// The index of the order key among a reserve's actions.
const ORDER_KEY_ACTION: usize = 0;

/// The index of line `i`'s stock update among a reserve's actions.
fn line_action(i: usize) -> usize {
    ORDER_KEY_ACTION + 1 + i
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
        let now = self.now();
        let reservation = Reservation::new(order_id.to_owned(), lines, ttl_seconds, now);
        let data = serde_json::to_value(&reservation).map_err(Error::internal)?;
        let event = OutboxEvent::new(DetailType::ReservationCreated, data, now, correlation_id);
        let mut actions = Vec::with_capacity(reservation.lines.len() + 3);
        actions.push(self.put(
            order_item(order_id, &reservation.reservation_id),
            "attribute_not_exists(pk)",
            vec![],
        )?);
        for line in &reservation.lines {
            actions.push(self.update(
                stock_key(&line.sku, &line.location_id),
                "SET reserved = reserved + :q, available = available - :q, version = version + :one, updatedAt = :now",
                "attribute_exists(pk) AND available >= :q",
                vec![(":q", n(line.quantity)), (":one", n(1)), (":now", s(timestamp::format(&now)))],
            )?);
        }
        actions.push(self.put(reservation_item(&reservation)?, "attribute_not_exists(pk)", vec![])?);
        actions.push(self.outbox(&event)?);

        let answer = Answer::new(201, &reservation)?;
        let cancelled = match self.commit("reserve", actions, outbox_key(&event), Some(&answer)).await? {
            TxOutcome::Committed => return Ok(Reserved { reservation, created: true }),
            TxOutcome::Cancelled(cancelled) => cancelled,
        };
        if let Some(order) = cancelled.old_item(ORDER_KEY_ACTION) {
            return self.existing_order_reservation(order_id, &reservation.lines, order).await;
        }
        let mut shortfalls = Vec::new();
        for (i, line) in reservation.lines.iter().enumerate() {
            let Some(old) = cancelled.old_item(line_action(i)) else { continue };
            let Some(available) = number_attr(old, "available") else {
                return Err(Error::NotFound {
                    what: "stock item",
                    id: format!("{}/{}", line.sku, line.location_id),
                });
            };
            shortfalls.push(Shortfall {
                sku: line.sku.clone(),
                location_id: Some(line.location_id.clone()),
                requested: line.quantity,
                available,
            });
        }
        if shortfalls.is_empty() {
            return Err(Error::internal("reserve cancelled by a condition on no known item"));
        }
        Err(Error::InsufficientStock { lines: shortfalls })
    }

    /// A reserve found the order key taken: the same merged lines are a safe retry, others a
    /// conflict.
    async fn existing_order_reservation(
        &self,
        order_id: &str,
        lines: &[Line],
        order: &Item,
    ) -> Result<Reserved> {
        let existing = match string_attr(order, "reservationId") {
            Some(id) => self.get_reservation(&id).await?,
            None => self.get_order_reservation(order_id).await?,
        };
        if existing.lines == lines {
            Ok(Reserved { reservation: existing, created: false })
        } else {
            Err(Error::OrderAlreadyReserved { reservation_id: existing.reservation_id })
        }
    }
}
