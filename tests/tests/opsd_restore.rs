//! `opsd restore` end to end through a real `opsd up` and real Steno releases: on SQLite and on
//! PostgreSQL, Steno data written after a snapshot is reported as exactly the rows lost, the
//! releases are stopped and started around the restore, and Steno serves the restored data
//! (an account made before the snapshot logs in, one made after it no longer exists); on the
//! RDS emulator the restore makes a new instance, named, with the calls in order. Also: the
//! confirmation, the preview, and the refusal during a rollout.

use std::collections::BTreeMap;
use std::path::Path;

use e2e_tests::steno_data::{
    create_postgres_database, drop_postgres_databases, postgres_admin_url, postgres_databases,
};
use e2e_tests::{opsd_command, start_opsd_up, start_opsd_up_with, CommandOutput, RunningProcess};
use serde_json::{json, Value};

const PASSWORD: &str = "kettle-Orbit-prism-42";

fn write_config(dir: &Path, service_extra: &str, database_block: &str) {
    std::fs::write(
        dir.join("slow.yaml"),
        "name: slow\nsteps:\n  - weight: 10\n    bake: 10m\n  - weight: 100\n",
    )
    .unwrap();
    let config = format!(
        "listen: 127.0.0.1:0\n\
         data_dir: data\n\
         tick: 200ms\n\
         services:\n  steno:\n    public_addr: 127.0.0.1:0\n    database: steno\n    drill_gate: off\n    ready_timeout: 20s\n{service_extra}\
         databases:\n  steno:\n{database_block}",
    );
    std::fs::write(dir.join("opsd.yaml"), config).unwrap();
}

/// `opsd --server <api> ARGS` in `dir`.
fn opsd(dir: &Path, process: &RunningProcess, args: &[&str]) -> CommandOutput {
    CommandOutput::of(
        opsd_command(dir)
            .args(["--server", &process.base_url])
            .args(args),
    )
}

/// Registers a firm whose admin is `email`.
fn register(public_url: &str, email: &str) {
    let answer = reqwest::blocking::Client::new()
        .post(format!("{public_url}/v1/firms"))
        .json(&json!({
            "firm_name": format!("Firm of {email}"),
            "firm_address": "1 Court Street",
            "admin_name": "Admin",
            "admin_email": email,
            "admin_password": PASSWORD,
        }))
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201, "{}", answer.text().unwrap());
}

fn login_status(public_url: &str, email: &str) -> u16 {
    reqwest::blocking::Client::new()
        .post(format!("{public_url}/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// The rows a restore to counts `at_snapshot` loses from counts `now`.
fn expected_loss(at_snapshot: &BTreeMap<String, u64>, now: &BTreeMap<String, u64>) -> Value {
    let lost: BTreeMap<&String, u64> = now
        .iter()
        .filter_map(|(table, rows)| {
            let lost = rows.saturating_sub(at_snapshot.get(table).copied().unwrap_or(0));
            (lost > 0).then_some((table, lost))
        })
        .collect();
    serde_json::to_value(lost).unwrap()
}

/// Each table's rows in a SQLite file.
fn sqlite_counts(path: &Path) -> BTreeMap<String, u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        let mut connection =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(&mut connection)
        .await
        .unwrap();
        let mut counts = BTreeMap::new();
        for table in tables {
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\""))
                .fetch_one(&mut connection)
                .await
                .unwrap();
            counts.insert(table, rows as u64);
        }
        counts
    })
}

fn postgres_counts(url: &str) -> BTreeMap<String, u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut connection)
                .await
                .unwrap();
        let mut counts = BTreeMap::new();
        for table in tables {
            let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\""))
                .fetch_one(&mut connection)
                .await
                .unwrap();
            counts.insert(table, rows as u64);
        }
        counts
    })
}

