//! End to end: the local data plane fails static. `opsd up` serves Steno under `opsd load`
//! mid-rollout; opsd is SIGKILLed and kept down 30 s while the router process and both releases
//! go on serving; a restarted opsd re-adopts them (same router, same release processes, same
//! public port) and finishes the rollout; the load saw no refused connection and no 5xx. Ctrl-C
//! then stops everything, and `opsd down` stops what a killed opsd left running.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::binary;
use e2e_tests::opsd_up::{last_rollout_kinds, start_opsd, write_config, Opsd};
use serde_json::Value;

/// 50 % for 20 s, then 100 %: long enough to kill opsd mid-step.
const HALF_PLAN: &str = "name: half\nsteps:\n  - weight: 50\n    bake: 20s\n  - weight: 100\n";

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

/// The pid of the steno router process, from its record.
fn router_pid(dir: &Path) -> u32 {
    read_json(&dir.join("data/data-plane/routers/steno.json"))["process"]["pid"]
        .as_u64()
        .expect("the router record names its pid") as u32
}

/// Each recorded release's pid, by release id.
fn release_pids(dir: &Path) -> BTreeMap<String, u32> {
    let mut pids = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join("data/data-plane/releases")) else {
        return pids;
    };
    for entry in entries.flatten() {
        if entry
            .path()
            .extension()
            .is_some_and(|extension| extension == "json")
        {
            let record = read_json(&entry.path());
            pids.insert(
                record["release_id"].as_str().unwrap().to_string(),
                record["process"]["pid"].as_u64().unwrap() as u32,
            );
        }
    }
    pids
}

/// Whether `pid` runs (a zombie does not count).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next());
        !matches!(state, Some("Z") | Some("X"))
    })
}

