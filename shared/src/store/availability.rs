//! `POST /v1/availability`: strongly consistent reads, so the answer reflects every write
//! completed before it started. Without a channel, one Query per sku (its partition: every
//! location's item, shard 0 of a sharded one); with one, BatchGetItem of the (sku x channel
//! location) items, 100 keys a request; then, either way, BatchGetItem of the other shard items
//! of the sharded ones (each in a partition of its own), 100 keys a request. Requests in flight are bounded. Skus
//! with no stock item read may be kits: one BatchGetItem of their sku items, then the
//! components' stock, read the same way.

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt};

use super::items::{sku_key, stock_key, Item};
use super::kits::kit_of;
use super::Store;
use crate::domain::{
    availability_of, combine, kit_availability_of, sellable, validate_availability_skus, Channel, Kit,
    SkuAvailability, StockItem,
};
use crate::error::Result;

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
            let per_sku: Vec<(Vec<Item>, Option<Kit>)> =
                futures::stream::iter(skus.iter().cloned())
                    .map(|sku: String| async move {
                        self.with_retries("availability", || self.query_sku(&sku)).await
                    })
                    .buffered(IN_FLIGHT)
                    .try_collect()
                    .await?;
            let (firsts, kits): (Vec<_>, Vec<_>) = per_sku.into_iter().unzip();
            let firsts: Vec<Item> = firsts.into_iter().flatten().collect();
            // The other shards of every sharded item read, 100 keys a BatchGetItem.
            let items = self.with_retries("availability", || self.with_shards(firsts.clone())).await?;
            let items = items
                .into_iter()
                .filter_map(|parts| combine(&parts.into_iter().map(|(_, s)| s).collect::<Vec<_>>()))
                .collect();
            return Ok((items, kits.into_iter().flatten().collect()));
        };
        let keys: Vec<Item> = skus
            .iter()
            .flat_map(|sku| channel.locations.iter().map(move |location| stock_key(sku, location)))
            .collect();
        // The items read, then the other shard items of the sharded ones (shard 0 names them).
        let items = self
            .with_retries("availability", || async {
                let firsts = self.batch_get_all(keys.clone()).await?;
                self.with_shards(firsts).await
            })
            .await?;
        // Each shard keeps the channel's safety stock, as a write's condition does.
        let items = items
            .into_iter()
            .filter_map(|parts| {
                sellable(&parts.into_iter().map(|(_, s)| s).collect::<Vec<_>>(), channel.safety_stock)
            })
            .collect();
        Ok((items, Vec::new()))
    }

    /// The kits among `skus` (their sku items, BatchGetItem).
    async fn kits_among(&self, skus: &[&String]) -> Result<Vec<Kit>> {
        if skus.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Item> = skus.iter().map(|sku| sku_key(sku)).collect();
        let items = self.with_retries("availability", || self.batch_get_all(keys.clone())).await?;
        let kits: Vec<Option<Kit>> = items.into_iter().map(kit_of).collect::<Result<_>>()?;
        Ok(kits.into_iter().flatten().collect())
    }
}
