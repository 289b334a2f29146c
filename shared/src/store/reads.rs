//! The store's read primitives, strongly consistent: one item, a stock item as its shard items,
//! a reservation, every item of a partition in a sort-key range, one page of a partition. The
//! public reads built on them (single items, lists and their cursors) are in `lists`.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::items::{
    from_item, item_range, reservation_key, s, shard_key, shard_of, stock_pk, string_attr, Item, PK, SK,
    SKU_SK, STOCK_ITEMS_END, STOCK_ITEM_PREFIX,
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

    /// An item's shard items, shard 0 (the item itself) first, with their numbers: one strongly
    /// consistent Query of the item's sort-key range. Empty when the item does not exist.
    pub(crate) async fn read_shards(
        &self,
        sku: &str,
        location_id: &str,
    ) -> Result<Vec<(u32, StockItem)>, Failure> {
        let (from, to) = item_range(location_id);
        let items =
            self.query_partition(stock_pk(sku), SortKeys::Between(&from, &to), KeyOrder::Ascending).await?;
        let mut shards = items
            .into_iter()
            .map(|item| Ok((shard_of(&item), from_item::<StockItem>(item)?)))
            .collect::<Result<Vec<_>>>()?;
        shards.sort_by_key(|(k, _)| *k);
        // Shards without the item itself (being deleted): no item.
        if shards.first().is_none_or(|(k, _)| *k != 0) {
            return Ok(Vec::new());
        }
        Ok(shards)
    }

    /// One shard item (strongly consistent).
    pub(crate) async fn read_shard(
        &self,
        sku: &str,
        location_id: &str,
        shard: u32,
    ) -> Result<Option<StockItem>, Failure> {
        match self.get_item(shard_key(sku, location_id, shard)).await? {
            Some(item) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
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

    /// Every stock item of a SKU as its shard items (shard 0 first), by location.
    pub(crate) async fn read_sku_shards(&self, sku: &str) -> Result<Vec<Vec<StockItem>>, Failure> {
        let items = self
            .query_partition(stock_pk(sku), SortKeys::Prefix(STOCK_ITEM_PREFIX), KeyOrder::Ascending)
            .await?;
        by_location(items)
    }

    /// Every stock item of a SKU (each the sum of its shards) and, if the sku is a kit, the kit:
    /// one Query (the sku item sorts right before the stock items).
    pub(crate) async fn read_sku_stock_or_kit(
        &self,
        sku: &str,
    ) -> Result<(Vec<StockItem>, Option<Kit>), Failure> {
        let range = SortKeys::Between(SKU_SK, STOCK_ITEMS_END);
        let mut items = self.query_partition(stock_pk(sku), range, KeyOrder::Ascending).await?;
        let kit = match items.first() {
            Some(first) if string_attr(first, SK).as_deref() == Some(SKU_SK) => {
                super::kits::kit_of(items.remove(0))?
            }
            _ => None,
        };
        let stock = by_location(items)?.into_iter().filter_map(|shards| combine(&shards)).collect();
        Ok((stock, kit))
    }
}

/// Stock and shard items of one sku in sort-key order, as each item's shard items (shard 0
/// first), by location.
fn by_location(items: Vec<Item>) -> Result<Vec<Vec<StockItem>>, Failure> {
    let mut locations: Vec<Vec<(u32, StockItem)>> = Vec::new();
    // Sort-key order: each item, then its shards (`LOC#w#01` sorts before `LOC#w0`).
    for item in items {
        let shard = shard_of(&item);
        let stock = from_item::<StockItem>(item)?;
        match locations.last_mut() {
            Some(last) if last[0].1.location_id == stock.location_id => last.push((shard, stock)),
            _ => locations.push(vec![(shard, stock)]),
        }
    }
    Ok(locations
        .into_iter()
        .filter(|shards| shards[0].0 == 0)
        .map(|mut shards| {
            shards.sort_by_key(|(k, _)| *k);
            shards.into_iter().map(|(_, s)| s).collect()
        })
        .collect())
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
