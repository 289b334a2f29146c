//! The public reads: one stock item, a sku's locations, a reservation, an order's reservations,
//! and the paged lists (an item's ledger, its holds, a location's stock) with their cursors
//! (`cursors`). Each is a read primitive of `reads` inside the retry policy.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use super::cursors::{CreatedCursor, LocationCursor, MovementsCursor};
use super::items::{
    from_item, holds_prefix, ledger_entries, location_pk, movements_prefix, number_attr, order_key, order_pk,
    s, shard_items_of, shard_pk, stock_key, string_attr, Item, GSI2, GSI2_PK, GSI2_SK,
    ORDER_RESERVATION_PREFIX, SK,
};
use super::reads::{split_page, KeyOrder};
use super::retry::Failure;
use super::{Hold, Page, Store};
use crate::domain::{Movement, Reservation, SkuStock, StockItem};
use crate::error::{Error, Result};

/// The cursor of an order's second page when its first held only the latest reservation.
const TOP: &str = "top";

impl Store {
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
        let locations = self.with_retries("get_sku_stock", || self.read_sku_stock(sku)).await?;
        if locations.is_empty() {
            return Err(Error::NotFound { what: "sku", id: sku.to_owned() });
        }
        Ok(SkuStock::new(sku.to_owned(), locations))
    }

    pub async fn get_reservation(&self, id: &str) -> Result<Reservation> {
        self.with_retries("get_reservation", || self.read_reservation(id)).await
    }

    /// A page of an order's reservations, newest first, its latest (the one the order key names)
    /// at the top of the first page whatever the clocks that stamped createdAt said: the order
    /// key and a Query of the order's reservation items (newest first, the latest left out), then
    /// each reservation. `cursor` is a page's `nextCursor`.
    pub async fn list_order_reservations(
        &self,
        order_id: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Reservation>> {
        let cursors = CreatedCursor { prefix: ORDER_RESERVATION_PREFIX };
        let after = match cursor {
            None => None,
            Some(TOP) => Some(None),
            Some(c) => Some(Some(cursors.after(c)?)),
        };
        let (order, (items, more)) = self
            .with_retries("list_order_reservations", || async {
                let order = self.get_item(order_key(order_id));
                // Two more than a page: one may be the latest (left out), one tells there is more.
                let page = self.query_page(
                    order_pk(order_id),
                    ORDER_RESERVATION_PREFIX,
                    KeyOrder::Descending,
                    limit + 1,
                    after.clone().flatten(),
                );
                futures::future::try_join(order, page).await
            })
            .await?;
        let latest = order.as_ref().and_then(|o| string_attr(o, "reservationId"));
        let first_page = after.is_none();
        let mut ids: Vec<String> = latest.iter().filter(|_| first_page).cloned().collect();
        let room = limit as usize - ids.len();
        let mut rest: Vec<(String, String)> = items
            .iter()
            .filter_map(|item| Some((string_attr(item, "reservationId")?, string_attr(item, SK)?)))
            .filter(|(id, _)| Some(id) != latest.as_ref())
            .collect();
        let more = more.is_some() || rest.len() > room;
        rest.truncate(room);
        let next_cursor = match rest.last() {
            _ if !more => None,
            None => Some(TOP.to_owned()),
            Some((_, sk)) => cursors.of(sk),
        };
        ids.extend(rest.into_iter().map(|(id, _)| id));
        if ids.is_empty() && latest.is_none() {
            return Err(Error::NotFound { what: "order reservation", id: order_id.to_owned() });
        }
        // A reservation that reached its TTL since the order items were read is gone: left out.
        let reads = ids.iter().map(|id| async move {
            match self.get_reservation(id).await {
                Err(Error::NotFound { .. }) => Ok(None),
                other => other.map(Some),
            }
        });
        let items = futures::future::try_join_all(reads).await?.into_iter().flatten().collect();
        Ok(Page { items, next_cursor })
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

    /// A page of an item's on-hand ledger, newest first (by ledger position: an unsharded item's
    /// version; on a sharded item each shard's chain in its own order, a stock write's movements
    /// of every shard together). `cursor` is a page's `nextCursor`.
    pub async fn list_movements(
        &self,
        sku: &str,
        location_id: &str,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<Page<Movement>> {
        let prefix = movements_prefix(location_id);
        let cursors = MovementsCursor { prefix: &prefix };
        let after = cursor.map(|c| cursors.after(c)).transpose()?;
        let partitions = self.item_partitions(sku, location_id).await?;
        let (items, next) = self
            .with_retries("list_movements", || {
                let order = KeyOrder::Descending;
                self.merged_page(&partitions, &prefix, order, limit, after.clone(), ledger_entries)
            })
            .await?;
        let items = items.into_iter().map(from_item::<Movement>).collect::<Result<Vec<_>>>()?;
        let next_cursor = next.and_then(|sk| cursors.of(&sk));
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
        let cursors = CreatedCursor { prefix: &prefix };
        let after = cursor.map(|c| cursors.after(c)).transpose()?;
        let partitions = self.item_partitions(sku, location_id).await?;
        let (items, next) = self
            .with_retries("list_holds", || {
                self.merged_page(&partitions, &prefix, KeyOrder::Ascending, limit, after.clone(), |i| {
                    Ok(vec![i])
                })
            })
            .await?;
        // A reservation holding units on several shards has a hold item on each: one entry.
        let mut held: Vec<(String, String, i64)> = Vec::new();
        for item in &items {
            let id = string_attr(item, "reservationId").unwrap_or_default();
            let quantity = number_attr(item, "quantity").unwrap_or_default();
            match held.last_mut() {
                Some(last) if last.0 == id => last.2 += quantity,
                _ => held.push((id, string_attr(item, "orderId").unwrap_or_default(), quantity)),
            }
        }
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
        let next_cursor = next.and_then(|sk| cursors.of(&sk));
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
        let after = cursor.map(LocationCursor::after).transpose()?;
        let start = after.map(|sku| {
            let mut key = stock_key(sku, location_id);
            key.insert(GSI2_PK.to_owned(), s(location_pk(location_id)));
            key.insert(GSI2_SK.to_owned(), s(sku));
            key
        });
        let query = |q: QueryFluentBuilder| {
            q.index_name(GSI2)
                .key_condition_expression("gsi2pk = :loc")
                .expression_attribute_values(":loc", s(location_pk(location_id)))
                .limit(limit + 1)
        };
        let out = self.with_retries("list_location_stock", || self.query_once(&query, start.clone())).await?;
        let (keys, next) = split_page(out.items.unwrap_or_default(), limit, GSI2_SK);
        let skus: Vec<String> = keys.iter().filter_map(|k| string_attr(k, GSI2_SK)).collect();
        let reads = skus
            .iter()
            .map(|sku| self.with_retries("list_location_stock", || self.read_stock(sku, location_id)));
        let items = futures::future::try_join_all(reads).await?.into_iter().flatten().collect();
        Ok(Page { items, next_cursor: next })
    }

    /// The partitions of an item's shards (shard 0's names how many there are); `NOT_FOUND` when
    /// the item does not exist.
    async fn item_partitions(&self, sku: &str, location_id: &str) -> Result<Vec<String>> {
        let first =
            self.with_retries("item_partitions", || self.get_item(stock_key(sku, location_id))).await?;
        let first = first
            .ok_or_else(|| Error::NotFound { what: "stock item", id: format!("{sku}/{location_id}") })?;
        Ok((0..shard_items_of(&first)).map(|k| shard_pk(sku, location_id, k)).collect())
    }

    /// One page of the items under `prefix` in several partitions (an item's shards'), merged in
    /// `order` of sort key, as [`Store::query_page`] reads one: at most `limit` sort keys (the
    /// same sort key in several partitions, a reservation's holds on several shards, is one, with
    /// all its items), and the sort key to go on from when there are more. Each partition is read
    /// a page at once: a sort key one of them did not reach comes after `limit` others it did.
    /// `entries` makes the items read into those listed, each at a sort key of its own no
    /// earlier than its item's (a ledger item of several movements, `items::ledger_entries`);
    /// those not past `after` were listed already.
    async fn merged_page(
        &self,
        partitions: &[String],
        prefix: &str,
        order: KeyOrder,
        limit: i32,
        after: Option<String>,
        entries: impl Fn(Item) -> Result<Vec<Item>, Error>,
    ) -> Result<(Vec<Item>, Option<String>), Failure> {
        // After a cursor inside an item of several entries, that item is read again and may give
        // none: one item more a partition keeps `limit` entries past the cursor from each.
        let per_partition = if after.is_some() { limit + 1 } else { limit };
        let reads = partitions
            .iter()
            .map(|pk| self.query_page(pk.clone(), prefix, order, per_partition, after.clone()));
        let pages = futures::future::try_join_all(reads).await?;
        let sk = |item: &Item| string_attr(item, SK).unwrap_or_default();
        let unread = pages.iter().any(|(_, next)| next.is_some());
        let past = |key: &String| match (&after, order) {
            (None, _) => true,
            (Some(after), KeyOrder::Ascending) => key > after,
            (Some(after), KeyOrder::Descending) => key < after,
        };
        let mut items = Vec::new();
        for item in pages.into_iter().flat_map(|(items, _)| items) {
            items.extend(entries(item)?.into_iter().filter(|entry| past(&sk(entry))));
        }
        items
            .sort_by(|a, b| if order == KeyOrder::Ascending { sk(a).cmp(&sk(b)) } else { sk(b).cmp(&sk(a)) });
        let mut keys: Vec<String> = items.iter().map(sk).collect();
        keys.dedup();
        let more = keys.len() > limit as usize || unread;
        keys.truncate(limit as usize);
        let kept: std::collections::HashSet<&String> = keys.iter().collect();
        items.retain(|item| kept.contains(&sk(item)));
        let last = keys.last().cloned();
        Ok((items, if more { last } else { None }))
    }
}
