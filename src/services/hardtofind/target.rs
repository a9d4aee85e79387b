//! Hardtofind as a target: `POST /batch` (`action: update`, `entity_type: variant`) sets the
//! inventory of variants; unknown and duplicate SKUs are silently ignored by the service, which
//! is why a daily full sync repairs drift. Its answer is undocumented, but it is JSON: a 2xx
//! whose body is not (a proxy's maintenance page) applied nothing and is retried like a 5xx.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::Method;

use super::auth::{Session, json_body};
use super::wire::{BatchRequest, Entity};
use crate::http::Meter;
use crate::services::{Confirmed, ConnectorError, PushItem};

/// Hardtofind variants.
pub struct HardtofindTarget {
    session: Arc<Session>,
}

impl HardtofindTarget {
    /// A target writing through `session`.
    pub fn new(session: Arc<Session>) -> HardtofindTarget {
        HardtofindTarget { session }
    }

    /// Sets the inventory of one batch of variants. The answer names no SKU, so a JSON 2xx
    /// confirms the whole batch.
    pub async fn push(
        &self,
        meter: &Meter,
        batch: &[PushItem<'_>],
    ) -> Result<Confirmed, ConnectorError> {
        let request = BatchRequest {
            action: "update",
            entity_type: "variant",
            entities: batch
                .iter()
                .map(|i| Entity {
                    sku: i.sku,
                    inventory: i.quantity,
                })
                .collect(),
        };
        let body = Bytes::from(
            serde_json::to_vec(&request).map_err(|e| ConnectorError::Malformed(e.to_string()))?,
        );
        self.session
            .send(
                meter,
                |r| json_body(r, body.clone()),
                Method::POST,
                "/batch",
            )
            .await?;
        Ok(Confirmed::All)
    }

    /// Logs in and reads `/info`.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        self.session.check(meter).await
    }
}
