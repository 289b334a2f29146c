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

mod items;
mod retry;
mod schema;

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

    fn now(&self) -> DateTime<Utc> {
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
                Err(_) => Err(Failure::Retry("stale read")),
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
        let mut updated = current.clone();
        updated.status = transition.target();
        updated.version += 1;
        updated.updated_at = now;
        if let (Transition::Extend, Some(ttl)) = (transition, ttl_seconds) {
            updated.expires_at = now + Duration::seconds(ttl);
        }
        let mut actions = vec![self.put(
            reservation_item(&updated)?,
            "version = :v AND #status = :pending",
            vec![(":v", n(current.version)), (":pending", s("PENDING"))],
        )?];
        if let TransactWriteItem { put: Some(put), .. } = &mut actions[0] {
            put.expression_attribute_names = Some([("#status".to_owned(), "status".to_owned())].into());
        }
        let now_s = crate::domain::timestamp::format(&now);
        for line in &updated.lines {
            let (on_hand_delta, reserved_delta) = stock_effect(transition, line.quantity);
            if reserved_delta == 0 {
                continue;
            }
            let update = if on_hand_delta == 0 {
                "SET reserved = reserved - :q, available = available + :q, version = version + :one, updatedAt = :now"
            } else {
                "SET onHand = onHand - :q, reserved = reserved - :q, version = version + :one, updatedAt = :now"
            };
            actions.push(self.update(
                stock_key(&line.sku, &line.location_id),
                update,
                "reserved >= :q",
                &[],
                vec![(":q", n(line.quantity)), (":one", n(1)), (":now", s(now_s.clone()))],
            )?);
        }
        let detail_type = match transition {
            Transition::Confirm => Some(DetailType::ReservationConfirmed),
            Transition::Release => Some(DetailType::ReservationReleased),
            Transition::Expire => Some(DetailType::ReservationExpired),
            // API.md defines no event for an extension: it changes no stock and no status.
            Transition::Extend => None,
        };
        if let Some(detail_type) = detail_type {
            let data = serde_json::to_value(&updated).map_err(Error::internal)?;
            actions.push(self.outbox(&OutboxEvent::new(detail_type, data, now, correlation_id))?);
        }
        match self.transact(&actions, &uuid::Uuid::new_v4().to_string()).await? {
            Ok(()) => Ok(updated),
            // The reservation changed since we read it: re-read and decide again.
            Err(c) if c.failed(0) => Err(Failure::Retry("stale read")),
            Err(_) => Err(Failure::Fatal(Error::internal(format!(
                "stock item of reservation {} has fewer units reserved than the hold",
                current.reservation_id
            )))),
        }
    }
}
