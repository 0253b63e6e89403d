//! Spend anomalies: a day whose spend, per service (and for the whole account), jumps above what
//! the same weekday usually costs, and AI spend far above its trailing average; plus
//! [`link_rollouts`], which names the rollouts that started shortly before an anomaly. The `R-`
//! IDs below are listed in docs/requirements.md.
//!
//! # The daily jump rule (R-COST-5: more than 20 % and more than $50 above the expected spend)
//!
//! The expected spend of a service on day `d` is the median of its spend on the same weekday over
//! the previous [`AnomalyRules::same_weekday_weeks`] weeks (`d − 7`, `d − 14`, ...), so a Monday
//! that is always expensive is expected to be expensive. When fewer than
//! [`AnomalyRules::min_same_weekday_days`] of those days have data, the expected spend is the
//! median of the previous [`AnomalyRules::fallback_days`] days instead. Without either, the
//! service is not judged that day.
//!
//! The day is an anomaly when the increase over the expected spend is **both** more than
//! [`AnomalyRules::jump_percent`] (20 %) of the expected spend **and** more than
//! [`AnomalyRules::jump_floor_usd`] ($50): `actual − expected > max(20 % × expected, $50)`.
//! Either rule alone is noise at one end of the scale: 20 % of a $0.40 service is eight cents,
//! and $50 on a service that costs $2,000 a day is 2.5 %. Requiring both keeps the percentage
//! rule for services large enough that 20 % is money, and the dollar rule for small services
//! whose spend appears from nothing (expected $0: any increase is infinite percent, so the $50
//! floor alone decides).
//!
//! # The AI rule (R-COST-6: "AI spend > 150 % of average")
//!
//! For the AI service ([`AnomalyRules::ai_service`], `AI` by default), the day is an anomaly when
//! its spend is more than [`AnomalyRules::ai_percent_of_average`] (150 %) of the arithmetic mean
//! of the previous [`AnomalyRules::ai_average_days`] (7) days with data, and above it by more than
//! [`AnomalyRules::ai_floor_usd`] ($0 by default: R-COST-6 gives no floor). Seven days is one whole
//! weekly cycle, so weekday patterns average out, and short enough to follow growth in usage;
//! "average" is the requirement's word, so a mean rather than a median.
//!
//! # Missing data
//!
//! A day is *observed* when the cost source returned any row for it. On an observed day a service
//! without a row cost $0 (Cost Explorer omits empty groups); a day that is not observed has no
//! data and is left out of every baseline. An unobserved `day` yields no anomaly.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, Duration, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::{daily_totals_by_service, mean, median, CostError, DailyCost, DEFAULT_AI_SERVICE};

/// The pseudo-service under which the whole account's daily total is checked.
pub const ACCOUNT_TOTAL: &str = "(all services)";

/// The anomaly rules and their parameters. [`AnomalyRules::seed`] holds the default values of
/// R-COST-5 and R-COST-6.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyRules {
    /// The relative part of the daily jump rule, in percent of the expected spend.
    pub jump_percent: f64,
    /// The absolute part of the daily jump rule, in US dollars.
    pub jump_floor_usd: f64,
    /// Weeks of same-weekday history the expected spend is the median of.
    pub same_weekday_weeks: u32,
    /// Same-weekday days with data needed; with fewer the fallback baseline is used.
    pub min_same_weekday_days: usize,
    /// Days before the day whose median is the fallback baseline.
    pub fallback_days: u32,
    /// The service holding AI spend.
    pub ai_service: String,
    /// AI spend above this percent of its trailing average is an anomaly.
    pub ai_percent_of_average: f64,
    /// Days with data the AI average is taken over.
    pub ai_average_days: u32,
    /// The AI increase over the average must also exceed this many dollars.
    pub ai_floor_usd: f64,
    /// Whether the account's daily total is checked too, as [`ACCOUNT_TOTAL`].
    pub check_account_total: bool,
}

