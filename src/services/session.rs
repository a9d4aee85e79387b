//! One logged-in account, shared by every endpoint that logs in with the same credentials: the
//! token and when to renew it, one renewal when the service answers 401, and the memory of a
//! refused login. Each service says only how it logs in ([`Login`]); the rest is here, once.
//!
//! - **Cache**: a token is used until shortly before its lifetime runs out ([`RENEW_MARGIN`], or
//!   half the lifetime when that is sooner), measured on tokio's monotonic clock from the moment
//!   the answer arrived: a wrong wall clock costs nothing, and paused time can let a token expire.
//! - **401, renewed once**: a request answered 401 (a token expired early, or revoked) gets a new
//!   token and is sent once more.
//! - **One login at a time** (single-flight): when several users of one session need a token at
//!   once, the first logs in and the others wait for it and use what it got. A user whose request
//!   was answered 401 renews only if the token it sent is still the newest; one that another user
//!   already replaced is not replaced again.
//! - **A refused login is remembered** by those who waited for it: they get the same refusal
//!   instead of sending the same credentials again. The next call after it tries again (backing
//!   off a refused login across cycles is the target's and the source's business).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::http::limits::AccountKey;
use crate::http::{Endpoint, HttpError, Meter};
use crate::services::ConnectorError;

/// Renew this long before expiry (or at half the lifetime, when that is sooner): a token taken
/// just before renewal must outlast the wait for the rate limiter and the request itself.
pub const RENEW_MARGIN: Duration = Duration::from_secs(60);

/// A token as a service issued it.
pub struct Issued {
    /// The token, sent with every request.
    pub token: SecretString,
    /// How long it lasts, from `arrived`.
    pub lifetime: Duration,
    /// When the answer that carried it arrived (tokio's clock).
    pub arrived: Instant,
}

/// How a service logs in: its credentials, and the request that trades them for a token.
pub trait Login: Send + Sync + 'static {
    /// Logged at INFO when a request is answered 401 and the token is renewed.
    const RENEWING: &'static str;

    /// Logs in through `endpoint` (the endpoint whose request needs the token: the login counts
    /// under its label). A refusal of the credentials is a [`ConnectorError::Auth`].
    fn login(
        &self,
        endpoint: &Endpoint,
        meter: &Meter,
    ) -> impl Future<Output = Result<Issued, ConnectorError>> + Send;

    /// What a request's failure is, once a token was sent with it (a 401 to a fresh token, a
    /// 403): by default the HTTP error as it is.
    fn request_error(error: HttpError) -> ConnectorError {
        ConnectorError::Http(error)
    }
}

/// A token and when to stop using it.
#[derive(Clone)]
struct Token {
    secret: SecretString,
    renew_at: Instant,
}

/// What the newest login gave.
enum Outcome {
    /// A token.
    Token(Token),
    /// The service refused the credentials (its message).
    Refused(String),
}

/// The newest login's outcome, numbered: each login is one more than the one before.
struct Newest {
    login: u64,
    outcome: Outcome,
}

/// Credentials and what they got, shared by every endpoint that logs in with them.
struct Shared<L> {
    login: L,
    /// Held while a login is in flight: who wants a token meanwhile waits for that one.
    newest: tokio::sync::Mutex<Option<Newest>>,
    /// The number of the newest login's outcome, readable without waiting for the lock.
    logins: AtomicU64,
}

/// A token from a session, with the number of the login that got it: a 401 to it renews only
/// if no newer login happened meanwhile.
#[derive(Clone)]
pub struct Lease {
    /// The token to send.
    pub secret: SecretString,
    login: u64,
}

/// A logged-in account, as one endpoint (a target, an order feed) uses it.
pub struct Session<L> {
    /// Where the account lives, labelled as the endpoint that sends (its limiter is the
    /// account's budget).
    pub endpoint: Endpoint,
    shared: Arc<Shared<L>>,
}

impl<L: Login> Session<L> {
    /// A session that logs in with `login` when first needed.
    pub fn new(endpoint: Endpoint, login: L) -> Session<L> {
        Session {
            endpoint,
            shared: Arc::new(Shared {
                login,
                newest: tokio::sync::Mutex::new(None),
                logins: AtomicU64::new(0),
            }),
        }
    }

    /// This session's login (its token) used by another endpoint of the account: whichever logs
    /// in, both use the token, and each request counts under the endpoint that sent it.
    pub fn through(&self, endpoint: Endpoint) -> Session<L> {
        Session {
            endpoint,
            shared: self.shared.clone(),
        }
    }

    /// The credentials this session logs in with.
    pub fn login(&self) -> &L {
        &self.shared.login
    }

    /// A token good for now: the kept one unless it is due for renewal.
    pub async fn token(&self, meter: &Meter) -> Result<Lease, ConnectorError> {
        let seen = self.shared.logins.load(Ordering::Acquire);
        self.obtain(meter, seen, true).await
    }

    /// A token other than `refused` (which the service answered 401): a new login, unless
    /// another user of the session already logged in since `refused` was issued.
    pub async fn renewed(&self, meter: &Meter, refused: &Lease) -> Result<Lease, ConnectorError> {
        self.obtain(meter, refused.login, false).await
    }

