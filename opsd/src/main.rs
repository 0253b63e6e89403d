//! The `opsd` command line: `opsd up` runs the daemon; the other commands are clients of its API.
//!
//! Exit codes (deploy --wait and gate): 0 promoted or healthy, 2 rolled back or failed,
//! 3 inconclusive, paused or timed out, 1 usage, configuration or platform error. `cost check`:
//! 0 within budget, 3 a warning threshold crossed, 2 a critical one (actual or forecast).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use opsd::config::Config;
use opsd::core::duration::parse_duration;
use serde_json::Value;

/// opsd: deploy Steno as canaries, watch them, roll back bad releases by themselves.
///
/// Start with `opsd up` (no configuration needed: it runs Steno on the local platform behind
/// opsd's router on 127.0.0.1:8080 and serves the API on 127.0.0.1:7070). Then, in another
/// terminal: `opsd deploy steno --version v2 --wait`, `opsd status`, `opsd load --rps 100`.
#[derive(Parser)]
#[command(name = "opsd", version, about, long_about)]
struct Cli {
    /// Configuration file; when it does not exist, embedded defaults are used.
    #[arg(long, global = true, env = "OPSD_CONFIG", default_value = "opsd.yaml")]
    config: PathBuf,
    /// The opsd API to talk to (client commands); defaults to the configured listen address.
    #[arg(long, global = true, env = "OPSD_SERVER")]
    server: Option<String>,
    /// API token (client commands); defaults to the operator token `opsd up` wrote to its data dir.
    #[arg(long, global = true, env = "OPSD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: the local platform, the router, the reconciler and the API.
    Up,
    /// Start a rollout of a new version.
    Deploy {
        service: String,
        /// The version label of the new release.
        #[arg(long)]
        version: String,
        /// Environment of the new release, KEY=VALUE (repeatable), e.g. STENO_CHAOS_ERROR_RATE=0.2.
        /// Stored with the rollout and shown only as fingerprints; put secrets in --env-from.
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Environment of the new release taken from a secret defined under `secrets:` in
        /// opsd.yaml, KEY=SECRET (repeatable). The value is read when the release starts and
        /// never stored.
        #[arg(long = "env-from", value_name = "KEY=SECRET")]
        env_from: Vec<String>,
        /// A preset (Canary10Percent5Minutes, Linear10PercentEvery1Minute, AllAtOnce, SeedCanary, ...),
        /// the name of a plan in opsd's plans directory, or a plan YAML file on this machine (read
        /// here and sent as a plan document); defaults to the service's plan.
        #[arg(long)]
        plan: Option<String>,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
        /// Deploy although this gate is closed: `drill` (the database's newest DR drill failed
        /// or is stale), `snapshot` (the pre-deployment snapshot failed) or `budget` (the newest
        /// cost check found a budget's forecast over its threshold). Needs --reason; audited.
        /// Repeatable.
        #[arg(long = "override", value_name = "GATE")]
        overrides: Vec<String>,
        /// Wait for the outcome and exit with its code (0 promoted, 2 rolled back, 3 held/timed out).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits.
        #[arg(long, default_value = "60m")]
        timeout: String,
        #[arg(long)]
        json: bool,
    },
    /// Show services, their stable releases and rollouts in progress.
    Status {
        service: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Promote the canary now, skipping the remaining steps.
    Promote {
        service: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Hold the current weight.
    Pause {
        service: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Continue a paused or held rollout (the current step bakes again).
    Resume {
        service: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Stop the rollout and send all traffic back to the stable release.
    Abort {
        service: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// After a completed rollout, go back to the previous release at once.
    Rollback {
        service: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Past rollouts of a service, with their decisions.
    History {
        service: String,
        #[arg(long, default_value_t = 10)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// For CI: wait for the service's current rollout and exit with its outcome code.
    Gate {
        service: String,
        #[arg(long, default_value = "60m")]
        timeout: String,
        #[arg(long)]
        json: bool,
    },
    /// Send realistic Steno traffic through the router, with a progress line.
    Load {
        /// Requests per second.
        #[arg(long, default_value_t = 100)]
        rps: u32,
        #[arg(long, default_value = "60s")]
        duration: String,
        /// Base URL; defaults to the first service's public address.
        #[arg(long)]
        target: Option<String>,
    },
    /// Check opsd.yaml, its plans and alarms.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// CloudWatch alarms of services on AWS, made from the rules in alarms/*.yaml.
    ///
    /// Each rule becomes the alarm `opsd-<service>-<rule>`; opsd touches only alarms with that
    /// prefix. A rule with `rollback: true` whose alarm is in ALARM rolls a rollout back.
    Alarms {
        #[command(subcommand)]
        action: AlarmsAction,
    },
    /// The CDN in front of a service on AWS (CloudFront).
    Cdn {
        #[command(subcommand)]
        action: CdnAction,
    },
    Package(opsd::package::PackageArgs),
    /// DR drills: snapshot a database, restore it into a scratch copy, verify it, measure RTO
    /// and RPO against the targets, tear the copy down, and record it all.
    ///
    /// Databases are configured under `databases:` in opsd.yaml (kind sqlite, postgres or rds,
    /// targets, schedule, retention, checks). Drills run here, in this process, against opsd's
    /// store; `opsd up` also runs them on their schedule.
    Drill {
        #[command(subcommand)]
        action: DrillAction,
    },
    /// Cost budgets: month-to-date spend, opsd's month-end forecast, budget thresholds and spend
    /// anomalies, from the source under `costs:` in opsd.yaml (AWS Cost Explorer).
    ///
    /// Budgets are `costs.budgets` (amount_usd, scope account | {service: X} | {tag: Key=value},
    /// thresholds; the default warns at 80 % and is critical at 100 % of actual spend and at
    /// 120 % of the forecast). Commands run here, against opsd's store; `opsd up` also checks on
    /// `costs.check_interval` and notifies state changes only.
    Cost {
        #[command(subcommand)]
        action: CostAction,
    },
}

#[derive(Subcommand)]
enum CostAction {
    /// Check every budget now, record the check and notify what changed since the last one.
    ///
    /// Exit 0 within budget, 3 a warning threshold crossed, 2 a critical threshold crossed
    /// (actual or forecast), 1 configuration or cost source errors.
    Check {
        /// Evaluate as if today were this UTC day (YYYY-MM-DD), e.g. to re-run a past day.
        #[arg(long)]
        today: Option<String>,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Month-to-date by service, the forecast with its interval, budgets and anomalies. Records
    /// and notifies nothing; exits 0 whatever the state.
    Report {
        /// Report as if today were this UTC day (YYYY-MM-DD).
        #[arg(long)]
        today: Option<String>,
        /// Print the report as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DrillAction {
    /// Run one drill now. Exit 0 when it passed, 2 when it failed (verification or targets).
    Run {
        database: String,
        /// Restore the newest existing snapshot (what a real recovery would use) instead of
        /// taking a new one.
        #[arg(long)]
        use_latest: bool,
        /// Wait this long between the restore and the verification (to rehearse a crash).
        #[arg(long, hide = true)]
        pause_after_restore: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Past drills, newest first, with RTO, RPO, write gap and the RTO trend.
    List {
        /// Only this database.
        database: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One drill's phases, measurements and verification items.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Take a snapshot now (reason `manual`) without a drill.
    Snapshot {
        database: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AlarmsAction {
    /// Create or update the alarms of every rule, delete owned alarms whose rule is gone.
    /// Idempotent: a second run changes nothing.
    Sync {
        /// Only this service (default: every service with platform: aws).
        #[arg(long)]
        service: Option<String>,
        /// Show what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// opsd's rules and CloudWatch's alarms side by side, with their state and whether they match.
    List {
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CdnAction {
    /// Invalidate cached paths (default: the service's configured paths, usually /*) and wait
    /// until CloudFront reports the invalidation completed, with a progress line.
    Invalidate {
        service: String,
        /// A path to invalidate, like /static/* (repeatable).
        #[arg(long = "path")]
        paths: Vec<String>,
        /// Return once the invalidation is created.
        #[arg(long)]
        no_wait: bool,
        #[arg(long, default_value = "15m")]
        timeout: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate the configuration; errors name the file, line and field.
    Validate,
}

fn steno_binary() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("steno")));
    match beside {
        Some(path) if path.exists() => path,
        _ => PathBuf::from("steno"),
    }
}

fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load_or_default(path, &steno_binary())
        .map_err(|error| anyhow!("invalid configuration: {error}"))
}

fn main() -> ExitCode {
    opsd::private_files::restrict_process_umask();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Up => {
            let config = load_config(&cli.config)?;
            opsd::up::run(config, std::env::vars().collect()).await?;
            Ok(0)
        }
        Command::Config {
            action: ConfigAction::Validate,
        } => {
            let config = load_config(&cli.config)?;
            println!(
                "{}: ok — {} service(s), {} alarm rule(s), listen {}",
                config.source,
                config.services.len(),
                config.policy.alarms.len(),
                config.listen
            );
            for service in config.services.values() {
                println!(
                    "  {}: public {} plan {} ({} steps)",
                    service.name,
                    service.public_target(),
                    service.plan.name,
                    service.plan.steps.len()
                );
            }
            Ok(0)
        }
        Command::Load {
            rps,
            duration,
            target,
        } => {
            let config = load_config(&cli.config)?;
            let duration =
                parse_duration(duration).map_err(|error| anyhow!("--duration: {error}"))?;
            let target = match target {
                Some(target) => target.clone(),
                None => {
                    let service = config
                        .services
                        .values()
                        .next()
                        .context("no service is configured")?;
                    format!("http://{}", service.public_addr)
                }
            };
            opsd::up::run_load_command(&target, *rps, duration).await?;
            Ok(0)
        }
        Command::Alarms { action } => {
            let config = load_config(&cli.config)?;
            match action {
                AlarmsAction::Sync {
                    service,
                    dry_run,
                    json,
                } => {
                    let reports =
                        opsd::aws_commands::alarms_sync(&config, service.as_deref(), *dry_run)
                            .await?;
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&reports)?);
                    } else {
                        print!("{}", opsd::aws_commands::format_sync_reports(&reports));
                    }
                }
                AlarmsAction::List { service, json } => {
                    let rows = opsd::aws_commands::alarms_list(&config, service.as_deref()).await?;
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&rows)?);
                    } else {
                        print!("{}", opsd::aws_commands::format_alarm_listing(&rows));
                    }
                }
            }
            Ok(0)
        }
        Command::Cdn {
            action:
                CdnAction::Invalidate {
                    service,
                    paths,
                    no_wait,
                    timeout,
                    json,
                },
        } => {
            let config = load_config(&cli.config)?;
            let timeout = parse_duration(timeout).map_err(|error| anyhow!("--timeout: {error}"))?;
            let report = opsd::aws_commands::cdn_invalidate(
                &config,
                service,
                paths.clone(),
                !*no_wait,
                timeout,
            )
            .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if report.completed {
                println!(
                    "invalidation {} completed in {} s",
                    report.invalidation_id, report.waited_secs
                );
            } else if *no_wait {
                println!("invalidation {} created", report.invalidation_id);
            } else {
                println!(
                    "invalidation {} still in progress after {} s",
                    report.invalidation_id, report.waited_secs
                );
                return Ok(3);
            }
            Ok(0)
        }
        Command::Package(args) => {
            opsd::package::run(args)?;
            Ok(0)
        }
        Command::Drill { action } => {
            let config = load_config(&cli.config)?;
            drill_command(&config, action).await
        }
        Command::Cost { action } => {
            let config = load_config(&cli.config)?;
            cost_command(&config, action).await
        }
        _ => {
            let client = Client::from_cli(&cli)?;
            client_command(&client, &cli.command).await
        }
    }
}

/// A client of the opsd API.
struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    fn from_cli(cli: &Cli) -> anyhow::Result<Client> {
        let config = load_config(&cli.config)?;
        let base = cli
            .server
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen));
        let token = match &cli.token {
            Some(token) => token.clone(),
            None => {
                let path = opsd::up::operator_token_path(&config);
                std::fs::read_to_string(&path)
                    .with_context(|| format!("no --token given and {} cannot be read; run `opsd up` first or pass --token", path.display()))?
                    .trim()
                    .to_string()
            }
        };
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!("cannot reach opsd at {}; is `opsd up` running?", self.base)
        })?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value["error"]["message"]
                .as_str()
                .unwrap_or("no message")
                .to_string();
            bail!("opsd answered {status}: {message}");
        }
        Ok(value)
    }
}

