//! `opsd alarms sync` and `opsd alarms list`: the alarm rules in `alarms/*.yaml` as CloudWatch
//! alarms, and both views side by side.
//!
//! Each rule becomes one alarm named `opsd-<service>-<rule>` (the prefix marks the alarms opsd
//! owns; others are never touched). The alarm's description ends with a fingerprint of its whole
//! definition, so a sync only writes alarms that are missing or differ, deletes the owned alarms
//! whose rule was removed, and a second sync changes nothing. Planning is pure
//! ([`desired_alarms`], [`plan_sync`]); [`apply_sync`] and [`describe_owned`] do the calls.
//!
//! Which CloudWatch metric a rule watches:
//! - `error_rate`: metric math `ServerErrors / Requests` over Steno's metrics of the function;
//! - `server_errors`: Steno's `ServerErrors` (Sum); `latency_p99_ms` / `latency_p95_ms`: Steno's
//!   `LatencyMs` p99 / p95; all with the dimension `FunctionName` only;
//! - `throttles`: `AWS/Lambda` `Throttles` (Sum) of the function;
//! - `database_cpu_percent` / `database_free_storage_bytes`: `AWS/RDS` `CPUUtilization`
//!   (Average) / `FreeStorageSpace` (Minimum) of the configured database instance;
//! - `health_check_failures` has no CloudWatch metric: opsd evaluates it itself.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, Metric, MetricDataQuery, MetricStat, StateValue, Statistic,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::retry::{call_with_retries, AwsCallError, RetryPolicy};
use super::AwsServiceConfig;
use crate::core::alarms::{AlarmMetric, AlarmRule, Comparison};

/// What a CloudWatch alarm watches.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlarmTarget {
    /// One metric with a statistic (`Sum`, `Average`, `Minimum`, or a percentile like `p99`).
    Metric {
        namespace: String,
        metric_name: String,
        dimensions: Vec<(String, String)>,
        stat: String,
    },
    /// `numerator / denominator`, both `Sum`s of metrics in one namespace with the same dimensions.
    Ratio {
        namespace: String,
        numerator: String,
        denominator: String,
        dimensions: Vec<(String, String)>,
    },
}

/// One CloudWatch alarm as opsd wants it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredAlarm {
    pub name: String,
    pub rule: String,
    pub description: String,
    pub target: AlarmTarget,
    pub period_secs: i32,
    pub evaluation_periods: i32,
    pub threshold: f64,
    pub comparison_operator: String,
    pub treat_missing_data: String,
    /// Told when the alarm enters ALARM.
    pub alarm_actions: Vec<String>,
    /// Told when it returns to OK (the same topic: recovery is news too).
    pub ok_actions: Vec<String>,
    pub rolls_back: bool,
}

impl DesiredAlarm {
    /// A short hash of everything but the description, written into the description.
    pub fn fingerprint(&self) -> String {
        let mut copy = self.clone();
        copy.description.clear();
        let text = serde_json::to_string(&copy).unwrap_or_default();
        let digest = Sha256::digest(text.as_bytes());
        digest[..6]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The description as written to CloudWatch: the rule's words, opsd's note, the fingerprint.
    pub fn full_description(&self) -> String {
        let mut text = format!(
            "{} (managed by opsd; rollback trigger: {}) [opsd {}]",
            self.description,
            if self.rolls_back { "yes" } else { "no" },
            self.fingerprint()
        );
        // CloudWatch allows 1024 characters.
        if text.len() > 1024 {
            let tail = format!(" [opsd {}]", self.fingerprint());
            let mut cut = 1024 - tail.len();
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(&tail);
        }
        text
    }
}

/// The prefix of the alarms opsd owns for a service.
pub fn owned_prefix(service: &str) -> String {
    format!("opsd-{service}-")
}

/// A rule that has no CloudWatch alarm, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedRule {
    pub rule: String,
    pub reason: String,
}

