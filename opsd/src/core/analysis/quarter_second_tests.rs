//! Healthy canaries judged four times a second, as `opsd up` ticks, on narrow latencies that fall
//! into few histogram buckets (many ties): the error test's share of requests so far and the
//! Mann–Whitney test's normal approximation must keep the false-positive rate within the budget
//! at that pace too.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{compare_with_reference, AnalysisPolicy, Verdict};
use crate::core::traffic::TrafficSample;

/// Requests per second, the canary's weight, the error rate of both releases.
const REQUESTS_PER_SECOND: u32 = 100;
const CANARY_WEIGHT: f64 = 0.1;
const ERROR_RATE: f64 = 0.002;

/// A latency in ms: log-normal with a median of 20 ms and a spread of 0.5, so nearly every
/// request lands in the 10–25 ms or 25–50 ms bucket.
fn narrow_latency(random: &mut StdRng) -> u64 {
    let (u1, u2): (f64, f64) = (random.gen(), random.gen());
    let normal = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (20.0 * (0.5 * normal).exp()).round() as u64
}

/// The stable release's 15 minutes before the rollout (90,000 requests at 0.2 %), its error count
/// drawn from the normal approximation of the binomial.
fn recorded_reference(random: &mut StdRng) -> TrafficSample {
    let (u1, u2): (f64, f64) = (random.gen(), random.gen());
    let normal = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    let (requests, mean) = (90_000.0, 90_000.0 * ERROR_RATE);
    let errors = (mean + normal * (mean * (1.0 - ERROR_RATE)).sqrt()).round();
    TrafficSample {
        requests: requests as u64,
        errors: errors.max(0.0) as u64,
        ..TrafficSample::default()
    }
}

/// One five-minute step with a look every 250 ms; whether the analysis failed the canary.
fn healthy_step_fails(seed: u64, policy: &AnalysisPolicy) -> bool {
    let mut random = StdRng::seed_from_u64(seed);
    let reference = recorded_reference(&mut random);
    let mut canary = TrafficSample::default();
    let mut baseline = TrafficSample::default();
    let per_look = REQUESTS_PER_SECOND / 4;
    for look in 0..(300 * 4) {
        for _ in 0..per_look {
            let to_canary = random.gen::<f64>() < CANARY_WEIGHT;
            let is_error = random.gen::<f64>() < ERROR_RATE;
            let latency = narrow_latency(&mut random);
            let side = if to_canary {
                &mut canary
            } else {
                &mut baseline
            };
            side.record(latency, is_error);
        }
        let comparison = compare_with_reference(&canary, &baseline, Some(&reference), look, policy);
        if comparison.verdict == Verdict::Fail {
            return true;
        }
    }
    false
}

/// 1,000 healthy steps at the whole 1 % budget of a one-step rollout (the largest a step gets),
/// with the early-errors bets on: at most 0.5 % may fail, half the bound, so a drift towards it
/// shows. (The replay of `rollout_bench`, where the analysis failed 1 and 2 of 2,000 healthy
/// rollouts, looks at the same pace.)
#[test]
fn healthy_canaries_looked_at_four_times_a_second_stay_within_the_budget() {
    let plan = crate::core::plan::preset("Canary10Percent5Minutes")
        .expect("preset")
        .with_watch(std::time::Duration::ZERO);
    let policy = AnalysisPolicy::default().for_plan(&plan);
    assert_eq!(policy.alpha_per_step(), 0.01);
    assert!(policy.early_errors);
    let runs = 1_000_u64;
    let count = |range: std::ops::Range<u64>| {
        let policy = &policy;
        move || {
            range
                .filter(|run| healthy_step_fails(0x0DD5_u64 ^ (run << 20), policy))
                .count()
        }
    };
    let failed = std::thread::scope(|scope| {
        let first = scope.spawn(count(0..runs / 2));
        let second = count(runs / 2..runs)();
        first.join().expect("simulation thread") + second
    });
    eprintln!("healthy canaries, four looks a second: {failed} of {runs} failed");
    assert!(
        failed as f64 <= 0.005 * runs as f64,
        "{failed} of {runs} healthy rollouts failed"
    );
}
