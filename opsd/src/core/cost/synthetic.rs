//! Seeded synthetic daily cost series (flat, weekly-seasonal, trending, spiky, and one shaped
//! like Steno's own cost breakdown) for the forecast back-test, its unit tests and its
//! benchmark. Every series is a pure function of its pattern, first day, length and seed.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::DailyTotals;

/// A small seedable generator (splitmix64): good enough for test noise, the same on every machine.
#[derive(Debug, Clone)]
pub struct SeededRandom(u64);

impl SeededRandom {
    pub fn new(seed: u64) -> SeededRandom {
        SeededRandom(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The shapes of synthetic series. Each is about $1,000 a month, the budget of R-COST-1
/// (docs/requirements.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// $33 a day with 5 % normal noise.
    Flat,
    /// $40 on weekdays, $15 on weekends, 5 % noise.
    WeeklySeasonal,
    /// From $20 a day growing 0.5 % a day (about 16 % a month), 5 % noise.
    Trending,
    /// $33 a day with 15 % noise, and on 3 % of days a spike of 3 to 6 times the usual.
    SpikyNoisy,
    /// Shaped like the reference cost estimate of R-COST-15 (see [`recorded_like_day`]).
    RecordedLike,
}

impl Pattern {
    /// Every pattern, in the order reports list them.
    pub const ALL: [Pattern; 5] = [
        Pattern::Flat,
        Pattern::WeeklySeasonal,
        Pattern::Trending,
        Pattern::SpikyNoisy,
        Pattern::RecordedLike,
    ];

    /// Like `weekly-seasonal`.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Flat => "flat",
            Pattern::WeeklySeasonal => "weekly-seasonal",
            Pattern::Trending => "trending",
            Pattern::SpikyNoisy => "spiky-noisy",
            Pattern::RecordedLike => "recorded-like",
        }
    }
}

fn is_weekend(day: NaiveDate) -> bool {
    day.weekday().number_from_monday() >= 6
}

/// One day of the recorded-like pattern, built from the reference cost estimate of R-COST-15,
/// per month: RDS $60–120, Lambda $30–50, API Gateway $10–20, S3 $10–30, CloudFront $20–40,
/// Secrets Manager $5, CloudWatch $10–20, data transfer $10–30, Anthropic API $500–1000. It is synthetic: no real bill was available.
///
/// - Fixed daily costs (RDS, S3, CloudWatch): $5.00 a day, 2 % noise.
/// - Monthly fees charged on the 1st (Secrets Manager, WAF): $10.
/// - Traffic-driven costs (Lambda, API Gateway, CloudFront, data transfer): $4.00 on a weekday,
///   a third of that on weekends, 10 % noise.
/// - AI spend, driven by letters drafted on working days: $28 on a weekday, a fifth of it on
///   weekends, 20 % noise.
/// - Growth of 3 % a month on the traffic and AI parts (`day_index` counts from the first day).
/// - On 2 % of days a batch of letters doubles to quadruples that day's AI spend.
pub fn recorded_like_day(day: NaiveDate, day_index: usize, random: &mut SeededRandom) -> f64 {
    let growth = 1.03_f64.powf(day_index as f64 / 30.0);
    let weekend = is_weekend(day);
    let fixed = 5.0 * (1.0 + 0.02 * random.normal());
    let monthly_fees = if day.day() == 1 { 10.0 } else { 0.0 };
    let traffic = 4.0 * if weekend { 1.0 / 3.0 } else { 1.0 } * (1.0 + 0.10 * random.normal());
    let mut ai = 28.0 * if weekend { 0.2 } else { 1.0 } * (1.0 + 0.20 * random.normal());
    if random.uniform() < 0.02 {
        ai *= 2.0 + 2.0 * random.uniform();
    }
    (fixed + monthly_fees + (traffic + ai) * growth).max(0.0)
}

/// `days` days of `pattern` from `first_day`, with noise from `seed`.
pub fn generate(pattern: Pattern, first_day: NaiveDate, days: usize, seed: u64) -> DailyTotals {
    let mut random = SeededRandom::new(seed);
    first_day
        .iter_days()
        .take(days)
        .enumerate()
        .map(|(index, day)| {
            let amount_usd = match pattern {
                Pattern::Flat => 33.0 * (1.0 + 0.05 * random.normal()),
                Pattern::WeeklySeasonal => {
                    let base = if is_weekend(day) { 15.0 } else { 40.0 };
                    base * (1.0 + 0.05 * random.normal())
                }
                Pattern::Trending => {
                    20.0 * 1.005_f64.powf(index as f64) * (1.0 + 0.05 * random.normal())
                }
                Pattern::SpikyNoisy => {
                    let usual = 33.0 * (1.0 + 0.15 * random.normal());
                    if random.uniform() < 0.03 {
                        usual * (3.0 + 3.0 * random.uniform())
                    } else {
                        usual
                    }
                }
                Pattern::RecordedLike => recorded_like_day(day, index, &mut random),
            };
            (day, amount_usd.max(0.0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_reproducible_and_about_a_thousand_dollars_a_month() {
        let first: NaiveDate = "2025-01-01".parse().unwrap();
        for pattern in Pattern::ALL {
            let series = generate(pattern, first, 120, 7);
            assert_eq!(series.len(), 120);
            assert_eq!(series, generate(pattern, first, 120, 7));
            assert!(series
                .values()
                .all(|amount| amount.is_finite() && *amount >= 0.0));
            let per_month = series.values().sum::<f64>() / 4.0;
            assert!(
                (500.0..2_000.0).contains(&per_month),
                "{}: ${per_month:.0} a month",
                pattern.name()
            );
        }
        assert_ne!(
            generate(Pattern::Flat, first, 10, 1),
            generate(Pattern::Flat, first, 10, 2)
        );
    }
}
