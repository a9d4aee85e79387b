//! The OAuth2 client-credentials grant (`POST /api/token`, form fields `grant_type`,
//! `client_id`, `client_secret`) and the bearer token it gives, kept until shortly before its
//! `expires_in` runs out.
//!
//! A small client rather than the `oauth2` crate: oauth2 5.0 brings its own reqwest 0.12 (we are
//! on 0.13), or else asks for an adapter through which our [`Endpoint`] (retries, the shared
//! rate limit, the refusal classes) would be hidden behind its own error type; it also pulls
//! rand 0.8, chrono and sha2. The grant itself is one form POST and a three-field answer, and
//! what needs care (when to renew, renewing once on a 401, keeping the secret out of sight) is
//! not something the crate does for us.
//!
//! Lifetimes are measured on tokio's monotonic clock from the moment the answer arrived, so a
//! wrong wall clock costs nothing and a test with paused time can let a token run out.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::wire::{GRANT_TYPE, TokenAnswer};
use crate::http::{Endpoint, HttpError, Meter};
use crate::services::{ConnectorError, parse};

/// The lifetime the document gives ("valid for one hour"), when an answer names none.
pub const DOCUMENTED_LIFETIME: Duration = Duration::from_secs(3600);
/// Renew this long before expiry (or at half the lifetime, when that is sooner): a token taken
/// just before renewal must outlast the wait for the rate limiter and the request itself.
pub const RENEW_MARGIN: Duration = Duration::from_secs(60);

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
struct Token {
    access: SecretString,
    renew_at: Instant,
}

/// Issues and keeps the bearer token of one API client.
#[derive(Debug)]
pub struct TokenSource {
    endpoint: Endpoint,
    client_id: String,
    client_secret: SecretString,
    slot: tokio::sync::Mutex<Option<Token>>,
}

impl TokenSource {
    /// The token source of API client `client_id` at `endpoint`.
    pub fn new(endpoint: Endpoint, client_id: String, client_secret: SecretString) -> TokenSource {
        TokenSource {
            endpoint,
            client_id,
            client_secret,
            slot: Default::default(),
        }
    }

    /// A token good for now: the kept one unless it is due for renewal or is `refused` (the
    /// token the service just answered 401 to). Requests waiting here share one renewal: a
    /// token another request renewed meanwhile is not renewed again.
    pub async fn token(
        &self,
        meter: &Meter,
        refused: Option<&SecretString>,
    ) -> Result<SecretString, ConnectorError> {
        let mut slot = self.slot.lock().await;
        let is_refused =
            |t: &Token| refused.is_some_and(|r| r.expose_secret() == t.access.expose_secret());
        if let Some(token) = slot
            .as_ref()
            .filter(|t| Instant::now() < t.renew_at && !is_refused(t))
        {
            return Ok(token.access.clone());
        }
        let token = self.request(meter).await?;
        let access = token.access.clone();
        *slot = Some(token);
        Ok(access)
    }

    async fn request(&self, meter: &Meter) -> Result<Token, ConnectorError> {
        let body = self
            .endpoint
            .send(meter, || {
                // Built per attempt, so the secret lives only as long as one request.
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", GRANT_TYPE)
                    .append_pair("client_id", &self.client_id)
                    .append_pair("client_secret", self.client_secret.expose_secret())
                    .finish();
                self.endpoint
                    .request(Method::POST, "/api/token")
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .header(reqwest::header::ACCEPT, "application/json")
                    .body(form)
            })
            .await
            .map_err(auth_refused)?;
        let received = Instant::now();
        let answer: TokenAnswer = parse(
            &body,
            "POST /api/token: expected {\"token_type\", \"expires_in\", \"access_token\"}",
        )?;
        let lifetime = lifetime(&answer).map_err(ConnectorError::Malformed)?;
        Ok(Token {
            access: answer.access_token,
            renew_at: renew_at(received, lifetime),
        })
    }
}

/// How long a token answer says its token lasts; an error for an answer that is not a bearer
/// token with a usable lifetime.
fn lifetime(answer: &TokenAnswer) -> Result<Duration, String> {
    if !answer.token_type.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "POST /api/token: token_type {:?} is not \"Bearer\"",
            answer.token_type
        ));
    }
    if answer.access_token.expose_secret().trim().is_empty() {
        return Err("POST /api/token: access_token is empty".to_owned());
    }
    match answer.expires_in {
        None => Ok(DOCUMENTED_LIFETIME),
        Some(seconds) => Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("POST /api/token: expires_in {seconds} is not a lifetime")),
    }
}

/// When to stop using a token received at `received` that lasts `lifetime`.
fn renew_at(received: Instant, lifetime: Duration) -> Instant {
    let margin = RENEW_MARGIN.min(lifetime / 2);
    // A lifetime too long to add (a hostile answer) is "keep it until a 401".
    received
        .checked_add(lifetime - margin)
        .unwrap_or_else(|| received + Duration::from_secs(365 * 24 * 3600))
}

/// A refused login is an [`ConnectorError::Auth`]: not retried in the cycle, and backed off.
/// The token endpoint answers 401 `invalid_client` to a wrong id or secret and 400 to a
/// malformed grant; both mean the credentials, as configured, will not do.
pub(super) fn auth_refused(e: HttpError) -> ConnectorError {
    match e {
        HttpError::Status {
            status, message, ..
        } if [
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
        ]
        .contains(&status) =>
        {
            ConnectorError::Auth(message)
        }
        other => ConnectorError::Http(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(token_type: &str, expires_in: Option<f64>, token: &str) -> TokenAnswer {
        TokenAnswer {
            token_type: token_type.to_owned(),
            expires_in,
            access_token: SecretString::from(token.to_owned()),
        }
    }

    #[test]
    fn a_token_is_renewed_a_minute_before_it_expires_or_at_half_its_life() {
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        assert_eq!(renew_at(now, hour), now + hour - RENEW_MARGIN);
        let short = Duration::from_secs(30);
        assert_eq!(renew_at(now, short), now + Duration::from_secs(15));
        let absurd = Duration::from_secs(u64::MAX / 2);
        assert!(
            renew_at(now, absurd) > now,
            "never in the past, never a panic"
        );
    }

    #[test]
    fn the_lifetime_is_expires_in_or_the_documented_hour() {
        assert_eq!(
            lifetime(&answer("Bearer", Some(7200.0), "t")),
            Ok(Duration::from_secs(7200))
        );
        assert_eq!(
            lifetime(&answer("bearer", None, "t")),
            Ok(DOCUMENTED_LIFETIME)
        );
        for bad in [0.0, -5.0, f64::NAN, f64::INFINITY, 1e300] {
            assert!(
                lifetime(&answer("Bearer", Some(bad), "t")).is_err(),
                "{bad}"
            );
        }
        assert!(lifetime(&answer("MAC", Some(60.0), "t")).is_err());
        assert!(lifetime(&answer("Bearer", Some(60.0), " ")).is_err());
    }

    #[test]
    fn a_refused_login_is_an_auth_error_and_an_outage_is_not() {
        let status = |code: u16| HttpError::Status {
            status: StatusCode::from_u16(code).expect("valid code"),
            retry_after: None,
            message: "invalid_client".to_owned(),
        };
        assert!(matches!(auth_refused(status(401)), ConnectorError::Auth(_)));
        assert!(matches!(auth_refused(status(400)), ConnectorError::Auth(_)));
        assert!(matches!(auth_refused(status(503)), ConnectorError::Http(_)));
        assert!(matches!(
            auth_refused(HttpError::Timeout),
            ConnectorError::Http(_)
        ));
    }
}
