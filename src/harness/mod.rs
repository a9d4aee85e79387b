//! The harness every simulator shares (each service's own simulator is its folder's `sim/`),
//! for tests and demos; `sim` gathers the simulators and this harness in one place.
//! It knows no service, so that every service's simulator can build on it.
//!
//! Each simulator is a small HTTP/1 server bound to `127.0.0.1:0` (or a given
//! port, for `invsync sim`) on the current tokio runtime. It records every request, can be told to misbehave
//! through [`Faults`], and exposes test hooks to read and change its state.
//! Simulators are cheap to clone; the server stops when the last clone drops.

pub mod dialect;
pub mod postgres;
pub(crate) mod server;

pub use dialect::Dialect;

pub use server::MAX_BODY_BYTES;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

/// The body a [`Fault::Malformed`] answer carries: truncated, invalid JSON.
pub const MALFORMED_BODY: &str = "{\"data\": {\"1\": 5,";

/// The body a [`Fault::Html`] answer carries: a proxy's maintenance page.
pub const MAINTENANCE_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Down for maintenance</title></head>\n<body><h1>We'll be back soon</h1></body></html>\n";

/// A misbehaviour a simulator can be told to show instead of (or before)
/// answering a request normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and JSON body; with `retry_after` set, add a
    /// `Retry-After` header (raw header value, e.g. "2" or an HTTP date).
    Status {
        /// HTTP status code to answer with (an invalid code becomes 500).
        status: u16,
        /// Body to send, normally JSON.
        body: String,
        /// Raw `Retry-After` header value, if any.
        retry_after: Option<String>,
    },
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Answer 200 with a body that is not valid JSON, e.g. `{"data": {"1": 5,`.
    Malformed,
    /// Answer 200 with an HTML maintenance page (`text/html`), as a proxy in front of the
    /// service does while it is down: nothing was applied.
    Html,
    /// Accept the request and never answer (until the simulator is dropped).
    Hang,
    /// Answer `302 Found` with this `Location`, as a misconfigured proxy or a hijacked DNS
    /// name might, to check that credentials are never carried to another host.
    Redirect(String),
    /// Let the simulator apply the request first, then answer with the inner fault instead of
    /// its own answer: `AfterHandling(Box::new(Fault::Drop))` is a write that happened but whose
    /// answer was lost, the case a client of a non-idempotent request must survive.
    AfterHandling(Box<Fault>),
}

impl Fault {
    /// A [`Fault::Status`] with a JSON `{"error": message}` body and no `Retry-After`.
    pub fn status(status: u16, message: &str) -> Fault {
        Fault::Status {
            status,
            body: serde_json::json!({ "error": message }).to_string(),
            retry_after: None,
        }
    }

    /// A 429 asking to come back after `seconds` (a far one: "retry tomorrow").
    pub fn retry_after(seconds: u64) -> Fault {
        Fault::Status {
            status: 429,
            body: serde_json::json!({ "error": "Too many requests, come back later" }).to_string(),
            retry_after: Some(seconds.to_string()),
        }
    }

    /// Answer 200 with this body instead of the simulator's own: an answer of the right shape
    /// with bad records in it (a quantity of `1.5`, `"7"` or `null`, an empty SKU).
    pub fn answer(body: impl Into<String>) -> Fault {
        Fault::Status {
            status: 200,
            body: body.into(),
            retry_after: None,
        }
    }
}

/// A queued one-shot fault, optionally restricted to one method and path suffix.
#[derive(Debug)]
struct Queued {
    filter: Option<(String, String)>,
    fault: Fault,
}

#[derive(Debug, Default)]
struct FaultState {
    queue: VecDeque<Queued>,
    down: Option<u16>,
    latency: Duration,
}

/// What a request meets before its handler runs, decided by [`Faults::plan`].
#[derive(Debug)]
pub(crate) struct Plan {
    /// Delay to apply first (the configured latency).
    pub latency: Duration,
    /// The status every request gets while the simulator is down.
    pub down: Option<u16>,
    /// The one-shot fault for this request, if one matched.
    pub fault: Option<Fault>,
}

