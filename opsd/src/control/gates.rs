//! The gates a deploy passes before its rollout is created (freeze, deploy window, quarantine,
//! alarm, budget, drill, snapshot): one loop over [`GateKind::ALL`],
//! each gate's verdict read from the store or the platform, decided by
//! [`crate::core::gate::decide`], with one audited override path.

use super::{time_of, Actor, ControlError, Daemon};
use crate::config::ServiceConfig;
use crate::core::alarms::evaluate_alarm;
use crate::core::drill::GateMode;
use crate::core::gate::{
    alarm_verdict, decide, freeze_verdict, quarantine_verdict, window_verdict, Closure,
    FreezeInForce, GateKind, GateOutcome, RolledBack, Verdict,
};
use crate::core::maintenance::with_maintenance_deploys;
use crate::core::severity::Severity;
use crate::core::window::{ClosedWindow, WindowState};
use crate::store::SnapshotRecord;

/// What the gates left for the rollout: a hold reason, a queue for the deploy window, whether
/// the window was overridden, and the pre-deployment snapshot taken.
#[derive(Default)]
pub(super) struct GatesPassed {
    pub hold: Option<String>,
    /// Outside every window with `outside: queue`: the hold's reason and when the window opens.
    pub window_queue: Option<(String, ClosedWindow)>,
    /// The window was closed and an operator overrode it (audited).
    pub window_overridden: bool,
    pub snapshot: Option<SnapshotRecord>,
}

/// The deploy's request to pass gates: the service, the rollout it would start and who asks.
pub(super) struct GateRequest<'a> {
    pub service: &'a ServiceConfig,
    pub version: &'a str,
    pub rollout_id: &'a str,
    pub overrides: &'a [GateKind],
    pub actor: &'a Actor,
    pub reason: Option<&'a str>,
}

impl Daemon {
    /// Passes every gate in order: refuses at the first closed one, audits each override, and
    /// collects a hold.
    pub(super) async fn pass_gates(
        &self,
        request: &GateRequest<'_>,
    ) -> Result<GatesPassed, ControlError> {
        let service = request.service;
        let mut passed = GatesPassed::default();
        let window = self.window_state(service, self.now_ms()).await?;
        for kind in GateKind::ALL {
            let (mode, verdict) = match kind {
                GateKind::Freeze => (GateMode::Refuse, self.freeze_verdict(service).await?),
                GateKind::Window => (
                    service
                        .deploy_windows
                        .as_ref()
                        .map_or(GateMode::Off, |windows| windows.outside),
                    window_verdict(&window),
                ),
                GateKind::Quarantine => (
                    GateMode::Refuse,
                    self.quarantine_verdict(service, request.version).await?,
                ),
                GateKind::Alarm => (service.alarm_gate, self.alarm_verdict(service).await?),
                GateKind::Budget => (service.budget_gate, self.budget_verdict(service).await),
                GateKind::Drill => (service.drill_gate, self.drill_verdict(service).await?),
                GateKind::Snapshot => {
                    let (verdict, snapshot) = self
                        .take_pre_deploy_snapshot(service, request.rollout_id)
                        .await;
                    passed.snapshot = snapshot;
                    (GateMode::Refuse, verdict)
                }
            };
            let overridden = request.overrides.contains(&kind);
            match decide(kind, &service.name, mode, verdict, overridden) {
                GateOutcome::Pass => {}
                GateOutcome::Overridden { action, evidence } => {
                    passed.window_overridden |= kind == GateKind::Window;
                    self.audit(
                        request.actor,
                        action,
                        &service.name,
                        request.reason.map(str::to_string),
                        evidence,
                    )
                    .await;
                }
                GateOutcome::Hold(reason) => match (&window, kind) {
                    (WindowState::Closed(closed), GateKind::Window) => {
                        passed.window_queue = Some((reason, closed.clone()))
                    }
                    _ => passed.hold = Some(reason),
                },
                GateOutcome::Refuse(message) => return Err(ControlError::GateClosed(message)),
            }
        }
        Ok(passed)
    }

    /// Whether the service's deploy windows are open at `now_ms` (open when it has none).
    /// A maintenance window in force that allows deploys opens them too (R-WINDOW-1).
    pub(super) async fn window_state(
        &self,
        service: &ServiceConfig,
        now_ms: i64,
    ) -> Result<WindowState, ControlError> {
        let Some(windows) = service.deploy_windows.as_ref() else {
            return Ok(WindowState::default());
        };
        let state = windows.windows.state_at(now_ms);
        if !matches!(state, WindowState::Closed(_)) {
            return Ok(state);
        }
        let now = time_of(now_ms);
        let operator_windows = self.store.operator_maintenance(now).await?;
        Ok(with_maintenance_deploys(
            state,
            windows.windows.is_freeze_date(now_ms),
            now,
            &self.config.maintenance,
            &operator_windows,
        ))
    }

    /// The freeze gate: closed while `opsd freeze` froze the service or every service.
    pub(super) async fn freeze_verdict(
        &self,
        service: &ServiceConfig,
    ) -> Result<Verdict, ControlError> {
        let freeze = self.store.freeze_covering(&service.name).await?;
        let since = freeze.as_ref().map(|freeze| freeze.since.to_rfc3339());
        Ok(freeze_verdict(freeze.as_ref().zip(since.as_deref()).map(
            |(freeze, since)| FreezeInForce {
                scope: &freeze.scope,
                reason: &freeze.reason,
                actor: &freeze.actor,
                since,
            },
        )))
    }

