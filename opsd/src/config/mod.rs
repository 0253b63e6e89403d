//! `opsd.yaml`: parsed into the raw `deny_unknown_fields` structs of `raw.rs`, then validated
//! section by section into a typed [`Config`]; this file orchestrates the sections and owns the
//! top-level fields (`listen`, `data_dir`, `plans_dir`, `tick`, `health_probe_interval`,
//! `alarm_interval`, `sample_retention`). Every error names the file, the line when known, and
//! the field. With no file, [`Config::embedded_default`] runs Steno on the local platform.
//!
//! invariant: nothing here imports `crate::platform`; the platform reads the plain settings
//! defined here (`AwsServiceConfig`, `RdsDatabaseConfig`, `CostExplorerConfig`,
//! `LocalCostConfig`, `SecretSource`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::core::config_error::ConfigError;
use crate::core::maintenance::ScheduledMaintenance;
use crate::core::plan::RolloutPlan;
use crate::core::rollout::RolloutPolicy;
use crate::notify::{validate_notifications, NotificationRoute, NotificationTarget};
use crate::store::{redacted_url, StoreLocation};
use raw::RawConfig;
use yaml::{duration_field, Source};

mod alarms;
mod analysis;
mod aws;
mod budgets;
mod costs;
mod databases;
mod documents;
pub mod files;
mod maintenance;
mod migrations;
mod plans;
mod raw;
mod secrets;
mod services;
mod windows;
mod yaml;

pub use alarms::{embedded_alarm_rules, TARGET_KINDS};
pub use aws::{validate_invalidation_paths, AlarmTopics, AwsServiceConfig, CloudFrontConfig};
pub use costs::{
    CostExplorerConfig, CostSourceConfig, CostsConfig, LocalAiConfig, LocalCostConfig,
    TokenDatabase, DEFAULT_COST_CHECK_INTERVAL, DEFAULT_COST_EXPLORER_REGION,
    DEFAULT_GATE_MAX_AGE_INTERVALS, DEFAULT_MEMORY_MB, DEFAULT_ROLLOUT_WINDOW,
};
pub use databases::{parse_drill_checks, DatabaseConfig, DatabaseKind, RdsDatabaseConfig};
pub use documents::{DocumentLocation, DocumentStoreConfig, S3DocumentsConfig};
pub use maintenance::{check_maintenance_message, MAX_MAINTENANCE_MESSAGE};
pub use migrations::MigrationCommands;
pub use plans::{NamedPlanError, DEFAULT_PLAN};
pub use secrets::SecretSource;
pub use services::{CheckSpec, ServiceConfig};
pub use windows::DeployWindowsConfig;

/// What `opsd up` runs without an opsd.yaml.
const EMBEDDED_DEFAULT_CONFIG: &str = "services:
  steno:
    checks:
      e2e:
        command: [\"{steno}\", probe, --base-url, \"{canary_url}\", --timeout, 50s]
        timeout: 60s
";

/// How long finished rollouts' per-second samples are kept when opsd.yaml does not say.
pub const DEFAULT_SAMPLE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The longest `sample_retention` accepted: ten years.
const MAX_SAMPLE_RETENTION: Duration = Duration::from_secs(3650 * 24 * 3600);

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Where the store is: `opsd.db` in `data_dir` (SQLite), or the PostgreSQL server `store:`
    /// names, which several opsd may share.
    pub store: StoreLocation,
    pub plans_dir: PathBuf,
    pub tick: Duration,
    pub health_probe_interval: Duration,
    pub services: BTreeMap<String, ServiceConfig>,
    pub policy: RolloutPolicy,
    pub notification_targets: Vec<NotificationTarget>,
    pub notification_routes: Vec<NotificationRoute>,
    /// Each alarm rule's own notification targets (its `notify` resolved; see
    /// [`TARGET_KINDS`]), by rule name; empty without notification targets.
    pub alarm_targets: BTreeMap<String, Vec<String>>,
    /// How often every service's alarm rules are evaluated in production.
    pub alarm_interval: Duration,
    /// How long a finished rollout's per-second traffic samples are kept (the dashboard's
    /// canary-against-baseline chart); its decisions, events and audit entries are kept for good.
    pub sample_retention: Duration,
    pub databases: BTreeMap<String, DatabaseConfig>,
    /// `None` when opsd.yaml has no `costs` block: no cost checks, no budget gate.
    pub costs: Option<CostsConfig>,
    /// Named values releases take by `env_from`, read when a release starts.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Scheduled maintenance windows (R-WINDOW-1); none when opsd.yaml has no `maintenance`.
    pub maintenance: Vec<ScheduledMaintenance>,
}

