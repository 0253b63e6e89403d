//! opsd's month-end spend forecast: month-to-date actual plus the expected spend of the days left,
//! from weekday factors times a recent robust level, with a prediction interval from the spread of
//! the recent residuals.
//!
//! # The method, step by step
//!
//! 1. **Lookback.** The [`LOOKBACK_DAYS`] (28) days ending with `today`, across the month boundary
//!    when needed, so the first days of a month still have four weeks of history. A day without data
//!    is left out (it is not a $0 day).
//! 2. **Weekday factors.** With at least [`MIN_DAYS_FOR_WEEKDAY_FACTORS`] (14) observed days, the
//!    factor of a weekday is the median of that weekday's observed days divided by the median of all
//!    observed days (a weekday seen fewer than twice keeps factor 1). With less history every factor
//!    is 1. Medians keep one spike from bending a whole weekday.
//! 3. **Level.** The median of the most recent [`LEVEL_DAYS`] (7) observed days, each divided by
//!    its weekday factor: what a day costs now, seasonality removed. Using only the last week lets
//!    the forecast follow a trend with about three days of lag; the median ignores a single spike.
//! 4. **Point forecast.** Month-to-date actual + the sum over the days still to come *and* the days
//!    of this month up to today that have no data yet (Cost Explorer can lag a day or two) of
//!    `level × factor(weekday)`.
//! 5. **Interval.** The residuals `actual − level × factor` of every observed day in the lookback
//!    give a root-mean-square daily error `σ` (in dollars, `n − 1` in the denominator because the
//!    level was fitted). For `k` days to add, the day-to-day noise adds up as `k σ²` (independent
//!    days, so the width grows with √k) and the error of the level itself, about `1.2533 σ / √n`
//!    for a median of `n` days, is shared by every remaining day, so it adds up linearly:
//!    `(Σ factors × 1.2533 σ / √n)²`. The interval is the point ± [`INTERVAL_Z`] (1.2816, an 80 %
//!    central interval under a normal approximation) times the square root of that sum, and its low
//!    end never goes below the month-to-date when the days left are expected to cost something.
//!
//! With no observed day in the lookback the forecast is just the month-to-date, flagged
//! [`ForecastQuality::NoHistory`], without an upper bound. With fewer than [`SPARSE_BELOW_DAYS`]
//! observed days it is flagged [`ForecastQuality::Sparse`]; with fewer than three there is no upper
//! bound either. `today` is taken as a complete day: a caller whose data for today is still partial
//! passes yesterday.

use chrono::{Datelike, Days, NaiveDate};
use serde::Serialize;

use super::{check_totals, median, month_bounds, CostError, DailyTotals};

/// The name of this method, as reported in [`Forecast::method`].
pub const METHOD: &str = "weekday factors x recent median level, 28-day lookback";

/// Days of history (ending with `today`) the forecast looks at.
pub const LOOKBACK_DAYS: u64 = 28;

/// Recent observed days whose median is the level.
pub const LEVEL_DAYS: usize = 7;

/// Observed days needed before weekday factors are estimated.
pub const MIN_DAYS_FOR_WEEKDAY_FACTORS: usize = 14;

/// Below this many observed days the forecast is flagged sparse.
pub const SPARSE_BELOW_DAYS: usize = 7;

/// Residuals needed to bound the forecast.
pub const MIN_DAYS_FOR_INTERVAL: usize = 3;

/// The normal quantile of the interval: 1.2816 gives an 80 % central interval.
pub const INTERVAL_Z: f64 = 1.2816;

/// The nominal coverage of the interval, in percent.
pub const INTERVAL_PERCENT: f64 = 80.0;

/// The ratio of the standard error of a median to that of a mean for normal data, √(π/2).
const MEDIAN_STANDARD_ERROR_FACTOR: f64 = 1.2533;

/// How much history the forecast stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForecastQuality {
    /// No observed day in the lookback: the forecast is the month-to-date and has no upper bound.
    NoHistory,
    /// Fewer than [`SPARSE_BELOW_DAYS`] observed days: treat the forecast with care.
    Sparse,
    /// Enough history for the method as described.
    Normal,
}

/// The month-end forecast for the month containing `today`, with how it was made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub today: NaiveDate,
    pub month_start: NaiveDate,
    pub month_end: NaiveDate,
    /// Observed spend from the first of the month through `today`.
    pub month_to_date_usd: f64,
    /// The expected month total.
    pub point_usd: f64,
    /// The low end of the [`INTERVAL_PERCENT`] interval of the month total.
    pub low_usd: f64,
    /// The high end of the interval; `None` when there is too little history to bound it.
    pub high_usd: Option<f64>,
    /// The nominal coverage of `low_usd..=high_usd`, in percent.
    pub interval_percent: f64,
    pub method: &'static str,
    pub quality: ForecastQuality,
    /// Days with data in the lookback window.
    pub days_observed: usize,
    /// Days of the month after `today`.
    pub days_remaining: u32,
    /// Days of the month up to `today` without data, whose spend was estimated like a future day's.
    pub days_imputed: u32,
    /// Today's deseasonalised daily spend; `None` without history.
    pub level_usd: Option<f64>,
    /// The weekday factors, Monday first.
    pub weekday_factors: [f64; 7],
}

