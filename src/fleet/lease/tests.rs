//! Against a real PostgreSQL server (see `harness::postgres`).

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::harness::postgres::TestPostgres;
use crate::store::db::pool::pool;

/// A fresh database, its tables made, and `n` workers on it whose leases live `ttl`.
async fn workers(n: usize, ttl: Duration) -> Vec<Leases> {
    let url = TestPostgres::get()
        .and_then(|pg| pg.database())
        .unwrap_or_else(|e| panic!("{e}"));
    let all: Vec<Leases> = (0..n)
        .map(|i| Leases::new(pool(&url, 4).expect("pool"), &format!("w{i}"), ttl))
        .collect();
    all[0].migrate().await.expect("migrate");
    all[0]
        .client()
        .await
        .expect("client")
        .batch_execute("CREATE TABLE writes (lease_group TEXT, epoch BIGINT)")
        .await
        .expect("writes");
    all
}

fn groups(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("shop-{i:02}")).collect()
}

/// Each of `groups` a group of one shop, named after it.
fn alone(groups: &[String]) -> std::collections::BTreeMap<String, Vec<String>> {
    groups
        .iter()
        .map(|g| (g.clone(), vec![g.clone()]))
        .collect()
}

/// A state write under `lease`: a row naming its epoch, through the fence.
async fn write(leases: &Leases, lease: &Lease) -> Result<(), FenceError> {
    let mut client = leases.connection().await?;
    let tx = leases.fenced(&mut client, lease).await?;
    tx.execute(
        "INSERT INTO writes VALUES ($1, $2)",
        &[&lease.group, &lease.epoch],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[tokio::test]
async fn of_workers_racing_for_a_free_group_exactly_one_gets_it() {
    let all = workers(6, Duration::from_secs(30)).await;
    let names = groups(20);
    all[0].offer(&alone(&names)).await.expect("offer");
    for group in &names {
        let claims = futures_util::future::join_all(all.iter().map(|w| w.claim(group))).await;
        let won: Vec<Lease> = claims
            .into_iter()
            .filter_map(|c| c.expect("claim"))
            .collect();
        assert_eq!(won.len(), 1, "{group}: {won:?}");
        assert_eq!(won[0].epoch, 1);
    }
    // Held, so nobody else gets it, its holder included (a claim is for a free group).
    for w in &all {
        assert_eq!(w.claim(&names[0]).await.expect("claim"), None);
    }
}

#[tokio::test]
async fn an_expired_lease_goes_to_another_worker_under_a_new_epoch_and_the_old_holder_is_refused() {
    let all = workers(2, Duration::from_millis(300)).await;
    let (a, b) = (&all[0], &all[1]);
    a.offer(&alone(&groups(1))).await.expect("offer");
    let mut old = a.claim("shop-00").await.expect("claim").expect("free");
    write(a, &old)
        .await
        .expect("a write under a live lease lands");
    assert!(a.renew(&mut old).await.expect("renew"));
    assert_eq!(b.claim("shop-00").await.expect("claim"), None, "held");
    // A stall past the lease (SIGSTOP, a partition): nothing renews it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !old.may_act(Instant::now()),
        "it stopped acting before it expired"
    );
    let new = b.claim("shop-00").await.expect("claim").expect("expired");
    assert_eq!(new.epoch, old.epoch + 1);
    match write(a, &old).await {
        Err(FenceError::Fenced { group, epoch }) => {
            assert_eq!((group.as_str(), epoch), ("shop-00", old.epoch));
        }
        other => panic!("the old holder's write was not refused: {other:?}"),
    }
    assert!(
        !a.renew(&mut old).await.expect("renew"),
        "no renewal either"
    );
    write(b, &new).await.expect("the new holder writes");
    let epochs: Vec<i64> = a
        .client()
        .await
        .expect("client")
        .query("SELECT epoch FROM writes ORDER BY epoch", &[])
        .await
        .expect("writes")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(epochs, vec![1, 2]);
}

#[tokio::test]
async fn an_expired_lease_nobody_took_is_not_renewed_nor_written_under() {
    let all = workers(1, Duration::from_millis(200)).await;
    let a = &all[0];
    a.offer(&alone(&groups(1))).await.expect("offer");
    let mut lease = a.claim("shop-00").await.expect("claim").expect("free");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!a.renew(&mut lease).await.expect("renew"));
    assert!(matches!(
        write(a, &lease).await,
        Err(FenceError::Fenced { .. })
    ));
    // Claimed again, it is a new epoch: whatever the old one began is over.
    let again = a.claim("shop-00").await.expect("claim").expect("expired");
    assert_eq!(again.epoch, lease.epoch + 1);
}

