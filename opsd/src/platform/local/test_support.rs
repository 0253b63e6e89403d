//! Test helpers of the local platform: the real Steno binary (built on demand) and the pieces of
//! a Steno service configuration tests share.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::supervisor::{LocalServiceConfig, RestartPolicy};

/// The `steno` binary next to this test executable's profile directory, built if missing.
pub(crate) fn steno_binary() -> PathBuf {
    workspace_binary("steno")
}

/// The `opsd` binary (run as `opsd router` by a fail-static platform), built if missing.
pub(crate) fn opsd_binary() -> PathBuf {
    workspace_binary("opsd")
}

/// The binary `name` of the workspace package of the same name, in this test executable's
/// profile directory; built there if missing.
fn workspace_binary(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _one_build_at_a_time = BUILD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let executable = std::env::current_exe().expect("the test executable has a path");
    // <target>/<profile>/deps/<test executable>
    let profile_dir = executable
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test executable lives in <target>/<profile>/deps")
        .to_path_buf();
    let binary = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if binary.exists() {
        return binary;
    }
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory lives in the target directory");
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut build = std::process::Command::new(env!("CARGO"));
    build
        .current_dir(&workspace)
        .args(["build", "-p", name, "--bin", name, "--target-dir"])
        .arg(target_dir);
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build
        .status()
        .unwrap_or_else(|error| panic!("cargo could not be run to build {name}: {error}"));
    assert!(status.success(), "building {name} failed ({status})");
    assert!(
        binary.exists(),
        "building {name} succeeded but {} is missing",
        binary.display()
    );
    binary
}

/// A Steno service with its data in `data_dir`, quick to restart and to give up.
pub(crate) fn steno_service(name: &str, data_dir: &std::path::Path) -> LocalServiceConfig {
    let mut config = LocalServiceConfig::new(
        name,
        vec![
            steno_binary().display().to_string(),
            "serve".to_string(),
            "--addr".to_string(),
            "127.0.0.1:{port}".to_string(),
        ],
    );
    config
        .base_env
        .insert("STENO_DATA_DIR".to_string(), data_dir.display().to_string());
    config
        .base_env
        .insert("STENO_LOG".to_string(), "warn".to_string());
    // Keep failures' log tails about the failure rather than a backtrace.
    config
        .base_env
        .insert("RUST_BACKTRACE".to_string(), "0".to_string());
    config.ready_timeout = Duration::from_secs(20);
    config.restart = RestartPolicy {
        max_restarts: 3,
        backoff: Duration::from_millis(100),
    };
    config
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `timeout`.
pub(crate) async fn eventually(
    what: &str,
    timeout: Duration,
    mut condition: impl AsyncFnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether something accepts connections on the loopback port.
pub(crate) async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

/// Whether a process is gone (reaped, or a zombie about to be).
pub(crate) fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}