/// The alarms for a service's rules. Pure.
pub fn desired_alarms(
    service: &str,
    aws: &AwsServiceConfig,
    rules: &[AlarmRule],
) -> (Vec<DesiredAlarm>, Vec<SkippedRule>) {
    let function = vec![("FunctionName".to_string(), aws.function_name.clone())];
    let mut desired = Vec::new();
    let mut skipped = Vec::new();
    for rule in rules {
        let steno_metric = |metric: &str, stat: &str| AlarmTarget::Metric {
            namespace: aws.metrics_namespace.clone(),
            metric_name: metric.to_string(),
            dimensions: function.clone(),
            stat: stat.to_string(),
        };
        let target = match rule.metric {
            AlarmMetric::ErrorRate => AlarmTarget::Ratio {
                namespace: aws.metrics_namespace.clone(),
                numerator: "ServerErrors".into(),
                denominator: "Requests".into(),
                dimensions: function.clone(),
            },
            AlarmMetric::ServerErrors => steno_metric("ServerErrors", "Sum"),
            AlarmMetric::LatencyP99Ms => steno_metric("LatencyMs", "p99"),
            AlarmMetric::LatencyP95Ms => steno_metric("LatencyMs", "p95"),
            AlarmMetric::Throttles => AlarmTarget::Metric {
                namespace: "AWS/Lambda".into(),
                metric_name: "Throttles".into(),
                dimensions: function.clone(),
                stat: "Sum".into(),
            },
            AlarmMetric::DatabaseCpuPercent | AlarmMetric::DatabaseFreeStorageBytes => {
                let Some(instance) = &aws.database_instance else {
                    skipped.push(SkippedRule {
                        rule: rule.name.clone(),
                        reason: "no database_instance is configured for the service".into(),
                    });
                    continue;
                };
                let (metric_name, stat) = if rule.metric == AlarmMetric::DatabaseCpuPercent {
                    ("CPUUtilization", "Average")
                } else {
                    ("FreeStorageSpace", "Minimum")
                };
                AlarmTarget::Metric {
                    namespace: "AWS/RDS".into(),
                    metric_name: metric_name.into(),
                    dimensions: vec![("DBInstanceIdentifier".into(), instance.clone())],
                    stat: stat.into(),
                }
            }
            AlarmMetric::HealthCheckFailures => {
                skipped.push(SkippedRule {
                    rule: rule.name.clone(),
                    reason: "health checks are evaluated by opsd; CloudWatch has no such metric"
                        .into(),
                });
                continue;
            }
        };
        let alarm_actions: Vec<String> = alarm_topic(aws, rule).into_iter().collect();
        desired.push(DesiredAlarm {
            name: format!("{}{}", owned_prefix(service), rule.name),
            rule: rule.name.clone(),
            description: rule.description.clone(),
            target,
            period_secs: rule.period.as_secs().clamp(1, i32::MAX as u64) as i32,
            evaluation_periods: rule.evaluation_periods.max(1) as i32,
            threshold: rule.threshold,
            comparison_operator: match rule.comparison {
                Comparison::GreaterThan => "GreaterThanThreshold".into(),
                Comparison::LessThan => "LessThanThreshold".into(),
            },
            // No traffic is not an outage; a rollout's own analysis treats silence as inconclusive.
            treat_missing_data: "notBreaching".into(),
            ok_actions: alarm_actions.clone(),
            alarm_actions,
            rolls_back: rule.rollback,
        });
    }
    (desired, skipped)
}

/// The SNS topic a rule's alarm notifies: the topic of its severity, else the one
/// `alarm_topic_arn` when the rule names notification targets, else none. Pure.
pub fn alarm_topic(aws: &AwsServiceConfig, rule: &AlarmRule) -> Option<String> {
    if let Some(topic) = aws.alarm_topics.for_severity(rule.severity) {
        return Some(topic.to_string());
    }
    match (&aws.alarm_topic_arn, rule.notify.is_empty()) {
        (Some(topic), false) => Some(topic.clone()),
        _ => None,
    }
}

/// An alarm as CloudWatch reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExistingAlarm {
    pub name: String,
    pub description: String,
    pub state: String,
    pub state_reason: String,
    pub threshold: Option<f64>,
    pub evaluation_periods: Option<i32>,
    pub comparison_operator: Option<String>,
}

/// What a sync does.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncPlan {
    pub create: Vec<DesiredAlarm>,
    pub update: Vec<DesiredAlarm>,
    pub unchanged: Vec<String>,
    pub delete: Vec<String>,
}

