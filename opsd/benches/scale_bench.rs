//! One opsd driving many concurrent rollouts, and the timeline and history after a year of
//! events, on the SQLite store (a file, as `opsd up` keeps it).
//!
//! Run: `cargo bench -p opsd --bench scale_bench` (options after `--`: `--scales 10,100,1000`,
//! `--ticks N` measured ticks per scale (240), `--days N` of history (365), `--part scale` or
//! `--part history` for one half). `SCALE_BENCH_QUICK=1` runs a small version in seconds
//! (scales 10 and 100, 40 ticks, 30 days) to check that the bench works.
//!
//! Scale: each scale runs in a child process of its own, so its memory is measured from a fresh
//! start. A daemon drives `N` services, each with one rollout of `Linear10PercentEvery1Minute`,
//! on an in-process platform whose releases start at once and whose metrics report 50 healthy
//! requests a second per release. The rollouts are deployed over the first simulated minute
//! (one tick per simulated second), so their step boundaries are spread over the minute as real
//! rollouts' would be. Then the clock moves 250 ms (the default `tick`) before each measured
//! tick: [`Daemon::tick`] observes, decides, persists and acts for every active rollout. The
//! production watch (`Daemon::watch_tick`, every service's stable health and alarm rules) is
//! timed on its own. Then a further simulated 15 s are ticked with the store's statements counted
//! (sqlx's statement events through a `tracing` layer, off while ticks are timed).
//! Memory is the process's resident set (`/proc/self/statm`) before the daemon starts and after
//! the measured ticks.
//!
//! History: one service's year of timeline events at a stated rate (plus three other services
//! at the same rate), rollouts with their decisions, audit entries and cost checks are written
//! straight into a store file; then the merged timeline (first page, and pages a month and eleven
//! months back), the rollout history and one rollout are read through the store and the daemon,
//! and the timeline's query plans are printed.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opsd::config::Config;
use opsd::control::{Actor, Clock, Daemon, DeployRequest, Platforms};
use opsd::core::plan::preset;
use opsd::core::release::ReleaseSpec;
use opsd::core::rollout::{Phase, RolloutState};
use opsd::core::traffic::{latency_bucket, SecondSample, TrafficSample};
use opsd::notify::Notifier;
use opsd::platform::dispatch::NoPlatformExtras;
use opsd::platform::factory::DatabasePlatforms;
use opsd::platform::{
    HealthStatus, MetricSource, PlatformError, ReleaseRunner, TrafficShifter, TrafficSplit,
};
use opsd::store::{Store, TimelineFilter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// The simulated time between measured ticks: `opsd up`'s default `tick`.
const TICK_MS: i64 = 250;
/// Simulated seconds of ticks whose store statements are counted.
const COUNTED_SECONDS: i64 = 15;
/// Requests a second each release reports.
const REQUESTS_PER_SECOND: u64 = 50;
/// The simulated start: 2026-06-01T00:00:00Z.
const START_MS: i64 = 1_780_272_000_000;

fn argument(name: &str) -> Option<String> {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|at| arguments.get(at + 1))
        .cloned()
}

fn quick() -> bool {
    std::env::var("SCALE_BENCH_QUICK").is_ok_and(|value| !value.is_empty() && value != "0")
}

