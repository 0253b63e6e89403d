//! opsd's month-end spend forecast: month-to-date actual plus the expected spend of the days left,
//! from weekday factors times a robust level (and a trend when one is clear), with a prediction
//! interval from the spread of the recent residuals.
//!
//! # The method, step by step
//!
//! 1. **Lookback.** The [`LOOKBACK_DAYS`] (28) days ending with `today`, across the month boundary
//!    when needed, so the first days of a month still have four weeks of history. A day without data
//!    is left out (it is not a $0 day).
//! 2. **Weekday factors.** With at least [`MIN_DAYS_FOR_WEEKDAY_FACTORS`] (14) observed days, the
//!    factor of a weekday is the median of that weekday's observed days divided by the median of all
//!    observed days (a weekday seen fewer than twice keeps factor 1). With less history every factor
//!    is 1. Medians keep one spike from bending a whole weekday. Dividing a day's spend by its
//!    factor *deseasonalises* it. When step 3 finds a clear trend, the factors are estimated again
//!    on spend divided by the trend line (so growth is not mistaken for a weekly pattern), and the
//!    trend is fitted again on those.
//! 3. **Level, and a trend only when it is clear.** With at least [`MIN_DAYS_FOR_TREND`] (14)
//!    observed days, a Theil–Sen line (the median of the slopes between every pair of days, which
//!    a few spikes cannot tilt) is fitted to the deseasonalised spend. When its slope is more than
//!    [`TREND_SIGNIFICANCE`] (3) standard errors from zero, the line's value today is the level and
//!    the slope carries on to the month's end. Otherwise there is no trend and the level is the
//!    median of the most recent [`LEVEL_DAYS`] (7) deseasonalised days. The strict gate keeps
//!    noise from being extrapolated on flat series; a growing bill (0.5 % a day in the back-test)
//!    passes it.
//! 4. **Point forecast.** Month-to-date actual + the sum over the days still to come *and* the days
//!    of this month up to today that have no data yet (Cost Explorer can lag a day or two) of
//!    `(level + slope × days ahead) × factor(weekday)`, never below $0 a day.
//! 5. **Interval.** The residuals `actual − expected` of every observed day in the lookback give a
//!    root-mean-square daily error `σ` (in dollars, `n − 1` in the denominator). For `k` days to
//!    add, the day-to-day noise adds up as `k σ²` (independent days: the width grows with √k), and
//!    the errors of the level and the slope are shared by every remaining day, so they add up
//!    linearly: `σ² × Var(Σ factor × (level + slope × days ahead))` with the usual straight-line
//!    variances (1.1× for Theil–Sen) or, without a trend, `(1.2533 / √7)²` for a median of 7 days.
//!    The interval is the point ± [`INTERVAL_Z`] (1.2816, an 80 % central interval under a normal
//!    approximation) times the square root of the sum, and its low end never goes below the
//!    month-to-date when the days left are expected to cost something.
//!
//! With no observed day in the lookback the forecast is just the month-to-date, flagged
//! [`ForecastQuality::NoHistory`], without an upper bound. With fewer than [`SPARSE_BELOW_DAYS`]
//! observed days it is flagged [`ForecastQuality::Sparse`]; with fewer than three there is no upper
//! bound either. `today` is taken as a complete day: a caller whose data for today is still partial
//! passes yesterday.
//!
//! Known limits (measured by the back-test, see `docs/cost-forecast.md`): one-off spikes are left
//! out of the level on purpose, so on a bill with frequent large spikes the forecast runs a few
//! percent low until the spikes happen; on a steadily growing bill the interval covers the truth
//! less often than its nominal 80 %.

use chrono::{Datelike, Days, NaiveDate};
use serde::Serialize;

use super::{check_totals, median, month_bounds, CostError, DailyTotals};

/// The name of this method, as reported in [`Forecast::method`].
pub const METHOD: &str =
    "weekday factors x (median level, or Theil-Sen line when clear), 28-day lookback";

/// Days of history (ending with `today`) the forecast looks at.
pub const LOOKBACK_DAYS: u64 = 28;

