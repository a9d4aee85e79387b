//! After placing: Hardtofind is told (`process`); once every line has shipped at Endless
//! Aisles the tracking goes back (`ship`) with a provider Hardtofind lists, never a guessed one;
//! an order Hardtofind closes meanwhile is cancelled at Endless Aisles, or is MANUAL.

use chrono::{NaiveDate, TimeZone, Utc};
use tracing::warn;

use super::decide;
use super::step::{Moved, Run};
use super::{Record, State};
use crate::services::ConnectorError;
use crate::services::endless_aisles::CancelOutcome;
use crate::services::hardtofind::wire::{Date, Order, OrderStatus, ShippingProvider};
use crate::services::hardtofind::{Transition, Transitioned};
use crate::store::StoreError;

impl Run<'_> {
    /// Placed at Endless Aisles: Hardtofind is told (`process`).
    pub(super) async fn placed(
        &mut self,
        record: &mut Record,
        order: &Order,
    ) -> Result<Moved, StoreError> {
        if order.status != OrderStatus::Ready {
            // Processed (by an earlier answer that was lost, or by hand) or further.
            self.set(record, State::Processing, None).await?;
            return Ok(Moved::On);
        }
        let feed = self.clients.feed;
        let sent = (feed.transition(&self.meter, &record.order_id, &Transition::Process)).await;
        let next = (State::Processing, None);
        self.transitioned(record, sent, "process", next).await
    }

    /// Processing: once every line has shipped, the tracking goes back with a provider
    /// Hardtofind lists.
    pub(super) async fn processing(
        &mut self,
        record: &mut Record,
        order: &Order,
    ) -> Result<Moved, StoreError> {
        let Some(id) = record.supplier_order_id else {
            let why = "processing without an Endless Aisles order id";
            self.set(record, State::Manual, Some(why.into())).await?;
            return Ok(Moved::Stop);
        };
        let supplier = match self.clients.orders.get(&self.meter, id).await {
            Ok(Some(supplier)) => supplier,
            Ok(None) => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, supplier_order = id, "relay: Endless Aisles has no such order now; looked at again next cycle");
                return Ok(Moved::Stop);
            }
            Err(e) => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, error = %e, "relay: the Endless Aisles order could not be read; tried again next cycle");
                return Ok(Moved::Stop);
            }
        };
        if supplier.status.as_deref().is_some_and(|s| {
            s.eq_ignore_ascii_case("canceled") || s.eq_ignore_ascii_case("cancelled")
        }) {
            let why =
                format!("order {id} was cancelled at Endless Aisles while Hardtofind's is open");
            self.set(record, State::Manual, Some(why)).await?;
            return Ok(Moved::Stop);
        }
        if !supplier.is_fully_shipped() {
            return Ok(Moved::Stop);
        }
        if order.status == OrderStatus::Shipped {
            self.set(
                record,
                State::Done,
                Some("shipped at Hardtofind by hand".into()),
            )
            .await?;
            return Ok(Moved::Stop);
        }
        let shipment = supplier
            .shipments
            .iter()
            .find(|s| s.number.as_deref().is_some_and(|n| !n.trim().is_empty()));
        let Some(shipment) = shipment else {
            let why = format!("order {id} shipped without a tracking number");
            self.set(record, State::Manual, Some(why)).await?;
            return Ok(Moved::Stop);
        };
        let providers = match self.providers().await {
            Ok(providers) => providers,
            Err(e) => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, error = %e, "relay: Hardtofind's shipping providers could not be read; tried again next cycle");
                return Ok(Moved::Stop);
            }
        };
        let provider =
            match decide::provider_for(shipment.url.as_deref(), &providers, &self.spec.carriers) {
                Ok(provider) => provider,
                Err(why) => {
                    self.set(record, State::Manual, Some(why)).await?;
                    return Ok(Moved::Stop);
                }
            };
        let ship = Transition::Ship {
            tracking_number: shipment.number.clone().unwrap_or_default(),
            shipping_provider_name: provider.clone(),
            shipment_date: shipment_date(supplier.ship_date.as_deref()),
        };
        let sent = (self.clients.feed)
            .transition(&self.meter, &record.order_id, &ship)
            .await;
        let why = format!(
            "{provider} {}",
            shipment.number.as_deref().unwrap_or_default()
        );
        self.transitioned(record, sent, "ship", (State::Shipped, Some(why)))
            .await
            .map(|_| Moved::Stop)
    }

    /// Hardtofind's shipping providers, read once per cycle.
    async fn providers(&mut self) -> Result<Vec<ShippingProvider>, String> {
        if self.providers.is_none() {
            let read = self.clients.feed.shipping_providers(&self.meter).await;
            self.providers = Some(read.map_err(|e| e.to_string()));
        }
        self.providers
            .clone()
            .unwrap_or_else(|| Err("not read".into()))
    }

    /// Cancels the Endless Aisles order of an order Hardtofind closed, by the configured forms
    /// in order; any failure is MANUAL.
    pub(super) async fn cancel(
        &mut self,
        record: &mut Record,
        order: &Order,
    ) -> Result<Moved, StoreError> {
        let Some(id) = record.supplier_order_id else {
            let why = "closed at Hardtofind, but the Endless Aisles order id is unknown";
            self.set(record, State::Manual, Some(why.into())).await?;
            return Ok(Moved::Stop);
        };
        let cancelled = self
            .clients
            .orders
            .cancel(&self.meter, id, &self.spec.cancel)
            .await;
        let (state, why) = match cancelled {
            Ok(CancelOutcome::Cancelled { method }) => (
                State::Cancelled,
                format!(
                    "{} at Hardtofind; order {id} cancelled at Endless Aisles ({method:?})",
                    order.status
                ),
            ),
            Ok(CancelOutcome::Refused {
                method,
                status,
                message,
            }) => (
                State::Manual,
                format!(
                    "{} at Hardtofind, but Endless Aisles refused to cancel order {id} ({method:?}, HTTP {status}: {message})",
                    order.status
                ),
            ),
            Ok(CancelOutcome::NotFound) => (
                State::Manual,
                format!(
                    "{} at Hardtofind, but no cancel form found order {id} at Endless Aisles",
                    order.status
                ),
            ),
            Err(e) => (
                State::Manual,
                format!(
                    "{} at Hardtofind, but cancelling order {id} at Endless Aisles failed: {e}",
                    order.status
                ),
            ),
        };
        self.set(record, state, Some(why)).await?;
        Ok(Moved::Stop)
    }

    /// What a transition's answer means: `next` when Hardtofind took it (or shows it made),
    /// MANUAL when it refused it, the same state (WARN) when it could not be asked.
    async fn transitioned(
        &self,
        record: &mut Record,
        sent: Result<Transitioned, ConnectorError>,
        action: &str,
        next: (State, Option<String>),
    ) -> Result<Moved, StoreError> {
        match sent {
            Ok(_) => {
                self.set(record, next.0, next.1).await?;
                Ok(Moved::On)
            }
            Err(e) if e.is_refusal() => {
                let why = format!("Hardtofind refused {action}: {e}");
                self.set(record, State::Manual, Some(why)).await?;
                Ok(Moved::Stop)
            }
            Err(e) => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, action, error = %e, "relay: the transition could not be sent; tried again next cycle");
                Ok(Moved::Stop)
            }
        }
    }
}

/// The shipment date to send: the supplier's `ship_date` (`Y-m-d`) at noon UTC, else now.
fn shipment_date(ship_date: Option<&str>) -> Date {
    let day = ship_date.and_then(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok());
    let at = day
        .and_then(|d| d.and_hms_opt(12, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
        .unwrap_or_else(Utc::now);
    Date(at.fixed_offset())
}
