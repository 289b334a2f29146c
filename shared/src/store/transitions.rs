//! Confirm, release, extend and expire: read the reservation, let the state machine decide, then
//! write one transaction keyed on the reservation's version and PENDING status, with the per-item
//! stock updates and the outbox record. A racer that loses re-reads and decides again.

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::{DateTime, Utc};

use super::actions::released_holds;
use super::idempotency::Answer;
use super::items::{from_item, ledger_seq_of, movement_item, n, number_attr, s, shard_key, LEDGER_SEQ};
use super::retry::Failure;
use super::transact::{OnConflict, Tx, TxOutcome};
use super::{Store, Transitioned, WriteContext};
use crate::domain::{
    decide, stock_deltas, timestamp, Action, Decision, Movement, MovementKind, Provenance, Reservation,
    ShardKey, StockDeltas, StockItem, Transition, Write,
};
use crate::error::{Error, Result};

impl Store {
    /// Confirms a PENDING, live hold: its units leave onHand (a SOLD movement per item, naming
    /// the context's actor).
    pub async fn confirm(&self, id: &str, ctx: &WriteContext) -> Result<Transitioned> {
        self.transition(id, Action::Confirm, None, ctx).await
    }

    pub async fn release(&self, id: &str, ctx: &WriteContext) -> Result<Transitioned> {
        self.transition(id, Action::Release, None, ctx).await
    }

    pub async fn extend(&self, id: &str, ttl_seconds: i64, ctx: &WriteContext) -> Result<Transitioned> {
        self.transition(id, Action::Extend, Some(ttl_seconds), ctx).await
    }

    /// Expires the hold if it is still PENDING and due; `applied == false` if it was not.
    pub async fn expire(&self, id: &str, ctx: &WriteContext) -> Result<Transitioned> {
        self.transition(id, Action::Expire, None, ctx).await
    }

