//! Hako as a target: the quantities of one warehouse. Writing is `PUT /inventory`
//! (`updates.quantity`) for pairs that exist and `POST /inventory` for pairs that do not; Hako
//! refuses the wrong one, so a target that guessed wrong looks up which pairs exist and writes
//! each the right way.
//!
//! Both answer an array of the objects they affected. That array is the proof: a (SKU,
//! warehouse) pair missing from it is not confirmed, so it is not acknowledged and the next
//! cycle pushes it again.

use std::collections::HashSet;

use reqwest::Method;
use secrecy::SecretString;

use super::wire::{Affected, CreateInventory, QuantityUpdate, UpdateInventory};
use super::{HakoAccount, json};
use crate::http::{Endpoint, Expect, Meter};
use crate::services::{Confirmed, ConnectorError, PushItem, parse};

/// Hako as a target: the quantities of one warehouse.
pub struct HakoTarget {
    account: HakoAccount,
    warehouse: String,
    /// SKUs known to have a pair in the warehouse beyond those acknowledged, learnt by looking
    /// after Hako refused a write.
    existing: tokio::sync::Mutex<HashSet<String>>,
    /// When the pairs were last looked up: a refusal soon after is the SKU's own, not a wrong
    /// guess about which pairs exist, so the warehouse is not read again for every split of a
    /// batch around a refused SKU.
    looked_up_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long a look-up of the warehouse's pairs is trusted.
const PAIRS_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(60);

impl HakoTarget {
    /// A target writing to `warehouse`.
    pub fn new(endpoint: Endpoint, api_key: SecretString, warehouse: String) -> HakoTarget {
        HakoTarget {
            account: HakoAccount { endpoint, api_key },
            warehouse,
            existing: Default::default(),
            looked_up_at: Default::default(),
        }
    }

    /// Writes one batch: updates for pairs that exist, creates for the rest. Returns the SKUs
    /// Hako's answers list as affected in this warehouse.
    pub async fn push(
        &self,
        meter: &Meter,
        batch: &[PushItem<'_>],
    ) -> Result<Confirmed, ConnectorError> {
        let affected = self.write_batch(meter, batch).await?;
        let missing: Vec<&str> = batch
            .iter()
            .map(|i| i.sku)
            .filter(|sku| !affected.contains(*sku))
            .collect();
        if missing.is_empty() {
            return Ok(Confirmed::All);
        }
        let examples: Vec<&str> = missing.iter().take(5).copied().collect();
        tracing::warn!(
            target = %self.account.endpoint.label, warehouse = %self.warehouse,
            skus = missing.len(), examples = %examples.join(", "),
            "Hako's answer leaves out some SKUs of the batch; they are not acknowledged and are pushed again next cycle"
        );
        Ok(Confirmed::Only(affected))
    }

    /// Writes one batch the right way round, looking up which pairs exist if Hako refused the
    /// first guess; returns the SKUs the answers list.
    async fn write_batch(
        &self,
        meter: &Meter,
        batch: &[PushItem<'_>],
    ) -> Result<HashSet<String>, ConnectorError> {
        let first = {
            let existing = self.existing.lock().await;
            self.write(meter, batch, |item| {
                item.known || existing.contains(item.sku)
            })
            .await
        };
        match first {
            // Hako's answer to a create of a pair that exists, or an update of one that does not.
            Err(e) if e.is_refusal() => {
                let fresh = self
                    .looked_up_at
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_some_and(|at| at.elapsed() < PAIRS_FRESH_FOR);
                if fresh {
                    return Err(e);
                }
                let existing = self.look_up_pairs(meter).await?;
                *self.looked_up_at.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(std::time::Instant::now());
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
    ) -> Result<HashSet<String>, ConnectorError> {
        let warehouse_id = self.warehouse.as_str();
        let mut affected = HashSet::with_capacity(batch.len());
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
            let answer = self
                .account
                .send(meter, Method::PUT, "/inventory", json(&body), Expect::Json)
                .await?;
            self.read_affected(&answer, "PUT /inventory", &mut affected)?;
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
            let answer = self
                .account
                .send(meter, Method::POST, "/inventory", json(&body), Expect::Json)
                .await?;
            self.read_affected(&answer, "POST /inventory", &mut affected)?;
        }
        Ok(affected)
    }

    /// Adds the SKUs a write's answer lists in this warehouse to `affected`.
    fn read_affected(
        &self,
        answer: &[u8],
        request: &str,
        affected: &mut HashSet<String>,
    ) -> Result<(), ConnectorError> {
        let objects: Vec<Affected> = parse(
            answer,
            &format!("{request}: expected an array of the affected Inventory objects"),
        )?;
        affected.extend(
            objects
                .into_iter()
                .filter(|o| o.warehouse_id == self.warehouse)
                .map(|o| o.sku.into_owned()),
        );
        Ok(())
    }

    /// Checks the key and that the warehouse exists.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        self.account
            .check(meter, std::slice::from_ref(&self.warehouse))
            .await
    }
}