    /// The quarantine gate: closed when this version of the service was rolled back before.
    async fn quarantine_verdict(
        &self,
        service: &ServiceConfig,
        version: &str,
    ) -> Result<Verdict, ControlError> {
        let rolled_back = self
            .store
            .rolled_back_rollout_of(&service.name, version)
            .await?;
        let Some(record) = rolled_back else {
            return Ok(Verdict::Open);
        };
        let summary =
            serde_json::from_str::<crate::core::rollout::RolloutState>(&record.state_json)
                .map(|state| state.last_summary)
                .unwrap_or_default();
        let ended_at = record.finished_at.unwrap_or(record.updated_at).to_rfc3339();
        Ok(quarantine_verdict(
            version,
            Some(RolledBack {
                rollout_id: &record.id,
                ended_at: &ended_at,
                summary: &summary,
            }),
        ))
    }

    /// The alarm gate: every critical rule evaluated on the stable release's recent traffic, and
    /// the platform's own alarms in ALARM that roll releases back.
    pub(super) async fn alarm_verdict(
        &self,
        service: &ServiceConfig,
    ) -> Result<Verdict, ControlError> {
        if service.alarm_gate == GateMode::Off {
            return Ok(Verdict::Open);
        }
        let stable = self.stable_release(&service.name).await?;
        let release_id = stable.release_id();
        let now = self.now_ms();
        let series = self.alarm_series(&service.name, &release_id, now).await?;
        let evaluations: Vec<_> = self
            .config
            .policy
            .alarms
            .iter()
            .filter(|rule| rule.severity == Severity::Critical)
            .map(|rule| evaluate_alarm(rule, &series, 0, now.div_euclid(1000)))
            .collect();
        let external = match self.platforms.alarms.firing_alarms(&service.name).await {
            Ok(alarms) => alarms,
            Err(error) => {
                tracing::warn!(service = %service.name, error = %error, "cannot read the platform's alarms for the alarm gate");
                Vec::new()
            }
        };
        Ok(alarm_verdict(&release_id, &evaluations, &external))
    }

    /// The budget gate: closed while the newest cost check found a budget's forecast threshold
    /// crossed, or is older than `costs.gate_max_age`.
    pub(super) async fn budget_verdict(&self, service: &ServiceConfig) -> Verdict {
        let Some(costs) = self.config.costs.as_ref() else {
            return Verdict::Open;
        };
        if service.budget_gate == GateMode::Off {
            return Verdict::Open;
        }
        match crate::ops::costs::budget_gate_closed(&self.store, self.now(), costs.gate_max_age)
            .await
        {
            None => Verdict::Open,
            Some(closed) => Verdict::Closed(Closure {
                evidence: serde_json::json!({"gate": "budget", "closed_because": closed.reason, "stale": closed.stale}),
                reason: closed.reason,
                what_to_do: closed.what_to_do,
            }),
        }
    }

    /// The drill gate of the service's database: closed while its newest drill failed or is too
    /// old.
    pub(super) async fn drill_verdict(
        &self,
        service: &ServiceConfig,
    ) -> Result<Verdict, ControlError> {
        let Some(database_name) = &service.database else {
            return Ok(Verdict::Open);
        };
        if service.drill_gate == GateMode::Off {
            return Ok(Verdict::Open);
        }
        let Some(database) = self.config.databases.get(database_name) else {
            return Ok(Verdict::Open);
        };
        let Err(closed_because) = crate::ops::drill::gate_status(&self.store, database).await?
        else {
            return Ok(Verdict::Open);
        };
        Ok(Verdict::Closed(Closure {
            evidence: serde_json::json!({"gate": "drill", "database": database_name, "closed_because": closed_because}),
            reason: closed_because,
            what_to_do: format!("run `opsd drill run {database_name}`"),
        }))
    }

    /// Takes the service's pre-deployment snapshot when configured: the gate is closed when it
    /// fails.
    async fn take_pre_deploy_snapshot(
        &self,
        service: &ServiceConfig,
        rollout_id: &str,
    ) -> (Verdict, Option<SnapshotRecord>) {
        let Some(database_name) = service
            .database
            .as_ref()
            .filter(|_| service.snapshot_before_deploy)
        else {
            return (Verdict::Open, None);
        };
        let Some(database) = self.config.databases.get(database_name) else {
            return (Verdict::Open, None);
        };
        let snapshot = match self.databases.snapshots(database).await {
            Ok(platform) => {
                crate::ops::drill::pre_deploy_snapshot(
                    &self.config,
                    &self.store,
                    database,
                    platform.as_ref(),
                    rollout_id,
                )
                .await
            }
            Err(error) => Err(error.into()),
        };
        match snapshot {
            Ok(snapshot) => (Verdict::Open, Some(snapshot)),
            Err(error) => (
                Verdict::Closed(Closure {
                    reason: format!(
                        "the pre-deployment snapshot of {database_name} failed: {error}"
                    ),
                    what_to_do: "fix it".into(),
                    evidence: serde_json::json!({"database": database_name, "error": error.to_string()}),
                }),
                None,
            ),
        }
    }
}