/// The top-level fields that are not sections.
struct TopLevel {
    listen: SocketAddr,
    data_dir: PathBuf,
    store: StoreLocation,
    plans_dir: PathBuf,
    tick: Duration,
    health_probe_interval: Duration,
    alarm_interval: Duration,
    sample_retention: Duration,
}

impl Config {
    /// The service `name`; the error lists the configured services.
    pub fn service_named(&self, name: &str) -> Result<&ServiceConfig, String> {
        self.services.get(name).ok_or_else(|| {
            format!(
                "unknown service {name:?}; the configured services are: {}",
                self.services.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

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

    /// No file: one service, `steno`, on the local platform at 127.0.0.1:8080, whose `e2e`
    /// check (R-CANARY-4) is `steno probe` against the canary, as in the shipped opsd.yaml.
    pub fn embedded_default(steno_binary: &Path) -> Result<Config, ConfigError> {
        Config::parse(
            "(embedded defaults)",
            EMBEDDED_DEFAULT_CONFIG,
            Path::new("."),
            steno_binary,
        )
    }

    /// Parses and validates configuration text. Relative paths resolve against `base_dir`.
    /// Every plan file in `plans_dir` and every alarm file in the alarm directory is checked,
    /// named or not.
    pub fn parse(
        file: &str,
        text: &str,
        base_dir: &Path,
        steno_binary: &Path,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_yaml::from_str(text)
            .map_err(|error| ConfigError::from_yaml(file, text, &error))?;
        let source = Source {
            file,
            text,
            base_dir,
        };
        let top = validate_top_level(&source, &raw)?;
        plans::check_plan_files(&files::read_plan_dir(&top.plans_dir)?)?;
        let alarms = alarms::load_alarms(raw.alarms_dir.as_deref(), base_dir)?;
        let mut policy = analysis::validate_analysis(&source, raw.analysis, alarms)?;
        let secrets = secrets::validate_secrets(file, text, base_dir, raw.secrets)?;
        let context = services::ServiceContext {
            plans_dir: &top.plans_dir,
            steno_binary,
            secrets: &secrets,
            listen: top.listen,
        };
        let mut services = services::validate_services(&source, &context, raw.services)?;
        let deploy_windows = raw
            .deploy_windows
            .map(|section| {
                windows::validate_deploy_windows(
                    &source,
                    &windows::SectionAt::top_level(&source),
                    section,
                )
            })
            .transpose()?;
        windows::apply_to_services(deploy_windows, &mut services);
        let (notification_targets, notification_routes) = match raw.notifications {
            Some(notifications) => (notifications.targets, notifications.routes),
            None => (Vec::new(), Vec::new()),
        };
        validate_notifications(&notification_targets, &notification_routes)
            .map_err(|problem| source.field_error("notifications", problem.to_string()))?;
        let alarm_targets =
            alarms::resolve_alarm_targets(file, &policy.alarms, &notification_targets)?;
        let databases = databases::validate_databases(&source, raw.databases, &services)?;
        let costs = raw
            .costs
            .map(|raw_costs| {
                costs::validate_costs(
                    &source,
                    raw_costs,
                    &databases,
                    &services,
                    &notification_targets,
                )
            })
            .transpose()?;
        analysis::price_like_the_cost_source(&mut policy, costs.as_ref());
        services::check_budget_gates(&source, &services, costs.is_some())?;
        let maintenance = maintenance::validate_maintenance(&source, raw.maintenance)?;
        Ok(Config {
            source: file.to_string(),
            listen: top.listen,
            data_dir: top.data_dir,
            store: top.store,
            plans_dir: top.plans_dir,
            tick: top.tick,
            health_probe_interval: top.health_probe_interval,
            services,
            policy,
            notification_targets,
            notification_routes,
            alarm_targets,
            alarm_interval: top.alarm_interval,
            sample_retention: top.sample_retention,
            databases,
            costs,
            secrets,
            maintenance,
        })
    }

    /// Resolves a plan given on the command line: a preset name or a YAML file.
    pub fn resolve_plan(&self, name_or_file: &str) -> Result<RolloutPlan, ConfigError> {
        plans::resolve_plan(name_or_file, &self.plans_dir).map(|resolved| resolved.plan)
    }

    /// A plan by name, as an API caller may choose one: a preset, or a plan file in `plans_dir`
    /// named `<name>.yaml`, `<name>.yml` or `<name>`. Never a path: a name with a separator or a
    /// leading dot is refused, and a file that resolves outside `plans_dir` (a symlink) is not
    /// read. Errors name the plans there are, never a path outside `plans_dir` or its content.
    pub fn named_plan(&self, name: &str) -> Result<RolloutPlan, NamedPlanError> {
        plans::named_plan(&self.plans_dir, name)
    }

    /// The names of the plan files in `plans_dir` (without `.yaml`/`.yml`), sorted.
    pub fn plan_names(&self) -> Vec<String> {
        plans::plan_names(&self.plans_dir)
    }
}

/// `listen`, `data_dir`, `plans_dir`, `tick` and `health_probe_interval`, with their defaults.
fn validate_top_level(source: &Source, raw: &RawConfig) -> Result<TopLevel, ConfigError> {
    let error = |field: &str, message: String| source.field_error(field, message);
    let listen = raw.listen.as_deref().unwrap_or("127.0.0.1:7070");
    let listen: SocketAddr = listen.parse().map_err(|_| {
        error(
            "listen",
            format!("{listen:?} is not an address like 127.0.0.1:7070"),
        )
    })?;
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
    let alarm_interval = duration_field(
        raw.alarm_interval.as_deref(),
        "alarm_interval",
        Duration::from_secs(5),
        &error,
    )?;
    if alarm_interval < Duration::from_millis(100) || alarm_interval > Duration::from_secs(300) {
        return Err(error(
            "alarm_interval",
            "must be between 100 ms and 5 m".into(),
        ));
    }
    let sample_retention = duration_field(
        raw.sample_retention.as_deref(),
        "sample_retention",
        DEFAULT_SAMPLE_RETENTION,
        &error,
    )?;
    if sample_retention < Duration::from_secs(3600) || sample_retention > MAX_SAMPLE_RETENTION {
        return Err(error(
            "sample_retention",
            "must be between 1h (a rollout's chart is read while it bakes) and 3650d".into(),
        ));
    }
    let data_dir = source
        .base_dir
        .join(raw.data_dir.as_deref().unwrap_or(".opsd"));
    let store = validate_store(raw.store.as_deref(), &data_dir, &error)?;
    Ok(TopLevel {
        listen,
        data_dir,
        store,
        plans_dir: source
            .base_dir
            .join(raw.plans_dir.as_deref().unwrap_or("plans")),
        tick,
        health_probe_interval,
        alarm_interval,
        sample_retention,
    })
}

/// `store`: absent for the SQLite file in `data_dir`, or a PostgreSQL URL without a password
/// (opsd.yaml holds no secret: the password comes from `PGPASSWORD` or a pgpass file).
fn validate_store(
    store: Option<&str>,
    data_dir: &Path,
    error: &impl Fn(&str, String) -> ConfigError,
) -> Result<StoreLocation, ConfigError> {
    if let Some(url) = store {
        if !StoreLocation::is_postgres_url(url) {
            return Err(error(
                "store",
                "must be a postgres:// URL (postgres://user@host:5432/database); leave it out \
                 to keep the store in data_dir/opsd.db"
                    .into(),
            ));
        }
        if redacted_url(url) != url {
            return Err(error(
                "store",
                "the URL carries a password; give it in PGPASSWORD or a pgpass file instead, so \
                 opsd.yaml holds no secret"
                    .into(),
            ));
        }
    }
    Ok(StoreLocation::configured(store, data_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` as `opsd.yaml` in `/srv`, Steno at `/usr/bin/steno`.
    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
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
        match &steno.checks["e2e"] {
            CheckSpec::Command { argv, .. } => assert_eq!(
                argv[..4],
                ["/usr/bin/steno", "probe", "--base-url", "{canary_url}"]
            ),
            other => panic!("the default e2e check is the probe, not {other:?}"),
        }
    }

    #[test]
    fn the_shipped_opsd_yaml_runs_the_probe_as_its_e2e_check() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let text = std::fs::read_to_string(root.join("opsd.yaml")).unwrap();
        let config = Config::parse("opsd.yaml", &text, root, Path::new("/usr/bin/steno")).unwrap();
        let steno = &config.services["steno"];
        match &steno.checks["e2e"] {
            CheckSpec::Command { argv, timeout } => {
                assert_eq!(
                    argv[..4],
                    ["/usr/bin/steno", "probe", "--base-url", "{canary_url}"]
                );
                assert!(*timeout >= Duration::from_secs(60));
            }
            other => panic!("the shipped e2e check is the probe, not {other:?}"),
        }
        assert!(matches!(steno.checks["smoke"], CheckSpec::Http { .. }));
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
    fn the_store_is_the_data_directory_file_or_a_postgres_url_without_a_password() {
        let embedded = parse("services:\n  steno: {}\n").unwrap();
        assert_eq!(
            embedded.store,
            StoreLocation::File(PathBuf::from("/srv/.opsd/opsd.db"))
        );
        let shared =
            parse("store: postgres://opsd@db:5432/opsd\nservices:\n  steno: {}\n").unwrap();
        assert_eq!(
            shared.store,
            StoreLocation::Postgres("postgres://opsd@db:5432/opsd".into())
        );
        let file = parse("store: /var/lib/opsd.db\nservices:\n  steno: {}\n").unwrap_err();
        assert_eq!(file.line, Some(1));
        assert!(file.to_string().contains("postgres:// URL"), "{file}");
        for url in [
            "postgres://opsd:hunter2@db/opsd",
            "postgres://opsd@db/opsd?password=hunter2",
        ] {
            let secret = parse(&format!("store: {url}\nservices:\n  steno: {{}}\n")).unwrap_err();
            assert!(secret.to_string().contains("PGPASSWORD"), "{secret}");
            assert!(!secret.to_string().contains("hunter2"), "{secret}");
        }
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
    fn sample_retention_defaults_to_30_days_and_refuses_less_than_an_hour_or_over_ten_years() {
        let default = parse("services:\n  steno: {}\n").unwrap();
        assert_eq!(default.sample_retention, DEFAULT_SAMPLE_RETENTION);
        let set = parse("sample_retention: 7d\nservices:\n  steno: {}\n").unwrap();
        assert_eq!(set.sample_retention, Duration::from_secs(7 * 86_400));
        let short = parse("sample_retention: 10m\nservices:\n  steno: {}\n").unwrap_err();
        assert_eq!(short.field.as_deref(), Some("sample_retention"));
        assert!(short.to_string().contains("between 1h"), "{short}");
        for huge in ["3651d", "18446744073709551615"] {
            let text = format!("sample_retention: {huge}\nservices:\n  steno: {{}}\n");
            let refused = parse(&text).unwrap_err();
            assert_eq!(refused.field.as_deref(), Some("sample_retention"), "{huge}");
        }
        let nonsense = parse("sample_retention: forever\nservices:\n  steno: {}\n").unwrap_err();
        assert_eq!(nonsense.field.as_deref(), Some("sample_retention"));
    }

    #[test]
    fn yaml_errors_name_no_code_types_and_give_the_position_once() {
        let duplicate = parse("services:\n  steno: {}\nlisten: 127.0.0.1:1\nlisten: 127.0.0.1:2\n")
            .unwrap_err();
        assert_eq!(
            duplicate.to_string(),
            "opsd.yaml:4:1: listen: duplicate field `listen`"
        );
        let not_a_mapping = parse("- steno\n").unwrap_err();
        assert_eq!(
            not_a_mapping.to_string(),
            "opsd.yaml:1:1: invalid type: list, expected a mapping"
        );
        let service = parse("services:\n  steno: 5\n").unwrap_err();
        assert_eq!(
            service.to_string(),
            "opsd.yaml:2:10: services.steno: invalid type: integer `5`, expected a mapping"
        );
        let scope = parse(
            "services:\n  steno: {}\ncosts:\n  budgets: [{name: b, amount_usd: 1, scope: [1]}]\n",
        )
        .unwrap_err();
        assert_eq!(
            scope.field.as_deref(),
            Some("costs.budgets.b.scope"),
            "{scope}"
        );
        assert!(!scope.to_string().contains("Raw"), "{scope}");
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse("opsd.yaml", text, dir, Path::new("/usr/bin/steno"))
    }

    #[test]
    fn every_file_of_the_plans_and_alarm_directories_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let config = "services:\n  steno: {}\n";
        write(
            dir.path(),
            "plans/fast.yaml",
            "name: fast\nsteps:\n  - weight: 100\n",
        );
        write(dir.path(), "plans/notes.txt", "not a plan");
        assert_eq!(parse_in(dir.path(), config).unwrap().plan_names(), ["fast"]);

        write(
            dir.path(),
            "plans/unused.yml",
            "name: unused\nsteps:\n  - weight: 10\n    bake: 1m\n  - weight: 101\n",
        );
        let error = parse_in(dir.path(), config).unwrap_err();
        assert!(error.file.ends_with("unused.yml"), "{error}");
        assert_eq!(error.line, Some(5), "{error}");
        std::fs::remove_file(dir.path().join("plans/unused.yml")).unwrap();

        write(
            dir.path(),
            "alarms/broken.yaml",
            "alarms:\n  - name: slow\n    metric: error_rate\n    comparison: \">\"\n    threshold: fast\n",
        );
        let error = parse_in(dir.path(), config).unwrap_err();
        assert!(error.file.ends_with("broken.yaml"), "{error}");
        assert_eq!(error.line, Some(5), "{error}");
    }

    #[test]
    fn a_plan_running_an_undefined_check_is_reported_in_the_plan_file() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "plans/nightly.yaml",
            "name: nightly\nsteps:\n  - weight: 10\n    bake: 1m\n    checks: [nightly]\n  - weight: 100\n",
        );
        let error = parse_in(dir.path(), "services:\n  steno:\n    plan: nightly\n").unwrap_err();
        assert!(error.file.ends_with("nightly.yaml"), "{error}");
        assert_eq!(error.line, Some(5), "{error}");
        assert_eq!(error.field.as_deref(), Some("steps[0].checks"));
        assert!(
            error.message.contains("services.steno.checks in opsd.yaml"),
            "{error}"
        );
        let defined = parse_in(
            dir.path(),
            "services:\n  steno:\n    plan: nightly\n    checks:\n      nightly: {command: [\"true\"]}\n",
        )
        .unwrap();
        assert_eq!(defined.services["steno"].plan.name, "nightly");
    }
}
