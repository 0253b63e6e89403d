//! Approval steps (R-GATE-8): a plan step may wait, before it takes traffic, until enough
//! different people said go (`opsd approve <service>`), for at most a timeout, after which the
//! rollout rolls back or holds.
//!
//! A plan step says it like this:
//!
//! ```yaml
//!   - weight: 100
//!     approve: {approvers: 2, timeout: 30m, on_timeout: rollback}
//! ```
//!
//! invariant: an approval counts once per person: a second approval by the same name is never
//! counted, whatever the path it came by.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::{format_duration, ConfigDuration};

/// At most this many people may be required.
pub const MAX_APPROVERS: u32 = 10;
/// The longest an approval may be waited for.
pub const MAX_APPROVAL_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long an approval is waited for when the plan does not say.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What a step's approval needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRule {
    /// Different people who must approve.
    pub approvers: u32,
    /// How long the rollout waits for them once the previous step passed.
    pub timeout: Duration,
    pub on_timeout: ApprovalTimeout,
}

/// What a rollout does when its approvals did not come in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalTimeout {
    /// Roll back to the stable release.
    Rollback,
    /// Hold at the current weight; approvals still count and move it on.
    Hold,
}

/// The `approve:` of a plan step as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovalRule {
    #[serde(default = "one")]
    approvers: u32,
    #[serde(default)]
    timeout: Option<ConfigDuration>,
    #[serde(default)]
    on_timeout: Option<ApprovalTimeout>,
}

fn one() -> u32 {
    1
}

impl RawApprovalRule {
    /// The checked rule; the error says which field is wrong (without the `approve.` prefix).
    pub fn check(&self) -> Result<ApprovalRule, (&'static str, String)> {
        if !(1..=MAX_APPROVERS).contains(&self.approvers) {
            return Err((
                "approvers",
                format!(
                    "{} is not a number of approvers; use 1 to {MAX_APPROVERS} different people",
                    self.approvers
                ),
            ));
        }
        let timeout = self
            .timeout
            .map(|timeout| timeout.0)
            .unwrap_or(DEFAULT_APPROVAL_TIMEOUT);
        if timeout.is_zero() || timeout > MAX_APPROVAL_TIMEOUT {
            return Err((
                "timeout",
                format!(
                    "{} is not an approval timeout; use more than 0 and at most 7d, like `timeout: 30m`",
                    format_duration(timeout)
                ),
            ));
        }
        Ok(ApprovalRule {
            approvers: self.approvers,
            timeout,
            on_timeout: self.on_timeout.unwrap_or(ApprovalTimeout::Hold),
        })
    }
}

impl ApprovalRule {
    /// The rule as a plan document writes it.
    pub fn document(&self) -> serde_json::Value {
        serde_json::json!({
            "approvers": self.approvers,
            "timeout": format_duration(self.timeout),
            "on_timeout": match self.on_timeout {
                ApprovalTimeout::Rollback => "rollback",
                ApprovalTimeout::Hold => "hold",
            },
        })
    }

    /// `approval by 2 people within 30m`.
    pub fn describe(&self) -> String {
        let people = if self.approvers == 1 {
            "1 person".to_string()
        } else {
            format!("{} people", self.approvers)
        };
        format!(
            "approval by {people} within {}",
            format_duration(self.timeout)
        )
    }
}

/// One person's go-ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The API token's name (a person, see `opsd token create`).
    pub by: String,
    pub at_ms: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A rollout waiting for approval before step `step_index` takes traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalWait {
    pub step_index: usize,
    pub rule: ApprovalRule,
    pub since_ms: i64,
    pub approvals: Vec<Approval>,
    /// The timeout passed and the rollout is held (approvals still move it on).
    #[serde(default)]
    pub timed_out: bool,
}

impl ApprovalWait {
    pub fn new(step_index: usize, rule: ApprovalRule, since_ms: i64) -> ApprovalWait {
        ApprovalWait {
            step_index,
            rule,
            since_ms,
            approvals: Vec::new(),
            timed_out: false,
        }
    }

