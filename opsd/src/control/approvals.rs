//! `opsd approve <service>`: a person's go-ahead for a rollout waiting at an approval step
//! (R-GATE-8). Refused when nothing waits or when the same person already approved; audited and
//! on the timeline; the core counts it on the next tick (run at once here).

use super::views::RolloutView;
use super::{Actor, ControlError, Daemon};
use crate::core::approval::Approval;
use crate::core::event::EventKind;

impl Daemon {
    /// Records `actor`'s approval of `service_name`'s waiting rollout.
    pub async fn approve(
        &self,
        service_name: &str,
        actor: &Actor,
        reason: Option<String>,
    ) -> Result<RolloutView, ControlError> {
        self.service(service_name)?;
        let entry = self
            .active
            .lock()
            .await
            .get(service_name)
            .cloned()
            .ok_or_else(|| {
                ControlError::NotFound(format!("{service_name} has no rollout in progress"))
            })?;
        let now = self.now_ms();
        let (id, progress) = {
            let mut rollout = entry.lock().await;
            let Some(wait) = rollout.state.approval.clone() else {
                return Err(ControlError::Conflict(format!(
                    "the rollout of {service_name} is not waiting for an approval ({})",
                    rollout.state.last_summary
                )));
            };
            let pending = rollout
                .approvals
                .iter()
                .any(|approval| approval.by == actor.name);
            if wait.approved_by(&actor.name) || pending {
                return Err(ControlError::Conflict(format!(
                    "{} already approved this step; approvals must come from different people (each with their own token: `opsd token create NAME`)",
                    actor.name
                )));
            }
            rollout.approvals.push(Approval {
                by: actor.name.clone(),
                at_ms: now,
                reason: reason.clone(),
            });
            let given = wait.approvals.len() + rollout.approvals.len();
            (
                rollout.state.id.clone(),
                format!("{given} of {}", wait.rule.approvers),
            )
        };
        self.audit(
            actor,
            "approve",
            service_name,
            reason,
            serde_json::json!({"rollout_id": id, "approvals": progress}),
        )
        .await;
        self.event(
            service_name,
            Some(&id),
            EventKind::Approval,
            format!("{} approved ({progress})", actor.name),
        )
        .await;
        self.reconcile_service(service_name).await;
        self.rollout(&id).await
    }
}
