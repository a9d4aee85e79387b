//! What invsync forgets, and when: the names of SKUs nothing holds any more, never one that
//! something still refers to.

use std::time::Duration;

use crate::helpers::{Setup, World, dropship_id};

/// The SKU names the database keeps (a forgotten SKU keeps its id with a blank name).
fn names(world: &World) -> Vec<String> {
    let conn = invsync::store::db::Connection::open(world.database()).expect("db opens");
    let skus = invsync::store::load_skus(&conn).expect("reads");
    (0..skus.len())
        .map(|id| skus.name(id as invsync::plan::ledger::SkuId).to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

/// Pruning runs at most once an hour: the test says the last one was an hour ago.
fn an_hour_passes(world: &World) {
    let conn = invsync::store::db::Connection::open(world.database()).expect("db opens");
    conn.execute(
        "UPDATE meta SET value = value - 3600000 WHERE key = 'sku_names_pruned_at'",
        [],
    )
    .expect("moved back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sku_every_source_dropped_long_ago_loses_its_name_but_one_a_target_still_shows_keeps_it()
{
    let world = World::with(Setup {
        daemon_extra: "guard_window = \"1s\"".into(),
        ..Setup::default()
    })
    .await;
    world.invsync(&["once"]).await.assert_code(0);
    let (gone, refused) = (
        format!("EA-{}", dropship_id(1)),
        format!("EA-{}", dropship_id(2)),
    );
    // Hardtofind refuses the 0 for the second: it still shows (and invsync acknowledged) stock.
    world.htf.reject_sku(&refused, "variant locked");
    world.ea.remove(&dropship_id(1));
    world.ea.remove(&dropship_id(2));
    world.invsync(&["once"]).await.assert_code(1);
    assert!(names(&world).contains(&gone), "not pruned within the hour");

    // Later than the guard window, which no longer counts the zeroing.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    an_hour_passes(&world);
    let run = world.invsync(&["once"]).await;

    let kept = names(&world);
    let forgot = run
        .lines_at("INFO")
        .into_iter()
        .find(|l| l.contains("forgot the names"))
        .unwrap_or_default()
        .to_owned();
    println!("{forgot}");
    assert!(
        !kept.contains(&gone),
        "{gone} is forgotten:\n{}",
        run.stderr
    );
    assert!(
        kept.contains(&refused),
        "{refused} is still acknowledged at Hardtofind"
    );
    assert!(forgot.contains("skus=1"), "{}", run.stderr);
    assert_eq!(
        world.acknowledged("hardtofind").get(&refused).copied(),
        Some(crate::helpers::initial_dropship(2))
    );
    // Nothing else moved, and the SKU pushes again as a new one if it comes back.
    world.htf.accept_sku(&refused);
    world.ea.set_stock(&dropship_id(1), 4);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    world.invsync(&["once"]).await.assert_code(0);
    for (sku, quantity) in world.expected_hardtofind() {
        assert_eq!(world.htf.inventory(&sku), Some(quantity), "{sku}");
    }
    assert_eq!(world.htf.inventory(&gone), Some(4));
    assert_eq!(world.hako.inventory("dropship").get(&gone), Some(&4));
}
