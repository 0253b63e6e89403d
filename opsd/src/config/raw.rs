//! The serde shapes of opsd.yaml and of drill checks files: every section as written, with
//! `deny_unknown_fields`, before the section validators turn them into typed configuration.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::secrets::RawSecret;
use super::windows::RawDeployWindows;
use crate::notify::{NotificationRoute, NotificationTarget};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) listen: Option<String>,
    #[serde(default)]
    pub(super) data_dir: Option<String>,
    #[serde(default)]
    pub(super) store: Option<String>,
    #[serde(default)]
    pub(super) alarms_dir: Option<String>,
    #[serde(default)]
    pub(super) plans_dir: Option<String>,
    #[serde(default)]
    pub(super) tick: Option<String>,
    #[serde(default)]
    pub(super) health_probe_interval: Option<String>,
    #[serde(default)]
    pub(super) alarm_interval: Option<String>,
    #[serde(default)]
    pub(super) sample_retention: Option<String>,
    #[serde(default)]
    pub(super) services: BTreeMap<String, RawService>,
    #[serde(default)]
    pub(super) analysis: Option<RawAnalysis>,
    #[serde(default)]
    pub(super) notifications: Option<RawNotifications>,
    #[serde(default)]
    pub(super) databases: BTreeMap<String, RawDatabase>,
    #[serde(default)]
    pub(super) costs: Option<RawCosts>,
    #[serde(default)]
    pub(super) secrets: BTreeMap<String, RawSecret>,
    #[serde(default)]
    pub(super) maintenance: Option<super::maintenance::RawMaintenance>,
    #[serde(default)]
    pub(super) deploy_windows: Option<RawDeployWindows>,
}

/// `services.<name>.migrations`: the release program's arguments that list and run migrations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMigrations {
    #[serde(default)]
    pub(super) enabled: Option<bool>,
    #[serde(default)]
    pub(super) list: Option<Vec<String>>,
    #[serde(default)]
    pub(super) expand: Option<Vec<String>>,
    #[serde(default)]
    pub(super) contract: Option<Vec<String>>,
    #[serde(default)]
    pub(super) timeout: Option<String>,
}

/// `costs`: where daily costs come from, the budgets, and the anomaly rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCosts {
    #[serde(default)]
    pub(super) source: Option<String>,
    #[serde(default)]
    pub(super) aws: Option<RawCostsAws>,
    #[serde(default)]
    pub(super) local: Option<RawCostsLocal>,
    #[serde(default)]
    pub(super) check_interval: Option<String>,
    #[serde(default)]
    pub(super) gate_max_age: Option<String>,
    #[serde(default)]
    pub(super) anomalies: Option<RawAnomalies>,
    #[serde(default)]
    pub(super) budgets: Vec<RawBudget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCostsAws {
    #[serde(default)]
    pub(super) region: Option<String>,
    #[serde(default)]
    pub(super) endpoint_url: Option<String>,
    #[serde(default)]
    pub(super) max_attempts: Option<u32>,
}

/// `costs.local`: how the local cost model prices what the router counted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCostsLocal {
    #[serde(default)]
    pub(super) memory_mb: Option<u32>,
    #[serde(default)]
    pub(super) ai: Option<RawCostsAi>,
}

/// `costs.local.ai`: where Steno's token counts are and what a million tokens cost.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCostsAi {
    pub(super) database: Option<String>,
    pub(super) per_million_input_tokens_usd: Option<f64>,
    pub(super) per_million_output_tokens_usd: Option<f64>,
    #[serde(default)]
    pub(super) service: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnomalies {
    #[serde(default)]
    pub(super) jump_percent: Option<f64>,
    #[serde(default)]
    pub(super) jump_floor_usd: Option<f64>,
    #[serde(default)]
    pub(super) same_weekday_weeks: Option<u32>,
    #[serde(default)]
    pub(super) ai_service: Option<String>,
    #[serde(default)]
    pub(super) ai_percent_of_average: Option<f64>,
    #[serde(default)]
    pub(super) check_account_total: Option<bool>,
    #[serde(default)]
    pub(super) rollout_window: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    pub(super) name: Option<String>,
    pub(super) amount_usd: Option<f64>,
    #[serde(default)]
    pub(super) period: Option<String>,
    /// `account`, `{service: <name>}` or `{tag: "Key=value"}`, checked in `costs.rs`.
    #[serde(default)]
    pub(super) scope: Option<serde_yaml::Value>,
    #[serde(default)]
    pub(super) thresholds: Option<Vec<RawThreshold>>,
    #[serde(default)]
    pub(super) notify: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThreshold {
    pub(super) basis: Option<String>,
    pub(super) percent: Option<f64>,
    pub(super) severity: Option<String>,
}

/// `databases.<name>`: a database opsd snapshots and drills.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) tools_dir: Option<String>,
    #[serde(default)]
    pub(super) rds: Option<RawRds>,
    #[serde(default)]
    pub(super) targets: Option<RawTargets>,
    #[serde(default)]
    pub(super) schedule: Option<String>,
    #[serde(default)]
    pub(super) snapshot_schedule: Option<String>,
    #[serde(default)]
    pub(super) retention: Option<RawRetention>,
    #[serde(default)]
    pub(super) checks: Option<String>,
    #[serde(default)]
    pub(super) documents: Option<RawDocuments>,
}

/// `databases.<name>.documents`: the document store its rows reference.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocuments {
    #[serde(default)]
    pub(super) dir: Option<String>,
    #[serde(default)]
    pub(super) s3: Option<RawDocumentsS3>,
    #[serde(default)]
    pub(super) references: Option<String>,
}

