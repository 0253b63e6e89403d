//! The command-line tree: every command, flag and its help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// opsd: deploy Steno as canaries, watch them, roll back bad releases by themselves.
///
/// Start with `opsd up` (no configuration needed: it runs Steno on the local platform behind
/// opsd's router on 127.0.0.1:8080 and serves the API and the dashboard on 127.0.0.1:7070, with
/// a one-time login link). Then, in another terminal: `opsd load --rps 100 --duration 10m`, and
/// `opsd deploy steno --version v2 --plan demo --wait` (the demo plan takes about a minute; the
/// default plan bakes for half an hour), `opsd status`.
#[derive(Parser)]
#[command(name = "opsd", version, about, long_about)]
pub struct Cli {
    /// Configuration file; when it does not exist, embedded defaults are used.
    #[arg(long, global = true, env = "OPSD_CONFIG", default_value = "opsd.yaml")]
    pub config: PathBuf,
    /// The opsd API to talk to (client commands); defaults to the configured listen address.
    #[arg(long, global = true, env = "OPSD_SERVER")]
    pub server: Option<String>,
    /// API token (client commands); defaults to the operator token `opsd up` wrote to its data dir.
    #[arg(long, global = true, env = "OPSD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: the local platform, the router, the reconciler and the API.
    ///
    /// The local data plane fails static: each service's router runs as a process of its own
    /// and releases outlive opsd, so if opsd is killed, traffic keeps flowing on the last split;
    /// a restarted opsd re-adopts them. Ctrl-C or SIGTERM stops everything; so does `opsd down`.
    Up,
    /// Stop everything `opsd up` runs from this opsd.yaml's data directory: the running opsd
    /// (which stops its routers and releases), or, when opsd was killed, the routers and
    /// releases it left serving.
    Down {
        /// How long the running opsd may take to stop before it is killed.
        #[arg(long, default_value = "60s")]
        timeout: String,
    },
    /// Serve one service's public port for `opsd up` (started by it; not for direct use).
    #[command(hide = true)]
    Router {
        #[arg(long)]
        service: String,
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The Unix socket opsd controls this router through.
        #[arg(long)]
        control: PathBuf,
        /// A request path forwarded but not counted (repeatable).
        #[arg(long = "exclude")]
        excluded_paths: Vec<String>,
    },
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
        /// Deploy although this gate is closed: `freeze`, `window` (outside every deploy window
        /// or on a freeze date; the rollout then never waits for a window), `quarantine`,
        /// `alarm`, `drill` (the database's newest DR drill failed or is stale), `snapshot` (the
        /// pre-deployment snapshot failed) or `budget` (the newest cost check found a budget's
        /// forecast over its threshold). Needs --reason; audited. Repeatable.
        #[arg(long = "override", value_name = "GATE")]
        overrides: Vec<String>,
        /// How long the new release is watched at 100 % before promotion, replacing the plan's
        /// watch (the presets watch 15m, SeedCanary 30m, AllAtOnce 1h); `0` promotes on reaching
        /// 100 %. The previous release stays warm during the watch for an instant rollback.
        #[arg(long, value_name = "DURATION")]
        watch: Option<String>,
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
    /// Approve the step a rollout waits at (a plan step with `approve:`, e.g. two people before
    /// 100 %). Each person approves once, with their own token (`opsd token create NAME`);
    /// audited.
    Approve {
        service: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Maintenance: the banner Steno shows (from opsd's public status document at
    /// /status.json) while a window is in force. Scheduled windows live in opsd.yaml's
    /// `maintenance` section; these commands start, plan and stop an operator's window.
    Maintenance {
        #[command(subcommand)]
        action: MaintenanceAction,
    },
    /// API tokens, one per person (the audit log and approvals name them). Works on the store
    /// in opsd's data directory, on the machine opsd runs on.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// After a completed rollout, go back to the previous release at once.
    Rollback {
        service: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Stop the line: refuse every deploy of a service (or of all services) until `opsd
    /// unfreeze`. Rollouts already running go on. A deploy can still pass with `--override freeze
    /// --reason "..."` (audited).
    Freeze {
        /// The service to freeze; every service when left out.
        service: Option<String>,
        /// Why (required): shown to everyone whose deploy the freeze refuses, and audited.
        #[arg(long)]
        reason: String,
    },
    /// Lift a freeze set by `opsd freeze` (the same service, or none for the freeze of all).
    Unfreeze {
        service: Option<String>,
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
    ///
    /// Exit 0 promoted, 2 rolled back, aborted or failed, 3 paused, held or timed out (a person
    /// must look). `--format github` also appends a Markdown step summary (every decision and its
    /// evidence) to $GITHUB_STEP_SUMMARY and prints an annotation with the reason.
    Gate {
        service: String,
        #[arg(long, default_value = "60m")]
        timeout: String,
        #[arg(long)]
        json: bool,
        /// `text`, or `github`: a step summary and an annotation for GitHub Actions.
        #[arg(long, default_value = "text", value_parser = ["text", "github"])]
        format: String,
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
    /// Alarm rules in production (`status`, from the running opsd), and the CloudWatch alarms of
    /// services on AWS made from the rules in alarms/*.yaml (`sync`, `list`).
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
    /// Restore a database from one of its snapshots: the recovery of R-DR-13 (docs/requirements.md).
    ///
    /// First a safety snapshot of the current state is taken (reason `pre_restore`), so a
    /// restore can itself be undone. In place (the default) the releases of the services on the
    /// database stop on the local platform, the snapshot replaces the database (SQLite: page by
    /// page with the backup API; PostgreSQL: restored beside it, then swapped in by renames, the
    /// replaced database kept), the result is verified like a drill, and the releases start
    /// again. `--to` restores into a new target instead (a file beside it, a database name, an RDS
    /// instance; RDS always restores into a new instance) and says how to point the service at
    /// it. The report gives the RTO and the rows written after the snapshot, which are lost.
    /// Refused while a rollout of a service on the database runs (--override-rollout). Asks to
    /// type the database's name unless --yes. Exit 0 restored and verified, 2 restored but a
    /// verification item failed, 1 refused or failed. Needs the running `opsd up`.
    ///
    /// Example: opsd restore steno --latest --reason "bad migration at 14:02"
    Restore {
        /// The database (a key of `databases` in opsd.yaml).
        database: String,
        /// The snapshot to restore, by id (`opsd drill list --json` and the dashboard's Drills
        /// page list them).
        #[arg(long, conflicts_with_all = ["latest", "before"])]
        snapshot: Option<String>,
        /// The newest snapshot (safety snapshots of earlier restores left out).
        #[arg(long, conflicts_with = "before")]
        latest: bool,
        /// The newest snapshot taken before this time (RFC 3339, e.g. 2026-12-04T14:00:00Z).
        #[arg(long)]
        before: Option<String>,
        /// A new target instead of the database itself: a file name beside the database (sqlite,
        /// e.g. steno-restored.db), a database name (postgres) or an instance identifier (rds).
        /// It must not exist.
        #[arg(long)]
        to: Option<String>,
        /// Why (required): kept in the audit log and on the timeline.
        #[arg(long)]
        reason: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Only show which snapshot would be restored, what stops and what would be lost.
        #[arg(long)]
        dry_run: bool,
        /// Restore even while a rollout of a service on the database runs (audited).
        #[arg(long)]
        override_rollout: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
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
    /// Runbooks: Markdown an on-call engineer reads, whose steps opsd runs (opsd commands, HTTP
    /// checks, shell scripts), asking before dangerous ones, stopping at the first failure, and
    /// recording each run (who, when, every step's outcome) on the timeline and in the audit log.
    ///
    /// Runbooks are read from `--dir`, else `runbooks/` beside opsd.yaml, else the ones built into
    /// opsd. Start with `opsd runbook list`, then `opsd runbook show rollback`, then
    /// `opsd runbook run rollback --param reason="p99 over 2s since v2" --dry-run`.
    Runbook {
        #[command(subcommand)]
        action: RunbookAction,
    },
    /// The last lines a release of a service on the local platform wrote (stdout and stderr),
    /// from opsd's data directory on this machine. On AWS a release's log is in CloudWatch Logs
    /// (`/aws/lambda/<function>`).
    Logs {
        service: String,
        /// The release's version; the one that wrote last when left out.
        #[arg(long)]
        version: Option<String>,
        /// How many lines (at most 1000).
        #[arg(long, default_value_t = 50)]
        lines: usize,
    },
}

#[derive(Subcommand)]
pub enum RunbookAction {
    /// Every runbook: its name, title and number of steps.
    List {
        #[command(flatten)]
        source: RunbookSource,
    },
    /// A runbook's summary, parameters and steps (each with its command and whether it is
    /// dangerous).
    Show {
        /// The runbook (`opsd runbook list` names them).
        name: String,
        #[command(flatten)]
        source: RunbookSource,
    },
    /// Run a runbook's steps in order.
    ///
    /// Stops at the first failing step and names it; asks before each step marked dangerous (without a terminal, only --yes lets one run). Exit 0 every
    /// step passed, 2 a step failed, 3 a dangerous step was declined or the run interrupted, 1 the
    /// runbook or its parameters are wrong.
    ///
    /// Example: opsd runbook run rollback --param service=steno --param reason="errors since v2"
    Run {
        /// The runbook (`opsd runbook list` names them).
        name: String,
        /// A parameter's value, NAME=VALUE (repeatable); `opsd runbook show NAME` lists them.
        #[arg(long = "param", value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Print each step with its parameters filled in, and run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Start at this step (its number or its name as `show` prints it); the steps before it
        /// are recorded as skipped.
        #[arg(long, value_name = "STEP")]
        from: Option<String>,
        /// Run dangerous steps without asking.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        source: RunbookSource,
    },
    /// Check every runbook.
    ///
    /// Each step parses, each opsd command exists with those flags, each parameter is declared.
    /// Exit 0 when all are valid, 1 otherwise (every problem listed with its file and line).
    Check {
        #[command(flatten)]
        source: RunbookSource,
    },
}

/// Where runbooks are read from.
#[derive(clap::Args)]
pub struct RunbookSource {
    /// A directory of runbooks (`*.md`); defaults to `runbooks/` beside opsd.yaml, else the
    /// runbooks built into opsd.
    #[arg(long, env = "OPSD_RUNBOOKS")]
    pub dir: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum CostAction {
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
pub enum DrillAction {
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
pub enum AlarmsAction {
    /// Every alarm rule of every service as `opsd up` last evaluated it on live traffic: state,
    /// since when, value and threshold, and where a change is notified. Works on every platform.
    Status {
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        json: bool,
    },
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
pub enum CdnAction {
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
pub enum ConfigAction {
    /// Validate the configuration; errors name the file, line and field.
    Validate,
}

/// `opsd token ...`.
#[derive(Subcommand)]
pub enum TokenAction {
    /// Create a token for a person and print it once (only its hash is stored).
    Create {
        /// Who holds it, e.g. alice or alice@firm.example; unique.
        name: String,
        /// operator (may deploy, approve, abort, ...) or viewer (reads only).
        #[arg(long, default_value = "operator")]
        role: String,
    },
    /// List tokens: names, roles and when they were created (never the secrets).
    List,
    /// Revoke the token held by NAME: its API requests, dashboard sessions and live dashboards
    /// stop working (live dashboards within seconds).
    Revoke {
        /// Whose token, as `opsd token list` shows it.
        name: String,
    },
}

/// `opsd maintenance ...`.
#[derive(Subcommand)]
pub enum MaintenanceAction {
    /// Start (or, with --at, plan) a maintenance window; audited.
    Start {
        /// The banner users see, one line, e.g. "Steno is read-only until 04:00 UTC".
        #[arg(long)]
        message: String,
        /// When it starts (RFC 3339, e.g. 2026-12-06T02:00:00Z); now when left out.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// How long it lasts (e.g. 2h); until `opsd maintenance stop` when left out.
        #[arg(long, value_name = "DURATION")]
        duration: Option<String>,
        /// Keep deploys to the deploy windows during it; by default a maintenance window is
        /// also a deploy window.
        #[arg(long)]
        no_deploys: bool,
    },
    /// End the operator's windows in force now; audited.
    Stop {
        #[arg(long)]
        reason: Option<String>,
    },
    /// The window in force and the next one announced.
    Status {
        #[arg(long)]
        json: bool,
    },
}
