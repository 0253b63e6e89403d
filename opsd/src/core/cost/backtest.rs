//! The forecast's back-test: for every day of a history, forecast that day's month end from the
//! data up to that day only, and compare with the month's real total. Reports the mean absolute
//! percentage error overall and by day-of-month bucket, the bias, and how often the interval held
//! the truth.

use serde::Serialize;

use chrono::Datelike;

use super::forecast::{forecast_checked, METHOD};
use super::{check_totals, month_bounds, CostError, DailyTotals};

/// Day-of-month buckets the report splits the forecasts into: `(first day, last day, label)`.
pub const DAY_OF_MONTH_BUCKETS: [(u32, u32, &str); 4] = [
    (1, 7, "days 1-7"),
    (8, 14, "days 8-14"),
    (15, 21, "days 15-21"),
    (22, 31, "days 22-31"),
];

/// What the back-test includes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BacktestOptions {
    /// Forecasts issued with fewer observed days of history (the series' start up to the
    /// forecast day) are left out: they measure the cold start, not the method.
    pub min_history_days: usize,
}

impl Default for BacktestOptions {
    fn default() -> BacktestOptions {
        BacktestOptions {
            min_history_days: 14,
        }
    }
}

/// The figures of one group of forecasts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketReport {
    /// Like `days 1-7`, or `all`.
    pub label: String,
    pub forecasts: usize,
    /// Mean absolute percentage error of the point forecast; `None` without forecasts.
    pub mape_percent: Option<f64>,
    /// The worst absolute percentage error.
    pub max_ape_percent: Option<f64>,
    /// Mean signed percentage error: above 0 when the forecast ran high.
    pub bias_percent: Option<f64>,
    /// Share of the bounded forecasts whose interval held the month's true total, in percent.
    pub coverage_percent: Option<f64>,
    /// Forecasts without an upper bound (too little history), left out of the coverage.
    pub unbounded: usize,
}

/// The back-test of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    pub method: &'static str,
    /// Whole months in the series (its first to its last day covers them), each one's truth.
    pub months: usize,
    pub overall: BucketReport,
    pub buckets: Vec<BucketReport>,
    /// Forecast days left out by [`BacktestOptions::min_history_days`].
    pub skipped_warm_up: usize,
    /// Forecast days left out because their month's total was $0 or less (no percentage).
    pub skipped_zero_month: usize,
}

/// One forecast compared with the truth.
struct Outcome {
    day_of_month: u32,
    signed_percent: f64,
    covered: Option<bool>,
}

/// Back-tests [`super::forecast::forecast_month_end`] on `daily_totals`. Only months wholly inside
/// the series (from its first to its last day) are judged, against the sum of their observed days.
pub fn backtest(
    daily_totals: &DailyTotals,
    options: &BacktestOptions,
) -> Result<BacktestReport, CostError> {
    check_totals(daily_totals)?;
    let mut outcomes = Vec::new();
    let mut months = 0;
    let mut skipped_warm_up = 0;
    let mut skipped_zero_month = 0;
    if let (Some((&first_day, _)), Some((&last_day, _))) = (
        daily_totals.first_key_value(),
        daily_totals.last_key_value(),
    ) {
        let (first_month_start, first_month_end) = month_bounds(first_day)?;
        let mut month_start = if first_month_start < first_day {
            match first_month_end.succ_opt() {
                Some(next) => next,
                None => first_month_end,
            }
        } else {
            first_month_start
        };
        loop {
            let (_, month_end) = month_bounds(month_start)?;
            if month_end > last_day {
                break;
            }
            months += 1;
            let truth_usd: f64 = daily_totals
                .range(month_start..=month_end)
                .map(|(_, v)| v)
                .sum();
            for today in month_start.iter_days().take_while(|day| *day <= month_end) {
                let history = daily_totals.range(first_day..=today).count();
                if history < options.min_history_days {
                    skipped_warm_up += 1;
                    continue;
                }
                if truth_usd <= 0.0 {
                    skipped_zero_month += 1;
                    continue;
                }
                let forecast = forecast_checked(daily_totals, today)?;
                outcomes.push(Outcome {
                    day_of_month: today.day(),
                    signed_percent: (forecast.point_usd - truth_usd) / truth_usd * 100.0,
                    covered: forecast
                        .high_usd
                        .map(|high_usd| forecast.low_usd <= truth_usd && truth_usd <= high_usd),
                });
            }
            match month_end.succ_opt() {
                Some(next) => month_start = next,
                None => break,
            }
        }
    }
    let buckets = DAY_OF_MONTH_BUCKETS
        .iter()
        .map(|(first, last, label)| {
            summarize(
                label,
                outcomes
                    .iter()
                    .filter(|outcome| (*first..=*last).contains(&outcome.day_of_month)),
            )
        })
        .collect();
    Ok(BacktestReport {
        method: METHOD,
        months,
        overall: summarize("all", outcomes.iter()),
        buckets,
        skipped_warm_up,
        skipped_zero_month,
    })
}

