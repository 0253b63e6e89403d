//! Router overhead: Steno hit directly versus through opsd's router, side by side in one run.
//!
//! Run: `cargo bench -p opsd --bench router_bench` (options after `--`: `--seconds N` per round,
//! `--concurrency N`, `--rate N` for the fixed-rate latency rounds).
//!
//! One real Steno release (release build) runs under the local platform's supervisor; the router
//! sends all traffic to it. Rounds alternate direct and routed (three each) so both see the same
//! machine state. Closed-loop rounds measure throughput; fixed-rate rounds (below saturation)
//! measure the latency the router adds.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opsd::platform::local::{LocalPlatform, LocalServiceConfig};
use opsd::platform::{ReleaseRunner, ReleaseSpec, TrafficShifter, TrafficSplit};

struct Options {
    seconds: u64,
    concurrency: usize,
    rate: u64,
}

fn parse_options() -> Options {
    let mut options = Options {
        seconds: 5,
        concurrency: 16,
        rate: 500,
    };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    for pair in arguments.windows(2) {
        match pair[0].as_str() {
            "--seconds" => options.seconds = pair[1].parse().unwrap_or(options.seconds),
            "--concurrency" => options.concurrency = pair[1].parse().unwrap_or(options.concurrency),
            "--rate" => options.rate = pair[1].parse().unwrap_or(options.rate),
            _ => {}
        }
    }
    options
}

/// The release-profile Steno binary beside this benchmark's target directory, built if missing.
fn steno_binary() -> PathBuf {
    let bench = std::env::current_exe().expect("bench path");
    let profile_dir = bench
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf();
    let path = profile_dir.join("steno");
    if !path.exists() {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "-p", "steno", "--bin", "steno"])
            .current_dir(workspace)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building steno failed");
    }
    path
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Closed loop: `concurrency` workers send GET requests back to back for `seconds`.
async fn closed_loop(url: &str, concurrency: usize, seconds: u64) -> (f64, Vec<Duration>, u64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = url.to_string();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                match client.get(&url).send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        if let Ok((mut worker_latencies, worker_errors)) = worker.await {
            latencies.append(&mut worker_latencies);
            errors += worker_errors;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    (latencies.len() as f64 / elapsed, latencies, errors)
}

/// Fixed rate: one request every 1/rate s for `seconds`, whatever the answers' latency.
async fn fixed_rate(url: &str, rate: u64, seconds: u64) -> Vec<Duration> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    let mut interval = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = rate * seconds;
    let mut handles = Vec::with_capacity(total as usize);
    for _ in 0..total {
        interval.tick().await;
        let client = client.clone();
        let url = url.to_string();
        handles.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = client.get(&url).send().await.ok()?;
            let _ = response.bytes().await;
            Some(sent.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    for handle in handles {
        if let Ok(Some(latency)) = handle.await {
            latencies.push(latency);
        }
    }
    latencies.sort();
    latencies
}

fn micros(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1e6)
}

#[tokio::main]
async fn main() {
    let options = parse_options();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut service = LocalServiceConfig::new(
        "steno",
        vec![
            steno_binary().display().to_string(),
            "serve".into(),
            "--addr".into(),
            "127.0.0.1:{port}".into(),
        ],
    );
    service.base_env.insert(
        "STENO_DATA_DIR".into(),
        data_dir.path().join("steno").display().to_string(),
    );
    service.base_env.insert("STENO_LOG".into(), "warn".into());
    let platform: Arc<LocalPlatform> = LocalPlatform::start(
        vec![(service, "127.0.0.1:0".parse().expect("addr"))],
        data_dir.path().join("logs"),
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
    let direct = format!(
        "http://{}/login",
        platform
            .address_of(&release.release_id())
            .expect("release address")
    );
    let routed = format!(
        "http://{}/login",
        platform.public_address("steno").expect("public address")
    );

    println!(
        "# Router overhead: GET /login on one Steno release (release build), {} s rounds\n",
        options.seconds
    );
    let mut direct_rps = Vec::new();
    let mut routed_rps = Vec::new();
    let mut direct_latencies = Vec::new();
    let mut routed_latencies = Vec::new();
    for _ in 0..3 {
        let (rps, mut latencies, errors) =
            closed_loop(&direct, options.concurrency, options.seconds).await;
        assert_eq!(errors, 0, "direct requests failed");
        direct_rps.push(rps);
        direct_latencies.append(&mut latencies);
        let (rps, mut latencies, errors) =
            closed_loop(&routed, options.concurrency, options.seconds).await;
        assert_eq!(errors, 0, "routed requests failed");
        routed_rps.push(rps);
        routed_latencies.append(&mut latencies);
    }
    direct_latencies.sort();
    routed_latencies.sort();
    let direct_mean = direct_rps.iter().sum::<f64>() / direct_rps.len() as f64;
    let routed_mean = routed_rps.iter().sum::<f64>() / routed_rps.len() as f64;
    println!(
        "## Throughput, closed loop, {} concurrent connections (3 alternating rounds each)\n",
        options.concurrency
    );
    println!("| path | req/s per round | mean req/s | p50 µs | p99 µs |");
    println!("|---|---|---|---|---|");
    println!(
        "| direct | {} | {:.0} | {} | {} |",
        direct_rps
            .iter()
            .map(|rps| format!("{rps:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        direct_mean,
        micros(percentile(&direct_latencies, 0.5)),
        micros(percentile(&direct_latencies, 0.99))
    );
    println!(
        "| through router | {} | {:.0} | {} | {} |",
        routed_rps
            .iter()
            .map(|rps| format!("{rps:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        routed_mean,
        micros(percentile(&routed_latencies, 0.5)),
        micros(percentile(&routed_latencies, 0.99))
    );
    println!(
        "\nthroughput through the router: {:.1} % of direct (target ≥ 90 %)\n",
        100.0 * routed_mean / direct_mean
    );

    let mut direct_fixed = Vec::new();
    let mut routed_fixed = Vec::new();
    for _ in 0..3 {
        direct_fixed.append(&mut fixed_rate(&direct, options.rate, options.seconds).await);
        routed_fixed.append(&mut fixed_rate(&routed, options.rate, options.seconds).await);
    }
    direct_fixed.sort();
    routed_fixed.sort();
    println!(
        "## Added latency at a fixed {} req/s (3 alternating rounds each)\n",
        options.rate
    );
    println!("| path | requests | p50 µs | p90 µs | p99 µs |");
    println!("|---|---|---|---|---|");
    for (name, latencies) in [("direct", &direct_fixed), ("through router", &routed_fixed)] {
        println!(
            "| {name} | {} | {} | {} | {} |",
            latencies.len(),
            micros(percentile(latencies, 0.5)),
            micros(percentile(latencies, 0.9)),
            micros(percentile(latencies, 0.99))
        );
    }
    let added_p50 =
        percentile(&routed_fixed, 0.5).as_secs_f64() - percentile(&direct_fixed, 0.5).as_secs_f64();
    let added_p99 = percentile(&routed_fixed, 0.99).as_secs_f64()
        - percentile(&direct_fixed, 0.99).as_secs_f64();
    println!(
        "\nadded by the router: p50 {:.0} µs, p99 {:.0} µs (target p99 < 1000 µs)",
        added_p50 * 1e6,
        added_p99 * 1e6
    );
    platform.shutdown().await;
}
