use std::io::Write as _;

use secrecy::ExposeSecret;

use super::*;

pub(super) fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    let mut file = std::fs::File::create(&path).expect("create");
    file.write_all(text.as_bytes()).expect("write");
    (dir, path)
}

pub(super) const MINIMAL: &str = r#"
[daemon]
database = "state/invsync.db"
every = "5m"

[sources.dropship]
type = "endless_aisles"
base_url = "https://app.endlessaisles.io/"
token = "t0ken"
sku_prefix = "EA-"

[targets.hardtofind]
type = "hardtofind"
base_url = "https://api.hardtofind.com.au"
username = "seller@example.com"
password = "pw"
inputs = ["dropship"]
"#;

#[test]
fn a_minimal_file_gets_the_documented_defaults() {
    let (_dir, path) = write(MINIMAL);
    let config = Config::load(&path).expect("valid");
    assert_eq!(
        config.daemon.trigger,
        Trigger::Every(Duration::from_secs(300))
    );
    assert_eq!(config.daemon.request_timeout, Duration::from_secs(30));
    assert_eq!(config.daemon.max_zeroed_fraction, 0.25);
    assert_eq!(config.daemon.log_format, LogFormat::Text);
    assert_eq!(config.daemon.retry, RetrySettings::default());
    assert_eq!(config.daemon.stale_after, Duration::from_secs(3600));
    assert_eq!(config.daemon.fetch_timeout, Duration::from_secs(600));
    assert_eq!(
        config.daemon.full_sync_schedule.as_ref().map(Cron::text),
        Some("0 30 3 * * *"),
        "drift is repaired daily unless turned off"
    );
    let off = write(&MINIMAL.replace(
        "every = \"5m\"",
        "every = \"5m\"\nfull_sync_schedule = \"off\"",
    ));
    assert_eq!(
        Config::load(&off.1)
            .expect("valid")
            .daemon
            .full_sync_schedule,
        None
    );
    let source = &config.sources[0];
    assert_eq!(
        source.remote.base_url, "https://app.endlessaisles.io",
        "trailing slash dropped"
    );
    assert_eq!(
        source.remote.requests_per_minute,
        DEFAULT_REQUESTS_PER_MINUTE
    );
    let target = &config.targets[0];
    assert_eq!(target.inputs, vec![0]);
    assert_eq!(target.batch_size, DEFAULT_BATCH_SIZE);
    assert_eq!(target.safety_stock, 0);
    assert_eq!(target.max_quantity, None);
}

#[test]
fn secrets_come_trimmed_from_their_files_and_never_show_in_debug_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_path = dir.path().join("token");
    std::fs::write(&secret_path, "  canary-token-123\n").expect("write");
    let text = MINIMAL.replace(
        "token = \"t0ken\"",
        &format!("token_file = {:?}", secret_path.display().to_string()),
    );
    let (_d, path) = write(&text);
    let config = Config::load(&path).expect("valid");
    let SourceKind::EndlessAisles(settings) = &config.sources[0].kind else {
        panic!("endless aisles")
    };
    assert_eq!(settings.token.expose_secret(), "canary-token-123");
    let debug = format!("{config:?}");
    assert!(!debug.contains("canary-token-123"), "{debug}");
    assert!(!debug.contains("\"pw\""), "{debug}");
}

#[test]
fn errors_name_the_file_and_the_key() {
    let cases = [
        (
            MINIMAL.replace("[\"dropship\"]", "[\"dropshp\"]"),
            "targets.hardtofind.inputs: unknown source \"dropshp\"",
        ),
        (
            MINIMAL.replace("every = \"5m\"", "every = \"5m\"\nscheduel = \"x\""),
            "daemon.scheduel: unknown key; did you mean \"schedule\"?",
        ),
        (
            MINIMAL.replace("https://api.hardtofind.com.au", "not a url"),
            "targets.hardtofind.base_url",
        ),
        (
            MINIMAL.replace(
                "https://api.hardtofind.com.au",
                "http://api.hardtofind.com.au",
            ),
            "targets.hardtofind.base_url: plain http://",
        ),
        (
            MINIMAL.replace("every = \"5m\"", "every = \"soon\""),
            "daemon.every",
        ),
        (
            MINIMAL.replace("every = \"5m\"", "schedule = \"every day\""),
            "daemon.schedule",
        ),
        (
            MINIMAL.replace(
                "inputs = [\"dropship\"]",
                "inputs = [\"dropship\"]\nbatch_size = -3",
            ),
            "targets.hardtofind.batch_size",
        ),
        (
            MINIMAL.replace("password = \"pw\"", ""),
            "targets.hardtofind.password: missing",
        ),
        (MINIMAL.replace("[daemon]", "[daemon"), "config.toml"),
        (
            MINIMAL.replace(
                "every = \"5m\"",
                "every = \"5m\"\nstale_after = \"a while\"",
            ),
            "daemon.stale_after: \"a while\" is not a duration",
        ),
        (
            MINIMAL.replace("every = \"5m\"", "every = \"5m\"\nstale_after = \"0s\""),
            "daemon.stale_after: must be longer than zero",
        ),
        (
            MINIMAL.replace(
                "every = \"5m\"",
                "every = \"5m\"\nmax_response_size = \"lots\"",
            ),
            "daemon.max_response_size",
        ),
        (
            MINIMAL.replace(
                "every = \"5m\"",
                "every = \"5m\"\nmax_response_size = \"99999999999999999GiB\"",
            ),
            "daemon.max_response_size",
        ),
    ];
    for (text, expected) in cases {
        let (_dir, path) = write(&text);
        let error = Config::load(&path).expect_err(expected).to_string();
        assert!(error.contains("config.toml: "), "{error}");
        assert!(
            error.contains(expected),
            "expected {expected:?} in {error:?}"
        );
    }
}

