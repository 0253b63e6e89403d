//! The reconciler tick: for each active rollout, observe the platforms, let the pure core step
//! the state, persist it, then act (record decisions, start checks, apply the traffic split or
//! settle the end). A failed tick is handed to the error policy and retried on the next one.

use std::sync::Arc;

use super::{time_of, ActiveRollout, ControlError, Daemon};
use crate::core::rollout::{desired_split, step, Action};
use crate::platform::TrafficSplit;

impl Daemon {
    /// Runs the reconciler until `shutdown` completes.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(self.config.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => break,
            }
            let started = std::time::Instant::now();
            let services: Vec<String> = self.active.lock().await.keys().cloned().collect();
            for service in services {
                self.reconcile_service(&service).await;
            }
            self.timings
                .reconcile_tick
                .observe(started.elapsed().as_secs_f64());
        }
    }

    /// One reconciler pass over one service's active rollout.
    pub async fn reconcile_service(&self, service: &str) {
        let Some(entry) = self.active.lock().await.get(service).cloned() else {
            return;
        };
        let settled = {
            let mut rollout = entry.lock().await;
            match self.reconcile(&mut rollout).await {
                Ok(()) => {
                    rollout.last_error = None;
                    rollout.traffic_drift = None;
                }
                Err(error) => self.handle_failure(service, &mut rollout, &error).await,
            }
            rollout.settled
        };
        // The rollout's lock is released before the map's is taken: never the other way round.
        if settled {
            let mut active = self.active.lock().await;
            if active
                .get(service)
                .is_some_and(|current| Arc::ptr_eq(current, &entry))
            {
                active.remove(service);
            }
        }
    }

    pub(super) async fn reconcile(&self, rollout: &mut ActiveRollout) -> Result<(), ControlError> {
        if rollout.state.phase.is_terminal() {
            // Terminal but not settled (the last attempt failed, or contract migrations run).
            return self.settle(rollout).await;
        }
        let now = self.now_ms();
        let state_before = serde_json::to_string(&rollout.state).ok();
        let (observation, mut pending_actions) = self.observe(rollout, now).await?;
        let policy = self.policy_for(&rollout.state.service);
        let (next, actions) = step(&rollout.state, &observation, &policy);
        pending_actions.extend(actions);
        // Persist first: a decision is recorded and acted on only once its state is stored.
        if serde_json::to_string(&next).ok() != state_before {
            self.persist(rollout, next).await?;
        }
        self.act(rollout, pending_actions).await
    }

    /// Stores the rollout's next state (optimistically, against the revision it was read at).
    pub(super) async fn persist(
        &self,
        rollout: &mut ActiveRollout,
        next: crate::core::rollout::RolloutState,
    ) -> Result<(), ControlError> {
        let finished = next
            .finished_at_ms
            .filter(|_| next.phase.is_terminal())
            .map(|at| (time_of(at), next.phase.as_str()));
        let state_json = serde_json::to_string(&next)
            .map_err(|error| ControlError::Invalid(error.to_string()))?;
        rollout.revision = self
            .store
            .update_rollout(
                &next.id,
                rollout.revision,
                next.phase.as_str(),
                &state_json,
                finished,
            )
            .await?;
        rollout.state = next;
        Ok(())
    }

    /// Carries out the step's actions, then settles a finished rollout or applies the split its
    /// state calls for.
    pub(super) async fn act(
        &self,
        rollout: &mut ActiveRollout,
        actions: Vec<Action>,
    ) -> Result<(), ControlError> {
        let service = rollout.state.service.clone();
        for action in actions {
            match action {
                Action::Record(decision) => self.record_decision(&rollout.state, &decision).await,
                Action::RunCheck { name } => {
                    let canary = rollout.state.canary.clone();
                    let handle = self.spawn_check(&service, &canary, &name).await;
                    rollout.checks.push((name, handle));
                }
            }
        }
        if rollout.state.phase.is_terminal() {
            self.settle(rollout).await?;
        } else {
            let split = if rollout.canary_running {
                desired_split(&rollout.state)
            } else {
                TrafficSplit::all_to(&rollout.state.stable.release_id())
            };
            self.apply_split(&service, &split).await?;
        }
        Ok(())
    }

    /// The end of a terminal rollout: traffic, stable release and loser settled once, then the
    /// contract migrations of a promotion; settled when both are done.
    async fn settle(&self, rollout: &mut ActiveRollout) -> Result<(), ControlError> {
        if !rollout.finished {
            self.finish(rollout).await?;
            rollout.finished = true;
        }
        rollout.settled = self.contract_after_promotion(rollout).await?;
        Ok(())
    }

    /// The rollout policy of `service`: the configured one, without the cost-per-request check
    /// on AWS (CloudWatch reports neither response bytes nor each request's duration).
    pub(super) fn policy_for(
        &self,
        service: &str,
    ) -> std::borrow::Cow<'_, crate::core::rollout::RolloutPolicy> {
        let on_aws = self
            .config
            .services
            .get(service)
            .is_some_and(|config| config.aws.is_some());
        if on_aws && self.config.policy.cost_per_request.is_some() {
            let mut policy = self.config.policy.clone();
            policy.cost_per_request = None;
            std::borrow::Cow::Owned(policy)
        } else {
            std::borrow::Cow::Borrowed(&self.config.policy)
        }
    }
}
