//! The `steno` command line: serves the app with `axum::serve`, or under AWS Lambda (when
//! `AWS_LAMBDA_RUNTIME_API` is set) runs the same router through `lambda_http`, adding one
//! CloudWatch EMF metrics line per request on stdout (see `steno::lambda_metrics`); `steno probe`
//! walks a firm's journey against a running Steno (see `steno::probe`).

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use steno::config::Settings;
use steno::db::{MigrationScope, RehearsalMigrations};
use steno::http;
use steno::lambda_metrics::{LambdaFunction, LambdaMetrics};
use steno::state::AppState;
use steno::status_banner;

/// Steno, the demand-letter generator for personal-injury law firms.
///
/// Configuration comes from environment variables: DATABASE_URL (default: a SQLite file under
/// ./steno-data), STENO_STORAGE_DIR or STENO_S3_BUCKET, STENO_JWT_SECRET, STENO_VERSION,
/// ANTHROPIC_API_KEY, STENO_STATUS_URL, STENO_PUBLIC_URL, STENO_TRUSTED_PROXIES, the
/// STENO_LOGIN_* throttling limits, and the STENO_CHAOS_* fault-injection switches.
/// See the README for the full list.
#[derive(Parser)]
#[command(name = "steno", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web UI and the JSON API over HTTP (the default command).
    Serve {
        /// Address to listen on; port 0 picks a free port (the chosen address is printed).
        #[arg(long, env = "STENO_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Which pending migrations to apply at start: `all`, or `expand` (stop before the first
        /// contract migration and serve with the contract ones pending, as a release deployed
        /// beside an older one must; opsd runs them once the older release is gone).
        #[arg(long, env = "STENO_MIGRATE_ON_START", default_value = "all", value_parser = MigrationScope::parse)]
        migrate: MigrationScope,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// `all` pending migrations, or `expand`: those before the first contract migration.
        #[arg(long, default_value = "all", value_parser = MigrationScope::parse)]
        class: MigrationScope,
    },
    /// List the schema migrations this build knows, each with its class: `expand` (an older
    /// release keeps working after it) or `contract` (it does not). Reads no database; the
    /// rehearsal migrations of STENO_CHAOS_MIGRATIONS are listed too.
    Migrations {
        /// Print `{"migrations": [{"version", "name", "class"}, ...]}` instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Walk a firm's journey through a running Steno's API (register, upload, create a matter,
    /// draft, export a PDF, log out), one line per step with its latency; exit 0 when every
    /// step passed, 1 naming the first that failed. Logs in to STENO_PROBE_EMAIL with
    /// STENO_PROBE_PASSWORD when both are set, else registers a throwaway firm.
    Probe {
        /// Steno's origin, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        base_url: String,
        /// Print a JSON document (each step's name, ok, latency_ms and error) instead of lines.
        #[arg(long)]
        json: bool,
        /// Deadline of the whole journey: 60s, 2m, 1500ms.
        #[arg(long, default_value = "60s", value_parser = steno::probe::parse_timeout)]
        timeout: std::time::Duration,
    },
    /// Internal: read one uploaded document or logo on stdin within the limits given, as the
    /// bounded child process the server starts for every upload.
    #[command(hide = true, subcommand)]
    Extract(steno::extractor::child::ExtractJob),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STENO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .init();
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command.unwrap_or(Command::Serve {
        addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
        migrate: MigrationScope::All,
    });
    if let Command::Extract(job) = &command {
        // The extractor child: no logging, no runtime, no settings, no environment.
        std::process::exit(steno::extractor::child::run(job.clone()));
    }
    if let Command::Probe {
        base_url,
        json,
        timeout,
    } = command
    {
        // A client of the API: no logging, no settings; its output is the report.
        std::process::exit(run_probe(base_url, json, timeout));
    }
    if let Command::Migrations { json } = command {
        // What this build needs of the schema: no database, no settings but the rehearsal.
        let rehearsal = std::env::var("STENO_CHAOS_MIGRATIONS").unwrap_or_default();
        let rehearsal = RehearsalMigrations::parse(&rehearsal).map_err(|reason| {
            anyhow::anyhow!("STENO_CHAOS_MIGRATIONS={rehearsal:?} is invalid: {reason}")
        })?;
        print_migrations(rehearsal, json);
        return Ok(());
    }
    init_logging();
    let environment: HashMap<String, String> = std::env::vars().collect();
    let mut settings = Settings::from_environment(&environment).context("invalid configuration")?;
    if let Command::Serve { migrate: scope, .. } | Command::Migrate { class: scope } = &command {
        settings.migrations.scope = *scope;
    }
    let runtime = tokio::runtime::Runtime::new().context("could not start the async runtime")?;
    if environment.contains_key("AWS_LAMBDA_RUNTIME_API") {
        let lambda_function = LambdaFunction::from_environment(&environment);
        return runtime.block_on(run_on_lambda(settings, lambda_function));
    }
    match command {
        Command::Serve { addr, .. } => runtime.block_on(serve(settings, addr)),
        Command::Extract(job) => std::process::exit(steno::extractor::child::run(job)),
        Command::Probe {
            base_url,
            json,
            timeout,
        } => std::process::exit(run_probe(base_url, json, timeout)),
        Command::Migrations { json } => {
            print_migrations(settings.migrations.rehearsal, json);
            Ok(())
        }
        Command::Migrate { .. } => runtime.block_on(migrate(settings)),
    }
}

