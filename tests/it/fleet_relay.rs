//! The dropship relay on a fleet: workers killed (SIGKILL) between an order's intent and the
//! answer to its `PUT /api/orders`, their shops taken over by the others, and still exactly one
//! supplier order per Hardtofind order, never placed again once known placed, and one worker at
//! a time acting for each shop.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use invsync::services::endless_aisles::sim::SimSize;
use invsync::sim::{Dialect, Fault};

use crate::fleet::{AsyncCheck, Fleet, Shop, runs_never_return, worker_of};
use crate::relay::us_order;

const SHOPS: usize = 6;
const ROUNDS: usize = 4;
/// Sellable sizes at each shop's Endless Aisles (option ids `100000`…, as its stock).
const SIZES: u64 = 5;

/// A shop whose Hardtofind orders are relayed to its Endless Aisles account (`auto`).
async fn relaying_shop(name: &str) -> Shop {
    let mut shop = Shop::start(name).await;
    for i in 0..SIZES {
        let id = 100_000 + i;
        let upc = format!("'0649921{id:06}");
        shop.source
            .add_product(i + 1, "Shirt", vec![SimSize::new(id, &upc)]);
    }
    shop.extra = format!(
        r#"
[orders.hardtofind]
type = "hardtofind"
base_url = "{htf}"
username = "{name}"
password = "{name}-password"
requests_per_minute = 100000

[relay]
mode = "auto"
from = "hardtofind"
to = "stock"
max_orders_per_cycle = 500
"#,
        htf = shop.htf.base_url(),
    );
    shop
}

/// One `PUT /api/orders` as the shop's Endless Aisles saw it.
struct Put {
    custom_order_id: String,
    worker: String,
    /// 0: never answered (the request hung, or its sender died).
    status: u16,
}

fn puts(shop: &Shop) -> Vec<Put> {
    (shop.source.requests().iter())
        .filter(|r| r.method == "PUT" && r.path == "/api/orders")
        .map(|r| Put {
            custom_order_id: serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|b| b["custom_order_id"].as_str().map(str::to_owned))
                .unwrap_or_default(),
            worker: (r.header("user-agent").and_then(worker_of)).unwrap_or_default(),
            status: r.status,
        })
        .collect()
}

/// The `custom_order_id` of the last unanswered `PUT` at `shop`, when it is one more than
/// `before` and `worker` sent it.
fn hung_by(shop: &Shop, before: usize, worker: &str) -> Option<String> {
    let hung: Vec<Put> = puts(shop).into_iter().filter(|p| p.status == 0).collect();
    let last = hung.last()?;
    (hung.len() > before && last.worker == worker).then(|| last.custom_order_id.clone())
}

/// Each relay record of `shop`: order id → (state, reason, custom_order_id), from its schema.
async fn records(fleet: &Fleet, shop: &Shop) -> HashMap<String, (String, Option<String>, String)> {
    let pool = invsync::store::db::pool::pool(&fleet.url, 1).expect("a pool");
    let client = pool.get().await.expect("a connection");
    let sql = format!(
        "SELECT order_id, state, reason, custom_order_id FROM {}.relay_orders",
        shop.name
    );
    // The schema is made when the shop first starts.
    let rows = client.query(&sql, &[]).await.unwrap_or_default();
    rows.iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect()
}

