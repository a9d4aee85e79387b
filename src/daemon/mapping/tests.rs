use super::*;
use crate::mapping::{Origin, Role};

/// What `rekeyed` gives, sorted, each once.
fn rekeyed<'a>(before: &'a Aliases, after: &'a Mapping, target: &str) -> Vec<&'a str> {
    let mut skus = super::notes::rekeyed(before, after, target);
    skus.sort_unstable();
    skus.dedup();
    skus
}

fn mapping(lines: &[(&str, &str, usize)]) -> Mapping {
    let endpoints = vec![EndpointSpec {
        name: "hardtofind".into(),
        role: Role::Target,
        prefix: String::new(),
    }];
    let links = lines
        .iter()
        .map(|&(sku, key, line)| Link {
            sku: sku.into(),
            endpoint: "hardtofind".into(),
            key: key.into(),
            origin: Origin::Csv(line),
        })
        .collect();
    Mapping::resolve(&endpoints, links)
}

/// The lines a database recorded of the file that made `m`.
fn recorded(lines: &[(&str, &str, usize)]) -> Aliases {
    Aliases::from_lines(
        lines
            .iter()
            .map(|&(sku, key, line)| (line, sku, "hardtofind", key)),
    )
}

#[test]
fn a_new_key_voids_the_acknowledgement_a_moved_line_does_not() {
    let before = recorded(&[("A", "KA", 2), ("B", "KB", 3)]);
    let after = mapping(&[("B", "KB", 2), ("A", "KA2", 3), ("C", "KC", 4)]);

    assert_eq!(rekeyed(&before, &after, "hardtofind"), ["A", "C"]);
    let removed = mapping(&[]);
    assert_eq!(
        rekeyed(&before, &removed, "hardtofind"),
        ["A", "B"],
        "back to its own name"
    );
    let conflict = mapping(&[("A", "KA", 2), ("A", "KX", 3)]);
    assert_eq!(
        rekeyed(&before, &conflict, "hardtofind"),
        ["B"],
        "A, in conflict, is held where it is"
    );
    let nothing_before = Aliases::default();
    assert_eq!(
        rekeyed(&nothing_before, &after, "hardtofind"),
        ["A", "B", "C"],
        "a first file gives every SKU it names a new key"
    );
}

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