fn main() {
    if let Some(rollouts) = argument("--child-scale") {
        let ticks = argument("--ticks").and_then(|text| text.parse().ok());
        let result = runtime().block_on(run_scale(rollouts.parse().expect("a count"), ticks));
        println!("RESULT {}", result.line());
        return;
    }
    let part = argument("--part").unwrap_or_default();
    if part.is_empty() || part == "scale" {
        scale_part();
    }
    if part.is_empty() || part == "history" {
        let days = argument("--days")
            .and_then(|text| text.parse().ok())
            .unwrap_or(if quick() { 30 } else { 365 });
        runtime().block_on(history_part(days));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

// ---------------------------------------------------------------------------------------------
// Scale
// ---------------------------------------------------------------------------------------------

/// What one scale's child reports.
struct ScaleResult {
    rollouts: usize,
    ticks: usize,
    tick_p50_ms: f64,
    tick_p99_ms: f64,
    tick_max_ms: f64,
    tick_mean_ms: f64,
    watch_p50_ms: f64,
    watch_p99_ms: f64,
    write_statements: u64,
    rows_written: u64,
    counted_wall_s: f64,
    rss_before_kib: u64,
    rss_after_kib: u64,
    baking: usize,
    sample_rows: i64,
    store_bytes: u64,
}

impl ScaleResult {
    fn line(&self) -> String {
        format!(
            "{} {} {:.3} {:.3} {:.3} {:.3} {:.3} {:.3} {} {} {:.3} {} {} {} {} {}",
            self.rollouts,
            self.ticks,
            self.tick_p50_ms,
            self.tick_p99_ms,
            self.tick_max_ms,
            self.tick_mean_ms,
            self.watch_p50_ms,
            self.watch_p99_ms,
            self.write_statements,
            self.rows_written,
            self.counted_wall_s,
            self.rss_before_kib,
            self.rss_after_kib,
            self.baking,
            self.sample_rows,
            self.store_bytes,
        )
    }

    fn parse(line: &str) -> ScaleResult {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let number = |index: usize| -> f64 { fields[index].parse().expect("a number") };
        ScaleResult {
            rollouts: number(0) as usize,
            ticks: number(1) as usize,
            tick_p50_ms: number(2),
            tick_p99_ms: number(3),
            tick_max_ms: number(4),
            tick_mean_ms: number(5),
            watch_p50_ms: number(6),
            watch_p99_ms: number(7),
            write_statements: number(8) as u64,
            rows_written: number(9) as u64,
            counted_wall_s: number(10),
            rss_before_kib: number(11) as u64,
            rss_after_kib: number(12) as u64,
            baking: number(13) as usize,
            sample_rows: number(14) as i64,
            store_bytes: number(15) as u64,
        }
    }
}

fn scale_part() {
    let scales: Vec<usize> = argument("--scales")
        .map(|text| {
            text.split(',')
                .map(|part| {
                    part.trim()
                        .parse()
                        .expect("--scales takes counts like 10,100")
                })
                .collect()
        })
        .unwrap_or_else(|| {
            if quick() {
                vec![10, 100]
            } else {
                vec![10, 100, 1000]
            }
        });
    let ticks = argument("--ticks").unwrap_or_else(|| if quick() { "40" } else { "240" }.into());
    let executable = std::env::current_exe().expect("the bench's own path");
    let mut results = Vec::new();
    for rollouts in scales {
        eprintln!("scale: {rollouts} rollouts, {ticks} measured ticks");
        let output = std::process::Command::new(&executable)
            .args(["--child-scale", &rollouts.to_string(), "--ticks", &ticks])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("the bench runs itself for one scale");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout.lines().find_map(|line| line.strip_prefix("RESULT ")) else {
            panic!(
                "the scale {rollouts} run failed ({}): {stdout}",
                output.status
            );
        };
        results.push(ScaleResult::parse(line));
    }
    print_scale_table(&results);
}

fn print_scale_table(results: &[ScaleResult]) {
    println!();
    println!("| rollouts | ticks | tick p50 ms | tick p99 ms | tick max ms | tick mean ms | production watch p50 / p99 ms | store writes per tick (statements / rows) | writes/s at a 250 ms tick (statements / rows) | RSS before daemon MiB | RSS after MiB | per-second sample rows / store MiB |");
    println!("|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|---|");
    let counted_ticks = (COUNTED_SECONDS * 1000 / TICK_MS) as f64;
    for result in results {
        let statements_per_tick = result.write_statements as f64 / counted_ticks;
        let rows_per_tick = result.rows_written as f64 / counted_ticks;
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} / {:.2} | {:.0} / {:.0} | {:.0} / {:.0} | {:.1} | {:.1} | {} / {:.1} |",
            result.rollouts,
            result.ticks,
            result.tick_p50_ms,
            result.tick_p99_ms,
            result.tick_max_ms,
            result.tick_mean_ms,
            result.watch_p50_ms,
            result.watch_p99_ms,
            statements_per_tick,
            rows_per_tick,
            statements_per_tick * 1000.0 / TICK_MS as f64,
            rows_per_tick * 1000.0 / TICK_MS as f64,
            result.rss_before_kib as f64 / 1024.0,
            result.rss_after_kib as f64 / 1024.0,
            result.sample_rows,
            result.store_bytes as f64 / 1024.0 / 1024.0,
        );
        if result.baking != result.rollouts {
            println!(
                "  warning: only {} of {} rollouts were baking at the end",
                result.baking, result.rollouts
            );
        }
    }
    for result in results {
        println!(
            "- {} rollouts: the counted ticks ({} simulated s) took {:.2} s of wall time: {:.0} write statements/s, {:.0} rows/s while ticking back to back",
            result.rollouts,
            COUNTED_SECONDS,
            result.counted_wall_s,
            result.write_statements as f64 / result.counted_wall_s,
            result.rows_written as f64 / result.counted_wall_s,
        );
    }
    if results.len() >= 2 {
        let first = &results[0];
        let last = &results[results.len() - 1];
        let grown = last.rss_after_kib as f64
            - last.rss_before_kib as f64
            - (first.rss_after_kib as f64 - first.rss_before_kib as f64);
        let per_rollout = grown / (last.rollouts - first.rollouts) as f64;
        println!(
            "- memory: {:.1} KiB more resident per rollout from {} to {} rollouts (growth over the process's own start)",
            per_rollout, first.rollouts, last.rollouts
        );
        for result in results {
            println!(
                "  {} rollouts: {:.1} MiB over the start",
                result.rollouts,
                (result.rss_after_kib as f64 - result.rss_before_kib as f64) / 1024.0
            );
        }
    }
}

