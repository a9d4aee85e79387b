//! What a cycle did, in one value: the source of the cycle's summary log line, of `once`'s exit
//! status and dry-run plan, and of the cycle's row in the database.

use std::fmt::Write as _;
use std::time::Duration;

pub use crate::targets::report::{PlanLine, TargetReport, TargetState};

/// How one source's fetch went.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// `[sources.NAME]`.
    pub name: String,
    /// SKUs in the complete fetch and how many changed, or why it failed.
    pub outcome: Result<SourceCounts, String>,
    /// Requests made, retries included.
    pub requests: u64,
    /// Retries.
    pub retries: u64,
}

/// A successful fetch's numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct SourceCounts {
    /// SKUs the source reported.
    pub skus: usize,
    /// SKUs whose snapshot quantity changed (absent ones going to 0 included).
    pub changed: usize,
    /// The answer was byte for byte the one recorded last, so it was not parsed again.
    pub same: bool,
}

/// How the step went, for the summary line.
#[derive(Debug, Clone, Default)]
pub struct OrdersDone {
    /// The book's counts.
    pub summary: crate::plan::reservations::Summary,
    /// Feeds that could not be read (their reservations stand as they were).
    pub failed: Vec<String>,
    /// Reserved SKUs no source knows.
    pub unknown_skus: usize,
    /// Orders of the lists that could not be read whole (named in WARNs and in `status`).
    pub unreadable: usize,
    /// Orders open a week past their dispatch date.
    pub stuck: usize,
    /// Reservations that still hold stock (something outstanding).
    pub open: usize,
    /// `GET /orders` made over every feed.
    pub pages: u64,
    /// `full` when a list was read in full, `incremental` when every list was read from where
    /// the last read left it; `None` when no feed was read.
    pub walk: Option<&'static str>,
}

/// Everything one cycle did.
#[derive(Debug, Clone)]
pub struct CycleReport {
    /// The cycle's id (its row in `cycles`).
    pub id: i64,
    /// The order feeds' step, when feeds are configured (`Err`: it failed on the database).
    pub orders: Option<Result<OrdersDone, String>>,
    /// Wall time.
    pub duration: Duration,
    /// Per source.
    pub sources: Vec<SourceReport>,
    /// Per target.
    pub targets: Vec<TargetReport>,
    /// A dry run's planned changes (empty otherwise).
    pub plan: Vec<PlanLine>,
    /// The dropship relay's step, when it is on.
    pub relay: Option<crate::relay::RelayDone>,
}

impl CycleReport {
    /// Whether every target ended in sync and every order feed was read: `once` exits 0 only
    /// then (a feed that failed leaves its sales unreserved, however in sync the targets are).
    pub fn all_in_sync(&self) -> bool {
        self.targets.iter().all(|t| t.state == TargetState::InSync) && self.feeds_read()
    }

    /// Whether every order feed was read (true without feeds).
    fn feeds_read(&self) -> bool {
        match &self.orders {
            None => true,
            Some(Ok(done)) => done.failed.is_empty(),
            Some(Err(_)) => false,
        }
    }

    /// Targets this cycle synced (not those an earlier cycle is still pushing).
    fn synced(&self) -> impl Iterator<Item = &TargetReport> {
        self.targets.iter().filter(|t| t.state != TargetState::Busy)
    }

    /// `ok` when every target is in sync and every order feed was read, `failed` when no
    /// target is in sync, `partial` otherwise.
    pub fn outcome(&self) -> &'static str {
        let in_sync = self
            .synced()
            .filter(|t| t.state == TargetState::InSync)
            .count();
        let synced = self.synced().count();
        if in_sync == synced && self.feeds_read() {
            "ok"
        } else if in_sync == 0 && synced > 0 {
            "failed"
        } else {
            "partial"
        }
    }

    /// The order feeds' counts for the summary line (`None` without feeds).
    pub fn orders_field(&self) -> Option<String> {
        match self.orders.as_ref()? {
            Ok(done) => {
                let s = &done.summary;
                let mut text = format!(
                    "made={} absorbed={} released={} allotted={} backfilled={}",
                    s.made, s.absorbed, s.released, s.allotted, s.backfilled
                );
                if let Some(walk) = done.walk {
                    let _ = write!(text, " walk={walk} pages={}", done.pages);
                }
                if done.stuck > 0 {
                    let _ = write!(text, " stuck={}", done.stuck);
                }
                if done.unknown_skus > 0 {
                    let _ = write!(text, " unknown_skus={}", done.unknown_skus);
                }
                if done.unreadable > 0 {
                    let _ = write!(text, " unreadable={}", done.unreadable);
                }
                if !done.failed.is_empty() {
                    let _ = write!(text, " failed={}", done.failed.join(","));
                }
                Some(text)
            }
            Err(e) => Some(format!("failed: {e}")),
        }
    }

    /// The relay's records per state for the summary line (`None` when the relay is off).
    pub fn relay_field(&self) -> Option<String> {
        self.relay.as_ref().map(crate::relay::RelayDone::field)
    }

    /// How the relay read its feed's `READY` list, `walk=incremental pages=1` as the
    /// reservations' field says it (`None` when the relay is off or the list could not be read).
    pub fn relay_read_field(&self) -> Option<String> {
        let walk = self.relay.as_ref()?.walk?;
        Some(walk.field())
    }

    /// Per target `name(state pushed=… requests=… retries=… failures=…)`, space separated: the
    /// `targets` field of the summary line.
    pub fn targets_field(&self) -> String {
        let mut out = String::new();
        for t in &self.targets {
            let _ = write!(
                out,
                "{}{}(state={} pushed={} requests={} retries={} failures={})",
                if out.is_empty() { "" } else { " " },
                t.name,
                t.state.word(),
                t.pushed,
                t.requests,
                t.retries,
                t.failures
            );
        }
        out
    }

    /// Per source `name(skus=… changed=… requests=…)` (with ` answer=same` when the answer was
    /// the last one again) or `name(failed)`.
    pub fn sources_field(&self) -> String {
        let mut out = String::new();
        for s in &self.sources {
            let sep = if out.is_empty() { "" } else { " " };
            let _ = match &s.outcome {
                Ok(c) => write!(
                    out,
                    "{sep}{}(skus={} changed={} requests={}{})",
                    s.name,
                    c.skus,
                    c.changed,
                    s.requests,
                    if c.same { " answer=same" } else { "" }
                ),
                Err(_) => write!(out, "{sep}{}(failed requests={})", s.name, s.requests),
            };
        }
        out
    }

    /// SKUs pushed over all targets.
    pub fn pushed(&self) -> usize {
        self.targets.iter().map(|t| t.pushed).sum()
    }
}
