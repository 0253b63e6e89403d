//! One opsd driving many concurrent rollouts, and the timeline and history after a year of
//! events, on the SQLite store (a file, as `opsd up` keeps it).
//!
//! Run: `cargo bench -p opsd --bench scale_bench` (options after `--`: `--scales 10,100,1000`,
//! `--ticks N` measured ticks per scale (240), `--days N` of history (365), `--part scale` or
//! `--part history` for one half, `--store postgres` for the scale half on a new database of the
//! PostgreSQL server `SCALE_BENCH_POSTGRES_URL` (else `STENO_TEST_POSTGRES_URL`) names instead of
//! a SQLite file). `SCALE_BENCH_QUICK=1` runs a small version in seconds
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
//! timed on its own. As in `opsd up`, the store's write-ahead log is checkpointed every (real)
//! second in the background. Then a further simulated 15 s are ticked with the store's statements counted
//! (sqlx's statement events through a `tracing` layer, off while ticks are timed).
//! Memory is the process's resident set (`/proc/self/statm`) before the daemon starts and after
//! the measured ticks.
//!
//! History: one service's year of timeline events at a stated rate (plus three other services
//! at the same rate), rollouts with their decisions, audit entries and cost checks are written
//! straight into a store file; then the merged timeline (first page, and pages a month and eleven
//! months back), the rollout history and one rollout are read through the store and the daemon,
//! and the timeline's query plans are printed.
//!
//! The scale half is `scale_bench/scale.rs`, the history half `scale_bench/history.rs`; this file
//! holds what both share: the options, the runtime and the imports.

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

#[path = "scale_bench/history.rs"]
mod history;
#[path = "scale_bench/scale.rs"]
mod scale;

use history::history_part;
use scale::{run_scale, scale_part};

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
