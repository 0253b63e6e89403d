//! Rollouts and their decisions in the store: at most one unfinished rollout per service
//! (a partial unique index), and optimistic revisions so that only one opsd drives a rollout.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;
use sqlx::{AnyConnection, Row};

use super::{
    narrow, parse_json, parse_optional_time, parse_time, require_json, time_text, violation, Store,
    StoreError,
};

/// A rollout's new phase and state (`?1`, `?2`), stored at `?3` with its end (`?4`, `?5`) when
/// it finished, if it is at the revision it was read at (`?6` the id, `?7` the revision);
/// returns the new revision, or no row when the rollout moved on, finished or is unknown.
pub(super) const UPDATE_ROLLOUT: &str = "\
UPDATE rollouts SET phase = $1, state_json = $2, revision = revision + 1, updated_at = $3,
       finished_at = $4, outcome = $5
WHERE id = $6 AND revision = $7 AND finished_at IS NULL
RETURNING revision";

/// Appends a decision, numbered after the rollout's last one, on `connection` (a transaction
/// of [`Store::save_decided_steps`] or a connection of its own).
pub(super) async fn insert_decision(
    connection: &mut AnyConnection,
    decision: &NewDecision,
) -> Result<i64, StoreError> {
    let appended = sqlx::query(
        "INSERT INTO decisions (rollout_id, seq, at, step_index, verdict, summary, evidence_json) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM decisions \
         WHERE rollout_id = $1 RETURNING seq",
    )
    .bind(&decision.rollout_id)
    .bind(time_text(decision.at))
    .bind(i64::from(decision.step_index))
    .bind(&decision.verdict)
    .bind(&decision.summary)
    .bind(decision.evidence.to_string())
    .fetch_one(&mut *connection)
    .await;
    match appended {
        Ok(row) => Ok(row.try_get("seq")?),
        Err(error) if violation(&error) == Some(ErrorKind::ForeignKeyViolation) => {
            Err(StoreError::RolloutNotFound {
                rollout_id: decision.rollout_id.clone(),
            })
        }
        Err(error) => Err(error.into()),
    }
}

/// A rollout about to start. It is stored with revision 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRollout {
    pub id: String,
    pub service: String,
    pub stable_version: String,
    pub canary_version: String,
    pub plan_name: String,
    pub phase: String,
    /// The engine's state, serialised JSON text.
    pub state_json: String,
    pub created_at: DateTime<Utc>,
}

/// A stored rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutRecord {
    pub id: String,
    pub service: String,
    pub stable_version: String,
    pub canary_version: String,
    pub plan_name: String,
    pub phase: String,
    pub state_json: String,
    /// 1 when inserted, then one more for every update. An update names the revision it read.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
}

impl RolloutRecord {
    /// Whether the rollout is over (it then never changes again).
    pub fn is_finished(&self) -> bool {
        self.finished_at.is_some()
    }
}

/// One decision of a rollout's analysis, about to be recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDecision {
    pub rollout_id: String,
    pub at: DateTime<Utc>,
    pub step_index: u32,
    pub verdict: String,
    pub summary: String,
    pub evidence: serde_json::Value,
}

/// A recorded decision; `seq` numbers a rollout's decisions 1, 2, ...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub rollout_id: String,
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub step_index: u32,
    pub verdict: String,
    pub summary: String,
    pub evidence: serde_json::Value,
}

/// The history of one service, newest first: the rows after `SELECT columns` (binds: the
/// service, the limit). Public so the scale benchmark prints the plan of this very statement.
pub const ROLLOUTS_OF_ONE_SERVICE: &str =
    "FROM rollouts WHERE service = $1 ORDER BY created_at DESC, rowid DESC LIMIT $2";

const ROLLOUT_COLUMNS: &str = "id, service, stable_version, canary_version, plan_name, phase, \
     state_json, revision, created_at, updated_at, finished_at, outcome";

