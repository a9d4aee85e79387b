//! Every kind of configuration mistake exits 2 with one line naming the file and the key.

use std::ffi::OsStr;

use crate::helpers::World;

async fn rejected(edit: impl Fn(&str) -> String) -> String {
    let world = World::start().await;
    let original = std::fs::read_to_string(&world.config).expect("read");
    let edited = edit(&original);
    assert_ne!(edited, original, "the edit applies");
    std::fs::write(&world.config, edited).expect("write");
    let run = world.invsync(&["once"]).await;
    run.assert_code(2);
    assert_eq!(
        run.stderr.lines().count(),
        1,
        "one clear message:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&world.config.display().to_string()),
        "names the file: {}",
        run.stderr
    );
    assert_eq!(
        world.htf.count("POST", "/authenticate") + world.hako.requests().len(),
        0,
        "nothing was contacted"
    );
    run.stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_key_is_an_error_naming_it() {
    let message = rejected(|c| {
        c.replace(
            "sku_prefix = \"EA-\"",
            "sku_prefix = \"EA-\"\nsku_prefx = \"x\"",
        )
    })
    .await;
    assert!(
        message.contains("sources.dropship") && message.contains("sku_prefx"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_source_in_inputs_is_an_error_naming_it() {
    let message =
        rejected(|c| c.replace("inputs = [\"dropship\"]", "inputs = [\"dropshp\"]")).await;
    assert!(
        message.contains("targets.hako_dropship.inputs: unknown source \"dropshp\""),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_url_is_an_error_naming_it() {
    let message = rejected(|c| {
        c.replacen(
            "base_url = \"http://127.0.0.1",
            "base_url = \"htp//127.0.0.1",
            1,
        )
    })
    .await;
    assert!(message.contains("sources.warehouse.base_url"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_a_remote_host_is_refused() {
    let message = rejected(|c| {
        c.replacen(
            "base_url = \"http://127.0.0.1",
            "base_url = \"http://api.example.com",
            1,
        )
    })
    .await;
    assert!(
        message.contains("sources.warehouse.base_url: plain http://"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_number_is_an_error_naming_it() {
    let message = rejected(|c| c.replacen("batch_size = 100", "batch_size = \"lots\"", 1)).await;
    assert!(
        message.contains("targets.hardtofind.batch_size"),
        "{message}"
    );
    let message = rejected(|c| c.replacen("batch_size = 100", "batch_size = 0", 1)).await;
    assert!(
        message.contains("targets.hardtofind.batch_size"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_toml_is_an_error_naming_the_file() {
    let message = rejected(|c| c.replace("[targets.hardtofind]", "[targets.hardtofind")).await;
    assert!(message.contains("config.toml: "), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hako_target_writing_where_its_own_account_is_read_is_a_feedback_loop() {
    let message = rejected(|c| {
        c.replace(
            "warehouses = [\"warehouse-010\"]",
            "warehouses = [\"warehouse-010\", \"dropship\"]",
        )
    })
    .await;
    assert!(
        message.contains("targets.hako_dropship.warehouse"),
        "{message}"
    );
    assert!(message.contains("feedback loop"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_secret_file_is_an_error_naming_the_key() {
    let message = rejected(|c| {
        c.replace(
            "token = \"ea-canary-token\"",
            "token_file = \"/nonexistent/ea_token\"",
        )
    })
    .await;
    assert!(
        message.contains("sources.dropship.token_file: cannot read /nonexistent/ea_token"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_usage_error_exits_2() {
    let world = World::start().await;
    world.invsync(&["once", "--dry"]).await.assert_code(2);
    world.invsync(&["frobnicate"]).await.assert_code(2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_level_that_is_no_level_is_an_error_naming_daemon_log_level_and_so_is_rust_log() {
    let message = rejected(|c| c.replace("log_level = \"info\"", "log_level = \"verbose\"")).await;
    let world = World::start().await;

    let from_env = world
        .invsync_env(
            &["check", "--offline"],
            &[("RUST_LOG", OsStr::new("verbose"))],
        )
        .await;
    let good_env = world
        .invsync_env(
            &["check", "--offline"],
            &[("RUST_LOG", OsStr::new("warn,invsync=debug"))],
        )
        .await;

    println!("{}", message.trim_end());
    assert!(
        message.contains("daemon.log_level: \"verbose\" is not a log level"),
        "{message}"
    );
    from_env.assert_code(2);
    println!("{}", from_env.stderr.trim_end());
    assert!(
        from_env
            .stderr
            .contains("RUST_LOG: \"verbose\" is not a log level"),
        "{}",
        from_env.stderr
    );
    good_env.assert_code(0);
}
