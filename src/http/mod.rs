//! Everything every connector needs to talk HTTP, decided once: the client (timeouts, user agent,
//! no redirects, a cap on answer size), the rate limit of each account ([`limits`]), and whether
//! and how a failed request is tried again ([`retry`]); what every request counts ([`metrics`]).
//!
//! A connector builds its request with [`Endpoint::request`] and sends it with
//! [`Endpoint::send`]; it never sees a retry or a rate limit. A request that must never be
//! repeated blindly (placing an order) goes through [`Endpoint::send_once`] instead.

pub mod limits;
pub mod metrics;
pub mod retry;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lc_rs::digest;
use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use tokio_util::sync::CancellationToken;

pub use limits::{Limiter, Limiters};
use retry::RetrySettings;

/// What went wrong with one request, after retries.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer: connection refused or reset, DNS, TLS, a dropped connection.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The server's TLS certificate was refused (unknown issuer, expired, another host's name):
    /// asking again gets the same certificate, so this is never retried.
    #[error("TLS certificate refused: {0}")]
    Certificate(String),
    /// No answer within `request_timeout`.
    #[error("no answer within the request timeout")]
    Timeout,
    /// The service answered with a status that is not a success.
    #[error("HTTP {status}: {message}")]
    Status {
        /// The status code.
        status: StatusCode,
        /// The `Retry-After` it asked for, if any.
        retry_after: Option<Duration>,
        /// The service's own message (its `error` field, or the start of the body).
        message: String,
    },
    /// The service answered 2xx with a body that is not JSON where JSON was due: a proxy's
    /// maintenance page in front of the service, most likely. It proves nothing was applied,
    /// and it passes like a 5xx.
    #[error("HTTP {status} with a body that is not JSON (a proxy's page?): {message}")]
    NotJson {
        /// The status code.
        status: StatusCode,
        /// The start of the body.
        message: String,
    },
    /// The answer was larger than `daemon.max_response_size`.
    #[error("answer larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap.
        limit: usize,
    },
    /// The account is paused at the service's request (`Retry-After`) for longer than a
    /// request may wait: nothing was sent.
    #[error(
        "the service asked for a pause (Retry-After); this account sends nothing until {until}"
    )]
    Paused {
        /// When the pause ends, RFC 3339.
        until: String,
    },
    /// Shutdown was requested before the request could start, or while it waited to retry.
    #[error("shutting down")]
    Cancelled,
}

impl HttpError {
    /// The one place that decides whether trying again can help: connection errors, timeouts
    /// (ours, or the server's 408), 429 and 5xx are passing; any other 4xx will fail the same
    /// way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            HttpError::Connect(_) | HttpError::Timeout | HttpError::NotJson { .. } => true,
            HttpError::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || status.is_server_error()
            }
            HttpError::BodyTooLarge { .. }
            | HttpError::Certificate(_)
            | HttpError::Paused { .. }
            | HttpError::Cancelled => false,
        }
    }

    /// The status code of a failed answer, when the service answered one. (A 2xx that is not
    /// JSON has none here: it is not the service's word, and no refusal.)
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn from_reqwest(e: reqwest::Error) -> HttpError {
        // The URL never carries secrets (they travel in headers), but strip it anyway: the
        // message is about what failed, the log line already says which endpoint.
        let e = e.without_url();
        if e.is_timeout() {
            HttpError::Timeout
        } else if refused_certificate(&e) {
            HttpError::Certificate(error_chain(&e))
        } else {
            HttpError::Connect(error_chain(&e))
        }
    }
}

/// Whether a TLS certificate error is somewhere in the chain. rustls's error travels inside an
/// `io::Error`, whose `source()` skips it, so each `io::Error` is opened up too.
fn refused_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(error) = next {
        let inner = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(error), inner].into_iter().flatten() {
            if let Some(tls) = candidate.downcast_ref::<rustls::Error>() {
                return matches!(
                    tls,
                    rustls::Error::InvalidCertificate(_)
                        | rustls::Error::InvalidCertRevocationList(_)
                );
            }
        }
        next = error.source();
    }
    false
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// HTTP attempts finished (answered, failed or timed out) since the process started.
static PROGRESS: AtomicU64 = AtomicU64::new(0);

