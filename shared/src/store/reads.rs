//! Strongly consistent reads of stock items and reservations.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::items::{from_item, order_key, reservation_key, s, stock_key, stock_pk, string_attr, Item};
use super::retry::{classify, Failure};
use super::Store;
use crate::domain::{Reservation, SkuStock, StockItem};
use crate::error::{Error, Result};

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

    pub(crate) async fn read_stock(
        &self,
        sku: &str,
        location_id: &str,
    ) -> Result<Option<StockItem>, Failure> {
        match self.get_item(stock_key(sku, location_id)).await? {
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

    /// Every location of a SKU, sorted by locationId, with totals.
    pub async fn get_sku_stock(&self, sku: &str) -> Result<SkuStock> {
        let locations = self
            .with_retries("get_sku_stock", || async {
                let mut locations = Vec::new();
                let mut start: Option<Item> = None;
                loop {
                    let out = self
                        .client
                        .query()
                        .table_name(&self.table)
                        .key_condition_expression("pk = :pk")
                        .expression_attribute_values(":pk", s(stock_pk(sku)))
                        .consistent_read(true)
                        .set_exclusive_start_key(start.take())
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send()
                        .await
                        .map_err(classify)?;
                    self.count_request(out.consumed_capacity().and_then(|c| c.capacity_units()));
                    for item in out.items.unwrap_or_default() {
                        locations.push(from_item::<StockItem>(item)?);
                    }
                    match out.last_evaluated_key {
                        Some(key) if !key.is_empty() => start = Some(key),
                        _ => return Ok(locations),
                    }
                }
            })
            .await?;
        if locations.is_empty() {
            return Err(Error::NotFound { what: "sku", id: sku.to_owned() });
        }
        Ok(SkuStock::new(sku.to_owned(), locations))
    }

    pub async fn get_reservation(&self, id: &str) -> Result<Reservation> {
        self.with_retries("get_reservation", || self.read_reservation(id)).await
    }

    /// The reservation of an order, through the order key.
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
