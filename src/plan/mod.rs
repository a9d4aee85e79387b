//! What each target should show, what it must be told, and whether telling it is safe. Pure
//! functions over [`Column`]s: no I/O, so every rule here is unit-tested directly.

pub mod backoff;
pub mod guard;
pub mod ledger;
pub mod relay;
pub mod reservations;
pub mod stock;

pub use guard::{Guard, MASS_ZERO_MIN_SKUS, MassZero};

use std::collections::BTreeSet;

use crate::plan::ledger::{Column, SkuId};

/// A target's rules for turning its inputs' sum into the quantity it shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// Subtracted from the sum.
    pub safety_stock: i64,
    /// The most the target is ever told.
    pub max_quantity: Option<i64>,
}

impl Rules {
    /// The sum minus the safety stock, floored at 0, capped at the maximum.
    fn apply(self, sum: i64) -> i64 {
        let shown = sum.saturating_sub(self.safety_stock).max(0);
        self.max_quantity.map_or(shown, |cap| shown.min(cap))
    }
}

/// One SKU to push: what the target last acknowledged (`None`: never told) and what it should show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The SKU.
    pub sku: SkuId,
    /// The acknowledged quantity, if any.
    pub old: Option<i64>,
    /// The quantity to push.
    pub new: i64,
}

/// The quantity a target should show for `sku`: the sum of its inputs' quantities, minus what
/// open orders reserve of it, minus the safety stock, floored at 0, capped at the maximum.
/// `None` when no input has ever reported it.
pub fn desired(inputs: &[&Column], reserved: &Column, sku: SkuId, rules: Rules) -> Option<i64> {
    // No allocation here: `plan` calls this for every SKU of the catalogue.
    sum_of_known(inputs.iter().map(|c| c.get(sku)))
        .map(|sum| rules.apply(sum.saturating_sub(reserved.get(sku).unwrap_or(0).max(0))))
}

/// Why a target should show what it shows for one SKU: the figures [`desired`] works from, for
/// an operator asking "why does Hardtofind show 3?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Each input's name and quantity, in the target's order; `None` for an input that has
    /// never reported the SKU.
    pub inputs: Vec<(String, Option<i64>)>,
    /// What open orders reserve of it, subtracted from the sum.
    pub reserved: i64,
    /// The safety stock and cap applied to the sum.
    pub rules: Rules,
    /// What the target should show, exactly as [`desired`] says.
    pub desired: Option<i64>,
}

/// [`desired`] with its workings: the same sum and the same rules, so the two cannot disagree.
pub fn explain(
    inputs: &[(&str, &Column)],
    reserved: &Column,
    sku: SkuId,
    rules: Rules,
) -> Explanation {
    let inputs = inputs
        .iter()
        .map(|(name, column)| ((*name).to_owned(), column.get(sku)))
        .collect();
    explain_quantities(inputs, reserved.get(sku).unwrap_or(0), rules)
}

/// [`explain`] from each input's quantity of one SKU, read one by one (`status --sku`).
pub fn explain_quantities(
    inputs: Vec<(String, Option<i64>)>,
    reserved: i64,
    rules: Rules,
) -> Explanation {
    let reserved = reserved.max(0);
    let desired = sum_of_known(inputs.iter().map(|(_, q)| *q))
        .map(|sum| rules.apply(sum.saturating_sub(reserved)));
    Explanation {
        inputs,
        reserved,
        rules,
        desired,
    }
}

/// The sum of the quantities that are known, or `None` when none is: a SKU no input ever
/// reported is not a SKU the target should be told about.
fn sum_of_known(quantities: impl Iterator<Item = Option<i64>>) -> Option<i64> {
    quantities.flatten().fold(None, |sum: Option<i64>, q| {
        Some(sum.unwrap_or(0).saturating_add(q))
    })
}

/// Every SKU whose desired quantity differs from the acknowledged one (all of them, when `full`).
///
/// A SKU no input knows but the target acknowledged (an input was removed from the
/// configuration) should show 0, by the same sum. Creates (never acknowledged) come after updates,
/// so batches stay of one kind where a target treats the two differently.
pub fn plan(
    inputs: &[&Column],
    reserved: &Column,
    acked: &Column,
    rules: Rules,
    full: bool,
) -> Vec<Change> {
    plan_skus(inputs, reserved, acked, rules, full)
        .into_iter()
        .filter_map(|sku| change_of(inputs, reserved, acked, rules, sku))
        .collect()
}