/// How many HTTP attempts have finished so far, whatever their outcome: a number that keeps
/// growing while a cycle makes progress, for the systemd watchdog ([`crate::ops::notify`]).
pub fn progress() -> u64 {
    PROGRESS.load(Ordering::Relaxed)
}

/// Requests and retries made on behalf of one source or target in one cycle.
#[derive(Debug, Default)]
pub struct Meter {
    requests: AtomicU64,
    retries: AtomicU64,
}

impl Meter {
    /// Requests sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Attempts that were retries.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
}

/// What a fleet worker adds to the `User-Agent`: its name, so that a service's logs (and the
/// tests' simulators) tell which worker sent a request. Set once, before any client is made.
static AGENT_WORKER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names this process's worker in every request's `User-Agent` (`invsync/VERSION (worker
/// NAME)`); the first call wins.
pub fn name_worker(worker: &str) {
    let _ = AGENT_WORKER.set(worker.to_owned());
}

/// The shared HTTP client.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: reqwest::Client,
    max_body: usize,
}

impl HttpClient {
    /// A client with the given per-request timeout, reading answers of at most `max_body` bytes.
    pub fn new(request_timeout: Duration, max_body: usize) -> Result<HttpClient, reqwest::Error> {
        let agent = match AGENT_WORKER.get() {
            Some(worker) => format!("invsync/{} (worker {worker})", env!("CARGO_PKG_VERSION")),
            None => concat!("invsync/", env!("CARGO_PKG_VERSION")).to_owned(),
        };
        let inner = reqwest::Client::builder()
            .user_agent(agent)
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(10)))
            // An API answer never needs a redirect; following one could carry credentials to
            // another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(HttpClient { inner, max_body })
    }
}

/// One remote account as seen by one source or target: where it is, its shared rate limit,
/// and the retry policy.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// For log lines: `source warehouse`, `target hardtofind`.
    pub label: String,
    base_url: String,
    client: HttpClient,
    limiter: Arc<Limiter>,
    retry: RetrySettings,
    cancel: CancellationToken,
    tally: Arc<dyn metrics::Tally>,
}

impl Endpoint {
    /// An endpoint at `base_url` (no trailing slash).
    pub fn new(
        label: String,
        base_url: String,
        client: HttpClient,
        limiter: Arc<Limiter>,
        retry: RetrySettings,
        cancel: CancellationToken,
    ) -> Endpoint {
        Endpoint {
            label,
            base_url,
            client,
            limiter,
            retry,
            cancel,
            tally: Arc::new(metrics::Uncounted),
        }
    }

    /// The endpoint, its requests and retries counted by `tally` (its shop's metrics).
    pub fn counted_by(self, tally: Arc<dyn metrics::Tally>) -> Endpoint {
        Endpoint { tally, ..self }
    }