/// Recent observed days whose median is the level.
pub const LEVEL_DAYS: usize = 7;

/// Observed days needed before weekday factors are estimated.
pub const MIN_DAYS_FOR_WEEKDAY_FACTORS: usize = 14;

/// Below this many observed days the forecast is flagged sparse.
pub const SPARSE_BELOW_DAYS: usize = 7;

/// Observed days needed before a trend is looked for.
pub const MIN_DAYS_FOR_TREND: usize = 14;

/// A trend is used when its slope is more than this many standard errors from zero.
pub const TREND_SIGNIFICANCE: f64 = 3.0;

/// How many times factors and trend are estimated again against each other.
const TREND_REFINEMENTS: usize = 3;

/// Residuals needed to bound the forecast.
pub const MIN_DAYS_FOR_INTERVAL: usize = 3;

/// The normal quantile of the interval: 1.2816 gives an 80 % central interval.
pub const INTERVAL_Z: f64 = 1.2816;

/// The nominal coverage of the interval, in percent.
pub const INTERVAL_PERCENT: f64 = 80.0;

/// The ratio of the standard error of a median to that of a mean for normal data, √(π/2).
const MEDIAN_STANDARD_ERROR_FACTOR: f64 = 1.2533;

/// The Theil–Sen slope's standard error relative to least squares' for normal data (its
/// efficiency is about 0.83-0.91; 1.1 is the conservative end).
const THEIL_SEN_STANDARD_ERROR_FACTOR: f64 = 1.1;

/// The standard deviation of normal data per median absolute deviation.
const ROBUST_SIGMA_PER_MAD: f64 = 1.4826;

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
    /// The clear trend of the deseasonalised daily spend, in dollars per day per day; 0 when
    /// there is none.
    pub trend_usd_per_day: f64,
    /// The weekday factors, Monday first.
    pub weekday_factors: [f64; 7],
}

/// The fitted model: level, trend, weekday factors and daily error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DailyModel {
    /// The day `level_usd` is the deseasonalised spend of.
    pub today: NaiveDate,
    pub level_usd: f64,
    /// Dollars a day added per day; 0 unless the trend is clear.
    pub slope_usd_per_day: f64,
    pub weekday_factors: [f64; 7],
    /// Root-mean-square daily error; `None` with fewer than [`MIN_DAYS_FOR_INTERVAL`] residuals.
    pub sigma_usd: Option<f64>,
    /// The variances of the level and the slope estimates and their covariance, in units of the
    /// daily error's variance.
    pub level_variance: f64,
    pub level_slope_covariance: f64,
    pub slope_variance: f64,
}

impl DailyModel {
    /// The expected spend of a day (past or future).
    pub fn expected_usd(&self, day: NaiveDate) -> f64 {
        let days_ahead = (day - self.today).num_days() as f64;
        (self.level_usd + self.slope_usd_per_day * days_ahead).max(0.0)
            * self.weekday_factors[weekday_index(day)]
    }
}

fn weekday_index(day: NaiveDate) -> usize {
    day.weekday().num_days_from_monday() as usize
}

/// A straight line through deseasonalised spend, `level + slope × days ahead of today`.
struct Trend {
    level_usd: f64,
    slope_usd_per_day: f64,
    level_variance: f64,
    level_slope_covariance: f64,
    slope_variance: f64,
}

/// Weekday factors against a trend line instead of a constant.
fn weekday_factors_against(
    window: &[(NaiveDate, f64)],
    today: NaiveDate,
    trend: &Trend,
) -> [f64; 7] {
    weekday_factors(window, |day| {
        trend.level_usd + trend.slope_usd_per_day * (day - today).num_days() as f64
    })
}

