//! `invsync run`: cycles on the schedule until shutdown.
//!
//! Schedules only *request* a cycle, through a channel of capacity one, and one loop runs them:
//! cycles never overlap, and ticks that come while a cycle runs collapse into one. Shutdown is the
//! daemon's cancellation token ([`Daemon::cancel`], which the signals cancel): once cancelled, no
//! new request starts, the request in flight finishes (or times out), what was acknowledged is
//! committed, and `run` returns. A reload (SIGHUP) swaps
//! the configuration between cycles.

mod catalogues;
pub mod clock;
pub mod cycle;
mod engine;
#[cfg(test)]
mod engines_tests;
mod feeds;
mod generation;
pub mod mapping;
pub mod memory;
mod orders;
mod per_sku;
mod reload;
pub mod shutdown;
mod slots;
mod sources;
mod state;
mod target_task;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info};

use crate::config::Config;
use crate::daemon::cycle::{CycleOptions, Engine, EngineError};
use crate::ops::metrics::{self, ShopMetrics};
use crate::ops::notify::Notifier;
use crate::ops::report::CycleReport;
use crate::store::{Store, StoreError};

/// Why the daemon could not keep running.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The database file (or its lock file) was removed or replaced under the daemon: it stops
    /// without writing anything more, so that its restart works on the file now there.
    #[error(transparent)]
    Moved(StoreError),
}

/// What `run` runs with.
pub struct Daemon {
    /// The engine of the configuration in force.
    pub engine: Engine,
    /// The configuration in force (its path is read again at each reload).
    pub config: Arc<Config>,
    /// The database, shared by the engines of successive configurations.
    pub store: Store,
    /// Shutdown, the one source of it: cancelled (by a signal), it stops every request and
    /// [`run`].
    pub cancel: CancellationToken,
    /// One item per reload request (SIGHUP), see [`shutdown::reload_requests`].
    pub reloads: mpsc::Receiver<()>,
}

/// Runs cycles as the configuration schedules them until `daemon.cancel` is cancelled. `notifier`
/// hears when each cycle starts and ends (systemd's status and watchdog).
///
/// A reload reads and checks the file again; a valid one takes effect from the next cycle: once
/// no cycle runs, a new [`Engine`] is built on the same database (ticks in between are skipped,
/// so a cycle in flight finishes with the old configuration and none mixes the two). An invalid
/// one is logged and the old one stays.
pub async fn run(daemon: Daemon, notifier: &Notifier) -> Result<(), DaemonError> {
    let Daemon {
        mut engine,
        mut config,
        store,
        cancel,
        mut reloads,
    } = daemon;
    let (ticks, mut next) = mpsc::channel::<()>(1);
    let full_due = Arc::new(AtomicBool::new(false));
    let mut clock = clock::start(&config.daemon, &ticks, &full_due);
    let mut pending: Option<(Arc<Config>, crate::mapper::file::Prepared)> = None;
    // What starting freed (a mapping file read and checked, the state reconciled) goes back.
    memory::give_back();

    let mut stop = std::pin::pin!(cancel.clone().cancelled_owned());
    // Cycles run as tasks: one whose target is in a long push must not stop the next cycle
    // (whose other targets go on) from starting.
    let mut cycles: Cycles = JoinSet::new();
    let mut moved = None;
    loop {
        if cycles.is_empty()
            && let Some((newer, prepared)) = pending.take()
        {
            match rebuild(newer.clone(), prepared, &store, &cancel).await {
                Err(e) => {
                    moved = Some(e);
                    break;
                }
                Ok(Some(built)) => {
                    if reload::schedules_differ(&config, &newer) {
                        clock = clock::start(&newer.daemon, &ticks, &full_due);
                    }
                    engine = built;
                    config = newer;
                    memory::give_back();
                    info!("the reloaded configuration is in force");
                }
                Ok(None) => {}
            }
        }
        tokio::select! {
            () = &mut stop => break,
            Some(done) = cycles.join_next(), if !cycles.is_empty() => {
                if let Some(e) = finished(done, notifier, &store, engine.metrics()) {
                    moved = Some(e);
                    break;
                }
            }
            Some(()) = reloads.recv() => {
                let in_force = engine.mapper().file_digest();
                if let Some(newer) = reload::read(&config, in_force, &store).await {
                    pending = Some(newer);
                }
            }
            tick = next.recv() => {
                if tick.is_none() {
                    break;
                }
                start_cycle(&engine, pending.is_some(), &full_due, notifier, &mut cycles);
            }
        }
    }
    cancel.cancel();
    drain(cycles, notifier, &store, engine.metrics(), &cancel).await;
    cancel.cancel();
    drop(clock);
    if let Some(e) = moved {
        // Said by the caller, as the reason of the exit status.
        return Err(DaemonError::Moved(e));
    }
    info!("invsync stopped");
    Ok(())
}

