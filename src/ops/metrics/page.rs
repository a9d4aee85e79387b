//! What the page `GET /metrics` is made of: its families, a sample's labels and value, and the
//! cycles' histogram. Which shops it shows, and their samples, are the parent module's.

use prometheus_client::encoding::{MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// The cycles' durations: a histogram of fixed buckets, 0.1 s to about 14 minutes, doubling.
/// (The crate's own `Histogram` keeps its buckets to itself, and a page that writes every shop's
/// samples under one family needs them.)
#[derive(Debug, Clone)]
pub(super) struct Durations {
    sum: f64,
    count: u64,
    /// Each bucket's upper bound and the observations in it (not below it: the encoder adds
    /// them up), `+Inf` last.
    buckets: Vec<(f64, u64)>,
}

impl Durations {
    pub(super) fn new() -> Durations {
        let bounds = std::iter::successors(Some(0.1_f64), |b| Some(b * 2.0)).take(14);
        Durations {
            sum: 0.0,
            count: 0,
            buckets: bounds.chain([f64::INFINITY]).map(|b| (b, 0)).collect(),
        }
    }

    pub(super) fn observe(&mut self, seconds: f64) {
        self.sum += seconds;
        self.count += 1;
        if let Some(bucket) = self.buckets.iter_mut().find(|(bound, _)| seconds <= *bound) {
            bucket.1 += 1;
        }
    }
}

/// The families, in the page's order: name, help, kind.
pub(super) const FAMILIES: [(&str, &str, MetricType); 14] = [
    (
        "invsync_target_pending_skus",
        "Changes a target has not acknowledged yet",
        MetricType::Gauge,
    ),
    (
        "invsync_target_held",
        "1 while the mass-zero guard holds the target",
        MetricType::Gauge,
    ),
    (
        "invsync_target_last_success_timestamp_seconds",
        "When the target last acknowledged a push",
        MetricType::Gauge,
    ),
    (
        "invsync_source_last_fetch_timestamp_seconds",
        "When the source was last fetched completely",
        MetricType::Gauge,
    ),
    (
        "invsync_source_skus",
        "SKUs in the source's last complete fetch",
        MetricType::Gauge,
    ),
    (
        "invsync_feed_last_read_timestamp_seconds",
        "When the order feed's lists were last read completely",
        MetricType::Gauge,
    ),
    (
        "invsync_feed_failing",
        "1 while the order feed's last read failed",
        MetricType::Gauge,
    ),
    (
        "invsync_feed_unreadable_orders",
        "Orders of the feed's last complete read that could not be read whole",
        MetricType::Gauge,
    ),
    (
        "invsync_requests",
        "HTTP requests by endpoint and status code (or error)",
        MetricType::Counter,
    ),
    (
        "invsync_retries",
        "HTTP requests tried again, by endpoint",
        MetricType::Counter,
    ),
    (
        "invsync_cycle_duration_seconds",
        "How long sync cycles take",
        MetricType::Histogram,
    ),
    (
        "invsync_reservations_open",
        "Open order reservations",
        MetricType::Gauge,
    ),
    (
        "invsync_reservations_stuck",
        "Reservations of orders open long past their dispatch date",
        MetricType::Gauge,
    ),
    (
        "invsync_relay_orders",
        "Dropship relay orders by state",
        MetricType::Gauge,
    ),
];

/// One sample's labels (the family's own; the shop's goes first when the page is written).
pub(super) type Labels = Vec<(&'static str, String)>;

/// One sample's value, written as its family's kind.
pub(super) enum Value {
    /// A gauge's whole number.
    Int(i64),
    /// A gauge's seconds.
    Float(f64),
    /// A counter.
    Counter(u64),
    /// A histogram.
    Histogram(Durations),
}

impl Value {
    pub(super) fn write(&self, metric: &mut MetricEncoder) -> std::fmt::Result {
        match self {
            Value::Int(v) => metric.encode_gauge(v),
            Value::Float(v) => metric.encode_gauge(v),
            Value::Counter(v) => metric.encode_counter::<NoLabelSet, _, u64>(v, None),
            Value::Histogram(h) => {
                metric.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
            }
        }
    }
}