/// Every order placed so far relayed: its record `processing` (placed, and Hardtofind told).
struct Relayed<'a>(&'a [Vec<String>]);
impl AsyncCheck for Relayed<'_> {
    async fn check(&self, fleet: &Fleet) -> bool {
        for (shop, orders) in fleet.shops.iter().zip(self.0) {
            let records = records(fleet, shop).await;
            let done = |id: &String| records.get(id).is_some_and(|(s, ..)| s == "processing");
            if !orders.iter().all(done) {
                return false;
            }
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_between_an_orders_intent_and_its_answer_leave_exactly_one_supplier_order_each()
 {
    let started = Instant::now();
    let url = invsync::harness::postgres::TestPostgres::get()
        .and_then(|pg| pg.database())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut shops = Vec::new();
    for n in 0..SHOPS {
        let shop = relaying_shop(&format!("shop{n:02}")).await;
        if n % 2 == 1 {
            // A production install: a resent id meets a bare 409, and its search lags.
            shop.source.set_dialect(Dialect::production());
            shop.source.set_search_lag(1);
        }
        shops.push(shop);
    }
    let mut fleet = Fleet::of(shops, url);
    for name in ["w1", "w2", "w3"] {
        fleet.add_worker(name);
    }
    fleet.spread("the shops spread 2/2/2", 3, 2, 2).await;
    let mut orders: Vec<Vec<String>> = vec![Vec::new(); SHOPS];
    let (mut dangerous, mut next_worker) = (0, 4);
    let mut timeline = Vec::new();
    for round in 0..ROUNDS {
        // The victim's shops: their next PUT is applied and never answered, or never applied.
        let victim = fleet.workers.keys().next().expect("a worker").clone();
        let holders = fleet.holders().await;
        let of_victim: Vec<usize> = (0..SHOPS)
            .filter(|&i| holders.get(&fleet.shops[i].name) == Some(&Some(victim.clone())))
            .collect();
        assert!(!of_victim.is_empty(), "{victim} holds shops: {holders:?}");
        let hung_before: Vec<usize> = (fleet.shops.iter())
            .map(|s| puts(s).iter().filter(|p| p.status == 0).count())
            .collect();
        for (k, &i) in of_victim.iter().enumerate() {
            let fault = if (k + round) % 2 == 0 {
                Fault::AfterHandling(Box::new(Fault::Hang))
            } else {
                Fault::Hang
            };
            fleet.shops[i]
                .source
                .faults()
                .push_for("PUT", "/api/orders", fault);
        }
        for (i, shop) in fleet.shops.iter().enumerate() {
            for line in 0..2 {
                let sku = format!("EA-{}", 100_000 + (round as u64 + line) % SIZES);
                let customer = format!("R{round}S{i}L{line}");
                orders[i].push(shop.htf.place_order(us_order(&[(&sku, 1)], &customer)));
            }
        }
        let waiting = Instant::now();
        while waiting.elapsed() < Duration::from_secs(15)
            && !of_victim
                .iter()
                .all(|&i| hung_by(&fleet.shops[i], hung_before[i], &victim).is_some())
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut child = fleet.workers.remove(&victim).expect("the victim");
        child.start_kill().expect("SIGKILL");
        let _ = child.wait().await;
        let killed = Instant::now();
        // A kill in the dangerous moment: the PUT sent and unanswered, its intent committed.
        for &i in &of_victim {
            let Some(custom) = hung_by(&fleet.shops[i], hung_before[i], &victim) else {
                continue;
            };
            let records = records(&fleet, &fleet.shops[i]).await;
            if (records.values()).any(|(state, _, c)| state == "placing" && *c == custom) {
                dangerous += 1;
            }
        }
        // The victim's shops move to the others; a new worker takes its share.
        let survivors: Vec<String> = fleet.workers.keys().cloned().collect();
        loop {
            let mut held = 0;
            for w in &survivors {
                held += fleet.leases_of(w).await;
            }
            if held == SHOPS as i64 {
                break;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(30),
                "{victim}'s shops did not move"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let moved = killed.elapsed();
        fleet.add_worker(&format!("w{next_worker}"));
        next_worker += 1;
        fleet.spread("the shops spread 2/2/2 again", 3, 2, 2).await;
        fleet
            .wait_for(
                "every order so far relayed",
                Duration::from_secs(60),
                Relayed(&orders),
            )
            .await;
        timeline.push(format!(
            "round {round}: {victim} killed holding {} shops, moved after {:.1} s, all relayed after {:.1} s",
            of_victim.len(),
            moved.as_secs_f64(),
            killed.elapsed().as_secs_f64()
        ));
    }

    let placed: usize = orders.iter().map(Vec::len).sum();
    let mut resends = 0;
    for (shop, orders) in fleet.shops.iter().zip(&orders) {
        // Exactly one supplier order per Hardtofind order, and none other.
        let mut by_custom: BTreeMap<String, usize> = BTreeMap::new();
        for order in shop.source.orders() {
            *by_custom
                .entry(order.custom_order_id.unwrap_or_default())
                .or_default() += 1;
        }
        let wanted: BTreeMap<String, usize> =
            orders.iter().map(|id| (format!("htf-{id}"), 1)).collect();
        assert_eq!(by_custom, wanted, "{}: supplier orders", shop.name);
        // An order is sent again only while its outcome is unknown: never after an answer that
        // it was placed.
        let mut answered: BTreeMap<String, bool> = BTreeMap::new();
        for put in puts(shop) {
            let placed = answered.entry(put.custom_order_id.clone()).or_default();
            assert!(
                !*placed,
                "{}: {} sent again by {} after it was placed",
                shop.name, put.custom_order_id, put.worker
            );
            *placed = (200..300).contains(&put.status);
        }
        resends += puts(shop).len() - orders.len();
        // Nothing MANUAL, nothing left behind.
        let records = records(&fleet, shop).await;
        let states: Vec<(&String, &String, &Option<String>)> =
            (records.iter()).map(|(id, (s, r, _))| (id, s, r)).collect();
        assert!(
            records.len() == orders.len() && records.values().all(|(s, ..)| s == "processing"),
            "{}: {states:?}",
            shop.name
        );
        // One worker at a time acted for the shop, at each of its services.
        for (service, requests) in [
            ("Endless Aisles", shop.source.requests()),
            ("Hardtofind", shop.htf.requests()),
        ] {
            let workers: Vec<String> = (requests.iter())
                .filter_map(|r| r.header("user-agent").and_then(worker_of))
                .collect();
            let mut runs = workers.clone();
            runs.dedup();
            assert!(
                runs_never_return(&workers),
                "{}: two workers acted at {service}: {runs:?}",
                shop.name
            );
        }
    }
    println!(
        "fleet relay: {ROUNDS} workers killed, {dangerous} kills between an intent and its answer, {placed} orders placed once each ({resends} resends of an unknown outcome), {:.1} s\n{}",
        started.elapsed().as_secs_f64(),
        timeline.join("\n")
    );
    assert!(
        dangerous >= ROUNDS * 3 / 2,
        "only {dangerous} kills landed between an intent and its answer"
    );
}
