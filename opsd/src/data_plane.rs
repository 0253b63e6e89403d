//! The local data plane as seen from outside one opsd: where a fail-static platform keeps its
//! records, the record of the `opsd up` that runs it (one per data directory), `opsd down`, and
//! the entry point of `opsd router`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::platform::local::process_records::{
    read_record, remove_record, write_record, ProcessIdentity,
};
use crate::platform::local::router_process::{self, RouterProcessOptions};
use crate::platform::local::{stop_left_running, FailStaticSetup};

/// How long releases stopped by `opsd down` without an opsd get between SIGTERM and SIGKILL.
const RELEASE_STOP_GRACE: Duration = Duration::from_secs(10);

/// Where the fail-static local platform of `config` keeps its records and sockets.
pub fn fail_static_setup(config: &Config) -> anyhow::Result<FailStaticSetup> {
    let program = std::env::current_exe().context("cannot find opsd's own executable")?;
    Ok(FailStaticSetup {
        program,
        state_dir: config.data_dir.join("data-plane"),
    })
}

/// The record of the `opsd up` serving a data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpsdRecord {
    pub process: ProcessIdentity,
    pub api_addr: std::net::SocketAddr,
}

fn opsd_record_path(config: &Config) -> PathBuf {
    config.data_dir.join("data-plane").join("opsd.json")
}

/// The `opsd up` that serves `config`'s data directory, if one runs.
pub fn running_opsd(config: &Config) -> Option<OpsdRecord> {
    read_record::<OpsdRecord>(&opsd_record_path(config)).filter(|record| record.process.is_alive())
}

/// Records this process as the `opsd up` of `config`'s data directory; refuses when another
/// one runs there (two would fight over the same routers and releases).
pub fn claim_data_directory(config: &Config, api_addr: std::net::SocketAddr) -> anyhow::Result<()> {
    if let Some(other) = running_opsd(config) {
        if other.process.pid != std::process::id() {
            anyhow::bail!(
                "another opsd (pid {}, API http://{}) already runs on the data directory {}; \
                 stop it first (opsd down)",
                other.process.pid,
                other.api_addr,
                config.data_dir.display()
            );
        }
    }
    let me = ProcessIdentity::of(std::process::id())
        .context("cannot read this process's start time from /proc")?;
    let path = opsd_record_path(config);
    write_record(
        &path,
        &OpsdRecord {
            process: me,
            api_addr,
        },
    )
    .with_context(|| format!("cannot write {}", path.display()))
}

/// Forgets this process as the data directory's `opsd up` (on a clean stop).
pub fn release_data_directory(config: &Config) {
    remove_record(&opsd_record_path(config));
}

/// `opsd down`: stops the running `opsd up` (SIGTERM; it stops its routers and releases; SIGKILL
/// after `timeout`), then whatever a killed opsd left running. Returns what it did, one line each.
pub async fn down(config: &Config, timeout: Duration) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    if let Some(opsd) = running_opsd(config) {
        let pid = opsd.process.pid;
        // SAFETY: kill has no memory-safety preconditions; the pid was just checked to be the
        // recorded process (same start time).
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
        if opsd.process.wait_gone(timeout).await {
            done.push(format!("stopped opsd (pid {pid})"));
        } else {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            opsd.process.wait_gone(Duration::from_secs(5)).await;
            done.push(format!(
                "opsd (pid {pid}) did not stop within {} s and was killed",
                timeout.as_secs()
            ));
        }
    }
    let setup = fail_static_setup(config)?;
    for stopped in stop_left_running(&setup, RELEASE_STOP_GRACE).await {
        done.push(format!("stopped the {stopped} left running"));
    }
    remove_record(&opsd_record_path(config));
    if done.is_empty() {
        done.push(format!("nothing runs from {}", config.data_dir.display()));
    }
    Ok(done)
}

/// `opsd router`: logs as JSON to stderr (into the router's log file) and serves until stopped.
pub async fn serve_router(options: RouterProcessOptions) -> anyhow::Result<()> {
    crate::up::init_logging();
    let service = options.service.clone();
    router_process::serve(options)
        .await
        .with_context(|| format!("the router of {service} failed"))
}