/// The fitted model: level, weekday factors and daily error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DailyModel {
    pub level_usd: f64,
    pub weekday_factors: [f64; 7],
    /// Root-mean-square daily error; `None` with fewer than [`MIN_DAYS_FOR_INTERVAL`] residuals.
    pub sigma_usd: Option<f64>,
    /// Days the level's median was taken over.
    pub level_days: usize,
}

impl DailyModel {
    /// The expected spend of a day.
    pub fn expected_usd(&self, day: NaiveDate) -> f64 {
        self.level_usd * self.weekday_factors[weekday_index(day)]
    }
}

fn weekday_index(day: NaiveDate) -> usize {
    day.weekday().num_days_from_monday() as usize
}

/// Fits the model to the observed days of a lookback window (oldest first); `None` when empty.
pub(crate) fn fit(window: &[(NaiveDate, f64)]) -> Option<DailyModel> {
    let all: Vec<f64> = window.iter().map(|(_, amount)| *amount).collect();
    let overall_median = median(&all)?;
    let mut weekday_factors = [1.0; 7];
    if window.len() >= MIN_DAYS_FOR_WEEKDAY_FACTORS && overall_median > 0.0 {
        for (weekday, factor) in weekday_factors.iter_mut().enumerate() {
            let same_weekday: Vec<f64> = window
                .iter()
                .filter(|(day, _)| weekday_index(*day) == weekday)
                .map(|(_, amount)| *amount)
                .collect();
            if same_weekday.len() >= 2 {
                if let Some(weekday_median) = median(&same_weekday) {
                    *factor = (weekday_median / overall_median).max(0.0);
                }
            }
        }
    }
    let recent: Vec<f64> = window
        .iter()
        .rev()
        .filter(|(day, _)| weekday_factors[weekday_index(*day)] > 0.0)
        .take(LEVEL_DAYS)
        .map(|(day, amount)| amount / weekday_factors[weekday_index(*day)])
        .collect();
    let level_usd = median(&recent).unwrap_or(0.0);
    let model = DailyModel {
        level_usd,
        weekday_factors,
        sigma_usd: None,
        level_days: recent.len(),
    };
    let sigma_usd = if window.len() >= MIN_DAYS_FOR_INTERVAL {
        let squares: f64 = window
            .iter()
            .map(|(day, amount)| (amount - model.expected_usd(*day)).powi(2))
            .sum();
        Some((squares / (window.len() - 1) as f64).sqrt())
    } else {
        None
    };
    Some(DailyModel { sigma_usd, ..model })
}

/// Forecasts the total spend of the month containing `today` from daily totals (all days, any
/// months; days after `today` are ignored). See the module documentation for the method.
pub fn forecast_month_end(
    daily_totals: &DailyTotals,
    today: NaiveDate,
) -> Result<Forecast, CostError> {
    check_totals(daily_totals)?;
    forecast_checked(daily_totals, today)
}

