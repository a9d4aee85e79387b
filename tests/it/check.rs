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
