//! The Hako document's (seed `002`) objects, named as it names them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::services::RecordQuantity;

/// An Inventory object: the count of one SKU at one warehouse. Its strings are borrowed from
/// the answer where they can be (no escapes), so reading 200,000 of them allocates little.
#[derive(Debug, Deserialize)]
pub struct Inventory<'a> {
    #[serde(borrow)]
    pub sku: Cow<'a, str>,
    #[serde(borrow, rename = "warehouseID")]
    pub warehouse_id: Cow<'a, str>,
    /// Missing or not a whole number: that SKU is held, the rest of the answer is used.
    #[serde(default)]
    pub quantity: RecordQuantity,
}

/// An Inventory object in a write's answer, read only for the pair it names: the proof that
/// the pair was written (its other fields may be anything).
#[derive(Debug, Deserialize)]
pub struct Affected<'a> {
    #[serde(borrow)]
    pub sku: Cow<'a, str>,
    #[serde(borrow, rename = "warehouseID")]
    pub warehouse_id: Cow<'a, str>,
}

/// The JSON-object query of `GET /inventory`.
#[derive(Serialize)]
pub struct InventoryQuery<'a> {
    #[serde(rename = "warehouseID", skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<&'a str>,
}

/// One element of `POST /inventory`.
#[derive(Serialize)]
pub struct CreateInventory<'a> {
    pub sku: &'a str,
    #[serde(rename = "warehouseID")]
    pub warehouse_id: &'a str,
    pub quantity: i64,
}

/// One element of `PUT /inventory`.
#[derive(Serialize)]
pub struct UpdateInventory<'a> {
    pub sku: &'a str,
    #[serde(rename = "warehouseID")]
    pub warehouse_id: &'a str,
    pub updates: QuantityUpdate,
}

#[derive(Serialize)]
pub struct QuantityUpdate {
    pub quantity: i64,
}

/// A Warehouse object.
#[derive(Debug, Deserialize)]
pub struct Warehouse {
    #[serde(rename = "warehouseID")]
    pub warehouse_id: String,
}
