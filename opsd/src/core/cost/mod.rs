//! Cost budgets, pure: daily cost rows, monthly budgets and their thresholds, opsd's month-end
//! forecast and its back-test, spend anomalies, the local price model, and the "notify on change
//! only" bookkeeping. invariant: nothing here awaits, reads a clock, or does I/O; `today` is always
//! a parameter, days are UTC calendar days (as Cost Explorer reports them) and amounts are US
//! dollars as `f64`.
//!
//! Default values (the `R-` IDs are listed in docs/requirements.md): a monthly budget warns at
//! 80 % and is critical at 100 % of actual spend, with an alert when the forecast passes 120 %
//! ([`budget::Budget::seed_default`], R-COST-2 to R-COST-4); a day's spend is an anomaly when it
//! jumps more than 20 % and more than $50 above what was expected ([`anomaly::AnomalyRules::seed`],
//! R-COST-5); AI spend above 150 % of its trailing average is an anomaly too (R-COST-6).
//!
//! Module map:
//! - [`budget`]: [`budget::Budget`], [`budget::evaluate_budget`] and the state it yields.
//! - [`forecast`]: [`forecast::forecast_month_end`], opsd's own month-end forecast.
//! - [`backtest`]: [`backtest::backtest`], how good that forecast was on a history.
//! - [`anomaly`]: [`anomaly::detect_anomalies`] and [`anomaly::link_rollouts`].
//! - [`pricing`]: [`pricing::PriceTable`], [`pricing::price_usage`] for the local platform.
//! - [`release_cost`]: [`release_cost::compare_cost_per_request`], canary against baseline.
//! - [`state`]: [`state::CostState`], which notifications are new.
//! - [`gate`]: [`gate::budget_gate`], whether the newest cost check lets a rollout start.
//! - [`synthetic`]: seeded synthetic cost series for the back-test and its benchmark.

pub mod anomaly;
pub mod backtest;
pub mod budget;
pub mod forecast;
pub mod gate;
pub mod pricing;
pub mod release_cost;
pub mod state;
pub mod synthetic;

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

pub use anomaly::{detect_anomalies, link_rollouts, Anomaly, AnomalyRule, AnomalyRules};
pub use backtest::{backtest, BacktestOptions, BacktestReport, BucketReport};
pub use budget::{
    evaluate_budget, Budget, BudgetPeriod, BudgetScope, BudgetState, BudgetStatus,
    CrossedThreshold, SkippedThreshold, Threshold, ThresholdBasis, ThresholdSeverity,
};
pub use forecast::{forecast_month_end, Forecast, ForecastQuality};
pub use gate::{budget_gate, BudgetGateClosed, NewestCostCheck};
pub use pricing::{
    as_daily_costs, cost_per_thousand_requests, price_usage, AiPrices, PriceTable, ServiceCost,
    Usage,
};
pub use release_cost::{compare_cost_per_request, CostPerRequestComparison, CostPerRequestPolicy};
pub use state::{AnomalyKey, BudgetChange, CostNotification, CostState};

/// The name of the service that holds AI (language model) spend unless configured otherwise.
pub const DEFAULT_AI_SERVICE: &str = "AI";

/// What one service cost on one day. Cost sources give one row per day per service (or per tag
/// value, see the platform's `CostGrouping`); a day without any row is a day without data, not a
/// day that cost nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyCost {
    /// The UTC calendar day.
    pub day: NaiveDate,
    /// Like `AWS Lambda`, `Amazon CloudFront` or [`DEFAULT_AI_SERVICE`]; a tag value when the rows
    /// are grouped by a tag.
    pub service: String,
    /// May be negative on a day with credits or refunds; never NaN or infinite.
    pub amount_usd: f64,
}

/// Total spend per day; a day missing from the map has no data.
pub type DailyTotals = BTreeMap<NaiveDate, f64>;

