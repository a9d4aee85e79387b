//! The simulator's answers, over plain HTTP, as the shop gives them: what makes it a faithful
//! stand-in for the real API.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;

/// One raw request: status, `Link` header (or empty), JSON body (or null).
pub(super) async fn call(
    sim: &ShopsysSim,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", sim.base_url()));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = request.send().await.expect("an answer");
    let status = answer.status().as_u16();
    let link = answer
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = answer.bytes().await.expect("a body");
    (
        status,
        link,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `POST /api/token` with `form`: status and JSON body.
async fn token_answer(sim: &ShopsysSim, form: &str) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/api/token", sim.base_url()))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .expect("an answer");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("JSON"))
}

pub(super) async fn bearer(sim: &ShopsysSim) -> String {
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        sim.client_id(),
        sim.client_secret()
    );
    let (status, token) = token_answer(sim, &form).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&token["token_type"], &token["expires_in"]),
        (&json!("Bearer"), &json!(3600))
    );
    token["access_token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn the_token_endpoint_answers_like_an_oauth2_server() {
    let sim = sim(0).await;
    let id = sim.client_id().to_owned();

    let wrong_grant = token_answer(&sim, &format!("grant_type=password&client_id={id}")).await;
    let missing = token_answer(&sim, "grant_type=client_credentials").await;
    let wrong_secret = token_answer(
        &sim,
        &format!("grant_type=client_credentials&client_id={id}&client_secret=nope"),
    )
    .await;

    assert_eq!(
        (wrong_grant.0, &wrong_grant.1["error"]),
        (400, &json!("unsupported_grant_type"))
    );
    assert_eq!(
        (missing.0, &missing.1["error"]),
        (400, &json!("invalid_request"))
    );
    assert_eq!(
        wrong_secret,
        (
            401,
            json!({"error": "invalid_client", "message": "Client authentication failed"})
        )
    );
    assert_eq!(sim.tokens_issued(), 0);
}

#[tokio::test]
async fn the_link_header_names_first_and_prev_after_page_one_and_next_and_last_before_the_end() {
    let sim = sim(250).await;
    let bearer = bearer(&sim).await;
    let page = |n: &'static str| {
        let (sim, bearer) = (&sim, &bearer);
        async move {
            let path = format!("/api/v1/products?page={n}");
            call(sim, Method::GET, &path, Some(bearer), None).await
        }
    };

    let (status, link, body) = page("1").await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(100)));
    assert!(link.contains("page=2>; rel=\"next\"") && link.contains("page=3>; rel=\"last\""));
    assert!(
        !link.contains("rel=\"first\"") && !link.contains("rel=\"prev\""),
        "{link}"
    );
    let (_, link, _) = page("2").await;
    for rel in [
        "1>; rel=\"first\"",
        "1>; rel=\"prev\"",
        "3>; rel=\"next\"",
        "3>; rel=\"last\"",
    ] {
        assert!(link.contains(&format!("page={rel}")), "{link} lacks {rel}");
    }
    let (status, link, body) = page("3").await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(50)));
    assert!(
        !link.contains("rel=\"next\"") && !link.contains("rel=\"last\""),
        "{link}"
    );
    for past in ["4", "-1"] {
        let (status, _, body) = page(past).await;
        assert_eq!(body, json!({"code": 422, "message": NO_PRODUCTS_ON_PAGE}));
        assert_eq!(status, 422);
    }
    let (status, _, body) = page("abc").await;
    assert_eq!(
        (status, body.as_array().map(Vec::len)),
        (200, Some(100)),
        "the default page"
    );
}

#[tokio::test]
async fn the_api_wants_a_valid_token_and_valid_uuids() {
    let sim = sim(2).await;
    let bearer = bearer(&sim).await;
    let one = format!("/api/v1/products/{}", uuid(1));
    let absent = "/api/v1/products/877a07d5-a276-49f8-9b73-6ac0edef83be";

    let (no_token, _, _) = call(&sim, Method::GET, &one, None, None).await;
    let (bad_token, _, _) = call(&sim, Method::GET, &one, Some("made-up"), None).await;
    let (status, _, product) = call(&sim, Method::GET, &one, Some(&bearer), None).await;
    let invalid = call(
        &sim,
        Method::GET,
        "/api/v1/products/123xxx",
        Some(&bearer),
        None,
    )
    .await;
    let missing = call(&sim, Method::GET, absent, Some(&bearer), None).await;
    let filtered = format!("/api/v1/products?uuids[]={}", uuid(2));
    let (_, _, only_two) = call(&sim, Method::GET, &filtered, Some(&bearer), None).await;

    assert_eq!(
        (no_token, bad_token, sim.unauthorized_count()),
        (401, 401, 2)
    );
    assert_eq!((status, &product["catnum"]), (200, &json!("CAT-00001")));
    assert_eq!(
        (invalid.0, &invalid.2["message"]),
        (400, &json!("This UUID is not valid: 123xxx"))
    );
    assert_eq!(
        (missing.0, &missing.2["message"]),
        (
            404,
            &json!("Product with UUID 877a07d5-a276-49f8-9b73-6ac0edef83be does not exist.")
        )
    );
    assert_eq!(only_two.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn validation_errors_come_in_the_documented_shape() {
    let sim = sim(1).await;
    let bearer = bearer(&sim).await;
    let path = format!("/api/v1/products/{}", uuid(1));
    let wrong = json!({"sellingDenied": "yes", "colour": "red", "hidden": null});

    let (status, _, body) = call(&sim, Method::PATCH, &path, Some(&bearer), Some(wrong)).await;
    let not_json = reqwest::Client::new()
        .patch(format!("{}{path}", sim.base_url()))
        .bearer_auth(&bearer)
        .body("sellingDenied=1")
        .send()
        .await
        .expect("an answer");

    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"code": 400, "message": "Provided data did not pass validation", "errors": {
            "sellingDenied": "The value \"yes\" is not a valid bool.",
            "colour": "This field was not expected.",
            "hidden": "This value should not be null."
        }})
    );
    assert_eq!(not_json.status(), 415);
    assert_eq!(sim.patch_count(), 0);
}
