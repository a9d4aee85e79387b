//! Hako as a target: the quantities of one warehouse. Writing is `PUT /inventory`
//! (`updates.quantity`) for pairs that exist and `POST /inventory` for pairs that do not; Hako
//! refuses the wrong one, so a target that guessed wrong looks up which pairs exist and writes
//! each the right way.

use std::collections::HashSet;

use reqwest::Method;
use secrecy::SecretString;

use super::wire::{CreateInventory, QuantityUpdate, UpdateInventory};
use super::{HakoAccount, json};
use crate::http::{Endpoint, Meter};
use crate::services::{ConnectorError, PushItem};

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
            // Hako's answer to a create of a pair that exists, or an update of one that does not.
            Err(e) if e.is_refusal() => {
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
