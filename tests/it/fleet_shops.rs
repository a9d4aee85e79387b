//! The shops' folder read again on SIGHUP by running workers: a shop whose file is added is
//! served and converges; a shop whose file is removed is stopped and its lease retired by the
//! worker holding it once that worker reads its folder, and nothing more is sent for it; a
//! worker that is told first takes nothing from the holder in the meantime.

use std::time::{Duration, Instant};

use crate::fleet::{Converged, Fleet, Shop, signal, write_private};

/// Whether the lease table still has a row for `group`.
async fn has_lease(fleet: &Fleet, group: &str) -> bool {
    let pool = invsync::store::db::pool::pool(&fleet.url, 1).expect("a pool");
    let client = pool.get().await.expect("a connection");
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM invsync_fleet.fleet_leases WHERE lease_group = $1",
            &[&group],
        )
        .await
        .expect("the lease table")
        .get(0);
    rows > 0
}

/// A shop `worker` holds, from `fleet status`.
async fn held_by(fleet: &Fleet, worker: &str) -> String {
    let holders = fleet.holders().await;
    (holders.iter())
        .find(|(_, w)| w.as_deref() == Some(worker))
        .map(|(shop, _)| shop.clone())
        .unwrap_or_else(|| panic!("{worker} holds no shop: {holders:?}"))
}

/// Removes `name`'s file and takes it out of the fleet's shops (its simulators keep running, to
/// see that nothing more comes).
fn remove_shop(fleet: &mut Fleet, name: &str) -> Shop {
    let path = fleet.dir.path().join("shops").join(format!("{name}.toml"));
    std::fs::remove_file(path).expect("removed");
    let at = (fleet.shops.iter().position(|s| s.name == name)).expect("a shop of the fleet");
    fleet.shops.remove(at)
}

/// Waits until `group`'s lease row is gone and no worker sends anything for `shop` any more,
/// then checks that nothing comes for a while, the shop's stock changing; how long the lease
/// took to go.
async fn goes_quiet(fleet: &Fleet, group: &str, shop: &Shop) -> Duration {
    let waiting = Instant::now();
    while has_lease(fleet, group).await {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the lease of {group} was not retired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let retired = waiting.elapsed();
    // The holder finds the lease gone at its next renewal (a third of a lease), and then stops.
    tokio::time::sleep(crate::fleet::LEASE_TTL).await;
    shop.source.clear_requests();
    shop.htf.clear_requests();
    shop.change(9);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        (shop.source.requests().len(), shop.htf.requests().len()),
        (0, 0),
        "requests for {} after its file was removed",
        shop.name
    );
    retired
}

/// Removes the file of a shop `holder` holds, tells worker `told` (SIGHUP), and checks the shop
/// goes quiet; how long its lease took to be retired, and `holder`'s log.
async fn remove_held_by(fleet: &mut Fleet, holder: &str, told: &str) -> (Duration, String) {
    let name = held_by(fleet, holder).await;
    let gone = remove_shop(fleet, &name);
    signal(&fleet.workers[told], libc::SIGHUP);
    let retired = goes_quiet(fleet, &name, &gone).await;
    let log = std::fs::read_to_string(fleet.dir.path().join(format!("{holder}.log")));
    (retired, log.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_added_or_removed_is_served_or_retired_on_sighup() {
    let mut fleet = Fleet::start(3).await;
    fleet.add_worker("w1");
    fleet.add_worker("w2");
    fleet.settle("the shops spread 2/1", 2, 1, 2).await;

    // Added: both workers are told; the shop is held and converges.
    let added = Shop::start("shop03").await;
    write_private(
        &fleet.dir.path().join("shops").join("shop03.toml"),
        &added.config(),
    );
    fleet.shops.push(added);
    let told = Instant::now();
    for worker in fleet.workers.values() {
        signal(worker, libc::SIGHUP);
    }
    fleet.settle("the new shop held, 2/2", 2, 2, 2).await;
    let served = told.elapsed();

    // Removed, from a worker that is told: it stops the shop at once.
    let (retired_by_holder, w2_log) = remove_held_by(&mut fleet, "w2", "w2").await;
    assert!(
        w2_log.contains("fleet: the shop's file changed or went: stopping it"),
        "w2 stopped the shop it was told went:\n{w2_log}"
    );

    // Removed, another worker told first: it takes nothing from the holder (whose folder it
    // cannot see), and the holder, told, stops the shop and retires its lease.
    let name = held_by(&fleet, "w1").await;
    let gone = remove_shop(&mut fleet, &name);
    signal(&fleet.workers["w2"], libc::SIGHUP);
    tokio::time::sleep(crate::fleet::LEASE_TTL * 2).await;
    assert!(
        has_lease(&fleet, &name).await,
        "w2 retired the lease w1 holds"
    );
    assert_eq!(
        fleet.holders().await.get(&name),
        None,
        "the removed shop is no longer listed"
    );
    signal(&fleet.workers["w1"], libc::SIGHUP);
    let retired_elsewhere = goes_quiet(&fleet, &name, &gone).await;
    let w1_log = std::fs::read_to_string(fleet.dir.path().join("w1.log")).unwrap_or_default();
    assert!(
        w1_log.contains("fleet: the shop's file changed or went: stopping it"),
        "w1 stopped the shop once told:\n{w1_log}"
    );
    assert!(
        !w1_log.contains("the lease is no longer this worker's"),
        "w1 lost no lease:\n{w1_log}"
    );

    // The shops left are served as before.
    fleet.spread("the two shops left spread 1/1", 2, 1, 1).await;
    for shop in &fleet.shops {
        shop.change(4);
    }
    fleet
        .wait_for(
            "the shops left converged",
            Duration::from_secs(30),
            Converged(4),
        )
        .await;
    println!(
        "SIGHUP: a shop added held and converged after {:.1} s; a shop removed: its lease retired after {:.2} s (its holder told), {:.2} s after its holder was told (another worker told first, which kept off it), and nothing sent for it in the 3 s watched a lease later",
        served.as_secs_f64(),
        retired_by_holder.as_secs_f64(),
        retired_elsewhere.as_secs_f64(),
    );
}
