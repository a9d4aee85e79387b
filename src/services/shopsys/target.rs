//! The catalogue as a target: reads the product list (every page, by the `Link` header) into a
//! [`Catalogue`], and sets or clears one product's flag with `PATCH /api/v1/products/{uuid}`.
//! Every request carries the bearer token of [`TokenSource`]; a 401 renews it once.
//!
//! What a failure means to the caller, by [`ConnectorError`]:
//! - `Auth`: the shop refused the credentials (or a fresh token): back off, do not retry now.
//! - `Http` with a 4xx other than 401/403/408/429: a **refusal** of this product (a variant
//!   answers 400 "not supported yet", a product deleted since the list was read 404): set apart
//!   on the refusal schedule, not retried every cycle.
//! - anything else (connection, 5xx after retries, a 2xx body that is not the document's): try
//!   again next cycle.

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use super::auth::TokenSource;
use super::catalogue::{Catalogue, CatalogueBuilder, next_page};
use super::config::{DEFAULT_CATALOGUE_REFRESH, Flag, MatchField, ShopsysRules};
use super::flag::Thresholds;
use super::wire::{self, Product};
use crate::http::{Answer, Endpoint, HttpError, Meter};
use crate::services::{ConnectorError, parse};

/// The products path, below `base_url`.
const PRODUCTS: &str = "/api/v1/products";

/// One shop's catalogue as a flag target.
#[derive(Debug)]
pub struct ShopsysTarget {
    endpoint: Endpoint,
    auth: TokenSource,
    rules: ShopsysRules,
}

impl ShopsysTarget {
    /// A target reached at `endpoint` as API client `client_id`, mapping SKUs by `match_field`
    /// and writing `flag`.
    pub fn new(
        endpoint: Endpoint,
        client_id: String,
        client_secret: SecretString,
        match_field: MatchField,
        flag: Flag,
    ) -> ShopsysTarget {
        ShopsysTarget {
            auth: TokenSource::new(endpoint.clone(), client_id, client_secret),
            endpoint,
            rules: ShopsysRules {
                match_field,
                flag,
                thresholds: Thresholds::default(),
                catalogue_refresh: DEFAULT_CATALOGUE_REFRESH,
            },
        }
    }

    /// The same target with every rule of its table: the thresholds and the refresh period
    /// travel with the client, so the flag owner needs nothing else from the configuration.
    #[must_use]
    pub fn with_rules(mut self, rules: ShopsysRules) -> ShopsysTarget {
        self.rules = rules;
        self
    }

    /// The rules of its table.
    pub fn rules(&self) -> ShopsysRules {
        self.rules
    }

    /// Reads every page of the product list and indexes it by SKU. A 422 (no products on the
    /// page asked for) ends the list: past the last page, or on page 1 of an empty catalogue,
    /// which comes back as an empty [`Catalogue`] for the caller's guard to judge.
    pub async fn read_catalogue(&self, meter: &Meter) -> Result<Catalogue, ConnectorError> {
        let mut builder = CatalogueBuilder::new(self.rules.match_field, self.rules.flag);
        let mut page: u64 = 1;
        loop {
            let path = format!("{PRODUCTS}?page={page}");
            let answer = match self.authorized(meter, Method::GET, &path, None).await {
                Err(ConnectorError::Http(e))
                    if e.status() == Some(StatusCode::UNPROCESSABLE_ENTITY) =>
                {
                    break;
                }
                other => other?,
            };
            let products: Vec<Product> = parse(
                &answer.body,
                "GET /api/v1/products: expected an array of products",
            )?;
            products.iter().for_each(|p| builder.add(p));
            let links = answer.headers.get_all(reqwest::header::LINK);
            let next = next_page(links.iter().filter_map(|v| v.to_str().ok()))
                .map_err(|e| ConnectorError::Malformed(format!("GET {path}: {e}")))?;
            match next {
                None => break,
                // A page with no products cannot have a next one; stop rather than walk on.
                Some(_) if products.is_empty() => break,
                Some(next) if next > page => page = next,
                Some(next) => {
                    return Err(ConnectorError::Malformed(format!(
                        "GET {path}: Link rel=\"next\" points back to page {next}"
                    )));
                }
            }
        }
        Ok(builder.finish())
    }

