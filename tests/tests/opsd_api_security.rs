//! End to end: what an API caller cannot do to opsd. A `plan` is a name or a plan document,
//! never a path on opsd's host (and no error tells whether a path exists or shows a file's
//! content); release environment keys are checked and the loader/path family refused; values
//! never reach a viewer, the audit log or opsd's log (only fingerprints), and secrets given by
//! `env_from` never reach the store; opsd's data files are private even under a 022 umask.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::{binary, file_mode, start_opsd_up_with, RunningProcess};
use serde_json::{json, Value};

const PLAIN_VALUE: &str = "plain-value-9876-visible-to-no-one";
const SECRET_VALUE: &str = "the-secret-value-4242-from-opsd-env";

fn write_config(dir: &Path) {
    std::fs::create_dir(dir.join("plans")).unwrap();
    std::fs::write(
        dir.join("plans/slow.yaml"),
        "name: slow\nsteps:\n  - weight: 10\n    bake: 10m\n  - weight: 100\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("plans/escape.yaml")).unwrap();
    std::fs::write(
        dir.join("opsd.yaml"),
        "listen: 127.0.0.1:0\n\
         data_dir: data\n\
         tick: 200ms\n\
         secrets:\n  e2e-key: {env: OPSD_E2E_SECRET}\n\
         services:\n  steno:\n    public_addr: 127.0.0.1:0\n    plan: slow\n    ready_timeout: 20s\n",
    )
    .unwrap();
}

/// `opsd up` under a 022 umask, with the secret in its environment (its stderr is collected).
fn start(dir: &Path) -> RunningProcess {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(binary("opsd"))
        .arg("--config")
        .arg(dir.join("opsd.yaml"))
        .current_dir(dir)
        .env("OPSD_E2E_SECRET", SECRET_VALUE);
    let (process, _public) = start_opsd_up_with(command, "steno");
    process
}

struct Api {
    base: String,
    operator: String,
    viewer: String,
    client: reqwest::blocking::Client,
}

impl Api {
    fn deploy(&self, body: Value) -> (u16, String) {
        let answer = self
            .client
            .post(format!("{}/v1/services/steno/deploy", self.base))
            .bearer_auth(&self.operator)
            .json(&body)
            .send()
            .unwrap();
        (answer.status().as_u16(), answer.text().unwrap())
    }

    fn get(&self, path: &str, token: &str) -> String {
        let answer = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        answer.text().unwrap()
    }

    fn abort(&self) {
        let answer = self
            .client
            .post(format!("{}/v1/services/steno/abort", self.base))
            .bearer_auth(&self.operator)
            .json(&json!({"reason": "test over"}))
            .send()
            .unwrap();
        assert_eq!(answer.status(), 200);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let status: Value =
                serde_json::from_str(&self.get("/v1/services/steno", &self.viewer)).unwrap();
            if status["service"]["active_rollout"].is_null() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the aborted rollout did not finish");
    }
}

fn error_message(body: &str) -> String {
    let answer: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    answer["error"]["message"].as_str().unwrap().to_string()
}

/// The environment of the live process started with `STENO_VERSION=<version>`, as `KEY=VALUE`.
/// The environment of this test's release `version`: its process has `STENO_VERSION=version`
/// and a data directory under `dir` (other tests may run a release of the same version).
fn environment_of_release(version: &str, dir: &Path) -> Option<Vec<String>> {
    let marker = format!("STENO_VERSION={version}");
    let ours = dir.display().to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(bytes) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let variables: Vec<String> = bytes
            .split(|byte| *byte == 0)
            .map(|variable| String::from_utf8_lossy(variable).into_owned())
            .collect();
        let in_this_test = variables
            .iter()
            .any(|variable| variable.starts_with("STENO_DATA_DIR=") && variable.contains(&ours));
        if variables.contains(&marker) && in_this_test {
            return Some(variables);
        }
    }
    None
}

fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn api_callers_cannot_read_files_or_secrets_and_data_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let mut process = start(dir.path());
    let viewer = process
        .lines_before_url
        .iter()
        .find_map(|line| {
            line.trim()
                .strip_prefix("viewer:")
                .map(|rest| rest.trim().to_string())
        })
        .expect("a viewer token on first start");
    let api = Api {
        base: process.base_url.clone(),
        operator: std::fs::read_to_string(dir.path().join("data/operator.token"))
            .unwrap()
            .trim()
            .to_string(),
        viewer,
        client: reqwest::blocking::Client::new(),
    };

    // A plan is never a path: an existing file, a missing one, a relative escape and a symlink
    // out of the plans directory all answer alike, and no content is echoed.
    let opsd_yaml = std::fs::read_to_string(dir.path().join("opsd.yaml")).unwrap();
    let mut messages = Vec::new();
    for plan in [
        "/etc/passwd",
        "/no/such/file",
        "../opsd.yaml",
        "plans/slow.yaml",
        "escape",
        ".hidden",
    ] {
        let (status, body) = api.deploy(json!({"version": "v2", "plan": plan}));
        assert_eq!(status, 422, "{plan}: {body}");
        assert!(!body.contains("root:"), "{plan}: {body}");
        assert!(!body.contains("OPSD_E2E_SECRET"), "{plan}: {body}");
        assert!(!body.contains(&opsd_yaml[..20]), "{plan}: {body}");
        messages.push(error_message(&body).replace(plan, "<plan>"));
    }
    assert_eq!(
        messages[0], messages[1],
        "an existing and a missing path answer alike"
    );
    assert!(
        messages[0].contains("slow"),
        "names the plans there are: {}",
        messages[0]
    );
    let (status, body) = api.deploy(
        json!({"version": "v2", "plan": {"name": "x", "steps": [{"weight": 50, "bake": "1m"}]}}),
    );
    assert_eq!(status, 422, "{body}");
    assert!(error_message(&body).contains("steps[0].weight"), "{body}");
    let (status, body) = api.deploy(json!({"version": "v2", "plan": {"name": "x", "steps": [{"weight": 10, "bake": "1m", "checks": ["nope"]}, {"weight": 100}]}}));
    assert_eq!(status, 422, "{body}");
    assert!(error_message(&body).contains("\"nope\""), "{body}");

    // Environment keys are checked, and the loader and search-path family refused.
    for (key, named) in [
        ("LD_PRELOAD", "LD_PRELOAD"),
        ("LD_LIBRARY_PATH", "LD_LIBRARY_PATH"),
        ("PATH", "PATH"),
        ("BASH_ENV", "BASH_ENV"),
        ("A=B", "A=B"),
        ("", "empty"),
        ("PORT", "PORT"),
    ] {
        let (status, body) = api.deploy(json!({"version": "v2", "env": {key: "/tmp/x.so"}}));
        assert_eq!(status, 422, "{key}: {body}");
        assert!(error_message(&body).contains(named), "{key}: {body}");
    }
    let (status, body) = api.deploy(json!({"version": "v2", "env": {"GOOD": "a\u{0}b"}}));
    assert_eq!(status, 422, "{body}");
    assert!(error_message(&body).contains("NUL"), "{body}");
    let (status, body) =
        api.deploy(json!({"version": "v2", "env_from": {"KEY": "undefined-secret"}}));
    assert_eq!(status, 422, "{body}");
    assert!(error_message(&body).contains("undefined-secret"), "{body}");
    let history: Value =
        serde_json::from_str(&api.get("/v1/services/steno/history", &api.viewer)).unwrap();
    assert_eq!(
        history["rollouts"].as_array().unwrap().len(),
        0,
        "refused deploys change nothing"
    );

    // A real deploy: a plain value and a secret by reference, with an inline plan document.
    let (status, body) = api.deploy(json!({
        "version": "v2",
        "env": {"E2E_VISIBLE_KEY": PLAIN_VALUE},
        "env_from": {"E2E_SECRET": "e2e-key"},
        "plan": {"name": "inline", "steps": [{"weight": 10, "bake": "10m"}, {"weight": 100}]},
    }));
    assert_eq!(status, 201, "{body}");
    let rollout: Value = serde_json::from_str(&body).unwrap();
    let rollout_id = rollout["rollout"]["id"].as_str().unwrap().to_string();
    assert_eq!(rollout["rollout"]["plan"], "inline");
    let deadline = Instant::now() + Duration::from_secs(30);
    let canary_env = loop {
        if let Some(env) = environment_of_release("v2", dir.path()) {
            break env;
        }
        assert!(Instant::now() < deadline, "the canary never started");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(canary_env.contains(&format!("E2E_SECRET={SECRET_VALUE}")));
    assert!(canary_env.contains(&format!("E2E_VISIBLE_KEY={PLAIN_VALUE}")));

    let views = [
        api.get("/v1/status", &api.viewer),
        api.get("/v1/services/steno", &api.viewer),
        api.get("/v1/services/steno/history", &api.viewer),
        api.get(&format!("/v1/rollouts/{rollout_id}"), &api.viewer),
        api.get("/metrics", &api.viewer),
        api.get("/v1/audit", &api.operator),
    ];
    for view in &views {
        assert!(!view.contains(PLAIN_VALUE), "{view}");
        assert!(!view.contains(SECRET_VALUE), "{view}");
    }
    let shown: Value = serde_json::from_str(&views[3]).unwrap();
    let canary = &shown["rollout"]["state"]["canary"];
    assert!(canary["env"]["E2E_VISIBLE_KEY"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    assert_eq!(canary["env_from"]["E2E_SECRET"], "e2e-key");

    // A plan file on the caller's machine travels as a plan document.
    api.abort();
    std::fs::write(
        dir.path().join("mine.yaml"),
        "name: from-cli\nsteps:\n  - weight: 20\n    bake: 10m\n  - weight: 100\n",
    )
    .unwrap();
    let output = Command::new(binary("opsd"))
        .args(["--server", &api.base, "--token", &api.operator])
        .args(["deploy", "steno", "--version", "v3", "--plan"])
        .arg(dir.path().join("mine.yaml"))
        .args(["--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let started: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(started["plan"], "from-cli");
    api.abort();

    // The secret never reached the store; data files are private under a 022 umask.
    let data = dir.path().join("data");
    for file in ["opsd.db", "opsd.db-wal"] {
        let path = data.join(file);
        if path.exists() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!contains_bytes(&bytes, SECRET_VALUE), "{file}");
        }
    }
    assert_eq!(file_mode(&data), 0o700);
    for file in ["opsd.db", "opsd.db-wal", "opsd.db-shm", "operator.token"] {
        assert_eq!(file_mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(file_mode(&data.join("logs")), 0o700);
    for entry in std::fs::read_dir(data.join("logs")).unwrap().flatten() {
        assert_eq!(
            file_mode(&entry.path()),
            0o600,
            "{}",
            entry.path().display()
        );
    }
    let steno_data = dir.path().join(".opsd/steno-data");
    for entry in std::fs::read_dir(&steno_data).unwrap().flatten() {
        let path = entry.path();
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(file_mode(&path), expected, "{}", path.display());
    }

    process.terminate(Duration::from_secs(20));
    let log = process.stderr_text();
    assert!(log.contains("rollout"), "the log was collected: {log}");
    assert!(!log.contains(PLAIN_VALUE), "{log}");
    assert!(!log.contains(SECRET_VALUE), "{log}");
}
