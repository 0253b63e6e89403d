//! A reconciler tick's progress for many rollouts in one transaction: each rollout's state at
//! the revision it was read at, and the per-second traffic of its canary and baseline. One
//! commit (one sync of the write-ahead log) and two statements per tick, instead of several
//! commits and a statement per second per rollout.

use std::collections::{HashMap, HashSet};

use sqlx::{AnyConnection, Row};

use super::{require_json, time_text, Backend, SampleRelease, Store, StoreError};
use crate::core::traffic::SecondSample;

/// What one rollout's tick changed without deciding anything.
#[derive(Debug, Clone, Default)]
pub struct RolloutProgress {
    pub rollout_id: String,
    /// The new phase and state to store at `expected_revision`; `None` when only samples are new.
    pub state: Option<ProgressState>,
    /// Seconds of each release to store, replacing seconds already stored.
    pub samples: Vec<(SampleRelease, Vec<SecondSample>)>,
}

/// A rollout's state as [`Store::update_rollout`] stores it, for an unfinished rollout.
#[derive(Debug, Clone)]
pub struct ProgressState {
    pub expected_revision: i64,
    pub phase: String,
    pub state_json: String,
}

/// What became of one rollout's progress.
#[derive(Debug)]
pub struct ProgressSaved {
    /// The new revision when the state was stored; its error when it was refused (the others
    /// are stored all the same).
    pub state: Option<Result<i64, StoreError>>,
    /// Whether the samples were stored (an error is logged: charts never stop a rollout).
    pub samples_saved: bool,
}

/// One rollout's new state at the revision it was read at; returns the new revision, or no
/// row when the revision moved on or the rollout finished. One prepared statement per state:
/// a state is kilobytes of JSON, which a JSON array of states would escape, parse and unescape
/// again.
const UPDATE_STATE: &str = "\
UPDATE rollouts SET phase = $1, state_json = $2, revision = revision + 1, updated_at = $3
WHERE id = $4 AND revision = $5 AND finished_at IS NULL
RETURNING revision";

/// Every second of every rollout's traffic in one statement: `$1` is a JSON array of
/// `{rollout_id, release, second, sample}` objects whose rollouts exist. A JSON array is read
/// as rows by `json_each` on SQLite and `jsonb_array_elements` on PostgreSQL.
fn insert_samples(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "\
INSERT INTO rollout_samples (rollout_id, release, second, sample_json)
SELECT value ->> 'rollout_id', value ->> 'release', value ->> 'second', value ->> 'sample'
FROM json_each($1) AS sample
WHERE EXISTS (SELECT 1 FROM rollouts WHERE rollouts.id = sample.value ->> 'rollout_id')
ON CONFLICT (rollout_id, release, second) DO UPDATE SET sample_json = excluded.sample_json"
        }
        Backend::Postgres => {
            "\
INSERT INTO rollout_samples (rollout_id, release, second, sample_json)
SELECT value ->> 'rollout_id', value ->> 'release', CAST(value ->> 'second' AS BIGINT),
       value ->> 'sample'
FROM jsonb_array_elements(CAST($1 AS JSONB)) AS sample (value)
WHERE EXISTS (SELECT 1 FROM rollouts WHERE rollouts.id = sample.value ->> 'rollout_id')
ON CONFLICT (rollout_id, release, second) DO UPDATE SET sample_json = excluded.sample_json"
        }
    }
}

/// Which of the ids in `$1`, a JSON array of text, name a stored rollout.
fn known_rollouts(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SELECT id FROM rollouts WHERE id IN (SELECT value FROM json_each($1))",
        Backend::Postgres => {
            "SELECT id FROM rollouts \
             WHERE id IN (SELECT jsonb_array_elements_text(CAST($1 AS JSONB)))"
        }
    }
}

/// States or seconds per statement: few statements per tick, and each one's JSON text small
/// (a few hundred kilobytes), so a tick of a thousand rollouts does not hold megabytes at once.
const ENTRIES_PER_STATEMENT: usize = 500;