/// Fault injection controls shared by all simulators (cheap to clone; all
/// clones control the same simulator).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a one-shot fault for the next request (FIFO with other queued faults).
    pub fn push(&self, fault: Fault) {
        self.lock().queue.push_back(Queued {
            filter: None,
            fault,
        });
    }

    /// Queue a one-shot fault for the next request whose method equals
    /// `method` and whose path ends with `path_suffix`, e.g. `("POST", "/batch")`.
    pub fn push_for(&self, method: &str, path_suffix: &str, fault: Fault) {
        self.lock().queue.push_back(Queued {
            filter: Some((method.to_string(), path_suffix.to_string())),
            fault,
        });
    }

    /// While `Some(status)`, answer every request with that status (queued
    /// faults are kept for later); `None` brings the simulator back up.
    pub fn set_down(&self, status: Option<u16>) {
        self.lock().down = status;
    }

    /// Add this delay to every request (`Duration::ZERO` removes it).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Number of queued one-shot faults not yet applied.
    pub fn pending(&self) -> usize {
        self.lock().queue.len()
    }

    /// Forget queued faults, bring the simulator up and remove the latency.
    pub fn clear(&self) {
        *self.lock() = FaultState::default();
    }

    /// Decide what happens to a request; consumes a matching queued fault
    /// unless the simulator is down.
    pub(crate) fn plan(&self, method: &str, path: &str) -> Plan {
        let mut state = self.lock();
        let fault = if state.down.is_some() {
            None
        } else {
            let position = state.queue.iter().position(|q| match &q.filter {
                None => true,
                Some((m, suffix)) => m.eq_ignore_ascii_case(method) && path.ends_with(suffix),
            });
            position
                .and_then(|i| state.queue.remove(i))
                .map(|q| q.fault)
        };
        Plan {
            latency: state.latency,
            down: state.down,
            fault,
        }
    }
}

/// One request as a simulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// HTTP method, e.g. "POST".
    pub method: String,
    /// Request path without the query string.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Request headers (names lower-case, values lossily decoded).
    pub headers: Vec<(String, String)>,
    /// The full request body.
    pub body: Bytes,
    /// Status answered; 0 when the connection was dropped or the request hung.
    pub status: u16,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Implements the plumbing methods every simulator shares by delegating to
/// its `server` field.
macro_rules! common_methods {
    ($sim:ty) => {
        impl $sim {
            /// The address the simulator listens on.
            pub fn addr(&self) -> std::net::SocketAddr {
                self.server.addr()
            }

            /// Fault injection controls for this simulator.
            pub fn faults(&self) -> &$crate::harness::Faults {
                self.server.faults()
            }

            /// Every request recorded so far, in arrival order.
            pub fn requests(&self) -> Vec<$crate::harness::Recorded> {
                self.server.requests()
            }

            /// Forget the recorded requests.
            pub fn clear_requests(&self) {
                self.server.clear_requests()
            }

            /// Turn request recording on or off (on by default; turn it off
            /// for long benchmarks to save memory).
            pub fn set_recording(&self, enabled: bool) {
                self.server.set_recording(enabled)
            }

            /// Speak `dialect` from now on (see [`crate::harness::dialect`]).
            pub fn set_dialect(&self, dialect: $crate::harness::Dialect) {
                self.server.dialect().set(dialect)
            }

            /// Every `(point, value)` of its dialect it has answered with so far.
            pub fn dialect_used(&self) -> std::collections::BTreeSet<(&'static str, &'static str)> {
                self.server.dialect().used()
            }

            /// Number of recorded requests with this method (case-insensitive)
            /// whose path ends with `path_suffix`.
            pub fn count(&self, method: &str, path_suffix: &str) -> usize {
                self.server.count(method, path_suffix)
            }
        }
    };
}
pub(crate) use common_methods;

#[cfg(test)]
mod tests {
    use super::server::{Handler, Server, SimRequest, SimResponse, push_json_str};
    use super::*;
    use std::time::Instant;

    struct Echo;

    impl Handler for Echo {
        fn handle(&self, request: &SimRequest) -> SimResponse {
            SimResponse::json(200, &serde_json::json!({ "path": request.path }))
        }
    }

    async fn start() -> (Server, reqwest::Client) {
        let server = Server::start(Arc::new(Echo), 0).await.expect("start");
        (server, reqwest::Client::new())
    }

    async fn status(client: &reqwest::Client, method: reqwest::Method, url: String) -> u16 {
        let response = client.request(method, url).send().await.expect("an answer");
        response.status().as_u16()
    }

