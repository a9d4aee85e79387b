//! The wire types against the documents' own examples and the second forms API_NOTES mentions.

use super::*;

/// The document's own example, trimmed of nothing.
const SEED_ORDER: &str = r#"{
    "id": "123456", "status": "READY",
    "_links": {"self": "https://api.hardtofind.com.au/order/123456",
               "manage": "https://www.hardtofind.com.au/mfadmin/sales_order_part/view/123456",
               "packing_slip": "https://api.hardtofind.com.au/order/123456/packing-slip"},
    "dates": {"created_at": "2016-08-18T14:43:22+1000", "updated_at": "2016-08-18T14:43:22+1000",
              "dispatch_due_at": "2016-08-23T12:18:00+1000"},
    "payment_summary": {"price": 99.95, "shipping": 0, "value_addition": 0, "discount": 0,
                        "credit": 0, "payment": 99.95, "total": 99.95},
    "lines": [{"description": "Product title here", "price": 99.95, "product_id": "111",
               "quantity": 1, "sku": "SKU-111",
               "variant_data": [{"label": "Clothing size", "value": "XL"}],
               "personalisations": [{"label": "First personalisation", "value": "Something"}]}],
    "gift_wrapping": {"description": "Free gift wrap", "message": "Hi", "price": 0, "quantity": 1},
    "shipping": {"address": {"first_name": "Tim", "last_name": "Massey", "line_one": "12 Address Street",
                             "line_two": "", "suburb": "Suburbia", "state": "ACT", "postcode": "1001",
                             "country": "Australia", "company": "Company Name"},
                 "method": {"description": "Shipping - FREE standard shipping", "price": 0, "quantity": 1},
                 "instructions": "If no-one home - please leave on front step."},
    "shipments": [{"shipment_date": "2016-09-08T14:57:37+1000", "tracking_number": "TRACK-1234",
                   "shipping_provider_name": "Provider Name Here"}]
}"#;

#[test]
fn the_documents_order_example_reads_completely() {
    let order: Order = serde_json::from_str(SEED_ORDER).expect("the seed's order");
    assert_eq!(
        (order.id.as_str(), &order.status),
        ("123456", &OrderStatus::Ready)
    );
    let line = &order.lines[0];
    assert_eq!((line.sku.as_str(), line.quantity.0), ("SKU-111", 1));
    let created = order.dates.created_at.expect("created_at");
    assert_eq!(created.0.timestamp(), 1_471_495_402);
    assert_eq!(created.to_string(), "2016-08-18T14:43:22+1000");
    assert!(order.dates.dispatch_due_at.is_some_and(|due| due > created));
    let address = order.shipping.and_then(|s| s.address).expect("address");
    assert_eq!(address.state.as_deref(), Some("ACT"));
    assert_eq!(
        order.links.packing_slip.as_deref(),
        Some("https://api.hardtofind.com.au/order/123456/packing-slip")
    );
    assert_eq!(
        order.shipments[0].tracking_number.as_deref(),
        Some("TRACK-1234")
    );
}

#[test]
fn ids_and_dates_are_read_in_either_form_api_notes_mentions() {
    let order: Order = serde_json::from_str(
        r#"{"id": 42, "status": "shipped", "lines": null,
            "dates": {"created_at": 1471495402, "updated_at": "2016-08-18T04:43:22Z"}}"#,
    )
    .expect("numbers for id and date");
    assert_eq!(
        (order.id.as_str(), &order.status),
        ("42", &OrderStatus::Shipped)
    );
    assert_eq!(order.dates.created_at, order.dates.updated_at);
    assert!(order.lines.is_empty());
}

#[test]
fn what_invsync_relies_on_must_be_there() {
    for bad in [
        r#"{"status": "READY"}"#,
        r#"{"id": "1"}"#,
        r#"{"id": "1", "status": "READY", "lines": [{"sku": "A", "quantity": 1.5}]}"#,
        r#"{"id": "1", "status": "READY", "lines": [{"quantity": 1}]}"#,
        r#"{"id": "1", "status": "READY", "dates": {"created_at": "yesterday"}}"#,
        r#"{"id": null, "status": "READY"}"#,
    ] {
        assert!(serde_json::from_str::<Order>(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_state_the_document_does_not_name_is_kept_as_written() {
    assert_eq!(OrderStatus::parse(" ready "), OrderStatus::Ready);
    assert_eq!(OrderStatus::parse("PENDING"), OrderStatus::Pending);
    let odd = OrderStatus::parse("ON_HOLD");
    assert_eq!(
        (odd.as_str(), odd.to_string()),
        ("ON_HOLD", "ON_HOLD".to_owned())
    );
}

#[test]
fn the_paged_structure_takes_counts_as_numbers_or_digits() {
    let page: Paged<serde_json::Value> = serde_json::from_str(
        r#"{"data": [], "page_size": 10, "page_number": "1", "total_results": 4, "pages": 1}"#,
    )
    .expect("a page");
    assert_eq!(
        (page.page_number, page.total_results, page.pages),
        (1, 4, 1)
    );
    assert!(serde_json::from_str::<Paged<serde_json::Value>>(r#"{"data": []}"#).is_err());
}

#[test]
fn shipping_providers_are_a_bare_array_or_paged() {
    let bare = r#"[{"id": "8", "provider_name": "Royal Mail",
        "tracking_url": "https://www.royalmail.com/track-your-item", "accepts_tracking_id_in_url": false}]"#;
    let paged = format!(r#"{{"data": {bare}, "page_size": 10}}"#);
    for text in [bare, paged.as_str()] {
        let providers = match serde_json::from_str(text).expect("providers") {
            ShippingProviders::Bare(p) | ShippingProviders::Paged { data: p } => p,
        };
        assert_eq!(providers[0].provider_name, "Royal Mail");
    }
}

#[test]
fn transitions_are_written_as_the_document_shows_them() {
    let process = TransitionRequest {
        action: "process",
        data: None,
    };
    assert_eq!(
        serde_json::to_value(&process).ok(),
        Some(serde_json::json!({"action": "process"}))
    );
    let shipment_date = serde_json::from_str::<Date>("\"2016-09-15T14:41:25+1000\"").ok();
    let ship = TransitionRequest {
        action: "ship",
        data: shipment_date.map(|shipment_date| ShipData {
            tracking_number: "TRACK-123456",
            shipping_provider_name: "Royal Mail",
            shipment_date,
        }),
    };
    let expected = serde_json::json!({"action": "ship", "data": {
        "tracking_number": "TRACK-123456", "shipping_provider_name": "Royal Mail",
        "shipment_date": "2016-09-15T14:41:25+1000"}});
    assert_eq!(serde_json::to_value(&ship).ok(), Some(expected));
}

#[test]
fn a_date_out_of_range_or_of_another_type_is_refused_not_clamped() {
    for bad in ["1e300", "-1e300", "true", "\"2016-08-18\"", "\"\""] {
        assert!(serde_json::from_str::<Date>(bad).is_err(), "{bad}");
    }
    let fractional = serde_json::from_str::<Date>("1471495402.5").map(|d| d.unix_seconds());
    assert_eq!(fractional.ok(), Some(1_471_495_402.5));
}
