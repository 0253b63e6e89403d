//! The local supervisor: runs each release of a service as a child process on its own loopback
//! port, waits for its health check, restarts it when it crashes, and stops it.
//!
//! Two modes. By default children never outlive opsd: they are killed when their handle is
//! dropped, sit in their own process group, and on Linux get SIGKILL from the kernel when opsd
//! dies (even by SIGKILL). With release records (`opsd up`, [`Supervisor::with_release_records`])
//! they outlive opsd so the data plane fails static: each one's pid, start time and port are
//! recorded, a restarted opsd re-adopts the ones it asks for again, and
//! [`Supervisor::stop_unclaimed`] stops the rest.
//!
//! invariant: a release is re-adopted only when its recorded process still runs, was started
//! exactly as this release would be (same fingerprint) and passes its health check.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::process_records::{file_name_safe, read_record, read_records, remove_record};
use super::release_process::{health_url, pick_free_port, probe, ReleaseProcess};
use super::release_records::{fingerprint, record_path, superseded_record_path, ReleaseRecord};
use super::release_run::{supervise, LaunchPlan, Phase, RunHandle, RunState};
use crate::platform::secrets::Secrets;
use crate::platform::{HealthStatus, PlatformError, ReleaseRunner, ReleaseSpec, TaskOutput};

/// The path probed for readiness and health unless a service names another.
pub const DEFAULT_HEALTH_PATH: &str = "/v1/health";
/// How long a starting release may take to answer its health check.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping release may take to exit after SIGTERM before it gets SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);
/// The timeout of one health probe.
pub const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The token in a command line that is replaced by the release's port.
pub const PORT_TOKEN: &str = "{port}";

/// Pause between two readiness probes of a starting release.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How often and how fast a crashed release is started again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Restarts allowed before the release is left down (the count resets after a minute up).
    pub max_restarts: u32,
    /// Pause before each restart.
    pub backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 3,
            backoff: Duration::from_secs(1),
        }
    }
}

/// How one service runs on the local platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalServiceConfig {
    pub name: String,
    /// Program and arguments; `{port}` in any of them becomes the release's port.
    pub command: Vec<String>,
    /// Environment of every release, under the release's own environment and `PORT`.
    pub base_env: BTreeMap<String, String>,
    /// Keys every release takes from a secret (key → secret name), read when a release starts.
    pub env_from: BTreeMap<String, String>,
    /// Path answered with 2xx once a release is ready and while it is healthy.
    pub health_path: String,
    pub ready_timeout: Duration,
    pub working_dir: Option<PathBuf>,
    pub restart: RestartPolicy,
    /// Request paths (exact match) the router forwards but does not count.
    pub excluded_paths: Vec<String>,
}

impl LocalServiceConfig {
    /// A service with the default health path, ready timeout and restart policy.
    pub fn new(name: impl Into<String>, command: Vec<String>) -> LocalServiceConfig {
        LocalServiceConfig {
            name: name.into(),
            command,
            base_env: BTreeMap::new(),
            env_from: BTreeMap::new(),
            health_path: DEFAULT_HEALTH_PATH.to_string(),
            ready_timeout: DEFAULT_READY_TIMEOUT,
            working_dir: None,
            restart: RestartPolicy::default(),
            excluded_paths: Vec::new(),
        }
    }
}

/// Runs releases as local child processes. Cheap to clone; children are killed once the last
/// clone is dropped.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<SupervisorInner>,
}

struct SupervisorInner {
    services: HashMap<String, Arc<LocalServiceConfig>>,
    log_dir: PathBuf,
    stop_grace: Duration,
    http: reqwest::Client,
    releases: Mutex<HashMap<String, Arc<ManagedRelease>>>,
    secrets: Secrets,
    /// Where release processes that outlive opsd are recorded; `None`: they die with opsd.
    records: Option<PathBuf>,
    /// Set by [`Supervisor::stop_all`]: no release starts after it.
    closed: AtomicBool,
}

