//! Per-second traffic of a rollout's canary and baseline, kept for the dashboard's charts: the
//! reconciler writes the seconds it read (again for the last few, which may still have been
//! counting), the API reads them back for one rollout, and the samples of rollouts finished
//! longer ago than `sample_retention` are deleted (`prune_rollout_samples`).

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

use super::{parse_json, time_text, Store, StoreError};
use crate::core::traffic::{SecondSample, TrafficSample};

/// Which of a rollout's two releases a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleRelease {
    Canary,
    Baseline,
}

impl SampleRelease {
    pub fn as_str(self) -> &'static str {
        match self {
            SampleRelease::Canary => "canary",
            SampleRelease::Baseline => "baseline",
        }
    }
}

/// A rollout's recorded seconds, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolloutSamples {
    pub canary: Vec<SecondSample>,
    pub baseline: Vec<SecondSample>,
}

impl Store {
    /// Stores `samples` of one release of `rollout_id`, replacing seconds already stored.
    pub async fn record_rollout_samples(
        &self,
        rollout_id: &str,
        release: SampleRelease,
        samples: &[SecondSample],
    ) -> Result<(), StoreError> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut transaction = self.begin_write().await?;
        insert_samples(&mut transaction, rollout_id, release, samples).await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Every stored second of `rollout_id`, oldest first.
    pub async fn rollout_samples(&self, rollout_id: &str) -> Result<RolloutSamples, StoreError> {
        let rows = sqlx::query(
            "SELECT release, second, sample_json FROM rollout_samples WHERE rollout_id = $1 \
             ORDER BY release, second",
        )
        .bind(rollout_id)
        .fetch_all(self.pool())
        .await?;
        let mut samples = RolloutSamples::default();
        for row in rows {
            let release: String = row.try_get("release")?;
            let sample: TrafficSample = serde_json::from_value(parse_json(
                &row.try_get::<String, _>("sample_json")?,
                "rollout_samples.sample_json",
            )?)
            .map_err(|error| StoreError::Corrupt {
                what: "rollout_samples.sample_json".into(),
                detail: error.to_string(),
            })?;
            let entry = SecondSample {
                second: row.try_get("second")?,
                sample,
            };
            match release.as_str() {
                "canary" => samples.canary.push(entry),
                _ => samples.baseline.push(entry),
            }
        }
        Ok(samples)
    }
}

/// What one pruning pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SamplesPruned {
    /// Rollouts whose samples were deleted.
    pub rollouts: u64,
    /// Per-second rows deleted.
    pub rows: u64,
}

impl Store {
    /// Deletes the per-second samples of at most `max_rollouts` rollouts that finished before
    /// `finished_before`, oldest first, one rollout per transaction (so the reconciler's writes
    /// never wait long). Running rollouts keep theirs whatever their age.
    pub async fn prune_rollout_samples(
        &self,
        finished_before: DateTime<Utc>,
        max_rollouts: u32,
    ) -> Result<SamplesPruned, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM rollouts WHERE finished_at IS NOT NULL AND finished_at < $1 \
             AND EXISTS (SELECT 1 FROM rollout_samples WHERE rollout_id = rollouts.id) \
             ORDER BY finished_at, id LIMIT $2",
        )
        .bind(time_text(finished_before))
        .bind(i64::from(max_rollouts))
        .fetch_all(self.pool())
        .await?;
        let mut pruned = SamplesPruned::default();
        for id in ids {
            let mut transaction = self.begin_write().await?;
            let deleted = sqlx::query("DELETE FROM rollout_samples WHERE rollout_id = $1")
                .bind(&id)
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
            pruned.rollouts += 1;
            pruned.rows += deleted.rows_affected();
        }
        Ok(pruned)
    }
}

