//! The target against the simulator over loopback: what a shop would see, and what invsync
//! would make of the shop's answers.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::config::{Flag, MatchField};
use super::sim::{ShopsysSim, ShopsysSimConfig, SimProduct};
use super::target::ShopsysTarget;
use super::wire::NO_PRODUCTS_ON_PAGE;
use crate::config::RetrySettings;
use crate::harness::Fault;
use crate::http::{Endpoint, HttpClient, Meter, limits};
use crate::services::ConnectorError;

fn endpoint(base_url: String) -> Endpoint {
    let client = HttpClient::new(Duration::from_secs(30), 16 << 20).expect("an HTTP client");
    let retry = RetrySettings {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
        max_elapsed: Duration::from_secs(5),
    };
    // No practical limit: the limiter's clock is real, and a wait on it would let paused time
    // jump ahead.
    let limiter = Arc::new(limits::limiter(u32::MAX));
    Endpoint::new(
        "target shop".to_owned(),
        base_url,
        client,
        limiter,
        retry,
        CancellationToken::new(),
    )
}

async fn sim(products: u64) -> ShopsysSim {
    let sim = ShopsysSim::start(ShopsysSimConfig::default())
        .await
        .expect("the simulator starts");
    sim.add_products((1..=products).map(SimProduct::numbered));
    sim
}

fn target_with(sim: &ShopsysSim, secret: &str, flag: Flag) -> ShopsysTarget {
    ShopsysTarget::new(
        endpoint(sim.base_url()),
        sim.client_id().to_owned(),
        SecretString::from(secret.to_owned()),
        MatchField::Catnum,
        flag,
    )
}

fn target(sim: &ShopsysSim) -> ShopsysTarget {
    target_with(sim, sim.client_secret(), Flag::SellingDenied)
}

fn uuid(n: u64) -> String {
    SimProduct::numbered(n).uuid
}

/// The `page` of every product list request the simulator saw.
fn pages_requested(sim: &ShopsysSim) -> Vec<String> {
    sim.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/products")
        .map(|r| r.query.clone().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn two_hundred_fifty_products_over_three_pages_are_all_mapped() {
    let sim = sim(250).await;
    let meter = Meter::default();

    let catalogue = target(&sim).read_catalogue(&meter).await.expect("read");

    assert_eq!((catalogue.products, catalogue.by_sku.len()), (250, 250));
    assert_eq!(catalogue.by_sku["CAT-00250"].uuid, uuid(250));
    assert!(catalogue.duplicates.is_empty());
    assert_eq!(pages_requested(&sim), ["page=1", "page=2", "page=3"]);
    assert_eq!(meter.requests(), 4, "a token and three pages");
}

#[tokio::test]
async fn a_422_past_the_last_page_ends_the_list_without_an_error() {
    let sim = sim(150).await;
    // Page 1 as usual; then the catalogue shrinks, and page 2 is past the last.
    let faults = sim.faults();
    faults.push_for("GET", "/api/v1/products", Fault::Delay(Duration::ZERO));
    let gone = serde_json::json!({"code": 422, "message": NO_PRODUCTS_ON_PAGE}).to_string();
    faults.push_for(
        "GET",
        "/api/v1/products",
        Fault::Status {
            status: 422,
            body: gone,
            retry_after: None,
        },
    );

    let catalogue = target(&sim).read_catalogue(&Meter::default()).await;

    assert_eq!(catalogue.expect("the end, not an error").products, 100);
    assert_eq!(pages_requested(&sim), ["page=1", "page=2"]);
}

#[tokio::test]
async fn an_empty_catalogue_is_an_empty_list_not_an_error() {
    let sim = sim(0).await;

    let catalogue = target(&sim).read_catalogue(&Meter::default()).await;

    assert_eq!(catalogue.expect("read").products, 0);
    let answered: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(answered, [200, 200], "a token, and page 1: 200 []");
}

#[tokio::test(start_paused = true)]
async fn a_token_is_renewed_before_it_expires_without_a_401() {
    let sim = sim(3).await;
    let target = target(&sim);
    let meter = Meter::default();
    target.read_catalogue(&meter).await.expect("read");

    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    target
        .set_flag(&meter, &uuid(1), true)
        .await
        .expect("answered");

    assert_eq!(sim.tokens_issued(), 1, "half an hour in, the token is kept");

    tokio::time::advance(Duration::from_secs(29 * 60 + 30)).await;
    target
        .set_flag(&meter, &uuid(2), true)
        .await
        .expect("answered");

    assert_eq!(sim.tokens_issued(), 2, "renewed in its last minute");
    assert_eq!(sim.unauthorized_count(), 0);
}

#[tokio::test]
async fn a_refused_token_is_renewed_once_and_the_request_goes_through() {
    let sim = sim(3).await;
    let target = target(&sim);
    let meter = Meter::default();
    target.read_catalogue(&meter).await.expect("read");

    sim.expire_all_tokens();
    let patched = target.set_flag(&meter, &uuid(1), true).await;

    assert!(
        matches!(patched, Ok(super::target::Patched::Done)),
        "{patched:?}"
    );
    assert_eq!((sim.tokens_issued(), sim.unauthorized_count()), (2, 1));
    assert!(sim.product(&uuid(1)).is_some_and(|p| p.selling_denied));
}

#[tokio::test]
async fn a_401_to_a_fresh_token_is_an_auth_failure_not_a_loop() {
    let sim = sim(3).await;
    let target = target(&sim);
    for _ in 0..2 {
        sim.faults()
            .push_for("PATCH", "", Fault::status(401, "access_denied"));
    }

    let patched = target.set_flag(&Meter::default(), &uuid(1), true).await;

    assert!(
        matches!(patched, Err(ConnectorError::Auth(_))),
        "{patched:?}"
    );
    assert_eq!(sim.tokens_issued(), 2);
}

#[tokio::test]
async fn a_passing_outage_is_retried_by_the_endpoint() {
    let sim = sim(120).await;
    sim.faults()
        .push_for("GET", "/api/v1/products", Fault::status(503, "busy"));
    let meter = Meter::default();

    let catalogue = target(&sim).read_catalogue(&meter).await.expect("read");

    assert_eq!((catalogue.products, meter.retries()), (120, 1));
}

mod dialects;
mod flags;
mod protocol;
mod secrets;
