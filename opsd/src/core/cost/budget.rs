//! Monthly budgets: what a budget covers, its thresholds on actual and forecast spend, and
//! [`evaluate_budget`], which turns a day's cost history into a [`BudgetStatus`] with the evidence
//! of every threshold crossed.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::forecast::{forecast_checked, Forecast, ForecastQuality};
use super::{daily_totals, month_bounds, CostError, DailyCost, DailyTotals};
use crate::core::severity::Severity;

/// The period a budget's amount is for. Only calendar months (UTC) for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    Monthly,
}

/// Which spend a budget counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    /// Everything the account spends.
    Account,
    /// One service, named as the cost source names it (like `AWS Lambda`, or `AI`).
    Service(String),
    /// Resources carrying the tag `key` = `value` (rows grouped by that tag key).
    Tag { key: String, value: String },
}

impl BudgetScope {
    /// The tag key the rows must be grouped by for this scope, if it is a tag scope.
    pub fn tag_key(&self) -> Option<&str> {
        match self {
            BudgetScope::Tag { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The rows this scope counts. `rows` are grouped by service for [`BudgetScope::Account`] and
    /// [`BudgetScope::Service`], and by the scope's tag key for [`BudgetScope::Tag`] (then a row's
    /// `service` is the tag value).
    pub fn select(&self, rows: &[DailyCost]) -> Vec<DailyCost> {
        match self {
            BudgetScope::Account => rows.to_vec(),
            BudgetScope::Service(name) | BudgetScope::Tag { value: name, .. } => rows
                .iter()
                .filter(|row| &row.service == name)
                .cloned()
                .collect(),
        }
    }
}

/// What a threshold compares with the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdBasis {
    /// Month-to-date spend.
    Actual,
    /// The point forecast of the month's total.
    Forecast,
}

/// How urgent a crossed threshold is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdSeverity {
    Warning,
    Critical,
}

impl ThresholdSeverity {
    /// The shared severity notification routes use.
    pub fn as_severity(self) -> Severity {
        match self {
            ThresholdSeverity::Warning => Severity::Warning,
            ThresholdSeverity::Critical => Severity::Critical,
        }
    }
}

/// Crossed when the basis reaches `percent` of the budget's amount.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub basis: ThresholdBasis,
    /// Percent of the budget, like 80.0; above 0.
    pub percent: f64,
    pub severity: ThresholdSeverity,
}

impl Threshold {
    /// Like `actual 80%` or `forecast 120%`, for messages and notification keys.
    pub fn label(&self) -> String {
        let basis = match self.basis {
            ThresholdBasis::Actual => "actual",
            ThresholdBasis::Forecast => "forecast",
        };
        format!("{basis} {}%", self.percent)
    }
}

/// A spending limit per period over a scope, with its alert thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub name: String,
    /// The limit per period, in US dollars; above 0.
    pub amount_usd: f64,
    pub period: BudgetPeriod,
    pub scope: BudgetScope,
    pub thresholds: Vec<Threshold>,
    /// The notification targets (by name) this budget's state changes go to instead of the
    /// severity routes; empty routes them by severity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
}

impl Budget {
    /// The default account budget (R-COST-2 to R-COST-4 in docs/requirements.md): warning at 80 %
    /// of actual spend, critical at 100 % of actual spend, and an alert when the forecast passes
    /// 120 %.
    ///
    /// The forecast alert is **critical** (R-COST-4): it is the only alert that fires while there
    /// is still time to act: by the time actual spend reaches 100 % the money is spent. The 20 %
    /// margin above the budget is what keeps it from paging on forecast noise: a forecast at 120 %
    /// means an overspend by a fifth is the expected outcome unless someone acts, which is as
    /// urgent as having reached the budget. It is also what the rollout gate reads ("forecast
    /// spend over budget" holds a rollout, R-GATE-3). It is only evaluated when the forecast
    /// stands on some history (see [`evaluate_budget`]).
    pub fn seed_default(amount_usd: f64) -> Budget {
        Budget {
            name: "monthly".into(),
            amount_usd,
            period: BudgetPeriod::Monthly,
            scope: BudgetScope::Account,
            thresholds: vec![
                Threshold {
                    basis: ThresholdBasis::Actual,
                    percent: 80.0,
                    severity: ThresholdSeverity::Warning,
                },
                Threshold {
                    basis: ThresholdBasis::Actual,
                    percent: 100.0,
                    severity: ThresholdSeverity::Critical,
                },
                Threshold {
                    basis: ThresholdBasis::Forecast,
                    percent: 120.0,
                    severity: ThresholdSeverity::Critical,
                },
            ],
            notify: Vec::new(),
        }
    }