impl Store {
    /// Records a new rollout. Fails with [`StoreError::RolloutInProgress`] when the service already
    /// has an unfinished rollout: the partial unique index decides, so two concurrent inserts for
    /// one service never both succeed.
    pub async fn insert_rollout(&self, rollout: NewRollout) -> Result<(), StoreError> {
        require_json(&rollout.state_json, "rollout state")?;
        let created_at = time_text(rollout.created_at);
        // The write lock is held from the start, so when the index refuses the row, the rollout
        // that holds the service is still there to be named. The insert runs in a savepoint:
        // PostgreSQL reads nothing more in a transaction whose statement failed until it rolls
        // back to before that statement.
        let mut transaction = self.begin_write().await?;
        sqlx::query("SAVEPOINT insert_rollout")
            .execute(&mut *transaction)
            .await?;
        let inserted = sqlx::query(
            "INSERT INTO rollouts (id, service, stable_version, canary_version, plan_name, phase, \
             state_json, revision, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9)",
        )
        .bind(&rollout.id)
        .bind(&rollout.service)
        .bind(&rollout.stable_version)
        .bind(&rollout.canary_version)
        .bind(&rollout.plan_name)
        .bind(&rollout.phase)
        .bind(&rollout.state_json)
        .bind(&created_at)
        .bind(&created_at)
        .execute(&mut *transaction)
        .await;
        match inserted {
            Ok(_) => {
                transaction.commit().await?;
                tracing::info!(
                    rollout_id = %rollout.id,
                    service = %rollout.service,
                    canary_version = %rollout.canary_version,
                    "rollout recorded"
                );
                Ok(())
            }
            Err(error) if violation(&error) == Some(ErrorKind::UniqueViolation) => {
                sqlx::query("ROLLBACK TO SAVEPOINT insert_rollout")
                    .execute(&mut *transaction)
                    .await?;
                Err(explain_refused_insert(&mut transaction, &rollout, error).await)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Stores the engine's new phase and state, and finishes the rollout when `finished` holds
    /// `(finished_at, outcome)`. Succeeds only if the rollout is still at `expected_revision`
    /// and unfinished; returns the new revision.
    pub async fn update_rollout(
        &self,
        rollout_id: &str,
        expected_revision: i64,
        phase: &str,
        state_json: &str,
        finished: Option<(DateTime<Utc>, &str)>,
    ) -> Result<i64, StoreError> {
        require_json(state_json, "rollout state")?;
        let (finished_at, outcome) = match finished {
            Some((at, outcome)) => (Some(time_text(at)), Some(outcome)),
            None => (None, None),
        };
        let mut transaction = self.begin_write().await?;
        let updated = sqlx::query(UPDATE_ROLLOUT)
            .bind(phase)
            .bind(state_json)
            .bind(time_text(Utc::now()))
            .bind(&finished_at)
            .bind(outcome)
            .bind(rollout_id)
            .bind(expected_revision)
            .fetch_optional(&mut *transaction)
            .await?;
        transaction.commit().await?;
        if let Some(row) = updated {
            let revision: i64 = row.try_get("revision")?;
            if let Some(outcome) = outcome {
                tracing::info!(rollout_id, revision, outcome, phase, "rollout finished");
            } else {
                tracing::debug!(rollout_id, revision, phase, "rollout updated");
            }
            return Ok(revision);
        }
        Err(match self.get_rollout(rollout_id).await? {
            None => StoreError::RolloutNotFound {
                rollout_id: rollout_id.to_string(),
            },
            Some(current) if current.revision != expected_revision => StoreError::Conflict {
                rollout_id: rollout_id.to_string(),
                expected_revision,
                found_revision: current.revision,
            },
            Some(current) => StoreError::RolloutFinished {
                rollout_id: rollout_id.to_string(),
                outcome: current.outcome.unwrap_or_default(),
            },
        })
    }

    /// Stores what happened after a rollout finished (its contract migrations) in its state,
    /// at the revision it was read at; phase and outcome stay as they are.
    pub async fn update_finished_rollout_state(
        &self,
        rollout_id: &str,
        expected_revision: i64,
        state_json: &str,
    ) -> Result<i64, StoreError> {
        require_json(state_json, "rollout state")?;
        let mut transaction = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE rollouts SET state_json = $1, revision = revision + 1, updated_at = $2 \
             WHERE id = $3 AND revision = $4 AND finished_at IS NOT NULL RETURNING revision",
        )
        .bind(state_json)
        .bind(time_text(Utc::now()))
        .bind(rollout_id)
        .bind(expected_revision)
        .fetch_optional(&mut *transaction)
        .await?;
        transaction.commit().await?;
        match updated {
            Some(row) => Ok(row.try_get("revision")?),
            None => Err(match self.get_rollout(rollout_id).await? {
                None => StoreError::RolloutNotFound {
                    rollout_id: rollout_id.to_string(),
                },
                Some(current) => StoreError::Conflict {
                    rollout_id: rollout_id.to_string(),
                    expected_revision,
                    found_revision: current.revision,
                },
            }),
        }
    }

    /// One rollout by id.
    pub async fn get_rollout(&self, rollout_id: &str) -> Result<Option<RolloutRecord>, StoreError> {
        let query = format!("SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE id = $1");
        let row = sqlx::query(&query)
            .bind(rollout_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    /// The service's unfinished rollout, if any.
    pub async fn active_rollout(&self, service: &str) -> Result<Option<RolloutRecord>, StoreError> {
        let query = format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE service = $1 AND finished_at IS NULL"
        );
        let row = sqlx::query(&query)
            .bind(service)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    /// Every unfinished rollout, oldest first: what opsd resumes after a restart.
    pub async fn active_rollouts(&self) -> Result<Vec<RolloutRecord>, StoreError> {
        let query = format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE finished_at IS NULL \
             ORDER BY created_at, rowid"
        );
        let rows = sqlx::query(&query).fetch_all(self.pool()).await?;
        rows.iter().map(rollout_from_row).collect()
    }

    /// Up to `limit` rollouts, of one service or of all, newest first.
    pub async fn list_rollouts(
        &self,
        service: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RolloutRecord>, StoreError> {
        // Two statements rather than `($1 IS NULL OR service = $1)`, which SQLite plans once
        // for both cases: by the index of all rollouts, scanning every service's.
        let rows = match service {
            Some(service) => {
                sqlx::query(&format!(
                    "SELECT {ROLLOUT_COLUMNS} {ROLLOUTS_OF_ONE_SERVICE}"
                ))
                .bind(service)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {ROLLOUT_COLUMNS} FROM rollouts \
                     ORDER BY created_at DESC, rowid DESC LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(rollout_from_row).collect()
    }

    /// The newest rollout of `service` whose canary was `version` and was rolled back, if any:
    /// what the quarantine gate reads.
    pub async fn rolled_back_rollout_of(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<RolloutRecord>, StoreError> {
        let query = format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE service = $1 AND canary_version = $2 \
             AND phase = 'rolled_back' ORDER BY created_at DESC, rowid DESC LIMIT 1"
        );
        let row = sqlx::query(&query)
            .bind(service)
            .bind(version)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(rollout_from_row).transpose()
    }

    /// Records a decision as the rollout's next `seq`, which it returns. The number is taken and
    /// the row written in one statement, so concurrent appends never share a number.
    pub async fn append_decision(&self, decision: &NewDecision) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let seq = insert_decision(&mut transaction, decision).await?;
        transaction.commit().await?;
        Ok(seq)
    }

    /// A rollout's decisions in the order they were made.
    pub async fn list_decisions(
        &self,
        rollout_id: &str,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT rollout_id, seq, at, step_index, verdict, summary, evidence_json \
             FROM decisions WHERE rollout_id = $1 ORDER BY seq",
        )
        .bind(rollout_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(decision_from_row).collect()
    }

    /// The decisions of every rollout of `service` created at or after `since`, by rollout id,
    /// each in order: the decisions of a page of history (whose oldest rollout was created at
    /// `since`) in one query rather than one per rollout.
    pub async fn decisions_of_rollouts_since(
        &self,
        service: &str,
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, Vec<DecisionRecord>>, StoreError> {
        let rows = sqlx::query(
            "SELECT rollout_id, seq, at, step_index, verdict, summary, evidence_json \
             FROM decisions WHERE rollout_id IN \
               (SELECT id FROM rollouts WHERE service = $1 AND created_at >= $2) \
             ORDER BY rollout_id, seq",
        )
        .bind(service)
        .bind(time_text(since))
        .fetch_all(self.pool())
        .await?;
        let mut by_rollout: HashMap<String, Vec<DecisionRecord>> = HashMap::new();
        for row in &rows {
            let decision = decision_from_row(row)?;
            by_rollout
                .entry(decision.rollout_id.clone())
                .or_default()
                .push(decision);
        }
        Ok(by_rollout)
    }
}

/// Names what the unique constraints refused: a reused id, or the service's active rollout.
/// Runs inside the refused insert's write transaction, so nothing changed in between.
async fn explain_refused_insert(
    connection: &mut AnyConnection,
    rollout: &NewRollout,
    refused: sqlx::Error,
) -> StoreError {
    let same_id = sqlx::query("SELECT 1 FROM rollouts WHERE id = $1")
        .bind(&rollout.id)
        .fetch_optional(&mut *connection)
        .await;
    match same_id {
        Ok(Some(_)) => {
            return StoreError::DuplicateRollout {
                rollout_id: rollout.id.clone(),
            }
        }
        Ok(None) => {}
        Err(error) => return error.into(),
    }
    let active = sqlx::query("SELECT id FROM rollouts WHERE service = $1 AND finished_at IS NULL")
        .bind(&rollout.service)
        .fetch_optional(&mut *connection)
        .await;
    match active {
        Ok(Some(row)) => match row.try_get::<String, _>("id") {
            Ok(active_id) => {
                tracing::warn!(
                    service = %rollout.service,
                    active_rollout_id = %active_id,
                    refused_rollout_id = %rollout.id,
                    "rollout refused: another is in progress"
                );
                StoreError::RolloutInProgress {
                    service: rollout.service.clone(),
                    rollout_id: active_id,
                }
            }
            Err(error) => error.into(),
        },
        Ok(None) => refused.into(),
        Err(error) => error.into(),
    }
}

fn rollout_from_row(row: &AnyRow) -> Result<RolloutRecord, StoreError> {
    Ok(RolloutRecord {
        id: row.try_get("id")?,
        service: row.try_get("service")?,
        stable_version: row.try_get("stable_version")?,
        canary_version: row.try_get("canary_version")?,
        plan_name: row.try_get("plan_name")?,
        phase: row.try_get("phase")?,
        state_json: row.try_get("state_json")?,
        revision: row.try_get("revision")?,
        created_at: parse_time(
            &row.try_get::<String, _>("created_at")?,
            "rollouts.created_at",
        )?,
        updated_at: parse_time(
            &row.try_get::<String, _>("updated_at")?,
            "rollouts.updated_at",
        )?,
        finished_at: parse_optional_time(row.try_get("finished_at")?, "rollouts.finished_at")?,
        outcome: row.try_get("outcome")?,
    })
}

fn decision_from_row(row: &AnyRow) -> Result<DecisionRecord, StoreError> {
    Ok(DecisionRecord {
        rollout_id: row.try_get("rollout_id")?,
        seq: row.try_get("seq")?,
        at: parse_time(&row.try_get::<String, _>("at")?, "decisions.at")?,
        step_index: narrow(row.try_get("step_index")?, "decisions.step_index")?,
        verdict: row.try_get("verdict")?,
        summary: row.try_get("summary")?,
        evidence: parse_json(
            &row.try_get::<String, _>("evidence_json")?,
            "decisions.evidence_json",
        )?,
    })
}
