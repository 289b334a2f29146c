//! Stock writes (PUT and adjustments): read the item, let the domain decide the new item, write it
//! back keyed on the version read, with its `StockAdjusted` outbox record and its ledger movement,
//! in one transaction.

use serde_json::json;

use super::idempotency::Answer;
use super::items::{movement_item, n, outbox_key, stock_item};
use super::retry::Failure;
use super::transact::TxOutcome;
use super::{StockWrite, Store};
use crate::domain::{plan_stock_write, Movement, MovementKind, Provenance, StockChange};
use crate::error::{Error, Result};
use crate::events::{DetailType, OutboxEvent};

impl Store {
    /// Sets or adjusts a stock item, keyed on the version just read (and on `expected_version`
    /// when given: 0 means "must not exist yet").
    pub async fn write_stock(
        &self,
        sku: &str,
        location_id: &str,
        change: StockChange,
        expected_version: Option<u64>,
        reason: Option<&str>,
        correlation_id: Option<&str>,
    ) -> Result<StockWrite> {
        let provenance = Provenance {
            reason: reason.map(str::to_owned),
            correlation_id: correlation_id.map(str::to_owned),
            ..Provenance::default()
        };
        self.write_stock_as(sku, location_id, change, expected_version, &provenance).await
    }

    /// [`Store::write_stock`], saying who asked and why: the change's ledger movement and event
    /// carry it.
    pub async fn write_stock_as(
        &self,
        sku: &str,
        location_id: &str,
        change: StockChange,
        expected_version: Option<u64>,
        provenance: &Provenance,
    ) -> Result<StockWrite> {
        self.with_retries("write_stock", || async {
            let current = self.read_stock(sku, location_id).await?;
            let now = self.now();
            let update = plan_stock_write(sku, location_id, current.as_ref(), change, expected_version, now)?;
            let mut data = serde_json::to_value(&update.item).map_err(Error::internal)?;
            data["delta"] = json!(update.delta);
            data["reason"] = json!(provenance.reason);
            if let Some(reference) = &provenance.reference {
                data["reference"] = json!(reference);
            }
            let correlation_id = provenance.correlation_id.as_deref();
            let event = OutboxEvent::new(DetailType::StockAdjusted, data, now, correlation_id);
            let guard = match &current {
                None => self.put(stock_item(&update.item)?, "attribute_not_exists(pk)", vec![])?,
                Some(read) => {
                    self.put(stock_item(&update.item)?, "version = :v", vec![(":v", n(read.version))])?
                }
            };
            let mut actions = vec![guard, self.outbox(&event)?];
            // The ledger: every change of onHand (and the item's first count).
            if update.delta != 0 || update.created {
                let kind = match change {
                    StockChange::Set { .. } | StockChange::SetWithThreshold { .. } => MovementKind::Set,
                    StockChange::Adjust { .. } => MovementKind::Adjust,
                };
                let item = &update.item;
                let movement = Movement::new(kind, item.version, update.delta, item.on_hand, now, provenance);
                let put = movement_item(sku, location_id, &movement)?;
                actions.push(self.put(put, "attribute_not_exists(pk)", vec![])?);
            }
            let answer = Answer::new(if update.created { 201 } else { 200 }, &update.item)?;
            match self.commit("write_stock", actions, outbox_key(&event), Some(&answer)).await? {
                TxOutcome::Committed => Ok(StockWrite { item: update.item, created: update.created }),
                // Someone wrote the item since our read: read again and decide again.
                TxOutcome::Cancelled(_) => Err(Failure::Stale),
            }
        })
        .await
    }
}
