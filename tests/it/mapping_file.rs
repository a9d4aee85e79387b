//! The mapping file is read and checked once: a start or a reload that finds the file the
//! database recorded (same stamp, or same bytes) does not parse it again, and a cycle that needs
//! its lines reads them from the database. A changed file is read and checked again.

use std::ffi::OsStr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;
use crate::mapping::with_mapping;

/// Parsed and checked: the DEBUG line of a file read line by line.
const PARSED: &str = "the mapping file was read and checked";
/// Not parsed: its bytes are those recorded, or its stamp is.
const NOT_PARSED: [&str; 2] = [
    "the mapping file has the bytes recorded: read, not checked again",
    "the mapping file is the one recorded (same stamp): not read",
];

fn debug() -> [(&'static str, &'static OsStr); 1] {
    [("RUST_LOG", OsStr::new("info,invsync=debug"))]
}

fn not_parsed(stderr: &str) -> bool {
    !stderr.contains(PARSED) && NOT_PARSED.iter().any(|l| stderr.contains(l))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_file_checked_once_is_not_parsed_again_and_a_changed_one_is() {
    let mut world = World::start().await;
    world.htf.add_variants(["HTF-ONE", "HTF-TWO"]);
    with_mapping(
        &mut world,
        "sku,endpoint,key\nHK-1,hardtofind,HTF-ONE\n",
        "",
    );
    let first = world.invsync_env(&["once"], &debug()).await;
    first.assert_code(0);
    assert!(first.stderr.contains(PARSED), "{}", first.stderr);
    assert_eq!(world.htf.inventory("HTF-ONE"), Some(2));

    // The same file, and a source that changed: its lines come from the database.
    world.hako.set_quantity("warehouse-010", "HK-1", 7);
    let again = world.invsync_env(&["once"], &debug()).await;
    again.assert_code(0);
    assert!(not_parsed(&again.stderr), "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("the mapping file's lines were read from the database"),
        "{}",
        again.stderr
    );
    assert_eq!(
        world.htf.inventory("HTF-ONE"),
        Some(7),
        "still under its key"
    );
    let explained = world.invsync(&["status", "--sku", "HK-1"]).await;
    assert!(
        explained
            .stdout
            .contains("called HTF-ONE (mapping file line 2) at hardtofind"),
        "{}",
        explained.stdout
    );

    // Left alone long enough, its stamp is trusted: it is not even read.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    world.invsync_env(&["once"], &debug()).await.assert_code(0);
    let untouched = world.invsync_env(&["once"], &debug()).await;
    untouched.assert_code(0);
    assert!(
        untouched.stderr.contains(NOT_PARSED[1]),
        "{}",
        untouched.stderr
    );

    // Changed: read and checked again, and in force.
    std::fs::write(
        world.dir.path().join("skus.csv"),
        "sku,endpoint,key\nHK-1,hardtofind,HTF-TWO\n",
    )
    .expect("mapping file");
    let changed = world.invsync_env(&["once"], &debug()).await;
    changed.assert_code(0);
    assert!(changed.stderr.contains(PARSED), "{}", changed.stderr);
    assert_eq!(world.htf.inventory("HTF-TWO"), Some(7));
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicts_are_still_held_and_listed_after_a_restart_that_does_not_parse_the_file() {
    let mut world = World::start().await;
    world.htf.add_variants(["A-2", "B-2"]);
    world.invsync(&["once"]).await.assert_code(0);
    with_mapping(
        &mut world,
        "sku,endpoint,key\nHK-2,hardtofind,A-2\nHK-2,hardtofind,B-2\n",
        "",
    );
    world.invsync(&["once"]).await.assert_code(0);

    // A restart with a source that changed: the conflict is worked out again, from the lines
    // recorded, and HK-2 is still held.
    world.hako.set_quantity("warehouse-010", "HK-2", 0);
    world.hako.set_quantity("warehouse-010", "HK-3", 9);
    let again = world.invsync_env(&["once"], &debug()).await;
    again.assert_code(0);
    assert!(not_parsed(&again.stderr), "{}", again.stderr);

    assert_eq!(world.htf.inventory("HK-2"), Some(3), "held, never zeroed");
    assert_eq!(world.htf.inventory("HK-3"), Some(9));
    let status = world.invsync(&["status"]).await;
    assert!(
        status.stdout.contains(
            "CONFLICT HK-2: at hardtofind: two keys: \"A-2\" and \"B-2\"; held at every target"
        ),
        "{}",
        status.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_with_the_same_mapping_file_does_not_parse_it_again() {
    let mut world = World::start().await;
    world.htf.add_variant("HTF-ONE");
    with_mapping(
        &mut world,
        "sku,endpoint,key\nHK-1,hardtofind,HTF-ONE\n",
        "",
    );
    let mut child = world.spawn(&["run"], &debug());
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    // Every line up to the first that has `what`.
    let mut until = async |what: &str| {
        let mut seen = String::new();
        let found = read_until(&mut lines, &mut seen, what, 1).await;
        assert!(found, "no line with {what:?}: {seen}");
        seen
    };
    let started = until("cycle finished").await;
    assert!(started.contains(PARSED), "{started}");

    signal(&child, "HUP");
    let reloaded = until("configuration reloaded").await;
    assert!(not_parsed(&reloaded), "{reloaded}");
    assert!(!reloaded.contains("mapping.file"), "{reloaded}");
    until("the reloaded configuration is in force").await;
    world.hako.set_quantity("warehouse-010", "HK-1", 5);
    wait_until("HK-1 pushed as HTF-ONE under the same mapping", || {
        world.htf.inventory("HTF-ONE") == Some(5)
    })
    .await;
    signal(&child, "TERM");
    let status = child.wait().await.expect("exits");
    assert_eq!(status.code(), Some(0));
}
