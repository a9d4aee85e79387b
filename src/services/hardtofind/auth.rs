//! One Hardtofind account's session: `POST /authenticate` trades username and password for a
//! JWT, sent as `X-Auth-Token`. The target and an order feed that log in to the same account
//! with the same password share one login, so one token (and, as every endpoint of an account,
//! one rate budget); each still sends through its own [`Endpoint`], so its requests are counted
//! and logged under its own label (`target hardtofind`, `orders hardtofind`).
//!
//! A token is renewed from its *lifetime as issued* (`exp − iat`, else `GET /info`'s
//! `expires − created`, else the documented 15 minutes), measured on the local monotonic clock
//! from when it arrived: a host clock that is wrong by an hour changes nothing. The token's
//! cache, its renewal and the one login on a 401 are the shared [`session`]'s.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use bytes::Bytes;
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::wire::{AuthenticateAnswer, AuthenticateRequest, Claims, Date, Info};
use crate::http::{Endpoint, HttpError, Meter};
use crate::services::session::{self, Issued, Login};
use crate::services::{ConnectorError, parse};

/// The lifetime the document gives, used when a token says nothing of its own.
const DOCUMENTED_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// How a Hardtofind account logs in: username and password for a JWT.
pub struct Credentials {
    username: String,
    password: SecretString,
}

/// A logged-in Hardtofind account, as one endpoint (a target, an order feed) uses it.
pub type Session = session::Session<Credentials>;

impl Credentials {
    /// The login of `username` with `password`.
    pub fn new(username: String, password: SecretString) -> Credentials {
        Credentials { username, password }
    }
}

impl Login for Credentials {
    const RENEWING: &'static str = "token refused; authenticating again";

    async fn login(&self, endpoint: &Endpoint, meter: &Meter) -> Result<Issued, ConnectorError> {
        let body = Bytes::from(
            serde_json::to_vec(&AuthenticateRequest {
                username: &self.username,
                password: self.password.expose_secret(),
            })
            .map_err(|e| ConnectorError::Malformed(e.to_string()))?,
        );
        let answer = endpoint
            .send(meter, || {
                json_body(
                    endpoint.request(Method::POST, "/authenticate"),
                    body.clone(),
                )
            })
            .await
            .map_err(auth_refused)?;
        let arrived = Instant::now();
        let answer: AuthenticateAnswer = parse(
            &answer,
            "POST /authenticate: expected {\"person\", \"token\"}",
        )?;
        let jwt = SecretString::from(answer.token);
        let lifetime = match lifetime_of(jwt.expose_secret()) {
            Some(lifetime) => lifetime,
            None => lifetime_from_info(endpoint, meter, &jwt)
                .await
                .unwrap_or(DOCUMENTED_LIFETIME),
        };
        Ok(Issued {
            token: jwt,
            lifetime,
            arrived,
        })
    }
}

impl Session {
    /// A session that logs in as `username` when first needed.
    pub fn logging_in(endpoint: Endpoint, username: String, password: SecretString) -> Session {
        Session::new(endpoint, Credentials::new(username, password))
    }

    /// Sends the request `build` makes with a good token; on a 401 (expired early, revoked) logs
    /// in once more and tries once more. Every Hardtofind answer is JSON, so a 2xx that is not
    /// (a proxy's HTML page) is an error retried like a 5xx, never taken as the service's word.
    pub async fn send(
        &self,
        meter: &Meter,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
        method: Method,
        path: &str,
    ) -> Result<Bytes, ConnectorError> {
        let attempt = |jwt: SecretString| {
            let (method, build) = (method.clone(), &build);
            async move {
                self.endpoint
                    .send_json(meter, || {
                        build(
                            self.endpoint
                                .request(method.clone(), path)
                                .header("X-Auth-Token", jwt.expose_secret()),
                        )
                    })
                    .await
            }
        };
        self.authorized(meter, attempt).await
    }

    /// Logs in and reads `/info`.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        let jwt = self.fresh(meter).await?.secret;
        let info = info(&self.endpoint, meter, &jwt).await?;
        let account = info
            .seller_account_id
            .map_or_else(|| "?".to_owned(), |v| v.to_string());
        Ok(format!("logged in (seller account {account})"))
    }
}