impl AnomalyRules {
    /// The default values: more than 20 % and more than $50 above the same weekday's median of
    /// the previous 4 weeks (the median of the previous 7 days when fewer than 3 of those have
    /// data), R-COST-5; AI spend above 150 % of its 7-day average, R-COST-6.
    pub fn seed() -> AnomalyRules {
        AnomalyRules {
            jump_percent: 20.0,
            jump_floor_usd: 50.0,
            same_weekday_weeks: 4,
            min_same_weekday_days: 3,
            fallback_days: 7,
            ai_service: DEFAULT_AI_SERVICE.into(),
            ai_percent_of_average: 150.0,
            ai_average_days: 7,
            ai_floor_usd: 0.0,
            check_account_total: true,
        }
    }

    /// Checks every parameter; the error names the field.
    pub fn validate(&self) -> Result<(), CostError> {
        let non_negative = |field: &'static str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(CostError::InvalidAnomalyRules {
                    field,
                    reason: format!("is {value}; it must be a number of 0 or more"),
                })
            }
        };
        non_negative("jump_percent", self.jump_percent)?;
        non_negative("jump_floor_usd", self.jump_floor_usd)?;
        non_negative("ai_percent_of_average", self.ai_percent_of_average)?;
        non_negative("ai_floor_usd", self.ai_floor_usd)?;
        let positive = |field: &'static str, value: u64| {
            if value > 0 {
                Ok(())
            } else {
                Err(CostError::InvalidAnomalyRules {
                    field,
                    reason: "is 0; it must be at least 1".into(),
                })
            }
        };
        positive("same_weekday_weeks", u64::from(self.same_weekday_weeks))?;
        positive("min_same_weekday_days", self.min_same_weekday_days as u64)?;
        positive("fallback_days", u64::from(self.fallback_days))?;
        positive("ai_average_days", u64::from(self.ai_average_days))?;
        if self.min_same_weekday_days > self.same_weekday_weeks as usize {
            return Err(CostError::InvalidAnomalyRules {
                field: "min_same_weekday_days",
                reason: format!(
                    "is {} but only {} weeks are looked at; make it at most same_weekday_weeks",
                    self.min_same_weekday_days, self.same_weekday_weeks
                ),
            });
        }
        if self.ai_service.trim().is_empty() {
            return Err(CostError::InvalidAnomalyRules {
                field: "ai_service",
                reason: "is empty; name the service that holds AI spend, like AI".into(),
            });
        }
        Ok(())
    }
}

impl Default for AnomalyRules {
    fn default() -> AnomalyRules {
        AnomalyRules::seed()
    }
}

/// Which rule found an anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyRule {
    /// More than the percent and more than the dollar floor above the expected spend.
    DailyJump,
    /// AI spend above its percent of the trailing average.
    AiSpend,
}

impl AnomalyRule {
    /// `daily_jump` or `ai_spend`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyRule::DailyJump => "daily_jump",
            AnomalyRule::AiSpend => "ai_spend",
        }
    }
}

/// What the expected spend was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Baseline {
    /// The median of the same weekday in previous weeks.
    SameWeekdayMedian,
    /// The median of the previous days (fallback).
    RecentMedian,
    /// The mean of the previous days (AI rule).
    TrailingMean,
}

/// One anomalous day of one service, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    pub day: NaiveDate,
    /// The service, or [`ACCOUNT_TOTAL`].
    pub service: String,
    pub rule: AnomalyRule,
    pub expected_usd: f64,
    pub actual_usd: f64,
    /// `actual_usd − expected_usd`.
    pub increase_usd: f64,
    /// The increase in percent of the expected spend; `None` when nothing was expected.
    pub increase_percent: Option<f64>,
    pub baseline: Baseline,
    /// Days with data the baseline was computed from.
    pub baseline_days: usize,
    /// Rollouts that started shortly before (see [`link_rollouts`]); empty from the detector.
    pub rollouts_before: Vec<String>,
}

impl Anomaly {
    /// Like `AI on 2025-06-10: $180.00 against $100.00 expected (+80%, ai_spend)`.
    pub fn summary(&self) -> String {
        let percent = self
            .increase_percent
            .map(|percent| format!("+{percent:.0}%"))
            .unwrap_or_else(|| "from nothing".into());
        format!(
            "{} on {}: ${:.2} against ${:.2} expected ({percent}, {})",
            self.service,
            self.day,
            self.actual_usd,
            self.expected_usd,
            self.rule.as_str()
        )
    }
}

/// One service's spend per observed day.
struct ObservedSeries<'a> {
    observed_days: &'a BTreeSet<NaiveDate>,
    amounts: &'a BTreeMap<NaiveDate, f64>,
}

