//! The reads of the consistency audit (`crate::audit`): a parallel Scan of the entities it
//! checks, and the re-reads that settle what one item looks like at one moment. Reads only: the
//! audit never writes.

use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::types::{Get, ReturnConsumedCapacity, TransactGetItem};

use super::items::{
    holds_and_item_range, s, shard_items_of, shard_pk, string_attr, Item, SK, STOCK_ITEM_PREFIX,
};
use super::reads::SortKeys;
use super::retry::{classify, Failure};
use super::Store;
use crate::error::{Error, Result};

/// The entities the audit reads (movements, outbox records and idempotency keys are skipped).
const AUDITED: [&str; 5] = ["STOCK", "STOCK_SHARD", "HOLD", "RESERVATION", "ORDER"];

/// TransactGetItems reads at most this many items.
pub const MAX_TRANSACT_GET: usize = 100;

impl Store {
    /// Every audited item of one segment of a parallel Scan (`segment` of `segments`), strongly
    /// consistent, page after page.
    pub async fn audit_scan(&self, segment: i32, segments: i32) -> Result<Vec<Item>> {
        self.every_page("audit_scan", |start| async move {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .segment(segment)
                .total_segments(segments)
                .consistent_read(true)
                .filter_expression("entity IN (:e0, :e1, :e2, :e3, :e4)")
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            for (i, entity) in AUDITED.iter().enumerate() {
                scan = scan.expression_attribute_values(format!(":e{i}"), s(*entity));
            }
            let out = scan.send().await.map_err(classify)?;
            self.count_request(out.consumed_capacity().and_then(|c| c.capacity_units()));
            let items =
                out.items.unwrap_or_default().into_iter().filter(|item| !self.is_gone(item)).collect();
            Ok((items, out.last_evaluated_key))
        })
        .await
    }

    /// Every item of the pages `page` reads, each page from the key the last one ended at.
    async fn every_page<F, Fut>(&self, operation: &'static str, page: F) -> Result<Vec<Item>>
    where
        F: Fn(Option<Item>) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<Item>, Option<Item>), Failure>>,
    {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let (got, next) = self.with_retries(operation, || page(start.clone())).await?;
            items.extend(got);
            match next {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// The holds of `(sku, location_id)` and its stock item and shards: in each of its shards'
    /// partitions (shard 0's names how many there are), one strongly consistent Query of the
    /// sort-key range `HOLD#{loc}#` .. `LOC#{loc}#~` (other locations' items in the range are the
    /// caller's to skip), shard by shard.
    pub async fn audit_item_range(&self, sku: &str, location_id: &str) -> Result<Vec<Item>> {
        let (from, to) = holds_and_item_range(location_id);
        let keys = SortKeys::Between(&from, &to);
        let query = |shard: u32| {
            let pk = shard_pk(sku, location_id, shard);
            self.with_retries("audit_item", move || {
                self.query_partition(pk.clone(), keys, super::reads::KeyOrder::Ascending)
            })
        };
        let mut items = query(0).await?;
        let count = items
            .iter()
            .find(|item| {
                string_attr(item, SK).as_deref() == Some(&format!("{STOCK_ITEM_PREFIX}{location_id}"))
            })
            .map_or(1, shard_items_of);
        for shard in 1..count {
            items.extend(query(shard).await?);
        }
        Ok(items)
    }

    /// The items of `keys` (at most [`MAX_TRANSACT_GET`]) as they were at one moment
    /// (TransactGetItems: serializable with every transaction), `None` where absent. A read that
    /// meets a transaction in flight is tried again.
    pub async fn audit_snapshot(&self, keys: &[Item]) -> Result<Vec<Option<Item>>> {
        if keys.len() > MAX_TRANSACT_GET {
            return Err(Error::internal(format!("{} items in one TransactGetItems", keys.len())));
        }
        self.with_retries("audit_snapshot", || self.read_snapshot(keys)).await
    }

    /// One attempt at reading the items of `keys` as of one moment (TransactGetItems, strongly
    /// consistent), `None` where absent: `Retry` when it met a transaction in flight.
    pub(crate) async fn read_snapshot(&self, keys: &[Item]) -> Result<Vec<Option<Item>>, Failure> {
        let gets = keys
            .iter()
            .map(|key| {
                let get = Get::builder().table_name(&self.table).set_key(Some(key.clone())).build();
                get.map(|get| TransactGetItem::builder().get(get).build())
                    .map_err(|e| Failure::Fatal(Error::internal(e)))
            })
            .collect::<Result<Vec<_>, Failure>>()?;
        let sent = self
            .client
            .transact_get_items()
            .set_transact_items(Some(gets))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(TransactGetItemsError::TransactionCanceledException(_))
                ) =>
            {
                self.count_request(None);
                return Err(Failure::Retry("conflict"));
            }
            Err(e) => return Err(classify(e)),
        };
        let units = out.consumed_capacity().iter().filter_map(|c| c.capacity_units()).sum::<f64>();
        self.count_request(Some(units));
        Ok(out
            .responses
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.item.filter(|i| !i.is_empty() && !self.is_gone(i)))
            .collect())
    }
}