/// The restore journey common to both engines; `counts` reads the live database's rows.
fn restore_loses_exactly_what_was_written_after_the_snapshot(
    dir: &Path,
    counts: &dyn Fn() -> BTreeMap<String, u64>,
) -> Value {
    let (process, public_url) = start_opsd_up(dir, "steno");
    register(&public_url, "before@firm.test");
    let snapshot = opsd(dir, &process, &["drill", "snapshot", "steno", "--json"]);
    assert_eq!(snapshot.code, 0, "{}", snapshot.stderr);
    let at_snapshot = counts();
    register(&public_url, "after@firm.test");
    assert_eq!(login_status(&public_url, "after@firm.test"), 200);
    let before_restore = counts();
    let expected = expected_loss(&at_snapshot, &before_restore);
    assert!(
        expected["firms"] == 1 && expected["users"] == 1,
        "{expected}"
    );

    // The preview names the snapshot and what would be lost; nothing changes.
    let preview = opsd(
        dir,
        &process,
        &[
            "restore",
            "steno",
            "--latest",
            "--reason",
            "look first",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(preview.code, 0, "{}", preview.stderr);
    let preview = preview.json();
    assert_eq!(preview["snapshot_id"], snapshot.json()["id"]);
    assert_eq!(preview["rows_lost"], expected);
    assert_eq!(preview["releases_stopped"], json!(["steno@v1"]));
    // Without a terminal and without --yes: refused, nothing changed.
    let unconfirmed = opsd(
        dir,
        &process,
        &["restore", "steno", "--latest", "--reason", "oops"],
    );
    assert_eq!(unconfirmed.code, 1);
    assert!(
        unconfirmed.stderr.contains("needs confirmation"),
        "{}",
        unconfirmed.stderr
    );
    assert_eq!(counts(), before_restore);

    let restored = opsd(
        dir,
        &process,
        &[
            "restore",
            "steno",
            "--latest",
            "--reason",
            "bad data after the snapshot",
            "--yes",
            "--json",
        ],
    );
    assert_eq!(restored.code, 0, "{}\n{}", restored.stdout, restored.stderr);
    let report = restored.json();
    assert_eq!(report["outcome"], "restored", "{report:#}");
    assert_eq!(
        report["rows_lost"], expected,
        "exactly the rows written after the snapshot"
    );
    assert_eq!(report["releases_restarted"], json!(["steno@v1"]));
    assert!(report["rto_ms"].as_u64().unwrap() > 0);
    assert!(report["safety_snapshot_id"]
        .as_str()
        .unwrap()
        .starts_with("opsd-steno-"));
    assert_eq!(
        counts(),
        at_snapshot,
        "the database holds the snapshot's rows again"
    );

    // Steno serves the restored data.
    assert_eq!(login_status(&public_url, "before@firm.test"), 200);
    assert_eq!(login_status(&public_url, "after@firm.test"), 401);
    let timeline: Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/timeline?limit=50", process.base_url))
        .bearer_auth(
            std::fs::read_to_string(dir.join("data/operator.token"))
                .unwrap()
                .trim(),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entries = timeline["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|entry| entry["kind"] == "restore"),
        "{timeline:#}"
    );
    assert!(
        entries.iter().any(|entry| entry["source"] == "audit"
            && entry["message"].as_str().unwrap_or("").contains("restore")),
        "the restore is audited: {timeline:#}"
    );
    report
}

#[test]
fn a_sqlite_restore_reports_the_rows_written_after_the_snapshot_and_steno_serves_the_restored_data()
{
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "",
        "    kind: sqlite\n    path: .opsd/steno-data/steno.db\n    targets: {rto: 2h, rpo: 1h}\n",
    );
    let database = dir.path().join(".opsd/steno-data/steno.db");
    restore_loses_exactly_what_was_written_after_the_snapshot(dir.path(), &|| {
        sqlite_counts(&database)
    });
}

#[test]
fn a_postgres_restore_swaps_the_restored_database_in_and_keeps_the_replaced_one() {
    let admin_url = postgres_admin_url();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let name = format!("steno_restore_e2e_{}", std::process::id());
    let url = runtime.block_on(create_postgres_database(&admin_url, &name));
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!("    env: {{DATABASE_URL: \"{url}\"}}\n"),
        &format!("    kind: postgres\n    url: {url}\n    targets: {{rto: 2h, rpo: 1h}}\n"),
    );
    let report = restore_loses_exactly_what_was_written_after_the_snapshot(dir.path(), &|| {
        postgres_counts(&url)
    });
    let replaced: Vec<String> = runtime
        .block_on(postgres_databases(&admin_url))
        .into_iter()
        .filter(|database| database.starts_with("opsd_replaced_steno_"))
        .collect();
    assert_eq!(
        replaced.len(),
        1,
        "the replaced database is kept: {replaced:?}"
    );
    assert!(
        report["next_steps"][0]
            .as_str()
            .unwrap()
            .contains(&replaced[0]),
        "{report:#}"
    );
    let mut leftovers = replaced;
    leftovers.push(name);
    runtime.block_on(drop_postgres_databases(&admin_url, &leftovers));
}

#[test]
fn a_restore_is_refused_while_a_rollout_runs_unless_overridden() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "",
        "    kind: sqlite\n    path: .opsd/steno-data/steno.db\n    targets: {rto: 2h, rpo: 1h}\n",
    );
    let (process, _public_url) = start_opsd_up(dir.path(), "steno");
    let slow = dir.path().join("slow.yaml");
    let deploy = opsd(
        dir.path(),
        &process,
        &[
            "deploy",
            "steno",
            "--version",
            "v2",
            "--plan",
            slow.to_str().unwrap(),
        ],
    );
    assert_eq!(deploy.code, 0, "{}", deploy.stderr);
    let refused = opsd(
        dir.path(),
        &process,
        &[
            "restore",
            "steno",
            "--latest",
            "--reason",
            "during a rollout",
            "--yes",
        ],
    );
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("a rollout of steno (v1 → v2")
            && refused.stderr.contains("--override-rollout"),
        "{}",
        refused.stderr
    );
    let unknown = opsd(
        dir.path(),
        &process,
        &[
            "restore",
            "steno",
            "--snapshot",
            "opsd-steno-nope",
            "--reason",
            "r",
            "--yes",
            "--override-rollout",
        ],
    );
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("no snapshot opsd-steno-nope"),
        "{}",
        unknown.stderr
    );
    let _ = opsd(
        dir.path(),
        &process,
        &["abort", "steno", "--reason", "test over"],
    );
}

