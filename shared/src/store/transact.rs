//! The transaction primitive: a `TransactWriteItems` built action by action (`Tx`: each action
//! whose condition matters gets a typed `Slot`, checked against the write's count of actions),
//! sent until DynamoDB answers it for sure (`Store::commit`), and what came back: committed,
//! cancelled by the conditions of named slots (the domain's answer), or a failure to retry
//! (conflict, throttling, unreachable) or to report. Also the one write outside a transaction:
//! an event recorded once (`record_event`).

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem};

use std::sync::atomic::{AtomicBool, Ordering};

use super::idempotency::Answer;
use super::items::{outbox_item, Item};
use super::retry::{classify, retryable_reason, Failure};
use super::{Store, WriteContext};
use crate::domain::{Keyed, Write, MAX_ACTIONS};
use crate::error::{Error, Result};
use crate::events::OutboxEvent;

/// A transaction being built: its actions in order, and the write they were counted as
/// ([`Write::actions`], which the built transaction must match).
pub(crate) struct Tx {
    write: Write,
    actions: Vec<TransactWriteItem>,
}

/// Where an action sits in its transaction, with what it is about (`key`): a cancellation is read
/// by slot, never by counting positions.
#[derive(Debug, Clone)]
pub(crate) struct Slot<K = ()> {
    index: usize,
    pub(crate) key: K,
}

impl Tx {
    pub(crate) fn new(write: Write) -> Tx {
        Tx { write, actions: Vec::with_capacity(write.actions(Keyed::Yes)) }
    }

    /// Adds an action whose condition the caller reads back by its slot.
    pub(crate) fn push(&mut self, action: TransactWriteItem) -> Slot {
        self.push_for((), action)
    }

    /// Adds an action about `key` (a stock item, say).
    pub(crate) fn push_for<K>(&mut self, key: K, action: TransactWriteItem) -> Slot<K> {
        self.actions.push(action);
        Slot { index: self.actions.len() - 1, key }
    }

    /// Adds actions whose conditions nobody reads back (records put once, hold items).
    pub(crate) fn extend(&mut self, actions: impl IntoIterator<Item = TransactWriteItem>) {
        self.actions.extend(actions);
    }

    /// The actions, checked against the count of the write (with the idempotency record when
    /// `keyed`) and against DynamoDB's limit.
    fn finish(self, keyed: Keyed) -> Result<Vec<TransactWriteItem>> {
        let counted = self.write.actions(keyed);
        let built = self.actions.len() + usize::from(keyed == Keyed::Yes);
        debug_assert_eq!(built, counted, "{:?} built {built} actions, counted {counted}", self.write);
        if built > MAX_ACTIONS {
            return Err(Error::internal(format!("{:?}: {built} actions in one transaction", self.write)));
        }
        Ok(self.actions)
    }
}

/// What a transaction came to when DynamoDB answered it.
pub(crate) enum TxOutcome {
    Committed,
    /// At least one condition failed; nothing was written.
    Cancelled(Cancelled),
    /// With [`OnConflict::GiveWay`]: the first attempt met another transaction on one of its
    /// items; nothing was written.
    GaveWay,
}

/// What a transaction does when its first attempt meets another transaction (a definite "not
/// applied").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnConflict {
    /// Sends it again, within the retry policy.
    Retry,
    /// Answers [`TxOutcome::GaveWay`] at once: the caller decides again (a reserve on a sharded
    /// item picks another shard; a confirm writes at a new moment).
    GiveWay,
}

/// Which conditions cancelled a transaction, per action.
pub(crate) struct Cancelled {
    /// Per action: `Some(old item, or empty if there was none)` if its condition failed.
    failed: Vec<Option<Item>>,
}

impl Cancelled {
    /// Whether the condition of the action in `slot` failed.
    pub(crate) fn failed<K>(&self, slot: &Slot<K>) -> bool {
        self.old_item(slot).is_some()
    }

    /// The item as it was when the condition of the action in `slot` failed (empty if absent).
    pub(crate) fn old_item<K>(&self, slot: &Slot<K>) -> Option<&Item> {
        self.failed.get(slot.index).and_then(Option::as_ref)
    }

    /// The slots among `slots` whose condition failed, with the item as it was.
    pub(crate) fn failures<'a, K>(&'a self, slots: &'a [Slot<K>]) -> impl Iterator<Item = (&'a K, &'a Item)> {
        slots.iter().filter_map(|slot| Some((&slot.key, self.old_item(slot)?)))
    }
}

