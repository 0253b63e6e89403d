//! What the API and the CLI show: rollouts with their decisions, each service's status, and the
//! production state of every alarm rule.
//! The view types are also what the CLI's client reads back, so both sides share one shape.

use serde::{Deserialize, Serialize};

use super::{time_of, ControlError, Daemon};
use crate::core::rollout::{Phase, RolloutState};
use crate::core::severity::Severity;
use crate::platform::TrafficSplit;
use crate::store::{DecisionRecord, RolloutRecord};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutView {
    pub id: String,
    pub service: String,
    pub stable_version: String,
    pub canary_version: String,
    pub plan: String,
    pub phase: Phase,
    pub step: usize,
    pub steps: usize,
    pub canary_weight_percent: u8,
    pub summary: String,
    /// Set while the rollout waits for its deploy window, e.g. `waiting for the deploy window:
    /// opens Tue 2026-12-08 02:00 UTC`.
    #[serde(default)]
    pub waiting_for_window: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub state: RolloutState,
    pub decisions: Vec<DecisionView>,
    /// The snapshot taken before this rollout started, when the service takes one.
    pub pre_deploy_snapshot: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionView {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub step_index: u32,
    pub summary: String,
    pub evidence: serde_json::Value,
}

/// One service's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub service: String,
    pub public_addr: String,
    pub stable_version: String,
    pub split: Option<TrafficSplit>,
    pub active_rollout: Option<RolloutView>,
    pub last_rollout: Option<RolloutView>,
}

impl Daemon {
    /// A rollout with its decisions.
    pub async fn rollout(&self, id: &str) -> Result<RolloutView, ControlError> {
        let record = self
            .store
            .get_rollout(id)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("rollout {id} not found")))?;
        self.view_of(&state_of(&record)?).await
    }

    pub(super) async fn view_of(&self, state: &RolloutState) -> Result<RolloutView, ControlError> {
        let decisions = self.store.list_decisions(&state.id).await?;
        let snapshot = self
            .store
            .snapshot_of_rollout(&state.id)
            .await?
            .map(|snapshot| snapshot.id);
        Ok(self.view_with(state, decisions, snapshot))
    }

    /// The view of a rollout in `state` with its decisions and pre-deployment snapshot.
    fn view_with(
        &self,
        state: &RolloutState,
        decisions: Vec<DecisionRecord>,
        pre_deploy_snapshot: Option<String>,
    ) -> RolloutView {
        let decisions = decisions
            .into_iter()
            .map(|decision| DecisionView {
                seq: decision.seq,
                at: decision.at.to_rfc3339(),
                kind: decision.verdict,
                step_index: decision.step_index,
                summary: decision.summary,
                evidence: decision.evidence,
            })
            .collect();
        RolloutView {
            id: state.id.clone(),
            service: state.service.clone(),
            stable_version: state.stable.version.clone(),
            canary_version: state.canary.version.clone(),
            plan: state.plan.name.clone(),
            phase: state.phase,
            step: state.step_index + 1,
            steps: state.plan.steps.len(),
            canary_weight_percent: state.canary_weight_percent(),
            summary: state.last_summary.clone(),
            waiting_for_window: state
                .waiting_for_window
                .clone()
                .filter(|_| !state.phase.is_terminal()),
            created_at: time_of(state.created_at_ms).to_rfc3339(),
            finished_at: state.finished_at_ms.map(|at| time_of(at).to_rfc3339()),
            state: self.shown_state(state),
            decisions,
            pre_deploy_snapshot,
        }
    }

    /// The state as views show it: release environment values as fingerprints.
    pub(super) fn shown_state(&self, state: &RolloutState) -> RolloutState {
        let mut shown = state.clone();
        shown.stable = shown.stable.redacted(&self.fingerprints);
        shown.canary = shown.canary.redacted(&self.fingerprints);
        shown
    }

    pub async fn status(&self, service: Option<&str>) -> Result<Vec<ServiceStatus>, ControlError> {
        let names: Vec<String> = match service {
            Some(name) => {
                self.service(name)?;
                vec![name.to_string()]
            }
            None => self.config.services.keys().cloned().collect(),
        };
        let mut statuses = Vec::new();
        for name in names {
            let config = self.service(&name)?;
            let stable = self
                .stable_release(&name)
                .await
                .map(|release| release.version)
                .unwrap_or_default();
            let active = self.store.active_rollout(&name).await?;
            let active_view = match active {
                Some(record) => Some(self.rollout(&record.id).await?),
                None => None,
            };
            let last = match &active_view {
                Some(_) => None,
                None => match self
                    .store
                    .list_rollouts(Some(&name), 1)
                    .await?
                    .into_iter()
                    .next()
                {
                    Some(record) => Some(self.rollout(&record.id).await?),
                    None => None,
                },
            };
            statuses.push(ServiceStatus {
                service: name.clone(),
                public_addr: config.public_target(),
                stable_version: stable,
                split: self
                    .platforms
                    .shifter
                    .current_split(&name)
                    .await
                    .ok()
                    .flatten(),
                active_rollout: active_view,
                last_rollout: last,
            });
        }
        Ok(statuses)
    }

    /// The service's rollouts, newest first.
    pub async fn history(
        &self,
        service: &str,
        limit: u32,
    ) -> Result<Vec<RolloutView>, ControlError> {
        self.service(service)?;
        let records = self.store.list_rollouts(Some(service), limit).await?;
        let Some(oldest) = records.last().map(|record| record.created_at) else {
            return Ok(Vec::new());
        };
        // Three queries for the page, however long: the rollouts, then the decisions and
        // snapshots of every rollout created since the oldest of them.
        let mut decisions = self
            .store
            .decisions_of_rollouts_since(service, oldest)
            .await?;
        let snapshots = self
            .store
            .snapshots_of_rollouts_since(service, oldest)
            .await?;
        records
            .iter()
            .map(|record| {
                Ok(self.view_with(
                    &state_of(record)?,
                    decisions.remove(&record.id).unwrap_or_default(),
                    snapshots.get(&record.id).cloned(),
                ))
            })
            .collect()
    }
}

