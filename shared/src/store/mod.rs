//! The DynamoDB store. Every write is conditional and bumps the item's version; the domain decides
//! what to write (`crate::domain`), the store turns it into conditional actions and reads what
//! DynamoDB answered. One module per capability:
//!
//! - `transact`: the transaction builder (typed slots), the call, and the classification of
//!   cancellations by the per-item reasons (a condition: the domain's answer; a conflict or
//!   throttling: retry);
//! - `actions`: the conditional actions transactions are made of;
//! - `reads`: the read primitives (an item, an item's shards, a partition's range or page);
//! - `lists`: the public reads, single items and paged lists, with `cursors` for their pages;
//! - `stock`: PUT and adjustments, keyed on the version read;
//! - `reserve`: one transaction for a new reservation;
//! - `placement`: where a hold's units go (lines resolved, shard items picked, shortfalls judged);
//! - `orders`: what an order should hold now: a new reservation, or its PENDING one changed;
//! - `transitions`: confirm / release / extend / expire, keyed on the reservation's version;
//! - `expiry`: due holds from the sparse index, expired in batches;
//! - `deadline`: one deadline per request, which every call and retry inside it honours;
//! - `idempotency`: the answers of `Idempotency-Key` requests, kept with the change they made;
//! - `context`: a write's context (correlation id, idempotency claim, trace header, actor);
//! - `items` (keys and item shapes), `schema` (the table), `retry` (backoff inside a deadline).
//!
//! Transaction conflicts, throttling and timeouts are retried with capped, jittered backoff.

mod actions;
mod audit;
mod availability;
mod channels;
mod context;
mod cursors;
mod deadline;
mod expiry;
mod idempotency;
pub mod items;
pub(crate) mod kits;
mod levels;
mod lists;
mod orders;
mod placement;
mod reads;
mod reserve;
mod retry;
mod schema;
mod stock;
mod transact;
mod transitions;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

pub use crate::domain::StockChange;
pub use audit::MAX_TRANSACT_GET;
pub use availability::{BATCH_GET_KEYS, IN_FLIGHT as AVAILABILITY_IN_FLIGHT};
pub use context::WriteContext;
pub use deadline::{remaining_before, with_deadline};
pub use expiry::{pack_expiry_batches, DuePage};
pub use idempotency::{Answer, Claim, Kept, KEPT_FOR_HOURS};
pub use items::{Item, DUE_PARTITIONS};
pub use kits::{KitPut, KIT_CACHE_TTL};
pub use levels::Settled;
pub use retry::RetryPolicy;
pub use schema::{create_table, delete_table};

use crate::domain::{truncate_to_millis, Reservation, StockItem};
use crate::error::Result;
use retry::{retrying, Failure};

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

/// A channel's put: the channel as it is now, and whether the put created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPut {
    pub channel: crate::domain::Channel,
    pub created: bool,
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

/// One page of a list, and where the next one starts (`null` on the wire at the end).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A PENDING reservation's units on one stock item (`GET .../holds`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub reservation_id: String,
    pub order_id: String,
    pub quantity: i64,
    #[serde(with = "crate::timestamp")]
    pub expires_at: DateTime<Utc>,
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
    /// The longest a hold may live (`MAX_HOLD_SECONDS`).
    max_hold: chrono::Duration,
    /// How many days finished reservations are kept (`RETENTION_DAYS`).
    retention_days: i64,
    stats: Arc<StoreStats>,
    shard_counts: Arc<placement::ShardCounts>,
    /// Channels as reserves last read them (`channels::CHANNEL_CACHE_TTL`).
    channels: Arc<channels::ChannelCache>,
    /// Kits as reserves last read them (`kits::KIT_CACHE_TTL`).
    kits: Arc<kits::KitCache>,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Store {
            client,
            table: table.into(),
            retry: RetryPolicy::default(),
            clock: Arc::new(Utc::now),
            max_hold: chrono::Duration::seconds(crate::domain::DEFAULT_MAX_HOLD_SECONDS),
            retention_days: crate::domain::DEFAULT_RETENTION_DAYS,
            stats: Arc::default(),
            shard_counts: Arc::default(),
            channels: Arc::default(),
            kits: Arc::default(),
        }
    }

    /// The same store (retry policy, clock, counters) through another client over `table`: the
    /// local runtime gives each function its own client, gated by the function's IAM policy.
    pub fn with_client(&self, client: Client, table: impl Into<String>) -> Self {
        Store { client, table: table.into(), ..self.clone() }
    }

    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The longest a hold may live, from its createdAt (HOLD_LIFETIME_EXCEEDED past it).
    pub fn with_max_hold_seconds(mut self, seconds: i64) -> Self {
        self.max_hold = chrono::Duration::seconds(seconds);
        self
    }

    /// The same store with the limits a function's environment sets: `MAX_HOLD_SECONDS` and
    /// `RETENTION_DAYS`.
    pub fn with_limits_of(self, env: &crate::config::FunctionEnv) -> Result<Self, String> {
        Ok(self.with_max_hold_seconds(env.max_hold_seconds()?).with_retention_days(env.retention_days()?))
    }

    /// How many days finished reservations are kept (`domain::retained_until`).
    pub fn with_retention_days(mut self, days: i64) -> Self {
        self.retention_days = days;
        self
    }

    /// The TTL of a finished reservation created at `created_at` and of its order items.
    pub(crate) fn retained_until(&self, created_at: DateTime<Utc>) -> i64 {
        crate::domain::retained_until(created_at, self.retention_days)
    }

    /// Whether `item` is past its TTL now: gone, to every read, though DynamoDB may not have
    /// deleted it yet.
    pub(crate) fn is_gone(&self, item: &items::Item) -> bool {
        crate::domain::is_past_ttl(items::number_attr(item, items::TTL), self.now().timestamp())
    }

    /// Refuses a hold created at `created_at` kept until `expires_at` if that is past its limit.
    pub(crate) fn check_hold_lifetime(
        &self,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        crate::domain::check_hold_lifetime(created_at, expires_at, self.max_hold)
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

    pub(crate) async fn with_retries<T, F, Fut>(&self, operation: &'static str, attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        retrying(
            &self.retry,
            operation,
            |why| {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                crate::metrics::store_retry(operation, why);
            },
            attempt,
        )
        .await
    }

    /// Counts a retry made outside `with_retries` (a reserve moving to another shard).
    pub(crate) fn count_retry(&self, operation: &'static str, why: &'static str) {
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        crate::metrics::store_retry(operation, why);
    }

    fn count_request(&self, capacity: Option<f64>) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(units) = capacity {
            self.stats.capacity_milli.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
        }
    }
}
