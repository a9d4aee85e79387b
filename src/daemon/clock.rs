//! When cycles start: a fixed period, or cron expressions read in `daemon.timezone`. Each
//! schedule is a task that only *requests* a cycle through the daemon's channel; the tasks end
//! when the [`Clock`] is dropped (at shutdown, or when a reload brings other schedules).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{Cron, Daemon, Trigger};

/// The longest single sleep: the wall clock is looked at again at least this often, so a clock
/// set right (NTP, a resumed virtual machine) moves the next start with it.
const LOOK_AGAIN: Duration = Duration::from_secs(60);

/// The running schedules; dropping it stops them.
pub struct Clock {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Clock {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts `daemon`'s schedules: each start sends on `ticks`; a start of `full_sync_schedule`
/// first sets `full_due`.
pub fn start(daemon: &Daemon, ticks: &mpsc::Sender<()>, full_due: &Arc<AtomicBool>) -> Clock {
    let mut tasks = Vec::new();
    match &daemon.trigger {
        Trigger::Schedule(cron) => {
            tasks.push(tokio::spawn(cron_ticks(cron.clone(), ticks.clone(), None)))
        }
        Trigger::Every(period) => {
            let (ticks, period) = (ticks.clone(), *period);
            tasks.push(tokio::spawn(async move {
                let mut interval = tokio::time::interval(period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    if ticks.is_closed() {
                        return;
                    }
                    let _ = ticks.try_send(());
                }
            }));
        }
    }
    if let Some(cron) = &daemon.full_sync_schedule {
        tasks.push(tokio::spawn(cron_ticks(
            cron.clone(),
            ticks.clone(),
            Some(full_due.clone()),
        )));
    }
    Clock { tasks }
}

async fn cron_ticks(cron: Cron, ticks: mpsc::Sender<()>, full_due: Option<Arc<AtomicBool>>) {
    let mut after = Utc::now();
    while let Some(at) = cron.next_after(after) {
        sleep_until(at).await;
        if ticks.is_closed() {
            return;
        }
        if let Some(flag) = &full_due {
            flag.store(true, Ordering::SeqCst);
        }
        let _ = ticks.try_send(());
        // Never the same start twice, even when the sleep ended a little early.
        after = at.max(Utc::now());
    }
}

async fn sleep_until(at: DateTime<Utc>) {
    loop {
        let left = (at - Utc::now()).to_std().unwrap_or_default();
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(LOOK_AGAIN)).await;
    }
}

/// When the first cycle starts, for the first log line: `now`, or the schedule's next start in
/// RFC 3339 with the zone's offset.
pub fn first_start(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Every(_) => "now".to_owned(),
        Trigger::Schedule(cron) => cron.next_after(Utc::now()).map_or_else(
            || "never".to_owned(),
            |at| at.with_timezone(&cron.zone()).to_rfc3339(),
        ),
    }
}

/// The schedule, for logs: the cron expression and its zone, or `every 5m`.
pub fn describe(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Schedule(cron) => format!("{} ({})", cron.text(), cron.zone().name()),
        Trigger::Every(period) => format!("every {}", humantime::format_duration(*period)),
    }
}