/// [`plan`]'s SKUs alone, in its order: 4 bytes a change rather than a whole [`Change`], so a
/// first cycle over millions of SKUs holds its plan in a fraction of the memory. Each change is
/// made again, a batch at a time, by [`change_of`] from the same columns: what it says cannot
/// differ from what [`plan`] says until one of them changes.
pub fn plan_skus(
    inputs: &[&Column],
    reserved: &Column,
    acked: &Column,
    rules: Rules,
    full: bool,
) -> Vec<SkuId> {
    let width = inputs
        .iter()
        .map(|c| c.width())
        .chain([acked.width()])
        .max()
        .unwrap_or(0);
    // Two passes rather than two lists joined at the end: on a first cycle every SKU is a
    // create, and holding both lists at once would double the plan's memory.
    let mut skus = Vec::new();
    for creates in [false, true] {
        for sku in 0..width as SkuId {
            if acked.get(sku).is_none() != creates {
                continue;
            }
            if let Some(c) = change_of(inputs, reserved, acked, rules, sku)
                && (full || c.old != Some(c.new))
            {
                skus.push(sku);
            }
        }
    }
    skus
}

/// What pushing `sku` would say: what the target acknowledged and what it should show, by the
/// same sum as [`desired`] (0 for a SKU no input knows but the target acknowledged). `None`
/// when neither any input nor the target ever knew it.
pub fn change_of(
    inputs: &[&Column],
    reserved: &Column,
    acked: &Column,
    rules: Rules,
    sku: SkuId,
) -> Option<Change> {
    let old = acked.get(sku);
    let new = match (desired(inputs, reserved, sku, rules), old) {
        (Some(q), _) => q,
        (None, Some(_)) => 0,
        (None, None) => return None,
    };
    Some(Change { sku, old, new })
}

/// Adds to `changes`, first, each SKU in `doubt` that [`plan`] left out because what it should
/// show equals the acknowledged figure: a request carried it and was never answered with its
/// acknowledgement, so the target may show what that request said instead.
pub fn push_in_doubt(
    inputs: &[&Column],
    reserved: &Column,
    acked: &Column,
    rules: Rules,
    doubt: &BTreeSet<SkuId>,
    changes: &mut Vec<Change>,
) {
    if doubt.is_empty() {
        return;
    }
    let planned = changes.iter().map(|c| c.sku);
    let missing = missing_in_doubt(inputs, reserved, acked, rules, doubt, planned);
    changes.splice(0..0, missing);
}

/// [`push_in_doubt`] over a plan of SKUs alone ([`plan_skus`]).
pub fn push_in_doubt_skus(
    inputs: &[&Column],
    reserved: &Column,
    acked: &Column,
    rules: Rules,
    doubt: &BTreeSet<SkuId>,
    skus: &mut Vec<SkuId>,
) {
    if doubt.is_empty() {
        return;
    }
    let planned = skus.iter().copied();
    let missing = missing_in_doubt(inputs, reserved, acked, rules, doubt, planned);
    skus.splice(0..0, missing.into_iter().map(|c| c.sku));
}

