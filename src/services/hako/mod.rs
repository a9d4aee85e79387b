//! Hako (seed `002`): warehouse inventory, read as a source and written as a target.
//!
//! Auth is HTTP basic with the API key as user and an empty password. Every request, GET
//! included, carries `Content-Type: application/json` and a JSON body, as the document demands.
//! Writing is `PUT /inventory` (`updates.quantity`) for pairs that exist and `POST /inventory`
//! for pairs that do not; Hako refuses the wrong one, so a target that guessed wrong looks up
//! which pairs exist and writes each the right way.

pub mod sim;

use std::borrow::Cow;
use std::collections::HashSet;

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{ConnectorError, PushItem, Quantity, Stock, non_negative, parse};
use crate::http::{Endpoint, HttpError, Meter};

// ---- wire types, as the document names them ----

/// An Inventory object: the count of one SKU at one warehouse. Its strings are borrowed from
/// the answer where they can be (no escapes), so reading 200,000 of them allocates little.
#[derive(Debug, Deserialize)]
struct Inventory<'a> {
    #[serde(borrow)]
    sku: Cow<'a, str>,
    #[serde(borrow, rename = "warehouseID")]
    warehouse_id: Cow<'a, str>,
    quantity: Quantity,
}

/// The JSON-object query of `GET /inventory`.
#[derive(Serialize)]
struct InventoryQuery<'a> {
    #[serde(rename = "warehouseID", skip_serializing_if = "Option::is_none")]
    warehouse_id: Option<&'a str>,
}

/// One element of `POST /inventory`.
#[derive(Serialize)]
struct CreateInventory<'a> {
    sku: &'a str,
    #[serde(rename = "warehouseID")]
    warehouse_id: &'a str,
    quantity: i64,
}

/// One element of `PUT /inventory`.
#[derive(Serialize)]
struct UpdateInventory<'a> {
    sku: &'a str,
    #[serde(rename = "warehouseID")]
    warehouse_id: &'a str,
    updates: QuantityUpdate,
}

#[derive(Serialize)]
struct QuantityUpdate {
    quantity: i64,
}

/// A Warehouse object.
#[derive(Debug, Deserialize)]
struct Warehouse {
    #[serde(rename = "warehouseID")]
    warehouse_id: String,
}

// ---- auth and requests ----

/// One Hako account: where it is and its key.
struct HakoAccount {
    endpoint: Endpoint,
    api_key: SecretString,
}

