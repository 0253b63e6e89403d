//! The scale half of the bench: one daemon driving N rollouts on an in-process platform,
//! each scale in a child process of its own; tick and production-watch timings, store writes
//! and memory.

use super::*;

// ---------------------------------------------------------------------------------------------
// Scale
// ---------------------------------------------------------------------------------------------

/// What one scale's child reports.
pub(crate) struct ScaleResult {
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
    pub(crate) fn line(&self) -> String {
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

pub(crate) fn scale_part() {
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
    let store = argument("--store").unwrap_or_else(|| "sqlite".into());
    eprintln!("store: {store}");
    let executable = std::env::current_exe().expect("the bench's own path");
    let mut results = Vec::new();
    for rollouts in scales {
        eprintln!("scale: {rollouts} rollouts, {ticks} measured ticks");
        let output = std::process::Command::new(&executable)
            .args(["--child-scale", &rollouts.to_string(), "--ticks", &ticks])
            .args(["--store", &store])
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
pub(crate) struct BenchClock(pub(crate) AtomicI64);

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
pub(crate) struct InProcessPlatform {
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

pub(crate) fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) async fn run_scale(rollouts: usize, ticks: Option<usize>) -> ScaleResult {
    let counter = Arc::new(StatementCounter::default());
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(CountingLayer(counter.clone())),
    )
    .expect("the bench's subscriber");
    let measured_ticks = ticks.unwrap_or(240);
    let directory = tempfile::tempdir().expect("a temporary directory");
    let store_path = directory.path().join("opsd.db");
    let rss_before_kib = resident_kib();

    let postgres = match argument("--store").as_deref() {
        Some("postgres") => Some(fresh_postgres_database(rollouts).await),
        Some("sqlite") | None => None,
        Some(other) => panic!("--store takes sqlite or postgres, not {other}"),
    };
    let store = match &postgres {
        Some(url) => Store::open_postgres(url).await,
        None => Store::open(&store_path).await,
    }
    .expect("the store opens");
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
    // As `opsd up`: the store's write-ahead log checkpointed every second in the background.
    let (_stop_checkpoints, checkpoints_stop) = tokio::sync::watch::channel(false);
    tokio::spawn(daemon.clone().run_store_checkpoints(checkpoints_stop));

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
    let (sample_rows, store_bytes) = match &postgres {
        Some(url) => postgres_rows_and_size(url).await,
        None => (
            count_rows(&store_path, "rollout_samples"),
            ["", "-wal"]
                .iter()
                .map(|suffix| {
                    let mut path = store_path.as_os_str().to_owned();
                    path.push(suffix);
                    std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0)
                })
                .sum(),
        ),
    };

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

/// The server `SCALE_BENCH_POSTGRES_URL` (else `STENO_TEST_POSTGRES_URL`) names, with a new empty
/// database for this scale; its URL.
async fn fresh_postgres_database(rollouts: usize) -> String {
    use sqlx::{Connection, Executor};
    let admin_url = std::env::var("SCALE_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("STENO_TEST_POSTGRES_URL"))
        .expect("--store postgres needs SCALE_BENCH_POSTGRES_URL (or STENO_TEST_POSTGRES_URL)");
    let name = format!("opsd_scale_{rollouts}_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("the PostgreSQL server answers");
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
        .await
        .expect("an old bench database dropped");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("a database for the bench");
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (admin_url.as_str(), String::new()),
    };
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    format!("{server}/{name}{query}")
}

/// Per-second sample rows and the database's size on PostgreSQL.
async fn postgres_rows_and_size(url: &str) -> (i64, u64) {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(url)
        .await
        .expect("the bench database");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM rollout_samples")
        .fetch_one(&mut connection)
        .await
        .expect("a count");
    let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut connection)
        .await
        .expect("a size");
    (rows, u64::try_from(bytes).unwrap_or(0))
}

pub(crate) fn count_rows(store_path: &Path, table: &str) -> i64 {
    let connection = rusqlite::Connection::open(store_path).expect("the store file opens");
    connection
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .expect("a count")
}
