//! `POST /v1/availability`: strongly consistent reads, so the answer reflects every write
//! completed before it started. Without a channel, one Query per sku (its partition: every
//! location and shard); with one, BatchGetItem of the (sku x channel location) items, 100 keys a
//! request, then of the shard items of the sharded ones. Requests in flight are bounded. Skus
//! with no stock item read may be kits: one BatchGetItem of their sku items, then the
//! components' stock, read the same way.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnConsumedCapacity};
use futures::{StreamExt, TryStreamExt};

use super::items::{from_item, shard_key, shard_of, sku_key, stock_key, Item};
use super::kits::kit_of;
use super::retry::{classify, Failure};
use super::Store;
use crate::domain::{
    availability_of, kit_availability_of, sellable, validate_availability_skus, Channel, Kit,
    SkuAvailability, StockItem,
};
use crate::error::{Error, Result};

/// DynamoDB's limit of keys per BatchGetItem.
pub const BATCH_GET_KEYS: usize = 100;
/// Reads in flight at once for one request.
pub const IN_FLIGHT: usize = 8;

impl Store {
    /// The availability of each of `skus`, in their order: over every location, or over the
    /// channel's (`NOT_FOUND` if there is none), each location less its safety stock. A sku with
    /// no stock item among those read may be a kit: the kits among them are read (one
    /// BatchGetItem), then their components' stock as the skus' was.
    pub async fn availability(
        &self,
        skus: &[String],
        channel_id: Option<&str>,
        by_location: bool,
    ) -> Result<Vec<SkuAvailability>> {
        validate_availability_skus(skus)?;
        let channel = match channel_id {
            Some(channel_id) => Some(self.get_channel(channel_id).await?),
            None => None,
        };
        let channel = channel.as_ref();
        let (mut items, mut kits) = self.stock_of(skus, channel).await?;
        if channel.is_some() {
            let bare: Vec<&String> =
                skus.iter().filter(|sku| !items.iter().any(|i| i.sku == **sku)).collect();
            kits = self.kits_among(&bare).await?;
        }
        let parts: BTreeSet<String> =
            kits.iter().flat_map(|kit| kit.components.iter().map(|c| c.sku.clone())).collect();
        let unread: Vec<String> = parts.into_iter().filter(|sku| !skus.contains(sku)).collect();
        if !unread.is_empty() {
            items.extend(self.stock_of(&unread, channel).await?.0);
        }
        Ok(skus
            .iter()
            .map(|sku| match kits.iter().find(|kit| kit.sku == *sku) {
                Some(kit) => kit_availability_of(sku, &kit.components, &items, channel, by_location),
                None => availability_of(sku, &items, channel, by_location),
            })
            .collect())
    }

    /// The stock items of `skus` (each the sum of its shards): without a channel one Query per
    /// sku, a few at once, which also finds the kits among them; with one, BatchGetItem of the
    /// (sku x channel location) items, then of the shard items of the sharded ones (and no kits).
    async fn stock_of(
        &self,
        skus: &[String],
        channel: Option<&Channel>,
    ) -> Result<(Vec<StockItem>, Vec<Kit>)> {
        let Some(channel) = channel else {
            let per_sku: Vec<(Vec<StockItem>, Option<Kit>)> = futures::stream::iter(skus.iter().cloned())
                .map(|sku: String| async move {
                    self.with_retries("availability", || self.read_sku_stock_or_kit(&sku)).await
                })
                .buffered(IN_FLIGHT)
                .try_collect()
                .await?;
            let (items, kits): (Vec<_>, Vec<_>) = per_sku.into_iter().unzip();
            return Ok((items.into_iter().flatten().collect(), kits.into_iter().flatten().collect()));
        };
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
        let items = shards
            .into_values()
            .filter_map(|mut parts| {
                parts.sort_by_key(|(k, _)| *k);
                // Each shard keeps the channel's safety stock, as a write's condition does.
                sellable(&parts.into_iter().map(|(_, item)| item).collect::<Vec<_>>(), channel.safety_stock)
            })
            .collect();
        Ok((items, Vec::new()))
    }

    /// The kits among `skus` (their sku items, BatchGetItem).
    async fn kits_among(&self, skus: &[&String]) -> Result<Vec<Kit>> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        let items = self.batch_get(skus.iter().map(|sku| sku_key(sku)).collect()).await?;
        let kits: Vec<Option<Kit>> = items.into_iter().map(kit_of).collect::<Result<_>>()?;
        Ok(kits.into_iter().flatten().collect())
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
