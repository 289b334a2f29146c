//! The store's side of the expiry sweep: pages of due holds from the sparse index, and their
//! expiry, several holds per transaction where they are still as the index saw them.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use chrono::{DateTime, Utc};

use super::actions::released_holds;
use super::items::{due_partition_pk, due_sort_key, from_item, s, Item, GSI1};
use super::retry::Failure;
use super::transact::{OnConflict, Tx, TxOutcome};
use super::{Store, WriteContext};
use crate::domain::{
    decide, stock_deltas, Action, Decision, Keyed, Reservation, ShardKey, Transition, Write,
};
use crate::error::Result;

/// One page of due holds.
#[derive(Debug, Clone)]
pub struct DuePage {
    pub reservations: Vec<Reservation>,
    /// Items DynamoDB read for the page (its `ScannedCount`).
    pub items_read: u64,
    pub capacity_units: f64,
    /// Where the next page starts, if there is one.
    pub next: Option<Item>,
}

/// Packs holds, in order, into batches for `Store::expire_due_batch`: at most `max_holds` each,
/// and each a transaction that fits ([`Write::ExpireBatch`]: per hold its reservation, its
/// outbox record and the deletes of its hold items, plus each shard item the batch touches, once).
pub fn pack_expiry_batches(holds: Vec<Reservation>, max_holds: usize) -> Vec<Vec<Reservation>> {
    let mut batches = Vec::new();
    let mut batch: Vec<Reservation> = Vec::new();
    let mut shard_items: BTreeSet<ShardKey> = BTreeSet::new();
    let mut hold_items = 0;
    for hold in holds {
        let keys: BTreeSet<ShardKey> = hold.units().into_keys().collect();
        let with_it = Write::ExpireBatch {
            reservations: batch.len() + 1,
            shard_items: shard_items.union(&keys).count(),
            holds: hold_items + hold.units().len(),
        };
        if !batch.is_empty() && (batch.len() >= max_holds.max(1) || !with_it.fits(Keyed::No)) {
            batches.push(std::mem::take(&mut batch));
            shard_items.clear();
            hold_items = 0;
        }
        shard_items.extend(keys);
        hold_items += hold.units().len();
        batch.push(hold);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

impl Store {
    /// One page of PENDING holds due at `now` from one partition of the sparse due-holds index
    /// (eventually consistent: a hold may have moved on since; `expire_due` re-checks).
    pub async fn due_page(
        &self,
        partition: u32,
        now: DateTime<Utc>,
        start: Option<Item>,
        limit: i32,
    ) -> Result<DuePage> {
        let query = |q: QueryFluentBuilder| {
            q.index_name(GSI1)
                .key_condition_expression("gsi1pk = :partition AND gsi1sk < :due")
                .expression_attribute_values(":partition", s(due_partition_pk(partition)))
                // Every key of a hold due at or before `now` sorts below "{now}#~".
                .expression_attribute_values(":due", s(due_sort_key(&now, "~")))
                .limit(limit)
        };
        let out = self.with_retries("due_page", || self.query_once(&query, start.clone())).await?;
        let capacity_units = out.consumed_capacity().and_then(|c| c.capacity_units()).unwrap_or_default();
        let reservations = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item::<Reservation>)
            .collect::<Result<Vec<_>>>()?;
        Ok(DuePage {
            reservations,
            items_read: out.scanned_count.max(0) as u64,
            capacity_units,
            next: out.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// Expires a hold found by `due_page`, writing straight from the index item (one request)
    /// when it is still as the index saw it, else re-reading and deciding again. `Ok(false)`
    /// when it was no longer PENDING and due: confirmed, released, extended or already expired.
    pub async fn expire_due(&self, candidate: &Reservation, ctx: &WriteContext) -> Result<bool> {
        let now = self.now();
        if decide(candidate, Action::Expire, now) != Decision::Apply(Transition::Expire) {
            return Ok(false);
        }
        let next = candidate.after(Transition::Expire, None, now);
        let written = self
            .with_retries("expire", || async {
                match self.apply(candidate, &next, Transition::Expire, ctx, None).await {
                    Ok(()) => Ok(true),
                    Err(Failure::Stale) => Ok(false),
                    Err(other) => Err(other),
                }
            })
            .await?;
        if written {
            return Ok(true);
        }
        Ok(self.expire(&candidate.reservation_id, ctx).await?.applied)
    }

    /// Expires several due holds found by `due_page` in one transaction: each hold's write is
    /// keyed on its own version and PENDING status and has its own outbox record; the units they
    /// return are summed per stock item. If any hold moved on since the index was read, each hold
    /// of the batch goes the one-by-one way of `expire_due` instead. Returns how many were
    /// expired; the others had moved on. Batches come from [`pack_expiry_batches`].
    pub async fn expire_due_batch(&self, candidates: &[Reservation], ctx: &WriteContext) -> Result<usize> {
        let now = self.now();
        let due: Vec<&Reservation> = candidates
            .iter()
            .filter(|c| decide(c, Action::Expire, now) == Decision::Apply(Transition::Expire))
            .collect();
        if due.len() <= 1 {
            return self.expire_one_by_one(&due, ctx).await;
        }
        let deltas = stock_deltas(due.iter().copied(), Transition::Expire);
        let holds = due.iter().map(|r| r.units().len()).sum();
        let mut tx =
            Tx::new(Write::ExpireBatch { reservations: due.len(), shard_items: deltas.len(), holds });
        let mut events = Vec::with_capacity(due.len());
        let mut marker = None;
        for current in &due {
            let next = current.after(Transition::Expire, None, now);
            tx.push(self.reservation_guard(current, &next, None)?);
            let (event, key) = self.transition_event(&next, Transition::Expire, ctx)?;
            events.push(event);
            marker = Some(key);
        }
        tx.extend(self.stock_updates(&deltas, &now)?);
        tx.extend(events);
        for current in &due {
            tx.extend(self.holds(current, released_holds(current))?);
        }
        let marker = marker.unwrap_or_default();
        match self.commit("expire_batch", tx, marker, None, ctx, OnConflict::Retry).await? {
            TxOutcome::Committed => Ok(due.len()),
            // A hold moved on since the index was read (or the batch met another transaction).
            TxOutcome::Cancelled(_) | TxOutcome::GaveWay => self.expire_one_by_one(&due, ctx).await,
        }
    }

    async fn expire_one_by_one(&self, due: &[&Reservation], ctx: &WriteContext) -> Result<usize> {
        let mut expired = 0;
        for candidate in due {
            expired += usize::from(self.expire_due(candidate, ctx).await?);
        }
        Ok(expired)
    }
}
