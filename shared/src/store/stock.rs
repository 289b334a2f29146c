//! Stock writes (PUT and adjustments): read the item (all its shards), let the domain decide the
//! new item, write every shard back keyed on the version read (the available units spread evenly
//! over the shards), with its `StockAdjusted` outbox record and a ledger movement per shard whose
//! onHand changed (on a sharded item all in one ledger item, `items::movements_item`), in one
//! transaction.

use serde_json::json;

use super::idempotency::Answer;
use super::items::{
    ledger_seq_of, movement_item, movements_item, n, outbox_key, shard_item, LEDGER_SEQ, SHARD_ITEMS,
};
use super::levels::{level_events, level_item};
use super::reads::numbered_shards;
use super::retry::Failure;
use super::transact::{OnConflict, Tx, TxOutcome};
use super::{StockWrite, Store, WriteContext};
use crate::domain::{
    balance, combine, decide_stock_write, stock_crossings, Movement, MovementKind, Provenance, StockChange,
    StockItem, StockLevel, Write,
};
use crate::error::{Error, Result};
use crate::events::DetailType;

impl Store {
    /// Sets or adjusts a stock item, keyed on the version just read (and on `expected_version`
    /// when given: 0 means "must not exist yet"); `reason` goes into the ledger and the event.
    pub async fn write_stock(
        &self,
        sku: &str,
        location_id: &str,
        change: StockChange,
        expected_version: Option<u64>,
        reason: Option<&str>,
        ctx: &WriteContext,
    ) -> Result<StockWrite> {
        let why = Provenance { reason: reason.map(str::to_owned), ..Provenance::default() };
        self.write_stock_as(sku, location_id, change, expected_version, &why, ctx).await
    }

