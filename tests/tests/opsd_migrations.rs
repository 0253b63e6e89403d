//! Schema migrations across rollouts through a real `opsd up` and real Steno releases (one
//! binary; `STENO_CHAOS_MIGRATIONS` gives a release the rehearsal migrations 9001 expand and
//! 9002 contract): a canary with an expand migration is rolled back and the old release, killed,
//! restarts and serves on the expanded schema; a release with a contract migration is refused,
//! naming it and the way to ship it; with a plan that contracts after the watch it is promoted
//! and the migration runs once the old release is stopped, after which a rollback past it is
//! refused.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::binary;
use e2e_tests::opsd_up::{last_rollout_kinds, start_opsd, write_config};
use sqlx::{Connection, SqliteConnection};

/// Steno's database under the local platform (`STENO_DATA_DIR` is `.opsd/steno-data`).
fn steno_database(dir: &Path) -> String {
    format!(
        "sqlite://{}",
        dir.join(".opsd/steno-data/steno.db").display()
    )
}

/// The versions in Steno's ledger and whether the rehearsal table exists.
fn schema_of(dir: &Path) -> (Vec<i64>, bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut connection = SqliteConnection::connect(&steno_database(dir))
            .await
            .unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&mut connection)
                .await
                .unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'rehearsal_notes'",
        )
        .fetch_one(&mut connection)
        .await
        .unwrap();
        (versions, tables == 1)
    })
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A firm's whole journey through the public address (register, upload, draft, export).
fn journey_passes(public_url: &str) -> (bool, String) {
    let output = Command::new(binary("steno"))
        .args(["probe", "--base-url", public_url, "--timeout", "50s"])
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn a_canary_with_an_expand_migration_is_rolled_back_and_the_old_release_restarts_on_it() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let opsd = start_opsd(dir.path());
    let mut load = opsd.load(100, 600);
    let (before, _) = schema_of(dir.path());
    assert!(!before.contains(&9001), "{before:?}");

    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v2-expand",
        "--env",
        "STENO_CHAOS_MIGRATIONS=expand",
        "--env",
        "STENO_CHAOS_ERROR_RATE=0.3",
        "--wait",
        "--timeout",
        "90s",
    ]);
    assert_eq!(code, 2, "the failing canary is rolled back:\n{out}");
    let kinds = last_rollout_kinds(&opsd);
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("migrate"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("roll_back"),
        "{kinds:?}"
    );
    let (versions, table) = schema_of(dir.path());
    assert!(
        versions.contains(&9001) && table,
        "the expand migration stays applied after the rollback: {versions:?}"
    );
    let status = opsd.status();
    let schema = &status["service"]["last_rollout"]["state"]["schema"];
    assert_eq!(schema["expand"][0]["name"], "rehearsal_expand", "{status}");
    assert_eq!(schema["expand_run"]["state"], "applied", "{schema}");
    load.kill().unwrap();
    load.wait().unwrap();

    // The old release crashes (or its host reboots): it restarts on the expanded schema.
    wait_for(
        "only the stable release to run",
        Duration::from_secs(30),
        || e2e_tests::steno_serve_children(&opsd.process).len() == 1,
    );
    let old = e2e_tests::steno_serve_children(&opsd.process)[0];
    let killed = Command::new("kill")
        .args(["-KILL", &old.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let health = format!("{}/v1/health", opsd.public_url);
    wait_for(
        "the stable release to restart and answer",
        Duration::from_secs(30),
        || {
            let running = e2e_tests::steno_serve_children(&opsd.process);
            running.len() == 1
                && running[0] != old
                && reqwest::blocking::get(&health).is_ok_and(|answer| answer.status().is_success())
        },
    );
    let (passed, report) = journey_passes(&opsd.public_url);
    assert!(
        passed,
        "the restarted v1 serves a firm's journey:\n{report}"
    );
    let log =
        std::fs::read_to_string(dir.path().join("data/logs/steno-v1.log")).unwrap_or_default();
    assert!(
        log.contains("expand migrations this build does not know"),
        "v1 started knowingly on the newer schema"
    );
}

#[test]
fn a_contract_migration_is_refused_and_a_contract_plan_runs_it_after_the_watch() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    std::fs::write(
        dir.path().join("contract.yaml"),
        "name: expand-contract\nsteps:\n  - weight: 10\n    bake: 6s\n  - weight: 100\nwatch: 6s\ncontract_migrations: after_watch\n",
    )
    .unwrap();
    let opsd = start_opsd(dir.path());
    let mut load = opsd.load(100, 600);

    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v2-contract",
        "--env",
        "STENO_CHAOS_MIGRATIONS=contract",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("contract migration 9002 rehearsal_contract (contract)")
            && out.contains("contract_migrations: after_watch"),
        "the refusal names the migration and the way to ship it:\n{out}"
    );
    assert!(!schema_of(dir.path()).0.contains(&9001), "nothing ran");

    let plan = dir.path().join("contract.yaml");
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v2-contract",
        "--env",
        "STENO_CHAOS_MIGRATIONS=contract",
        "--plan",
        plan.to_str().unwrap(),
        "--wait",
        "--timeout",
        "120s",
    ]);
    assert_eq!(code, 0, "promoted after its watch:\n{out}");
    // The migration runs in the background after the promotion; its end is recorded on the
    // reconciler's next tick.
    wait_for(
        "the contract migration recorded",
        Duration::from_secs(60),
        || {
            let (code, out) = opsd.cli(&["status", "steno"]);
            code == 0 && out.contains("contract 9002 rehearsal_contract (contract): applied")
        },
    );
    let (versions, table) = schema_of(dir.path());
    assert!(
        versions.contains(&9001) && versions.contains(&9002) && !table,
        "{versions:?}"
    );
    let (code, out) = opsd.cli(&["rollback", "steno", "--reason", "try going back"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("v1 does not know contract migration 9002 rehearsal_contract"),
        "{out}"
    );
    let (passed, report) = journey_passes(&opsd.public_url);
    assert!(
        passed,
        "the new release serves after contracting:\n{report}"
    );
    load.kill().unwrap();
    load.wait().unwrap();
}