async fn info(
    endpoint: &Endpoint,
    meter: &Meter,
    jwt: &SecretString,
) -> Result<Info, ConnectorError> {
    let body = endpoint
        .send(meter, || {
            endpoint
                .request(Method::GET, "/info")
                .header("X-Auth-Token", jwt.expose_secret())
        })
        .await?;
    parse(&body, "GET /info")
}

async fn lifetime_from_info(
    endpoint: &Endpoint,
    meter: &Meter,
    jwt: &SecretString,
) -> Option<Duration> {
    let info = info(endpoint, meter, jwt).await.ok()?;
    let (created, expires) = (seconds(info.created?)?, seconds(info.expires?)?);
    Duration::try_from_secs_f64(expires - created)
        .ok()
        .filter(|d| !d.is_zero())
}

/// A date of `/info` as Unix seconds: a date string (with an offset, as API_NOTES says) or a
/// number.
fn seconds(value: serde_json::Value) -> Option<f64> {
    serde_json::from_value::<Date>(value)
        .ok()
        .map(|at| at.unix_seconds())
}

/// How long a JWT was issued to live (`exp − iat`), without checking its signature (only the
/// service can, and does). Both claims are the issuer's clock, so our clock never enters.
fn lifetime_of(jwt: &str) -> Option<Duration> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .or_else(|_| URL_SAFE.decode(payload))
        .ok()?;
    let claims = serde_json::from_slice::<Claims>(&bytes).ok()?;
    // A hostile or broken token may claim any number: out of range is "says nothing".
    Duration::try_from_secs_f64(claims.exp? - claims.iat?)
        .ok()
        .filter(|d| !d.is_zero())
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

/// Checks an undocumented 2xx answer (`/batch`, transitions): nothing or any JSON is a yes; an
/// HTML page from a proxy is not, so it is never taken for the service's acknowledgement.
pub fn undocumented_answer(body: &[u8], what: &str) -> Result<(), ConnectorError> {
    if body.trim_ascii().is_empty() {
        return Ok(());
    }
    parse::<serde::de::IgnoredAny>(body, what).map(drop)
}

/// A JSON body from bytes already serialised (so each retry reuses them).
pub fn json_body(request: RequestBuilder, body: Bytes) -> RequestBuilder {
    request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_token_text_gives_a_lifetime_or_none_never_a_panic(jwt in ".{0,200}", payload in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = lifetime_of(&jwt);
            let _ = lifetime_of(&format!("h.{}.s", URL_SAFE_NO_PAD.encode(&payload)));
        }
    }

    #[test]
    fn the_lifetime_is_read_from_the_token_payload_whatever_our_clock_says() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"1","iat":1700000000,"exp":1700000900}"#);
        let jwt = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln");
        assert_eq!(lifetime_of(&jwt), Some(Duration::from_secs(900)));
        assert_eq!(lifetime_of("not-a-jwt"), None);
        let claims = |json: &[u8]| format!("a.{}.c", URL_SAFE_NO_PAD.encode(json));
        assert_eq!(lifetime_of(&claims(br#"{"iat":0,"exp":1e300}"#)), None);
        assert_eq!(lifetime_of(&claims(br#"{"iat":10,"exp":5}"#)), None);
        assert_eq!(lifetime_of(&claims(br#"{"exp":1700000900}"#)), None);
        assert_eq!(lifetime_of("a.!!!.c"), None);
    }

    #[test]
    fn info_dates_are_strings_with_an_offset_or_unix_seconds() {
        assert_eq!(seconds(serde_json::json!(1_700_000_000)), Some(1.7e9));
        assert_eq!(
            seconds(serde_json::json!("2016-08-18T14:43:22+10:00")),
            Some(1_471_495_402.0)
        );
        assert_eq!(
            seconds(serde_json::json!("2016-08-18T14:43:22+1000")),
            Some(1_471_495_402.0)
        );
        assert_eq!(seconds(serde_json::json!(null)), None);
    }
}
