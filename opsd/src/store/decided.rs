//! The decisions of one reconciler tick stored together: each deciding rollout's new state at
//! the revision it was read at, with its decisions and their timeline events, in one
//! transaction. A tick where many rollouts decide commits (and syncs the log) once instead of
//! three times per rollout, and a decision is never on record without the state it moved the
//! rollout to, nor the state without its decision.

use chrono::{DateTime, Utc};

use super::progress::why_refused;
use super::rollouts::{insert_decision, UPDATE_ROLLOUT};
use super::timeline::insert_event;
use super::{require_json, time_text, NewDecision, NewEvent, Store, StoreError};

/// One rollout's decided step.
#[derive(Debug, Clone)]
pub struct DecidedStep {
    pub rollout_id: String,
    /// The revision the state was read at; a rollout at another revision refuses the step.
    pub expected_revision: i64,
    pub phase: String,
    pub state_json: String,
    /// When and how (the outcome) the rollout finished, when this step ended it.
    pub finished: Option<(DateTime<Utc>, String)>,
    pub decisions: Vec<NewDecision>,
    pub events: Vec<NewEvent>,
}

impl Store {
    /// Stores every step in one transaction and answers, step by step, the rollout's new
    /// revision or why the step was refused (a stale revision, a finished or unknown rollout,
    /// a state that is not JSON), as [`Store::update_rollout`] refuses it; nothing of a refused
    /// step is stored, and the others are. An error of the store itself fails the whole call
    /// and stores nothing.
    pub async fn save_decided_steps(
        &self,
        steps: &[DecidedStep],
    ) -> Result<Vec<Result<i64, StoreError>>, StoreError> {
        let mut results = Vec::with_capacity(steps.len());
        if steps.is_empty() {
            return Ok(results);
        }
        let mut transaction = self.begin_write().await?;
        let updated_at = time_text(Utc::now());
        for step in steps {
            if let Err(error) = require_json(&step.state_json, "rollout state") {
                results.push(Err(error));
                continue;
            }
            let (finished_at, outcome) = match &step.finished {
                Some((at, outcome)) => (Some(time_text(*at)), Some(outcome.as_str())),
                None => (None, None),
            };
            let revision: Option<i64> = sqlx::query_scalar(UPDATE_ROLLOUT)
                .bind(&step.phase)
                .bind(&step.state_json)
                .bind(&updated_at)
                .bind(&finished_at)
                .bind(outcome)
                .bind(&step.rollout_id)
                .bind(step.expected_revision)
                .fetch_optional(&mut *transaction)
                .await?;
            let Some(revision) = revision else {
                let refused =
                    why_refused(&mut transaction, &step.rollout_id, step.expected_revision).await?;
                results.push(Err(refused));
                continue;
            };
            for decision in &step.decisions {
                insert_decision(&mut transaction, decision).await?;
            }
            for event in &step.events {
                insert_event(&mut transaction, event).await?;
            }
            if let Some(outcome) = outcome {
                tracing::info!(rollout_id = %step.rollout_id, revision, outcome, phase = %step.phase, "rollout finished");
            }
            results.push(Ok(revision));
        }
        transaction.commit().await?;
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewRollout;

    async fn store_with_rollouts(ids: &[&str]) -> Store {
        let store = crate::store::tests::test_store().await;
        for (index, id) in ids.iter().enumerate() {
            store
                .insert_rollout(NewRollout {
                    id: id.to_string(),
                    service: format!("svc-{index}"),
                    stable_version: "v1".into(),
                    canary_version: "v2".into(),
                    plan_name: "plan".into(),
                    phase: "baking".into(),
                    state_json: "{}".into(),
                    created_at: Utc::now(),
                })
                .await
                .expect("the rollout is stored");
        }
        store
    }

    fn step(id: &str, revision: i64, verdict: &str) -> DecidedStep {
        DecidedStep {
            rollout_id: id.to_string(),
            expected_revision: revision,
            phase: "baking".into(),
            state_json: format!(r#"{{"decided":"{verdict}"}}"#),
            finished: None,
            decisions: vec![NewDecision {
                rollout_id: id.to_string(),
                at: Utc::now(),
                step_index: 1,
                verdict: verdict.to_string(),
                summary: format!("{id} {verdict}"),
                evidence: serde_json::json!({}),
            }],
            events: vec![NewEvent {
                at: Utc::now(),
                service: "svc".into(),
                rollout_id: Some(id.to_string()),
                kind: format!("decision.{verdict}"),
                message: format!("{id} {verdict}"),
                data: serde_json::Value::Null,
            }],
        }
    }

    #[tokio::test]
    async fn every_step_is_stored_with_its_decisions_and_events() {
        let store = store_with_rollouts(&["r-1", "r-2"]).await;
        let results = store
            .save_decided_steps(&[step("r-1", 1, "advance"), step("r-2", 1, "roll_back")])
            .await
            .expect("the steps are stored");
        assert!(matches!(results.as_slice(), [Ok(2), Ok(2)]), "{results:?}");
        let stored = store.get_rollout("r-2").await.unwrap().unwrap();
        assert_eq!(stored.revision, 2);
        assert!(stored.state_json.contains("roll_back"));
        let decisions = store.list_decisions("r-1").await.unwrap();
        assert_eq!(decisions.len(), 1);
        assert_eq!(decisions[0].verdict, "advance");
        let events = store.list_events(None, None, 10).await.unwrap();
        assert_eq!(events.len(), 2);
    }

    #[tokio::test]
    async fn a_refused_step_stores_nothing_of_its_own_and_the_others_are_stored() {
        let store = store_with_rollouts(&["r-1", "r-2"]).await;
        let mut not_json = step("r-3", 1, "advance");
        not_json.rollout_id = "r-1".into();
        not_json.state_json = "{not json".into();
        let results = store
            .save_decided_steps(&[
                step("r-1", 7, "advance"),
                step("r-2", 1, "promote"),
                step("unknown", 1, "advance"),
                not_json,
            ])
            .await
            .expect("the call succeeds");
        assert!(
            matches!(
                results.as_slice(),
                [
                    Err(StoreError::Conflict {
                        expected_revision: 7,
                        found_revision: 1,
                        ..
                    }),
                    Ok(2),
                    Err(StoreError::RolloutNotFound { .. }),
                    Err(StoreError::InvalidJson { .. }),
                ]
            ),
            "{results:?}"
        );
        assert!(store.list_decisions("r-1").await.unwrap().is_empty());
        assert_eq!(store.list_decisions("r-2").await.unwrap().len(), 1);
        let events = store.list_events(None, None, 10).await.unwrap();
        assert_eq!(events.len(), 1, "only the stored step's event");
        assert_eq!(store.get_rollout("r-1").await.unwrap().unwrap().revision, 1);
    }

    #[tokio::test]
    async fn a_finishing_step_records_the_outcome_and_a_finished_rollout_refuses_more() {
        let store = store_with_rollouts(&["r-1"]).await;
        let mut finishing = step("r-1", 1, "promote");
        finishing.phase = "promoted".into();
        finishing.finished = Some((Utc::now(), "promoted".into()));
        let results = store.save_decided_steps(&[finishing]).await.unwrap();
        assert!(matches!(results.as_slice(), [Ok(2)]));
        let stored = store.get_rollout("r-1").await.unwrap().unwrap();
        assert_eq!(stored.outcome.as_deref(), Some("promoted"));
        let results = store
            .save_decided_steps(&[step("r-1", 2, "advance")])
            .await
            .unwrap();
        assert!(
            matches!(
                results.as_slice(),
                [Err(StoreError::RolloutFinished { .. })]
            ),
            "{results:?}"
        );
    }
}