    #[tokio::test]
    async fn a_dropped_fault_closes_the_connection() {
        let (server, client) = start().await;
        server.faults().push(Fault::Drop);
        let url = format!("{}/x", server.base_url());
        assert!(client.get(&url).send().await.is_err());
        assert_eq!(status(&client, reqwest::Method::GET, url).await, 200);
        let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![0, 200]);
    }

    #[tokio::test]
    async fn a_status_fault_carries_retry_after() {
        let (server, client) = start().await;
        let body = r#"{"error":"slow down"}"#.to_string();
        let retry_after = Some("2".to_string());
        server.faults().push(Fault::Status {
            status: 429,
            body,
            retry_after,
        });
        server.faults().push(Fault::status(500, "boom"));
        let response = client
            .get(server.base_url())
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 429);
        let header = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok());
        assert_eq!(header, Some("2"));
        assert_eq!(
            response.text().await.expect("body"),
            r#"{"error":"slow down"}"#
        );
        let response = client
            .get(server.base_url())
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 500);
        assert!(response.headers().get("retry-after").is_none());
        assert_eq!(
            status(&client, reqwest::Method::GET, server.base_url()).await,
            200
        );
    }

    #[tokio::test]
    async fn a_targeted_fault_waits_for_a_matching_request() {
        let (server, client) = start().await;
        server
            .faults()
            .push_for("POST", "/batch", Fault::status(503, "busy"));
        let batch = format!("{}/api/batch", server.base_url());
        assert_eq!(
            status(&client, reqwest::Method::GET, batch.clone()).await,
            200
        );
        let other = format!("{}/other", server.base_url());
        assert_eq!(status(&client, reqwest::Method::POST, other).await, 200);
        assert_eq!(server.faults().pending(), 1);
        assert_eq!(
            status(&client, reqwest::Method::POST, batch.clone()).await,
            503
        );
        assert_eq!(status(&client, reqwest::Method::POST, batch).await, 200);
        assert_eq!(server.count("post", "/batch"), 2);
    }

    #[tokio::test]
    async fn an_after_handling_fault_applies_the_request_then_loses_the_answer() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl Handler for Count {
            fn handle(&self, _: &SimRequest) -> SimResponse {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                SimResponse::raw(200, "{}")
            }
        }
        let count = Arc::new(Count(Default::default()));
        let (server, client) = (
            Server::start(count.clone(), 0).await.expect("start"),
            reqwest::Client::new(),
        );
        let lost = |fault| Fault::AfterHandling(Box::new(fault));
        server.faults().push(lost(Fault::Drop));
        server.faults().push(lost(lost(Fault::status(500, "oops"))));
        assert!(client.put(server.base_url()).send().await.is_err());
        assert_eq!(
            status(&client, reqwest::Method::PUT, server.base_url()).await,
            500
        );
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_malformed_fault_answers_invalid_json() {
        let (server, client) = start().await;
        server.faults().push(Fault::Malformed);
        let response = client
            .get(server.base_url())
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 200);
        let text = response.text().await.expect("body");
        assert_eq!(text, MALFORMED_BODY);
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());
    }

    #[tokio::test]
    async fn a_hung_request_never_answers_and_a_delayed_one_answers_late() {
        let (server, client) = start().await;
        server.faults().push(Fault::Hang);
        let hung = client
            .get(server.base_url())
            .timeout(Duration::from_millis(200));
        assert!(hung.send().await.is_err_and(|e| e.is_timeout()));
        server
            .faults()
            .push(Fault::Delay(Duration::from_millis(150)));
        let started = Instant::now();
        assert_eq!(
            status(&client, reqwest::Method::GET, server.base_url()).await,
            200
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
        let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![0, 200]);
    }

    #[tokio::test]
    async fn a_down_simulator_answers_every_request_until_brought_back() {
        let (server, client) = start().await;
        server.faults().push(Fault::status(500, "later"));
        server.faults().set_down(Some(503));
        for _ in 0..2 {
            assert_eq!(
                status(&client, reqwest::Method::GET, server.base_url()).await,
                503
            );
        }
        server.faults().set_down(None);
        assert_eq!(
            status(&client, reqwest::Method::GET, server.base_url()).await,
            500
        );
        server.faults().set_latency(Duration::from_millis(100));
        let started = Instant::now();
        assert_eq!(
            status(&client, reqwest::Method::GET, server.base_url()).await,
            200
        );
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn requests_are_recorded_with_query_headers_and_body() {
        let (server, client) = start().await;
        let url = format!("{}/api/stock?sku=1,2", server.base_url());
        let request = client.post(url).header("X-Test", "yes").body("hello");
        assert_eq!(request.send().await.expect("an answer").status(), 200);
        let recorded = server.requests();
        assert_eq!(recorded.len(), 1);
        let first = &recorded[0];
        assert_eq!(
            (first.method.as_str(), first.path.as_str()),
            ("POST", "/api/stock")
        );
        assert_eq!(first.query.as_deref(), Some("sku=1,2"));
        assert_eq!(
            (first.header("x-test"), &first.body[..]),
            (Some("yes"), &b"hello"[..])
        );
        server.clear_requests();
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn dropping_the_last_handle_stops_the_server() {
        let (server, client) = start().await;
        let (addr, url, clone) = (server.addr(), server.base_url(), server.clone());
        drop(server);
        assert_eq!(
            status(&client, reqwest::Method::GET, url.clone()).await,
            200
        );
        drop(clone);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
        assert!(
            client.get(url).send().await.is_err(),
            "kept-alive connections close too"
        );
    }

    #[test]
    fn json_strings_are_escaped_like_serde_json() {
        for s in [
            "plain",
            "quote \" back \\ slash",
            "ctl \u{1} \n \t \r",
            "ünï ☃ \u{7f}",
        ] {
            let mut out = Vec::new();
            push_json_str(&mut out, s);
            let expected = serde_json::to_vec(s).expect("serialise");
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected)
            );
        }
    }
}