    /// Starts a request to `base_url` + `path`.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .inner
            .request(method, format!("{}{}", self.base_url, path))
    }

    /// Sends a request whose any 2xx body is the answer (see [`Endpoint::send_as`]).
    pub async fn send(
        &self,
        meter: &Meter,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Bytes, HttpError> {
        Ok(self.send_as(meter, build, Expect::Any).await?.body)
    }

    /// Sends a request whose documented answer is JSON (see [`Expect::Json`]).
    pub async fn send_json(
        &self,
        meter: &Meter,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Bytes, HttpError> {
        Ok(self.send_as(meter, build, Expect::Json).await?.body)
    }

    /// [`Endpoint::send`], keeping the status and headers of the 2xx answer (a `Link` header to
    /// the next page, a 204 that acknowledges).
    pub async fn send_for_answer(
        &self,
        meter: &Meter,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, HttpError> {
        self.send_as(meter, build, Expect::Any).await
    }

    /// Sends a request, waiting on the account's rate limit (and pause) before every attempt and
    /// retrying what [`HttpError::is_retryable`] allows. `build` makes a fresh request per
    /// attempt; `expect` says what a 2xx must carry to count.
    pub async fn send_as(
        &self,
        meter: &Meter,
        build: impl Fn() -> reqwest::RequestBuilder,
        expect: Expect,
    ) -> Result<Answer, HttpError> {
        Ok(self.send_salted(meter, build, expect, None).await?.0)
    }

    /// [`Endpoint::send_as`] for a 2xx body, with the SHA-256 of `salt` followed by the body's
    /// bytes as they came (a byte-order mark included), made while the body streams in: a
    /// caller that compares answers by digest knows one as soon as its last byte is in.
    pub async fn send_digested(
        &self,
        meter: &Meter,
        build: impl Fn() -> reqwest::RequestBuilder,
        salt: &[u8],
    ) -> Result<(Bytes, [u8; 32]), HttpError> {
        let (answer, digest) = self
            .send_salted(meter, build, Expect::Any, Some(salt))
            .await?;
        // Every salted attempt digests its body: the fallback is never taken.
        let digest = digest.unwrap_or_else(|| salted_digest(salt, &answer.body));
        Ok((answer.body, digest))
    }

    async fn send_salted(
        &self,
        meter: &Meter,
        build: impl Fn() -> reqwest::RequestBuilder,
        expect: Expect,
        salt: Option<&[u8]>,
    ) -> Result<(Answer, Option<[u8; 32]>), HttpError> {
        let attempt = || async {
            let (answer, digest) = self.send_once_salted(meter, build(), salt).await?;
            Ok((answer.expect(expect)?, digest))
        };
        let result = retry::with_retries(attempt, &self.retry, &self.label, &self.cancel, || {
            meter.retries.fetch_add(1, Ordering::Relaxed);
            self.tally.retry(&self.label);
        })
        .await;
        match result {
            // A Retry-After too long to wait for within this request: say until when, rather
            // than a bare 429 that reads as if the next cycle could simply try again.
            Err(HttpError::Status {
                retry_after: Some(_),
                ..
            }) if !self.cancel.is_cancelled() => match self.limiter.paused() {
                Some(until) => Err(HttpError::Paused {
                    until: until.rfc3339(),
                }),
                None => result,
            },
            // Shutdown cut a wait short: what stopped the request is the stop, not the failure
            // before it (which the retry WARN already told).
            Err(e) if self.cancel.is_cancelled() && e.is_retryable() => Err(HttpError::Cancelled),
            other => other,
        }
    }

    /// Sends a request exactly once, whatever happens: for a request that is not idempotent
    /// (placing an order), where a retry after a timeout or a 5xx could do the thing twice and
    /// only the caller can tell how to find out what happened. It still waits on the account's
    /// rate limit and pause, and counts in `meter`. Every status comes back as an [`Answer`]
    /// with its whole body, because such a caller must read a refusal's details itself; `Err`
    /// means no answer ([`HttpError::Cancelled`]: shutdown came before anything was sent).
    pub async fn send_once(
        &self,
        meter: &Meter,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, HttpError> {
        Ok(self.send_once_salted(meter, request, None).await?.0)
    }

    async fn send_once_salted(
        &self,
        meter: &Meter,
        request: reqwest::RequestBuilder,
        salt: Option<&[u8]>,
    ) -> Result<(Answer, Option<[u8; 32]>), HttpError> {
        self.wait_out_pause().await?;
        self.limiter.until_ready().await;
        meter.requests.fetch_add(1, Ordering::Relaxed);
        let result = self.attempt(request, salt).await;
        PROGRESS.fetch_add(1, Ordering::Relaxed);
        let code = match &result {
            Ok((answer, _)) => answer.status.as_str(),
            Err(HttpError::Timeout) => "timeout",
            Err(HttpError::Certificate(_)) => "certificate",
            Err(_) => "error",
        };
        self.tally.request(&self.label, code);
        if let Ok((answer, _)) = &result
            && let (false, Some(asked)) = (answer.status.is_success(), answer.retry_after)
        {
            self.remember_pause(answer.status, asked);
        }
        result
    }

    /// Before an attempt: stops at shutdown, fails fast while the account is paused for longer
    /// than a request may wait, and otherwise waits the pause out (shutdown cuts the wait).
    async fn wait_out_pause(&self) -> Result<(), HttpError> {
        if self.cancel.is_cancelled() {
            return Err(HttpError::Cancelled);
        }
        let Some(until) = self.limiter.paused() else {
            return Ok(());
        };
        if until.remaining() > retry::LONGEST_WAIT.min(self.retry.max_elapsed) {
            return Err(HttpError::Paused {
                until: until.rfc3339(),
            });
        }
        tokio::select! {
            () = tokio::time::sleep_until(until.at) => Ok(()),
            () = self.cancel.cancelled() => Err(HttpError::Cancelled),
        }
    }

    /// A `Retry-After` holds the whole account (every endpoint sharing this limiter) until the
    /// time it names, capped at [`retry::PAUSE_CAP`]. A pause longer than a request may wait
    /// is a WARN: requests of this account fail fast until then, in this cycle and the next.
    fn remember_pause(&self, status: StatusCode, asked: Duration) {
        let wait = asked.min(retry::PAUSE_CAP);
        let already = self.limiter.paused();
        let until = self.limiter.pause_for(wait);
        if wait > retry::LONGEST_WAIT.min(self.retry.max_elapsed) && already != Some(until) {
            tracing::warn!(
                endpoint = %self.label,
                status = status.as_u16(),
                retry_after = %humantime::format_duration(asked),
                until = %until.rfc3339(),
                "the service asked for a pause; every endpoint of this account sends nothing until then"
            );
        }
    }

    /// One request; with a `salt`, the body's digest too (see [`Endpoint::send_digested`]).
    async fn attempt(
        &self,
        request: reqwest::RequestBuilder,
        salt: Option<&[u8]>,
    ) -> Result<(Answer, Option<[u8; 32]>), HttpError> {
        let mut response = request.send().await.map_err(HttpError::from_reqwest)?;
        let status = response.status();
        let retry_after = retry::retry_after(response.headers());
        let limit = self.client.max_body;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(HttpError::BodyTooLarge { limit });
        }
        // Sized up front when the length is announced: a 20 MB answer grown by doubling would
        // copy itself several times over and briefly take twice the memory.
        let announced = response
            .content_length()
            .map_or(0, |n| usize::try_from(n).unwrap_or(0));
        let mut body = BytesMut::with_capacity(announced.min(limit));
        let mut hash = salt.map(|salt| {
            let mut hash = digest::Context::new(&digest::SHA256);
            hash.update(salt);
            hash
        });
        while let Some(chunk) = response.chunk().await.map_err(HttpError::from_reqwest)? {
            if body.len() + chunk.len() > limit {
                return Err(HttpError::BodyTooLarge { limit });
            }
            if let Some(hash) = &mut hash {
                hash.update(&chunk);
            }
            body.extend_from_slice(&chunk);
        }
        let digest = hash.map(|hash| {
            let mut digest = [0; 32];
            digest.copy_from_slice(hash.finish().as_ref());
            digest
        });
        // No document says whether a UTF-8 byte-order mark may start a JSON answer; a server
        // behind some frameworks sends one, and JSON parsers refuse it. It says nothing: drop it.
        let mut body = body.freeze();
        if body.starts_with(b"\xEF\xBB\xBF") {
            body = body.slice(3..);
        }
        let answer = Answer {
            status,
            retry_after,
            headers: std::mem::take(response.headers_mut()),
            body,
        };
        Ok((answer, digest))
    }
}

/// The SHA-256 of `salt` followed by `body`: what [`Endpoint::send_digested`] makes as the body
/// streams in.
pub fn salted_digest(salt: &[u8], body: &[u8]) -> [u8; 32] {
    let mut hash = digest::Context::new(&digest::SHA256);
    hash.update(salt);
    hash.update(body);
    let mut digest = [0; 32];
    digest.copy_from_slice(hash.finish().as_ref());
    digest
}

/// One answer as the service gave it, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status code.
    pub status: StatusCode,
    /// The `Retry-After` it asked for, if any.
    pub retry_after: Option<Duration>,
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Answer {
    /// The body of a success; any other status as [`HttpError::Status`] with the service's
    /// own message.
    pub fn into_success(self) -> Result<Bytes, HttpError> {
        Ok(self.expect(Expect::Any)?.body)
    }

    /// The answer if it is a success carrying what `expect` says; any other status as
    /// [`HttpError::Status`] with the service's own message (for a redirect, where it points).
    pub fn expect(self, expect: Expect) -> Result<Answer, HttpError> {
        if expect == Expect::JsonOrRefusal && is_refusal_status(self.status) {
            return Ok(self);
        }
        if self.status.is_success() {
            if expect != Expect::Any && !is_json(self.status, &self.body) {
                return Err(HttpError::NotJson {
                    status: self.status,
                    message: remote_message(&self.body),
                });
            }
            return Ok(self);
        }
        let message = if self.status.is_redirection() {
            redirect_message(&self.headers)
        } else {
            remote_message(&self.body)
        };
        Err(HttpError::Status {
            status: self.status,
            retry_after: self.retry_after,
            message,
        })
    }
}

/// What a 2xx must carry to count as the service's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever it is (the caller parses it, and says what it expected if that fails).
    Any,
    /// JSON, or no body at all with 204 No Content. Anything else (a proxy's HTML page) is
    /// [`HttpError::NotJson`] and retried like a 5xx, so that a write is never taken as applied
    /// on the word of something that is not the service.
    Json,
    /// As [`Expect::Json`], and a refusal (a 4xx other than 401, 403, 408 and 429) comes back as
    /// the answer too, with its whole body: for a caller that must read what kind of refusal
    /// it is (a body with or without a field), which the one-line message cannot tell.
    JsonOrRefusal,
}

/// A 4xx that refuses the request itself, not its credentials, rate or time.
pub fn is_refusal_status(status: StatusCode) -> bool {
    status.is_client_error()
        && ![
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::REQUEST_TIMEOUT,
            StatusCode::TOO_MANY_REQUESTS,
        ]
        .contains(&status)
}

fn is_json(status: StatusCode, body: &[u8]) -> bool {
    (status == StatusCode::NO_CONTENT && body.is_empty())
        || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

/// A redirect is never followed (it could carry credentials elsewhere); the operator needs to
/// know where it points to fix `base_url` (or see a hijacked name). The query and fragment are
/// left out: they are the other side's, and may carry tokens.
fn redirect_message(headers: &reqwest::header::HeaderMap) -> String {
    let location = headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| l.split(['?', '#']).next().unwrap_or_default().trim());
    match location {
        Some(location) if !location.is_empty() => {
            format!("redirected to {location} (redirects are never followed: check base_url)")
        }
        _ => {
            "redirected, with no Location (redirects are never followed: check base_url)".to_owned()
        }
    }
}

/// The service's own words about an error: its JSON `error` (or `message`) field, followed by
/// the fields a validation error names (`"errors": {field: message}`), else the start of the
/// body, on one line and cut short.
pub fn remote_message(body: &[u8]) -> String {
    const MAX: usize = 300;
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let text =
                |m: &serde_json::Value| m.as_str().map_or_else(|| m.to_string(), str::to_owned);
            let message = ["error", "message"]
                .iter()
                .find_map(|k| v.get(k).map(text))?;
            let fields: Vec<String> = v
                .get("errors")
                .and_then(|e| e.as_object())
                .map(|e| e.iter().map(|(k, m)| format!("{k}: {}", text(m))).collect())
                .unwrap_or_default();
            Some(if fields.is_empty() {
                message
            } else {
                format!("{message} ({})", fields.join("; "))
            })
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "(empty body)".to_owned();
    }
    match one_line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::server::{Handler, Server, SimRequest, SimResponse};
    use crate::harness::{Fault, MAINTENANCE_PAGE};

    struct Echo;

    impl Handler for Echo {
        fn handle(&self, request: &SimRequest) -> SimResponse {
            SimResponse::json(200, &serde_json::json!({ "path": request.path }))
        }
    }

    fn quick() -> RetrySettings {
        RetrySettings {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            max_elapsed: Duration::from_secs(20),
        }
    }

    /// A loopback service and `n` endpoints of one account on it.
    async fn account(n: usize, cancel: &CancellationToken) -> (Server, Vec<Endpoint>) {
        let server = Server::start(Arc::new(Echo), 0).await.expect("starts");
        let client = HttpClient::new(Duration::from_secs(5), 1 << 20).expect("client");
        let key = limits::AccountKey::new(&server.base_url(), &["key"]);
        let mut limiters = Limiters::default();
        limiters.declare(&key, 100_000);
        let endpoints = (0..n)
            .map(|i| {
                Endpoint::new(
                    format!("endpoint {i}"),
                    server.base_url(),
                    client.clone(),
                    limiters.get(&key),
                    quick(),
                    cancel.clone(),
                )
            })
            .collect();
        (server, endpoints)
    }

    async fn get(endpoint: &Endpoint, json: bool) -> Result<Bytes, HttpError> {
        let build = || endpoint.request(Method::POST, "/write");
        match json {
            true => endpoint.send_json(&Meter::default(), build).await,
            false => endpoint.send(&Meter::default(), build).await,
        }
    }

    #[tokio::test]
    async fn a_digested_answer_is_the_digest_of_its_own_body_alone_after_a_failed_attempt() {
        let cancel = CancellationToken::new();
        let (server, endpoints) = account(1, &cancel).await;
        // The first attempt's 503 has a body of its own: none of it may be in the digest.
        server.faults().push(Fault::Status {
            status: 503,
            body: r#"{"message":"busy"}"#.to_owned(),
            retry_after: None,
        });
        let meter = Meter::default();
        let build = || endpoints[0].request(Method::GET, "/stock");
        let (body, digest) = endpoints[0]
            .send_digested(&meter, build, b"salt")
            .await
            .expect("answered");
        assert_eq!(meter.retries(), 1);
        assert_eq!(digest, salted_digest(b"salt", &body));
        assert_ne!(digest, salted_digest(b"other salt", &body));
        // A byte-order mark is in the digest (the bytes as they came) though not in the body.
        server.faults().push(Fault::Status {
            status: 200,
            body: "\u{feff}{}".to_owned(),
            retry_after: None,
        });
        let (body, digest) = endpoints[0]
            .send_digested(&meter, build, b"salt")
            .await
            .expect("answered");
        assert_eq!(&body[..], b"{}");
        assert_eq!(digest, salted_digest(b"salt", "\u{feff}{}".as_bytes()));
    }

    #[tokio::test]
    async fn a_2xx_that_is_not_json_is_retried_like_a_5xx_where_json_is_the_answer() {
        let cancel = CancellationToken::new();
        let (server, endpoints) = account(1, &cancel).await;
        server.faults().push(Fault::Html);
        server.faults().push(Fault::Html);
        let meter = Meter::default();
        let build = || endpoints[0].request(Method::POST, "/batch");

        let answer = endpoints[0].send_json(&meter, build).await;

        assert!(answer.is_ok(), "{answer:?}");
        assert_eq!((meter.requests(), meter.retries()), (3, 2));
        server.faults().push(Fault::Html);
        server.faults().push(Fault::Html);
        server.faults().push(Fault::Html);
        let error = get(&endpoints[0], true).await.expect_err("never JSON");
        println!("{error}");
        assert!(matches!(error, HttpError::NotJson { .. }), "{error}");
        assert!(error.to_string().contains("not JSON"), "{error}");
        assert_eq!(error.status(), None, "no refusal of the service's");
        server.faults().push(Fault::Html);
        let raw = get(&endpoints[0], false)
            .await
            .expect("any body will do here");
        assert_eq!(&raw[..], MAINTENANCE_PAGE.as_bytes());
    }

    #[tokio::test]
    async fn a_far_retry_after_pauses_every_endpoint_of_the_account_which_fail_fast_saying_until_when()
     {
        let cancel = CancellationToken::new();
        let (server, endpoints) = account(2, &cancel).await;
        server.faults().push(Fault::retry_after(86_400));
        let started = std::time::Instant::now();

        let first = get(&endpoints[0], false).await.expect_err("paused");
        let second = get(&endpoints[1], true).await.expect_err("paused too");

        println!("{second}");
        assert!(started.elapsed() < Duration::from_secs(5), "nobody slept");
        assert_eq!(
            server.requests().len(),
            1,
            "the second endpoint sent nothing"
        );
        for error in [&first, &second] {
            let HttpError::Paused { until } = error else {
                panic!("{error:?}");
            };
            let until = humantime::parse_rfc3339(until).expect("RFC 3339");
            let ahead = until
                .duration_since(std::time::SystemTime::now())
                .expect("ahead");
            assert!(
                ahead > Duration::from_secs(3500) && ahead <= Duration::from_secs(3600),
                "a day asked, an hour kept: {ahead:?}"
            );
        }
        assert!(second.to_string().contains("until"), "{second}");
    }

    #[tokio::test]
    async fn a_short_retry_after_is_waited_out_and_shutdown_cuts_a_pause_short() {
        let cancel = CancellationToken::new();
        let (server, endpoints) = account(2, &cancel).await;
        server.faults().push(Fault::retry_after(1));
        let started = std::time::Instant::now();
        assert!(get(&endpoints[0], false).await.is_ok());
        assert!(started.elapsed() >= Duration::from_secs(1), "it waited");

        endpoints[0].limiter.pause_for(Duration::from_secs(15));
        let waiting = tokio::spawn({
            let endpoint = endpoints[1].clone();
            async move { get(&endpoint, false).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("shutdown does not wait for the pause")
            .expect("joins");
        assert!(matches!(stopped, Err(HttpError::Cancelled)), "{stopped:?}");
    }

    #[tokio::test]
    async fn a_redirect_is_reported_with_where_it_points_never_followed() {
        let cancel = CancellationToken::new();
        let (server, endpoints) = account(1, &cancel).await;
        let location = "https://elsewhere.example/login?token=abc";
        server.faults().push(Fault::Redirect(location.to_owned()));

        let error = get(&endpoints[0], false).await.expect_err("not followed");

        println!("{error}");
        let text = error.to_string();
        assert!(text.contains("HTTP 302"), "{text}");
        assert!(text.contains("https://elsewhere.example/login"), "{text}");
        assert!(!text.contains("token"), "the query stays out: {text}");
        assert_eq!(server.requests().len(), 1);
    }

    #[test]
    fn only_passing_failures_are_retryable() {
        let status = |code: u16| HttpError::Status {
            status: StatusCode::from_u16(code).expect("valid code"),
            retry_after: None,
            message: String::new(),
        };
        assert!(status(429).is_retryable());
        assert!(status(408).is_retryable());
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(HttpError::Timeout.is_retryable());
        assert!(HttpError::Connect("reset".into()).is_retryable());
        assert!(!HttpError::BodyTooLarge { limit: 1 }.is_retryable());
    }

    #[test]
    fn a_refused_tls_certificate_is_told_apart_and_never_retried() {
        let unknown_issuer = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);

        assert!(refused_certificate(&unknown_issuer));
        assert!(!refused_certificate(&reset));
        assert!(!HttpError::Certificate("UnknownIssuer".into()).is_retryable());
    }

    #[test]
    fn the_remote_message_comes_from_the_error_field_or_the_body() {
        assert_eq!(
            remote_message(br#"{"error":"Invalid credentials"}"#),
            "Invalid credentials"
        );
        assert_eq!(
            remote_message(b"<html>\n  Bad   Gateway</html>"),
            "<html> Bad Gateway</html>"
        );
        assert_eq!(remote_message(b""), "(empty body)");
        assert!(remote_message(&[b'x'; 1000]).ends_with('…'));
    }
}
