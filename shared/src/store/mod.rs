//! The DynamoDB store. Every write is conditional and bumps the item's version:
//!
//! - reserve is one `TransactWriteItems` with no read first: per line
//!   `reserved += q, available -= q IF available >= q`, plus the reservation, the order key
//!   (`attribute_not_exists`: the idempotency of reserve) and the outbox record. A rejection means
//!   the stock really was short at that instant, never "someone else wrote first".
//! - confirm / release / extend / expire read the reservation, decide with the pure state machine,
//!   then write one transaction keyed on the reservation's version and PENDING status, with the
//!   per-line stock updates and the outbox record. A racer that loses re-reads and re-decides.
//! - stock PUT / adjustments read the item and write it back `IF version = :read`, so the event can
//!   carry the new item and its delta; `expectedVersion` is checked against that read.
//!
//! Condition failures are told apart from transaction conflicts and throttling by the per-item
//! cancellation reasons; the latter (and timeouts) are retried with capped, jittered backoff.

pub mod items;
mod retry;
mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

pub use items::{Item, PENDING_SHARDS};
pub use retry::RetryPolicy;
pub use schema::{create_table, delete_table};

use crate::domain::{
    decide, stock_effect, truncate_to_millis, Action, Decision, Line, Reservation, SkuStock, StockItem,
    Transition,
};
use crate::error::{Error, Result, Shortfall};
use crate::events::{DetailType, OutboxEvent};
use items::*;
use retry::{classify, retryable_reason, retrying, Failure};

/// The store's notion of "now"; tests substitute a clock that can be moved forward.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Counters of what the store asked DynamoDB, for benchmarks and tests.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    /// Consumed capacity units, in thousandths (when DynamoDB reports them).
    pub capacity_milli: AtomicU64,
}

impl StoreStats {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    pub fn capacity_units(&self) -> f64 {
        self.capacity_milli.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// `PUT /v1/stock/{sku}/{locationId}` or an adjustment, as the store sees it.
#[derive(Debug, Clone)]
pub enum StockChange {
    Set { on_hand: i64 },
    Adjust { delta: i64 },
}

/// Result of a stock write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockWrite {
    pub item: StockItem,
    pub created: bool,
}

/// Result of a reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub reservation: Reservation,
    /// `false` when the orderId already had this reservation (a safe retry).
    pub created: bool,
}

