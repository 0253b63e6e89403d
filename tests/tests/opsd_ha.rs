//! High availability on the AWS platform: two `opsd up` instances share one store on the suite's
//! PostgreSQL (`store: postgres://...`) and drive a Lambda alias on the local AWS emulator. One
//! leads; the other follows, answers API reads from the store itself (also while the leader is
//! paused), hands every other request to the leader, and takes over when the leader dies
//! (SIGKILL) or stalls (SIGSTOP past its lease). Every alias write is accounted for twice: in the
//! emulator's request log and in the log line of the instance that made it; no routing is ever
//! written twice, and the stalled leader writes nothing once it wakes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e_tests::lambda_fixture::*;
use e2e_tests::steno_data::{create_postgres_database, postgres_admin_url};
use e2e_tests::{binary, RunningProcess};
use serde_json::Value;

/// A dead leader must be replaced within this long (the design's bound; the lease is 6 s).
const TAKEOVER_BOUND: Duration = Duration::from_secs(10);

/// Bakes long enough that a leader can be stopped mid-step.
const HA_PLAN: &str = "name: ha\nsteps:\n  - weight: 10\n    bake: 6s\n  - weight: 25\n    bake: 6s\n  - weight: 50\n    bake: 6s\n  - weight: 100\n";

/// One instance's directory: its opsd.yaml (on the shared store) and data directory.
fn instance_dir(parent: &Path, name: &str, fixture: &Fixture, store_url: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = write_config(
        &dir,
        &fixture.emulator.endpoint_url(),
        &fixture.distribution_id,
    );
    std::fs::write(dir.join("seed-fast.yaml"), HA_PLAN).unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("store: {store_url}\n"));
    std::fs::write(&config, text).unwrap();
    dir
}

/// The instance name opsd gives the `opsd up` of `dir` ends with its data directory.
fn data_dir_of(dir: &Path) -> String {
    dir.canonicalize()
        .unwrap()
        .join("data")
        .display()
        .to_string()
}

/// The leader `GET /v1/status` reports through `opsd`'s API (`None` when it does not answer
/// within 3 s: a request to a paused leader never gets an answer).
fn leader_seen_by(opsd: &Opsd) -> Option<Value> {
    let token = std::fs::read_to_string(opsd.dir.join("data/operator.token")).ok()?;
    let status: Value = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .ok()?
        .get(format!("{}/v1/status", opsd.api_url))
        .bearer_auth(token.trim())
        .send()
        .ok()?
        .json()
        .ok()?;
    Some(status["leader"].clone()).filter(|leader| !leader.is_null())
}

/// `GET /v1/status` at `opsd`'s API: which instance answered (`X-Opsd-Answered-By`) and the
/// document. Fails when it does not answer within 5 s.
fn status_at(opsd: &Opsd) -> (Option<String>, Value) {
    let token = std::fs::read_to_string(opsd.dir.join("data/operator.token")).unwrap();
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("{}/v1/status", opsd.api_url))
        .bearer_auth(token.trim())
        .send()
        .unwrap_or_else(|error| panic!("{} did not answer its status: {error}", opsd.api_url));
    assert_eq!(response.status(), 200);
    let answered_by = response
        .headers()
        .get("x-opsd-answered-by")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    (answered_by, response.json().unwrap())
}

/// Logs in to the dashboard through `opsd` with the operator token; the session cookie
/// (`opsd_session=...`).
fn dashboard_login(opsd: &Opsd) -> String {
    let token = std::fs::read_to_string(opsd.dir.join("data/operator.token")).unwrap();
    let response = no_redirects()
        .post(format!("{}/login", opsd.api_url))
        .form(&[("token", token.trim())])
        .send()
        .unwrap_or_else(|error| panic!("{} did not answer a login: {error}", opsd.api_url));
    assert_eq!(
        response.status(),
        303,
        "a login sends the browser to the page"
    );
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a login sets the session cookie")
        .to_string();
    assert!(cookie.starts_with("opsd_session="), "{cookie}");
    cookie
}

