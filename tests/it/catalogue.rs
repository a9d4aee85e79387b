//! The catalogue target (`type = "shopsys"`) against its simulator: a flag, not a quantity, set
//! at once when stock runs out, cleared only when it has been back for two cycles, and only
//! ever by the one who set it.

use std::collections::BTreeSet;
use std::time::Duration;

use invsync::services::shopsys::sim::{ShopsysSim, ShopsysSimConfig, SimProduct};
use invsync::sim::Dialect;
use invsync::sim::dialect::VALUES;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Setup, World, read_until, signal, wait_until, warehouse_sku};

pub(crate) const SECRET: &str = "shop-canary-client-secret";

/// A world whose warehouse SKUs `HK-1`… are also the catnums of `products` catalogue products,
/// with `[targets.shop]` reading the warehouse (plus `extra` lines).
pub(crate) async fn shop_world(products: usize, extra: &str) -> (World, ShopsysSim) {
    let mut world = World::with(Setup {
        warehouse_skus: products,
        ..Setup::default()
    })
    .await;
    let sim = ShopsysSim::start(ShopsysSimConfig {
        client_secret: SECRET.to_owned(),
        ..ShopsysSimConfig::default()
    })
    .await
    .expect("the catalogue simulator starts");
    sim.add_products((1..=products).map(product));
    world.setup.extra_tables = format!(
        "[targets.shop]\ntype = \"shopsys\"\nbase_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{SECRET}\"\ninputs = [\"warehouse\"]\n{extra}\n",
        sim.base_url(),
        sim.client_id(),
    );
    world.write_config();
    (world, sim)
}

/// Catalogue product `i`, whose catnum is warehouse SKU `i`.
pub(crate) fn product(i: usize) -> SimProduct {
    SimProduct {
        catnum: Some(warehouse_sku(i)),
        ..SimProduct::numbered(i as u64)
    }
}

pub(crate) fn uuid(i: usize) -> String {
    product(i).uuid
}

pub(crate) fn denied(sim: &ShopsysSim, i: usize) -> bool {
    sim.product(&uuid(i)).expect("the product").selling_denied
}

/// `PATCH`es of product `i` the shop received, answered or not.
pub(crate) fn patches_of(sim: &ShopsysSim, i: usize) -> usize {
    sim.count("PATCH", &uuid(i))
}

pub(crate) fn stock(world: &World, i: usize, quantity: i64) {
    world
        .hako
        .set_quantity("warehouse-010", &warehouse_sku(i), quantity);
}

/// The points of the catalogue simulator's dialect that the core promise must meet, each value.
const POINTS: [&str; 3] = ["gone", "errors", "empty_link"];

#[tokio::test(flavor = "multi_thread")]
async fn the_flag_is_set_at_zero_and_cleared_only_after_two_cycles_at_allow_at_in_every_dialect() {
    let mut spoken = BTreeSet::new();
    for dialect in Dialect::covering() {
        spoken.extend(flag_set_and_cleared(dialect).await);
    }

    for (point, values) in VALUES.iter().filter(|(p, _)| POINTS.contains(p)) {
        for value in *values {
            assert!(
                spoken.contains(&(*point, *value)),
                "{point}={value} was never answered: {spoken:?}"
            );
        }
    }
}