    /// [`Store::write_stock`] with the reason and reference of `why` (the context names who
    /// asked): the change's ledger movement and event carry them.
    pub async fn write_stock_as(
        &self,
        sku: &str,
        location_id: &str,
        change: StockChange,
        expected_version: Option<u64>,
        why: &Provenance,
        ctx: &WriteContext,
    ) -> Result<StockWrite> {
        let provenance = &ctx.provenance(why);
        self.with_retries("write_stock", || async {
            let read = self.read_shard_items(sku, location_id).await?;
            // The ledger position of this write's movements, past every shard's last one.
            let seq = read.iter().map(ledger_seq_of).max().unwrap_or(0) + 1;
            let shards = numbered_shards(read)?;
            let parts: Vec<StockItem> = shards.iter().map(|(_, s)| s.clone()).collect();
            let current = combine(&parts);
            let now = self.now();
            let mut update =
                decide_stock_write(sku, location_id, current.as_ref(), change, expected_version, now)?;
            // Every shard is rewritten, keyed on its version as read: each keeps its reserved
            // units and the available ones are spread evenly over the shards that take holds.
            let count = shards.last().map_or(1, |(k, _)| *k as usize + 1);
            let mut reserved = vec![0; count];
            for (k, s) in &shards {
                reserved[*k as usize] = s.reserved;
            }
            let on_hands = balance(update.item.on_hand, &reserved, update.item.shards)?;
            let kind = match change {
                StockChange::Adjust { .. } => MovementKind::Adjust,
                _ => MovementKind::Set,
            };
            // A movement per shard whose onHand changes (and the item's first count).
            let moves = |k: usize| {
                let read = shards.iter().find(|(n, _)| *n as usize == k).map(|(_, s)| s);
                on_hands[k] != read.map_or(0, |s| s.on_hand) || (update.created && k == 0)
            };
            let sharded = on_hands.len() > 1;
            let movements = (0..on_hands.len()).filter(|k| moves(*k)).count();
            // A sharded item's movements go into one ledger item.
            let movement_items = if sharded { movements.min(1) } else { movements };
            // The write that makes the item sharded records its total for the publisher (which
            // derives a sharded item's stock events from its total, `store::levels`), and the
            // lines this write crosses, as the publisher would have from an unsharded item's images.
            let crossed = match &current {
                Some(before) if count <= 1 && on_hands.len() > 1 => {
                    let threshold = update.item.low_stock_threshold;
                    let level = |available| StockLevel { available, low_stock_threshold: threshold };
                    Some(stock_crossings(level(before.available), level(update.item.available)))
                }
                None if on_hands.len() > 1 => Some(Vec::new()),
                _ => None,
            };
            let level = crossed.as_ref().map_or(0, |c| 1 + c.len());
            let shard_items = on_hands.len();
            let mut tx = Tx::new(Write::Stock {
                shard_items,
                movements: movement_items,
                created: update.created,
                level,
            });
            // A sku's first stock item says so on its sku item: a kit cannot get one.
            let sku_item = update.created.then(|| self.stocked_item(sku)).transpose()?.map(|a| tx.push(a));
            let mut written = Vec::with_capacity(on_hands.len());
            let mut ledger = Vec::new();
            for (k, on_hand) in on_hands.iter().enumerate() {
                let k = k as u32;
                let read = shards.iter().find(|(n, _)| *n == k).map(|(_, s)| s);
                let mut shard = update.item.clone();
                shard.on_hand = *on_hand;
                shard.reserved = read.map_or(0, |s| s.reserved);
                shard.available = on_hand - shard.reserved;
                shard.version = read.map_or(0, |s| s.version) + 1;
                let mut item = shard_item(&shard, k)?;
                if k == 0 {
                    item.insert(SHARD_ITEMS.into(), n(on_hands.len()));
                }
                item.insert(LEDGER_SEQ.into(), n(seq));
                let guard = match read {
                    None => self.put(item, "attribute_not_exists(pk)", vec![])?,
                    Some(read) => self.put(item, "version = :v", vec![(":v", n(read.version))])?,
                };
                tx.push(guard);
                if moves(k as usize) {
                    let delta = on_hand - read.map_or(0, |s| s.on_hand);
                    ledger.push(
                        Movement::new(kind, shard.version, delta, *on_hand, now, provenance)
                            .on_shard(k, on_hands.len()),
                    );
                }
                written.push(shard);
            }
            let ledger_item = match ledger.as_slice() {
                [] => None,
                [movement] if !sharded => Some(movement_item(sku, location_id, seq, movement)?),
                movements => Some(movements_item(sku, location_id, seq, movements)?),
            };
            if let Some(item) = ledger_item {
                tx.push(self.put(item, "attribute_not_exists(pk)", vec![])?);
            }
            update.item = combine(&written).expect("at least shard 0");
            if let Some(crossed) = &crossed {
                tx.push(self.put(level_item(&update.item), "", vec![])?);
                for event in level_events(&update.item, crossed)? {
                    tx.push(self.outbox(&event)?);
                }
            }
            let mut data = serde_json::to_value(&update.item).map_err(Error::internal)?;
            data["delta"] = json!(update.delta);
            data["reason"] = json!(provenance.reason);
            if let Some(reference) = &provenance.reference {
                data["reference"] = json!(reference);
            }
            let event = ctx.event(DetailType::StockAdjusted, data, now);
            tx.push(self.outbox(&event)?);
            let answer = Answer::new(if update.created { 201 } else { 200 }, &update.item)?;
            let marker = outbox_key(&event);
            match self.commit("write_stock", tx, marker, Some(&answer), ctx, OnConflict::Retry).await? {
                TxOutcome::Committed => {
                    self.remember_shards(sku, location_id, update.item.shards, on_hands.len() as u32);
                    Ok(StockWrite { item: update.item, created: update.created })
                }
                TxOutcome::Cancelled(cancelled) => match sku_item.filter(|slot| cancelled.failed(slot)) {
                    Some(_) => Err(Failure::Fatal(Error::SkuKind { sku: sku.to_owned(), kind: "KIT" })),
                    // Someone wrote the item since our read: read again and decide again.
                    None => Err(Failure::Stale),
                },
                TxOutcome::GaveWay => Err(Failure::Retry("conflict")),
            }
        })
        .await
    }
}