    /// Checks the amount and the thresholds; the error names the budget and the bad value.
    pub fn validate(&self) -> Result<(), CostError> {
        let invalid = |reason: String| CostError::InvalidBudget {
            budget: self.name.clone(),
            reason,
        };
        if self.name.trim().is_empty() {
            return Err(invalid("the name is empty; give the budget a name".into()));
        }
        if !(self.amount_usd.is_finite() && self.amount_usd > 0.0) {
            return Err(invalid(format!(
                "amount_usd is {}; it must be a positive number of US dollars",
                self.amount_usd
            )));
        }
        for threshold in &self.thresholds {
            if !(threshold.percent.is_finite() && threshold.percent > 0.0) {
                return Err(invalid(format!(
                    "a threshold's percent is {}; it must be a positive number like 80",
                    threshold.percent
                )));
            }
        }
        if let BudgetScope::Tag { key, .. } = &self.scope {
            if key.trim().is_empty() {
                return Err(invalid("the tag scope has an empty key".into()));
            }
        }
        Ok(())
    }
}

/// A budget's overall state: the most severe threshold crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetState {
    Ok,
    Warning,
    Critical,
}

impl From<ThresholdSeverity> for BudgetState {
    fn from(severity: ThresholdSeverity) -> BudgetState {
        match severity {
            ThresholdSeverity::Warning => BudgetState::Warning,
            ThresholdSeverity::Critical => BudgetState::Critical,
        }
    }
}

/// One threshold crossed, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossedThreshold {
    pub threshold: Threshold,
    /// `threshold.percent` of the budget, in dollars.
    pub threshold_usd: f64,
    /// The month-to-date (actual) or the point forecast (forecast).
    pub observed_usd: f64,
    /// `observed_usd` as a percent of the budget.
    pub observed_percent: f64,
}

/// A threshold that was not evaluated, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedThreshold {
    pub threshold: Threshold,
    pub reason: String,
}

/// A budget evaluated on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStatus {
    pub budget: String,
    pub today: NaiveDate,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub budget_usd: f64,
    pub month_to_date_usd: f64,
    /// Month-to-date as a percent of the budget.
    pub actual_percent: f64,
    pub forecast: Forecast,
    /// The point forecast as a percent of the budget.
    pub forecast_percent: f64,
    /// Every threshold crossed, most severe first.
    pub crossed: Vec<CrossedThreshold>,
    pub skipped: Vec<SkippedThreshold>,
    pub state: BudgetState,
    /// The budget's [`Budget::notify`] targets, carried to its state-change notifications.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
}

/// Evaluates `budget` on `today`: month-to-date spend of the month containing `today` (its days up
/// to and including `today`; later rows are ignored), the month-end forecast, every threshold
/// crossed (a threshold is crossed when its basis *reaches* its percent), and the overall state,
/// the most severe crossed. `series_in_scope` holds the rows the budget counts (see
/// [`BudgetScope::select`]) and may span earlier months: the forecast uses four weeks of history.
///
/// Forecast thresholds are skipped, with the reason, when there is no history at all in the
/// forecast's lookback ([`ForecastQuality::NoHistory`]): a forecast that is only the month-to-date
/// says nothing the actual thresholds do not.
pub fn evaluate_budget(
    budget: &Budget,
    series_in_scope: &[DailyCost],
    today: NaiveDate,
) -> Result<BudgetStatus, CostError> {
    budget.validate()?;
    let totals = daily_totals(series_in_scope)?;
    evaluate_totals(budget, &totals, today)
}

