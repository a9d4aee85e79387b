//! What the log says: its first line, its format, and a failed start under the journal.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{World, signal};

#[tokio::test(flavor = "multi_thread")]
async fn the_first_log_line_says_the_version_the_config_the_database_and_when_the_first_cycle_runs()
{
    let world = World::start().await;
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    let finished = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.contains("cycle finished");
            seen.push(line);
            if done {
                return;
            }
        }
    })
    .await;
    signal(&child, "TERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;

    assert!(finished.is_ok(), "a cycle ran:\n{}", seen.join("\n"));
    println!("{}", seen[0]);
    let first = &seen[0];
    assert!(first.contains(" INFO invsync starting"), "{first}");
    for field in [
        format!("version={}", env!("CARGO_PKG_VERSION")),
        format!("config={}", world.config.display()),
        format!("database={}", world.database().display()),
        "first_cycle=now".to_owned(),
        "schedule=\"every 1s\"".to_owned(),
    ] {
        assert!(first.contains(&field), "{field} in {first}");
    }
    assert!(
        seen.iter()
            .all(|l| !l.contains("hyper") && !l.contains("Uninited")),
        "no dependency chatter:\n{}",
        seen.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_to_start_reaches_the_journal_at_error_priority() {
    let world = World::start().await;
    let text = std::fs::read_to_string(&world.config).expect("read");
    std::fs::write(
        &world.config,
        text.replace("every = \"1s\"", "every = \"soon\""),
    )
    .expect("write");
    // A file stands in for the journal's stream: JOURNAL_STREAM names its device and inode.
    let journal = world.dir.path().join("journal");
    let file = std::fs::File::create(&journal).expect("journal file");
    let meta = file.metadata().expect("metadata");
    let stream = format!("{}:{}", meta.dev(), meta.ino());

    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_invsync"))
        .arg("--config")
        .arg(&world.config)
        .arg("run")
        .env_remove("RUST_LOG")
        .env("JOURNAL_STREAM", &stream)
        .stderr(file)
        .status()
        .await
        .expect("runs");

    let logged = std::fs::read_to_string(&journal).expect("journal");
    println!("{}", logged.trim_end());
    assert_eq!(status.code(), Some(2));
    assert!(
        logged.starts_with("<3>ERROR ")
            && logged.contains("daemon.every: \"soon\" is not a duration"),
        "{logged}"
    );
}
