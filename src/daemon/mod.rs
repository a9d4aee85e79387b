//! `invsync run`: cycles on the schedule until shutdown.
//!
//! Schedules only *request* a cycle, through a channel of capacity one, and one loop runs them:
//! cycles never overlap, and ticks that come while a cycle runs collapse into one. Shutdown is a
//! future passed in; when it completes, no new request starts, the request in flight finishes (or
//! times out), what was acknowledged is committed, and `run` returns.

pub mod clock;
pub mod cycle;
pub mod shutdown;
mod sources;
mod state;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::Daemon;
use crate::daemon::cycle::{CycleOptions, Engine};
use crate::ops::notify::Notifier;
use crate::ops::report::CycleReport;
use crate::store::StoreError;

/// Why the daemon could not keep running.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {}

/// Runs cycles as `daemon` schedules them until `shutdown` completes; `cancel` must be
/// cancelled by then too (it is what stops a cycle's requests). `notifier` hears when each cycle
/// starts and ends (systemd's status and watchdog).
pub async fn run(
    engine: Engine,
    daemon: &Daemon,
    cancel: CancellationToken,
    notifier: &Notifier,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let (ticks, mut next) = mpsc::channel::<()>(1);
    let full_due = Arc::new(AtomicBool::new(false));
    let clock = clock::start(daemon, &ticks, &full_due);
    drop(ticks);

    let mut stop = std::pin::pin!(shutdown);
    // Cycles run as tasks: one whose target is in a long push must not stop the next cycle
    // (whose other targets go on) from starting.
    let mut cycles: JoinSet<Result<CycleReport, StoreError>> = JoinSet::new();
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(done) = cycles.join_next(), if !cycles.is_empty() => {
                finished(done, notifier);
            }
            tick = next.recv() => {
                if tick.is_none() {
                    break;
                }
                let Some(turn) = engine.try_turn() else {
                    tracing::debug!("the previous cycle is still fetching; this tick is skipped");
                    continue;
                };
                let options = CycleOptions { full: full_due.swap(false, Ordering::SeqCst), ..Default::default() };
                notifier.cycle_started();
                let engine = engine.clone();
                cycles.spawn(async move { engine.run_cycle(options, turn).await });
            }
        }
    }
    cancel.cancel();
    // Shutdown mid-cycle: the cycles stop starting requests and finish, within the grace.
    let draining = async {
        while let Some(done) = cycles.join_next().await {
            finished(done, notifier);
        }
    };
    if shutdown::finish_within_grace(draining, &cancel)
        .await
        .is_none()
    {
        cycles.abort_all();
    }
    cancel.cancel();
    drop(clock);
    info!("invsync stopped");
    Ok(())
}

/// A cycle task ended: systemd hears how, and a database failure is an ERROR.
fn finished(
    done: Result<Result<CycleReport, StoreError>, tokio::task::JoinError>,
    notifier: &Notifier,
) {
    let result = done.unwrap_or(Err(StoreError::Join));
    notifier.cycle_finished(result.as_ref());
    if let Err(e) = result {
        error!(error = %e, "cycle failed on the database; the next cycle tries again");
    }
}
