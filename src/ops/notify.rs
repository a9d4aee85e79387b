//! Telling systemd how the daemon is doing (`sd_notify`): `READY=1` once the configuration is
//! valid and the database is open and migrated, a one-line `STATUS=` after every cycle (what
//! `systemctl status` shows), `STOPPING=1` on shutdown, and `WATCHDOG=1` only while the daemon is
//! healthy.
//!
//! Healthy means idle between cycles, or inside a cycle that finished an HTTP attempt
//! ([`http::progress`]) within the watchdog interval. A free-running ticker would go on pinging
//! for a daemon whose cycle is stuck for good; this one falls silent, and systemd restarts the
//! service once `WatchdogSec=` passes without a ping.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) a [`Notifier`] does nothing at all: no socket, no task.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::http;
use crate::ops::report::{CycleReport, TargetState};
use crate::store::StoreError;

/// Where the daemon is, as far as the watchdog cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the schedule: nothing can be stuck.
    Idle,
    /// Running a cycle, which must keep finishing requests.
    InCycle,
}

/// Whether the watchdog should ping: always when idle (waiting for the next cycle is not a
/// stall); inside a cycle only when its last progress is less than `window` old.
pub fn healthy(phase: Phase, last_progress: Instant, now: Instant, window: Duration) -> bool {
    match phase {
        Phase::Idle => true,
        Phase::InCycle => now.saturating_duration_since(last_progress) < window,
    }
}

/// What the watchdog knows: the phase, and when the progress counter last moved.
#[derive(Debug)]
struct Health {
    phase: Phase,
    progress: u64,
    progress_at: Instant,
}

impl Health {
    /// Notes the progress counter's value at `now`; a value not seen before is progress.
    fn observe(&mut self, progress: u64, now: Instant) {
        if progress != self.progress {
            self.progress = progress;
            self.progress_at = now;
        }
    }

    /// A cycle starts: its start counts as progress, so a cycle is never stale at birth.
    fn start_cycle(&mut self, progress: u64, now: Instant) {
        self.phase = Phase::InCycle;
        self.progress = progress;
        self.progress_at = now;
    }
}

/// Tells systemd about the daemon's life; does nothing when systemd did not start it.
#[derive(Debug)]
pub struct Notifier {
    /// Shared with the watchdog task; `None` outside systemd.
    health: Option<Arc<Mutex<Health>>>,
    watchdog: Option<JoinHandle<()>>,
}

impl Notifier {
    /// Active when systemd gave a notification socket (`Type=notify`), silent otherwise.
    pub fn from_env() -> Notifier {
        let under_systemd = std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty());
        if !under_systemd {
            return Notifier::disabled();
        }
        let health = Health {
            phase: Phase::Idle,
            progress: http::progress(),
            progress_at: Instant::now(),
        };
        Notifier {
            health: Some(Arc::new(Mutex::new(health))),
            watchdog: None,
        }
    }

    /// One that never says anything (`demo`, tests).
    pub fn disabled() -> Notifier {
        Notifier {
            health: None,
            watchdog: None,
        }
    }

    /// `READY=1`, and the watchdog task when the unit asked for one (`WatchdogSec=`).
    pub fn ready(&mut self) {
        let Some(health) = &self.health else {
            return;
        };
        if let Err(e) = sd_notify::notify(&[
            NotifyState::Ready,
            NotifyState::Status("ready; waiting for the first cycle"),
        ]) {
            warn!(error = %e, "could not tell systemd that invsync is ready");
        }
        if let Some(window) = sd_notify::watchdog_enabled() {
            self.watchdog = Some(tokio::spawn(watchdog(health.clone(), window)));
        }
    }

    /// A cycle starts: from now on the watchdog wants to see progress.
    pub fn cycle_started(&self) {
        if let Some(health) = &self.health {
            lock(health).start_cycle(http::progress(), Instant::now());
        }
    }

    /// A cycle ended: idle again, and its summary becomes the status.
    pub fn cycle_finished(&self, result: Result<&CycleReport, &StoreError>) {
        let Some(health) = &self.health else {
            return;
        };
        lock(health).phase = Phase::Idle;
        match result {
            Ok(report) => self.status(report),
            Err(e) => send_status(&format!("cycle failed on the database: {e}")),
        }
    }

    /// `STATUS=` with the cycle's one-line summary.
    pub fn status(&self, report: &CycleReport) {
        if self.health.is_some() {
            send_status(&status_line(report));
        }
    }

    /// Sends `STOPPING=1` as soon as `cancel` is cancelled, which is the moment shutdown begins,
    /// whether the daemon is idle or in the middle of a cycle.
    pub fn stopping_on(&self, cancel: &CancellationToken) {
        if self.health.is_some() {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                cancel.cancelled().await;
                send_stopping();
            });
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        if let Some(task) = self.watchdog.take() {
            task.abort();
        }
    }
}

/// The status line of a cycle: `cycle 42 ok: pushed 3 in 812ms`, followed by the targets that
/// did not end in sync, e.g. `(hardtofind failed, hako_dropship held)`.
pub fn status_line(report: &CycleReport) -> String {
    let mut line = format!(
        "cycle {} {}: pushed {} in {}ms",
        report.id,
        report.outcome(),
        report.pushed(),
        report.duration.as_millis()
    );
    let troubled: Vec<String> = report
        .targets
        .iter()
        .filter(|t| t.state != TargetState::InSync)
        .map(|t| format!("{} {}", t.name, t.state.word()))
        .collect();
    if !troubled.is_empty() {
        line.push_str(&format!(" ({})", troubled.join(", ")));
    }
    line
}