/// The Theil–Sen line through `(days ahead of today, deseasonalised spend)` points, when its slope
/// is clear: more than [`TREND_SIGNIFICANCE`] standard errors from zero.
fn clear_trend(points: &[(f64, f64)]) -> Option<Trend> {
    if points.len() < MIN_DAYS_FOR_TREND {
        return None;
    }
    let mut slopes = Vec::with_capacity(points.len() * (points.len() - 1) / 2);
    for (index, (t_i, u_i)) in points.iter().enumerate() {
        for (t_j, u_j) in &points[index + 1..] {
            if t_j != t_i {
                slopes.push((u_j - u_i) / (t_j - t_i));
            }
        }
    }
    let slope = median(&slopes)?;
    let intercepts: Vec<f64> = points.iter().map(|(t, u)| u - slope * t).collect();
    let level = median(&intercepts)?;
    let absolute_residuals: Vec<f64> = points
        .iter()
        .map(|(t, u)| (u - level - slope * t).abs())
        .collect();
    let sigma = ROBUST_SIGMA_PER_MAD * median(&absolute_residuals)?;
    let count = points.len() as f64;
    let mean_t = points.iter().map(|(t, _)| t).sum::<f64>() / count;
    let spread: f64 = points.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    if spread <= 0.0 || slope == 0.0 {
        return None;
    }
    let inflation = THEIL_SEN_STANDARD_ERROR_FACTOR.powi(2);
    let slope_variance = inflation / spread;
    if slope.abs() <= TREND_SIGNIFICANCE * sigma * slope_variance.sqrt() {
        return None;
    }
    Some(Trend {
        level_usd: level,
        slope_usd_per_day: slope,
        level_variance: inflation * (1.0 / count + mean_t.powi(2) / spread),
        level_slope_covariance: -inflation * mean_t / spread,
        slope_variance,
    })
}

/// Weekday factors: per weekday, the median of `spend ÷ reference(day)` over its observed days,
/// divided by the median over all observed days (a weekday seen fewer than twice keeps factor 1;
/// with fewer than [`MIN_DAYS_FOR_WEEKDAY_FACTORS`] observed days every factor is 1).
fn weekday_factors(window: &[(NaiveDate, f64)], reference: impl Fn(NaiveDate) -> f64) -> [f64; 7] {
    let mut factors = [1.0; 7];
    if window.len() < MIN_DAYS_FOR_WEEKDAY_FACTORS {
        return factors;
    }
    let mut ratios: [Vec<f64>; 7] = Default::default();
    for (day, amount) in window {
        let reference_usd = reference(*day);
        if reference_usd > 0.0 {
            ratios[weekday_index(*day)].push(amount / reference_usd);
        }
    }
    let all: Vec<f64> = ratios.iter().flatten().copied().collect();
    let Some(overall) = median(&all).filter(|overall| *overall > 0.0) else {
        return factors;
    };
    for (factor, weekday_ratios) in factors.iter_mut().zip(&ratios) {
        if weekday_ratios.len() >= 2 {
            if let Some(ratio) = median(weekday_ratios) {
                *factor = (ratio / overall).max(0.0);
            }
        }
    }
    factors
}

/// `(days ahead of today, spend ÷ weekday factor)` of the days whose factor is above 0.
fn deseasonalised(
    window: &[(NaiveDate, f64)],
    today: NaiveDate,
    factors: &[f64; 7],
) -> Vec<(f64, f64)> {
    window
        .iter()
        .filter(|(day, _)| factors[weekday_index(*day)] > 0.0)
        .map(|(day, amount)| {
            (
                (*day - today).num_days() as f64,
                amount / factors[weekday_index(*day)],
            )
        })
        .collect()
}