impl HakoAccount {
    async fn send(
        &self,
        meter: &Meter,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Bytes, HttpError> {
        let body = Bytes::from(body);
        self.endpoint
            .send(meter, || {
                self.endpoint
                    .request(method.clone(), path)
                    .basic_auth(self.api_key.expose_secret(), Some(""))
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await
    }

    /// The SKUs that have a pair in `warehouse`.
    async fn skus_in(
        &self,
        meter: &Meter,
        warehouse: &str,
    ) -> Result<HashSet<String>, ConnectorError> {
        let query = json(&InventoryQuery {
            warehouse_id: Some(warehouse),
        });
        let body = self.send(meter, Method::GET, "/inventory", query).await?;
        let objects: Vec<Inventory> = parse(
            &body,
            "GET /inventory: expected an array of Inventory objects",
        )?;
        Ok(objects
            .into_iter()
            .filter(|o| o.warehouse_id == warehouse)
            .map(|o| o.sku.into_owned())
            .collect())
    }

    /// Checks the key and that every warehouse in `needed` exists.
    async fn check(&self, meter: &Meter, needed: &[String]) -> Result<String, ConnectorError> {
        let body = self
            .send(
                meter,
                Method::GET,
                "/warehouses",
                json(&serde_json::json!({})),
            )
            .await?;
        let warehouses: Vec<Warehouse> = parse(
            &body,
            "GET /warehouses: expected an array of Warehouse objects",
        )?;
        let ids: HashSet<&str> = warehouses.iter().map(|w| w.warehouse_id.as_str()).collect();
        if let Some(missing) = needed.iter().find(|w| !ids.contains(w.as_str())) {
            return Err(ConnectorError::NotFound(format!(
                "warehouse {missing:?} does not exist in this Hako account"
            )));
        }
        Ok(format!("{} warehouses", warehouses.len()))
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs of strings and integers cannot fail.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

// ---- source ----

/// Parses a `GET /inventory` answer into one record per SKU: the sum over the wanted
/// warehouses (`None`: all). Negative quantities count as 0; a (SKU, warehouse) pair listed
/// twice counts once, at its smaller quantity (never oversell); both with a WARN.
pub fn parse_stock(
    body: &[u8],
    warehouses: Option<&[String]>,
    label: &str,
) -> Result<Stock, ConnectorError> {
    let objects: Vec<Inventory> = parse(
        body,
        "GET /inventory: expected an array of Inventory objects",
    )?;
    let mut pairs: HashMap<(&str, &str), i64> = HashMap::with_capacity(objects.len());
    for object in &objects {
        if warehouses.is_some_and(|w| !w.iter().any(|wanted| *wanted == object.warehouse_id)) {
            continue;
        }
        let quantity = non_negative(label, &object.sku, object.quantity.0);
        match pairs.entry((&object.sku, &object.warehouse_id)) {
            Entry::Vacant(slot) => {
                slot.insert(quantity);
            }
            Entry::Occupied(mut slot) => {
                let kept = (*slot.get()).min(quantity);
                tracing::warn!(source = label, sku = %slot.key().0, warehouse = %slot.key().1, kept, "the same SKU and warehouse appear twice; the smaller quantity counts");
                slot.insert(kept);
            }
        }
    }
    let mut per_sku: HashMap<&str, i64> = HashMap::with_capacity(pairs.len());
    for ((sku, _), quantity) in pairs {
        let sum = per_sku.entry(sku).or_default();
        *sum = sum.saturating_add(quantity);
    }
    let mut stock = Stock::with_capacity(per_sku.len(), per_sku.keys().map(|k| k.len()).sum());
    for (sku, quantity) in per_sku {
        stock.push(sku, quantity);
    }
    Ok(stock)
}

/// Hako as a source: `GET /inventory`, summed per SKU over the configured warehouses.
pub struct HakoSource {
    account: HakoAccount,
    warehouses: Option<Vec<String>>,
}

impl HakoSource {
    /// A source reading `warehouses` (`None`: all of them).
    pub fn new(
        endpoint: Endpoint,
        api_key: SecretString,
        warehouses: Option<Vec<String>>,
    ) -> HakoSource {
        HakoSource {
            account: HakoAccount { endpoint, api_key },
            warehouses,
        }
    }

    /// Reads every Inventory object of the account and keeps the configured warehouses'.
    pub async fn fetch(&self, meter: &Meter) -> Result<Stock, ConnectorError> {
        // One request for the whole account; filtering here keeps it at one request however
        // many warehouses are configured.
        let query = json(&InventoryQuery { warehouse_id: None });
        let started = std::time::Instant::now();
        let body = self
            .account
            .send(meter, Method::GET, "/inventory", query)
            .await?;
        let answered = started.elapsed();
        let stock = parse_stock(
            &body,
            self.warehouses.as_deref(),
            &self.account.endpoint.label,
        )?;
        tracing::debug!(
            source = %self.account.endpoint.label, bytes = body.len(), answer_ms = answered.as_millis() as u64,
            parse_ms = (started.elapsed() - answered).as_millis() as u64, "inventory read"
        );
        Ok(stock)
    }

    /// Checks the key and the configured warehouses.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        self.account
            .check(meter, self.warehouses.as_deref().unwrap_or_default())
            .await
    }
}

// ---- target ----

/// Hako as a target: the quantities of one warehouse.
pub struct HakoTarget {
    account: HakoAccount,
    warehouse: String,
    /// SKUs known to have a pair in the warehouse beyond those acknowledged, learnt by looking
    /// after Hako refused a write.
    existing: tokio::sync::Mutex<HashSet<String>>,
}

impl HakoTarget {
    /// A target writing to `warehouse`.
    pub fn new(endpoint: Endpoint, api_key: SecretString, warehouse: String) -> HakoTarget {
        HakoTarget {
            account: HakoAccount { endpoint, api_key },
            warehouse,
            existing: Default::default(),
        }
    }

    /// Writes one batch: updates for pairs that exist, creates for the rest.
    pub async fn push(&self, meter: &Meter, batch: &[PushItem<'_>]) -> Result<(), ConnectorError> {
        let first = {
            let existing = self.existing.lock().await;
            self.write(meter, batch, |item| {
                item.known || existing.contains(item.sku)
            })
            .await
        };
        match first {
            Err(e) if is_refusal(&e) => {
                let existing = self.look_up_pairs(meter).await?;
                let result = self
                    .write(meter, batch, |item| existing.contains(item.sku))
                    .await;
                *self.existing.lock().await = existing;
                result
            }
            other => other,
        }
    }

    /// What pairs the warehouse has now.
    async fn look_up_pairs(&self, meter: &Meter) -> Result<HashSet<String>, ConnectorError> {
        self.account.skus_in(meter, &self.warehouse).await
    }

    async fn write(
        &self,
        meter: &Meter,
        batch: &[PushItem<'_>],
        exists: impl Fn(&PushItem) -> bool,
    ) -> Result<(), ConnectorError> {
        let warehouse_id = self.warehouse.as_str();
        let (updates, creates): (Vec<&PushItem>, Vec<&PushItem>) =
            batch.iter().partition(|i| exists(i));
        if !updates.is_empty() {
            let body: Vec<UpdateInventory> = updates
                .iter()
                .map(|i| UpdateInventory {
                    sku: i.sku,
                    warehouse_id,
                    updates: QuantityUpdate {
                        quantity: i.quantity,
                    },
                })
                .collect();
            self.account
                .send(meter, Method::PUT, "/inventory", json(&body))
                .await?;
        }
        if !creates.is_empty() {
            let body: Vec<CreateInventory> = creates
                .iter()
                .map(|i| CreateInventory {
                    sku: i.sku,
                    warehouse_id,
                    quantity: i.quantity,
                })
                .collect();
            self.account
                .send(meter, Method::POST, "/inventory", json(&body))
                .await?;
        }
        Ok(())
    }

    /// Checks the key and that the warehouse exists.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        self.account
            .check(meter, std::slice::from_ref(&self.warehouse))
            .await
    }
}

/// A 4xx that is about the request itself, not auth or rate: Hako's answer to a create of a
/// pair that exists or an update of one that does not.
fn is_refusal(error: &ConnectorError) -> bool {
    matches!(error.status(), Some(s) if (400..500).contains(&s) && ![401, 403, 429].contains(&s))
}
