//! Stop-the-line freezes: `opsd freeze [SERVICE] --reason` and `opsd unfreeze [SERVICE]`, audited
//! and put on the timeline of every service they cover. While one covers a service, the freeze
//! gate (`gates.rs`) refuses its deploys unless overridden; rollouts already running go on.

use super::{Actor, ControlError, Daemon};
use crate::core::event::EventKind;
use crate::store::{FreezeRecord, ALL_SERVICES};

/// The longest reason a freeze keeps, in characters.
const REASON_LIMIT: usize = 500;

impl Daemon {
    /// Freezes `service`, or every service when `None`. Freezing again replaces the reason.
    pub async fn freeze(
        &self,
        service: Option<&str>,
        reason: Option<String>,
        actor: &Actor,
    ) -> Result<FreezeRecord, ControlError> {
        let scope = self.freeze_scope(service)?;
        let reason = reason
            .map(|reason| reason.trim().to_string())
            .filter(|reason| !reason.is_empty())
            .ok_or_else(|| {
                ControlError::Invalid(
                    "a freeze needs --reason: it is shown to everyone whose deploy it refuses"
                        .into(),
                )
            })?;
        if reason.chars().count() > REASON_LIMIT {
            return Err(ControlError::Invalid(format!(
                "the reason has more than {REASON_LIMIT} characters; say it shorter"
            )));
        }
        let freeze = FreezeRecord {
            scope: scope.clone(),
            reason: reason.clone(),
            actor: actor.name.clone(),
            since: self.now(),
        };
        self.store.set_freeze(&freeze).await?;
        self.audit(
            actor,
            "freeze",
            &scope,
            Some(reason.clone()),
            serde_json::json!({}),
        )
        .await;
        let message = format!("deploys frozen by {}: {reason}", actor.name);
        self.on_covered_timelines(&scope, EventKind::Freeze, &message)
            .await;
        Ok(freeze)
    }

    /// Lifts the freeze of `service`, or the freeze of every service when `None`.
    pub async fn unfreeze(
        &self,
        service: Option<&str>,
        reason: Option<String>,
        actor: &Actor,
    ) -> Result<FreezeRecord, ControlError> {
        let scope = self.freeze_scope(service)?;
        let Some(lifted) = self.store.clear_freeze(&scope).await? else {
            let frozen: Vec<String> = self
                .store
                .freezes()
                .await?
                .into_iter()
                .map(|freeze| freeze.scope)
                .collect();
            let what = if scope == ALL_SERVICES {
                "there is no freeze of every service".to_string()
            } else {
                format!("{scope} has no freeze of its own")
            };
            return Err(ControlError::NotFound(format!(
                "{what}; frozen now: {}",
                if frozen.is_empty() {
                    "nothing".to_string()
                } else {
                    frozen.join(", ")
                }
            )));
        };
        self.audit(
            actor,
            "unfreeze",
            &scope,
            reason,
            serde_json::json!({"frozen_because": lifted.reason, "frozen_by": lifted.actor}),
        )
        .await;
        let message = format!("deploys unfrozen by {}", actor.name);
        self.on_covered_timelines(&scope, EventKind::Unfreeze, &message)
            .await;
        Ok(lifted)
    }

    /// Every freeze in force.
    pub async fn freezes(&self) -> Result<Vec<FreezeRecord>, ControlError> {
        Ok(self.store.freezes().await?)
    }

    fn freeze_scope(&self, service: Option<&str>) -> Result<String, ControlError> {
        match service {
            Some(name) => Ok(self.service(name)?.name.clone()),
            None => Ok(ALL_SERVICES.to_string()),
        }
    }

    /// Puts one event on the timeline of every service `scope` covers.
    pub(super) async fn on_covered_timelines(&self, scope: &str, kind: EventKind, message: &str) {
        let services: Vec<String> = if scope == ALL_SERVICES {
            self.config.services.keys().cloned().collect()
        } else {
            vec![scope.to_string()]
        };
        for service in services {
            self.event(&service, None, kind, message.to_string()).await;
        }
    }
}
