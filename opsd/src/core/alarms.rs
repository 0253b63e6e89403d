//! Alarms as code: alarm rules read from YAML ("a metric crosses a threshold over a period, for N
//! periods"), and their evaluation against a release's per-second traffic.
//!
//! A rule file holds one or more rules:
//!
//! ```yaml
//! alarms:
//!   - name: lambda-error-rate
//!     description: Lambda error rate above 1 % rolls back and pages
//!     metric: error_rate
//!     comparison: ">"
//!     threshold: 0.01
//!     period: 1m
//!     evaluation_periods: 1
//!     severity: critical
//!     rollback: true
//!     notify: [pagerduty, slack]
//! ```
//!
//! invariant: an alarm is in ALARM only on data: a period without enough requests is no data,
//! and any period without data makes the rule INSUFFICIENT_DATA, never OK.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::analysis::histogram_quantile_ms;
use super::config_error::{locate_list_field, ConfigError};
use super::duration::{format_duration, ConfigDuration};
use super::plan::is_plain_name;
use super::traffic::{SecondSample, TrafficSample};

/// What an alarm watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmMetric {
    /// Failed requests over all requests in the period, a fraction (0.01 is 1 %).
    ErrorRate,
    /// The count of failed requests (5xx) in the period.
    ServerErrors,
    LatencyP99Ms,
    LatencyP95Ms,
    /// Consecutive failed health probes (no period: the count is passed in).
    HealthCheckFailures,
    /// Throttled invocations; supplied by the AWS platform only.
    Throttles,
    /// Database CPU utilisation in percent; supplied by the AWS platform only.
    DatabaseCpuPercent,
    /// Free database storage in bytes; supplied by the AWS platform only.
    DatabaseFreeStorageBytes,
}

/// Where a metric's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricSource {
    /// Computed from the release's per-second traffic samples.
    Traffic,
    /// The count of consecutive failed health probes.
    HealthChecks,
    /// Only a cloud platform's monitoring has it (CloudWatch on AWS).
    Platform,
}

impl AlarmMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmMetric::ErrorRate => "error_rate",
            AlarmMetric::ServerErrors => "server_errors",
            AlarmMetric::LatencyP99Ms => "latency_p99_ms",
            AlarmMetric::LatencyP95Ms => "latency_p95_ms",
            AlarmMetric::HealthCheckFailures => "health_check_failures",
            AlarmMetric::Throttles => "throttles",
            AlarmMetric::DatabaseCpuPercent => "database_cpu_percent",
            AlarmMetric::DatabaseFreeStorageBytes => "database_free_storage_bytes",
        }
    }

    pub fn source(self) -> MetricSource {
        match self {
            AlarmMetric::ErrorRate
            | AlarmMetric::ServerErrors
            | AlarmMetric::LatencyP99Ms
            | AlarmMetric::LatencyP95Ms => MetricSource::Traffic,
            AlarmMetric::HealthCheckFailures => MetricSource::HealthChecks,
            AlarmMetric::Throttles
            | AlarmMetric::DatabaseCpuPercent
            | AlarmMetric::DatabaseFreeStorageBytes => MetricSource::Platform,
        }
    }

    /// The metric's value written for people, like `3.20 %`, `850 ms` or `9.5 GiB`.
    pub fn format_value(self, value: f64) -> String {
        match self {
            AlarmMetric::ErrorRate => format!("{:.2} %", value * 100.0),
            AlarmMetric::LatencyP99Ms | AlarmMetric::LatencyP95Ms => {
                if value > 10_000.0 {
                    "more than 10000 ms".to_string()
                } else {
                    format!("{value:.0} ms")
                }
            }
            AlarmMetric::DatabaseCpuPercent => format!("{value:.1} %"),
            AlarmMetric::DatabaseFreeStorageBytes => {
                format!("{:.1} GiB", value / (1024.0 * 1024.0 * 1024.0))
            }
            AlarmMetric::ServerErrors
            | AlarmMetric::HealthCheckFailures
            | AlarmMetric::Throttles => format!("{value:.0}"),
        }
    }
}

impl fmt::Display for AlarmMetric {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// How the metric is compared with the threshold. YAML: `">"` or `greater_than`, `"<"` or
/// `less_than`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    GreaterThan,
    LessThan,
}

impl Comparison {
    /// Whether `value` is on the alarming side of `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThan => value > threshold,
            Comparison::LessThan => value < threshold,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::GreaterThan => ">",
            Comparison::LessThan => "<",
        }
    }
}

impl<'de> Deserialize<'de> for Comparison {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ComparisonVisitor)
    }
}

struct ComparisonVisitor;