/// Bad input to the cost core. Each message names the value that is wrong and what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CostError {
    #[error("the cost of {service} on {day} is {amount_usd}, which is not a finite number of US dollars; fix or drop that row")]
    InvalidAmount {
        day: NaiveDate,
        service: String,
        amount_usd: f64,
    },
    #[error("budget {budget:?}: {reason}")]
    InvalidBudget { budget: String, reason: String },
    #[error("anomaly rules: {field} {reason}")]
    InvalidAnomalyRules { field: &'static str, reason: String },
    #[error("usage: {field} {reason}")]
    InvalidUsage { field: &'static str, reason: String },
    #[error("price table: {field} {reason}")]
    InvalidPrice { field: &'static str, reason: String },
    #[error("{day} is too close to the end of the calendar chrono supports to compute its month")]
    DayOutOfRange { day: NaiveDate },
}

/// Sums the rows per day (all services together). Rows with a non-finite amount are an error
/// naming the day and the service.
pub fn daily_totals(rows: &[DailyCost]) -> Result<DailyTotals, CostError> {
    let mut totals = DailyTotals::new();
    for row in rows {
        check_amount(row)?;
        *totals.entry(row.day).or_insert(0.0) += row.amount_usd;
    }
    Ok(totals)
}

/// Sums the rows of one service per day.
pub fn daily_totals_of(rows: &[DailyCost], service: &str) -> Result<DailyTotals, CostError> {
    let mut totals = DailyTotals::new();
    for row in rows.iter().filter(|row| row.service == service) {
        check_amount(row)?;
        *totals.entry(row.day).or_insert(0.0) += row.amount_usd;
    }
    Ok(totals)
}

/// Per-service daily totals, services in name order.
pub fn daily_totals_by_service(
    rows: &[DailyCost],
) -> Result<BTreeMap<String, DailyTotals>, CostError> {
    let mut by_service: BTreeMap<String, DailyTotals> = BTreeMap::new();
    for row in rows {
        check_amount(row)?;
        *by_service
            .entry(row.service.clone())
            .or_default()
            .entry(row.day)
            .or_insert(0.0) += row.amount_usd;
    }
    Ok(by_service)
}

/// Checks that every total is a finite number (for callers that build [`DailyTotals`] by hand).
pub fn check_totals(totals: &DailyTotals) -> Result<(), CostError> {
    for (day, amount_usd) in totals {
        if !amount_usd.is_finite() {
            return Err(CostError::InvalidAmount {
                day: *day,
                service: "all services".into(),
                amount_usd: *amount_usd,
            });
        }
    }
    Ok(())
}

fn check_amount(row: &DailyCost) -> Result<(), CostError> {
    if row.amount_usd.is_finite() {
        Ok(())
    } else {
        Err(CostError::InvalidAmount {
            day: row.day,
            service: row.service.clone(),
            amount_usd: row.amount_usd,
        })
    }
}

/// The first and the last day of the calendar month containing `day` (leap years included).
pub fn month_bounds(day: NaiveDate) -> Result<(NaiveDate, NaiveDate), CostError> {
    let first = day.with_day(1).ok_or(CostError::DayOutOfRange { day })?;
    let last = first
        .checked_add_months(Months::new(1))
        .and_then(|next_first| next_first.pred_opt())
        .ok_or(CostError::DayOutOfRange { day })?;
    Ok((first, last))
}

/// The median of the values (the mean of the two middle ones for an even count); `None` when
/// empty. The values must be finite.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        Some(sorted[middle])
    } else {
        Some((sorted[middle - 1] + sorted[middle]) / 2.0)
    }
}

/// The arithmetic mean; `None` when empty.
pub(crate) fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        None
    } else {
        Some(values.iter().sum::<f64>() / values.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn row(text: &str, service: &str, amount_usd: f64) -> DailyCost {
        DailyCost {
            day: day(text),
            service: service.into(),
            amount_usd,
        }
    }

    #[test]
    fn totals_add_services_per_day_and_keep_missing_days_missing() {
        let rows = vec![
            row("2025-01-01", "AWS Lambda", 1.5),
            row("2025-01-01", "AI", 2.0),
            row("2025-01-03", "AWS Lambda", 4.0),
        ];
        let totals = daily_totals(&rows).unwrap();
        assert_eq!(totals.len(), 2);
        assert_eq!(totals[&day("2025-01-01")], 3.5);
        assert!(!totals.contains_key(&day("2025-01-02")));
        let lambda = daily_totals_of(&rows, "AWS Lambda").unwrap();
        assert_eq!(lambda[&day("2025-01-03")], 4.0);
        let by_service = daily_totals_by_service(&rows).unwrap();
        assert_eq!(
            by_service.keys().collect::<Vec<_>>(),
            vec!["AI", "AWS Lambda"]
        );
    }

    #[test]
    fn non_finite_amounts_are_errors_naming_the_row() {
        let error = daily_totals(&[row("2025-01-02", "AI", f64::NAN)]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("AI"), "{message}");
        assert!(message.contains("2025-01-02"), "{message}");
    }

    #[test]
    fn month_bounds_follow_the_calendar() {
        assert_eq!(
            month_bounds(day("2025-01-31")).unwrap(),
            (day("2025-01-01"), day("2025-01-31"))
        );
        assert_eq!(
            month_bounds(day("2028-02-10")).unwrap(),
            (day("2028-02-01"), day("2028-02-29"))
        );
        // 2100 is divisible by 100 and not by 400: not a leap year.
        assert_eq!(
            month_bounds(day("2100-02-10")).unwrap().1,
            day("2100-02-28")
        );
        assert_eq!(
            month_bounds(day("2024-12-31")).unwrap(),
            (day("2024-12-01"), day("2024-12-31"))
        );
        assert!(month_bounds(NaiveDate::MAX).is_err());
    }

    #[test]
    fn medians_and_means() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(mean(&[1.0, 2.0]), Some(1.5));
    }
}
