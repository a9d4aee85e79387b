//! kill -9 at random moments of the writes that remember what invsync must not believe at once
//! (refused SKUs' schedule, the mass-zero guard's window) and of the reservations: the next
//! clean cycle converges and nothing is forgotten. Each campaign fails when too few kills land
//! in the moment it is about.

use std::collections::HashMap;
use std::time::Duration;

use invsync::services::hardtofind::sim::NewOrder;

use crate::helpers::{HTF_PASSWORD, HTF_USER, Lcg, Setup, World, dropship_id, warehouse_sku};
use crate::safety::assert_acknowledged_only_what_hardtofind_received;

fn now_ms() -> i64 {
    invsync::store::now_ms()
}

/// Starts `once`, waits until `reached` says the moment a campaign is about has come (or the
/// run ended, or 20 s passed), then SIGKILLs it `after` later; whether it was still running
/// when killed. Counting from the moment rather than from the start keeps a loaded machine's
/// slow start from moving every kill before it.
pub(crate) async fn once_killed_after(
    world: &World,
    reached: impl Fn() -> bool,
    after: Duration,
) -> bool {
    let mut child = world.spawn(&["once"], &[]);
    let waited = std::time::Instant::now();
    while !reached()
        && child.try_wait().expect("status").is_none()
        && waited.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(after).await;
    let running = child.try_wait().expect("status").is_none();
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.expect("reaped");
    world.wait_out_requests_in_flight().await;
    running && status.code().is_none()
}

