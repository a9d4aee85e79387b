//! A target's acknowledged state belongs to the place it writes, not to its name in the file.

use invsync::sim::{HardtofindSim, HardtofindSimConfig};

use crate::helpers::*;

/// SKUs Hardtofind was sent since the last `clear_batches`.
fn skus_sent(htf: &HardtofindSim) -> usize {
    htf.batches().iter().map(Vec::len).sum()
}

fn replace_in_config(world: &World, from: &str, to: &str) {
    let text = std::fs::read_to_string(&world.config).expect("config");
    assert!(text.contains(from), "{from:?} not in the config");
    std::fs::write(&world.config, text.replace(from, to)).expect("write config");
}

/// The configuration without its `[targets.hako_dropship]` table.
fn without_hako_target(world: &World) -> String {
    let text = std::fs::read_to_string(&world.config).expect("config");
    let start = text.find("[targets.hako_dropship]").expect("table");
    text[..start].to_owned()
}

#[tokio::test]
async fn a_hardtofind_target_moved_to_another_account_gets_every_sku_there() {
    let mut world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    let expected = world.expected_hardtofind();
    let elsewhere = HardtofindSim::start(HardtofindSimConfig {
        username: HTF_USER.into(),
        password: HTF_PASSWORD.into(),
        catalogue: expected.keys().cloned().collect(),
        ..Default::default()
    })
    .await
    .expect("second hardtofind");
    world.htf = elsewhere;
    world.write_config();

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(
        world.hardtofind_shows(),
        expected,
        "the new account has every SKU"
    );
    let warns = run.lines_at("WARN");
    assert!(
        warns
            .iter()
            .any(|l| l.contains("identity changed") && l.contains("endpoint=hardtofind")),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn another_username_trusts_nothing_and_coming_back_pushes_every_sku_again() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    let skus = world.expected_hardtofind().len();
    replace_in_config(
        &world,
        &format!("username = \"{HTF_USER}\""),
        "username = \"other@example.com\"",
    );

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    assert!(run.stderr.contains("identity changed"), "{}", run.stderr);
    assert!(
        world.acknowledged("hardtofind").is_empty(),
        "nothing of the old account is trusted"
    );
    world.htf.clear_batches();
    replace_in_config(
        &world,
        "username = \"other@example.com\"",
        &format!("username = \"{HTF_USER}\""),
    );
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(skus_sent(&world.htf), skus, "every SKU pushed once more");
    world.assert_in_sync();
}

#[tokio::test]
async fn a_hako_target_moved_to_another_warehouse_fills_it() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    world.hako.add_warehouse("dropship-2");
    replace_in_config(
        &world,
        "warehouse = \"dropship\"",
        "warehouse = \"dropship-2\"",
    );

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(
        world.hako.inventory("dropship-2"),
        world.expected_hako_dropship(),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("identity changed"), "{}", run.stderr);
}

#[tokio::test]
async fn a_target_removed_and_added_again_is_pushed_every_sku_and_its_state_was_deleted() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    let full = std::fs::read_to_string(&world.config).expect("config");
    std::fs::write(&world.config, without_hako_target(&world)).expect("write");

    let removed = world.invsync(&["once"]).await;

    removed.assert_code(0);
    assert!(
        removed
            .lines_at("INFO")
            .iter()
            .any(|l| l.contains("no longer configured") && l.contains("hako_dropship")),
        "{}",
        removed.stderr
    );
    assert!(world.acknowledged("hako_dropship").is_empty());
    std::fs::write(&world.config, full).expect("write");
    let writes_before = world.hako.write_requests();
    let again = world.invsync(&["once"]).await;
    again.assert_code(0);
    assert!(world.hako.write_requests() > writes_before, "pushed again");
    assert_eq!(
        world.acknowledged("hako_dropship").len(),
        world.expected_hako_dropship().len()
    );
    assert!(
        again
            .lines_at("WARN")
            .iter()
            .any(|l| l.contains("removed and added again")),
        "{}",
        again.stderr
    );
}

