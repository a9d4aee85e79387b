//! Hako (seed `002`): warehouse inventory, read as a source and written as a target.
//!
//! Auth is HTTP basic with the API key as user and an empty password. Every request, GET
//! included, carries `Content-Type: application/json` and a JSON body, as the document demands.
//! Writing is `PUT /inventory` (`updates.quantity`) for pairs that exist and `POST /inventory`
//! for pairs that do not; Hako refuses the wrong one, so a target that guessed wrong looks up
//! which pairs exist and writes each the right way.
//!
//! - [`wire`]: the document's objects.
//! - [`source`]: `GET /inventory`, summed per SKU over the configured warehouses.
//! - [`target`]: one warehouse's quantities.
//! - [`sim`]: the simulator.
//! - `kind`: its roles in the list of kinds ([`crate::services::roles`]).

pub mod config;
mod kind;
pub mod sim;
pub mod source;
pub mod target;
pub mod wire;

pub use source::HakoSource;
pub use target::HakoTarget;

use std::collections::HashSet;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::http::{Endpoint, Expect, HttpError, Meter};
use crate::services::{ConnectorError, parse};
use wire::{Inventory, InventoryQuery, Warehouse};

/// One Hako account: where it is and its key.
pub(crate) struct HakoAccount {
    endpoint: Endpoint,
    api_key: SecretString,
}

impl HakoAccount {
    /// Sends one request with the key and the JSON body Hako demands on every request; a write's
    /// answer (the affected objects) must be JSON, `answer` says so.
    pub(crate) async fn send(
        &self,
        meter: &Meter,
        method: Method,
        path: &str,
        body: Vec<u8>,
        answer: Expect,
    ) -> Result<Bytes, HttpError> {
        let body = Bytes::from(body);
        let build = || {
            self.endpoint
                .request(method.clone(), path)
                .basic_auth(self.api_key.expose_secret(), Some(""))
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
        };
        Ok(self.endpoint.send_as(meter, build, answer).await?.body)
    }

    /// [`HakoAccount::send`] for a read, with the answer's digest (see
    /// [`crate::http::Endpoint::send_digested`]).
    pub(crate) async fn send_digested(
        &self,
        meter: &Meter,
        path: &str,
        body: Vec<u8>,
        salt: &[u8],
    ) -> Result<(Bytes, [u8; 32]), HttpError> {
        let body = Bytes::from(body);
        let build = || {
            self.endpoint
                .request(Method::GET, path)
                .basic_auth(self.api_key.expose_secret(), Some(""))
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
        };
        self.endpoint.send_digested(meter, build, salt).await
    }

    /// The SKUs that have a pair in `warehouse`.
    pub(crate) async fn skus_in(
        &self,
        meter: &Meter,
        warehouse: &str,
    ) -> Result<HashSet<String>, ConnectorError> {
        let query = json(&InventoryQuery {
            warehouse_id: Some(warehouse),
        });
        let body = self
            .send(meter, Method::GET, "/inventory", query, Expect::Any)
            .await?;
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
    pub(crate) async fn check(
        &self,
        meter: &Meter,
        needed: &[String],
    ) -> Result<String, ConnectorError> {
        let body = self
            .send(
                meter,
                Method::GET,
                "/warehouses",
                json(&serde_json::json!({})),
                Expect::Any,
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

pub(crate) fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs of strings and integers cannot fail.
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}