/// Pings twice per window, as `sd_watchdog_enabled(3)` advises, but only while [`healthy`].
async fn watchdog(health: Arc<Mutex<Health>>, window: Duration) {
    let mut ticks = tokio::time::interval(window / 2);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pinging = true;
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let ping = {
            let mut health = lock(&health);
            health.observe(http::progress(), now);
            healthy(health.phase, health.progress_at, now, window)
        };
        // Say it once, in the log, when the pings stop or start again: the journal then tells
        // why systemd restarted the service.
        if ping != pinging {
            pinging = ping;
            if ping {
                info!("the cycle makes progress again; watchdog pings resumed");
            } else {
                warn!(window = %humantime::format_duration(window), "the cycle made no progress within the watchdog interval; pings to systemd stopped, so it will restart invsync");
            }
        }
        if ping && let Err(e) = sd_notify::notify(&[NotifyState::Watchdog]) {
            warn!(error = %e, "could not ping the systemd watchdog");
        }
    }
}

fn send_stopping() {
    let states = [
        NotifyState::Stopping,
        NotifyState::Status("stopping: finishing the request in flight"),
    ];
    if let Err(e) = sd_notify::notify(&states) {
        warn!(error = %e, "could not tell systemd that invsync is stopping");
    }
}

/// The status protocol is line-based: a newline inside a status would end it early.
fn send_status(text: &str) {
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if let Err(e) = sd_notify::notify(&[NotifyState::Status(&line)]) {
        warn!(error = %e, "could not send systemd the status");
    }
}

/// The health is plain data, valid even if a holder panicked.
fn lock(health: &Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    health.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::report::TargetReport;

    const WINDOW: Duration = Duration::from_secs(180);

    #[test]
    fn an_idle_daemon_is_healthy_however_long_ago_its_last_request_was() {
        let start = Instant::now();

        let ping = healthy(
            Phase::Idle,
            start,
            start + Duration::from_secs(3600),
            WINDOW,
        );

        assert!(ping);
    }

    #[test]
    fn a_cycle_that_made_progress_within_the_window_is_healthy() {
        let start = Instant::now();

        let ping = healthy(
            Phase::InCycle,
            start,
            start + WINDOW - Duration::from_secs(1),
            WINDOW,
        );

        assert!(ping);
    }

    #[test]
    fn a_cycle_silent_for_the_whole_window_is_stalled() {
        let start = Instant::now();

        assert!(!healthy(Phase::InCycle, start, start + WINDOW, WINDOW));
        assert!(!healthy(Phase::InCycle, start, start + 2 * WINDOW, WINDOW));
    }

    #[test]
    fn a_cycle_whose_requests_keep_finishing_never_goes_stale() {
        let start = Instant::now();
        let mut health = Health {
            phase: Phase::Idle,
            progress: 0,
            progress_at: start,
        };
        health.start_cycle(7, start);

        // A request finishes every 100 s for ten minutes: always within the 180 s window.
        for step in 1..=6u32 {
            let now = start + Duration::from_secs(100) * step;
            health.observe(7 + u64::from(step), now);
            assert!(healthy(health.phase, health.progress_at, now, WINDOW));
        }
        // Then nothing more finishes.
        let later = start + Duration::from_secs(600 + 180);
        health.observe(13, later);
        assert!(!healthy(health.phase, health.progress_at, later, WINDOW));
    }

    #[test]
    fn a_new_cycle_starts_fresh_after_a_long_idle_time() {
        let start = Instant::now();
        let mut health = Health {
            phase: Phase::Idle,
            progress: 5,
            progress_at: start,
        };
        let much_later = start + Duration::from_secs(3600);

        health.start_cycle(5, much_later);

        assert!(healthy(
            health.phase,
            health.progress_at,
            much_later,
            WINDOW
        ));
    }

    fn report(targets: Vec<(&str, TargetState, usize)>) -> CycleReport {
        CycleReport {
            relay: None,
            id: 42,
            duration: Duration::from_millis(812),
            sources: Vec::new(),
            targets: targets
                .into_iter()
                .map(|(name, state, pushed)| TargetReport {
                    name: name.to_owned(),
                    state,
                    planned: pushed,
                    pushed,
                    failures: 0,
                    requests: 1,
                    retries: 0,
                })
                .collect(),
            plan: Vec::new(),
            orders: None,
        }
    }

    #[test]
    fn the_status_line_sums_up_a_good_cycle_in_a_few_words() {
        let report = report(vec![
            ("hardtofind", TargetState::InSync, 2),
            ("hako_dropship", TargetState::InSync, 1),
        ]);

        assert_eq!(status_line(&report), "cycle 42 ok: pushed 3 in 812ms");
    }

    #[test]
    fn the_status_line_names_the_targets_that_did_not_end_in_sync() {
        let report = report(vec![
            (
                "hardtofind",
                TargetState::Failed {
                    error: "HTTP 503".into(),
                },
                0,
            ),
            ("hako_dropship", TargetState::InSync, 4),
            (
                "other",
                TargetState::Held {
                    zeroed: 20,
                    positive: 30,
                },
                0,
            ),
        ]);

        assert_eq!(
            status_line(&report),
            "cycle 42 partial: pushed 4 in 812ms (hardtofind failed, other held)"
        );
    }
}