fn wait_until_gone(pids: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids.iter().any(|pid| alive(*pid)) {
        assert!(Instant::now() < deadline, "{what} still run: {pids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn accepts_connections(url: &str) -> bool {
    let address = url.trim_start_matches("http://");
    std::net::TcpStream::connect(address).is_ok()
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

fn start_load(target: &str, seconds: u32) -> Child {
    Command::new(binary("opsd"))
        .args([
            "load",
            "--rps",
            "100",
            "--duration",
            &format!("{seconds}s"),
            "--target",
            target,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn load_report(load: Child) -> Value {
    let output = load.wait_with_output().unwrap();
    assert!(output.status.success(), "opsd load failed");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "the load report is not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The test configuration with the API on a port fixed for the test's lifetime: releases are
/// told the API's address (STENO_STATUS_URL), so a restarted opsd re-adopts them only when the
/// API comes back where it was.
fn write_config_on_a_fixed_api_port(dir: &Path) {
    let path = write_config(dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("listen: 127.0.0.1:0", &format!("listen: 127.0.0.1:{port}"));
    std::fs::write(&path, config).unwrap();
}

/// What a killed opsd logged and the end of each release's log, for a failure message.
fn what_happened(opsd: &mut Opsd) -> String {
    let mut text = format!("opsd logged:\n{}", opsd.process.stderr_text());
    let logs = opsd.dir.join("data/logs");
    for entry in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
        let log = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        text.push_str(&format!("\n--- {}:\n{tail}", entry.path().display()));
    }
    text
}

fn kill_opsd(opsd: &mut Opsd) {
    opsd.process.child.kill().unwrap();
    opsd.process.child.wait().unwrap();
}

#[test]
fn the_public_port_serves_while_opsd_is_killed_and_the_rollout_resumes_after() {
    let dir = tempfile::tempdir().unwrap();
    write_config_on_a_fixed_api_port(dir.path());
    std::fs::write(dir.path().join("fast.yaml"), HALF_PLAN).unwrap();
    let mut opsd = start_opsd(dir.path());
    let public = opsd.public_url.clone();
    let load = start_load(&public, 80);
    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v2"]);
    assert_eq!(code, 0, "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while opsd.status()["service"]["active_rollout"]["canary_weight_percent"] != 50 {
        assert!(Instant::now() < deadline, "the canary never took 50 %");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rollout_id = opsd.status()["service"]["active_rollout"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let router = router_pid(dir.path());
    let releases = release_pids(dir.path());
    assert_eq!(
        releases.keys().collect::<Vec<_>>(),
        ["steno@v1", "steno@v2"],
        "both releases are recorded"
    );

    // opsd dies without warning and stays down 30 s: the router and the releases go on.
    kill_opsd(&mut opsd);
    let down_until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < down_until {
        if !alive(router) {
            panic!(
                "the router did not outlive opsd\n{}",
                what_happened(&mut opsd)
            );
        }
        for (release, pid) in &releases {
            if !alive(*pid) {
                panic!(
                    "{release} (pid {pid}) did not outlive opsd\n{}",
                    what_happened(&mut opsd)
                );
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    // The restarted opsd re-adopts the same router and releases and finishes the rollout.
    let opsd = start_opsd(dir.path());
    assert_eq!(opsd.public_url, public, "the public port is the same");
    assert_eq!(router_pid(dir.path()), router, "the router is re-adopted");
    let (code, out) = opsd.cli(&["gate", "steno", "--timeout", "120s"]);
    if code != 0 {
        eprintln!(
            "the restarted opsd logged:\n{}",
            opsd.process.stderr_so_far()
        );
    }
    assert_eq!(code, 0, "the resumed rollout is promoted:\n{out}");
    let status = opsd.status();
    assert_eq!(status["service"]["stable_version"], "v2");
    assert_eq!(status["service"]["last_rollout"]["id"], rollout_id.as_str());
    let kinds = last_rollout_kinds(&opsd);
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("start"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("promote"),
        "{kinds:?}"
    );
    assert_eq!(
        release_pids(dir.path()).get("steno@v2"),
        releases.get("steno@v2"),
        "the canary process that served before the kill is the one promoted"
    );

    let report = load_report(load);
    assert!(
        report["sent"].as_u64().unwrap() > 5_000,
        "the load ran throughout: {report}"
    );
    assert_eq!(
        report["transport_errors"], 0,
        "no refused connection: {report}"
    );
    assert_eq!(report["statuses"]["server_error"], 0, "no 5xx: {report}");
    assert_eq!(report["errors"], 0, "{report}");

    // Ctrl-C stops everything: opsd, the router and every release.
    let running: Vec<u32> = release_pids(dir.path()).into_values().collect();
    let mut opsd = opsd;
    signal(opsd.process.child.id(), "INT");
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(status) = opsd.process.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "opsd did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "opsd stopped cleanly: {exit:?}");
    wait_until_gone(&[router], "the router");
    wait_until_gone(&running, "releases");
    assert!(!accepts_connections(&public), "the public port is closed");
    assert!(
        release_pids(dir.path()).is_empty(),
        "no release record is left"
    );
    assert!(!dir
        .path()
        .join("data/data-plane/routers/steno.json")
        .exists());
}

#[test]
fn opsd_down_stops_what_a_killed_opsd_left_running() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let mut opsd = start_opsd(dir.path());
    let public = opsd.public_url.clone();
    let router = router_pid(dir.path());
    let releases: Vec<u32> = release_pids(dir.path()).into_values().collect();
    assert_eq!(releases.len(), 1, "the stable release is recorded");

    // A second opsd on the same data directory is refused while the first runs.
    let second = e2e_tests::run_opsd(dir.path(), &["up"]);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second.stderr.contains("already runs on the data directory"),
        "{}",
        second.stderr
    );

    kill_opsd(&mut opsd);
    assert!(accepts_connections(&public), "the router still serves");
    let down = e2e_tests::run_opsd(dir.path(), &["down"]);
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    assert!(
        down.stdout
            .contains("stopped the router of steno left running"),
        "{}",
        down.stdout
    );
    assert!(
        down.stdout
            .contains("stopped the release steno@v1 left running"),
        "{}",
        down.stdout
    );
    wait_until_gone(&[router], "the router");
    wait_until_gone(&releases, "releases");
    assert!(!accepts_connections(&public));

    // Nothing is left to stop.
    let again = e2e_tests::run_opsd(dir.path(), &["down"]);
    assert_eq!(again.code, 0);
    assert!(
        again.stdout.contains("nothing runs from"),
        "{}",
        again.stdout
    );

    // With an opsd running, `opsd down` stops it, and it stops everything it runs.
    let mut opsd = start_opsd(dir.path());
    let router = router_pid(dir.path());
    let releases: Vec<u32> = release_pids(dir.path()).into_values().collect();
    let down = e2e_tests::run_opsd(dir.path(), &["down"]);
    assert_eq!(down.code, 0, "{}{}", down.stdout, down.stderr);
    let pid = opsd.process.child.id();
    assert!(
        down.stdout.contains(&format!("stopped opsd (pid {pid})")),
        "{}",
        down.stdout
    );
    assert!(
        opsd.process.child.try_wait().unwrap().is_some(),
        "opsd has exited"
    );
    wait_until_gone(&[router], "the router");
    wait_until_gone(&releases, "releases");
    assert!(!accepts_connections(&opsd.public_url));
}

#[test]
fn the_systemd_unit_restarts_opsd_and_leaves_its_data_plane_serving() {
    let path = e2e_tests::workspace_root().join("deploy/systemd/opsd.service");
    let unit = std::fs::read_to_string(&path).unwrap();
    let mut section = "";
    let mut service = BTreeMap::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if let Some((key, value)) = line.split_once('=') {
            if section == "[Service]" && !line.starts_with('#') {
                service.insert(key.to_string(), value.to_string());
            }
        }
    }
    assert_eq!(service["Restart"], "always", "systemd restarts opsd");
    assert_eq!(
        service["KillMode"], "process",
        "only opsd is signalled: its routers and releases keep serving"
    );
    let exec_start = &service["ExecStart"];
    assert!(exec_start.ends_with(" up"), "{exec_start}");

    // systemd's own check, with ExecStart pointed at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let program = exec_start.split_whitespace().next().unwrap();
    let checked = dir.path().join("opsd.service");
    std::fs::write(
        &checked,
        unit.replace(program, &binary("opsd").display().to_string()),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&checked)
        .output()
        .expect("systemd-analyze runs (scripts/install-test-deps.sh installs systemd)");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{stderr}");
    assert!(
        !stderr.contains("opsd.service"),
        "systemd-analyze finds fault with the unit:\n{stderr}"
    );
}
