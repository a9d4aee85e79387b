//! The HTTP plumbing shared by every simulator: a loopback hyper server
//! that records requests and applies [`Faults`], plus small JSON helpers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::AbortHandle;

use super::{Fault, Faults, MAINTENANCE_PAGE, MALFORMED_BODY, Recorded};

/// Largest request body a simulator reads; anything bigger is answered 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A parsed request handed to a simulator's handler.
#[derive(Debug)]
pub(crate) struct SimRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// How the simulator answers where the document is silent; `dialect.answer(point)` notes
    /// that the answer to `point` was used.
    pub dialect: super::dialect::Spoken,
}

impl SimRequest {
    /// The value of header `name` as a string, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A handler's answer: status, JSON body and any headers beyond `Content-Type`.
#[derive(Debug)]
pub(crate) struct SimResponse {
    pub status: u16,
    pub body: Bytes,
    pub headers: Vec<(&'static str, String)>,
}

impl SimResponse {
    /// Answer `status` with an already rendered JSON body (a `Bytes` is shared, not copied).
    pub fn raw(status: u16, body: impl Into<Bytes>) -> SimResponse {
        SimResponse {
            status,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// The same answer with header `name` added (a name or value that is not valid in a header
    /// is left out, as a server could not send it either).
    pub fn with_header(mut self, name: &'static str, value: String) -> SimResponse {
        self.headers.push((name, value));
        self
    }

    /// Answer `status` with `value` serialised as JSON.
    pub fn json(status: u16, value: &serde_json::Value) -> SimResponse {
        SimResponse::raw(status, value.to_string().into_bytes())
    }

    /// Answer `status` with `{"error": message}`.
    pub fn error(status: u16, message: impl AsRef<str>) -> SimResponse {
        SimResponse::json(status, &serde_json::json!({ "error": message.as_ref() }))
    }
}

/// `Err` with a `{"error": message}` answer, for handlers' early returns.
pub(crate) fn fail<T>(status: u16, message: impl AsRef<str>) -> Result<T, SimResponse> {
    Err(SimResponse::error(status, message))
}

/// Parse a JSON request body; `Ok(None)` when it is empty or blank, a 400
/// answer when it is not valid JSON of the expected shape.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<Option<T>, SimResponse> {
    match body.trim_ascii() {
        b"" => Ok(None),
        text => serde_json::from_slice(text)
            .map(Some)
            .or_else(|e| fail(400, format!("Invalid request body: {e}"))),
    }
}

/// The request-handling half of a simulator.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Answer one request (faults have already been applied).
    fn handle(&self, request: &SimRequest) -> SimResponse;
}

/// Append `s` to `out` as a JSON string literal (quoted and escaped).
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append an integer to `out`.
pub(crate) fn push_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(n.to_string().as_bytes());
}

#[derive(Debug, Default)]
struct Log {
    entries: Vec<(u64, Recorded)>,
}

/// Everything a connection task needs.
struct Shared {
    handler: Arc<dyn Handler>,
    faults: Faults,
    log: Mutex<Log>,
    next_seq: AtomicU64,
    recording: AtomicBool,
    dialect: super::dialect::Spoken,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, recorded: Recorded) -> Option<u64> {
        if !self.recording.load(Ordering::Relaxed) {
            return None;
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        self.log().entries.push((seq, recorded));
        Some(seq)
    }

    fn set_status(&self, seq: Option<u64>, status: u16) {
        let Some(seq) = seq else { return };
        let mut log = self.log();
        if let Ok(i) = log.entries.binary_search_by_key(&seq, |(s, _)| *s) {
            log.entries[i].1.status = status;
        }
    }
}

/// Stops the accept loop and all connections when the last handle drops.
struct Guard {
    accept: AbortHandle,
    _shutdown: watch::Sender<()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A running simulator server; clones share it, and it stops when the last
/// clone is dropped.
#[derive(Clone)]
pub(crate) struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _guard: Arc<Guard>,
}

/// Error returned by the hyper service to make hyper drop the connection.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("connection dropped by fault injection")]
    Dropped,
    #[error("reading the request body: {0}")]
    Body(String),
}

