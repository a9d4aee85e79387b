//! `invsync check`: what an operator runs before the first start, by hand and under systemd.

use std::ffi::OsStr;

use crate::helpers::{EA_TOKEN, HAKO_KEY, HTF_PASSWORD, World};

/// Moves every inline secret of the world's configuration to a credential named after its key.
fn secrets_as_credential_names(world: &World) {
    let text = std::fs::read_to_string(&world.config).expect("read");
    let text = text
        .replace(
            &format!("api_key = \"{HAKO_KEY}\""),
            "api_key_file = \"hako_api_key\"",
        )
        .replace(
            &format!("token = \"{EA_TOKEN}\""),
            "token_file = \"ea_token\"",
        )
        .replace(
            &format!("password = \"{HTF_PASSWORD}\""),
            "password_file = \"htf_password\"",
        );
    std::fs::write(&world.config, text).expect("write");
}

fn write_credentials(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("credentials folder");
    for (name, secret) in [
        ("hako_api_key", HAKO_KEY),
        ("ea_token", EA_TOKEN),
        ("htf_password", HTF_PASSWORD),
    ] {
        std::fs::write(dir.join(name), format!("{secret}\n")).expect("credential");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_offline_reads_relative_secret_files_from_the_credentials_directory_or_beside_the_config()
 {
    let world = World::start().await;
    secrets_as_credential_names(&world);
    let credentials = world.dir.path().join("credentials");
    write_credentials(&credentials);

    let under_systemd = world
        .invsync_env(
            &["check", "--offline"],
            &[("CREDENTIALS_DIRECTORY", credentials.as_os_str())],
        )
        .await;
    let by_hand_without_files = world.invsync(&["check", "--offline"]).await;
    write_credentials(world.dir.path());
    let by_hand = world.invsync(&["check", "--offline"]).await;
    let elsewhere = world
        .invsync_env(
            &["check", "--offline"],
            &[(
                "CREDENTIALS_DIRECTORY",
                OsStr::new("/nonexistent/credentials"),
            )],
        )
        .await;

    under_systemd.assert_code(0);
    println!("{}", under_systemd.stdout.trim_end());
    assert!(under_systemd.stdout.contains("skip  endpoints: --offline"));
    by_hand_without_files.assert_code(2);
    assert!(
        by_hand_without_files.stderr.contains(&format!(
            "sources.dropship.token_file: cannot read {}",
            world.dir.path().join("ea_token").display()
        )),
        "{}",
        by_hand_without_files.stderr
    );
    by_hand.assert_code(0);
    elsewhere.assert_code(2);
    assert!(
        elsewhere
            .stderr
            .contains("cannot read /nonexistent/credentials/ea_token"),
        "{}",
        elsewhere.stderr
    );
    assert_eq!(
        world.htf.count("POST", "/authenticate") + world.hako.requests().len(),
        0,
        "--offline contacts nothing"
    );
    assert!(!world.database().exists(), "check creates nothing");
}

/// A loopback port nothing listens on: connections to it are refused at once.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test(flavor = "multi_thread")]
async fn check_tries_every_endpoint_once_and_four_unreachable_ones_take_seconds_not_minutes() {
    let world = World::start().await;
    let mut text = std::fs::read_to_string(&world.config).expect("read");
    // A retry policy that would take a minute per endpoint if check followed it.
    text = text
        .replace(
            "retry_initial_backoff = \"20ms\"",
            "retry_initial_backoff = \"2s\"",
        )
        .replace(
            "retry_max_backoff = \"100ms\"",
            "retry_max_backoff = \"10s\"",
        )
        .replace("retry_max_elapsed = \"20s\"", "retry_max_elapsed = \"90s\"");
    for url in [
        world.hako.base_url(),
        world.ea.base_url(),
        world.htf.base_url(),
    ] {
        let port = closed_port();
        text = text.replace(&url, &format!("http://127.0.0.1:{port}"));
    }
    std::fs::write(&world.config, text).expect("write");

    let started = std::time::Instant::now();
    let unreachable = world.invsync(&["check"]).await;
    let took = started.elapsed();

    unreachable.assert_code(1);
    println!("{}", unreachable.stdout.trim_end());
    println!("took {took:?}");
    let failed = unreachable
        .stdout
        .lines()
        .filter(|l| l.starts_with("FAIL  "))
        .count();
    assert_eq!(failed, 4, "{}", unreachable.stdout);
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert!(!world.database().exists(), "check creates nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_fails_a_read_only_database_and_asks_a_failing_service_only_once() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    std::fs::set_permissions(world.database(), std::fs::Permissions::from_mode(0o444))
        .expect("chmod");
    world.htf.faults().set_down(Some(503));
    let authentications = world.htf.count("POST", "/authenticate");

    let run = world.invsync(&["check"]).await;

    run.assert_code(1);
    println!("{}", run.stdout.trim_end());
    assert!(
        run.stdout.lines().any(
            |l| l.starts_with("FAIL  database") && l.contains("the database file is read-only")
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        world.htf.count("POST", "/authenticate") - authentications,
        1,
        "one attempt, no retry:\n{}",
        run.stdout
    );
}