#[tokio::test]
async fn a_claim_waits_for_a_fenced_write_in_flight_so_no_old_epoch_write_lands_after_a_new_epoch_began()
 {
    let all = workers(2, Duration::from_millis(300)).await;
    let (a, b) = (all[0].clone(), all[1].clone());
    a.offer(&alone(&groups(1))).await.expect("offer");
    let old = a.claim("shop-00").await.expect("claim").expect("free");
    let mut client = a.connection().await.expect("connection");
    let tx = a.fenced(&mut client, &old).await.expect("fenced");
    tx.execute("INSERT INTO writes VALUES ('shop-00', $1)", &[&old.epoch])
        .await
        .expect("insert");
    // The lease expires while the write is in flight; the other worker tries to take it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let claim = tokio::spawn(async move {
        loop {
            if let Some(lease) = b.claim("shop-00").await.expect("claim") {
                let seen: i64 = b
                    .client()
                    .await
                    .expect("client")
                    .query_one("SELECT count(*) FROM writes", &[])
                    .await
                    .expect("count")
                    .get(0);
                return (lease, seen);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !claim.is_finished(),
        "the claim waits for the write in flight"
    );
    tx.commit().await.expect("commit");
    let (new, seen) = claim.await.expect("claim task");
    assert_eq!(new.epoch, old.epoch + 1);
    assert_eq!(
        seen, 1,
        "the old epoch's write landed before the new epoch began"
    );
}

#[tokio::test]
async fn a_lease_handed_over_is_free_at_once() {
    let all = workers(2, Duration::from_secs(30)).await;
    let (a, b) = (&all[0], &all[1]);
    a.offer(&alone(&groups(1))).await.expect("offer");
    let lease = a.claim("shop-00").await.expect("claim").expect("free");
    a.release(&lease).await.expect("release");
    let taken = b
        .claim("shop-00")
        .await
        .expect("claim")
        .expect("free at once");
    assert_eq!(taken.epoch, 2);
    // A hand-over of a lease already gone frees nothing.
    a.release(&lease).await.expect("release");
    assert_eq!(a.claim("shop-00").await.expect("claim"), None);
}

/// Rounds of every worker heartbeating and rebalancing, in turn, until nothing moves.
async fn settle(workers: &[Leases], held: &mut [Vec<Lease>]) -> usize {
    for round in 1..=20 {
        let mut moved = false;
        for w in workers {
            w.heartbeat().await.expect("heartbeat");
        }
        for (w, held) in workers.iter().zip(held.iter_mut()) {
            let plan = w.rebalance(held).await.expect("rebalance");
            for lease in &plan.release {
                w.release(lease).await.expect("release");
                held.retain(|l| l != lease);
                moved = true;
            }
            for group in &plan.claim {
                if let Some(lease) = w.claim(group).await.expect("claim") {
                    held.push(lease);
                    moved = true;
                }
            }
        }
        if !moved {
            return round;
        }
    }
    panic!("the shares did not settle in 20 rounds");
}

#[tokio::test]
async fn thirty_groups_spread_over_three_workers_then_four_within_one_of_each_other() {
    let all = workers(4, Duration::from_secs(30)).await;
    all[0].offer(&alone(&groups(30))).await.expect("offer");
    let mut held: Vec<Vec<Lease>> = vec![Vec::new(); 4];
    settle(&all[..3], &mut held[..3]).await;
    let counts: Vec<usize> = held.iter().map(Vec::len).collect();
    assert_eq!(counts, vec![10, 10, 10, 0]);
    // A fourth joins: it takes its share, the others hand theirs over.
    settle(&all, &mut held).await;
    let counts: Vec<usize> = held.iter().map(Vec::len).collect();
    assert_eq!(counts.iter().sum::<usize>(), 30, "{counts:?}");
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "{counts:?}"
    );
    // Each group held once.
    let mut every: Vec<&str> = held.iter().flatten().map(|l| l.group.as_str()).collect();
    every.sort();
    every.dedup();
    assert_eq!(every.len(), 30);
    // One stops: it leaves, hands its leases over, and the others take them.
    for lease in std::mem::take(&mut held[3]) {
        all[3].release(&lease).await.expect("release");
    }
    all[3].leave().await.expect("leave");
    settle(&all[..3], &mut held[..3]).await;
    let counts: Vec<usize> = held.iter().map(Vec::len).collect();
    assert_eq!(counts, vec![10, 10, 10, 0]);
}

proptest! {
    #[test]
    fn the_shares_add_up_to_every_group_and_differ_by_one_at_most(
        workers in 1usize..40,
        groups in 0usize..2000,
    ) {
        let names: Vec<String> = (0..workers).map(|i| format!("w{i:03}")).collect();
        let shares: Vec<usize> = names.iter().map(|w| share_of(&names, w, groups)).collect();
        prop_assert_eq!(shares.iter().sum::<usize>(), groups);
        prop_assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1);
    }
}