/// The process's resident set in KiB.
fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("the resident field of statm");
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page_size / 1024
}

/// A clock the bench moves.
struct BenchClock(AtomicI64);

impl Clock for BenchClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl BenchClock {
    fn advance_ms(&self, milliseconds: i64) {
        self.0.fetch_add(milliseconds, Ordering::SeqCst);
    }
}

/// Releases that start at once, a split table, and the same healthy traffic for every release.
#[derive(Default)]
struct InProcessPlatform {
    running: Mutex<HashSet<String>>,
    splits: Mutex<HashMap<String, TrafficSplit>>,
}

#[async_trait::async_trait]
impl ReleaseRunner for InProcessPlatform {
    async fn ensure_running(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.running.lock().unwrap().insert(release.release_id());
        Ok(())
    }
    async fn stop(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.running.lock().unwrap().remove(&release.release_id());
        Ok(())
    }
    /// Every version reports the same one migration, so a rollout has none to run.
    async fn run_task(
        &self,
        _release: &ReleaseSpec,
        args: &[String],
        _timeout: Duration,
    ) -> Result<opsd::platform::TaskOutput, PlatformError> {
        let stdout = if args.first().map(String::as_str) == Some("migrations") {
            r#"{"migrations":[{"version":1,"name":"initial","class":"expand"}]}"#.to_string()
        } else {
            String::new()
        };
        Ok(opsd::platform::TaskOutput {
            success: true,
            ended: "exit status 0".into(),
            stdout,
            stderr: String::new(),
        })
    }
    async fn probe_health(&self, release: &ReleaseSpec) -> HealthStatus {
        if self.running.lock().unwrap().contains(&release.release_id()) {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy("not running".into())
        }
    }
    async fn running(&self) -> Vec<ReleaseSpec> {
        Vec::new()
    }
    async fn crashes(&self, _release: &ReleaseSpec) -> u64 {
        0
    }
}

#[async_trait::async_trait]
impl TrafficShifter for InProcessPlatform {
    async fn set_split(&self, service: &str, split: &TrafficSplit) -> Result<(), PlatformError> {
        self.splits
            .lock()
            .unwrap()
            .insert(service.to_string(), split.clone());
        Ok(())
    }
    async fn current_split(&self, service: &str) -> Result<Option<TrafficSplit>, PlatformError> {
        Ok(self.splits.lock().unwrap().get(service).cloned())
    }
}

