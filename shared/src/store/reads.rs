//! The store's read primitives, strongly consistent: one item, a stock item as its shard items,
//! a reservation, every item of a partition in a sort-key range, one page of a partition. The
//! public reads built on them (single items, lists and their cursors) are in `lists`.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use futures::{StreamExt, TryStreamExt};

use super::availability::BATCH_GET_KEYS;
use super::items::{
    from_item, reservation_key, s, shard_items_of, shard_key, shard_of, stock_key, stock_pk, string_attr,
    Item, PK, SK, SKU_SK, STOCK_ITEMS_END, STOCK_ITEM_PREFIX,
};
use super::retry::{classify, Failure};
use super::Store;
use crate::domain::{combine, Kit, Reservation, StockItem};
use crate::error::{Error, Result};

/// In which order of sort key a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOrder {
    Ascending,
    Descending,
}

/// Reads of one request in flight at once.
const READS_IN_FLIGHT: usize = 16;

/// Which sort keys of a partition a query reads.
#[derive(Clone, Copy)]
pub(crate) enum SortKeys<'a> {
    Prefix(&'a str),
    /// From one to the other, both included.
    Between(&'a str, &'a str),
}

impl Store {
    pub(crate) async fn get_item(&self, key: Item) -> Result<Option<Item>, Failure> {
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
        Ok(out.item.filter(|item| !self.is_gone(item)))
    }

    /// Whether the item with `key` exists (strongly consistent).
    pub(crate) async fn exists(&self, key: Item) -> Result<bool, Failure> {
        Ok(self.get_item(key).await?.is_some())
    }

    /// A stock item as the API shows it: the sum of its shards (`domain::combine`).
    pub(crate) async fn read_stock(
        &self,
        sku: &str,
        location_id: &str,
    ) -> Result<Option<StockItem>, Failure> {
        let shards = self.read_shards(sku, location_id).await?;
        Ok(combine(&shards.into_iter().map(|(_, s)| s).collect::<Vec<_>>()))
    }

    /// An item's shard items, shard 0 (the item itself) first, with their numbers: shard 0
    /// (GetItem), then the other shard items it names (`shardItems`) in one BatchGetItem; or, when
    /// this process knows the item has several, all of them in one BatchGetItem (and any shard 0
    /// names beyond those in one more). Empty when the item does not exist.
    pub(crate) async fn read_shards(
        &self,
        sku: &str,
        location_id: &str,
    ) -> Result<Vec<(u32, StockItem)>, Failure> {
        Ok(numbered_shards(self.read_shard_items(sku, location_id).await?)?)
    }

    /// [`Store::read_shards`] as the items read, in any order.
    pub(crate) async fn read_shard_items(&self, sku: &str, location_id: &str) -> Result<Vec<Item>, Failure> {
        let known = self.shard_items_hint(sku, location_id);
        let keys = |shards: std::ops::Range<u32>| shards.map(|k| shard_key(sku, location_id, k)).collect();
        let (mut read, have) = if known <= 1 {
            let Some(first) = self.get_item(stock_key(sku, location_id)).await? else {
                return Ok(Vec::new());
            };
            (vec![first], 1)
        } else {
            (self.batch_get_all(keys(0..known)).await?, known)
        };
        let Some(count) = read.iter().find(|item| shard_of(item) == 0).map(shard_items_of) else {
            return Ok(Vec::new());
        };
        if count > have {
            read.extend(self.batch_get_all(keys(have..count)).await?);
        }
        Ok(read)
    }

    /// Items as read at shard 0, each with the other shard items it names (`shardItems`, each in
    /// a partition of its own), read by BatchGetItem, 100 keys a request: each item's shard items
    /// by number, shard 0 first, in the order given.
    pub(crate) async fn with_shards(&self, firsts: Vec<Item>) -> Result<Vec<Vec<(u32, StockItem)>>, Failure> {
        let mut keys = Vec::new();
        let mut items = Vec::with_capacity(firsts.len());
        let mut index = HashMap::new();
        for first in firsts {
            let count = shard_items_of(&first);
            let item: StockItem = from_item(first)?;
            keys.extend((1..count).map(|k| shard_key(&item.sku, &item.location_id, k)));
            index.insert((item.sku.clone(), item.location_id.clone()), items.len());
            items.push(vec![(0, item)]);
        }
        if keys.is_empty() {
            return Ok(items);
        }
        for read in self.batch_get_all(keys).await? {
            let shard = shard_of(&read);
            let shard_item: StockItem = from_item(read)?;
            if let Some(&i) = index.get(&(shard_item.sku.clone(), shard_item.location_id.clone())) {
                items[i].push((shard, shard_item));
            }
        }
        for parts in &mut items {
            parts.sort_by_key(|(k, _)| *k);
        }
        Ok(items)
    }

