//! Channels: a put keyed on the version read (and on `expectedVersion` when given), with its
//! `ChannelUpdated` outbox record in the same transaction; a strongly consistent read. Reserves
//! through a channel read it through a per-process cache of a few seconds (a change applies to
//! them after that), so a reserve through a known channel costs no more requests than one
//! without; `GET` and availability always read it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::idempotency::Answer;
use super::items::{channel_item, channel_key, from_item, n, outbox_key};
use super::retry::Failure;
use super::transact::{OnConflict, Tx, TxOutcome};
use super::{ChannelPut, Store, WriteContext};
use crate::domain::{decide_channel_write, validate_channel, Channel, ChannelWrite, Write};
use crate::error::{Error, Result};
use crate::events::DetailType;

impl Store {
    /// Creates or changes a channel (`expected_version` 0: it must not exist yet). The same
    /// locations and safety stock again: 200 and nothing written.
    pub async fn put_channel(
        &self,
        channel_id: &str,
        locations: &[String],
        safety_stock: i64,
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<ChannelPut> {
        validate_channel(locations, safety_stock)?;
        self.with_retries("put_channel", || async {
            let current = self.read_channel(channel_id).await?;
            let now = self.now();
            let decided = decide_channel_write(
                channel_id,
                current.as_ref(),
                locations.to_vec(),
                safety_stock,
                expected_version,
                now,
            )?;
            let (channel, created) = match decided {
                ChannelWrite::Unchanged(channel) => return Ok(ChannelPut { channel, created: false }),
                ChannelWrite::Write { channel, created } => (channel, created),
            };
            let mut tx = Tx::new(Write::Channel);
            let item = channel_item(&channel)?;
            tx.push(match &current {
                None => self.put(item, "attribute_not_exists(pk)", vec![])?,
                Some(read) => self.put(item, "version = :v", vec![(":v", n(read.version))])?,
            });
            let data = serde_json::to_value(&channel).map_err(Error::internal)?;
            let event = ctx.event(DetailType::ChannelUpdated, data, now);
            tx.push(self.outbox(&event)?);
            let answer = Answer::new(if created { 201 } else { 200 }, &channel)?;
            match self
                .commit("put_channel", tx, outbox_key(&event), Some(&answer), ctx, OnConflict::Retry)
                .await?
            {
                TxOutcome::Committed => {
                    self.channels.forget(channel_id);
                    Ok(ChannelPut { channel, created })
                }
                // Written since it was read: read again and decide again.
                TxOutcome::Cancelled(_) => Err(Failure::Stale),
                TxOutcome::GaveWay => Err(Failure::Retry("conflict")),
            }
        })
        .await
    }

    /// `GET /v1/channels/{channelId}`.
    pub async fn get_channel(&self, channel_id: &str) -> Result<Channel> {
        self.with_retries("get_channel", || self.read_channel(channel_id))
            .await?
            .ok_or_else(|| Error::NotFound { what: "channel", id: channel_id.to_owned() })
    }

    /// The channel a reserve goes through: as read within the last [`CHANNEL_CACHE_TTL`] by
    /// this process, else read now. `NOT_FOUND` if there is none.
    pub async fn channel_for_reserve(&self, channel_id: &str) -> Result<Channel> {
        if let Some(channel) = self.channels.get(channel_id) {
            return Ok(channel);
        }
        let channel = self.get_channel(channel_id).await?;
        self.channels.put(channel.clone());
        Ok(channel)
    }

    /// The channel, strongly consistent; `None` if there is none.
    pub(crate) async fn read_channel(&self, channel_id: &str) -> Result<Option<Channel>, Failure> {
        match self.get_item(channel_key(channel_id)).await? {
            Some(item) => Ok(Some(from_item(item)?)),
            None => Ok(None),
        }
    }
}

/// How long a process reserves through a channel as it read it.
pub const CHANNEL_CACHE_TTL: Duration = Duration::from_secs(5);

/// Channels by id, with when they were read.
#[derive(Debug, Default)]
pub(crate) struct ChannelCache {
    entries: Mutex<HashMap<String, (Instant, Channel)>>,
}

impl ChannelCache {
    fn get(&self, channel_id: &str) -> Option<Channel> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(channel_id).filter(|(at, _)| at.elapsed() < CHANNEL_CACHE_TTL).map(|(_, c)| c.clone())
    }

    fn put(&self, channel: Channel) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(channel.channel_id.clone(), (Instant::now(), channel));
    }

    fn forget(&self, channel_id: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(channel_id);
    }
}
