//! opsd.yaml's `databases` section: where each database lives (SQLite, PostgreSQL or RDS), its
//! drill targets, schedules and retention, and the drill checks files (`drills/*.yaml`), validated
//! into [`DatabaseConfig`]; services may only name databases defined here.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::documents::{validate_documents, DocumentStoreConfig};
use super::files::read_checks_file;
use super::raw::{RawChecksFile, RawDatabase, RawRds, RawRetention};
use super::services::ServiceConfig;
use super::yaml::{duration_field, line_of, names_or_none, Source};
use crate::core::config_error::ConfigError;
use crate::core::drill::{CheckExpectation, DrillCheck, DrillTargets};
use crate::core::retention::RetentionPolicy;
use crate::core::retry::RetryPolicy;
use crate::core::schedule::Schedule;

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
    /// How long snapshots opsd took are kept, per class (the newest is always kept).
    pub retention: RetentionPolicy,
    pub checks: Vec<DrillCheck>,
    /// The document store its rows reference: listed in each snapshot's manifest, verified by
    /// drills and restores.
    pub documents: Option<DocumentStoreConfig>,
}

/// Steno's drill checks, embedded so a database without a `checks` file is still verified.
const EMBEDDED_STENO_CHECKS: &str = include_str!("../../../drills/steno-checks.yaml");

/// The `databases` section, validated; every service's `database` must name one of them.
pub(super) fn validate_databases(
    source: &Source,
    raw: BTreeMap<String, RawDatabase>,
    services: &BTreeMap<String, ServiceConfig>,
) -> Result<BTreeMap<String, DatabaseConfig>, ConfigError> {
    let mut databases = BTreeMap::new();
    for (name, raw_database) in raw {
        let database = validate_database(source, &name, raw_database)?;
        databases.insert(name, database);
    }
    for service in services.values() {
        if let Some(database) = &service.database {
            if !databases.contains_key(database) {
                return Err(source.error(
                    source.line_of("database"),
                    format!("services.{}.database", service.name),
                    format!(
                        "{database:?} is not under databases; configured: {}",
                        names_or_none(databases.keys())
                    ),
                ));
            }
        }
    }
    Ok(databases)
}