impl ObservedSeries<'_> {
    /// The spend on `day`: `None` when the day has no data at all, $0 when it has data but none
    /// for this service.
    fn on(&self, day: NaiveDate) -> Option<f64> {
        if self.observed_days.contains(&day) {
            Some(self.amounts.get(&day).copied().unwrap_or(0.0))
        } else {
            None
        }
    }

    /// The spend on the `count` days before `day` that have data (up to `count`), within `count`
    /// calendar days.
    fn previous_days(&self, day: NaiveDate, count: u32) -> Vec<f64> {
        (1..=u64::from(count))
            .filter_map(|back| day.checked_sub_days(Days::new(back)))
            .filter_map(|earlier| self.on(earlier))
            .collect()
    }
}

/// The anomalies of `day`, per service with a row on that day (and for the account total when
/// the rules say so), from `series` (rows of any days; later days are ignored). See the module
/// documentation for the rules.
pub fn detect_anomalies(
    series: &[DailyCost],
    day: NaiveDate,
    rules: &AnomalyRules,
) -> Result<Vec<Anomaly>, CostError> {
    rules.validate()?;
    let mut by_service = daily_totals_by_service(series)?;
    let observed_days: BTreeSet<NaiveDate> = series.iter().map(|row| row.day).collect();
    if !observed_days.contains(&day) {
        return Ok(Vec::new());
    }
    let services_today: Vec<String> = by_service
        .iter()
        .filter(|(_, amounts)| amounts.contains_key(&day))
        .map(|(service, _)| service.clone())
        .collect();
    if rules.check_account_total {
        let mut totals = BTreeMap::new();
        for amounts in by_service.values() {
            for (when, amount) in amounts {
                *totals.entry(*when).or_insert(0.0) += amount;
            }
        }
        by_service.insert(ACCOUNT_TOTAL.to_string(), totals);
    }
    let mut checked: Vec<&str> = services_today.iter().map(String::as_str).collect();
    if rules.check_account_total {
        checked.push(ACCOUNT_TOTAL);
    }
    let mut anomalies = Vec::new();
    for service in checked {
        let Some(amounts) = by_service.get(service) else {
            continue;
        };
        let observed = ObservedSeries {
            observed_days: &observed_days,
            amounts,
        };
        let Some(actual_usd) = observed.on(day) else {
            continue;
        };
        if let Some(anomaly) = daily_jump(&observed, service, day, actual_usd, rules) {
            anomalies.push(anomaly);
        }
        if service == rules.ai_service {
            if let Some(anomaly) = ai_spend(&observed, service, day, actual_usd, rules) {
                anomalies.push(anomaly);
            }
        }
    }
    Ok(anomalies)
}

fn daily_jump(
    observed: &ObservedSeries<'_>,
    service: &str,
    day: NaiveDate,
    actual_usd: f64,
    rules: &AnomalyRules,
) -> Option<Anomaly> {
    let same_weekday: Vec<f64> = (1..=u64::from(rules.same_weekday_weeks))
        .filter_map(|weeks| day.checked_sub_days(Days::new(7 * weeks)))
        .filter_map(|earlier| observed.on(earlier))
        .collect();
    let (baseline, values) = if same_weekday.len() >= rules.min_same_weekday_days {
        (Baseline::SameWeekdayMedian, same_weekday)
    } else {
        (
            Baseline::RecentMedian,
            observed.previous_days(day, rules.fallback_days),
        )
    };
    let expected_usd = median(&values)?;
    let increase_usd = actual_usd - expected_usd;
    let percent_floor_usd = expected_usd.max(0.0) * rules.jump_percent / 100.0;
    if increase_usd > rules.jump_floor_usd && increase_usd > percent_floor_usd {
        Some(anomaly(
            day,
            service,
            AnomalyRule::DailyJump,
            expected_usd,
            actual_usd,
            baseline,
            values.len(),
        ))
    } else {
        None
    }
}