impl Store {
    /// Stores every rollout's progress in one transaction: each state a prepared statement,
    /// then the samples [`ENTRIES_PER_STATEMENT`] at a time, committed without waiting for the
    /// disk (progress may be lost to a machine's crash: nothing a decision rests on). A state at a stale revision, or of a finished or unknown rollout, is
    /// refused for that rollout alone, as [`Store::update_rollout`] refuses it; samples of an
    /// unknown rollout are dropped; an error of the store itself fails the whole call.
    pub async fn save_progress(
        &self,
        progress: &[RolloutProgress],
    ) -> Result<Vec<ProgressSaved>, StoreError> {
        if progress.is_empty() {
            return Ok(Vec::new());
        }
        let mut states = Vec::new();
        let mut samples = Vec::new();
        let mut refused: HashMap<&str, StoreError> = HashMap::new();
        for rollout in progress {
            if let Some(state) = &rollout.state {
                match require_json(&state.state_json, "rollout state") {
                    Ok(()) => states.push((rollout.rollout_id.as_str(), state)),
                    Err(error) => {
                        refused.insert(&rollout.rollout_id, error);
                    }
                }
            }
            for (release, seconds) in &rollout.samples {
                for entry in seconds {
                    let sample = serde_json::to_string(&entry.sample).map_err(|error| {
                        StoreError::Corrupt {
                            what: "a traffic sample".into(),
                            detail: error.to_string(),
                        }
                    })?;
                    samples.push(serde_json::json!({
                        "rollout_id": rollout.rollout_id,
                        "release": release.as_str(),
                        "second": entry.second,
                        "sample": sample,
                    }));
                }
            }
        }
        // Progress may be lost to a crash of the machine (a restart bakes the step again; no
        // decision rests on it), so its commit does not wait for the disk: on a file store in
        // WAL mode, `synchronous = NORMAL` keeps the store consistent and leaves the sync to the
        // next decision's commit or checkpoint (the connection goes back to the pool only once
        // it syncs every commit again); on PostgreSQL, `synchronous_commit = off` for this
        // transaction alone.
        let backend = self.backend;
        let mut connection = self.pool().acquire().await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *connection)
                .await?;
        }
        let saved =
            save_progress_on(self, &mut connection, progress, states, samples, refused).await;
        if backend == Backend::Sqlite
            && sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *connection)
                .await
                .is_err()
        {
            connection.close_on_drop();
        }
        saved
    }
}

/// [`Store::save_progress`]'s transaction on `connection`, its states and samples checked.
async fn save_progress_on(
    store: &Store,
    connection: &mut AnyConnection,
    progress: &[RolloutProgress],
    states: Vec<(&str, &ProgressState)>,
    samples: Vec<serde_json::Value>,
    mut refused: HashMap<&str, StoreError>,
) -> Result<Vec<ProgressSaved>, StoreError> {
    let backend = store.backend;
    let mut transaction = store.begin_write_on(connection).await?;
    if backend == Backend::Postgres {
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *transaction)
            .await?;
    }
    let mut revisions: HashMap<String, i64> = HashMap::new();
    let updated_at = time_text(chrono::Utc::now());
    for (id, state) in states {
        let revision: Option<i64> = sqlx::query_scalar(UPDATE_STATE)
            .bind(&state.phase)
            .bind(&state.state_json)
            .bind(&updated_at)
            .bind(id)
            .bind(state.expected_revision)
            .fetch_optional(&mut *transaction)
            .await?;
        if let Some(revision) = revision {
            revisions.insert(id.to_string(), revision);
        }
    }
    for chunk in samples.chunks(ENTRIES_PER_STATEMENT) {
        sqlx::query(insert_samples(backend))
            .bind(serde_json::to_string(chunk).unwrap_or_default())
            .execute(&mut *transaction)
            .await?;
    }
    let ids: Vec<&str> = progress
        .iter()
        .map(|rollout| rollout.rollout_id.as_str())
        .collect();
    let known: HashSet<String> = sqlx::query_scalar(known_rollouts(backend))
        .bind(serde_json::to_string(&ids).unwrap_or_default())
        .fetch_all(&mut *transaction)
        .await?
        .into_iter()
        .collect();
    let mut saved = Vec::with_capacity(progress.len());
    for rollout in progress {
        let id = rollout.rollout_id.as_str();
        let state = match &rollout.state {
            None => None,
            Some(state) => Some(match (revisions.get(id), refused.remove(id)) {
                (_, Some(error)) => Err(error),
                (Some(revision), None) => Ok(*revision),
                (None, None) => {
                    Err(why_refused(&mut transaction, id, state.expected_revision).await?)
                }
            }),
        };
        let known = known.contains(id);
        if !known && !rollout.samples.is_empty() {
            tracing::warn!(rollout = %id, "could not keep the per-second traffic of an unknown rollout");
        }
        saved.push(ProgressSaved {
            state,
            samples_saved: known,
        });
    }
    transaction.commit().await?;
    Ok(saved)
}