/// The cycles' tasks.
type Cycles = JoinSet<Result<CycleReport, StoreError>>;

/// The engine of a reloaded configuration, built on the same database once no cycle runs:
/// `Ok(None)` when it could not be (logged: the old one stays), `Err` when the database moved
/// under the daemon.
async fn rebuild(
    newer: Arc<Config>,
    prepared: crate::mapper::file::Prepared,
    store: &Store,
    cancel: &CancellationToken,
) -> Result<Option<Engine>, StoreError> {
    match Engine::with_mapping(newer, prepared, store.clone(), cancel, false).await {
        Err(EngineError::Store(e @ StoreError::Moved(_))) => Err(e),
        Ok(built) => Ok(Some(built)),
        Err(e) => {
            error!(error = %e, "the reloaded configuration could not be applied; invsync keeps running with the old one");
            Ok(None)
        }
    }
}

/// A tick: a cycle starts as a task of its own, unless a reload waits for the cycle in flight
/// or the previous cycle is still fetching (the tick is skipped).
fn start_cycle(
    engine: &Engine,
    reload_waits: bool,
    full_due: &AtomicBool,
    notifier: &Notifier,
    cycles: &mut Cycles,
) {
    if reload_waits {
        tracing::debug!("a reload waits for the cycle in flight; this tick is skipped");
        return;
    }
    let Some(turn) = engine.try_turn() else {
        tracing::debug!("the previous cycle is still fetching; this tick is skipped");
        return;
    };
    let options = CycleOptions {
        full: full_due.swap(false, Ordering::SeqCst),
        ..Default::default()
    };
    notifier.cycle_started();
    let engine = engine.clone();
    // In the caller's span: a fleet's cycles name their shop.
    cycles.spawn(async move { engine.run_cycle(options, turn).await }.in_current_span());
}

/// Shutdown mid-cycle: the cycles stop starting requests and finish, within the grace; those
/// that do not are aborted.
async fn drain(
    mut cycles: Cycles,
    notifier: &Notifier,
    store: &Store,
    metrics: &Arc<ShopMetrics>,
    cancel: &CancellationToken,
) {
    let draining = async {
        while let Some(done) = cycles.join_next().await {
            finished(done, notifier, store, metrics);
        }
    };
    if shutdown::finish_within_grace(draining, cancel)
        .await
        .is_none()
    {
        cycles.abort_all();
    }
}

/// A cycle task ended: systemd hears how, the metrics are brought up to date, and a database
/// failure is an ERROR; one that moved under the daemon is given back, for it to stop.
fn finished(
    done: Result<Result<CycleReport, StoreError>, tokio::task::JoinError>,
    notifier: &Notifier,
    store: &Store,
    metrics: &Arc<ShopMetrics>,
) -> Option<StoreError> {
    let result = done.unwrap_or(Err(StoreError::Join));
    notifier.cycle_finished(result.as_ref());
    match result {
        Ok(report) => {
            metrics.cycle_finished(&report);
            refresh_metrics(store, metrics);
            None
        }
        Err(e @ StoreError::Moved(_)) => Some(e),
        Err(e) => {
            refresh_metrics(store, metrics);
            error!(error = %e, "cycle failed on the database; the next cycle tries again");
            None
        }
    }
}

/// Reads the per-target and per-source figures into the metrics, off the loop (only when they
/// are served).
pub fn refresh_metrics(store: &Store, metrics: &Arc<ShopMetrics>) {
    if !metrics::served() {
        return;
    }
    let (store, metrics) = (store.clone(), metrics.clone());
    tokio::spawn(
        async move {
            if let Err(e) = store.call(move |c| metrics.refresh(c)).await {
                tracing::warn!(error = %e, "metrics: could not read the database");
            }
        }
        .in_current_span(),
    );
}
