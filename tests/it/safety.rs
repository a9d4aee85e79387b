//! The guarantees that make invsync trustworthy on a bad day: a refused SKU does not sink its
//! batch, one daemon per database, clean shutdowns, nothing lost to a kill.

use crate::helpers::{Setup, World};

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_sku_does_not_sink_its_batch_and_heals_once_the_target_takes_it() {
    let world = World::with(Setup { htf_batch_size: 10, ..Setup::default() }).await;
    world.htf.reject_sku("HK-3", "inventory locked by a promotion");
    world.htf.reject_sku("EA-1007", "variant archived");

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    let expected = world.expected_hardtofind();
    let shows = world.hardtofind_shows();
    for (sku, quantity) in &expected {
        if sku != "HK-3" && sku != "EA-1007" {
            assert_eq!(shows.get(sku), Some(quantity), "{sku} was pushed despite its batch neighbour");
        }
    }
    let acked = world.acknowledged("hardtofind");
    assert_eq!(acked.len(), expected.len() - 2, "the refused SKUs are not recorded as pushed");
    assert!(!acked.contains_key("HK-3") && !acked.contains_key("EA-1007"));
    let errors: Vec<&str> = run.lines_at("ERROR").into_iter().filter(|l| l.contains("refused")).collect();
    assert_eq!(errors.len(), 1, "one ERROR per cycle for the refusals:\n{}", run.stderr);
    assert!(errors[0].contains("skus=2") && errors[0].contains("variant archived"), "{}", errors[0]);
    let status = world.invsync(&["status"]).await;
    assert!(status.stdout.contains("failed 2"), "{}", status.stdout);
    assert!(status.stdout.contains("refused HK-3") && status.stdout.contains("inventory locked by a promotion"), "{}", status.stdout);

    world.htf.accept_sku("HK-3");
    world.htf.accept_sku("EA-1007");
    world.invsync(&["once"]).await.assert_code(0);

    world.assert_in_sync();
    let status = world.invsync(&["status", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    let htf = value["targets"].as_array().expect("targets").iter().find(|t| t["name"] == "hardtofind").expect("hardtofind");
    assert_eq!(htf["failed_skus"], 0, "healed by itself");
}
