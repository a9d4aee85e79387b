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
//! wrong wall clock costs nothing and a test with paused time can let a token run out. The
//! token's cache, its renewal and the one renewal on a 401 are the shared
//! [`crate::services::session`]'s.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::wire::{GRANT_TYPE, TokenAnswer};
use crate::http::{Endpoint, HttpError, Meter};
use crate::services::session::{Issued, Login};
use crate::services::{ConnectorError, parse};

/// The lifetime the document gives ("valid for one hour"), when an answer names none.
pub const DOCUMENTED_LIFETIME: Duration = Duration::from_secs(3600);
/// A renewal's margin and moment are the shared session's.
pub use crate::services::session::{RENEW_MARGIN, renew_at};

/// The credentials of one API client, and the grant that trades them for a bearer token.
#[derive(Debug)]
pub struct ClientCredentials {
    client_id: String,
    client_secret: SecretString,
}

impl ClientCredentials {
    /// API client `client_id` with its secret.
    pub fn new(client_id: String, client_secret: SecretString) -> ClientCredentials {
        ClientCredentials {
            client_id,
            client_secret,
        }
    }
}

impl Login for ClientCredentials {
    const RENEWING: &'static str = "token refused; requesting a new one";

    async fn login(&self, endpoint: &Endpoint, meter: &Meter) -> Result<Issued, ConnectorError> {
        let body = endpoint
            .send(meter, || {
                // Built per attempt, so the secret lives only as long as one request.
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", GRANT_TYPE)
                    .append_pair("client_id", &self.client_id)
                    .append_pair("client_secret", self.client_secret.expose_secret())
                    .finish();
                endpoint
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
        let arrived = Instant::now();
        let answer: TokenAnswer = parse(
            &body,
            "POST /api/token: expected {\"token_type\", \"expires_in\", \"access_token\"}",
        )?;
        let lifetime = lifetime(&answer).map_err(ConnectorError::Malformed)?;
        Ok(Issued {
            token: answer.access_token,
            lifetime,
            arrived,
        })
    }

    /// A 401 to a fresh token, or a 403 (an API client without the right to this), is about the
    /// credentials, not the product: an auth failure, never a refusal of one product.
    fn request_error(e: HttpError) -> ConnectorError {
        match e {
            HttpError::Status {
                status: StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN,
                message,
                ..
            } => ConnectorError::Auth(message),
            other => ConnectorError::Http(other),
        }
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
