//! End to end: `steno probe` walks a firm's journey against a real `steno serve` over a real
//! socket. A working Steno passes every step (exit 0); one started with
//! `STENO_CHAOS_BREAK_EXPORT=1` fails at the PDF export (exit 1, named on stderr and in `--json`).

use std::process::Command;
use std::time::Duration;

use e2e_tests::{binary, CommandOutput, RunningProcess};

const STEPS: [&str; 6] = [
    "register",
    "upload",
    "create-matter",
    "draft",
    "export-pdf",
    "logout",
];

fn steno(data_dir: &std::path::Path, extra_env: &[(&str, &str)]) -> RunningProcess {
    let mut command = Command::new(binary("steno"));
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("STENO_DATA_DIR", data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("ANTHROPIC_API_KEY");
    for (key, value) in extra_env {
        command.env(key, value);
    }
    RunningProcess::start(command, Duration::from_secs(60))
}

fn probe(base_url: &str, extra_args: &[&str]) -> CommandOutput {
    probe_as(base_url, extra_args, None)
}

/// `steno probe`, logging in to `account` (email, password) when given.
fn probe_as(base_url: &str, extra_args: &[&str], account: Option<(&str, &str)>) -> CommandOutput {
    let mut command = Command::new(binary("steno"));
    command
        .args(["probe", "--base-url", base_url, "--timeout", "60s"])
        .args(extra_args)
        .env_remove("STENO_PROBE_EMAIL")
        .env_remove("STENO_PROBE_PASSWORD");
    if let Some((email, password)) = account {
        command
            .env("STENO_PROBE_EMAIL", email)
            .env("STENO_PROBE_PASSWORD", password);
    }
    CommandOutput::of(&mut command)
}

#[test]
fn the_probe_walks_every_step_of_a_working_steno() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = steno(data_dir.path(), &[]);
    let output = probe(&server.base_url, &[]);
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), STEPS.len() + 1, "{}", output.stdout);
    for (line, step) in lines.iter().zip(STEPS) {
        let rest = line
            .strip_prefix(&format!("{step} ok "))
            .unwrap_or_else(|| panic!("{step} passes: {line:?}"));
        let millis = rest.strip_suffix(" ms").expect("a latency in ms");
        millis.parse::<u64>().expect("a whole number of ms");
    }
    assert!(lines[STEPS.len()].starts_with("probe passed: 6 steps in "));
    assert!(output.stderr.is_empty(), "{}", output.stderr);

    // The same journey as JSON; each run registers a firm of its own.
    let output = probe(&server.base_url, &["--json"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    let report = output.json();
    assert_eq!(report["ok"], true);
    let steps = report["steps"].as_array().unwrap();
    let names: Vec<&str> = steps
        .iter()
        .map(|step| step["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, STEPS);
    assert!(steps
        .iter()
        .all(|step| step["ok"] == true && step["latency_ms"].is_u64() && step["error"].is_null()));

    // With STENO_PROBE_EMAIL and STENO_PROBE_PASSWORD the probe logs in instead of registering.
    let registered = reqwest::blocking::Client::new()
        .post(format!("{}/v1/firms", server.base_url))
        .json(&serde_json::json!({
            "firm_name": "Probe Account LLP", "admin_name": "Avery",
            "admin_email": "monitor@probe-account.test", "admin_password": "correct horse battery",
        }))
        .send()
        .unwrap();
    assert_eq!(registered.status(), 201);
    let account = ("monitor@probe-account.test", "correct horse battery");
    let output = probe_as(&server.base_url, &[], Some(account));
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    assert!(output.stdout.starts_with("login ok "), "{}", output.stdout);
    let wrong = ("monitor@probe-account.test", "not the password at all");
    let output = probe_as(&server.base_url, &[], Some(wrong));
    assert_eq!(output.code, 1, "{}", output.stdout);
    assert!(
        output.stderr.starts_with("probe failed at login after "),
        "{}",
        output.stderr
    );
    assert!(output.stderr.contains("answered 401"), "{}", output.stderr);
}

#[test]
fn a_broken_export_fails_the_probe_at_the_export_step() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = steno(data_dir.path(), &[("STENO_CHAOS_BREAK_EXPORT", "1")]);
    let output = probe(&server.base_url, &[]);
    assert_eq!(output.code, 1, "{}\n{}", output.stdout, output.stderr);
    let verdict = output.stderr.trim();
    assert!(
        verdict.starts_with("probe failed at export-pdf after "),
        "{verdict}"
    );
    assert!(
        verdict.contains("answered 500") && verdict.contains("STENO_CHAOS_BREAK_EXPORT"),
        "{verdict}"
    );
    // Everything before the export worked, and the session was still closed.
    for step in ["register", "upload", "create-matter", "draft", "logout"] {
        assert!(
            output.stdout.contains(&format!("{step} ok ")),
            "{step}: {}",
            output.stdout
        );
    }
    assert!(output.stdout.contains("export-pdf failed "));

    let output = probe(&server.base_url, &["--json"]);
    assert_eq!(output.code, 1);
    let report = output.json();
    assert_eq!(report["ok"], false);
    assert_eq!(report["failed_step"], "export-pdf");
    let export = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["name"] == "export-pdf")
        .unwrap();
    assert_eq!(export["ok"], false);
    assert!(export["error"].as_str().unwrap().contains("answered 500"));
}
