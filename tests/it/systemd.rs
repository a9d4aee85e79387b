//! `invsync run` under systemd, faked: a Unix datagram socket in `NOTIFY_SOCKET` receives what
//! systemd would (ready, status, watchdog pings, stopping).

use std::ffi::OsStr;
use std::time::Duration;

use invsync::sim::Fault;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixDatagram;
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::helpers::{World, signal};

/// Starts `invsync run` as systemd would with `Type=notify` and `WatchdogSec=watchdog`; returns
/// the process and each notification with the time it arrived.
fn run_under_systemd(
    world: &World,
    watchdog: Duration,
) -> (Child, mpsc::UnboundedReceiver<(Instant, String)>) {
    let socket_path = world.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket binds");
    let (sent, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 4096];
        while let Ok(n) = socket.recv(&mut buffer).await {
            let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
            if sent.send((Instant::now(), message)).is_err() {
                return;
            }
        }
    });
    let watchdog_usec = watchdog.as_micros().to_string();
    let env: [(&str, &OsStr); 2] = [
        ("NOTIFY_SOCKET", socket_path.as_os_str()),
        ("WATCHDOG_USEC", OsStr::new(&watchdog_usec)),
    ];
    let child = world.spawn(&["run"], &env);
    (child, received)
}

/// Waits for the next notification that contains `what`, returning it and those before it.
async fn until(
    received: &mut mpsc::UnboundedReceiver<(Instant, String)>,
    what: &str,
) -> Vec<(Instant, String)> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some((at, message)) = received.recv().await {
            let hit = message.contains(what);
            seen.push((at, message));
            if hit {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no {what:?} among {seen:#?}");
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn under_systemd_run_says_ready_reports_each_cycle_and_says_stopping() {
    let world = World::start().await;
    let (mut child, mut received) = run_under_systemd(&world, Duration::from_secs(2));
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });

    let before_ready = until(&mut received, "READY=1").await;
    let first_cycle = until(&mut received, "STATUS=cycle").await;
    until(&mut received, "WATCHDOG=1").await;
    signal(&child, "TERM");
    let at_stop = until(&mut received, "STOPPING=1").await;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");

    assert_eq!(
        before_ready.len(),
        1,
        "READY=1 comes first: {before_ready:#?}"
    );
    let summary = &first_cycle.last().expect("a status").1;
    assert!(
        summary.contains("STATUS=cycle 1 ok: pushed 80 in ") && summary.contains("ms"),
        "{summary}"
    );
    assert!(at_stop.iter().any(|(_, m)| m.contains("STOPPING=1")));
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cycle_that_stops_making_progress_stops_the_watchdog_pings_until_it_moves_again() {
    // The warehouse answers after 4 s (within the 5 s request timeout): for those 4 s the
    // cycle finishes no request. With a 1 s watchdog, pings (every 0.5 s) must pause for
    // about 3 s, and come back once the answer arrives.
    let world = World::start().await;
    world
        .hako
        .faults()
        .push_for("GET", "/inventory", Fault::Delay(Duration::from_secs(4)));
    let (mut child, mut received) = run_under_systemd(&world, Duration::from_secs(1));
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();

    until(&mut received, "READY=1").await;
    let mut during_first_cycle = until(&mut received, "STATUS=cycle 1 ").await;
    // Two more pings show they resumed.
    during_first_cycle.extend(until(&mut received, "WATCHDOG=1").await);
    during_first_cycle.extend(until(&mut received, "WATCHDOG=1").await);
    signal(&child, "TERM");
    let mut log = String::new();
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(30), stderr.next_line()).await
    {
        log.push_str(&line);
        log.push('\n');
    }

    let pings: Vec<Instant> = during_first_cycle
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .map(|(at, _)| *at)
        .collect();
    let longest_silence = pings
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        longest_silence >= Duration::from_secs(2),
        "pings paused while the cycle was stuck: {during_first_cycle:#?}"
    );
    assert!(log.contains("pings to systemd stopped"), "{log}");
    assert!(log.contains("watchdog pings resumed"), "{log}");
}
