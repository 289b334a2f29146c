//! Kept answers of `Idempotency-Key` requests (docs/api.md, "Idempotent writes").
//!
//! The HTTP edge gives a request that carries a key a [`Claim`], which reaches the store in the
//! write's context (`WriteContext::claim`). A key belongs to its caller: the record is the key's
//! and the caller's (`IDEM#{key}`, `CALLER#{caller}`), so the same key from two callers is two
//! keys. A write with a claim puts that record (a fingerprint of method, path and body, the
//! answer's status and body, a 24 h TTL) with `attribute_not_exists` in the same transaction as the change,
//! so the answer is kept exactly when the change is made. A concurrent request with the same key
//! loses on that condition and answers with what the winner kept; a request that changed nothing
//! has its answer kept on its own ([`Store::keep_answer`]); a failed request keeps nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem};
use chrono::Duration;
use serde::Serialize;

use super::items::{n, number_attr, s, string_attr, Item, PK, SK, TTL};
use super::retry::{classify, Failure};
use super::Store;
use crate::error::{Error, Result};

/// How long an answer is kept.
pub const KEPT_FOR_HOURS: i64 = 24;

/// A key is free when it has no record, or only one past its 24 h that DynamoDB's TTL has not
/// removed yet (that can take a while, and DynamoDB Local never does it).
const KEY_FREE: &str = "attribute_not_exists(pk) OR #ttl <= :now";

/// A request's claim on an idempotency key.
#[derive(Debug)]
pub struct Claim {
    /// Who sent the key (`http::caller`): the JWT's subject, the IAM principal, or `local`.
    pub caller: String,
    /// The key, as the caller sent it.
    pub key: String,
    /// What identifies the request: method, path and body.
    pub fingerprint: String,
    kept: AtomicBool,
}

impl Claim {
    pub fn new(caller: String, key: String, fingerprint: String) -> Arc<Self> {
        Arc::new(Claim { caller, key, fingerprint, kept: AtomicBool::new(false) })
    }

    /// Whether a write inside the claim kept its answer.
    pub fn kept(&self) -> bool {
        self.kept.load(Ordering::Relaxed)
    }
}

impl Claim {
    /// The claim of part `index` of this request (an item of a batch): its own key and
    /// fingerprint, the same whenever the same request comes again.
    pub fn part(&self, index: usize) -> Arc<Claim> {
        Claim::new(
            self.caller.clone(),
            format!("{}#{index}", self.key),
            format!("{}#{index}", self.fingerprint),
        )
    }
}

/// The answer a write gives its caller, as the HTTP edge sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The JSON body, as sent.
    pub body: String,
}

impl Answer {
    pub fn new(status: u16, body: &impl Serialize) -> Result<Self> {
        Ok(Answer { status, body: serde_json::to_string(body).map_err(Error::internal)? })
    }
}

/// A kept answer and the fingerprint of the request that got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub answer: Answer,
    pub fingerprint: String,
}

impl Kept {
    /// What a request with `claim` gets when this answer is kept under its key: the answer again
    /// (`Replay`) when it is the same request, else `IdempotencyKeyReused`.
    pub fn answer_to(self, claim: &Claim) -> Error {
        if self.fingerprint == claim.fingerprint {
            Error::Replay { status: self.answer.status, body: self.answer.body }
        } else {
            Error::IdempotencyKeyReused { key: claim.key.clone() }
        }
    }
}

/// The record of a claim's key, for its caller.
fn key_of(claim: &Claim) -> Item {
    HashMap::from([
        (PK.into(), s(format!("IDEM#{}", claim.key))),
        (SK.into(), s(format!("CALLER#{}", claim.caller))),
    ])
}

impl Store {
    /// The answer kept under the claim's key for its caller, if any (and not past its 24 h).
    pub async fn kept_answer(&self, claim: &Claim) -> Result<Option<Kept>> {
        let item = self.with_retries("kept_answer", || self.get_item(key_of(claim))).await?;
        let now = self.now().timestamp();
        Ok(item.filter(|i| number_attr(i, TTL).is_none_or(|ttl| ttl > now)).and_then(|i| {
            Some(Kept {
                answer: Answer {
                    status: u16::try_from(number_attr(&i, "status")?).ok()?,
                    body: string_attr(&i, "body")?,
                },
                fingerprint: string_attr(&i, "fingerprint")?,
            })
        }))
    }

    /// Keeps the answer of a request that changed nothing (so wrote no record of its own). If a
    /// concurrent request with the key kept one first: `Err(Replay)` with that answer when it
    /// was this same request, else `Err(IdempotencyKeyReused)`.
    pub async fn keep_answer(&self, claim: &Claim, answer: &Answer) -> Result<()> {
        self.with_retries("keep_answer", || async {
            let sent = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(self.claim_item(claim, answer)))
                .condition_expression(KEY_FREE)
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":now", n(self.now().timestamp()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            match sent {
                Ok(out) => self.count_request(out.consumed_capacity().and_then(|c| c.capacity_units())),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    return Err(self.claimed_by_another(claim).await);
                }
                Err(e) => return Err(classify(e)),
            }
            Ok(())
        })
        .await
    }

    fn claim_item(&self, claim: &Claim, answer: &Answer) -> Item {
        let mut item = key_of(claim);
        item.extend([
            ("entity".to_owned(), s("IDEMPOTENCY")),
            ("fingerprint".to_owned(), s(&claim.fingerprint)),
            ("status".to_owned(), n(answer.status)),
            ("body".to_owned(), s(&answer.body)),
            (TTL.to_owned(), n((self.now() + Duration::hours(KEPT_FOR_HOURS)).timestamp())),
        ]);
        item
    }

    /// The put of the current request's claim with `answer`, when there is a claim.
    pub(crate) fn claim_action(
        &self,
        claim: Option<&Arc<Claim>>,
        answer: Option<&Answer>,
    ) -> Result<Option<(TransactWriteItem, Arc<Claim>)>> {
        let (Some(answer), Some(claim)) = (answer, claim) else { return Ok(None) };
        let claim = Arc::clone(claim);
        let now = n(self.now().timestamp());
        let mut put = self.put(self.claim_item(&claim, answer), KEY_FREE, vec![(":now", now)])?;
        if let Some(put) = put.put.as_mut() {
            put.expression_attribute_names = Some([("#ttl".to_owned(), TTL.to_owned())].into());
        }
        Ok(Some((put, claim)))
    }

    /// A transaction was cancelled by the claim's condition: another request with the key was
    /// applied first. Its answer, if it was this same request; else the key was reused.
    pub(crate) async fn claimed_by_another(&self, claim: &Claim) -> Failure {
        match self.kept_answer(claim).await {
            Ok(Some(kept)) => Failure::Fatal(kept.answer_to(claim)),
            Ok(None) => Failure::Fatal(Error::IdempotencyKeyReused { key: claim.key.clone() }),
            Err(e) => Failure::Fatal(e),
        }
    }

    pub(crate) fn mark_kept(claim: &Claim) {
        claim.kept.store(true, Ordering::Relaxed);
    }
}
