//! Credentials never leave invsync except in the request they authenticate: not in a log line
//! at any level, not in an error, not in `Debug` output, whatever goes wrong.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use invsync::sim::Fault;

use crate::helpers::{EA_TOKEN, HAKO_KEY, HTF_PASSWORD, Run, World};

/// Every form in which a secret could leak.
fn forms(secret: &str) -> Vec<String> {
    vec![
        secret.to_owned(),
        STANDARD.encode(format!("{secret}:")), // Hako's basic auth
        STANDARD.encode(secret),
    ]
}

fn assert_clean(run: &Run, secrets: &[String], scenario: &str) {
    for secret in secrets {
        for form in forms(secret) {
            assert!(
                !run.stderr.contains(&form),
                "{scenario}: {form:?} leaked into stderr"
            );
            assert!(
                !run.stdout.contains(&form),
                "{scenario}: {form:?} leaked into stdout"
            );
        }
    }
}

fn trace(world: &World) {
    let config = std::fs::read_to_string(&world.config).expect("read");
    std::fs::write(
        &world.config,
        config
            .replace("log_level = \"info\"", "log_level = \"trace\"")
            .replace("request_timeout = \"5s\"", "request_timeout = \"1s\""),
    )
    .expect("write");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credential_or_token_appears_in_any_output_whatever_fails() {
    let world = World::start().await;
    trace(&world);
    let mut secrets: Vec<String> = [HAKO_KEY, EA_TOKEN, HTF_PASSWORD]
        .map(str::to_owned)
        .to_vec();

    // Accepted credentials, then a 500 and a timeout from every service.
    for sim in [world.hako.faults(), world.ea.faults(), world.htf.faults()] {
        sim.push(Fault::Status {
            status: 500,
            body: "{\"error\":\"boom\"}".into(),
            retry_after: None,
        });
        sim.push(Fault::Hang);
    }
    let failing = world.invsync(&["once"]).await;
    let tokens: Vec<String> = world
        .htf
        .requests()
        .iter()
        .filter_map(|r| r.header("x-auth-token").map(str::to_owned))
        .collect();
    assert!(!tokens.is_empty(), "a token was issued and used");
    secrets.extend(tokens);
    assert!(
        failing.stderr.contains("TRACE") || failing.stderr.contains("DEBUG"),
        "really at trace level"
    );
    assert!(
        failing.lines_at("WARN").len() >= 4,
        "the faults were met:\n{}",
        failing.stderr
    );
    assert_clean(&failing, &secrets, "500 and timeout");

    // Refused credentials: 401 from every service, in a cycle and in check.
    let accepted = std::fs::read_to_string(&world.config).expect("read");
    let config = accepted.clone();
    let wrong = ["hako-canary-wrong", "ea-canary-wrong", "htf-canary-wrong"];
    let refused = config
        .replace(HAKO_KEY, wrong[0])
        .replace(EA_TOKEN, wrong[1])
        .replace(HTF_PASSWORD, wrong[2]);
    std::fs::write(&world.config, refused).expect("write");
    secrets.extend(wrong.map(str::to_owned));
    let unauthorized = world.invsync(&["once"]).await;
    unauthorized.assert_code(1);
    assert!(
        unauthorized.stderr.contains("401"),
        "{}",
        unauthorized.stderr
    );
    assert_clean(&unauthorized, &secrets, "401");
    let check = world.invsync(&["check"]).await;
    check.assert_code(1);
    assert_clean(&check, &secrets, "check with 401");

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    std::fs::write(
        &world.config,
        accepted.replace(&world.htf.base_url(), &format!("http://{closed}")),
    )
    .expect("write");
    let refused = world.invsync(&["once", "--full"]).await;
    assert!(
        refused.stderr.contains("connection failed"),
        "{}",
        refused.stderr
    );
    assert_clean(&refused, &secrets, "connection refused");

    // And the configuration's Debug output.
    let config = invsync::config::Config::load(&world.config).expect("valid");
    let debug = format!("{config:?}");
    for secret in &secrets {
        assert!(
            !debug.contains(secret.as_str()),
            "Debug output leaks {secret:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_world_readable_config_with_inline_secrets_is_warned_about_but_secret_files_are_not() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::start().await;
    std::fs::set_permissions(&world.config, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let exposed = world.invsync(&["once", "--dry-run"]).await;

    let warnings = exposed.lines_at("WARN");
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("readable by other users")
                && l.contains("targets.hardtofind.password")),
        "{warnings:#?}"
    );
    assert_clean(
        &exposed,
        &[
            HAKO_KEY.to_owned(),
            EA_TOKEN.to_owned(),
            HTF_PASSWORD.to_owned(),
        ],
        "the warning itself",
    );

    let mut config = std::fs::read_to_string(&world.config).expect("read");
    for (key, secret) in [
        ("api_key", HAKO_KEY),
        ("token", EA_TOKEN),
        ("password", HTF_PASSWORD),
    ] {
        let file = world.dir.path().join(key);
        std::fs::write(&file, format!("{secret}\n")).expect("write secret");
        config = config.replace(
            &format!("{key} = \"{secret}\""),
            &format!("{key}_file = {:?}", file.display().to_string()),
        );
    }
    std::fs::write(&world.config, config).expect("write");
    std::fs::set_permissions(&world.config, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let from_files = world.invsync(&["once"]).await;

    from_files.assert_code(0);
    assert!(
        from_files.lines_at("WARN").is_empty(),
        "{}",
        from_files.stderr
    );
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_never_followed_so_credentials_never_reach_another_host() {
    let world = World::start().await;
    let elsewhere = invsync::sim::HardtofindSim::start(Default::default())
        .await
        .expect("another host");
    world.htf.faults().push_for(
        "POST",
        "/authenticate",
        Fault::Redirect(format!("{}/authenticate", elsewhere.base_url())),
    );

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    assert!(
        elsewhere.requests().is_empty(),
        "nothing was sent to the other host"
    );
    assert!(
        run.lines_at("ERROR")
            .iter()
            .any(|l| l.contains("target=hardtofind") && l.contains("302")),
        "{}",
        run.stderr
    );
}
