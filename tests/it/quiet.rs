//! An unchanged world costs nothing: an answer the same as the last is not parsed again, and a
//! target left in sync with unchanged inputs is not planned again; yet every change, of any
//! kind, still reaches the targets.

use invsync::sim::Fault;

use crate::helpers::{Setup, World, dropship_id, warehouse_sku};

/// When the database says each source last fetched completely (ms since the epoch).
fn last_fetches(world: &World) -> Vec<i64> {
    let conn = rusqlite::Connection::open(world.database()).expect("db");
    let mut stmt = conn
        .prepare("SELECT last_fetch_at FROM sources ORDER BY name")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_the_same_as_the_last_is_not_parsed_again_and_still_counts_as_a_complete_fetch() {
    let world = World::start().await;
    let first = world.invsync(&["once"]).await;
    first.assert_code(0);
    assert!(
        !first.summary().contains("answer=same"),
        "{}",
        first.summary()
    );
    // Hako answers every warehouse of the account, the one the Hako target wrote to in the
    // first cycle included: its answer changed, once.
    let second = world.invsync(&["once"]).await;
    assert!(
        second
            .summary()
            .contains("warehouse(skus=20 changed=0 requests=1)"),
        "{}",
        second.summary()
    );
    let fetched = last_fetches(&world);
    std::thread::sleep(std::time::Duration::from_millis(5));

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    let summary = run.summary();
    assert!(
        summary.contains("warehouse(skus=20 changed=0 requests=1 answer=same)")
            && summary.contains("dropship(skus=30 changed=0 requests=1 answer=same)"),
        "{summary}"
    );
    assert!(summary.contains("pushed=0"), "{summary}");
    let now = last_fetches(&world);
    assert!(
        now.iter().zip(&fetched).all(|(n, f)| n > f),
        "a same answer is a complete fetch: {fetched:?} -> {now:?}"
    );
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_after_unchanged_cycles_is_pushed_and_only_it() {
    let world = World::start().await;
    for _ in 0..3 {
        world.invsync(&["once"]).await.assert_code(0);
    }
    let batches = world.htf.count("POST", "/batch");
    world
        .hako
        .set_quantity("warehouse-010", &warehouse_sku(3), 77);

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    let summary = run.summary();
    assert!(summary.contains("warehouse(skus=20 changed=1"), "{summary}");
    assert!(
        summary.contains("dropship(skus=30 changed=0 requests=1 answer=same)"),
        "{summary}"
    );
    assert!(
        summary.contains("hardtofind(state=in_sync pushed=1"),
        "{summary}"
    );
    assert_eq!(world.htf.count("POST", "/batch"), batches + 1);
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_recorded_while_a_target_was_skipped_is_pushed_when_its_answers_are_the_same_again()
 {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    world.invsync(&["once"]).await.assert_code(0);
    // The warehouse changes in a cycle where the dropship input fails: Hardtofind (which reads
    // both) skips, but the warehouse's new snapshot is recorded.
    world
        .hako
        .set_quantity("warehouse-010", &warehouse_sku(5), 55);
    world
        .ea
        .faults()
        .push_for("GET", "/api/stock", Fault::Malformed);
    let skipped = world.invsync(&["once"]).await;
    assert!(
        skipped.summary().contains("hardtofind(state=skipped"),
        "{}",
        skipped.summary()
    );
    assert_ne!(world.hardtofind_shows().get(&warehouse_sku(5)), Some(&55));

    // Now every answer is the one recorded: nothing is parsed, yet the change is pushed.
    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    let summary = run.summary();
    assert!(
        summary.contains("warehouse(skus=20 changed=0 requests=1 answer=same)"),
        "{summary}"
    );
    assert!(
        summary.contains("hardtofind(state=in_sync pushed=1"),
        "{summary}"
    );
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn new_rules_for_a_target_plan_it_again_although_no_answer_changed() {
    let mut world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    world.invsync(&["once"]).await.assert_code(0);
    world.setup.htf_extra = "safety_stock = 1\n".into();
    world.write_config();

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    let summary = run.summary();
    assert!(summary.contains("answer=same"), "{summary}");
    let shows = world.hardtofind_shows();
    let expected: Vec<(String, i64)> = world
        .expected_hardtofind()
        .into_iter()
        .map(|(sku, q)| (sku, (q - 1).max(0)))
        .collect();
    for (sku, quantity) in expected {
        assert_eq!(shows.get(&sku), Some(&quantity), "{sku}: {summary}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_read_another_way_is_parsed_again() {
    let world = World::with(Setup::default()).await;
    world.invsync(&["once"]).await.assert_code(0);
    let text = std::fs::read_to_string(&world.config).expect("config");
    std::fs::write(
        &world.config,
        text.replace("sku_prefix = \"EA-\"", "sku_prefix = \"DS-\""),
    )
    .expect("config");

    let run = world.invsync(&["once"]).await;

    // The same bytes under a new prefix are 30 new SKUs and 30 old ones gone: parsed, the
    // answer trips the source's mass-zero guard.
    let summary = run.summary();
    assert!(!summary.contains("answer=same"), "{summary}");
    assert!(
        run.lines_at("ERROR")
            .iter()
            .any(|l| l.contains("source=dropship") && l.contains("held")),
        "{}",
        run.stderr
    );
    assert_eq!(
        world
            .hardtofind_shows()
            .get(&format!("EA-{}", dropship_id(0)))
            .copied(),
        world.ea.stock().get(&dropship_id(0)).copied(),
        "nothing was zeroed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchanged_once_reads_no_sku_state_and_a_changed_one_does() {
    let world = World::start().await;
    for _ in 0..2 {
        world.invsync(&["once"]).await.assert_code(0);
    }
    let debug = [("RUST_LOG", std::ffi::OsStr::new("invsync=debug"))];

    let unchanged = world.invsync_env(&["once"], &debug).await;

    unchanged.assert_code(0);
    assert!(
        !unchanged.stderr.contains("per-SKU state loaded"),
        "{}",
        unchanged.stderr
    );
    world.ea.set_stock(&dropship_id(2), 99);
    let changed = world.invsync_env(&["once"], &debug).await;
    changed.assert_code(0);
    assert!(
        changed.stderr.contains("per-SKU state loaded"),
        "{}",
        changed.stderr
    );
    world.assert_in_sync();
}
