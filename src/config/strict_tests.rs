//! The strict reading of the file: every error at once, numbers of the right kind, suggestions,
//! the time zone, warnings, every key documented, the metrics address.

use super::tests::{MINIMAL, write};
use super::*;

#[test]
fn every_error_of_the_file_is_reported_at_once_each_naming_its_key() {
    let text = MINIMAL
        .replace(
            "every = \"5m\"",
            "every = \"5m\"\nrequest_timeout = \"soon\"\nlog_formt = \"json\"",
        )
        .replace("sku_prefix = \"EA-\"", "sku_prefx = \"EA-\"")
        .replace("[\"dropship\"]", "[\"dropshp\"]")
        .replace(
            "password = \"pw\"",
            "password = \"pw\"\nbatch_size = \"100\"",
        );
    let (_dir, path) = write(&text);

    let errors = Config::load(&path).expect_err("five mistakes").to_string();

    println!("{errors}");
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines.len(), 5, "{errors}");
    for (line, expected) in lines.iter().zip([
        "daemon.log_formt: unknown key; did you mean \"log_format\"?",
        "daemon.request_timeout: \"soon\" is not a duration",
        "sources.dropship.sku_prefx: unknown key; did you mean \"sku_prefix\"?",
        "targets.hardtofind.batch_size: invalid type: string \"100\", expected usize",
        "targets.hardtofind.inputs: unknown source \"dropshp\"; did you mean \"dropship\"?",
    ]) {
        assert!(line.contains("config.toml: "), "{line}");
        assert!(line.contains(expected), "expected {expected:?} in {line:?}");
    }
}

#[test]
fn numbers_must_be_numbers_of_the_right_kind() {
    for (value, expected) in [
        (
            "batch_size = \"100\"",
            "invalid type: string \"100\", expected usize",
        ),
        (
            "batch_size = 150.9",
            "invalid type: floating point `150.9`, expected usize",
        ),
        (
            "safety_stock = 1.5",
            "targets.hardtofind.safety_stock: invalid type: floating point",
        ),
        (
            "requests_per_minute = -1",
            "targets.hardtofind.requests_per_minute: invalid value",
        ),
    ] {
        let (_dir, path) =
            write(&MINIMAL.replace("password = \"pw\"", &format!("password = \"pw\"\n{value}")));
        let error = Config::load(&path).expect_err(value).to_string();
        println!("{value}: {error}");
        assert!(
            error.contains(expected),
            "expected {expected:?} in {error:?}"
        );
    }
    let (_dir, path) =
        write(&MINIMAL.replace("every = \"5m\"", "every = \"5m\"\nmax_zeroed_fraction = 1"));
    assert_eq!(
        Config::load(&path)
            .expect("an integer is a fraction")
            .daemon
            .max_zeroed_fraction,
        1.0
    );
}

#[test]
fn both_schedules_run_in_daemon_timezone_and_a_misspelt_zone_gets_a_suggestion() {
    let (_dir, path) = write(&MINIMAL.replace(
        "every = \"5m\"",
        "schedule = \"0 */5 * * * *\"\ntimezone = \"Australia/Sydney\"",
    ));
    let (_dir2, bad) = write(&MINIMAL.replace(
        "every = \"5m\"",
        "every = \"5m\"\ntimezone = \"Australia/Sydny\"",
    ));

    let config = Config::load(&path).expect("valid");
    let error = Config::load(&bad).expect_err("no such zone").to_string();

    let sydney: chrono_tz::Tz = "Australia/Sydney".parse().expect("zone");
    assert_eq!(config.daemon.timezone, sydney);
    let Trigger::Schedule(schedule) = &config.daemon.trigger else {
        panic!("a schedule")
    };
    assert_eq!(schedule.zone(), sydney);
    assert_eq!(
        config.daemon.full_sync_schedule.as_ref().map(Cron::zone),
        Some(sydney)
    );
    println!("{error}");
    assert!(
        error.contains("daemon.timezone: \"Australia/Sydny\" is not a time zone; did you mean \"Australia/Sydney\"?"),
        "{error}"
    );
}

#[test]
fn an_unused_source_and_a_stale_after_shorter_than_the_schedule_are_warned_about() {
    let text = MINIMAL.replace("every = \"5m\"", "every = \"2h\"")
        + r#"
[sources.spare]
type = "endless_aisles"
base_url = "https://app.endlessaisles.io/"
token = "t"
"#;
    let (_dir, path) = write(&text);

    let config = Config::load(&path).expect("valid, with warnings");

    for warning in &config.warnings {
        println!("WARN {warning}");
    }
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.starts_with("sources.spare is not in any target's inputs")),
        "{:?}",
        config.warnings
    );
    assert!(
        config.warnings.iter().any(|w| w.starts_with(
            "daemon.stale_after (1h) is shorter than the time between two cycles (2h)"
        )),
        "{:?}",
        config.warnings
    );
}