fn parse_env(pairs: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            let key = pair.chars().take(40).collect::<String>();
            bail!("{flag} {key:?}... must be KEY=VALUE");
        };
        if key.is_empty() {
            bail!("{flag} has an empty KEY in KEY=VALUE");
        }
        env.insert(key.to_string(), value.to_string());
    }
    Ok(env)
}

/// What `--plan` sends: a preset or plan name as it is, or the content of a plan file on this
/// machine as a plan document (opsd never reads a path its caller names).
fn plan_for_request(name_or_file: &str) -> anyhow::Result<serde_json::Value> {
    let path = std::path::Path::new(name_or_file);
    if opsd::core::plan::preset(name_or_file).is_some() || !path.is_file() {
        return Ok(serde_json::Value::String(name_or_file.to_string()));
    }
    let plan = opsd::config::files::load_plan_file(path)?;
    Ok(opsd::core::plan::plan_document(&plan))
}

async fn client_command(client: &Client, command: &Command) -> anyhow::Result<u8> {
    use reqwest::Method;
    match command {
        Command::Deploy {
            service,
            version,
            env,
            env_from,
            plan,
            reason,
            overrides,
            wait,
            timeout,
            json,
        } => {
            let timeout = parse_duration(timeout).map_err(|error| anyhow!("--timeout: {error}"))?;
            let plan = plan.as_deref().map(plan_for_request).transpose()?;
            let body = serde_json::json!({"version": version, "env": parse_env(env, "--env")?, "env_from": parse_env(env_from, "--env-from")?, "plan": plan, "reason": reason, "overrides": overrides});
            let answer = client
                .call(
                    Method::POST,
                    &format!("/v1/services/{service}/deploy"),
                    Some(body),
                )
                .await?;
            let rollout_id = answer["rollout"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !*json {
                println!(
                    "rollout {rollout_id} of {service} {version} started ({})",
                    answer["rollout"]["plan"].as_str().unwrap_or("")
                );
            }
            if *wait {
                return wait_for_rollout(client, &rollout_id, timeout, *json).await;
            }
            if *json {
                println!("{}", serde_json::to_string_pretty(&answer["rollout"])?);
            }
            Ok(0)
        }
        Command::Status { service, json } => {
            let answer = match service {
                Some(service) => {
                    client
                        .call(Method::GET, &format!("/v1/services/{service}"), None)
                        .await?
                }
                None => client.call(Method::GET, "/v1/status", None).await?,
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                let services = match service {
                    Some(_) => vec![answer["service"].clone()],
                    None => answer["services"].as_array().cloned().unwrap_or_default(),
                };
                for status in services {
                    print_status(&status);
                }
            }
            Ok(0)
        }
        Command::Promote { service, reason }
        | Command::Pause { service, reason }
        | Command::Resume { service, reason }
        | Command::Abort { service, reason } => {
            let verb = match command {
                Command::Promote { .. } => "promote",
                Command::Pause { .. } => "pause",
                Command::Resume { .. } => "resume",
                _ => "abort",
            };
            let answer = client
                .call(
                    Method::POST,
                    &format!("/v1/services/{service}/{verb}"),
                    Some(serde_json::json!({"reason": reason})),
                )
                .await?;
            print_rollout_line(&answer["rollout"]);
            Ok(0)
        }
        Command::Rollback { service, reason } => {
            let answer = client
                .call(
                    Method::POST,
                    &format!("/v1/services/{service}/rollback"),
                    Some(serde_json::json!({"reason": reason})),
                )
                .await?;
            println!(
                "rolling {service} back to {} (rollout {})",
                answer["rollout"]["canary_version"].as_str().unwrap_or("?"),
                answer["rollout"]["id"].as_str().unwrap_or("?")
            );
            Ok(0)
        }
        Command::History {
            service,
            limit,
            json,
        } => {
            let answer = client
                .call(
                    Method::GET,
                    &format!("/v1/services/{service}/history?limit={limit}"),
                    None,
                )
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(0);
            }
            for rollout in answer["rollouts"].as_array().cloned().unwrap_or_default() {
                print_rollout_line(&rollout);
                for decision in rollout["decisions"].as_array().cloned().unwrap_or_default() {
                    println!(
                        "    {}  {:<9} {}",
                        decision["at"].as_str().unwrap_or(""),
                        decision["kind"].as_str().unwrap_or(""),
                        decision["summary"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(0)
        }
        Command::Gate {
            service,
            timeout,
            json,
        } => {
            let timeout = parse_duration(timeout).map_err(|error| anyhow!("--timeout: {error}"))?;
            let answer = client
                .call(Method::GET, &format!("/v1/services/{service}"), None)
                .await?;
            let status = &answer["service"];
            let rollout = if status["active_rollout"].is_object() {
                &status["active_rollout"]
            } else {
                &status["last_rollout"]
            };
            let Some(rollout_id) = rollout["id"].as_str() else {
                bail!("{service} has no rollout to gate on");
            };
            wait_for_rollout(client, rollout_id, timeout, *json).await
        }
        Command::Up
        | Command::Load { .. }
        | Command::Config { .. }
        | Command::Alarms { .. }
        | Command::Cdn { .. }
        | Command::Package(_)
        | Command::Drill { .. }
        | Command::Cost { .. } => Ok(0),
    }
}

async fn open_store(config: &Config) -> anyhow::Result<opsd::store::Store> {
    Ok(opsd::store::Store::open(&config.data_dir.join("opsd.db")).await?)
}

fn parse_today(today: Option<&str>) -> anyhow::Result<chrono::NaiveDate> {
    match today {
        Some(text) => text
            .parse()
            .map_err(|_| anyhow!("--today {text:?} is not a day like 2025-06-30")),
        None => Ok(opsd::costs::utc_today()),
    }
}

async fn cost_command(config: &Config, action: &CostAction) -> anyhow::Result<u8> {
    use opsd::costs;
    let costs_config = costs::costs_config(config)?;
    match action {
        CostAction::Check { today, json } => {
            let today = parse_today(today.as_deref())?;
            let store = open_store(config).await?;
            let source = costs::build_source(costs_config, &store).await;
            let (notifier, delivery) = opsd::notify::Notifier::start(
                config.notification_targets.clone(),
                config.notification_routes.clone(),
                Some(store.clone()),
            );
            let outcome =
                costs::check_and_notify(costs_config, &store, source.as_ref(), today, &notifier)
                    .await;
            drop(notifier);
            if tokio::time::timeout(Duration::from_secs(60), delivery)
                .await
                .is_err()
            {
                eprintln!("warning: notifications still undelivered after 60 s; giving up");
            }
            let outcome = outcome?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                print!("{}", costs::format_check(&outcome));
            }
            Ok(outcome.report.exit_code)
        }
        CostAction::Report { today, json } => {
            let today = parse_today(today.as_deref())?;
            let store = open_store(config).await?;
            let source = costs::build_source(costs_config, &store).await;
            let report = costs::evaluate(costs_config, &store, source.as_ref(), today).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", costs::format_report(&report));
            }
            Ok(0)
        }
    }
}

async fn drill_command(config: &Config, action: &DrillAction) -> anyhow::Result<u8> {
    use opsd::drill;
    match action {
        DrillAction::Run {
            database,
            use_latest,
            pause_after_restore,
            json,
        } => {
            let database = drill::database(config, database)?;
            let pause = pause_after_restore
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|error| anyhow!("--pause-after-restore: {error}"))?;
            let store = open_store(config).await?;
            let options = drill::DrillOptions {
                use_latest_snapshot: *use_latest,
                pause_after_restore: pause,
            };
            let started = Instant::now();
            let progress = |line: &str| {
                eprintln!("[{:>6.1} s] {line}", started.elapsed().as_secs_f64());
            };
            let report = drill::run_drill(config, &store, database, &options, &progress).await?;
            let value = serde_json::to_value(&report)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print!("{}", drill::format_drill_report(&value));
            }
            Ok(match report.outcome {
                opsd::core::drill::DrillOutcome::Passed => 0,
                _ => 2,
            })
        }
        DrillAction::List {
            database,
            limit,
            json,
        } => {
            if let Some(name) = database {
                drill::database(config, name)?;
            }
            let store = open_store(config).await?;
            for line in drill::clean_up_interrupted_drills(config, &store).await {
                eprintln!("{line}");
            }
            let drills = store.list_drills(database.as_deref(), *limit).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&drills)?);
            } else {
                print!("{}", drill::format_drill_list(&drills));
            }
            Ok(0)
        }
        DrillAction::Show { id, json } => {
            let store = open_store(config).await?;
            let record = store.get_drill(id).await?.ok_or_else(|| {
                anyhow!("no drill {id:?}; `opsd drill list` shows the known ones")
            })?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else if record.outcome.is_none() {
                println!(
                    "drill {} of {} started {} is still running (scratch {})",
                    record.id,
                    record.database,
                    record.started_at,
                    record.scratch.as_deref().unwrap_or("not yet created")
                );
            } else {
                print!("{}", drill::format_drill_report(&record.report));
            }
            Ok(0)
        }
        DrillAction::Snapshot { database, json } => {
            let database = drill::database(config, database)?;
            let store = open_store(config).await?;
            let _lock = drill::DrillLock::try_acquire(&drill::drills_dir(config), &database.name)?
                .ok_or_else(|| {
                    anyhow!(
                        "a drill of {} is running; try again when it ends",
                        database.name
                    )
                })?;
            let platform = drill::snapshots_for(config, database).await?;
            eprintln!("taking a snapshot of {}", platform.describe());
            let record =
                drill::take_recorded_snapshot(&store, database, platform.as_ref(), "manual", None)
                    .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                println!(
                    "snapshot {} of {} at {} ({})",
                    record.id,
                    record.database,
                    record.location,
                    record
                        .size_bytes
                        .map_or("size unknown".to_string(), |size| format!("{size} bytes"))
                );
            }
            Ok(0)
        }
    }
}