/// Hardtofind's refused SKUs as the database keeps them: `(attempts, next_attempt_at,
/// last_failed_at)` by SKU.
fn refusal_schedule(world: &World) -> HashMap<String, (i64, Option<i64>, i64)> {
    let conn = invsync::store::db::Connection::open(world.database()).expect("db opens");
    let names = invsync::store::load_skus(&conn).expect("names");
    let mut stmt = conn
        .prepare(
            "SELECT f.sku_id, f.attempts, f.next_attempt_at, f.last_failed_at
             FROM failed_skus f JOIN targets t ON t.id = f.target_id WHERE t.name = 'hardtofind'",
        )
        .expect("query");
    stmt.query_map([], |r| {
        Ok((
            names.name(r.get(0)?).to_owned(),
            (r.get(1)?, r.get(2)?, r.get(3)?),
        ))
    })
    .expect("rows")
    .map(|row| row.expect("row"))
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_refusals_are_put_on_their_schedule_keeps_the_schedule_or_tries_again() {
    const RUNS: usize = 40;
    let world = World::with(Setup {
        htf_batch_size: 3,
        ..Setup::default()
    })
    .await;
    world.invsync(&["once"]).await.assert_code(0);
    world.ea.faults().set_latency(Duration::from_millis(20));
    world.htf.faults().set_latency(Duration::from_millis(40));
    let mut random = Lcg(0x0ef0_5ed5);
    let (mut kills, mut between, mut kept, mut completed) = (0, 0, 0, 0);
    let mut rejected: Vec<String> = Vec::new();

    for run in 0..RUNS {
        // Refusals last a few runs, so their schedules grow (1, 2, 4, … s) and are waited out
        // through kills.
        rejected.retain(|sku| {
            let keep = random.below(4) != 0;
            if !keep {
                world.htf.accept_sku(sku);
            }
            keep
        });
        for _ in 0..10 {
            let i = random.below(30) as usize + 1;
            world
                .ea
                .set_stock(&dropship_id(i), random.below(40) as i64 + 1);
        }
        // A changed SKU that Hardtofind refuses from now on.
        if rejected.len() < 6 {
            let i = random.below(30) as usize + 1;
            world
                .ea
                .set_stock(&dropship_id(i), random.below(40) as i64 + 41);
            let sku = format!("EA-{}", dropship_id(i));
            world.htf.reject_sku(&sku, "variant locked by a promotion");
            rejected.push(sku);
        }
        let before = refusal_schedule(&world);
        let (refused_before, started) = (world.htf.refusals().len(), now_ms());
        let after = Duration::from_millis(random.below(300));

        // Every fourth run is left to finish and write its schedule; the others are killed
        // within 300 ms of Endless Aisles' answer.
        let killed = if run % 4 == 3 {
            world.invsync(&["once"]).await;
            false
        } else {
            let fetches = world.ea.count("GET", "/api/stock");
            once_killed_after(
                &world,
                || world.ea.count("GET", "/api/stock") > fetches,
                after,
            )
            .await
        };

        let refused_now: Vec<String> = world.htf.refusals()[refused_before..].to_vec();
        let schedule = refusal_schedule(&world);
        for (sku, (attempts, next, last)) in &schedule {
            assert!(*attempts >= 1, "run {run}: {sku} with {attempts} attempts");
            // Written by this run: the next attempt is a cycle or more after it started.
            let floor = if *last >= started { started } else { 0 };
            assert!(
                next.is_some_and(|next| next > floor),
                "run {run}: {sku} refused at {last} has no later attempt: {next:?}"
            );
        }
        assert_acknowledged_only_what_hardtofind_received(&world);
        if !killed {
            completed += 1;
            continue;
        }
        kills += 1;
        // A SKU still waiting for its next attempt keeps its schedule through the kill.
        for (sku, row) in &before {
            if row.1.is_some_and(|next| next > now_ms()) {
                assert_eq!(schedule.get(sku), Some(row), "run {run}: {sku}'s schedule");
                kept += 1;
            }
        }
        // The moment: Hardtofind has refused, and the schedule is not written yet; the SKU is
        // not acknowledged, so the next cycle tries it again.
        let recorded = |sku: &String| schedule.get(sku).is_some_and(|r| r.2 >= started);
        if refused_now.iter().any(|s| !recorded(s)) {
            between += 1;
        }
    }

    println!(
        "{RUNS} runs: {completed} completed, {kills} killed while running, {between} after a refusal and before its schedule was written, {kept} schedules kept through a kill"
    );
    assert!(kills >= 25, "only {kills} killed while running");
    assert!(
        between >= 5,
        "only {between} kills landed between a refusal and its schedule"
    );
    assert!(
        kept >= 10,
        "only {kept} schedules were waiting through a kill"
    );
    // Every schedule runs out (the latest is seconds away), then one clean cycle
    // takes every SKU: nothing refused was forgotten, nothing is left refused.
    for sku in rejected.drain(..) {
        world.htf.accept_sku(&sku);
    }
    let latest = refusal_schedule(&world)
        .values()
        .filter_map(|r| r.1)
        .max()
        .unwrap_or(0);
    let wait = u64::try_from(latest - now_ms()).unwrap_or(0).min(30_000);
    tokio::time::sleep(Duration::from_millis(wait + 50)).await;
    world.ea.faults().set_latency(Duration::ZERO);
    world.htf.faults().set_latency(Duration::ZERO);
    world.invsync(&["once"]).await.assert_code(0);
    world.assert_in_sync();
    assert!(refusal_schedule(&world).is_empty(), "no refusal left");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_during_a_slow_slide_never_lets_the_guard_forget_what_it_zeroed_within_the_window()
{
    const EPOCHS: usize = 4;
    const RUNS: usize = 10;
    let world = World::with(Setup {
        warehouse_skus: 100,
        htf_batch_size: 4,
        daemon_extra: "guard_window = \"1h\"".into(),
        ..Setup::default()
    })
    .await;
    world.invsync(&["once"]).await.assert_code(0);
    world.hako.faults().set_latency(Duration::from_millis(20));
    world.htf.faults().set_latency(Duration::from_millis(30));
    let mut random = Lcg(0x0ba5_eba1);
    let (mut kills, mut recorded_slide, mut zeros_sent) = (0, 0, 0);
    let zeroed = |world: &World| {
        (1..=100)
            .filter(|&i| world.htf.inventory(&warehouse_sku(i)) == Some(0))
            .count()
    };
    let zero_batches = |world: &World| {
        world
            .htf
            .batches()
            .iter()
            .filter(|b| b.iter().any(|(sku, q)| *q == 0 && sku.starts_with("HK-")))
            .count()
    };

    for epoch in 0..EPOCHS {
        // Stock back everywhere, accepted with --force: the window starts again.
        for i in 1..=100 {
            world
                .hako
                .set_quantity("warehouse-010", &warehouse_sku(i), (i % 7) as i64 + 1);
        }
        world.invsync(&["once", "--force"]).await.assert_code(0);
        let mut removed = 0;
        for run in 0..RUNS {
            // 4 of 100 a cycle go: the seventh cycle would pass a quarter.
            for i in removed + 1..=removed + 4 {
                world.hako.remove("warehouse-010", &warehouse_sku(i));
            }
            removed += 4;
            for _ in 0..8 {
                let i = random.below(60) as usize + 41;
                world.hako.set_quantity(
                    "warehouse-010",
                    &warehouse_sku(i),
                    random.below(50) as i64 + 1,
                );
            }
            let zero_batches_before = zero_batches(&world);
            // Within 250 ms of Hako's answer, which brings the slide.
            let after = Duration::from_millis(random.below(250));
            let fetches = world.hako.count("GET", "/inventory");

            let killed = once_killed_after(
                &world,
                || world.hako.count("GET", "/inventory") > fetches,
                after,
            )
            .await;

            let now_zeroed = zeroed(&world);
            assert!(
                now_zeroed <= 25,
                "epoch {epoch} run {run}: {now_zeroed} of 100 zeroed at Hardtofind within the window"
            );
            if killed {
                kills += 1;
                let snapshot = world.source_snapshot("warehouse");
                if snapshot.get(&warehouse_sku(removed)).copied().unwrap_or(0) == 0 {
                    recorded_slide += 1;
                }
                if zero_batches(&world) > zero_batches_before {
                    zeros_sent += 1;
                }
            }
        }
        // The guard tripped within the epoch and stays tripped: a clean cycle still holds.
        let run = world.invsync(&["once"]).await;
        assert!(
            run.stderr.contains("held by the mass-zero guard"),
            "epoch {epoch}: {}",
            run.stderr
        );
        assert!(zeroed(&world) <= 25, "epoch {epoch}: {}", zeroed(&world));
    }

    println!(
        "{} runs: {kills} killed while running, {recorded_slide} after the source recorded the slide, {zeros_sent} after zeros reached Hardtofind; never more than 25 of 100 zeroed",
        EPOCHS * RUNS
    );
    assert!(kills >= 20, "only {kills} killed while running");
    assert!(
        recorded_slide >= 10,
        "only {recorded_slide} kills landed after the source recorded its slide"
    );
    assert!(
        zeros_sent >= 6,
        "only {zeros_sent} kills landed after zeros reached Hardtofind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_between_recording_a_snapshot_and_the_reservations_converges_at_the_next_cycle() {
    const ROUNDS: usize = 30;
    let world = World::start().await;
    let mut text = std::fs::read_to_string(&world.config).expect("config");
    text.push_str(&format!(
        "\n[orders.hardtofind]\ntype = \"hardtofind\"\nbase_url = \"{}\"\nusername = \"{HTF_USER}\"\npassword = \"{HTF_PASSWORD}\"\nrequests_per_minute = 100000\n",
        world.htf.base_url()
    ));
    std::fs::write(&world.config, text).expect("config");
    for i in 1..=20 {
        world
            .hako
            .set_quantity("warehouse-010", &warehouse_sku(i), 40);
    }
    world.invsync(&["once"]).await.assert_code(0);
    // Hako's snapshot is in well before Endless Aisles', and the reservations wait for both.
    world.ea.faults().set_latency(Duration::from_millis(150));
    let mut random = Lcg(0x5a1e_5a1e);
    let (mut kills, mut between) = (0, 0);

    for round in 0..ROUNDS {
        let sku = warehouse_sku(random.below(20) as usize + 1);
        let have = world.hako.inventory("warehouse-010")[&sku];
        let sold = (random.below(3) + 1) as i64;
        let order = world.htf.place_order(NewOrder::new([(sku.clone(), sold)]));
        world.invsync(&["once"]).await.assert_code(0);
        assert_eq!(
            world.htf.inventory(&sku),
            Some(have - sold),
            "round {round}: reserved"
        );
        // The warehouse counts the sale; a cycle that absorbs it is killed at a random moment.
        world.hako.set_quantity("warehouse-010", &sku, have - sold);
        // Within 200 ms of Hako's answer, which brings the count; Endless Aisles answers 150 ms
        // later, and the reservations are written after that.
        let after = Duration::from_millis(random.below(200));
        let fetches = world.hako.count("GET", "/inventory");

        let killed = once_killed_after(
            &world,
            || world.hako.count("GET", "/inventory") > fetches,
            after,
        )
        .await;

        if killed {
            kills += 1;
            let recorded = world.source_snapshot("warehouse").get(&sku).copied();
            let conn = invsync::store::db::Connection::open(world.database()).expect("db opens");
            let open = invsync::store::reservations_of(&conn, &sku)
                .expect("reads")
                .iter()
                .any(|r| r.order_id == order && r.outstanding() > 0);
            if recorded == Some(have - sold) && open {
                between += 1;
            }
        }
        let next = world.invsync(&["once"]).await;
        next.assert_code(0);
        assert_eq!(
            world.htf.inventory(&sku),
            Some(have - sold),
            "round {round}: the sale is subtracted once, not twice:\n{}",
            next.stderr
        );
        world.htf.set_order_status(
            &order,
            invsync::services::hardtofind::wire::OrderStatus::Shipped,
        );
    }

    println!(
        "{ROUNDS} rounds: {kills} killed while running, {between} between the snapshot and the reservations"
    );
    assert!(kills >= 18, "only {kills} of {ROUNDS} killed while running");
    assert!(
        between >= 6,
        "only {between} kills landed between the snapshot and the reservations"
    );
    world.assert_in_sync();
}

/// Every quantity chunk of the database, by `(side, endpoint, chunk)`.
fn quantity_chunks(world: &World) -> HashMap<(i64, i64, i64), Vec<u8>> {
    world.read(|conn| {
        let mut stmt = conn
            .prepare("SELECT side, endpoint, chunk, quantities FROM quantity_chunks")
            .expect("query");
        Ok(stmt
            .query_map([], |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get(3)?)))
            .expect("rows")
            .map(|row| row.expect("row"))
            .collect())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_changes_are_folded_into_the_chunks_loses_no_acknowledgement_and_converges() {
    sigkill_while_folding(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_while_changes_are_folded_into_the_chunks_loses_no_acknowledgement_and_converges_on_postgresql()
 {
    sigkill_while_folding(true).await;
}

/// The campaign, with the state in SQLite or (`postgres`) in PostgreSQL.
async fn sigkill_while_folding(postgres: bool) {
    const RUNS: usize = 32;
    // 300 SKUs: one chunk per column, so 64 changes in a column fold its deltas into it; about
    // 40 change a cycle, and the columns fold every other cycle or so.
    let world = World::with(Setup {
        dropship_skus: 300,
        htf_batch_size: 7,
        hako_batch_size: 7,
        postgres,
        ..Setup::default()
    })
    .await;
    world.invsync(&["once"]).await.assert_code(0);
    world.ea.faults().set_latency(Duration::from_millis(20));
    world.htf.faults().set_latency(Duration::from_millis(25));
    world.hako.faults().set_latency(Duration::from_millis(25));
    let mut random = Lcg(0x00f0_1d5e);
    let (mut kills, mut folded_then_killed, mut completed) = (0, 0, 0);

    for run in 0..RUNS {
        for _ in 0..40 {
            let i = random.below(300) as usize + 1;
            world.ea.set_stock(&dropship_id(i), random.below(30) as i64);
        }
        let chunks = quantity_chunks(&world);
        let after = Duration::from_millis(random.below(250));
        let killed = if run % 4 == 3 {
            world.invsync(&["once"]).await.assert_code(0);
            false
        } else {
            let fetches = world.ea.count("GET", "/api/stock");
            once_killed_after(
                &world,
                || world.ea.count("GET", "/api/stock") > fetches,
                after,
            )
            .await
        };
        // Whatever moment it died at, the database reads back whole, and holds as acknowledged
        // only what Hardtofind received.
        assert_acknowledged_only_what_hardtofind_received(&world);
        world.source_snapshot("dropship");
        world.acknowledged("hako_dropship");
        if !killed {
            completed += 1;
            continue;
        }
        kills += 1;
        // Chunks are rewritten only when deltas are folded into them.
        if quantity_chunks(&world) != chunks {
            folded_then_killed += 1;
        }
    }

    println!(
        "{RUNS} runs: {completed} completed, {kills} killed while running, {folded_then_killed} killed after a fold of this run"
    );
    assert!(kills >= 18, "only {kills} killed while running");
    assert!(
        folded_then_killed >= 5,
        "only {folded_then_killed} kills landed after a fold"
    );
    world.ea.faults().set_latency(Duration::ZERO);
    world.htf.faults().set_latency(Duration::ZERO);
    world.hako.faults().set_latency(Duration::ZERO);
    world.invsync(&["once"]).await.assert_code(0);
    world.assert_in_sync();
    assert_eq!(
        world.acknowledged("hardtofind"),
        world.expected_hardtofind(),
        "what is acknowledged is what Hardtofind shows"
    );
    assert_eq!(
        world.acknowledged("hako_dropship"),
        world.expected_hako_dropship()
    );
}
