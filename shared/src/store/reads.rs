//! Strongly consistent reads of stock items, reservations and an order's reservations.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::items::{
    from_item, holds_prefix, item_range, location_pk, movements_prefix, number_attr, order_key, order_pk,
    reservation_key, s, shard_key, shard_of, stock_key, stock_pk, string_attr, Item, GSI2, GSI2_PK, GSI2_SK,
    ORDER_RESERVATION_PREFIX, ORDER_SK, PK, SK, STOCK_ITEM_PREFIX,
};
use super::retry::{classify, Failure};
use super::{Hold, Page, Store};
use crate::domain::{combine, timestamp, Movement, Reservation, SkuStock, StockItem, MAX_SHARDS};
use crate::error::{Error, Result};

/// Which sort keys of a partition a query reads.
#[derive(Clone, Copy)]
pub(crate) enum SortKeys<'a> {
    All,
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
        Ok(out.item)
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
        let items = self.query_partition(stock_pk(sku), SortKeys::Between(&from, &to), false).await?;
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

    /// One stock item (strongly consistent).
    pub async fn get_stock(&self, sku: &str, location_id: &str) -> Result<StockItem> {
        self.with_retries("get_stock", || async {
            self.read_stock(sku, location_id).await?.ok_or_else(|| {
                Failure::Fatal(Error::NotFound { what: "stock item", id: format!("{sku}/{location_id}") })
            })
        })
        .await
    }

    /// Every stock item of a SKU, each the sum of its shards (one strongly consistent Query,
    /// every page).
    pub(crate) async fn read_sku_stock(&self, sku: &str) -> Result<Vec<StockItem>, Failure> {
        Ok(self.read_sku_shards(sku).await?.into_iter().filter_map(|shards| combine(&shards)).collect())
    }

    /// Every stock item of a SKU as its shard items (shard 0 first), by location.
    pub(crate) async fn read_sku_shards(&self, sku: &str) -> Result<Vec<Vec<StockItem>>, Failure> {
        let mut locations: Vec<Vec<(u32, StockItem)>> = Vec::new();
        // Sort-key order: each item, then its shards (`LOC#w#01` sorts before `LOC#w0`).
        for item in self.query_partition(stock_pk(sku), SortKeys::Prefix(STOCK_ITEM_PREFIX), false).await? {
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

    /// Every stock item of the skus named, as its shard items (shard 0 first), read at once.
    pub(crate) async fn read_skus_shards(
        &self,
        skus: impl IntoIterator<Item = &str>,
    ) -> Result<Vec<Vec<StockItem>>, Failure> {
        let reads = skus.into_iter().map(|sku| self.read_sku_shards(sku));
        Ok(futures::future::try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// Every item of a partition whose sort key is in `keys`, by sort key (descending when
    /// `newest_first`), strongly consistent, every page.
    pub(crate) async fn query_partition(
        &self,
        pk: String,
        keys: SortKeys<'_>,
        newest_first: bool,
    ) -> Result<Vec<Item>, Failure> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let query =
                self.client.query().table_name(&self.table).expression_attribute_values(":pk", s(&pk));
            let query = match keys {
                // The whole partition (DynamoDB refuses an empty key value).
                SortKeys::All => query.key_condition_expression("pk = :pk"),
                SortKeys::Prefix(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix)),
                SortKeys::Between(from, to) => query
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":from", s(from))
                    .expression_attribute_values(":to", s(to)),
            };
            let out = query
                .consistent_read(true)
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(classify)?;
            self.count_request(out.consumed_capacity().and_then(|c| c.capacity_units()));
            items.extend(out.items.unwrap_or_default());
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
        newest_first: bool,
        limit: i32,
        after: Option<String>,
    ) -> Result<(Vec<Item>, Option<String>), Failure> {
        let start = after.map(|sk| Item::from([(PK.to_owned(), s(&pk)), (SK.to_owned(), s(sk))]));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(&pk))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
            .scan_index_forward(!newest_first)
            .limit(limit + 1)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(classify)?;
        self.count_request(out.consumed_capacity().and_then(|c| c.capacity_units()));
        Ok(split_page(out.items.unwrap_or_default(), limit, SK))
    }

    /// A page of an item's on-hand ledger, newest first (by version; on a sharded item, each
    /// shard's chain by its own versions, interleaved by version number). `cursor` is a page's
    /// `nextCursor`.
    pub async fn list_movements(
        &self,
        sku: &str,
        location_id: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Movement>> {
        let prefix = movements_prefix(location_id);
        // A cursor is the last entry's version, and `s{shard}` after it for a shard > 0.
        let after = match cursor {
            None => None,
            Some(c) => {
                let (version, shard) = c.split_once('s').map_or((c, None), |(v, k)| (v, Some(k)));
                let version = version.parse::<u64>().ok().filter(|_| !version.starts_with('+'));
                let shard = shard.map(|k| k.parse::<u32>().ok().filter(|k| (1..=MAX_SHARDS).contains(k)));
                match (version, shard) {
                    (Some(v), None) => Some(format!("{prefix}{v:012}")),
                    (Some(v), Some(Some(k))) => Some(format!("{prefix}{v:012}#{k:02}")),
                    _ => return Err(Error::invalid_field("cursor", "cursor is not one this list gave")),
                }
            }
        };
        self.get_stock(sku, location_id).await?;
        let (items, next) = self
            .with_retries("list_movements", || {
                self.query_page(stock_pk(sku), &prefix, true, limit, after.clone())
            })
            .await?;
        let items = items.into_iter().map(from_item::<Movement>).collect::<Result<Vec<_>>>()?;
        let next_cursor = next.and_then(|sk| {
            let rest = sk.strip_prefix(&prefix)?;
            let (version, shard) = rest.split_once('#').map_or((rest, None), |(v, k)| (v, Some(k)));
            let version = version.parse::<u64>().ok()?;
            Some(match shard.and_then(|k| k.parse::<u32>().ok()) {
                Some(k) => format!("{version}s{k}"),
                None => version.to_string(),
            })
        });
        Ok(Page { items, next_cursor })
    }

    /// A page of the PENDING reservations holding units of an item, oldest first: its hold items,
    /// with each reservation's expiresAt.
    pub async fn list_holds(
        &self,
        sku: &str,
        location_id: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Hold>> {
        let prefix = holds_prefix(location_id);
        let bad_cursor = || Error::invalid_field("cursor", "cursor is not one this list gave");
        let after = match cursor {
            None => None,
            Some(c) => {
                let c = from_hex(c).ok_or_else(bad_cursor)?;
                let (created_at, id) = c.split_once('#').ok_or_else(bad_cursor)?;
                if timestamp::parse(created_at).is_none() || uuid::Uuid::try_parse(id).is_err() {
                    return Err(bad_cursor());
                }
                Some(format!("{prefix}{c}"))
            }
        };
        self.get_stock(sku, location_id).await?;
        let (items, next) = self
            .with_retries("list_holds", || {
                self.query_page(stock_pk(sku), &prefix, false, limit, after.clone())
            })
            .await?;
        let held: Vec<(String, String, i64)> = items
            .iter()
            .map(|item| {
                let id = string_attr(item, "reservationId").unwrap_or_default();
                let order = string_attr(item, "orderId").unwrap_or_default();
                (id, order, number_attr(item, "quantity").unwrap_or_default())
            })
            .collect();
        let reservations =
            futures::future::try_join_all(held.iter().map(|(id, _, _)| self.get_reservation(id))).await?;
        let items = held
            .into_iter()
            .zip(reservations)
            .map(|((reservation_id, order_id, quantity), r)| Hold {
                reservation_id,
                order_id,
                quantity,
                expires_at: r.expires_at,
            })
            .collect();
        // The sort key's `{createdAt}#{id}`, in hex: a cursor goes in a URL as it is.
        let next_cursor = next.and_then(|sk| sk.strip_prefix(&prefix).map(to_hex));
        Ok(Page { items, next_cursor })
    }

    /// A page of a location's stock items, sorted by sku: a page of keys from the by-location
    /// index, then the items themselves, strongly consistent.
    pub async fn list_location_stock(
        &self,
        location_id: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<StockItem>> {
        if let Some(sku) = cursor {
            crate::domain::validate_sku(sku)
                .map_err(|_| Error::invalid_field("cursor", "cursor is not one this list gave"))?;
        }
        let start = cursor.map(|sku| {
            let mut key = stock_key(sku, location_id);
            key.insert(GSI2_PK.to_owned(), s(location_pk(location_id)));
            key.insert(GSI2_SK.to_owned(), s(sku));
            key
        });
        let (skus, next) = self
            .with_retries("list_location_stock", || {
                let start = start.clone();
                async move {
                    let out = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .index_name(GSI2)
                        .key_condition_expression("gsi2pk = :loc")
                        .expression_attribute_values(":loc", s(location_pk(location_id)))
                        .limit(limit + 1)
                        .set_exclusive_start_key(start)
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send()
                        .await
                        .map_err(classify)?;
                    self.count_request(out.consumed_capacity().and_then(|c| c.capacity_units()));
                    let (keys, next) = split_page(out.items.unwrap_or_default(), limit, GSI2_SK);
                    Ok((keys.iter().filter_map(|k| string_attr(k, GSI2_SK)).collect::<Vec<_>>(), next))
                }
            })
            .await?;
        let reads = skus
            .iter()
            .map(|sku| self.with_retries("list_location_stock", || self.read_stock(sku, location_id)));
        let items = futures::future::try_join_all(reads).await?.into_iter().flatten().collect();
        Ok(Page { items, next_cursor: next })
    }

    /// That DynamoDB answers and the table is ACTIVE (`GET /health?deep=true`); else 503.
    pub async fn check_table(&self) -> Result<()> {
        let described = self.client.describe_table().table_name(&self.table).send().await;
        self.count_request(None);
        let status = described.ok().and_then(|d| d.table).and_then(|t| t.table_status);
        if status == Some(aws_sdk_dynamodb::types::TableStatus::Active) {
            Ok(())
        } else {
            tracing::warn!(table = %self.table, ?status, "deep health check failed");
            Err(Error::Unavailable { retry_after_secs: 5 })
        }
    }

    /// Every location of a SKU, sorted by locationId, with totals.
    pub async fn get_sku_stock(&self, sku: &str) -> Result<SkuStock> {
        let locations = self.with_retries("get_sku_stock", || self.read_sku_stock(sku)).await?;
        if locations.is_empty() {
            return Err(Error::NotFound { what: "sku", id: sku.to_owned() });
        }
        Ok(SkuStock::new(sku.to_owned(), locations))
    }

    pub async fn get_reservation(&self, id: &str) -> Result<Reservation> {
        self.with_retries("get_reservation", || self.read_reservation(id)).await
    }

    /// Every reservation of an order, newest first: one Query of the order's partition (its
    /// reservation items, and the order key naming the latest), then each reservation.
    pub async fn list_order_reservations(&self, order_id: &str) -> Result<Vec<Reservation>> {
        let items = self
            .with_retries("list_order_reservations", || {
                self.query_partition(order_pk(order_id), SortKeys::All, true)
            })
            .await?;
        let mut ids: Vec<String> = Vec::new();
        let mut latest = None;
        for item in &items {
            let sk = string_attr(item, SK).unwrap_or_default();
            let id = string_attr(item, "reservationId");
            if sk == ORDER_SK {
                latest = id;
            } else if sk.starts_with(ORDER_RESERVATION_PREFIX) {
                ids.extend(id);
            }
        }
        // The order key names the latest (also one written before reservation items existed),
        // whatever the clocks that stamped createdAt said.
        if let Some(latest) = latest {
            ids.retain(|id| *id != latest);
            ids.insert(0, latest);
        }
        if ids.is_empty() {
            return Err(Error::NotFound { what: "order reservation", id: order_id.to_owned() });
        }
        futures::future::try_join_all(ids.iter().map(|id| self.get_reservation(id))).await
    }

    /// The order's latest reservation, through the order key.
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
}

/// A page read with one item more than `limit` (to know whether there is a next page without
/// ever answering an empty one): the page, and the `key` attribute of its last item when there is
/// more.
fn split_page(mut items: Vec<Item>, limit: i32, key: &str) -> (Vec<Item>, Option<String>) {
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next = if more { items.last().and_then(|i| string_attr(i, key)) } else { None };
    (items, next)
}

fn to_hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_cursors_round_trip_and_refuse_what_is_not_hex() {
        let sk = "2026-11-25T09:00:00.000Z#6f1c2d9e-1111-4a2b-8c3d-123456789abc";
        assert_eq!(from_hex(&to_hex(sk)).as_deref(), Some(sk));
        assert!(to_hex(sk).chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
