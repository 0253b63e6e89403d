//! `opsd.yaml`: parsed into raw `deny_unknown_fields` structs, then validated into a typed
//! [`Config`]. Every error names the file, the line when known, and the field. With no file,
//! [`Config::embedded_default`] runs Steno on the local platform.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::core::alarms::{parse_alarm_file, AlarmRule};
use crate::core::analysis::AnalysisPolicy;
use crate::core::config_error::ConfigError;
use crate::core::cost::{
    AnomalyRules, Budget, BudgetPeriod, BudgetScope, Threshold, ThresholdBasis, ThresholdSeverity,
};
use crate::core::drill::{CheckExpectation, DrillCheck, DrillTargets, GateMode};
use crate::core::duration::{format_duration, parse_duration};
use crate::core::plan::{parse_plan, preset, preset_names, RolloutPlan};
use crate::core::rollout::{InconclusiveAction, RolloutPolicy};
use crate::core::schedule::Schedule;
use crate::notify::{validate_notifications, NotificationRoute, NotificationTarget};
use crate::platform::aws::retry::RetryPolicy;
use crate::platform::aws::{AwsServiceConfig, CloudFrontConfig};
use crate::platform::secrets::SecretSource;
use files::load_alarm_dir;

pub mod files;
mod secrets;

/// The alarm rules of R-ALARM-1 to R-ALARM-8 (docs/requirements.md, where every `R-` ID in this
/// file is listed), embedded so `opsd up` works from any directory.
const EMBEDDED_ALARMS: &[(&str, &str)] = &[
    (
        "lambda-error-rate.yaml",
        include_str!("../../../alarms/lambda-error-rate.yaml"),
    ),
    ("api-5xx.yaml", include_str!("../../../alarms/api-5xx.yaml")),
    (
        "p99-latency.yaml",
        include_str!("../../../alarms/p99-latency.yaml"),
    ),
    (
        "api-p95-latency.yaml",
        include_str!("../../../alarms/api-p95-latency.yaml"),
    ),
    ("rds-cpu.yaml", include_str!("../../../alarms/rds-cpu.yaml")),
    (
        "rds-free-storage.yaml",
        include_str!("../../../alarms/rds-free-storage.yaml"),
    ),
    (
        "lambda-throttles.yaml",
        include_str!("../../../alarms/lambda-throttles.yaml"),
    ),
    (
        "health-check.yaml",
        include_str!("../../../alarms/health-check.yaml"),
    ),
];

/// The default plan of a service that names none: 10 → 25 → 50 → 100 (R-CANARY-1).
pub const DEFAULT_PLAN: &str = "SeedCanary";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    data_dir: Option<String>,
    #[serde(default)]
    alarms_dir: Option<String>,
    #[serde(default)]
    plans_dir: Option<String>,
    #[serde(default)]
    tick: Option<String>,
    #[serde(default)]
    health_probe_interval: Option<String>,
    #[serde(default)]
    services: BTreeMap<String, RawService>,
    #[serde(default)]
    analysis: Option<RawAnalysis>,
    #[serde(default)]
    notifications: Option<RawNotifications>,
    #[serde(default)]
    databases: BTreeMap<String, RawDatabase>,
    #[serde(default)]
    costs: Option<RawCosts>,
    #[serde(default)]
    secrets: BTreeMap<String, secrets::RawSecret>,
}

/// `costs`: where daily costs come from, the budgets, and the anomaly rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCosts {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    aws: Option<RawCostsAws>,
    #[serde(default)]
    local: Option<RawCostsLocal>,
    #[serde(default)]
    check_interval: Option<String>,
    #[serde(default)]
    gate_max_age: Option<String>,
    #[serde(default)]
    anomalies: Option<RawAnomalies>,
    #[serde(default)]
    budgets: Vec<RawBudget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCostsAws {
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    endpoint_url: Option<String>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

/// `costs.local`: how the local cost model prices what the router counted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCostsLocal {
    #[serde(default)]
    memory_mb: Option<u32>,
    #[serde(default)]
    ai: Option<RawCostsAi>,
}

/// `costs.local.ai`: where Steno's token counts are and what a million tokens cost.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCostsAi {
    database: Option<String>,
    per_million_input_tokens_usd: Option<f64>,
    per_million_output_tokens_usd: Option<f64>,
    #[serde(default)]
    service: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnomalies {
    #[serde(default)]
    jump_percent: Option<f64>,
    #[serde(default)]
    jump_floor_usd: Option<f64>,
    #[serde(default)]
    same_weekday_weeks: Option<u32>,
    #[serde(default)]
    ai_service: Option<String>,
    #[serde(default)]
    ai_percent_of_average: Option<f64>,
    #[serde(default)]
    check_account_total: Option<bool>,
    #[serde(default)]
    rollout_window: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    name: Option<String>,
    amount_usd: Option<f64>,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    scope: Option<RawScope>,
    #[serde(default)]
    thresholds: Option<Vec<RawThreshold>>,
    #[serde(default)]
    notify: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawScope {
    Word(String),
    Map(BTreeMap<String, String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThreshold {
    basis: Option<String>,
    percent: Option<f64>,
    severity: Option<String>,
}

/// `databases.<name>`: a database opsd snapshots and drills.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    kind: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    tools_dir: Option<String>,
    #[serde(default)]
    rds: Option<RawRds>,
    #[serde(default)]
    targets: Option<RawTargets>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    snapshot_schedule: Option<String>,
    #[serde(default)]
    retention: Option<String>,
    #[serde(default)]
    checks: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRds {
    region: Option<String>,
    instance: Option<String>,
    #[serde(default)]
    endpoint_url: Option<String>,
    #[serde(default)]
    instance_class: Option<String>,
    #[serde(default)]
    wait_timeout: Option<String>,
    #[serde(default)]
    poll_interval: Option<String>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTargets {
    #[serde(default)]
    rto: Option<String>,
    #[serde(default)]
    rpo: Option<String>,
}

/// A checks file (`drills/*.yaml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChecksFile {
    checks: Vec<RawDrillCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrillCheck {
    name: String,
    sql: String,
    expect: serde_yaml::Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default)]
    platform: Option<String>,
    public_addr: Option<String>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    env_from: BTreeMap<String, String>,
    #[serde(default)]
    allow_env: Vec<String>,
    #[serde(default)]
    health_path: Option<String>,
    #[serde(default)]
    ready_timeout: Option<String>,
    #[serde(default)]
    initial_version: Option<String>,
    #[serde(default)]
    version_env: Option<String>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    checks: BTreeMap<String, RawCheck>,
    #[serde(default)]
    aws: Option<RawAws>,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    snapshot_before_deploy: Option<bool>,
    #[serde(default)]
    drill_gate: Option<String>,
    #[serde(default)]
    budget_gate: Option<String>,
}

/// `services.<name>.aws`: where the service runs on AWS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAws {
    region: Option<String>,
    function_name: Option<String>,
    #[serde(default)]
    alias: Option<String>,
    #[serde(default)]
    endpoint_url: Option<String>,
    #[serde(default)]
    metrics_namespace: Option<String>,
    #[serde(default)]
    poll_interval: Option<String>,
    #[serde(default)]
    rollback_alarms: Vec<String>,
    #[serde(default)]
    alarm_topic_arn: Option<String>,
    #[serde(default)]
    database_instance: Option<String>,
    #[serde(default)]
    cloudfront: Option<RawCloudFront>,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCloudFront {
    distribution_id: String,
    #[serde(default)]
    paths: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    #[serde(default)]
    http: Option<RawHttpCheck>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpCheck {
    path: String,
    #[serde(default)]
    expect_status: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnalysis {
    #[serde(default)]
    false_positive_rate: Option<f64>,
    #[serde(default)]
    min_requests: Option<u64>,
    #[serde(default)]
    on_inconclusive: Option<String>,
    #[serde(default)]
    health_failures_to_roll_back: Option<u32>,
    #[serde(default)]
    cost_per_request: Option<RawCostPerRequest>,
}

/// `analysis.cost_per_request`: hold a canary whose requests cost this many times the baseline's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCostPerRequest {
    #[serde(default)]
    max_ratio: Option<f64>,
    #[serde(default)]
    min_requests: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    #[serde(default)]
    targets: Vec<NotificationTarget>,
    #[serde(default)]
    routes: Vec<NotificationRoute>,
}

/// A smoke check run against the canary at the steps that name it.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckSpec {
    /// GET `path` on the canary directly; passes on `expect_status` (default: any 2xx).
    Http {
        path: String,
        expect_status: Option<u16>,
        timeout: Duration,
    },
    /// Runs a command with `CANARY_URL` (when the platform has one) and `CANARY_VERSION` set;
    /// passes on exit status 0.
    Command {
        argv: Vec<String>,
        timeout: Duration,
    },
    /// Asks the platform whether the canary is healthy (on AWS: its Lambda version is Active);
    /// the built-in `smoke` and `e2e` checks of services without a URL per release.
    ReleaseHealth,
}

/// One service opsd deploys.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub name: String,
    pub public_addr: SocketAddr,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Keys every release takes from a secret (key → a name under `secrets`).
    pub env_from: BTreeMap<String, String>,
    /// Keys of the loader and search-path family that releases may set anyway.
    pub allow_env: Vec<String>,
    pub health_path: String,
    pub ready_timeout: Duration,
    pub initial_version: String,
    /// An environment variable that tells a release its own version (Steno: `STENO_VERSION`).
    pub version_env: Option<String>,
    pub plan: RolloutPlan,
    pub checks: BTreeMap<String, CheckSpec>,
    /// Set when the service runs on the aws platform; `None` is the local platform.
    pub aws: Option<AwsServiceConfig>,
    /// The database (a key of `databases`) whose drills gate this service's rollouts.
    pub database: Option<String>,
    /// Take a snapshot of `database` before every rollout (R-DR-4), recorded on the rollout.
    pub snapshot_before_deploy: bool,
    /// What a rollout does while the database's newest drill failed or is stale.
    pub drill_gate: GateMode,
    /// Whether a rollout is refused while the newest cost check found a budget's forecast
    /// threshold crossed or is older than `costs.gate_max_age` (`refuse`), or not (`off`, the
    /// default).
    pub budget_gate: GateMode,
}

/// Where daily costs come from.
#[derive(Debug, Clone, PartialEq)]
pub enum CostSourceConfig {
    /// AWS Cost Explorer (`GetCostAndUsage`).
    Aws(crate::platform::aws::costs::CostExplorerConfig),
    /// The local cost model: the router's counted usage and Steno's tokens, priced.
    Local(crate::platform::local::costs::LocalCostConfig),
}

/// The `costs` block, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CostsConfig {
    pub source: CostSourceConfig,
    /// How often `opsd up` checks the budgets (default 1 h).
    pub check_interval: Duration,
    /// How old the newest cost check may be for the budget gate to trust it (default 3 ×
    /// `check_interval`, at least `check_interval`); an older one keeps the gate closed.
    pub gate_max_age: Duration,
    pub anomalies: AnomalyRules,
    /// Rollouts that started this long before an anomaly's day (or on it) are named with it.
    pub rollout_window: Duration,
    pub budgets: Vec<Budget>,
}