/// Fits the model to the observed days of a lookback window (oldest first) ending with `today`;
/// `None` when empty.
pub(crate) fn fit(window: &[(NaiveDate, f64)], today: NaiveDate) -> Option<DailyModel> {
    if window.is_empty() {
        return None;
    }
    let mut weekday_factors = weekday_factors(window, |_| 1.0);
    let mut points = deseasonalised(window, today, &weekday_factors);
    let mut trend = clear_trend(&points);
    // A trend bends raw weekday medians (a later weekday looks dearer on a growing bill):
    // estimate the factors again against the trend line, then the trend on those, a few times.
    for _ in 0..TREND_REFINEMENTS {
        let Some(line) = &trend else { break };
        weekday_factors = weekday_factors_against(window, today, line);
        points = deseasonalised(window, today, &weekday_factors);
        trend = clear_trend(&points);
    }
    let mut model = match trend {
        Some(trend) => DailyModel {
            today,
            level_usd: trend.level_usd,
            slope_usd_per_day: trend.slope_usd_per_day,
            weekday_factors,
            sigma_usd: None,
            level_variance: trend.level_variance,
            level_slope_covariance: trend.level_slope_covariance,
            slope_variance: trend.slope_variance,
        },
        None => {
            let recent: Vec<f64> = points
                .iter()
                .rev()
                .take(LEVEL_DAYS)
                .map(|(_, spend)| *spend)
                .collect();
            DailyModel {
                today,
                level_usd: median(&recent).unwrap_or(0.0),
                slope_usd_per_day: 0.0,
                weekday_factors,
                sigma_usd: None,
                level_variance: MEDIAN_STANDARD_ERROR_FACTOR.powi(2) / recent.len().max(1) as f64,
                level_slope_covariance: 0.0,
                slope_variance: 0.0,
            }
        }
    };
    if window.len() >= MIN_DAYS_FOR_INTERVAL {
        let squares: f64 = window
            .iter()
            .map(|(day, amount)| (amount - model.expected_usd(*day)).powi(2))
            .sum();
        model.sigma_usd = Some((squares / (window.len() - 1) as f64).sqrt());
    }
    Some(model)
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
        trend_usd_per_day: 0.0,
        weekday_factors: [1.0; 7],
    };
    let Some(model) = fit(&window, today) else {
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
    // Σ factor and Σ factor × days ahead: how the level's and the slope's errors add up.
    let factor_sum: f64 = days_to_estimate
        .iter()
        .map(|day| model.weekday_factors[weekday_index(*day)])
        .sum();
    let factor_days_sum: f64 = days_to_estimate
        .iter()
        .map(|day| model.weekday_factors[weekday_index(*day)] * (*day - today).num_days() as f64)
        .sum();
    let quality = if days_observed < SPARSE_BELOW_DAYS {
        ForecastQuality::Sparse
    } else {
        ForecastQuality::Normal
    };
    let (low_usd, high_usd) = match model.sigma_usd {
        Some(sigma_usd) => {
            let days = days_to_estimate.len() as f64;
            let parameter_variance = factor_sum.powi(2) * model.level_variance
                + 2.0 * factor_sum * factor_days_sum * model.level_slope_covariance
                + factor_days_sum.powi(2) * model.slope_variance;
            let half_width = INTERVAL_Z * sigma_usd * (days + parameter_variance.max(0.0)).sqrt();
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
        trend_usd_per_day: model.slope_usd_per_day,
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
    fn a_clear_trend_is_carried_to_the_month_end() {
        // $10 on March 1, 2025, plus $0.50 a day.
        let start = day("2025-03-01");
        let amount = |d: NaiveDate| 10.0 + 0.5 * (d - start).num_days() as f64;
        let totals = series("2025-03-01", "2025-04-10", amount);
        let forecast = forecast_month_end(&totals, day("2025-04-10")).unwrap();
        let truth: f64 = day("2025-04-01").iter_days().take(30).map(amount).sum();
        // Factors and trend are estimated against each other, so both are close, not exact.
        assert!(
            (forecast.trend_usd_per_day - 0.5).abs() < 0.01,
            "{forecast:?}"
        );
        assert!(forecast
            .weekday_factors
            .iter()
            .all(|factor| (factor - 1.0).abs() < 0.01));
        assert!(
            (forecast.point_usd / truth - 1.0).abs() < 0.005,
            "{forecast:?} vs {truth}"
        );
        // Noise around a flat level is not a trend.
        let mut noisy = series("2025-03-01", "2025-04-10", |_| 30.0);
        for (index, amount) in noisy.values_mut().enumerate() {
            *amount += [-3.0, 2.0, 0.5, -1.0, 3.0, -2.5, 1.0][index % 7];
        }
        let flat = forecast_month_end(&noisy, day("2025-04-10")).unwrap();
        assert_eq!(flat.trend_usd_per_day, 0.0, "{flat:?}");
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
