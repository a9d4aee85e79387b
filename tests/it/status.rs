//! `invsync status`: the states of the contract, `--json` always JSON, `--check` for monitoring.

use crate::helpers::{HTF_PASSWORD, Setup, World};

#[tokio::test(flavor = "multi_thread")]
async fn without_a_database_status_says_so_json_is_still_json_and_check_says_unknown() {
    let world = World::start().await;

    let text = world.invsync(&["status"]).await;
    let json = world.invsync(&["status", "--json"]).await;
    let check = world.invsync(&["status", "--check"]).await;

    text.assert_code(0);
    println!("{}\n{}", text.stdout.trim_end(), check.stdout.trim_end());
    assert!(text.stdout.contains("no cycle has run"), "{}", text.stdout);
    assert!(
        text.stdout.contains("hardtofind: never synced"),
        "{}",
        text.stdout
    );
    json.assert_code(0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(value["database_exists"], false);
    assert_eq!(value["targets"][0]["label"], "never synced");
    check.assert_code(3);
    assert_eq!(check.stdout.lines().count(), 1, "{}", check.stdout);
    assert!(check.stdout.starts_with("UNKNOWN: "), "{}", check.stdout);
    assert!(!world.database().exists(), "status creates nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_cannot_be_read_is_an_error_not_no_database() {
    let world = World::start().await;
    // The database's folder is a file: looking inside it fails (as an unreadable folder does).
    let blocker = world.dir.path().join("state");
    std::fs::write(&blocker, "not a folder").expect("file");

    let text = world.invsync(&["status"]).await;
    let json = world.invsync(&["status", "--json"]).await;

    text.assert_code(1);
    println!("{}", text.stderr.trim_end());
    assert!(!text.stdout.contains("no cycle has run"), "{}", text.stdout);
    assert!(
        text.stderr.contains("cannot read the database"),
        "{}",
        text.stderr
    );
    json.assert_code(1);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert!(
        value["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot read"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_check_exits_0_in_sync_and_2_once_a_target_fails_and_times_are_rfc_3339() {
    let world = World::with(Setup::default()).await;
    world.invsync(&["once"]).await.assert_code(0);
    let healthy = world.invsync(&["status", "--check"]).await;
    let json = world.invsync(&["status", "--json"]).await;
    world.htf.faults().set_down(Some(503));
    world.ea.set_stock("1001", 99);
    world.invsync(&["once"]).await.assert_code(1);

    let failing = world.invsync(&["status", "--check"]).await;
    let text = world.invsync(&["status"]).await;

    println!(
        "{}\n{}",
        healthy.stdout.trim_end(),
        failing.stdout.trim_end()
    );
    healthy.assert_code(0);
    assert_eq!(healthy.stdout.trim_end(), "OK: 2 targets in sync");
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let at = value["targets"][0]["last_success_at"]
        .as_str()
        .expect("a time");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    assert!(value["cycles"][0]["started_at"].is_string());
    failing.assert_code(2);
    assert!(
        failing.stdout.starts_with("CRITICAL: hardtofind FAILING"),
        "{}",
        failing.stdout
    );
    assert!(
        text.stdout.contains("hako_dropship: in sync"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_sku_names_the_cap_only_when_it_changed_the_figure() {
    let world = World::with(Setup {
        htf_extra: "max_quantity = 500".into(),
        ..Setup::default()
    })
    .await;
    world.invsync(&["once"]).await.assert_code(0);

    let text = world.invsync(&["status", "--sku", "EA-1003"]).await;

    text.assert_code(0);
    println!("{}", text.stdout.trim_end());
    assert!(!text.stdout.contains("capped"), "{}", text.stdout);
}

#[tokio::test]
async fn a_refused_login_leaves_no_sku_in_doubt_since_nothing_was_sent() {
    let world = World::with(Setup {
        htf_extra: String::new(),
        ..Setup::default()
    })
    .await;
    let text = std::fs::read_to_string(&world.config).expect("config");
    let wrong = text.replacen(
        &format!("password = \"{HTF_PASSWORD}\""),
        "password = \"not-the-password\"",
        1,
    );
    std::fs::write(&world.config, wrong).expect("config");

    world.invsync(&["once"]).await.assert_code(1);
    let json = world.invsync(&["status", "--json"]).await;

    let status: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let hardtofind = (status["targets"].as_array().expect("targets").iter())
        .find(|t| t["name"] == "hardtofind")
        .expect("hardtofind");
    assert_eq!(hardtofind["in_doubt"], 0, "{hardtofind}");
    assert_eq!(hardtofind["state"], "failing", "{hardtofind}");
}

#[tokio::test]
async fn a_misspelt_hako_warehouse_fails_its_source_naming_it_instead_of_reading_no_stock() {
    let world = World::start().await;
    let text = std::fs::read_to_string(&world.config).expect("config");
    let misspelt = text.replacen(
        "warehouses = [\"warehouse-010\"]",
        "warehouses = [\"warehouse-01O\"]",
        1,
    );
    std::fs::write(&world.config, misspelt).expect("config");

    let run = world.invsync(&["once"]).await;
    let status = world.invsync(&["status"]).await;

    run.assert_code(1);
    assert!(
        (run.stderr.lines()).any(|l| l.contains("ERROR")
            && l.contains("warehouse-01O")
            && l.contains("does not exist")),
        "{}",
        run.stderr
    );
    assert!(
        status.stdout.contains("warehouse: FAILING") && status.stdout.contains("does not exist"),
        "{}",
        status.stdout
    );
}
