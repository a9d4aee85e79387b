//! `invsync run`: cycles on the schedule until shutdown.
//!
//! Schedules only *request* a cycle, through a channel of capacity one, and one loop runs them:
//! cycles never overlap, and ticks that come while a cycle runs collapse into one. Shutdown is a
//! future passed in; when it completes, no new request starts, the request in flight finishes (or
//! times out), what was acknowledged is committed, and `run` returns.

pub mod cycle;
mod orders;
pub mod shutdown;
mod sources;
mod state;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::{Daemon, Trigger};
use crate::daemon::cycle::{CycleOptions, Engine};
use crate::ops::notify::Notifier;
use crate::ops::report::CycleReport;
use crate::store::StoreError;

/// Why the daemon could not keep running.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The cron scheduler failed to start.
    #[error("scheduler: {0}")]
    Scheduler(#[from] JobSchedulerError),
}

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
    let mut scheduler = JobScheduler::new().await?;
    match &daemon.trigger {
        Trigger::Schedule(expression) => {
            scheduler
                .add(cron_job(expression, ticks.clone(), None)?)
                .await?;
        }
        Trigger::Every(period) => {
            let (ticks, period) = (ticks.clone(), *period);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    if ticks.is_closed() {
                        return;
                    }
                    let _ = ticks.try_send(());
                }
            });
        }
    }
    if let Some(expression) = &daemon.full_sync_schedule {
        scheduler
            .add(cron_job(expression, ticks.clone(), Some(full_due.clone()))?)
            .await?;
    }
    scheduler.start().await?;
    drop(ticks);
    info!(schedule = %describe(&daemon.trigger), full_sync_schedule = daemon.full_sync_schedule.as_deref().unwrap_or("-"), "invsync started");

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
    let _ = scheduler.shutdown().await;
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

fn cron_job(
    expression: &str,
    ticks: mpsc::Sender<()>,
    full_due: Option<Arc<AtomicBool>>,
) -> Result<Job, JobSchedulerError> {
    Job::new_async(expression, move |_, _| {
        let (ticks, full_due) = (ticks.clone(), full_due.clone());
        Box::pin(async move {
            if let Some(flag) = full_due {
                flag.store(true, Ordering::SeqCst);
            }
            let _ = ticks.try_send(());
        })
    })
}

fn describe(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Schedule(expression) => expression.clone(),
        Trigger::Every(period) => format!("every {}", humantime::format_duration(*period)),
    }
}
