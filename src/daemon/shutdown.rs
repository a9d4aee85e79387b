//! Stopping without losing anything. The first SIGTERM or SIGINT cancels the shutdown token: no
//! new request starts, the request in flight finishes (or times out), what was acknowledged is
//! committed, and the command returns. A second signal exits at once: acknowledgements are
//! SQLite transactions, so even then nothing acknowledged is lost and nothing unacknowledged is
//! recorded; the next start pushes again what was not acknowledged. SIGHUP is not a stop: it asks
//! for a reload ([`reload_requests`]).

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long a cycle may go on after shutdown was requested before it is abandoned, so that
/// `run` exits well within systemd's `TimeoutStopSec=30` even when the request in flight hangs.
pub const GRACE: Duration = Duration::from_secs(25);

/// Which signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM (systemd's stop).
    Terminate,
    /// SIGINT (Ctrl-C).
    Interrupt,
}

impl Signal {
    /// The conventional exit status of a process ended by this signal (128 + number).
    pub fn exit_status(self) -> i32 {
        match self {
            Signal::Terminate => 143,
            Signal::Interrupt => 130,
        }
    }
}

/// Completes on the next SIGTERM or SIGINT.
pub async fn signal() -> Signal {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = term.recv() => Signal::Terminate,
                _ = tokio::signal::ctrl_c() => Signal::Interrupt,
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    Signal::Interrupt
}

/// Cancels `cancel` on the first signal and exits the process on the second.
pub fn watch_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        signal().await;
        info!(
            "shutdown requested; finishing the request in flight (a second signal exits at once)"
        );
        cancel.cancel();
        let second = signal().await;
        warn!(
            "second signal: exiting at once; what was not acknowledged is pushed at the next start"
        );
        std::process::exit(second.exit_status());
    });
}

/// One item per SIGHUP (several before the daemon looks collapse into one). Call it early: from
/// then on a SIGHUP no longer ends the process (its default), it asks for a reload.
pub fn reload_requests() -> tokio::sync::mpsc::Receiver<()> {
    let (requests, received) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            if let Ok(mut hangup) = signal(SignalKind::hangup()) {
                while hangup.recv().await.is_some() {
                    info!("SIGHUP: reloading the configuration");
                    let _ = requests.try_send(());
                }
            }
        }
        // No signal to listen to: keep the channel open, so the daemon simply never reloads.
        std::future::pending::<()>().await;
        drop(requests);
    });
    received
}

/// Waits for `work` to finish, but no longer than [`GRACE`] once `cancel` is cancelled; `None`
/// when it was abandoned.
pub async fn finish_within_grace<F: Future>(
    work: F,
    cancel: &CancellationToken,
) -> Option<F::Output> {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        output = &mut work => return Some(output),
        () = cancel.cancelled() => {}
    }
    match tokio::time::timeout(GRACE, work).await {
        Ok(output) => Some(output),
        Err(_) => {
            warn!(grace = %humantime::format_duration(GRACE), "the cycle did not finish in time after shutdown was requested; abandoning it (its unacknowledged changes are pushed at the next start)");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_finishing_in_time_after_shutdown_is_awaited() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let out = finish_within_grace(
            async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                7
            },
            &cancel,
        )
        .await;
        assert_eq!(out, Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn work_hanging_after_shutdown_is_abandoned_after_the_grace() {
        let cancel = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let work = async { std::future::pending::<()>().await };
        let canceller = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(100)).await;
            canceller.cancel();
        });
        assert_eq!(finish_within_grace(work, &cancel).await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(100) + GRACE);
    }
}
