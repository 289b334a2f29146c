//! Kits. Every sku that has stock items or is a kit has a sku item (`SKU#{sku}`, `SKU`) saying
//! which (`kind`: STOCK or KIT). The first stock item of a sku writes it in its own transaction,
//! a kit's put in its own, and a kit's put marks each of its components STOCK, each write
//! conditioned on the kind it finds: a sku is never both, and a component never becomes a kit.
//! (Skus stocked before sku items existed have none: a kit's put also looks for their stock
//! items.) A kit's item holds its components and version, with its `KitUpdated` outbox record in
//! the same transaction.
//!
//! Reserves name stock items directly: a sku is looked up as a kit only when its stock item turns
//! out to be missing ([`Store::learn_kit`]). A process keeps the kits it learnt: a kit stays a
//! kit, and its components are used as read for [`KIT_CACHE_TTL`], then read again before the
//! next reserve of it. A reservation keeps the components it held, whatever the kit becomes.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::idempotency::Answer;
use super::items::{from_item, n, outbox_key, s, sku_key, string_attr, Item, STOCK_ITEM_PREFIX};
use super::reads::{KeyOrder, SortKeys};
use super::retry::Failure;
use super::transact::{OnConflict, Tx, TxOutcome};
use super::{Store, WriteContext};
use crate::domain::{decide_kit_write, validate_kit, Cart, Component, Kit, KitWrite, Write};
use crate::error::{Error, Result};
use crate::events::DetailType;

/// `kind` of the sku item of a sku with stock items (or named as a kit's component).
const STOCK: &str = "STOCK";
/// `kind` of a kit's sku item.
const KIT: &str = "KIT";

/// How long a process reserves a kit as it read its components.
pub const KIT_CACHE_TTL: Duration = Duration::from_secs(5);

/// A kit's put: the kit as it is now, and whether the put created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitPut {
    pub kit: Kit,
    pub created: bool,
}

