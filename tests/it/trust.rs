//! What invsync refuses to believe (the contract's "Trust"): an answer that is not the
//! service's, a pair the answer leaves out, a record it cannot read, a pause it was asked for.

use invsync::sim::Fault;

use crate::helpers::{World, initial_dropship};

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_page_answering_200_to_a_batch_is_retried_like_a_5xx_and_never_acknowledged() {
    let world = World::start().await;
    // Every attempt of the one batch (retry_max_attempts = 4) meets the maintenance page.
    for _ in 0..4 {
        world.htf.faults().push_for("POST", "/batch", Fault::Html);
    }

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    assert!(
        world.acknowledged("hardtofind").is_empty(),
        "a page that is not the service's answer acknowledges nothing"
    );
    let retries = run.lines_at("WARN");
    let retried: Vec<&&str> = retries
        .iter()
        .filter(|l| l.contains("not JSON") && l.contains("retrying"))
        .collect();
    assert_eq!(retried.len(), 3, "retried like a 5xx:\n{}", run.stderr);
    println!("{}", retried[0]);

    world.invsync(&["once"]).await.assert_code(0);
    world.assert_in_sync();
    assert_eq!(
        world.acknowledged("hardtofind"),
        world.expected_hardtofind()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hako_pair_left_out_of_the_write_answer_is_not_acknowledged_and_is_pushed_again() {
    let world = World::start().await;
    world.hako.skip_writes_of("EA-1001", true);

    let run = world.invsync(&["once"]).await;

    let acked = world.acknowledged("hako_dropship");
    assert!(!acked.contains_key("EA-1001"), "{acked:?}");
    assert_eq!(acked.len(), 29, "the rest of the batch is acknowledged");
    let warning = run
        .lines_at("WARN")
        .into_iter()
        .find(|l| l.contains("leaves out"))
        .unwrap_or_else(|| panic!("a WARN says so:\n{}", run.stderr));
    println!("{warning}");
    assert!(warning.contains("EA-1001"), "{warning}");

    world.hako.skip_writes_of("EA-1001", false);
    let again = world.invsync(&["once"]).await;

    again.assert_code(0);
    world.assert_in_sync();
    assert_eq!(
        world.acknowledged("hako_dropship").get("EA-1001"),
        Some(&initial_dropship(1)),
        "pushed again, and acknowledged once confirmed"
    );
}
