//! Hardtofind (seed `000`): variant inventory, written as a target.
//!
//! `POST /authenticate` trades username and password for a JWT, sent as `X-Auth-Token`. Tokens
//! live 15 minutes; invsync reads the token's `exp` (or asks `GET /info`) and renews it shortly
//! before it runs out, and once more if the service answers 401 anyway. Inventory is set with
//! `POST /batch` (`action: update`, `entity_type: variant`); unknown SKUs are silently ignored.

pub mod sim;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{ConnectorError, PushItem, parse};
use crate::http::{Endpoint, HttpError, Meter};

/// The lifetime the document gives, used when a token says nothing of its own.
const DOCUMENTED_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Renew this long before expiry (or at half the lifetime, when that is sooner): a token checked
/// just before renewal must outlast the wait for the rate limiter before its request is sent.
const RENEW_MARGIN: Duration = Duration::from_secs(60);

// ---- wire types, as the document names them ----

#[derive(Serialize)]
struct AuthenticateRequest<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct AuthenticateAnswer {
    token: String,
}

/// `GET /info`; only `expires` is used.
#[derive(Deserialize)]
struct Info {
    expires: Option<String>,
    seller_account_id: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct BatchRequest<'a> {
    action: &'static str,
    entity_type: &'static str,
    entities: Vec<Entity<'a>>,
}

#[derive(Serialize)]
struct Entity<'a> {
    sku: &'a str,
    inventory: i64,
}

/// The claims of a JWT that matter here.
#[derive(Deserialize)]
struct Claims {
    exp: Option<f64>,
}

// ---- auth ----

/// A JWT and when to stop using it.
struct Token {
    jwt: SecretString,
    renew_at: SystemTime,
}

/// Hardtofind as a target.
pub struct HardtofindTarget {
    endpoint: Endpoint,
    username: String,
    password: SecretString,
    token: tokio::sync::Mutex<Option<Token>>,
}

impl HardtofindTarget {
    /// A target logging in as `username`.
    pub fn new(endpoint: Endpoint, username: String, password: SecretString) -> HardtofindTarget {
        HardtofindTarget {
            endpoint,
            username,
            password,
            token: Default::default(),
        }
    }