#[tokio::test]
async fn a_database_from_before_identities_pushes_nothing_when_nothing_changed() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    {
        // What version 3 looked like: no identities, no fingerprint key (nor what came later).
        let conn = invsync::store::db::Connection::open(world.database()).expect("db");
        // Version 3 had no deltas: they go into the chunks first, as a fold would put them.
        invsync::store::fold_all(&conn).expect("folds");
        conn.execute_batch(
            "DROP TABLE quantity_deltas;
             ALTER TABLE targets DROP COLUMN in_doubt;
             ALTER TABLE sources DROP COLUMN answer_digest;
             ALTER TABLE targets DROP COLUMN settled;
             ALTER TABLE targets DROP COLUMN progress_pushed;
             ALTER TABLE targets DROP COLUMN progress_total;
             ALTER TABLE targets DROP COLUMN progress_at;
             ALTER TABLE targets DROP COLUMN synced_at;
             ALTER TABLE sources DROP COLUMN identity;
             ALTER TABLE targets DROP COLUMN identity;
             DROP TABLE meta;
             ALTER TABLE sources DROP COLUMN guard_since;
             ALTER TABLE targets DROP COLUMN guard_since;
             ALTER TABLE failed_skus DROP COLUMN attempts;
             ALTER TABLE failed_skus DROP COLUMN next_attempt_at;
             ALTER TABLE sources DROP COLUMN auth_failures;
             ALTER TABLE sources DROP COLUMN auth_retry_at;
             ALTER TABLE targets DROP COLUMN auth_failures;
             ALTER TABLE targets DROP COLUMN auth_retry_at;
             ALTER TABLE sources DROP COLUMN auth_credential;
             ALTER TABLE targets DROP COLUMN auth_credential;
             DELETE FROM quantity_chunks WHERE side > 1;
             DROP TABLE reservations;
             DROP TABLE unallotted;
             DROP TABLE flags;
             DROP TABLE unchangeable_products;
             DROP TABLE unabsorbed_changes;
             DROP TABLE relay_orders;
             DROP TABLE ea_sizes;
             DROP TABLE ea_products_read;
             DROP TABLE barcodes;
             DROP TABLE mapping_notes;
             DROP TABLE feeds;
             DROP TABLE mapping_file;
             DROP TABLE mapping_lines;
             PRAGMA user_version = 3;",
        )
        .expect("back to version 3");
    }
    world.htf.clear_batches();
    let writes_before = world.hako.write_requests();

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert!(run.summary().contains("pushed=0"), "{}", run.summary());
    assert_eq!(skus_sent(&world.htf), 0);
    assert_eq!(world.hako.write_requests(), writes_before);
    assert!(run.lines_at("WARN").is_empty(), "{}", run.stderr);
}

#[tokio::test]
async fn localhost_and_127_0_0_1_are_one_hako_account_for_the_feedback_check() {
    let world = World::start().await;
    let loopback = world.hako.base_url();
    let spelt_otherwise = loopback.replace("127.0.0.1", "LocalHost") + "/";
    let text = std::fs::read_to_string(&world.config).expect("config");
    // The target writes, through another spelling, the warehouse the source reads.
    let target_at = text
        .rfind(&format!("base_url = \"{loopback}\""))
        .expect("hako target");
    let mut looped = text.clone();
    looped.replace_range(
        target_at..target_at + format!("base_url = \"{loopback}\"").len(),
        &format!("base_url = \"{spelt_otherwise}\""),
    );
    let looped = looped.replace("warehouse = \"dropship\"", "warehouse = \"warehouse-010\"");
    std::fs::write(&world.config, looped).expect("write");

    let run = world.invsync(&["check"]).await;

    run.assert_code(2);
    assert!(
        run.stderr.contains("targets.hako_dropship.warehouse")
            && run.stderr.contains("feedback loop"),
        "{}",
        run.stderr
    );
}
