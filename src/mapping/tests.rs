use proptest::prelude::*;

use super::*;
use crate::plan::stock::Stock;

fn endpoints() -> Vec<EndpointSpec> {
    let spec = |name: &str, role, prefix: &str| EndpointSpec {
        name: name.to_owned(),
        role,
        prefix: prefix.to_owned(),
    };
    vec![
        spec("warehouse", Role::Source, ""),
        spec("dropship", Role::Source, "EA-"),
        spec("hardtofind", Role::Target, ""),
        spec("shop", Role::Target, ""),
        spec("htf_orders", Role::Feed, ""),
    ]
}

fn csv(line: usize, sku: &str, endpoint: &str, key: &str) -> Link {
    Link {
        sku: sku.into(),
        endpoint: endpoint.into(),
        key: key.into(),
        origin: Origin::Csv(line),
    }
}

fn barcode(sku: &str, key: &str) -> Link {
    Link {
        sku: sku.into(),
        endpoint: "dropship".into(),
        key: key.into(),
        origin: Origin::Barcode("00074198609628".into()),
    }
}

fn key<'a>(m: &'a Mapping, endpoint: &str, sku: &'a str) -> Option<String> {
    m.key_at(endpoint, sku).map(|(k, _)| k.into_owned())
}

#[test]
fn without_links_every_sku_is_called_the_same_and_a_source_keeps_its_prefix() {
    let m = Mapping::resolve(&endpoints(), Vec::new());
    assert!(m.is_empty());
    assert_eq!(m.canonical("dropship", "EA-1"), Some("EA-1"));
    assert_eq!(key(&m, "hardtofind", "HK-1"), Some("HK-1".into()));
    assert_eq!(
        key(&m, "dropship", "EA-1"),
        Some("EA-1".into()),
        "no links, no rewriting"
    );
}

#[test]
fn a_line_of_the_file_names_a_sku_at_a_target_a_source_and_a_feed() {
    let m = Mapping::resolve(
        &endpoints(),
        vec![
            csv(2, "CAT-1", "hardtofind", "HTF-1"),
            csv(3, "CAT-1", "dropship", "22397"),
            csv(4, "CAT-1", "htf_orders", "HTF-1"),
        ],
    );
    assert_eq!(key(&m, "hardtofind", "CAT-1"), Some("HTF-1".into()));
    assert_eq!(m.canonical("dropship", "EA-22397"), Some("CAT-1"));
    assert_eq!(m.canonical("dropship", "EA-5"), Some("EA-5"));
    assert_eq!(key(&m, "dropship", "CAT-1"), Some("22397".into()));
    assert_eq!(key(&m, "dropship", "EA-5"), Some("5".into()));
    assert_eq!(key(&m, "dropship", "HK-5"), None, "not one of its names");
    assert_eq!(m.canonical("htf_orders", "HTF-1"), Some("CAT-1"));
    assert_eq!(
        m.key_at("hardtofind", "CAT-1").and_then(|(_, o)| o),
        Some(Origin::Csv(2))
    );
    assert!(m.conflicts(&SkuTable::default()).is_empty());
}

#[test]
fn the_file_wins_over_barcodes_and_barcodes_over_the_default() {
    let m = Mapping::resolve(
        &endpoints(),
        vec![
            barcode("CAT-1", "22397"),
            csv(2, "CAT-1", "dropship", "500"),
            barcode("CAT-2", "600"),
        ],
    );
    assert_eq!(m.canonical("dropship", "EA-500"), Some("CAT-1"));
    assert_eq!(m.canonical("dropship", "EA-22397"), Some("EA-22397"));
    assert_eq!(m.canonical("dropship", "EA-600"), Some("CAT-2"));
    assert!(m.conflicts(&SkuTable::default()).is_empty());
}