#[async_trait::async_trait]
impl MetricSource for InProcessPlatform {
    async fn samples(
        &self,
        _service: &str,
        _release_id: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<SecondSample>, PlatformError> {
        let mut sample = TrafficSample {
            requests: REQUESTS_PER_SECOND,
            errors: 0,
            latency_total_ms: REQUESTS_PER_SECOND * 20,
            ..TrafficSample::default()
        };
        sample.latency_buckets[latency_bucket(20)] = REQUESTS_PER_SECOND;
        Ok((from_second..to_second)
            .map(|second| SecondSample { second, sample })
            .collect())
    }
}

/// Counts the store's write statements and rows while `counting` is set, from sqlx's
/// per-statement events (target `sqlx::query`).
#[derive(Default)]
struct StatementCounter {
    counting: AtomicBool,
    write_statements: AtomicU64,
    rows_written: AtomicU64,
}

struct CountingLayer(Arc<StatementCounter>);

impl<S: tracing::Subscriber> Layer<S> for CountingLayer {
    fn register_callsite(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if metadata.target() == "sqlx::query" {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, _context: Context<'_, S>) -> bool {
        metadata.target() == "sqlx::query" && self.0.counting.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &tracing::Event<'_>, _context: Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            summary: String,
            rows_affected: u64,
        }
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "summary" {
                    self.summary = value.to_string();
                }
            }
            fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
                if field.name() == "rows_affected" {
                    self.rows_affected = value;
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "summary" {
                    self.summary = format!("{value:?}").trim_matches('"').to_string();
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let verb = fields
            .summary
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        if matches!(verb.as_str(), "INSERT" | "UPDATE" | "DELETE" | "REPLACE") {
            self.0.write_statements.fetch_add(1, Ordering::Relaxed);
            self.0
                .rows_written
                .fetch_add(fields.rows_affected, Ordering::Relaxed);
        }
    }
}

fn service_name(index: usize) -> String {
    format!("svc-{index:04}")
}

/// opsd.yaml with `count` services on the local platform, each rolling out one step a minute.
fn config_text(count: usize) -> String {
    let mut text = String::from("services:\n");
    for index in 0..count {
        text.push_str(&format!(
            "  {}:\n    initial_version: v1\n    plan: Linear10PercentEvery1Minute\n",
            service_name(index)
        ));
    }
    text
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run_scale(rollouts: usize, ticks: Option<usize>) -> ScaleResult {
    let counter = Arc::new(StatementCounter::default());
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(CountingLayer(counter.clone())),
    )
    .expect("the bench's subscriber");
    let measured_ticks = ticks.unwrap_or(240);
    let directory = tempfile::tempdir().expect("a temporary directory");
    let store_path = directory.path().join("opsd.db");
    let rss_before_kib = resident_kib();

    let store = Store::open(&store_path).await.expect("the store opens");
    let config = Config::parse(
        "opsd.yaml",
        &config_text(rollouts),
        directory.path(),
        Path::new("/usr/bin/steno"),
    )
    .expect("the bench's configuration is valid");
    let platform = Arc::new(InProcessPlatform::default());
    let platforms = Platforms {
        runner: platform.clone(),
        shifter: platform.clone(),
        metrics: platform.clone(),
        alarms: Arc::new(NoPlatformExtras),
        cdn: Arc::new(NoPlatformExtras),
    };
    let databases = Arc::new(DatabasePlatforms::new(&config));
    let (notifier, _delivery) = Notifier::start(Vec::new(), Vec::new(), None);
    let clock = Arc::new(BenchClock(AtomicI64::new(START_MS)));
    let daemon = Daemon::start_with_clock(
        config,
        store.clone(),
        platforms,
        databases,
        notifier,
        clock.clone(),
    )
    .await
    .expect("the daemon starts");

    // Deploy over the first simulated minute, one tick a second.
    let per_second = rollouts.div_ceil(60);
    let mut deployed = 0;
    for _ in 0..60 {
        for _ in 0..per_second {
            if deployed == rollouts {
                break;
            }
            daemon
                .deploy(
                    &service_name(deployed),
                    DeployRequest {
                        version: "v2".into(),
                        ..DeployRequest::default()
                    },
                    &Actor::system(),
                )
                .await
                .expect("the deploy is accepted");
            deployed += 1;
        }
        clock.advance_ms(1000);
        daemon.tick().await;
        tokio::task::yield_now().await;
    }
    // Every canary started and baking.
    for _ in 0..8 {
        clock.advance_ms(TICK_MS);
        daemon.tick().await;
        tokio::task::yield_now().await;
    }

    let mut tick_ms = Vec::with_capacity(measured_ticks);
    let mut watch_ms = Vec::with_capacity(measured_ticks);
    for index in 0..measured_ticks {
        clock.advance_ms(TICK_MS);
        let started = Instant::now();
        daemon.tick().await;
        tick_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        daemon.watch_tick().await;
        watch_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::task::yield_now().await;
        if index % 40 == 39 {
            eprintln!(
                "  {rollouts} rollouts: {} ticks, last {:.1} ms",
                index + 1,
                tick_ms[index]
            );
        }
    }

    counter.counting.store(true, Ordering::SeqCst);
    tracing::callsite::rebuild_interest_cache();
    let started = Instant::now();
    for _ in 0..(COUNTED_SECONDS * 1000 / TICK_MS) {
        clock.advance_ms(TICK_MS);
        daemon.tick().await;
        daemon.watch_tick().await;
        tokio::task::yield_now().await;
    }
    let counted_wall_s = started.elapsed().as_secs_f64();
    counter.counting.store(false, Ordering::SeqCst);
    let rss_after_kib = resident_kib();

    let mut baking = 0;
    for index in 0..rollouts {
        let statuses = daemon
            .status(Some(&service_name(index)))
            .await
            .expect("a status");
        if statuses
            .first()
            .and_then(|status| status.active_rollout.as_ref())
            .is_some_and(|rollout| rollout.phase == Phase::Baking)
        {
            baking += 1;
        }
    }
    let sample_rows = count_rows(&store_path, "rollout_samples");
    let store_bytes = ["", "-wal"]
        .iter()
        .map(|suffix| {
            let mut path = store_path.as_os_str().to_owned();
            path.push(suffix);
            std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0)
        })
        .sum();

