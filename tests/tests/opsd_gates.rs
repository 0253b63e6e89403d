//! End to end: the gates of a deploy and of a rollout through `opsd up` and the CLI, with real
//! Steno processes. A freeze refuses deploys naming who froze and why until an audited override
//! or `opsd unfreeze`; a deploy outside every deploy window is refused until an audited
//! `--override window`; a step that needs two people's approval waits at its weight until two
//! different people approve; an operator's maintenance window shows as a banner in Steno's UI
//! and goes away when stopped.

use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::binary;
use e2e_tests::opsd_up::{last_rollout_kinds, start_opsd, write_config};
use serde_json::Value;

/// `opsd freeze` stops the line: a deploy is refused naming who froze and why, passes only with
/// an audited override, and is allowed again after `opsd unfreeze`.
#[test]
fn a_deploy_during_a_freeze_is_refused_then_allowed_with_an_audited_override() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let opsd = start_opsd(dir.path());
    // Hostile and unprivileged freezes change nothing.
    let viewer = opsd
        .process
        .lines_before_url
        .iter()
        .find_map(|line| line.trim().strip_prefix("viewer:"))
        .map(|token| token.trim().to_string())
        .expect("a viewer token on first start");
    let http = reqwest::blocking::Client::new();
    let post_freeze = |token: &str, body: Value| {
        http.post(format!("{}/v1/freeze", opsd.api_url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        post_freeze(&viewer, serde_json::json!({"reason": "no"})),
        403
    );
    let operator = opsd.token();
    let huge = "x".repeat(100_000);
    for body in [
        serde_json::json!({"reason": huge}),
        serde_json::json!({"reason": "   "}),
        serde_json::json!({"reason": "r", "everything": true}),
        serde_json::json!({"reason": ["not", "text"]}),
    ] {
        let status = post_freeze(&operator, body);
        assert!((400..500).contains(&status), "{status}");
    }
    assert_eq!(
        post_freeze(
            &operator,
            serde_json::json!({"service": "../etc", "reason": "r"})
        ),
        404
    );
    let (code, out) = opsd.cli(&["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("FROZEN"), "{out}");

    let (code, out) = opsd.cli(&["freeze", "--reason", "incident 42: payments down"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("every service frozen"), "{out}");
    let (code, out) = opsd.cli(&["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("FROZEN: every service"), "{out}");

    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v2"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused by a freeze"), "{out}");
    assert!(out.contains("incident 42: payments down"), "{out}");
    assert!(out.contains("--override freeze"), "{out}");

    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v2",
        "--override",
        "freeze",
        "--reason",
        "the hotfix for incident 42",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = opsd.cli(&["abort", "steno", "--reason", "test over"]);
    assert_eq!(code, 0, "{out}");

    let audit = opsd.audit();
    let actions: Vec<&str> = audit
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"freeze"), "{actions:?}");
    assert!(actions.contains(&"override_freeze"), "{actions:?}");

    let (code, out) = opsd.cli(&["unfreeze"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = opsd.cli(&["unfreeze"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no freeze of every service"), "{out}");
    for _ in 0..100 {
        let (code, _) = opsd.cli(&["deploy", "steno", "--version", "v3"]);
        if code == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("a deploy after unfreeze was not accepted");
}

/// Deploy windows through `opsd up`: with every day a freeze date, a deploy is refused naming
/// the freeze and that no window opens, passes only with an audited `--override window`, and
/// the status shows no waiting once it runs.
#[test]
fn a_deploy_outside_every_deploy_window_is_refused_then_allowed_with_an_audited_override() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "deploy_windows:\n  time_zone: Europe/London\n  windows:\n    - {name: weeknights, start: \"0 2 * * TUE-THU\", duration: 2h}\n  freeze_dates:\n    - {from: 2000-01-01, to: 2099-12-31, reason: e2e freeze}\n",
    );
    std::fs::write(&config, text).unwrap();
    let opsd = start_opsd(dir.path());

    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v2"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused by the deploy window gate"), "{out}");
    assert!(out.contains("is a freeze date (e2e freeze)"), "{out}");
    assert!(out.contains("does not open within 400 days"), "{out}");
    assert!(out.contains("--override window"), "{out}");

    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v2",
        "--override",
        "window",
        "--reason",
        "security patch",
    ]);
    assert_eq!(code, 0, "{out}");
    let rollout = &opsd.status()["service"]["active_rollout"];
    assert!(rollout["waiting_for_window"].is_null(), "{rollout}");
    assert_eq!(rollout["state"]["window_overridden"], true, "{rollout}");
    let (code, out) = opsd.cli(&["abort", "steno", "--reason", "test over"]);
    assert_eq!(code, 0, "{out}");

    let audit = opsd.audit();
    let entry = audit
        .iter()
        .find(|entry| entry["action"] == "override_deploy_window")
        .expect("the override is audited");
    assert_eq!(entry["reason"], "security patch", "{entry}");
}

/// R-GATE-8 through `opsd up` and the CLI: a step that needs two people waits at 10 %; each
/// person approves with their own token, once; a viewer cannot approve; then it is promoted.
#[test]
fn an_approval_step_needs_two_different_people() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    std::fs::write(
        dir.path().join("fast.yaml"),
        "name: two-people\nsteps:\n  - weight: 10\n    bake: 3s\n  - weight: 100\n    approve: {approvers: 2, timeout: 10m, on_timeout: rollback}\n",
    )
    .unwrap();
    let opsd = start_opsd(dir.path());
    let alice = opsd.create_token("alice", "operator");
    let bob = opsd.create_token("bob", "operator");
    let viewer = opsd.create_token("vera", "viewer");
    assert!(alice.starts_with("opsd_") && alice != bob);
    let again = Command::new(binary("opsd"))
        .arg("--config")
        .arg(dir.path().join("opsd.yaml"))
        .args(["token", "create", "alice"])
        .output()
        .unwrap();
    assert_ne!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stderr).contains("a token named \"alice\" exists"));
    let listed = Command::new(binary("opsd"))
        .arg("--config")
        .arg(dir.path().join("opsd.yaml"))
        .args(["token", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        listed.contains("alice") && listed.contains("vera"),
        "{listed}"
    );
    assert!(!listed.contains(&alice), "token list never shows a secret");

    let mut load = opsd.load(200, 300);
    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v2"]);
    assert_eq!(code, 0, "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = opsd.status();
        let rollout = &status["service"]["active_rollout"];
        if rollout["state"]["approval"].is_object() {
            assert_eq!(rollout["canary_weight_percent"], 10);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never waited for approval: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, out) = opsd.cli_as(&viewer, &["approve", "steno"]);
    assert_eq!(code, 1, "a viewer cannot approve: {out}");
    let (code, out) = opsd.cli_as(
        &alice,
        &["approve", "steno", "--reason", "error budget fine"],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out) = opsd.cli_as(&alice, &["approve", "steno"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("alice already approved"), "{out}");
    assert_eq!(
        opsd.status()["service"]["active_rollout"]["canary_weight_percent"],
        10
    );
    let (code, out) = opsd.cli_as(&bob, &["approve", "steno"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = opsd.cli(&["gate", "steno", "--timeout", "60s"]);
    assert_eq!(code, 0, "promoted after two approvals: {out}");
    let kinds = last_rollout_kinds(&opsd);
    assert_eq!(kinds, vec!["start", "await_approval", "advance", "promote"]);
    let _ = load.kill();
    let _ = load.wait();
}

/// R-WINDOW-5 through `opsd up`: an operator's maintenance window shows as a banner in Steno's UI
/// with no manual step (opsd tells its releases where the public status document is), and goes
/// away when stopped. Bad requests change nothing.
#[test]
fn the_maintenance_banner_appears_in_steno_through_the_status_document() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("    env:\n      STENO_STATUS_POLL_SECS: \"1\"\n");
    std::fs::write(&config, text).unwrap();
    let opsd = start_opsd(dir.path());
    let public_page = || {
        reqwest::blocking::get(format!("{}/login", opsd.public_url))
            .unwrap()
            .text()
            .unwrap()
    };
    let document = || -> Value {
        reqwest::blocking::get(format!("{}/status.json", opsd.api_url))
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(document()["maintenance"]["active"], false);
    assert!(!public_page().contains("Maintenance:"));

    // Refused: a blank message, a long one, a time in the past, a viewer.
    for args in [
        vec!["maintenance", "start", "--message", "  "],
        vec!["maintenance", "start", "--message", &"x".repeat(400)],
        vec![
            "maintenance",
            "start",
            "--message",
            "m",
            "--at",
            "2020-01-01T00:00:00Z",
        ],
        vec!["maintenance", "start", "--message", "m", "--at", "tomorrow"],
        vec!["maintenance", "start", "--message", "m", "--duration", "9d"],
    ] {
        let (code, out) = opsd.cli(&args);
        assert_eq!(code, 1, "{args:?}: {out}");
    }
    let viewer = opsd.create_token("vera", "viewer");
    let (code, out) = opsd.cli_as(
        &viewer,
        &["maintenance", "start", "--message", "viewer was here"],
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(document()["maintenance"]["active"], false);

    let message = "Upgrading the database until 04:00 UTC";
    let (code, out) = opsd.cli(&[
        "maintenance",
        "start",
        "--message",
        message,
        "--duration",
        "1h",
    ]);
    assert_eq!(code, 0, "{out}");
    let served = document();
    assert_eq!(served["maintenance"]["active"], true);
    assert_eq!(served["maintenance"]["message"], message);
    assert!(
        !served.to_string().contains("operator"),
        "the public document names no one: {served}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !public_page().contains(message) {
        assert!(
            Instant::now() < deadline,
            "the banner never appeared: {}",
            public_page()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, out) = opsd.cli(&["maintenance", "status"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(message) && out.contains("operator operator"),
        "{out}"
    );

    let (code, out) = opsd.cli(&["maintenance", "stop", "--reason", "done early"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(document()["maintenance"]["active"], false);
    let deadline = Instant::now() + Duration::from_secs(30);
    while public_page().contains(message) {
        assert!(Instant::now() < deadline, "the banner never went away");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, out) = opsd.cli(&["maintenance", "stop"]);
    assert_eq!(code, 1, "nothing left to stop: {out}");
}
