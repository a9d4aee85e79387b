//! Writing flags: what the shop acknowledges, refuses, and shows afterwards.

use std::collections::HashMap;

use super::*;
use crate::http::HttpError;
use crate::services::shopsys::flag::{FlagState, Thresholds, decide};
use crate::services::shopsys::target::{Patched, Refusal, refusal_of};

#[tokio::test]
async fn a_variant_is_unchangeable_and_a_validation_error_an_ordinary_refusal_on_any_install() {
    let sim = sim(3).await;
    sim.update(&uuid(2), |p| p.variant = true);
    let why = "This value is not a valid datetime.";
    sim.update(&uuid(3), |p| {
        p.invalid = Some(("sellingTo".into(), why.into()))
    });
    let target = target(&sim);
    let meter = Meter::default();

    for errors in ["debug", "production"] {
        sim.set_dialect(format!("errors={errors}").parse().expect("a dialect"));
        let variant = target.set_flag(&meter, &uuid(2), true).await;
        let invalid = target.set_flag(&meter, &uuid(3), true).await;

        assert!(
            matches!(&variant, Ok(Patched::Refused(Refusal::Unchangeable(_)))),
            "{errors}: {variant:?}"
        );
        let Ok(Patched::Refused(Refusal::Other(message))) = invalid else {
            panic!("{errors}: {invalid:?}");
        };
        assert!(message.contains(why), "{errors}: {message}");
    }
    assert_eq!(sim.patch_count(), 0);
}

#[tokio::test]
async fn an_unknown_product_is_gone_whether_404_or_410() {
    let sim = sim(1).await;
    let target = target(&sim);
    let absent = "877a07d5-a276-49f8-9b73-6ac0edef83be";

    for gone in ["gone=404", "gone=410,errors=production"] {
        sim.set_dialect(gone.parse().expect("a dialect"));
        let patched = target.set_flag(&Meter::default(), absent, true).await;

        assert!(
            matches!(&patched, Ok(Patched::Refused(Refusal::Gone(_)))),
            "{gone}: {patched:?}"
        );
    }
}

#[test]
fn only_a_400_with_a_json_body_and_no_errors_is_unchangeable() {
    use reqwest::StatusCode;
    let of = |status: u16, body: &str| {
        refusal_of(
            StatusCode::from_u16(status).expect("a status"),
            body.as_bytes(),
        )
    };
    assert!(matches!(
        of(400, r#"{"code":400,"message":"Bad Request"}"#),
        Refusal::Unchangeable(_)
    ));
    assert!(matches!(
        of(
            400,
            r#"{"message":"cannot update/delete variant/main variant, this functionality is not supported yet"}"#
        ),
        Refusal::Unchangeable(_)
    ));
    let validation = r#"{"code":400,"message":"Provided data did not pass validation","errors":{"sellingTo":"bad"}}"#;
    assert!(matches!(of(400, validation), Refusal::Other(m) if m.contains("sellingTo: bad")));
    assert!(matches!(
        of(400, "<html>Bad Request</html>"),
        Refusal::Other(_)
    ));
    assert!(matches!(of(400, "[]"), Refusal::Other(_)));
    assert!(matches!(
        of(410, r#"{"code":410,"message":"Gone"}"#),
        Refusal::Gone(_)
    ));
    assert!(matches!(of(404, ""), Refusal::Gone(_)));
    assert!(matches!(
        of(422, r#"{"code":422,"message":"Unprocessable Entity"}"#),
        Refusal::Other(_)
    ));
}

#[tokio::test]
async fn a_2xx_that_is_not_the_documented_answer_is_not_an_acknowledgement() {
    let sim = sim(3).await;
    let html = Fault::Status {
        status: 200,
        body: "<html>proxy</html>".to_owned(),
        retry_after: None,
    };
    // Retried like a 5xx: every attempt meets the proxy.
    for _ in 0..2 {
        sim.faults().push_for("PATCH", "", html.clone());
    }

    let patched = target(&sim)
        .set_flag(&Meter::default(), &uuid(1), true)
        .await;

    assert!(
        matches!(
            patched,
            Err(ConnectorError::Http(HttpError::NotJson { .. }))
        ),
        "{patched:?}"
    );
}

#[tokio::test]
async fn patch_writes_the_raw_flag_while_get_shows_the_calculated_one() {
    let sim = sim(2).await;
    sim.set_shop_denies(&uuid(1), true);
    let target = target(&sim);
    let meter = Meter::default();

    target
        .set_flag(&meter, &uuid(1), false)
        .await
        .expect("answered");

    let catalogue = target.read_catalogue(&meter).await.expect("read");

    assert!(sim.product(&uuid(1)).is_some_and(|p| !p.selling_denied));
    assert!(
        catalogue.by_sku["CAT-00001"].flagged,
        "the shop's own rule still denies"
    );
    let hidden = target_with(&sim, sim.client_secret(), Flag::Hidden);
    hidden
        .set_flag(&meter, &uuid(2), true)
        .await
        .expect("answered");

    let (uuid2, body) = sim.patches().pop().expect("a patch");
    assert_eq!(
        (uuid2, body),
        (uuid(2), serde_json::json!({"hidden": true}))
    );
}

#[tokio::test]
async fn get_disagreeing_after_a_patch_causes_no_second_patch_over_many_cycles() {
    let sim = sim(2).await;
    let target = target(&sim);
    let meter = Meter::default();
    let thresholds = Thresholds::default();
    let mut states: HashMap<String, FlagState> = HashMap::new();
    let quantities = [0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4];

    for (cycle, quantity) in quantities.into_iter().enumerate() {
        if cycle == 1 {
            sim.set_shop_denies(&uuid(1), true);
        }
        let catalogue = target.read_catalogue(&meter).await.expect("read");
        let product = &catalogue.by_sku["CAT-00001"];
        let state = *states
            .entry(product.uuid.clone())
            .or_insert_with(|| FlagState::first_seen(product.flagged));
        let decision = decide(state, quantity, thresholds);
        let mut next = decision.state;
        if let Some(value) = decision.patch {
            target
                .set_flag(&meter, &product.uuid, value)
                .await
                .expect("answered");

            next = next.acknowledged(value);
        }
        states.insert(product.uuid.clone(), next);
    }

    let bodies: Vec<serde_json::Value> = sim.patches().into_iter().map(|(_, b)| b).collect();
    assert_eq!(
        bodies,
        [
            serde_json::json!({"sellingDenied": true}),
            serde_json::json!({"sellingDenied": false})
        ]
    );
}
