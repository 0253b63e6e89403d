//! The kinds of entries the daemon puts on a service's timeline, one variant per kind, so the
//! timeline's vocabulary is a type rather than strings scattered over the code.

use super::rollout::DecisionKind;

/// What happened, as the timeline's `kind` column records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A rollout was created.
    RolloutStarted,
    /// opsd restarted and picked an active rollout up again.
    Resumed,
    /// A decision of the rollout state machine.
    Decision(DecisionKind),
    /// The pre-deployment snapshot was taken.
    Snapshot,
    /// Someone else changed the traffic routing; the rollout is held.
    Drift,
    /// A platform call failed; the reconciler retries on the next tick.
    PlatformError,
    /// A CDN invalidation after a promotion was created, finished or failed.
    CdnInvalidation,
    /// `opsd freeze` stopped deploys of the service.
    Freeze,
    /// `opsd unfreeze` allowed them again.
    Unfreeze,
    /// `opsd approve`: a person approved a rollout's waiting step.
    Approval,
    /// An operator started, planned or stopped maintenance.
    Maintenance,
    /// An alarm rule watched in production changed state (OK, ALARM, INSUFFICIENT_DATA).
    AlarmState,
    /// The stable release crashed (the platform restarts it when it can).
    ReleaseCrashed,
    /// The stable release answers its health check again after a crash.
    ReleaseRecovered,
    /// A notification was delivered to a target.
    Notification,
    /// A notification could not be delivered to a target after its retries.
    NotificationFailed,
    /// A rollout's schema change: what a release brings, and contract migrations run after a
    /// promotion (expand migrations are a decision, `migrate`).
    Migration,
    /// `opsd restore` restored a database from a snapshot.
    Restore,
    /// `opsd runbook run` ran a runbook (who, each step's outcome).
    Runbook,
}

impl EventKind {
    /// The stored name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RolloutStarted => "rollout_started",
            EventKind::Resumed => "resumed",
            EventKind::Decision(kind) => kind.as_str(),
            EventKind::Snapshot => "snapshot",
            EventKind::Drift => "drift",
            EventKind::PlatformError => "platform_error",
            EventKind::CdnInvalidation => "cdn_invalidation",
            EventKind::Freeze => "freeze",
            EventKind::Unfreeze => "unfreeze",
            EventKind::Approval => "approval",
            EventKind::Maintenance => "maintenance",
            EventKind::AlarmState => "alarm_state",
            EventKind::ReleaseCrashed => "release_crashed",
            EventKind::ReleaseRecovered => "release_recovered",
            EventKind::Notification => "notification",
            EventKind::NotificationFailed => "notification_failed",
            EventKind::Migration => "migration",
            EventKind::Restore => "restore",
            EventKind::Runbook => "runbook",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_events_are_named_as_decisions_are_stored() {
        for kind in [
            DecisionKind::Start,
            DecisionKind::Advance,
            DecisionKind::Promote,
            DecisionKind::RollBack,
            DecisionKind::Hold,
            DecisionKind::Pause,
            DecisionKind::Resume,
            DecisionKind::Abort,
            DecisionKind::Fail,
            DecisionKind::AwaitApproval,
            DecisionKind::Wait,
            DecisionKind::Migrate,
        ] {
            let stored = serde_json::to_value(kind).unwrap();
            assert_eq!(stored.as_str(), Some(EventKind::Decision(kind).as_str()));
        }
    }
}
