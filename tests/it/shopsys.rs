//! The catalogue target against Shopsys as it really is (issue 19): an unknown product is 404 or
//! 410, an empty catalogue is `200 []` with a `Link` to a page 2, error bodies are generic on a
//! production install, a variant can never be patched, `GET` shows a calculated flag, and one
//! SKU may be matched by two products.

use invsync::services::shopsys::sim::{ShopsysSim, SimProduct};
use invsync::sim::Dialect;

use crate::catalogue::{denied, patches_of, product, shop_world, stock, uuid};
use crate::helpers::{World, warehouse_sku};

fn dialect(text: &str) -> Dialect {
    text.parse().expect("a dialect")
}

fn status_json(run: &crate::helpers::Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).expect("status --json is JSON")
}

/// The shop target's part of `status --json`.
async fn shop_status(world: &World) -> serde_json::Value {
    let status = status_json(&world.invsync(&["status", "--json"]).await);
    let targets = status["targets"].as_array().cloned().unwrap_or_default();
    (targets.into_iter())
        .find(|t| t["name"] == "shop")
        .expect("the shop target")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_product_answers_404_or_410_and_both_mean_no_such_product() {
    for gone in ["gone=404", "gone=410,errors=production"] {
        let (world, sim) = shop_world(20, "").await;
        sim.set_dialect(dialect(gone));
        // Deleted in the shop between invsync's read of the list and its PATCH.
        sim.vanish_after_listing(&uuid(9));
        stock(&world, 9, 0);

        let first = world.invsync(&["once"]).await;
        let second = world.invsync(&["once"]).await;
        let status = world.invsync(&["status"]).await;

        first.assert_code(0);
        second.assert_code(0);
        assert_eq!(patches_of(&sim, 9), 1, "{gone}");
        assert!(
            first.stderr.contains("no longer exists"),
            "{gone}: {}",
            first.stderr
        );
        assert!(!status.stdout.contains("refused HK-9"), "{}", status.stdout);
        assert!(
            status.stdout.contains("unmapped at shop: HK-9"),
            "{gone}: read again, it has no product:\n{}",
            status.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_catalogue_is_200_with_a_link_to_page_2_and_is_read_as_empty() {
    for link in ["bogus_next", "empty", "absent"] {
        let (world, sim) = shop_world(5, "").await;
        (1..=5).for_each(|i| assert!(sim.remove_product(&uuid(i))));
        sim.set_dialect(dialect(&format!("empty_link={link},errors=production")));

        let check = world.invsync(&["check"]).await;
        let once = world.invsync(&["once"]).await;

        check.assert_code(0);
        let said = format!("{}{}", check.stdout, check.stderr);
        assert!(
            said.contains("the catalogue has no products"),
            "{link}: {said}"
        );
        once.assert_code(0);
        assert!(once.lines_at("ERROR").is_empty(), "{link}: {}", once.stderr);
        let pages: Vec<u16> = (sim.requests().iter())
            .filter(|r| r.method == "GET" && r.query.as_deref() == Some("page=1"))
            .map(|r| r.status)
            .collect();
        assert_eq!(pages, [200, 200], "{link}: page 1 is 200 [], not 422");
        assert!(
            sim.dialect_used()
                .contains(&("empty_link", link_name(link)))
        );
    }
}

fn link_name(link: &str) -> &'static str {
    match link {
        "bogus_next" => "bogus_next",
        "empty" => "empty",
        _ => "absent",
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_validation_error_keeps_its_text_and_a_variant_is_unchangeable_under_both_error_bodies() {
    for errors in ["debug", "production"] {
        let (world, sim) = shop_world(20, "").await;
        sim.set_dialect(dialect(&format!("errors={errors}")));
        let bad_date = "This value is not a valid datetime.";
        sim.update(&uuid(5), |p| {
            p.invalid = Some(("sellingTo".to_owned(), bad_date.to_owned()))
        });
        sim.update(&uuid(6), |p| p.variant = true);
        stock(&world, 5, 0);
        stock(&world, 6, 0);

        world.invsync(&["once"]).await;
        let status = world.invsync(&["status"]).await.stdout.clone();
        let json = shop_status(&world).await;

        assert!(status.contains("refused HK-5"), "{errors}: {status}");
        assert!(status.contains(bad_date), "{errors}: {status}");
        assert!(!status.contains("refused HK-6"), "{errors}: {status}");
        assert!(
            status.contains("the catalogue API cannot change"),
            "{errors}: {status}"
        );
        assert_eq!(json["unchangeable"][0]["sku"], "HK-6", "{errors}: {json}");
        assert!(
            sim.dialect_used()
                .contains(&("errors", errors_name(errors)))
        );
    }
}

fn errors_name(errors: &str) -> &'static str {
    if errors == "debug" {
        "debug"
    } else {
        "production"
    }
}

/// SQL on the test's database.
fn sql(world: &World, statement: &str) {
    let conn = rusqlite::Connection::open(world.database()).expect("db");
    conn.execute(statement, []).expect(statement);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_variant_refused_without_errors_does_not_stop_the_target_and_waits_for_a_change_or_a_week()
 {
    let (world, sim) = shop_world(24, "").await;
    sim.set_dialect(dialect("errors=production"));
    for i in 1..=20 {
        sim.update(&uuid(i), |p| p.variant = true);
        stock(&world, i, 0);
    }
    stock(&world, 21, 0);

    let first = world.invsync(&["once"]).await;

    first.assert_code(0);
    assert!(denied(&sim, 21), "the product that can change is flagged");
    assert!(
        !first.stderr.contains("refuses every product"),
        "{}",
        first.stderr
    );
    let status = world.invsync(&["status"]).await.stdout.clone();
    assert!(
        status.contains("the catalogue API cannot change"),
        "{status}"
    );
    assert!(
        !status.contains("Bad Request\n") || !status.contains("refused"),
        "{status}"
    );
    assert!(!status.contains("FAILING"), "{status}");
    let json = shop_status(&world).await;
    assert_eq!(json["unchangeable_total"], 20, "{json}");
    assert_eq!(json["failed_skus"], 0, "{json}");
    let explain = world.invsync(&["status", "--sku", "HK-1"]).await;
    assert!(
        explain.stdout.contains("the catalogue API cannot change"),
        "{}",
        explain.stdout
    );

    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(
        patches_of(&sim, 1),
        1,
        "not tried again while nothing changes"
    );

    sim.update(&uuid(1), |p| p.name = "Renamed in the shop".to_owned());
    sql(
        &world,
        &format!(
            "UPDATE unchangeable_products SET refused_at = refused_at - 8 * 86400000 WHERE product = '{}'",
            uuid(2)
        ),
    );
    world.invsync(&["once"]).await.assert_code(0);

    assert_eq!(patches_of(&sim, 1), 2, "its product changed: tried again");
    assert_eq!(patches_of(&sim, 2), 2, "a week passed: tried again");
    assert_eq!(patches_of(&sim, 3), 1, "neither: still waiting");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_product_flagged_in_shopsys_at_first_sight_is_managed_once_shopsys_clears_it() {
    let (world, sim) = shop_world(20, "").await;
    // Shopsys's own stock rule ("exclude from sale") shows it denied when invsync first looks.
    sim.set_shop_denies(&uuid(4), true);
    world.invsync(&["once"]).await.assert_code(0);
    sim.set_shop_denies(&uuid(4), false);
    world.invsync(&["once"]).await.assert_code(0);

    stock(&world, 4, 0);
    world.invsync(&["once"]).await.assert_code(0);
    assert!(denied(&sim, 4), "invsync flags it when its SKU runs out");

    stock(&world, 4, 3);
    for _ in 0..2 {
        world.invsync(&["once"]).await.assert_code(0);
    }
    assert!(!denied(&sim, 4), "and clears its own flag");
    assert_eq!(patches_of(&sim, 4), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sku_that_two_products_match_is_flagged_on_both_when_it_runs_out_and_cleared_on_both() {
    let (world, sim) = shop_world(20, "").await;
    let twin = SimProduct {
        catnum: Some(warehouse_sku(7)),
        ..SimProduct::numbered(99)
    };
    sim.add_products([twin.clone()]);
    let both = |sim: &ShopsysSim| {
        let twin = sim.product(&twin.uuid).expect("the twin").selling_denied;
        (denied(sim, 7), twin)
    };

    stock(&world, 7, 0);
    world.invsync(&["once"]).await.assert_code(0);
    let status = world.invsync(&["status"]).await.stdout.clone();

    assert_eq!(both(&sim), (true, true), "flagged on both");
    assert!(status.contains("matched twice at shop: HK-7"), "{status}");
    assert!(
        status.contains(&product(7).uuid) && status.contains(&twin.uuid),
        "{status}"
    );

    stock(&world, 7, 4);
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(both(&sim), (true, true), "one cycle back is not enough");
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(both(&sim), (false, false), "cleared on both");
}