impl Server {
    /// Bind `127.0.0.1:port` (`0`: a free port) and serve `handler` on the current tokio runtime.
    pub async fn start(handler: Arc<dyn Handler>, port: u16) -> std::io::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            handler,
            faults: Faults::default(),
            log: Mutex::new(Log::default()),
            next_seq: AtomicU64::new(0),
            recording: AtomicBool::new(true),
            dialect: Default::default(),
        });
        let (shutdown, stop) = watch::channel(());
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stop));
        let guard = Guard {
            accept: accept.abort_handle(),
            _shutdown: shutdown,
        };
        Ok(Server {
            addr,
            shared,
            _guard: Arc::new(guard),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The fault injection controls.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The recorded requests, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .log()
            .entries
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Forget the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.log().entries.clear();
    }

    /// Turn recording on or off.
    pub fn set_recording(&self, enabled: bool) {
        self.shared.recording.store(enabled, Ordering::Relaxed);
    }

    /// The dialect it speaks, and what of it was used.
    pub fn dialect(&self) -> &super::dialect::Spoken {
        &self.shared.dialect
    }

    /// Recorded requests with this method whose path ends with `path_suffix`.
    pub fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.shared
            .log()
            .entries
            .iter()
            .filter(|(_, r)| r.method.eq_ignore_ascii_case(method) && r.path.ends_with(path_suffix))
            .count()
    }
}

/// Accept connections until aborted; each connection ends when `stop`'s
/// sender (held by the [`Guard`]) is dropped.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<()>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "simulator accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| serve(shared.clone(), req));
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = conn => {}
                _ = stop.changed() => {}
            }
        });
    }
}

fn build(status: u16, body: Bytes, retry_after: Option<&str>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(RETRY_AFTER, value);
    }
    response
}

async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ServeError> {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (n.as_str().to_string(), value)
        })
        .collect();
    let (body, too_large) = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => (collected.to_bytes(), false),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => (Bytes::new(), true),
        Err(e) => return Err(ServeError::Body(e.to_string())),
    };
    let seq = shared.record(Recorded {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers,
        body: body.clone(),
        status: 0,
    });
    let answer = |status: u16, body: Bytes, retry_after: Option<&str>| {
        let response = build(status, body, retry_after);
        shared.set_status(seq, response.status().as_u16());
        Ok(response)
    };
    if too_large {
        let body = SimResponse::error(413, "Request body too large").body;
        return answer(413, body, None);
    }

    let request = SimRequest {
        method,
        path,
        query,
        headers: parts.headers,
        body,
        dialect: shared.dialect.clone(),
    };
    let plan = shared.faults.plan(&request.method, &request.path);
    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    if let Some(status) = plan.down {
        let body = SimResponse::error(status, "Service unavailable (simulated outage)").body;
        return answer(status, body, None);
    }
    // An `AfterHandling` fault lets the handler apply the request now; its inner fault then
    // replaces the answer below.
    let (mut fault, mut handled) = (plan.fault, None);
    while let Some(Fault::AfterHandling(inner)) = fault {
        handled.get_or_insert_with(|| shared.handler.handle(&request));
        fault = Some(*inner);
    }
    match fault {
        Some(Fault::Status {
            status,
            body,
            retry_after,
        }) => return answer(status, Bytes::from(body), retry_after.as_deref()),
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Drop) => return Err(ServeError::Dropped),
        Some(Fault::Redirect(location)) => {
            let mut response = build(302, Bytes::new(), None);
            if let Ok(value) = hyper::header::HeaderValue::from_str(&location) {
                response
                    .headers_mut()
                    .insert(hyper::header::LOCATION, value);
            }
            shared.set_status(seq, 302);
            return Ok(response);
        }
        Some(Fault::Malformed) => {
            return answer(200, Bytes::from_static(MALFORMED_BODY.as_bytes()), None);
        }
        Some(Fault::Html) => {
            let mut response = build(200, Bytes::from_static(MAINTENANCE_PAGE.as_bytes()), None);
            let html = HeaderValue::from_static("text/html; charset=utf-8");
            response.headers_mut().insert(CONTENT_TYPE, html);
            shared.set_status(seq, 200);
            return Ok(response);
        }
        Some(Fault::Hang) => std::future::pending::<()>().await,
        Some(Fault::AfterHandling(_)) | None => {}
    }

    let response = handled.unwrap_or_else(|| shared.handler.handle(&request));
    let mut body = response.body;
    let json = !(response.headers.iter()).any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    let charset_bom = json
        && (200..300).contains(&response.status)
        && !body.is_empty()
        && request.dialect.answer("encoding").encoding == super::dialect::Encoding::CharsetBom;
    if charset_bom {
        // Where the documents are silent: a charset in the type, and a byte-order mark.
        let mut marked = Vec::with_capacity(body.len() + 3);
        marked.extend_from_slice(b"\xEF\xBB\xBF");
        marked.extend_from_slice(&body);
        body = Bytes::from(marked);
    }
    let mut built = answer(response.status, body, None)?;
    if charset_bom {
        let typed = HeaderValue::from_static("application/json; charset=utf-8");
        built.headers_mut().insert(CONTENT_TYPE, typed);
    }
    for (name, value) in response.headers {
        let name = hyper::header::HeaderName::from_bytes(name.as_bytes());
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(&value)) {
            built.headers_mut().append(name, value);
        }
    }
    Ok(built)
}
