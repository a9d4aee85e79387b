//! The simulator's answers where the document is silent, in each dialect (see
//! `crate::harness::dialect`): what the real Shopsys 8.x/9.x answers, debug or production.

use reqwest::Method;
use serde_json::json;

use super::protocol::{bearer, call};
use super::*;
use crate::harness::Dialect;

/// A raw `GET` of the product list: status, the `Link` header if there is one, the body.
async fn list(sim: &ShopsysSim, bearer: &str, page: u32) -> (u16, Option<String>, String) {
    let answer = reqwest::Client::new()
        .get(format!("{}/api/v1/products?page={page}", sim.base_url()))
        .bearer_auth(bearer)
        .send()
        .await
        .expect("an answer");
    let link = (answer.headers().get("link")).map(|v| v.to_str().unwrap_or("?").to_owned());
    let status = answer.status().as_u16();
    let body = answer.text().await.expect("a body");
    (status, link, body.trim_start_matches('\u{feff}').to_owned())
}

fn dialect(text: &str) -> Dialect {
    text.parse().expect("a dialect")
}

#[tokio::test]
async fn an_unknown_product_is_404_on_shopsys_8_and_410_on_shopsys_9() {
    let sim = sim(1).await;
    let bearer = bearer(&sim).await;
    let absent = "/api/v1/products/877a07d5-a276-49f8-9b73-6ac0edef83be";
    let patch = Some(json!({"sellingDenied": true}));

    let mut answers = Vec::new();
    for gone in ["gone=404", "gone=410"] {
        sim.set_dialect(dialect(gone));
        answers.push(call(&sim, Method::GET, absent, Some(&bearer), None).await.0);
        let patched = call(&sim, Method::PATCH, absent, Some(&bearer), patch.clone());
        answers.push(patched.await.0);
    }

    assert_eq!(answers, [404, 404, 410, 410]);
    let used = sim.dialect_used();
    assert!(used.contains(&("gone", "404")) && used.contains(&("gone", "410")));
}

#[tokio::test]
async fn a_production_install_answers_generic_errors_but_keeps_validation_texts() {
    let sim = sim(2).await;
    sim.update(&uuid(2), |p| p.variant = true);
    let bearer = bearer(&sim).await;
    sim.set_dialect(dialect("errors=production,gone=410"));
    let flag = Some(json!({"sellingDenied": true}));
    let variant = format!("/api/v1/products/{}", uuid(2));
    let absent = "/api/v1/products/877a07d5-a276-49f8-9b73-6ac0edef83be";

    let refused = call(&sim, Method::PATCH, &variant, Some(&bearer), flag.clone()).await;
    let gone = call(&sim, Method::PATCH, absent, Some(&bearer), flag).await;
    let past = call(
        &sim,
        Method::GET,
        "/api/v1/products?page=9",
        Some(&bearer),
        None,
    )
    .await;
    let wrong = Some(json!({"sellingDenied": "yes"}));
    let invalid = call(&sim, Method::PATCH, &variant, Some(&bearer), wrong).await;

    assert_eq!(
        (refused.0, refused.2),
        (400, json!({"code": 400, "message": "Bad Request"}))
    );
    assert_eq!(
        (gone.0, gone.2),
        (410, json!({"code": 410, "message": "Gone"}))
    );
    assert_eq!(
        (past.0, past.2),
        (422, json!({"code": 422, "message": "Unprocessable Entity"}))
    );
    assert_eq!(invalid.0, 400);
    assert_eq!(
        invalid.2["errors"]["sellingDenied"],
        json!("The value \"yes\" is not a valid bool."),
        "validation keeps its text"
    );
    assert!(sim.dialect_used().contains(&("errors", "production")));
}

#[tokio::test]
async fn an_empty_catalogue_answers_an_empty_page_one_with_the_link_of_its_dialect() {
    let sim = sim(0).await;
    let bearer = bearer(&sim).await;
    let mut seen = Vec::new();

    for value in ["bogus_next", "empty", "absent"] {
        sim.set_dialect(dialect(&format!("empty_link={value}")));
        let (status, link, body) = list(&sim, &bearer, 1).await;
        let (past, _, _) = list(&sim, &bearer, 2).await;
        seen.push((status, link, body, past));
    }

    let host = sim.addr().to_string();
    let bogus = format!(
        "<http://{host}/api/v1/products?page=2>; rel=\"next\", <http://{host}/api/v1/products?page=0>; rel=\"last\""
    );
    assert_eq!(
        seen,
        [
            (200, Some(bogus), "[]".to_owned(), 422),
            (200, Some(String::new()), "[]".to_owned(), 422),
            (200, None, "[]".to_owned(), 422),
        ]
    );
}

#[tokio::test]
async fn a_one_page_list_carries_a_link_header_that_is_present_but_empty() {
    let sim = sim(3).await;
    let bearer = bearer(&sim).await;

    let (status, link, _) = list(&sim, &bearer, 1).await;

    assert_eq!((status, link), (200, Some(String::new())));
}

#[tokio::test]
async fn an_empty_catalogue_is_read_as_empty_whatever_its_link_says() {
    let sim = sim(0).await;
    for value in ["bogus_next", "empty", "absent"] {
        sim.set_dialect(dialect(&format!("empty_link={value}")));

        let catalogue = target(&sim).read_catalogue(&Meter::default()).await;

        assert_eq!(catalogue.expect("read").products, 0, "{value}");
    }
    assert_eq!(sim.dialect_used().len(), 3 + 1, "{:?}", sim.dialect_used());
}
