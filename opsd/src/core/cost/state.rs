//! "Notify on change only" for costs: [`CostState`] remembers each budget's last state and the
//! anomalies already notified, and [`CostState::advance`] says which notifications a new
//! evaluation adds. Pure; the caller persists the returned state.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use super::anomaly::{Anomaly, AnomalyRule};
use super::budget::{BudgetState, BudgetStatus};
use crate::core::severity::Severity;

/// How long notified anomaly keys are remembered, in days before `today`. Anomalies are judged
/// on recent days only, so an older key cannot come back.
pub const ANOMALY_MEMORY_DAYS: u64 = 45;

/// What identifies an anomaly for de-duplication: the same service, day and rule is the same
/// anomaly, whatever its amounts on a later read (Cost Explorer revises recent days).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AnomalyKey {
    pub day: NaiveDate,
    pub service: String,
    pub rule: AnomalyRule,
}

impl AnomalyKey {
    pub fn of(anomaly: &Anomaly) -> AnomalyKey {
        AnomalyKey {
            day: anomaly.day,
            service: anomaly.service.clone(),
            rule: anomaly.rule,
        }
    }
}

/// A budget's state as last notified, and the month it was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedBudget {
    pub state: BudgetState,
    pub period_start: NaiveDate,
}

/// What has been notified so far.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CostState {
    /// Per budget name. Budgets missing from a later evaluation are kept.
    pub budgets: BTreeMap<String, RememberedBudget>,
    pub notified_anomalies: BTreeSet<AnomalyKey>,
}

/// A budget whose state changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetChange {
    pub budget: String,
    /// The state before; `Ok` when the budget is new or its month just began.
    pub from: BudgetState,
    pub to: BudgetState,
    /// Whether the state got worse.
    pub escalated: bool,
    /// The evaluation behind the change, with its evidence and the budget's `notify` targets
    /// (boxed: it is large).
    pub status: Box<BudgetStatus>,
}

/// One notification to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CostNotification {
    Budget(BudgetChange),
    Anomaly(Anomaly),
}

impl CostNotification {
    /// How the notification is routed: the new state of an escalated budget, `info` for a
    /// recovery, `warning` for an anomaly.
    pub fn severity(&self) -> Severity {
        match self {
            CostNotification::Budget(change) if change.escalated => match change.to {
                BudgetState::Critical => Severity::Critical,
                BudgetState::Warning => Severity::Warning,
                BudgetState::Ok => Severity::Info,
            },
            CostNotification::Budget(_) => Severity::Info,
            CostNotification::Anomaly(_) => Severity::Warning,
        }
    }

    /// The targets a budget change goes to instead of the severity routes (the budget's
    /// `notify`); `None` for a budget without `notify` and for anomalies, which are routed by
    /// severity.
    pub fn explicit_targets(&self) -> Option<&[String]> {
        match self {
            CostNotification::Budget(change) if !change.status.notify.is_empty() => {
                Some(&change.status.notify)
            }
            _ => None,
        }
    }

    /// A one-line summary, like `budget monthly: ok -> critical (forecast 120%, actual 100%)`.
    pub fn summary(&self) -> String {
        match self {
            CostNotification::Budget(change) => {
                let crossed: Vec<String> = change
                    .status
                    .crossed
                    .iter()
                    .map(|crossing| crossing.threshold.label())
                    .collect();
                let reasons = if crossed.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", crossed.join(", "))
                };
                format!(
                    "budget {}: {} -> {}{reasons}; ${:.2} spent of ${:.2}, ${:.2} forecast",
                    change.budget,
                    state_name(change.from),
                    state_name(change.to),
                    change.status.month_to_date_usd,
                    change.status.budget_usd,
                    change.status.forecast.point_usd
                )
            }
            CostNotification::Anomaly(anomaly) => format!("cost anomaly: {}", anomaly.summary()),
        }
    }
}

fn state_name(state: BudgetState) -> &'static str {
    match state {
        BudgetState::Ok => "ok",
        BudgetState::Warning => "warning",
        BudgetState::Critical => "critical",
    }
}

