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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Fault;
    use crate::services::hardtofind::sim::HardtofindSim;

    #[tokio::test]
    async fn an_html_page_answering_a_batch_is_retried_like_a_5xx() {
        let sim = HardtofindSim::start(Default::default())
            .await
            .expect("a simulator");
        sim.add_variant("SKU-1");
        let (target, meter) = (HardtofindTarget::new(sim.session()), Meter::default());
        let item = PushItem {
            sku: "SKU-1",
            quantity: 4,
            known: true,
        };
        let page = "<html><body>502 Bad Gateway</body></html>".to_owned();
        let proxy = Fault::Status {
            status: 200,
            body: page,
            retry_after: None,
        };
        sim.faults().push_for("POST", "/batch", proxy);

        let through_proxy = target.push(&meter, &[item]).await;
        let direct = target.push(&meter, &[item]).await;

        // Not the service's word: retried like a 5xx, and the retry lands.
        assert!(through_proxy.is_ok(), "{through_proxy:?}");
        assert_eq!(meter.retries(), 1);
        assert!(direct.is_ok(), "{direct:?}");
        assert_eq!(sim.inventory("SKU-1"), Some(4));
    }
}