/// The most actions one `TransactWriteItems` may carry.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// Packs holds, in order, into batches for `Store::expire_due_batch`: at most `max_holds` each,
/// and at most [`MAX_TRANSACTION_ITEMS`] actions (per hold its reservation and outbox record,
/// plus each stock item the batch touches, once).
pub fn pack_expiry_batches(holds: Vec<Reservation>, max_holds: usize) -> Vec<Vec<Reservation>> {
    let mut batches = Vec::new();
    let mut batch: Vec<Reservation> = Vec::new();
    let mut stock_keys: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut items = 0;
    for hold in &holds {
        let new_keys: BTreeSet<(&str, &str)> = hold
            .lines
            .iter()
            .map(|l| (l.sku.as_str(), l.location_id.as_str()))
            .filter(|k| !stock_keys.contains(k))
            .collect();
        let cost = 2 + new_keys.len();
        if !batch.is_empty() && (batch.len() >= max_holds.max(1) || items + cost > MAX_TRANSACTION_ITEMS) {
            batches.push(std::mem::take(&mut batch));
            stock_keys.clear();
            items = 0;
        }
        items += 2 + hold.lines.iter().filter(|l| stock_keys.insert((&l.sku, &l.location_id))).count();
        batch.push(hold.clone());
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// The writes of one transition, before they are put in a transaction.
struct TransitionWrites {
    updated: Reservation,
    reservation_put: TransactWriteItem,
    outbox: Option<TransactWriteItem>,
    /// Per `(sku, locationId)`: `(onHand delta, reserved delta)`.
    stock: BTreeMap<(String, String), (i64, i64)>,
}

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

/// Result of a transition request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transitioned {
    pub reservation: Reservation,
    /// `false` when nothing was written (already in the requested state, or not due).
    pub applied: bool,
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
    retry: RetryPolicy,
    clock: Clock,
    stats: Arc<StoreStats>,
}

/// What a transaction's conditions said, per item, when it was cancelled by them.
struct Cancelled {
    /// Per transaction item: `Some(old item or empty)` if its condition failed, `None` if not.
    failed: Vec<Option<Item>>,
}

impl Cancelled {
    fn failed(&self, index: usize) -> bool {
        self.failed.get(index).is_some_and(Option::is_some)
    }
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
            retry: RetryPolicy::default(),
            clock: Arc::new(Utc::now),
            stats: Arc::default(),
        }
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The store's current time, truncated to milliseconds.
    pub fn now(&self) -> DateTime<Utc> {
        truncate_to_millis((self.clock)())
    }

    async fn with_retries<T, F, Fut>(&self, operation: &'static str, attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        retrying(
            &self.retry,
            operation,
            |_| {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
            },
            attempt,
        )
        .await
    }

    fn count_request(&self, capacity: Option<f64>) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(units) = capacity {
            self.stats.capacity_milli.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
        }
    }

    // ---- reads ------------------------------------------------------------------------------

    async fn get_item(&self, key: Item) -> Result<Option<Item>, Failure> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(classify)?;
        self.count_request(out.consumed_capacity().and_then(|c| c.capacity_units()));
        Ok(out.item)
    }

    async fn read_stock(&self, sku: &str, location_id: &str) -> Result<Option<StockItem>, Failure> {
        match self.get_item(stock_key(sku, location_id)).await? {
            Some(item) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
    }

    async fn read_reservation(&self, id: &str) -> Result<Reservation, Failure> {
        match self.get_item(reservation_key(id)).await? {
            Some(item) => Ok(from_item(item)?),
            None => Err(Failure::Fatal(Error::NotFound { what: "reservation", id: id.to_owned() })),
        }
    }

    /// One stock item (strongly consistent).
    pub async fn get_stock(&self, sku: &str, location_id: &str) -> Result<StockItem> {
        self.with_retries("get_stock", || async {
            self.read_stock(sku, location_id).await?.ok_or_else(|| {
                Failure::Fatal(Error::NotFound { what: "stock item", id: format!("{sku}/{location_id}") })
            })
        })
        .await
    }

    /// Every location of a SKU, sorted by locationId, with totals.
    pub async fn get_sku_stock(&self, sku: &str) -> Result<SkuStock> {
        let locations = self
            .with_retries("get_sku_stock", || async {
                let mut locations = Vec::new();
                let mut start: Option<Item> = None;
                loop {
                    let out = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("pk = :pk")
                        .expression_attribute_values(":pk", s(stock_pk(sku)))
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send()
                        .await
                        .map_err(classify)?;
                    self.count_request(out.consumed_capacity().and_then(|c| c.capacity_units()));
                    for item in out.items.unwrap_or_default() {
                        locations.push(from_item::<StockItem>(item)?);
                    }
                    match out.last_evaluated_key {
                        Some(key) if !key.is_empty() => start = Some(key),
                        _ => return Ok(locations),
                    }
                }
            })
            .await?;
        if locations.is_empty() {
            return Err(Error::NotFound { what: "sku", id: sku.to_owned() });
        }
        Ok(SkuStock::new(sku.to_owned(), locations))
    }

    pub async fn get_reservation(&self, id: &str) -> Result<Reservation> {
        self.with_retries("get_reservation", || self.read_reservation(id)).await
    }

    /// The reservation of an order, through the order key.
    pub async fn get_order_reservation(&self, order_id: &str) -> Result<Reservation> {
        self.with_retries("get_order_reservation", || async {
            let order = self.get_item(order_key(order_id)).await?;
            let id = order.as_ref().and_then(|o| string_attr(o, "reservationId")).ok_or_else(|| {
                Failure::Fatal(Error::NotFound { what: "order reservation", id: order_id.to_owned() })
            })?;
            self.read_reservation(&id).await
        })
        .await
    }

    // ---- the transaction primitive ------------------------------------------------------------

    /// One `TransactWriteItems` attempt. `Ok(Err(..))` when conditions cancelled it (the domain's
    /// answer); `Err(Retry)` when it collided or was throttled; `Err(Fatal)` otherwise.
    async fn transact(
        &self,
        actions: &[TransactWriteItem],
        token: &str,
    ) -> Result<Result<(), Cancelled>, Failure> {
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
                return Ok(Ok(()));
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
            return Ok(Err(Cancelled { failed }));
        }
        if let Some(kind) = reasons.iter().find_map(|r| retryable_reason(r.code())) {
            return Err(Failure::Retry(kind));
        }
        Err(classify(err))
    }

    /// Runs one logical transaction with retries (one idempotency token for all its attempts).
    async fn transact_with_retries(
        &self,
        operation: &'static str,
        actions: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Cancelled>> {
        let token = uuid::Uuid::new_v4().to_string();
        self.with_retries(operation, || self.transact(&actions, &token)).await
    }

    fn put(
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

    fn update(
        &self,
        key: Item,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem> {
        let mut builder = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(update)
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (name, attr) in names {
            builder = builder.expression_attribute_names(*name, *attr);
        }
        for (name, value) in values {
            builder = builder.expression_attribute_values(name, value);
        }
        Ok(TransactWriteItem::builder().update(builder.build().map_err(Error::internal)?).build())
    }

    fn outbox(&self, event: &OutboxEvent) -> Result<TransactWriteItem> {
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

    // ---- stock writes -------------------------------------------------------------------------

    /// Sets or adjusts a stock item, keyed on the version just read (and on `expected_version`
    /// when given: 0 means "must not exist yet").
    pub async fn write_stock(
        &self,
        sku: &str,
        location_id: &str,
        change: StockChange,
        expected_version: Option<u64>,
        reason: Option<&str>,
        correlation_id: Option<&str>,
    ) -> Result<StockWrite> {
        self.with_retries("write_stock", || async {
            let current = self.read_stock(sku, location_id).await?;
            let current_version = current.as_ref().map_or(0, |c| c.version);
            if let Some(expected) = expected_version {
                if expected != current_version {
                    return Err(Error::VersionConflict { current_version }.into());
                }
            }
            let (old_on_hand, reserved) = current.as_ref().map_or((0, 0), |c| (c.on_hand, c.reserved));
            let on_hand = match change {
                StockChange::Set { on_hand } => on_hand,
                StockChange::Adjust { delta } => {
                    if current.is_none() {
                        return Err(Error::NotFound {
                            what: "stock item",
                            id: format!("{sku}/{location_id}"),
                        }
                        .into());
                    }
                    old_on_hand + delta
                }
            };
            if on_hand < reserved || on_hand < 0 {
                return Err(Error::StockBelowReserved { on_hand, reserved }.into());
            }
            if on_hand > crate::domain::MAX_ON_HAND {
                return Err(Error::invalid_field("delta", "onHand would exceed its maximum").into());
            }
            let now = self.now();
            let item = StockItem {
                sku: sku.to_owned(),
                location_id: location_id.to_owned(),
                on_hand,
                reserved,
                available: on_hand - reserved,
                version: current_version + 1,
                updated_at: now,
            };
            let mut data = serde_json::to_value(&item).map_err(Error::internal)?;
            data["delta"] = json!(on_hand - old_on_hand);
            data["reason"] = json!(reason);
            let event = OutboxEvent::new(DetailType::StockAdjusted, data, now, correlation_id);
            let guard = match current {
                None => self.put(stock_item(&item)?, "attribute_not_exists(pk)", vec![])?,
                Some(_) => self.put(stock_item(&item)?, "version = :v", vec![(":v", n(current_version))])?,
            };
            let actions = vec![guard, self.outbox(&event)?];
            match self.transact(&actions, &uuid::Uuid::new_v4().to_string()).await? {
                Ok(()) => Ok(StockWrite { item, created: current.is_none() }),
                // Someone wrote the item since our read: read again and re-check.
                Err(_) => Err(Failure::Stale),
            }
        })
        .await
    }

    // ---- reserve ----------------------------------------------------------------------------

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
        let event = OutboxEvent::new(
            DetailType::ReservationCreated,
            serde_json::to_value(&reservation).map_err(Error::internal)?,
            now,
            correlation_id,
        );
        let mut actions = Vec::with_capacity(reservation.lines.len() + 3);
        for line in &reservation.lines {
            actions.push(self.update(
                stock_key(&line.sku, &line.location_id),
                "SET reserved = reserved + :q, available = available - :q, version = version + :one, updatedAt = :now",
                "attribute_exists(pk) AND available >= :q",
                &[],
                vec![(":q", n(line.quantity)), (":one", n(1)), (":now", s(crate::domain::timestamp::format(&now)))],
            )?);
        }
        let order_index = actions.len() + 1;
        actions.push(self.put(reservation_item(&reservation)?, "attribute_not_exists(pk)", vec![])?);
        actions.push(self.put(
            order_item(order_id, &reservation.reservation_id),
            "attribute_not_exists(pk)",
            vec![],
        )?);
        actions.push(self.outbox(&event)?);

        let cancelled = match self.transact_with_retries("reserve", actions).await? {
            Ok(()) => return Ok(Reserved { reservation, created: true }),
            Err(cancelled) => cancelled,
        };
        if cancelled.failed(order_index) {
            return self
                .existing_order_reservation(order_id, &reservation.lines, &cancelled.failed[order_index])
                .await;
        }
        let mut shortfalls = Vec::new();
        for (line, failed) in reservation.lines.iter().zip(&cancelled.failed) {
            let Some(old) = failed else { continue };
            let Some(available) = number_attr(old, "available") else {
                return Err(Error::NotFound {
                    what: "stock item",
                    id: format!("{}/{}", line.sku, line.location_id),
                });
            };
            shortfalls.push(Shortfall {
                sku: line.sku.clone(),
                location_id: line.location_id.clone(),
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
        order: &Option<Item>,
    ) -> Result<Reserved> {
        let existing = match order.as_ref().and_then(|o| string_attr(o, "reservationId")) {
            Some(id) => self.get_reservation(&id).await?,
            None => self.get_order_reservation(order_id).await?,
        };
        if existing.lines == lines {
            Ok(Reserved { reservation: existing, created: false })
        } else {
            Err(Error::OrderAlreadyReserved { reservation_id: existing.reservation_id })
        }
    }

    // ---- transitions --------------------------------------------------------------------------

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

    /// One page of PENDING holds due at `now` from one shard of the sparse due-holds index
    /// (eventually consistent: a hold may have moved on since; `expire_due` re-checks).
    pub async fn due_page(
        &self,
        shard: u32,
        now: DateTime<Utc>,
        start: Option<Item>,
        limit: i32,
    ) -> Result<DuePage> {
        self.with_retries("due_page", || {
            let start = start.clone();
            async move {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(GSI1)
                    .key_condition_expression("gsi1pk = :shard AND gsi1sk < :due")
                    .expression_attribute_values(":shard", s(pending_shard_pk(shard)))
                    // Every key of a hold due at or before `now` sorts below "{now}#~".
                    .expression_attribute_values(":due", s(due_sort_key(&now, "~")))
                    .set_exclusive_start_key(start)
                    .limit(limit)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(classify)?;
                let capacity = out.consumed_capacity().and_then(|c| c.capacity_units());
                self.count_request(capacity);
                let reservations = out
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .map(from_item::<Reservation>)
                    .collect::<Result<Vec<_>>>()?;
                Ok(DuePage {
                    reservations,
                    items_read: out.scanned_count.max(0) as u64,
                    capacity_units: capacity.unwrap_or_default(),
                    next: out.last_evaluated_key.filter(|k| !k.is_empty()),
                })
            }
        })
        .await
    }

    /// Expires a hold found by `due_page`, writing straight from the index item (one request)
    /// when it is still as the index saw it, else re-reading and deciding again. `Ok(false)`
    /// when it was no longer PENDING and due: confirmed, released, extended or already expired.
    pub async fn expire_due(&self, candidate: &Reservation, correlation_id: Option<&str>) -> Result<bool> {
        let now = self.now();
        if decide(candidate, Action::Expire, now) != Decision::Apply(Transition::Expire) {
            return Ok(false);
        }
        let written = self
            .with_retries("expire", || async {
                match self.apply(candidate, Transition::Expire, None, now, correlation_id).await {
                    Ok(_) => Ok(true),
                    Err(Failure::Stale) => Ok(false),
                    Err(other) => Err(other),
                }
            })
            .await?;
        if written {
            return Ok(true);
        }
        Ok(self.expire(&candidate.reservation_id, correlation_id).await?.applied)
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
                    let updated = self.apply(&current, transition, ttl_seconds, now, correlation_id).await?;
                    Ok(Transitioned { reservation: updated, applied: true })
                }
                Decision::ExpireThenFail(e) => {
                    self.apply(&current, Transition::Expire, None, now, correlation_id).await?;
                    Err(e.into())
                }
            }
        })
        .await
    }

    /// Writes one transition keyed on the reservation's version and PENDING status.
    async fn apply(
        &self,
        current: &Reservation,
        transition: Transition,
        ttl_seconds: Option<i64>,
        now: DateTime<Utc>,
        correlation_id: Option<&str>,
    ) -> Result<Reservation, Failure> {
        let writes = self.transition_writes(current, transition, ttl_seconds, now, correlation_id)?;
        let mut actions = vec![writes.reservation_put];
        for ((sku, location_id), (on_hand_delta, reserved_delta)) in &writes.stock {
            actions.push(self.stock_update(sku, location_id, *on_hand_delta, *reserved_delta, &now)?);
        }
        actions.extend(writes.outbox);
        match self.transact(&actions, &uuid::Uuid::new_v4().to_string()).await? {
            Ok(()) => Ok(writes.updated),
            // The reservation changed since we read it: re-read and decide again.
            Err(c) if c.failed(0) => Err(Failure::Stale),
            Err(_) => Err(Failure::Fatal(Error::internal(format!(
                "stock item of reservation {} has fewer units reserved than the hold",
                current.reservation_id
            )))),
        }
    }

    /// The writes of one transition from PENDING: the reservation put keyed on its version and
    /// status, its outbox record (when the contract has an event for it), and its stock deltas.
    fn transition_writes(
        &self,
        current: &Reservation,
        transition: Transition,
        ttl_seconds: Option<i64>,
        now: DateTime<Utc>,
        correlation_id: Option<&str>,
    ) -> Result<TransitionWrites> {
        let mut updated = current.clone();
        updated.status = transition.target();
        updated.version += 1;
        updated.updated_at = now;
        if let (Transition::Extend, Some(ttl)) = (transition, ttl_seconds) {
            updated.expires_at = now + Duration::seconds(ttl);
        }
        let mut reservation_put = self.put(
            reservation_item(&updated)?,
            "version = :v AND #status = :pending",
            vec![(":v", n(current.version)), (":pending", s("PENDING"))],
        )?;
        if let Some(put) = reservation_put.put.as_mut() {
            put.expression_attribute_names = Some([("#status".to_owned(), "status".to_owned())].into());
        }
        let mut stock = BTreeMap::new();
        for line in &updated.lines {
            let (on_hand_delta, reserved_delta) = stock_effect(transition, line.quantity);
            if reserved_delta != 0 {
                stock.insert((line.sku.clone(), line.location_id.clone()), (on_hand_delta, reserved_delta));
            }
        }
        let detail_type = match transition {
            Transition::Confirm => Some(DetailType::ReservationConfirmed),
            Transition::Release => Some(DetailType::ReservationReleased),
            Transition::Expire => Some(DetailType::ReservationExpired),
            // API.md defines no event for an extension: it changes no stock and no status.
            Transition::Extend => None,
        };
        let outbox = match detail_type {
            Some(detail_type) => {
                let data = serde_json::to_value(&updated).map_err(Error::internal)?;
                Some(self.outbox(&OutboxEvent::new(detail_type, data, now, correlation_id))?)
            }
            None => None,
        };
        Ok(TransitionWrites { updated, reservation_put, outbox, stock })
    }

    /// Gives back (or takes out) units of a hold: guarded so `reserved` never goes negative.
    fn stock_update(
        &self,
        sku: &str,
        location_id: &str,
        on_hand_delta: i64,
        reserved_delta: i64,
        now: &DateTime<Utc>,
    ) -> Result<TransactWriteItem> {
        let update = if on_hand_delta == 0 {
            "SET reserved = reserved - :q, available = available + :q, version = version + :one, updatedAt = :now"
        } else {
            "SET onHand = onHand - :q, reserved = reserved - :q, version = version + :one, updatedAt = :now"
        };
        self.update(
            stock_key(sku, location_id),
            update,
            "reserved >= :q",
            &[],
            vec![
                (":q", n(-reserved_delta)),
                (":one", n(1)),
                (":now", s(crate::domain::timestamp::format(now))),
            ],
        )
    }

    /// Expires several due holds found by `due_page` in one transaction: each hold's write is
    /// keyed on its own version and PENDING status and has its own outbox record; the units they
    /// return are summed per stock item. If any hold moved on since the index was read, each hold
    /// of the batch goes the one-by-one way of `expire_due` instead. Returns how many were
    /// expired; the others had moved on. Batches come from [`pack_expiry_batches`].
    pub async fn expire_due_batch(
        &self,
        candidates: &[Reservation],
        correlation_id: Option<&str>,
    ) -> Result<usize> {
        let now = self.now();
        let due: Vec<&Reservation> = candidates
            .iter()
            .filter(|c| decide(c, Action::Expire, now) == Decision::Apply(Transition::Expire))
            .collect();
        if due.len() <= 1 {
            return self.expire_one_by_one(&due, correlation_id).await;
        }
        let mut puts = Vec::with_capacity(due.len());
        let mut outboxes = Vec::with_capacity(due.len());
        let mut stock: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        for candidate in &due {
            let writes = self.transition_writes(candidate, Transition::Expire, None, now, correlation_id)?;
            puts.push(writes.reservation_put);
            outboxes.extend(writes.outbox);
            for (key, (on_hand, reserved)) in writes.stock {
                let total = stock.entry(key).or_insert((0, 0));
                *total = (total.0 + on_hand, total.1 + reserved);
            }
        }
        let mut actions = puts;
        for ((sku, location_id), (on_hand_delta, reserved_delta)) in &stock {
            actions.push(self.stock_update(sku, location_id, *on_hand_delta, *reserved_delta, &now)?);
        }
        actions.extend(outboxes);
        match self.transact_with_retries("expire_batch", actions).await? {
            Ok(()) => Ok(due.len()),
            Err(_) => self.expire_one_by_one(&due, correlation_id).await,
        }
    }

    async fn expire_one_by_one(&self, due: &[&Reservation], correlation_id: Option<&str>) -> Result<usize> {
        let mut expired = 0;
        for candidate in due {
            expired += usize::from(self.expire_due(candidate, correlation_id).await?);
        }
        Ok(expired)
    }
}