impl Store {
    /// One `TransactWriteItems` attempt. `Err(Retry)` when it collided or was throttled or the
    /// reply did not come; `Err(Fatal)` otherwise.
    pub(crate) async fn transact(
        &self,
        actions: &[TransactWriteItem],
        token: &str,
    ) -> Result<TxOutcome, Failure> {
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions.to_vec()))
            .client_request_token(token)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let err = match sent {
            Ok(out) => {
                let units = out.consumed_capacity().iter().filter_map(|c| c.capacity_units()).sum::<f64>();
                self.count_request(Some(units));
                return Ok(TxOutcome::Committed);
            }
            Err(err) => err,
        };
        self.count_request(None);
        let reasons = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                cancelled.cancellation_reasons()
            }
            _ => return Err(classify(err)),
        };
        let condition_failed = |code: Option<&str>| code == Some("ConditionalCheckFailed");
        if reasons.iter().any(|r| condition_failed(r.code())) {
            let failed = reasons
                .iter()
                .map(|r| condition_failed(r.code()).then(|| r.item().cloned().unwrap_or_default()))
                .collect();
            return Ok(TxOutcome::Cancelled(Cancelled { failed }));
        }
        if let Some(kind) = reasons.iter().find_map(|r| retryable_reason(r.code())) {
            return Err(Failure::Retry(kind));
        }
        Err(classify(err))
    }

    /// Sends one transaction until DynamoDB answers it for sure: committed, or cancelled by its
    /// conditions (read by slot), or with [`OnConflict::GiveWay`], gave way to another. Retries
    /// never apply it twice (RELIABILITY.md, "How a write is sent"). With a claim on an
    /// `Idempotency-Key` in `ctx`, the key's record (and `answer`) goes with the change.
    pub(crate) async fn commit(
        &self,
        operation: &'static str,
        tx: Tx,
        marker: Item,
        answer: Option<&Answer>,
        ctx: &WriteContext,
        on_conflict: OnConflict,
    ) -> Result<TxOutcome> {
        let claim = self.claim_action(ctx.claim.as_ref(), answer)?;
        let keyed = if claim.is_some() { Keyed::Yes } else { Keyed::No };
        let mut actions = tx.finish(keyed)?;
        let claim = claim.map(|(put, claim)| {
            actions.push(put);
            (Slot { index: actions.len() - 1, key: () }, claim)
        });
        let token = uuid::Uuid::new_v4().to_string();
        // Set once an attempt has been sent: a later one may find an earlier one applied (its
        // reply lost, or the attempt cut off at the request's deadline).
        let sent_before = AtomicBool::new(false);
        let outcome = self
            .with_retries(operation, || async {
                let resent = sent_before.swap(true, Ordering::Relaxed);
                match self.transact(&actions, &token).await {
                    Ok(TxOutcome::Cancelled(_)) if resent && self.exists(marker.clone()).await? => {
                        Ok(TxOutcome::Committed)
                    }
                    Ok(TxOutcome::Cancelled(c)) if claim.as_ref().is_some_and(|(slot, _)| c.failed(slot)) => {
                        let (_, claim) = claim.as_ref().expect("checked");
                        Err(self.claimed_by_another(claim).await)
                    }
                    // The caller's retry counts it.
                    Err(Failure::Retry("conflict")) if on_conflict == OnConflict::GiveWay && !resent => {
                        Ok(TxOutcome::GaveWay)
                    }
                    other => other,
                }
            })
            .await;
        if let (Ok(TxOutcome::Committed), Some((_, claim))) = (&outcome, &claim) {
            Store::mark_kept(claim);
        }
        outcome
    }

    /// Records an event that goes with no item change (`ReservationConfirmFailed`), once per
    /// event id: `false` if it was recorded already.
    pub async fn record_event(&self, event: &OutboxEvent) -> Result<bool> {
        self.with_retries("record_event", || async {
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(outbox_item(event)))
                .condition_expression("attribute_not_exists(pk)")
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match out {
                Ok(out) => {
                    self.count_request(out.consumed_capacity().and_then(|c| c.capacity_units()));
                    Ok(true)
                }
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    self.count_request(None);
                    Ok(false)
                }
                Err(e) => Err(classify(e)),
            }
        })
        .await
    }
}