/// [`forecast_month_end`] on totals already checked to be finite.
pub(crate) fn forecast_checked(
    daily_totals: &DailyTotals,
    today: NaiveDate,
) -> Result<Forecast, CostError> {
    let (month_start, month_end) = month_bounds(today)?;
    let window_start = today
        .checked_sub_days(Days::new(LOOKBACK_DAYS - 1))
        .unwrap_or(NaiveDate::MIN);
    let window: Vec<(NaiveDate, f64)> = daily_totals
        .range(window_start..=today)
        .map(|(day, amount)| (*day, *amount))
        .collect();
    let month_to_date_usd: f64 = daily_totals
        .range(month_start..=today)
        .map(|(_, v)| v)
        .sum();
    let days_remaining = (month_end - today).num_days() as u32;
    let imputed_days: Vec<NaiveDate> = month_start
        .iter_days()
        .take_while(|day| *day <= today)
        .filter(|day| !daily_totals.contains_key(day))
        .collect();
    let future_days = today.iter_days().skip(1).take(days_remaining as usize);
    let days_to_estimate: Vec<NaiveDate> =
        imputed_days.iter().copied().chain(future_days).collect();
    let days_observed = window.len();
    let base = Forecast {
        today,
        month_start,
        month_end,
        month_to_date_usd,
        point_usd: month_to_date_usd,
        low_usd: month_to_date_usd,
        high_usd: None,
        interval_percent: INTERVAL_PERCENT,
        method: METHOD,
        quality: ForecastQuality::NoHistory,
        days_observed,
        days_remaining,
        days_imputed: imputed_days.len() as u32,
        level_usd: None,
        weekday_factors: [1.0; 7],
    };
    let Some(model) = fit(&window) else {
        if days_to_estimate.is_empty() {
            // The last day of the month with nothing to estimate: the month is known.
            return Ok(Forecast {
                high_usd: Some(month_to_date_usd),
                ..base
            });
        }
        return Ok(base);
    };
    let rest_usd: f64 = days_to_estimate
        .iter()
        .map(|day| model.expected_usd(*day))
        .sum();
    let factor_sum: f64 = days_to_estimate
        .iter()
        .map(|day| model.weekday_factors[weekday_index(*day)])
        .sum();
    let quality = if days_observed < SPARSE_BELOW_DAYS {
        ForecastQuality::Sparse
    } else {
        ForecastQuality::Normal
    };
    let (low_usd, high_usd) = match model.sigma_usd {
        Some(sigma_usd) => {
            let days = days_to_estimate.len() as f64;
            let level_error = factor_sum * MEDIAN_STANDARD_ERROR_FACTOR * sigma_usd
                / (model.level_days.max(1) as f64).sqrt();
            let half_width = INTERVAL_Z * (days * sigma_usd.powi(2) + level_error.powi(2)).sqrt();
            let low_rest = if rest_usd >= 0.0 {
                (rest_usd - half_width).max(0.0)
            } else {
                rest_usd - half_width
            };
            (
                month_to_date_usd + low_rest,
                Some(month_to_date_usd + rest_usd + half_width),
            )
        }
        None if days_to_estimate.is_empty() => (month_to_date_usd, Some(month_to_date_usd)),
        None => (month_to_date_usd + rest_usd.min(0.0), None),
    };
    Ok(Forecast {
        point_usd: month_to_date_usd + rest_usd,
        low_usd,
        high_usd,
        quality,
        level_usd: Some(model.level_usd),
        weekday_factors: model.weekday_factors,
        ..base
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// `amount(day)` for every day of `first..=last`.
    fn series(first: &str, last: &str, amount: impl Fn(NaiveDate) -> f64) -> DailyTotals {
        day(first)
            .iter_days()
            .take_while(|d| *d <= day(last))
            .map(|d| (d, amount(d)))
            .collect()
    }

    #[test]
    fn a_flat_series_forecasts_the_daily_rate_times_the_month() {
        let totals = series("2025-01-01", "2025-03-10", |_| 30.0);
        let forecast = forecast_month_end(&totals, day("2025-03-10")).unwrap();
        assert_eq!(forecast.month_to_date_usd, 300.0);
        assert_eq!(forecast.days_remaining, 21);
        assert!((forecast.point_usd - 930.0).abs() < 1e-9, "{forecast:?}");
        assert_eq!(forecast.quality, ForecastQuality::Normal);
        assert_eq!(forecast.days_observed, 28);
        // No noise at all: the interval collapses onto the point.
        assert!((forecast.high_usd.unwrap() - 930.0).abs() < 1e-9);
        assert!((forecast.low_usd - 930.0).abs() < 1e-9);
    }

    #[test]
    fn weekly_seasonality_is_followed() {
        // Weekdays cost $40, weekends $10. March 2025 starts on a Saturday.
        let amount = |d: NaiveDate| {
            if d.weekday().number_from_monday() >= 6 {
                10.0
            } else {
                40.0
            }
        };
        let totals = series("2025-02-01", "2025-03-05", amount);
        let forecast = forecast_month_end(&totals, day("2025-03-05")).unwrap();
        let truth: f64 = day("2025-03-01").iter_days().take(31).map(amount).sum();
        assert!(
            (forecast.point_usd - truth).abs() < 1e-6,
            "{forecast:?} vs {truth}"
        );
        assert!((forecast.weekday_factors[5] - 0.25).abs() < 1e-9);
    }

    #[test]
    fn the_first_day_of_a_month_uses_the_previous_month() {
        // Jan 31 -> Feb 1: the lookback crosses the month boundary.
        let totals = series("2025-01-01", "2025-02-01", |_| 10.0);
        let forecast = forecast_month_end(&totals, day("2025-02-01")).unwrap();
        assert_eq!(forecast.month_start, day("2025-02-01"));
        assert_eq!(forecast.month_end, day("2025-02-28"));
        assert_eq!(forecast.month_to_date_usd, 10.0);
        assert_eq!(forecast.days_remaining, 27);
        assert!((forecast.point_usd - 280.0).abs() < 1e-9);
        let january = forecast_month_end(&totals, day("2025-01-31")).unwrap();
        assert_eq!(january.days_remaining, 0);
        assert_eq!(january.point_usd, 310.0);
        assert_eq!(january.high_usd, Some(310.0));
    }

    #[test]
    fn a_leap_february_has_29_days_and_2100_does_not() {
        let totals = series("2028-01-15", "2028-02-10", |_| 5.0);
        let forecast = forecast_month_end(&totals, day("2028-02-10")).unwrap();
        assert_eq!(forecast.month_end, day("2028-02-29"));
        assert!((forecast.point_usd - 145.0).abs() < 1e-9);
        let on_leap_day = forecast_month_end(&totals, day("2028-02-29")).unwrap();
        assert_eq!(on_leap_day.days_remaining, 0);
        // Feb 11..=29 have no data: they are estimated, not counted as $0.
        assert_eq!(on_leap_day.days_imputed, 19);
        assert!((on_leap_day.point_usd - 145.0).abs() < 1e-9);
        let totals_2100 = series("2100-01-15", "2100-02-10", |_| 5.0);
        let forecast_2100 = forecast_month_end(&totals_2100, day("2100-02-10")).unwrap();
        assert_eq!(forecast_2100.month_end, day("2100-02-28"));
        assert!((forecast_2100.point_usd - 140.0).abs() < 1e-9);
    }

    #[test]
    fn a_month_that_started_three_days_ago_with_no_earlier_history_is_sparse() {
        let totals = series("2025-06-01", "2025-06-03", |_| 20.0);
        let forecast = forecast_month_end(&totals, day("2025-06-03")).unwrap();
        assert_eq!(forecast.quality, ForecastQuality::Sparse);
        assert_eq!(forecast.days_observed, 3);
        assert!((forecast.point_usd - 600.0).abs() < 1e-9);
        assert!(forecast.high_usd.is_some());
        let two_days = series("2025-06-01", "2025-06-02", |_| 20.0);
        let forecast = forecast_month_end(&two_days, day("2025-06-02")).unwrap();
        assert_eq!(forecast.high_usd, None, "two days cannot bound a month");
    }

    #[test]
    fn zero_history_forecasts_the_month_to_date_without_an_upper_bound() {
        let forecast = forecast_month_end(&DailyTotals::new(), day("2025-06-15")).unwrap();
        assert_eq!(forecast.quality, ForecastQuality::NoHistory);
        assert_eq!(forecast.point_usd, 0.0);
        assert_eq!(forecast.high_usd, None);
        assert_eq!(forecast.days_imputed, 15);
        assert_eq!(forecast.level_usd, None);
    }

    #[test]
    fn missing_days_are_estimated_not_taken_as_zero() {
        let mut totals = series("2025-04-01", "2025-05-20", |_| 10.0);
        totals.remove(&day("2025-05-19"));
        totals.remove(&day("2025-05-20"));
        let forecast = forecast_month_end(&totals, day("2025-05-20")).unwrap();
        assert_eq!(forecast.days_imputed, 2);
        assert_eq!(forecast.month_to_date_usd, 180.0);
        assert!((forecast.point_usd - 310.0).abs() < 1e-9, "{forecast:?}");
    }

    #[test]
    fn one_spike_does_not_move_the_level_but_widens_the_interval() {
        let mut totals = series("2025-04-01", "2025-05-20", |_| 10.0);
        totals.insert(day("2025-05-18"), 500.0);
        let forecast = forecast_month_end(&totals, day("2025-05-20")).unwrap();
        assert_eq!(forecast.level_usd, Some(10.0));
        // The spike is in the month-to-date, the rest of the month is at the usual $10.
        assert!((forecast.point_usd - (19.0 * 10.0 + 500.0 + 11.0 * 10.0)).abs() < 1e-9);
        assert!(forecast.high_usd.unwrap() > forecast.point_usd + 100.0);
    }

    #[test]
    fn days_after_today_are_ignored() {
        let mut totals = series("2025-04-01", "2025-05-20", |_| 10.0);
        totals.insert(day("2025-05-25"), 1_000.0);
        let forecast = forecast_month_end(&totals, day("2025-05-20")).unwrap();
        assert!((forecast.point_usd - 310.0).abs() < 1e-9);
    }

    #[test]
    fn non_finite_totals_are_rejected() {
        let mut totals = series("2025-04-01", "2025-04-03", |_| 10.0);
        totals.insert(day("2025-04-02"), f64::INFINITY);
        assert!(forecast_month_end(&totals, day("2025-04-03")).is_err());
    }
}
