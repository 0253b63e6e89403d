//! End to end: runbooks against a real `opsd up` with Steno behind its router. The built-in
//! rollback runbook rolls a promoted release back (its dangerous step confirmed with --yes), checks
//! the public address, and its run is on the timeline and in the audit log with every step's
//! outcome; without a terminal and without --yes the dangerous step is declined and nothing rolls
//! back; a runbook whose HTTP check fails stops at that step, names it, and the step after it (a
//! freeze) never happens; `opsd runbook check` names a misspelt flag at its file and line; the
//! record's API refuses viewers and malformed or oversized records.

use e2e_tests::opsd_up::{start_opsd, write_config, Opsd};
use serde_json::Value;

fn stable_version(opsd: &Opsd) -> String {
    opsd.status()["service"]["stable_version"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The timeline's runbook entries of steno, newest first.
fn runbook_entries(opsd: &Opsd) -> Vec<Value> {
    let answer: Value = reqwest::blocking::Client::new()
        .get(format!(
            "{}/v1/timeline?service=steno&kind=runbook",
            opsd.api_url
        ))
        .bearer_auth(opsd.token())
        .send()
        .unwrap()
        .json()
        .unwrap();
    answer["entries"].as_array().unwrap().clone()
}

const BROKEN: &str = r#"---
params:
  service:
    help: The service.
    default: steno
---
# A check that fails

## Status

```opsd
opsd status {service}
```

## A page that does not exist

```http
GET {public_url}/v1/no-such-page
status 200
```

## Freeze

```opsd
opsd freeze {service} --reason "must never run"
```
"#;

#[test]
fn runbooks_run_against_a_real_opsd_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let opsd = start_opsd(dir.path());
    let mut load = opsd.load(250, 600);
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v2",
        "--wait",
        "--timeout",
        "90s",
    ]);
    assert_eq!(code, 0, "v2 is promoted:\n{out}");
    assert_eq!(stable_version(&opsd), "v2");

    // Without a terminal and without --yes the dangerous step is declined: nothing rolls back.
    let (code, out) = opsd.cli(&[
        "runbook",
        "run",
        "rollback",
        "--param",
        "reason=v2 misbehaves",
    ]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("is dangerous and there is no terminal to ask"),
        "{out}"
    );
    assert_eq!(stable_version(&opsd), "v2");

    // With --yes: the rollback runbook rolls v2 back to v1 and checks the public address.
    let (code, out) = opsd.cli(&[
        "runbook",
        "run",
        "rollback",
        "--param",
        "reason=v2 misbehaves",
        "--yes",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("step 3/6: Roll back to the previous release"),
        "{out}"
    );
    assert!(
        out.contains("$ opsd rollback steno --reason 'v2 misbehaves'"),
        "{out}"
    );
    assert!(
        out.contains("HTTP 200"),
        "the health check's answer is shown:\n{out}"
    );
    assert!(out.contains("recorded on the timeline"), "{out}");
    assert_eq!(stable_version(&opsd), "v1");

    let entries = runbook_entries(&opsd);
    assert_eq!(entries.len(), 2, "{entries:#?}");
    let succeeded = entries[0]["message"].as_str().unwrap();
    assert!(
        succeeded.starts_with("runbook rollback run by operator: succeeded, 6 of 6 steps passed"),
        "{succeeded}"
    );
    let declined = entries[1]["message"].as_str().unwrap();
    assert!(
        declined.contains("declined at step 3 (Roll back to the previous release)"),
        "{declined}"
    );
    let audit = opsd.audit();
    let run = audit
        .iter()
        .find(|entry| entry["action"] == "runbook_run" && entry["detail"]["outcome"] == "succeeded")
        .expect("the run is in the audit log");
    assert_eq!(run["target"], "runbook:rollback");
    let steps = run["detail"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    assert!(
        steps.iter().all(|step| step["outcome"] == "passed"),
        "{steps:#?}"
    );
    assert_eq!(
        steps[2]["command"],
        "opsd rollback steno --reason 'v2 misbehaves'"
    );
    assert!(
        steps[5]["output_tail"].as_str().unwrap().contains("v1"),
        "each step's output is kept: {:#?}",
        steps[5]
    );
    assert!(
        audit.iter().any(|entry| entry["action"] == "rollback"),
        "the rollback the runbook ran is audited as such too"
    );

    // The incident runbook's diagnostics: status, alarm states, decisions, health, log lines.
    let (code, out) = opsd.cli(&["runbook", "run", "incident-response"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("steno  stable v1"), "{out}");
    assert!(
        out.contains("api-5xx"),
        "the alarm states are gathered:\n{out}"
    );
    assert!(
        out.contains("v2 → v1"),
        "the recent rollouts are gathered:\n{out}"
    );
    assert!(
        out.contains(".log (last 40 line(s))"),
        "the release's log lines are gathered:\n{out}"
    );

    // A failing step stops the run there, named; the freeze after it never happens.
    let runbooks = dir.path().join("my-runbooks");
    std::fs::create_dir(&runbooks).unwrap();
    std::fs::write(runbooks.join("broken.md"), BROKEN).unwrap();
    let dir_arg = runbooks.to_str().unwrap();
    let (code, out) = opsd.cli(&["runbook", "run", "broken", "--dir", dir_arg]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("broken: failed at step 2 (A page that does not exist): answered HTTP 404; expected 200"),
        "{out}"
    );
    assert!(out.contains("--from 2"), "it says how to continue:\n{out}");
    let freezes: Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/freezes", opsd.api_url))
        .bearer_auth(opsd.token())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        freezes["freezes"],
        serde_json::json!([]),
        "step 3 never ran"
    );
    let failed = runbook_entries(&opsd)[0]["data"].clone();
    assert_eq!(failed["outcome"], "failed");
    let outcomes: Vec<&str> = failed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, vec!["passed", "failed", "not_run"]);

    // Starting after the failing step: the earlier steps are skipped, the freeze runs.
    let (code, out) = opsd.cli(&[
        "runbook", "run", "broken", "--dir", dir_arg, "--from", "freeze",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = opsd.cli(&["unfreeze", "steno"]);
    assert_eq!(code, 0, "the freeze step ran:\n{out}");

    // `check` names a misspelt flag at its file and line.
    std::fs::write(
        runbooks.join("typo.md"),
        "# Typo\n\n## Roll back\n\n```opsd dangerous\nopsd rollback steno --reasn x\n```\n",
    )
    .unwrap();
    let (code, out) = opsd.cli(&["runbook", "check", "--dir", dir_arg]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("typo.md:5: step 1 (Roll back)"), "{out}");
    assert!(out.contains("--reasn"), "{out}");

    // The record is an API call like any other: viewers may not send one, and a malformed or
    // oversized one is refused, naming the problem, and changes nothing.
    let before = runbook_entries(&opsd).len();
    let mut record = audit_record(&opsd);
    let viewer = opsd.create_token("reader", "viewer");
    let (status, _) = post_run(&opsd, &viewer, &record);
    assert_eq!(status, 403);
    record["runbook"] = "../../etc/passwd".into();
    let (status, body) = post_run(&opsd, &opsd.token(), &record);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("runbook: a name is"), "{body}");
    record["runbook"] = "rollback".into();
    record["steps"][0]["output_tail"] = "x".repeat(100_000).into();
    let (status, body) = post_run(&opsd, &opsd.token(), &record);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("output_tail"), "{body}");
    record["steps"][0]["output_tail"] = "".into();
    record["params"]["service"] = "nonexistent".into();
    let (status, body) = post_run(&opsd, &opsd.token(), &record);
    assert_eq!(status, 404, "{body}");
    assert_eq!(runbook_entries(&opsd).len(), before);

    let _ = load.kill();
    let _ = load.wait();
}

/// The newest runbook run in the audit log, as the CLI sent it.
fn audit_record(opsd: &Opsd) -> Value {
    opsd.audit()
        .into_iter()
        .find(|entry| entry["action"] == "runbook_run")
        .unwrap()["detail"]
        .clone()
}

fn post_run(opsd: &Opsd, token: &str, record: &Value) -> (u16, String) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/runbook-runs", opsd.api_url))
        .bearer_auth(token)
        .json(record)
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}
