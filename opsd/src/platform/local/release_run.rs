//! One run of a release under the supervisor: its state ([`RunState`]), everything needed to
//! start and restart its child ([`LaunchPlan`]: command, environment, log, record), and the task
//! that watches the child, stops it on request and restarts it after a crash ([`supervise`]).
//!
//! invariant: a child that outlives opsd is recorded as soon as it is spawned and its record is
//! removed once the release no longer runs, so a restarted opsd finds exactly the children left.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::process_records::{remove_record, write_record, ProcessIdentity};
use super::release_process::{
    confine_child, own_process_group, spawn_from_lasting_thread, ReleaseProcess,
};
use super::release_records::{fingerprint, record_path, ReleaseRecord};
use super::supervisor::{release_environment, ManagedRelease, RestartPolicy, PORT_TOKEN};
use crate::platform::secrets::Secrets;
use crate::platform::PlatformError;

/// A restarted release that stays up this long has its restart count reset.
const STABLE_RUN: Duration = Duration::from_secs(60);
/// How much of the end of a release's log goes into a start error.
const LOG_TAIL_BYTES: u64 = 4096;
const LOG_TAIL_LINES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    /// Not running: never started, or stopped on request.
    Stopped,
    /// A child runs but has not answered its health check yet.
    Starting,
    /// The release became ready; its child runs or is being restarted after a crash.
    Ready,
    /// The child exited and will not be restarted; the text says why.
    Exited(String),
}

#[derive(Debug, Clone)]
pub(super) struct RunState {
    pub(super) phase: Phase,
    pub(super) port: u16,
    pub(super) pid: Option<u32>,
    pub(super) restarts: u32,
    /// Every exit of a ready child that was not asked for, across the release's runs.
    pub(super) crashes: u64,
}

impl RunState {
    pub(super) fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Starting | Phase::Ready)
    }
}

pub(super) struct RunHandle {
    /// Asks the supervising task to stop the child with this grace period; dropping it kills the
    /// child at once.
    pub(super) stop: oneshot::Sender<Duration>,
    pub(super) task: JoinHandle<()>,
}

impl RunHandle {
    pub(super) async fn stop(self, grace: Duration, release_id: &str) {
        // The task may already have ended (the child exited for good): then there is no receiver.
        let _ = self.stop.send(grace);
        if let Err(error) = self.task.await {
            tracing::error!(release = %release_id, error = %error, "release supervising task failed");
        }
    }
}

/// Everything needed to start (and restart) one release's child.
pub(super) struct LaunchPlan {
    release_id: String,
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    working_dir: Option<PathBuf>,
    log_path: PathBuf,
    restart: RestartPolicy,
    port: u16,
    /// Where the current child's output starts in the log.
    log_offset: u64,
    /// Where the running child is recorded when it outlives opsd, with its fingerprint.
    record: Option<(PathBuf, String)>,
}

impl LaunchPlan {
    pub(super) fn new(
        release: &ManagedRelease,
        port: u16,
        secrets: &Secrets,
        records: Option<&Path>,
    ) -> Result<LaunchPlan, PlatformError> {
        let port_text = port.to_string();
        let mut words = release
            .config
            .command
            .iter()
            .map(|word| word.replace(PORT_TOKEN, &port_text));
        let program = words.next().unwrap_or_default();
        let args = words.collect();
        let mut env =
            release_environment(&release.config, &release.spec, secrets).map_err(|reason| {
                PlatformError::Start {
                    release: release.id.clone(),
                    reason,
                }
            })?;
        env.insert("PORT".to_string(), port_text);
        Ok(LaunchPlan {
            release_id: release.id.clone(),
            program,
            args,
            env,
            working_dir: release.config.working_dir.clone(),
            log_path: release.log_path.clone(),
            restart: release.config.restart.clone(),
            port,
            log_offset: 0,
            record: records.map(|dir| {
                (
                    record_path(dir, &release.id),
                    fingerprint(&release.config, &release.spec),
                )
            }),
        })
    }

    fn start_error(&self, reason: String) -> PlatformError {
        PlatformError::Start {
            release: self.release_id.clone(),
            reason,
        }
    }

    /// Starts a child writing to the release's log.
    pub(super) async fn spawn(&mut self) -> Result<Child, PlatformError> {
        let (stdout, stderr) = self.open_log().map_err(|error| {
            self.start_error(format!(
                "could not open the log {}: {error}",
                self.log_path.display()
            ))
        })?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(self.record.is_none());
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        if self.record.is_some() {
            own_process_group(&mut command);
        } else {
            confine_child(&mut command);
        }
        let child = spawn_from_lasting_thread(command).await.map_err(|error| {
            self.start_error(format!("could not run {}: {error}", self.program))
        })?;
        self.write_record(child.id());
        Ok(child)
    }

    /// Records the child that now runs the release (when releases outlive opsd).
    fn write_record(&self, pid: Option<u32>) {
        let Some((path, fingerprint)) = &self.record else {
            return;
        };
        let Some(process) = pid.and_then(ProcessIdentity::of) else {
            return;
        };
        let record = ReleaseRecord {
            release_id: self.release_id.clone(),
            fingerprint: fingerprint.clone(),
            process,
            port: self.port,
        };
        if let Err(error) = write_record(path, &record) {
            tracing::error!(release = %self.release_id, path = %path.display(), error = %error, "cannot record a release process; a restarted opsd will not re-adopt it");
        }
    }

