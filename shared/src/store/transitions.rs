//! Confirm, release, extend and expire: read the reservation, let the state machine decide, then
//! write one transaction keyed on the reservation's version and PENDING status, with the per-item
//! stock updates and the outbox record. A racer that loses re-reads and decides again.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};

use super::idempotency::Answer;
use super::items::{n, outbox_key, reservation_item, s, stock_key, Item};
use super::retry::Failure;
use super::transact::TxOutcome;
use super::{Store, Transitioned};
use crate::domain::{decide, stock_deltas, timestamp, Action, Decision, Reservation, Transition};
use crate::error::{Error, Result};
use crate::events::OutboxEvent;

impl Store {
    pub async fn confirm(&self, id: &str, correlation_id: Option<&str>) -> Result<Transitioned> {
        self.transition(id, Action::Confirm, None, correlation_id).await
    }

    pub async fn release(&self, id: &str, correlation_id: Option<&str>) -> Result<Transitioned> {
        self.transition(id, Action::Release, None, correlation_id).await
    }

    pub async fn extend(
        &self,
        id: &str,
        ttl_seconds: i64,
        correlation_id: Option<&str>,
    ) -> Result<Transitioned> {
        self.transition(id, Action::Extend, Some(ttl_seconds), correlation_id).await
    }

    /// Expires the hold if it is still PENDING and due; `applied == false` if it was not.
    pub async fn expire(&self, id: &str, correlation_id: Option<&str>) -> Result<Transitioned> {
        self.transition(id, Action::Expire, None, correlation_id).await
    }

    async fn transition(
        &self,
        id: &str,
        action: Action,
        ttl_seconds: Option<i64>,
        correlation_id: Option<&str>,
    ) -> Result<Transitioned> {
        self.with_retries("transition", || async {
            let current = self.read_reservation(id).await?;
            let now = self.now();
            match decide(&current, action, now) {
                Decision::Unchanged => Ok(Transitioned { reservation: current, applied: false }),
                Decision::Refuse(e) => Err(e.into()),
                Decision::Apply(transition) => {
                    let next = current.after(transition, ttl_seconds, now);
                    let answer = Answer::new(200, &next)?;
                    self.apply(&current, &next, transition, correlation_id, Some(&answer)).await?;
                    Ok(Transitioned { reservation: next, applied: true })
                }
                Decision::ExpireThenFail(e) => {
                    let next = current.after(Transition::Expire, None, now);
                    // The request fails, so it keeps no answer.
                    self.apply(&current, &next, Transition::Expire, correlation_id, None).await?;
                    Err(e.into())
                }
            }
        })
        .await
    }

    /// Writes one transition from `current` to `next`, keyed on `current`'s version and PENDING
    /// status. `Err(Stale)` when the reservation changed since it was read.
    pub(crate) async fn apply(
        &self,
        current: &Reservation,
        next: &Reservation,
        transition: Transition,
        correlation_id: Option<&str>,
        answer: Option<&Answer>,
    ) -> Result<(), Failure> {
        let (event, marker) = self.transition_event(next, transition, correlation_id)?;
        let mut actions = vec![self.reservation_guard(current, next, None)?];
        actions.extend(self.stock_updates(&stock_deltas([current], transition), &next.updated_at)?);
        actions.push(event);
        match self.commit("transition", actions, marker, answer).await? {
            TxOutcome::Committed => Ok(()),
            TxOutcome::Cancelled(c) if c.failed(0) => Err(Failure::Stale),
            TxOutcome::Cancelled(_) => Err(Failure::Fatal(Error::internal(format!(
                "stock item of reservation {} has fewer units reserved than the hold",
                current.reservation_id
            )))),
        }
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
        let mut guard = self.put(reservation_item(next)?, &condition, values)?;
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
        correlation_id: Option<&str>,
    ) -> Result<(TransactWriteItem, Item)> {
        let data = serde_json::to_value(next).map_err(Error::internal)?;
        let event = OutboxEvent::new(transition.event(), data, next.updated_at, correlation_id);
        Ok((self.outbox(&event)?, outbox_key(&event)))
    }

    /// Gives back (or takes out) the units of holds, per item: guarded so `reserved` never goes
    /// negative.
    pub(crate) fn stock_updates(
        &self,
        deltas: &BTreeMap<(String, String), (i64, i64)>,
        now: &DateTime<Utc>,
    ) -> Result<Vec<TransactWriteItem>> {
        deltas
            .iter()
            .map(|((sku, location_id), (on_hand_delta, reserved_delta))| {
                let update = if *on_hand_delta == 0 {
                    "SET reserved = reserved - :q, available = available + :q, version = version + :one, updatedAt = :now"
                } else {
                    "SET onHand = onHand - :q, reserved = reserved - :q, version = version + :one, updatedAt = :now"
                };
                self.update(
                    stock_key(sku, location_id),
                    update,
                    "reserved >= :q",
                    vec![(":q", n(-reserved_delta)), (":one", n(1)), (":now", s(timestamp::format(now)))],
                )
            })
            .collect()
    }
}