#[test]
fn a_key_with_two_skus_and_a_sku_with_two_keys_are_conflicts_named_in_status() {
    let m = Mapping::resolve(
        &endpoints(),
        vec![
            csv(2, "A", "hardtofind", "K"),
            csv(3, "B", "hardtofind", "K"),
            csv(4, "C", "hardtofind", "K1"),
            csv(5, "C", "hardtofind", "K2"),
            csv(6, "D", "dropship", "7"),
            csv(7, "E", "dropship", "7"),
        ],
    );
    let conflicts = m.conflicts(&SkuTable::default());
    assert_eq!(
        conflicts.keys().map(String::as_str).collect::<Vec<_>>(),
        ["A", "B", "C", "D", "E"]
    );
    assert_eq!(conflicts["C"], "at hardtofind: two keys: \"K1\" and \"K2\"");
    for sku in ["A", "B", "C"] {
        assert_eq!(key(&m, "hardtofind", sku), None);
        assert_eq!(key(&m, "shop", sku), None, "held at every target");
    }
    assert_eq!(m.canonical("dropship", "EA-7"), None);
    let stock: Stock = [("EA-7".to_owned(), 5), ("EA-8".to_owned(), 1)]
        .into_iter()
        .collect();
    let out = m.translate("dropship", stock).stock;
    assert_eq!(out.iter().collect::<Vec<_>>(), [("EA-8", 1)]);
    assert_eq!(out.held(), ["D", "E"], "neither is zeroed: both are held");
}

#[test]
fn a_sku_whose_name_another_sku_takes_at_a_target_is_in_conflict_once_it_exists() {
    let m = Mapping::resolve(&endpoints(), vec![csv(2, "X", "hardtofind", "A")]);
    assert_eq!(key(&m, "hardtofind", "A"), None, "key A is X's there");
    let mut known = SkuTable::default();
    known.intern("X");
    assert!(m.held(&known).is_empty());
    known.intern("A");
    let held = m.held(&known);
    assert_eq!(held.len(), 2);
}

#[test]
fn two_records_of_one_answer_that_are_one_sku_are_a_conflict_whichever_comes_first() {
    let m = Mapping::resolve(&endpoints(), vec![csv(2, "HK-1", "warehouse", "HK-OLD")]);
    for order in [["HK-1", "HK-OLD"], ["HK-OLD", "HK-1"]] {
        let stock: Stock = order
            .iter()
            .map(|raw| (raw.to_string(), if *raw == "HK-1" { 0 } else { 50 }))
            .chain([("HK-2".to_owned(), 4)])
            .collect();
        let out = m.translate("warehouse", stock);
        assert_eq!(
            out.stock.iter().collect::<Vec<_>>(),
            [("HK-2", 4)],
            "{order:?}"
        );
        assert_eq!(out.stock.held(), ["HK-1"], "neither figure: held");
        let why = &out.collisions["HK-1"];
        assert!(
            why.starts_with("at warehouse: two records are this SKU: "),
            "{why}"
        );
        assert!(
            why.contains("(its own name)") && why.contains("(mapping file line 2)"),
            "{why}"
        );
    }
    // One record under the alias alone is no collision, nor the same name twice.
    let stock: Stock = [("HK-OLD".to_owned(), 50), ("HK-OLD".to_owned(), 40)]
        .into_iter()
        .collect();
    let out = m.translate("warehouse", stock);
    assert!(out.collisions.is_empty());
    assert_eq!(
        out.stock.iter().collect::<Vec<_>>(),
        [("HK-1", 50), ("HK-1", 40)]
    );
}

#[test]
fn two_keys_of_one_sku_reported_together_hold_it_at_the_source_too() {
    let m = Mapping::resolve(
        &endpoints(),
        vec![
            csv(2, "CAT-1", "dropship", "1"),
            csv(3, "CAT-1", "dropship", "2"),
        ],
    );
    let stock: Stock = [("EA-1".to_owned(), 5), ("EA-2".to_owned(), 7)]
        .into_iter()
        .collect();
    let out = m.translate("dropship", stock);
    assert!(out.stock.iter().next().is_none());
    assert_eq!(out.stock.held(), ["CAT-1"]);
    assert!(out.collisions["CAT-1"].contains("\"EA-1\" (mapping file line 2)"));
}

#[test]
fn barcodes_link_as_gtin_14_whatever_zeros_lead() {
    let sizes = vec![
        SizeBarcode {
            key: "22397".into(),
            upc: Some("0074198609628".into()),
        },
        SizeBarcode {
            key: "1".into(),
            upc: Some("not a barcode".into()),
        },
        SizeBarcode {
            key: "2".into(),
            upc: None,
        },
    ];
    let products = vec![
        ("074198609628".to_owned(), "CAT-1".to_owned()),
        ("".to_owned(), "CAT-2".to_owned()),
    ];
    let links = barcode_links("dropship", &sizes, &products);
    assert_eq!(links, vec![barcode("CAT-1", "22397")]);
}