#[test]
fn status_reads_its_keys_without_the_secrets_and_checks_them_like_the_daemon() {
    // The operator running `status` cannot read the service's credential files.
    let text = MINIMAL.replace(
        "token = \"t0ken\"",
        "token_file = \"/nonexistent/credentials/ea_token\"",
    );
    let (_dir, path) =
        write(&text.replace("every = \"5m\"", "every = \"5m\"\nstale_after = \"90m\""));
    let (_dir2, bad) =
        write(&text.replace("every = \"5m\"", "every = \"5m\"\nstale_after = \"soon\""));
    let (_dir3, without) = write(&text);

    let settings = status_settings(&path).expect("no secret is read");
    let error = status_settings(&bad)
        .expect_err("a bad duration")
        .to_string();
    let default = status_settings(&without).expect("valid");

    assert_eq!(
        settings,
        StatusSettings {
            database: Database::File(PathBuf::from("state/invsync.db")),
            stale_after: Duration::from_secs(90 * 60),
            sources: vec!["dropship".to_owned()],
            targets: vec![TargetRules {
                name: "hardtofind".to_owned(),
                inputs: vec!["dropship".to_owned()],
                safety_stock: 0,
                max_quantity: None,
            }],
            feeds: Vec::new(),
            relay_alert_after: None,
        }
    );
    assert!(error.contains("daemon.stale_after"), "{error}");
    assert_eq!(
        default.stale_after,
        Duration::from_secs(3600),
        "the default"
    );
}

#[test]
fn a_hako_target_may_not_write_where_its_own_accounts_source_reads() {
    let text = r#"
[daemon]
every = "1m"
[sources.warehouse]
type = "hako"
base_url = "https://api.withhako.com/v0"
api_key = "k"
warehouses = ["warehouse-010", "dropship"]
[targets.hako_dropship]
type = "hako"
base_url = "https://api.withhako.com/v0/"
api_key = "k"
warehouse = "dropship"
inputs = ["warehouse"]
"#;
    let (_dir, path) = write(text);
    let error = Config::load(&path).expect_err("feedback loop").to_string();
    assert!(error.contains("targets.hako_dropship.warehouse"), "{error}");
    assert!(error.contains("feedback loop"), "{error}");
    let (_dir, path) = write(&text.replace(", \"dropship\"]", "]"));
    assert!(
        Config::load(&path).is_ok(),
        "reading another warehouse is fine"
    );
    let (_dir, path) = write(&text.replace("warehouses = [\"warehouse-010\", \"dropship\"]\n", ""));
    assert!(
        Config::load(&path).is_err(),
        "reading every warehouse includes the target's"
    );
}

#[test]
fn the_shipped_example_is_a_valid_configuration() {
    // Its secrets are credential names, read next to the file when systemd gives no folder.
    let (dir, path) = write(include_str!("../../config.example.toml"));
    for name in ["hako_api_key", "ea_token", "htf_password"] {
        std::fs::write(dir.path().join(name), "secret\n").expect("credential");
    }
    let config = Config::load(&path).expect("the example is valid");
    assert_eq!(config.sources.len(), 2);
    assert_eq!(config.targets.len(), 2);
    let relay = config.relay.as_ref().expect("the example shows [relay]");
    assert_eq!(relay.mode, super::relay::Mode::Off, "off by default");
    assert_eq!(
        config.daemon.full_sync_schedule.as_ref().map(Cron::text),
        Some("0 30 3 * * *")
    );
}