/// [`evaluate_budget`] on daily totals already checked to be finite.
pub(crate) fn evaluate_totals(
    budget: &Budget,
    totals: &DailyTotals,
    today: NaiveDate,
) -> Result<BudgetStatus, CostError> {
    let (period_start, period_end) = month_bounds(today)?;
    let forecast = forecast_checked(totals, today)?;
    let month_to_date_usd = forecast.month_to_date_usd;
    let percent_of_budget = |amount_usd: f64| amount_usd / budget.amount_usd * 100.0;
    let mut crossed = Vec::new();
    let mut skipped = Vec::new();
    for threshold in &budget.thresholds {
        let observed_usd = match threshold.basis {
            ThresholdBasis::Actual => month_to_date_usd,
            ThresholdBasis::Forecast if forecast.quality == ForecastQuality::NoHistory => {
                skipped.push(SkippedThreshold {
                    threshold: *threshold,
                    reason: "no cost data in the last 28 days, so there is no forecast beyond \
                             the month-to-date"
                        .into(),
                });
                continue;
            }
            ThresholdBasis::Forecast => forecast.point_usd,
        };
        let threshold_usd = budget.amount_usd * threshold.percent / 100.0;
        if observed_usd >= threshold_usd {
            crossed.push(CrossedThreshold {
                threshold: *threshold,
                threshold_usd,
                observed_usd,
                observed_percent: percent_of_budget(observed_usd),
            });
        }
    }
    crossed.sort_by(|a, b| {
        b.threshold
            .severity
            .cmp(&a.threshold.severity)
            .then(b.threshold.percent.total_cmp(&a.threshold.percent))
    });
    let state = crossed
        .iter()
        .map(|crossing| BudgetState::from(crossing.threshold.severity))
        .max()
        .unwrap_or(BudgetState::Ok);
    Ok(BudgetStatus {
        budget: budget.name.clone(),
        today,
        period_start,
        period_end,
        budget_usd: budget.amount_usd,
        month_to_date_usd,
        actual_percent: percent_of_budget(month_to_date_usd),
        forecast_percent: percent_of_budget(forecast.point_usd),
        forecast,
        crossed,
        skipped,
        state,
        notify: budget.notify.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// One row a day of `amount_usd` for `first..=last`.
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

    fn labels(status: &BudgetStatus) -> Vec<String> {
        status
            .crossed
            .iter()
            .map(|crossing| crossing.threshold.label())
            .collect()
    }

    #[test]
    fn the_seed_budget_is_ok_below_80_percent() {
        // $20 a day in a 30-day month: $200 by the 10th, $600 forecast.
        let status = evaluate_budget(
            &Budget::seed_default(1_000.0),
            &rows("2025-05-15", "2025-06-10", 20.0),
            day("2025-06-10"),
        )
        .unwrap();
        assert_eq!(status.state, BudgetState::Ok);
        assert_eq!(status.month_to_date_usd, 200.0);
        assert!((status.forecast.point_usd - 600.0).abs() < 1e-9);
        assert!(status.crossed.is_empty());
    }

    #[test]
    fn the_seed_budget_warns_at_80_percent_of_actual() {
        // June 1..19 cost $40 a day ($760), then $10 a day: $800 on June 23 (80 %). The recent
        // level is $10, so the forecast (about $870) stays far under 120 %.
        let mut history = rows("2025-06-01", "2025-06-19", 40.0);
        history.extend(rows("2025-06-20", "2025-06-23", 10.0));
        let status =
            evaluate_budget(&Budget::seed_default(1_000.0), &history, day("2025-06-23")).unwrap();
        assert!((status.month_to_date_usd - 800.0).abs() < 1e-9);
        assert_eq!(labels(&status), vec!["actual 80%"]);
        assert_eq!(status.state, BudgetState::Warning);
        let crossing = &status.crossed[0];
        assert_eq!(crossing.threshold_usd, 800.0);
        assert!((crossing.observed_percent - 80.0).abs() < 1e-9);
    }

    #[test]
    fn the_seed_budget_is_critical_at_100_percent_of_actual() {
        let status = evaluate_budget(
            &Budget::seed_default(1_000.0),
            &rows("2025-06-01", "2025-06-25", 40.0),
            day("2025-06-25"),
        )
        .unwrap();
        assert_eq!(status.month_to_date_usd, 1_000.0);
        assert_eq!(status.state, BudgetState::Critical);
        // 40 x 30 = 1,200: the forecast reaches 120 % as well.
        assert_eq!(
            labels(&status),
            vec!["forecast 120%", "actual 100%", "actual 80%"]
        );
    }

    #[test]
    fn a_forecast_past_120_percent_is_critical_before_the_money_is_spent() {
        // $45 a day: $450 by June 10 (45 %), forecast $1,350 (135 %).
        let status = evaluate_budget(
            &Budget::seed_default(1_000.0),
            &rows("2025-05-20", "2025-06-10", 45.0),
            day("2025-06-10"),
        )
        .unwrap();
        assert_eq!(labels(&status), vec!["forecast 120%"]);
        assert_eq!(status.state, BudgetState::Critical);
        assert!((status.forecast_percent - 135.0).abs() < 1e-9);
        assert!((status.actual_percent - 45.0).abs() < 1e-9);
    }

    #[test]
    fn the_month_boundary_resets_the_month_to_date() {
        // January cost $1,240; on February 1 only that day counts.
        let history = rows("2025-01-01", "2025-02-01", 40.0);
        let january =
            evaluate_budget(&Budget::seed_default(1_000.0), &history, day("2025-01-31")).unwrap();
        assert_eq!(january.month_to_date_usd, 1_240.0);
        assert_eq!(january.state, BudgetState::Critical);
        let february =
            evaluate_budget(&Budget::seed_default(1_000.0), &history, day("2025-02-01")).unwrap();
        assert_eq!(february.period_start, day("2025-02-01"));
        assert_eq!(february.period_end, day("2025-02-28"));
        assert_eq!(february.month_to_date_usd, 40.0);
        // 28 x 40 = 1,120: forecast 112 %, under the 120 % alert.
        assert!((february.forecast.point_usd - 1_120.0).abs() < 1e-9);
        assert_eq!(february.state, BudgetState::Ok);
    }

    #[test]
    fn a_leap_february_forecasts_29_days() {
        let status = evaluate_budget(
            &Budget::seed_default(1_000.0),
            &rows("2028-02-01", "2028-02-10", 10.0),
            day("2028-02-10"),
        )
        .unwrap();
        assert_eq!(status.period_end, day("2028-02-29"));
        assert!((status.forecast.point_usd - 290.0).abs() < 1e-9);
    }

    #[test]
    fn zero_history_is_ok_and_skips_the_forecast_threshold() {
        let status =
            evaluate_budget(&Budget::seed_default(1_000.0), &[], day("2025-06-10")).unwrap();
        assert_eq!(status.state, BudgetState::Ok);
        assert_eq!(status.month_to_date_usd, 0.0);
        assert_eq!(status.skipped.len(), 1);
        assert_eq!(status.skipped[0].threshold.basis, ThresholdBasis::Forecast);
    }

    #[test]
    fn scopes_select_their_rows() {
        let rows = vec![
            DailyCost {
                day: day("2025-06-01"),
                service: "AWS Lambda".into(),
                amount_usd: 1.0,
            },
            DailyCost {
                day: day("2025-06-01"),
                service: "AI".into(),
                amount_usd: 2.0,
            },
        ];
        assert_eq!(BudgetScope::Account.select(&rows).len(), 2);
        let ai = BudgetScope::Service("AI".into()).select(&rows);
        assert_eq!(ai.len(), 1);
        assert_eq!(ai[0].amount_usd, 2.0);
        let tag = BudgetScope::Tag {
            key: "Environment".into(),
            value: "production".into(),
        };
        assert_eq!(tag.tag_key(), Some("Environment"));
        assert!(tag.select(&rows).is_empty());
    }

    #[test]
    fn bad_budgets_and_rows_are_errors_naming_the_problem() {
        let mut budget = Budget::seed_default(0.0);
        let message = evaluate_budget(&budget, &[], day("2025-06-10"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("amount_usd is 0"), "{message}");
        budget.amount_usd = 1_000.0;
        budget.thresholds[0].percent = f64::NAN;
        assert!(evaluate_budget(&budget, &[], day("2025-06-10")).is_err());
        let bad_row = vec![DailyCost {
            day: day("2025-06-09"),
            service: "AI".into(),
            amount_usd: f64::NAN,
        }];
        let message = evaluate_budget(&Budget::seed_default(1_000.0), &bad_row, day("2025-06-10"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("AI on 2025-06-09"), "{message}");
    }
}
