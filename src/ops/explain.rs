//! `invsync status --sku SKU`: why each target shows what it shows for one SKU, from the
//! database alone: each input's recorded quantity, the safety stock and cap, what the target
//! should show, what it last acknowledged, and whether it refused the SKU.

use std::fmt::Write as _;

use crate::store::db::Connection;
use serde::Serialize;

use crate::config::TargetRules;
use crate::plan::{self, Rules};
use crate::store::{self, Side, StoreError};

/// One SKU across the targets.
#[derive(Debug, Serialize)]
pub struct SkuStatus {
    /// The SKU.
    pub sku: String,
    /// What open orders reserve of it, per order.
    pub reservations: Vec<ReservationStatus>,
    /// Per configured target.
    pub targets: Vec<SkuAtTarget>,
    /// What the mapping says of it: its key where that is not the SKU itself, a conflict, a
    /// size that cannot be sold, a catalogue without its product.
    pub mapping: Vec<SkuMapping>,
}

/// One thing the mapping says of the SKU.
#[derive(Debug, Serialize)]
pub struct SkuMapping {
    /// `key` (`detail` is the key and where it comes from), `conflict`, `unsellable` or
    /// `unmapped`.
    pub kind: String,
    /// The endpoint it concerns (`None`: every endpoint).
    pub endpoint: Option<String>,
    /// What to say.
    pub detail: String,
}

/// One order's reservation of the SKU.
#[derive(Debug, Serialize)]
pub struct ReservationStatus {
    /// `[orders.NAME]`.
    pub feed: String,
    /// The order.
    pub order_id: String,
    /// Units the order holds (lines summed).
    pub quantity: i64,
    /// Units the sources have shown of it already.
    pub allotted: i64,
    /// Units still subtracted.
    pub outstanding: i64,
    /// The order's state, `STUCK` when it is overdue by a week.
    pub state: String,
}

/// One SKU at one target.
#[derive(Debug, Serialize)]
pub struct SkuAtTarget {
    /// `[targets.NAME]`.
    pub target: String,
    /// What the target calls the SKU: the SKU itself unless the mapping says otherwise; `None`
    /// in a mapping conflict (nothing is pushed).
    pub key: Option<String>,
    /// Each input's last recorded quantity (`None`: it never reported the SKU).
    pub inputs: Vec<InputQuantity>,
    /// What open orders reserve, subtracted from the sum.
    pub reserved: i64,
    /// Subtracted from the sum.
    pub safety_stock: i64,
    /// The cap, if any.
    pub max_quantity: Option<i64>,
    /// What the target should show (`None`: no input knows the SKU).
    pub should_show: Option<i64>,
    /// What the target last acknowledged.
    pub acknowledged: Option<i64>,
    /// The target's message, if it refused the SKU.
    pub refused: Option<String>,
    /// A catalogue product of the SKU that the API cannot change (a variant or main variant),
    /// if there is one.
    pub unchangeable: Option<super::status::UnchangeableProduct>,
    /// It was sent without its acknowledgement coming back: the target may show what was
    /// sent, and it is pushed again at the next cycle.
    pub in_doubt: bool,
}

/// One input's quantity.
#[derive(Debug, Serialize)]
pub struct InputQuantity {
    /// `[sources.NAME]`.
    pub source: String,
    /// Its last recorded quantity.
    pub quantity: Option<i64>,
}

/// Explains `sku` at every target in `targets`; `None` when no source ever reported it.
pub fn explain_sku(
    conn: &Connection,
    sku: &str,
    targets: &[TargetRules],
) -> Result<Option<SkuStatus>, StoreError> {
    let skus = store::load_skus(conn)?;
    let id = skus.get(sku);
    store::names_once(&skus)?;
    let Some(id) = id else {
        return Ok(None);
    };
    let reservations = store::reservations_of(conn, sku)?;
    let mut notes = store::mapping::notes_of_sku(conn, sku)?;
    // The file's keys are in its lines recorded, not in the notes.
    notes.extend(store::mapping::file_keys_of_sku(conn, sku)?);
    notes.sort_by(|a, b| (&a.kind, &a.sku, &a.endpoint).cmp(&(&b.kind, &b.sku, &b.endpoint)));
    let conflicted = notes.iter().any(|n| n.kind == "conflict");
    let key_at = |target: &str| {
        if conflicted {
            return None;
        }
        let key = notes
            .iter()
            .find(|n| n.kind == "key" && n.endpoint == target)
            .map(|n| {
                n.detail
                    .rsplit_once(" (")
                    .map_or(n.detail.as_str(), |(k, _)| k)
            });
        Some(key.unwrap_or(sku).to_owned())
    };
    let now = store::now_ms();
    let mut at_targets = Vec::new();
    for target in targets {
        let mut inputs = Vec::new();
        for source in &target.inputs {
            let quantity = match store::find_endpoint(conn, Side::Source, source)? {
                Some(endpoint) => store::quantity_of(conn, Side::Source, endpoint, id)?,
                None => None,
            };
            inputs.push((source.clone(), quantity));
        }
        let rules = Rules {
            safety_stock: target.safety_stock,
            max_quantity: target.max_quantity,
        };
        let reserved: i64 = reservations.iter().map(|r| r.outstanding()).sum();
        let explanation = plan::explain_quantities(inputs, reserved, rules);
        let (acknowledged, refused, in_doubt, unchangeable) =
            match store::find_endpoint(conn, Side::Target, &target.name)? {
                Some(endpoint) => (
                    store::quantity_of(conn, Side::Target, endpoint, id)?,
                    store::reads::refusal_message(conn, endpoint, id)?,
                    store::load_in_doubt(conn, endpoint)?.contains(&id),
                    store::unchangeable_of_sku(conn, endpoint, sku)?
                        .map(super::status::unchangeable_product),
                ),
                None => (None, None, false, None),
            };
        at_targets.push(SkuAtTarget {
            target: target.name.clone(),
            key: key_at(&target.name),
            inputs: explanation
                .inputs
                .into_iter()
                .map(|(source, quantity)| InputQuantity { source, quantity })
                .collect(),
            reserved: explanation.reserved,
            safety_stock: target.safety_stock,
            max_quantity: target.max_quantity,
            should_show: explanation.desired,
            acknowledged,
            refused,
            in_doubt,
            unchangeable,
        });
    }
    let reservations = reservations
        .iter()
        .map(|r| ReservationStatus {
            feed: r.feed.clone(),
            order_id: r.order_id.clone(),
            quantity: r.quantity,
            allotted: r.allotted(),
            outstanding: r.outstanding(),
            state: if r.is_stuck(now) {
                "STUCK".to_owned()
            } else {
                r.state.as_str().to_owned()
            },
        })
        .collect();
    let mapping = notes
        .into_iter()
        .map(|n| SkuMapping {
            kind: n.kind,
            endpoint: (!n.endpoint.is_empty()).then_some(n.endpoint),
            detail: n.detail,
        })
        .collect();
    Ok(Some(SkuStatus {
        sku: sku.to_owned(),
        reservations,
        targets: at_targets,
        mapping,
    }))
}