    let sorted = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values
    };
    let tick_mean_ms = tick_ms.iter().sum::<f64>() / tick_ms.len().max(1) as f64;
    let tick_ms = sorted(tick_ms);
    let watch_ms = sorted(watch_ms);
    ScaleResult {
        rollouts,
        ticks: measured_ticks,
        tick_p50_ms: percentile(&tick_ms, 0.50),
        tick_p99_ms: percentile(&tick_ms, 0.99),
        tick_max_ms: tick_ms.last().copied().unwrap_or(f64::NAN),
        tick_mean_ms,
        watch_p50_ms: percentile(&watch_ms, 0.50),
        watch_p99_ms: percentile(&watch_ms, 0.99),
        write_statements: counter.write_statements.load(Ordering::SeqCst),
        rows_written: counter.rows_written.load(Ordering::SeqCst),
        counted_wall_s,
        rss_before_kib,
        rss_after_kib,
        baking,
        sample_rows,
        store_bytes,
    }
}

fn count_rows(store_path: &Path, table: &str) -> i64 {
    let connection = rusqlite::Connection::open(store_path).expect("the store file opens");
    connection
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .expect("a count")
}

// ---------------------------------------------------------------------------------------------
// History: a year of events
// ---------------------------------------------------------------------------------------------

/// Timeline events a service records per day in this bench: one a minute.
const EVENTS_PER_DAY: i64 = 1_440;
/// Rollouts a service starts per day.
const ROLLOUTS_PER_DAY: i64 = 6;
/// Decisions per rollout (start, ten steps, the watch's end, the promotion).
const DECISIONS_PER_ROLLOUT: i64 = 12;
/// Audit entries per service per day (deploys, operator commands).
const AUDIT_PER_DAY: i64 = 10;
/// Services with a year of events: the one whose timeline is read and three others.
const HISTORY_SERVICES: usize = 4;

