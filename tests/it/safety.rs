//! The guarantees that make invsync trustworthy on a bad day: a refused SKU does not sink its
//! batch, one daemon per database, clean shutdowns, nothing lost to a kill.

use std::time::Duration;

use invsync::sim::Fault;

use crate::helpers::{Lcg, Setup, World, signal, wait_until};

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_sku_does_not_sink_its_batch_and_heals_once_the_target_takes_it() {
    let world = World::with(Setup {
        htf_batch_size: 10,
        ..Setup::default()
    })
    .await;
    world
        .htf
        .reject_sku("HK-3", "inventory locked by a promotion");
    world.htf.reject_sku("EA-1007", "variant archived");

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    let expected = world.expected_hardtofind();
    let shows = world.hardtofind_shows();
    for (sku, quantity) in &expected {
        if sku != "HK-3" && sku != "EA-1007" {
            assert_eq!(
                shows.get(sku),
                Some(quantity),
                "{sku} was pushed despite its batch neighbour"
            );
        }
    }
    let acked = world.acknowledged("hardtofind");
    assert_eq!(
        acked.len(),
        expected.len() - 2,
        "the refused SKUs are not recorded as pushed"
    );
    assert!(!acked.contains_key("HK-3") && !acked.contains_key("EA-1007"));
    let errors: Vec<&str> = run
        .lines_at("ERROR")
        .into_iter()
        .filter(|l| l.contains("refused"))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "one ERROR per cycle for the refusals:\n{}",
        run.stderr
    );
    assert!(
        errors[0].contains("skus=2") && errors[0].contains("variant archived"),
        "{}",
        errors[0]
    );
    let status = world.invsync(&["status"]).await;
    assert!(status.stdout.contains("failed 2"), "{}", status.stdout);
    assert!(
        status.stdout.contains("refused HK-3")
            && status.stdout.contains("inventory locked by a promotion"),
        "{}",
        status.stdout
    );

    world.htf.accept_sku("HK-3");
    world.htf.accept_sku("EA-1007");
    // A refused SKU is tried again at the next cycle (then 2, 4, … cycles later): one second
    // from now on this schedule.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    world.invsync(&["once"]).await.assert_code(0);

    world.assert_in_sync();
    let status = world.invsync(&["status", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    let htf = value["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .find(|t| t["name"] == "hardtofind")
        .expect("hardtofind");
    assert_eq!(htf["failed_skus"], 0, "healed by itself");
}

/// Every SKU the database says a target acknowledged was really received by it with that
/// quantity: nothing unacknowledged is ever recorded as pushed.
/// The SKUs Hardtofind shows at another figure than the one the database has as acknowledged,
/// each of them one the database has in doubt (sent, not answered): else the next cycle could leave it.
fn taken_unacknowledged(world: &World) -> Vec<String> {
    let in_doubt: Vec<String> = world.read(|conn| {
        let id: i64 = conn
            .query_row(
                "SELECT id FROM targets WHERE name = 'hardtofind'",
                [],
                |r| r.get(0),
            )
            .expect("hardtofind has a row");
        let names = invsync::store::load_skus(conn).expect("names");
        Ok(invsync::store::load_in_doubt(conn, id)
            .expect("in doubt")
            .into_iter()
            .map(|sku| names.name(sku).to_owned())
            .collect())
    });
    let acknowledged = world.acknowledged("hardtofind");
    let taken: Vec<String> = world
        .hardtofind_shows()
        .into_iter()
        .filter(|(sku, shows)| acknowledged.get(sku).is_some_and(|a| a != shows))
        .map(|(sku, _)| sku)
        .collect();
    for sku in &taken {
        assert!(
            in_doubt.contains(sku),
            "Hardtofind shows {sku} at a figure never acknowledged, and it is not in doubt"
        );
    }
    taken
}

pub(crate) fn assert_acknowledged_only_what_hardtofind_received(world: &World) {
    let received: std::collections::HashSet<(String, i64)> =
        world.htf.batches().into_iter().flatten().collect();
    for (sku, quantity) in world.acknowledged("hardtofind") {
        assert!(
            received.contains(&(sku.clone(), quantity)),
            "{sku}={quantity} recorded as pushed but never received"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_daemon_on_the_same_database_exits_75_naming_the_first() {
    let world = World::start().await;
    world.htf.faults().set_latency(Duration::from_millis(200));
    let mut first = world.spawn(&["run"], &[]);
    wait_until("the first daemon holds the lock", || {
        std::fs::read_to_string(invsync::store::lock::lock_path(&world.database()))
            .is_ok_and(|s| !s.trim().is_empty())
    })
    .await;

    let second = world.invsync(&["once"]).await;

    // 75: a passing condition (restarting later helps), not a configuration error (2).
    second.assert_code(75);
    println!("{}", second.stderr.lines().last().unwrap_or_default());
    let pid = first.id().expect("running").to_string();
    assert!(
        second.stderr.contains(&format!("process {pid}")),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("daemon.database"),
        "{}",
        second.stderr
    );
    signal(&first, "TERM");
    assert_eq!(first.wait().await.expect("exits").code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_push_finishes_the_request_in_flight_commits_and_exits_0() {
    let world = World::with(Setup {
        htf_batch_size: 2,
        ..Setup::default()
    })
    .await;
    world.htf.faults().set_latency(Duration::from_millis(100));
    let child = world.spawn(&["run"], &[]);
    wait_until("some batches landed", || world.htf.batches().len() >= 3).await;

    signal(&child, "TERM");
    let output = child.wait_with_output().await.expect("exits");

    assert_eq!(
        output.status.code(),
        Some(0),
        "a clean shutdown:\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let landed = world.htf.batches().len();
    assert!(
        landed < 25,
        "it stopped before pushing everything ({landed} of 25 batches)"
    );
    let acked = world.acknowledged("hardtofind");
    assert_eq!(
        acked.len(),
        2 * landed,
        "every batch that landed was committed before exiting"
    );
    assert_acknowledged_only_what_hardtofind_received(&world);

    world.htf.faults().set_latency(Duration::ZERO);
    world.invsync(&["once"]).await.assert_code(0);
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_sigterm_exits_at_once_and_still_loses_nothing() {
    let world = World::with(Setup {
        htf_batch_size: 10,
        ..Setup::default()
    })
    .await;
    world
        .htf
        .faults()
        .push_for("POST", "/batch", Fault::Delay(Duration::ZERO));
    world.htf.faults().push_for("POST", "/batch", Fault::Hang);
    let mut child = world.spawn(&["run"], &[]);
    wait_until("the second batch is in flight", || {
        world.htf.count("POST", "/batch") >= 2
    })
    .await;

    signal(&child, "TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        child.try_wait().expect("status").is_none(),
        "the first SIGTERM waits for the request in flight"
    );
    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("exits at once")
        .expect("status");

    assert_eq!(status.code(), Some(143));
    assert_eq!(
        world.acknowledged("hardtofind").len(),
        10,
        "the first batch stays acknowledged"
    );
    assert_acknowledged_only_what_hardtofind_received(&world);
    world.invsync(&["once"]).await.assert_code(0);
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_any_moment_loses_nothing_and_records_nothing_unacknowledged() {
    sigkill_at_any_moment(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_any_moment_loses_nothing_and_records_nothing_unacknowledged_on_postgresql() {
    sigkill_at_any_moment(true).await;
}

/// The campaign, with the state in SQLite or (`postgres`) in PostgreSQL.
async fn sigkill_at_any_moment(postgres: bool) {
    const KILLS: usize = 60;
    let world = World::with(Setup {
        htf_batch_size: 3,
        hako_batch_size: 3,
        postgres,
        ..Setup::default()
    })
    .await;
    // Slowed so that a cycle takes a few hundred milliseconds: fetches, ~17 Hardtofind and ~10
    // Hako batches, each acknowledged in its own transaction.
    world.ea.faults().set_latency(Duration::from_millis(30));
    world.htf.faults().set_latency(Duration::from_millis(30));
    world.hako.faults().set_latency(Duration::from_millis(40));
    // Hardtofind takes each batch 30 ms before it answers: kills land there too, leaving a
    // figure at Hardtofind that was never acknowledged.
    for _ in 0..KILLS * 20 {
        let slow_answer = Fault::AfterHandling(Box::new(Fault::Delay(Duration::from_millis(30))));
        world.htf.faults().push_for("POST", "/batch", slow_answer);
    }
    let mut random = Lcg(0x5eed);
    let (mut kills, mut mid_push, mut in_doubt) = (0, 0, 0);

    for _ in 0..KILLS {
        for _ in 0..8 {
            let i = random.below(30) as usize + 1;
            world
                .ea
                .set_stock(&crate::helpers::dropship_id(i), random.below(50) as i64 + 1);
            let j = random.below(20) as usize + 1;
            world.hako.set_quantity(
                "warehouse-010",
                &crate::helpers::warehouse_sku(j),
                random.below(50) as i64 + 1,
            );
        }
        let batches_before = world.htf.batches().len() + world.hako.write_requests();
        // Within 400 ms of Endless Aisles' answer (a loaded machine's slow start aside).
        let fetches = world.ea.count("GET", "/api/stock");
        let killed = crate::kills::once_killed_after(
            &world,
            || world.ea.count("GET", "/api/stock") > fetches,
            Duration::from_millis(random.below(400)),
        )
        .await;
        let landed = world.htf.batches().len() + world.hako.write_requests() - batches_before;
        if killed {
            kills += 1;
            if landed > 0 {
                mid_push += 1;
            }
            // The dangerous moment: Hardtofind took a figure that was never acknowledged.
            if !taken_unacknowledged(&world).is_empty() {
                in_doubt += 1;
            }
        }
        assert_acknowledged_only_what_hardtofind_received(&world);
    }

    eprintln!(
        "{KILLS} runs: {kills} killed while running, {mid_push} of them after some batches were pushed, {in_doubt} after Hardtofind took a batch and before its acknowledgement"
    );
    // Vacuity: the kills really happened, and most of them in the middle of pushing.
    assert!(
        kills >= 50,
        "only {kills} of {KILLS} runs were killed while running"
    );
    assert!(
        mid_push >= 25,
        "only {mid_push} kills landed after some batches were pushed"
    );
    assert!(
        in_doubt >= 10,
        "only {in_doubt} kills landed between a batch Hardtofind took and its acknowledgement"
    );

    for sim in [world.ea.faults(), world.htf.faults(), world.hako.faults()] {
        sim.clear();
    }
    world.invsync(&["once"]).await.assert_code(0);
    world.assert_in_sync();
    assert_eq!(
        world.acknowledged("hardtofind"),
        world.expected_hardtofind(),
        "the database agrees with Hardtofind"
    );
    assert_eq!(
        world.acknowledged("hako_dropship"),
        world.expected_hako_dropship(),
        "and with Hako"
    );
}