impl Store {
    /// Creates or changes a kit (`expected_version` 0: it must not exist yet). The same
    /// components again: 200 and nothing written. 409 INVALID_STATE if the sku has stock items;
    /// 400 if a component is a kit.
    pub async fn put_kit(
        &self,
        sku: &str,
        components: &[Component],
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<KitPut> {
        crate::domain::validate_sku(sku)?;
        let components = validate_kit(sku, components)?;
        self.with_retries("put_kit", || async {
            let current = match self.get_item(sku_key(sku)).await? {
                Some(item) => Some(kit_of(item)?.ok_or_else(|| stocked(sku))?),
                None if self.has_stock_items(sku).await? => return Err(stocked(sku)),
                None => None,
            };
            let now = self.now();
            let decided = decide_kit_write(sku, current.as_ref(), components.clone(), expected_version, now)?;
            let (kit, created) = match decided {
                KitWrite::Unchanged(kit) => return Ok(KitPut { kit, created: false }),
                KitWrite::Write { kit, created } => (kit, created),
            };
            let mut tx = Tx::new(Write::Kit { components: kit.components.len() });
            let item = kit_item(&kit)?;
            tx.push(match &current {
                None => self.put(item, "attribute_not_exists(pk)", vec![])?,
                Some(read) => self.put(item, "version = :v", vec![(":v", n(read.version))])?,
            });
            let marks: Vec<_> = kit
                .components
                .iter()
                .map(|c| Ok(tx.push_for(c.sku.clone(), self.stocked_item(&c.sku)?)))
                .collect::<Result<_>>()?;
            let data = serde_json::to_value(&kit).map_err(Error::internal)?;
            let event = ctx.event(DetailType::KitUpdated, data, now);
            tx.push(self.outbox(&event)?);
            let answer = Answer::new(if created { 201 } else { 200 }, &kit)?;
            match self
                .commit("put_kit", tx, outbox_key(&event), Some(&answer), ctx, OnConflict::Retry)
                .await?
            {
                TxOutcome::Committed => {
                    self.kits.put(&kit.sku, kit.components.clone());
                    Ok(KitPut { kit, created })
                }
                TxOutcome::Cancelled(cancelled) => match cancelled.failures(&marks).next() {
                    Some((component, _)) => Err(Failure::Fatal(Error::invalid_field(
                        "components",
                        format!("{component} is a kit: a kit's components are skus with stock of their own"),
                    ))),
                    // The kit (or its sku item) was written since it was read: read again.
                    None => Err(Failure::Stale),
                },
                TxOutcome::GaveWay => Err(Failure::Retry("conflict")),
            }
        })
        .await
    }

    /// `GET /v1/kits/{sku}`.
    pub async fn get_kit(&self, sku: &str) -> Result<Kit> {
        self.with_retries("get_kit", || self.read_kit(sku))
            .await?
            .ok_or_else(|| Error::NotFound { what: "kit", id: sku.to_owned() })
    }

    /// The kit `sku` is, strongly consistent; `None` if it is not one.
    pub(crate) async fn read_kit(&self, sku: &str) -> Result<Option<Kit>, Failure> {
        Ok(self.get_item(sku_key(sku)).await?.map(kit_of).transpose()?.flatten())
    }

    /// The action a stock item's creation carries: the sku's item says STOCK (refused, with the
    /// item as it is, if the sku is a kit).
    pub(crate) fn stocked_item(&self, sku: &str) -> Result<TransactWriteItem> {
        self.update(
            sku_key(sku),
            "SET kind = :stock, entity = :entity, sku = :sku",
            "attribute_not_exists(pk) OR kind = :stock",
            vec![(":stock", s(STOCK)), (":entity", s("SKU")), (":sku", s(sku))],
        )
    }

    async fn has_stock_items(&self, sku: &str) -> Result<bool, Failure> {
        let items = self.query_partition(
            super::items::stock_pk(sku),
            SortKeys::Prefix(STOCK_ITEM_PREFIX),
            KeyOrder::Ascending,
        );
        Ok(!items.await?.is_empty())
    }

    /// `cart` with its lines on the kits this process knows made kit lines: their components as
    /// read within [`KIT_CACHE_TTL`], or read again now (one GetItem per such kit, at once).
    pub(crate) async fn with_known_kits<'c>(&self, cart: &'c Cart) -> Result<Cow<'c, Cart>, Failure> {
        let mut kits = BTreeMap::new();
        let mut stale = Vec::new();
        for sku in cart.skus() {
            match self.kits.get(sku) {
                Some((components, at)) if at.elapsed() < KIT_CACHE_TTL => {
                    kits.insert(sku.to_owned(), components);
                }
                Some(_) => stale.push(sku),
                None => {}
            }
        }
        let reads =
            stale.into_iter().map(|sku| async move { Ok::<_, Failure>((sku, self.read_kit(sku).await?)) });
        for (sku, kit) in futures::future::try_join_all(reads).await? {
            // A kit stays a kit; should its item be gone, the reserve answers as for any sku.
            if let Some(kit) = kit {
                self.kits.put(sku, kit.components.clone());
                kits.insert(sku.to_owned(), kit.components);
            }
        }
        // A cart on no kit (the common case) as it is, not copied.
        Ok(if kits.is_empty() { Cow::Borrowed(cart) } else { Cow::Owned(cart.with_kits(&kits)) })
    }

    /// After `refusal`: if it says a line's stock item (or sku) is missing, and that sku is a kit
    /// this process did not know, it knows it now: `true`, the cart is to be held again.
    pub(crate) async fn learn_kit(&self, refusal: &Failure) -> Result<bool, Failure> {
        let Failure::Fatal(Error::NotFound { what, id }) = refusal else { return Ok(false) };
        let sku = match *what {
            "stock item" => id.split('/').next().unwrap_or_default(),
            "sku" => id.as_str(),
            _ => return Ok(false),
        };
        if self.kits.get(sku).is_some() {
            return Ok(false);
        }
        let Some(kit) = self.read_kit(sku).await? else { return Ok(false) };
        self.kits.put(&kit.sku, kit.components);
        Ok(true)
    }
}

/// The kit a sku item says the sku is; `None` for a stocked sku.
pub(crate) fn kit_of(item: Item) -> Result<Option<Kit>> {
    match string_attr(&item, "kind").as_deref() {
        Some(KIT) => Ok(Some(from_item(item)?)),
        _ => Ok(None),
    }
}

fn stocked(sku: &str) -> Failure {
    Failure::Fatal(Error::SkuKind { sku: sku.to_owned(), kind: "STOCKED" })
}

pub(crate) fn kit_item(kit: &Kit) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(kit).map_err(Error::internal)?;
    item.extend(sku_key(&kit.sku));
    item.insert("entity".into(), s("SKU"));
    item.insert("kind".into(), s(KIT));
    Ok(item)
}

/// Kits by sku, with when their components were read.
#[derive(Debug, Default)]
pub(crate) struct KitCache {
    entries: Mutex<HashMap<String, (Vec<Component>, Instant)>>,
}

impl KitCache {
    fn get(&self, sku: &str) -> Option<(Vec<Component>, Instant)> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(sku).cloned()
    }

    fn put(&self, sku: &str, components: Vec<Component>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 10_000 {
            entries.clear();
        }
        entries.insert(sku.to_owned(), (components, Instant::now()));
    }
}
