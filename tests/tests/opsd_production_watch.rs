//! End to end: `opsd up` watches the stable release with no rollout running. Its error rate rises
//! (Steno's `STENO_CHAOS_ERROR_RATE`, on the pages the test's traffic asks for): the pager hears
//! it once, and once again when it recovers; `opsd alarms status` shows the state. Its process
//! is killed with SIGKILL: the supervisor restarts it, and the chat hears of the crash once and of
//! the recovery once.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e_tests::webhook::Webhook;
use e2e_tests::{binary, start_opsd_up};
use serde_json::Value;

/// A critical rule on 2-second periods, routed by severity only (`notify: []`).
const FAST_ALARMS: &str = "alarms:\n  - name: fast-errors\n    description: more than 20 % errors over 2 s\n    metric: error_rate\n    comparison: \">\"\n    threshold: 0.2\n    period: 2s\n    evaluation_periods: 1\n    severity: critical\n    rollback: false\n    notify: []\n    min_requests_per_period: 5\n";

fn write_config(dir: &Path, pager: &Webhook, chat: &Webhook) {
    std::fs::create_dir_all(dir.join("alarms")).unwrap();
    std::fs::write(dir.join("alarms/fast.yaml"), FAST_ALARMS).unwrap();
    let config = format!(
        "listen: 127.0.0.1:0\n\
         data_dir: data\n\
         tick: 200ms\n\
         health_probe_interval: 300ms\n\
         alarm_interval: 500ms\n\
         alarms_dir: alarms\n\
         notifications:\n  targets:\n    - {{name: pager, kind: slack, webhook_url: \"{pager}\"}}\n    \
         - {{name: chat, kind: slack, webhook_url: \"{chat}\"}}\n  routes:\n    \
         - {{min_severity: warning, targets: [chat]}}\n    - {{min_severity: critical, targets: [pager]}}\n\
         services:\n  steno:\n    public_addr: 127.0.0.1:0\n    ready_timeout: 20s\n    \
         env:\n      STENO_CHAOS_ERROR_RATE: \"0.5\"\n",
        pager = pager.url,
        chat = chat.url,
    );
    std::fs::write(dir.join("opsd.yaml"), config).unwrap();
}

/// Requests through opsd's router to whichever path `path` holds, about 40 a second, until
/// `stop` is set.
fn traffic(public_url: String, path: Arc<Mutex<&'static str>>, stop: Arc<AtomicBool>) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    while !stop.load(Ordering::SeqCst) {
        let current = *path.lock().unwrap();
        let _ = client.get(format!("{public_url}{current}")).send();
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn alarms_status(dir: &Path, api_url: &str) -> Value {
    let token = std::fs::read_to_string(dir.join("data/operator.token")).unwrap();
    let output = Command::new(binary("opsd"))
        .arg("--config")
        .arg(dir.join("opsd.yaml"))
        .args(["--server", api_url, "--token", token.trim()])
        .args(["alarms", "status", "--service", "steno", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn fast_errors_state(dir: &Path, api_url: &str) -> Option<String> {
    alarms_status(dir, api_url)["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|alarm| alarm["rule"] == "fast-errors")
        .and_then(|alarm| alarm["state"].as_str().map(str::to_string))
}

/// Waits up to `timeout` for `condition`, polling; panics naming `what` otherwise.
fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count_containing(webhook: &Webhook, words: &[&str]) -> usize {
    webhook
        .texts()
        .iter()
        .filter(|text| words.iter().all(|word| text.contains(word)))
        .count()
}

#[test]
fn a_sick_or_crashed_stable_release_notifies_once_and_its_recovery_once() {
    let dir = tempfile::tempdir().unwrap();
    let pager = Webhook::start();
    let chat = Webhook::start();
    write_config(dir.path(), &pager, &chat);
    let (opsd, public_url) = start_opsd_up(dir.path(), "steno");
    let api_url = opsd.base_url.clone();

    // Health checks only (never failed by chaos): the rule is OK.
    let path = Arc::new(Mutex::new("/v1/health"));
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let (path, stop, url) = (path.clone(), stop.clone(), public_url.clone());
        std::thread::spawn(move || traffic(url, path, stop))
    };
    wait_for("fast-errors to be OK", Duration::from_secs(30), || {
        fast_errors_state(dir.path(), &api_url).as_deref() == Some("OK")
    });

    // Pages half of which fail: ALARM, announced once to the pager (critical).
    *path.lock().unwrap() = "/login";
    wait_for(
        "the page about fast-errors",
        Duration::from_secs(30),
        || count_containing(&pager, &["fast-errors", "ALARM"]) >= 1,
    );
    assert_eq!(
        fast_errors_state(dir.path(), &api_url).as_deref(),
        Some("ALARM")
    );
    // It stays in ALARM for several evaluations without a second page.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count_containing(&pager, &["fast-errors"]),
        1,
        "{:?}",
        pager.texts()
    );

    // Back to healthy traffic: one recovery.
    *path.lock().unwrap() = "/v1/health";
    wait_for(
        "the recovery of fast-errors",
        Duration::from_secs(30),
        || count_containing(&pager, &["fast-errors", "recovered"]) >= 1,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count_containing(&pager, &["fast-errors"]),
        2,
        "{:?}",
        pager.texts()
    );
    assert_eq!(
        fast_errors_state(dir.path(), &api_url).as_deref(),
        Some("OK")
    );
    let table = Command::new(binary("opsd"))
        .arg("--config")
        .arg(dir.path().join("opsd.yaml"))
        .args(["--server", &api_url, "alarms", "status"])
        .env(
            "OPSD_TOKEN",
            std::fs::read_to_string(dir.path().join("data/operator.token"))
                .unwrap()
                .trim(),
        )
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.starts_with("SERVICE") && table.contains("fast-errors"),
        "{table}"
    );

    // SIGKILL the stable release (without traffic, so the router's answers while it is down do
    // not also raise fast-errors): the supervisor restarts it; the chat hears of it once, and of
    // the recovery once; the crash is a warning, so the pager hears nothing.
    stop.store(true, Ordering::SeqCst);
    generator.join().unwrap();
    let before = e2e_tests::steno_serve_children(&opsd);
    assert_eq!(before.len(), 1, "one stable release runs: {before:?}");
    let killed = Command::new("kill")
        .args(["-KILL", &before[0].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_for(
        "the crash and its recovery",
        Duration::from_secs(30),
        || {
            count_containing(&chat, &["crashed"]) >= 1
                && count_containing(&chat, &["stable release", "recovered"]) >= 1
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        count_containing(&chat, &["crashed"]),
        1,
        "{:?}",
        chat.texts()
    );
    assert_eq!(
        count_containing(&chat, &["stable release", "recovered"]),
        1,
        "{:?}",
        chat.texts()
    );
    let after = e2e_tests::steno_serve_children(&opsd);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "a new process serves the release");
    assert_eq!(
        count_containing(&pager, &["crashed"]),
        0,
        "one crash does not page"
    );
    let health = reqwest::blocking::get(format!("{public_url}/v1/health")).unwrap();
    assert!(health.status().is_success());
}