/// `databases.<name>.documents.s3`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDocumentsS3 {
    #[serde(default)]
    pub(super) bucket: Option<String>,
    #[serde(default)]
    pub(super) prefix: Option<String>,
    #[serde(default)]
    pub(super) region: Option<String>,
    #[serde(default)]
    pub(super) endpoint_url: Option<String>,
}

/// `databases.<name>.retention`: one duration for every snapshot, or one per class.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawRetention {
    Every(String),
    Classes(RawRetentionClasses),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetentionClasses {
    #[serde(default)]
    pub(super) daily: Option<String>,
    #[serde(default)]
    pub(super) pre_migration: Option<String>,
    #[serde(default)]
    pub(super) weekly: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRds {
    pub(super) region: Option<String>,
    pub(super) instance: Option<String>,
    #[serde(default)]
    pub(super) endpoint_url: Option<String>,
    #[serde(default)]
    pub(super) instance_class: Option<String>,
    #[serde(default)]
    pub(super) wait_timeout: Option<String>,
    #[serde(default)]
    pub(super) poll_interval: Option<String>,
    #[serde(default)]
    pub(super) max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTargets {
    #[serde(default)]
    pub(super) rto: Option<String>,
    #[serde(default)]
    pub(super) rpo: Option<String>,
}

/// A checks file (`drills/*.yaml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChecksFile {
    pub(super) checks: Vec<RawDrillCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDrillCheck {
    pub(super) name: String,
    pub(super) sql: String,
    pub(super) expect: serde_yaml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    #[serde(default)]
    pub(super) platform: Option<String>,
    pub(super) public_addr: Option<String>,
    #[serde(default)]
    pub(super) command: Option<Vec<String>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) env_from: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) allow_env: Vec<String>,
    #[serde(default)]
    pub(super) health_path: Option<String>,
    #[serde(default)]
    pub(super) ready_timeout: Option<String>,
    #[serde(default)]
    pub(super) initial_version: Option<String>,
    #[serde(default)]
    pub(super) version_env: Option<String>,
    #[serde(default)]
    pub(super) plan: Option<String>,
    #[serde(default)]
    pub(super) checks: BTreeMap<String, RawCheck>,
    #[serde(default)]
    pub(super) aws: Option<RawAws>,
    #[serde(default)]
    pub(super) database: Option<String>,
    #[serde(default)]
    pub(super) snapshot_before_deploy: Option<bool>,
    #[serde(default)]
    pub(super) drill_gate: Option<String>,
    #[serde(default)]
    pub(super) budget_gate: Option<String>,
    #[serde(default)]
    pub(super) alarm_gate: Option<String>,
    #[serde(default)]
    pub(super) deploy_windows: Option<RawDeployWindows>,
    #[serde(default)]
    pub(super) migrations: Option<RawMigrations>,
}

/// `services.<name>.aws`: where the service runs on AWS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAws {
    pub(super) region: Option<String>,
    pub(super) function_name: Option<String>,
    #[serde(default)]
    pub(super) alias: Option<String>,
    #[serde(default)]
    pub(super) endpoint_url: Option<String>,
    #[serde(default)]
    pub(super) metrics_namespace: Option<String>,
    #[serde(default)]
    pub(super) poll_interval: Option<String>,
    #[serde(default)]
    pub(super) rollback_alarms: Vec<String>,
    #[serde(default)]
    pub(super) alarm_topic_arn: Option<String>,
    #[serde(default)]
    pub(super) alarm_topics: Option<RawAlarmTopics>,
    #[serde(default)]
    pub(super) database_instance: Option<String>,
    #[serde(default)]
    pub(super) cloudfront: Option<RawCloudFront>,
    #[serde(default)]
    pub(super) package: Option<String>,
    #[serde(default)]
    pub(super) max_attempts: Option<u32>,
}

/// `services.<name>.aws.alarm_topics`: the SNS topic of each severity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlarmTopics {
    #[serde(default)]
    pub(super) critical: Option<String>,
    #[serde(default)]
    pub(super) warning: Option<String>,
    #[serde(default)]
    pub(super) info: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCloudFront {
    pub(super) distribution_id: String,
    #[serde(default)]
    pub(super) paths: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    #[serde(default)]
    pub(super) http: Option<RawHttpCheck>,
    #[serde(default)]
    pub(super) command: Option<Vec<String>>,
    #[serde(default)]
    pub(super) timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpCheck {
    pub(super) path: String,
    #[serde(default)]
    pub(super) expect_status: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnalysis {
    #[serde(default)]
    pub(super) false_positive_rate: Option<f64>,
    #[serde(default)]
    pub(super) min_requests: Option<u64>,
    #[serde(default)]
    pub(super) on_inconclusive: Option<String>,
    #[serde(default)]
    pub(super) health_failures_to_roll_back: Option<u32>,
    #[serde(default)]
    pub(super) cost_per_request: Option<RawCostPerRequest>,
    #[serde(default)]
    pub(super) early_errors: Option<bool>,
}

/// `analysis.cost_per_request`: hold a canary whose requests cost this many times the baseline's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCostPerRequest {
    #[serde(default)]
    pub(super) max_ratio: Option<f64>,
    #[serde(default)]
    pub(super) min_requests: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifications {
    #[serde(default)]
    pub(super) targets: Vec<NotificationTarget>,
    #[serde(default)]
    pub(super) routes: Vec<NotificationRoute>,
}
