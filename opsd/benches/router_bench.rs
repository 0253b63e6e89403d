//! Router overhead: Steno hit directly, through opsd's router and through nginx, side by side in
//! one run.
//!
//! Run: `cargo bench -p opsd --bench router_bench` (options after `--`: `--seconds N` per round,
//! `--rounds N`, `--concurrency N`, `--rate N` for the fixed-rate latency rounds).
//!
//! One real Steno release (release build) runs under the local platform's supervisor; the
//! router, an `opsd router` process as `opsd up` runs it, sends all traffic to it. When nginx is installed (on `PATH` or `/usr/sbin/nginx`) the benchmark
//! starts one (one worker, keep-alive upstream connections) in front of the same Steno process.
//! Rounds alternate direct, router and nginx so all see the same machine state. Closed-loop rounds
//! measure throughput; fixed-rate rounds (below saturation) measure the latency each proxy adds.
//! The bar (docs/requirements.md, R-QUALITY-5): the router's throughput at least nginx's and its
//! added p99 at most nginx's.

#[path = "router_bench/load.rs"]
mod load;
#[path = "router_bench/nginx.rs"]
mod nginx;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use opsd::platform::local::{FailStaticSetup, LocalPlatform, LocalServiceConfig};
use opsd::platform::secrets::Secrets;
use opsd::platform::{ReleaseRunner, ReleaseSpec, TrafficShifter, TrafficSplit};

use load::{closed_loop, fixed_rate, percentile};

struct Options {
    seconds: u64,
    rounds: usize,
    concurrency: usize,
    rate: u64,
}

fn parse_options() -> Options {
    let mut options = Options {
        seconds: 5,
        rounds: 3,
        concurrency: 16,
        rate: 500,
    };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    for pair in arguments.windows(2) {
        match pair[0].as_str() {
            "--seconds" => options.seconds = pair[1].parse().unwrap_or(options.seconds),
            "--rounds" => options.rounds = pair[1].parse().unwrap_or(options.rounds),
            "--concurrency" => options.concurrency = pair[1].parse().unwrap_or(options.concurrency),
            "--rate" => options.rate = pair[1].parse().unwrap_or(options.rate),
            _ => {}
        }
    }
    options.rounds = options.rounds.max(1);
    options
}

/// One way to reach Steno and what its rounds measured.
struct Path {
    name: &'static str,
    url: String,
    round_rps: Vec<f64>,
    closed_latencies: Vec<Duration>,
    fixed_latencies: Vec<Duration>,
    fixed_errors: u64,
}

impl Path {
    fn new(name: &'static str, url: String) -> Path {
        Path {
            name,
            url,
            round_rps: Vec::new(),
            closed_latencies: Vec::new(),
            fixed_latencies: Vec::new(),
            fixed_errors: 0,
        }
    }

    fn mean_rps(&self) -> f64 {
        self.round_rps.iter().sum::<f64>() / self.round_rps.len().max(1) as f64
    }

    /// How much later than direct this path answers at the fixed rate, at quantile `q`, in µs.
    fn added_micros(&self, direct: &Path, q: f64) -> f64 {
        (percentile(&self.fixed_latencies, q).as_secs_f64()
            - percentile(&direct.fixed_latencies, q).as_secs_f64())
            * 1e6
    }
}

/// The release-profile binary `name` (a workspace package of the same name) beside this
/// benchmark's target directory, built if missing. Build both first
/// (`cargo build --release -p steno -p opsd`) so a stale one is not measured.
fn workspace_binary(name: &str) -> PathBuf {
    let bench = std::env::current_exe().expect("bench path");
    let profile_dir = bench
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf();
    let path = profile_dir.join(name);
    if !path.exists() {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", name, "--bin", name])
            .current_dir(workspace)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {name} failed");
    }
    path
}

/// One Steno release under the local platform as `opsd up` runs it (the service's router is an
/// `opsd router` process of its own), with all of the router's traffic going to it.
async fn start_steno(data_dir: &std::path::Path) -> (Arc<LocalPlatform>, ReleaseSpec) {
    let mut service = LocalServiceConfig::new(
        "steno",
        vec![
            workspace_binary("steno").display().to_string(),
            "serve".into(),
            "--addr".into(),
            "127.0.0.1:{port}".into(),
        ],
    );
    service.base_env.insert(
        "STENO_DATA_DIR".into(),
        data_dir.join("steno").display().to_string(),
    );
    service.base_env.insert("STENO_LOG".into(), "warn".into());
    let setup = FailStaticSetup {
        program: workspace_binary("opsd"),
        state_dir: data_dir.join("data-plane"),
    };
    let platform: Arc<LocalPlatform> = LocalPlatform::start_fail_static(
        vec![(service, "127.0.0.1:0".parse().expect("addr"))],
        data_dir.join("logs"),
        Secrets::default(),
        &setup,
    )
    .await
    .expect("platform starts");
    let release = ReleaseSpec {
        service: "steno".into(),
        version: "v1".into(),
        env: Default::default(),
        env_from: Default::default(),
    };
    platform
        .ensure_running(&release)
        .await
        .expect("steno starts");
    platform
        .set_split("steno", &TrafficSplit::all_to(&release.release_id()))
        .await
        .expect("split");
    (platform, release)
}

/// The machine's load averages and core count, to read the figures against.
fn machine_state() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |cores| cores.get());
    format!("{cores} cores, load average (1, 5, 15 min) {load}")
}

