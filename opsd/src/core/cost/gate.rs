//! The budget gate's decision, pure: whether the newest recorded cost check lets a rollout start,
//! given when that check was made, the time now and how old a check may be
//! (`costs.gate_max_age`). The caller reads the check from the store and the clock.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::core::duration::format_duration;

/// The newest recorded cost check, as the gate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewestCostCheck {
    /// When the check ran.
    pub checked_at: DateTime<Utc>,
    /// The day it evaluated (`YYYY-MM-DD`).
    pub today: String,
    /// Whether some budget's forecast threshold was crossed.
    pub forecast_over_budget: bool,
    /// The budgets over their forecast threshold, like `budget monthly forecast $1350.00 of
    /// $1000.00`; may be empty even when `forecast_over_budget` (an unreadable report).
    pub over_budget: Vec<String>,
}

/// Why the gate is closed, and what the operator can do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetGateClosed {
    /// What the gate saw, for the refusal and the audit log.
    pub reason: String,
    /// What opens it again (besides an audited override).
    pub what_to_do: String,
    /// Whether the newest check is older than the maximum age.
    pub stale: bool,
}

/// What the gate says: `None` is open, `Some` closed with the reason.
///
/// - No check at all: open. A fresh installation has no cost data until its first check, and
///   that must not block its first deploy; `opsd up` runs a check shortly after it starts, so the
///   gate is blind only until then.
/// - A check no older than `max_age`: closed while it found a forecast over budget, else open.
/// - An older check: closed either way. If it found a forecast over budget that is still the
///   last word; if it found none, a gate that cannot see must not open on old news.
///
/// A check stamped after `now` (a clock step) counts as fresh.
pub fn budget_gate(
    newest: Option<&NewestCostCheck>,
    now: DateTime<Utc>,
    max_age: Duration,
) -> Option<BudgetGateClosed> {
    let check = newest?;
    let stale = match chrono::Duration::from_std(max_age) {
        Ok(max_age) => now.signed_duration_since(check.checked_at) > max_age,
        // Longer than chrono can count: nothing is that old.
        Err(_) => false,
    };
    let checked_at = check.checked_at.format("%Y-%m-%d %H:%M:%S UTC");
    let max_age = format_duration(max_age);
    let found = if check.over_budget.is_empty() {
        "a forecast over budget".to_string()
    } else {
        check.over_budget.join(", ")
    };
    match (check.forecast_over_budget, stale) {
        (false, false) => None,
        (true, false) => Some(BudgetGateClosed {
            reason: format!(
                "the cost check of {} (at {checked_at}) found {found}",
                check.today
            ),
            what_to_do: "lower the spend or raise the budget and run `opsd cost check`".into(),
            stale: false,
        }),
        (true, true) => Some(BudgetGateClosed {
            reason: format!(
                "the newest cost check (of {}, at {checked_at}) found {found}, and it is stale: \
                 older than gate_max_age {max_age}",
                check.today
            ),
            what_to_do: "run `opsd cost check` for a fresh answer (and lower the spend or raise \
                         the budget if it is still over)"
                .into(),
            stale: true,
        }),
        (false, true) => Some(BudgetGateClosed {
            reason: format!(
                "the newest cost check is from {checked_at}, older than gate_max_age {max_age}"
            ),
            what_to_do: "run `opsd cost check` (is `opsd up` running its scheduled checks?)".into(),
            stale: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn check(checked_at: &str, forecast_over_budget: bool) -> NewestCostCheck {
        NewestCostCheck {
            checked_at: at(checked_at),
            today: "2026-06-10".into(),
            forecast_over_budget,
            over_budget: if forecast_over_budget {
                vec!["budget monthly forecast $1350.00 of $1000.00".into()]
            } else {
                Vec::new()
            },
        }
    }

    const THREE_HOURS: Duration = Duration::from_secs(3 * 3600);

    #[test]
    fn no_check_yet_leaves_the_gate_open() {
        assert_eq!(
            budget_gate(None, at("2026-06-10T12:00:00Z"), THREE_HOURS),
            None
        );
    }

    #[test]
    fn a_fresh_check_within_budget_opens_the_gate() {
        let within = check("2026-06-10T10:00:00Z", false);
        assert_eq!(
            budget_gate(Some(&within), at("2026-06-10T12:00:00Z"), THREE_HOURS),
            None
        );
        // Exactly max_age old is still fresh.
        assert_eq!(
            budget_gate(Some(&within), at("2026-06-10T13:00:00Z"), THREE_HOURS),
            None
        );
        // A check from the future (a clock step) is not stale.
        assert_eq!(
            budget_gate(Some(&within), at("2026-06-10T09:00:00Z"), THREE_HOURS),
            None
        );
    }

    #[test]
    fn a_fresh_check_over_budget_closes_the_gate() {
        let over = check("2026-06-10T10:00:00Z", true);
        let closed = budget_gate(Some(&over), at("2026-06-10T12:00:00Z"), THREE_HOURS).unwrap();
        assert!(!closed.stale);
        assert_eq!(
            closed.reason,
            "the cost check of 2026-06-10 (at 2026-06-10 10:00:00 UTC) found budget monthly \
             forecast $1350.00 of $1000.00"
        );
        assert!(closed.what_to_do.contains("opsd cost check"));
    }

    #[test]
    fn a_stale_check_over_budget_keeps_the_gate_closed_and_says_it_is_stale() {
        let over = check("2026-06-10T10:00:00Z", true);
        let closed = budget_gate(Some(&over), at("2026-06-10T13:00:01Z"), THREE_HOURS).unwrap();
        assert!(closed.stale);
        assert!(closed.reason.contains("stale"), "{}", closed.reason);
        assert!(
            closed.reason.contains("at 2026-06-10 10:00:00 UTC"),
            "{}",
            closed.reason
        );
        assert!(
            closed.reason.contains("budget monthly forecast $1350.00"),
            "{}",
            closed.reason
        );
        assert!(
            closed.reason.contains("gate_max_age 3h"),
            "{}",
            closed.reason
        );
        assert!(closed.what_to_do.contains("run `opsd cost check`"));
    }

    #[test]
    fn a_stale_check_within_budget_closes_the_gate_too() {
        let within = check("2026-06-09T10:00:00Z", false);
        let closed = budget_gate(Some(&within), at("2026-06-10T12:00:00Z"), THREE_HOURS).unwrap();
        assert!(closed.stale);
        assert_eq!(
            closed.reason,
            "the newest cost check is from 2026-06-09 10:00:00 UTC, older than gate_max_age 3h"
        );
        assert!(closed.what_to_do.starts_with("run `opsd cost check`"));
    }

    #[test]
    fn an_unreadable_report_still_names_a_forecast_over_budget() {
        let mut over = check("2026-06-10T10:00:00Z", true);
        over.over_budget.clear();
        let closed = budget_gate(Some(&over), at("2026-06-10T11:00:00Z"), THREE_HOURS).unwrap();
        assert!(
            closed.reason.ends_with("found a forecast over budget"),
            "{}",
            closed.reason
        );
    }

    #[test]
    fn a_max_age_too_long_to_count_never_goes_stale() {
        let within = check("2000-01-01T00:00:00Z", false);
        assert_eq!(
            budget_gate(Some(&within), at("2026-06-10T12:00:00Z"), Duration::MAX),
            None
        );
    }
}
