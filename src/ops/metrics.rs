//! `GET /metrics` in the Prometheus text format (OpenMetrics), when `daemon.metrics_listen` is
//! set: the contract's families, kept in one registry that the daemon updates through the small
//! functions below.
//!
//! The crate is `prometheus-client`, the Prometheus project's own Rust client: maintained with
//! the format, no default dependencies, no global registry of its own. (The older `prometheus`
//! crate pulls in protobuf by default and is kept by one company.)
//!
//! Per-target, per-source and per-order-feed figures are read back from the database after each
//! cycle ([`refresh`]), so they always say what `status` says; requests and retries are counted
//! as they happen ([`request`], [`retry`]) under the endpoint that sent them. A labelled family
//! shows once it has a sample (the retries of an endpoint after its first retry), as Prometheus
//! clients do.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::store::db::Connection;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::http::metrics::{EndpointCode, EndpointLabel, REQUESTS, RETRIES};
use crate::ops::report::CycleReport;
use crate::store::{self, StoreError};

mod serve;

pub use crate::http::metrics::{request, retry};
pub use serve::serve;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabel {
    feed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

type Seconds = Gauge<f64, AtomicU64>;

struct Metrics {
    registry: Registry,
    target_pending: Family<TargetLabel, Gauge>,
    target_held: Family<TargetLabel, Gauge>,
    target_last_success: Family<TargetLabel, Seconds>,
    source_last_fetch: Family<SourceLabel, Seconds>,
    source_skus: Family<SourceLabel, Gauge>,
    feed_last_read: Family<FeedLabel, Seconds>,
    feed_failing: Family<FeedLabel, Gauge>,
    feed_unreadable: Family<FeedLabel, Gauge>,
    requests: Family<EndpointCode, Counter>,
    retries: Family<EndpointLabel, Counter>,
    cycle_duration: Histogram,
    reservations_open: Gauge,
    reservations_stuck: Gauge,
    relay_orders: Family<StateLabel, Gauge>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Whether a listener serves the metrics: without one, [`refresh`] skips its database read.
static SERVED: AtomicBool = AtomicBool::new(false);

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let metrics = Metrics {
            target_pending: Family::default(),
            target_held: Family::default(),
            target_last_success: Family::default(),
            source_last_fetch: Family::default(),
            source_skus: Family::default(),
            feed_last_read: Family::default(),
            feed_failing: Family::default(),
            feed_unreadable: Family::default(),
            // Counted where requests are sent (see `http::metrics`).
            requests: REQUESTS.clone(),
            retries: RETRIES.clone(),
            // 0.1 s to about 14 minutes.
            cycle_duration: Histogram::new(exponential_buckets(0.1, 2.0, 14)),
            reservations_open: Gauge::default(),
            reservations_stuck: Gauge::default(),
            relay_orders: Family::default(),
            registry: Registry::default(),
        };
        let m = &metrics;
        registry.register(
            "invsync_target_pending_skus",
            "Changes a target has not acknowledged yet",
            m.target_pending.clone(),
        );
        registry.register(
            "invsync_target_held",
            "1 while the mass-zero guard holds the target",
            m.target_held.clone(),
        );
        registry.register(
            "invsync_target_last_success_timestamp_seconds",
            "When the target last acknowledged a push",
            m.target_last_success.clone(),
        );
        registry.register(
            "invsync_source_last_fetch_timestamp_seconds",
            "When the source was last fetched completely",
            m.source_last_fetch.clone(),
        );
        registry.register(
            "invsync_source_skus",
            "SKUs in the source's last complete fetch",
            m.source_skus.clone(),
        );
        registry.register(
            "invsync_feed_last_read_timestamp_seconds",
            "When the order feed's lists were last read completely",
            m.feed_last_read.clone(),
        );
        registry.register(
            "invsync_feed_failing",
            "1 while the order feed's last read failed",
            m.feed_failing.clone(),
        );
        registry.register(
            "invsync_feed_unreadable_orders",
            "Orders of the feed's last complete read that could not be read whole",
            m.feed_unreadable.clone(),
        );
        registry.register(
            "invsync_requests",
            "HTTP requests by endpoint and status code (or error)",
            m.requests.clone(),
        );
        registry.register(
            "invsync_retries",
            "HTTP requests tried again, by endpoint",
            m.retries.clone(),
        );
        registry.register(
            "invsync_cycle_duration_seconds",
            "How long sync cycles take",
            m.cycle_duration.clone(),
        );
        registry.register(
            "invsync_reservations_open",
            "Open order reservations",
            m.reservations_open.clone(),
        );
        registry.register(
            "invsync_reservations_stuck",
            "Reservations of orders open long past their dispatch date",
            m.reservations_stuck.clone(),
        );
        registry.register(
            "invsync_relay_orders",
            "Dropship relay orders by state",
            m.relay_orders.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

/// A cycle ended: its duration goes into the histogram.
pub fn cycle_finished(report: &CycleReport) {
    METRICS
        .cycle_duration
        .observe(report.duration.as_secs_f64());
}

/// Reservations now: open ones, and those stuck past their dispatch date (for the order feeds).
pub fn reservations(open: i64, stuck: i64) {
    METRICS.reservations_open.set(open);
    METRICS.reservations_stuck.set(stuck);
}

/// The relay's orders now, by state (`placed`, `waiting`, `manual`, …): all of them at once.
pub fn relay_orders(by_state: &[(&str, i64)]) {
    METRICS.relay_orders.clear();
    for (state, count) in by_state {
        METRICS
            .relay_orders
            .get_or_create(&StateLabel {
                state: (*state).to_owned(),
            })
            .set(*count);
    }
}

/// Whether a listener serves the metrics.
pub fn served() -> bool {
    SERVED.load(Ordering::Relaxed)
}

/// Reads each target's, source's and order feed's figures from the database into the gauges
/// (after each cycle): exactly what `status` reads, so the two never disagree.
pub fn refresh(conn: &Connection) -> Result<(), StoreError> {
    let m = &*METRICS;
    let targets = store::reads::targets(conn)?;
    let sources = store::reads::sources(conn)?;
    let feeds = store::feeds(conn)?;
    for family in [&m.target_pending, &m.target_held] {
        family.clear();
    }
    m.target_last_success.clear();
    m.source_last_fetch.clear();
    m.source_skus.clear();
    m.feed_last_read.clear();
    m.feed_failing.clear();
    m.feed_unreadable.clear();
    for row in targets {
        let label = TargetLabel { target: row.name };
        m.target_pending.get_or_create(&label).set(row.pending);
        m.target_held
            .get_or_create(&label)
            .set(i64::from(row.held.is_some()));
        if let Some(at) = row.last_success_at {
            m.target_last_success
                .get_or_create(&label)
                .set(at as f64 / 1000.0);
        }
    }
    for row in sources {
        let label = SourceLabel { source: row.name };
        m.source_skus.get_or_create(&label).set(row.skus);
        if let Some(at) = row.last_fetch_at {
            m.source_last_fetch
                .get_or_create(&label)
                .set(at as f64 / 1000.0);
        }
    }
    for row in feeds {
        let label = FeedLabel { feed: row.name };
        m.feed_failing
            .get_or_create(&label)
            .set(i64::from(row.last_error.is_some()));
        m.feed_unreadable
            .get_or_create(&label)
            .set(i64::try_from(row.unreadable.len()).unwrap_or(i64::MAX));
        if let Some(at) = row.last_read_at {
            m.feed_last_read
                .get_or_create(&label)
                .set(at as f64 / 1000.0);
        }
    }
    Ok(())
}

/// The metrics in the text format.
pub fn render() -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &METRICS.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_retries_are_counted_per_endpoint_in_the_text_format() {
        request("target hardtofind", "503");
        retry("target hardtofind");
        relay_orders(&[("manual", 2)]);

        let page = render();

        println!("{page}");
        for sample in [
            "invsync_requests_total{endpoint=\"target hardtofind\",code=\"503\"} 1",
            "invsync_retries_total{endpoint=\"target hardtofind\"} 1",
            "invsync_relay_orders{state=\"manual\"} 2",
            "# TYPE invsync_cycle_duration_seconds histogram",
            // Present whatever their value: other tests of this process run cycles that hold
            // reservations (the engines' conformance test).
            "invsync_reservations_open ",
            "invsync_reservations_stuck ",
            "# EOF",
        ] {
            assert!(page.contains(sample), "{sample} in\n{page}");
        }
    }
}