/// Writes `samples` of one release of `rollout_id` on `connection` (inside the caller's
/// transaction), replacing seconds already stored.
async fn insert_samples(
    connection: &mut AnyConnection,
    rollout_id: &str,
    release: SampleRelease,
    samples: &[SecondSample],
) -> Result<(), StoreError> {
    for sample in samples {
        let json = serde_json::to_string(&sample.sample).map_err(|error| StoreError::Corrupt {
            what: "a traffic sample".into(),
            detail: error.to_string(),
        })?;
        sqlx::query(
            "INSERT INTO rollout_samples (rollout_id, release, second, sample_json) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (rollout_id, release, second) \
             DO UPDATE SET sample_json = excluded.sample_json",
        )
        .bind(rollout_id)
        .bind(release.as_str())
        .bind(sample.second)
        .bind(json)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{at, new_rollout};

    fn second(second: i64, requests: u64, errors: u64) -> SecondSample {
        let mut sample = TrafficSample::default();
        for index in 0..requests {
            sample.record(10 + index, index < errors);
        }
        SecondSample { second, sample }
    }

    #[tokio::test]
    async fn samples_are_kept_per_release_and_a_second_written_again_is_replaced() {
        let store = crate::store::tests::test_store().await;
        store
            .insert_rollout(new_rollout("r1", "steno", 0))
            .await
            .unwrap();
        store
            .record_rollout_samples(
                "r1",
                SampleRelease::Canary,
                &[second(10, 2, 0), second(11, 1, 1)],
            )
            .await
            .unwrap();
        store
            .record_rollout_samples("r1", SampleRelease::Baseline, &[second(10, 5, 0)])
            .await
            .unwrap();
        store
            .record_rollout_samples("r1", SampleRelease::Canary, &[second(11, 4, 2)])
            .await
            .unwrap();
        let samples = store.rollout_samples("r1").await.unwrap();
        assert_eq!(samples.canary, vec![second(10, 2, 0), second(11, 4, 2)]);
        assert_eq!(samples.baseline, vec![second(10, 5, 0)]);
        assert_eq!(
            store.rollout_samples("other").await.unwrap(),
            RolloutSamples::default()
        );
    }

    #[tokio::test]
    async fn pruning_deletes_only_samples_of_rollouts_finished_before_the_cutoff() {
        let store = crate::store::tests::test_store().await;
        for (id, created) in [("old", 0), ("recent", 1_000), ("running", 0)] {
            store
                .insert_rollout(new_rollout(id, id, created))
                .await
                .unwrap();
            store
                .record_rollout_samples(id, SampleRelease::Canary, &[second(5, 2, 0)])
                .await
                .unwrap();
            store
                .record_rollout_samples(id, SampleRelease::Baseline, &[second(5, 3, 0)])
                .await
                .unwrap();
        }
        let finish = |id: &'static str, second: i64| {
            let store = store.clone();
            async move {
                store
                    .update_rollout(id, 1, "promoted", "{}", Some((at(second), "promoted")))
                    .await
                    .unwrap();
            }
        };
        finish("old", 100).await;
        finish("recent", 2_000).await;
        let pruned = store.prune_rollout_samples(at(1_500), 10).await.unwrap();
        assert_eq!(
            pruned,
            SamplesPruned {
                rollouts: 1,
                rows: 2
            }
        );
        assert_eq!(
            store.rollout_samples("old").await.unwrap(),
            RolloutSamples::default()
        );
        assert_eq!(
            store.rollout_samples("recent").await.unwrap().canary.len(),
            1
        );
        assert_eq!(
            store.rollout_samples("running").await.unwrap().canary.len(),
            1
        );
        let again = store.prune_rollout_samples(at(1_500), 10).await.unwrap();
        assert_eq!(again, SamplesPruned::default(), "nothing left to prune");
        let limited = store.prune_rollout_samples(at(3_000), 0).await.unwrap();
        assert_eq!(limited, SamplesPruned::default(), "at most max_rollouts");
    }

    #[tokio::test]
    async fn samples_of_an_unknown_rollout_are_refused() {
        let store = crate::store::tests::test_store().await;
        assert!(store
            .record_rollout_samples("missing", SampleRelease::Canary, &[second(1, 1, 0)])
            .await
            .is_err());
    }
}
