//! One Endless Aisles account: the `X-EA-REQUEST-TOKEN` header on every request, reads with
//! retries, Laravel listings walked to their last page, and the one request never retried.

use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::wire::Page;
use crate::http::{Answer, Endpoint, HttpError, Meter};
use crate::services::ConnectorError;

/// No listing is this many pages long; a service that keeps saying "next" is broken.
pub const MAX_PAGES: u64 = 100_000;

/// Records per page asked of a listing: API_NOTES says thousands are accepted, and fewer pages
/// are fewer requests against the account's budget. The service may answer fewer.
pub const PER_PAGE: u32 = 1000;

/// An Endless Aisles account (cheap to clone: the endpoint shares its rate limit).
#[derive(Clone)]
pub struct Api {
    endpoint: Endpoint,
    token: SecretString,
}

impl Api {
    /// The account at `endpoint` with `token`.
    pub fn new(endpoint: Endpoint, token: SecretString) -> Api {
        Api { endpoint, token }
    }

    /// For log lines and errors: `source dropship`.
    pub fn label(&self) -> &str {
        &self.endpoint.label
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.endpoint
            .request(method, path)
            .header("X-EA-REQUEST-TOKEN", self.token.expose_secret())
    }

    /// A request whose repetition is harmless (a read, a cancel), retried as policy allows.
    pub async fn send(
        &self,
        meter: &Meter,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Bytes, HttpError> {
        self.endpoint
            .send(meter, || self.request(method.clone(), path).query(query))
            .await
    }

    /// `GET path` with the body's digest (see [`Endpoint::send_digested`]).
    pub async fn send_digested(
        &self,
        meter: &Meter,
        path: &str,
        query: &[(&str, String)],
        salt: &[u8],
    ) -> Result<(Bytes, [u8; 32]), HttpError> {
        self.endpoint
            .send_digested(meter, || self.request(Method::GET, path).query(query), salt)
            .await
    }

    /// `PUT path` with a JSON body, sent once and never retried (see
    /// [`Endpoint::send_once`]); every status comes back with its body.
    pub async fn put_once(
        &self,
        meter: &Meter,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<Answer, HttpError> {
        let request = self.request(Method::PUT, path).json(body);
        self.endpoint.send_once(meter, request).await
    }

    /// Every record of a Laravel listing at `path`: pages asked one by one with `PER_PAGE`,
    /// until the answer says it is the last. Records are keyed by `key` so that one that moves
    /// to a later page while we walk (listings are newest first) is not counted twice.
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        meter: &Meter,
        path: &str,
        query: &[(&str, String)],
        key: impl Fn(&T) -> u64,
    ) -> Result<Vec<T>, ConnectorError> {
        let mut records = BTreeMap::new();
        let mut page: u64 = 1;
        loop {
            let mut paged = query.to_vec();
            paged.push(("per_page", PER_PAGE.to_string()));
            paged.push(("page", page.to_string()));
            let body = self.send(meter, Method::GET, path, &paged).await?;
            let answer: Page<T> = serde_json::from_slice(&body)
                .map_err(|e| ConnectorError::Malformed(format!("GET {path} page {page}: {e}")))?;
            if answer.current_page.is_some_and(|current| current != page) {
                return Err(ConnectorError::Malformed(format!(
                    "GET {path}: asked for page {page}, got page {:?}",
                    answer.current_page
                )));
            }
            let more = answer.has_next();
            records.extend(answer.data.into_iter().map(|r| (key(&r), r)));
            if !more {
                return Ok(records.into_values().collect());
            }
            if page >= MAX_PAGES {
                return Err(ConnectorError::Malformed(format!(
                    "GET {path}: still more after {MAX_PAGES} pages"
                )));
            }
            page += 1;
        }
    }
}

/// An [`Api`] for a simulator on loopback, with quick retries, for the tests of this folder.
#[cfg(test)]
pub(super) fn test_api(sim: &super::sim::EndlessAislesSim) -> Api {
    use std::time::Duration;

    use crate::config::RetrySettings;
    use crate::http::{HttpClient, limits};

    let retry = RetrySettings {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(5),
    };
    let client = HttpClient::new(Duration::from_secs(5), 1 << 24).expect("an HTTP client");
    let endpoint = Endpoint::new(
        "source dropship".to_owned(),
        sim.base_url(),
        client,
        std::sync::Arc::new(limits::limiter(1_000_000)),
        retry,
        tokio_util::sync::CancellationToken::new(),
    );
    Api::new(endpoint, SecretString::from(sim.token().to_owned()))
}
