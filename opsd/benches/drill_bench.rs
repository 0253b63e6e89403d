//! Benchmark: a whole opsd DR drill on PostgreSQL (snapshot with row counts, restore, verify,
//! teardown, record) against bare `pg_dump | pg_restore` of the same Steno data, side by side,
//! at several database sizes.
//!
//! Needs a PostgreSQL server: `DRILL_BENCH_POSTGRES_URL` or `STENO_TEST_POSTGRES_URL` (a role
//! that may create databases), and `pg_dump`/`pg_restore` on PATH. Sizes in MB with
//! `DRILL_BENCH_SIZES_MB` (default `10,100,1000`), runs per size with `DRILL_BENCH_RUNS`
//! (default 3). Run: `cargo bench -p opsd --bench drill_bench`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e_tests::steno_data::{
    create_postgres_database, fill_postgres, migrate_with_steno, postgres_database_size,
};
use opsd::config::Config;
use opsd::ops::drill::{run_drill, DrillOptions};
use opsd::store::Store;

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// `pg_dump -Fc | pg_restore` into a new database, then drop it: what a drill does, bare.
async fn bare_dump_and_restore(admin_url: &str, source_url: &str) -> Duration {
    let scratch = "drill_bench_bare_scratch";
    let scratch_url = create_postgres_database(admin_url, scratch).await;
    let started = Instant::now();
    let mut dump = Command::new("pg_dump")
        .args(["--format=custom", &format!("--dbname={source_url}")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pg_dump runs");
    let restore = Command::new("pg_restore")
        .args([
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            &format!("--dbname={scratch_url}"),
        ])
        .stdin(dump.stdout.take().unwrap())
        .status()
        .expect("pg_restore runs");
    assert!(dump.wait().unwrap().success() && restore.success());
    let elapsed = started.elapsed();
    drop_database(admin_url, scratch).await;
    elapsed
}

async fn drop_database(admin_url: &str, name: &str) {
    use sqlx::{Connection, Executor};
    let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
    admin
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await
        .unwrap();
}

/// Fills a new Steno database until it holds about `megabytes` MB; returns its URL and size.
async fn steno_database_of(admin_url: &str, megabytes: u64, work: &Path) -> (String, u64) {
    let name = format!("drill_bench_{megabytes}mb");
    let url = create_postgres_database(admin_url, &name).await;
    migrate_with_steno(&url, work);
    let target = megabytes * 1_000_000;
    let mut letters = 0u64;
    loop {
        let size = postgres_database_size(&url).await;
        if size >= target {
            return (url, size);
        }
        // About 4.5 kB per letter with its revisions, matter and document.
        let batch = ((target - size) / 4_500).clamp(100, 50_000);
        fill_postgres(&url, 20, letters + 1, batch, 2_000).await;
        letters += batch;
    }
}

fn main() {
    let admin_url = std::env::var("DRILL_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("STENO_TEST_POSTGRES_URL"))
        .expect("set DRILL_BENCH_POSTGRES_URL (or STENO_TEST_POSTGRES_URL) to a PostgreSQL server");
    let sizes: Vec<u64> = std::env::var("DRILL_BENCH_SIZES_MB")
        .unwrap_or_else(|_| "10,100,1000".into())
        .split(',')
        .map(|size| size.trim().parse().expect("sizes are whole megabytes"))
        .collect();
    let runs: usize = std::env::var("DRILL_BENCH_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(3);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    println!(
        "{:>8} {:>10} {:>12} {:>12} {:>7}   opsd phases (median run)",
        "size", "letters", "bare dump|restore", "opsd drill", "ratio"
    );
    for megabytes in sizes {
        runtime.block_on(async {
            let (url, size) = steno_database_of(&admin_url, megabytes, work.path()).await;
            let config_text = format!(
                "data_dir: data-{megabytes}\nservices:\n  steno: {{public_addr: 127.0.0.1:0}}\n\
                 databases:\n  steno:\n    kind: postgres\n    url: {url}\n    retention: 1s\n"
            );
            let config =
                Config::parse("bench.yaml", &config_text, work.path(), Path::new("steno")).unwrap();
            let store = Store::open_location(&config.store).await.unwrap();
            let database = &config.databases["steno"];
            let mut bare = Vec::new();
            let mut drill = Vec::new();
            let mut last_phases = String::new();
            let mut letters = String::new();
            for run in 0..runs {
                // Alternate which goes first so neither always gets the warmer cache.
                let order = if run % 2 == 0 {
                    [true, false]
                } else {
                    [false, true]
                };
                for bare_first in order {
                    if bare_first {
                        bare.push(bare_dump_and_restore(&admin_url, &url).await);
                    } else {
                        let started = Instant::now();
                        let report =
                            run_drill(&config, &store, database, &DrillOptions::default(), &|_| {})
                                .await
                                .unwrap();
                        drill.push(started.elapsed());
                        assert_eq!(
                            report.outcome,
                            opsd::core::drill::DrillOutcome::Passed,
                            "{:?}",
                            report.reasons
                        );
                        letters = report
                            .verification
                            .iter()
                            .find(|item| item.name == "rows in letters")
                            .map(|item| item.detail.split(' ').next().unwrap_or("").to_string())
                            .unwrap_or_default();
                        last_phases = report
                            .measurement
                            .phases
                            .iter()
                            .map(|phase| {
                                format!("{} {:.2} s", phase.phase, phase.millis as f64 / 1000.0)
                            })
                            .collect::<Vec<_>>()
                            .join(", ");
                    }
                }
            }
            let bare = median(bare);
            let drill = median(drill);
            println!(
                "{:>6} MB {:>10} {:>15.2} s {:>10.2} s {:>6.2}x   {last_phases}",
                size / 1_000_000,
                letters,
                bare.as_secs_f64(),
                drill.as_secs_f64(),
                drill.as_secs_f64() / bare.as_secs_f64()
            );
            store.close().await;
            drop_database(&admin_url, &format!("drill_bench_{megabytes}mb")).await;
        });
    }
}
