//! [`Notification`]: something worth telling people about, and the constructor callers build
//! one with, stating only what differs from a plain trigger routed by severity.

use serde::{Deserialize, Serialize};

use super::Severity;

/// Something worth telling people about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Identifies the state change, e.g. `rollout/<id>/rolled_back`; delivered once per target.
    /// Also PagerDuty's `dedup_key`, so a resolve must carry the key of what it resolves.
    pub key: String,
    pub severity: Severity,
    pub title: String,
    pub body: String,
    pub service: String,
    pub rollout_id: Option<String>,
    /// Resolves (PagerDuty `event_action: resolve`) what the same key triggered.
    pub resolve: bool,
    pub details: serde_json::Value,
    /// The targets (by name) this notification goes to, instead of the severity routes; `None`
    /// routes it by severity. Dedupe per target is the same either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
}

impl Notification {
    /// A trigger (not a resolve) about `service`, routed by `severity`, with an empty body, no
    /// rollout and no details; the `with_*`/`for_rollout` methods add what a caller has.
    pub fn new(
        key: impl Into<String>,
        severity: Severity,
        service: impl Into<String>,
        title: impl Into<String>,
    ) -> Notification {
        Notification {
            key: key.into(),
            severity,
            title: title.into(),
            body: String::new(),
            service: service.into(),
            rollout_id: None,
            resolve: false,
            details: serde_json::Value::Null,
            targets: None,
        }
    }

    /// The text under the title.
    pub fn with_body(mut self, body: impl Into<String>) -> Notification {
        self.body = body.into();
        self
    }

    /// The rollout it is about.
    pub fn for_rollout(mut self, rollout_id: impl Into<String>) -> Notification {
        self.rollout_id = Some(rollout_id.into());
        self
    }

    /// Structured facts for receivers that show them (PagerDuty's `custom_details`, SNS's text).
    pub fn with_details(mut self, details: serde_json::Value) -> Notification {
        self.details = details;
        self
    }

    /// The targets it goes to instead of the severity routes; `None` keeps the routes.
    pub fn with_targets(mut self, targets: Option<Vec<String>>) -> Notification {
        self.targets = targets;
        self
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn new_builds_a_trigger_routed_by_severity_and_the_rest_is_added() {
        let plain = Notification::new("k", Severity::Warning, "steno", "title");
        assert_eq!(
            plain,
            Notification {
                key: "k".to_string(),
                severity: Severity::Warning,
                title: "title".to_string(),
                body: String::new(),
                service: "steno".to_string(),
                rollout_id: None,
                resolve: false,
                details: serde_json::Value::Null,
                targets: None,
            }
        );
        let full = plain
            .clone()
            .with_body("body")
            .for_rollout("r1")
            .with_details(json!({"a": 1}))
            .with_targets(Some(vec!["chat".to_string()]));
        assert_eq!(full.body, "body");
        assert_eq!(full.rollout_id.as_deref(), Some("r1"));
        assert_eq!(full.details, json!({"a": 1}));
        assert_eq!(full.targets, Some(vec!["chat".to_string()]));
        assert_eq!(full.with_targets(None).targets, None);
    }
}
