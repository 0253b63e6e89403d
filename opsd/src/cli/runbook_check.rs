//! `opsd runbook check`: every runbook parses, every parameter it uses is declared, and every
//! opsd command it runs exists with those flags, checked against opsd's own command line (the
//! same parser `opsd` uses), with each placeholder replaced by a sample value.

use clap::Parser;
use opsd::core::runbook::words::{substitute, verbatim};
use opsd::core::runbook::{parse, Runbook, StepAction};
use opsd::ops::runbooks::RunbookFile;

use super::args::Cli;

/// Checks `files`, prints every problem as `FILE:LINE: message`; the exit code (0 or 1).
pub fn check(files: &[RunbookFile]) -> u8 {
    let mut problems = Vec::new();
    let mut steps = 0;
    for file in files {
        match parse(&file.name, &file.text) {
            Ok(runbook) => {
                steps += runbook.steps.len();
                for (line, message) in command_problems(&runbook) {
                    problems.push(format!("{}:{line}: {message}", file.origin));
                }
            }
            Err(found) => {
                for problem in found {
                    problems.push(format!(
                        "{}:{}: {}",
                        file.origin, problem.line, problem.message
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        println!(
            "ok: {} runbook(s), {steps} step(s), every opsd command and parameter checked",
            files.len()
        );
        0
    } else {
        for problem in &problems {
            eprintln!("{problem}");
        }
        eprintln!(
            "{} problem(s) in {} runbook(s)",
            problems.len(),
            files.len()
        );
        1
    }
}

/// The opsd steps of `runbook` that opsd's command line refuses: (line, why).
fn command_problems(runbook: &Runbook) -> Vec<(usize, String)> {
    let samples = runbook
        .params
        .iter()
        .map(|param| {
            let sample = param.default.clone().unwrap_or_else(|| "sample".into());
            (param.name.clone(), sample)
        })
        .chain([
            (
                "public_url".to_string(),
                "http://127.0.0.1:8080".to_string(),
            ),
            ("opsd_api".to_string(), "http://127.0.0.1:7070".to_string()),
        ])
        .collect();
    let mut problems = Vec::new();
    for step in &runbook.steps {
        let StepAction::Opsd { args } = &step.action else {
            continue;
        };
        let words: Result<Vec<String>, String> = args
            .iter()
            .map(|arg| substitute(arg, &samples, verbatim))
            .collect();
        let outcome = words.and_then(|words| {
            Cli::try_parse_from(std::iter::once("opsd".to_string()).chain(words))
                .map(|_| ())
                .map_err(|error| clap_problem(&error))
        });
        if let Err(message) = outcome {
            problems.push((
                step.line,
                format!(
                    "step {} ({}): `{}`: {message}",
                    step.number,
                    step.title,
                    step.action.describe()
                ),
            ));
        }
    }
    problems
}

/// The first line of clap's complaint, without its `error: ` prefix.
fn clap_problem(error: &clap::Error) -> String {
    if !error.use_stderr() {
        return "it only prints help or the version".into();
    }
    let text = error.to_string();
    let first = text.lines().next().unwrap_or("not an opsd command");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_commands_and_flags_are_named_with_their_line() {
        let text = "---\nparams:\n  service:\n    help: s\n    default: steno\n---\n# T\n\n## Good\n\n```opsd\nopsd rollback {service} --reason x\n```\n\n## Flag\n\n```opsd\nopsd rollback {service} --reasn x\n```\n\n## Command\n\n```opsd\nopsd rolback {service}\n```\n\n## Missing value\n\n```opsd\nopsd history --json\n```\n";
        let runbook = parse("t", text).unwrap();
        let problems = command_problems(&runbook);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert_eq!(problems[0].0, 17);
        assert!(problems[0].1.contains("--reasn"), "{:?}", problems[0]);
        assert!(problems[1].1.contains("rolback"), "{:?}", problems[1]);
        assert!(problems[2].1.contains("step 4 (Missing value)"));
    }

    #[test]
    fn the_repository_runbooks_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks");
        let files = opsd::ops::runbooks::runbook_files(Some(&dir), &dir).unwrap();
        assert!(files.len() >= 8);
        assert_eq!(check(&files), 0);
    }
}