    /// A token from a login that starts after this call (to prove the credentials work): a
    /// login already in flight when it is called counts.
    pub async fn fresh(&self, meter: &Meter) -> Result<Lease, ConnectorError> {
        let seen = self.shared.logins.load(Ordering::Acquire);
        self.obtain(meter, seen, false).await
    }

    /// Sends with a good token the request `attempt` makes with it; on a 401 renews the token
    /// once (see [`Session::renewed`]) and sends once more. A failure of either request is the
    /// service's [`Login::request_error`].
    pub async fn authorized<T, F>(
        &self,
        meter: &Meter,
        attempt: impl Fn(SecretString) -> F,
    ) -> Result<T, ConnectorError>
    where
        F: Future<Output = Result<T, HttpError>>,
    {
        let lease = self.token(meter).await?;
        match attempt(lease.secret.clone()).await {
            Err(HttpError::Status {
                status: StatusCode::UNAUTHORIZED,
                ..
            }) => {
                tracing::info!(endpoint = %self.endpoint.label, "{}", L::RENEWING);
                let fresh = self.renewed(meter, &lease).await?;
                attempt(fresh.secret).await.map_err(L::request_error)
            }
            other => other.map_err(L::request_error),
        }
    }

    /// The outcome of a login newer than `since` if there is one (its token while good, or its
    /// refusal), else the kept token when `kept` allows and it is good, else a new login.
    async fn obtain(&self, meter: &Meter, since: u64, kept: bool) -> Result<Lease, ConnectorError> {
        let mut newest = self.shared.newest.lock().await;
        let now = Instant::now();
        if let Some(last) = newest.as_ref() {
            let usable = |token: &Token| now < token.renew_at;
            match &last.outcome {
                Outcome::Token(token) if (last.login > since || kept) && usable(token) => {
                    return Ok(Lease {
                        secret: token.secret.clone(),
                        login: last.login,
                    });
                }
                Outcome::Refused(message) if last.login > since => {
                    return Err(ConnectorError::Auth(message.clone()));
                }
                _ => {}
            }
        }
        let number = newest.as_ref().map_or(0, |last| last.login) + 1;
        let outcome = match self.shared.login.login(&self.endpoint, meter).await {
            Ok(issued) => Outcome::Token(Token {
                secret: issued.token,
                renew_at: renew_at(issued.arrived, issued.lifetime),
            }),
            Err(ConnectorError::Auth(message)) => Outcome::Refused(message),
            // Not the service's word on the credentials (an outage): the next user tries itself.
            Err(other) => return Err(other),
        };
        let result = match &outcome {
            Outcome::Token(token) => Ok(Lease {
                secret: token.secret.clone(),
                login: number,
            }),
            Outcome::Refused(message) => Err(ConnectorError::Auth(message.clone())),
        };
        *newest = Some(Newest {
            login: number,
            outcome,
        });
        self.shared.logins.store(number, Ordering::Release);
        result
    }
}

/// When to stop using a token received at `received` that lasts `lifetime`.
pub fn renew_at(received: Instant, lifetime: Duration) -> Instant {
    let margin = RENEW_MARGIN.min(lifetime / 2);
    // A lifetime too long to add (a hostile answer) is "keep it until a 401".
    received
        .checked_add(lifetime - margin)
        .unwrap_or_else(|| received + Duration::from_secs(365 * 24 * 3600))
}

impl<L> std::fmt::Debug for Session<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint.label)
            .finish_non_exhaustive()
    }
}

/// The sessions of one configuration: one per kind of login, account and secret. Keyed by the
/// kind of login too, so that every service that logs in shares this one map and adds nothing to
/// it: two services at one address with one username are two logins.
#[derive(Default)]
pub struct Logins(HashMap<(TypeId, AccountKey, u64), Arc<dyn Any + Send + Sync>>);

impl Logins {
    /// The session of an endpoint `endpoint` that logs in to `account` with `secret`: the login
    /// of another endpoint with the same secret, seen through `endpoint` (so its requests count
    /// under its own label), or a login of its own (made by `login`). A secret that differs from
    /// the other's gets its own login: riding on the other's token would hide that one of the two
    /// is wrong.
    pub fn session<L: Login>(
        &mut self,
        endpoint: Endpoint,
        account: &AccountKey,
        secret: &SecretString,
        login: impl FnOnce() -> L,
    ) -> Arc<Session<L>> {
        // Hashed in memory only, to compare; never kept beyond this configuration's clients.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        secret.expose_secret().hash(&mut hasher);
        let key = (TypeId::of::<L>(), account.clone(), hasher.finish());
        let shared = self
            .0
            .get(&key)
            .and_then(|s| s.downcast_ref::<Session<L>>());
        if let Some(shared) = shared {
            return Arc::new(shared.through(endpoint));
        }
        let session = Arc::new(Session::new(endpoint, login()));
        self.0.insert(key, session.clone());
        session
    }
}
