//! Writing flags: what the shop acknowledges, refuses, and shows afterwards.

use std::collections::HashMap;

use super::*;
use crate::services::shopsys::flag::{FlagState, Thresholds, decide};

#[tokio::test]
async fn a_variants_patch_is_a_refusal_of_that_product() {
    let sim = sim(3).await;
    sim.update(&uuid(2), |p| p.variant = true);

    let refused = target(&sim)
        .set_flag(&Meter::default(), &uuid(2), true)
        .await;

    let error = refused.expect_err("a variant cannot be patched");
    assert_eq!(error.status(), Some(400), "a 4xx the caller sets apart");
    assert!(error.to_string().contains("not supported yet"), "{error}");
    assert_eq!(sim.patch_count(), 0);
}

#[tokio::test]
async fn a_2xx_that_is_not_the_documented_answer_is_not_an_acknowledgement() {
    let sim = sim(3).await;
    let html = Fault::Status {
        status: 200,
        body: "<html>proxy</html>".to_owned(),
        retry_after: None,
    };
    sim.faults().push_for("PATCH", "", html);

    let patched = target(&sim)
        .set_flag(&Meter::default(), &uuid(1), true)
        .await;

    assert!(
        matches!(patched, Err(ConnectorError::Malformed(_))),
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
        .expect("patched");
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
        .expect("patched");
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
                .expect("patched");
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