fn ai_spend(
    observed: &ObservedSeries<'_>,
    service: &str,
    day: NaiveDate,
    actual_usd: f64,
    rules: &AnomalyRules,
) -> Option<Anomaly> {
    let values = observed.previous_days(day, rules.ai_average_days);
    let average_usd = mean(&values)?;
    let limit_usd = average_usd.max(0.0) * rules.ai_percent_of_average / 100.0;
    if actual_usd > limit_usd && actual_usd - average_usd > rules.ai_floor_usd && actual_usd > 0.0 {
        Some(anomaly(
            day,
            service,
            AnomalyRule::AiSpend,
            average_usd,
            actual_usd,
            Baseline::TrailingMean,
            values.len(),
        ))
    } else {
        None
    }
}

fn anomaly(
    day: NaiveDate,
    service: &str,
    rule: AnomalyRule,
    expected_usd: f64,
    actual_usd: f64,
    baseline: Baseline,
    baseline_days: usize,
) -> Anomaly {
    let increase_usd = actual_usd - expected_usd;
    Anomaly {
        day,
        service: service.to_string(),
        rule,
        expected_usd,
        actual_usd,
        increase_usd,
        increase_percent: (expected_usd > 0.0).then(|| increase_usd / expected_usd * 100.0),
        baseline,
        baseline_days,
        rollouts_before: Vec::new(),
    }
}

