//! The record of one runbook run (who ran what, when, and each step's outcome), as the CLI sends
//! it to `POST /v1/runbook-runs` and the daemon keeps it in the audit log and on the timeline.
//! Anyone with an operator token can send one, so its size is bounded and checked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// At most this many steps in a record.
pub const MAX_STEPS: usize = 100;
/// At most this many characters of a step's output are kept (its end).
pub const OUTPUT_TAIL_CHARS: usize = 4000;
/// At most this many characters in any other text of a record.
const TEXT_LIMIT: usize = 2000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbookRun {
    pub runbook: String,
    pub title: String,
    pub params: BTreeMap<String, String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: RunOutcome,
    pub steps: Vec<StepRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every step that ran passed.
    Succeeded,
    /// A step failed; the steps after it did not run.
    Failed,
    /// The operator declined a dangerous step (or there was no terminal to ask).
    Declined,
    /// The operator interrupted the run (Ctrl-C).
    Interrupted,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::Declined => "declined",
            RunOutcome::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRecord {
    pub number: usize,
    pub title: String,
    /// `opsd`, `http` or `sh`.
    pub kind: String,
    /// What ran, parameters substituted.
    pub command: String,
    pub outcome: StepOutcome,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub duration_ms: u64,
    /// Why it failed, when it did.
    #[serde(default)]
    pub message: Option<String>,
    /// The end of its output.
    #[serde(default)]
    pub output_tail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Passed,
    Failed,
    /// Before `--from`.
    Skipped,
    Declined,
    Interrupted,
    /// After the step that stopped the run.
    NotRun,
}

impl StepOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Passed => "passed",
            StepOutcome::Failed => "failed",
            StepOutcome::Skipped => "skipped",
            StepOutcome::Declined => "declined",
            StepOutcome::Interrupted => "interrupted",
            StepOutcome::NotRun => "not run",
        }
    }
}

impl RunbookRun {
    /// Whether the record is one the daemon keeps: a plain runbook name, bounded sizes, an
    /// outcome that agrees with its steps. The error names the first problem.
    pub fn check(&self) -> Result<(), String> {
        if self.runbook.is_empty()
            || self.runbook.len() > 80
            || !self
                .runbook
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("runbook: a name is 1 to 80 letters, digits, - and _".into());
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(format!("steps: 1 to {MAX_STEPS} steps"));
        }
        if self.params.len() > 50 {
            return Err("params: at most 50".into());
        }
        if self.finished_at < self.started_at {
            return Err("finished_at is before started_at".into());
        }
        let texts = std::iter::once(("title", &self.title)).chain(
            self.params
                .iter()
                .flat_map(|(name, value)| [("params", name), ("params", value)]),
        );
        for (field, text) in texts {
            check_text(field, text, TEXT_LIMIT)?;
        }
        for (index, step) in self.steps.iter().enumerate() {
            if step.number != index + 1 {
                return Err(format!(
                    "steps[{index}]: number {} out of order",
                    step.number
                ));
            }
            check_text("steps.title", &step.title, TEXT_LIMIT)?;
            check_text("steps.kind", &step.kind, 10)?;
            check_text("steps.command", &step.command, TEXT_LIMIT * 4)?;
            check_text(
                "steps.message",
                step.message.as_deref().unwrap_or(""),
                TEXT_LIMIT,
            )?;
            if step.output_tail.chars().count() > OUTPUT_TAIL_CHARS {
                return Err(format!(
                    "steps[{index}].output_tail: at most {OUTPUT_TAIL_CHARS} characters"
                ));
            }
        }
        let stopped = self.steps.iter().find(|step| {
            matches!(
                step.outcome,
                StepOutcome::Failed | StepOutcome::Declined | StepOutcome::Interrupted
            )
        });
        let agrees = matches!(
            (self.outcome, stopped.map(|step| step.outcome)),
            (RunOutcome::Succeeded, None)
                | (RunOutcome::Failed, Some(StepOutcome::Failed))
                | (RunOutcome::Declined, Some(StepOutcome::Declined))
                | (RunOutcome::Interrupted, Some(StepOutcome::Interrupted))
        );
        if !agrees {
            return Err(format!(
                "outcome {} does not agree with the steps' outcomes",
                self.outcome.as_str()
            ));
        }
        Ok(())
    }

    /// One line for the timeline: `runbook rollback by alice: failed at step 2 (Roll back)`.
    pub fn summary(&self, actor: &str) -> String {
        let ran = self
            .steps
            .iter()
            .filter(|step| step.outcome == StepOutcome::Passed)
            .count();
        let total = self.steps.len();
        let stopped = self.steps.iter().find(|step| {
            !matches!(
                step.outcome,
                StepOutcome::Passed | StepOutcome::Skipped | StepOutcome::NotRun
            )
        });
        match stopped {
            None => format!(
                "runbook {} run by {actor}: succeeded, {ran} of {total} steps passed",
                self.runbook
            ),
            Some(step) => format!(
                "runbook {} run by {actor}: {} at step {} ({}){}",
                self.runbook,
                self.outcome.as_str(),
                step.number,
                step.title,
                step.message
                    .as_deref()
                    .map(|message| format!(": {message}"))
                    .unwrap_or_default()
            ),
        }
    }
}

