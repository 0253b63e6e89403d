//! End to end: `opsd up` with real Steno processes behind its router and real traffic. A good
//! release is promoted through every step; a release with 20 % errors, one with +500 ms latency
//! and one whose health fails are each rolled back with the right exit codes from
//! `deploy --wait` and `gate`; with the cost-per-request check on, a release that sends 100 kB
//! more per response is held until an operator accepts it; a release whose letter export is broken
//! passes every traffic comparison but is rolled back by the `e2e` check (`steno probe`), whose
//! decision names the export step; opsd killed with SIGKILL mid-rollout
//! and restarted ends consistent; `config validate` and `up` check every plan and alarm file and
//! place errors on the file and line at fault; a deploy outside every deploy window is refused
//! until an audited override.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::{binary, start_opsd_up, RunningProcess};
use serde_json::Value;

/// A fast plan: 10 % for 6 s, 50 % for 6 s, then 100 %.
const FAST_PLAN: &str = "name: fast-e2e\nsteps:\n  - weight: 10\n    bake: 6s\n  - weight: 50\n    bake: 6s\n  - weight: 100\n";

struct Opsd {
    process: RunningProcess,
    api_url: String,
    public_url: String,
    dir: PathBuf,
}

fn write_config(dir: &Path) -> PathBuf {
    write_config_with_analysis(dir, "")
}

/// The fast plan's configuration with `extra_analysis` (indented lines) under `analysis:`.
fn write_config_with_analysis(dir: &Path, extra_analysis: &str) -> PathBuf {
    std::fs::write(dir.join("fast.yaml"), FAST_PLAN).unwrap();
    let config = format!(
        "listen: 127.0.0.1:0\n\
         data_dir: data\n\
         tick: 200ms\n\
         health_probe_interval: 500ms\n\
         analysis:\n  min_requests: 40\n  on_inconclusive: rollback\n{extra_analysis}\
         services:\n  steno:\n    public_addr: 127.0.0.1:0\n    plan: {}\n    ready_timeout: 20s\n",
        dir.join("fast.yaml").display()
    );
    let path = dir.join("opsd.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

fn start_opsd(dir: &Path) -> Opsd {
    let (process, public_url) = start_opsd_up(dir, "steno");
    let api_url = process.base_url.clone();
    Opsd {
        process,
        api_url,
        public_url,
        dir: dir.to_path_buf(),
    }
}

impl Opsd {
    fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("data/operator.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Runs an opsd client command; returns (exit code, stdout).
    fn cli(&self, args: &[&str]) -> (i32, String) {
        let output = Command::new(binary("opsd"))
            .arg("--config")
            .arg(self.dir.join("opsd.yaml"))
            .arg("--server")
            .arg(&self.api_url)
            .arg("--token")
            .arg(self.token())
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    }

    /// Runs an opsd client command with another token; returns (exit code, stdout + stderr).
    fn cli_as(&self, token: &str, args: &[&str]) -> (i32, String) {
        let output = Command::new(binary("opsd"))
            .arg("--config")
            .arg(self.dir.join("opsd.yaml"))
            .arg("--server")
            .arg(&self.api_url)
            .arg("--token")
            .arg(token)
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    }

    /// `opsd token create NAME --role ROLE` on this opsd's data directory: the new secret.
    fn create_token(&self, name: &str, role: &str) -> String {
        let output = Command::new(binary("opsd"))
            .arg("--config")
            .arg(self.dir.join("opsd.yaml"))
            .args(["token", "create", name, "--role", role])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn status(&self) -> Value {
        let (code, out) = self.cli(&["status", "steno", "--json"]);
        assert_eq!(code, 0, "{out}");
        serde_json::from_str(&out).unwrap()
    }

    /// Open-loop traffic through the router for the given time, as a child process.
    fn load(&self, rps: u32, seconds: u32) -> Child {
        Command::new(binary("opsd"))
            .args([
                "load",
                "--rps",
                &rps.to_string(),
                "--duration",
                &format!("{seconds}s"),
                "--target",
                &self.public_url,
            ])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

fn stable_version(opsd: &Opsd) -> String {
    opsd.status()["service"]["stable_version"]
        .as_str()
        .unwrap()
        .to_string()
}

fn last_rollout_kinds(opsd: &Opsd) -> Vec<String> {
    let (code, out) = opsd.cli(&["history", "steno", "--json", "--limit", "1"]);
    assert_eq!(code, 0, "{out}");
    let history: Value = serde_json::from_str(&out).unwrap();
    history["rollouts"][0]["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|decision| decision["kind"].as_str().unwrap().to_string())
        .collect()
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
    let audit: Value = client
        .get(format!("{}/v1/audit", opsd.api_url))
        .bearer_auth(opsd.token())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entries = audit["audit"].as_array().unwrap();
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

    let audit: Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/audit", opsd.api_url))
        .bearer_auth(opsd.token())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let actions: Vec<&str> = audit["audit"]
        .as_array()
        .unwrap()
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

    let audit: Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/audit", opsd.api_url))
        .bearer_auth(opsd.token())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entry = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["action"] == "override_deploy_window")
        .expect("the override is audited");
    assert_eq!(entry["reason"], "security patch", "{entry}");
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
