//! Login flood benchmark: the latency of other routes (an authenticated document listing) while
//! a flood of wrong-password logins hits a served `steno`, against the same route with no flood.
//!
//! Run: `cargo bench -p steno --bench login_flood` (this build's `steno`), or
//! `cargo bench -p steno --bench login_flood -- --steno PATH` for any other `steno` binary, such
//! as an older release (options: `--seconds N` per phase, `--flood N` concurrent flooders).
//!
//! Phases, each `--seconds` long, one probe client sending requests back to back:
//! 1. idle: the probe alone;
//! 2. one client: the flooders log in to one real account with wrong passwords, from one address;
//! 3. many clients: each flood request names a new email and, through `X-Forwarded-For` (the
//!    server trusts 127.0.0.1 as its proxy), a new client address, so neither the per-account
//!    nor the per-client limit applies and only the bounded hashing protects the other routes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";
const EMAIL: &str = "avery@flood.test";

struct Options {
    steno: String,
    seconds: u64,
    flooders: usize,
}

fn parse_options() -> Options {
    let mut options = Options {
        steno: env!("CARGO_BIN_EXE_steno").to_string(),
        seconds: 10,
        flooders: 16,
    };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let mut index = 0;
    while index < arguments.len() {
        let value = arguments.get(index + 1).cloned().unwrap_or_default();
        match arguments[index].as_str() {
            "--steno" => options.steno = value,
            "--seconds" => options.seconds = value.parse().unwrap_or(options.seconds),
            "--flood" => options.flooders = value.parse().unwrap_or(options.flooders),
            _ => {
                index += 1;
                continue;
            }
        }
        index += 2;
    }
    options
}

/// A `steno serve` child, killed on drop.
struct Server {
    child: Child,
    base_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(binary: &str, data_dir: &std::path::Path) -> Server {
    let mut child = Command::new(binary)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("STENO_DATA_DIR", data_dir)
        .env("STENO_LOG", "error")
        .env("STENO_TRUSTED_PROXIES", "127.0.0.1")
        .env_remove("DATABASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(start) = line.find("http://") {
            let base_url = line[start..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            return Server { child, base_url };
        }
    }
    panic!("{binary} printed no address");
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct PhaseResult {
    name: &'static str,
    probe_ms: Vec<f64>,
    probe_errors: u64,
    flood_statuses: BTreeMap<u16, u64>,
    flood_errors: u64,
    seconds: f64,
}

async fn probe(
    client: reqwest::Client,
    url: String,
    token: String,
    stop: Arc<AtomicBool>,
) -> (Vec<f64>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match client.get(&url).bearer_auth(&token).send().await {
            Ok(response) if response.status().is_success() => {
                let _ = response.bytes().await;
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            _ => errors += 1,
        }
    }
    (latencies, errors)
}

#[derive(Clone, Copy, PartialEq)]
enum Flood {
    None,
    OneClient,
    ManyClients,
}

async fn run_phase(
    name: &'static str,
    base: &str,
    token: &str,
    flood: Flood,
    options: &Options,
) -> PhaseResult {
    let stop = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let flood_errors = Arc::new(AtomicU64::new(0));
    let sequence = Arc::new(AtomicU64::new(0));
    let mut flooders = Vec::new();
    if flood != Flood::None {
        for _ in 0..options.flooders {
            let client = reqwest::Client::new();
            let url = format!("{base}/v1/auth/login");
            let stop = stop.clone();
            let statuses = statuses.clone();
            let flood_errors = flood_errors.clone();
            let sequence = sequence.clone();
            flooders.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let number = sequence.fetch_add(1, Ordering::Relaxed);
                    let mut request = client.post(&url);
                    let email = if flood == Flood::ManyClients {
                        request = request.header(
                            "x-forwarded-for",
                            format!(
                                "10.{}.{}.{}",
                                (number >> 16) & 255,
                                (number >> 8) & 255,
                                number & 255
                            ),
                        );
                        format!("user{number}@flood.test")
                    } else {
                        EMAIL.to_string()
                    };
                    let body = json!({"email": email, "password": "wrong password here"});
                    match request.json(&body).send().await {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let _ = response.bytes().await;
                            *statuses.lock().unwrap().entry(status).or_default() += 1;
                        }
                        Err(_) => {
                            flood_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        // Let the flood reach a steady state before measuring.
        tokio::time::sleep(Duration::from_secs(1)).await;
        statuses.lock().unwrap().clear();
    }
    let started = Instant::now();
    let probe_stop = Arc::new(AtomicBool::new(false));
    let probe_task = tokio::spawn(probe(
        reqwest::Client::new(),
        format!("{base}/v1/documents"),
        token.to_string(),
        probe_stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    probe_stop.store(true, Ordering::Relaxed);
    let (mut probe_ms, probe_errors) = probe_task.await.expect("probe finishes");
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        let _ = flooder.await;
    }
    probe_ms.sort_by(|a, b| a.total_cmp(b));
    let flood_statuses = statuses.lock().unwrap().clone();
    PhaseResult {
        name,
        probe_ms,
        probe_errors,
        flood_statuses,
        flood_errors: flood_errors.load(Ordering::Relaxed),
        seconds,
    }
}

fn main() {
    let options = parse_options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let server = start_server(&options.steno, data_dir.path());
        let base = server.base_url.clone();
        let client = reqwest::Client::new();
        let session: Value = client
            .post(format!("{base}/v1/firms"))
            .json(&json!({"firm_name": "Flood Test LLP", "admin_name": "Avery", "admin_email": EMAIL, "admin_password": PASSWORD}))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("registration answer");
        let token = session["access_token"].as_str().expect("token").to_string();
        println!(
            "steno: {}\nprobe: GET /v1/documents (authenticated), one client back to back; flood: {} concurrent login clients; {} s per phase\n",
            options.steno, options.flooders, options.seconds
        );
        println!("| phase | probe requests | p50 ms | p95 ms | p99 ms | max ms | probe errors | flood req/s | flood answers |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for (name, flood) in [
            ("idle", Flood::None),
            ("flood, one client, one account", Flood::OneClient),
            ("flood, many clients and emails", Flood::ManyClients),
        ] {
            let result = run_phase(name, &base, &token, flood, &options).await;
            let flood_total: u64 = result.flood_statuses.values().sum();
            let answers: Vec<String> = result
                .flood_statuses
                .iter()
                .map(|(status, count)| format!("{count}× {status}"))
                .chain((result.flood_errors > 0).then(|| format!("{}× failed", result.flood_errors)))
                .collect();
            println!(
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.0} | {} |",
                result.name,
                result.probe_ms.len(),
                percentile(&result.probe_ms, 0.50),
                percentile(&result.probe_ms, 0.95),
                percentile(&result.probe_ms, 0.99),
                result.probe_ms.last().copied().unwrap_or(f64::NAN),
                result.probe_errors,
                flood_total as f64 / result.seconds,
                if answers.is_empty() { "—".to_string() } else { answers.join(", ") },
            );
        }
        drop(server);
    });
}
