//! `GET /metrics` in the Prometheus text format (OpenMetrics), when `daemon.metrics_listen` (or
//! a fleet's `fleet.metrics_listen`) is set: the contract's families, each shop's figures kept in
//! its own [`ShopMetrics`], which its engine updates through the small methods below.
//!
//! The crate is `prometheus-client`, the Prometheus project's own Rust client: maintained with
//! the format, no default dependencies, no global registry of its own. (The older `prometheus`
//! crate pulls in protobuf by default and is kept by one company.)
//!
//! Per-target, per-source and per-order-feed figures are read back from the database after each
//! cycle ([`ShopMetrics::refresh`]), so they always say what `status` says; requests and retries
//! are counted as they happen (a shop's metrics are the [`Tally`] of its endpoints) under the
//! endpoint that sent them. A labelled family shows once it has a sample (the retries of an
//! endpoint after its first retry), as Prometheus clients do.
//!
//! **Shops.** The one shop of `invsync run` labels its samples with nothing more. A fleet worker
//! serves several, and each sample of a shop then carries `shop="NAME"` first: one family, one
//! `# TYPE` line, the samples of every shop under it (the format allows a family once). A shop
//! shows while something of it lives (its engine, its endpoints): a shop handed over to another
//! worker leaves this worker's page with its engine, so that two workers never both say one
//! shop's gauges. Its counters start again from zero on the worker that takes it, which
//! Prometheus reads as a counter reset, as after a restart.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

use crate::http::metrics::Tally;
use crate::ops::report::CycleReport;
use crate::store::db::Connection;
use crate::store::{self, StoreError};

mod page;
mod serve;

use page::{Durations, FAMILIES, Labels, Value};
pub use serve::serve;

/// Whether a listener serves the metrics: without one, [`ShopMetrics::refresh`] skips its
/// database read.
static SERVED: AtomicBool = AtomicBool::new(false);

/// Every shop's metrics that may still be alive (see [`ShopMetrics::of`]).
static SHOPS: Mutex<Vec<Weak<ShopMetrics>>> = Mutex::new(Vec::new());

/// One shop's figures, as the page shows them.
#[derive(Debug)]
pub struct ShopMetrics {
    /// The shop's name in a fleet; `None` for the one shop of `invsync run`.
    shop: Option<String>,
    figures: Mutex<Figures>,
    /// Attempts by (endpoint, code).
    requests: Mutex<BTreeMap<(String, String), u64>>,
    /// Retries by endpoint.
    retries: Mutex<BTreeMap<String, u64>>,
    cycle_duration: Mutex<Durations>,
}

/// What the database said at the last refresh, and what the last cycle said of reservations
/// and of the relay.
#[derive(Debug, Default)]
struct Figures {
    targets: Vec<TargetFigures>,
    sources: Vec<SourceFigures>,
    feeds: Vec<FeedFigures>,
    reservations_open: i64,
    reservations_stuck: i64,
    relay_orders: Vec<(String, i64)>,
}

#[derive(Debug)]
struct TargetFigures {
    name: String,
    pending: i64,
    held: bool,
    last_success: Option<f64>,
}

#[derive(Debug)]
struct SourceFigures {
    name: String,
    skus: i64,
    last_fetch: Option<f64>,
}

#[derive(Debug)]
struct FeedFigures {
    name: String,
    failing: bool,
    unreadable: i64,
    last_read: Option<f64>,
}

impl ShopMetrics {
    /// The metrics of `shop` (`None`: the one shop of `invsync run`): the same ones while any
    /// holder of them lives, so that the engines of a reload, old and new, count together.
    pub fn of(shop: Option<&str>) -> Arc<ShopMetrics> {
        let mut shops = SHOPS.lock().unwrap_or_else(PoisonError::into_inner);
        let live = shops
            .iter()
            .filter_map(Weak::upgrade)
            .find(|m| m.shop.as_deref() == shop);
        if let Some(live) = live {
            return live;
        }
        shops.retain(|m| m.strong_count() > 0);
        let metrics = Arc::new(ShopMetrics {
            shop: shop.map(str::to_owned),
            figures: Mutex::default(),
            requests: Mutex::default(),
            retries: Mutex::default(),
            cycle_duration: Mutex::new(Durations::new()),
        });
        shops.push(Arc::downgrade(&metrics));
        metrics
    }

    /// A cycle ended: its duration goes into the histogram.
    pub fn cycle_finished(&self, report: &CycleReport) {
        self.cycle_duration
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(report.duration.as_secs_f64());
    }