/// The core promise under `dialect`, with the catalogue made to answer each open point on the
/// way: a variant refuses its PATCH (`errors`), a product vanishes between the list and its
/// PATCH (`gone`), and a second catalogue is empty (`empty_link`). Answers what was spoken.
async fn flag_set_and_cleared(dialect: Dialect) -> BTreeSet<(&'static str, &'static str)> {
    let (mut world, sim) = shop_world(20, "").await;
    let empty = ShopsysSim::start(ShopsysSimConfig::default())
        .await
        .expect("the empty catalogue starts");
    world.setup.extra_tables.push_str(&format!(
        "[targets.empty]\ntype = \"shopsys\"\nbase_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\ninputs = [\"warehouse\"]\n",
        empty.base_url(),
        empty.client_id(),
        empty.client_secret()
    ));
    world.write_config();
    sim.set_dialect(dialect);
    empty.set_dialect(dialect);
    sim.update(&uuid(6), |p| p.variant = true);
    stock(&world, 6, 0);
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(
        sim.patch_count(),
        0,
        "{dialect}: nothing else is out of stock"
    );

    stock(&world, 3, 0);
    sim.vanish_after_listing(&uuid(9));
    stock(&world, 9, 0);
    world.invsync(&["once"]).await.assert_code(0);
    assert!(denied(&sim, 3), "{dialect}: flagged at once");
    assert_eq!(sim.patch_count(), 1, "{dialect}");

    stock(&world, 3, 5);
    world.invsync(&["once"]).await.assert_code(0);
    assert!(
        denied(&sim, 3),
        "{dialect}: one cycle back in stock is not enough"
    );
    world.invsync(&["once"]).await.assert_code(0);

    assert!(!denied(&sim, 3), "{dialect}: cleared after the second");
    assert_eq!(sim.patch_count(), 2, "{dialect}");
    assert_eq!(
        world.acknowledged("shop").get("HK-3"),
        Some(&5),
        "{dialect}"
    );
    let mut spoken = sim.dialect_used();
    spoken.extend(empty.dialect_used());
    spoken
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_flagged_before_invsync_saw_it_is_never_cleared() {
    let (world, sim) = shop_world(20, "").await;
    sim.update(&uuid(4), |p| p.selling_denied = true);

    for quantity in [6, 0, 5, 5, 5] {
        stock(&world, 4, quantity);
        world.invsync(&["once"]).await.assert_code(0);
    }

    assert!(denied(&sim, 4), "someone else's flag stays");
    assert_eq!(patches_of(&sim, 4), 0, "never touched");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_get_that_disagrees_after_a_patch_causes_no_second_patch_over_many_cycles() {
    let (world, sim) = shop_world(20, "").await;
    world.invsync(&["once"]).await.assert_code(0);
    stock(&world, 5, 0);
    world.invsync(&["once"]).await.assert_code(0);
    // The shop's own rule denies selling whatever the raw flag: GET keeps showing it set.
    sim.set_shop_denies(&uuid(5), true);
    stock(&world, 5, 9);

    for _ in 0..8 {
        world.invsync(&["once"]).await.assert_code(0);
    }

    assert_eq!(
        patches_of(&sim, 5),
        2,
        "set once, cleared once, nothing more"
    );
    let raw = sim.product(&uuid(5)).expect("the product");
    assert!(!raw.selling_denied, "invsync's own flag is cleared");
    assert!(
        raw.shown().selling_denied,
        "GET still shows the shop's own flag"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_and_fifty_products_over_three_pages_are_all_mapped() {
    let (world, sim) = shop_world(250, "").await;
    for i in [1, 150, 250] {
        stock(&world, i, 0);
    }

    let run = world.invsync(&["once"]).await.assert_code(0).stderr.clone();

    assert!(denied(&sim, 1) && denied(&sim, 150) && denied(&sim, 250));
    assert_eq!(sim.patch_count(), 3);
    let page_three = sim
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.query.as_deref() == Some("page=3"))
        .count();
    assert_eq!(page_three, 1, "{run}");
    assert!(
        run.lines()
            .any(|l| l.contains("product list read") && l.contains("skus=250")),
        "{run}"
    );
    assert_eq!(world.acknowledged("shop").len(), 250);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_renewed_without_an_error() {
    let (world, sim) = shop_world(20, "").await;
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    assert!(
        read_until(&mut lines, &mut log, "cycle finished", 2).await,
        "{log}"
    );

    sim.expire_all_tokens();
    stock(&world, 2, 0);
    wait_until("the flag is set with a new token", || denied(&sim, 2)).await;
    assert!(
        read_until(&mut lines, &mut log, "cycle finished", 2).await,
        "{log}"
    );
    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    while let Ok(Some(line)) = lines.next_line().await {
        log.push_str(&line);
        log.push('\n');
    }

    assert_eq!(
        status.ok().and_then(|s| s.ok()).and_then(|s| s.code()),
        Some(0)
    );
    assert!(sim.tokens_issued() >= 2, "a second token was issued");
    assert!(sim.unauthorized_count() >= 1, "the first one was refused");
    assert!(!log.contains(" ERROR "), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_secret_and_its_tokens_never_appear_in_output_at_trace() {
    let (world, sim) = shop_world(20, "").await;
    let text = std::fs::read_to_string(&world.config).expect("config");
    std::fs::write(
        &world.config,
        text.replace("log_level = \"info\"", "log_level = \"trace\""),
    )
    .expect("write");
    stock(&world, 8, 0);

    let good = world.invsync(&["once"]).await;
    let check = world.invsync(&["check"]).await;
    let wrong = text
        .replace(SECRET, "shop-wrong-secret-canary")
        .replace("log_level = \"info\"", "log_level = \"trace\"");
    std::fs::write(&world.config, wrong).expect("write");
    let refused = world.invsync(&["once"]).await;

    assert!(denied(&sim, 8), "the trace run worked:\n{}", good.stderr);
    assert!(good.stderr.contains("TRACE") || good.stderr.contains("DEBUG"));
    let tokens: Vec<String> = sim
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization"))
        .filter_map(|h| h.strip_prefix("Bearer "))
        .map(str::to_owned)
        .collect();
    assert!(!tokens.is_empty(), "tokens were used");
    for run in [&good, &check, &refused] {
        for secret in tokens
            .iter()
            .map(String::as_str)
            .chain([SECRET, "shop-wrong-secret-canary"])
        {
            assert!(
                !run.stderr.contains(secret),
                "{secret} in stderr:\n{}",
                run.stderr
            );
            assert!(!run.stdout.contains(secret), "{secret} in stdout");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_example_of_a_catalogue_target_is_valid() {
    let (world, sim) = shop_world(1, "").await;
    let example = include_str!("../../config.example.toml");
    let start = example.find("# [targets.shop]").expect("the example");
    let table: String = example[start..]
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.split_once(" = ") {
            Some(("base_url", _)) => format!("base_url = \"{}\"\n", sim.base_url()),
            Some(("client_secret_file", _)) => format!("client_secret = \"{SECRET}\"\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    let text = std::fs::read_to_string(&world.config).expect("config");
    let at = text.find("[targets.shop]").expect("the test's table");
    std::fs::write(&world.config, format!("{}{table}", &text[..at])).expect("write");

    let check = world.invsync(&["check"]).await;

    check.assert_code(0);
    assert!(
        check.stdout.contains("shop") || check.stderr.contains("shop"),
        "{}",
        check.stderr
    );
    assert_eq!(sim.tokens_issued(), 1, "the catalogue was logged in to");
}

/// In `run`, a catalogue whose flags are at rest is not planned again while nothing changes,
/// yet a SKU running out is flagged at the next cycle and cleared two cycles after it is back,
/// the second of those with no quantity changing in between.
#[tokio::test(flavor = "multi_thread")]
async fn a_catalogue_at_rest_is_not_planned_in_run_and_still_flags_and_clears() {
    let (world, sim) = shop_world(20, "").await;
    let debug = std::ffi::OsStr::new("invsync=debug");
    let mut child = world.spawn(&["run"], &[("RUST_LOG", debug)]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    // The first cycle reads the list and plans; the next brings the flags to rest (the Hako
    // target's writes change the warehouse answer once); after that, nothing plans the shop.
    assert!(
        read_until(&mut lines, &mut log, "cycle finished", 3).await,
        "{log}"
    );
    let mut quiet = String::new();
    assert!(
        read_until(&mut lines, &mut quiet, "cycle finished", 2).await,
        "{quiet}"
    );
    assert!(!quiet.contains("planned target=shop"), "{log}{quiet}");
    let settled = |world: &World| -> Option<String> {
        let conn = rusqlite::Connection::open(world.database()).expect("db");
        conn.query_row("SELECT settled FROM targets WHERE name = 'shop'", [], |r| {
            r.get(0)
        })
        .expect("the shop's row")
    };
    assert!(settled(&world).is_some(), "{log}{quiet}");

    stock(&world, 3, 0);
    wait_until("HK-3 is flagged", || denied(&sim, 3)).await;
    stock(&world, 3, 5);
    wait_until("HK-3 is cleared two cycles later", || !denied(&sim, 3)).await;
    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    assert_eq!(
        status.ok().and_then(|s| s.ok()).and_then(|s| s.code()),
        Some(0)
    );
    assert_eq!(patches_of(&sim, 3), 2, "set once, cleared once");
    assert_eq!(sim.patch_count(), 2);
}