/// Compares the wanted alarms with the owned ones CloudWatch has. Pure.
pub fn plan_sync(desired: &[DesiredAlarm], existing: &[ExistingAlarm]) -> SyncPlan {
    let existing_by_name: BTreeMap<&str, &ExistingAlarm> = existing
        .iter()
        .map(|alarm| (alarm.name.as_str(), alarm))
        .collect();
    let mut plan = SyncPlan::default();
    for alarm in desired {
        match existing_by_name.get(alarm.name.as_str()) {
            None => plan.create.push(alarm.clone()),
            Some(current) if in_sync(alarm, current) => plan.unchanged.push(alarm.name.clone()),
            Some(_) => plan.update.push(alarm.clone()),
        }
    }
    for alarm in existing {
        if !desired.iter().any(|wanted| wanted.name == alarm.name) {
            plan.delete.push(alarm.name.clone());
        }
    }
    plan
}

/// Same fingerprint, and the fields someone might edit by hand still match.
pub fn in_sync(desired: &DesiredAlarm, current: &ExistingAlarm) -> bool {
    current.description == desired.full_description()
        && current
            .threshold
            .is_some_and(|threshold| (threshold - desired.threshold).abs() < 1e-9)
        && current.evaluation_periods == Some(desired.evaluation_periods)
        && current.comparison_operator.as_deref() == Some(desired.comparison_operator.as_str())
}

fn dimension_list(dimensions: &[(String, String)]) -> Vec<Dimension> {
    dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
        .collect()
}

fn stat_query(
    id: &str,
    namespace: &str,
    metric: &str,
    dimensions: &[(String, String)],
    period: i32,
) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace(namespace)
                        .metric_name(metric)
                        .set_dimensions(Some(dimension_list(dimensions)))
                        .build(),
                )
                .period(period)
                .stat("Sum")
                .build(),
        )
        .return_data(false)
        .build()
}

/// Creates or updates one alarm.
async fn put_alarm(
    client: &aws_sdk_cloudwatch::Client,
    retry: &RetryPolicy,
    alarm: &DesiredAlarm,
) -> Result<(), AwsCallError> {
    call_with_retries(
        retry,
        "CloudWatch PutMetricAlarm",
        &format!("alarm {}", alarm.name),
        || {
            let mut request = client
                .put_metric_alarm()
                .alarm_name(&alarm.name)
                .alarm_description(alarm.full_description())
                .evaluation_periods(alarm.evaluation_periods)
                .threshold(alarm.threshold)
                .comparison_operator(ComparisonOperator::from(alarm.comparison_operator.as_str()))
                .treat_missing_data(&alarm.treat_missing_data)
                .actions_enabled(!alarm.alarm_actions.is_empty())
                .set_alarm_actions(Some(alarm.alarm_actions.clone()))
                .set_ok_actions(Some(alarm.ok_actions.clone()));
            match &alarm.target {
                AlarmTarget::Metric {
                    namespace,
                    metric_name,
                    dimensions,
                    stat,
                } => {
                    request = request
                        .namespace(namespace)
                        .metric_name(metric_name)
                        .set_dimensions(Some(dimension_list(dimensions)))
                        .period(alarm.period_secs);
                    request = if stat.starts_with('p') {
                        request.extended_statistic(stat)
                    } else {
                        request.statistic(Statistic::from(stat.as_str()))
                    };
                }
                AlarmTarget::Ratio {
                    namespace,
                    numerator,
                    denominator,
                    dimensions,
                } => {
                    request = request
                        .metrics(stat_query(
                            "numerator",
                            namespace,
                            numerator,
                            dimensions,
                            alarm.period_secs,
                        ))
                        .metrics(stat_query(
                            "denominator",
                            namespace,
                            denominator,
                            dimensions,
                            alarm.period_secs,
                        ))
                        .metrics(
                            MetricDataQuery::builder()
                                .id("ratio")
                                .expression("numerator / denominator")
                                .label(format!("{numerator} / {denominator}"))
                                .return_data(true)
                                .build(),
                        );
                }
            }
            request.send()
        },
    )
    .await?;
    Ok(())
}

/// The owned alarms of a service, following `NextToken`.
pub async fn describe_owned(
    client: &aws_sdk_cloudwatch::Client,
    retry: &RetryPolicy,
    service: &str,
) -> Result<Vec<ExistingAlarm>, AwsCallError> {
    describe(client, retry, Some(&owned_prefix(service)), None).await
}