/// Why the state of `rollout_id` at `expected_revision` was not stored.
pub(super) async fn why_refused(
    connection: &mut AnyConnection,
    rollout_id: &str,
    expected_revision: i64,
) -> Result<StoreError, StoreError> {
    let current = sqlx::query("SELECT revision, outcome FROM rollouts WHERE id = $1")
        .bind(rollout_id)
        .fetch_optional(&mut *connection)
        .await?;
    Ok(match current {
        None => StoreError::RolloutNotFound {
            rollout_id: rollout_id.to_string(),
        },
        Some(row) => {
            let found_revision: i64 = row.try_get("revision")?;
            if found_revision != expected_revision {
                StoreError::Conflict {
                    rollout_id: rollout_id.to_string(),
                    expected_revision,
                    found_revision,
                }
            } else {
                StoreError::RolloutFinished {
                    rollout_id: rollout_id.to_string(),
                    outcome: row
                        .try_get::<Option<String>, _>("outcome")?
                        .unwrap_or_default(),
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::traffic::TrafficSample;
    use crate::store::tests::new_rollout;

    fn progress(id: &str, expected_revision: i64, step: u32) -> RolloutProgress {
        RolloutProgress {
            rollout_id: id.into(),
            state: Some(ProgressState {
                expected_revision,
                phase: "baking".into(),
                state_json: format!("{{\"step\": {step}}}"),
            }),
            samples: vec![(
                SampleRelease::Canary,
                vec![SecondSample {
                    second: 7,
                    sample: TrafficSample::default(),
                }],
            )],
        }
    }

    #[tokio::test]
    async fn each_rollout_is_stored_at_its_revision_and_a_stale_one_is_refused_alone() {
        let store = crate::store::tests::test_store().await;
        for (id, service) in [("r1", "a"), ("r2", "b")] {
            store
                .insert_rollout(new_rollout(id, service, 0))
                .await
                .unwrap();
        }
        let saved = store
            .save_progress(&[progress("r1", 1, 1), progress("r2", 5, 1)])
            .await
            .unwrap();
        assert_eq!(saved[0].state.as_ref().unwrap().as_ref().unwrap(), &2);
        assert!(matches!(
            saved[1].state,
            Some(Err(StoreError::Conflict {
                expected_revision: 5,
                found_revision: 1,
                ..
            }))
        ));
        assert!(saved.iter().all(|saved| saved.samples_saved));
        let r1 = store.get_rollout("r1").await.unwrap().unwrap();
        assert_eq!((r1.revision, r1.state_json.as_str()), (2, "{\"step\": 1}"));
        assert_eq!(store.get_rollout("r2").await.unwrap().unwrap().revision, 1);
        assert_eq!(store.rollout_samples("r2").await.unwrap().canary.len(), 1);
    }

    #[tokio::test]
    async fn samples_of_an_unknown_rollout_are_refused_without_failing_the_others() {
        let store = crate::store::tests::test_store().await;
        store
            .insert_rollout(new_rollout("r1", "a", 0))
            .await
            .unwrap();
        let mut unknown = progress("missing", 1, 1);
        unknown.state = None;
        let saved = store
            .save_progress(&[unknown, progress("r1", 1, 2)])
            .await
            .unwrap();
        assert!(!saved[0].samples_saved);
        assert!(saved[1].samples_saved);
        assert_eq!(store.get_rollout("r1").await.unwrap().unwrap().revision, 2);
    }
}