/// One release the supervisor has been asked to run, across its starts, crashes and stops.
pub(super) struct ManagedRelease {
    pub(super) spec: ReleaseSpec,
    pub(super) id: String,
    pub(super) config: Arc<LocalServiceConfig>,
    pub(super) log_path: PathBuf,
    state: Arc<watch::Sender<RunState>>,
    /// Serialises starts of this release.
    lifecycle: tokio::sync::Mutex<()>,
    /// The supervising task of the current run, if any.
    run: Mutex<Option<RunHandle>>,
}

impl Supervisor {
    /// A supervisor for `services`, writing each release's output to
    /// `<log_dir>/<service>-<version>.log`.
    pub fn new(
        services: Vec<LocalServiceConfig>,
        log_dir: impl Into<PathBuf>,
    ) -> Result<Supervisor, PlatformError> {
        let mut by_name = HashMap::new();
        for service in services {
            if service.command.is_empty() {
                return Err(configuration_error(format!(
                    "service {} has an empty command",
                    service.name
                )));
            }
            let name = service.name.clone();
            if by_name.insert(name.clone(), Arc::new(service)).is_some() {
                return Err(configuration_error(format!(
                    "service {name} is configured twice"
                )));
            }
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|error| configuration_error(format!("no HTTP client: {error}")))?;
        Ok(Supervisor {
            inner: Arc::new(SupervisorInner {
                services: by_name,
                log_dir: log_dir.into(),
                stop_grace: DEFAULT_STOP_GRACE,
                http,
                releases: Mutex::new(HashMap::new()),
                secrets: Secrets::default(),
                records: None,
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// Sets how long stopping releases get between SIGTERM and SIGKILL. Takes effect only on a
    /// supervisor not yet cloned (call it right after [`Supervisor::new`]).
    pub fn with_stop_grace(mut self, grace: Duration) -> Supervisor {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.stop_grace = grace;
        }
        self
    }

    /// Sets where `env_from` secrets are read. Takes effect only on a supervisor not yet cloned
    /// (call it right after [`Supervisor::new`]).
    pub fn with_secrets(mut self, secrets: Secrets) -> Supervisor {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.secrets = secrets;
        }
        self
    }

    /// Lets releases outlive opsd, recorded in `dir`, and re-adopts recorded ones when they are
    /// asked for again. Takes effect only on a supervisor not yet cloned.
    pub fn with_release_records(mut self, dir: impl Into<PathBuf>) -> Supervisor {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.records = Some(dir.into());
        }
        self
    }

    /// Stops every recorded release process this supervisor has not re-adopted, except those
    /// in `keep` (releases opsd will ask for shortly); returns the ids stopped. A restarted opsd
    /// calls this once it knows which releases it wants, so nothing it forgot keeps running.
    pub async fn stop_unclaimed(&self, keep: &[String]) -> Vec<String> {
        let Some(dir) = &self.inner.records else {
            return Vec::new();
        };
        let mut stopped = Vec::new();
        for (path, record) in read_records::<ReleaseRecord>(dir) {
            let live_pid = self.live_pid(&record.release_id);
            let adopted = live_pid == Some(record.process.pid);
            let asked_for_later = live_pid.is_none() && keep.contains(&record.release_id);
            if adopted || asked_for_later {
                continue;
            }
            if record.process.is_alive() {
                tracing::info!(release = %record.release_id, pid = record.process.pid, "stopping a release left running that opsd no longer runs");
                record.process.stop(self.inner.stop_grace).await;
                stopped.push(record.release_id.clone());
            }
            remove_record(&path);
        }
        stopped
    }

    /// Stops the processes left running by an earlier opsd that could not be re-adopted and
    /// whose release now runs in a replacement (call once the router knows the replacement).
    pub async fn stop_superseded(&self) {
        let Some(dir) = &self.inner.records else {
            return;
        };
        for (path, record) in read_records::<ReleaseRecord>(dir) {
            let replaced = self
                .live_pid(&record.release_id)
                .is_some_and(|pid| pid != record.process.pid);
            if replaced {
                tracing::info!(release = %record.release_id, pid = record.process.pid, "stopping the replaced process of a release");
                record.process.stop(self.inner.stop_grace).await;
                remove_record(&path);
            }
        }
    }

    /// Stops the recorded processes of `release_id` that this supervisor does not run.
    async fn stop_recorded(&self, release_id: &str) {
        let Some(dir) = &self.inner.records else {
            return;
        };
        let live = self.live_pid(release_id);
        for (path, record) in read_records::<ReleaseRecord>(dir) {
            if record.release_id != release_id || live == Some(record.process.pid) {
                continue;
            }
            if record.process.is_alive() {
                tracing::info!(release = %release_id, pid = record.process.pid, "stopping a process of the release left running by an earlier opsd");
                record.process.stop(self.inner.stop_grace).await;
            }
            remove_record(&path);
        }
    }

    fn live_pid(&self, release_id: &str) -> Option<u32> {
        let release = self.inner.release(release_id)?;
        let state = release.state.borrow();
        if state.is_live() {
            state.pid
        } else {
            None
        }
    }

    /// The loopback address of a live (starting or ready) release.
    pub fn address_of(&self, release_id: &str) -> Option<SocketAddr> {
        let state = self.inner.release(release_id)?.state.borrow().clone();
        state
            .is_live()
            .then(|| SocketAddr::from((Ipv4Addr::LOCALHOST, state.port)))
    }

    /// The process id of a live release's current child.
    pub fn pid_of(&self, release_id: &str) -> Option<u32> {
        let state = self.inner.release(release_id)?.state.borrow().clone();
        state.is_live().then_some(state.pid).flatten()
    }

    /// Resolves release ids to upstream addresses without keeping the supervisor alive.
    pub fn resolver(&self) -> impl Fn(&str) -> Option<SocketAddr> + Send + Sync + 'static {
        let supervisor: Weak<SupervisorInner> = Arc::downgrade(&self.inner);
        move |release_id: &str| {
            let inner = supervisor.upgrade()?;
            Supervisor { inner }.address_of(release_id)
        }
    }

    /// Stops every release: SIGTERM to all at once, then SIGKILL to those still up after the
    /// grace period; then any recorded process left by an earlier opsd. No release starts
    /// afterwards: a start asked for later is refused, and one already under way is waited for
    /// and stopped, so nothing a late caller (a reconciler still finishing its tick) launches
    /// outlives a deliberate stop.
    pub async fn stop_all(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let releases: Vec<Arc<ManagedRelease>> =
            lock(&self.inner.releases).values().cloned().collect();
        let mut stopping = Vec::new();
        for release in &releases {
            let handle = lock(&release.run).take();
            if let Some(handle) = handle {
                let _ = handle.stop.send(self.inner.stop_grace);
                stopping.push((release, handle.task));
            }
        }
        for (release, task) in stopping {
            if let Err(error) = task.await {
                tracing::error!(release = %release.id, error = %error, "release supervising task failed");
            }
            release.state.send_modify(|state| {
                state.phase = Phase::Stopped;
                state.pid = None;
            });
        }
        // A start under way holds its release's lifecycle lock until it ends: wait for it,
        // then stop what it started.
        for release in &releases {
            let _serialised = release.lifecycle.lock().await;
            let handle = lock(&release.run).take();
            if let Some(handle) = handle {
                handle.stop(self.inner.stop_grace, &release.id).await;
                release.state.send_modify(|state| {
                    state.phase = Phase::Stopped;
                    state.pid = None;
                });
            }
        }
        // Processes left by an earlier opsd and never re-adopted, or set aside.
        self.stop_unclaimed(&[]).await;
    }

    async fn start_release(&self, spec: &ReleaseSpec) -> Result<(), PlatformError> {
        let release = self.inner.release_entry(spec)?;
        let _serialised = release.lifecycle.lock().await;
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(PlatformError::Start {
                release: release.id.clone(),
                reason: "opsd has stopped its releases and is shutting down".to_string(),
            });
        }
        let current = release.state.borrow().clone();
        let has_run = lock(&release.run).is_some();
        let port = match current.phase {
            Phase::Ready if current.pid.is_some() => return Ok(()),
            // A crashed release being restarted, or a start whose caller gave up waiting.
            Phase::Ready | Phase::Starting if has_run => current.port,
            _ => match self.adopt(&release).await {
                Some(port) => port,
                None => self.launch(&release).await?,
            },
        };
        match self.wait_until_ready(&release, port).await {
            Ok(()) => {
                tracing::info!(release = %release.id, port, "release is ready");
                Ok(())
            }
            Err(error) => {
                let handle = lock(&release.run).take();
                if let Some(handle) = handle {
                    handle.stop(self.inner.stop_grace, &release.id).await;
                }
                if let PlatformError::NotReady { .. } = error {
                    release.state.send_modify(|state| {
                        state.phase = Phase::Exited(error.to_string());
                        state.pid = None;
                    });
                }
                Err(error)
            }
        }
    }

