//! opsd.yaml's `services` section: each service's platform, public address, command and release
//! environment, health endpoint, plan, smoke checks, gates and own deploy windows, validated into
//! [`ServiceConfig`];
//! public addresses are unique and a budget gate needs a `costs` section.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::aws::{validate_aws, AwsServiceConfig};
use super::migrations::{validate_migrations, MigrationCommands};
use super::plans::{check_plan_checks, resolve_plan, DEFAULT_PLAN};
use super::raw::{RawCheck, RawService};
use super::secrets::{validate_release_env, ReleaseEnvRules, SecretSource};
use super::windows::{validate_deploy_windows, DeployWindowsConfig, SectionAt};
use super::yaml::{duration_field, Source};
use crate::core::config_error::ConfigError;
use crate::core::drill::GateMode;
use crate::core::plan::RolloutPlan;

/// A smoke check run against the canary at the steps that name it.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckSpec {
    /// GET `path` on the canary directly; passes on `expect_status` (default: any 2xx).
    Http {
        path: String,
        expect_status: Option<u16>,
        timeout: Duration,
    },
    /// Runs a command with `CANARY_URL` (when the platform has one) and `CANARY_VERSION` set,
    /// and the same values in its arguments for `{canary_url}` and `{canary_version}`; passes on
    /// exit status 0. `{steno}` was replaced by the Steno binary when the config was read.
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
    /// What a deploy does while a critical alarm fires on the service's stable release:
    /// `refuse` (the default), `hold` or `off`.
    pub alarm_gate: GateMode,
    /// When deploys may move (its own `deploy_windows`, else the top-level one); `None`: at any
    /// time.
    pub deploy_windows: Option<DeployWindowsConfig>,
    /// How a release's schema migrations are listed and run around a rollout; `None`: opsd
    /// leaves the schema to the release.
    pub migrations: Option<MigrationCommands>,
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

/// What validating the services needs besides their blocks.
pub(super) struct ServiceContext<'a> {
    pub plans_dir: &'a Path,
    pub steno_binary: &'a Path,
    pub secrets: &'a BTreeMap<String, SecretSource>,
    /// opsd's own API address, which no service may take.
    pub listen: SocketAddr,
}

/// The `services` section, validated: at least one service, each release environment checked
/// against `secrets`, and no public address used twice (port 0 picks a free one).
pub(super) fn validate_services(
    source: &Source,
    context: &ServiceContext,
    raw: BTreeMap<String, RawService>,
) -> Result<BTreeMap<String, ServiceConfig>, ConfigError> {
    let mut services = BTreeMap::new();
    for (index, (name, raw_service)) in raw.into_iter().enumerate() {
        let service = validate_service(source, context, index, name.clone(), raw_service)?;
        let service_error = |field: &str, message: String| {
            source.error(
                source
                    .line_of(field.split('.').next().unwrap_or(field))
                    .or_else(|| source.line_of(&name)),
                format!("services.{name}.{field}"),
                message,
            )
        };
        validate_release_env(
            &ReleaseEnvRules {
                env: service.env.clone(),
                env_from: service.env_from.clone(),
                allow_env: service.allow_env.clone(),
            },
            context.secrets,
            &service_error,
        )?;
        services.insert(name, service);
    }
    if services.is_empty() {
        return Err(source.field_error("services", "at least one service is needed".into()));
    }
    let mut public_addrs: Vec<SocketAddr> = Vec::new();
    for service in services.values() {
        let picks_a_free_port = service.public_addr.port() == 0;
        if !picks_a_free_port
            && (service.public_addr == context.listen
                || public_addrs.contains(&service.public_addr))
        {
            return Err(source.field_error(
                "public_addr",
                format!("{} is used twice", service.public_addr),
            ));
        }
        public_addrs.push(service.public_addr);
    }
    Ok(services)
}

/// A budget gate needs cost checks to gate on.
pub(super) fn check_budget_gates(
    source: &Source,
    services: &BTreeMap<String, ServiceConfig>,
    has_costs: bool,
) -> Result<(), ConfigError> {
    for service in services.values() {
        if service.budget_gate != GateMode::Off && !has_costs {
            return Err(source.error(
                source.line_of("budget_gate"),
                format!("services.{}.budget_gate", service.name),
                "needs a costs: block with budgets to gate on".into(),
            ));
        }
    }
    Ok(())
}

