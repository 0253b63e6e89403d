//! End to end: `opsd up` with real Steno processes behind its router and real traffic. A good
//! release is promoted through every step; a release with 20 % errors, one with +500 ms latency
//! and one whose health fails are each rolled back with the right exit codes from
//! `deploy --wait` and `gate`; with the cost-per-request check on, a release that sends 100 kB
//! more per response is held until an operator accepts it; a release whose letter export is broken
//! passes every traffic comparison but is rolled back by the `e2e` check (`steno probe`), whose
//! decision names the export step; opsd killed with SIGKILL mid-rollout
//! and restarted ends consistent; `config validate` and `up` check every plan and alarm file and
//! place errors on the file and line at fault. The gates (freezes, deploy windows, approvals,
//! maintenance) are in `opsd_gates.rs`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::binary;
use e2e_tests::opsd_up::{
    last_rollout_kinds, start_opsd, write_config, write_config_with_analysis, Opsd, FAST_PLAN,
};
use serde_json::Value;

fn stable_version(opsd: &Opsd) -> String {
    opsd.status()["service"]["stable_version"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn rollouts_promote_good_releases_and_roll_back_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let opsd = start_opsd(dir.path());
    assert_eq!(stable_version(&opsd), "v1");
    let mut load = opsd.load(250, 600);

    // A good release goes through 10 % and 50 % and is promoted.
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v2",
        "--wait",
        "--timeout",
        "90s",
    ]);
    assert_eq!(code, 0, "a healthy release is promoted:\n{out}");
    assert_eq!(stable_version(&opsd), "v2");
    assert_eq!(
        last_rollout_kinds(&opsd),
        vec!["start", "advance", "promote"]
    );
    let (gate, out) = opsd.cli(&["gate", "steno", "--timeout", "5s"]);
    assert_eq!(gate, 0, "{out}");

    // 20 % errors: rolled back, exit 2, the stable release keeps all traffic.
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v3-errors",
        "--env",
        "STENO_CHAOS_ERROR_RATE=0.2",
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert_eq!(code, 2, "a release with 20 % errors is rolled back:\n{out}");
    assert_eq!(stable_version(&opsd), "v2");
    assert_eq!(last_rollout_kinds(&opsd).last().unwrap(), "roll_back");
    let (gate, out) = opsd.cli(&["gate", "steno", "--timeout", "5s"]);
    assert_eq!(gate, 2, "{out}");
    // For a CI job: the step summary lays the decisions out, the annotation says why.
    let summary_file = dir.path().join("step-summary.md");
    let github = std::process::Command::new(e2e_tests::binary("opsd"))
        .arg("--config")
        .arg(dir.path().join("opsd.yaml"))
        .args(["--server", &opsd.api_url, "--token", &opsd.token()])
        .args(["gate", "steno", "--timeout", "5s", "--format", "github"])
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .output()
        .unwrap();
    let annotations = String::from_utf8_lossy(&github.stdout);
    assert_eq!(github.status.code(), Some(2), "{annotations}");
    assert!(
        annotations.contains("::error title=steno v3-errors rolled back::"),
        "{annotations}"
    );
    let summary = std::fs::read_to_string(&summary_file).unwrap();
    assert!(
        summary.starts_with("## steno v3-errors over v2: rolled back (exit 2)")
            && summary.contains("| roll back |")
            && summary.contains("<details><summary>Evidence of roll back"),
        "{summary}"
    );
    let split = &opsd.status()["service"]["split"];
    assert_eq!(split["stable"], "steno@v2");
    assert!(
        split["canary"].is_null(),
        "no canary weight is left: {split}"
    );

    // +500 ms latency: rolled back.
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v4-slow",
        "--env",
        "STENO_CHAOS_LATENCY_MS=500",
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert_eq!(code, 2, "a release 500 ms slower is rolled back:\n{out}");
    assert_eq!(stable_version(&opsd), "v2");
    let (gate, out) = opsd.cli(&["gate", "steno", "--timeout", "5s"]);
    assert_eq!(gate, 2, "{out}");

    // Failing health: the canary never becomes ready, traffic never moves, exit 2.
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v5-sick",
        "--env",
        "STENO_CHAOS_FAIL_HEALTH=true",
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert_eq!(
        code, 2,
        "a release whose health fails is rolled back:\n{out}"
    );
    assert_eq!(stable_version(&opsd), "v2");
    let (gate, out) = opsd.cli(&["gate", "steno", "--timeout", "5s", "--json"]);
    assert_eq!(gate, 2, "{out}");
    let gated: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(gated["outcome"], "failed");

    // After a completed rollout, `rollback` returns to the previous release at once.
    let (code, out) = opsd.cli(&["rollback", "steno", "--reason", "back to v1"]);
    assert_eq!(code, 0, "{out}");
    let (gate, out) = opsd.cli(&["gate", "steno", "--timeout", "60s"]);
    assert_eq!(gate, 0, "{out}");
    assert_eq!(stable_version(&opsd), "v1");
    let health: Value = reqwest::blocking::get(format!("{}/v1/health", opsd.public_url))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        health["version"], "v1",
        "traffic reaches the release rolled back to"
    );

    // Only one rollout per service at a time.
    let (first, out) = opsd.cli(&["deploy", "steno", "--version", "v6"]);
    assert_eq!(first, 0, "{out}");
    let (second, out) = opsd.cli(&["deploy", "steno", "--version", "v7"]);
    assert_eq!(second, 1, "{out}");
    assert!(out.contains("in progress"), "{out}");
    let (abort, out) = opsd.cli(&["abort", "steno", "--reason", "test over"]);
    assert_eq!(abort, 0, "{out}");
    let (gate, out) = opsd.cli(&["gate", "steno", "--timeout", "10s"]);
    assert_eq!(gate, 2, "an aborted rollout gates as failed: {out}");

    // Tokens and roles: reading needs a token, changing needs the operator role; all audited.
    let viewer = opsd
        .process
        .lines_before_url
        .iter()
        .find_map(|line| {
            line.trim()
                .strip_prefix("viewer:")
                .map(|rest| rest.trim().to_string())
        })
        .expect("opsd up prints a viewer token on first start");
    let client = reqwest::blocking::Client::new();
    let deploy_url = format!("{}/v1/services/steno/deploy", opsd.api_url);
    let anonymous = client
        .post(&deploy_url)
        .json(&serde_json::json!({"version": "v9"}))
        .send()
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let as_viewer = client
        .post(&deploy_url)
        .bearer_auth(&viewer)
        .json(&serde_json::json!({"version": "v9"}))
        .send()
        .unwrap();
    assert_eq!(as_viewer.status(), 403);
    let status = client
        .get(format!("{}/v1/status", opsd.api_url))
        .bearer_auth(&viewer)
        .send()
        .unwrap();
    assert_eq!(status.status(), 200, "viewers can read");
    let bad_body = client
        .post(&deploy_url)
        .bearer_auth(opsd.token())
        .json(&serde_json::json!({"versoin": "v9"}))
        .send()
        .unwrap();
    assert_eq!(bad_body.status(), 422);
    assert!(bad_body.text().unwrap().contains("versoin"));
    let entries = opsd.audit();
    assert!(entries.iter().any(|entry| entry["action"] == "deploy"
        && entry["actor"] == "operator"
        && entry["detail"]["canary"] == "v2"));
    assert!(entries
        .iter()
        .any(|entry| entry["action"] == "abort" && entry["reason"] == "test over"));
    assert!(
        !entries
            .iter()
            .any(|entry| entry["detail"]["canary"] == "v9"),
        "refused calls change nothing"
    );

    let mut opsd = opsd;
    let metrics = client
        .get(format!("{}/metrics", opsd.api_url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics
            .contains("opsd_release_requests_last_minute{service=\"steno\",release=\"steno@v1\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("opsd_notifications_total"));

    let _ = load.kill();
    let _ = load.wait();

    // SIGTERM stops opsd cleanly, children included.
    let public_port: u16 = opsd.public_url.rsplit(':').next().unwrap().parse().unwrap();
    let status = opsd.process.terminate(Duration::from_secs(30));
    assert!(status.success(), "opsd exits cleanly: {status:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", public_port)).is_err(),
        "the public port is closed"
    );
}