/// Alarms by name prefix and/or state.
pub async fn describe(
    client: &aws_sdk_cloudwatch::Client,
    retry: &RetryPolicy,
    prefix: Option<&str>,
    state: Option<StateValue>,
) -> Result<Vec<ExistingAlarm>, AwsCallError> {
    let mut alarms = Vec::new();
    let mut next_token: Option<String> = None;
    let resource = match prefix {
        Some(prefix) => format!("alarms named {prefix}*"),
        None => "alarms".to_string(),
    };
    loop {
        let output = call_with_retries(retry, "CloudWatch DescribeAlarms", &resource, || {
            client
                .describe_alarms()
                .set_alarm_name_prefix(prefix.map(str::to_string))
                .set_state_value(state.clone())
                .set_next_token(next_token.clone())
                .send()
        })
        .await?;
        for alarm in output.metric_alarms() {
            alarms.push(ExistingAlarm {
                name: alarm.alarm_name().unwrap_or_default().to_string(),
                description: alarm.alarm_description().unwrap_or_default().to_string(),
                state: alarm
                    .state_value()
                    .map(|state| state.as_str().to_string())
                    .unwrap_or_else(|| "INSUFFICIENT_DATA".into()),
                state_reason: alarm.state_reason().unwrap_or_default().to_string(),
                threshold: alarm.threshold(),
                evaluation_periods: alarm.evaluation_periods(),
                comparison_operator: alarm
                    .comparison_operator()
                    .map(|operator| operator.as_str().to_string()),
            });
        }
        match output.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
            _ => return Ok(alarms),
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    pub service: String,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub deleted: Vec<String>,
    pub skipped: Vec<SkippedRule>,
    pub dry_run: bool,
}

/// Plans and (unless `dry_run`) applies a sync of one service's alarms.
pub async fn apply_sync(
    client: &aws_sdk_cloudwatch::Client,
    retry: &RetryPolicy,
    service: &str,
    aws: &AwsServiceConfig,
    rules: &[AlarmRule],
    dry_run: bool,
) -> Result<SyncReport, AwsCallError> {
    let (desired, skipped) = desired_alarms(service, aws, rules);
    let existing = describe_owned(client, retry, service).await?;
    let plan = plan_sync(&desired, &existing);
    if !dry_run {
        for alarm in plan.create.iter().chain(plan.update.iter()) {
            put_alarm(client, retry, alarm).await?;
        }
        // DeleteAlarms takes at most 100 names per call.
        for names in plan.delete.chunks(100) {
            call_with_retries(
                retry,
                "CloudWatch DeleteAlarms",
                &format!("alarms {}", names.join(", ")),
                || {
                    client
                        .delete_alarms()
                        .set_alarm_names(Some(names.to_vec()))
                        .send()
                },
            )
            .await?;
        }
    }
    Ok(SyncReport {
        service: service.to_string(),
        created: plan.create.iter().map(|alarm| alarm.name.clone()).collect(),
        updated: plan.update.iter().map(|alarm| alarm.name.clone()).collect(),
        unchanged: plan.unchanged,
        deleted: plan.delete,
        skipped,
        dry_run,
    })
}

/// One line of `opsd alarms list`: opsd's rule and CloudWatch's alarm side by side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlarmListing {
    pub service: String,
    pub rule: Option<String>,
    /// The rule as opsd evaluates it, like `error_rate > 0.01 for 1 period of 1m`.
    pub opsd_condition: Option<String>,
    pub rollback: bool,
    pub cloudwatch_alarm: Option<String>,
    /// CloudWatch's state (`OK`, `ALARM`, `INSUFFICIENT_DATA`), or why there is no alarm.
    pub cloudwatch_state: String,
    /// `in sync`, `differs (run opsd alarms sync)`, `missing (run opsd alarms sync)`,
    /// `not synced: <reason>`, or `orphan (its rule is gone; sync deletes it)`.
    pub sync: String,
}