#[test]
fn an_rds_restore_makes_a_new_instance_and_names_it() {
    use e2e_tests::aws_emulator::{use_test_credentials, AwsEmulator, TEST_REGION};
    let emulator = AwsEmulator::start();
    emulator.rds_query("Action=CreateDBInstance&DBInstanceIdentifier=steno-db&DBInstanceClass=db.t4g.medium&Engine=postgres&AllocatedStorage=20&MasterUsername=steno&MasterUserPassword=not-a-secret1");
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "",
        &format!(
            "    kind: rds\n    rds:\n      region: {TEST_REGION}\n      instance: steno-db\n      endpoint_url: {}\n      poll_interval: 100ms\n      wait_timeout: 2m\n",
            emulator.endpoint_url()
        ),
    );
    let mut command = opsd_command(dir.path());
    use_test_credentials(&mut command);
    let (process, _public_url) = start_opsd_up_with(command, "steno");
    let mut snapshot = opsd_command(dir.path());
    let snapshot = CommandOutput::of(
        use_test_credentials(&mut snapshot).args(["drill", "snapshot", "steno", "--json"]),
    );
    assert_eq!(snapshot.code, 0, "{}", snapshot.stderr);
    emulator.clear_requests();
    let restored = opsd(
        dir.path(),
        &process,
        &[
            "restore",
            "steno",
            "--latest",
            "--to",
            "steno-db-restored",
            "--reason",
            "RDS recovery",
            "--yes",
            "--json",
        ],
    );
    assert_eq!(restored.code, 0, "{}\n{}", restored.stdout, restored.stderr);
    let report = restored.json();
    assert!(
        report["location"]
            .as_str()
            .unwrap()
            .starts_with("RDS instance steno-db-restored"),
        "{report:#}"
    );
    assert!(
        report["rows_lost"].is_null(),
        "not counted on RDS: {report:#}"
    );
    assert!(
        report["next_steps"][0]
            .as_str()
            .unwrap()
            .contains("point the service at steno-db-restored"),
        "{report:#}"
    );
    let calls = emulator.requests();
    let expected = [
        "CreateDBSnapshot",
        "RestoreDBInstanceFromDBSnapshot",
        "DescribeDBInstances",
    ];
    let mut position = 0;
    for call in &calls {
        if position < expected.len() && call == expected[position] {
            position += 1;
        }
    }
    assert_eq!(position, expected.len(), "calls in order: {calls:?}");
    let instances = emulator.rds_query("Action=DescribeDBInstances");
    assert!(instances.contains("<DBInstanceIdentifier>steno-db-restored</DBInstanceIdentifier>"));
    assert!(
        instances.contains("<DBInstanceIdentifier>steno-db</DBInstanceIdentifier>"),
        "the source stays"
    );
    drop(process);
}