#[test]
fn bad_configuration_is_refused_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opsd.yaml");
    std::fs::write(&path, "listen: 127.0.0.1:0\nservices:\n  steno:\n    plan: Canary10Percent5Minutes\n    bake_time: 5m\n").unwrap();
    for args in [vec!["config", "validate"], vec!["up"]] {
        let output = Command::new(binary("opsd"))
            .arg("--config")
            .arg(&path)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("opsd.yaml:5"), "{args:?}: {stderr}");
        assert!(stderr.contains("bake_time"), "{args:?}: {stderr}");
    }
    assert!(
        !dir.path().join("data").exists() && !dir.path().join(".opsd").exists(),
        "a refused start creates nothing"
    );
    let good = Command::new(binary("opsd"))
        .args(["--config", "no-such-file.yaml", "config", "validate"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(good.status.success(), "embedded defaults validate");
}

/// Usage errors exit 1 with the usage on stderr, for every command: exit 2 would tell CI "rolled
/// back". Help and version still exit 0.
#[test]
fn usage_errors_exit_1_with_the_usage_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let commands: &[&[&str]] = &[
        &["up"],
        &["deploy", "steno", "--version", "v2"],
        &["status"],
        &["promote", "steno"],
        &["pause", "steno"],
        &["resume", "steno"],
        &["abort", "steno"],
        &["rollback", "steno"],
        &["history", "steno"],
        &["gate", "steno"],
        &["freeze", "--reason", "incident"],
        &["unfreeze"],
        &["approve", "steno"],
        &["token", "create", "alice"],
        &["token", "list"],
        &["maintenance", "start", "--message", "m"],
        &["maintenance", "stop"],
        &["maintenance", "status"],
        &["load"],
        &["config", "validate"],
        &["alarms", "list"],
        &["alarms", "sync"],
        &["cdn", "invalidate", "steno"],
        &["package", "steno"],
        &["drill", "run", "steno"],
        &["drill", "list"],
        &["drill", "show", "x"],
        &["drill", "snapshot", "steno"],
        &["cost", "check"],
        &["cost", "report"],
    ];
    let mut cases: Vec<Vec<&str>> = commands
        .iter()
        .map(|args| {
            let mut misspelt = args.to_vec();
            misspelt.push("--wiat");
            misspelt
        })
        .collect();
    cases.push(vec!["deploy", "steno"]);
    cases.push(vec!["freeze", "steno"]);
    cases.push(vec!["approve"]);
    cases.push(vec!["token", "create"]);
    cases.push(vec!["deploy"]);
    cases.push(vec!["dploy", "steno"]);
    cases.push(vec!["load", "--rps", "-3"]);
    cases.push(vec!["load", "--rps", "many"]);
    cases.push(vec![]);
    for args in &cases {
        let output = Command::new(binary("opsd"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage:"), "{args:?}: {stderr}");
    }
    for args in [vec!["--help"], vec!["deploy", "--help"], vec!["--version"]] {
        let output = Command::new(binary("opsd")).args(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(!output.stdout.is_empty(), "{args:?}");
    }
}

/// `opsd config validate` and `opsd up` with `dir/opsd.yaml`: the exit code and stderr.
fn refused_by_both(dir: &Path) -> Vec<String> {
    let mut messages = Vec::new();
    for args in [vec!["config", "validate"], vec!["up"]] {
        let output = Command::new(binary("opsd"))
            .arg("--config")
            .arg(dir.join("opsd.yaml"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        messages.push(stderr);
    }
    messages
}

#[test]
fn config_validate_checks_every_plan_and_alarm_file_at_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = "listen: 127.0.0.1:0\nservices:\n  steno:\n    public_addr: 127.0.0.1:0\n";
    std::fs::write(dir.path().join("opsd.yaml"), config).unwrap();
    std::fs::create_dir(dir.path().join("plans")).unwrap();
    std::fs::write(dir.path().join("plans/fast.yaml"), FAST_PLAN).unwrap();
    // A plan nobody names, with a weight out of range on line 5.
    std::fs::write(
        dir.path().join("plans/unused.yaml"),
        "name: unused\nsteps:\n  - weight: 10\n    bake: 1m\n  - weight: 250\n",
    )
    .unwrap();
    for stderr in refused_by_both(dir.path()) {
        assert!(stderr.contains("unused.yaml:5:"), "{stderr}");
        assert!(stderr.contains("steps[1].weight"), "{stderr}");
    }
    std::fs::remove_file(dir.path().join("plans/unused.yaml")).unwrap();

    // An alarm file with a threshold that is not a number on line 6.
    std::fs::create_dir(dir.path().join("alarms")).unwrap();
    std::fs::write(
        dir.path().join("alarms/slow.yaml"),
        "alarms:\n  - name: slow\n    metric: error_rate\n    comparison: \">\"\n    period: 1m\n    threshold: high\n    severity: critical\n",
    )
    .unwrap();
    for stderr in refused_by_both(dir.path()) {
        assert!(stderr.contains("slow.yaml:6:"), "{stderr}");
    }
    std::fs::remove_dir_all(dir.path().join("alarms")).unwrap();

    // A named plan running a check the service does not define: reported in the plan file.
    std::fs::write(
        dir.path().join("plans/nightly.yaml"),
        "name: nightly\nsteps:\n  - weight: 10\n    bake: 1m\n    checks: [nightly]\n  - weight: 100\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("opsd.yaml"),
        format!("{config}    plan: nightly\n"),
    )
    .unwrap();
    for stderr in refused_by_both(dir.path()) {
        assert!(
            stderr.contains("nightly.yaml:5:5: steps[0].checks"),
            "{stderr}"
        );
        assert!(!stderr.contains("opsd.yaml:"), "{stderr}");
    }
    assert!(
        !dir.path().join(".opsd").exists(),
        "a refused start creates nothing"
    );
}

#[test]
fn config_errors_speak_yaml_and_give_the_position_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opsd.yaml");
    std::fs::write(
        &path,
        "listen: 127.0.0.1:0\nservices:\n  steno: {}\nlisten: 127.0.0.1:1\n",
    )
    .unwrap();
    for stderr in refused_by_both(dir.path()) {
        assert!(
            stderr.contains("opsd.yaml:4:1: listen: duplicate field `listen`"),
            "{stderr}"
        );
        assert!(!stderr.contains(" at line "), "{stderr}");
    }
    std::fs::write(&path, "services:\n  steno: 8080\n").unwrap();
    for stderr in refused_by_both(dir.path()) {
        assert!(
            stderr.contains(
                "opsd.yaml:2:10: services.steno: invalid type: integer `8080`, expected a mapping"
            ),
            "{stderr}"
        );
        assert!(!stderr.contains("Raw"), "{stderr}");
        assert!(!stderr.contains("column"), "{stderr}");
    }
}

#[test]
fn sigkill_mid_rollout_then_restart_ends_consistent() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let mut opsd = start_opsd(dir.path());
    let mut load = opsd.load(250, 600);
    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v2"]);
    assert_eq!(code, 0, "{out}");

    // Wait until the canary takes traffic, then kill opsd without warning.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = opsd.status();
        if status["service"]["active_rollout"]["phase"] == "baking" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rollout never started baking: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let rollout_id = opsd.status()["service"]["active_rollout"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    opsd.process.child.kill().unwrap();
    opsd.process.child.wait().unwrap();
    let _ = load.kill();
    let _ = load.wait();

    // Restart on the same store: the rollout resumes and finishes.
    let opsd = start_opsd(dir.path());
    let mut load = opsd.load(250, 600);
    let (code, out) = opsd.cli(&["gate", "steno", "--timeout", "90s"]);
    assert_eq!(code, 0, "the resumed rollout is promoted:\n{out}");
    let status = opsd.status();
    assert_eq!(status["service"]["stable_version"], "v2");
    assert_eq!(status["service"]["last_rollout"]["id"], rollout_id.as_str());
    let split = &status["service"]["split"];
    assert_eq!(split["stable"], "steno@v2");
    assert!(
        split["canary"].is_null(),
        "no intermediate weight is left: {split}"
    );
    let kinds = last_rollout_kinds(&opsd);
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("start"),
        "decisions from before the kill are kept: {kinds:?}"
    );
    assert_eq!(kinds.last().map(String::as_str), Some("promote"));
    let _ = load.kill();
    let _ = load.wait();
}

#[test]
fn a_release_that_more_than_doubles_the_cost_of_a_request_is_held_until_resumed() {
    let dir = tempfile::tempdir().unwrap();
    write_config_with_analysis(dir.path(), "  cost_per_request: {max_ratio: 2}\n");
    let opsd = start_opsd(dir.path());
    let mut load = opsd.load(250, 600);

    // Same binary, same responses: the cost check passes (ratio about 1) and says so.
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v2",
        "--wait",
        "--timeout",
        "90s",
    ]);
    assert_eq!(code, 0, "a release that costs the same is promoted:\n{out}");
    let (code, out) = opsd.cli(&["history", "steno", "--json", "--limit", "1"]);
    assert_eq!(code, 0, "{out}");
    let history: Value = serde_json::from_str(&out).unwrap();
    let advance = &history["rollouts"][0]["decisions"][1];
    assert_eq!(advance["kind"], "advance", "{history:#}");
    let cost = &advance["evidence"]["cost_per_request"];
    assert_eq!(cost["exceeded"], false, "{cost:#}");
    let ratio = cost["ratio"].as_f64().unwrap();
    assert!(
        ratio < 1.5,
        "the same release costs about the same: {ratio}"
    );

    // 100,000 more bytes per response: about $7.9 per million requests of CloudFront transfer
    // on top of about $4.7 of request charges, so each request costs more than twice as much.
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v3-heavy",
        "--env",
        "STENO_CHAOS_PAD_BYTES=100000",
    ]);
    assert_eq!(code, 0, "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = loop {
        let status = opsd.status();
        let rollout = &status["service"]["active_rollout"];
        if rollout["phase"] == "held" {
            break rollout.clone();
        }
        assert!(
            rollout["phase"] != "rolled_back" && !rollout.is_null(),
            "the heavier release was not held: {status:#}"
        );
        assert!(Instant::now() < deadline, "not held in time: {status:#}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(held["canary_weight_percent"], 10, "{held:#}");
    let hold = held["decisions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(hold["kind"], "hold", "{held:#}");
    assert!(
        hold["summary"].as_str().unwrap().contains("cost more"),
        "{hold:#}"
    );
    let cost = &hold["evidence"]["cost_per_request"];
    assert_eq!(cost["exceeded"], true, "{cost:#}");
    assert!(cost["ratio"].as_f64().unwrap() >= 2.0, "{cost:#}");
    assert_eq!(stable_version(&opsd), "v2");

    // The operator accepts the cost: the rollout goes on and is promoted.
    let (code, out) = opsd.cli(&[
        "resume",
        "steno",
        "--reason",
        "bigger answers are intended: full letters inline",
    ]);
    assert_eq!(code, 0, "{out}");
    let (gate, out) = opsd.cli(&["gate", "steno", "--timeout", "90s"]);
    assert_eq!(gate, 0, "{out}");
    assert_eq!(stable_version(&opsd), "v3-heavy");
    let _ = load.kill();
    let _ = load.wait();
}

/// R-WATCH-1, R-WATCH-4 through `opsd up`: a release that starts failing 20 s after it reached
/// 100 % is rolled back during the watch, and the previous release, kept warm, takes the traffic
/// back without being started again.
#[test]
fn a_release_failing_during_the_watch_is_rolled_back_to_the_warm_previous_release() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    std::fs::write(
        dir.path().join("fast.yaml"),
        "name: watched\nsteps:\n  - weight: 10\n    bake: 4s\n  - weight: 100\nwatch: 90s\n",
    )
    .unwrap();
    let opsd = start_opsd(dir.path());
    let mut load = opsd.load(250, 600);
    // v1's traffic before the rollout is what the watch compares v2 with.
    std::thread::sleep(Duration::from_secs(8));

    // v2 is good for its first 25 s (about 20 s after it reaches 100 %), then fails 20 %.
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v2",
        "--env",
        "STENO_CHAOS_ERROR_RATE=0.2",
        "--env",
        "STENO_CHAOS_AFTER_SECS=25",
        "--wait",
        "--timeout",
        "150s",
    ]);
    assert_eq!(
        code, 2,
        "the release is rolled back during its watch:\n{out}"
    );
    let status = opsd.status();
    assert_eq!(status["service"]["stable_version"], "v1");
    assert_eq!(status["service"]["split"]["stable"], "steno@v1");
    assert!(status["service"]["split"]["canary"].is_null(), "{status}");

    let decisions = status["service"]["last_rollout"]["decisions"]
        .as_array()
        .unwrap()
        .clone();
    let kinds: Vec<&str> = decisions
        .iter()
        .map(|decision| decision["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["start", "advance", "roll_back"],
        "{decisions:#?}"
    );
    let advance = decisions[1]["summary"].as_str().unwrap();
    assert!(
        advance.contains("v2 now takes all traffic and is watched for 1m30s"),
        "{advance}"
    );
    let rollback = &decisions[2];
    assert_eq!(rollback["step_index"], 1, "rolled back in the watch step");
    let summary = rollback["summary"].as_str().unwrap();
    assert!(summary.contains("rolled back"), "{summary}");
    let reference = &status["service"]["last_rollout"]["state"]["reference"];
    assert_eq!(reference["version"], "v1", "{reference}");
    assert!(reference["traffic"]["requests"].as_u64().unwrap() > 100);

    // v1 served all along the watch without a restart: it started once, and answers at once.
    let v1_log = std::fs::read_to_string(dir.path().join("data/logs/steno-v1.log")).unwrap();
    assert_eq!(
        v1_log.matches("steno v1 listening on").count(),
        1,
        "v1 was kept warm, not started again:\n{v1_log}"
    );
    let health: Value = reqwest::blocking::get(format!("{}/v1/health", opsd.public_url))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["version"], "v1");
    let _ = load.kill();
    let _ = load.wait();
}

/// The port a release of `version` was started on, from the last "listening on" line of its log.
fn release_port(dir: &Path, version: &str) -> Option<u16> {
    let log = std::fs::read_to_string(dir.join(format!("data/logs/steno-{version}.log"))).ok()?;
    let line = log
        .lines()
        .rfind(|line| line.contains(&format!("steno {version} listening on http://")))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

/// Serving through a failing release, through `opsd up`: when the canary process is killed
/// mid-bake, requests the router sends to its dead port are refused before anything was sent
/// and go to the stable release instead, so clients see no error while the supervisor restarts
/// it (its restart waits 1 s, so requests do reach the dead port).
#[test]
fn requests_to_a_canary_killed_mid_bake_are_served_by_the_stable_release() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    std::fs::write(
        dir.path().join("fast.yaml"),
        "name: half\nsteps:\n  - weight: 50\n    bake: 5m\n  - weight: 100\n",
    )
    .unwrap();
    let opsd = start_opsd(dir.path());
    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v2"]);
    assert_eq!(code, 0, "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while opsd.status()["service"]["active_rollout"]["canary_weight_percent"] != 50 {
        assert!(Instant::now() < deadline, "the canary never took 50 %");
        std::thread::sleep(Duration::from_millis(200));
    }
    let port = release_port(dir.path(), "v2").expect("the canary logged its port");
    let killed = Command::new("pkill")
        .args(["-KILL", "-f", &format!("127.0.0.1:{port}")])
        .status()
        .unwrap();
    assert!(
        killed.success(),
        "the canary process on port {port} was found and killed"
    );

    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut answered_by: std::collections::BTreeMap<String, u32> = Default::default();
    let mut failures = Vec::new();
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let response = client
            .get(format!("{}/v1/health", opsd.public_url))
            .send()
            .unwrap();
        let status = response.status();
        if status != 200 {
            failures.push(status.as_u16());
            continue;
        }
        let health: Value = response.json().unwrap();
        *answered_by
            .entry(health["version"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    assert!(
        failures.is_empty(),
        "clients saw errors while the canary was down: {failures:?} (answered: {answered_by:?})"
    );
    assert!(
        answered_by.get("v1").copied().unwrap_or(0) > 20,
        "{answered_by:?}"
    );
    // Three failed health probes of the dead canary usually roll it back meanwhile; if the
    // restarted canary answered first, the rollout is still going and is stopped here.
    let _ = opsd.cli(&["abort", "steno", "--reason", "test over"]);
}

/// 50 % for 8 s with the `e2e` check, then 100 %.
const PROBED_PLAN: &str =
    "name: probed\nsteps:\n  - weight: 50\n    bake: 8s\n    checks: [e2e]\n  - weight: 100\n";

#[test]
fn the_e2e_probe_rolls_back_a_release_whose_export_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probed.yaml"), PROBED_PLAN).unwrap();
    let plan = dir.path().join("probed.yaml").display().to_string();
    let config = [
        "listen: 127.0.0.1:0",
        "data_dir: data",
        "tick: 200ms",
        "health_probe_interval: 500ms",
        "analysis:",
        "  min_requests: 40",
        "  on_inconclusive: rollback",
        "services:",
        "  steno:",
        "    public_addr: 127.0.0.1:0",
        &format!("    plan: {plan}"),
        "    ready_timeout: 20s",
        "    checks:",
        "      e2e:",
        r#"        command: ["{steno}", probe, --base-url, "{canary_url}", --timeout, 30s]"#,
        "        timeout: 40s",
        "",
    ]
    .join("\n");
    std::fs::write(dir.path().join("opsd.yaml"), config).unwrap();
    let opsd = start_opsd(dir.path());
    let mut load = opsd.load(200, 300);

    // A working release passes the probe at 50 % and is promoted.
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v2",
        "--wait",
        "--timeout",
        "90s",
    ]);
    if code != 0 {
        let (_, history) = opsd.cli(&["history", "steno", "--limit", "1"]);
        panic!("a working release passes the probe (exit {code}):\n{out}\n{history}");
    }
    assert_eq!(stable_version(&opsd), "v2");

    // Exports answer 500, nothing else does: only the journey notices, and rolls it back.
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v3-broken-export",
        "--env",
        "STENO_CHAOS_BREAK_EXPORT=1",
        "--wait",
        "--timeout",
        "90s",
    ]);
    let _ = load.kill();
    let _ = load.wait();
    assert_eq!(
        code, 2,
        "a release with a broken export is rolled back:\n{out}"
    );
    assert_eq!(stable_version(&opsd), "v2");
    let (code, out) = opsd.cli(&["history", "steno", "--json", "--limit", "1"]);
    assert_eq!(code, 0, "{out}");
    let history: Value = serde_json::from_str(&out).unwrap();
    let rollout = &history["rollouts"][0];
    assert_eq!(rollout["canary_version"], "v3-broken-export", "{rollout:#}");
    let rollback = rollout["decisions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(rollback["kind"], "roll_back", "{rollout:#}");
    let summary = rollback["summary"].as_str().unwrap();
    assert!(summary.contains("e2e failed at 50 %"), "{summary}");
    assert!(
        summary.contains("probe failed at export-pdf"),
        "the decision names the failed step: {summary}"
    );
    assert!(summary.contains("answered 500"), "{summary}");
}