/// `steno migrate`: applies the pending migrations of the chosen class and reports the versions
/// applied and those left pending.
async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let rehearsal = settings.migrations.rehearsal;
    let before = match steno::db::Database::connect_without_migrating(&settings.database_url).await
    {
        Ok(database) => steno::db::applied_versions(&database)
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let state = AppState::start(settings).await?;
    let after = steno::db::applied_versions(state.database()).await?;
    let needs = steno::db::schema_needs(rehearsal);
    let applied: Vec<String> = needs
        .iter()
        .filter(|need| after.contains(&need.version) && !before.contains(&need.version))
        .map(|need| format!("{} {} ({})", need.version, need.name, need.class.as_str()))
        .collect();
    let pending: Vec<String> = needs
        .iter()
        .filter(|need| !after.contains(&need.version))
        .map(|need| format!("{} {} ({})", need.version, need.name, need.class.as_str()))
        .collect();
    println!(
        "applied: {}",
        if applied.is_empty() {
            "none".to_string()
        } else {
            applied.join(", ")
        }
    );
    if !pending.is_empty() {
        println!("pending: {}", pending.join(", "));
    }
    println!(
        "database is at schema version {}",
        after.iter().max().copied().unwrap_or(0)
    );
    Ok(())
}

/// `steno migrations`: every migration this build knows, with its class.
fn print_migrations(rehearsal: RehearsalMigrations, json: bool) {
    let needs = steno::db::schema_needs(rehearsal);
    if json {
        println!("{}", serde_json::json!({ "migrations": needs }));
    } else {
        for need in needs {
            println!(
                "{:>4}  {:<8}  {}",
                need.version,
                need.class.as_str(),
                need.name
            );
        }
    }
}

/// Runs `steno probe` and prints its report: step lines (or JSON) on stdout, the failure on
/// stderr. Returns the exit code.
fn run_probe(base_url: String, json: bool, timeout: std::time::Duration) -> i32 {
    let credentials = match (
        std::env::var("STENO_PROBE_EMAIL")
            .ok()
            .filter(|value| !value.is_empty()),
        std::env::var("STENO_PROBE_PASSWORD")
            .ok()
            .filter(|value| !value.is_empty()),
    ) {
        (Some(email), Some(password)) => Some(steno::probe::ProbeCredentials { email, password }),
        (None, None) => None,
        _ => {
            eprintln!(
                "probe failed at start: set both STENO_PROBE_EMAIL and STENO_PROBE_PASSWORD, or neither"
            );
            return 1;
        }
    };
    let options = steno::probe::ProbeOptions {
        base_url,
        timeout,
        credentials,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("probe failed at start: could not start the async runtime: {error}");
            return 1;
        }
    };
    let report = match runtime.block_on(steno::probe::run(&options)) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("probe failed at start: {error}");
            return 1;
        }
    };
    if json {
        println!("{}", report.to_json());
    } else {
        for line in report.step_lines() {
            println!("{line}");
        }
    }
    if report.passed() {
        if !json {
            println!("{}", report.verdict());
        }
    } else {
        eprintln!("{}", report.verdict());
    }
    report.exit_code()
}

async fn serve(settings: Settings, addr: SocketAddr) -> anyhow::Result<()> {
    let status_url = settings.status_url.clone();
    let poll_interval = settings.status_poll_interval;
    let version = settings.version.clone();
    let state = AppState::start(settings)
        .await
        .context("steno could not start")?;
    state
        .extractor()
        .probe()
        .await
        .context("steno could not start")?;
    let poller = status_url.map(|url| {
        tokio::spawn(status_banner::poll_status_document(
            url,
            poll_interval,
            state.banner().clone(),
        ))
    });
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("could not listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, version = %version, engine = state.engine().name(), "steno listening");
    println!("steno {version} listening on http://{local}");
    let database = state.database().clone();
    http::serve(listener, state, shutdown_signal()).await?;
    if let Some(poller) = poller {
        poller.abort();
    }
    database.close().await;
    tracing::info!("steno stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(error = %error, "could not listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; finishing open requests");
}

/// Runs the router under the Lambda runtime. With the function's name and version known, every
/// request also writes its EMF metrics line to stdout; without them it runs without that line.
async fn run_on_lambda(
    settings: Settings,
    lambda_function: Option<LambdaFunction>,
) -> anyhow::Result<()> {
    let state = AppState::start(settings)
        .await
        .context("steno could not start")?;
    state
        .extractor()
        .probe()
        .await
        .context("steno could not start")?;
    let app = match lambda_function {
        Some(function) => {
            tracing::info!(
                function_name = %function.name,
                function_version = %function.version,
                "steno on Lambda; emitting per-request EMF metrics"
            );
            http::router_with_lambda_metrics(state, LambdaMetrics::to_stdout(function))
        }
        None => {
            tracing::warn!(
                "AWS_LAMBDA_FUNCTION_NAME or AWS_LAMBDA_FUNCTION_VERSION is not set; \
                 per-request EMF metrics are off"
            );
            http::router(state)
        }
    };
    lambda_http::run(app)
        .await
        .map_err(|error| anyhow::anyhow!("the Lambda runtime stopped: {error}"))
}