/// Where a database lives and how opsd snapshots it.
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseKind {
    /// A SQLite file, copied with the online-backup API.
    Sqlite { path: PathBuf },
    /// A PostgreSQL database, dumped with `pg_dump` and restored with `pg_restore`.
    Postgres {
        url: String,
        tools_dir: Option<PathBuf>,
    },
    /// An RDS instance: `CreateDBSnapshot` and `RestoreDBInstanceFromDBSnapshot`.
    Rds(RdsDatabaseConfig),
}

/// An RDS instance opsd drills.
#[derive(Debug, Clone, PartialEq)]
pub struct RdsDatabaseConfig {
    pub region: String,
    pub instance: String,
    pub endpoint_url: Option<String>,
    /// The scratch instance's class (default: the source's).
    pub instance_class: Option<String>,
    /// How long to wait for a snapshot or a scratch instance to become available.
    pub wait_timeout: Duration,
    pub poll_interval: Duration,
    pub retry: RetryPolicy,
}

/// A database opsd snapshots and drills.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseConfig {
    pub name: String,
    pub kind: DatabaseKind,
    pub targets: DrillTargets,
    /// When drills are due (default `@quarterly`, R-DR-3).
    pub schedule: Schedule,
    /// When opsd takes a snapshot by itself (restorable points between drills, which bound the
    /// RPO); `None`: only drills, deployments and `opsd drill snapshot` take them.
    pub snapshot_schedule: Option<Schedule>,
    /// Snapshots opsd took are deleted once older than this (the newest is always kept).
    pub retention: Duration,
    pub checks: Vec<DrillCheck>,
}

