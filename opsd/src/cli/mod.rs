//! The `opsd` command line: `opsd up` runs the daemon; the rollout commands are clients of its
//! API (so is `alarms status`); drills, costs, alarm sync and the CDN run in the CLI's own process.
//!
//! Exit codes (deploy --wait and gate): 0 promoted or healthy, 2 rolled back or failed,
//! 3 inconclusive, paused or timed out, 1 usage, configuration or platform error. `cost check`:
//! 0 within budget, 3 a warning threshold crossed, 2 a critical one (actual or forecast).
//! Usage errors exit 1 like any other error: exit 2 means "rolled back" to CI.

mod alarms;
mod args;
mod aws;
mod client;
mod costs;
mod drills;
mod github;
mod local;
mod logs;
mod maintenance;
mod restore;
mod rollouts;
mod runbook;
mod runbook_check;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Parser;
use opsd::config::Config;

use args::{Cli, Command};
use client::Client;

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    opsd::private_files::restrict_process_umask();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_exit(&error),
    };
    let runtime = match runtime_for(&cli.command) {
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

/// The async runtime a command runs on. `opsd router` runs on one thread, as nginx runs one
/// worker: a proxy's work is short and I/O bound, and on a small machine it shares the cores with
/// the releases it serves, so a second worker thread adds cross-thread wake-ups and task
/// migration instead of throughput (docs/benchmarks.md, the router against nginx). Every other
/// command runs on a thread per core.
fn runtime_for(command: &Command) -> std::io::Result<tokio::runtime::Runtime> {
    if matches!(command, Command::Router { .. }) {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
    }
    tokio::runtime::Runtime::new()
}

/// `--help` and `--version` print to stdout and exit 0; every other parse error prints what is
/// wrong and the usage of the command it is about to stderr, and exits 1.
fn usage_exit(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    if !error.use_stderr() {
        return ExitCode::SUCCESS;
    }
    if !error.to_string().contains("Usage:") {
        eprintln!("\n{}", usage_of_invoked_command());
    }
    ExitCode::from(1)
}

/// The usage line of the deepest subcommand the command line names.
fn usage_of_invoked_command() -> String {
    let mut command = <Cli as clap::CommandFactory>::command();
    command.build();
    let mut current = &mut command;
    for word in std::env::args().skip(1) {
        if current.find_subcommand(&word).is_some() {
            current = current
                .find_subcommand_mut(&word)
                .expect("the subcommand was just found");
        }
    }
    current.render_usage().to_string()
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Up
        | Command::Down { .. }
        | Command::Router { .. }
        | Command::Config { .. }
        | Command::Load { .. }
        | Command::Token { .. } => local::run(&cli).await,
        Command::Alarms {
            action: args::AlarmsAction::Status { service, json },
        } => alarms::run_status(&Client::from_cli(&cli)?, service.as_deref(), *json).await,
        Command::Alarms { .. } | Command::Cdn { .. } => aws::run(&cli).await,
        Command::Package(args) => {
            opsd::package::run(args)?;
            Ok(0)
        }
        Command::Drill { action } => drills::run(&load_config(&cli.config)?, action).await,
        Command::Cost { action } => costs::run(&load_config(&cli.config)?, action).await,
        Command::Maintenance { action } => maintenance::run(&Client::from_cli(&cli)?, action).await,
        Command::Restore { .. } => restore::run(&Client::from_cli(&cli)?, &cli.command).await,
        Command::Runbook { action } => runbook::run(&cli, action).await,
        Command::Logs {
            service,
            version,
            lines,
        } => logs::run(
            &load_config(&cli.config)?,
            service,
            version.as_deref(),
            *lines,
        ),
        Command::Deploy { .. }
        | Command::Status { .. }
        | Command::Promote { .. }
        | Command::Pause { .. }
        | Command::Resume { .. }
        | Command::Abort { .. }
        | Command::Rollback { .. }
        | Command::Approve { .. }
        | Command::Freeze { .. }
        | Command::Unfreeze { .. }
        | Command::History { .. }
        | Command::Gate { .. } => rollouts::run(&Client::from_cli(&cli)?, &cli.command).await,
    }
}

/// The steno binary next to opsd, else `steno` on the PATH.
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

async fn open_store(config: &Config) -> anyhow::Result<opsd::store::Store> {
    Ok(opsd::store::Store::open_location(&config.store).await?)
}
