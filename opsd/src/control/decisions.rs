//! The decisions of one reconciler tick, stored together and then acted on. Each deciding
//! rollout stays locked from its step until it was acted on; its new state, its decisions and
//! their timeline events go into one transaction with every other rollout's that decided in the
//! same tick (`Store::save_decided_steps`): a tick where many rollouts step at once commits
//! once, not three times per rollout. Only a rollout whose step was stored is acted on; a
//! refused or failed one goes to the error policy and steps again at the next tick.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{time_of, ActiveRollout, ControlError, Daemon};
use crate::core::rollout::{Action, RolloutState};
use crate::store::DecidedStep;

/// A rollout that decided in this tick, still locked: its next state and the actions to carry
/// out once that state is stored.
pub(super) struct Decided {
    pub(super) service: String,
    pub(super) entry: Arc<Mutex<ActiveRollout>>,
    pub(super) rollout: OwnedMutexGuard<ActiveRollout>,
    pub(super) next: RolloutState,
    pub(super) actions: Vec<Action>,
}

impl Daemon {
    /// Stores every decided step in one transaction, then acts on each stored one.
    pub(super) async fn store_decisions_then_act(&self, decided: Vec<Decided>) {
        if decided.is_empty() {
            return;
        }
        let mut steps = Vec::with_capacity(decided.len());
        let mut storing = Vec::with_capacity(decided.len());
        for mut one in decided {
            match self.decided_step(&one) {
                Ok(step) => {
                    steps.push(step);
                    storing.push(one);
                }
                Err(error) => {
                    self.handle_failure(&one.service, &mut one.rollout, &error)
                        .await;
                    self.end_pass(&one.service, &one.entry, one.rollout).await;
                }
            }
        }
        match self.store.save_decided_steps(&steps).await {
            Ok(results) => {
                for (mut one, result) in storing.into_iter().zip(results) {
                    match result {
                        Ok(revision) => {
                            one.rollout.revision = revision;
                            one.rollout.state = one.next;
                            one.rollout.unsaved_state = false;
                            match self.act(&mut one.rollout, one.actions).await {
                                Ok(()) => {
                                    one.rollout.last_error = None;
                                    one.rollout.traffic_drift = None;
                                }
                                Err(error) => {
                                    self.handle_failure(&one.service, &mut one.rollout, &error)
                                        .await
                                }
                            }
                        }
                        Err(error) => {
                            let error = ControlError::Store(error);
                            self.handle_failure(&one.service, &mut one.rollout, &error)
                                .await;
                        }
                    }
                    self.end_pass(&one.service, &one.entry, one.rollout).await;
                }
            }
            Err(error) => {
                let error = ControlError::Store(error);
                for mut one in storing {
                    self.handle_failure(&one.service, &mut one.rollout, &error)
                        .await;
                    self.end_pass(&one.service, &one.entry, one.rollout).await;
                }
            }
        }
    }

    /// What the store keeps of one decided step: the next state at the revision the rollout
    /// was read at, its end when it finished, and each decision with its timeline event.
    fn decided_step(&self, decided: &Decided) -> Result<DecidedStep, ControlError> {
        let next = &decided.next;
        let state_json = serde_json::to_string(next)
            .map_err(|error| ControlError::Invalid(error.to_string()))?;
        let finished = next
            .finished_at_ms
            .filter(|_| next.phase.is_terminal())
            .map(|at| (time_of(at), next.phase.as_str().to_string()));
        let (decisions, events) = decided
            .actions
            .iter()
            .filter_map(|action| match action {
                Action::Record(decision) => Some(self.decision_records(next, decision)),
                _ => None,
            })
            .unzip();
        Ok(DecidedStep {
            rollout_id: next.id.clone(),
            expected_revision: decided.rollout.revision,
            phase: next.phase.as_str().to_string(),
            state_json,
            finished,
            decisions,
            events,
        })
    }
}
