//! Runbook runs: `opsd runbook run` executes the steps on the operator's machine and sends the
//! record here; the daemon keeps it in the audit log (who, when, every step's outcome) and puts
//! one event on the timeline of the service the run was about (its `service` parameter), or of
//! every service when it names none.

use super::{Actor, ControlError, Daemon};
use crate::core::event::EventKind;
use crate::core::runbook::run::RunbookRun;
use crate::store::{NewEvent, ALL_SERVICES};

impl Daemon {
    /// Records a finished runbook run. Refuses a record that is malformed, too big, or names a
    /// service opsd does not run.
    pub async fn record_runbook_run(
        &self,
        run: RunbookRun,
        actor: &Actor,
    ) -> Result<String, ControlError> {
        run.check()
            .map_err(|problem| ControlError::Invalid(format!("runbook run: {problem}")))?;
        let scope = match run.params.get("service") {
            Some(service) => self.service(service)?.name.clone(),
            None => ALL_SERVICES.to_string(),
        };
        let summary = run.summary(&actor.name);
        let detail = serde_json::to_value(&run)
            .map_err(|error| ControlError::Invalid(format!("runbook run: {error}")))?;
        self.audit(
            actor,
            "runbook_run",
            &format!("runbook:{}", run.runbook),
            None,
            detail.clone(),
        )
        .await;
        let services: Vec<String> = if scope == ALL_SERVICES {
            self.config.services.keys().cloned().collect()
        } else {
            vec![scope]
        };
        for service in services {
            let event = NewEvent {
                at: self.now(),
                service,
                rollout_id: None,
                kind: EventKind::Runbook.as_str().to_string(),
                message: summary.clone(),
                data: detail.clone(),
            };
            if let Err(error) = self.store.append_event(&event).await {
                tracing::error!(error = %error, "could not store a runbook run's event");
            }
        }
        Ok(summary)
    }
}