    /// Forgets the recorded child once the release no longer runs.
    fn forget_record(&self) {
        if let Some((path, _)) = &self.record {
            remove_record(path);
        }
    }

    /// Opens the log for appending, marks where this run starts, and returns two handles to it.
    fn open_log(&mut self) -> std::io::Result<(std::fs::File, std::fs::File)> {
        if let Some(dir) = self.log_path.parent() {
            crate::private_files::ensure_private_dir(dir)?;
        }
        let mut file = crate::private_files::open_private_append(&self.log_path)?;
        writeln!(
            file,
            "==== opsd: starting {} on port {} at {} ====",
            self.release_id,
            self.port,
            chrono::Utc::now().to_rfc3339()
        )?;
        self.log_offset = file.metadata()?.len();
        let second = file.try_clone()?;
        Ok((file, second))
    }

    /// The last lines the current child wrote.
    pub(super) fn log_tail(&self) -> String {
        match read_tail(&self.log_path, self.log_offset) {
            Ok(tail) if tail.trim().is_empty() => "(it wrote nothing)".to_string(),
            Ok(tail) => tail,
            Err(error) => format!("(could not read {}: {error})", self.log_path.display()),
        }
    }
}

fn read_tail(path: &Path, run_start: u64) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let length = file.metadata()?.len();
    let from = run_start.max(length.saturating_sub(LOG_TAIL_BYTES));
    file.seek(SeekFrom::Start(from))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let keep = lines.len().saturating_sub(LOG_TAIL_LINES);
    Ok(lines[keep..].join("\n"))
}

/// Watches one release's child: stops it on request, kills it when the request channel is
/// dropped, and restarts it after a crash as its restart policy allows.
pub(super) async fn supervise(
    mut process: ReleaseProcess,
    mut plan: LaunchPlan,
    state: Arc<watch::Sender<RunState>>,
    mut stop_requests: oneshot::Receiver<Duration>,
) {
    let mut started_at = Instant::now();
    loop {
        let exit = tokio::select! {
            request = &mut stop_requests => {
                // A dropped sender means the supervisor itself is gone: kill without grace.
                let grace = request.unwrap_or(Duration::ZERO);
                process.terminate(grace, &plan.release_id).await;
                plan.forget_record();
                state.send_modify(|state| {
                    state.phase = Phase::Stopped;
                    state.pid = None;
                });
                return;
            }
            exit = process.wait() => exit,
        };
        let current = state.borrow().clone();
        if current.phase == Phase::Ready {
            state.send_modify(|state| state.crashes = state.crashes.saturating_add(1));
        }
        if current.phase != Phase::Ready {
            let reason = format!(
                "it {exit} before becoming ready; last lines of {}:\n{}",
                plan.log_path.display(),
                plan.log_tail()
            );
            tracing::warn!(release = %plan.release_id, exit = %exit, "release exited while starting");
            plan.forget_record();
            state.send_modify(|state| {
                state.phase = Phase::Exited(reason);
                state.pid = None;
            });
            return;
        }
        let restarts = if started_at.elapsed() >= STABLE_RUN {
            0
        } else {
            current.restarts
        };
        if restarts >= plan.restart.max_restarts {
            tracing::error!(release = %plan.release_id, exit = %exit, restarts, "release crashed and has used up its restarts");
            let reason = format!(
                "it {exit} after {restarts} restarts; last lines of {}:\n{}",
                plan.log_path.display(),
                plan.log_tail()
            );
            plan.forget_record();
            state.send_modify(|state| {
                state.phase = Phase::Exited(reason);
                state.pid = None;
            });
            return;
        }
        let attempt = restarts + 1;
        tracing::warn!(
            release = %plan.release_id,
            exit = %exit,
            attempt,
            max_restarts = plan.restart.max_restarts,
            backoff_ms = plan.restart.backoff.as_millis() as u64,
            "release crashed; restarting"
        );
        state.send_modify(|state| {
            state.pid = None;
            state.restarts = attempt;
        });
        tokio::select! {
            _ = &mut stop_requests => {
                plan.forget_record();
                state.send_modify(|state| state.phase = Phase::Stopped);
                return;
            }
            _ = tokio::time::sleep(plan.restart.backoff) => {}
        }
        match plan.spawn().await {
            Ok(restarted) => {
                let pid = restarted.id();
                process = ReleaseProcess::Child(restarted);
                started_at = Instant::now();
                tracing::info!(release = %plan.release_id, pid = pid.unwrap_or(0), port = plan.port, "release restarted");
                state.send_modify(|state| state.pid = pid);
            }
            Err(error) => {
                tracing::error!(release = %plan.release_id, error = %error, "release could not be restarted");
                plan.forget_record();
                state.send_modify(|state| {
                    state.phase = Phase::Exited(error.to_string());
                    state.pid = None;
                });
                return;
            }
        }
    }
}
