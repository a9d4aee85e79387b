//! What the command line offers besides syncing: `--version`, shell completions, the man page
//! and `invsync demo` (`invsync sim` has [`crate::sim`]).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, Lines};
use tokio::process::Child;

use crate::helpers::{invsync, invsync_command, signal};

/// Every command a user is offered (not the hidden `man`).
const COMMANDS: [&str; 7] = [
    "run",
    "once",
    "check",
    "status",
    "demo",
    "sim",
    "completions",
];

/// The commit `git` says this checkout is at, when git can say.
fn checkout_commit() -> Option<String> {
    let output = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short",
            "HEAD",
        ])
        .output()
        .ok()?;
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !commit.is_empty()).then_some(commit)
}

#[tokio::test]
async fn version_names_the_commit_it_was_built_from() {
    let run = invsync(&["--version"]).await;

    run.assert_code(0);
    let line = run.stdout.trim();
    let commit = line
        .strip_prefix(&format!("invsync {} (", env!("CARGO_PKG_VERSION")))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("`invsync VERSION (COMMIT)` expected, got {line:?}"));
    match checkout_commit() {
        Some(expected) if std::env::var_os("INVSYNC_COMMIT").is_none() => {
            assert_eq!(commit, expected)
        }
        _ => assert!(!commit.is_empty(), "{line}"),
    }
}

#[tokio::test]
async fn completions_cover_every_command_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let run = invsync(&["completions", shell]).await;

        run.assert_code(0);
        for command in COMMANDS {
            assert!(run.stdout.contains(command), "{shell}: {command} missing");
        }
        assert!(
            !run.stdout.contains("Print the man page"),
            "{shell}: the hidden `man` is offered"
        );
    }
    let unknown = invsync(&["completions", "tcsh"]).await;
    unknown.assert_code(2);
}

#[tokio::test]
async fn the_bash_completion_script_is_valid_bash() {
    let run = invsync(&["completions", "bash"]).await;
    let Ok(mut bash) = std::process::Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
    else {
        eprintln!("bash not found: not checking the script's syntax");
        return;
    };
    use std::io::Write as _;
    bash.stdin
        .take()
        .expect("stdin")
        .write_all(run.stdout.as_bytes())
        .expect("bash reads the script");
    assert!(bash.wait().expect("bash ends").success());
}

#[tokio::test]
async fn the_man_page_documents_every_command_and_the_exit_statuses() {
    let run = invsync(&["man"]).await;

    run.assert_code(0);
    let title = run
        .stdout
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "));
    assert!(
        title.is_some_and(|l| l.starts_with(".TH invsync 1 ")),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.matches(".ds Aq").count(), 2, "one preamble");
    for heading in [
        "NAME",
        "SYNOPSIS",
        "COMMANDS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "SIGNALS",
    ] {
        assert!(
            run.stdout.contains(&format!(".SH {heading}"))
                || run.stdout.contains(&format!(".SH \"{heading}\"")),
            "{heading} missing"
        );
    }
    let relay = ["relay", "relay list", "relay show", "relay approve"];
    for command in COMMANDS.iter().chain(&relay) {
        assert!(
            run.stdout.contains(&format!(".SS \"invsync {command}\"")),
            "invsync {command} missing"
        );
    }
    assert!(
        run.stdout.contains("\\-\\-dry\\-run"),
        "options of the commands"
    );
}

#[tokio::test]
async fn demo_and_sim_refuse_a_config_they_would_not_read() {
    for args in [
        &["--config", "/etc/invsync/config.toml", "demo"][..],
        &["--config", "/etc/invsync/config.toml", "sim"][..],
        &["demo", "--config", "/etc/invsync/config.toml"][..],
    ] {
        let run = invsync(args).await;

        run.assert_code(2);
        assert!(run.stderr.contains("--config"), "{args:?}: {}", run.stderr);
    }
}

/// Reads lines until one satisfies `last`; all of them.
pub(crate) async fn read_until<R: AsyncRead + Unpin>(
    lines: &mut Lines<BufReader<R>>,
    last: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = last(&line);
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "not found in {seen:#?}");
    seen
}

/// `invsync ARGS` in the background, stdout and stderr piped.
pub(crate) fn spawn(args: &[&str]) -> Child {
    invsync_command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("invsync starts")
}

pub(crate) async fn exit_code(mut child: Child) -> Option<i32> {
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits in time")
        .expect("status");
    status.code()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_prints_its_config_locks_its_database_and_keeps_its_folder() {
    let mut demo = spawn(&["demo"]);
    let mut stdout = BufReader::new(demo.stdout.take().expect("stdout")).lines();
    let mut stderr = BufReader::new(demo.stderr.take().expect("stderr")).lines();
    let banner = read_until(&mut stdout, |l| l.contains(" status --sku ")).await;
    read_until(&mut stderr, |l| l.contains("cycle finished")).await;
    let config = banner
        .iter()
        .find_map(|l| l.strip_prefix("The configuration it runs ("))
        .and_then(|rest| rest.strip_suffix("):"))
        .map(PathBuf::from)
        .expect("the banner names the configuration");
    let config_arg = config.display().to_string();

    let status = invsync(&["--config", &config_arg, "status"]).await;
    let once = invsync(&["--config", &config_arg, "once"]).await;
    signal(&demo, "INT");
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let code = exit_code(demo).await;
    let kept = config.exists();
    if let Some(folder) = config.parent() {
        let _ = std::fs::remove_dir_all(folder);
    }

    status.assert_code(0);
    assert!(
        banner
            .iter()
            .any(|l| l.ends_with(&format!("--config {config_arg} status"))),
        "{banner:#?}"
    );
    assert!(banner.iter().any(|l| l.trim() == "[targets.hardtofind]"));
    assert_ne!(once.code, Some(0), "a second invsync ran beside the demo");
    assert!(
        once.stderr.contains("in use by another invsync"),
        "{}",
        once.stderr
    );
    assert_eq!(code, Some(0));
    assert!(kept, "the demo removed its configuration");
}

#[tokio::test]
async fn config_is_a_global_option_accepted_after_the_command_too() {
    let world = crate::helpers::World::start().await;
    let config = world.config.display().to_string();

    let after = invsync(&["status", "--check", "--config", &config]).await;
    let before = invsync(&["--config", &config, "status", "--check"]).await;

    assert_eq!(after.stdout, before.stdout);
    after.assert_code(3);
    assert!(after.stdout.contains("no database"), "{}", after.stdout);
}