/// Writes `days` of history for [`HISTORY_SERVICES`] services straight into the store file.
fn seed_history(store_path: &Path, days: i64, end_ms: i64) {
    let start_ms = end_ms - days * 86_400_000;
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .expect("a time")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut connection = rusqlite::Connection::open(store_path).expect("the store file opens");
    let transaction = connection.transaction().expect("a transaction");
    {
        let mut insert_rollout = transaction
            .prepare(
                "INSERT INTO rollouts (id, service, stable_version, canary_version, plan_name, \
                 phase, state_json, revision, created_at, updated_at, finished_at, outcome) \
                 VALUES (?, ?, ?, ?, ?, 'promoted', ?, 2, ?, ?, ?, 'promoted')",
            )
            .unwrap();
        let mut insert_decision = transaction
            .prepare(
                "INSERT INTO decisions (rollout_id, seq, at, step_index, verdict, summary, \
                 evidence_json) VALUES (?, ?, ?, ?, 'advance', ?, ?)",
            )
            .unwrap();
        let mut insert_event = transaction
            .prepare(
                "INSERT INTO events (at, service, rollout_id, kind, message, data_json) \
                 VALUES (?, ?, ?, ?, ?, '{}')",
            )
            .unwrap();
        let mut insert_audit = transaction
            .prepare(
                "INSERT INTO audit_log (at, actor, role, action, target, reason, detail_json) \
                 VALUES (?, 'ci', 'operator', 'deploy', ?, 'release', '{}')",
            )
            .unwrap();
        let mut insert_cost_check = transaction
            .prepare(
                "INSERT INTO cost_checks (checked_at, today, state, forecast_over_budget, \
                 report_json) VALUES (?, ?, 'ok', 0, '{\"anomalies\":[]}')",
            )
            .unwrap();
        let plan = preset("Linear10PercentEvery1Minute").expect("a preset");
        let evidence = serde_json::json!({
            "canary": {"requests": 3000, "errors": 2},
            "baseline": {"requests": 27000, "errors": 30},
            "verdict": "pass",
        })
        .to_string();
        let kinds = [
            "decision_advance",
            "notification",
            "alarm_state",
            "stable_health",
        ];
        for service_index in 0..HISTORY_SERVICES {
            let service = format!("history-{service_index}");
            let release = |version: &str| ReleaseSpec {
                service: service.clone(),
                version: version.into(),
                env: Default::default(),
                env_from: Default::default(),
            };
            let rollout_every_ms = 86_400_000 / ROLLOUTS_PER_DAY;
            let rollouts = days * ROLLOUTS_PER_DAY;
            for index in 0..rollouts {
                let created_ms = start_ms + index * rollout_every_ms;
                let id = format!("{service}-{index:06}");
                let mut state = RolloutState::new(
                    id.clone(),
                    release(&format!("v{index}")),
                    release(&format!("v{}", index + 1)),
                    plan.clone(),
                    created_ms,
                );
                state.phase = Phase::Promoted;
                state.finished_at_ms = Some(created_ms + 15 * 60_000);
                insert_rollout
                    .execute(rusqlite::params![
                        id,
                        service,
                        format!("v{index}"),
                        format!("v{}", index + 1),
                        plan.name,
                        serde_json::to_string(&state).unwrap(),
                        time(created_ms),
                        time(created_ms + 15 * 60_000),
                        time(created_ms + 15 * 60_000),
                    ])
                    .unwrap();
                for seq in 1..=DECISIONS_PER_ROLLOUT {
                    insert_decision
                        .execute(rusqlite::params![
                            id,
                            seq,
                            time(created_ms + seq * 60_000),
                            seq - 1,
                            format!("step {seq}: canary 0.07 % errors against 0.11 %; advancing"),
                            evidence,
                        ])
                        .unwrap();
                }
            }
            let events = days * EVENTS_PER_DAY;
            let event_every_ms = 86_400_000 / EVENTS_PER_DAY;
            for index in 0..events {
                let at_ms = start_ms + index * event_every_ms + service_index as i64;
                let rollout_index = (at_ms - start_ms) / rollout_every_ms;
                let kind = kinds[(index % kinds.len() as i64) as usize];
                // Decisions and notifications of a rollout name it; the others do not.
                let rollout_id = (kind == "decision_advance" || kind == "notification")
                    .then(|| format!("{service}-{rollout_index:06}"));
                insert_event
                    .execute(rusqlite::params![
                        time(at_ms),
                        service,
                        rollout_id,
                        kind,
                        format!("{service}: {kind} number {index}"),
                    ])
                    .unwrap();
            }
            for index in 0..days * AUDIT_PER_DAY {
                insert_audit
                    .execute(rusqlite::params![
                        time(start_ms + index * 86_400_000 / AUDIT_PER_DAY),
                        service,
                    ])
                    .unwrap();
            }
        }
        for hour in 0..days * 24 {
            let at_ms = start_ms + hour * 3_600_000;
            insert_cost_check
                .execute(rusqlite::params![time(at_ms), &time(at_ms)[..10]])
                .unwrap();
        }
    }
    transaction.commit().expect("the history is written");
}