impl CostState {
    /// The notifications that `statuses` and `anomalies` add to what was already notified, and
    /// the state to remember next.
    ///
    /// A budget is notified when its state differs from the last one of the same month (both
    /// escalations and recoveries). A new month starts from `Ok`: a budget that ended last month
    /// critical and starts this one ok is not notified, one that is still over a threshold is.
    /// An anomaly is notified once per [`AnomalyKey`]; keys older than
    /// [`ANOMALY_MEMORY_DAYS`] before `today` are forgotten.
    pub fn advance(
        &self,
        statuses: &[BudgetStatus],
        anomalies: &[Anomaly],
        today: NaiveDate,
    ) -> (Vec<CostNotification>, CostState) {
        let mut next = self.clone();
        let mut notifications = Vec::new();
        for status in statuses {
            let from = match self.budgets.get(&status.budget) {
                Some(remembered) if remembered.period_start == status.period_start => {
                    remembered.state
                }
                _ => BudgetState::Ok,
            };
            if from != status.state {
                notifications.push(CostNotification::Budget(BudgetChange {
                    budget: status.budget.clone(),
                    from,
                    to: status.state,
                    escalated: status.state > from,
                    status: Box::new(status.clone()),
                }));
            }
            next.budgets.insert(
                status.budget.clone(),
                RememberedBudget {
                    state: status.state,
                    period_start: status.period_start,
                },
            );
        }
        for anomaly in anomalies {
            if next.notified_anomalies.insert(AnomalyKey::of(anomaly)) {
                notifications.push(CostNotification::Anomaly(anomaly.clone()));
            }
        }
        let oldest_remembered = today
            .checked_sub_days(Days::new(ANOMALY_MEMORY_DAYS))
            .unwrap_or(NaiveDate::MIN);
        next.notified_anomalies
            .retain(|key| key.day >= oldest_remembered);
        (notifications, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cost::anomaly::{detect_anomalies, AnomalyRules};
    use crate::core::cost::budget::{evaluate_budget, Budget};
    use crate::core::cost::DailyCost;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn rows(first: &str, last: &str, amount_usd: f64) -> Vec<DailyCost> {
        day(first)
            .iter_days()
            .take_while(|d| *d <= day(last))
            .map(|d| DailyCost {
                day: d,
                service: "AWS Lambda".into(),
                amount_usd,
            })
            .collect()
    }

    fn status(rows: &[DailyCost], today: &str) -> BudgetStatus {
        evaluate_budget(&Budget::seed_default(1_000.0), rows, day(today)).unwrap()
    }

    #[test]
    fn budgets_notify_on_state_changes_only() {
        // $35 a day: ok on June 10th, a warning from the 23rd ($805), critical from the 29th
        // ($1,015).
        let history = rows("2025-05-01", "2025-06-30", 35.0);
        let state = CostState::default();
        // 35 x 30 = 1,050: forecast 105 %, no forecast alert.
        let (notified, state) =
            state.advance(&[status(&history, "2025-06-10")], &[], day("2025-06-10"));
        assert!(notified.is_empty(), "{notified:?}");
        let (notified, state) =
            state.advance(&[status(&history, "2025-06-23")], &[], day("2025-06-23"));
        assert_eq!(notified.len(), 1);
        assert_eq!(notified[0].severity(), Severity::Warning);
        let (notified, state) =
            state.advance(&[status(&history, "2025-06-24")], &[], day("2025-06-24"));
        assert!(notified.is_empty(), "still a warning: {notified:?}");
        let (notified, state) =
            state.advance(&[status(&history, "2025-06-29")], &[], day("2025-06-29"));
        assert_eq!(notified.len(), 1);
        let CostNotification::Budget(change) = &notified[0] else {
            panic!("a budget change: {notified:?}");
        };
        assert_eq!(
            (change.from, change.to),
            (BudgetState::Warning, BudgetState::Critical)
        );
        assert!(change.escalated);
        assert_eq!(notified[0].severity(), Severity::Critical);
        assert!(
            notified[0].summary().contains("warning -> critical"),
            "{}",
            notified[0].summary()
        );
        // A new month starts at ok: nothing to say.
        let (notified, state) =
            state.advance(&[status(&history, "2025-07-01")], &[], day("2025-07-01"));
        assert!(notified.is_empty(), "{notified:?}");
        assert_eq!(state.budgets["monthly"].state, BudgetState::Ok);
    }

    #[test]
    fn a_recovery_within_the_month_is_notified_as_info() {
        let previous = CostState {
            budgets: BTreeMap::from([(
                "monthly".to_string(),
                RememberedBudget {
                    state: BudgetState::Critical,
                    period_start: day("2025-06-01"),
                },
            )]),
            notified_anomalies: BTreeSet::new(),
        };
        let (notified, _) = previous.advance(
            &[status(
                &rows("2025-05-01", "2025-06-10", 10.0),
                "2025-06-10",
            )],
            &[],
            day("2025-06-10"),
        );
        assert_eq!(notified.len(), 1);
        assert_eq!(notified[0].severity(), Severity::Info);
    }

    #[test]
    fn each_anomaly_is_notified_once() {
        let mut history = rows("2025-05-01", "2025-06-10", 100.0);
        history.last_mut().unwrap().amount_usd = 200.0;
        let anomalies =
            detect_anomalies(&history, day("2025-06-10"), &AnomalyRules::seed()).unwrap();
        assert_eq!(anomalies.len(), 2);
        let (notified, state) = CostState::default().advance(&[], &anomalies, day("2025-06-10"));
        assert_eq!(notified.len(), 2);
        // Read again with revised amounts: the same keys, nothing new.
        let mut revised = anomalies.clone();
        revised[0].actual_usd = 210.0;
        let (notified, state) = state.advance(&[], &revised, day("2025-06-11"));
        assert!(notified.is_empty());
        assert_eq!(state.notified_anomalies.len(), 2);
        // Long after, the keys are forgotten.
        let (_, state) = state.advance(&[], &[], day("2025-08-30"));
        assert!(state.notified_anomalies.is_empty());
    }
}