    /// A token good for now: the cached one unless it is due for renewal or `renew` is set.
    async fn token(&self, meter: &Meter, renew: bool) -> Result<SecretString, ConnectorError> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot
            .as_ref()
            .filter(|t| !renew && SystemTime::now() < t.renew_at)
        {
            return Ok(token.jwt.clone());
        }
        let token = self.authenticate(meter).await?;
        let jwt = token.jwt.clone();
        *slot = Some(token);
        Ok(jwt)
    }

    async fn authenticate(&self, meter: &Meter) -> Result<Token, ConnectorError> {
        let body = Bytes::from(
            serde_json::to_vec(&AuthenticateRequest {
                username: &self.username,
                password: self.password.expose_secret(),
            })
            .map_err(|e| ConnectorError::Malformed(e.to_string()))?,
        );
        let answer = self
            .endpoint
            .send(meter, || {
                self.endpoint
                    .request(Method::POST, "/authenticate")
                    .json_body(body.clone())
            })
            .await
            .map_err(auth_refused)?;
        let answer: AuthenticateAnswer = parse(
            &answer,
            "POST /authenticate: expected {\"person\", \"token\"}",
        )?;
        let jwt = SecretString::from(answer.token);
        let issued = SystemTime::now();
        let expires = match expiry_of(jwt.expose_secret()) {
            Some(at) => at,
            None => self
                .expiry_from_info(meter, &jwt)
                .await
                .unwrap_or(issued + DOCUMENTED_LIFETIME),
        };
        let lifetime = expires.duration_since(issued).unwrap_or(Duration::ZERO);
        let renew_at = expires
            .checked_sub(RENEW_MARGIN.min(lifetime / 2))
            .unwrap_or(issued);
        Ok(Token { jwt, renew_at })
    }

    async fn info(&self, meter: &Meter, jwt: &SecretString) -> Result<Info, ConnectorError> {
        let body = self
            .endpoint
            .send(meter, || {
                self.endpoint
                    .request(Method::GET, "/info")
                    .header("X-Auth-Token", jwt.expose_secret())
            })
            .await?;
        parse(&body, "GET /info")
    }

    async fn expiry_from_info(&self, meter: &Meter, jwt: &SecretString) -> Option<SystemTime> {
        let info = self.info(meter, jwt).await.ok()?;
        humantime::parse_rfc3339_weak(info.expires?.trim()).ok()
    }

    // ---- target ----

    /// Sets the inventory of one batch of variants.
    pub async fn push(&self, meter: &Meter, batch: &[PushItem<'_>]) -> Result<(), ConnectorError> {
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
        let token = self.token(meter, false).await?;
        match self.post_batch(meter, &token, &body).await {
            // Expired early or revoked: one fresh token, one more try.
            Err(HttpError::Status {
                status: StatusCode::UNAUTHORIZED,
                ..
            }) => {
                tracing::info!(endpoint = %self.endpoint.label, "token refused; authenticating again");
                let token = self.token(meter, true).await?;
                Ok(self.post_batch(meter, &token, &body).await?)
            }
            other => Ok(other?),
        }
    }

    async fn post_batch(
        &self,
        meter: &Meter,
        jwt: &SecretString,
        body: &Bytes,
    ) -> Result<(), HttpError> {
        self.endpoint
            .send(meter, || {
                self.endpoint
                    .request(Method::POST, "/batch")
                    .header("X-Auth-Token", jwt.expose_secret())
                    .json_body(body.clone())
            })
            .await
            .map(|_| ())
    }

    /// Logs in and reads `/info`.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        let jwt = self.token(meter, true).await?;
        let info = self.info(meter, &jwt).await?;
        let account = info
            .seller_account_id
            .map_or_else(|| "?".to_owned(), |v| v.to_string());
        Ok(format!("logged in (seller account {account})"))
    }
}

/// The `exp` claim of a JWT, without checking its signature (only the service can, and does).
fn expiry_of(jwt: &str) -> Option<SystemTime> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .or_else(|_| URL_SAFE.decode(payload))
        .ok()?;
    let exp = serde_json::from_slice::<Claims>(&bytes).ok()?.exp?;
    // A hostile or broken token may claim any number: out of range is "says nothing".
    let after_epoch = Duration::try_from_secs_f64(exp)
        .ok()
        .filter(|d| !d.is_zero())?;
    UNIX_EPOCH.checked_add(after_epoch)
}

fn auth_refused(e: HttpError) -> ConnectorError {
    match e {
        HttpError::Status {
            status, message, ..
        } if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN => {
            ConnectorError::Auth(message)
        }
        other => ConnectorError::Http(other),
    }
}

/// A JSON body from bytes already serialised (so each retry reuses them).
trait JsonBody {
    fn json_body(self, body: Bytes) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, body: Bytes) -> Self {
        self.header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_token_text_gives_an_expiry_or_none_never_a_panic(jwt in ".{0,200}", payload in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = expiry_of(&jwt);
            let _ = expiry_of(&format!("h.{}.s", URL_SAFE_NO_PAD.encode(&payload)));
        }
    }

    #[test]
    fn the_expiry_is_read_from_the_token_payload() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"1","iat":1700000000,"exp":1700000900}"#);
        let jwt = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln");
        assert_eq!(
            expiry_of(&jwt),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_900))
        );
        assert_eq!(expiry_of("not-a-jwt"), None);
        assert_eq!(
            expiry_of(&format!(
                "a.{}.c",
                URL_SAFE_NO_PAD.encode(br#"{"exp":1e300}"#)
            )),
            None,
            "out of range"
        );
        assert_eq!(
            expiry_of(&format!("a.{}.c", URL_SAFE_NO_PAD.encode(br#"{"exp":-5}"#))),
            None
        );
        assert_eq!(expiry_of("a.!!!.c"), None);
    }
}
