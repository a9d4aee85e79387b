use super::*;
use crate::services::hardtofind::wire::ShippingProvider;

fn htf(state: &str, lines: &[(&str, i64)]) -> Order {
    let lines: Vec<serde_json::Value> = lines
        .iter()
        .map(|(sku, q)| serde_json::json!({"sku": sku, "quantity": q}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "id": "10001", "status": "READY", "lines": lines,
        "shipping": {"address": {"first_name": "Tim", "last_name": "Massey",
            "line_one": "12 Address Street", "suburb": "Raleigh", "state": state,
            "postcode": "27511", "country": "US"}}
    }))
    .expect("an order")
}

fn size(id: u64, purchasable: bool, discontinued: bool) -> SizeInfo {
    SizeInfo {
        option_id: id,
        product_id: 1,
        title: "Shirt".into(),
        upc: Some("'064992103132".into()),
        purchasability: Some(purchasable),
        discontinued: Some(discontinued),
        wholesale: Some(9.0),
        price: Some(20.0),
    }
}

fn catalogue() -> HashMap<u64, SizeInfo> {
    [
        size(1001, true, false),
        size(1002, false, false),
        size(1003, true, true),
    ]
    .into_iter()
    .map(|s| (s.option_id, s))
    .collect()
}

#[test]
fn a_line_maps_to_its_option_id_by_the_prefix_alone() {
    assert_eq!(supplier_key("EA-1001", "EA-"), Some(1001));
    assert_eq!(supplier_key("1001", ""), Some(1001));
    assert_eq!(supplier_key("HK-1001", "EA-"), None);
    assert_eq!(supplier_key("EA-", "EA-"), None);
    assert_eq!(supplier_key("EA-10x", "EA-"), None);
}

#[test]
fn an_order_of_sellable_sizes_is_priced_at_the_suppliers_prices() {
    let order = htf("NC", &[("EA-1001", 2), ("EA-1001", 1)]);
    let prepared = prepare(&order, "htf-10001", &catalogue(), &|sku: &str| {
        supplier_key(sku, "EA-")
    })
    .expect("prepared");
    assert_eq!(prepared.value, 60.0);
    assert_eq!(prepared.order.line_items.len(), 1);
    assert_eq!(prepared.order.line_items[0].quantity, 3);
    assert_eq!(prepared.order.shipping.zip, "27511");
    assert_eq!(prepared.order.custom_order_id, "htf-10001");
}

#[test]
fn every_reason_an_order_cannot_go_is_named() {
    let order = htf(
        "ACT",
        &[("EA-1002", 1), ("EA-1003", 1), ("EA-9999", 1), ("HK-1", 1)],
    );
    let reason = prepare(&order, "htf-10001", &catalogue(), &|sku: &str| {
        supplier_key(sku, "EA-")
    })
    .expect_err("refused");
    for part in [
        "\"HK-1\" maps to no Endless Aisles size",
        "size 1002 is not purchasable",
        "size 1003 is discontinued",
        "size 9999 is not in Endless Aisles' catalogue",
        "shipping.state \"ACT\" is longer than 2 characters",
    ] {
        assert!(reason.contains(part), "{part} in {reason}");
    }
}

fn provider(name: &str, url: &str) -> ShippingProvider {
    ShippingProvider {
        id: name.into(),
        provider_name: name.into(),
        tracking_url: Some(url.into()),
        accepts_tracking_id_in_url: None,
    }
}

#[test]
fn a_provider_is_matched_by_host_or_by_carriers_and_never_guessed() {
    let providers = vec![
        provider("FedEx", "https://www.fedex.com/track?id="),
        provider("Australia Post", "https://auspost.com.au/track/"),
    ];
    let none = BTreeMap::new();
    let fedex = Some("https://www.fedex.com/apps/fedextrack/?trackingnumber=1");
    assert_eq!(provider_for(fedex, &providers, &none), Ok("FedEx".into()));
    let ups = Some("https://www.ups.com/track?tracknum=1");
    assert!(provider_for(ups, &providers, &none).is_err());
    let carriers = BTreeMap::from([("ups.com".to_owned(), "FedEx".to_owned())]);
    assert_eq!(provider_for(ups, &providers, &carriers), Ok("FedEx".into()));
    let unlisted = BTreeMap::from([("ups.com".to_owned(), "UPS".to_owned())]);
    assert!(provider_for(ups, &providers, &unlisted).is_err());
    assert!(provider_for(None, &providers, &carriers).is_err());
}

#[test]
fn an_order_found_is_ours_only_with_the_same_name_zip_and_lines() {
    let order = htf("NC", &[("EA-1001", 2)]);
    let sent = prepare(&order, "htf-10001", &catalogue(), &|sku: &str| {
        supplier_key(sku, "EA-")
    })
    .expect("prepared")
    .order;
    let found = |zip: &str, quantity: u64| -> SupplierOrder {
        serde_json::from_value(serde_json::json!({"id": 5,
            "shipping": {"first_name": "tim", "last_name": "MASSEY", "zip": zip},
            "line_items": [{"id": 1001, "quantity": quantity},
                           {"id": 1, "quantity": 1, "is_shipping": true}]}))
        .expect("an order")
    };
    assert!(is_our_order(&found("27511", 2), &sent));
    assert!(!is_our_order(&found("27512", 2), &sent));
    assert!(!is_our_order(&found("27511", 1), &sent));
}
