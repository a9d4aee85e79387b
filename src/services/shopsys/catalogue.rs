//! The product list as invsync uses it, pure: SKU → products by the `match` field (usually one;
//! a SKU two products claim is flagged on both), and the page to read next from a `Link` header.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::config::{Flag, MatchField};
use super::wire::{self, Product};

/// One product a SKU maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueProduct {
    /// Its uuid, for `PATCH /api/v1/products/{uuid}`.
    pub uuid: String,
    /// Whether `GET` showed the target's flag set (for `sellingDenied`, the calculated value):
    /// what [`super::flag::FlagState::seen`] needs, nothing else.
    pub flagged: bool,
    /// A digest of what the product is, flags left out: a product the API could not change is
    /// tried again when this changes (see [`super::flag::Unchangeable`]).
    pub digest: String,
}

/// The product list, indexed by SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalogue {
    /// SKU → the one product whose `match` field holds it.
    pub by_sku: HashMap<String, CatalogueProduct>,
    /// SKUs held by two or more products, with the products (by uuid): each is flagged and
    /// cleared as the SKU's quantity says (the same stock is for sale on both, so when it runs
    /// out both must stop selling it), and the SKU is listed in `status` as matched twice.
    pub duplicates: BTreeMap<String, Vec<CatalogueProduct>>,
    /// Products read (each uuid once).
    pub products: usize,
    /// Products with nothing in the `match` field.
    pub unmatched: usize,
    /// Products whose uuid is not a UUID: never patched (it would not be a safe path).
    pub bad_uuids: usize,
    /// Each product's `ean` with its `match` field's value, for `[mapping] by_barcode`.
    pub barcodes: Vec<(String, String)>,
}

/// Builds a [`Catalogue`] page by page.
#[derive(Debug)]
pub struct CatalogueBuilder {
    match_field: MatchField,
    flag: Flag,
    seen: HashSet<String>,
    claims: HashMap<String, Vec<CatalogueProduct>>,
    unmatched: usize,
    bad_uuids: usize,
    barcodes: Vec<(String, String)>,
}

impl CatalogueBuilder {
    /// An empty index by `match_field`, recording `flag` as shown.
    pub fn new(match_field: MatchField, flag: Flag) -> CatalogueBuilder {
        CatalogueBuilder {
            match_field,
            flag,
            seen: HashSet::new(),
            claims: HashMap::new(),
            unmatched: 0,
            bad_uuids: 0,
            barcodes: Vec::new(),
        }
    }

    /// Adds one product. A uuid seen before (a product that moved to a later page while the
    /// list was read) is counted once.
    pub fn add(&mut self, product: &Product) {
        if !wire::is_uuid(&product.uuid) {
            self.bad_uuids += 1;
            return;
        }
        if !self.seen.insert(product.uuid.clone()) {
            return;
        }
        let Some(sku) = self.match_field.of(product) else {
            self.unmatched += 1;
            return;
        };
        if let Some(ean) = product.ean.as_deref().filter(|e| !e.trim().is_empty()) {
            self.barcodes.push((ean.to_owned(), sku.to_owned()));
        }
        self.claims
            .entry(sku.to_owned())
            .or_default()
            .push(CatalogueProduct {
                uuid: product.uuid.clone(),
                flagged: self.flag.shown(product),
                digest: digest(product),
            });
    }

    /// The finished index.
    pub fn finish(self) -> Catalogue {
        let mut by_sku = HashMap::with_capacity(self.claims.len());
        let mut duplicates = BTreeMap::new();
        for (sku, mut claims) in self.claims {
            match claims.pop() {
                Some(only) if claims.is_empty() => {
                    by_sku.insert(sku, only);
                }
                Some(last) => {
                    claims.push(last);
                    claims.sort_by(|a, b| a.uuid.cmp(&b.uuid));
                    duplicates.insert(sku, claims);
                }
                None => {}
            }
        }
        Catalogue {
            by_sku,
            duplicates,
            products: self.seen.len(),
            unmatched: self.unmatched,
            bad_uuids: self.bad_uuids,
            barcodes: self.barcodes,
        }
    }
}

impl Catalogue {
    /// The products whose `match` field holds `sku`: none, one, or (matched twice) several.
    pub fn products_of(&self, sku: &str) -> &[CatalogueProduct] {
        match self.by_sku.get(sku) {
            Some(one) => std::slice::from_ref(one),
            None => self.duplicates.get(sku).map_or(&[], Vec::as_slice),
        }
    }

    /// Whether product `uuid` is in the list (matched to a SKU).
    pub fn has_product(&self, uuid: &str) -> bool {
        self.by_sku.values().any(|p| p.uuid == uuid)
            || self.duplicates.values().flatten().any(|p| p.uuid == uuid)
    }
}

