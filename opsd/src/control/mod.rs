//! The daemon's control plane: it owns the active rollouts, runs the reconciler tick (observe the
//! platforms, ask the pure core what to do, execute, persist), and answers the API's requests
//! (deploy, operator commands, status, history).
//!
//! Level-triggered and restartable: all state that matters is in the store; after a restart the
//! active rollouts are reloaded and resumed, and every tick re-applies the traffic split the state
//! calls for, so a crash between a decision and its traffic shift is repaired on the next tick.
//!
//! The `Daemon` is split by what it does: `deploy` (requests that start or command rollouts),
//! `gates` (the gates a deploy passes), `observe` (what a tick reads from the platforms),
//! `reconcile` (the tick), `error_policy` (what a failed tick leads to), `settle` (the end of a
//! rollout), `checks` (smoke checks), `record` (timeline, decisions and audit), `views` (what the
//! API shows), `metrics` (the Prometheus exposition) and `production_watch` (alarm rules and the
//! stable release's health, watched all the time, rollout or not).

mod approvals;
mod checks;
mod decisions;
mod deploy;
mod error_policy;
mod freezes;
#[cfg(test)]
mod gate_tests;
mod gates;
mod maintenance;
mod metrics;
#[cfg(test)]
mod migration_tests;
mod migrations;
mod observe;
mod overview;
mod production_watch;
#[cfg(test)]
mod production_watch_tests;
mod reconcile;
#[cfg(test)]
mod reconcile_tests;
mod record;
mod restore;
mod retention;
mod runbooks;
mod settle;
mod views;

/// A daemon on the fake platform with an in-memory store, for tests outside this module.
#[cfg(test)]
pub(crate) async fn test_daemon() -> std::sync::Arc<Daemon> {
    reconcile_tests::world().await.daemon
}

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::config::{Config, ServiceConfig};
use crate::core::approval::Approval;
use crate::core::event::EventKind;
use crate::core::release_env::Fingerprinter;
use crate::core::rollout::{CheckState, OperatorCommand, RolloutState};
use crate::core::stable_health::StableHealth;
use crate::core::traffic::SecondSample;
use crate::notify::Notifier;
use crate::platform::factory::DatabasePlatforms;
use crate::platform::{PlatformError, ReleaseSpec, TrafficSplit};
use crate::store::{SampleRelease, Store, StoreError};

pub use checks::run_check;
pub use deploy::{DeployRequest, PlanChoice};
pub use maintenance::{MaintenanceRequest, StatusDocument};
pub use metrics::{Timings, METRICS_CONTENT_TYPE};
pub use overview::{Attention, GateView, LeaderView, Overview, ReleaseHealth, ServiceOverview};
pub use restore::{RestorePreview, RestoreRequest};
pub use views::{AlarmStatusView, DecisionView, RolloutView, ServiceStatus};

/// The platform capabilities the daemon drives.
pub use crate::platform::dispatch::PlatformSet as Platforms;

/// Who asked for something, for the audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub role: String,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            name: "opsd".into(),
            role: "system".into(),
        }
    }
}

/// Errors the API turns into HTTP answers.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown service {0:?}; the configured services are: {1}")]
    UnknownService(String, String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// A gate (DR drill, pre-deployment snapshot) refused the rollout.
    #[error("{0}")]
    GateClosed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

/// Where the daemon reads the time: the system clock, or a test's.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis()
    }
}