    /// Whether `name` already approved.
    pub fn approved_by(&self, name: &str) -> bool {
        self.approvals.iter().any(|approval| approval.by == name)
    }

    /// Counts `approval` unless its person already approved; returns whether it counted.
    pub fn add(&mut self, approval: Approval) -> bool {
        if self.approved_by(&approval.by) {
            return false;
        }
        self.approvals.push(approval);
        true
    }

    pub fn is_complete(&self) -> bool {
        self.approvals.len() >= self.rule.approvers as usize
    }

    /// Whether the wait ran out at `now_ms`.
    pub fn has_expired(&self, now_ms: i64) -> bool {
        now_ms - self.since_ms >= self.rule.timeout.as_millis() as i64
    }

    /// `1 of 2 approvals (alice)`.
    pub fn progress(&self) -> String {
        let names: Vec<&str> = self
            .approvals
            .iter()
            .map(|approval| approval.by.as_str())
            .collect();
        let mut text = format!(
            "{} of {} approvals",
            self.approvals.len(),
            self.rule.approvers
        );
        if !names.is_empty() {
            text.push_str(&format!(" ({})", names.join(", ")));
        }
        text
    }

    /// Seconds left before the timeout at `now_ms` (0 once passed).
    pub fn seconds_left(&self, now_ms: i64) -> i64 {
        ((self.since_ms + self.rule.timeout.as_millis() as i64 - now_ms) / 1000).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(approvers: u32) -> ApprovalRule {
        ApprovalRule {
            approvers,
            timeout: Duration::from_secs(60),
            on_timeout: ApprovalTimeout::Rollback,
        }
    }

    fn approval(by: &str) -> Approval {
        Approval {
            by: by.into(),
            at_ms: 0,
            reason: None,
        }
    }

    #[test]
    fn the_same_person_counts_once() {
        let mut wait = ApprovalWait::new(1, rule(2), 1_000);
        assert!(wait.add(approval("alice")));
        assert!(!wait.add(approval("alice")));
        assert!(!wait.is_complete());
        assert_eq!(wait.progress(), "1 of 2 approvals (alice)");
        assert!(wait.add(approval("bob")));
        assert!(wait.is_complete());
    }

    #[test]
    fn a_wait_expires_after_its_timeout() {
        let wait = ApprovalWait::new(1, rule(1), 1_000);
        assert!(!wait.has_expired(60_999));
        assert_eq!(wait.seconds_left(31_000), 30);
        assert!(wait.has_expired(61_000));
        assert_eq!(wait.seconds_left(90_000), 0);
    }

    #[test]
    fn rules_are_checked_with_defaults() {
        let parse = |text: &str| {
            serde_yaml::from_str::<RawApprovalRule>(text)
                .unwrap()
                .check()
        };
        assert_eq!(
            parse("{}").unwrap(),
            ApprovalRule {
                approvers: 1,
                timeout: DEFAULT_APPROVAL_TIMEOUT,
                on_timeout: ApprovalTimeout::Hold
            }
        );
        let two = parse("{approvers: 2, timeout: 30m, on_timeout: rollback}").unwrap();
        assert_eq!(two.describe(), "approval by 2 people within 30m");
        assert_eq!(
            serde_json::from_value::<RawApprovalRule>(two.document())
                .unwrap()
                .check()
                .unwrap(),
            two
        );
        assert_eq!(parse("{approvers: 0}").unwrap_err().0, "approvers");
        assert_eq!(parse("{approvers: 11}").unwrap_err().0, "approvers");
        assert_eq!(parse("{timeout: 0}").unwrap_err().0, "timeout");
        assert_eq!(parse("{timeout: 8d}").unwrap_err().0, "timeout");
        assert!(serde_yaml::from_str::<RawApprovalRule>("{on_timeout: later}").is_err());
        assert!(serde_yaml::from_str::<RawApprovalRule>("{approverz: 2}").is_err());
    }
}