    async fn transition(
        &self,
        id: &str,
        action: Action,
        ttl_seconds: Option<i64>,
        ctx: &WriteContext,
    ) -> Result<Transitioned> {
        self.with_retries("transition", || async {
            let current = self.read_reservation(id).await?;
            let now = self.now();
            match decide(&current, action, now) {
                Decision::Unchanged => Ok(Transitioned { reservation: current, applied: false }),
                Decision::Refuse(e) => Err(e.into()),
                Decision::Apply(transition) => {
                    let next = current.after(transition, ttl_seconds, now);
                    if transition == Transition::Extend {
                        self.check_hold_lifetime(next.created_at, next.expires_at)?;
                    }
                    let answer = Answer::new(200, &next)?;
                    self.apply(&current, &next, transition, ctx, Some(&answer)).await?;
                    Ok(Transitioned { reservation: next, applied: true })
                }
                Decision::ExpireThenFail(e) => {
                    let next = current.after(Transition::Expire, None, now);
                    // The request fails, so it keeps no answer.
                    self.apply(&current, &next, Transition::Expire, ctx, None).await?;
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
        ctx: &WriteContext,
        answer: Option<&Answer>,
    ) -> Result<(), Failure> {
        let (event, marker) = self.transition_event(next, transition, ctx)?;
        let deltas = stock_deltas([current], transition);
        let (shard_items, holds) = (deltas.len(), current.units().len());
        let write = match transition {
            Transition::Confirm => Write::Confirm { shard_items, holds },
            Transition::Release | Transition::Expire => Write::Release { shard_items, holds },
            Transition::Extend => Write::Extend,
        };
        let mut tx = Tx::new(write);
        // Confirm and extend hold only while the hold lives: checked at the moment of the write
        // (docs/api.md), taken after the reads the confirm makes, not only at the read that decided
        // it. A hold found expired by then is read again, and the decision (expiry on the spot,
        // 410) is made anew.
        let sold = if transition == Transition::Confirm {
            Some(self.sold(current, &deltas, &next.updated_at, ctx).await?)
        } else {
            None
        };
        let live_at = matches!(transition, Transition::Confirm | Transition::Extend).then(|| self.now());
        let guard = tx.push(self.reservation_guard(current, next, live_at.as_ref())?);
        let mut takes = Vec::new();
        match sold {
            Some(sold) => {
                for (key, update, movement) in sold {
                    takes.push(tx.push_for(key, update));
                    tx.push(movement);
                }
            }
            None => tx.extend(self.stock_updates(&deltas, &next.updated_at)?),
        }
        tx.push(event);
        if transition != Transition::Extend {
            tx.extend(self.holds(current, released_holds(current))?);
        }
        // A conflict is a definite "not applied": with a moment in the condition, decide again
        // and write at a new moment rather than send the same write later.
        let on_conflict = if live_at.is_some() { OnConflict::GiveWay } else { OnConflict::Retry };
        match self.commit("transition", tx, marker, answer, ctx, on_conflict).await? {
            TxOutcome::Committed => Ok(()),
            TxOutcome::GaveWay => Err(Failure::Retry("conflict")),
            TxOutcome::Cancelled(c) if c.failed(&guard) => Err(Failure::Stale),
            // A confirm is keyed on the items' versions too (its ledger entries name them): an
            // item written since it was read is read again, unless it has too few units reserved.
            TxOutcome::Cancelled(c)
                if c.failures(&takes).all(|((_, units), old)| {
                    number_attr(old, "reserved").is_some_and(|reserved| reserved >= *units)
                }) && transition == Transition::Confirm =>
            {
                Err(Failure::Stale)
            }
            TxOutcome::Cancelled(_) => Err(Failure::Fatal(Error::internal(format!(
                "stock item of reservation {} has fewer units reserved than the hold",
                current.reservation_id
            )))),
        }
    }

    /// A confirm's stock updates: per shard item, the units leave onHand and reserved, keyed on
    /// the item's version as just read, and a `SOLD` movement of the ledger (reference: the
    /// reservationId). Per item: its key with the units reserved it takes, the update, the
    /// movement.
    async fn sold(
        &self,
        reservation: &Reservation,
        deltas: &StockDeltas,
        now: &DateTime<Utc>,
        ctx: &WriteContext,
    ) -> Result<Vec<((ShardKey, i64), TransactWriteItem, TransactWriteItem)>, Failure> {
        let reads =
            deltas.keys().map(|(sku, location_id, shard)| self.get_item(shard_key(sku, location_id, *shard)));
        let items = futures::future::try_join_all(reads).await?;
        let provenance = ctx.provenance(&Provenance {
            reference: Some(reservation.reservation_id.clone()),
            ..Provenance::default()
        });
        let mut sold = Vec::with_capacity(deltas.len());
        for ((key, (on_hand_delta, reserved_delta)), item) in deltas.iter().zip(items) {
            let (sku, location_id, shard) = key;
            let item = item.ok_or_else(|| {
                Error::internal(format!(
                    "stock item {sku}/{location_id} (shard {shard}) of a hold does not exist"
                ))
            })?;
            // The movement's ledger position: the next of its shard's.
            let seq = ledger_seq_of(&item) + 1;
            let item: StockItem = from_item(item)?;
            let update = self.update(
                shard_key(sku, location_id, *shard),
                &format!(
                    "SET onHand = onHand + :d, reserved = reserved + :r, version = version + :one, \
                     updatedAt = :now, {LEDGER_SEQ} = :seq"
                ),
                "reserved >= :q AND version = :v",
                vec![
                    (":d", n(on_hand_delta)),
                    (":r", n(reserved_delta)),
                    (":q", n(-reserved_delta)),
                    (":v", n(item.version)),
                    (":one", n(1)),
                    (":now", s(timestamp::format(now))),
                    (":seq", n(seq)),
                ],
            )?;
            let movement = Movement::new(
                MovementKind::Sold,
                item.version + 1,
                *on_hand_delta,
                item.on_hand + on_hand_delta,
                *now,
                &provenance,
            )
            .on_shard(*shard, item.shards as usize);
            let movement = self.put(
                movement_item(sku, location_id, seq, &movement)?,
                "attribute_not_exists(pk)",
                vec![],
            )?;
            sold.push(((key.clone(), -reserved_delta), update, movement));
        }
        Ok(sold)
    }
}
