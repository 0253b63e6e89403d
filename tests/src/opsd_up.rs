//! `opsd up` in a test's directory with one Steno service on a fast plan, and the `opsd` client
//! commands the tests run against it: shared by the rollout tests (`opsd_rollouts`), the gate
//! tests (`opsd_gates`) and the dashboard's browser tests (`opsd_dashboard`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::{binary, opsd_command, start_opsd_up, RunningProcess};

/// A fast plan: 10 % for 6 s, 50 % for 6 s, then 100 %.
pub const FAST_PLAN: &str = "name: fast-e2e\nsteps:\n  - weight: 10\n    bake: 6s\n  - weight: 50\n    bake: 6s\n  - weight: 100\n";

/// A running `opsd up`: its process, API and public URLs, and the directory it runs in.
pub struct Opsd {
    pub process: RunningProcess,
    pub api_url: String,
    pub public_url: String,
    pub dir: PathBuf,
}

/// Writes `dir/opsd.yaml` for the fast plan (`dir/fast.yaml`, written too); returns its path.
pub fn write_config(dir: &Path) -> PathBuf {
    write_config_with_analysis(dir, "")
}

/// The fast plan's configuration with `extra_analysis` (indented lines) under `analysis:`.
pub fn write_config_with_analysis(dir: &Path, extra_analysis: &str) -> PathBuf {
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

/// Starts `opsd up` in `dir` (configured by `dir/opsd.yaml`) once its API and Steno's public
/// address are listening.
pub fn start_opsd(dir: &Path) -> Opsd {
    let (process, public_url) = start_opsd_up(dir, "steno");
    let api_url = process.base_url.clone();
    Opsd {
        process,
        api_url,
        public_url,
        dir: dir.to_path_buf(),
    }
}

/// Like [`start_opsd`], keeping the one-time dashboard login link `opsd up` printed.
pub fn start_opsd_with_login_link(dir: &Path) -> (Opsd, String) {
    binary("steno");
    let mut command = opsd_command(dir);
    command.arg("up");
    let process = RunningProcess::start(command, std::time::Duration::from_secs(60));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut login_link = None;
    let public_url = loop {
        let line = process
            .stdout_lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("opsd up prints where everything is");
        if let Some(at) = line.find("/login?once=") {
            let start = line[..at].rfind("http://").expect("a login URL");
            login_link = Some(line[start..].trim().to_string());
        }
        if line.starts_with("steno") {
            let start = line.find("http://").expect("a URL");
            break line[start..].split_whitespace().next().unwrap().to_string();
        }
    };
    let api_url = process.base_url.clone();
    let opsd = Opsd {
        process,
        api_url,
        public_url,
        dir: dir.to_path_buf(),
    };
    (
        opsd,
        login_link.expect("opsd up printed a one-time login link"),
    )
}

impl Opsd {
    /// The operator token `opsd up` wrote on its first start.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("data/operator.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Runs an opsd client command; returns (exit code, stdout + stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String) {
        self.cli_as(&self.token(), args)
    }

    /// Runs an opsd client command with another token; returns (exit code, stdout + stderr).
    pub fn cli_as(&self, token: &str, args: &[&str]) -> (i32, String) {
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
    pub fn create_token(&self, name: &str, role: &str) -> String {
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

    /// `opsd status steno --json`.
    pub fn status(&self) -> Value {
        let (code, out) = self.cli(&["status", "steno", "--json"]);
        assert_eq!(code, 0, "{out}");
        serde_json::from_str(&out).unwrap()
    }

    /// The audit log's entries, as the API answers them.
    pub fn audit(&self) -> Vec<Value> {
        let audit: Value = reqwest::blocking::Client::new()
            .get(format!("{}/v1/audit", self.api_url))
            .bearer_auth(self.token())
            .send()
            .unwrap()
            .json()
            .unwrap();
        audit["audit"].as_array().unwrap().clone()
    }

    /// Open-loop traffic through the router for the given time, as a child process.
    pub fn load(&self, rps: u32, seconds: u32) -> Child {
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

/// The kinds of the decisions of the service's latest rollout, in order.
pub fn last_rollout_kinds(opsd: &Opsd) -> Vec<String> {
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
