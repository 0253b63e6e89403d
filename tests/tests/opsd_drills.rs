//! End to end: `opsd drill` against real Steno databases made by `steno migrate` and filled with
//! generated firms, letters and revisions. On SQLite and on PostgreSQL: a drill passes with
//! measured RTO and RPO; a snapshot damaged after the fact (rows deleted, or the file truncated)
//! fails the drill's verification; opsd killed mid-drill leaves a scratch copy that the next
//! start removes. Through `opsd up`: a failed drill closes the deploy gate, an override with a
//! reason is audited, and the rollout records its pre-deployment snapshot.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::steno_data::{
    create_postgres_database, drop_postgres_databases, fill_postgres, fill_sqlite,
    migrate_with_steno, new_steno_sqlite, postgres_admin_url, postgres_databases,
};
use e2e_tests::webhook::Webhook;
use e2e_tests::{binary, run_opsd, start_opsd_up};
use serde_json::Value;

fn write_config(dir: &Path, database_block: &str) -> PathBuf {
    let config = format!(
        "listen: 127.0.0.1:0\n\
         data_dir: data\n\
         services:\n  steno:\n    public_addr: 127.0.0.1:0\n    database: steno\n    ready_timeout: 20s\n\
         databases:\n  steno:\n{database_block}",
    );
    let path = dir.join("opsd.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

fn item<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["verification"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["name"] == name)
        .unwrap_or_else(|| panic!("no verification item {name:?} in {report:#}"))
}

/// The checks a passing drill and a damaged snapshot are judged by.
fn assert_passed_with_measurements(report: &Value, letters: u64) {
    assert_eq!(report["outcome"], "passed", "{report:#}");
    assert!(report["measurement"]["rto_ms"].as_u64().unwrap() > 0);
    assert_eq!(item(report, "integrity")["status"], "passed");
    assert_eq!(item(report, "rows in letters")["status"], "passed");
    assert_eq!(
        item(report, "rows in letters")["detail"],
        format!("{letters} rows, as at snapshot time")
    );
    assert_eq!(
        item(report, "rows in letter_revisions")["detail"],
        format!("{} rows, as at snapshot time", letters * 2)
    );
    assert_eq!(item(report, "check letters checksum")["status"], "passed");
    assert_eq!(
        item(report, "check every letter's firm exists")["status"],
        "passed"
    );
    let phases: Vec<&str> = report["measurement"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|phase| phase["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, vec!["snapshot", "restore", "verify", "teardown"]);
    assert_eq!(report["scratch_removed"], true);
}

/// Runs `drill run` with a pause after the restore, kills opsd there with SIGKILL, and returns
/// the scratch name it reported.
fn kill_mid_drill(dir: &Path) -> String {
    let mut child = Command::new(binary("opsd"))
        .arg("--config")
        .arg(dir.join("opsd.yaml"))
        .args(["drill", "run", "steno", "--pause-after-restore", "120s"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_sender.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut scratch = None;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the drill reports its progress");
        if let Some(rest) = line.split(" into scratch ").nth(1) {
            scratch = Some(rest.trim().to_string());
        }
        if line.contains("pausing") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    scratch.expect("the drill named its scratch target")
}

#[test]
fn sqlite_drills_measure_fail_on_damaged_snapshots_and_clean_up_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let database_path = new_steno_sqlite(dir.path(), 4, 120, 600);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    write_config(
        dir.path(),
        &format!(
            "    kind: sqlite\n    path: {}\n    targets: {{rto: 2h, rpo: 1h}}\n    schedule: \"@daily\"\n",
            database_path.display()
        ),
    );

    // 1. A drill passes; the first has no earlier restorable point, the second measures RPO.
    let first = run_opsd(dir.path(), &["drill", "run", "steno", "--json"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let first = first.json();
    assert_passed_with_measurements(&first, 120);
    assert!(first["measurement"]["rpo_ms"].is_null(), "{first:#}");
    runtime.block_on(fill_sqlite(&database_path, 4, 121, 5, 600));
    let second = run_opsd(dir.path(), &["drill", "run", "steno", "--json"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let second = second.json();
    assert_passed_with_measurements(&second, 125);
    let rpo = second["measurement"]["rpo_ms"].as_u64().expect("an RPO");
    assert!(rpo < 3_600_000, "{rpo}");

    // 2. A snapshot that lost rows after it was taken fails verification.
    let snapshot = run_opsd(dir.path(), &["drill", "snapshot", "steno", "--json"]).json();
    let snapshot_file = PathBuf::from(snapshot["location"].as_str().unwrap());
    runtime.block_on(async {
        use sqlx::{Connection, Executor};
        let mut connection =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", snapshot_file.display()))
                .await
                .unwrap();
        connection
            .execute("DELETE FROM letter_revisions WHERE letter_id IN (SELECT id FROM letters WHERE id > 'letter-5')")
            .await
            .unwrap();
        connection
            .execute("DELETE FROM letters WHERE id > 'letter-5'")
            .await
            .unwrap();
        connection.close().await.unwrap();
    });
    // Rows written to the source after the snapshot are the write gap of a restore from it.
    runtime.block_on(fill_sqlite(&database_path, 4, 126, 3, 600));
    let damaged = run_opsd(
        dir.path(),
        &["drill", "run", "steno", "--use-latest", "--json"],
    );
    assert_eq!(damaged.code, 2, "{}\n{}", damaged.stdout, damaged.stderr);
    let damaged = damaged.json();
    assert_eq!(damaged["outcome"], "failed");
    assert_eq!(item(&damaged, "snapshot digest")["status"], "failed");
    let letters = item(&damaged, "rows in letters");
    assert_eq!(letters["status"], "failed");
    assert!(
        letters["detail"].as_str().unwrap().contains("lost"),
        "{letters}"
    );
    assert_eq!(
        damaged["measurement"]["write_gap_rows"].as_u64(),
        Some(3 * 6)
    );
    assert_eq!(damaged["scratch_removed"], true);

    // 3. A truncated snapshot fails too.
    let snapshot = run_opsd(dir.path(), &["drill", "snapshot", "steno", "--json"]).json();
    let snapshot_file = PathBuf::from(snapshot["location"].as_str().unwrap());
    let length = std::fs::metadata(&snapshot_file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&snapshot_file)
        .unwrap()
        .set_len(length / 3)
        .unwrap();
    let truncated = run_opsd(
        dir.path(),
        &["drill", "run", "steno", "--use-latest", "--json"],
    );
    assert_eq!(
        truncated.code, 2,
        "{}\n{}",
        truncated.stdout, truncated.stderr
    );
    assert_eq!(truncated.json()["outcome"], "failed");

    // 4. Killed mid-drill: the scratch copy stays until the next start removes it.
    let scratch = kill_mid_drill(dir.path());
    let scratch_file = dir
        .path()
        .join("data/drills")
        .join(format!("{scratch}.sqlite"));
    assert!(scratch_file.exists(), "the kill left {scratch_file:?}");
    let listing = run_opsd(dir.path(), &["drill", "list"]);
    assert_eq!(listing.code, 0, "{}", listing.stderr);
    assert!(
        listing
            .stderr
            .contains(&format!("removed scratch {scratch}")),
        "{}",
        listing.stderr
    );
    assert!(!scratch_file.exists(), "{scratch_file:?} was removed");
    assert!(listing.stdout.contains("interrupted"), "{}", listing.stdout);
    assert!(listing.stdout.contains("passed"), "{}", listing.stdout);
    assert!(listing.stdout.contains("failed"), "{}", listing.stdout);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("data/drills"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().contains("-drill-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn postgres_drills_measure_fail_on_damaged_snapshots_and_clean_up_after_a_kill() {
    let admin_url = postgres_admin_url();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database_name = format!("steno_drill_e2e_{}", std::process::id());
    let url = runtime.block_on(create_postgres_database(&admin_url, &database_name));
    migrate_with_steno(&url, dir.path());
    runtime.block_on(fill_postgres(&url, 4, 1, 150, 800));
    write_config(
        dir.path(),
        &format!("    kind: postgres\n    url: {url}\n    targets: {{rto: 2h, rpo: 1h}}\n"),
    );

    let first = run_opsd(dir.path(), &["drill", "run", "steno", "--json"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_passed_with_measurements(&first.json(), 150);
    assert!(
        first.stderr.contains("restoring"),
        "progress: {}",
        first.stderr
    );
    let second = run_opsd(dir.path(), &["drill", "run", "steno", "--json"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let second = second.json();
    assert!(second["measurement"]["rpo_ms"].as_u64().unwrap() < 3_600_000);

    // A dump cut short fails: pg_restore stops with --exit-on-error, and the digest differs.
    let snapshot = run_opsd(dir.path(), &["drill", "snapshot", "steno", "--json"]).json();
    let dump = PathBuf::from(snapshot["location"].as_str().unwrap());
    let length = std::fs::metadata(&dump).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&dump)
        .unwrap()
        .set_len(length / 2)
        .unwrap();
    let truncated = run_opsd(
        dir.path(),
        &["drill", "run", "steno", "--use-latest", "--json"],
    );
    assert_eq!(
        truncated.code, 2,
        "{}\n{}",
        truncated.stdout, truncated.stderr
    );
    let truncated = truncated.json();
    assert_eq!(truncated["outcome"], "failed");
    assert_eq!(item(&truncated, "snapshot digest")["status"], "failed");
    assert!(
        truncated["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|reason| reason.as_str().unwrap().contains("pg_restore")),
        "{truncated:#}"
    );

    // A dump of a database that lost rows, put in place of a good one, fails on row counts.
    let good = run_opsd(dir.path(), &["drill", "snapshot", "steno", "--json"]).json();
    let good_dump = PathBuf::from(good["location"].as_str().unwrap());
    let lossy_url = runtime.block_on(create_postgres_database(
        &admin_url,
        &format!("{database_name}_lossy"),
    ));
    migrate_with_steno(&lossy_url, dir.path());
    runtime.block_on(fill_postgres(&lossy_url, 4, 1, 140, 800));
    let status = Command::new("pg_dump")
        .args(["--format=custom", "--file"])
        .arg(&good_dump)
        .arg(format!("--dbname={lossy_url}"))
        .status()
        .unwrap();
    assert!(status.success());
    let lossy = run_opsd(
        dir.path(),
        &["drill", "run", "steno", "--use-latest", "--json"],
    );
    assert_eq!(lossy.code, 2, "{}\n{}", lossy.stdout, lossy.stderr);
    let lossy = lossy.json();
    assert_eq!(
        item(&lossy, "rows in letters")["detail"],
        "140 rows restored, 150 at snapshot time (10 lost)"
    );

    // Killed mid-drill: the scratch database exists until the next start drops it.
    let scratch = kill_mid_drill(dir.path());
    assert!(
        runtime
            .block_on(postgres_databases(&admin_url))
            .contains(&scratch),
        "the kill left {scratch}"
    );
    let listing = run_opsd(dir.path(), &["drill", "list", "steno"]);
    assert_eq!(listing.code, 0, "{}", listing.stderr);
    assert!(
        listing
            .stderr
            .contains(&format!("removed scratch {scratch}")),
        "{}",
        listing.stderr
    );
    let databases = runtime.block_on(postgres_databases(&admin_url));
    assert!(
        !databases.iter().any(|name| name.starts_with("opsd_drill_")),
        "{databases:?}"
    );
    let drill_id = listing
        .stdout
        .lines()
        .find(|line| line.contains("interrupted"))
        .and_then(|line| line.split_whitespace().next())
        .expect("the killed drill is listed as interrupted")
        .to_string();
    let shown = run_opsd(dir.path(), &["drill", "show", &drill_id, "--json"]).json();
    assert_eq!(shown["outcome"], "interrupted");
    assert!(shown["scratch_removed_at"].is_string());
    runtime.block_on(drop_postgres_databases(
        &admin_url,
        &[database_name.clone(), format!("{database_name}_lossy")],
    ));
}

#[test]
fn a_failed_drill_closes_the_deploy_gate_until_an_audited_override() {
    let dir = tempfile::tempdir().unwrap();
    let database_path = new_steno_sqlite(dir.path(), 2, 20, 200);
    // A checks file whose invariant the data breaks: the drill fails verification.
    std::fs::write(
        dir.path().join("checks.yaml"),
        "checks:\n  - name: no letters at all\n    sql: SELECT count(*) FROM letters\n    expect: 0\n",
    )
    .unwrap();
    write_config(
        dir.path(),
        &format!(
            "    kind: sqlite\n    path: {}\n    checks: checks.yaml\n    schedule: \"@yearly\"\n",
            database_path.display()
        ),
    );
    let failed = run_opsd(dir.path(), &["drill", "run", "steno"]);
    assert_eq!(failed.code, 2, "{}\n{}", failed.stdout, failed.stderr);
    assert!(
        failed.stdout.contains("check no letters at all"),
        "{}",
        failed.stdout
    );

    let (mut process, _) = start_opsd_up(dir.path(), "steno");
    let server = process.base_url.clone();
    let client = |args: &[&str]| {
        let mut full = vec!["--server", server.as_str()];
        full.extend_from_slice(args);
        run_opsd(dir.path(), &full)
    };

    let refused = client(&["deploy", "steno", "--version", "v2"]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("refused by the drill gate"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("no letters at all"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--override drill"),
        "{}",
        refused.stderr
    );

    let no_reason = client(&["deploy", "steno", "--version", "v2", "--override", "drill"]);
    assert_eq!(no_reason.code, 1);
    assert!(
        no_reason.stderr.contains("needs --reason"),
        "{}",
        no_reason.stderr
    );

    let overridden = client(&[
        "deploy",
        "steno",
        "--version",
        "v2",
        "--override",
        "drill",
        "--reason",
        "hotfix for a data leak; drill fix tracked separately",
        "--json",
    ]);
    assert_eq!(overridden.code, 0, "{}", overridden.stderr);
    let rollout = overridden.json();
    let snapshot = rollout["pre_deploy_snapshot"]
        .as_str()
        .expect("the rollout records its pre-deployment snapshot");
    assert!(snapshot.starts_with("opsd-steno-"), "{snapshot}");
    assert!(dir
        .path()
        .join("data/snapshots/steno")
        .join(format!("{snapshot}.sqlite"))
        .exists());

    let token = std::fs::read_to_string(dir.path().join("data/operator.token")).unwrap();
    let audit: Value = reqwest::blocking::Client::new()
        .get(format!("{server}/v1/audit"))
        .bearer_auth(token.trim())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let override_entry = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["action"] == "override_drill_gate")
        .unwrap_or_else(|| panic!("no override in the audit log: {audit:#}"));
    assert_eq!(
        override_entry["reason"],
        "hotfix for a data leak; drill fix tracked separately"
    );
    assert!(override_entry["detail"]["closed_because"]
        .as_str()
        .unwrap()
        .contains("failed"));
    let _ = client(&["abort", "steno", "--reason", "test over"]);
    process.terminate(Duration::from_secs(20));
}

#[test]
fn rds_drills_snapshot_restore_verify_and_delete_in_order_leaving_nothing_behind() {
    use e2e_tests::aws_emulator::{use_test_credentials, AwsEmulator, TEST_REGION};
    let emulator = AwsEmulator::start();
    emulator.rds_query("Action=CreateDBInstance&DBInstanceIdentifier=steno-db&DBInstanceClass=db.t4g.medium&Engine=postgres&AllocatedStorage=20&MasterUsername=steno&MasterUserPassword=not-a-secret1",
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!(
            "    kind: rds\n    rds:\n      region: {TEST_REGION}\n      instance: steno-db\n      endpoint_url: {}\n      poll_interval: 100ms\n      wait_timeout: 2m\n",
            emulator.endpoint_url()
        ),
    );
    emulator.clear_requests();
    let output = use_test_credentials(&mut e2e_tests::opsd_command(dir.path()))
        .args(["drill", "run", "steno", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["outcome"], "passed", "{report:#}");
    assert_eq!(item(&report, "integrity")["status"], "passed");
    // Without database credentials the rows of an RDS copy are not read: never counted as passed.
    assert_eq!(item(&report, "row counts")["status"], "not_checked");
    let scratch = report["scratch"].as_str().unwrap();
    assert!(scratch.starts_with("steno-db-drill-"), "{scratch}");
    assert_eq!(report["scratch_removed"], true);

    // The calls, in order (other calls may sit between them).
    let calls = emulator.requests();
    let expected = [
        "CreateDBSnapshot",
        "DescribeDBSnapshots",
        "RestoreDBInstanceFromDBSnapshot",
        "DescribeDBInstances",
        "DeleteDBInstance",
    ];
    let mut position = 0;
    for call in &calls {
        if position < expected.len() && call == expected[position] {
            position += 1;
        }
    }
    assert_eq!(position, expected.len(), "calls in order: {calls:?}");

    let instances = emulator.rds_query("Action=DescribeDBInstances");
    assert!(instances.contains("<DBInstanceIdentifier>steno-db</DBInstanceIdentifier>"));
    assert!(!instances.contains("-drill-"), "{instances}");
    let snapshots = emulator.rds_query("Action=DescribeDBSnapshots");
    assert!(!snapshots.contains("-drill-"), "{snapshots}");
    assert!(snapshots.contains(report["snapshot_id"].as_str().unwrap()));
}

#[test]
fn a_scheduled_drill_that_fails_pages_the_on_call_target() {
    let dir = tempfile::tempdir().unwrap();
    let database_path = new_steno_sqlite(dir.path(), 1, 5, 100);
    std::fs::write(
        dir.path().join("checks.yaml"),
        "checks:\n  - name: no letters at all\n    sql: SELECT count(*) FROM letters\n    expect: 0\n",
    )
    .unwrap();
    let on_call = Webhook::start();
    // The drill never ran, so `opsd up` runs it on its own a few seconds after starting.
    write_config(
        dir.path(),
        &format!(
            "    kind: sqlite\n    path: {}\n    checks: checks.yaml\n    schedule: \"@yearly\"\n\
             notifications:\n  targets:\n    - {{name: on-call, kind: slack, webhook_url: \"{}\"}}\n  \
             routes:\n    - {{min_severity: critical, targets: [on-call]}}\n",
            database_path.display(),
            on_call.url
        ),
    );
    let (mut process, _) = start_opsd_up(dir.path(), "steno");
    let deadline = Instant::now() + Duration::from_secs(60);
    while on_call.count() == 0 {
        assert!(
            Instant::now() < deadline,
            "no notification of the failed scheduled drill"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = on_call.last_text();
    assert!(text.contains("DR drill of steno failed"), "{text}");
    assert!(text.contains("no letters at all"), "{text}");
    let listed = run_opsd(dir.path(), &["drill", "list", "--json"]).json();
    assert_eq!(listed[0]["outcome"], "failed", "{listed:#}");
    process.terminate(Duration::from_secs(20));
    assert_eq!(on_call.count(), 1, "one failure, one page");
}

/// Gives every generated document of the SQLite database a real content: `write` stores
/// `document <n>` under its key, and its row records that content's SHA-256.
fn give_documents_content(database: &Path, write: &dyn Fn(&str, &[u8])) -> usize {
    use sha2::{Digest, Sha256};
    use sqlx::Connection;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = format!("sqlite://{}", database.display());
    let keys: Vec<String> = runtime.block_on(async {
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT storage_key FROM documents")
            .fetch_all(&mut connection)
            .await
            .unwrap()
    });
    // Written outside the runtime: `write` may make blocking requests.
    let mut digests = Vec::new();
    for key in &keys {
        let content = format!("document {key}");
        write(key, content.as_bytes());
        digests.push((
            key.clone(),
            format!("{:x}", Sha256::digest(content.as_bytes())),
        ));
    }
    runtime.block_on(async {
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for (key, digest) in &digests {
            sqlx::query("UPDATE documents SET sha256 = ?1 WHERE storage_key = ?2")
                .bind(digest)
                .bind(key)
                .execute(&mut connection)
                .await
                .unwrap();
        }
    });
    keys.len()
}

/// Runs a drill with the command `prepare` sets up; its exit code and report.
fn drill(dir: &Path, prepare: &dyn Fn(&mut Command) -> &mut Command) -> (i32, Value) {
    let mut command = e2e_tests::opsd_command(dir);
    let output = prepare(&mut command)
        .args(["drill", "run", "steno", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), report)
}

fn reasons(report: &Value) -> String {
    report["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|reason| reason.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The document store's side of the drill, for a directory or a bucket: passes while every
/// referenced document is intact, fails naming one deleted, then one altered.
fn documents_are_verified(
    dir: &Path,
    prepare: &dyn Fn(&mut Command) -> &mut Command,
    remove: &dyn Fn(&str),
    write: &dyn Fn(&str, &[u8]),
    documents: usize,
) {
    let (code, report) = drill(dir, prepare);
    assert_eq!(code, 0, "{report:#}");
    let verified = item(&report, "documents");
    assert_eq!(verified["status"], "passed", "{report:#}");
    assert!(
        verified["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("all {documents} documents")),
        "{verified}"
    );
    let manifest_path = dir.join(format!(
        "data/document-manifests/{}.json",
        report["snapshot_id"].as_str().unwrap()
    ));
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest["documents"].as_array().unwrap().len(), documents);
    assert_eq!(e2e_tests::file_mode(&manifest_path), 0o600);

    remove("key-2");
    let (code, report) = drill(dir, prepare);
    assert_eq!(code, 2, "{report:#}");
    assert!(
        reasons(&report).contains("document key-2 is missing from the store"),
        "{report:#}"
    );

    write("key-2", b"document key-2");
    write("key-3", b"document key-3, altered");
    let (code, report) = drill(dir, prepare);
    assert_eq!(code, 2, "{report:#}");
    let reasons = reasons(&report);
    assert!(
        reasons.contains("document key-3 has sha256") && !reasons.contains("key-2"),
        "{reasons}"
    );
}

#[test]
fn a_drill_fails_naming_a_referenced_document_deleted_or_altered_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let database = new_steno_sqlite(dir.path(), 2, 5, 200);
    let documents = dir.path().join("documents");
    std::fs::create_dir_all(&documents).unwrap();
    let write = |key: &str, content: &[u8]| std::fs::write(documents.join(key), content).unwrap();
    let count = give_documents_content(&database, &write);
    write_config(
        dir.path(),
        &format!(
            "    kind: sqlite\n    path: {}\n    documents: {{dir: documents}}\n",
            database.display()
        ),
    );
    documents_are_verified(
        dir.path(),
        &|command| command,
        &|key| std::fs::remove_file(documents.join(key)).unwrap(),
        &write,
        count,
    );
}

#[test]
fn a_drill_fails_naming_a_referenced_document_deleted_or_altered_in_an_s3_bucket() {
    use e2e_tests::aws_emulator::{
        use_test_credentials, AwsEmulator, TEST_CREDENTIAL, TEST_REGION,
    };
    let emulator = AwsEmulator::start();
    let s3 = |method: reqwest::Method, path: &str, body: Vec<u8>| {
        let response = reqwest::blocking::Client::new()
            .request(method.clone(), format!("{}/{path}", emulator.moto_url()))
            .header(
                "Authorization",
                format!("AWS4-HMAC-SHA256 Credential={TEST_CREDENTIAL}/20260101/{TEST_REGION}/s3/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(body)
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
    };
    s3(reqwest::Method::PUT, "steno-documents", Vec::new());
    let dir = tempfile::tempdir().unwrap();
    let database = new_steno_sqlite(dir.path(), 2, 5, 200);
    let write = |key: &str, content: &[u8]| {
        s3(
            reqwest::Method::PUT,
            &format!("steno-documents/docs/{key}"),
            content.to_vec(),
        )
    };
    let count = give_documents_content(&database, &write);
    write_config(
        dir.path(),
        &format!(
            "    kind: sqlite\n    path: {}\n    documents:\n      s3: {{bucket: steno-documents, prefix: docs/, region: {TEST_REGION}, endpoint_url: \"{}\"}}\n",
            database.display(),
            emulator.endpoint_url()
        ),
    );
    // An unversioned bucket: the first snapshot keeps its own copy of every document.
    let (code, report) = drill(dir.path(), &|command| use_test_credentials(command));
    assert_eq!(code, 0, "{report:#}");
    let snapshot_id = report["snapshot_id"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join(format!("data/document-manifests/{snapshot_id}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    let copy = manifest["documents"][0]["copy_key"].as_str().unwrap();
    assert_eq!(copy, format!("opsd-snapshots/{snapshot_id}/docs/key-1"));
    let copied = reqwest::blocking::Client::new()
        .get(format!("{}/steno-documents/{copy}", emulator.moto_url()))
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential={TEST_CREDENTIAL}/20260101/{TEST_REGION}/s3/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .send()
        .unwrap();
    assert!(copied.status().is_success(), "{}", copied.status());
    assert_eq!(copied.text().unwrap(), "document key-1");
    documents_are_verified(
        dir.path(),
        &|command| use_test_credentials(command),
        &|key| {
            s3(
                reqwest::Method::DELETE,
                &format!("steno-documents/docs/{key}"),
                Vec::new(),
            )
        },
        &write,
        count,
    );
}
