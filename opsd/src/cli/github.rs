//! `opsd gate --format github`: what a GitHub Actions job shows a reviewer without opening its
//! log. A step summary in Markdown (appended to `$GITHUB_STEP_SUMMARY`): the outcome, every
//! decision with its summary and, folded, its evidence; and workflow-command annotations on
//! stdout: a notice for a promotion, an error for a rollback or failure, a warning when a person
//! must look.

use opsd::control::RolloutView;

/// The Markdown step summary of a finished (or timed out) rollout.
pub fn step_summary(rollout: &RolloutView, outcome: &str, exit_code: u8) -> String {
    let mut text = format!(
        "## {} {} over {}: {} (exit {exit_code})\n\n",
        rollout.service,
        rollout.canary_version,
        rollout.stable_version,
        outcome.replace('_', " ")
    );
    text.push_str(&format!(
        "Rollout `{}` · plan `{}` · step {} of {} at {} % · started {}{}\n\n",
        rollout.id,
        rollout.plan,
        rollout.step,
        rollout.steps,
        rollout.canary_weight_percent,
        rollout.created_at,
        rollout
            .finished_at
            .as_ref()
            .map_or(String::new(), |at| format!(" · ended {at}"))
    ));
    text.push_str(&format!("> {}\n\n", one_line(&rollout.summary)));
    if let Some(schema) = &rollout.state.schema {
        text.push_str(&format!(
            "Schema migrations: {}\n\n",
            one_line(&schema.describe())
        ));
    }
    if let Some(snapshot) = &rollout.pre_deploy_snapshot {
        text.push_str(&format!("Pre-deployment snapshot: `{snapshot}`\n\n"));
    }
    if rollout.decisions.is_empty() {
        text.push_str("No decision yet.\n");
        return text;
    }
    text.push_str("| When | Decision | Step | Why |\n|---|---|---|---|\n");
    for decision in &rollout.decisions {
        text.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            decision.at,
            decision.kind.replace('_', " "),
            decision.step_index + 1,
            table_cell(&decision.summary)
        ));
    }
    text.push('\n');
    for decision in &rollout.decisions {
        let evidence = serde_json::to_string_pretty(&decision.evidence).unwrap_or_default();
        if evidence == "{}" || evidence == "null" {
            continue;
        }
        text.push_str(&format!(
            "<details><summary>Evidence of {} at {}</summary>\n\n```json\n{}\n```\n\n</details>\n\n",
            decision.kind.replace('_', " "),
            decision.at,
            evidence.replace("```", "'''")
        ));
    }
    text
}

/// The workflow commands that annotate the job: one for the outcome.
pub fn annotations(rollout: &RolloutView, outcome: &str, exit_code: u8) -> Vec<String> {
    let level = match exit_code {
        0 => "notice",
        2 => "error",
        _ => "warning",
    };
    let title = match exit_code {
        0 => format!("{} {} promoted", rollout.service, rollout.canary_version),
        2 => format!(
            "{} {} {}",
            rollout.service,
            rollout.canary_version,
            outcome.replace('_', " ")
        ),
        _ => format!(
            "{} {} needs a person ({})",
            rollout.service,
            rollout.canary_version,
            outcome.replace('_', " ")
        ),
    };
    let reason = rollout
        .decisions
        .last()
        .map_or(rollout.summary.as_str(), |decision| {
            decision.summary.as_str()
        });
    vec![format!(
        "::{level} title={}::{}",
        escape_property(&title),
        escape_data(reason)
    )]
}

/// Appends `text` to `$GITHUB_STEP_SUMMARY` when it is set; whether it was written there.
pub fn write_step_summary(text: &str) -> std::io::Result<bool> {
    use std::io::Write;
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|path| !path.is_empty()) else {
        return Ok(false);
    };
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(true)
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn table_cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// A workflow command's message: `%`, CR and LF escaped.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property: also `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout() -> RolloutView {
        let decision = |kind: &str, summary: &str, evidence: serde_json::Value| {
            serde_json::json!({"seq": 1, "at": "2026-12-04T15:00:00+00:00", "kind": kind,
                "step_index": 1, "summary": summary, "evidence": evidence})
        };
        let state = opsd::core::rollout::RolloutState::new(
            "r-1".into(),
            opsd::core::release::ReleaseSpec::new("steno", "v1"),
            opsd::core::release::ReleaseSpec::new("steno", "v2"),
            opsd::core::plan::preset("SeedCanary").unwrap(),
            0,
        );
        serde_json::from_value(serde_json::json!({
            "id": "r-1", "service": "steno", "stable_version": "v1", "canary_version": "v2",
            "plan": "SeedCanary", "phase": "rolled_back", "step": 2, "steps": 4,
            "canary_weight_percent": 0, "summary": "rolled back",
            "created_at": "2026-12-04T14:55:00+00:00", "finished_at": "2026-12-04T15:00:00+00:00",
            "state": state,
            "decisions": [
                decision("start", "the canary v2 is ready", serde_json::json!({})),
                decision("roll_back", "error rate 20 % | baseline 0 %\nrolled back: 100% sure",
                    serde_json::json!({"consecutive_health_failures": 0})),
            ],
            "pre_deploy_snapshot": "opsd-steno-1",
        }))
        .unwrap()
    }

    #[test]
    fn the_summary_lays_out_the_decisions_and_their_evidence() {
        let text = step_summary(&rollout(), "rolled_back", 2);
        assert!(
            text.starts_with("## steno v2 over v1: rolled back (exit 2)"),
            "{text}"
        );
        assert!(
            text.contains(
                "| roll back | 2 | error rate 20 % \\| baseline 0 % rolled back: 100% sure |"
            ),
            "{text}"
        );
        assert!(
            text.contains("<details><summary>Evidence of roll back"),
            "{text}"
        );
        assert!(
            text.contains("Pre-deployment snapshot: `opsd-steno-1`"),
            "{text}"
        );
    }

    #[test]
    fn the_annotation_says_why_and_is_escaped() {
        assert_eq!(
            annotations(&rollout(), "rolled_back", 2),
            vec![
                "::error title=steno v2 rolled back::error rate 20 %25 | baseline 0 %25%0Arolled back: 100%25 sure"
                    .to_string()
            ]
        );
        assert!(annotations(&rollout(), "held", 3)[0]
            .starts_with("::warning title=steno v2 needs a person (held)::"));
        assert!(annotations(&rollout(), "promoted", 0)[0]
            .starts_with("::notice title=steno v2 promoted::"));
    }
}