    /// Reservations now: open ones, and those stuck past their dispatch date (for the order
    /// feeds).
    pub fn reservations(&self, open: i64, stuck: i64) {
        let mut figures = self.figures();
        figures.reservations_open = open;
        figures.reservations_stuck = stuck;
    }

    /// The relay's orders now, by state (`placed`, `waiting`, `manual`, …): all of them at once.
    pub fn relay_orders(&self, by_state: &[(&str, i64)]) {
        self.figures().relay_orders = by_state
            .iter()
            .map(|(state, count)| ((*state).to_owned(), *count))
            .collect();
    }

    /// Reads each target's, source's and order feed's figures from the database (after each
    /// cycle): exactly what `status` reads, so the two never disagree.
    pub fn refresh(&self, conn: &Connection) -> Result<(), StoreError> {
        let targets = store::reads::targets(conn)?
            .into_iter()
            .map(|row| TargetFigures {
                pending: row.pending,
                held: row.held.is_some(),
                last_success: row.last_success_at.map(seconds),
                name: row.name,
            })
            .collect();
        let sources = store::reads::sources(conn)?
            .into_iter()
            .map(|row| SourceFigures {
                skus: row.skus,
                last_fetch: row.last_fetch_at.map(seconds),
                name: row.name,
            })
            .collect();
        let feeds = store::feeds(conn)?
            .into_iter()
            .map(|row| FeedFigures {
                failing: row.last_error.is_some(),
                unreadable: i64::try_from(row.unreadable.len()).unwrap_or(i64::MAX),
                last_read: row.last_read_at.map(seconds),
                name: row.name,
            })
            .collect();
        let mut figures = self.figures();
        figures.targets = targets;
        figures.sources = sources;
        figures.feeds = feeds;
        Ok(())
    }

    fn figures(&self) -> std::sync::MutexGuard<'_, Figures> {
        self.figures.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Tally for ShopMetrics {
    fn request(&self, endpoint: &str, code: &str) {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *requests
            .entry((endpoint.to_owned(), code.to_owned()))
            .or_default() += 1;
    }

    fn retry(&self, endpoint: &str) {
        let mut retries = self.retries.lock().unwrap_or_else(PoisonError::into_inner);
        *retries.entry(endpoint.to_owned()).or_default() += 1;
    }
}

/// Milliseconds since the epoch, as the seconds of a timestamp gauge.
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Whether a listener serves the metrics.
pub fn served() -> bool {
    SERVED.load(Ordering::Relaxed)
}

/// The page: one collector that writes every shop's samples, family by family.
static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Shops));
    registry
});

/// The metrics in the text format.
pub fn render() -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &REGISTRY);
    out
}

impl ShopMetrics {
    /// This shop's samples now, family by family (in the order of [`FAMILIES`]).
    fn samples(&self) -> [Vec<(Labels, Value)>; FAMILIES.len()] {
        let mut out: [Vec<(Labels, Value)>; FAMILIES.len()] = Default::default();
        let figures = self.figures();
        for t in &figures.targets {
            let label = || vec![("target", t.name.clone())];
            out[0].push((label(), Value::Int(t.pending)));
            out[1].push((label(), Value::Int(i64::from(t.held))));
            if let Some(at) = t.last_success {
                out[2].push((label(), Value::Float(at)));
            }
        }
        for s in &figures.sources {
            let label = || vec![("source", s.name.clone())];
            if let Some(at) = s.last_fetch {
                out[3].push((label(), Value::Float(at)));
            }
            out[4].push((label(), Value::Int(s.skus)));
        }
        for f in &figures.feeds {
            let label = || vec![("feed", f.name.clone())];
            if let Some(at) = f.last_read {
                out[5].push((label(), Value::Float(at)));
            }
            out[6].push((label(), Value::Int(i64::from(f.failing))));
            out[7].push((label(), Value::Int(f.unreadable)));
        }
        out[11].push((vec![], Value::Int(figures.reservations_open)));
        out[12].push((vec![], Value::Int(figures.reservations_stuck)));
        for (state, count) in &figures.relay_orders {
            out[13].push((vec![("state", state.clone())], Value::Int(*count)));
        }
        drop(figures);
        let requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        for ((endpoint, code), n) in requests.iter() {
            let labels = vec![("endpoint", endpoint.clone()), ("code", code.clone())];
            out[8].push((labels, Value::Counter(*n)));
        }
        drop(requests);
        let retries = self.retries.lock().unwrap_or_else(PoisonError::into_inner);
        for (endpoint, n) in retries.iter() {
            out[9].push((vec![("endpoint", endpoint.clone())], Value::Counter(*n)));
        }
        drop(retries);
        let durations = self
            .cycle_duration
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        out[10].push((vec![], Value::Histogram(durations.clone())));
        out
    }
}

