//! SIGHUP: the configuration is read again; a valid one takes effect from the next cycle, an
//! invalid one is an ERROR naming the key and the daemon goes on with the old one.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::helpers::{World, signal};

/// Every stderr line of a running `invsync`, as it comes.
fn lines_of(child: &mut tokio::process::Child) -> mpsc::UnboundedReceiver<String> {
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (sent, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if sent.send(line).is_err() {
                return;
            }
        }
    });
    received
}

/// Waits (bounded) for a line containing `what`; returns it.
async fn until(lines: &mut mpsc::UnboundedReceiver<String>, what: &str) -> String {
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.recv().await {
            if line.contains(what) {
                return Some(line);
            }
        }
        None
    })
    .await;
    found
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("no line with {what:?}"))
}

fn edit_config(world: &World, from: &str, to: &str) {
    let text = std::fs::read_to_string(&world.config).expect("config");
    assert!(text.contains(from), "{from:?} in the config");
    std::fs::write(&world.config, text.replacen(from, to, 1)).expect("write");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_applies_a_valid_configuration_from_the_next_cycle_and_keeps_the_old_one_when_invalid()
 {
    let world = World::start().await;
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = lines_of(&mut child);
    until(&mut lines, "cycle finished").await;
    world.assert_in_sync();

    // A valid change: Hardtofind keeps one unit back from now on.
    edit_config(
        &world,
        "inputs = [\"warehouse\", \"dropship\"]",
        "inputs = [\"warehouse\", \"dropship\"]\nsafety_stock = 1",
    );
    signal(&child, "HUP");
    let reloaded = until(&mut lines, "configuration reloaded").await;
    until(&mut lines, "the reloaded configuration is in force").await;
    until(&mut lines, "cycle finished").await;
    let shown = world.hardtofind_shows();

    // An invalid one: an ERROR naming the key, and the cycles go on.
    edit_config(&world, "batch_size = 100", "batch_size = \"lots\"");
    signal(&child, "HUP");
    let refused = until(&mut lines, "was not reloaded").await;
    until(&mut lines, "cycle finished").await;
    until(&mut lines, "cycle finished").await;
    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");

    println!("{reloaded}\n{refused}");
    assert!(
        reloaded.contains("changed=targets.hardtofind.safety_stock"),
        "{reloaded}"
    );
    let expected: std::collections::HashMap<String, i64> = world
        .expected_hardtofind()
        .into_iter()
        .map(|(sku, q)| (sku, (q - 1).max(0)))
        .collect();
    assert_eq!(shown, expected, "the new safety stock was pushed");
    assert!(
        refused.contains(" ERROR ") && refused.contains("key=targets.hardtofind.batch_size"),
        "{refused}"
    );
    assert_eq!(status.code(), Some(0), "still running, stopped cleanly");
}
