//! `POST /v1/availability`: strongly consistent reads, so the answer reflects every write
//! completed before it started. Without a channel, one Query per sku (its partition: every
//! location and shard); with one, BatchGetItem of the (sku x channel location) items, 100 keys a
//! request, then of the shard items of the sharded ones. Requests in flight are bounded.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnConsumedCapacity};
use futures::{StreamExt, TryStreamExt};

use super::items::{from_item, shard_key, shard_of, stock_key, Item};
use super::retry::{classify, Failure};
use super::Store;
use crate::domain::{availability_of, combine, validate_availability_skus, SkuAvailability, StockItem};
use crate::error::{Error, Result};

/// DynamoDB's limit of keys per BatchGetItem.
pub const BATCH_GET_KEYS: usize = 100;
/// Reads in flight at once for one request.
pub const IN_FLIGHT: usize = 8;

impl Store {
    /// The availability of each of `skus`, in their order: over every location, or over the
    /// channel's (`NOT_FOUND` if there is none), each location less its safety stock.
    pub async fn availability(
        &self,
        skus: &[String],
        channel_id: Option<&str>,
        by_location: bool,
    ) -> Result<Vec<SkuAvailability>> {
        validate_availability_skus(skus)?;
        let Some(channel_id) = channel_id else {
            return futures::stream::iter(skus.iter().cloned())
                .map(|sku: String| async move {
                    let items = self.with_retries("availability", || self.read_sku_stock(&sku)).await?;
                    Ok::<_, Error>(availability_of(&sku, &items, None, by_location))
                })
                .buffered(IN_FLIGHT)
                .try_collect()
                .await;
        };
        let channel = self.get_channel(channel_id).await?;
        let keys: Vec<Item> = skus
            .iter()
            .flat_map(|sku| channel.locations.iter().map(move |location| stock_key(sku, location)))
            .collect();
        let firsts: Vec<StockItem> =
            self.batch_get(keys).await?.into_iter().map(from_item).collect::<Result<_, Error>>()?;
        // Sharded items: their other shard items too (shard 0 names how many there are).
        let shard_keys: Vec<Item> = firsts
            .iter()
            .flat_map(|item| (1..item.shards).map(|k| shard_key(&item.sku, &item.location_id, k)))
            .collect();
        let mut shards: BTreeMap<(String, String), Vec<(u32, StockItem)>> = firsts
            .into_iter()
            .map(|item| ((item.sku.clone(), item.location_id.clone()), vec![(0, item)]))
            .collect();
        if !shard_keys.is_empty() {
            for item in self.batch_get(shard_keys).await? {
                let shard = shard_of(&item);
                let item: StockItem = from_item(item)?;
                if let Some(parts) = shards.get_mut(&(item.sku.clone(), item.location_id.clone())) {
                    parts.push((shard, item));
                }
            }
        }
        let items: Vec<StockItem> = shards
            .into_values()
            .filter_map(|mut parts| {
                parts.sort_by_key(|(k, _)| *k);
                combine(&parts.into_iter().map(|(_, item)| item).collect::<Vec<_>>())
            })
            .collect();
        Ok(skus.iter().map(|sku| availability_of(sku, &items, Some(&channel), by_location)).collect())
    }

    /// The items of `keys` that exist (strongly consistent), in any order: BatchGetItem of 100
    /// keys at a time, a few at once, each sent again for its unprocessed keys.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>> {
        let chunks: Vec<Vec<Item>> = keys.chunks(BATCH_GET_KEYS).map(<[Item]>::to_vec).collect();
        let pages: Vec<Vec<Item>> = futures::stream::iter(chunks)
            .map(|chunk| async move {
                let mut items = Vec::with_capacity(chunk.len());
                let mut pending = chunk;
                while !pending.is_empty() {
                    let sent = pending.clone();
                    let (got, unprocessed) =
                        self.with_retries("availability", || self.batch_get_once(sent.clone())).await?;
                    items.extend(got);
                    pending = unprocessed;
                }
                Ok::<_, Error>(items)
            })
            .buffer_unordered(IN_FLIGHT)
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
        let unprocessed =
            out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).map(|k| k.keys).unwrap_or_default();
        Ok((got, unprocessed))
    }
}