/// Writes the families of every live shop (see the module's documentation).
#[derive(Debug)]
struct Shops;

impl Collector for Shops {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        // Taken out of the lock: a shop whose last holder goes while the page is written is
        // written whole, then let go.
        let shops = SHOPS.lock().unwrap_or_else(PoisonError::into_inner);
        let mut live: Vec<Arc<ShopMetrics>> = shops.iter().filter_map(Weak::upgrade).collect();
        drop(shops);
        // The one shop of `run` first, then by name.
        live.sort_by(|a, b| a.shop.cmp(&b.shop));
        let samples: Vec<_> = live.iter().map(|m| (m.shop.clone(), m.samples())).collect();
        for (index, (name, help, kind)) in FAMILIES.into_iter().enumerate() {
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            for (shop, families) in &samples {
                for (labels, value) in &families[index] {
                    let labels: Vec<(&str, &str)> = shop
                        .as_deref()
                        .map(|shop| ("shop", shop))
                        .into_iter()
                        .chain(labels.iter().map(|(k, v)| (*k, v.as_str())))
                        .collect();
                    if labels.is_empty() {
                        value.write(&mut metric)?;
                    } else {
                        value.write(&mut metric.encode_family(&labels)?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::page::FAMILIES;
    use super::*;

    #[test]
    fn requests_and_retries_are_counted_per_endpoint_in_the_text_format() {
        let metrics = ShopMetrics::of(None);
        metrics.request("target hardtofind", "503");
        metrics.retry("target hardtofind");
        metrics.relay_orders(&[("manual", 2)]);

        let page = render();

        println!("{page}");
        for sample in [
            "invsync_requests_total{endpoint=\"target hardtofind\",code=\"503\"} 1",
            "invsync_retries_total{endpoint=\"target hardtofind\"} 1",
            "invsync_relay_orders{state=\"manual\"} 2",
            "# TYPE invsync_cycle_duration_seconds histogram",
            "invsync_cycle_duration_seconds_bucket{le=\"+Inf\"} ",
            // Present whatever their value: other tests of this process run cycles that hold
            // reservations (the engines' conformance test).
            "invsync_reservations_open ",
            "invsync_reservations_stuck ",
            "# EOF",
        ] {
            assert!(page.contains(sample), "{sample} in\n{page}");
        }
    }

    #[test]
    fn each_shop_of_a_fleet_labels_its_samples_under_one_family_and_leaves_the_page_with_its_engine()
     {
        let north = ShopMetrics::of(Some("test-north"));
        let south = ShopMetrics::of(Some("test-south"));
        north.request("target hardtofind", "200");
        north.request("target hardtofind", "200");
        south.request("target hardtofind", "200");
        north.reservations(3, 1);
        north.cycle_finished(&CycleReport {
            id: 1,
            orders: None,
            duration: std::time::Duration::from_millis(50),
            sources: vec![],
            targets: vec![],
            plan: vec![],
            relay: None,
        });
        // The same shop's metrics while any holder lives: a reload's engines count together.
        ShopMetrics::of(Some("test-north")).request("target hardtofind", "200");

        let page = render();

        println!("{page}");
        for sample in [
            "invsync_requests_total{shop=\"test-north\",endpoint=\"target hardtofind\",code=\"200\"} 3",
            "invsync_requests_total{shop=\"test-south\",endpoint=\"target hardtofind\",code=\"200\"} 1",
            "invsync_reservations_open{shop=\"test-north\"} 3",
            "invsync_reservations_stuck{shop=\"test-north\"} 1",
            "invsync_reservations_open{shop=\"test-south\"} 0",
            "invsync_cycle_duration_seconds_count{shop=\"test-north\"} 1",
            "invsync_cycle_duration_seconds_bucket{le=\"0.1\",shop=\"test-north\"} 1",
            "invsync_cycle_duration_seconds_count{shop=\"test-south\"} 0",
        ] {
            assert!(page.contains(sample), "{sample} in\n{page}");
        }
        for family in FAMILIES.map(|(name, ..)| name) {
            let described = format!("# TYPE {family} ");
            assert_eq!(
                page.matches(&described).count(),
                1,
                "{family} once in\n{page}"
            );
        }

        drop(south);
        let page = render();
        assert!(page.contains("shop=\"test-north\""), "{page}");
        assert!(
            !page.contains("shop=\"test-south\""),
            "a shop gone leaves the page:\n{page}"
        );
    }
}