    /// Writes the flag of product `uuid`: set (`true`) or cleared. `Ok` only for the document's
    /// answer, 204 (a 2xx with a JSON or empty body is taken too; an HTML page is not).
    pub async fn set_flag(
        &self,
        meter: &Meter,
        uuid: &str,
        value: bool,
    ) -> Result<(), ConnectorError> {
        if !wire::is_uuid(uuid) {
            return Err(ConnectorError::Malformed(format!(
                "{uuid:?} is not a product uuid"
            )));
        }
        let body = serde_json::to_vec(&self.rules.flag.patch(value))
            .map_err(|e| ConnectorError::Malformed(e.to_string()))?;
        let path = format!("{PRODUCTS}/{uuid}");
        let answer = self
            .authorized(meter, Method::PATCH, &path, Some(Bytes::from(body)))
            .await?;
        let documented = answer.status == StatusCode::NO_CONTENT
            || answer.body.trim_ascii().is_empty()
            || serde_json::from_slice::<serde_json::Value>(&answer.body).is_ok();
        if !documented {
            return Err(ConnectorError::Malformed(format!(
                "PATCH {path}: {} with a body that is not JSON",
                answer.status
            )));
        }
        Ok(())
    }

    /// Proves the credentials work without changing anything: a token, then page 1 of the list.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        let path = format!("{PRODUCTS}?page=1");
        match self.authorized(meter, Method::GET, &path, None).await {
            Ok(answer) => {
                let products: Vec<Product> =
                    parse(&answer.body, "GET /api/v1/products: expected an array")?;
                Ok(format!(
                    "authenticated; {} products on page 1",
                    products.len()
                ))
            }
            Err(ConnectorError::Http(e))
                if e.status() == Some(StatusCode::UNPROCESSABLE_ENTITY) =>
            {
                Ok("authenticated; the catalogue has no products".to_owned())
            }
            Err(e) => Err(e),
        }
    }

    /// Sends one request with the bearer token, renewing the token once if the shop answers 401
    /// (it expired early, or was revoked); a 401 to a fresh token is an auth failure.
    async fn authorized(
        &self,
        meter: &Meter,
        method: Method,
        path: &str,
        json: Option<Bytes>,
    ) -> Result<Answer, ConnectorError> {
        let token = self.auth.token(meter, None).await?;
        match self.send(meter, &method, path, json.as_ref(), &token).await {
            Err(HttpError::Status {
                status: StatusCode::UNAUTHORIZED,
                ..
            }) => {
                tracing::info!(endpoint = %self.endpoint.label, "token refused; requesting a new one");
                let fresh = self.auth.token(meter, Some(&token)).await?;
                self.send(meter, &method, path, json.as_ref(), &fresh)
                    .await
                    .map_err(credentials_refused)
            }
            other => other.map_err(credentials_refused),
        }
    }

    /// One request with `token`, retried and rate-limited by the endpoint.
    async fn send(
        &self,
        meter: &Meter,
        method: &Method,
        path: &str,
        json: Option<&Bytes>,
        token: &SecretString,
    ) -> Result<Answer, HttpError> {
        self.endpoint
            .send_for_answer(meter, || {
                let request = self
                    .endpoint
                    .request(method.clone(), path)
                    .bearer_auth(token.expose_secret())
                    .header(reqwest::header::ACCEPT, "application/json");
                match json {
                    Some(body) => request
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.clone()),
                    None => request,
                }
            })
            .await
    }
}

/// A 401 to a fresh token, or a 403 (an API client without the right to this), is about the
/// credentials, not the product: an auth failure, never a refusal of one product.
fn credentials_refused(e: HttpError) -> ConnectorError {
    match e {
        HttpError::Status {
            status: StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN,
            message,
            ..
        } => ConnectorError::Auth(message),
        other => ConnectorError::Http(other),
    }
}