    /// The items of `keys` that exist (strongly consistent), in any order: BatchGetItem of 100
    /// keys at a time, a few at once, each sent again (after a backoff) for the keys DynamoDB left
    /// unprocessed.
    pub(crate) async fn batch_get_all(&self, keys: Vec<Item>) -> Result<Vec<Item>, Failure> {
        let chunks: Vec<Vec<Item>> = keys.chunks(BATCH_GET_KEYS).map(<[Item]>::to_vec).collect();
        let pages: Vec<Vec<Item>> = futures::stream::iter(chunks)
            .map(|mut pending| async move {
                let mut items = Vec::with_capacity(pending.len());
                for attempt in 0.. {
                    let (got, unprocessed) = self.batch_get_once(pending).await?;
                    items.extend(got);
                    if unprocessed.is_empty() {
                        break;
                    }
                    if attempt + 1 >= self.retry.max_attempts {
                        // DynamoDB keeps leaving keys unprocessed: throttled, as the caller's
                        // retry policy sees it.
                        return Err(Failure::Retry("throttled"));
                    }
                    pending = unprocessed;
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                }
                Ok::<_, Failure>(items)
            })
            .buffer_unordered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// One BatchGetItem: the items found, and the keys DynamoDB left unprocessed.
    async fn batch_get_once(&self, keys: Vec<Item>) -> Result<(Vec<Item>, Vec<Item>), Failure> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| Failure::Fatal(Error::internal(e)))?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(classify)?;
        let units = out.consumed_capacity().iter().filter_map(|c| c.capacity_units()).sum::<f64>();
        self.count_request(Some(units));
        let got = out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default();
        let got = got.into_iter().filter(|item| !self.is_gone(item)).collect();
        let unprocessed =
            out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
        Ok((got, unprocessed))
    }

    pub(crate) async fn read_reservation(&self, id: &str) -> Result<Reservation, Failure> {
        match self.get_item(reservation_key(id)).await? {
            Some(item) => Ok(from_item(item)?),
            None => Err(Failure::Fatal(Error::NotFound { what: "reservation", id: id.to_owned() })),
        }
    }

    /// Every stock item of a SKU, each the sum of its shards (one strongly consistent Query,
    /// every page).
    pub(crate) async fn read_sku_stock(&self, sku: &str) -> Result<Vec<StockItem>, Failure> {
        Ok(self.read_sku_shards(sku).await?.into_iter().filter_map(|shards| combine(&shards)).collect())
    }

    /// Every stock item of a SKU as its shard items (shard 0 first), by location: one Query of
    /// the sku's partition, and one BatchGetItem of the other shards of sharded items.
    pub(crate) async fn read_sku_shards(&self, sku: &str) -> Result<Vec<Vec<StockItem>>, Failure> {
        let items = self
            .query_partition(stock_pk(sku), SortKeys::Prefix(STOCK_ITEM_PREFIX), KeyOrder::Ascending)
            .await?;
        by_location(self.with_shards(items).await?)
    }

    /// A SKU's stock items as read at shard 0 (each names its other shard items) and, if the sku
    /// is a kit, the kit: one Query (the sku item sorts right before the stock items).
    pub(crate) async fn query_sku(&self, sku: &str) -> Result<(Vec<Item>, Option<Kit>), Failure> {
        let range = SortKeys::Between(SKU_SK, STOCK_ITEMS_END);
        let mut items = self.query_partition(stock_pk(sku), range, KeyOrder::Ascending).await?;
        let kit = match items.first() {
            Some(first) if string_attr(first, SK).as_deref() == Some(SKU_SK) => {
                super::kits::kit_of(items.remove(0))?
            }
            _ => None,
        };
        Ok((items, kit))
    }
}