/// What `opsd` answers the dashboard page with `cookie`: 200 for a live session, a redirect to
/// the login page otherwise.
fn dashboard_page_status(opsd: &Opsd, cookie: &str) -> u16 {
    no_redirects()
        .get(format!("{}/", opsd.api_url))
        .header("cookie", cookie)
        .send()
        .unwrap_or_else(|error| panic!("{} did not answer the dashboard: {error}", opsd.api_url))
        .status()
        .as_u16()
}

fn no_redirects() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Waits until `opsd`'s API says the instance of `dir` leads (not lapsed); returns how long.
async fn wait_for_leader(opsd: &Opsd, dir: &Path, within: Duration) -> Duration {
    let started = Instant::now();
    let expected = data_dir_of(dir);
    loop {
        let seen = blocking({
            let opsd = opsd.clone();
            move || leader_seen_by(&opsd)
        })
        .await;
        if let Some(leader) = &seen {
            if leader["instance"]
                .as_str()
                .unwrap_or("")
                .ends_with(&expected)
                && leader["lapsed"] == Value::Bool(false)
            {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < within,
            "{expected} did not lead within {within:?}; the leader seen: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The alias routings an instance wrote, from its own log, in order.
fn alias_writes_in(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| entry["message"] == "lambda alias updated")
        .map(|entry| entry["routing"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// How many times the emulator was asked to write the alias.
fn alias_puts(fixture: &Fixture) -> usize {
    fixture
        .emulator
        .requests()
        .iter()
        .filter(|action| action.starts_with("PUT ") && action.contains("/aliases/live"))
        .count()
}

/// Waits until the alias routes `share` of the traffic to version 2.
async fn wait_for_canary_share(fixture: &Fixture, share: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, weights) = fixture.alias().await;
        if weights
            .get("2")
            .is_some_and(|weight| (weight - share).abs() < 1e-9)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the alias never sent {share} to version 2: {weights:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the rollout ended promoted (version 2 stable on the alias, nothing else).
async fn wait_for_promotion(opsd: &Opsd, fixture: &Fixture) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rollout = blocking({
            let opsd = opsd.clone();
            move || opsd.last_rollout()
        })
        .await;
        if rollout["phase"] == "promoted" {
            fixture.expect_alias("2", HashMap::new()).await;
            return rollout;
        }
        assert!(
            rollout["phase"] != "rolled_back" && Instant::now() < deadline,
            "the rollout did not promote: {rollout}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Each step was advanced once: no two `advance` decisions of the rollout name the same step.
fn assert_each_step_advanced_once(opsd: &Opsd, rollout_id: &str) {
    let (code, out) = opsd.cli(&["history", "steno", "--json", "--limit", "1"]);
    assert_eq!(code, 0, "{out}");
    let history: Value = serde_json::from_str(&out).unwrap();
    let rollout = &history["rollouts"][0];
    assert_eq!(rollout["id"], rollout_id);
    let decisions = rollout["decisions"].as_array().expect("the decisions");
    let steps: Vec<String> = decisions
        .iter()
        .map(|decision| format!("{} {}", decision["kind"], decision["step_index"]))
        .collect();
    let mut advanced: Vec<i64> = decisions
        .iter()
        .filter(|decision| decision["kind"] == "advance")
        .map(|decision| decision["step_index"].as_i64().unwrap())
        .collect();
    let count = advanced.len();
    advanced.sort_unstable();
    advanced.dedup();
    assert_eq!(advanced.len(), count, "a step advanced twice: {steps:?}");
    // 10 % → 25 % → 50 %, then the promotion (the 100 % step of the plan is the promotion).
    assert_eq!(count, 2, "{steps:?}");
    let promotions = decisions
        .iter()
        .filter(|decision| decision["kind"] == "promote")
        .count();
    assert_eq!(promotions, 1, "{steps:?}");
}

fn signal(process: &RunningProcess, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// Two instances on one fresh database; the first leads. The second's token file is the
/// first's (the tokens live in the shared store).
struct Pair {
    _parent: tempfile::TempDir,
    a_dir: PathBuf,
    b_dir: PathBuf,
    a: RunningProcess,
    b: RunningProcess,
    via_a: Opsd,
    via_b: Opsd,
}

impl Pair {
    /// How many alias writes each instance logged so far (each took over the alias at start).
    fn alias_writes_so_far(&self) -> (usize, usize) {
        (
            alias_writes_in(&self.a.stderr_so_far()).len(),
            alias_writes_in(&self.b.stderr_so_far()).len(),
        )
    }
}

async fn start_pair(fixture: &Fixture, database: &str) -> Pair {
    let store_url = create_postgres_database(&postgres_admin_url(), database).await;
    let parent = tempfile::tempdir().unwrap();
    let a_dir = instance_dir(parent.path(), "a", fixture, &store_url);
    let b_dir = instance_dir(parent.path(), "b", fixture, &store_url);
    let (a, via_a) = start_opsd(&a_dir);
    wait_for_leader(&via_a, &a_dir, Duration::from_secs(30)).await;
    let (b, via_b) = start_opsd(&b_dir);
    assert!(
        b.lines_before_url.is_empty(),
        "the follower's first line names its own API: {:?}",
        b.lines_before_url
    );
    std::fs::create_dir_all(b_dir.join("data")).unwrap();
    std::fs::copy(
        a_dir.join("data/operator.token"),
        b_dir.join("data/operator.token"),
    )
    .unwrap();
    // The follower answers with the leader's view: the first instance leads.
    wait_for_leader(&via_b, &a_dir, Duration::from_secs(10)).await;
    Pair {
        _parent: parent,
        a_dir,
        b_dir,
        a,
        b,
        via_a,
        via_b,
    }
}

/// The emulator, its traffic player and a pair of instances, with a rollout of version 2 started
/// through the leader; how many alias writes each instance had logged before it.
async fn deploy_on_a_pair(
    database: &str,
) -> (Fixture, tokio::task::JoinHandle<()>, Pair, (usize, usize)) {
    binary("opsd");
    let fixture = Fixture::new().await;
    let traffic = start_traffic(
        fixture.lambda.clone(),
        fixture.cloudwatch.clone(),
        Arc::new(Mutex::new(HashMap::new())),
    );
    let pair = start_pair(&fixture, database).await;
    let before = pair.alias_writes_so_far();
    fixture.emulator.clear_requests();
    let (code, out) = blocking({
        let via_a = pair.via_a.clone();
        move || via_a.cli(&["deploy", "steno", "--version", "2"])
    })
    .await;
    assert_eq!(code, 0, "{out}");
    (fixture, traffic, pair, before)
}

/// Every alias write the emulator saw since the deploy is one an instance logged, and no routing
/// was written twice; the writes of each instance.
fn assert_every_alias_write_made_once(
    fixture: &Fixture,
    a_log: &str,
    pair: &Pair,
    (a_before, b_before): (usize, usize),
) -> (Vec<String>, Vec<String>) {
    let by_a = alias_writes_in(a_log).split_off(a_before);
    let by_b = alias_writes_in(&pair.b.stderr_so_far()).split_off(b_before);
    let mut all = by_a.clone();
    all.extend(by_b.iter().cloned());
    assert_eq!(
        alias_puts(fixture),
        all.len(),
        "every alias write the emulator saw is one an instance logged (a: {by_a:?}, b: {by_b:?})"
    );
    let mut distinct = all.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        all.len(),
        "a routing was written twice: {all:?}"
    );
    (by_a, by_b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_finishes_a_rollout_when_the_leader_is_killed_and_no_step_is_applied_twice() {
    let (fixture, traffic, mut pair, before) = deploy_on_a_pair("opsd_ha_kill").await;
    // An on-call engineer logged in to the dashboard on the leader.
    let cookie = blocking({
        let via_a = pair.via_a.clone();
        move || dashboard_login(&via_a)
    })
    .await;
    wait_for_canary_share(&fixture, 0.25).await;
    pair.a.child.kill().unwrap();
    let _ = pair.a.child.wait();
    let killed_at = Instant::now();

    let waited = wait_for_leader(&pair.via_b, &pair.b_dir, TAKEOVER_BOUND).await;
    println!(
        "the follower led {:.1} s after the leader was killed",
        killed_at.elapsed().as_secs_f64()
    );
    assert!(waited <= TAKEOVER_BOUND);
    // The session the dead leader started is still good on the new one: nobody logs in again.
    let (with_session, without) = blocking({
        let via_b = pair.via_b.clone();
        move || {
            (
                dashboard_page_status(&via_b, &cookie),
                dashboard_page_status(&via_b, "opsd_session=made-up"),
            )
        }
    })
    .await;
    assert_eq!((with_session, without), (200, 303));
    let rollout = wait_for_promotion(&pair.via_b, &fixture).await;
    assert_each_step_advanced_once(&pair.via_b, rollout["id"].as_str().unwrap());

    let a_log = pair.a.stderr_text();
    let (by_a, by_b) = assert_every_alias_write_made_once(&fixture, &a_log, &pair, before);
    assert!(
        !by_a.is_empty() && !by_b.is_empty(),
        "a: {by_a:?}, b: {by_b:?}"
    );
    traffic.abort();
    pair.b.terminate(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_is_fenced_and_exits_when_it_wakes() {
    let (fixture, traffic, mut pair, before) = deploy_on_a_pair("opsd_ha_pause").await;
    wait_for_canary_share(&fixture, 0.10).await;
    let (answered_by, _) = blocking({
        let via_a = pair.via_a.clone();
        move || status_at(&via_a)
    })
    .await;
    assert_eq!(answered_by.as_deref(), Some("leader"));
    signal(&pair.a, "STOP");
    let writes_before_pause = alias_writes_in(&pair.a.stderr_so_far()).len();

    // While the paused leader still holds its lease, the follower answers reads itself, from
    // the store: the leader's rollout, and who leads. (Handed to the paused leader, they would
    // go unanswered until the follower took over.)
    let (answered_by, status) = blocking({
        let via_b = pair.via_b.clone();
        move || status_at(&via_b)
    })
    .await;
    assert_eq!(answered_by.as_deref(), Some("follower"), "{status}");
    assert!(
        status["leader"]["instance"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&data_dir_of(&pair.a_dir)),
        "the paused instance still leads: {status}"
    );
    assert_eq!(
        status["services"][0]["active_rollout"]["canary_version"], "2",
        "{status}"
    );
    // `opsd status` against the follower says so, under the leader line.
    let (code, printed) = blocking({
        let via_b = pair.via_b.clone();
        move || via_b.cli(&["status"])
    })
    .await;
    assert_eq!(code, 0, "{printed}");
    assert!(
        printed.contains("leader: ") && printed.contains("answered by a follower, from the store"),
        "{printed}"
    );

    wait_for_leader(&pair.via_b, &pair.b_dir, TAKEOVER_BOUND).await;
    // The new leader moves the rollout on while the old one sleeps.
    wait_for_canary_share(&fixture, 0.25).await;
    signal(&pair.a, "CONT");
    let woke_at = Instant::now();
    let status = loop {
        if let Some(status) = pair.a.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            woke_at.elapsed() < Duration::from_secs(20),
            "the old leader kept running after it woke"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let a_log = pair.a.stderr_text();
    assert!(!status.success(), "the old leader exits with an error");
    assert!(a_log.contains("no longer leads"), "{a_log}");
    assert_eq!(
        alias_writes_in(&a_log).len(),
        writes_before_pause,
        "the old leader wrote the alias after it woke"
    );

    let rollout = wait_for_promotion(&pair.via_b, &fixture).await;
    assert_each_step_advanced_once(&pair.via_b, rollout["id"].as_str().unwrap());
    assert_every_alias_write_made_once(&fixture, &a_log, &pair, before);
    traffic.abort();
    pair.b.terminate(Duration::from_secs(30));
}
