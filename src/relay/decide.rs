//! The relay's decisions, pure: what Endless Aisles order a Hardtofind order becomes (or why
//! it cannot), whether an order found at Endless Aisles is ours, which Hardtofind shipping
//! provider a tracking URL names. No I/O: [`super::step`] asks, these answer.

use std::collections::{BTreeMap, HashMap};

use crate::services::endless_aisles::wire::orders::Order as SupplierOrder;
use crate::services::endless_aisles::{NewLineItem, NewOrder, NewShipping, SizeInfo};
use crate::services::hardtofind::wire::{Order, OrderStatus, ShippingProvider};

/// The Endless Aisles option id a canonical SKU stands for: the SKU without the `to` source's
/// `sku_prefix`, when no mapping says otherwise (the daemon asks the mapping, see
/// `Mapping::key_at` at the source).
pub fn supplier_key(sku: &str, sku_prefix: &str) -> Option<u64> {
    let id = sku.trim().strip_prefix(sku_prefix)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

/// An order ready to send, and its value in the supplier's prices.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The payload of `PUT /api/orders`.
    pub order: NewOrder,
    /// Σ price × quantity of its lines.
    pub value: f64,
}

/// Whether any line of `htf` is a dropship line (maps to a size of the supplier): an order of
/// the shop's own warehouse alone is none of the relay's business, and recording it as
/// `waiting` would make `waiting` mean nothing. An order with one such line is the relay's, and
/// its other lines are problems to say.
pub fn is_dropship(htf: &Order, supplier_key: &dyn Fn(&str) -> Option<u64>) -> bool {
    htf.lines
        .iter()
        .any(|line| supplier_key(&line.sku).is_some())
}

/// The Endless Aisles order for Hardtofind order `htf`, or why there can be none now (every
/// problem, joined): each line maps to a size of `sizes` that is purchasable and not
/// discontinued, priced at the supplier's price; the address is one Endless Aisles takes
/// (`state` at most 2 letters, required fields present).
pub fn prepare(
    htf: &Order,
    custom_order_id: &str,
    sizes: &HashMap<u64, SizeInfo>,
    supplier_key: &dyn Fn(&str) -> Option<u64>,
) -> Result<Prepared, String> {
    let mut problems = Vec::new();
    // Lines of one size are summed: one line per size at the supplier.
    let mut quantities: BTreeMap<u64, u32> = BTreeMap::new();
    for line in &htf.lines {
        let Some(id) = supplier_key(&line.sku) else {
            problems.push(format!(
                "line {:?} maps to no Endless Aisles size",
                line.sku
            ));
            continue;
        };
        let quantity = u32::try_from(line.quantity.0).unwrap_or(0);
        if quantity == 0 {
            problems.push(format!(
                "line {:?} has quantity {}",
                line.sku, line.quantity.0
            ));
            continue;
        }
        *quantities.entry(id).or_default() += quantity;
    }
    let mut lines = Vec::new();
    let mut value = 0.0;
    for (id, quantity) in quantities {
        let Some(size) = sizes.get(&id) else {
            problems.push(format!("size {id} is not in Endless Aisles' catalogue"));
            continue;
        };
        if let Err(why) = size.sellable() {
            problems.push(format!("size {id} is {why}"));
            continue;
        }
        let (Some(upc), Some(price)) = (size.upc.clone(), size.price.or(size.wholesale)) else {
            problems.push(format!("size {id} has no barcode or no price"));
            continue;
        };
        value += price * f64::from(quantity);
        lines.push(NewLineItem {
            id,
            upc,
            quantity,
            price,
        });
    }
    let address = htf
        .shipping
        .as_ref()
        .and_then(|s| s.address.clone())
        .unwrap_or_default();
    let text = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or_default().to_owned();
    let optional = |v: &Option<String>| Some(text(v)).filter(|s| !s.is_empty());
    let order = NewOrder {
        custom_order_id: custom_order_id.to_owned(),
        shipping: NewShipping {
            first_name: text(&address.first_name),
            last_name: text(&address.last_name),
            phone: None,
            address_line_1: text(&address.line_one),
            address_line_2: optional(&address.line_two),
            city: text(&address.suburb),
            state: text(&address.state),
            zip: text(&address.postcode),
            country: optional(&address.country),
        },
        customer: None,
        line_items: lines,
        shipping_cost: None,
        tax_rate: None,
        discount: None,
    };
    if problems.is_empty() {
        problems.extend(crate::services::endless_aisles::orders::preflight(&order));
    } else {
        // Address problems are worth knowing at once too.
        let address_only = NewOrder {
            line_items: Vec::new(),
            ..order.clone()
        };
        problems.extend(
            crate::services::endless_aisles::orders::preflight(&address_only)
                .into_iter()
                .filter(|p| p.starts_with("shipping.")),
        );
    }
    if problems.is_empty() {
        Ok(Prepared { order, value })
    } else {
        Err(problems.join("; "))
    }
}