fn check_text(field: &str, text: &str, limit: usize) -> Result<(), String> {
    if text.chars().count() > limit {
        return Err(format!("{field}: at most {limit} characters"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(format!("{field}: control characters"));
    }
    Ok(())
}

/// The end of `output`: at most [`OUTPUT_TAIL_CHARS`] characters, cut at a line start when one
/// is near, control characters but newlines and tabs dropped.
pub fn output_tail(output: &str) -> String {
    let clean: String = output
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    let count = clean.chars().count();
    if count <= OUTPUT_TAIL_CHARS {
        return clean;
    }
    let tail: String = clean.chars().skip(count - OUTPUT_TAIL_CHARS).collect();
    match tail.find('\n') {
        Some(newline) if newline < 200 => tail[newline + 1..].to_string(),
        _ => tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(number: usize, outcome: StepOutcome) -> StepRecord {
        StepRecord {
            number,
            title: format!("step {number}"),
            kind: "opsd".into(),
            command: "opsd status steno".into(),
            outcome,
            exit_code: Some(0),
            duration_ms: 5,
            message: None,
            output_tail: String::new(),
        }
    }

    fn run(outcome: RunOutcome, steps: Vec<StepRecord>) -> RunbookRun {
        let at = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        RunbookRun {
            runbook: "rollback".into(),
            title: "Roll back".into(),
            params: BTreeMap::from([("service".into(), "steno".into())]),
            started_at: at,
            finished_at: at,
            outcome,
            steps,
        }
    }

    #[test]
    fn a_record_is_checked_for_names_sizes_and_agreement() {
        let good = run(
            RunOutcome::Failed,
            vec![
                step(1, StepOutcome::Passed),
                step(2, StepOutcome::Failed),
                step(3, StepOutcome::NotRun),
            ],
        );
        assert_eq!(good.check(), Ok(()));
        assert!(good.summary("alice").contains("failed at step 2 (step 2)"));

        let lying = run(RunOutcome::Succeeded, good.steps.clone());
        assert!(lying.check().unwrap_err().contains("does not agree"));
        let mut traversal = good.clone();
        traversal.runbook = "../etc".into();
        assert!(traversal.check().unwrap_err().starts_with("runbook"));
        let mut huge = good.clone();
        huge.steps[0].output_tail = "x".repeat(OUTPUT_TAIL_CHARS + 1);
        assert!(huge.check().unwrap_err().contains("output_tail"));
        let mut escape = good.clone();
        escape.title = "a\u{1b}[2J".into();
        assert!(escape.check().unwrap_err().contains("control"));
        let mut shuffled = good;
        shuffled.steps.swap(0, 1);
        assert!(shuffled.check().unwrap_err().contains("out of order"));
    }

    #[test]
    fn the_output_tail_keeps_the_end_from_a_line_start() {
        let output: String = (0..2000).map(|n| format!("line {n}\n")).collect();
        let tail = output_tail(&output);
        assert!(tail.chars().count() <= OUTPUT_TAIL_CHARS);
        assert!(tail.starts_with("line "));
        assert!(tail.ends_with("line 1999\n"));
        assert_eq!(output_tail("ok\u{7}\n"), "ok\n");
    }
}