/// Times `runs` calls of `read`, returning the median and the slowest in ms and the last answer's size.
async fn time_reads<F, Fut>(runs: usize, mut read: F) -> (f64, f64, usize)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for _ in 0..runs {
        let started = Instant::now();
        size = read().await;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), times[times.len() - 1], size)
}

async fn history_part(days: i64) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let store_path = directory.path().join("opsd.db");
    let end_ms = START_MS;
    Store::open(&store_path)
        .await
        .expect("the store opens")
        .close()
        .await;
    let started = Instant::now();
    seed_history(&store_path, days, end_ms);
    let service = "history-0";
    let events_total = count_rows(&store_path, "events");
    println!();
    println!(
        "History: {days} days for {HISTORY_SERVICES} services, each with {EVENTS_PER_DAY} timeline events a day ({} for {service}, {events_total} in all), {ROLLOUTS_PER_DAY} rollouts a day with {DECISIONS_PER_ROLLOUT} decisions each, {AUDIT_PER_DAY} audit entries a day; {} cost checks; written in {:.1} s; store {:.0} MiB",
        days * EVENTS_PER_DAY,
        days * 24,
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&store_path).map(|meta| meta.len()).unwrap_or(0) as f64 / 1024.0 / 1024.0,
    );

    let store = Store::open(&store_path).await.expect("the store opens");
    let time = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).expect("a time");
    let filter =
        |service: Option<&str>, until_days_back: Option<i64>, audit: bool| TimelineFilter {
            service: service.map(str::to_string),
            until: until_days_back.map(|days_back| time(end_ms - days_back * 86_400_000)),
            limit: 200,
            include_audit: audit,
            ..TimelineFilter::default()
        };
    let deep = days - days / 12;
    let month = (days / 12).max(1);
    let cases: Vec<(String, TimelineFilter)> = vec![
        (
            format!("timeline of {service}, newest 200"),
            filter(Some(service), None, false),
        ),
        (
            format!("timeline of {service}, newest 200, operator (audit merged)"),
            filter(Some(service), None, true),
        ),
        (
            format!("timeline of {service}, 200 before {month} days back"),
            filter(Some(service), Some(month), false),
        ),
        (
            format!("timeline of {service}, 200 before {deep} days back"),
            filter(Some(service), Some(deep), false),
        ),
        (
            format!("timeline of {service}, 200 before {deep} days back, operator"),
            filter(Some(service), Some(deep), true),
        ),
        (
            "timeline, all services, newest 200".into(),
            filter(None, None, false),
        ),
        (
            format!("timeline, all services, 200 before {deep} days back"),
            filter(None, Some(deep), false),
        ),
        (
            format!("timeline of {service}, kind alarm_state, newest 200"),
            TimelineFilter {
                kind: Some("alarm_state".into()),
                ..filter(Some(service), None, false)
            },
        ),
        (
            format!("timeline of one rollout of {service}"),
            TimelineFilter {
                rollout_id: Some(format!("{service}-{:06}", days * ROLLOUTS_PER_DAY / 2)),
                ..filter(None, None, false)
            },
        ),
    ];
    println!();
    println!("| read | median ms | max ms | entries |");
    println!("|---|---:|---:|---:|");
    for (name, filter) in &cases {
        let (median, max, size) = time_reads(10, || async {
            store.timeline(filter).await.expect("the timeline").len()
        })
        .await;
        println!("| {name} | {median:.2} | {max:.2} | {size} |");
    }

    // The history (`opsd history`) and one rollout, through the daemon.
    let mut config_yaml = String::from("services:\n");
    for index in 0..HISTORY_SERVICES {
        config_yaml.push_str(&format!("  history-{index}:\n    initial_version: v1\n"));
    }
    let config = Config::parse(
        "opsd.yaml",
        &config_yaml,
        directory.path(),
        Path::new("/usr/bin/steno"),
    )
    .expect("the history configuration is valid");
    let platform = Arc::new(InProcessPlatform::default());
    let platforms = Platforms {
        runner: platform.clone(),
        shifter: platform.clone(),
        metrics: platform.clone(),
        alarms: Arc::new(NoPlatformExtras),
        cdn: Arc::new(NoPlatformExtras),
    };
    let databases = Arc::new(DatabasePlatforms::new(&config));
    let (notifier, _delivery) = Notifier::start(Vec::new(), Vec::new(), None);
    let clock = Arc::new(BenchClock(AtomicI64::new(end_ms)));
    let daemon =
        Daemon::start_with_clock(config, store.clone(), platforms, databases, notifier, clock)
            .await
            .expect("the daemon starts");
    for limit in [20, 500] {
        let (median, max, size) = time_reads(10, || async {
            daemon
                .history(service, limit)
                .await
                .expect("the history")
                .len()
        })
        .await;
        println!("| history of {service}, newest {limit} rollouts with their decisions | {median:.2} | {max:.2} | {size} |");
    }
    let old_rollout = format!("{service}-{:06}", 3);
    let (median, max, size) = time_reads(10, || async {
        daemon
            .rollout(&old_rollout)
            .await
            .expect("the rollout")
            .decisions
            .len()
    })
    .await;
    println!("| one rollout from {days} days back, with its decisions | {median:.2} | {max:.2} | {size} |");

    println!();
    println!("Query plans (EXPLAIN QUERY PLAN):");
    store.close().await;
    print_query_plans(&store_path, service, end_ms - deep * 86_400_000);
}

