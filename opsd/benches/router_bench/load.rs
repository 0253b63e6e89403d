//! The router benchmark's load: closed-loop rounds (throughput) and fixed-rate rounds (latency
//! below saturation) against one URL, with latencies sorted for percentiles.

use std::time::{Duration, Instant};

pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Closed loop: `concurrency` workers send GET requests back to back for `seconds`.
pub async fn closed_loop(url: &str, concurrency: usize, seconds: u64) -> (f64, Vec<Duration>, u64) {
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

/// Fixed rate: one request every 1/rate s for `seconds`, whatever the answers' latency; the
/// latencies of the successful requests and the number that failed.
pub async fn fixed_rate(url: &str, rate: u64, seconds: u64) -> (Vec<Duration>, u64) {
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
            if !response.status().is_success() {
                return None;
            }
            let _ = response.bytes().await;
            Some(sent.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for handle in handles {
        match handle.await {
            Ok(Some(latency)) => latencies.push(latency),
            _ => errors += 1,
        }
    }
    latencies.sort();
    (latencies, errors)
}