/// The changes of the SKUs in `doubt` that `planned` lacks, in SKU order.
fn missing_in_doubt(
    inputs: &[&Column],
    reserved: &Column,
    acked: &Column,
    rules: Rules,
    doubt: &BTreeSet<SkuId>,
    planned: impl Iterator<Item = SkuId>,
) -> Vec<Change> {
    let planned: BTreeSet<SkuId> = planned.filter(|s| doubt.contains(s)).collect();
    doubt
        .difference(&planned)
        .filter_map(|&sku| change_of(inputs, reserved, acked, rules, sku))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sku_in_doubt_is_pushed_first_even_when_it_should_show_its_acknowledged_figure() {
        let source = column(&[(0, 4), (1, 7), (2, 9)]);
        let acked = column(&[(0, 4), (1, 3), (2, 9)]);
        let (inputs, reserved) = ([&source], Column::default());
        let mut changes = plan(&inputs, &reserved, &acked, Rules::default(), false);
        assert_eq!(changes.len(), 1, "only SKU 1 differs");
        let doubt: BTreeSet<SkuId> = [1, 2, 5].into();
        push_in_doubt(
            &inputs,
            &reserved,
            &acked,
            Rules::default(),
            &doubt,
            &mut changes,
        );
        let planned: Vec<(SkuId, Option<i64>, i64)> =
            changes.iter().map(|c| (c.sku, c.old, c.new)).collect();
        // 2 is pushed again at its figure; 1 is planned once; 5 no input or target ever knew.
        assert_eq!(planned, vec![(2, Some(9), 9), (1, Some(3), 7)]);
    }

    fn column(pairs: &[(SkuId, i64)]) -> Column {
        let mut c = Column::default();
        for &(id, q) in pairs {
            c.set(id, q);
        }
        c
    }

    #[test]
    fn the_desired_quantity_sums_inputs_then_applies_safety_stock_floor_and_cap() {
        let warehouse = column(&[(0, 10), (1, 1), (2, 300)]);
        let dropship = column(&[(0, 5), (2, 400)]);
        let inputs = [&warehouse, &dropship];
        let rules = Rules {
            safety_stock: 2,
            max_quantity: Some(500),
        };
        assert_eq!(desired(&inputs, &Column::default(), 0, rules), Some(13));
        assert_eq!(
            desired(&inputs, &Column::default(), 1, rules),
            Some(0),
            "1 - 2 is floored at 0"
        );
        assert_eq!(
            desired(&inputs, &Column::default(), 2, rules),
            Some(500),
            "698 is capped"
        );
        assert_eq!(desired(&inputs, &Column::default(), 3, rules), None);
    }

    #[test]
    fn an_explanation_names_every_input_and_agrees_with_the_desired_quantity() {
        let warehouse = column(&[(0, 10), (1, 1), (2, 300)]);
        let dropship = column(&[(0, 5), (2, 400), (4, 0)]);
        let named = [("warehouse", &warehouse), ("dropship", &dropship)];
        let rules = Rules {
            safety_stock: 2,
            max_quantity: Some(500),
        };

        let explained: Vec<Explanation> = (0..6)
            .map(|sku| explain(&named, &Column::default(), sku, rules))
            .collect();

        assert_eq!(
            explained[1],
            Explanation {
                inputs: vec![("warehouse".into(), Some(1)), ("dropship".into(), None)],
                reserved: 0,
                rules,
                desired: Some(0),
            },
            "an input that never reported the SKU is told apart from one that reports 0"
        );
        assert_eq!(
            explained[2].desired,
            Some(500),
            "the cap shows in the result"
        );
        for (sku, explanation) in explained.iter().enumerate() {
            assert_eq!(
                explanation.desired,
                desired(
                    &[&warehouse, &dropship],
                    &Column::default(),
                    sku as SkuId,
                    rules
                ),
                "SKU {sku}"
            );
        }
        assert_eq!(
            explained[3].inputs,
            vec![("warehouse".into(), None), ("dropship".into(), None)]
        );
        assert_eq!(explained[3].desired, None);
    }

    #[test]
    fn only_differences_are_planned_and_creates_come_last() {
        let source = column(&[(0, 5), (1, 7), (2, 9), (3, 0)]);
        let acked = column(&[(0, 5), (1, 6), (4, 3)]);
        let changes = plan(
            &[&source],
            &Column::default(),
            &acked,
            Rules::default(),
            false,
        );
        assert_eq!(
            changes,
            vec![
                Change {
                    sku: 1,
                    old: Some(6),
                    new: 7
                },
                Change {
                    sku: 4,
                    old: Some(3),
                    new: 0
                },
                Change {
                    sku: 2,
                    old: None,
                    new: 9
                },
                Change {
                    sku: 3,
                    old: None,
                    new: 0
                },
            ]
        );
    }

    #[test]
    fn what_open_orders_reserve_is_subtracted_before_the_safety_stock_and_cap() {
        let source = column(&[(0, 10), (1, 2)]);
        let reserved = column(&[(0, 3), (1, 5)]);
        let rules = Rules {
            safety_stock: 1,
            max_quantity: Some(100),
        };
        assert_eq!(
            desired(&[&source], &reserved, 0, rules),
            Some(6),
            "10 - 3 - 1"
        );
        assert_eq!(
            desired(&[&source], &reserved, 1, rules),
            Some(0),
            "never below 0"
        );
        let why = explain(&[("warehouse", &source)], &reserved, 0, rules);
        assert_eq!((why.reserved, why.desired), (3, Some(6)));
    }

    #[test]
    fn a_full_plan_repeats_every_sku() {
        let source = column(&[(0, 5), (1, 7)]);
        let acked = column(&[(0, 5), (1, 7)]);
        assert!(
            plan(
                &[&source],
                &Column::default(),
                &acked,
                Rules::default(),
                false
            )
            .is_empty()
        );
        assert_eq!(
            plan(
                &[&source],
                &Column::default(),
                &acked,
                Rules::default(),
                true
            )
            .len(),
            2
        );
    }
}
