use std::path::PathBuf;

use super::*;
use crate::config::TargetRules;
use crate::store::{Store, TargetOutcome};

fn settings(targets: &[&str], sources: &[&str]) -> StatusSettings {
    StatusSettings {
        database: crate::config::Database::File(PathBuf::from("/var/lib/invsync/invsync.db")),
        stale_after: Duration::from_secs(3600),
        sources: sources.iter().map(|s| s.to_string()).collect(),
        targets: targets
            .iter()
            .map(|name| TargetRules {
                name: name.to_string(),
                inputs: Vec::new(),
                safety_stock: 0,
                max_quantity: None,
            })
            .collect(),
        feeds: Vec::new(),
        relay_alert_after: None,
    }
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("invsync.db"))
        .await
        .expect("opens");
    (dir, store)
}

#[tokio::test]
async fn only_configured_sources_are_listed_and_an_old_fetch_shows_stale() {
    let (_dir, store) = store().await;
    let long_ago = now_ms() - 2 * 3_600_000;
    let settings = settings(&[], &["dropship", "warehouse"]);

    let status = store
        .call(move |c| {
            store::begin_cycle(c, long_ago, false)?;
            for (name, fetched_at) in [
                ("dropship", long_ago),
                ("removed", long_ago),
                ("warehouse", now_ms()),
            ] {
                let id = store::endpoint_id(c, Side::Source, name)?;
                store::source_fetched(c, id, 3, fetched_at)?;
            }
            read(c, 10, &settings)
        })
        .await
        .expect("reads");
    let text = render_text(&status);

    let stale: Vec<(&str, bool)> = status
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.stale))
        .collect();
    assert_eq!(
        stale,
        vec![("dropship", true), ("warehouse", false)],
        "a source no longer configured is not listed"
    );
    assert!(
        text.contains("dropship: STALE: no complete fetch for longer than stale_after (1h)"),
        "{text}"
    );
    assert!(text.contains("warehouse: ok"), "{text}");
    assert!(
        status.sources[1]
            .last_fetch_at
            .as_deref()
            .is_some_and(|at| at.ends_with('Z') && at.contains('T')),
        "RFC 3339: {:?}",
        status.sources[1].last_fetch_at
    );
}

#[tokio::test]
async fn each_target_shows_the_state_the_contract_names_and_check_exits_as_a_plugin() {
    let (_dir, store) = store().await;
    let names = [
        "failing", "held", "in_sync", "never", "pending", "removed", "syncing",
    ];
    let configured = settings(
        &["failing", "held", "in_sync", "never", "pending", "syncing"],
        &[],
    );
    let all_well = settings(&["in_sync"], &[]);

    let (status, healthy) = store
        .call(move |c| {
            let at = now_ms();
            for name in names {
                let id = store::endpoint_id(c, Side::Target, name)?;
                let outcome = match name {
                    "failing" => TargetOutcome {
                        error: Some("HTTP 503".into()),
                        ..Default::default()
                    },
                    "held" => TargetOutcome {
                        held: Some("would zero 30 of 30 positive SKUs".into()),
                        ..Default::default()
                    },
                    "pending" => TargetOutcome {
                        pending: 5700,
                        ..Default::default()
                    },
                    "never" => continue,
                    _ => TargetOutcome::default(),
                };
                store::target_outcome(c, id, &outcome, at)?;
            }
            // A cycle in flight, pushing to `syncing`.
            store::begin_cycle(c, at, false)?;
            let syncing = store::endpoint_id(c, Side::Target, "syncing")?;
            store::target_progress(c, syncing, 4700, 9000, at)?;
            Ok((read(c, 10, &configured)?, read(c, 10, &all_well)?))
        })
        .await
        .expect("reads");

    let labels: Vec<(&str, &str)> = status
        .targets
        .iter()
        .map(|t| (t.name.as_str(), t.label.as_str()))
        .collect();
    println!("{labels:?}\n{}", check_line(&status).0);
    assert_eq!(
        labels,
        [
            ("failing", "FAILING"),
            ("held", "HELD"),
            ("in_sync", "in sync"),
            ("never", "never synced"),
            ("pending", "PENDING 5700"),
            ("syncing", "syncing 4700/9000"),
        ],
        "a removed target is not listed"
    );
    let syncing = (status.targets.iter())
        .find(|t| t.name == "syncing")
        .expect("syncing");
    assert_eq!(syncing.pending, 4300, "during a push, what is left of it");
    assert_eq!(check_line(&status).1, 2);
    assert_eq!(
        check_line(&healthy),
        ("OK: 1 targets in sync".to_owned(), 0)
    );
    let without = without_database(&settings(&["a"], &["s"]));
    assert_eq!(check_line(&without).1, 3);
    assert_eq!(without.targets[0].label, "never synced");
}