/// Fills each anomaly's `rollouts_before` with the ids of the rollouts that started from `window`
/// before the anomaly's day began (00:00 UTC) until that day ended, oldest first: a rollout on
/// the day itself can raise that day's spend too. `rollouts` are `(id, started at, UTC)`.
pub fn link_rollouts(
    anomalies: Vec<Anomaly>,
    rollouts: &[(String, NaiveDateTime)],
    window: Duration,
) -> Vec<Anomaly> {
    anomalies
        .into_iter()
        .map(|mut anomaly| {
            let day_start = anomaly.day.and_time(chrono::NaiveTime::MIN);
            let from = day_start
                .checked_sub_signed(window)
                .unwrap_or(NaiveDateTime::MIN);
            let until = day_start
                .checked_add_signed(Duration::days(1))
                .unwrap_or(NaiveDateTime::MAX);
            let mut linked: Vec<&(String, NaiveDateTime)> = rollouts
                .iter()
                .filter(|(_, started)| *started >= from && *started < until)
                .collect();
            linked.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
            anomaly.rollouts_before = linked.into_iter().map(|(id, _)| id.clone()).collect();
            anomaly.rollouts_before.dedup();
            anomaly
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// `amount(day)` of `service` for every day of `first..=last`.
    fn rows(
        service: &str,
        first: &str,
        last: &str,
        amount: impl Fn(NaiveDate) -> f64,
    ) -> Vec<DailyCost> {
        day(first)
            .iter_days()
            .take_while(|d| *d <= day(last))
            .map(|d| DailyCost {
                day: d,
                service: service.into(),
                amount_usd: amount(d),
            })
            .collect()
    }

    fn only_services(rules: AnomalyRules) -> AnomalyRules {
        AnomalyRules {
            check_account_total: false,
            ..rules
        }
    }

    fn set(rows: &mut [DailyCost], when: &str, service: &str, amount_usd: f64) {
        for row in rows.iter_mut() {
            if row.day == day(when) && row.service == service {
                row.amount_usd = amount_usd;
            }
        }
    }

    #[test]
    fn a_jump_of_more_than_20_percent_and_50_dollars_is_an_anomaly() {
        // 2025-06-10 is a Tuesday.
        let mut series = rows("AWS Lambda", "2025-05-01", "2025-06-10", |_| 100.0);
        set(&mut series, "2025-06-10", "AWS Lambda", 160.0);
        let found = detect_anomalies(&series, day("2025-06-10"), &AnomalyRules::seed()).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        let lambda = &found[0];
        assert_eq!(lambda.service, "AWS Lambda");
        assert_eq!(lambda.rule, AnomalyRule::DailyJump);
        assert_eq!(lambda.expected_usd, 100.0);
        assert_eq!(lambda.actual_usd, 160.0);
        assert_eq!(lambda.increase_percent, Some(60.0));
        assert_eq!(lambda.baseline, Baseline::SameWeekdayMedian);
        assert_eq!(lambda.baseline_days, 4);
        assert!(lambda.rollouts_before.is_empty());
        assert_eq!(found[1].service, ACCOUNT_TOTAL);
        assert!(lambda.summary().contains("+60%"), "{}", lambda.summary());
    }

    #[test]
    fn both_floors_must_be_cleared() {
        // +40 % but only +$4: not money.
        let mut small = rows("Amazon CloudFront", "2025-05-01", "2025-06-10", |_| 10.0);
        set(&mut small, "2025-06-10", "Amazon CloudFront", 14.0);
        assert!(
            detect_anomalies(&small, day("2025-06-10"), &AnomalyRules::seed())
                .unwrap()
                .is_empty()
        );
        // +$60 but only +6 % of $1,000: within the service's normal range.
        let mut large = rows("Amazon RDS", "2025-05-01", "2025-06-10", |_| 1_000.0);
        set(&mut large, "2025-06-10", "Amazon RDS", 1_060.0);
        assert!(
            detect_anomalies(&large, day("2025-06-10"), &AnomalyRules::seed())
                .unwrap()
                .is_empty()
        );
        // +$51 and +25.5 %: both cleared.
        let mut both = rows("Amazon RDS", "2025-05-01", "2025-06-10", |_| 200.0);
        set(&mut both, "2025-06-10", "Amazon RDS", 251.0);
        let found = detect_anomalies(
            &both,
            day("2025-06-10"),
            &only_services(AnomalyRules::seed()),
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        // Exactly +$50 is not "more than $50".
        set(&mut both, "2025-06-10", "Amazon RDS", 250.0);
        assert!(detect_anomalies(
            &both,
            day("2025-06-10"),
            &only_services(AnomalyRules::seed())
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn the_floors_are_configurable() {
        let mut series = rows("Amazon CloudFront", "2025-05-01", "2025-06-10", |_| 10.0);
        set(&mut series, "2025-06-10", "Amazon CloudFront", 14.0);
        let rules = AnomalyRules {
            jump_floor_usd: 1.0,
            ..only_services(AnomalyRules::seed())
        };
        assert_eq!(
            detect_anomalies(&series, day("2025-06-10"), &rules)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_monday_that_is_always_high_is_not_an_anomaly() {
        // Mondays cost $300, other days $100. 2025-06-09 is a Monday.
        let monday_high = |d: NaiveDate| {
            if d.weekday().num_days_from_monday() == 0 {
                300.0
            } else {
                100.0
            }
        };
        let series = rows("AWS Lambda", "2025-05-01", "2025-06-09", monday_high);
        let rules = only_services(AnomalyRules::seed());
        assert!(detect_anomalies(&series, day("2025-06-09"), &rules)
            .unwrap()
            .is_empty());
        // Without the weekly pattern a $300 day after $100 days is one.
        let mut flat = rows("AWS Lambda", "2025-05-01", "2025-06-09", |_| 100.0);
        set(&mut flat, "2025-06-09", "AWS Lambda", 300.0);
        assert_eq!(
            detect_anomalies(&flat, day("2025-06-09"), &rules)
                .unwrap()
                .len(),
            1
        );
        // A Tuesday as high as a Monday is one too.
        let mut tuesday = rows("AWS Lambda", "2025-05-01", "2025-06-10", monday_high);
        set(&mut tuesday, "2025-06-10", "AWS Lambda", 300.0);
        let found = detect_anomalies(&tuesday, day("2025-06-10"), &rules).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].expected_usd, 100.0);
    }

    #[test]
    fn short_history_falls_back_to_the_median_of_the_last_seven_days() {
        let mut series = rows("AWS Lambda", "2025-06-01", "2025-06-10", |_| 100.0);
        set(&mut series, "2025-06-10", "AWS Lambda", 200.0);
        let found = detect_anomalies(
            &series,
            day("2025-06-10"),
            &only_services(AnomalyRules::seed()),
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].baseline, Baseline::RecentMedian);
        assert_eq!(found[0].baseline_days, 7);
        // The first day of data has no baseline: nothing is judged.
        let first = rows("AWS Lambda", "2025-06-01", "2025-06-01", |_| 500.0);
        assert!(
            detect_anomalies(&first, day("2025-06-01"), &AnomalyRules::seed())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_new_service_spending_more_than_50_dollars_is_unexpected() {
        let mut series = rows("AWS Lambda", "2025-05-01", "2025-06-10", |_| 100.0);
        series.push(DailyCost {
            day: day("2025-06-10"),
            service: "Amazon SageMaker".into(),
            amount_usd: 75.0,
        });
        let found = detect_anomalies(
            &series,
            day("2025-06-10"),
            &only_services(AnomalyRules::seed()),
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].service, "Amazon SageMaker");
        assert_eq!(found[0].expected_usd, 0.0);
        assert_eq!(found[0].increase_percent, None);
    }

    #[test]
    fn days_without_data_are_not_zero_days() {
        // Only two of the four previous Tuesdays have data: fall back to the last week, whose
        // missing days are left out rather than counted as $0. Counted as $0, the Tuesdays'
        // median would be $50 and $140 would be a jump of $90.
        let mut series = rows("AWS Lambda", "2025-05-01", "2025-06-10", |_| 100.0);
        series.retain(|row| row.day != day("2025-06-03") && row.day != day("2025-05-27"));
        set(&mut series, "2025-06-10", "AWS Lambda", 140.0);
        let found = detect_anomalies(&series, day("2025-06-10"), &AnomalyRules::seed()).unwrap();
        assert!(found.is_empty(), "{found:?}");
        // A day with no data yields nothing.
        assert!(
            detect_anomalies(&series, day("2025-06-03"), &AnomalyRules::seed())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn ai_spend_above_150_percent_of_its_7_day_average_is_an_anomaly() {
        let mut series = rows("AI", "2025-06-01", "2025-06-10", |_| 20.0);
        set(&mut series, "2025-06-10", "AI", 31.0);
        let found = detect_anomalies(
            &series,
            day("2025-06-10"),
            &only_services(AnomalyRules::seed()),
        )
        .unwrap();
        // $31 > 150 % of $20 = $30 (and +$11 is under the $50 daily-jump floor).
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].rule, AnomalyRule::AiSpend);
        assert_eq!(found[0].expected_usd, 20.0);
        assert_eq!(found[0].baseline, Baseline::TrailingMean);
        set(&mut series, "2025-06-10", "AI", 30.0);
        assert!(detect_anomalies(
            &series,
            day("2025-06-10"),
            &only_services(AnomalyRules::seed())
        )
        .unwrap()
        .is_empty());
        // The AI service's name is configurable.
        let renamed: Vec<DailyCost> = series
            .iter()
            .map(|row| DailyCost {
                service: "Anthropic".into(),
                amount_usd: if row.day == day("2025-06-10") {
                    40.0
                } else {
                    20.0
                },
                ..row.clone()
            })
            .collect();
        let rules = AnomalyRules {
            ai_service: "Anthropic".into(),
            ..only_services(AnomalyRules::seed())
        };
        assert_eq!(
            detect_anomalies(&renamed, day("2025-06-10"), &rules)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn invalid_rules_name_the_field() {
        let rules = AnomalyRules {
            jump_percent: -1.0,
            ..AnomalyRules::seed()
        };
        let message = detect_anomalies(&[], day("2025-06-10"), &rules)
            .unwrap_err()
            .to_string();
        assert!(message.contains("jump_percent"), "{message}");
        let rules = AnomalyRules {
            min_same_weekday_days: 5,
            ..AnomalyRules::seed()
        };
        assert!(rules.validate().is_err());
    }

    #[test]
    fn rollouts_in_the_window_before_the_day_are_linked() {
        let mut series = rows("AWS Lambda", "2025-05-01", "2025-06-10", |_| 100.0);
        set(&mut series, "2025-06-10", "AWS Lambda", 200.0);
        let found = detect_anomalies(
            &series,
            day("2025-06-10"),
            &only_services(AnomalyRules::seed()),
        )
        .unwrap();
        let at = |text: &str| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        let rollouts = vec![
            ("too-early".to_string(), at("2025-06-08 23:59")),
            ("evening-before".to_string(), at("2025-06-09 18:00")),
            ("just-in".to_string(), at("2025-06-09 00:00")),
            ("same-day".to_string(), at("2025-06-10 09:00")),
            ("next-day".to_string(), at("2025-06-11 00:00")),
        ];
        let linked = link_rollouts(found, &rollouts, Duration::hours(24));
        assert_eq!(
            linked[0].rollouts_before,
            vec!["just-in", "evening-before", "same-day"]
        );
    }
}