/// Whether Hardtofind has closed the order without it being shipped: it must not be placed,
/// and an order placed for it is cancelled.
pub fn closed_at_hardtofind(status: &OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Cancelled | OrderStatus::Refunded | OrderStatus::Returned
    )
}

/// Whether order `found` at Endless Aisles is the one `sent` placed: the same name, zip and
/// lines (size and quantity; the shipping line aside). When the answer echoes a
/// `custom_order_id`, that alone decides.
pub fn is_our_order(found: &SupplierOrder, sent: &NewOrder) -> bool {
    if let Some(id) = &found.custom_order_id {
        return *id == sent.custom_order_id;
    }
    let Some(shipping) = &found.shipping else {
        return false;
    };
    let same = |a: &Option<String>, b: &str| {
        a.as_deref()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case(b.trim())
    };
    let mut theirs: Vec<(u64, u64)> = found
        .line_items
        .iter()
        .filter(|l| !l.is_shipping)
        .map(|l| (l.id.unwrap_or(0), l.quantity.unwrap_or(0)))
        .collect();
    let mut ours: Vec<(u64, u64)> = sent
        .line_items
        .iter()
        .map(|l| (l.id, u64::from(l.quantity)))
        .collect();
    theirs.sort_unstable();
    ours.sort_unstable();
    same(&shipping.first_name, &sent.shipping.first_name)
        && same(&shipping.last_name, &sent.shipping.last_name)
        && same(&shipping.zip, &sent.shipping.zip)
        && theirs == ours
}

/// The host of a URL, lower case, without `www.`; `None` when it is not a URL with a host.
fn host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    let host = parsed.host_str()?.to_ascii_lowercase();
    Some(host.strip_prefix("www.").unwrap_or(&host).to_owned())
}

/// Whether `host` is `domain` or under it (`track.fedex.com` is under `fedex.com`).
fn under(host: &str, domain: &str) -> bool {
    let domain = domain
        .trim()
        .trim_start_matches("www.")
        .to_ascii_lowercase();
    !domain.is_empty() && (host == domain || host.ends_with(&format!(".{domain}")))
}

/// The Hardtofind shipping provider a supplier's tracking URL names: a provider whose
/// `tracking_url` has the same host, else `carriers` (tracking host → provider name) naming a
/// provider Hardtofind lists. Never a guess: `Err` says why none could be named.
pub fn provider_for(
    tracking_url: Option<&str>,
    providers: &[ShippingProvider],
    carriers: &BTreeMap<String, String>,
) -> Result<String, String> {
    let Some(tracking_host) = tracking_url.and_then(host) else {
        return Err(format!(
            "the shipment's tracking URL {:?} names no carrier",
            tracking_url.unwrap_or_default()
        ));
    };
    let by_url: Vec<&ShippingProvider> = providers
        .iter()
        .filter(|p| {
            p.tracking_url
                .as_deref()
                .and_then(host)
                .is_some_and(|h| under(&tracking_host, &h) || under(&h, &tracking_host))
        })
        .collect();
    if let [one] = by_url.as_slice() {
        return Ok(one.provider_name.clone());
    }
    // The most specific configured domain wins.
    let configured = carriers
        .iter()
        .filter(|(domain, _)| under(&tracking_host, domain))
        .max_by_key(|(domain, _)| domain.len());
    if let Some((domain, name)) = configured {
        return match providers.iter().find(|p| p.provider_name == *name) {
            Some(p) => Ok(p.provider_name.clone()),
            None => Err(format!(
                "relay.carriers maps {domain:?} to {name:?}, which Hardtofind's shipping providers do not list"
            )),
        };
    }
    if by_url.len() > 1 {
        return Err(format!(
            "{} Hardtofind shipping providers track at {tracking_host}; name one in relay.carriers",
            by_url.len()
        ));
    }
    Err(format!(
        "no Hardtofind shipping provider tracks at {tracking_host}; add it to relay.carriers"
    ))
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
