//! The transaction primitive: building the conditional actions of a `TransactWriteItems`, sending
//! it, and classifying what came back: committed, cancelled by the conditions of named items (the
//! domain's answer), or a failure to retry (conflict, throttling, unreachable) or to report.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};

use std::sync::atomic::{AtomicBool, Ordering};

use super::idempotency::Answer;
use super::items::{hold_item, hold_key, outbox_item, Item};
use super::retry::{classify, retryable_reason, Failure};
use super::Store;
use crate::domain::Reservation;
use crate::error::{Error, Result};
use crate::events::OutboxEvent;

/// What a transaction came to when DynamoDB answered it.
pub(crate) enum TxOutcome {
    Committed,
    /// At least one condition failed; nothing was written.
    Cancelled(Cancelled),
}

/// Which conditions cancelled a transaction, per action index.
pub(crate) struct Cancelled {
    /// Per action: `Some(old item, or empty if there was none)` if its condition failed.
    failed: Vec<Option<Item>>,
}

impl Cancelled {
    /// Whether the condition of action `index` failed.
    pub(crate) fn failed(&self, index: usize) -> bool {
        self.old_item(index).is_some()
    }

    /// The item as it was when the condition of action `index` failed (empty if absent).
    pub(crate) fn old_item(&self, index: usize) -> Option<&Item> {
        self.failed.get(index).and_then(Option::as_ref)
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

    /// Sends one transaction until DynamoDB answers it for sure, within the retry policy:
    /// conflicts and throttling (not applied) are sent again, and so is a transaction whose reply
    /// never came (it may have been applied): the identical actions with the same
    /// `ClientRequestToken`, which DynamoDB answers without applying them twice. Should that
    /// resend be cancelled by its own conditions all the same, the transaction's outbox record
    /// (`marker`, a key only this transaction writes) tells whether the first attempt was applied.
    /// So no write is ever applied twice by these retries, and only a definite answer (a
    /// cancellation by the conditions) reaches the caller, which may then re-read.
    pub(crate) async fn commit(
        &self,
        operation: &'static str,
        actions: Vec<TransactWriteItem>,
        marker: Item,
        answer: Option<&Answer>,
    ) -> Result<TxOutcome> {
        let outcome = self.commit_or_conflict(operation, actions, marker, answer, false).await?;
        Ok(outcome.expect("conflicts are retried here"))
    }

    /// [`Store::commit`], but when `give_way` and the first attempt meets a transaction conflict
    /// (which is a definite "not applied"), `None` at once instead of sending the same actions
    /// again: a reserve on a sharded item then picks another shard rather than waiting for the
    /// busy one. Conflicts after an attempt without a reply are retried here as always.
    pub(crate) async fn commit_or_conflict(
        &self,
        operation: &'static str,
        mut actions: Vec<TransactWriteItem>,
        marker: Item,
        answer: Option<&Answer>,
        give_way: bool,
    ) -> Result<Option<TxOutcome>> {
        // Inside an `Idempotency-Key` request, the key's record goes with the change.
        let claim = self.claim_action(answer)?.map(|(put, claim)| {
            actions.push(put);
            (actions.len() - 1, claim)
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
                        Ok(Some(TxOutcome::Committed))
                    }
                    Ok(TxOutcome::Cancelled(c)) if claim.as_ref().is_some_and(|(i, _)| c.failed(*i)) => {
                        let (_, claim) = claim.as_ref().expect("checked");
                        Err(self.claimed_by_another(claim).await)
                    }
                    // The caller's retry counts it.
                    Err(Failure::Retry("conflict")) if give_way && !resent => Ok(None),
                    other => other.map(Some),
                }
            })
            .await;
        if let (Ok(Some(TxOutcome::Committed)), Some((_, claim))) = (&outcome, &claim) {
            Store::mark_kept(claim);
        }
        outcome
    }

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

    /// The hold items of a reservation's lines: put (with their quantities) or, with `None`,
    /// deleted.
    pub(crate) fn holds(
        &self,
        reservation: &Reservation,
        lines: impl IntoIterator<Item = (String, String, Option<i64>)>,
    ) -> Result<Vec<TransactWriteItem>> {
        lines
            .into_iter()
            .map(|(sku, location_id, quantity)| match quantity {
                Some(q) => self.put(hold_item(&sku, &location_id, reservation, q), "", vec![]),
                None => self.delete(hold_key(&sku, &location_id, reservation)),
            })
            .collect()
    }

    /// The outbox record of an event, put once.
    pub(crate) fn outbox(&self, event: &OutboxEvent) -> Result<TransactWriteItem> {
        self.put(outbox_item(event), "attribute_not_exists(pk)", vec![])
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