    /// Takes over the recorded process of `release` left running by an earlier opsd, if it is
    /// still the same process, started the same way, and healthy; returns its port. A recorded
    /// process that fails any of these is stopped.
    async fn adopt(&self, release: &Arc<ManagedRelease>) -> Option<u16> {
        let dir = self.inner.records.as_ref()?;
        let path = record_path(dir, &release.id);
        let record: ReleaseRecord = read_record(&path)?;
        let same_start = record.release_id == release.id
            && record.fingerprint == fingerprint(&release.config, &release.spec);
        let alive = record.process.is_alive();
        let healthy = alive
            && same_start
            && probe(
                &self.inner.http,
                &health_url(record.port, &release.config.health_path),
                HEALTH_PROBE_TIMEOUT,
            )
            .await
            .is_ok();
        let plan = match LaunchPlan::new(release, record.port, &self.inner.secrets, Some(dir)) {
            Ok(plan) if healthy => plan,
            _ => {
                if alive {
                    // Make before break: it keeps serving until its replacement is ready and
                    // the router knows it ([`Supervisor::stop_superseded`]).
                    tracing::warn!(release = %release.id, pid = record.process.pid, same_start, "a release left running cannot be re-adopted (started differently or unhealthy); starting a replacement");
                    let superseded = superseded_record_path(dir, &release.id, record.process.pid);
                    if let Err(error) = std::fs::rename(&path, &superseded) {
                        tracing::warn!(release = %release.id, error = %error, "cannot set aside a release record; stopping its process now");
                        record.process.stop(self.inner.stop_grace).await;
                    }
                }
                remove_record(&path);
                return None;
            }
        };
        tracing::info!(release = %release.id, pid = record.process.pid, port = record.port, "re-adopted a release left running by the previous opsd");
        let crashes = release.state.borrow().crashes;
        release.state.send_replace(RunState {
            phase: Phase::Ready,
            port: record.port,
            pid: Some(record.process.pid),
            restarts: 0,
            crashes,
        });
        let (stop, stop_requests) = oneshot::channel();
        let task = tokio::spawn(supervise(
            ReleaseProcess::Adopted(record.process),
            plan,
            Arc::clone(&release.state),
            stop_requests,
        ));
        *lock(&release.run) = Some(RunHandle { stop, task });
        Some(record.port)
    }