fn name() -> impl Strategy<Value = String> {
    "[A-D][0-2]"
}

/// Lines of a file as links (the endpoint an index into [`endpoints`]), and every SKU and key
/// they name as known SKUs.
fn lines_of(lines: &[(String, usize, String)]) -> (Vec<Link>, SkuTable) {
    let names = endpoints();
    let links: Vec<Link> = lines
        .iter()
        .enumerate()
        .map(|(i, (sku, e, k))| csv(i + 2, sku, &names[*e].name, k))
        .collect();
    let mut known = SkuTable::default();
    for l in &links {
        known.intern(&l.sku);
        known.intern(&l.key);
    }
    (links, known)
}

proptest! {
    /// Whatever the links, a SKU in conflict is given no key anywhere (so it is never pushed),
    /// and a SKU that is not in conflict reads back the way it was written.
    #[test]
    fn a_conflicted_sku_has_no_key_and_every_other_link_reads_back(
        lines in proptest::collection::vec((name(), 0..5usize, name()), 0..12)
    ) {
        let names = endpoints();
        let (links, known) = lines_of(&lines);
        let m = Mapping::resolve(&names, links.clone());
        let conflicts = m.conflicts(&known);
        let fixed = m.conflicts(&SkuTable::default());
        let held = m.held(&known);
        for l in &links {
            let spec = names.iter().find(|e| e.name == l.endpoint).expect("listed");
            if conflicts.contains_key(&l.sku) {
                prop_assert!(known.get(&l.sku).is_some_and(|id| held.contains(&id)));
                if fixed.contains_key(&l.sku) {
                    for e in &names {
                        prop_assert_eq!(key(&m, &e.name, &l.sku), None);
                    }
                }
                continue;
            }
            prop_assert_eq!(key(&m, &l.endpoint, &l.sku), Some(l.key.clone()));
            if spec.role != Role::Target {
                let raw = format!("{}{}", spec.prefix, l.key);
                prop_assert_eq!(m.canonical(&l.endpoint, &raw), Some(l.sku.as_str()));
            }
        }
    }
}

proptest! {
    /// The conflicts and their reasons are the same whatever the order of the file's lines:
    /// the links in conflict are taken in order of key and SKU, not of the file.
    #[test]
    fn conflicts_read_the_same_whatever_the_order_of_the_lines(
        lines in proptest::collection::vec((name(), 0..5usize, name()), 0..12)
    ) {
        let names = endpoints();
        let (links, known) = lines_of(&lines);
        let mut reversed = links.clone();
        reversed.reverse();
        let forward = Mapping::resolve(&names, links).conflicts(&known);
        let backward = Mapping::resolve(&names, reversed).conflicts(&known);
        prop_assert_eq!(forward, backward);
    }
}

proptest! {
    /// Looked up by id, asked in any order and again, a SKU's key at every endpoint is the one
    /// its name gives: with barcodes, conflicts, two keys and names taken by another's key.
    #[test]
    fn by_id_every_sku_reads_as_by_name(
        lines in proptest::collection::vec((name(), 0..5usize, name()), 0..12),
        barcodes in proptest::collection::vec((name(), name()), 0..4),
        order in proptest::collection::vec(0..40usize, 0..60),
    ) {
        let names = endpoints();
        let (mut links, mut known) = lines_of(&lines);
        for (sku, key) in &barcodes {
            links.push(barcode(sku, key));
            known.intern(sku);
            known.intern(&format!("EA-{key}"));
        }
        known.intern("unnamed");
        let m = Mapping::resolve(&names, links);
        let ids: Vec<SkuId> = (0..known.len() as SkuId).collect();
        let asked = order.iter().map(|&i| ids[i % ids.len()]).chain(ids.iter().copied());
        for id in asked.chain(ids.iter().rev().copied()) {
            let sku = known.name(id);
            for e in &names {
                let by_name = m.key_at(&e.name, sku).map(|(k, _)| k);
                let mut kept = m.by_id_kept(&e.name);
                prop_assert_eq!(kept.key_at(id, sku), by_name.as_deref());
                drop(kept);
                let mut by_id = m.by_id(&e.name);
                prop_assert_eq!(by_id.linked_key(id, sku), m.linked_key(&e.name, sku));
                prop_assert_eq!(by_id.key_at(id, sku), by_name.as_deref());
            }
        }
    }
}
