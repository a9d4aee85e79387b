//! What every request counts as it happens, under the endpoint that sent it: the
//! `invsync_requests` and `invsync_retries` families. They live here, below everything that
//! sends a request; `ops::metrics` registers them with the others and serves them.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointCode {
    endpoint: String,
    code: String,
}

/// HTTP requests by endpoint and status code (or error). A clone shares the counts: the one
/// `ops::metrics` registers is this one.
pub static REQUESTS: LazyLock<Family<EndpointCode, Counter>> = LazyLock::new(Family::default);

/// HTTP requests tried again, by endpoint (shared as [`REQUESTS`] is).
pub static RETRIES: LazyLock<Family<EndpointLabel, Counter>> = LazyLock::new(Family::default);

/// One HTTP attempt to `endpoint` (`source warehouse`, `target hardtofind`, `orders hardtofind`:
/// the endpoint that sent it, whoever it shares a login with) ended with `code` (`200`, `503`,
/// `timeout`, `error`).
pub fn request(endpoint: &str, code: &str) {
    REQUESTS
        .get_or_create(&EndpointCode {
            endpoint: endpoint.to_owned(),
            code: code.to_owned(),
        })
        .inc();
}

/// One request to `endpoint` is tried again.
pub fn retry(endpoint: &str) {
    RETRIES
        .get_or_create(&EndpointLabel {
            endpoint: endpoint.to_owned(),
        })
        .inc();
}