#[test]
fn every_key_is_documented_in_the_example() {
    use crate::services::{endless_aisles, hako, hardtofind};
    use typed::field_names;
    let example = include_str!("../../config.example.toml");
    let tables = [
        ("daemon", field_names::<raw::RawDaemon>()),
        ("hako source", field_names::<hako::config::RawSource>()),
        ("hako target", field_names::<hako::config::RawTarget>()),
        (
            "endless_aisles source",
            field_names::<endless_aisles::config::RawSource>(),
        ),
        (
            "hardtofind target",
            field_names::<hardtofind::config::RawTarget>(),
        ),
        ("relay", field_names::<super::relay::RawRelay>()),
        ("mapping", field_names::<super::mapping::RawMapping>()),
    ];
    let documented = |key: &str| {
        example.lines().any(|line| {
            let line = line.trim_start_matches(['#', ' ']);
            line.starts_with(&format!("{key} = "))
        })
    };
    for (table, keys) in tables {
        assert!(!keys.is_empty(), "{table}");
        for key in keys {
            // A secret's inline form is documented beside its `_file` form.
            let inline_of_file = keys.contains(&format!("{key}_file").as_str());
            assert!(
                documented(key) || inline_of_file && example.contains(&format!("{key} = \"…\"")),
                "{table} key {key} is not in config.example.toml"
            );
        }
    }
}

#[test]
fn metrics_listen_is_an_address_written_out_and_off_when_absent() {
    let with =
        |line: &str| write(&MINIMAL.replace("every = \"5m\"", &format!("every = \"5m\"\n{line}")));
    let (_a, loopback) = with("metrics_listen = \"127.0.0.1:9793\"");
    let (_b, everywhere) = with("metrics_listen = \"0.0.0.0:9793\"");
    let (_c, named) = with("metrics_listen = \"localhost:9793\"");
    let (_d, absent) = write(MINIMAL);

    let listen = |path: &Path| Config::load(path).map(|c| c.daemon.metrics_listen);

    assert_eq!(
        listen(&loopback).ok().flatten(),
        "127.0.0.1:9793".parse().ok()
    );
    assert_eq!(
        listen(&everywhere).ok().flatten(),
        "0.0.0.0:9793".parse().ok(),
        "as written"
    );
    assert_eq!(listen(&absent).ok(), Some(None), "off unless configured");
    let error = listen(&named).expect_err("a host name").to_string();
    assert!(
        error.contains("daemon.metrics_listen: \"localhost:9793\" is not an IP address and port"),
        "{error}"
    );
}

#[test]
fn a_postgres_url_is_a_database_in_a_schema_named_after_the_file_or_daemon_schema() {
    let url = "postgres://invsync:s3cret@db.example:5432/fleet?sslmode=prefer";
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("Big-Shop.toml");
    let text = MINIMAL.replace("state/invsync.db", url);
    std::fs::write(&path, &text).expect("write");

    let named = Config::load(&path).expect("valid").daemon.database;
    let (_dir, chosen) =
        write(&text.replace("every = \"5m\"", "every = \"5m\"\nschema = \"shop_7\""));
    let chosen = Config::load(&chosen).expect("valid").daemon.database;

    let Database::Postgres(pg) = &named else {
        panic!("{named:?}")
    };
    assert_eq!(pg.schema, "big_shop");
    assert_eq!(
        named.to_string(),
        "postgres://invsync@db.example:5432/fleet?sslmode=prefer (schema big_shop)"
    );
    assert!(!format!("{named:?}").contains("s3cret"), "{named:?}");
    assert_eq!(
        status_settings(&path).expect("valid").database,
        named,
        "status reads the same"
    );
    assert!(matches!(&chosen, Database::Postgres(pg) if pg.schema == "shop_7"));
}

#[test]
fn a_bad_postgres_url_or_schema_is_an_error_naming_its_key_never_the_password() {
    for (database, schema, key) in [
        (
            "postgres://invsync:s3cret@db:notaport/fleet",
            None,
            "daemon.database:",
        ),
        (
            "postgres://invsync:s3cret@db/fleet?sslmode=maybe",
            None,
            "daemon.database:",
        ),
        (
            "postgres://invsync:s3cret@db/fleet",
            Some("Shop"),
            "daemon.schema:",
        ),
        ("state/invsync.db", Some("shop"), "daemon.schema:"),
    ] {
        let mut text = MINIMAL.replace("state/invsync.db", database);
        if let Some(schema) = schema {
            text = text.replace(
                "every = \"5m\"",
                &format!("every = \"5m\"\nschema = \"{schema}\""),
            );
        }
        let (_dir, path) = write(&text);

        let error = Config::load(&path).expect_err(database).to_string();
        let status = status_settings(&path).expect_err(database).to_string();

        println!("{error}");
        assert!(error.contains(key), "{error}");
        assert_eq!(error.lines().count(), 1, "{error}");
        assert!(
            !error.contains("s3cret") && !status.contains("s3cret"),
            "{error}"
        );
    }
}
