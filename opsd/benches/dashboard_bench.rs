//! The dashboard's cost to the daemon, measured on a real `opsd up` with a real Steno release
//! under `opsd load` traffic and a rollout baking: the reconciler's tick with no dashboard
//! connected (when the overview is not computed at all), then with 50 dashboards on the live
//! feed, side by side in one run; the overview's computation with 1,000 rollouts and 100,000
//! timeline entries in the store, per request while no dashboard is open and by the feed;
//! how long a change takes to reach all 50 dashboards; and, timed by the client over HTTP, the
//! merged timeline (unfiltered, by service, and by a kind no entry has, the worst case: every
//! source is read to its end) and the baking rollout's traffic charts.
//!
//! Run: `cargo bench -p opsd --bench dashboard_bench` (options after `--`: `--seconds N` per
//! phase, default 30; `--clients N`, default 50).
//!
//! Timings come from opsd's own histograms at `/metrics` (`opsd_reconcile_tick_seconds`,
//! `opsd_dashboard_overview_seconds`), read before and after each phase; quantiles are the upper
//! bound of the bucket they fall in (buckets double from 50 µs).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e_tests::opsd_up::{start_opsd, write_config, Opsd};
use opsd::core::plan::{PlanStep, RolloutPlan};
use opsd::core::release::ReleaseSpec;
use opsd::core::rollout::{Phase, RolloutState};
use opsd::store::{NewEvent, NewRollout, Store};

const ROLLOUTS: usize = 1_000;
const EVENTS: usize = 100_000;

fn argument(name: &str, default: u64) -> u64 {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|at| arguments.get(at + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Fills the store `opsd up` will open with finished rollouts and timeline entries.
async fn seed_store(path: &Path) {
    let store = Store::open(path).await.expect("the store opens");
    let plan = RolloutPlan {
        name: "seeded".into(),
        steps: vec![PlanStep {
            canary_weight_percent: 100,
            bake: Duration::ZERO,
            checks: Vec::new(),
            approval: None,
        }],
        contract_migrations: Default::default(),
    };
    let release = |version: &str| ReleaseSpec {
        service: "steno".into(),
        version: version.into(),
        env: Default::default(),
        env_from: Default::default(),
    };
    let start = chrono::Utc::now() - chrono::Duration::days(30);
    for index in 0..ROLLOUTS {
        let id = format!("seeded-{index:05}");
        let created = start + chrono::Duration::minutes(index as i64);
        let mut state = RolloutState::new(
            id.clone(),
            release("v1"),
            release(&format!("v-seeded-{index}")),
            plan.clone(),
            created.timestamp_millis(),
        );
        state.phase = Phase::Aborted;
        state.finished_at_ms = Some(created.timestamp_millis() + 1_000);
        let state_json = serde_json::to_string(&state).unwrap();
        store
            .insert_rollout(NewRollout {
                id: id.clone(),
                service: "steno".into(),
                stable_version: "v1".into(),
                canary_version: state.canary.version.clone(),
                plan_name: "seeded".into(),
                phase: "starting".into(),
                state_json: state_json.clone(),
                created_at: created,
            })
            .await
            .unwrap();
        store
            .update_rollout(&id, 1, "aborted", &state_json, Some((created, "aborted")))
            .await
            .unwrap();
    }
    for index in 0..EVENTS {
        let rollout = index % ROLLOUTS;
        store
            .append_event(&NewEvent {
                at: start + chrono::Duration::seconds(index as i64 * 25),
                service: "steno".into(),
                rollout_id: Some(format!("seeded-{rollout:05}")),
                kind: "step".into(),
                message: format!("seeded event {index}"),
                data: serde_json::json!({"index": index}),
            })
            .await
            .unwrap();
    }
    store.close().await;
}

/// One histogram as scraped: bucket upper bounds with cumulative counts, sum and count.
#[derive(Clone, Default)]
struct Histogram {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn since(&self, before: &Histogram) -> Histogram {
        Histogram {
            buckets: self
                .buckets
                .iter()
                .zip(&before.buckets)
                .map(|((bound, after), (_, earlier))| (*bound, after - earlier))
                .collect(),
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        self.sum / self.count as f64 * 1000.0
    }

    /// The upper bound of the bucket holding quantile `q`, in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        let wanted = (self.count as f64 * q).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= wanted.max(1))
            .map_or(f64::INFINITY, |(bound, _)| bound * 1000.0)
    }
}

fn scrape(opsd: &Opsd, name: &str) -> Histogram {
    let text = reqwest::blocking::get(format!("{}/metrics", opsd.api_url))
        .unwrap()
        .text()
        .unwrap();
    let mut histogram = Histogram::default();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = |text: &str| text.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
        if let Some(bucket) = rest.strip_prefix("_bucket{le=\"") {
            let bound = bucket.split('"').next().unwrap();
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().unwrap()
            };
            histogram.buckets.push((bound, value(rest) as u64));
        } else if rest.starts_with("_sum") {
            histogram.sum = value(rest);
        } else if rest.starts_with("_count") {
            histogram.count = value(rest) as u64;
        }
    }
    histogram
}