/// `services.<name>`, validated; the `index`-th service's default port is 8080 + `index`.
fn validate_service(
    source: &Source,
    context: &ServiceContext,
    index: usize,
    name: String,
    raw: RawService,
) -> Result<ServiceConfig, ConfigError> {
    let error = |field: &str, message: String| {
        source.error(
            source.line_of(field).or_else(|| source.line_of(&name)),
            format!("services.{name}.{field}"),
            message,
        )
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
        ("aws", Some(raw_aws)) => Some(validate_aws(raw_aws, source.base_dir, &error)?),
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
    let migrations =
        validate_migrations(raw.migrations, raw.command.is_none(), aws.is_some(), &error)?;
    let command = match raw.command {
        Some(command) if command.is_empty() => {
            return Err(error("command", "must name a program".into()))
        }
        Some(command) => command,
        None => {
            let mut command = vec![
                context.steno_binary.display().to_string(),
                "serve".into(),
                "--addr".into(),
                "127.0.0.1:{port}".into(),
            ];
            if migrations.is_some() {
                // Contract migrations wait until opsd runs them after a promotion.
                command.extend(["--migrate".into(), "expand".into()]);
            }
            command
        }
    };
    if !command.iter().any(|arg| arg.contains("{port}"))
        && !raw.env.values().any(|value| value.contains("{port}"))
    {
        // The release learns its port from $PORT then; that is allowed but worth knowing.
        tracing::debug!(service = %name, "command has no {{port}} placeholder; the release must read PORT");
    }
    let env = release_env(source.base_dir, &name, raw.env);
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
    let resolved = resolve_plan(
        raw.plan.as_deref().unwrap_or(DEFAULT_PLAN),
        context.plans_dir,
    )
    .map_err(|plan_error| error("plan", plan_error.to_string()))?;
    let mut checks = validate_checks(raw.checks, context.steno_binary, &error)?;
    check_plan_checks(
        &resolved,
        &|check| checks.contains_key(check) || check == "smoke" || check == "e2e",
        &format!("services.{name}.checks in {}", source.file),
        &|message| error("plan", message),
    )?;
    add_builtin_checks(&mut checks, aws.is_some(), &health_path, &error)?;
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
    let alarm_gate = match raw.alarm_gate.as_deref() {
        None | Some("refuse") => GateMode::Refuse,
        Some("hold") => GateMode::Hold,
        Some("off") => GateMode::Off,
        Some(other) => {
            return Err(error(
                "alarm_gate",
                format!("{other:?} is not refuse, hold or off"),
            ))
        }
    };
    let deploy_windows = raw
        .deploy_windows
        .map(|section| validate_deploy_windows(source, &SectionAt::service(source, &name), section))
        .transpose()?;
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
        alarm_gate,
        deploy_windows,
        migrations,
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
        plan: resolved.plan,
        checks,
    })
}

/// The service's `env` with opsd's defaults: a data directory of its own, and the local router
/// as a trusted proxy.
fn release_env(
    base_dir: &Path,
    name: &str,
    mut env: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
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
    env
}

/// `services.<name>.checks`: each exactly one of `http` or `command`. A command's `{steno}`
/// becomes the Steno binary releases run by default (the one next to opsd), so
/// `["{steno}", probe, --base-url, "{canary_url}"]` probes the canary with the same build.
fn validate_checks(
    raw: BTreeMap<String, RawCheck>,
    steno_binary: &Path,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<BTreeMap<String, CheckSpec>, ConfigError> {
    let mut checks = BTreeMap::new();
    for (check_name, raw_check) in raw {
        let timeout = duration_field(
            raw_check.timeout.as_deref(),
            "timeout",
            Duration::from_secs(30),
            error,
        )?;
        let check = match (raw_check.http, raw_check.command) {
            (Some(http), None) => CheckSpec::Http {
                path: http.path,
                expect_status: http.expect_status,
                timeout,
            },
            (None, Some(argv)) if !argv.is_empty() => CheckSpec::Command {
                argv: argv
                    .into_iter()
                    .map(|arg| arg.replace("{steno}", &steno_binary.display().to_string()))
                    .collect(),
                timeout,
            },
            _ => {
                return Err(error(
                    &format!("checks.{check_name}"),
                    "give exactly one of http: {path: ...} or command: [program, args...]".into(),
                ))
            }
        };
        checks.insert(check_name, check);
    }
    Ok(checks)
}

/// `SeedCanary` names `smoke` and `e2e` (R-CANARY-3, R-CANARY-4); unless defined, they probe the
/// health endpoint (or, on AWS, where a version has no URL of its own, ask Lambda whether it is
/// Active). On AWS no check may be an http check.
fn add_builtin_checks(
    checks: &mut BTreeMap<String, CheckSpec>,
    on_aws: bool,
    health_path: &str,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for builtin in ["smoke", "e2e"] {
        checks.entry(builtin.to_string()).or_insert(if on_aws {
            CheckSpec::ReleaseHealth
        } else {
            CheckSpec::Http {
                path: health_path.to_string(),
                expect_status: None,
                timeout: Duration::from_secs(10),
            }
        });
    }
    for (check_name, check) in checks.iter() {
        if on_aws && matches!(check, CheckSpec::Http { .. }) {
            return Err(error(
                &format!("checks.{check_name}"),
                "http checks need a URL per release, which a Lambda version has not; use a \
                 command check (it gets CANARY_VERSION)"
                    .into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

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
    fn check_commands_name_the_steno_binary_and_keep_canary_placeholders() {
        let config = parse(
            "services:\n  steno:\n    checks:\n      e2e:\n        command: [\"{steno}\", probe, --base-url, \"{canary_url}\"]\n        timeout: 90s\n",
        )
        .unwrap();
        assert_eq!(
            config.services["steno"].checks["e2e"],
            CheckSpec::Command {
                argv: vec![
                    "/usr/bin/steno".into(),
                    "probe".into(),
                    "--base-url".into(),
                    "{canary_url}".into()
                ],
                timeout: Duration::from_secs(90)
            }
        );
    }
}