/// `databases.<name>`, validated.
fn validate_database(
    source: &Source,
    name: &str,
    raw: RawDatabase,
) -> Result<DatabaseConfig, ConfigError> {
    let error = |field: &str, message: String| {
        source.error(
            source
                .line_of(field.rsplit('.').next().unwrap_or(field))
                .or_else(|| source.line_of(name)),
            format!("databases.{name}.{field}"),
            message,
        )
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
    let where_it_lives = RawKind {
        kind: raw.kind,
        path: raw.path,
        url: raw.url,
        tools_dir: raw.tools_dir,
        rds: raw.rds,
    };
    let kind = validate_kind(source, where_it_lives, &error)?;
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
    let retention = retention_policy(raw.retention, &error)?;
    let checks = match raw.checks {
        Some(path) => {
            let full = source.base_dir.join(&path);
            let file = read_checks_file(&full).map_err(|read_error| {
                error(
                    "checks",
                    format!("cannot read {}: {read_error}", full.display()),
                )
            })?;
            parse_drill_checks(&file.path, &file.text)?
        }
        None => parse_drill_checks("(embedded) drills/steno-checks.yaml", EMBEDDED_STENO_CHECKS)?,
    };
    let documents = raw
        .documents
        .map(|documents| validate_documents(documents, source.base_dir, &error))
        .transpose()?;
    Ok(DatabaseConfig {
        name: name.to_string(),
        kind,
        targets,
        schedule,
        snapshot_schedule,
        retention,
        checks,
        documents,
    })
}

/// `retention`: one duration for every class (`retention: 30d`), or per class
/// (`{daily: 30d, pre_migration: 7d, weekly: 90d}`, each defaulting to the seeds' value).
fn retention_policy(
    raw: Option<RawRetention>,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<RetentionPolicy, ConfigError> {
    let defaults = RetentionPolicy::default();
    match raw {
        None => Ok(defaults),
        Some(RawRetention::Every(text)) => Ok(RetentionPolicy::every(duration_field(
            Some(&text),
            "retention",
            defaults.daily,
            error,
        )?)),
        Some(RawRetention::Classes(classes)) => Ok(RetentionPolicy {
            daily: duration_field(
                classes.daily.as_deref(),
                "retention.daily",
                defaults.daily,
                error,
            )?,
            pre_migration: duration_field(
                classes.pre_migration.as_deref(),
                "retention.pre_migration",
                defaults.pre_migration,
                error,
            )?,
            weekly: duration_field(
                classes.weekly.as_deref(),
                "retention.weekly",
                defaults.weekly,
                error,
            )?,
        }),
    }
}

/// The fields of `databases.<name>` that say where the database lives.
struct RawKind {
    kind: Option<String>,
    path: Option<String>,
    url: Option<String>,
    tools_dir: Option<String>,
    rds: Option<RawRds>,
}

/// `kind` and the fields of that kind: `path` (sqlite), `url` and `tools_dir` (postgres), `rds`.
fn validate_kind(
    source: &Source,
    raw: RawKind,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<DatabaseKind, ConfigError> {
    let kind_name = raw.kind.as_deref().unwrap_or("");
    if kind_name != "sqlite" && raw.path.is_some() {
        return Err(error("path", "is only for kind: sqlite".into()));
    }
    if kind_name != "postgres" && raw.url.is_some() {
        return Err(error("url", "is only for kind: postgres".into()));
    }
    match raw.kind.as_deref() {
        Some("sqlite") => {
            let path = raw
                .path
                .ok_or_else(|| error("path", "a sqlite database needs path: <file>".into()))?;
            Ok(DatabaseKind::Sqlite {
                path: source.base_dir.join(path),
            })
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
            Ok(DatabaseKind::Postgres {
                url,
                tools_dir: raw.tools_dir.map(|dir| source.base_dir.join(dir)),
            })
        }
        Some("rds") => {
            let rds = raw.rds.ok_or_else(|| {
                error(
                    "rds",
                    "kind: rds needs an rds block with region and instance".into(),
                )
            })?;
            Ok(DatabaseKind::Rds(validate_rds(rds, error)?))
        }
        Some(other) => Err(error(
            "kind",
            format!("{other:?} is not a database kind; use sqlite, postgres or rds"),
        )),
        None => Err(error("kind", "is required: sqlite, postgres or rds".into())),
    }
}

/// `databases.<name>.rds`, validated.
fn validate_rds(
    rds: RawRds,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<RdsDatabaseConfig, ConfigError> {
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
    Ok(RdsDatabaseConfig {
        region,
        instance,
        endpoint_url: rds.endpoint_url,
        instance_class: rds.instance_class,
        wait_timeout: duration_field(
            rds.wait_timeout.as_deref(),
            "rds.wait_timeout",
            Duration::from_secs(3600),
            error,
        )?,
        poll_interval: duration_field(
            rds.poll_interval.as_deref(),
            "rds.poll_interval",
            Duration::from_secs(15),
            error,
        )?,
        retry,
    })
}

/// Parses a drill checks file: `checks: [{name, sql, expect}]`, `expect: source` or a value.
pub fn parse_drill_checks(file: &str, text: &str) -> Result<Vec<DrillCheck>, ConfigError> {
    let raw: RawChecksFile =
        serde_yaml::from_str(text).map_err(|error| ConfigError::from_yaml(file, text, &error))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;
    use crate::core::drill::GateMode;

    #[test]
    fn retention_is_given_per_class_or_once_for_all() {
        let config = parse(
            "services:\n  steno:\n    database: main\ndatabases:\n  main:\n    kind: sqlite\n    path: steno.db\n    retention: {daily: 14d, weekly: 60d}\n",
        )
        .unwrap();
        assert_eq!(
            config.databases["main"].retention,
            RetentionPolicy {
                daily: Duration::from_secs(14 * 86400),
                pre_migration: Duration::from_secs(7 * 86400),
                weekly: Duration::from_secs(60 * 86400),
            }
        );
        let wrong = parse(
            "services:\n  steno:\n    database: main\ndatabases:\n  main:\n    kind: sqlite\n    path: steno.db\n    retention: {daily: soon}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(wrong.contains("retention.daily"), "{wrong}");
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
        assert_eq!(
            main.retention,
            RetentionPolicy::every(Duration::from_secs(7 * 86400))
        );
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
        // Defaults: RTO < 2 h, RPO < 1 h (R-DR-2), quarterly drills (R-DR-3), snapshots kept
        // 30 days, 7 before a migration, 90 as weekly copies.
        assert_eq!(local.targets, DrillTargets::default());
        assert_eq!(local.retention, RetentionPolicy::default());
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
}
