//! The `/metrics` listener: a small HTTP/1 server on `daemon.metrics_listen`, answering
//! `GET /metrics` and nothing else, until shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// What Prometheus asks for and gets: the OpenMetrics text format, which it reads natively.
const CONTENT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Connections served at once. A scraper needs one; the bound keeps idle or slow clients (a
/// slowloris, a port scan) from taking the file descriptors the sync needs for its own
/// connections: past it, new connections wait in the kernel's backlog, costing the daemon none.
const MAX_CONNECTIONS: usize = 32;

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one connection may stay open, requests included: a scraper reconnects.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Binds `addr` and serves the metrics until `cancel`; the address it listens on (the port
/// chosen when `addr` asked for port 0).
pub async fn serve(addr: SocketAddr, cancel: CancellationToken) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    super::SERVED.store(true, Ordering::Relaxed);
    tokio::spawn(accept_loop(listener, cancel));
    Ok(bound)
}

/// Accepts while a connection slot is free. An accept that fails (out of file descriptors:
/// every later one would fail at once too) is waited out, longer each time, and said once a
/// minute with how many failed, never once per attempt.
async fn accept_loop(listener: TcpListener, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut failures = AcceptFailures::default();
    loop {
        let slot = tokio::select! {
            () = cancel.cancelled() => return,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    failures.succeeded();
                    stream
                }
                Err(e) => {
                    let pause = failures.failed(&e);
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = tokio::time::sleep(pause) => continue,
                    }
                }
            },
        };
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), service_fn(answer));
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            drop(slot);
        });
    }
}

/// Failed accepts since the last one that worked, and when they were last said.
#[derive(Default)]
struct AcceptFailures {
    count: u64,
    unsaid: u64,
    said_at: Option<Instant>,
}

impl AcceptFailures {
    /// Notes a failure; how long to wait before the next accept (10 ms doubling to 1 s).
    fn failed(&mut self, error: &std::io::Error) -> Duration {
        self.count += 1;
        self.unsaid += 1;
        if self
            .said_at
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
        {
            tracing::warn!(error = %error, failures = self.unsaid,
                "metrics: could not accept connections; waiting before trying again (said at most once a minute)");
            (self.unsaid, self.said_at) = (0, Some(Instant::now()));
        }
        let exponent = u32::try_from(self.count.min(7)).unwrap_or(7);
        Duration::from_millis(10 * 2u64.pow(exponent)).min(Duration::from_secs(1))
    }

    fn succeeded(&mut self) {
        self.count = 0;
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, super::render()),
        (_, "/metrics") => (StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_owned()),
        _ => (StatusCode::NOT_FOUND, "see /metrics\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if status == StatusCode::OK {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT));
    }
    Ok(response)
}