/// Prints the plans of the timeline's and the history's queries for `service`.
fn print_query_plans(store_path: &Path, service: &str, until_ms: i64) {
    let connection = rusqlite::Connection::open(store_path).expect("the store file opens");
    let until = chrono::DateTime::from_timestamp_millis(until_ms)
        .expect("a time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let queries = [
        (
            "merged timeline, one service, until",
            opsd::store::MERGED_TIMELINE_QUERY.to_string(),
            vec![
                rusqlite::types::Value::Text(service.into()),
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Text(until),
                rusqlite::types::Value::Integer(200),
                rusqlite::types::Value::Null,
                rusqlite::types::Value::Integer(1),
                rusqlite::types::Value::Null,
            ],
        ),
        (
            "history: rollouts of one service",
            "SELECT id FROM rollouts WHERE (?1 IS NULL OR service = ?1) \
             ORDER BY created_at DESC, rowid DESC LIMIT ?2"
                .to_string(),
            vec![
                rusqlite::types::Value::Text(service.into()),
                rusqlite::types::Value::Integer(20),
            ],
        ),
    ];
    for (name, sql, parameters) in queries {
        println!("- {name}:");
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("the plan");
        let rows = statement
            .query_map(rusqlite::params_from_iter(parameters), |row| {
                row.get::<_, String>(3)
            })
            .expect("the plan's rows");
        for row in rows {
            println!("    {}", row.expect("a plan row"));
        }
    }
}
