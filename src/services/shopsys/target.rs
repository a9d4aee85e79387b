//! The catalogue as a target: reads the product list (every page, by the `Link` header) into a
//! [`Catalogue`], and sets or clears one product's flag with `PATCH /api/v1/products/{uuid}`.
//! Every request carries the bearer token of its [`Session`]; a 401 renews it once.
//!
//! What a failure means to the caller, by [`ConnectorError`]:
//! - `Auth`: the shop refused the credentials (or a fresh token): back off, do not retry now.
//! - `Http` with a 4xx other than 401/403/408/429 while reading the list: the list cannot be
//!   read. A `PATCH` refused for its product is no error but a [`Patched::Refused`], of one of
//!   three kinds ([`Refusal`]): no such product (404 on Shopsys 8.x, 410 on 9: deleted since
//!   the list was read), a product the API cannot change (a variant or main variant: a 400
//!   without `errors`, anonymous on a production install), or any other refusal (a validation
//!   error, which keeps its text on every install).
//! - anything else (connection, 5xx after retries, a 2xx body that is not the document's): try
//!   again next cycle.

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use super::auth::ClientCredentials;
use super::catalogue::{Catalogue, CatalogueBuilder, next_page};
use super::config::{DEFAULT_CATALOGUE_REFRESH, Flag, MatchField, ShopsysRules};
use super::flag::Thresholds;
use super::wire::{self, Product};
use crate::http::{Answer, Endpoint, Expect, HttpError, Meter, remote_message};
use crate::services::session::Session;
use crate::services::{ConnectorError, parse};

/// The products path, below `base_url`.
const PRODUCTS: &str = "/api/v1/products";

/// What the shop made of a `PATCH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patched {
    /// Written (204).
    Done,
    /// Refused for this product.
    Refused(Refusal),
}

/// Why the shop refused to change one product; each kind carries a sentence for `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 404 (Shopsys 8.x) or 410 (Shopsys 9): no such product; it was deleted since the list was
    /// read.
    Gone(String),
    /// A 400 without `errors`: the API cannot change this product (a variant or main variant;
    /// the product list has no variant marker, so only this refusal tells).
    Unchangeable(String),
    /// Anything else: a validation error (its text kept), or a 4xx no document explains.
    Other(String),
}

impl Refusal {
    /// What the shop said, in one line.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Gone(m) | Refusal::Unchangeable(m) | Refusal::Other(m) => m,
        }
    }
}

/// What a refusal of a `PATCH` means, from its status and body. Only the shape decides, never
/// the text: a production install answers every error but validation's with the status's
/// reason alone (`{"code":400,"message":"Bad Request"}`).
pub fn refusal_of(status: StatusCode, body: &[u8]) -> Refusal {
    let words = format!("HTTP {}: {}", status.as_u16(), remote_message(body));
    let json = serde_json::from_slice::<serde_json::Value>(body).ok();
    match status {
        StatusCode::NOT_FOUND | StatusCode::GONE => Refusal::Gone(words),
        // A body that is not JSON is not the shop's (a proxy's page): nothing to read in it.
        StatusCode::BAD_REQUEST
            if json
                .as_ref()
                .is_some_and(|v| v.is_object() && v.get("errors").is_none()) =>
        {
            Refusal::Unchangeable(words)
        }
        _ => Refusal::Other(words),
    }
}

/// One shop's catalogue as a flag target.
#[derive(Debug)]
pub struct ShopsysTarget {
    endpoint: Endpoint,
    auth: Session<ClientCredentials>,
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
            auth: Session::new(
                endpoint.clone(),
                ClientCredentials::new(client_id, client_secret),
            ),
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
            let answer = match self
                .authorized(meter, Method::GET, &path, None, Expect::Any)
                .await
            {
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

    /// Writes the flag of product `uuid`: set (`true`) or cleared. `Done` only for the
    /// document's answer, 204 (a 2xx with a JSON or empty body is taken too; an HTML page is
    /// not); a refusal of this product is [`Patched::Refused`].
    pub async fn set_flag(
        &self,
        meter: &Meter,
        uuid: &str,
        value: bool,
    ) -> Result<Patched, ConnectorError> {
        if !wire::is_uuid(uuid) {
            return Err(ConnectorError::Malformed(format!(
                "{uuid:?} is not a product uuid"
            )));
        }
        let body = serde_json::to_vec(&self.rules.flag.patch(value))
            .map_err(|e| ConnectorError::Malformed(e.to_string()))?;
        let path = format!("{PRODUCTS}/{uuid}");
        let json = Some(Bytes::from(body));
        let answer = self
            .authorized(meter, Method::PATCH, &path, json, Expect::JsonOrRefusal)
            .await?;
        if answer.status.is_success() {
            return Ok(Patched::Done);
        }
        Ok(Patched::Refused(refusal_of(answer.status, &answer.body)))
    }

    /// Proves the credentials work without changing anything: a token, then page 1 of the list.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        let path = format!("{PRODUCTS}?page=1");
        match self
            .authorized(meter, Method::GET, &path, None, Expect::Any)
            .await
        {
            Ok(answer) => {
                let products: Vec<Product> =
                    parse(&answer.body, "GET /api/v1/products: expected an array")?;
                // An empty catalogue answers `200 []` (Shopsys 9) or 422 (as a page past the end).
                if products.is_empty() {
                    return Ok("authenticated; the catalogue has no products".to_owned());
                }
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
        expect: Expect,
    ) -> Result<Answer, ConnectorError> {
        let json = json.as_ref();
        let method = &method;
        self.auth
            .authorized(meter, |token| async move {
                self.send(meter, (method, path, expect), json, &token).await
            })
            .await
    }

    /// One request with `token`, retried and rate-limited by the endpoint.
    async fn send(
        &self,
        meter: &Meter,
        (method, path, expect): (&Method, &str, Expect),
        json: Option<&Bytes>,
        token: &SecretString,
    ) -> Result<Answer, HttpError> {
        self.endpoint
            .send_as(
                meter,
                || {
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
                },
                expect,
            )
            .await
    }
}
