//! What the daemon writes down: decisions (stored with the state they moved a rollout to, on
//! the timeline, then logged and notified by severity),
//! timeline events of a typed [`EventKind`], a rollout's per-second traffic, and the audit log.

use super::{time_of, ActiveRollout, Actor, Daemon};
use crate::core::event::EventKind;
use crate::core::rollout::{Decision, DecisionKind, RolloutState};
use crate::core::traffic::SecondSample;
use crate::notify::{Notification, Severity};
use crate::store::{NewAuditEntry, NewDecision, NewEvent, SampleRelease};

/// Seconds written again on the next tick, because requests still running were not counted yet.
const SECONDS_STILL_COUNTING: i64 = 3;

impl Daemon {
    /// A decision of `state`'s rollout as the store keeps it, and its timeline event: stored
    /// with the state the decision moved the rollout to (`Store::save_decided_steps`).
    pub(super) fn decision_records(
        &self,
        state: &RolloutState,
        decision: &Decision,
    ) -> (NewDecision, NewEvent) {
        let kind = decision.kind.as_str();
        let record = NewDecision {
            rollout_id: state.id.clone(),
            at: time_of(decision.at_ms),
            step_index: decision.step_index as u32,
            verdict: kind.to_string(),
            summary: decision.summary.clone(),
            evidence: serde_json::to_value(&decision.evidence).unwrap_or_default(),
        };
        let event = NewEvent {
            at: self.now(),
            service: state.service.clone(),
            rollout_id: Some(state.id.clone()),
            kind: EventKind::Decision(decision.kind).as_str().to_string(),
            message: decision.summary.clone(),
            data: serde_json::Value::Null,
        };
        (record, event)
    }

    /// Logs a stored decision and notifies people by its severity.
    pub(super) fn announce_decision(&self, state: &RolloutState, decision: &Decision) {
        let kind = decision.kind.as_str();
        tracing::info!(rollout_id = %state.id, service = %state.service, decision = %kind, weight = decision.canary_weight_percent, "{}", decision.summary);
        let severity = match decision.kind {
            DecisionKind::RollBack | DecisionKind::Fail => Some(Severity::Critical),
            DecisionKind::Hold | DecisionKind::Abort | DecisionKind::AwaitApproval => {
                Some(Severity::Warning)
            }
            DecisionKind::Promote | DecisionKind::Start => Some(Severity::Info),
            _ => None,
        };
        if let Some(severity) = severity {
            self.notifier.send(
                Notification::new(
                    format!("rollout/{}/{}/{}", state.id, kind, decision.at_ms),
                    severity,
                    state.service.clone(),
                    format!(
                        "{} {}: {}",
                        state.service,
                        state.canary.version,
                        kind.replace('_', " ")
                    ),
                )
                .with_body(decision.summary.clone())
                .for_rollout(state.id.clone())
                .with_details(serde_json::to_value(&decision.evidence).unwrap_or_default()),
            );
        }
    }

    /// Keeps the seconds of both releases' traffic the tick read, for the dashboard's charts,
    /// the current one included (a rollout decided within a second keeps what it was decided
    /// on). The newest [`SECONDS_STILL_COUNTING`] before the recorded mark are written again when
    /// they changed: a request is counted when it ends, so a second keeps filling for a moment.
    /// They are staged on the rollout and stored with the tick's progress
    /// (`Daemon::save_progress`); failures are logged there: the charts must never stop a rollout.
    pub(super) fn record_rollout_traffic(
        &self,
        rollout: &mut ActiveRollout,
        canary: &[SecondSample],
        baseline: &[SecondSample],
        now_ms: i64,
    ) {
        let current_second = now_ms.div_euclid(1000);
        let from = rollout.samples_recorded_through - SECONDS_STILL_COUNTING;
        rollout
            .samples_stored
            .retain(|(_, stored)| stored.second >= from);
        let stored = &rollout.samples_stored;
        let fresh = |release: SampleRelease, samples: &[SecondSample]| -> Vec<SecondSample> {
            samples
                .iter()
                .filter(|entry| entry.second >= from && entry.second <= current_second)
                .filter(|entry| {
                    !stored.iter().any(|(stored_release, stored)| {
                        *stored_release == release && stored == *entry
                    })
                })
                .cloned()
                .collect()
        };
        rollout.unsaved_samples.clear();
        for (release, samples) in [
            (SampleRelease::Canary, fresh(SampleRelease::Canary, canary)),
            (
                SampleRelease::Baseline,
                fresh(SampleRelease::Baseline, baseline),
            ),
        ] {
            if !samples.is_empty() {
                rollout.unsaved_samples.push((release, samples));
            }
        }
        rollout.samples_staged_through = current_second + 1;
    }

    pub(super) async fn event(
        &self,
        service: &str,
        rollout_id: Option<&str>,
        kind: EventKind,
        message: String,
    ) {
        let event = NewEvent {
            at: self.now(),
            service: service.to_string(),
            rollout_id: rollout_id.map(str::to_string),
            kind: kind.as_str().to_string(),
            message,
            data: serde_json::Value::Null,
        };
        if let Err(error) = self.store.append_event(&event).await {
            tracing::error!(error = %error, "could not store an event");
        }
    }

    /// Appends to the audit log (who, what, when, why).
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        reason: Option<String>,
        detail: serde_json::Value,
    ) {
        let entry = NewAuditEntry {
            at: self.now(),
            actor: actor.name.clone(),
            role: actor.role.clone(),
            action: action.to_string(),
            target: target.to_string(),
            reason,
            detail,
        };
        if let Err(error) = self.store.append_audit(&entry).await {
            tracing::error!(error = %error, "could not write the audit log");
        }
    }
}
