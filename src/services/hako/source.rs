//! Hako as a source: every Inventory object of the account in one `GET /inventory`, summed per
//! SKU over the configured warehouses.

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;
use reqwest::Method;
use secrecy::SecretString;

use super::wire::{Inventory, InventoryQuery};
use super::{HakoAccount, json};
use crate::http::{Answer, Endpoint, Meter};
use crate::services::{ConnectorError, Stock, non_negative, parse};

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
            .send(meter, Method::GET, "/inventory", query, Answer::Any)
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