/// The rollout state a stored record holds.
fn state_of(record: &RolloutRecord) -> Result<RolloutState, ControlError> {
    serde_json::from_str(&record.state_json).map_err(|error| {
        ControlError::Invalid(format!("rollout {} cannot be read: {error}", record.id))
    })
}

/// One alarm rule of one service in production, as `opsd alarms status` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlarmStatusView {
    pub service: String,
    pub rule: String,
    pub description: String,
    pub severity: Severity,
    /// `error_rate > 1.00 % for 1 period of 1m`.
    pub condition: String,
    pub threshold: f64,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`; `None` before the rule's first evaluation.
    pub state: Option<String>,
    pub since: Option<String>,
    pub value: Option<f64>,
    /// The value written for people (`3.20 %`, `850 ms`).
    pub value_text: Option<String>,
    pub reason: Option<String>,
    /// Where a change of this rule is notified (routes by severity, then the rule's `notify`).
    pub notify_targets: Vec<String>,
}

impl Daemon {
    /// Every alarm rule of every service (or of one), with its stored production state.
    pub async fn alarm_statuses(
        &self,
        service: Option<&str>,
    ) -> Result<Vec<AlarmStatusView>, ControlError> {
        if let Some(name) = service {
            self.service(name)?;
        }
        let stored = self.store.alarm_states(service).await?;
        let mut views = Vec::new();
        for service_name in self.config.services.keys() {
            if service.is_some_and(|wanted| wanted != service_name) {
                continue;
            }
            for rule in &self.config.policy.alarms {
                let record = stored
                    .iter()
                    .find(|record| &record.service == service_name && record.rule == rule.name);
                views.push(AlarmStatusView {
                    service: service_name.clone(),
                    rule: rule.name.clone(),
                    description: rule.description.clone(),
                    severity: rule.severity,
                    condition: rule.describe_condition(),
                    threshold: rule.threshold,
                    state: record.map(|record| record.state.clone()),
                    since: record.map(|record| record.since.to_rfc3339()),
                    value: record.and_then(|record| record.value),
                    value_text: record
                        .and_then(|record| record.value)
                        .map(|value| rule.metric.format_value(value)),
                    reason: record.map(|record| record.reason.clone()),
                    notify_targets: self.alarm_targets_of(rule),
                });
            }
        }
        Ok(views)
    }
}

#[cfg(test)]
mod tests {
    use super::super::reconcile_tests::world;
    use super::super::Actor;
    use crate::core::rollout::OperatorCommand;
    use crate::store::SnapshotRecord;

    fn snapshot(id: &str, rollout_id: &str, taken_at_ms: i64) -> SnapshotRecord {
        SnapshotRecord {
            id: id.into(),
            database: "steno-db".into(),
            taken_at: super::time_of(taken_at_ms),
            reason: "pre_deploy".into(),
            rollout_id: Some(rollout_id.into()),
            location: format!("/snapshots/{id}"),
            size_bytes: None,
            sha256: None,
            fingerprint: None,
            deleted_at: None,
        }
    }

    #[tokio::test]
    async fn history_shows_each_rollout_as_its_own_view_does() {
        let world = world().await;
        let first = world.deploy("v2").await;
        world.tick().await;
        world
            .daemon
            .command(
                "steno",
                OperatorCommand::Abort,
                &Actor::system(),
                Some("test".into()),
            )
            .await
            .unwrap();
        for _ in 0..3 {
            world.tick().await;
        }
        let second = world.deploy("v3").await;
        world.tick().await;
        for (id, at_ms) in [("older", 1_000), ("newer", 2_000)] {
            world
                .store
                .insert_snapshot(&snapshot(id, &first, at_ms))
                .await
                .unwrap();
        }

        let history = world.daemon.history("steno", 10).await.unwrap();
        let ids: Vec<&str> = history.iter().map(|view| view.id.as_str()).collect();
        assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
        for view in &history {
            let alone = world.daemon.rollout(&view.id).await.unwrap();
            assert_eq!(
                serde_json::to_value(view).unwrap(),
                serde_json::to_value(&alone).unwrap(),
                "rollout {}",
                view.id
            );
        }
        assert!(
            !history[1].decisions.is_empty(),
            "the aborted rollout has decisions"
        );
        assert_eq!(history[1].pre_deploy_snapshot.as_deref(), Some("newer"));
        assert_eq!(history[0].pre_deploy_snapshot, None);

        let newest = world.daemon.history("steno", 1).await.unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(
            serde_json::to_value(&newest[0]).unwrap(),
            serde_json::to_value(&history[0]).unwrap()
        );
        assert!(world.daemon.history("steno", 0).await.unwrap().is_empty());
    }
}