fn summarize<'a>(label: &str, outcomes: impl Iterator<Item = &'a Outcome>) -> BucketReport {
    let outcomes: Vec<&Outcome> = outcomes.collect();
    let count = outcomes.len();
    let average = |values: Vec<f64>| {
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let absolute: Vec<f64> = outcomes
        .iter()
        .map(|outcome| outcome.signed_percent.abs())
        .collect();
    let max_ape_percent = absolute.iter().copied().reduce(f64::max);
    let bounded: Vec<bool> = outcomes
        .iter()
        .filter_map(|outcome| outcome.covered)
        .collect();
    BucketReport {
        label: label.to_string(),
        forecasts: count,
        mape_percent: average(absolute),
        max_ape_percent,
        bias_percent: average(
            outcomes
                .iter()
                .map(|outcome| outcome.signed_percent)
                .collect(),
        ),
        coverage_percent: (!bounded.is_empty()).then(|| {
            bounded.iter().filter(|covered| **covered).count() as f64 / bounded.len() as f64 * 100.0
        }),
        unbounded: count - bounded.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::cost::synthetic::{generate, Pattern};
    use chrono::NaiveDate;

    fn first_day() -> NaiveDate {
        "2024-01-01".parse().unwrap()
    }

    fn report(pattern: Pattern, seed: u64) -> BacktestReport {
        // Two years, a leap February included.
        let series = generate(pattern, first_day(), 731, seed);
        backtest(&series, &BacktestOptions::default()).unwrap()
    }

    fn mape(bucket: &BucketReport) -> f64 {
        bucket.mape_percent.unwrap()
    }

    #[test]
    fn the_error_is_bounded_and_shrinks_through_the_month() {
        for (pattern, overall_limit, first_week_limit) in [
            (Pattern::Flat, 2.0, 3.0),
            (Pattern::WeeklySeasonal, 2.0, 3.0),
            (Pattern::Trending, 3.0, 6.0),
            (Pattern::SpikyNoisy, 8.0, 14.0),
            (Pattern::RecordedLike, 5.0, 9.0),
        ] {
            let report = report(pattern, 42);
            assert_eq!(report.months, 24, "{}", pattern.name());
            assert!(
                mape(&report.overall) < overall_limit,
                "{}: {report:#?}",
                pattern.name()
            );
            assert!(
                mape(&report.buckets[0]) < first_week_limit,
                "{}: {report:#?}",
                pattern.name()
            );
            assert!(
                mape(&report.buckets[3]) < mape(&report.buckets[0]),
                "{}: the last week is closer than the first: {report:#?}",
                pattern.name()
            );
        }
    }

    #[test]
    fn the_interval_covers_the_truth_about_as_often_as_it_says() {
        for (pattern, minimum) in [
            (Pattern::Flat, 70.0),
            (Pattern::WeeklySeasonal, 65.0),
            (Pattern::SpikyNoisy, 70.0),
            (Pattern::RecordedLike, 70.0),
            // A steady trend is extrapolated, but its errors compound: coverage falls short.
            (Pattern::Trending, 50.0),
        ] {
            let report = report(pattern, 7);
            let coverage = report.overall.coverage_percent.unwrap();
            assert!(
                (minimum..=95.0).contains(&coverage),
                "{}: {coverage:.1} % covered: {report:#?}",
                pattern.name()
            );
            assert_eq!(report.overall.unbounded, 0);
        }
    }

    #[test]
    fn warm_up_and_partial_months_are_left_out() {
        // Starts mid-January: January is not a whole month, and its 17 days are history enough
        // for every February forecast.
        let series = generate(Pattern::Flat, "2024-01-15".parse().unwrap(), 60, 1);
        let report = backtest(&series, &BacktestOptions::default()).unwrap();
        assert_eq!(report.months, 1, "only February 2024 is whole");
        assert_eq!(report.overall.forecasts, 29);
        assert_eq!(report.skipped_warm_up, 0);
        let strict = backtest(
            &series,
            &BacktestOptions {
                min_history_days: 30,
            },
        )
        .unwrap();
        // History reaches 30 days on February 13: the 12 days before are warm-up.
        assert_eq!(strict.skipped_warm_up, 12);
        assert_eq!(strict.overall.forecasts, 17);
    }

    #[test]
    fn an_empty_series_reports_nothing() {
        let report = backtest(&DailyTotals::new(), &BacktestOptions::default()).unwrap();
        assert_eq!(report.months, 0);
        assert_eq!(report.overall.forecasts, 0);
        assert_eq!(report.overall.mape_percent, None);
    }
}