/// Shard items as read (of one item, in any order), with their numbers, by number.
pub(crate) fn numbered_shards(items: Vec<Item>) -> Result<Vec<(u32, StockItem)>> {
    let mut shards = items
        .into_iter()
        .map(|item| Ok((shard_of(&item), from_item::<StockItem>(item)?)))
        .collect::<Result<Vec<_>>>()?;
    shards.sort_by_key(|(k, _)| *k);
    Ok(shards)
}

/// Each item's shard items without their numbers (shard 0 first).
fn by_location(items: Vec<Vec<(u32, StockItem)>>) -> Result<Vec<Vec<StockItem>>, Failure> {
    Ok(items.into_iter().map(|shards| shards.into_iter().map(|(_, s)| s).collect()).collect())
}

impl Store {
    /// Every stock item of the skus named, as its shard items (shard 0 first), read a few at once
    /// (a cart of kits may name 250 skus).
    pub(crate) async fn read_skus_shards(
        &self,
        skus: impl IntoIterator<Item = &str>,
    ) -> Result<Vec<Vec<StockItem>>, Failure> {
        use futures::{StreamExt, TryStreamExt};
        let skus: Vec<String> = skus.into_iter().map(str::to_owned).collect();
        let reads = futures::stream::iter(skus)
            .map(|sku| async move { self.read_sku_shards(&sku).await })
            .buffered(READS_IN_FLIGHT);
        Ok(reads.try_collect::<Vec<_>>().await?.into_iter().flatten().collect())
    }

    /// One Query call: `query` names the key condition (and the index, the values); this adds the
    /// table, where to start, the capacity report, and counts the request.
    pub(crate) async fn query_once(
        &self,
        query: impl FnOnce(QueryFluentBuilder) -> QueryFluentBuilder,
        start: Option<Item>,
    ) -> Result<QueryOutput, Failure> {
        let out = query(self.client.query().table_name(&self.table))
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(classify)?;
        self.count_request(out.consumed_capacity().and_then(|c| c.capacity_units()));
        Ok(out)
    }

    /// Every item of a partition whose sort key is in `keys`, in `order` of sort key, strongly
    /// consistent, every page.
    pub(crate) async fn query_partition(
        &self,
        pk: String,
        keys: SortKeys<'_>,
        order: KeyOrder,
    ) -> Result<Vec<Item>, Failure> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let query = |q: QueryFluentBuilder| {
                let q = q.expression_attribute_values(":pk", s(&pk));
                let q = match keys {
                    SortKeys::Prefix(prefix) => q
                        .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                        .expression_attribute_values(":prefix", s(prefix)),
                    SortKeys::Between(from, to) => q
                        .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                        .expression_attribute_values(":from", s(from))
                        .expression_attribute_values(":to", s(to)),
                };
                q.consistent_read(true).scan_index_forward(order == KeyOrder::Ascending)
            };
            let out = self.query_once(query, start.take()).await?;
            items.extend(out.items.unwrap_or_default().into_iter().filter(|item| !self.is_gone(item)));
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// One page of a partition's items whose sort key begins with `prefix`, strongly consistent:
    /// at most `limit`, after the sort key `after` (exclusive), and the sort key to go on from when
    /// there are more (one item more is read to know: no empty last page).
    pub(crate) async fn query_page(
        &self,
        pk: String,
        prefix: &str,
        order: KeyOrder,
        limit: i32,
        after: Option<String>,
    ) -> Result<(Vec<Item>, Option<String>), Failure> {
        let start = after.map(|sk| Item::from([(PK.to_owned(), s(&pk)), (SK.to_owned(), s(sk))]));
        let query = |q: QueryFluentBuilder| {
            q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .scan_index_forward(order == KeyOrder::Ascending)
                .limit(limit + 1)
        };
        let out = self.query_once(query, start).await?;
        let items = out.items.unwrap_or_default().into_iter().filter(|item| !self.is_gone(item)).collect();
        Ok(split_page(items, limit, SK))
    }
}

/// A page read with one item more than `limit` (to know whether there is a next page without
/// ever answering an empty one): the page, and the `key` attribute of its last item when there is
/// more.
pub(crate) fn split_page(mut items: Vec<Item>, limit: i32, key: &str) -> (Vec<Item>, Option<String>) {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more { items.last().and_then(|i| string_attr(i, key)) } else { None };
    (items, next)
}
