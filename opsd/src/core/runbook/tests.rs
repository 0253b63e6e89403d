//! Tests of the runbook parser: steps, options, parameters, and the problems it reports.

use super::*;

const ROLLBACK: &str = r#"---
params:
  service:
    help: The service to roll back.
    default: steno
  reason:
    help: Why, for the audit log.
---
# Roll back a deployment

Sends all traffic back to the previous release.
Use it when a promoted release misbehaves.

## When to use it

Prose only, with an example:

```text
opsd status
```

## 1. See what serves now

```opsd
opsd status {service}
```

## Step 2: Roll back

```opsd dangerous timeout=5m
opsd rollback {service} \
  --reason "{reason}"
```

## Check the public address

```http
GET {public_url}/health
status 200
contains "ok"
```

## Look at the gate

```opsd allow-exit=2,3 timeout=70m
opsd gate {service}
```

## Tail a log

```sh
echo {service}
```
"#;

#[test]
fn a_runbook_has_a_title_summary_parameters_and_numbered_steps() {
    let runbook = parse("rollback", ROLLBACK).unwrap();
    assert_eq!(runbook.title, "Roll back a deployment");
    assert_eq!(
        runbook.summary,
        "Sends all traffic back to the previous release. Use it when a promoted release misbehaves."
    );
    assert_eq!(runbook.params.len(), 2);
    let titles: Vec<&str> = runbook
        .steps
        .iter()
        .map(|step| step.title.as_str())
        .collect();
    assert_eq!(
        titles,
        vec![
            "See what serves now",
            "Roll back",
            "Check the public address",
            "Look at the gate",
            "Tail a log"
        ]
    );
    let rollback = &runbook.steps[1];
    assert_eq!(rollback.number, 2);
    assert!(rollback.dangerous);
    assert_eq!(rollback.timeout, Duration::from_secs(300));
    assert_eq!(
        rollback.action,
        StepAction::Opsd {
            args: vec![
                "rollback".into(),
                "{service}".into(),
                "--reason".into(),
                "{reason}".into()
            ]
        }
    );
    assert_eq!(
        runbook.steps[2].action,
        StepAction::Http {
            method: HttpMethod::Get,
            url: "{public_url}/health".into(),
            status: Some(200),
            contains: Some("ok".into())
        }
    );
    assert_eq!(runbook.steps[3].allowed_exits, vec![2, 3]);
    assert!(!runbook.steps[0].dangerous);
    assert_eq!(runbook.steps[0].timeout, DEFAULT_STEP_TIMEOUT);
    assert_eq!(runbook.steps[4].action.kind(), "sh");
}

#[test]
fn from_names_a_step_by_number_or_slug() {
    let runbook = parse("rollback", ROLLBACK).unwrap();
    assert_eq!(runbook.step_index("2"), Ok(1));
    assert_eq!(runbook.step_index("roll-back"), Ok(1));
    assert_eq!(runbook.step_index("Look at the gate"), Ok(3));
    let error = runbook.step_index("9").unwrap_err();
    assert!(error.contains("1 (see-what-serves-now)"), "{error}");
}

#[test]
fn parameter_values_come_from_the_command_line_or_defaults() {
    let runbook = parse("rollback", ROLLBACK).unwrap();
    let error = runbook.values(&BTreeMap::new()).unwrap_err();
    assert!(error.contains("--param reason=VALUE"), "{error}");
    let given = BTreeMap::from([("reason".to_string(), "p99 high".to_string())]);
    let values = runbook.values(&given).unwrap();
    assert_eq!(values["service"], "steno");
    assert_eq!(values["reason"], "p99 high");
    let unknown = BTreeMap::from([("versoin".to_string(), "v2".to_string())]);
    assert!(runbook
        .values(&unknown)
        .unwrap_err()
        .contains("no parameter \"versoin\""));
    let control = BTreeMap::from([("reason".to_string(), "a\u{1b}b".to_string())]);
    assert!(runbook.values(&control).unwrap_err().contains("control"));
}

fn problems_of(text: &str) -> Vec<String> {
    parse("bad", text)
        .unwrap_err()
        .into_iter()
        .map(|problem| problem.to_string())
        .collect()
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let text = "# Bad\n\n## One\n\n```opsd\nopsd status {servce}\n```\n\n## Two\n\n```bash\nls\n```\n\n## Three\n\n```opsd\nopsd up\n```\n\n## Four\n\n```http\nPOST http://x/\n```\n\n## Five\n\n```sh wobbly\nls\n```\n";
    let problems = problems_of(text);
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems[0].starts_with("line 5: step 1 (One): {servce} is not a parameter"));
    assert!(problems[1].starts_with("line 11: ```bash blocks are not run"));
    assert!(problems[2].starts_with("line 17: step 2 (Three): `opsd up` cannot be"));
    assert!(problems[3].contains("GET or HEAD"));
    assert!(problems[4].contains("unknown option \"wobbly\""));
}

#[test]
fn structure_problems_are_named() {
    assert!(problems_of("no title\n")
        .iter()
        .any(|problem| problem.contains("no `# ` title")));
    assert!(problems_of("# T\n\n## S\n\n```opsd\nopsd status\n")
        .iter()
        .any(|problem| problem.contains("never closed")));
    let two = problems_of("# T\n\n## S\n\n```opsd\nopsd status\n```\n\n```sh\nls\n```\n");
    assert!(two[0].contains("more than one runnable block"), "{two:?}");
    let outside = problems_of("# T\n\n```opsd\nopsd status\n```\n");
    assert!(outside.iter().any(|problem| problem.contains("outside")));
    let front = problems_of(
        "---\nparams:\n  service: {hlp: x}\n---\n# T\n\n## S\n\n```opsd\nopsd status\n```\n",
    );
    assert!(front[0].starts_with("line 3: front matter: "), "{front:?}");
    let public = problems_of("# T\n\n## S\n\n```http\nGET {public_url}/health\n```\n");
    assert!(public[0].contains("does not declare"), "{public:?}");
    let two_commands =
        problems_of("# T\n\n## S\n\n```opsd\nopsd status\nopsd history steno\n```\n");
    assert!(two_commands[0].contains("exactly one command; this block has 2"));
    let not_opsd = problems_of("# T\n\n## S\n\n```opsd\nstatus\n```\n");
    assert!(not_opsd[0].contains("starting with `opsd`"));
}