impl Visitor<'_> for ComparisonVisitor {
    type Value = Comparison;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("\">\", \"<\", greater_than or less_than")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Comparison, E> {
        match text.trim() {
            ">" | "greater_than" => Ok(Comparison::GreaterThan),
            "<" | "less_than" => Ok(Comparison::LessThan),
            other => Err(E::custom(format!(
                "{other:?} is not a comparison; use \">\" (or greater_than) or \"<\" (or less_than), quoted in YAML"
            ))),
        }
    }
}

/// Who hears about an alarm, and how loudly.
pub use super::severity::Severity;

/// One alarm rule: "the metric is on the wrong side of the threshold in each of the last
/// `evaluation_periods` complete periods of length `period`".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRule {
    pub name: String,
    pub description: String,
    pub metric: AlarmMetric,
    pub comparison: Comparison,
    pub threshold: f64,
    /// Zero for `health_check_failures`, which has no period.
    pub period: Duration,
    pub evaluation_periods: u32,
    pub severity: Severity,
    /// Whether ALARM rolls a canary back.
    pub rollback: bool,
    /// Notification targets by name (`pagerduty`, `slack`, `sns`, ...), defined elsewhere.
    pub notify: Vec<String>,
    /// A traffic period with fewer requests than this has no data.
    pub min_requests_per_period: u64,
}

impl AlarmRule {
    /// `error_rate > 0.01 for 1 period of 1m`, for timelines and logs.
    pub fn describe_condition(&self) -> String {
        let condition = format!(
            "{} {} {}",
            self.metric,
            self.comparison.symbol(),
            self.metric.format_value(self.threshold)
        );
        if self.metric == AlarmMetric::HealthCheckFailures {
            return condition;
        }
        let periods = if self.evaluation_periods == 1 {
            "1 period".to_string()
        } else {
            format!("{} periods", self.evaluation_periods)
        };
        format!(
            "{condition} for {periods} of {}",
            format_duration(self.period)
        )
    }
}

/// An alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl fmt::Display for AlarmState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        })
    }
}

/// One evaluated period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodValue {
    /// The period covers `start_second .. start_second + period` (seconds since the epoch).
    pub start_second: i64,
    /// `None` when the period has no data (too few requests).
    pub value: Option<f64>,
    pub requests: u64,
    pub breaching: bool,
}