/// What the reconciler keeps in memory about an active rollout besides its stored state.
struct ActiveRollout {
    state: RolloutState,
    revision: i64,
    canary_start: Option<JoinHandle<Result<(), PlatformError>>>,
    canary_running: bool,
    last_probe_ms: i64,
    checks: Vec<(String, JoinHandle<CheckState>)>,
    commands: Vec<OperatorCommand>,
    /// Approvals given since the last tick, counted by the core.
    approvals: Vec<Approval>,
    /// The rollout's running schema migrations: its expand phase before the canary starts, or
    /// its contract migrations after a promotion.
    migration: Option<migrations::MigrationTask>,
    /// Set once a terminal rollout's traffic, stable release and loser are settled.
    finished: bool,
    /// Set once a terminal rollout is finished and its contract migrations, if any, have run.
    settled: bool,
    /// The last reconcile error, so a persisting one (like drift) is put on the timeline once.
    last_error: Option<String>,
    /// Set while the platform reports that someone else changed the traffic routing.
    traffic_drift: Option<String>,
    /// Seconds before this one are in the store's per-second samples of the rollout.
    samples_recorded_through: i64,
    /// Set when `state` moved on without a decision (the bake's progress) and is not stored
    /// yet: the end of the tick stores it with every other rollout's in one transaction.
    unsaved_state: bool,
    /// Per-second traffic read this tick, stored with the tick's progress.
    unsaved_samples: Vec<(SampleRelease, Vec<SecondSample>)>,
    /// What `samples_recorded_through` becomes once `unsaved_samples` are stored.
    samples_staged_through: i64,
    /// The seconds still counting as last stored: a second read again unchanged is not
    /// written again.
    samples_stored: Vec<(SampleRelease, SecondSample)>,
    /// When the rollout's progress was last stored (`Daemon::save_progress` stores it at most
    /// once per [`reconcile::PROGRESS_SAVE_PERIOD_MS`] unless the rollout ended).
    progress_saved_ms: i64,
}

pub struct Daemon {
    config: Config,
    store: Store,
    platforms: Platforms,
    /// Each database's snapshots, for the pre-deployment snapshot.
    databases: Arc<DatabasePlatforms>,
    notifier: Notifier,
    active: Mutex<HashMap<String, Arc<Mutex<ActiveRollout>>>>,
    stable: Mutex<HashMap<String, ReleaseSpec>>,
    /// Turns release environment values into the fingerprints views show.
    fingerprints: Fingerprinter,
    clock: Arc<dyn Clock>,
    /// What the production watch remembers between its looks.
    production: Mutex<ProductionWatch>,
    /// How long ticks and overviews take (exposed at `/metrics`).
    timings: Timings,
    /// A follower's daemon ([`Daemon::for_reading`]): it only builds views from the store.
    reads_only: bool,
}

/// The production watch's memory: each service's stable release health, and when it last
/// probed and evaluated.
#[derive(Default)]
struct ProductionWatch {
    health: HashMap<String, StableHealth>,
    last_probe_ms: i64,
    last_alarms_ms: i64,
}