/// Joins the rules with the owned alarms. Pure.
pub fn listing(
    service: &str,
    aws: &AwsServiceConfig,
    rules: &[AlarmRule],
    existing: &[ExistingAlarm],
) -> Vec<AlarmListing> {
    let (desired, skipped) = desired_alarms(service, aws, rules);
    let mut rows = Vec::new();
    for rule in rules {
        let wanted = desired.iter().find(|alarm| alarm.rule == rule.name);
        let current =
            wanted.and_then(|wanted| existing.iter().find(|alarm| alarm.name == wanted.name));
        let (state, sync) = match (wanted, current) {
            (None, _) => (
                "-".to_string(),
                format!(
                    "not synced: {}",
                    skipped
                        .iter()
                        .find(|skip| skip.rule == rule.name)
                        .map(|skip| skip.reason.as_str())
                        .unwrap_or("no CloudWatch metric")
                ),
            ),
            (Some(_), None) => (
                "-".to_string(),
                "missing (run opsd alarms sync)".to_string(),
            ),
            (Some(wanted), Some(current)) => (
                current.state.clone(),
                if in_sync(wanted, current) {
                    "in sync".to_string()
                } else {
                    "differs (run opsd alarms sync)".to_string()
                },
            ),
        };
        rows.push(AlarmListing {
            service: service.to_string(),
            rule: Some(rule.name.clone()),
            opsd_condition: Some(rule.describe_condition()),
            rollback: rule.rollback,
            cloudwatch_alarm: wanted.map(|alarm| alarm.name.clone()),
            cloudwatch_state: state,
            sync,
        });
    }
    for alarm in existing {
        if !desired.iter().any(|wanted| wanted.name == alarm.name) {
            rows.push(AlarmListing {
                service: service.to_string(),
                rule: None,
                opsd_condition: None,
                rollback: false,
                cloudwatch_alarm: Some(alarm.name.clone()),
                cloudwatch_state: alarm.state.clone(),
                sync: "orphan (its rule is gone; sync deletes it)".into(),
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::embedded_alarm_rules;

    fn aws() -> AwsServiceConfig {
        AwsServiceConfig::for_function("us-east-1", "steno", "live")
    }

    #[test]
    fn the_seed_rules_become_alarms_except_those_without_a_cloudwatch_metric() {
        let rules = embedded_alarm_rules();
        let (desired, skipped) = desired_alarms("steno", &aws(), &rules);
        let names: Vec<&str> = desired.iter().map(|alarm| alarm.name.as_str()).collect();
        assert!(names.contains(&"opsd-steno-lambda-error-rate"));
        assert!(names.contains(&"opsd-steno-p99-latency"));
        let skipped_rules: Vec<&str> = skipped.iter().map(|skip| skip.rule.as_str()).collect();
        assert!(skipped_rules.contains(&"health-check"));
        assert!(skipped_rules.contains(&"rds-cpu"), "no database configured");
        let error_rate = desired
            .iter()
            .find(|alarm| alarm.rule == "lambda-error-rate")
            .unwrap();
        assert!(matches!(error_rate.target, AlarmTarget::Ratio { .. }));
        assert_eq!(error_rate.threshold, 0.01);
        assert_eq!(error_rate.comparison_operator, "GreaterThanThreshold");
        assert!(error_rate.rolls_back);
        let p99 = desired
            .iter()
            .find(|alarm| alarm.rule == "p99-latency")
            .unwrap();
        assert_eq!(p99.period_secs, 60);
        assert_eq!(p99.evaluation_periods, 5);
        assert!(matches!(&p99.target, AlarmTarget::Metric { stat, .. } if stat == "p99"));

        let mut with_database = aws();
        with_database.database_instance = Some("steno-prod".into());
        let (desired, _) = desired_alarms("steno", &with_database, &rules);
        let storage = desired
            .iter()
            .find(|alarm| alarm.rule == "rds-free-storage")
            .unwrap();
        assert_eq!(storage.comparison_operator, "LessThanThreshold");
        assert!(
            matches!(&storage.target, AlarmTarget::Metric { metric_name, .. } if metric_name == "FreeStorageSpace")
        );
    }

    #[test]
    fn each_alarm_notifies_the_topic_of_its_severity_on_alarm_and_on_recovery() {
        let rules = embedded_alarm_rules();
        let pager = "arn:aws:sns:us-east-1:123456789012:steno-pager";
        let chat = "arn:aws:sns:us-east-1:123456789012:steno-chat";
        let fallback = "arn:aws:sns:us-east-1:123456789012:steno-alerts";
        let mut routed = aws();
        routed.alarm_topics.critical = Some(pager.into());
        routed.alarm_topics.warning = Some(chat.into());
        routed.alarm_topic_arn = Some(fallback.into());
        let (desired, _) = desired_alarms("steno", &routed, &rules);
        let actions_of = |rule: &str| {
            let alarm = desired.iter().find(|alarm| alarm.rule == rule).unwrap();
            assert_eq!(
                alarm.ok_actions, alarm.alarm_actions,
                "{rule}: recovery too"
            );
            alarm.alarm_actions.clone()
        };
        assert_eq!(actions_of("lambda-error-rate"), vec![pager.to_string()]);
        assert_eq!(actions_of("response-time-sla"), vec![pager.to_string()]);
        assert_eq!(actions_of("lambda-throttles"), vec![chat.to_string()]);

        // No topic for warnings: the one topic, as before, for rules that name targets.
        routed.alarm_topics.warning = None;
        let (desired, _) = desired_alarms("steno", &routed, &rules);
        let throttles = desired
            .iter()
            .find(|alarm| alarm.rule == "lambda-throttles")
            .unwrap();
        assert_eq!(throttles.alarm_actions, vec![fallback.to_string()]);

        // No topics at all: the alarms notify nobody and are synced with actions disabled.
        let (desired, _) = desired_alarms("steno", &aws(), &rules);
        assert!(desired
            .iter()
            .all(|alarm| alarm.alarm_actions.is_empty() && alarm.ok_actions.is_empty()));
    }

    fn existing_from(alarm: &DesiredAlarm) -> ExistingAlarm {
        ExistingAlarm {
            name: alarm.name.clone(),
            description: alarm.full_description(),
            state: "OK".into(),
            state_reason: String::new(),
            threshold: Some(alarm.threshold),
            evaluation_periods: Some(alarm.evaluation_periods),
            comparison_operator: Some(alarm.comparison_operator.clone()),
        }
    }

    #[test]
    fn a_sync_writes_only_what_is_missing_or_different_and_deletes_orphans() {
        let (desired, _) = desired_alarms("steno", &aws(), &embedded_alarm_rules());
        // Nothing there yet: everything is created.
        let plan = plan_sync(&desired, &[]);
        assert_eq!(plan.create.len(), desired.len());
        // Everything there: nothing to do (this is what makes a second sync a no-op).
        let mut existing: Vec<ExistingAlarm> = desired.iter().map(existing_from).collect();
        let plan = plan_sync(&desired, &existing);
        assert!(plan.create.is_empty() && plan.update.is_empty() && plan.delete.is_empty());
        assert_eq!(plan.unchanged.len(), desired.len());
        // A threshold edited by hand is put back; an alarm whose rule is gone is deleted.
        existing[0].threshold = Some(123.0);
        existing.push(ExistingAlarm {
            name: "opsd-steno-retired-rule".into(),
            ..existing_from(&desired[1])
        });
        let plan = plan_sync(&desired, &existing);
        assert_eq!(plan.update.len(), 1);
        assert_eq!(plan.update[0].name, desired[0].name);
        assert_eq!(plan.delete, vec!["opsd-steno-retired-rule".to_string()]);
    }

    #[test]
    fn a_changed_rule_changes_the_fingerprint() {
        let (desired, _) = desired_alarms("steno", &aws(), &embedded_alarm_rules());
        let mut changed = desired[0].clone();
        assert_eq!(changed.fingerprint(), desired[0].fingerprint());
        changed.period_secs += 60;
        assert_ne!(changed.fingerprint(), desired[0].fingerprint());
        assert!(!in_sync(&changed, &existing_from(&desired[0])));
        assert!(desired[0]
            .full_description()
            .ends_with(&format!("[opsd {}]", desired[0].fingerprint())));
    }

    #[test]
    fn the_listing_shows_both_views_and_why_a_rule_has_no_alarm() {
        let rules = embedded_alarm_rules();
        let (desired, _) = desired_alarms("steno", &aws(), &rules);
        let existing = vec![existing_from(&desired[0])];
        let rows = listing("steno", &aws(), &rules, &existing);
        assert_eq!(rows.len(), rules.len());
        let health = rows
            .iter()
            .find(|row| row.rule.as_deref() == Some("health-check"))
            .unwrap();
        assert!(health.sync.starts_with("not synced"));
        let first = rows
            .iter()
            .find(|row| row.cloudwatch_alarm.as_deref() == Some(desired[0].name.as_str()))
            .unwrap();
        assert_eq!(first.sync, "in sync");
        assert!(rows.iter().any(|row| row.sync.starts_with("missing")));
    }
}