/// Exit code of a rollout phase (R-OPS-1 in docs/requirements.md).
fn exit_code_of(phase: &str) -> Option<u8> {
    match phase {
        "promoted" => Some(0),
        "rolled_back" | "aborted" | "failed" => Some(2),
        "paused" | "held" => Some(3),
        _ => None,
    }
}

async fn wait_for_rollout(
    client: &Client,
    rollout_id: &str,
    timeout: Duration,
    json: bool,
) -> anyhow::Result<u8> {
    let started = Instant::now();
    let mut last_line = String::new();
    loop {
        let answer = client
            .call(
                reqwest::Method::GET,
                &format!("/v1/rollouts/{rollout_id}"),
                None,
            )
            .await?;
        let rollout = &answer["rollout"];
        let phase = rollout["phase"].as_str().unwrap_or("unknown");
        let line = format!(
            "{} {} → {}: {} at {} % — {}",
            rollout["service"].as_str().unwrap_or(""),
            rollout["stable_version"].as_str().unwrap_or(""),
            rollout["canary_version"].as_str().unwrap_or(""),
            phase,
            rollout["canary_weight_percent"],
            rollout["summary"].as_str().unwrap_or("")
        );
        if !json && line != last_line {
            eprintln!("{line}");
            last_line = line;
        }
        if let Some(code) = exit_code_of(phase) {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"outcome": phase, "exit_code": code, "rollout": rollout})
                    )?
                );
            } else {
                println!("{}: {phase}", rollout["id"].as_str().unwrap_or(rollout_id));
            }
            return Ok(code);
        }
        if started.elapsed() >= timeout {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"outcome": "timed_out", "exit_code": 3, "rollout": rollout})
                    )?
                );
            } else {
                println!(
                    "timed out after {} s while the rollout was {phase}",
                    timeout.as_secs()
                );
            }
            return Ok(3);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_rollout_line(rollout: &Value) {
    println!(
        "{}  {} → {}  {}  step {}/{} at {} %  {}",
        rollout["id"].as_str().unwrap_or(""),
        rollout["stable_version"].as_str().unwrap_or(""),
        rollout["canary_version"].as_str().unwrap_or(""),
        rollout["phase"].as_str().unwrap_or(""),
        rollout["step"],
        rollout["steps"],
        rollout["canary_weight_percent"],
        rollout["summary"].as_str().unwrap_or("")
    );
}

fn print_status(status: &Value) {
    println!(
        "{}  stable {}  public http://{}",
        status["service"].as_str().unwrap_or(""),
        status["stable_version"].as_str().unwrap_or(""),
        status["public_addr"].as_str().unwrap_or("")
    );
    if status["active_rollout"].is_object() {
        print!("  rollout: ");
        print_rollout_line(&status["active_rollout"]);
        if let Some(decision) = status["active_rollout"]["decisions"]
            .as_array()
            .and_then(|decisions| decisions.last())
        {
            println!(
                "  last decision: {} — {}",
                decision["kind"].as_str().unwrap_or(""),
                decision["summary"].as_str().unwrap_or("")
            );
        }
    } else if status["last_rollout"].is_object() {
        print!("  last rollout: ");
        print_rollout_line(&status["last_rollout"]);
    } else {
        println!("  no rollouts yet");
    }
}