/// A digest of `product` without its flags (which invsync writes, and `GET` calculates): what
/// changes when someone edits the product in the shop.
fn digest(product: &Product) -> String {
    use aws_lc_rs::digest::{SHA256, digest};
    let unflagged = Product {
        hidden: false,
        selling_denied: false,
        ..product.clone()
    };
    let bytes = serde_json::to_vec(&unflagged).unwrap_or_default();
    let hash = digest(&SHA256, &bytes);
    hash.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The page a `Link` header's `rel="next"` points to (`<…?page=3>; rel="next"`), from every
/// `Link` value given. `Ok(None)` when there is no next link (the last page); an error when
/// there is one without a page number.
///
/// Only the page number is taken, and the request goes to the configured `base_url`: the shop
/// builds these URLs from the request it saw, which behind a TLS-terminating proxy is an
/// internal `http://` address, and the bearer token must never go anywhere else.
pub fn next_page<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Option<u64>, String> {
    for value in values {
        for (target, params) in links(value) {
            let is_next = params.split(';').any(|param| {
                let Some((key, rels)) = param.split_once('=') else {
                    return false;
                };
                key.trim().eq_ignore_ascii_case("rel")
                    && rels
                        .trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return page_of(target)
                    .map(Some)
                    .ok_or_else(|| format!("Link rel=\"next\" <{target}> names no page number"));
            }
        }
    }
    Ok(None)
}

/// `(target, parameters)` of each link in one `Link` value: `<target>; rel="next", <…>; …`.
/// A comma inside `<…>` belongs to the target.
fn links(value: &str) -> Vec<(&str, &str)> {
    let mut found = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let target = &after[..close];
        let tail = &after[close + 1..];
        let end = tail.find('<').unwrap_or(tail.len());
        let params = tail[..end].trim_end().trim_end_matches(',');
        found.push((target.trim(), params));
        rest = &tail[end..];
    }
    found
}

/// The `page` query parameter of a URL, absolute or relative.
fn page_of(target: &str) -> Option<u64> {
    let base = url::Url::parse("http://link.invalid/").ok()?;
    let url = base.join(target).ok()?;
    let (_, page) = url.query_pairs().find(|(k, _)| k == "page")?;
    page.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(n: u8, catnum: Option<&str>, denied: bool) -> Product {
        Product {
            uuid: format!("00000000-0000-4000-8000-0000000000{n:02x}"),
            name: Default::default(),
            hidden: false,
            selling_denied: denied,
            selling_from: None,
            selling_to: None,
            catnum: catnum.map(str::to_owned),
            ean: None,
            partno: None,
            short_description: Default::default(),
            long_description: Default::default(),
        }
    }

    #[test]
    fn a_products_digest_changes_with_its_fields_but_not_with_its_flags() {
        let plain = product(1, Some("A"), false);
        let flagged = Product {
            hidden: true,
            ..product(1, Some("A"), true)
        };
        let renamed = Product {
            name: [("en".to_owned(), Some("New".to_owned()))].into(),
            ..plain.clone()
        };
        assert_eq!(digest(&plain), digest(&flagged));
        assert_ne!(digest(&plain), digest(&renamed));
    }

    #[test]
    fn the_next_page_comes_from_rel_next_only() {
        let page_two = r#"<http://127.0.0.1:8000/api/v1/products?page=1>; rel="first", <http://127.0.0.1:8000/api/v1/products?page=1>; rel="prev", <http://127.0.0.1:8000/api/v1/products?page=3>; rel="next", <http://127.0.0.1:8000/api/v1/products?page=9>; rel="last""#;
        assert_eq!(next_page([page_two]), Ok(Some(3)));
        let last = r#"<http://h/api/v1/products?page=1>; rel="first", <http://h/api/v1/products?page=2>; rel="prev""#;
        assert_eq!(next_page([last]), Ok(None));
        assert_eq!(next_page([]), Ok(None));
    }

    #[test]
    fn link_values_are_read_as_the_rfc_allows() {
        assert_eq!(
            next_page(["</api/v1/products?page=2>;rel=next"]),
            Ok(Some(2))
        );
        assert_eq!(
            next_page(["<https://x/p?uuids[]=a,b&page=4>; title=\"a, b\"; rel=\"NEXT last\""]),
            Ok(Some(4))
        );
        let split = [
            "<http://h/p?page=1>; rel=\"prev\"",
            "<http://h/p?page=3>; rel=\"next\"",
        ];
        assert_eq!(next_page(split), Ok(Some(3)));
        assert!(next_page(["<http://h/p?cursor=abc>; rel=\"next\""]).is_err());
        assert_eq!(next_page(["garbage <unclosed; rel=next"]), Ok(None));
    }

    #[test]
    fn skus_map_to_their_one_product_and_twins_map_to_none() {
        let mut builder = CatalogueBuilder::new(MatchField::Catnum, Flag::SellingDenied);
        for p in [
            product(1, Some("A"), false),
            product(2, Some(" B "), true),
            product(3, Some("C"), false),
            product(4, Some("C"), false),
            product(5, None, false),
            product(6, Some(""), false),
            product(1, Some("A"), false),
        ] {
            builder.add(&p);
        }
        let mut bad = product(7, Some("D"), false);
        bad.uuid = "../admin".to_owned();
        builder.add(&bad);
        let catalogue = builder.finish();
        assert_eq!(catalogue.by_sku.len(), 2);
        assert_eq!(catalogue.by_sku["A"].uuid, product(1, None, false).uuid);
        assert!(
            catalogue.by_sku["B"].flagged,
            "trimmed, and flagged as shown"
        );
        assert_eq!(catalogue.duplicates["C"].len(), 2);
        assert_eq!(
            catalogue.products_of("C").len(),
            2,
            "both products of a twin"
        );
        assert_eq!(catalogue.products_of("A").len(), 1);
        assert!(catalogue.products_of("Z").is_empty());
        assert_eq!(
            (catalogue.products, catalogue.unmatched, catalogue.bad_uuids),
            (6, 2, 1)
        );
    }
}
