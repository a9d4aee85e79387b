use crate::mapping::{Aliases, EndpointSpec, Link, Mapping, Origin, Role};

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
fn a_new_file_voids_exactly_what_was_acknowledged_under_another_key() {
    use crate::plan::ledger::{Column, SkuTable};
    let before = recorded(&[("A", "KA", 2), ("B", "KB", 3)]);
    let after = mapping(&[
        ("B", "KB", 2),
        ("A", "KA2", 3),
        ("C", "KC", 4),
        ("D", "KD", 5),
    ]);
    let mut skus = SkuTable::default();
    for name in ["A", "B", "C", "D", "E"] {
        skus.push(name);
    }
    let mut acked = Column::default();
    for (id, quantity) in [(0, 1), (1, 2), (2, 3), (4, 5)] {
        acked.set(id, quantity);
    }
    let rekeyed = super::notes::Rekeyed::new(&before, &after, "hardtofind");

    let void = super::notes::void_rekeyed(&mut acked, &skus, &rekeyed);

    // A has a new key, C a first one; B keeps its key, D was never acknowledged, E has no link.
    assert_eq!(void, [0, 2]);
    assert_eq!(acked.iter().collect::<Vec<_>>(), [(1, 2), (4, 5)]);
}
