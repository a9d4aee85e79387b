//! The simulator's `process` and `ship` transitions (seed `001`) and its shipping providers:
//! `ship` is accepted only with a provider name `GET /shipping-providers` lists, as the service
//! requires, so a client that guesses a name fails here as it would there.

use serde_json::Value;

use super::orders::{OrderBook, Refusal, Shipment, SimTransition};
use crate::services::hardtofind::wire::{OrderStatus, parse_date};

impl OrderBook {
    /// `POST /order/{id}/transition`: `process` from `READY`; `ship` from `READY` or
    /// `PROCESSED`, with a tracking number, a date and a provider name this store lists.
    pub(super) fn transition(&mut self, id: &str, body: &Value) -> Result<(), Refusal> {
        let status = self.status(id).ok_or((404, "Order not found".to_owned()))?;
        let recorded = match body["action"].as_str() {
            Some("process") => self.process(id, status)?,
            Some("ship") => self.ship(id, status, &body["data"])?,
            _ => return refuse("action must be \"process\" or \"ship\""),
        };
        self.transitions.push(recorded);
        Ok(())
    }

    fn process(&mut self, id: &str, status: OrderStatus) -> Result<SimTransition, Refusal> {
        match status {
            OrderStatus::Ready => {}
            OrderStatus::Processed => return refuse("Order has already been processed"),
            other => return refuse(format!("An order in state {other} cannot be processed")),
        }
        self.change_state(id, |o| o.status = OrderStatus::Processed);
        Ok(SimTransition {
            order_id: id.to_owned(),
            action: "process".into(),
            tracking_number: None,
            shipping_provider_name: None,
        })
    }

    fn ship(
        &mut self,
        id: &str,
        status: OrderStatus,
        data: &Value,
    ) -> Result<SimTransition, Refusal> {
        let text = |field: &str| {
            data[field]
                .as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let Some(tracking) = text("tracking_number") else {
            return refuse("data.tracking_number is required");
        };
        let Some(provider) = text("shipping_provider_name") else {
            return refuse("data.shipping_provider_name is required");
        };
        if !self.providers.iter().any(|p| p.provider_name == provider) {
            return refuse(format!("Unknown shipping provider {provider:?}"));
        }
        let Some(date) = text("shipment_date").and_then(parse_date) else {
            return refuse("data.shipment_date must be a date like 2016-09-15T14:41:25+1000");
        };
        match status {
            OrderStatus::Ready | OrderStatus::Processed => {}
            OrderStatus::Shipped => return refuse("Order has already been shipped"),
            other => return refuse(format!("An order in state {other} cannot be shipped")),
        }
        let (tracking, provider) = (tracking.to_owned(), provider.to_owned());
        let shipment = Shipment {
            date,
            tracking_number: tracking.clone(),
            provider: provider.clone(),
        };
        self.change_state(id, |o| {
            o.shipments.push(shipment);
            o.status = OrderStatus::Shipped;
        });
        Ok(SimTransition {
            order_id: id.to_owned(),
            action: "ship".into(),
            tracking_number: Some(tracking),
            shipping_provider_name: Some(provider),
        })
    }
}

/// A 400 with `message`, as the service refuses a transition it cannot make.
fn refuse<T>(message: impl Into<String>) -> Result<T, Refusal> {
    Err((400, message.into()))
}
