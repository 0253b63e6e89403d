//! What a failed reconciler tick leads to. The tick is always retried on the next one; a new
//! error (not the same as the last) goes on the timeline once, and traffic drift — someone else
//! changed the routing — also holds the rollout and pages.

use super::{ActiveRollout, ControlError, Daemon};
use crate::core::event::EventKind;
use crate::notify::{Notification, Severity};
use crate::platform::PlatformError;

/// How the daemon answers one failed tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FailureResponse {
    /// What the timeline records, when the error is new.
    pub event: EventKind,
    /// Drift detail the next observation carries (the core holds the rollout on it).
    pub drift: Option<String>,
    /// Whether a new error pages (critical notification).
    pub page: bool,
}

/// The pure policy: drift holds and pages, any other error is retried quietly.
pub(super) fn respond_to_failure(error: &ControlError) -> FailureResponse {
    match error {
        ControlError::Platform(PlatformError::Drift { detail, .. }) => FailureResponse {
            event: EventKind::Drift,
            drift: Some(detail.clone()),
            page: true,
        },
        _ => FailureResponse {
            event: EventKind::PlatformError,
            drift: None,
            page: false,
        },
    }
}

impl Daemon {
    /// Applies [`respond_to_failure`] to a failed tick of `rollout`.
    pub(super) async fn handle_failure(
        &self,
        service: &str,
        rollout: &mut ActiveRollout,
        error: &ControlError,
    ) {
        let message = error.to_string();
        let response = respond_to_failure(error);
        if response.drift.is_some() {
            rollout.traffic_drift = response.drift;
        }
        tracing::error!(service = %service, error = %message, "reconcile failed; retrying next tick");
        if rollout.last_error.as_deref() == Some(message.as_str()) {
            return;
        }
        let rollout_id = rollout.state.id.clone();
        self.event(service, Some(&rollout_id), response.event, message.clone())
            .await;
        if response.page {
            self.notifier.send(
                Notification::new(
                    format!("rollout/{rollout_id}/drift"),
                    Severity::Critical,
                    service,
                    format!("{service}: traffic drift; opsd holds the rollout"),
                )
                .with_body(message.clone())
                .for_rollout(rollout_id),
            );
        }
        rollout.last_error = Some(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_holds_and_pages_and_other_errors_are_retried_quietly() {
        let drift = ControlError::Platform(PlatformError::Drift {
            target: "steno".into(),
            detail: "the alias points at version 7".into(),
        });
        assert_eq!(
            respond_to_failure(&drift),
            FailureResponse {
                event: EventKind::Drift,
                drift: Some("the alias points at version 7".into()),
                page: true
            }
        );
        let unavailable = ControlError::Platform(PlatformError::Operation {
            operation: "set_split".into(),
            message: "connection refused".into(),
        });
        let response = respond_to_failure(&unavailable);
        assert_eq!(response.event, EventKind::PlatformError);
        assert!(!response.page && response.drift.is_none());
    }
}