/// What `status` says of a product the catalogue API refused to change.
pub const UNCHANGEABLE: &str =
    "the catalogue API cannot change this product (a variant or main variant)";

fn show(quantity: Option<i64>) -> String {
    quantity.map_or_else(|| "-".to_owned(), |q| q.to_string())
}

/// The explanation for people: the arithmetic, spelt out.
pub fn render_text(status: &SkuStatus) -> String {
    let mut out = format!("{}\n", status.sku);
    for m in &status.mapping {
        let at = m.endpoint.as_deref().unwrap_or("every target");
        let _ = match m.kind.as_str() {
            "key" => writeln!(out, "  called {} at {at}", m.detail),
            "conflict" => writeln!(
                out,
                "  CONFLICT {}: held at every target at what it last acknowledged",
                m.detail
            ),
            "unsellable" => writeln!(out, "  counts as 0: {}", m.detail),
            "unmapped" => writeln!(out, "  not mapped at {at}: {}", m.detail),
            "waiting" => writeln!(out, "  HELD at {at}: its barcode waits for {}", m.detail),
            "matched_twice" => writeln!(out, "  matched twice at {at}: {}", m.detail),
            _ => writeln!(out, "  {at}: {}", m.detail),
        };
    }
    for r in &status.reservations {
        let _ = writeln!(
            out,
            "  reserved by order {} ({}): {} ordered, {} shown by the sources, {} subtracted, {}",
            r.order_id, r.feed, r.quantity, r.allotted, r.outstanding, r.state
        );
    }
    for t in &status.targets {
        let called = match t.key.as_deref() {
            Some(key) if key == status.sku => String::new(),
            Some(key) => format!(" (as {key})"),
            None => " (no key: mapping conflict)".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {}{called}: shows {} (acknowledged), should show {}",
            t.target,
            show(t.acknowledged),
            show(t.should_show)
        );
        let terms: Vec<String> = t
            .inputs
            .iter()
            .map(|i| format!("{} {}", i.source, show(i.quantity)))
            .collect();
        let mut sum: i64 = t.inputs.iter().filter_map(|i| i.quantity).sum();
        let mut line = format!("    {} = {sum}", terms.join(" + "));
        if t.reserved > 0 && t.inputs.iter().any(|i| i.quantity.is_some()) {
            sum = (sum - t.reserved).max(0);
            let _ = write!(
                line,
                ", minus {} reserved by open orders = {sum}",
                t.reserved
            );
        }
        let after_safety = (sum - t.safety_stock).max(0);
        if t.safety_stock > 0 {
            let _ = write!(
                line,
                ", minus safety stock {} = {after_safety}",
                t.safety_stock,
            );
        }
        // The cap is named only where it changed the figure.
        if let Some(cap) = t.max_quantity.filter(|cap| after_safety > *cap) {
            let _ = write!(line, ", capped at {cap}");
        }
        let _ = writeln!(out, "{line}");
        if let Some(message) = &t.refused {
            let _ = writeln!(out, "    REFUSED by the target: {message}");
        }
        if let Some(u) = &t.unchangeable {
            let _ = writeln!(
                out,
                "    {UNCHANGEABLE} (product {}, since {}; the shop said {}): tried again when it changes, or at {}",
                u.product,
                u.refused_at.as_deref().unwrap_or("-"),
                u.message,
                u.retry_at.as_deref().unwrap_or("-")
            );
        }
        if t.in_doubt {
            let _ = writeln!(
                out,
                "    sent without its acknowledgement coming back: the target may show what was sent; pushed again at the next cycle"
            );
        }
    }
    out
}