fn micros(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1e6)
}

async fn run_closed_rounds(paths: &mut [Path], options: &Options) {
    for _ in 0..options.rounds {
        for path in paths.iter_mut() {
            let (rps, mut latencies, errors) =
                closed_loop(&path.url, options.concurrency, options.seconds).await;
            assert_eq!(errors, 0, "requests {} failed", path.name);
            path.round_rps.push(rps);
            path.closed_latencies.append(&mut latencies);
        }
    }
    for path in paths.iter_mut() {
        path.closed_latencies.sort();
    }
}

async fn run_fixed_rounds(paths: &mut [Path], options: &Options) {
    for _ in 0..options.rounds {
        for path in paths.iter_mut() {
            let (mut latencies, errors) =
                fixed_rate(&path.url, options.rate, options.seconds).await;
            path.fixed_latencies.append(&mut latencies);
            path.fixed_errors += errors;
        }
    }
    for path in paths.iter_mut() {
        path.fixed_latencies.sort();
    }
}

fn print_throughput(paths: &[Path], options: &Options) {
    println!(
        "## Throughput, closed loop, {} concurrent connections ({} alternating rounds each)\n",
        options.concurrency, options.rounds
    );
    println!("| path | req/s per round | mean req/s | % of direct | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|---|");
    let direct_rps = paths[0].mean_rps();
    for path in paths {
        let rounds: Vec<String> = path
            .round_rps
            .iter()
            .map(|rps| format!("{rps:.0}"))
            .collect();
        println!(
            "| {} | {} | {:.0} | {:.1} | {} | {} |",
            path.name,
            rounds.join(", "),
            path.mean_rps(),
            100.0 * path.mean_rps() / direct_rps,
            micros(percentile(&path.closed_latencies, 0.5)),
            micros(percentile(&path.closed_latencies, 0.99))
        );
    }
    println!();
}

fn print_latency(paths: &[Path], options: &Options) {
    println!(
        "## Latency at a fixed {} req/s ({} alternating rounds each)\n",
        options.rate, options.rounds
    );
    println!(
        "| path | requests | failed | p50 µs | p90 µs | p99 µs | added p50 µs | added p99 µs |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let direct = &paths[0];
    for path in paths {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.0} |",
            path.name,
            path.fixed_latencies.len(),
            path.fixed_errors,
            micros(percentile(&path.fixed_latencies, 0.5)),
            micros(percentile(&path.fixed_latencies, 0.9)),
            micros(percentile(&path.fixed_latencies, 0.99)),
            path.added_micros(direct, 0.5),
            path.added_micros(direct, 0.99)
        );
    }
    println!();
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT MET"
    }
}

/// The bar against nginx: throughput at least nginx's, added p99 at most nginx's.
fn print_verdict(direct: &Path, router: &Path, nginx: Option<&Path>) {
    let Some(nginx) = nginx else {
        println!("nginx not found: the comparison was not run (install nginx, e.g. scripts/install-test-deps.sh)");
        println!(
            "router: {:.0} req/s ({:.1} % of direct), added p99 {:.0} µs; bar against nginx: NOT CHECKED",
            router.mean_rps(),
            100.0 * router.mean_rps() / direct.mean_rps(),
            router.added_micros(direct, 0.99)
        );
        return;
    };
    println!(
        "router throughput {:.0} req/s ≥ nginx's {:.0} req/s ({:+.1} %): {}",
        router.mean_rps(),
        nginx.mean_rps(),
        100.0 * (router.mean_rps() / nginx.mean_rps() - 1.0),
        verdict(router.mean_rps() >= nginx.mean_rps())
    );
    let (router_added, nginx_added) = (
        router.added_micros(direct, 0.99),
        nginx.added_micros(direct, 0.99),
    );
    println!(
        "router added p99 {router_added:.0} µs ≤ nginx's {nginx_added:.0} µs: {}",
        verdict(router_added <= nginx_added)
    );
}

#[tokio::main]
async fn main() {
    let options = parse_options();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (platform, release) = start_steno(data_dir.path()).await;
    let steno = platform
        .address_of(&release.release_id())
        .expect("release address");
    let router = platform.public_address("steno").expect("public address");
    let nginx = match nginx::find_binary() {
        Some(binary) => Some(
            nginx::Nginx::start(&binary, steno)
                .await
                .unwrap_or_else(|error| panic!("nginx did not start: {error}")),
        ),
        None => None,
    };

    println!(
        "# Router overhead: GET /login on one Steno release (release build), {} s rounds\n",
        options.seconds
    );
    println!("machine at the start: {}\n", machine_state());
    let mut paths = vec![
        Path::new("direct", format!("http://{steno}/login")),
        Path::new("through router", format!("http://{router}/login")),
    ];
    match &nginx {
        Some(nginx) => paths.push(Path::new(
            "through nginx",
            format!("http://{}/login", nginx.address()),
        )),
        None => println!("nginx not found (PATH, /usr/sbin/nginx): the comparison was not run\n"),
    }
    run_closed_rounds(&mut paths, &options).await;
    print_throughput(&paths, &options);
    run_fixed_rounds(&mut paths, &options).await;
    print_latency(&paths, &options);
    print_verdict(&paths[0], &paths[1], paths.get(2));
    println!("\nmachine at the end: {}", machine_state());
    drop(nginx);
    platform.shutdown().await;
}
