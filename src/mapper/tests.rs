use super::*;

#[test]
fn sizes_that_cannot_be_sold_count_as_0_and_the_rest_is_untouched() {
    let size = |id: u64, purchasable, discontinued| SizeInfo {
        option_id: id,
        product_id: 1,
        title: String::new(),
        upc: Some("0074198609628".into()),
        purchasability: Some(purchasable),
        discontinued: Some(discontinued),
        wholesale: None,
        price: None,
    };
    let sizes = [
        size(1, false, false),
        size(2, true, true),
        size(3, true, false),
    ];
    let mut parts = Sizes::default();
    for s in &sizes {
        if let Err(why) = s.sellable() {
            parts.unsellable.insert(s.sku("EA-"), why);
        }
        parts.with_gtin.insert(s.sku("EA-"));
    }
    let stock: Stock = [("EA-1", 5), ("EA-2", 4), ("EA-3", 3), ("EA-9", 2)]
        .into_iter()
        .map(|(s, q)| (s.to_owned(), q))
        .collect();

    let sold = sellable_only(stock.clone(), &parts, false);
    assert_eq!(
        sold.iter().collect::<Vec<_>>(),
        [("EA-1", 0), ("EA-2", 0), ("EA-3", 3), ("EA-9", 2)]
    );
    let waiting = sellable_only(stock, &parts, true);
    assert_eq!(waiting.iter().collect::<Vec<_>>(), [("EA-9", 2)]);
    assert_eq!(waiting.held(), ["EA-1", "EA-2", "EA-3"]);
}
