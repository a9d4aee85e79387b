//! SKU mapping: aliases from the `[mapping] file`, Endless Aisles sizes linked to catalogue
//! products by barcode, conflicts held, and sizes Endless Aisles will not sell shown as 0.

use std::time::Duration;

use invsync::services::endless_aisles::sim::SimSize;
use invsync::services::hardtofind::sim::NewOrder;
use invsync::services::shopsys::sim::{ShopsysSim, ShopsysSimConfig, SimProduct};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;

/// Writes the mapping file `skus.csv` next to the configuration and names it in `[mapping]`
/// (with `extra` lines).
pub(crate) fn with_mapping(world: &mut World, csv: &str, extra: &str) {
    std::fs::write(world.dir.path().join("skus.csv"), csv).expect("mapping file");
    world
        .setup
        .extra_tables
        .push_str(&format!("\n[mapping]\nfile = \"skus.csv\"\n{extra}\n"));
    world.write_config();
}

fn write_csv(world: &World, csv: &str) {
    std::fs::write(world.dir.path().join("skus.csv"), csv).expect("mapping file");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_alias_lands_on_hardtofind_under_its_mapped_sku() {
    let mut world = World::start().await;
    world.htf.add_variant("HTF-ONE");
    with_mapping(
        &mut world,
        "sku,endpoint,key\nHK-1,hardtofind,HTF-ONE\n",
        "",
    );

    world.invsync(&["once"]).await.assert_code(0);

    assert_eq!(world.htf.inventory("HTF-ONE"), Some(2), "HK-1's 2 units");
    let pushed: Vec<String> = world
        .htf
        .batches()
        .into_iter()
        .flatten()
        .map(|(sku, _)| sku)
        .collect();
    assert!(!pushed.contains(&"HK-1".to_owned()), "{pushed:?}");
    assert_eq!(world.acknowledged("hardtofind").get("HK-1"), Some(&2));
    let explained = world.invsync(&["status", "--sku", "HK-1"]).await;
    for line in [
        "called HTF-ONE (mapping file line 2) at hardtofind",
        "hardtofind (as HTF-ONE): shows 2 (acknowledged), should show 2",
    ] {
        assert!(explained.stdout.contains(line), "{}", explained.stdout);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_line_under_an_alias_reserves_the_canonical_sku() {
    let mut world = World::start().await;
    world.hako.set_quantity("warehouse-010", "HK-1", 10);
    world.setup.extra_tables = format!(
        "\n[orders.shop_orders]\ntype = \"hardtofind\"\nbase_url = \"{}\"\nusername = \"{HTF_USER}\"\npassword = \"{HTF_PASSWORD}\"\n",
        world.htf.base_url()
    );
    with_mapping(
        &mut world,
        "sku,endpoint,key\nHK-1,shop_orders,SHOP-1\n",
        "",
    );
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(10));

    world
        .htf
        .place_order(NewOrder::new([("SHOP-1".to_owned(), 3)]));
    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(7), "{}", run.stderr);
    let explained = world.invsync(&["status", "--sku", "HK-1"]).await;
    assert!(
        explained.stdout.contains("3 ordered"),
        "{}",
        explained.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_holds_the_sku_at_every_target_and_is_listed_in_status() {
    let mut world = World::start().await;
    world.htf.add_variants(["A-2", "B-2"]);
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("HK-2"), Some(3));
    // HK-2 is given two keys at Hardtofind, and runs out.
    with_mapping(
        &mut world,
        "sku,endpoint,key\nHK-2,hardtofind,A-2\nHK-2,hardtofind,B-2\n",
        "",
    );
    world.hako.set_quantity("warehouse-010", "HK-2", 0);
    world.hako.set_quantity("warehouse-010", "HK-3", 9);
    world.htf.clear_batches();

    for _ in 0..3 {
        world.invsync(&["once"]).await.assert_code(0);
    }

    assert_eq!(world.htf.inventory("HK-2"), Some(3), "never zeroed");
    assert_eq!(world.htf.inventory("A-2"), world.htf.inventory("B-2"));
    let pushed: Vec<String> = world
        .htf
        .batches()
        .into_iter()
        .flatten()
        .map(|(sku, _)| sku)
        .collect();
    assert_eq!(
        pushed,
        ["HK-3"],
        "only the SKU that changed and is not in doubt"
    );
    assert_eq!(world.acknowledged("hardtofind").get("HK-2"), Some(&3));
    let status = world.invsync(&["status"]).await;
    assert!(
        status.stdout.contains(
            "CONFLICT HK-2: at hardtofind: two keys: \"A-2\" and \"B-2\"; held at every target"
        ),
        "{}",
        status.stdout
    );
    let explained = world.invsync(&["status", "--sku", "HK-2"]).await;
    assert!(
        explained.stdout.contains(
            "hardtofind (no key: mapping conflict): shows 3 (acknowledged), should show 0"
        ),
        "{}",
        explained.stdout
    );
    let json = world.invsync(&["status", "--json"]).await;
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(parsed["mapping"]["conflicts"][0]["sku"], "HK-2");

    // Resolved: one key. It is pushed there, and status no longer lists it.
    write_csv(&world, "sku,endpoint,key\nHK-2,hardtofind,A-2\n");
    world.htf.set_inventory("A-2", 8);
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("A-2"), Some(0));
    let status = world.invsync(&["status"]).await;
    assert!(!status.stdout.contains("CONFLICT"), "{}", status.stdout);
}

/// A catalogue simulator with one product, catnum `CAT-1` and ean `ean`, as `[targets.shop]`
/// reading the dropship source.
/// A world where Endless Aisles size 1001 (3 units, upc `0074198609628`) is the catalogue
/// product `CAT-1` (ean `ean`) by barcode, with `by_barcode = true`; the catalogue simulator.
pub(crate) async fn barcode_world(world: &mut World, ean: &str) -> ShopsysSim {
    world.htf.add_variant("CAT-1");
    world.ea.add_product(
        1,
        "Taste Of The Wild",
        vec![SimSize::new(1001, "0074198609628")],
    );
    let shop = catalogue_of(world, ean).await;
    with_mapping(world, "sku,endpoint,key\n", "by_barcode = true\n");
    shop
}

pub(crate) async fn catalogue_of(world: &mut World, ean: &str) -> ShopsysSim {
    let sim = ShopsysSim::start(ShopsysSimConfig::default())
        .await
        .expect("the catalogue simulator starts");
    sim.add_products([SimProduct {
        catnum: Some("CAT-1".into()),
        ean: Some(ean.into()),
        ..SimProduct::numbered(1)
    }]);
    world.setup.extra_tables = format!(
        "[targets.shop]\ntype = \"shopsys\"\nbase_url = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\ninputs = [\"dropship\"]\n",
        sim.base_url(),
        sim.client_id(),
        sim.client_secret(),
    );
    sim
}

#[tokio::test(flavor = "multi_thread")]
async fn a_upc_and_an_ean_with_fewer_leading_zeros_link_the_size_to_the_product() {
    let mut world = World::start().await;
    // Its upc is the catalogue product's ean with one more zero.
    let shop = barcode_world(&mut world, "074198609628").await;

    world.invsync(&["once"]).await.assert_code(0);

    assert_eq!(world.htf.inventory("CAT-1"), Some(3));
    assert_eq!(
        world.htf.inventory("EA-1001"),
        Some(0),
        "never pushed there"
    );
    assert_eq!(world.acknowledged("shop").get("CAT-1"), Some(&3));
    world.ea.set_stock("1001", 0);
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("CAT-1"), Some(0));
    let product = shop
        .product(&SimProduct::numbered(1).uuid)
        .expect("product");
    assert!(product.selling_denied, "the catalogue hears of it too");
    let explained = world.invsync(&["status", "--sku", "CAT-1"]).await;
    assert!(
        explained
            .stdout
            .contains("called 1001 (barcode 00074198609628) at dropship"),
        "{}",
        explained.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_size_that_cannot_be_sold_shows_0_everywhere_with_its_reason() {
    let world = World::start().await;
    world.ea.add_product(
        1,
        "Phundamental Puppy Phood",
        vec![
            SimSize::new(1001, "064992103132"),
            SimSize::new(1002, "655199036110"),
            SimSize::new(1003, "074198609635"),
        ],
    );
    assert!(world.ea.set_purchasability(1001, false));
    assert!(world.ea.set_discontinued(1002, true));

    world.invsync(&["once"]).await.assert_code(0);

    for sku in ["EA-1001", "EA-1002"] {
        assert_eq!(world.htf.inventory(sku), Some(0), "{sku} at Hardtofind");
        assert_eq!(
            world.hako.quantity("dropship", sku),
            Some(0),
            "{sku} at Hako"
        );
    }
    assert_eq!(world.htf.inventory("EA-1003"), Some(initial_dropship(3)));
    let explained = world.invsync(&["status", "--sku", "EA-1001"]).await;
    assert!(
        explained
            .stdout
            .contains("counts as 0: not purchasable at dropship"),
        "{}",
        explained.stdout
    );
    let explained = world.invsync(&["status", "--sku", "EA-1002"]).await;
    assert!(
        explained
            .stdout
            .contains("counts as 0: discontinued at dropship"),
        "{}",
        explained.stdout
    );
    // Read once and kept: the next start does not read the products again before they are due.
    let before = world.ea.count("GET", "/api/products");
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.ea.count("GET", "/api/products"), before);
}

#[tokio::test]
async fn mistakes_in_the_mapping_file_name_the_file_and_line_in_check_and_at_start() {
    let mut world = World::start().await;
    with_mapping(
        &mut world,
        "sku,endpoint,key\nHK-1,hardtofind,A\nHK-2,dropshp,1001\nHK-3,,B\nHK-1,hardtofind,A\n",
        "",
    );

    for args in [&["check", "--offline"][..], &["run"]] {
        let run = world.invsync(args).await;
        run.assert_code(2);
        for expected in [
            "skus.csv: line 3: unknown endpoint \"dropshp\": not a source, target or order feed of the configuration; did you mean \"dropship\"?",
            "skus.csv: line 4: the endpoint is empty",
            "skus.csv: line 5: duplicates line 2",
        ] {
            assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_applies_a_changed_mapping_file_and_keeps_the_old_one_when_it_is_bad() {
    let mut world = World::start().await;
    world.htf.add_variant("HTF-ONE");
    with_mapping(&mut world, "sku,endpoint,key\n", "");
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut until = async |what: &str| {
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(what) {
                    return line;
                }
            }
            panic!("no line with {what:?}");
        })
        .await
        .expect("in time")
    };
    until("cycle finished").await;

    write_csv(&world, "sku,endpoint,key\nHK-1,hardtofind,HTF-ONE\n");
    signal(&child, "HUP");
    until("changed=mapping.file").await;
    wait_until("HK-1 pushed as HTF-ONE", || {
        world.htf.inventory("HTF-ONE") == Some(2)
    })
    .await;

    write_csv(&world, "sku,endpoint,key\nHK-1,nowhere,HTF-ONE\n");
    signal(&child, "HUP");
    let error = until("the configuration was not reloaded").await;
    assert!(error.contains("ERROR"), "{error}");
    assert!(error.contains("line 2"), "{error}");
    assert!(error.contains("skus.csv"), "{error}");
    world.hako.set_quantity("warehouse-010", "HK-1", 6);
    wait_until("the old mapping goes on", || {
        world.htf.inventory("HTF-ONE") == Some(6)
    })
    .await;
    signal(&child, "TERM");
    let status = child.wait().await.expect("exits");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sku_at_0_given_a_new_key_is_pushed_under_it_after_a_failed_push_and_a_restart() {
    let mut world = World::start().await;
    world.hako.set_quantity("warehouse-010", "HK-1", 0);
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.acknowledged("hardtofind").get("HK-1"), Some(&0));
    // Under its new key Hardtofind still shows what some earlier tool left there.
    world.htf.add_variant("HTF-ONE");
    world.htf.set_inventory("HTF-ONE", 5);
    with_mapping(
        &mut world,
        "sku,endpoint,key\nHK-1,hardtofind,HTF-ONE\n",
        "",
    );

    // The new key voids what was acknowledged under the old one; then every push fails.
    world.htf.faults().set_down(Some(503));
    let failed = world.invsync(&["once"]).await;
    assert_ne!(failed.code, Some(0), "{}", failed.stderr);
    assert_eq!(
        world.acknowledged("hardtofind").get("HK-1"),
        None,
        "a voided acknowledgement is none on disk, not an acknowledged 0"
    );
    assert_eq!(world.htf.inventory("HTF-ONE"), Some(5));

    // A new process (a restart) pushes the 0 under the new key.
    world.htf.faults().set_down(None);
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(
        world.htf.inventory("HTF-ONE"),
        Some(0),
        "the stale 5 is gone"
    );
    assert_eq!(world.acknowledged("hardtofind").get("HK-1"), Some(&0));
}
