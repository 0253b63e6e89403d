//! Shared helpers for the end-to-end tests: locating (and if needed building) the workspace's
//! binaries, starting them as real processes on loopback, and stopping them.

pub mod aws_emulator;
pub mod cbor_front;
pub mod hostile;
pub mod lambda_fixture;
pub mod opsd_up;
pub mod steno_data;
pub mod webdriver;
pub mod webhook;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// The newest modification time of the files under `dir`.
fn newest_change(dir: &std::path::Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let changed = if path.is_dir() {
            newest_change(&path)
        } else {
            entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
        };
        newest = newest.max(changed);
    }
    newest
}

/// Path to a workspace binary in the same profile as the running tests. It is built when missing
/// or older than its crate's sources, so a test never runs a stale binary; the test script builds
/// every binary beforehand with the same command.
pub fn binary(name: &str) -> PathBuf {
    static BUILD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let test_executable = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = test_executable
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in target/<profile>/deps")
        .to_path_buf();
    let path = profile_dir.join(name);
    let crate_dir = workspace_root().join(if name == "steno" { "app" } else { name });
    let _guard = BUILD_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let built_at = std::fs::metadata(&path)
        .and_then(|metadata| metadata.modified())
        .ok();
    let stale = match (built_at, newest_change(&crate_dir.join("src"))) {
        (Some(built), Some(changed)) => changed > built,
        (None, _) => true,
        (Some(_), None) => false,
    };
    if stale {
        // The same command as the test script's build step: with --tests the binaries get the
        // dependency features the tests use, so this shares the tests' build cache.
        let mut command = Command::new(env!("CARGO"));
        command
            .args(["build", "--workspace", "--bins", "--tests"])
            .current_dir(workspace_root());
        if profile_dir
            .file_name()
            .is_some_and(|profile| profile == "release")
        {
            command.arg("--release");
        }
        // `cargo test` gives this process the test crate's CARGO_MANIFEST_DIR, CARGO_PKG_NAME,
        // ...; some build scripts (ring's, through `rerun-if-env-changed`) would see them as a
        // change and rebuild, and the next build from a shell would rebuild them back.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            let cargo_own = key.starts_with("CARGO_")
                && !matches!(key.as_str(), "CARGO_HOME" | "CARGO_TARGET_DIR")
                && !key.starts_with("CARGO_TERM_");
            if cargo_own || key == "OUT_DIR" {
                command.env_remove(&key);
            }
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the {name} binary failed");
    }
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped, with the URL it printed once ready. Its stderr
/// is read all along (a pipe nobody reads would stop the process once full) and kept.
pub struct RunningProcess {
    pub child: Child,
    pub base_url: String,
    /// The lines printed before the URL line.
    pub lines_before_url: Vec<String>,
    pub stdout_lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl RunningProcess {
    /// Starts `command` and waits (up to `timeout`) for a stdout line containing `http://`;
    /// that URL (up to the next whitespace) becomes `base_url`.
    pub fn start(mut command: Command, timeout: Duration) -> RunningProcess {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("process starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(read @ 1..) = std::io::Read::read(&mut stderr_pipe, &mut chunk) {
                kept.lock().unwrap().extend_from_slice(&chunk[..read]);
            }
        });
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + timeout;
        let mut lines_before_url = Vec::new();
        loop {
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            match receiver.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(start) = line.find("http://") {
                        let url = line[start..]
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string();
                        return RunningProcess {
                            child,
                            base_url: url,
                            lines_before_url,
                            stdout_lines: receiver,
                            stderr,
                            stderr_reader: Some(stderr_reader),
                        };
                    }
                    lines_before_url.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = stderr_reader.join();
                    panic!(
                        "the process printed no URL in time; stderr:\n{}",
                        String::from_utf8_lossy(&stderr.lock().unwrap())
                    );
                }
            }
        }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Everything the process wrote to stderr; waits for the stream to end, so call it once the
    /// process stopped.
    pub fn stderr_text(&mut self) -> String {
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        self.stderr_so_far()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the process did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RunningProcess {
    /// SIGTERM first, so an `opsd up` stops the routers and releases that would otherwise
    /// outlive it (its data plane fails static); SIGKILL if it is still up after 30 s.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `opsd --config <dir>/opsd.yaml`, run in `dir`; add the subcommand and its arguments.
pub fn opsd_command(dir: &Path) -> Command {
    let mut command = Command::new(binary("opsd"));
    command
        .arg("--config")
        .arg(dir.join("opsd.yaml"))
        .current_dir(dir);
    command
}

/// Runs `opsd --config <dir>/opsd.yaml <args>` in `dir` to the end.
pub fn run_opsd(dir: &Path, args: &[&str]) -> CommandOutput {
    CommandOutput::of(opsd_command(dir).args(args))
}

/// `opsd --config <dir>/opsd.yaml up` started in `dir`, once its API is listening (its URL is the
/// process's `base_url`), and the public URL it printed for `service`.
pub fn start_opsd_up(dir: &Path, service: &str) -> (RunningProcess, String) {
    start_opsd_up_with(opsd_command(dir), service)
}

/// Like [`start_opsd_up`] with a prepared `opsd --config ...` command (e.g. with AWS settings in
/// its environment); `up` is added here.
pub fn start_opsd_up_with(mut command: Command, service: &str) -> (RunningProcess, String) {
    binary("steno");
    command.arg("up");
    let process = RunningProcess::start(command, Duration::from_secs(60));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let public_url = loop {
        let line = process
            .stdout_lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("opsd printed no URL for {service}"));
        if line.starts_with(service) {
            let start = line.find("http://").expect("a URL");
            break line[start..].split_whitespace().next().unwrap().to_string();
        }
    };
    (process, public_url)
}

/// What a finished command printed, and its exit code (-1 when killed by a signal).
pub struct CommandOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CommandOutput {
    /// Runs `command` to the end and keeps what it printed.
    pub fn of(command: &mut Command) -> CommandOutput {
        let output = command.output().expect("the command runs");
        CommandOutput {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Standard output as JSON; panics with both streams when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}\n{}", self.stdout, self.stderr))
    }
}

/// The pids of `process`'s children running `steno serve` (the releases `opsd up` runs).
pub fn steno_serve_children(process: &RunningProcess) -> Vec<u32> {
    let parent = process.child.id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: the fields after the last ')'.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let ppid = after_name
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if ppid == Some(parent) && cmdline.contains("steno") && cmdline.contains("serve") {
            pids.push(pid);
        }
    }
    pids
}

/// The permission bits of a file (`0o600` for a private one); panics naming the path when it
/// cannot be read.
pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Registers a new firm on the Steno at `base` with its admin `email` and `password`, and
/// returns the admin's access token.
pub async fn register_firm(
    client: &reqwest::Client,
    base: &str,
    firm: &str,
    email: &str,
    password: &str,
) -> String {
    let session: serde_json::Value = client
        .post(format!("{base}/v1/firms"))
        .json(&serde_json::json!({
            "firm_name": firm,
            "admin_name": "Avery",
            "admin_email": email,
            "admin_password": password,
        }))
        .send()
        .await
        .expect("steno answers")
        .json()
        .await
        .expect("a JSON answer");
    session["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("registered: {session}"))
        .to_string()
}