    /// Starts a fresh child on a fresh port and the task that supervises it.
    async fn launch(&self, release: &Arc<ManagedRelease>) -> Result<u16, PlatformError> {
        let previous = lock(&release.run).take();
        if let Some(previous) = previous {
            previous.stop(Duration::ZERO, &release.id).await;
        }
        let port = pick_free_port().map_err(|error| PlatformError::Start {
            release: release.id.clone(),
            reason: format!("no free loopback port: {error}"),
        })?;
        let mut launch = LaunchPlan::new(
            release,
            port,
            &self.inner.secrets,
            self.inner.records.as_deref(),
        )?;
        let child = launch.spawn().await?;
        tracing::info!(release = %release.id, port, pid = child.id().unwrap_or(0), log = %release.log_path.display(), "release started");
        let crashes = release.state.borrow().crashes;
        release.state.send_replace(RunState {
            phase: Phase::Starting,
            port,
            pid: child.id(),
            restarts: 0,
            crashes,
        });
        let (stop, stop_requests) = oneshot::channel();
        let task = tokio::spawn(supervise(
            ReleaseProcess::Child(child),
            launch,
            Arc::clone(&release.state),
            stop_requests,
        ));
        *lock(&release.run) = Some(RunHandle { stop, task });
        Ok(port)
    }

