//! What every request counts as it happens, under the endpoint that sent it: a [`Tally`]. The
//! one that counts for the metrics is a shop's (`ops::metrics`, the `invsync_requests` and
//! `invsync_retries` families), handed to each endpoint the configuration builds; this module
//! lives below everything that sends a request, and knows nothing of shops.

use std::fmt::Debug;

/// Counts requests and retries, by endpoint.
pub trait Tally: Send + Sync + Debug {
    /// One HTTP attempt to `endpoint` (`source warehouse`, `target hardtofind`, `orders
    /// hardtofind`: the endpoint that sent it, whoever it shares a login with) ended with `code`
    /// (`200`, `503`, `timeout`, `error`).
    fn request(&self, endpoint: &str, code: &str);

    /// One request to `endpoint` is tried again.
    fn retry(&self, endpoint: &str);
}

/// Counts nothing: the endpoints of the simulators' own clients and of unit tests.
#[derive(Debug)]
pub struct Uncounted;

impl Tally for Uncounted {
    fn request(&self, _endpoint: &str, _code: &str) {}

    fn retry(&self, _endpoint: &str) {}
}
