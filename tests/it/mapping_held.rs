//! Mapping fails closed, and says so: a collision at a source is a conflict held at every
//! target, a first cycle with `by_barcode` links its sizes, and `status` never says "in sync"
//! while anything is held.

use crate::helpers::*;
use crate::mapping::{barcode_world, with_mapping};

#[tokio::test(flavor = "multi_thread")]
async fn an_alias_that_gives_a_sku_the_name_another_sku_has_at_the_same_source_is_a_conflict_listed_in_status()
 {
    let mut world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(2));
    // The file says the warehouse calls HK-1 "HK-OLD"; the warehouse also reports a record
    // named HK-1 itself, at 0. Which one is HK-1? invsync cannot tell.
    world.hako.set_quantity("warehouse-010", "HK-OLD", 50);
    world.hako.set_quantity("warehouse-010", "HK-1", 0);
    world.hako.set_quantity("warehouse-010", "HK-3", 9);
    with_mapping(&mut world, "sku,endpoint,key\nHK-1,warehouse,HK-OLD\n", "");

    for _ in 0..2 {
        world.invsync(&["once"]).await.assert_code(0);
    }

    assert_eq!(
        world.htf.inventory("HK-1"),
        Some(2),
        "held at what it acknowledged, neither figure"
    );
    assert_eq!(world.htf.inventory("HK-3"), Some(9), "the rest goes on");
    assert_eq!(world.acknowledged("hardtofind").get("HK-1"), Some(&2));
    let status = world.invsync(&["status"]).await;
    println!("{}", status.stdout.trim_end());
    assert!(
        status.stdout.contains("CONFLICT HK-1: at warehouse: "),
        "{}",
        status.stdout
    );
    assert!(
        !status.stdout.contains("in sync"),
        "a held SKU is not in sync: {}",
        status.stdout
    );
    let check = world.invsync(&["status", "--check"]).await;
    check.assert_code(2);
    println!("{}", check.stdout.trim_end());
    assert!(
        check.stdout.starts_with("CRITICAL: ") && check.stdout.contains("HK-1"),
        "{}",
        check.stdout
    );
    let json = world.invsync(&["status", "--json"]).await;
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let held = parsed["held"].as_array().expect("a held list");
    assert!(
        held.iter()
            .any(|h| h["kind"] == "mapping_conflict" && h["sku"] == "HK-1"),
        "{held:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_by_barcode_a_first_once_on_a_fresh_database_pushes_the_linked_sizes() {
    let mut world = World::start().await;
    let shop = barcode_world(&mut world, "074198609628").await;

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(world.htf.inventory("CAT-1"), Some(3), "{}", run.stderr);
    assert_eq!(world.hako.quantity("dropship", "CAT-1"), Some(3));
    assert_eq!(world.acknowledged("shop").get("CAT-1"), Some(&3));
    assert_eq!(
        shop.count("GET", "/api/v1/products"),
        1,
        "the product list is read once"
    );
    let check = world.invsync(&["status", "--check"]).await;
    check.assert_code(0);
    assert_eq!(check.stdout.trim_end(), "OK: 3 targets in sync");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_never_says_in_sync_while_sizes_wait_for_the_catalogue() {
    let mut world = World::start().await;
    let shop = barcode_world(&mut world, "074198609628").await;
    // The catalogue refuses the credentials: its products cannot be read.
    shop.faults().set_down(Some(401));

    world.invsync(&["once"]).await.assert_code(1);

    assert_eq!(world.htf.inventory("EA-1001"), Some(0), "never pushed");
    let status = world.invsync(&["status"]).await;
    println!("{}", status.stdout.trim_end());
    let hardtofind = status
        .stdout
        .lines()
        .find(|l| l.starts_with("  hardtofind: "))
        .expect("a hardtofind line");
    assert!(!hardtofind.contains("in sync"), "{}", status.stdout);
    assert!(hardtofind.contains("HELD 1 SKU"), "{}", status.stdout);
    assert!(
        status
            .stdout
            .contains("dropship: 1 size with a barcode waits for the product list of shop"),
        "{}",
        status.stdout
    );
    let check = world.invsync(&["status", "--check"]).await;
    check.assert_code(2);
    assert!(
        check.stdout.contains("hardtofind HELD 1 SKU"),
        "{}",
        check.stdout
    );
    let json = world.invsync(&["status", "--json"]).await;
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let held = parsed["held"].as_array().expect("a held list");
    assert!(
        held.iter()
            .any(|h| h["kind"] == "waiting_for_catalogue" && h["endpoint"] == "dropship"),
        "{held:?}"
    );
}