    /// Polls the health check until it answers 2xx, the child exits, or the ready timeout passes.
    async fn wait_until_ready(
        &self,
        release: &ManagedRelease,
        port: u16,
    ) -> Result<(), PlatformError> {
        let timeout = release.config.ready_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let url = health_url(port, &release.config.health_path);
        let mut updates = release.state.subscribe();
        let mut last_error = String::from("the health check has not answered yet");
        let mut failed_before = false;
        loop {
            match &updates.borrow_and_update().phase {
                Phase::Exited(reason) => {
                    return Err(PlatformError::Start {
                        release: release.id.clone(),
                        reason: reason.clone(),
                    })
                }
                Phase::Stopped => {
                    return Err(PlatformError::Start {
                        release: release.id.clone(),
                        reason: "it was stopped while starting".to_string(),
                    })
                }
                Phase::Starting | Phase::Ready => {}
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return Err(PlatformError::NotReady {
                    release: release.id.clone(),
                    waited_secs: timeout.as_secs_f64().ceil() as u64,
                    last_error,
                });
            }
            let probe_timeout = remaining.min(HEALTH_PROBE_TIMEOUT);
            match probe(&self.inner.http, &url, probe_timeout).await {
                Ok(()) => {
                    release.state.send_if_modified(|state| {
                        let promote = state.phase == Phase::Starting;
                        if promote {
                            state.phase = Phase::Ready;
                        }
                        promote
                    });
                    if release.state.borrow().phase == Phase::Ready {
                        return Ok(());
                    }
                }
                Err(failure) => {
                    // A probe cut short by the deadline says less than the failure before it.
                    let cut_short = failure.timed_out && probe_timeout < HEALTH_PROBE_TIMEOUT;
                    if !cut_short || !failed_before {
                        last_error = failure.detail;
                    }
                    failed_before = true;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(READY_POLL_INTERVAL) => {}
                _ = updates.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

impl SupervisorInner {
    fn release(&self, release_id: &str) -> Option<Arc<ManagedRelease>> {
        lock(&self.releases).get(release_id).cloned()
    }

    fn release_entry(&self, spec: &ReleaseSpec) -> Result<Arc<ManagedRelease>, PlatformError> {
        let id = spec.release_id();
        let config = self.services.get(&spec.service).cloned().ok_or_else(|| {
            PlatformError::UnknownRelease {
                release: id.clone(),
            }
        })?;
        let mut releases = lock(&self.releases);
        let release = releases.entry(id.clone()).or_insert_with(|| {
            let log_path = self.log_dir.join(format!(
                "{}-{}.log",
                file_name_safe(&spec.service),
                file_name_safe(&spec.version)
            ));
            let (state, _) = watch::channel(RunState {
                phase: Phase::Stopped,
                port: 0,
                pid: None,
                restarts: 0,
                crashes: 0,
            });
            Arc::new(ManagedRelease {
                spec: spec.clone(),
                id,
                config,
                log_path,
                state: Arc::new(state),
                lifecycle: tokio::sync::Mutex::new(()),
                run: Mutex::new(None),
            })
        });
        Ok(Arc::clone(release))
    }
}

#[async_trait::async_trait]
impl ReleaseRunner for Supervisor {
    async fn ensure_running(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.start_release(release).await
    }

    async fn stop(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        // A process of this release left by an earlier opsd and not re-adopted (or set aside)
        // is stopped too.
        self.stop_recorded(&release.release_id()).await;
        let Some(managed) = self.inner.release(&release.release_id()) else {
            return Ok(());
        };
        let handle = lock(&managed.run).take();
        if let Some(handle) = handle {
            handle.stop(self.inner.stop_grace, &managed.id).await;
            tracing::info!(release = %managed.id, "release stopped");
        }
        managed.state.send_modify(|state| {
            state.phase = Phase::Stopped;
            state.pid = None;
        });
        Ok(())
    }

    async fn probe_health(&self, release: &ReleaseSpec) -> HealthStatus {
        let Some(managed) = self.inner.release(&release.release_id()) else {
            return HealthStatus::Unhealthy("not running".to_string());
        };
        let state = managed.state.borrow().clone();
        if !state.is_live() {
            return HealthStatus::Unhealthy("not running".to_string());
        }
        let url = health_url(state.port, &managed.config.health_path);
        match probe(&self.inner.http, &url, HEALTH_PROBE_TIMEOUT).await {
            Ok(()) => HealthStatus::Healthy,
            Err(failure) => HealthStatus::Unhealthy(failure.detail),
        }
    }

    async fn crashes(&self, release: &ReleaseSpec) -> u64 {
        self.inner
            .release(&release.release_id())
            .map_or(0, |managed| managed.state.borrow().crashes)
    }

    async fn run_task(
        &self,
        release: &ReleaseSpec,
        args: &[String],
        timeout: Duration,
    ) -> Result<TaskOutput, PlatformError> {
        let config = self.inner.services.get(&release.service).ok_or_else(|| {
            PlatformError::UnknownRelease {
                release: release.release_id(),
            }
        })?;
        let env = release_environment(config, release, &self.inner.secrets).map_err(|reason| {
            PlatformError::Start {
                release: release.release_id(),
                reason,
            }
        })?;
        super::release_task::run(config, release, env, args, timeout).await
    }

    async fn running(&self) -> Vec<ReleaseSpec> {
        let mut running: Vec<ReleaseSpec> = lock(&self.inner.releases)
            .values()
            .filter(|release| release.state.borrow().is_live())
            .map(|release| release.spec.clone())
            .collect();
        running.sort_by_key(ReleaseSpec::release_id);
        running
    }
}

/// A release's environment: the service's, its secrets (read now), then the release's own.
pub(super) fn release_environment(
    config: &LocalServiceConfig,
    spec: &ReleaseSpec,
    secrets: &Secrets,
) -> Result<BTreeMap<String, String>, String> {
    let mut env_from = config.env_from.clone();
    env_from.extend(spec.env_from.clone());
    let secret_values = secrets
        .resolve(&env_from)
        .map_err(|error| error.to_string())?;
    let mut env = config.base_env.clone();
    env.extend(secret_values);
    env.extend(spec.env.clone());
    Ok(env)
}

fn configuration_error(message: String) -> PlatformError {
    PlatformError::Operation {
        operation: "configure the local supervisor".to_string(),
        message,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Stdio;
    use std::time::Instant;

    use tokio::process::Command;

    use super::*;
    use crate::platform::local::test_support::{
        eventually, port_open, process_gone, steno_service,
    };

    fn release(version: &str, env: &[(&str, &str)]) -> ReleaseSpec {
        ReleaseSpec {
            service: "steno".to_string(),
            version: version.to_string(),
            env: env
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            env_from: Default::default(),
        }
    }

    fn supervisor(config: LocalServiceConfig, log_dir: &Path) -> Supervisor {
        Supervisor::new(vec![config], log_dir)
            .unwrap()
            .with_stop_grace(Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_release_starts_becomes_healthy_and_stops() {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let supervisor = supervisor(steno_service("steno", data.path()), logs.path());
        let v1 = release("v1", &[]);

        supervisor.ensure_running(&v1).await.unwrap();
        let address = supervisor.address_of("steno@v1").unwrap();
        let pid = supervisor.pid_of("steno@v1").unwrap();
        assert!(address.ip().is_loopback());
        assert_eq!(supervisor.probe_health(&v1).await, HealthStatus::Healthy);
        assert_eq!(supervisor.running().await, vec![v1.clone()]);
        assert!(logs.path().join("steno-v1.log").exists());

        // Idempotent: the same child keeps running.
        supervisor.ensure_running(&v1).await.unwrap();
        assert_eq!(supervisor.pid_of("steno@v1"), Some(pid));

        supervisor.stop(&v1).await.unwrap();
        assert!(!port_open(address.port()).await);
        assert!(process_gone(pid));
        assert_eq!(supervisor.address_of("steno@v1"), None);
        assert!(supervisor.running().await.is_empty());
        assert!(matches!(
            supervisor.probe_health(&v1).await,
            HealthStatus::Unhealthy(_)
        ));
        supervisor.stop(&v1).await.unwrap();
    }

    #[tokio::test]
    async fn a_release_whose_health_never_passes_is_not_ready() {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let mut config = steno_service("steno", data.path());
        config.ready_timeout = Duration::from_millis(1500);
        let supervisor = supervisor(config, logs.path());
        let sick = release("sick", &[("STENO_CHAOS_FAIL_HEALTH", "true")]);

        let started = Instant::now();
        let error = supervisor.ensure_running(&sick).await.unwrap_err();
        match &error {
            PlatformError::NotReady {
                release,
                waited_secs,
                last_error,
            } => {
                assert_eq!(release, "steno@sick");
                assert_eq!(*waited_secs, 2);
                assert!(last_error.contains("503"), "{last_error}");
            }
            other => panic!("expected NotReady, got {other}"),
        }
        assert!(started.elapsed() < Duration::from_secs(8));
        // A release that never became ready is not left running.
        assert!(supervisor.running().await.is_empty());
        assert_eq!(supervisor.address_of("steno@sick"), None);
    }

    #[tokio::test]
    async fn a_release_that_exits_at_once_reports_its_log_tail() {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let supervisor = supervisor(steno_service("steno", data.path()), logs.path());
        let broken = release("broken", &[("STENO_CHAOS_ERROR_RATE", "lots")]);

        let started = Instant::now();
        let error = supervisor.ensure_running(&broken).await.unwrap_err();
        match &error {
            PlatformError::Start { release, reason } => {
                assert_eq!(release, "steno@broken");
                assert!(reason.contains("before becoming ready"), "{reason}");
                assert!(reason.contains("STENO_CHAOS_ERROR_RATE"), "{reason}");
            }
            other => panic!("expected a start error, got {other}"),
        }
        // Immediate, not after the ready timeout.
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(supervisor.running().await.is_empty());

        let missing = LocalServiceConfig::new("ghost", vec!["/nonexistent/ghost".to_string()]);
        let supervisor = Supervisor::new(vec![missing], logs.path()).unwrap();
        let ghost = ReleaseSpec {
            service: "ghost".to_string(),
            version: "v1".to_string(),
            env: BTreeMap::new(),
            env_from: Default::default(),
        };
        let error = supervisor.ensure_running(&ghost).await.unwrap_err();
        assert!(
            matches!(&error, PlatformError::Start { reason, .. } if reason.contains("/nonexistent/ghost")),
            "{error}"
        );
        let unknown = release("v1", &[]);
        assert!(matches!(
            supervisor.ensure_running(&unknown).await,
            Err(PlatformError::UnknownRelease { .. })
        ));
    }

    #[tokio::test]
    async fn a_crashed_release_is_restarted_until_its_restarts_run_out() {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let mut config = steno_service("steno", data.path());
        config.restart.max_restarts = 1;
        let supervisor = supervisor(config, logs.path());
        let v1 = release("v1", &[]);
        supervisor.ensure_running(&v1).await.unwrap();
        let first_pid = supervisor.pid_of("steno@v1").unwrap();

        kill_hard(first_pid);
        eventually(
            "the release runs again",
            Duration::from_secs(15),
            async || {
                supervisor
                    .pid_of("steno@v1")
                    .is_some_and(|pid| pid != first_pid)
                    && supervisor.probe_health(&v1).await == HealthStatus::Healthy
            },
        )
        .await;
        // A supervisor-level restart does not need ensure_running to be called again.
        let second_pid = supervisor.pid_of("steno@v1").unwrap();
        assert_eq!(supervisor.crashes(&v1).await, 1, "the crash is counted");

        kill_hard(second_pid);
        eventually(
            "the release is left down",
            Duration::from_secs(10),
            async || supervisor.running().await.is_empty(),
        )
        .await;
        assert_eq!(supervisor.address_of("steno@v1"), None);

        // ensure_running starts a release whose restarts ran out afresh; its crashes still count.
        supervisor.ensure_running(&v1).await.unwrap();
        assert_eq!(supervisor.probe_health(&v1).await, HealthStatus::Healthy);
        assert_eq!(supervisor.crashes(&v1).await, 2);
        supervisor.stop_all().await;
        assert_eq!(supervisor.crashes(&v1).await, 2, "a stop is not a crash");
        assert!(supervisor.running().await.is_empty());
    }

    #[tokio::test]
    async fn nothing_starts_once_every_release_was_stopped() {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let supervisor = supervisor(steno_service("steno", data.path()), logs.path());
        // A start under way when everything stops is stopped too, not left running.
        let starting = {
            let supervisor = supervisor.clone();
            tokio::spawn(async move { supervisor.ensure_running(&release("v1", &[])).await })
        };
        eventually(
            "the first child is spawned",
            Duration::from_secs(10),
            async || supervisor.pid_of("steno@v1").is_some(),
        )
        .await;
        let first = supervisor.pid_of("steno@v1").unwrap();
        supervisor.stop_all().await;
        let _ = starting.await.unwrap();
        assert!(
            process_gone(first),
            "the release started during the stop is gone"
        );

        // A start asked for afterwards (a reconciler still finishing its tick) is refused.
        let refused = supervisor
            .ensure_running(&release("v2", &[]))
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("shutting down"), "{refused}");
        assert_eq!(supervisor.pid_of("steno@v2"), None);
        assert!(supervisor.running().await.is_empty());
    }

    #[tokio::test]
    async fn children_die_with_the_supervisor() {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let supervisor = supervisor(steno_service("steno", data.path()), logs.path());
        supervisor
            .ensure_running(&release("v1", &[]))
            .await
            .unwrap();
        let pid = supervisor.pid_of("steno@v1").unwrap();
        let port = supervisor.address_of("steno@v1").unwrap().port();

        drop(supervisor);
        eventually("the child is gone", Duration::from_secs(5), async || {
            process_gone(pid)
        })
        .await;
        assert!(!port_open(port).await);
    }

    /// Set in the environment of the helper run by `children_die_when_opsd_is_killed`.
    const ORPHAN_HELPER_DATA_DIR: &str = "OPSD_TEST_ORPHAN_HELPER_DATA_DIR";

    /// Plays opsd for `children_die_when_opsd_is_killed`: starts Steno, prints its pid, waits to
    /// be killed. Does nothing when run on its own.
    #[test]
    #[ignore = "a helper process of children_die_when_opsd_is_killed"]
    fn orphan_helper() {
        let Some(data_dir) = std::env::var_os(ORPHAN_HELPER_DATA_DIR) else {
            return;
        };
        let data_dir = PathBuf::from(data_dir);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let supervisor = supervisor(steno_service("steno", &data_dir), &data_dir);
            supervisor
                .ensure_running(&release("v1", &[]))
                .await
                .unwrap();
            let pid = supervisor.pid_of("steno@v1").unwrap();
            let port = supervisor.address_of("steno@v1").unwrap().port();
            println!("STENO_CHILD pid={pid} port={port}");
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
    }

    #[tokio::test]
    async fn children_die_when_opsd_is_killed() {
        use tokio::io::AsyncBufReadExt;

        let data = tempfile::tempdir().unwrap();
        let mut helper = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "platform::local::supervisor::tests::orphan_helper",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(ORPHAN_HELPER_DATA_DIR, data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(helper.stdout.take().unwrap()).lines();
        let announcement = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                // libtest prints the test's name on the same line first.
                if let Some((_, rest)) = line.split_once("STENO_CHILD ") {
                    return rest.to_string();
                }
            }
            panic!("the helper ended without starting steno");
        })
        .await
        .expect("the helper starts steno within 20 s");
        let field = |name: &str| -> u32 {
            announcement
                .split_whitespace()
                .find_map(|pair| pair.strip_prefix(name))
                .and_then(|value| value.parse().ok())
                .unwrap()
        };
        let (pid, port) = (field("pid="), field("port=") as u16);
        assert!(!process_gone(pid));

        helper.start_kill().unwrap();
        helper.wait().await.unwrap();
        // Its main thread turns zombie before the others exit and close its sockets.
        eventually(
            "the orphaned child is gone and its port closed",
            Duration::from_secs(5),
            async || process_gone(pid) && !port_open(port).await,
        )
        .await;
    }

    fn kill_hard(pid: u32) {
        let pid = libc::pid_t::try_from(pid).unwrap();
        // SAFETY: kill has no memory-safety preconditions; the pid is our live child.
        let result = unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!(result, 0);
    }
}