#[test]
fn a_relative_secret_file_is_read_from_the_credentials_directory_when_set_else_beside_the_config() {
    let config = Path::new("/etc/invsync/config.toml");
    let credentials = std::ffi::OsStr::new("/run/credentials/invsync.service");

    let under_systemd = checker::secret_path(config, Some(credentials), Path::new("ea_token"));
    let by_hand = checker::secret_path(config, None, Path::new("ea_token"));
    let empty = checker::secret_path(
        config,
        Some(std::ffi::OsStr::new("")),
        Path::new("ea_token"),
    );
    let absolute = checker::secret_path(config, Some(credentials), Path::new("/srv/ea_token"));

    assert_eq!(
        under_systemd,
        Path::new("/run/credentials/invsync.service/ea_token")
    );
    assert_eq!(by_hand, Path::new("/etc/invsync/ea_token"));
    assert_eq!(empty, by_hand, "an empty variable is no folder");
    assert_eq!(
        absolute,
        Path::new("/srv/ea_token"),
        "an absolute path is what it says"
    );
}

#[test]
fn products_refresh_defaults_to_a_day_and_can_be_off_and_by_barcode_needs_its_parts() {
    let products = |config: &Config| match &config.sources[0].kind {
        SourceKind::EndlessAisles(ea) => ea.products_refresh,
        SourceKind::Hako(_) => None,
    };
    let (_dir, path) = write(MINIMAL);
    let config = Config::load(&path).expect("valid");
    assert_eq!(products(&config), Some(Duration::from_secs(24 * 3600)));
    assert_eq!(config.mapping, None);

    let off = MINIMAL.replace("sku_prefix = \"EA-\"", "products_refresh = \"off\"");
    let (_dir, path) = write(&off);
    assert_eq!(products(&Config::load(&path).expect("valid")), None);

    let bad = format!(
        "{}\n[mapping]\nby_barcode = true\nfile = \"missing.csv\"\n",
        MINIMAL.replace("sku_prefix = \"EA-\"", "products_refresh = \"soon\"")
    );
    let (_dir, path) = write(&bad);
    let errors = Config::load(&path).expect_err("invalid").to_string();
    for expected in [
        "sources.dropship.products_refresh: \"soon\" is not a duration",
        "mapping.by_barcode: needs an endless_aisles source whose products are read",
        "mapping.file: cannot read",
    ] {
        assert!(errors.contains(expected), "{expected} in {errors}");
    }
}

#[test]
fn a_relay_naming_a_source_with_errors_of_its_own_says_only_those_and_a_relay_off_names_nothing() {
    let broken = MINIMAL.replace("sku_prefix = \"EA-\"", "sku_prefx = \"EA-\"")
        + "\n[relay]\nmode = \"auto\"\nfrom = \"hardtofind\"\nto = \"dropship\"\n\n[orders.hardtofind]\ntype = \"hardtofind\"\nbase_url = \"https://api.hardtofind.com.au\"\nusername = \"seller@example.com\"\npassword = \"pw\"\n";
    let (_dir, path) = write(&broken);
    let error = Config::load(&path).expect_err("a misspelt key").to_string();
    assert!(error.contains("sources.dropship.sku_prefx"), "{error}");
    assert!(!error.contains("relay.to"), "no false error: {error}");

    let off = format!("{MINIMAL}\n[relay]\nmode = \"off\"\nfrom = \"nowhere\"\n");
    let (_dir, path) = write(&off);
    let config = Config::load(&path).expect("a relay that is off names nothing it uses");
    assert!(config.relay.is_none());
}

#[test]
fn a_secret_written_as_a_number_is_refused_without_repeating_it() {
    let text = MINIMAL.replace("password = \"pw\"", "password = 90210573311");
    let (_dir, path) = write(&text);
    let error = Config::load(&path).expect_err("a number").to_string();
    assert!(error.contains("targets.hardtofind.password"), "{error}");
    assert!(
        !error.contains("90210573311"),
        "the secret is echoed: {error}"
    );
}

#[test]
fn a_missing_credential_file_says_where_it_was_looked_for_and_why() {
    let text = MINIMAL.replace("password = \"pw\"", "password_file = \"htf_password\"");
    let (_dir, path) = write(&text);
    // Whether $CREDENTIALS_DIRECTORY is set where the tests run or not, the error says it.
    let error = Config::load(&path).expect_err("no such file").to_string();
    assert!(error.contains("htf_password"), "{error}");
    assert!(
        error.contains("$CREDENTIALS_DIRECTORY")
            && (error.contains("not set") || error.contains("LoadCredential")),
        "{error}"
    );
}

#[test]
fn a_timezone_abbreviation_gets_the_zone_it_means_not_the_nearest_spelling() {
    let text = MINIMAL.replace("every = \"5m\"", "every = \"5m\"\ntimezone = \"AEST\"");
    let (_dir, path) = write(&text);
    let error = Config::load(&path)
        .expect_err("an abbreviation")
        .to_string();
    assert!(
        error.contains("did you mean \"Australia/Sydney\"?"),
        "{error}"
    );
    assert!(!error.contains("\"EST\""), "{error}");
}