fn gauge(opsd: &Opsd, name: &str) -> f64 {
    let text = reqwest::blocking::get(format!("{}/metrics", opsd.api_url))
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Measures both histograms over `seconds`.
fn phase(opsd: &Opsd, seconds: u64) -> (Histogram, Histogram) {
    let tick_before = scrape(opsd, "opsd_reconcile_tick_seconds");
    let overview_before = scrape(opsd, "opsd_dashboard_overview_seconds");
    std::thread::sleep(Duration::from_secs(seconds));
    (
        scrape(opsd, "opsd_reconcile_tick_seconds").since(&tick_before),
        scrape(opsd, "opsd_dashboard_overview_seconds").since(&overview_before),
    )
}

fn row(label: &str, histogram: &Histogram) {
    if histogram.count == 0 {
        println!("{label:<44} {:>7} (not computed)", 0);
        return;
    }
    println!(
        "{label:<44} {:>7} {:>10.3} {:>10.3} {:>10.3}",
        histogram.count,
        histogram.mean_ms(),
        histogram.quantile_ms(0.5),
        histogram.quantile_ms(0.99)
    );
}

/// A dashboard on the live feed: reads events until `stop`, noting when one first says
/// `wanted` after `armed` was set.
fn dashboard(
    opsd_api: String,
    token: String,
    stop: Arc<AtomicBool>,
    armed: Arc<Mutex<Option<(Instant, String)>>>,
    seen: Arc<Mutex<Vec<Duration>>>,
) {
    let response = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap()
        .get(format!("{opsd_api}/v1/events"))
        .bearer_auth(token)
        .send()
        .unwrap();
    let mut lines = BufReader::new(response);
    let mut line = String::new();
    let mut noted = false;
    while !stop.load(Ordering::Relaxed) {
        line.clear();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if noted || !line.starts_with("data:") {
            continue;
        }
        if let Some((since, wanted)) = armed.lock().unwrap().as_ref() {
            if line.contains(wanted.as_str()) {
                seen.lock().unwrap().push(since.elapsed());
                noted = true;
            }
        }
    }
}

/// How many times each page's request is timed.
const PAGE_REQUESTS: usize = 40;

/// Client-side times (ms) of `requests` (label, path), each [`PAGE_REQUESTS`] times.
fn request_timings(opsd: &Opsd, requests: Vec<(&str, String)>) -> Vec<(String, Vec<f64>)> {
    let client = reqwest::blocking::Client::new();
    let token = opsd.token();
    requests
        .into_iter()
        .map(|(label, path)| {
            let timings = (0..PAGE_REQUESTS)
                .map(|_| {
                    let started = Instant::now();
                    let response = client
                        .get(format!("{}{path}", opsd.api_url))
                        .bearer_auth(&token)
                        .send()
                        .unwrap();
                    assert!(
                        response.status().is_success(),
                        "{path}: {}",
                        response.status()
                    );
                    let _ = response.bytes().unwrap();
                    started.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            (label.to_string(), timings)
        })
        .collect()
}

/// Client-side times (ms) of the dashboard pages' heaviest reads, one after another.
fn page_timings(opsd: &Opsd) -> Vec<(String, Vec<f64>)> {
    let rollout = opsd.status()["service"]["active_rollout"]["id"]
        .as_str()
        .expect("the baking rollout")
        .to_string();
    let requests = vec![
        ("overview, the feed's copy", "/v1/overview".to_string()),
        ("timeline, 200 newest", "/v1/timeline?limit=200".to_string()),
        (
            "timeline, one service, 200 newest",
            "/v1/timeline?service=steno&limit=200".to_string(),
        ),
        (
            "timeline, a kind no entry has",
            "/v1/timeline?kind=no_such_kind".to_string(),
        ),
        (
            "traffic charts of the baking rollout",
            format!("/v1/rollouts/{rollout}/traffic"),
        ),
    ];
    request_timings(opsd, requests)
}

fn main() {
    let seconds = argument("--seconds", 30);
    let clients = argument("--clients", 50) as usize;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    std::fs::write(
        dir.path().join("slow.yaml"),
        "name: slow-bench\nsteps:\n  - weight: 10\n    bake: 1h\n  - weight: 100\nwatch: 0\n",
    )
    .unwrap();
    let seeding = Instant::now();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(seed_store(&dir.path().join("data/opsd.db")));
    eprintln!(
        "seeded {ROLLOUTS} rollouts and {EVENTS} timeline entries in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let opsd = start_opsd(dir.path());
    let mut load = opsd.load(100, (seconds * 3 + 60) as u32);
    let slow = dir.path().join("slow.yaml").display().to_string();
    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v2", "--plan", &slow]);
    assert_eq!(code, 0, "{out}");
    std::thread::sleep(Duration::from_secs(10));

    eprintln!("measuring {seconds} s with no dashboard connected");
    let (tick_alone, overview_alone) = phase(&opsd, seconds);
    let on_demand_before = scrape(&opsd, "opsd_dashboard_overview_seconds");
    let mut pages = request_timings(
        &opsd,
        vec![(
            "overview, computed per request (none open)",
            "/v1/overview".to_string(),
        )],
    );
    let overview_on_demand =
        scrape(&opsd, "opsd_dashboard_overview_seconds").since(&on_demand_before);

    let stop = Arc::new(AtomicBool::new(false));
    let armed = Arc::new(Mutex::new(None));
    let seen = Arc::new(Mutex::new(Vec::new()));
    // A token holds at most 64 live feeds: more dashboards get more (viewer) tokens.
    let tokens: Vec<String> = (0..clients.div_ceil(opsd::dashboard::feed::MAX_FEEDS_PER_TOKEN))
        .map(|index| opsd.create_token(&format!("dashboard-{index}"), "viewer"))
        .collect();
    let readers: Vec<_> = (0..clients)
        .map(|index| {
            let api = opsd.api_url.clone();
            let token = tokens[index / opsd::dashboard::feed::MAX_FEEDS_PER_TOKEN].clone();
            let (stop, armed, seen) = (stop.clone(), armed.clone(), seen.clone());
            std::thread::spawn(move || dashboard(api, token, stop, armed, seen))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let connected = gauge(&opsd, "opsd_dashboard_clients");
    eprintln!("measuring {seconds} s with {connected} dashboards connected");
    let (tick_watched, overview_watched) = phase(&opsd, seconds);

    pages.extend(page_timings(&opsd));

    // A change: the rollout is paused; every dashboard should see the overview say so.
    *armed.lock().unwrap() = Some((Instant::now(), "\"phase\":\"paused\"".to_string()));
    let paused_at = Instant::now();
    let (code, out) = opsd.cli(&["pause", "steno", "--reason", "benchmark"]);
    assert_eq!(code, 0, "{out}");
    let command_took = paused_at.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().len() < clients && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut delays = seen.lock().unwrap().clone();
    delays.sort();
    stop.store(true, Ordering::Relaxed);
    let _ = load.kill();
    let _ = load.wait();
    drop(opsd);
    for reader in readers {
        let _ = reader.join();
    }

    println!();
    println!(
        "dashboard cost, {ROLLOUTS} rollouts and {EVENTS} timeline entries in the store, one rollout baking, 100 rps"
    );
    println!(
        "{:<44} {:>7} {:>10} {:>10} {:>10}",
        "", "count", "mean ms", "p50 ms ≤", "p99 ms ≤"
    );
    row("reconcile tick, no dashboard", &tick_alone);
    row(
        &format!("reconcile tick, {clients} dashboards"),
        &tick_watched,
    );
    row("overview computation, no dashboard", &overview_alone);
    row(
        "overview computation, per /v1/overview",
        &overview_on_demand,
    );
    row(
        &format!("overview computation, {clients} dashboards"),
        &overview_watched,
    );
    println!(
        "tick mean with {clients} dashboards / without: {:.2}",
        tick_watched.mean_ms() / tick_alone.mean_ms()
    );
    println!();
    println!(
        "{:<44} {:>7} {:>10} {:>10} {:>10}",
        "API request, timed by the client", "count", "mean ms", "p50 ms", "max ms"
    );
    for (label, timings) in &pages {
        let mut sorted = timings.clone();
        sorted.sort_by(f64::total_cmp);
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        println!(
            "{label:<44} {:>7} {mean:>10.2} {:>10.2} {:>10.2}",
            sorted.len(),
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1]
        );
    }
    if let (Some(first), Some(last)) = (delays.first(), delays.last()) {
        println!(
            "a pause reached {} of {clients} dashboards: first after {} ms, last after {} ms (the command itself took {} ms)",
            delays.len(),
            first.as_millis(),
            last.as_millis(),
            command_took.as_millis()
        );
    } else {
        println!("a pause reached none of the {clients} dashboards within 10 s");
    }
}
