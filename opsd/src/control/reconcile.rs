//! The reconciler tick: for each active rollout, observe the platforms, let the pure core step
//! the state, persist it, then act (announce decisions, start checks, apply the traffic split
//! or settle the end). A decision's state is stored before it is acted on: the tick's decisions
//! are stored together, with their records and timeline events, in one transaction
//! (`decisions.rs`). The progress of every rollout that decided nothing (and the traffic read
//! for the charts) is stored at the end of the tick in one transaction, at most once a second
//! per rollout, less often past a write budget (views lag by at most that; a restart bakes the
//! step again, so nothing a decision rests on is lost). A failed tick is handed to the error
//! policy and retried on the next one.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::decisions::Decided;
use super::{ActiveRollout, ControlError, Daemon};
use crate::core::rollout::{desired_split, step, Action, RolloutState};
use crate::core::traffic::SecondSample;
use crate::platform::TrafficSplit;
use crate::store::{ProgressState, RolloutProgress, SampleRelease};

/// The shortest time between two stores of one rollout's progress (not of its decisions, which
/// are stored before they are acted on, nor of its end).
pub(super) const PROGRESS_SAVE_PERIOD_MS: i64 = 1_000;
/// The most rollout states the ticks' progress stores in a second, all rollouts together: with
/// more active rollouts than this, each one's progress is stored every `ceil(n / 250)` seconds
/// instead of every second (its views lag by that much; decisions are stored at once), so the
/// store's write load stays bounded however many rollouts run.
pub(super) const PROGRESS_STATES_PER_SECOND: usize = 250;

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
            self.tick().await;
        }
    }

    /// One reconciler tick: a pass over every active rollout; the decisions it made stored in
    /// one transaction, then acted on; then the progress of all of them stored in another;
    /// timed for `/metrics`.
    pub async fn tick(&self) {
        let started = std::time::Instant::now();
        let services: Vec<String> = self.active.lock().await.keys().cloned().collect();
        let mut reconciled = Vec::with_capacity(services.len());
        let mut decided = Vec::new();
        for service in services {
            if let Some(entry) = self.reconcile_one(&service, &mut decided).await {
                reconciled.push((service, entry));
            }
        }
        self.store_decisions_then_act(decided).await;
        self.save_progress(&reconciled).await;
        self.timings
            .reconcile_tick
            .observe(started.elapsed().as_secs_f64());
    }

    /// One reconciler pass over one service's active rollout, its progress stored at once.
    pub async fn reconcile_service(&self, service: &str) {
        let mut decided = Vec::new();
        if let Some(entry) = self.reconcile_one(service, &mut decided).await {
            self.store_decisions_then_act(decided).await;
            self.save_progress(&[(service.to_string(), entry)]).await;
        }
    }

    /// One pass over `service`'s active rollout; the rollout (settled ones too: the traffic
    /// their decision was taken on is still to be kept), with its progress not yet stored. A
    /// rollout that decided is added to `decided`, still locked, to be stored with the tick's
    /// other decisions before it is acted on.
    async fn reconcile_one(
        &self,
        service: &str,
        decided: &mut Vec<Decided>,
    ) -> Option<Arc<Mutex<ActiveRollout>>> {
        let entry = self.active.lock().await.get(service).cloned()?;
        let mut rollout = Arc::clone(&entry).lock_owned().await;
        match self.reconcile(&mut rollout).await {
            Ok(Some((next, actions))) => {
                decided.push(Decided {
                    service: service.to_string(),
                    entry: Arc::clone(&entry),
                    rollout,
                    next,
                    actions,
                });
                return Some(entry);
            }
            Ok(None) => {
                rollout.last_error = None;
                rollout.traffic_drift = None;
            }
            Err(error) => self.handle_failure(service, &mut rollout, &error).await,
        }
        self.end_pass(service, &entry, rollout).await;
        Some(entry)
    }

    /// Releases a rollout after its pass, and forgets it once settled. The rollout's lock is
    /// released before the map's is taken: never the other way round.
    pub(super) async fn end_pass(
        &self,
        service: &str,
        entry: &Arc<Mutex<ActiveRollout>>,
        rollout: OwnedMutexGuard<ActiveRollout>,
    ) {
        let settled = rollout.settled;
        drop(rollout);
        if settled {
            let mut active = self.active.lock().await;
            if active
                .get(service)
                .is_some_and(|current| Arc::ptr_eq(current, entry))
            {
                active.remove(service);
            }
        }
    }

    /// Stores the progress of `rollouts` (states moved on without a decision, per-second
    /// traffic) in one transaction: one commit per tick, not several per rollout. A state the
    /// store refuses, or a failed transaction, goes to the error policy and is tried again at
    /// the next tick; samples that could not be stored are read again then.
    async fn save_progress(&self, rollouts: &[(String, Arc<Mutex<ActiveRollout>>)]) {
        let now = self.now_ms();
        let active = self.active.lock().await.len().max(rollouts.len());
        let period = progress_save_period_ms(active);
        let mut pending = Vec::new();
        let mut progress = Vec::new();
        for (service, entry) in rollouts {
            let mut rollout = entry.lock().await;
            if !rollout.unsaved_state && rollout.unsaved_samples.is_empty() {
                continue;
            }
            let due = progress_save_due(&rollout.state.id, rollout.progress_saved_ms, now, period);
            if !due && !rollout.state.phase.is_terminal() {
                continue;
            }
            let state = if rollout.unsaved_state {
                match serde_json::to_string(&rollout.state) {
                    Ok(state_json) => Some(ProgressState {
                        expected_revision: rollout.revision,
                        phase: rollout.state.phase.as_str().to_string(),
                        state_json,
                    }),
                    Err(error) => {
                        let error = ControlError::Invalid(error.to_string());
                        self.handle_failure(service, &mut rollout, &error).await;
                        None
                    }
                }
            } else {
                None
            };
            progress.push(RolloutProgress {
                rollout_id: rollout.state.id.clone(),
                state,
                samples: rollout.unsaved_samples.clone(),
            });
            pending.push((service, rollout));
        }
        if progress.is_empty() {
            return;
        }
        match self.store.save_progress(&progress).await {
            Ok(saved) => {
                for ((service, mut rollout), saved) in pending.into_iter().zip(saved) {
                    rollout.progress_saved_ms = now;
                    let staged = std::mem::take(&mut rollout.unsaved_samples);
                    if saved.samples_saved {
                        rollout.samples_recorded_through = rollout.samples_staged_through;
                        remember_stored_samples(&mut rollout.samples_stored, staged);
                    }
                    match saved.state {
                        Some(Ok(revision)) => {
                            rollout.revision = revision;
                            rollout.unsaved_state = false;
                        }
                        Some(Err(error)) => {
                            let error = ControlError::Store(error);
                            self.handle_failure(service, &mut rollout, &error).await;
                        }
                        None => {}
                    }
                }
            }
            Err(error) => {
                let error = ControlError::Store(error);
                for (service, mut rollout) in pending {
                    if rollout.unsaved_state {
                        self.handle_failure(service, &mut rollout, &error).await;
                    } else {
                        tracing::warn!(service = %service, error = %error, "could not keep the rollout's per-second traffic");
                    }
                }
            }
        }
    }

    /// Steps `rollout`: a state that only moved on is kept for the tick's progress and its
    /// split applied; a decision (an action, or a new phase, step or split) is returned, its new
    /// state and actions, to be stored before it is acted on.
    async fn reconcile(
        &self,
        rollout: &mut ActiveRollout,
    ) -> Result<Option<(RolloutState, Vec<Action>)>, ControlError> {
        if rollout.state.phase.is_terminal() {
            // Terminal but not settled (the last attempt failed, or contract migrations run).
            self.settle(rollout).await?;
            return Ok(None);
        }
        let now = self.now_ms();
        let (observation, mut pending_actions) = self.observe(rollout, now).await?;
        if rollout.resumed_canary_pending() && pending_actions.is_empty() {
            // Resumed after an opsd restart: nothing is judged until the canary runs again (its
            // re-bake then restarts the step's clock), however long opsd was away.
            self.act(rollout, pending_actions).await?;
            return Ok(None);
        }
        let policy = self.policy_for(&rollout.state.service);
        let (next, actions) = step(&rollout.state, &observation, &policy);
        pending_actions.extend(actions);
        // Persist first: a decision is recorded and acted on only once its state is stored. A
        // state that only moved on (the bake's progress: looks, comparison, summary) acts on
        // nothing new, so it is stored with the tick's other progress at the tick's end.
        // (A re-bake in `observe` changed the state in place; its actions are pending.)
        if next != rollout.state || !pending_actions.is_empty() {
            let decided = !pending_actions.is_empty()
                || next.phase != rollout.state.phase
                || next.step_index != rollout.state.step_index
                || desired_split(&next) != desired_split(&rollout.state);
            if decided {
                return Ok(Some((next, pending_actions)));
            }
            rollout.state = next;
            rollout.unsaved_state = true;
        }
        self.act(rollout, pending_actions).await?;
        Ok(None)
    }

    /// Carries out the step's actions (its decisions are stored already: they are announced),
    /// then settles a finished rollout or applies the split its state calls for.
    pub(super) async fn act(
        &self,
        rollout: &mut ActiveRollout,
        actions: Vec<Action>,
    ) -> Result<(), ControlError> {
        let service = rollout.state.service.clone();
        for action in actions {
            match action {
                Action::Record(decision) => self.announce_decision(&rollout.state, &decision),
                Action::RunCheck { name } => {
                    let canary = rollout.state.canary.clone();
                    let handle = self.spawn_check(&service, &canary, &name).await;
                    rollout.checks.push((name, handle));
                }
            }
        }
        if rollout.state.phase.is_terminal() {
            self.settle(rollout).await?;
        } else if rollout.canary_running {
            self.apply_split(&service, &desired_split(&rollout.state))
                .await?;
        } else if !rollout.resumed_canary_pending() {
            self.apply_split(
                &service,
                &TrafficSplit::all_to(&rollout.state.stable.release_id()),
            )
            .await?;
        }
        // A rollout resumed after a restart (or by a new leader) keeps the split the platform
        // has while its canary is re-adopted: the data plane fails static, and the rollout sets
        // its split again once the canary runs (or rolls back if it does not).
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

/// Adds the seconds just stored to those remembered as stored, replacing the same release's
/// same second.
fn remember_stored_samples(
    stored: &mut Vec<(SampleRelease, SecondSample)>,
    staged: Vec<(SampleRelease, Vec<SecondSample>)>,
) {
    for (release, seconds) in staged {
        for entry in seconds {
            stored.retain(|(known_release, known)| {
                *known_release != release || known.second != entry.second
            });
            stored.push((release, entry));
        }
    }
}

/// How often each rollout's progress is stored with `active` rollouts running: every
/// [`PROGRESS_SAVE_PERIOD_MS`], longer in whole periods once more than
/// [`PROGRESS_STATES_PER_SECOND`] would come due in a second.
fn progress_save_period_ms(active: usize) -> i64 {
    let periods = active.div_ceil(PROGRESS_STATES_PER_SECOND).max(1);
    PROGRESS_SAVE_PERIOD_MS.saturating_mul(i64::try_from(periods).unwrap_or(i64::MAX))
}

/// Whether a rollout whose progress was last stored at `saved_ms` is due at `now`: once per
/// `period_ms`, at an offset within the period fixed by the rollout's id, so the rollouts of
/// one tick do not all come due together (a tick stores about a period's share of them, not
/// all of them every few ticks).
fn progress_save_due(rollout_id: &str, saved_ms: i64, now: i64, period_ms: i64) -> bool {
    let period_ms = period_ms.max(1);
    let offset = rollout_id
        .bytes()
        .fold(0i64, |hash, byte| (hash * 31 + i64::from(byte)) % period_ms);
    (now + offset).div_euclid(period_ms) > (saved_ms + offset).div_euclid(period_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_due_once_a_period_at_an_offset_of_its_own() {
        for id in ["r-1", "r-2", "0f8c2a", "a-much-longer-rollout-identifier"] {
            let mut saved = 0;
            let mut saves = 0;
            for now in (250..=10_000).step_by(250) {
                if progress_save_due(id, saved, now, PROGRESS_SAVE_PERIOD_MS) {
                    assert!(
                        now - saved <= 2 * PROGRESS_SAVE_PERIOD_MS,
                        "{id} waited too long"
                    );
                    saved = now;
                    saves += 1;
                }
            }
            assert!((9..=10).contains(&saves), "{id}: {saves} saves in 10 s");
        }
        let offsets: std::collections::HashSet<bool> = ["r-1", "r-2", "r-3", "r-4", "r-5"]
            .iter()
            .map(|id| progress_save_due(id, 0, 250, PROGRESS_SAVE_PERIOD_MS))
            .collect();
        assert_eq!(
            offsets.len(),
            2,
            "some rollouts are due at 250 ms and some are not"
        );
    }

    #[test]
    fn past_the_write_budget_each_rollouts_progress_is_stored_less_often() {
        assert_eq!(progress_save_period_ms(0), 1_000);
        assert_eq!(progress_save_period_ms(1), 1_000);
        assert_eq!(progress_save_period_ms(PROGRESS_STATES_PER_SECOND), 1_000);
        assert_eq!(
            progress_save_period_ms(PROGRESS_STATES_PER_SECOND + 1),
            2_000
        );
        assert_eq!(progress_save_period_ms(1_000), 4_000);
        // 1,000 rollouts ticked every 250 ms for 20 s: each stored every 4 s, and no second
        // stores more than the budget (give or take the offsets' rounding).
        let ids: Vec<String> = (0..1_000)
            .map(|index| format!("rollout-{index:04}"))
            .collect();
        let period = progress_save_period_ms(ids.len());
        let mut saved = vec![0i64; ids.len()];
        let mut per_second = std::collections::BTreeMap::new();
        for now in (250..=20_000).step_by(250) {
            for (index, id) in ids.iter().enumerate() {
                if progress_save_due(id, saved[index], now, period) {
                    assert!(now - saved[index] <= period || saved[index] == 0);
                    saved[index] = now;
                    *per_second.entry((now - 1) / 1_000).or_insert(0) += 1;
                }
            }
        }
        let busiest = per_second.values().skip(4).max().copied().unwrap_or(0);
        assert!(
            busiest <= PROGRESS_STATES_PER_SECOND * 3 / 2,
            "{busiest} states in one second"
        );
        assert!(saved.iter().all(|at| *at >= 20_000 - period));
    }
}