impl ServiceConfig {
    /// Where users reach the service: the router's address, or the Lambda alias.
    pub fn public_target(&self) -> String {
        match &self.aws {
            Some(aws) => aws.describe_target(),
            None => self.public_addr.to_string(),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub plans_dir: PathBuf,
    pub tick: Duration,
    pub health_probe_interval: Duration,
    pub services: BTreeMap<String, ServiceConfig>,
    pub policy: RolloutPolicy,
    pub notification_targets: Vec<NotificationTarget>,
    pub notification_routes: Vec<NotificationRoute>,
    pub databases: BTreeMap<String, DatabaseConfig>,
    /// `None` when opsd.yaml has no `costs` block: no cost checks, no budget gate.
    pub costs: Option<CostsConfig>,
    /// Named values releases take by `env_from`, read when a release starts.
    pub secrets: BTreeMap<String, SecretSource>,
}

impl Config {
    /// Loads `path` when it exists, else the embedded default (run Steno locally).
    pub fn load_or_default(path: &Path, steno_binary: &Path) -> Result<Config, ConfigError> {
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
                file: path.display().to_string(),
                line: None,
                column: None,
                field: None,
                message: format!("cannot read the file: {error}"),
            })?;
            let base = path.parent().unwrap_or(Path::new("."));
            Config::parse(&path.display().to_string(), &text, base, steno_binary)
        } else {
            Config::embedded_default(steno_binary)
        }
    }

    /// No file: one service, `steno`, on the local platform at 127.0.0.1:8080.
    pub fn embedded_default(steno_binary: &Path) -> Result<Config, ConfigError> {
        Config::parse(
            "(embedded defaults)",
            "services:\n  steno: {}\n",
            Path::new("."),
            steno_binary,
        )
    }

    /// Parses and validates configuration text. Relative paths resolve against `base_dir`.
    pub fn parse(
        file: &str,
        text: &str,
        base_dir: &Path,
        steno_binary: &Path,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            serde_yaml::from_str(text).map_err(|error| yaml_error(file, &error))?;
        let error = |field: &str, message: String| ConfigError {
            file: file.to_string(),
            line: line_of(text, field),
            column: None,
            field: Some(field.to_string()),
            message,
        };
        let listen = raw.listen.as_deref().unwrap_or("127.0.0.1:7070");
        let listen: SocketAddr = listen.parse().map_err(|_| {
            error(
                "listen",
                format!("{listen:?} is not an address like 127.0.0.1:7070"),
            )
        })?;
        let data_dir = base_dir.join(raw.data_dir.as_deref().unwrap_or(".opsd"));
        let plans_dir = base_dir.join(raw.plans_dir.as_deref().unwrap_or("plans"));
        let tick = duration_field(
            raw.tick.as_deref(),
            "tick",
            Duration::from_millis(250),
            &error,
        )?;
        if tick.is_zero() || tick > Duration::from_secs(10) {
            return Err(error("tick", "must be between 1 ms and 10 s".into()));
        }
        let health_probe_interval = duration_field(
            raw.health_probe_interval.as_deref(),
            "health_probe_interval",
            Duration::from_secs(1),
            &error,
        )?;

        let alarms = match raw.alarms_dir {
            Some(dir) => load_alarm_dir(&base_dir.join(dir))?,
            None => {
                let default_dir = base_dir.join("alarms");
                if default_dir.is_dir() {
                    load_alarm_dir(&default_dir)?
                } else {
                    embedded_alarms()?
                }
            }
        };

        let mut policy = RolloutPolicy {
            analysis: AnalysisPolicy::default(),
            alarms,
            ..RolloutPolicy::default()
        };
        if let Some(analysis) = raw.analysis {
            if let Some(rate) = analysis.false_positive_rate {
                if !(rate > 0.0 && rate < 0.5) {
                    return Err(error(
                        "false_positive_rate",
                        format!("{rate} must be between 0 and 0.5 (0.01 means 1 %)"),
                    ));
                }
                policy.analysis.false_positive_rate = rate;
            }
            if let Some(min) = analysis.min_requests {
                policy.analysis.min_canary_requests = min;
                policy.analysis.min_baseline_requests = min;
            }
            if let Some(action) = analysis.on_inconclusive {
                policy.on_inconclusive = match action.as_str() {
                    "hold" => InconclusiveAction::Hold,
                    "rollback" | "roll_back" => InconclusiveAction::RollBack,
                    other => {
                        return Err(error(
                            "on_inconclusive",
                            format!("{other:?} is not hold or rollback"),
                        ))
                    }
                };
            }
            if let Some(failures) = analysis.health_failures_to_roll_back {
                if failures == 0 {
                    return Err(error(
                        "health_failures_to_roll_back",
                        "must be at least 1".into(),
                    ));
                }
                policy.health_failures_to_roll_back = failures;
            }
            if let Some(raw_check) = analysis.cost_per_request {
                let check = crate::core::cost::CostPerRequestPolicy {
                    max_ratio: raw_check
                        .max_ratio
                        .unwrap_or(crate::core::cost::release_cost::DEFAULT_MAX_RATIO),
                    min_requests: raw_check
                        .min_requests
                        .unwrap_or(policy.analysis.min_canary_requests),
                    memory_mb: crate::platform::local::costs::DEFAULT_MEMORY_MB,
                    prices: crate::core::cost::PriceTable::seed(),
                    ai_prices: None,
                };
                check
                    .validate()
                    .map_err(|message| error("cost_per_request", message))?;
                policy.cost_per_request = Some(check);
            }
        }

        let secrets = secrets::validate_secrets(file, text, base_dir, raw.secrets)?;
        let mut services = BTreeMap::new();
        for (index, (name, raw_service)) in raw.services.into_iter().enumerate() {
            let service = validate_service(
                file,
                text,
                base_dir,
                &plans_dir,
                steno_binary,
                index,
                name.clone(),
                raw_service,
            )?;
            let service_error = |field: &str, message: String| ConfigError {
                file: file.to_string(),
                line: line_of(text, field.split('.').next().unwrap_or(field))
                    .or_else(|| line_of(text, &name)),
                column: None,
                field: Some(format!("services.{name}.{field}")),
                message,
            };
            secrets::validate_release_env(
                &secrets::ReleaseEnvRules {
                    env: service.env.clone(),
                    env_from: service.env_from.clone(),
                    allow_env: service.allow_env.clone(),
                },
                &secrets,
                &service_error,
            )?;
            services.insert(name, service);
        }
        if services.is_empty() {
            return Err(error("services", "at least one service is needed".into()));
        }
        let mut public_addrs: Vec<SocketAddr> = Vec::new();
        for service in services.values() {
            let picks_a_free_port = service.public_addr.port() == 0;
            if !picks_a_free_port
                && (service.public_addr == listen || public_addrs.contains(&service.public_addr))
            {
                return Err(error(
                    "public_addr",
                    format!("{} is used twice", service.public_addr),
                ));
            }
            public_addrs.push(service.public_addr);
        }

        let (notification_targets, notification_routes) = match raw.notifications {
            Some(notifications) => (notifications.targets, notifications.routes),
            None => (Vec::new(), Vec::new()),
        };
        validate_notifications(&notification_targets, &notification_routes)
            .map_err(|problem| error("notifications", problem.to_string()))?;

        let mut databases = BTreeMap::new();
        for (name, raw_database) in raw.databases {
            let database = validate_database(file, text, base_dir, &name, raw_database)?;
            databases.insert(name, database);
        }
        for service in services.values() {
            if let Some(database) = &service.database {
                if !databases.contains_key(database) {
                    return Err(ConfigError {
                        file: file.to_string(),
                        line: line_of(text, "database"),
                        column: None,
                        field: Some(format!("services.{}.database", service.name)),
                        message: format!(
                            "{database:?} is not under databases; configured: {}",
                            if databases.is_empty() {
                                "none".to_string()
                            } else {
                                databases.keys().cloned().collect::<Vec<_>>().join(", ")
                            }
                        ),
                    });
                }
            }
        }

        let costs = match raw.costs {
            Some(raw_costs) => Some(validate_costs(
                file,
                text,
                raw_costs,
                &databases,
                &services,
                &notification_targets,
            )?),
            None => None,
        };
        // The cost-per-request check prices requests like the local cost model does.
        if let (Some(check), Some(CostSourceConfig::Local(local))) = (
            policy.cost_per_request.as_mut(),
            costs.as_ref().map(|costs| &costs.source),
        ) {
            check.memory_mb = local.memory_mb;
            check.prices = local.prices;
            check.ai_prices = local.ai.as_ref().map(|ai| ai.prices.clone());
        }
        for service in services.values() {
            if service.budget_gate != GateMode::Off && costs.is_none() {
                return Err(ConfigError {
                    file: file.to_string(),
                    line: line_of(text, "budget_gate"),
                    column: None,
                    field: Some(format!("services.{}.budget_gate", service.name)),
                    message: "needs a costs: block with budgets to gate on".into(),
                });
            }
        }

        Ok(Config {
            source: file.to_string(),
            listen,
            data_dir,
            plans_dir,
            tick,
            health_probe_interval,
            services,
            policy,
            notification_targets,
            notification_routes,
            databases,
            costs,
            secrets,
        })
    }

    /// Resolves a plan given on the command line: a preset name or a YAML file.
    pub fn resolve_plan(&self, name_or_file: &str) -> Result<RolloutPlan, ConfigError> {
        resolve_plan(name_or_file, &self.plans_dir)
    }

    /// A plan by name, as an API caller may choose one: a preset, or a plan file in `plans_dir`
    /// named `<name>.yaml`, `<name>.yml` or `<name>`. Never a path: a name with a separator or a
    /// leading dot is refused, and a file that resolves outside `plans_dir` (a symlink) is not
    /// read. Errors name the plans there are, never a path outside `plans_dir` or its content.
    pub fn named_plan(&self, name: &str) -> Result<RolloutPlan, NamedPlanError> {
        if let Some(plan) = preset(name) {
            return Ok(plan);
        }
        if !crate::core::plan::is_plain_name(name) || name.starts_with('.') {
            return Err(NamedPlanError::NotAName {
                available: self.plan_names(),
            });
        }
        let not_found = || NamedPlanError::Unknown {
            name: name.to_string(),
            available: self.plan_names(),
        };
        let Ok(plans_dir) = self.plans_dir.canonicalize() else {
            return Err(not_found());
        };
        for candidate in [
            format!("{name}.yaml"),
            format!("{name}.yml"),
            name.to_string(),
        ] {
            let Ok(path) = plans_dir.join(&candidate).canonicalize() else {
                continue;
            };
            if path.parent() != Some(plans_dir.as_path()) || !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|_| NamedPlanError::Unreadable {
                name: name.to_string(),
            })?;
            return parse_plan(&format!("plans/{candidate}"), &text)
                .map_err(NamedPlanError::Broken);
        }
        Err(not_found())
    }

    /// The names of the plan files in `plans_dir` (without `.yaml`/`.yml`), sorted.
    pub fn plan_names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.plans_dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().is_file())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter_map(|file| {
                file.strip_suffix(".yaml")
                    .or_else(|| file.strip_suffix(".yml"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        names
    }
}

fn names_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Why a plan name from an API caller names no plan.
#[derive(Debug, thiserror::Error)]
pub enum NamedPlanError {
    #[error("a plan is given by name (a preset or a file in the plans directory, without a path) or as a plan document; a name holds letters, digits, '-', '_' and '.', and does not start with '.'; plans: {}; presets: {}", names_or_none(available), preset_names().join(", "))]
    NotAName { available: Vec<String> },
    #[error("no preset and no plan named {name:?} in the plans directory; plans: {}; presets: {}", names_or_none(available), preset_names().join(", "))]
    Unknown {
        name: String,
        available: Vec<String>,
    },
    #[error("the plan {name:?} in the plans directory cannot be read")]
    Unreadable { name: String },
    #[error(transparent)]
    Broken(ConfigError),
}

fn resolve_plan(name_or_file: &str, plans_dir: &Path) -> Result<RolloutPlan, ConfigError> {
    if let Some(plan) = preset(name_or_file) {
        return Ok(plan);
    }
    let candidates = [
        PathBuf::from(name_or_file),
        plans_dir.join(name_or_file),
        plans_dir.join(format!("{name_or_file}.yaml")),
    ];
    for candidate in candidates {
        if candidate.is_file() {
            let text = std::fs::read_to_string(&candidate).map_err(|error| ConfigError {
                file: candidate.display().to_string(),
                line: None,
                column: None,
                field: None,
                message: format!("cannot read the plan: {error}"),
            })?;
            return parse_plan(&candidate.display().to_string(), &text);
        }
    }
    Err(ConfigError {
        file: name_or_file.to_string(),
        line: None,
        column: None,
        field: Some("plan".into()),
        message: format!(
            "no preset and no plan file by this name; presets: {}",
            preset_names().join(", ")
        ),
    })
}

#[allow(clippy::too_many_arguments)]
fn validate_service(
    file: &str,
    text: &str,
    base_dir: &Path,
    plans_dir: &Path,
    steno_binary: &Path,
    index: usize,
    name: String,
    raw: RawService,
) -> Result<ServiceConfig, ConfigError> {
    let error = |field: &str, message: String| ConfigError {
        file: file.to_string(),
        line: line_of(text, field).or_else(|| line_of(text, &name)),
        column: None,
        field: Some(format!("services.{name}.{field}")),
        message,
    };
    let aws = match (raw.platform.as_deref().unwrap_or("local"), raw.aws) {
        ("local", None) => None,
        ("local", Some(_)) => {
            return Err(error(
                "aws",
                "is set but the platform is local; add platform: aws or remove the aws block"
                    .into(),
            ))
        }
        ("aws", Some(raw_aws)) => Some(validate_aws(raw_aws, base_dir, &error)?),
        ("aws", None) => {
            return Err(error(
                "aws",
                "platform: aws needs an aws block with at least region and function_name".into(),
            ))
        }
        (other, _) => {
            return Err(error(
                "platform",
                format!("{other:?} is not a platform; use local or aws"),
            ))
        }
    };
    let default_port = 8080 + index as u16;
    let public_addr = match raw.public_addr.as_deref() {
        Some(text) => text.parse().map_err(|_| {
            error(
                "public_addr",
                format!("{text:?} is not an address like 127.0.0.1:8080"),
            )
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], default_port)),
    };
    let version_env = match (&raw.version_env, &raw.command) {
        (Some(name), _) if name.is_empty() => None,
        (Some(name), _) => Some(name.clone()),
        // Lambda tells a function its version itself (AWS_LAMBDA_FUNCTION_VERSION).
        (None, _) if aws.is_some() => None,
        (None, None) => Some("STENO_VERSION".to_string()),
        (None, Some(_)) => None,
    };
    let command = match raw.command {
        Some(command) if command.is_empty() => {
            return Err(error("command", "must name a program".into()))
        }
        Some(command) => command,
        None => vec![
            steno_binary.display().to_string(),
            "serve".into(),
            "--addr".into(),
            "127.0.0.1:{port}".into(),
        ],
    };
    if !command.iter().any(|arg| arg.contains("{port}"))
        && !raw.env.values().any(|value| value.contains("{port}"))
    {
        // The release learns its port from $PORT then; that is allowed but worth knowing.
        tracing::debug!(service = %name, "command has no {{port}} placeholder; the release must read PORT");
    }
    let mut env = raw.env;
    env.entry("STENO_DATA_DIR".into()).or_insert_with(|| {
        base_dir
            .join(".opsd")
            .join(format!("{name}-data"))
            .display()
            .to_string()
    });
    // The local router forwards from loopback and appends the caller's address to
    // X-Forwarded-For; Steno believes that header only from proxies it trusts, so its per-client
    // login limits see the real caller instead of the router.
    env.entry("STENO_TRUSTED_PROXIES".into())
        .or_insert_with(|| "127.0.0.1".into());
    let health_path = raw.health_path.unwrap_or_else(|| "/v1/health".into());
    if !health_path.starts_with('/') {
        return Err(error(
            "health_path",
            format!("{health_path:?} must start with /"),
        ));
    }
    let ready_timeout = duration_field(
        raw.ready_timeout.as_deref(),
        "ready_timeout",
        Duration::from_secs(30),
        &error,
    )?;
    let plan = resolve_plan(raw.plan.as_deref().unwrap_or(DEFAULT_PLAN), plans_dir)
        .map_err(|plan_error| error("plan", plan_error.to_string()))?;
    let mut checks = BTreeMap::new();
    for (check_name, raw_check) in raw.checks {
        let timeout = duration_field(
            raw_check.timeout.as_deref(),
            "timeout",
            Duration::from_secs(30),
            &error,
        )?;
        let check = match (raw_check.http, raw_check.command) {
            (Some(http), None) => CheckSpec::Http {
                path: http.path,
                expect_status: http.expect_status,
                timeout,
            },
            (None, Some(argv)) if !argv.is_empty() => CheckSpec::Command { argv, timeout },
            _ => {
                return Err(error(
                    &format!("checks.{check_name}"),
                    "give exactly one of http: {path: ...} or command: [program, args...]".into(),
                ))
            }
        };
        checks.insert(check_name, check);
    }
    for step in &plan.steps {
        for check in &step.checks {
            if !checks.contains_key(check) && check != "smoke" && check != "e2e" {
                return Err(error(
                    "plan",
                    format!("the plan runs check {check:?}, which is not defined under checks"),
                ));
            }
        }
    }
    // `SeedCanary` names `smoke` and `e2e` (R-CANARY-3, R-CANARY-4); unless defined, they probe
    // the health endpoint (or, on AWS, where a version has no URL of its own, ask Lambda whether
    // it is Active).
    for builtin in ["smoke", "e2e"] {
        checks.entry(builtin.to_string()).or_insert(match aws {
            Some(_) => CheckSpec::ReleaseHealth,
            None => CheckSpec::Http {
                path: health_path.clone(),
                expect_status: None,
                timeout: Duration::from_secs(10),
            },
        });
    }
    for (check_name, check) in &checks {
        if aws.is_some() && matches!(check, CheckSpec::Http { .. }) {
            return Err(error(
                &format!("checks.{check_name}"),
                "http checks need a URL per release, which a Lambda version has not; use a \
                 command check (it gets CANARY_VERSION)"
                    .into(),
            ));
        }
    }
    let drill_gate = match raw.drill_gate.as_deref() {
        None | Some("refuse") => GateMode::Refuse,
        Some("hold") => GateMode::Hold,
        Some("off") => GateMode::Off,
        Some(other) => {
            return Err(error(
                "drill_gate",
                format!("{other:?} is not refuse, hold or off"),
            ))
        }
    };
    let budget_gate = match raw.budget_gate.as_deref() {
        None | Some("off") => GateMode::Off,
        Some("refuse") => GateMode::Refuse,
        Some(other) => {
            return Err(error(
                "budget_gate",
                format!("{other:?} is not refuse or off"),
            ))
        }
    };
    if raw.database.is_none() && raw.snapshot_before_deploy == Some(true) {
        return Err(error(
            "snapshot_before_deploy",
            "needs database: <a name under databases> to know what to snapshot".into(),
        ));
    }
    Ok(ServiceConfig {
        snapshot_before_deploy: raw.snapshot_before_deploy.unwrap_or(raw.database.is_some()),
        database: raw.database,
        drill_gate,
        budget_gate,
        // On AWS an empty initial version means "whatever the alias routes now".
        initial_version: raw.initial_version.unwrap_or_else(|| {
            if aws.is_some() {
                String::new()
            } else {
                "v1".into()
            }
        }),
        aws,
        version_env,
        name,
        public_addr,
        command,
        env,
        env_from: raw.env_from,
        allow_env: raw.allow_env,
        health_path,
        ready_timeout,
        plan,
        checks,
    })
}

/// The default interval of `opsd up`'s cost checks: hourly (R-COST-12).
pub const DEFAULT_COST_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// The default window before an anomaly in which rollouts are named with it: 24 h (R-COST-13).
pub const DEFAULT_ROLLOUT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How many check intervals old the newest cost check may be, by default, for the budget gate to
/// trust it: one missed or failed scheduled check is tolerated, a stopped checker is not.
pub const DEFAULT_GATE_MAX_AGE_INTERVALS: u32 = 3;

/// `costs`, validated; errors name `costs.<field>` (budgets by name: `costs.budgets.<name>.<field>`).
/// A budget's `notify` must name targets of `notification_targets`.
fn validate_costs(
    file: &str,
    text: &str,
    raw: RawCosts,
    databases: &BTreeMap<String, DatabaseConfig>,
    services: &BTreeMap<String, ServiceConfig>,
    notification_targets: &[NotificationTarget],
) -> Result<CostsConfig, ConfigError> {
    let error = |field: &str, message: String| {
        let key = field.rsplit('.').next().unwrap_or(field);
        ConfigError {
            file: file.to_string(),
            line: line_of(text, key),
            column: None,
            field: Some(format!("costs.{field}")),
            message,
        }
    };
    let source = match raw.source.as_deref() {
        None | Some("aws") => {
            let aws = raw.aws.unwrap_or(RawCostsAws {
                region: None,
                endpoint_url: None,
                max_attempts: None,
            });
            let mut explorer = crate::platform::aws::costs::CostExplorerConfig::default();
            if let Some(region) = aws.region {
                if region.trim().is_empty() {
                    return Err(error(
                        "aws.region",
                        "is empty; Cost Explorer is served from us-east-1".into(),
                    ));
                }
                explorer.region = region;
            }
            if let Some(url) = aws.endpoint_url {
                match reqwest::Url::parse(&url) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                    _ => {
                        return Err(error(
                            "aws.endpoint_url",
                            format!("{url:?} is not an http or https URL"),
                        ))
                    }
                }
                explorer.endpoint_url = Some(url);
            }
            if let Some(attempts) = aws.max_attempts {
                if attempts == 0 || attempts > 10 {
                    return Err(error(
                        "aws.max_attempts",
                        format!("{attempts} must be between 1 and 10"),
                    ));
                }
                explorer.retry.max_attempts = attempts;
            }
            CostSourceConfig::Aws(explorer)
        }
        Some("local") => CostSourceConfig::Local(validate_local_costs(
            raw.local.as_ref(),
            databases,
            services,
            &error,
        )?),
        Some(other) => return Err(error("source", format!("{other:?} is not aws or local"))),
    };
    if raw.source.as_deref() != Some("local") && raw.local.is_some() {
        return Err(error(
            "local",
            "is only read with source: local; remove it or set source: local".into(),
        ));
    }
    let check_interval = match raw.check_interval.as_deref() {
        Some(text) => parse_duration(text).map_err(|message| error("check_interval", message))?,
        None => DEFAULT_COST_CHECK_INTERVAL,
    };
    if check_interval < Duration::from_secs(60) {
        return Err(error(
            "check_interval",
            "must be at least 1m (Cost Explorer updates a few times a day and bills per request)"
                .into(),
        ));
    }
    let gate_max_age = match raw.gate_max_age.as_deref() {
        Some(text) => parse_duration(text).map_err(|message| error("gate_max_age", message))?,
        None => check_interval.saturating_mul(DEFAULT_GATE_MAX_AGE_INTERVALS),
    };
    if gate_max_age < check_interval {
        return Err(error(
            "gate_max_age",
            format!(
                "{} is shorter than check_interval {}: the newest check would be too old between                  two checks; make it at least check_interval (default 3 × check_interval)",
                format_duration(gate_max_age),
                format_duration(check_interval)
            ),
        ));
    }
    let mut anomalies = AnomalyRules::seed();
    let mut rollout_window = DEFAULT_ROLLOUT_WINDOW;
    if let Some(raw_rules) = raw.anomalies {
        if let Some(value) = raw_rules.jump_percent {
            anomalies.jump_percent = value;
        }
        if let Some(value) = raw_rules.jump_floor_usd {
            anomalies.jump_floor_usd = value;
        }
        if let Some(value) = raw_rules.same_weekday_weeks {
            anomalies.same_weekday_weeks = value;
        }
        if let Some(value) = raw_rules.ai_service {
            anomalies.ai_service = value;
        }
        if let Some(value) = raw_rules.ai_percent_of_average {
            anomalies.ai_percent_of_average = value;
        }
        if let Some(value) = raw_rules.check_account_total {
            anomalies.check_account_total = value;
        }
        if let Some(text) = raw_rules.rollout_window.as_deref() {
            rollout_window = parse_duration(text)
                .map_err(|message| error("anomalies.rollout_window", message))?;
        }
        if let Err(problem) = anomalies.validate() {
            return Err(error("anomalies", problem.to_string()));
        }
    }
    let mut budgets: Vec<Budget> = Vec::new();
    for (index, raw_budget) in raw.budgets.into_iter().enumerate() {
        let name = raw_budget
            .name
            .clone()
            .filter(|name| !name.trim().is_empty())
            .ok_or_else(|| {
                error(
                    &format!("budgets[{index}].name"),
                    "is missing; give each budget a name".into(),
                )
            })?;
        let field = |key: &str| format!("budgets.{name}.{key}");
        if budgets.iter().any(|budget| budget.name == name) {
            return Err(error(
                &field("name"),
                "is used twice; budget names must be unique".into(),
            ));
        }
        let amount_usd = raw_budget.amount_usd.ok_or_else(|| {
            error(
                &field("amount_usd"),
                "is missing, like amount_usd: 1000".into(),
            )
        })?;
        if !(amount_usd.is_finite() && amount_usd > 0.0) {
            return Err(error(
                &field("amount_usd"),
                format!("{amount_usd} must be a positive number of US dollars"),
            ));
        }
        match raw_budget.period.as_deref() {
            None | Some("monthly") => {}
            Some(other) => {
                return Err(error(
                    &field("period"),
                    format!("{other:?} is not monthly (the only period for now)"),
                ))
            }
        }
        let scope = match raw_budget.scope {
            None => BudgetScope::Account,
            Some(RawScope::Word(word)) if word == "account" => BudgetScope::Account,
            Some(RawScope::Word(word)) => {
                return Err(error(
                    &field("scope"),
                    format!(
                        "{word:?} is not account, {{service: <name>}} or {{tag: \"Key=value\"}}"
                    ),
                ))
            }
            Some(RawScope::Map(map)) => {
                let mut entries = map.into_iter();
                match (entries.next(), entries.next()) {
                    (Some((key, service)), None)
                        if key == "service" && !service.trim().is_empty() =>
                    {
                        BudgetScope::Service(service)
                    }
                    (Some((key, tag)), None) if key == "tag" => match tag.split_once('=') {
                        Some((tag_key, value))
                            if !tag_key.trim().is_empty() && !value.is_empty() =>
                        {
                            BudgetScope::Tag {
                                key: tag_key.trim().to_string(),
                                value: value.to_string(),
                            }
                        }
                        _ => {
                            return Err(error(
                                &field("scope.tag"),
                                format!("{tag:?} is not Key=value, like Environment=production"),
                            ))
                        }
                    },
                    _ => {
                        return Err(error(
                            &field("scope"),
                            "must be account, {service: <name>} or {tag: \"Key=value\"}".into(),
                        ))
                    }
                }
            }
        };
        let thresholds = match raw_budget.thresholds {
            None => Budget::seed_default(amount_usd).thresholds,
            Some(raw_thresholds) => {
                let mut thresholds = Vec::new();
                for (position, raw_threshold) in raw_thresholds.into_iter().enumerate() {
                    let at = |key: &str| field(&format!("thresholds[{position}].{key}"));
                    let basis = match raw_threshold.basis.as_deref() {
                        Some("actual") => ThresholdBasis::Actual,
                        Some("forecast") => ThresholdBasis::Forecast,
                        Some(other) => {
                            return Err(error(
                                &at("basis"),
                                format!("{other:?} is not actual or forecast"),
                            ))
                        }
                        None => {
                            return Err(error(
                                &at("basis"),
                                "is missing: actual or forecast".into(),
                            ))
                        }
                    };
                    let percent = raw_threshold.percent.ok_or_else(|| {
                        error(&at("percent"), "is missing, like percent: 80".into())
                    })?;
                    if !(percent.is_finite() && percent > 0.0 && percent <= 1000.0) {
                        return Err(error(
                            &at("percent"),
                            format!("{percent} must be above 0 and at most 1000"),
                        ));
                    }
                    let severity = match raw_threshold.severity.as_deref() {
                        Some("warning") => ThresholdSeverity::Warning,
                        Some("critical") => ThresholdSeverity::Critical,
                        Some(other) => {
                            return Err(error(
                                &at("severity"),
                                format!("{other:?} is not warning or critical"),
                            ))
                        }
                        None => {
                            return Err(error(
                                &at("severity"),
                                "is missing: warning or critical".into(),
                            ))
                        }
                    };
                    thresholds.push(Threshold {
                        basis,
                        percent,
                        severity,
                    });
                }
                if thresholds.is_empty() {
                    return Err(error(
                        &field("thresholds"),
                        "is empty; leave it out for the defaults 80 % / 100 % / forecast 120 % \
                         (R-COST-2 to R-COST-4)"
                            .into(),
                    ));
                }
                thresholds
            }
        };
        let mut notify: Vec<String> = Vec::new();
        if let Some(names) = raw_budget.notify {
            if names.is_empty() {
                return Err(error(
                    &field("notify"),
                    "is empty; name at least one target, or leave it out to route by severity"
                        .into(),
                ));
            }
            for target in names {
                if !notification_targets
                    .iter()
                    .any(|known| known.name == target)
                {
                    let known: Vec<&str> = notification_targets
                        .iter()
                        .map(|known| known.name.as_str())
                        .collect();
                    return Err(error(
                        &field("notify"),
                        format!(
                            "{target:?} is not under notifications.targets; configured: {}",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    ));
                }
                if !notify.contains(&target) {
                    notify.push(target);
                }
            }
        }
        let budget = Budget {
            name: name.clone(),
            amount_usd,
            period: BudgetPeriod::Monthly,
            scope,
            thresholds,
            notify,
        };
        budget
            .validate()
            .map_err(|problem| error(&field("amount_usd"), problem.to_string()))?;
        budgets.push(budget);
    }
    if budgets.is_empty() {
        return Err(error(
            "budgets",
            "is empty; add at least one, like budgets: [{name: monthly, amount_usd: 1000}]".into(),
        ));
    }
    Ok(CostsConfig {
        source,
        check_interval,
        gate_max_age,
        anomalies,
        rollout_window,
        budgets,
    })
}

/// `costs.local`, validated: the memory size (Lambda's 128–10,240 MB) and the AI block, whose
/// database must be a SQLite or PostgreSQL database under `databases`.
fn validate_local_costs(
    raw: Option<&RawCostsLocal>,
    databases: &BTreeMap<String, DatabaseConfig>,
    services: &BTreeMap<String, ServiceConfig>,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<crate::platform::local::costs::LocalCostConfig, ConfigError> {
    use crate::core::cost::pricing::AiPrices;
    use crate::platform::local::costs::{LocalAiConfig, LocalCostConfig, TokenDatabase};

    let mut local = LocalCostConfig::default();
    let Some(raw) = raw else {
        return Ok(local);
    };
    if let Some(memory_mb) = raw.memory_mb {
        if !(128..=10_240).contains(&memory_mb) {
            return Err(error(
                "local.memory_mb",
                format!("{memory_mb} must be between 128 and 10240 (Lambda's memory sizes)"),
            ));
        }
        local.memory_mb = memory_mb;
    }
    if let Some(ai) = &raw.ai {
        let database = ai.database.clone().ok_or_else(|| {
            error(
                "local.ai.database",
                "is missing: name the database (under databases) holding Steno's letter revisions"
                    .into(),
            )
        })?;
        let configured = databases.get(&database).ok_or_else(|| {
            error(
                "local.ai.database",
                format!(
                    "{database:?} is not under databases; configured: {}",
                    if databases.is_empty() {
                        "none".to_string()
                    } else {
                        databases.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                ),
            )
        })?;
        let location = match &configured.kind {
            DatabaseKind::Sqlite { path } => TokenDatabase::Sqlite(path.clone()),
            DatabaseKind::Postgres { url, .. } => TokenDatabase::Postgres(url.clone()),
            DatabaseKind::Rds(_) => {
                return Err(error(
                    "local.ai.database",
                    format!(
                        "{database:?} is an RDS instance; the local cost model reads tokens from \
                         a sqlite or postgres database"
                    ),
                ))
            }
        };
        let price = |value: Option<f64>, field: &str| -> Result<f64, ConfigError> {
            let value = value.ok_or_else(|| {
                error(
                    &format!("local.ai.{field}"),
                    format!("is missing, like {field}: 3.0 (your model's price in US dollars)"),
                )
            })?;
            if value.is_finite() && value >= 0.0 {
                Ok(value)
            } else {
                Err(error(
                    &format!("local.ai.{field}"),
                    format!("{value} must be a number of US dollars, 0 or more"),
                ))
            }
        };
        let mut prices = AiPrices::new(
            price(
                ai.per_million_input_tokens_usd,
                "per_million_input_tokens_usd",
            )?,
            price(
                ai.per_million_output_tokens_usd,
                "per_million_output_tokens_usd",
            )?,
        );
        if let Some(service) = &ai.service {
            prices.service = service.clone();
        }
        prices
            .validate()
            .map_err(|problem| error("local.ai.service", problem.to_string()))?;
        let owner_service = services
            .values()
            .find(|service| service.database.as_deref() == Some(database.as_str()))
            .map(|service| service.name.clone());
        local.ai = Some(LocalAiConfig {
            database,
            location,
            prices,
            owner_service,
        });
    }
    Ok(local)
}

fn duration_field(
    value: Option<&str>,
    field: &str,
    default: Duration,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Duration, ConfigError> {
    match value {
        Some(text) => parse_duration(text).map_err(|message| error(field, message)),
        None => Ok(default),
    }
}

/// `services.<name>.aws`, validated.
fn validate_aws(
    raw: RawAws,
    base_dir: &Path,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<AwsServiceConfig, ConfigError> {
    let plain = |field: &str, value: Option<String>| -> Result<String, ConfigError> {
        match value {
            Some(text) if !text.trim().is_empty() && !text.contains(char::is_whitespace) => {
                Ok(text)
            }
            Some(text) => Err(error(
                &format!("aws.{field}"),
                format!("{text:?} must be a name without spaces"),
            )),
            None => Err(error(&format!("aws.{field}"), "is required".into())),
        }
    };
    let region = plain("region", raw.region)?;
    let function_name = plain("function_name", raw.function_name)?;
    let alias = plain("alias", Some(raw.alias.unwrap_or_else(|| "live".into())))?;
    let mut config = AwsServiceConfig::for_function(&region, &function_name, &alias);
    if let Some(endpoint) = raw.endpoint_url {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(error(
                "aws.endpoint_url",
                format!("{endpoint:?} must start with http:// or https://"),
            ));
        }
        config.endpoint_url = Some(endpoint);
    }
    if let Some(namespace) = raw.metrics_namespace {
        config.metrics_namespace = plain("metrics_namespace", Some(namespace))?;
    }
    config.poll_interval = duration_field(
        raw.poll_interval.as_deref(),
        "aws.poll_interval",
        config.poll_interval,
        error,
    )?;
    if config.poll_interval > Duration::from_secs(300) {
        return Err(error(
            "aws.poll_interval",
            "must be at most 5m, or rollouts would judge stale metrics".into(),
        ));
    }
    config.rollback_alarms = raw.rollback_alarms;
    if let Some(topic) = raw.alarm_topic_arn {
        if !topic.starts_with("arn:aws:sns:") {
            return Err(error(
                "aws.alarm_topic_arn",
                format!("{topic:?} is not an SNS topic ARN (arn:aws:sns:region:account:name)"),
            ));
        }
        config.alarm_topic_arn = Some(topic);
    }
    config.database_instance = raw.database_instance;
    if let Some(cloudfront) = raw.cloudfront {
        let paths = cloudfront.paths.unwrap_or_else(|| vec!["/*".into()]);
        crate::platform::aws::cdn::validate_paths(&paths)
            .map_err(|problem| error("aws.cloudfront.paths", problem))?;
        config.cloudfront = Some(CloudFrontConfig {
            distribution_id: plain(
                "cloudfront.distribution_id",
                Some(cloudfront.distribution_id),
            )?,
            paths,
        });
    }
    config.package = raw.package.map(|path| base_dir.join(path));
    if let Some(attempts) = raw.max_attempts {
        if attempts == 0 || attempts > 10 {
            return Err(error(
                "aws.max_attempts",
                format!("{attempts} must be between 1 and 10"),
            ));
        }
        config.retry = RetryPolicy {
            max_attempts: attempts,
            ..RetryPolicy::default()
        };
    }
    Ok(config)
}

/// Steno's drill checks, embedded so a database without a `checks` file is still verified.
const EMBEDDED_STENO_CHECKS: &str = include_str!("../../../drills/steno-checks.yaml");

/// `databases.<name>`, validated.
fn validate_database(
    file: &str,
    text: &str,
    base_dir: &Path,
    name: &str,
    raw: RawDatabase,
) -> Result<DatabaseConfig, ConfigError> {
    let error = |field: &str, message: String| ConfigError {
        file: file.to_string(),
        line: line_of(text, field.rsplit('.').next().unwrap_or(field))
            .or_else(|| line_of(text, name)),
        column: None,
        field: Some(format!("databases.{name}.{field}")),
        message,
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        return Err(error(
            "",
            format!("{name:?} must be letters, digits, - and _ only (it names snapshots)"),
        ));
    }
    let kind_name = raw.kind.as_deref().unwrap_or("");
    if kind_name != "sqlite" && raw.path.is_some() {
        return Err(error("path", "is only for kind: sqlite".into()));
    }
    if kind_name != "postgres" && raw.url.is_some() {
        return Err(error("url", "is only for kind: postgres".into()));
    }
    let kind = match raw.kind.as_deref() {
        Some("sqlite") => {
            let path = raw
                .path
                .ok_or_else(|| error("path", "a sqlite database needs path: <file>".into()))?;
            DatabaseKind::Sqlite {
                path: base_dir.join(path),
            }
        }
        Some("postgres") => {
            let url = raw.url.ok_or_else(|| {
                error(
                    "url",
                    "a postgres database needs url: postgres://user@host:port/name".into(),
                )
            })?;
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(error(
                    "url",
                    "must start with postgres:// (user, host, port and database name)".into(),
                ));
            }
            DatabaseKind::Postgres {
                url,
                tools_dir: raw.tools_dir.map(|dir| base_dir.join(dir)),
            }
        }
        Some("rds") => {
            let rds = raw.rds.ok_or_else(|| {
                error(
                    "rds",
                    "kind: rds needs an rds block with region and instance".into(),
                )
            })?;
            let region = rds
                .region
                .ok_or_else(|| error("rds.region", "is required".into()))?;
            let instance = rds
                .instance
                .ok_or_else(|| error("rds.instance", "is required".into()))?;
            if let Some(endpoint) = &rds.endpoint_url {
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                    return Err(error(
                        "rds.endpoint_url",
                        format!("{endpoint:?} must start with http:// or https://"),
                    ));
                }
            }
            let mut retry = RetryPolicy::default();
            if let Some(attempts) = rds.max_attempts {
                if attempts == 0 || attempts > 10 {
                    return Err(error(
                        "rds.max_attempts",
                        format!("{attempts} must be between 1 and 10"),
                    ));
                }
                retry.max_attempts = attempts;
            }
            DatabaseKind::Rds(RdsDatabaseConfig {
                region,
                instance,
                endpoint_url: rds.endpoint_url,
                instance_class: rds.instance_class,
                wait_timeout: duration_field(
                    rds.wait_timeout.as_deref(),
                    "rds.wait_timeout",
                    Duration::from_secs(3600),
                    &error,
                )?,
                poll_interval: duration_field(
                    rds.poll_interval.as_deref(),
                    "rds.poll_interval",
                    Duration::from_secs(15),
                    &error,
                )?,
                retry,
            })
        }
        Some(other) => {
            return Err(error(
                "kind",
                format!("{other:?} is not a database kind; use sqlite, postgres or rds"),
            ))
        }
        None => return Err(error("kind", "is required: sqlite, postgres or rds".into())),
    };
    let mut targets = DrillTargets::default();
    if let Some(raw_targets) = raw.targets {
        targets.rto = duration_field(
            raw_targets.rto.as_deref(),
            "targets.rto",
            targets.rto,
            &error,
        )?;
        targets.rpo = duration_field(
            raw_targets.rpo.as_deref(),
            "targets.rpo",
            targets.rpo,
            &error,
        )?;
    }
    let schedule = Schedule::parse(raw.schedule.as_deref().unwrap_or("@quarterly"))
        .map_err(|message| error("schedule", message))?;
    let snapshot_schedule = raw
        .snapshot_schedule
        .as_deref()
        .map(Schedule::parse)
        .transpose()
        .map_err(|message| error("snapshot_schedule", message))?;
    let retention = duration_field(
        raw.retention.as_deref(),
        "retention",
        Duration::from_secs(30 * 86400),
        &error,
    )?;
    let checks = match raw.checks {
        Some(path) => {
            let full = base_dir.join(&path);
            let checks_text = std::fs::read_to_string(&full).map_err(|read_error| {
                error(
                    "checks",
                    format!("cannot read {}: {read_error}", full.display()),
                )
            })?;
            parse_drill_checks(&full.display().to_string(), &checks_text)?
        }
        None => parse_drill_checks("(embedded) drills/steno-checks.yaml", EMBEDDED_STENO_CHECKS)?,
    };
    Ok(DatabaseConfig {
        name: name.to_string(),
        kind,
        targets,
        schedule,
        snapshot_schedule,
        retention,
        checks,
    })
}

/// Parses a drill checks file: `checks: [{name, sql, expect}]`, `expect: source` or a value.
pub fn parse_drill_checks(file: &str, text: &str) -> Result<Vec<DrillCheck>, ConfigError> {
    let raw: RawChecksFile =
        serde_yaml::from_str(text).map_err(|error| yaml_error(file, &error))?;
    let mut checks: Vec<DrillCheck> = Vec::new();
    for (index, raw_check) in raw.checks.into_iter().enumerate() {
        let error = |message: String| ConfigError {
            file: file.to_string(),
            line: line_of(text, "name"),
            column: None,
            field: Some(format!("checks[{index}]")),
            message,
        };
        if raw_check.name.trim().is_empty() {
            return Err(error("name must not be empty".into()));
        }
        if checks.iter().any(|check| check.name == raw_check.name) {
            return Err(error(format!("{:?} is named twice", raw_check.name)));
        }
        let sql = raw_check.sql.trim().to_string();
        let first_word = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if first_word != "SELECT" && first_word != "WITH" {
            return Err(error(format!(
                "check {:?}: sql must be a query (SELECT or WITH), not {first_word:?}",
                raw_check.name
            )));
        }
        let expect = match raw_check.expect {
            serde_yaml::Value::String(text) if text == "source" => CheckExpectation::SameAsSource,
            serde_yaml::Value::String(text) => CheckExpectation::Value(text),
            serde_yaml::Value::Number(number) => CheckExpectation::Value(number.to_string()),
            serde_yaml::Value::Bool(flag) => CheckExpectation::Value(flag.to_string()),
            other => {
                return Err(error(format!(
                    "check {:?}: expect must be `source` or a value, not {other:?}",
                    raw_check.name
                )))
            }
        };
        checks.push(DrillCheck {
            name: raw_check.name,
            sql,
            expect,
        });
    }
    Ok(checks)
}

/// The alarm rules embedded in the binary (R-ALARM-1 to R-ALARM-8).
pub fn embedded_alarm_rules() -> Vec<AlarmRule> {
    embedded_alarms().unwrap_or_default()
}

fn embedded_alarms() -> Result<Vec<AlarmRule>, ConfigError> {
    let mut rules = Vec::new();
    for (name, text) in EMBEDDED_ALARMS {
        rules.extend(parse_alarm_file(
            &format!("(embedded) alarms/{name}"),
            text,
        )?);
    }
    Ok(rules)
}

/// The first line (1-based) where `key:` appears, to point errors at it.
fn line_of(text: &str, key: &str) -> Option<usize> {
    let needle = format!("{key}:");
    text.lines()
        .position(|line| {
            line.trim_start()
                .trim_start_matches("- ")
                .starts_with(&needle)
        })
        .map(|index| index + 1)
}

fn yaml_error(file: &str, error: &serde_yaml::Error) -> ConfigError {
    let location = error.location();
    let message = error.to_string();
    let field = message
        .split('`')
        .nth(1)
        .filter(|_| message.contains("unknown field") || message.contains("missing field"))
        .map(str::to_string);
    ConfigError {
        file: file.to_string(),
        line: location.as_ref().map(|location| location.line()),
        column: location.as_ref().map(|location| location.column()),
        field,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(
            "opsd.yaml",
            text,
            Path::new("/srv"),
            Path::new("/usr/bin/steno"),
        )
    }

    #[test]
    fn embedded_defaults_run_steno_locally() {
        let config = Config::embedded_default(Path::new("/usr/bin/steno")).unwrap();
        let steno = &config.services["steno"];
        assert_eq!(steno.public_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(steno.command[0], "/usr/bin/steno");
        assert_eq!(steno.plan.name, "SeedCanary");
        assert_eq!(config.listen, "127.0.0.1:7070".parse().unwrap());
        assert!(config.policy.alarms.iter().any(|rule| rule.rollback));
        assert!(steno.checks.contains_key("smoke"));
    }

    #[test]
    fn unknown_keys_name_file_line_and_field() {
        let error =
            parse("listen: 127.0.0.1:7070\nservices:\n  steno:\n    public_adr: 127.0.0.1:9000\n")
                .unwrap_err();
        assert_eq!(error.file, "opsd.yaml");
        assert_eq!(error.line, Some(4));
        assert!(error.to_string().contains("public_adr"), "{error}");
    }

    #[test]
    fn impossible_values_are_refused() {
        let bad_listen = parse("listen: everywhere\nservices:\n  steno: {}\n").unwrap_err();
        assert_eq!(bad_listen.field.as_deref(), Some("listen"));
        assert_eq!(bad_listen.line, Some(1));
        let bad_plan = parse("services:\n  steno:\n    plan: Canary99Percent\n").unwrap_err();
        assert!(
            bad_plan.to_string().contains("Canary10Percent5Minutes"),
            "{bad_plan}"
        );
        let bad_rate =
            parse("services:\n  steno: {}\nanalysis:\n  false_positive_rate: 2\n").unwrap_err();
        assert_eq!(bad_rate.line, Some(4));
        let bad_tick = parse("tick: 5 fortnights\nservices:\n  steno: {}\n").unwrap_err();
        assert_eq!(bad_tick.field.as_deref(), Some("tick"));
        let bad_platform = parse("services:\n  steno:\n    platform: mainframe\n").unwrap_err();
        assert!(bad_platform.to_string().contains("mainframe"));
    }

    #[test]
    fn aws_services_name_their_function_alias_and_endpoint() {
        let config = parse(
            "services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n      function_name: steno-prod\n      endpoint_url: http://127.0.0.1:5000\n      poll_interval: 2s\n      rollback_alarms: [api-5xx]\n      cloudfront: {distribution_id: E2EXAMPLE}\n      max_attempts: 3\n",
        )
        .unwrap();
        let steno = &config.services["steno"];
        let aws = steno.aws.as_ref().unwrap();
        assert_eq!(aws.region, "eu-west-1");
        assert_eq!(aws.function_name, "steno-prod");
        assert_eq!(aws.alias, "live");
        assert_eq!(aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(aws.poll_interval, Duration::from_secs(2));
        assert_eq!(aws.rollback_alarms, vec!["api-5xx".to_string()]);
        assert_eq!(
            aws.cloudfront.as_ref().unwrap().paths,
            vec!["/*".to_string()]
        );
        assert_eq!(aws.retry.max_attempts, 3);
        // Lambda reports its own version; the alias decides the first stable release.
        assert_eq!(steno.version_env, None);
        assert_eq!(steno.initial_version, "");
        assert_eq!(steno.checks["smoke"], CheckSpec::ReleaseHealth);
        assert_eq!(steno.public_target(), "lambda:steno-prod:live");
    }

    #[test]
    fn aws_blocks_are_checked_field_by_field() {
        let missing = parse("services:\n  steno:\n    platform: aws\n").unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("services.steno.aws"));
        let no_function =
            parse("services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n")
                .unwrap_err();
        assert_eq!(
            no_function.field.as_deref(),
            Some("services.steno.aws.function_name")
        );
        let bad_endpoint = parse(
            "services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n      function_name: steno\n      endpoint_url: localhost:5000\n",
        )
        .unwrap_err();
        assert!(
            bad_endpoint.to_string().contains("http://"),
            "{bad_endpoint}"
        );
        let unknown = parse(
            "services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n      function_name: steno\n      alais: live\n",
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("alais"), "{unknown}");
        let http_check = parse(
            "services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n      function_name: steno\n    checks:\n      smoke:\n        http: {path: /v1/health}\n",
        )
        .unwrap_err();
        assert!(
            http_check.to_string().contains("command check"),
            "{http_check}"
        );
        let local_with_aws = parse(
            "services:\n  steno:\n    aws:\n      region: eu-west-1\n      function_name: steno\n",
        )
        .unwrap_err();
        assert_eq!(local_with_aws.field.as_deref(), Some("services.steno.aws"));
        let other_platform = parse("services:\n  steno:\n    platform: kubernetes\n").unwrap_err();
        assert!(
            other_platform.to_string().contains("local or aws"),
            "{other_platform}"
        );
    }

    #[test]
    fn databases_take_kind_targets_schedules_and_the_embedded_steno_checks() {
        let config = parse(
            "services:\n  steno:\n    database: main\n    drill_gate: hold\ndatabases:\n  main:\n    kind: postgres\n    url: postgres://steno@127.0.0.1:5432/steno\n    targets: {rto: 30m, rpo: 5m}\n    schedule: \"0 3 * * 1\"\n    snapshot_schedule: \"@hourly\"\n    retention: 7d\n  local:\n    kind: sqlite\n    path: data/steno.db\n  cloud:\n    kind: rds\n    rds: {region: eu-west-1, instance: steno-prod}\n",
        )
        .unwrap();
        let main = &config.databases["main"];
        assert_eq!(main.targets.rto, Duration::from_secs(1800));
        assert_eq!(main.targets.rpo, Duration::from_secs(300));
        assert_eq!(main.schedule.as_str(), "0 3 * * 1");
        assert!(main.snapshot_schedule.is_some());
        assert_eq!(main.retention, Duration::from_secs(7 * 86400));
        assert!(main
            .checks
            .iter()
            .any(|check| check.name == "letters checksum"));
        let local = &config.databases["local"];
        assert_eq!(
            local.kind,
            DatabaseKind::Sqlite {
                path: PathBuf::from("/srv/data/steno.db")
            }
        );
        // Defaults: RTO < 2 h, RPO < 1 h (R-DR-2), quarterly drills (R-DR-3).
        assert_eq!(local.targets, DrillTargets::default());
        assert_eq!(local.schedule.as_str(), "@quarterly");
        assert!(
            matches!(&config.databases["cloud"].kind, DatabaseKind::Rds(rds) if rds.instance == "steno-prod")
        );
        let steno = &config.services["steno"];
        assert_eq!(steno.database.as_deref(), Some("main"));
        assert!(
            steno.snapshot_before_deploy,
            "on by default with a database"
        );
        assert_eq!(steno.drill_gate, GateMode::Hold);
    }

    #[test]
    fn bad_database_blocks_name_the_field() {
        let cases = [
            (
                "databases:\n  db:\n    kind: oracle\n",
                "databases.db.kind",
                "sqlite, postgres or rds",
            ),
            (
                "databases:\n  db:\n    kind: sqlite\n",
                "databases.db.path",
                "needs path",
            ),
            (
                "databases:\n  db:\n    kind: postgres\n    url: mysql://x\n",
                "databases.db.url",
                "postgres://",
            ),
            (
                "databases:\n  db:\n    kind: sqlite\n    path: a.db\n    schedule: every day\n",
                "databases.db.schedule",
                "fields",
            ),
            (
                "databases:\n  db:\n    kind: sqlite\n    path: a.db\n    url: postgres://x/y\n",
                "databases.db.url",
                "only for kind: postgres",
            ),
            (
                "databases:\n  db:\n    kind: rds\n    rds: {region: eu-west-1}\n",
                "databases.db.rds.instance",
                "required",
            ),
        ];
        for (block, field, words) in cases {
            let error = parse(&format!("services:\n  steno: {{}}\n{block}")).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{block}: {error}");
            assert!(error.to_string().contains(words), "{block}: {error}");
        }
        let unknown = parse("services:\n  steno:\n    database: nope\n").unwrap_err();
        assert_eq!(unknown.field.as_deref(), Some("services.steno.database"));
        let gate = parse("services:\n  steno:\n    drill_gate: maybe\n").unwrap_err();
        assert!(gate.to_string().contains("refuse, hold or off"), "{gate}");
    }

    #[test]
    fn checks_files_take_queries_and_expectations_only() {
        let checks = parse_drill_checks(
            "checks.yaml",
            "checks:\n  - name: none\n    sql: SELECT 0\n    expect: 0\n  - name: same\n    sql: WITH x AS (SELECT 1) SELECT * FROM x\n    expect: source\n",
        )
        .unwrap();
        assert_eq!(checks[0].expect, CheckExpectation::Value("0".into()));
        assert_eq!(checks[1].expect, CheckExpectation::SameAsSource);
        let writes = parse_drill_checks(
            "checks.yaml",
            "checks:\n  - name: oops\n    sql: DELETE FROM letters\n    expect: 0\n",
        )
        .unwrap_err();
        assert!(writes.to_string().contains("must be a query"), "{writes}");
        let twice = parse_drill_checks(
            "checks.yaml",
            "checks:\n  - name: a\n    sql: SELECT 1\n    expect: 1\n  - name: a\n    sql: SELECT 1\n    expect: 1\n",
        )
        .unwrap_err();
        assert!(twice.to_string().contains("named twice"), "{twice}");
    }

    #[test]
    fn services_take_plans_env_and_checks() {
        let config = parse(
            "services:\n  steno:\n    public_addr: 127.0.0.1:9000\n    plan: Linear10PercentEvery1Minute\n    env:\n      STENO_LOG: warn\n    checks:\n      smoke:\n        http: {path: /login, expect_status: 200}\n",
        )
        .unwrap();
        let steno = &config.services["steno"];
        assert_eq!(steno.plan.steps.len(), 10);
        assert_eq!(steno.env["STENO_LOG"], "warn");
        assert!(steno.env.contains_key("STENO_DATA_DIR"));
        assert_eq!(steno.env["STENO_TRUSTED_PROXIES"], "127.0.0.1");
        assert_eq!(
            steno.checks["smoke"],
            CheckSpec::Http {
                path: "/login".into(),
                expect_status: Some(200),
                timeout: Duration::from_secs(30)
            }
        );
    }

    #[test]
    fn costs_take_a_source_budgets_with_scopes_and_seed_thresholds() {
        let config = parse(
            "services:\n  steno:\n    budget_gate: refuse\ncosts:\n  source: aws\n  aws: {endpoint_url: \"http://127.0.0.1:4566\", max_attempts: 2}\n  check_interval: 30m\n  anomalies: {jump_floor_usd: 25, check_account_total: false, rollout_window: 12h}\n  budgets:\n    - {name: monthly, amount_usd: 1000}\n    - name: lambda\n      amount_usd: 200\n      scope: {service: AWS Lambda}\n      thresholds: [{basis: actual, percent: 90, severity: warning}]\n    - {name: prod, amount_usd: 700, scope: {tag: \"Environment=production\"}}\n",
        )
        .unwrap();
        let costs = config.costs.as_ref().unwrap();
        assert_eq!(config.services["steno"].budget_gate, GateMode::Refuse);
        assert_eq!(costs.check_interval, Duration::from_secs(1800));
        // gate_max_age defaults to 3 x check_interval.
        assert_eq!(costs.gate_max_age, Duration::from_secs(3 * 1800));
        assert_eq!(costs.rollout_window, Duration::from_secs(12 * 3600));
        assert_eq!(costs.anomalies.jump_floor_usd, 25.0);
        assert!(!costs.anomalies.check_account_total);
        assert_eq!(costs.anomalies.jump_percent, 20.0);
        let CostSourceConfig::Aws(explorer) = &costs.source else {
            panic!("source: aws gives Cost Explorer")
        };
        assert_eq!(explorer.region, "us-east-1");
        assert_eq!(explorer.retry.max_attempts, 2);
        assert_eq!(costs.budgets[0], Budget::seed_default(1000.0));
        assert_eq!(
            costs.budgets[1].scope,
            BudgetScope::Service("AWS Lambda".into())
        );
        assert_eq!(costs.budgets[1].thresholds.len(), 1);
        assert_eq!(
            costs.budgets[2].scope,
            BudgetScope::Tag {
                key: "Environment".into(),
                value: "production".into()
            }
        );
        assert!(costs.budgets.iter().all(|budget| budget.notify.is_empty()));
        let plain = parse("services:\n  steno: {}\n").unwrap();
        assert!(plain.costs.is_none());
        assert_eq!(plain.services["steno"].budget_gate, GateMode::Off);
    }

    const TWO_TARGETS: &str = "notifications:\n  targets:\n    - {name: chat, kind: slack, webhook_url: \"http://127.0.0.1:9/hook\"}\n    - {name: finance, kind: slack, webhook_url: \"http://127.0.0.1:9/finance\"}\n  routes:\n    - {min_severity: info, targets: [chat]}\n";

    #[test]
    fn budgets_may_name_their_notification_targets_and_the_gate_its_max_age() {
        let config = parse(&format!(
            "services:\n  steno: {{}}\n{TWO_TARGETS}costs:\n  check_interval: 1h\n  gate_max_age: 2h\n  budgets:\n    - {{name: monthly, amount_usd: 1000}}\n    - {{name: prod, amount_usd: 700, notify: [finance, chat, finance]}}\n"
        ))
        .unwrap();
        let costs = config.costs.as_ref().unwrap();
        assert_eq!(costs.gate_max_age, Duration::from_secs(7200));
        assert!(costs.budgets[0].notify.is_empty());
        assert_eq!(costs.budgets[1].notify, ["finance", "chat"]);
        let equal = parse(
            "services:\n  steno: {}\ncosts:\n  check_interval: 1h\n  gate_max_age: 1h\n  budgets: [{name: b, amount_usd: 1}]\n",
        )
        .unwrap();
        assert_eq!(equal.costs.unwrap().gate_max_age, Duration::from_secs(3600));
    }

    #[test]
    fn an_unknown_notify_target_names_the_budget_and_lists_the_targets() {
        let error = parse(&format!(
            "services:\n  steno: {{}}\n{TWO_TARGETS}costs:\n  budgets:\n    - {{name: prod, amount_usd: 700, notify: [finanse]}}\n"
        ))
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("costs.budgets.prod.notify"));
        let message = error.to_string();
        assert!(message.contains("\"finanse\""), "{message}");
        assert!(message.contains("configured: chat, finance"), "{message}");
        let none = parse(
            "services:\n  steno: {}\ncosts:\n  budgets: [{name: b, amount_usd: 1, notify: [chat]}]\n",
        )
        .unwrap_err();
        assert!(none.to_string().contains("configured: none"), "{none}");
    }

    #[test]
    fn a_local_cost_source_prices_with_the_seed_table_and_reads_tokens_from_a_database() {
        use crate::platform::local::costs::{TokenDatabase, DEFAULT_MEMORY_MB};
        let databases = "databases:\n  steno: {kind: sqlite, path: data/steno.db}\n  big: {kind: rds, rds: {region: eu-west-1, instance: prod}}\n";
        let config = parse(&format!(
            "services:\n  steno:\n    database: steno\n{databases}costs:\n  source: local\n  local:\n    memory_mb: 1024\n    ai: {{database: steno, per_million_input_tokens_usd: 3, per_million_output_tokens_usd: 15}}\n  budgets: [{{name: monthly, amount_usd: 1000}}]\n"
        ))
        .unwrap();
        let CostSourceConfig::Local(local) = &config.costs.as_ref().unwrap().source else {
            panic!("source: local gives the local model")
        };
        assert_eq!(local.memory_mb, 1024);
        assert_eq!(local.prices, crate::core::cost::pricing::PriceTable::seed());
        let ai = local.ai.as_ref().unwrap();
        assert!(
            matches!(&ai.location, TokenDatabase::Sqlite(path) if path.ends_with("data/steno.db"))
        );
        assert_eq!(ai.prices.per_million_output_tokens_usd, 15.0);
        assert_eq!(ai.prices.service, "AI");
        assert_eq!(ai.owner_service.as_deref(), Some("steno"));

        let plain = parse("services:\n  steno: {}\ncosts:\n  source: local\n  budgets: [{name: b, amount_usd: 1}]\n").unwrap();
        let CostSourceConfig::Local(local) = &plain.costs.as_ref().unwrap().source else {
            panic!("source: local gives the local model")
        };
        assert_eq!(local.memory_mb, DEFAULT_MEMORY_MB);
        assert!(local.ai.is_none());

        let cases = [
            ("ai: {per_million_input_tokens_usd: 1, per_million_output_tokens_usd: 1}", "costs.local.ai.database", "is missing"),
            ("ai: {database: nope, per_million_input_tokens_usd: 1, per_million_output_tokens_usd: 1}", "costs.local.ai.database", "big, steno"),
            ("ai: {database: big, per_million_input_tokens_usd: 1, per_million_output_tokens_usd: 1}", "costs.local.ai.database", "RDS instance"),
            ("ai: {database: steno, per_million_output_tokens_usd: 1}", "costs.local.ai.per_million_input_tokens_usd", "is missing"),
            ("ai: {database: steno, per_million_input_tokens_usd: 1, per_million_output_tokens_usd: -2}", "costs.local.ai.per_million_output_tokens_usd", "0 or more"),
            ("ai: {database: steno, per_million_input_tokens_usd: 1, per_million_output_tokens_usd: 1, service: \" \"}", "costs.local.ai.service", "empty"),
        ];
        for (ai, field, words) in cases {
            let error = parse(&format!(
                "services:\n  steno: {{}}\n{databases}costs:\n  source: local\n  local:\n    {ai}\n  budgets: [{{name: b, amount_usd: 1}}]\n"
            ))
            .unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{ai}: {error}");
            assert!(error.to_string().contains(words), "{ai}: {error}");
        }
        let checked = parse(&format!(
            "analysis:\n  cost_per_request: {{max_ratio: 3}}\nservices:\n  steno: {{}}\n{databases}costs:\n  source: local\n  local: {{memory_mb: 1024}}\n  budgets: [{{name: b, amount_usd: 1}}]\n"
        ))
        .unwrap();
        let check = checked.policy.cost_per_request.as_ref().unwrap();
        assert_eq!(check.max_ratio, 3.0);
        assert_eq!(check.memory_mb, 1024);
        assert_eq!(
            check.min_requests,
            checked.policy.analysis.min_canary_requests
        );
        let defaults =
            parse("analysis:\n  cost_per_request: {}\nservices:\n  steno: {}\n").unwrap();
        let check = defaults.policy.cost_per_request.as_ref().unwrap();
        assert_eq!((check.max_ratio, check.memory_mb), (2.0, DEFAULT_MEMORY_MB));
        assert!(parse("services:\n  steno: {}\n")
            .unwrap()
            .policy
            .cost_per_request
            .is_none());
        let bad =
            parse("analysis:\n  cost_per_request: {max_ratio: 0.5}\nservices:\n  steno: {}\n")
                .unwrap_err();
        assert_eq!(bad.field.as_deref(), Some("cost_per_request"), "{bad}");
        assert!(bad.to_string().contains("above 1"), "{bad}");
        let misplaced = parse("services:\n  steno: {}\ncosts:\n  local: {memory_mb: 512}\n  budgets: [{name: b, amount_usd: 1}]\n").unwrap_err();
        assert_eq!(
            misplaced.field.as_deref(),
            Some("costs.local"),
            "{misplaced}"
        );
    }

    #[test]
    fn bad_cost_blocks_name_the_field() {
        let cases = [
            ("costs:\n  source: gcp\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.source", "not aws or local"),
            ("costs:\n  source: local\n  local: {memory_mb: 64}\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.local.memory_mb", "between 128 and 10240"),
            ("costs:\n  budgets: []\n", "costs.budgets", "at least one"),
            ("costs:\n  budgets: [{name: b}]\n", "costs.budgets.b.amount_usd", "missing"),
            ("costs:\n  budgets: [{name: b, amount_usd: -3}]\n", "costs.budgets.b.amount_usd", "positive"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, period: weekly}]\n", "costs.budgets.b.period", "monthly"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, scope: region}]\n", "costs.budgets.b.scope", "account"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, scope: {tag: production}}]\n", "costs.budgets.b.scope.tag", "Key=value"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, thresholds: [{basis: actual, percent: 80, severity: page}]}]\n", "costs.budgets.b.thresholds[0].severity", "warning or critical"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, thresholds: [{basis: spend, percent: 80, severity: warning}]}]\n", "costs.budgets.b.thresholds[0].basis", "actual or forecast"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1}, {name: b, amount_usd: 2}]\n", "costs.budgets.b.name", "twice"),
            ("costs:\n  check_interval: 5s\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.check_interval", "at least 1m"),
            ("costs:\n  check_interval: 1h\n  gate_max_age: 30m\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.gate_max_age", "at least check_interval"),
            ("costs:\n  gate_max_age: soon\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.gate_max_age", "like"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, notify: []}]\n", "costs.budgets.b.notify", "route by severity"),
            ("costs:\n  aws: {max_attempts: 0}\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.aws.max_attempts", "between 1 and 10"),
            ("costs:\n  anomalies: {jump_percent: -1}\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.anomalies", "jump_percent"),
        ];
        for (block, field, words) in cases {
            let error = parse(&format!("services:\n  steno: {{}}\n{block}")).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{block}: {error}");
            assert!(error.to_string().contains(words), "{block}: {error}");
        }
        let unknown = parse(
            "services:\n  steno: {}\ncosts:\n  budgets: [{name: b, amount_usd: 1, limit: 2}]\n",
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("limit"), "{unknown}");
        let gate = parse("services:\n  steno:\n    budget_gate: refuse\n").unwrap_err();
        assert_eq!(gate.field.as_deref(), Some("services.steno.budget_gate"));
        let gate = parse("services:\n  steno:\n    budget_gate: hold\n").unwrap_err();
        assert!(gate.to_string().contains("refuse or off"), "{gate}");
    }
}
