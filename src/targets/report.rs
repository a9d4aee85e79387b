//! What one target's cycle did, as the cycle's report (`ops::report`) carries it: how it ended,
//! its counts, and a dry run's planned lines. Here, with the target that makes it, so the
//! target imports nothing above it.

use std::fmt;

use crate::plan::Explanation;

/// How one target's cycle ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetState {
    /// Every planned change was acknowledged (or, in a dry run, planned).
    InSync,
    /// The mass-zero guard held it: nothing was pushed.
    Held {
        /// SKUs the plan would have zeroed.
        zeroed: usize,
        /// SKUs positive at the target.
        positive: usize,
    },
    /// An input's fetch failed, so its quantities are unknown this cycle.
    Skipped {
        /// The failed inputs.
        sources: Vec<String>,
    },
    /// Some changes could not be pushed.
    Failed {
        /// The last error.
        error: String,
    },
    /// Shutdown came before every batch was pushed.
    Interrupted,
    /// An earlier cycle is still pushing to it (it re-plans from the newest snapshots as it goes).
    Busy,
}

impl TargetState {
    /// A word for logs and the database.
    pub fn word(&self) -> &'static str {
        match self {
            TargetState::InSync => "in_sync",
            TargetState::Held { .. } => "held",
            TargetState::Skipped { .. } => "skipped",
            TargetState::Failed { .. } => "failed",
            TargetState::Interrupted => "interrupted",
            TargetState::Busy => "busy",
        }
    }
}

/// How one target's cycle went.
#[derive(Debug, Clone)]
pub struct TargetReport {
    /// `[targets.NAME]`.
    pub name: String,
    /// How it ended.
    pub state: TargetState,
    /// Changes planned.
    pub planned: usize,
    /// SKUs pushed and acknowledged.
    pub pushed: usize,
    /// SKUs whose batch failed.
    pub failures: usize,
    /// Requests made, retries included.
    pub requests: u64,
    /// Retries.
    pub retries: u64,
}

impl TargetReport {
    /// `name`'s report before anything was planned, pushed or asked: it ended `state`.
    pub fn idle(name: &str, state: TargetState) -> TargetReport {
        TargetReport {
            name: name.to_owned(),
            state,
            planned: 0,
            pushed: 0,
            failures: 0,
            requests: 0,
            retries: 0,
        }
    }
}

/// One line of a dry run's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLine {
    /// The target.
    pub target: String,
    /// The SKU.
    pub sku: String,
    /// Acknowledged now, if ever.
    pub old: Option<i64>,
    /// What would be pushed.
    pub new: i64,
    /// Where `new` comes from: each input's quantity, the safety stock and the cap.
    pub why: Explanation,
}

impl PlanLine {
    /// The columns of [`PlanLine`]'s `Display`. The first four came first and stay first:
    /// scripts cut them by position.
    pub const HEADER: &'static str = "target\tsku\told\tnew\tinputs\tsafety_stock\tmax_quantity";
}

/// One tab-separated row under [`PlanLine::HEADER`]; `-` stands for "none": a SKU the target
/// never acknowledged, an input that never reported it, a target without a cap.
impl fmt::Display for PlanLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dash = |q: Option<i64>| q.map_or_else(|| "-".to_owned(), |q| q.to_string());
        let inputs: Vec<String> = self
            .why
            .inputs
            .iter()
            .map(|(name, q)| format!("{name}={}", dash(*q)))
            .collect();
        write!(
            f,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.target,
            self.sku,
            dash(self.old),
            self.new,
            inputs.join(","),
            self.why.rules.safety_stock,
            dash(self.why.rules.max_quantity)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Rules;

    #[test]
    fn a_plan_line_keeps_its_first_four_columns_and_explains_itself_after_them() {
        let line = PlanLine {
            target: "hardtofind".into(),
            sku: "EA-1003".into(),
            old: None,
            new: 3,
            why: Explanation {
                inputs: vec![("warehouse".into(), Some(4)), ("dropship".into(), None)],
                reserved: 0,
                rules: Rules {
                    safety_stock: 1,
                    max_quantity: None,
                },
                desired: Some(3),
            },
        };

        let row = line.to_string();

        assert_eq!(
            row,
            "hardtofind\tEA-1003\t-\t3\twarehouse=4,dropship=-\t1\t-"
        );
        assert_eq!(
            row.split('\t').count(),
            PlanLine::HEADER.split('\t').count(),
            "one value per column"
        );
        assert!(PlanLine::HEADER.starts_with("target\tsku\told\tnew\t"));
    }
}
