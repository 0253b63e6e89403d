//! The end of a rollout: all traffic to the winner, the new stable release recorded, the loser
//! stopped, and the CDN purged after a promotion.

use super::{ActiveRollout, ControlError, Daemon};
use crate::core::event::EventKind;
use crate::core::rollout::Phase;
use crate::platform::TrafficSplit;
use crate::store::NewEvent;
use chrono::Utc;

impl Daemon {
    pub(super) async fn apply_split(
        &self,
        service: &str,
        split: &TrafficSplit,
    ) -> Result<(), ControlError> {
        let current = self.platforms.shifter.current_split(service).await?;
        if current.as_ref() != Some(split) {
            self.platforms.shifter.set_split(service, split).await?;
            tracing::info!(service = %service, stable = %split.stable, canary = ?split.canary, weight = split.canary_weight_percent, "traffic split applied");
        }
        Ok(())
    }

    /// Terminal: all traffic to the winner, record the new stable release, stop the loser.
    pub(super) async fn finish(&self, rollout: &mut ActiveRollout) -> Result<(), ControlError> {
        let state = &rollout.state;
        let (winner, loser) = match state.phase {
            Phase::Promoted => (state.canary.clone(), state.stable.clone()),
            _ => (state.stable.clone(), state.canary.clone()),
        };
        if let Some(handle) = rollout.canary_start.take() {
            handle.abort();
        }
        if state.phase == Phase::Promoted {
            self.platforms.runner.ensure_running(&winner).await?;
        }
        self.platforms
            .shifter
            .set_split(&state.service, &TrafficSplit::all_to(&winner.release_id()))
            .await?;
        self.store
            .set_stable_release(
                &state.service,
                &winner.version,
                &serde_json::to_value(&winner).unwrap_or_default(),
                self.now(),
            )
            .await?;
        self.stable
            .lock()
            .await
            .insert(state.service.clone(), winner.clone());
        if let Err(error) = self.platforms.runner.stop(&loser).await {
            tracing::warn!(release = %loser.release_id(), error = %error, "could not stop the release that lost the rollout");
        }
        if state.phase == Phase::Promoted && !rollout.finished {
            self.purge_cdn_after_promotion(&state.service, &state.id)
                .await;
        }
        Ok(())
    }

    /// Starts a CDN invalidation for a promoted release and follows it in the background, putting
    /// its start and end on the timeline. Services without a CDN are skipped.
    pub(super) async fn purge_cdn_after_promotion(&self, service: &str, rollout_id: &str) {
        match self.platforms.cdn.invalidate(service).await {
            Ok(None) => {}
            Ok(Some(invalidation_id)) => {
                self.event(
                    service,
                    Some(rollout_id),
                    EventKind::CdnInvalidation,
                    format!("CDN invalidation {invalidation_id} created after the promotion"),
                )
                .await;
                let cdn = self.platforms.cdn.clone();
                let store = self.store.clone();
                let service = service.to_string();
                let rollout_id = rollout_id.to_string();
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let outcome = loop {
                        match cdn.invalidation_completed(&service, &invalidation_id).await {
                            Ok(true) => break format!(
                                "CDN invalidation {invalidation_id} completed after {} s",
                                started.elapsed().as_secs()
                            ),
                            Ok(false) if started.elapsed() > std::time::Duration::from_secs(1800) => {
                                break format!("CDN invalidation {invalidation_id} still in progress after 30 min; stopped watching")
                            }
                            Ok(false) => tokio::time::sleep(std::time::Duration::from_secs(2)).await,
                            Err(error) => break format!("cannot follow CDN invalidation {invalidation_id}: {error}"),
                        }
                    };
                    tracing::info!(service = %service, message = %outcome, "cdn invalidation");
                    let _ = store
                        .append_event(&NewEvent {
                            at: Utc::now(),
                            service: service.clone(),
                            rollout_id: Some(rollout_id.clone()),
                            kind: EventKind::CdnInvalidation.as_str().into(),
                            message: outcome,
                            data: serde_json::Value::Null,
                        })
                        .await;
                });
            }
            Err(error) => {
                self.event(
                    service,
                    Some(rollout_id),
                    EventKind::CdnInvalidation,
                    format!("CDN invalidation failed: {error}"),
                )
                .await;
            }
        }
    }
}