/// A shop's store fenced by `lease` of `leases`' worker, in the schema `schema`.
async fn fenced_store(
    url: &str,
    leases: &Leases,
    lease: &Lease,
    schema: &str,
) -> crate::store::Store {
    let store = crate::store::Store::open_postgres(pool(url, 2).expect("pool"), schema)
        .await
        .expect("the shop's schema");
    store
        .postgres()
        .expect("on PostgreSQL")
        .set_fence(Some(crate::store::db::postgres::Fence {
            group: lease.group.clone(),
            owner: leases.worker().to_owned(),
            epoch: lease.epoch,
        }));
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shops_store_refuses_every_write_once_its_lease_moved_on_and_still_reads() {
    let url = TestPostgres::get()
        .and_then(|pg| pg.database())
        .unwrap_or_else(|e| panic!("{e}"));
    let ttl = Duration::from_millis(300);
    let (a, b) = (
        Leases::new(pool(&url, 2).expect("pool"), "w0", ttl),
        Leases::new(pool(&url, 2).expect("pool"), "w1", ttl),
    );
    a.migrate().await.expect("migrate");
    a.offer(&alone(&groups(1))).await.expect("offer");
    let old = a.claim("shop-00").await.expect("claim").expect("free");
    let store = fenced_store(&url, &a, &old, "shop_00").await;
    let cycle = |store: &crate::store::Store| {
        let store = store.clone();
        async move { store.call(|c| crate::store::begin_cycle(c, 1, false)).await }
    };
    cycle(&store)
        .await
        .expect("a write under a live lease lands");

    // A stall past the lease, and another worker takes the shop.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let new = b.claim("shop-00").await.expect("claim").expect("expired");
    match cycle(&store).await {
        Err(crate::store::StoreError::Fenced { group, epoch }) => {
            assert_eq!((group.as_str(), epoch), ("shop-00", old.epoch));
        }
        other => panic!("the old holder's write was not refused: {other:?}"),
    }
    // A write outside any transaction of the store's own is fenced too.
    let settled = store
        .call(|c| crate::store::write_settled(c, 1, Some("x")))
        .await;
    assert!(
        matches!(settled, Err(crate::store::StoreError::Fenced { .. })),
        "{settled:?}"
    );
    let cycles = store
        .call(|c| crate::store::reads::last_cycles(c, 10))
        .await
        .expect("reads are not fenced");
    assert_eq!(
        cycles.len(),
        1,
        "only the write under the live lease landed"
    );

    let store = fenced_store(&url, &b, &new, "shop_00").await;
    cycle(&store).await.expect("the new holder writes");
}

#[tokio::test]
async fn renewing_every_lease_at_once_renews_those_still_held_and_says_which_are_gone() {
    let all = workers(2, Duration::from_millis(400)).await;
    let (a, b) = (&all[0], &all[1]);
    a.offer(&alone(&groups(3))).await.expect("offer");
    let mut held = Vec::new();
    for group in groups(3) {
        held.push(a.claim(&group).await.expect("claim").expect("free"));
    }
    // shop-01 is handed over and taken by b: a's lease on it is gone.
    a.release(&held[1]).await.expect("release");
    b.claim("shop-01").await.expect("claim").expect("free");
    let before: Vec<Instant> = held.iter().map(|l| l.act_until).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let renewed = a.renew_all(&mut held).await.expect("renew");
    assert_eq!(renewed, vec![true, false, true]);
    assert!(held[0].act_until > before[0] && held[2].act_until > before[2]);
    assert_eq!(held[1].act_until, before[1], "a lease gone is not extended");
    // Renewed past the first time to live: still a's, b's claims on them fail.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.claim("shop-00").await.expect("claim"), None);
    assert_eq!(
        a.renew_all(&mut []).await.expect("nothing"),
        Vec::<bool>::new()
    );
}

#[tokio::test]
async fn a_group_renamed_while_its_shops_run_is_claimed_only_once_the_old_lease_is_let_go() {
    let all = workers(2, Duration::from_secs(30)).await;
    let (a, b) = (&all[0], &all[1]);
    // north and south share a login: one group, named after its first shop.
    let shared = std::collections::BTreeMap::from([(
        "north".to_owned(),
        vec!["north".to_owned(), "south".to_owned()],
    )]);
    a.offer(&shared).await.expect("offer");
    let mut old = a.claim("north").await.expect("claim").expect("free");
    // north's file removed: b's folder now says south alone, a group named south.
    let renamed =
        std::collections::BTreeMap::from([("south".to_owned(), vec!["south".to_owned()])]);
    let names = vec!["south".to_owned()];
    b.retire(&names).await.expect("retire");
    b.offer(&renamed).await.expect("offer");

    assert_eq!(
        b.claim("south").await.expect("claim"),
        None,
        "south still runs under a's lease of north"
    );
    assert!(
        a.renew(&mut old).await.expect("renew"),
        "a worker whose folder is ahead takes nothing from the holder"
    );
    // a reads its folder too: it lets north go, and south is free to claim.
    a.retire(&names).await.expect("retire");
    a.offer(&renamed).await.expect("offer");
    assert!(b.claim("south").await.expect("claim").is_some());
}
