//! The store's upkeep. Retention of per-second traffic samples: every hour (and once at start)
//! the samples of rollouts that finished longer ago than `sample_retention` are deleted, a
//! bounded number of rollouts per pass so a first pass over a large store never holds the store
//! for long. A rollout's decisions, timeline entries and audit records are kept for good; only
//! the chart's raw seconds go (R-QUALITY-6). Checkpoints: every second the write-ahead log is
//! copied into the database file in the background, so that work (and its sync) does not fall
//! on a commit of the reconciler's.

use std::time::Duration;

use super::Daemon;
use crate::store::SamplesPruned;

/// How often the store's write-ahead log is copied into its database file.
const CHECKPOINT_PERIOD: Duration = Duration::from_secs(1);
/// How often the samples are pruned.
const PRUNE_PERIOD: Duration = Duration::from_secs(3600);
/// Rollouts pruned per batch; batches repeat until nothing is left, yielding in between.
const ROLLOUTS_PER_BATCH: u32 = 50;

impl Daemon {
    /// Deletes the samples of rollouts finished more than `sample_retention` ago; returns what
    /// was deleted.
    pub async fn prune_samples(&self) -> Result<SamplesPruned, super::ControlError> {
        let mut total = SamplesPruned::default();
        // A retention reaching before the calendar's start keeps everything.
        let Some(cutoff) = chrono::Duration::from_std(self.config.sample_retention)
            .ok()
            .and_then(|retention| self.now().checked_sub_signed(retention))
        else {
            return Ok(total);
        };
        loop {
            let batch = self
                .store
                .prune_rollout_samples(cutoff, ROLLOUTS_PER_BATCH)
                .await?;
            total.rollouts += batch.rollouts;
            total.rows += batch.rows;
            if batch.rollouts < u64::from(ROLLOUTS_PER_BATCH) {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Prunes the samples now and then every hour until `shutdown`.
    pub async fn run_sample_retention(
        self: std::sync::Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut interval = tokio::time::interval(PRUNE_PERIOD);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => break,
            }
            match self.prune_samples().await {
                Ok(pruned) if pruned.rollouts > 0 => tracing::info!(
                    rollouts = pruned.rollouts,
                    rows = pruned.rows,
                    "deleted the per-second samples of rollouts older than sample_retention"
                ),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "cannot delete old per-second samples")
                }
            }
        }
    }

    /// Checkpoints the store every second until `shutdown` (see [`crate::store::Store::checkpoint`]).
    pub async fn run_store_checkpoints(
        self: std::sync::Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut interval = tokio::time::interval(CHECKPOINT_PERIOD);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => break,
            }
            if let Err(error) = self.store.checkpoint().await {
                tracing::warn!(error = %error, "cannot checkpoint the store");
            }
        }
    }
}