pub fn time_of(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// A release of `service` at `version`, telling the release its version when the service wants.
fn release_of(
    service: &ServiceConfig,
    version: &str,
    mut env: std::collections::BTreeMap<String, String>,
    env_from: std::collections::BTreeMap<String, String>,
) -> ReleaseSpec {
    if let Some(variable) = &service.version_env {
        if !env_from.contains_key(variable) {
            env.entry(variable.clone())
                .or_insert_with(|| version.to_string());
        }
    }
    ReleaseSpec {
        service: service.name.clone(),
        version: version.to_string(),
        env,
        env_from,
    }
}

fn release_from_json(value: &serde_json::Value) -> Option<ReleaseSpec> {
    serde_json::from_value(value.clone()).ok()
}

impl ActiveRollout {
    /// Whether this rollout, resumed past its start, still waits for its canary's start (or
    /// re-adoption) to finish.
    pub(super) fn resumed_canary_pending(&self) -> bool {
        !self.canary_running
            && self.canary_start.is_some()
            && self.state.phase != crate::core::rollout::Phase::Starting
    }

    /// A rollout as stored at `revision`, with nothing started yet in this process.
    pub(super) fn resumed(state: RolloutState, revision: i64) -> ActiveRollout {
        ActiveRollout {
            state,
            revision,
            canary_start: None,
            canary_running: false,
            last_probe_ms: 0,
            checks: Vec::new(),
            commands: Vec::new(),
            approvals: Vec::new(),
            migration: None,
            finished: false,
            settled: false,
            last_error: None,
            traffic_drift: None,
            samples_recorded_through: 0,
            unsaved_state: false,
            unsaved_samples: Vec::new(),
            samples_staged_through: 0,
            samples_stored: Vec::new(),
            progress_saved_ms: 0,
        }
    }
}
impl Daemon {
    /// Restores state from the store, starts every service's stable release, and resumes the
    /// active rollouts.
    pub async fn start(
        config: Config,
        store: Store,
        platforms: Platforms,
        databases: Arc<DatabasePlatforms>,
        notifier: Notifier,
    ) -> Result<Arc<Daemon>, ControlError> {
        let clock = Arc::new(SystemClock);
        Daemon::start_with_clock(config, store, platforms, databases, notifier, clock).await
    }

    /// [`Daemon::start`] reading the time from `clock`.
    pub async fn start_with_clock(
        config: Config,
        store: Store,
        platforms: Platforms,
        databases: Arc<DatabasePlatforms>,
        notifier: Notifier,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Daemon>, ControlError> {
        let fingerprints = Fingerprinter::new(store.fingerprint_key().await?);
        let daemon = Arc::new(Daemon {
            config,
            store,
            platforms,
            databases,
            notifier,
            active: Mutex::new(HashMap::new()),
            stable: Mutex::new(HashMap::new()),
            fingerprints,
            clock,
            production: Mutex::new(ProductionWatch::default()),
            timings: Timings::default(),
            reads_only: false,
        });
        daemon.warn_about_unrouted_alarms();
        let active_records = daemon.store.active_rollouts().await?;
        for service in daemon.config.services.values() {
            let stable = daemon.restore_stable_release(service).await?;
            tracing::info!(service = %service.name, version = %stable.version, "starting the stable release");
            daemon.platforms.runner.ensure_running(&stable).await?;
            // A service with a rollout to resume keeps the split it has (the data plane fails
            // static) until the rollout sets its own once its canary runs again; resetting it
            // to all-stable here would take the canary's share away and give it back.
            let resuming = active_records
                .iter()
                .any(|record| record.service == service.name);
            if !resuming {
                daemon
                    .platforms
                    .shifter
                    .set_split(&service.name, &TrafficSplit::all_to(&stable.release_id()))
                    .await?;
            }
            daemon
                .stable
                .lock()
                .await
                .insert(service.name.clone(), stable);
        }
        for record in active_records {
            let state: RolloutState = match serde_json::from_str(&record.state_json) {
                Ok(state) => state,
                Err(error) => {
                    tracing::error!(rollout_id = %record.id, error = %error, "cannot read a stored rollout; leaving it");
                    continue;
                }
            };
            tracing::info!(rollout_id = %record.id, service = %record.service, phase = state.phase.as_str(), "resuming a rollout after restart");
            daemon
                .event(
                    &state.service,
                    Some(&state.id),
                    EventKind::Resumed,
                    format!(
                        "opsd restarted; resuming rollout of {} at phase {}",
                        state.canary.version,
                        state.phase.as_str()
                    ),
                )
                .await;
            daemon.active.lock().await.insert(
                record.service.clone(),
                Arc::new(Mutex::new(ActiveRollout::resumed(state, record.revision))),
            );
        }
        daemon.resume_pending_contract_migrations().await?;
        Ok(daemon)
    }

    /// A follower's daemon: it serves views from the store the leader writes and changes
    /// nothing. It starts no release, sets no split and records nothing; its stable releases
    /// are the ones the leader recorded. Give it a store that refuses writes
    /// ([`Store::refusing_writes`]) and platforms behind a permit that never allows acting, so
    /// that a view which tried to change something would fail instead.
    pub async fn for_reading(
        config: Config,
        store: Store,
        platforms: Platforms,
    ) -> Result<Arc<Daemon>, ControlError> {
        let key = store.stored_fingerprint_key().await?.ok_or_else(|| {
            ControlError::NotFound(
                "no leader has written to this store yet (it has no fingerprint key)".into(),
            )
        })?;
        let (notifier, _) = Notifier::start(Vec::new(), Vec::new(), None);
        Ok(Arc::new(Daemon {
            databases: Arc::new(DatabasePlatforms::new(&config)),
            config,
            store,
            platforms,
            notifier,
            active: Mutex::new(HashMap::new()),
            stable: Mutex::new(HashMap::new()),
            fingerprints: Fingerprinter::new(key),
            clock: Arc::new(SystemClock),
            production: Mutex::new(ProductionWatch::default()),
            timings: Timings::default(),
            reads_only: true,
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The ids of the releases the daemon runs or will run again: every service's stable
    /// release and each active rollout's canary and stable.
    pub async fn releases_in_use(&self) -> Vec<String> {
        let mut in_use: Vec<String> = self
            .stable
            .lock()
            .await
            .values()
            .map(ReleaseSpec::release_id)
            .collect();
        let active: Vec<Arc<Mutex<ActiveRollout>>> =
            self.active.lock().await.values().cloned().collect();
        for rollout in active {
            let rollout = rollout.lock().await;
            in_use.push(rollout.state.canary.release_id());
            in_use.push(rollout.state.stable.release_id());
        }
        in_use.sort();
        in_use.dedup();
        in_use
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Milliseconds since the Unix epoch, from the daemon's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The time now, from the daemon's clock.
    pub(super) fn now(&self) -> DateTime<Utc> {
        time_of(self.now_ms())
    }

    /// The stable release of a service: the winner of its newest finished rollout when that is
    /// newer than the stored stable release (repairs a crash between the two writes), else the
    /// stored one, else the configured initial version.
    pub(super) async fn restore_stable_release(
        &self,
        service: &ServiceConfig,
    ) -> Result<ReleaseSpec, ControlError> {
        let stored = self.store.stable_release(&service.name).await?;
        let newest = self
            .store
            .list_rollouts(Some(&service.name), 1)
            .await?
            .into_iter()
            .next();
        if let Some(rollout) = newest.filter(|rollout| rollout.is_finished()) {
            if let Ok(state) = serde_json::from_str::<RolloutState>(&rollout.state_json) {
                if let Some(winner) = state.winner() {
                    let stored_version = stored.as_ref().map(|stable| stable.version.clone());
                    if stored_version.as_deref() != Some(winner.version.as_str()) {
                        tracing::warn!(service = %service.name, version = %winner.version, "repairing the stable release from the last finished rollout");
                        self.store
                            .set_stable_release(
                                &service.name,
                                &winner.version,
                                &serde_json::to_value(winner).unwrap_or_default(),
                                self.now(),
                            )
                            .await?;
                    }
                    return Ok(winner.clone());
                }
            }
        }
        if let Some(release) = stored
            .as_ref()
            .and_then(|stable| release_from_json(&stable.release))
        {
            return Ok(release);
        }
        let initial_version = if service.initial_version.is_empty() {
            // On AWS: whatever the alias routes when opsd first sees it.
            let split = self.platforms.shifter.current_split(&service.name).await?;
            match split {
                Some(split) if split.canary.is_none() => split
                    .stable
                    .split_once('@')
                    .map(|(_, label)| label.to_string())
                    .unwrap_or(split.stable),
                Some(split) => {
                    return Err(ControlError::Conflict(format!(
                        "{} is mid-shift ({} plus {:?} at {} %), not by opsd; finish or undo that \
                         shift first, or set initial_version",
                        service.name, split.stable, split.canary, split.canary_weight_percent
                    )))
                }
                None => {
                    return Err(ControlError::Invalid(format!(
                        "{} has no initial_version and the platform reports no current release",
                        service.name
                    )))
                }
            }
        } else {
            service.initial_version.clone()
        };
        let initial = release_of(
            service,
            &initial_version,
            Default::default(),
            Default::default(),
        );
        self.store
            .set_stable_release(
                &service.name,
                &initial.version,
                &serde_json::to_value(&initial).unwrap_or_default(),
                self.now(),
            )
            .await?;
        Ok(initial)
    }

    pub(super) fn service(&self, name: &str) -> Result<&ServiceConfig, ControlError> {
        self.config.services.get(name).ok_or_else(|| {
            ControlError::UnknownService(
                name.to_string(),
                self.config
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
    }

    pub(super) async fn stable_release(&self, service: &str) -> Result<ReleaseSpec, ControlError> {
        let kept = if self.reads_only {
            // A follower keeps no releases of its own: the leader's record is the answer.
            self.store
                .stable_release(service)
                .await?
                .and_then(|stable| release_from_json(&stable.release))
        } else {
            self.stable.lock().await.get(service).cloned()
        };
        kept.ok_or_else(|| ControlError::NotFound(format!("{service} has no stable release yet")))
    }
}
