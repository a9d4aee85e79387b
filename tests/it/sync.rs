//! The cycle's everyday behaviour: convergence, pushing only differences, batching, dry runs.

use crate::helpers::{Setup, World, dropship_id, initial_dropship, warehouse_sku};

#[tokio::test(flavor = "multi_thread")]
async fn a_first_cycle_brings_both_targets_in_sync() {
    let world = World::start().await;

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    world.assert_in_sync();
    assert_eq!(
        world.acknowledged("hardtofind"),
        world.expected_hardtofind(),
        "the database agrees with the target"
    );
    assert_eq!(
        world.acknowledged("hako_dropship"),
        world.expected_hako_dropship()
    );
    let summary = run.summary();
    assert!(
        summary.contains("outcome=\"ok\"") || summary.contains("outcome=ok"),
        "{summary}"
    );
    assert!(
        summary.contains("hardtofind(state=in_sync pushed=50"),
        "{summary}"
    );
    assert!(
        summary.contains("hako_dropship(state=in_sync pushed=30"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_second_cycle_sends_no_write_at_all() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    let batches_before = world.htf.count("POST", "/batch");
    let hako_writes_before = world.hako.write_requests();

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(
        world.htf.count("POST", "/batch"),
        batches_before,
        "no Hardtofind batch"
    );
    assert_eq!(
        world.hako.write_requests(),
        hako_writes_before,
        "no Hako write"
    );
    assert!(run.summary().contains("pushed=0"), "{}", run.summary());
}

#[tokio::test(flavor = "multi_thread")]
async fn n_changed_skus_are_sent_as_n_entities_in_as_few_batches_as_the_batch_size_allows() {
    let world = World::with(Setup {
        htf_batch_size: 10,
        hako_batch_size: 10,
        ..Setup::default()
    })
    .await;
    world.invsync(&["once"]).await.assert_code(0);
    world.htf.clear_batches();
    let hako_writes_before = world.hako.write_requests();
    // 23 changes: 21 Endless Aisles items (both targets read them) and 2 Hako SKUs.
    for i in 1..=21 {
        world.ea.set_stock(&dropship_id(i), 100 + i as i64);
    }
    world
        .hako
        .set_quantity("warehouse-010", &warehouse_sku(1), 77);
    world
        .hako
        .set_quantity("warehouse-010", &warehouse_sku(2), 0);

    world.invsync(&["once"]).await.assert_code(0);

    let batches = world.htf.batches();
    assert_eq!(batches.len(), 3, "⌈23/10⌉ Hardtofind batches");
    assert_eq!(
        batches.iter().map(Vec::len).sum::<usize>(),
        23,
        "exactly the 23 changed SKUs"
    );
    assert_eq!(
        world.hako.write_requests() - hako_writes_before,
        3,
        "⌈21/10⌉ Hako writes"
    );
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_prints_the_plan_and_changes_nothing_remote_or_local() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    world.ea.set_stock(&dropship_id(3), 42);
    let dump_before = world.database_dump();
    let shown_before = world.htf.inventories();
    let (batches_before, hako_writes_before) = (
        world.htf.count("POST", "/batch"),
        world.hako.write_requests(),
    );

    let run = world.invsync(&["once", "--dry-run"]).await;

    run.assert_code(0);
    let old = initial_dropship(3);
    assert!(
        run.stdout
            .contains(&format!("hardtofind\tEA-1003\t{old}\t42")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("hako_dropship\tEA-1003\t{old}\t42")),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.lines().count(),
        3,
        "a header and one line per target:\n{}",
        run.stdout
    );
    let targets: Vec<&str> = (run.stdout.lines().skip(1))
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(targets, ["hako_dropship", "hardtofind"], "in target order");
    assert_eq!(world.htf.count("POST", "/batch"), batches_before);
    assert_eq!(world.hako.write_requests(), hako_writes_before);
    assert_eq!(world.htf.inventories(), shown_before);
    assert_eq!(
        world.database_dump(),
        dump_before,
        "the database is untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_explains_each_planned_quantity_by_its_inputs_safety_stock_and_cap() {
    let world = World::with(Setup {
        htf_extra: "safety_stock = 1\nmax_quantity = 40".into(),
        ..Setup::default()
    })
    .await;
    world.invsync(&["once"]).await.assert_code(0);
    // One SKU changes: the warehouse starts stocking it too, and the dropshipper has more.
    world.hako.set_quantity("warehouse-010", "EA-1003", 10);
    world.ea.set_stock(&dropship_id(3), 42);

    let run = world.invsync(&["once", "--dry-run"]).await;

    run.assert_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let before = initial_dropship(3);
    assert_eq!(
        lines,
        vec![
            "target\tsku\told\tnew\tinputs\tsafety_stock\tmax_quantity",
            &format!("hako_dropship\tEA-1003\t{before}\t42\tdropship=42\t0\t-"),
            // 10 + 42 − 1 = 51, capped at 40; before, it showed the dropshipper's stock − 1.
            &format!(
                "hardtofind\tEA-1003\t{}\t40\twarehouse=10,dropship=42\t1\t40",
                before - 1
            ),
        ],
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sku_gone_from_a_source_counts_as_zero_there() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    world.ea.remove(&dropship_id(4));

    world.invsync(&["once"]).await.assert_code(0);

    assert_eq!(world.htf.inventory("EA-1004"), Some(0));
    assert_eq!(world.hako.quantity("dropship", "EA-1004"), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn safety_stock_and_the_cap_shape_what_a_target_shows() {
    let setup = Setup {
        htf_extra: "safety_stock = 2\nmax_quantity = 5".into(),
        ..Setup::default()
    };
    let world = World::with(setup).await;
    world
        .hako
        .set_quantity("warehouse-010", &warehouse_sku(1), 1);
    world
        .hako
        .set_quantity("warehouse-010", &warehouse_sku(2), 100);
    world.ea.set_stock(&dropship_id(1), 4);

    world.invsync(&["once"]).await.assert_code(0);

    assert_eq!(
        world.htf.inventory(&warehouse_sku(1)),
        Some(0),
        "1 − 2 floors at 0"
    );
    assert_eq!(
        world.htf.inventory(&warehouse_sku(2)),
        Some(5),
        "98 is capped at 5"
    );
    assert_eq!(world.htf.inventory("EA-1001"), Some(2), "4 − 2");
    assert_eq!(
        world.hako.quantity("dropship", "EA-1001"),
        Some(4),
        "the other target has no safety stock"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_of_a_paginated_source_is_read() {
    let world = World::with(Setup {
        ea_page_size: Some(7),
        ..Setup::default()
    })
    .await;

    world.invsync(&["once"]).await.assert_code(0);

    world.assert_in_sync();
    assert_eq!(
        world.ea.count("GET", "/api/stock"),
        5,
        "30 items in pages of 7"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hako_pair_that_exists_already_is_updated_rather_than_created() {
    let world = World::start().await;
    // Someone created this pair before invsync ever ran: a create would be refused.
    world.hako.set_quantity("dropship", "EA-1002", 999);

    world.invsync(&["once"]).await.assert_code(0);

    world.assert_in_sync();
    // And a pair deleted behind invsync's back is created again.
    world.hako.remove("dropship", "EA-1005");
    world.ea.set_stock(&dropship_id(5), 61);
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.hako.quantity("dropship", "EA-1005"), Some(61));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_cycle_pushes_every_sku_again() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    // Drift: someone changed Hardtofind by hand; only a full cycle notices.
    world.htf.set_inventory("HK-3", 1234);
    world.htf.clear_batches();

    world.invsync(&["once", "--full"]).await.assert_code(0);

    assert_eq!(world.htf.batches().iter().map(Vec::len).sum::<usize>(), 50);
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_what_the_database_knows() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);

    let text = world.invsync(&["status"]).await;
    let json = world.invsync(&["status", "--json"]).await;

    text.assert_code(0);
    assert!(
        text.stdout.contains("hardtofind: in sync"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("tracked 50, pending 0, failed 0"),
        "{}",
        text.stdout
    );
    json.assert_code(0);
    let value: serde_json::Value =
        serde_json::from_str(&json.stdout).expect("status --json is JSON");
    let hako = value["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["name"] == "hako_dropship")
        .expect("hako target");
    assert_eq!(hako["tracked"], 30);
    assert_eq!(value["cycles"][0]["outcome"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_logs_in_everywhere_and_says_what_failed() {
    let world = World::start().await;

    let ok = world.invsync(&["check"]).await;

    ok.assert_code(0);
    assert_eq!(
        ok.stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        6,
        "{}",
        ok.stdout
    );
    assert_eq!(
        world.htf.count("POST", "/batch") + world.hako.write_requests(),
        0,
        "check changes nothing"
    );

    let bad = World::start().await;
    std::fs::write(
        &bad.config,
        std::fs::read_to_string(&bad.config)
            .expect("read")
            .replace("htf-canary-password", "wrong"),
    )
    .expect("write");
    let failed = bad.invsync(&["check"]).await;
    failed.assert_code(1);
    assert!(
        failed.stdout.contains("FAIL  target hardtofind"),
        "{}",
        failed.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn status_sku_explains_from_the_database_why_a_target_shows_what_it_shows() {
    let setup = Setup {
        htf_extra: "safety_stock = 1\nmax_quantity = 40".into(),
        ..Setup::default()
    };
    let world = World::with(setup).await;
    world.hako.set_quantity("warehouse-010", "EA-1003", 10);
    world.ea.set_stock(&dropship_id(3), 42);
    world.invsync(&["once"]).await.assert_code(0);
    world.htf.faults().set_down(Some(503)); // status must not need the remotes

    let text = world.invsync(&["status", "--sku", "EA-1003"]).await;
    let json = world
        .invsync(&["status", "--sku", "EA-1003", "--json"])
        .await;
    let unknown = world.invsync(&["status", "--sku", "NOPE-1"]).await;

    text.assert_code(0);
    unknown.assert_code(1);
    assert!(
        text.stdout
            .contains("hardtofind: shows 40 (acknowledged), should show 40"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("warehouse 10 + dropship 42 = 52, minus safety stock 1 = 51, capped at 40"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("hako_dropship: shows 42 (acknowledged), should show 42"),
        "{}",
        text.stdout
    );
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let htf = value["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["target"] == "hardtofind")
        .expect("hardtofind");
    assert_eq!(
        (
            htf["should_show"].as_i64(),
            htf["acknowledged"].as_i64(),
            htf["safety_stock"].as_i64()
        ),
        (Some(40), Some(40), Some(1))
    );
    assert!(
        unknown.stdout.contains("no source has ever reported"),
        "{}",
        unknown.stdout
    );
}

/// The pages of the database file, after `once` has checkpointed and closed it.
fn database_pages(world: &World) -> Vec<Vec<u8>> {
    std::fs::read(world.database())
        .expect("database file")
        .chunks(4096)
        .map(<[u8]>::to_vec)
        .collect()
}

/// How many pages of `after` differ from `before` (new pages included).
fn pages_changed(before: &[Vec<u8>], after: &[Vec<u8>]) -> usize {
    after
        .iter()
        .enumerate()
        .filter(|(i, page)| before.get(*i) != Some(*page))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_percent_change_spread_over_the_catalogue_rewrites_pages_in_proportion_to_the_changes_not_to_the_chunks_they_fall_in()
 {
    // 20,480 SKUs at Endless Aisles: 40 chunks of 512 in each column (the snapshot, and what
    // each of the two targets that read it acknowledged).
    const SKUS: usize = 20_480;
    const CHUNKS: usize = SKUS / 512;
    let world = World::with(Setup {
        dropship_skus: SKUS,
        htf_batch_size: 1000,
        hako_batch_size: 1000,
        ..Setup::default()
    })
    .await;
    world.invsync(&["once"]).await.assert_code(0);
    // Whatever the first cycle left unfolded goes into the chunks now (as a fold when the
    // deltas pass their limit would), so that neither cycle measured below folds.
    invsync::store::fold_all(&invsync::store::db::Connection::open(world.database()).expect("db"))
        .expect("folds");
    // One change first: what any changed cycle writes (its history, the targets' rows).
    world.ea.set_stock(&dropship_id(1), 1_000);
    let before = database_pages(&world);
    world.invsync(&["once"]).await.assert_code(0);
    let after_one = database_pages(&world);
    let one = pages_changed(&before, &after_one);
    // Then 1%: 205 SKUs, one in every 100, so every chunk of every column holds some.
    let spread: Vec<usize> = (2..=SKUS).step_by(100).collect();
    for &i in &spread {
        world.ea.set_stock(&dropship_id(i), 2_000 + i as i64);
    }

    world.invsync(&["once"]).await.assert_code(0);

    world.assert_in_sync();
    let many = pages_changed(&after_one, &database_pages(&world));
    println!(
        "1 change: {one} pages changed; {} changes: {many} pages changed",
        spread.len()
    );
    // Rewriting each chunk a change falls in is more than a page per chunk of each of the 3
    // columns; 205 changes of 12 bytes in each column are less than a page each.
    assert!(
        many < one + CHUNKS,
        "{} changes spread over {CHUNKS} chunks changed {many} pages, where one change changed {one}",
        spread.len()
    );
}