/// An alarm that a platform's own monitoring evaluates (a CloudWatch alarm on AWS), as the
/// reconciler last read it. opsd does not judge it; it only acts on its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalAlarm {
    pub name: String,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`, as the platform reports it.
    pub state: String,
    /// The platform's own explanation of the state.
    pub reason: String,
    /// Whether this alarm in ALARM rolls a canary back (a rule with `rollback: true`, or an alarm
    /// the service lists as a rollback trigger).
    pub rolls_back: bool,
}

impl ExternalAlarm {
    pub fn is_firing(&self) -> bool {
        self.state == "ALARM"
    }
}

/// An alarm rule's evaluation, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmEvaluation {
    pub rule: String,
    pub metric: AlarmMetric,
    pub comparison: Comparison,
    pub state: AlarmState,
    /// The latest period's value (or the health failure count).
    pub value: Option<f64>,
    pub threshold: f64,
    /// Oldest first; the last one ends at the evaluation's `now_second`.
    pub periods: Vec<PeriodValue>,
    pub severity: Severity,
    pub rollback: bool,
    pub reason: String,
}

/// Evaluates `rule` at `now_second` over a release's per-second `series` (complete periods only:
/// the newest ends at `now_second`, exclusive) or, for `health_check_failures`, the count of
/// consecutive failed probes.
pub fn evaluate_alarm(
    rule: &AlarmRule,
    series: &[SecondSample],
    consecutive_health_failures: u32,
    now_second: i64,
) -> AlarmEvaluation {
    let mut evaluation = AlarmEvaluation {
        rule: rule.name.clone(),
        metric: rule.metric,
        comparison: rule.comparison,
        state: AlarmState::InsufficientData,
        value: None,
        threshold: rule.threshold,
        periods: Vec::new(),
        severity: rule.severity,
        rollback: rule.rollback,
        reason: String::new(),
    };
    let condition = format!(
        "{} {}",
        rule.comparison.symbol(),
        rule.metric.format_value(rule.threshold)
    );
    match rule.metric.source() {
        MetricSource::Platform => {
            evaluation.reason = format!(
                "this platform supplies no {} metric; it is evaluated from CloudWatch on AWS",
                rule.metric
            );
        }
        MetricSource::HealthChecks => {
            let value = f64::from(consecutive_health_failures);
            evaluation.value = Some(value);
            let breaching = rule.comparison.breaches(value, rule.threshold);
            evaluation.state = if breaching {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            };
            evaluation.reason = format!(
                "{consecutive_health_failures} consecutive failed health checks{} {condition}",
                if breaching { "" } else { ", not" }
            );
        }
        MetricSource::Traffic => {
            evaluate_traffic(rule, series, now_second, &condition, &mut evaluation)
        }
    }
    evaluation
}

fn evaluate_traffic(
    rule: &AlarmRule,
    series: &[SecondSample],
    now_second: i64,
    condition: &str,
    evaluation: &mut AlarmEvaluation,
) {
    let period_seconds = i64::try_from(rule.period.as_secs()).unwrap_or(i64::MAX);
    if period_seconds == 0 {
        evaluation.reason = "the rule's period is shorter than one second".to_string();
        return;
    }
    let count = i64::from(rule.evaluation_periods.max(1));
    let window_start = now_second.saturating_sub(period_seconds.saturating_mul(count));

    // One pass over the series: each second into its period.
    let mut sums = vec![TrafficSample::default(); count as usize];
    for entry in series {
        if entry.second >= window_start && entry.second < now_second {
            let index = ((entry.second - window_start) / period_seconds) as usize;
            if let Some(sum) = sums.get_mut(index) {
                sum.add(&entry.sample);
            }
        }
    }

    evaluation.periods = sums
        .iter()
        .enumerate()
        .map(|(index, sum)| {
            let value = period_value(rule, sum);
            PeriodValue {
                start_second: window_start + index as i64 * period_seconds,
                value,
                requests: sum.requests,
                breaching: value
                    .is_some_and(|value| rule.comparison.breaches(value, rule.threshold)),
            }
        })
        .collect();
    evaluation.value = evaluation.periods.last().and_then(|period| period.value);

    let period_text = format_duration(rule.period);
    let missing: Vec<&PeriodValue> = evaluation
        .periods
        .iter()
        .filter(|period| period.value.is_none())
        .collect();
    if let Some(first_missing) = missing.first() {
        evaluation.state = AlarmState::InsufficientData;
        evaluation.reason = format!(
            "{} of {} periods of {period_text} lack data: the one starting at second {} had {} requests; at least {} are needed",
            missing.len(),
            count,
            first_missing.start_second,
            first_missing.requests,
            rule.min_requests_per_period.max(1)
        );
        return;
    }
    let breaching = evaluation
        .periods
        .iter()
        .filter(|period| period.breaching)
        .count();
    let latest = evaluation
        .value
        .map(|value| rule.metric.format_value(value))
        .unwrap_or_default();
    if breaching as i64 == count {
        evaluation.state = AlarmState::Alarm;
        evaluation.reason = if count == 1 {
            format!(
                "{} {latest} {condition} over the last {period_text}",
                rule.metric
            )
        } else {
            format!(
                "{} {condition} in each of the last {count} periods of {period_text} (latest {latest})",
                rule.metric
            )
        };
    } else {
        evaluation.state = AlarmState::Ok;
        evaluation.reason = if count == 1 {
            format!(
                "{} {latest} is not {condition} over the last {period_text}",
                rule.metric
            )
        } else {
            format!(
                "{} was {condition} in {breaching} of the last {count} periods of {period_text}, not all (latest {latest})",
                rule.metric
            )
        };
    }
}

/// The metric over one period's traffic; `None` when it has too few requests.
fn period_value(rule: &AlarmRule, sum: &TrafficSample) -> Option<f64> {
    if sum.requests < rule.min_requests_per_period.max(1) {
        return None;
    }
    match rule.metric {
        AlarmMetric::ErrorRate => sum.error_rate(),
        AlarmMetric::ServerErrors => Some(sum.errors as f64),
        AlarmMetric::LatencyP99Ms => histogram_quantile_ms(sum, 0.99),
        AlarmMetric::LatencyP95Ms => histogram_quantile_ms(sum, 0.95),
        AlarmMetric::HealthCheckFailures
        | AlarmMetric::Throttles
        | AlarmMetric::DatabaseCpuPercent
        | AlarmMetric::DatabaseFreeStorageBytes => None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlarmFile {
    alarms: Vec<RawAlarmRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlarmRule {
    name: String,
    #[serde(default)]
    description: String,
    metric: AlarmMetric,
    comparison: Comparison,
    threshold: f64,
    #[serde(default)]
    period: Option<ConfigDuration>,
    #[serde(default)]
    evaluation_periods: Option<u32>,
    severity: Severity,
    #[serde(default)]
    rollback: bool,
    #[serde(default)]
    notify: Vec<String>,
    #[serde(default)]
    min_requests_per_period: Option<u64>,
}

/// CloudWatch's limits, kept so rules sync to it: periods × evaluation periods ≤ one day, and at
/// most 1,440 evaluation periods.
const LONGEST_EVALUATION: Duration = Duration::from_secs(24 * 60 * 60);
const MOST_EVALUATION_PERIODS: u32 = 1_440;

/// A rule that parsed but makes no sense: which field, and why.
struct RuleViolation {
    field: &'static str,
    message: String,
}

fn violation(field: &'static str, message: impl Into<String>) -> RuleViolation {
    RuleViolation {
        field,
        message: message.into(),
    }
}

fn validate_rule(raw: RawAlarmRule) -> Result<AlarmRule, RuleViolation> {
    let name = raw.name.trim().to_string();
    if !is_plain_name(&name) {
        return Err(violation(
            "name",
            format!(
                "{:?} is not an alarm name; use 1 to 100 letters, digits, '-', '_' or '.'",
                raw.name
            ),
        ));
    }
    validate_threshold(raw.metric, raw.comparison, raw.threshold)?;

    let source = raw.metric.source();
    let (period, evaluation_periods) = if source == MetricSource::HealthChecks {
        if raw.period.is_some() {
            return Err(violation(
                "period",
                "health_check_failures counts consecutive failed probes and has no period; remove it",
            ));
        }
        if raw.evaluation_periods.is_some() {
            return Err(violation(
                "evaluation_periods",
                "health_check_failures counts consecutive failed probes; set the count as the threshold instead",
            ));
        }
        (Duration::ZERO, 1)
    } else {
        let Some(ConfigDuration(period)) = raw.period else {
            return Err(violation(
                "period",
                format!("{} needs a period, like `period: 1m`", raw.metric),
            ));
        };
        if period < Duration::from_secs(1) || period.subsec_nanos() != 0 {
            return Err(violation(
                "period",
                format!(
                    "{} is not a period; use whole seconds, at least 1s",
                    format_duration(period)
                ),
            ));
        }
        let evaluation_periods = raw.evaluation_periods.unwrap_or(1);
        if evaluation_periods == 0 {
            return Err(violation("evaluation_periods", "must be at least 1"));
        }
        if evaluation_periods > MOST_EVALUATION_PERIODS {
            return Err(violation(
                "evaluation_periods",
                format!("{evaluation_periods} is too many; use at most {MOST_EVALUATION_PERIODS} (a longer period instead)"),
            ));
        }
        if period.saturating_mul(evaluation_periods) > LONGEST_EVALUATION {
            return Err(violation(
                "evaluation_periods",
                format!(
                    "{evaluation_periods} periods of {} exceed one day, the longest an alarm may look back",
                    format_duration(period)
                ),
            ));
        }
        (period, evaluation_periods)
    };

    let min_requests_per_period = match (source, raw.min_requests_per_period) {
        (MetricSource::Traffic, Some(0)) => {
            return Err(violation(
                "min_requests_per_period",
                "must be at least 1: a period without requests has no data",
            ))
        }
        (MetricSource::Traffic, minimum) => minimum.unwrap_or(1),
        (_, Some(_)) => {
            return Err(violation(
                "min_requests_per_period",
                format!("{} is not computed from requests; remove it", raw.metric),
            ))
        }
        (_, None) => 0,
    };

    for (index, target) in raw.notify.iter().enumerate() {
        if !is_plain_name(target) {
            return Err(violation(
                "notify",
                format!(
                    "{target:?} is not a notification target name (like pagerduty, slack or sns)"
                ),
            ));
        }
        if raw.notify[..index].contains(target) {
            return Err(violation("notify", format!("{target:?} is listed twice")));
        }
    }

    Ok(AlarmRule {
        name,
        description: raw.description.trim().to_string(),
        metric: raw.metric,
        comparison: raw.comparison,
        threshold: raw.threshold,
        period,
        evaluation_periods,
        severity: raw.severity,
        rollback: raw.rollback,
        notify: raw.notify,
        min_requests_per_period,
    })
}

fn validate_threshold(
    metric: AlarmMetric,
    comparison: Comparison,
    threshold: f64,
) -> Result<(), RuleViolation> {
    if !threshold.is_finite() {
        return Err(violation("threshold", "must be a finite number"));
    }
    let (lowest, highest, unit_hint) = match metric {
        AlarmMetric::ErrorRate => (
            0.0,
            1.0,
            "error_rate is a fraction from 0 to 1 (0.01 is 1 %)",
        ),
        AlarmMetric::DatabaseCpuPercent => (
            0.0,
            100.0,
            "database_cpu_percent is a percentage from 0 to 100",
        ),
        AlarmMetric::ServerErrors | AlarmMetric::HealthCheckFailures | AlarmMetric::Throttles => {
            (0.0, f64::INFINITY, "counts cannot be negative")
        }
        AlarmMetric::LatencyP99Ms | AlarmMetric::LatencyP95Ms => {
            (0.0, f64::INFINITY, "latencies are milliseconds, 0 or more")
        }
        AlarmMetric::DatabaseFreeStorageBytes => {
            (0.0, f64::INFINITY, "storage is in bytes, 0 or more")
        }
    };
    if threshold < lowest || threshold > highest {
        return Err(violation(
            "threshold",
            format!("{threshold} is out of range: {unit_hint}"),
        ));
    }
    let never_fires = match comparison {
        Comparison::LessThan => threshold <= lowest,
        Comparison::GreaterThan => threshold >= highest,
    };
    if never_fires {
        return Err(violation(
            "threshold",
            format!(
                "{metric} {} {threshold} can never be true, so the alarm could never fire",
                comparison.symbol()
            ),
        ));
    }
    Ok(())
}

/// Reads the alarm rules of one YAML file; `file_name` names it in errors.
pub fn parse_alarm_file(file_name: &str, text: &str) -> Result<Vec<AlarmRule>, ConfigError> {
    if text
        .lines()
        .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
    {
        return Err(ConfigError::new(
            file_name,
            "the file is empty; it needs `alarms:` with a list of rules",
        ));
    }
    let raw: RawAlarmFile = serde_yaml::from_str(text)
        .map_err(|error| ConfigError::from_yaml(file_name, text, &error))?;
    let mut rules: Vec<AlarmRule> = Vec::with_capacity(raw.alarms.len());
    for (index, raw_rule) in raw.alarms.into_iter().enumerate() {
        let rule = validate_rule(raw_rule).map_err(|violation| {
            ConfigError::new(file_name, violation.message)
                .with_field(format!("alarms[{index}].{}", violation.field))
                .at(locate_list_field(
                    text,
                    "alarms",
                    index,
                    Some(violation.field),
                ))
        })?;
        if rules.iter().any(|earlier| earlier.name == rule.name) {
            return Err(ConfigError::new(
                file_name,
                format!(
                    "alarm {:?} is defined twice in this file; names must be unique",
                    rule.name
                ),
            )
            .with_field(format!("alarms[{index}].name"))
            .at(locate_list_field(text, "alarms", index, Some("name"))));
        }
        rules.push(rule);
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::files::load_alarm_dir;

    const EXAMPLE: &str = r#"
alarms:
  - name: lambda-error-rate
    description: Lambda error rate above 1 % rolls back and pages
    metric: error_rate
    comparison: ">"
    threshold: 0.01
    period: 1m
    evaluation_periods: 1
    severity: critical
    rollback: true
    notify: [pagerduty, slack]
  - name: slow
    metric: latency_p95_ms
    comparison: greater_than
    threshold: 2000
    period: 30
    evaluation_periods: 3
    severity: warning
    min_requests_per_period: 20
"#;

    fn error_rate_rule() -> AlarmRule {
        parse_alarm_file("example.yaml", EXAMPLE).unwrap().remove(0)
    }

    #[test]
    fn parses_rules_with_defaults() {
        let rules = parse_alarm_file("example.yaml", EXAMPLE).unwrap();
        assert_eq!(rules.len(), 2);
        let first = &rules[0];
        assert_eq!(first.metric, AlarmMetric::ErrorRate);
        assert_eq!(first.comparison, Comparison::GreaterThan);
        assert_eq!(first.period, Duration::from_secs(60));
        assert_eq!(first.notify, vec!["pagerduty", "slack"]);
        assert_eq!(first.min_requests_per_period, 1);
        assert_eq!(
            first.describe_condition(),
            "error_rate > 1.00 % for 1 period of 1m"
        );
        let second = &rules[1];
        assert_eq!(
            (second.period, second.evaluation_periods),
            (Duration::from_secs(30), 3)
        );
        assert_eq!(
            (second.rollback, second.min_requests_per_period),
            (false, 20)
        );
        assert!(second.description.is_empty() && second.notify.is_empty());

        // Rules survive the JSON the rollout state is stored in.
        let json = serde_json::to_string(&rules).unwrap();
        assert!(json.contains("\"comparison\":\"greater_than\""), "{json}");
        let back: Vec<AlarmRule> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rules);
    }

    fn error_of(text: &str) -> ConfigError {
        parse_alarm_file("alarms.yaml", text).unwrap_err()
    }

    fn rule_text(overrides: &[(&str, &str)]) -> String {
        let mut fields = vec![
            ("name", "rule"),
            ("metric", "error_rate"),
            ("comparison", "\">\""),
            ("threshold", "0.01"),
            ("period", "1m"),
            ("severity", "critical"),
        ];
        for (key, value) in overrides {
            match fields.iter_mut().find(|(existing, _)| existing == key) {
                Some(field) => field.1 = value,
                None => fields.push((key, value)),
            }
        }
        let mut text = "alarms:\n".to_string();
        for (index, (key, value)) in fields
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .enumerate()
        {
            let lead = if index == 0 { "  - " } else { "    " };
            text.push_str(&format!("{lead}{key}: {value}\n"));
        }
        text
    }

    fn line_of(text: &str, key: &str) -> usize {
        text.lines()
            .position(|line| {
                line.trim_start()
                    .trim_start_matches("- ")
                    .starts_with(&format!("{key}:"))
            })
            .unwrap()
            + 1
    }

    #[test]
    fn bad_rules_name_file_line_and_field() {
        // (fields to change, the field the error must name, words the message must contain)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: [Case; 15] = [
            (&[("colour", "red")], "colour", "unknown field"),
            (&[("threshold", "lots")], "threshold", "invalid type"),
            (&[("metric", "cpu")], "metric", "unknown variant"),
            (
                &[("comparison", "\">=\"")],
                "comparison",
                "not a comparison",
            ),
            (&[("threshold", "1.5")], "threshold", "fraction from 0 to 1"),
            (
                &[("metric", "server_errors"), ("threshold", "-1")],
                "threshold",
                "cannot be negative",
            ),
            (
                &[("metric", "database_cpu_percent"), ("threshold", "120")],
                "threshold",
                "0 to 100",
            ),
            (&[("threshold", "1")], "threshold", "never be true"),
            (&[("period", "0s")], "period", "at least 1s"),
            (&[("period", "1500ms")], "period", "whole seconds"),
            (&[("period", "5 parsecs")], "period", "5 parsecs"),
            (
                &[("evaluation_periods", "0")],
                "evaluation_periods",
                "at least 1",
            ),
            (
                &[("evaluation_periods", "25"), ("period", "1h")],
                "evaluation_periods",
                "exceed one day",
            ),
            (&[("notify", "[slack, slack]")], "notify", "listed twice"),
            (
                &[("min_requests_per_period", "0")],
                "min_requests_per_period",
                "at least 1",
            ),
        ];
        for (overrides, field, words) in cases {
            let text = rule_text(overrides);
            let error = error_of(&text);
            assert_eq!(error.file, "alarms.yaml");
            assert_eq!(
                error.field.as_deref(),
                Some(format!("alarms[0].{field}").as_str()),
                "{error}\n{text}"
            );
            assert_eq!(error.line, Some(line_of(&text, field)), "{error}\n{text}");
            assert!(error.message.contains(words), "{error}");
        }

        let health_with_period = error_of(&rule_text(&[
            ("metric", "health_check_failures"),
            ("threshold", "2"),
        ]));
        assert_eq!(
            health_with_period.field.as_deref(),
            Some("alarms[0].period")
        );
        let missing_period = error_of(&rule_text(&[("period", "")]));
        assert_eq!(missing_period.field.as_deref(), Some("alarms[0].period"));
        let missing_severity = error_of(&rule_text(&[("severity", "")]));
        assert!(
            missing_severity
                .message
                .contains("missing field `severity`"),
            "{missing_severity}"
        );

        let twice = format!(
            "{}{}",
            rule_text(&[]),
            rule_text(&[]).replace("alarms:\n", "")
        );
        let error = error_of(&twice);
        assert_eq!(
            (error.line, error.field.as_deref()),
            (Some(8), Some("alarms[1].name"))
        );
        assert!(
            error
                .to_string()
                .starts_with("alarms.yaml:8:5: alarms[1].name: alarm \"rule\" is defined twice"),
            "{error}"
        );

        assert!(error_of("# nothing here\n\n").message.contains("empty"));
        assert!(error_of("alarm:\n  - name: x\n")
            .message
            .contains("unknown field `alarm`"));
    }

    /// What a shipped alarm rule must say: R-ALARM-1 to R-ALARM-9 in docs/requirements.md.
    struct RequiredAlarm {
        name: &'static str,
        metric: AlarmMetric,
        comparison: Comparison,
        threshold: f64,
        /// Period length and count; the window is their product ("for 5 minutes").
        period: Duration,
        periods: u32,
        severity: Severity,
        rollback: bool,
        notify: &'static [&'static str],
    }

    #[test]
    fn the_shipped_alarms_carry_the_required_numbers() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../alarms");
        let rules = load_alarm_dir(&dir).unwrap();
        assert_eq!(rules.len(), 9);
        let minutes = |count: u64| Duration::from_secs(count * 60);
        let required = [
            RequiredAlarm {
                name: "lambda-error-rate",
                metric: AlarmMetric::ErrorRate,
                comparison: Comparison::GreaterThan,
                threshold: 0.01,
                period: minutes(1),
                periods: 1,
                severity: Severity::Critical,
                rollback: true,
                notify: &["pagerduty", "slack"],
            },
            RequiredAlarm {
                name: "api-5xx",
                metric: AlarmMetric::ServerErrors,
                comparison: Comparison::GreaterThan,
                threshold: 5.0,
                period: minutes(5),
                periods: 1,
                severity: Severity::Critical,
                rollback: false,
                notify: &["pagerduty", "sns"],
            },
            RequiredAlarm {
                name: "p99-latency",
                metric: AlarmMetric::LatencyP99Ms,
                comparison: Comparison::GreaterThan,
                threshold: 10_000.0,
                period: minutes(1),
                periods: 5,
                severity: Severity::Critical,
                rollback: true,
                notify: &["pagerduty"],
            },
            RequiredAlarm {
                name: "api-p95-latency",
                metric: AlarmMetric::LatencyP95Ms,
                comparison: Comparison::GreaterThan,
                threshold: 2_000.0,
                period: minutes(5),
                periods: 1,
                severity: Severity::Warning,
                rollback: false,
                notify: &["slack"],
            },
            RequiredAlarm {
                name: "rds-cpu",
                metric: AlarmMetric::DatabaseCpuPercent,
                comparison: Comparison::GreaterThan,
                threshold: 80.0,
                period: minutes(1),
                periods: 10,
                severity: Severity::Critical,
                rollback: false,
                notify: &["pagerduty"],
            },
            RequiredAlarm {
                name: "rds-free-storage",
                metric: AlarmMetric::DatabaseFreeStorageBytes,
                comparison: Comparison::LessThan,
                threshold: 10.0 * 1024.0 * 1024.0 * 1024.0,
                period: minutes(5),
                periods: 1,
                severity: Severity::Warning,
                rollback: false,
                notify: &["sns"],
            },
            RequiredAlarm {
                name: "lambda-throttles",
                metric: AlarmMetric::Throttles,
                comparison: Comparison::GreaterThan,
                threshold: 0.0,
                period: minutes(1),
                periods: 1,
                severity: Severity::Warning,
                rollback: false,
                notify: &["slack"],
            },
            RequiredAlarm {
                name: "health-check",
                metric: AlarmMetric::HealthCheckFailures,
                comparison: Comparison::GreaterThan,
                threshold: 2.0,
                period: Duration::ZERO,
                periods: 1,
                severity: Severity::Critical,
                rollback: true,
                notify: &["pagerduty"],
            },
            RequiredAlarm {
                name: "response-time-sla",
                metric: AlarmMetric::LatencyP99Ms,
                comparison: Comparison::GreaterThan,
                threshold: 5000.0,
                period: minutes(1),
                periods: 1,
                severity: Severity::Critical,
                rollback: true,
                notify: &["pagerduty", "slack"],
            },
        ];
        for expected in &required {
            let name = expected.name;
            let rule = rules
                .iter()
                .find(|rule| rule.name == name)
                .unwrap_or_else(|| panic!("no alarm rule {name}"));
            assert_eq!(rule.metric, expected.metric, "{name}");
            assert_eq!(rule.comparison, expected.comparison, "{name}");
            assert_eq!(rule.threshold, expected.threshold, "{name}");
            assert_eq!(rule.period, expected.period, "{name}");
            assert_eq!(rule.evaluation_periods, expected.periods, "{name}");
            assert_eq!(rule.severity, expected.severity, "{name}");
            assert_eq!(rule.rollback, expected.rollback, "{name}");
            assert_eq!(rule.notify, expected.notify, "{name}");
            assert!(!rule.description.is_empty(), "{name}");
        }
        // In the requirements' own words: p99 over 10 s for 5 minutes (R-ALARM-3), CPU over 80 %
        // for 10 minutes (R-ALARM-5), and the third consecutive failed health check rolls back
        // (R-ALARM-8).
        let rule = |name: &str| rules.iter().find(|rule| rule.name == name).unwrap();
        assert_eq!(
            rule("p99-latency").period * rule("p99-latency").evaluation_periods,
            minutes(5)
        );
        assert_eq!(
            rule("rds-cpu").period * rule("rds-cpu").evaluation_periods,
            minutes(10)
        );
        assert_eq!(
            evaluate_alarm(rule("health-check"), &[], 3, 0).state,
            AlarmState::Alarm
        );
        assert_eq!(
            evaluate_alarm(rule("health-check"), &[], 2, 0).state,
            AlarmState::Ok
        );
    }

    /// `seconds` of traffic ending just before `end`: `per_second` requests, `errors_per_second`
    /// of them failing, all at `latency_ms`.
    fn series(
        end: i64,
        seconds: i64,
        per_second: u64,
        errors_per_second: u64,
        latency_ms: u64,
    ) -> Vec<SecondSample> {
        (end - seconds..end)
            .map(|second| {
                let mut sample = TrafficSample::default();
                for index in 0..per_second {
                    sample.record(latency_ms, index < errors_per_second);
                }
                SecondSample { second, sample }
            })
            .collect()
    }

    #[test]
    fn error_rate_over_the_last_complete_period() {
        let rule = error_rate_rule();
        let now = 10_000;
        let bad = evaluate_alarm(&rule, &series(now, 60, 10, 1, 50), 0, now);
        assert_eq!(bad.state, AlarmState::Alarm, "{}", bad.reason);
        assert_eq!(bad.value, Some(0.1));
        assert_eq!(bad.periods.len(), 1);
        assert_eq!(bad.periods[0].start_second, now - 60);
        assert_eq!(bad.periods[0].requests, 600);
        assert!(bad.rollback && bad.severity == Severity::Critical);
        assert!(
            bad.reason.contains("10.00 %") && bad.reason.contains("> 1.00 %"),
            "{}",
            bad.reason
        );

        let good = evaluate_alarm(&rule, &series(now, 60, 500, 1, 50), 0, now);
        assert_eq!(good.state, AlarmState::Ok, "{}", good.reason);

        // The second `now` itself is still in progress and not counted.
        let mut in_progress = series(now, 60, 500, 1, 50);
        in_progress.extend(series(now + 1, 1, 10, 10, 50));
        assert_eq!(
            evaluate_alarm(&rule, &in_progress, 0, now).state,
            AlarmState::Ok
        );

        let silent = evaluate_alarm(&rule, &[], 0, now);
        assert_eq!(silent.state, AlarmState::InsufficientData);
        assert_eq!(silent.value, None);
        assert!(
            silent.reason.contains("had 0 requests"),
            "{}",
            silent.reason
        );
    }

    #[test]
    fn every_period_must_breach_and_every_period_needs_data() {
        let rules = parse_alarm_file("example.yaml", EXAMPLE).unwrap();
        let slow = &rules[1]; // p95 > 2000 ms in each of 3 periods of 30 s, 20 requests each
        let now = 5_000;
        let all_slow = series(now, 90, 1, 0, 3_000);
        let evaluation = evaluate_alarm(slow, &all_slow, 0, now);
        assert_eq!(evaluation.state, AlarmState::Alarm, "{}", evaluation.reason);
        let starts: Vec<i64> = evaluation
            .periods
            .iter()
            .map(|period| period.start_second)
            .collect();
        assert_eq!(starts, vec![now - 90, now - 60, now - 30]);

        let mut recovered = series(now - 30, 60, 1, 0, 3_000);
        recovered.extend(series(now, 30, 1, 0, 100));
        let evaluation = evaluate_alarm(slow, &recovered, 0, now);
        assert_eq!(evaluation.state, AlarmState::Ok, "{}", evaluation.reason);
        assert!(
            evaluation.reason.contains("2 of the last 3"),
            "{}",
            evaluation.reason
        );

        // A quiet middle period (10 requests, 20 needed) is no data, not OK.
        let mut gap = series(now - 60, 30, 1, 0, 3_000);
        gap.extend(series(now - 30, 10, 1, 0, 3_000));
        gap.extend(series(now, 30, 1, 0, 3_000));
        let evaluation = evaluate_alarm(slow, &gap, 0, now);
        assert_eq!(
            evaluation.state,
            AlarmState::InsufficientData,
            "{}",
            evaluation.reason
        );
        assert_eq!(evaluation.periods[1].value, None);
        assert!(
            evaluation.reason.contains("at least 20"),
            "{}",
            evaluation.reason
        );
    }

    #[test]
    fn latency_beyond_ten_seconds_trips_the_p99_rule() {
        let rule = AlarmRule {
            name: "p99".into(),
            description: String::new(),
            metric: AlarmMetric::LatencyP99Ms,
            comparison: Comparison::GreaterThan,
            threshold: 10_000.0,
            period: Duration::from_secs(60),
            evaluation_periods: 5,
            severity: Severity::Critical,
            rollback: true,
            notify: vec![],
            min_requests_per_period: 1,
        };
        let now = 1_000;
        let mut timeouts = series(now, 300, 98, 0, 100);
        timeouts.extend(series(now, 300, 2, 2, 30_000));
        let evaluation = evaluate_alarm(&rule, &timeouts, 0, now);
        assert_eq!(evaluation.state, AlarmState::Alarm, "{}", evaluation.reason);
        assert!(
            evaluation.reason.contains("more than 10000 ms"),
            "{}",
            evaluation.reason
        );
        let fast = evaluate_alarm(&rule, &series(now, 300, 100, 0, 9_000), 0, now);
        assert_eq!(fast.state, AlarmState::Ok, "{}", fast.reason);
    }

    #[test]
    fn platform_metrics_are_insufficient_data_here() {
        let text = rule_text(&[("metric", "throttles"), ("threshold", "0")]);
        let rule = parse_alarm_file("t.yaml", &text).unwrap().remove(0);
        assert_eq!(rule.min_requests_per_period, 0);
        let evaluation = evaluate_alarm(&rule, &series(100, 60, 10, 0, 10), 0, 100);
        assert_eq!(evaluation.state, AlarmState::InsufficientData);
        assert!(
            evaluation.reason.contains("no throttles metric"),
            "{}",
            evaluation.reason
        );
        assert_eq!(
            AlarmState::InsufficientData.to_string(),
            "INSUFFICIENT_DATA"
        );
    }
}
