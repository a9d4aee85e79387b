//! Hako as a source: every Inventory object of the account in one `GET /inventory`, summed per
//! SKU over the configured warehouses.

use hashbrown::hash_map::Entry;
use hashbrown::{HashMap, HashSet};
use secrecy::SecretString;

use super::wire::{Inventory, InventoryQuery};
use super::{HakoAccount, json};
use crate::http::{Endpoint, Meter};
use crate::services::answer::{Fetched, Known, Next, Pages};
use crate::services::{
    ConnectorError, RecordQuantity, Stock, non_negative, parse, usable_sku, warn_held,
    warn_unusable,
};

/// Parses a `GET /inventory` answer into one record per SKU: the sum over the wanted
/// warehouses (`None`: all). Negative quantities count as 0; a (SKU, warehouse) pair listed
/// twice counts once, at its smaller quantity (never oversell); both with a WARN. A SKU with a
/// quantity that is not a whole number in any wanted warehouse is held, not summed (its sum is
/// unknown), with a WARN naming it; a record with an unusable SKU is dropped and counted.
pub fn parse_stock(
    body: &[u8],
    warehouses: Option<&[String]>,
    label: &str,
) -> Result<Stock, ConnectorError> {
    parse_stock_seen(body, warehouses, label).map(|(stock, _)| stock)
}

/// [`parse_stock`], and the wanted warehouses that no record of the answer names.
fn parse_stock_seen(
    body: &[u8],
    warehouses: Option<&[String]>,
    label: &str,
) -> Result<(Stock, Vec<String>), ConnectorError> {
    let objects: Vec<Inventory> = parse(
        body,
        "GET /inventory: expected an array of Inventory objects",
    )?;
    let mut pairs: HashMap<(&str, &str), i64> = HashMap::with_capacity(objects.len());
    let mut held: Vec<&str> = Vec::new();
    let mut held_set: HashSet<&str> = HashSet::new();
    let mut dropped = 0;
    let mut unseen: Vec<&String> = warehouses.unwrap_or_default().iter().collect();
    for object in &objects {
        if warehouses.is_some_and(|w| !w.iter().any(|wanted| *wanted == object.warehouse_id)) {
            continue;
        }
        if !unseen.is_empty() {
            unseen.retain(|w| **w != object.warehouse_id);
        }
        if !usable_sku(&object.sku) {
            dropped += 1;
            continue;
        }
        let quantity = match &object.quantity {
            RecordQuantity::Whole(q) => non_negative(label, &object.sku, *q),
            RecordQuantity::Unusable(written) => {
                if held_set.insert(&object.sku) {
                    held.push(&object.sku);
                    warn_held(label, &object.sku, written, held.len());
                }
                continue;
            }
        };
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
        if held_set.contains(sku) {
            continue;
        }
        let sum = per_sku.entry(sku).or_default();
        *sum = sum.saturating_add(quantity);
    }
    let mut stock = Stock::with_capacity(per_sku.len(), per_sku.keys().map(|k| k.len()).sum());
    for (sku, quantity) in per_sku {
        stock.push(sku, quantity);
    }
    for sku in held {
        stock.hold(sku);
    }
    for _ in 0..dropped {
        stock.count_dropped();
    }
    Ok((stock, unseen.into_iter().cloned().collect()))
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
    pub async fn fetch(
        &self,
        meter: &Meter,
        context: &[u8],
        known: Known<'_>,
    ) -> Result<Fetched, ConnectorError> {
        let query = json(&InventoryQuery { warehouse_id: None });
        let started = std::time::Instant::now();
        let mut pages = Pages::new(context, known);
        let (body, digest) = self
            .account
            .send_digested(meter, "/inventory", query, &pages.salt())
            .await?;
        let answered = started.elapsed();
        let body = match pages.arrived_digested(body, digest).await {
            Next::Same => return Ok(Fetched::Same),
            // One page: it is never asked to go on.
            Next::Ask => return Ok(Fetched::Same),
            Next::Parse(mut bodies) => bodies.pop().unwrap_or_default(),
        };
        let label = &self.account.endpoint.label;
        let (stock, unseen) = parse_stock_seen(&body, self.warehouses.as_deref(), label)?;
        if !unseen.is_empty() {
            // A configured warehouse that no record names may be empty, or misspelt: a misspelt
            // one would read as no stock at all, cycle after cycle. One look at the warehouses
            // tells (only when one is silent).
            self.account.check(meter, &unseen).await?;
        }
        warn_unusable(label, &stock);
        tracing::debug!(
            source = %self.account.endpoint.label, bytes = body.len(), answer_ms = answered.as_millis() as u64,
            parse_ms = (started.elapsed() - answered).as_millis() as u64, "inventory read"
        );
        Ok(Fetched::New(stock, pages.digest()))
    }

    /// The warehouses it sums (`None`: every one).
    pub fn warehouses(&self) -> Option<&[String]> {
        self.warehouses.as_deref()
    }

    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        self.account
            .check(meter, self.warehouses.as_deref().unwrap_or_default())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_answer(body: &str) -> Stock {
        parse_stock(body.as_bytes(), None, "source test").expect("the answer is used")
    }

    fn sorted(stock: &Stock) -> Vec<(String, i64)> {
        let mut records: Vec<(String, i64)> =
            stock.iter().map(|(s, q)| (s.to_owned(), q)).collect();
        records.sort();
        records
    }

    #[test]
    fn a_hako_quantity_that_is_not_a_whole_number_holds_that_sku_and_the_rest_is_used() {
        let stock = parse_answer(
            r#"[{"sku": "A", "warehouseID": "w1", "quantity": 5},
                {"sku": "B", "warehouseID": "w1", "quantity": 1.5},
                {"sku": "B", "warehouseID": "w2", "quantity": 4},
                {"sku": "C", "warehouseID": "w1", "quantity": "7"},
                {"sku": "D", "warehouseID": "w1", "quantity": null},
                {"sku": "E", "warehouseID": "w1"},
                {"sku": "F", "warehouseID": "w1", "quantity": 2.0}]"#,
        );
        assert_eq!(sorted(&stock), vec![("A".into(), 5), ("F".into(), 2)]);
        assert_eq!(
            stock.held(),
            ["B", "C", "D", "E"],
            "B's sum over warehouses is unknown"
        );
        assert_eq!(stock.dropped(), 0);
    }

    #[test]
    fn a_hako_record_with_an_empty_sku_or_control_characters_is_dropped_and_counted() {
        let stock = parse_answer(
            r#"[{"sku": "", "warehouseID": "w1", "quantity": 5},
                {"sku": "A\tB", "warehouseID": "w1", "quantity": 1},
                {"sku": "A\nB", "warehouseID": "w1", "quantity": 1.5},
                {"sku": "OK", "warehouseID": "w1", "quantity": 3}]"#,
        );
        assert_eq!(sorted(&stock), vec![("OK".into(), 3)]);
        assert_eq!(stock.dropped(), 3);
        assert!(
            stock.held().is_empty(),
            "a dropped record is never held either"
        );
    }
}
