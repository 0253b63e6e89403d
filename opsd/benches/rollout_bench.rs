//! Rollback speed and false-rollback rate, measured by replaying generated traffic through the
//! pure rollout core, side by side with a CodeDeploy-style alarm policy on the same traffic.
//!
//! Run: `cargo bench -p opsd --bench rollout_bench` (options after `--`: `--runs N`, `--seed N`).
//!
//! Traffic model: Poisson arrivals at 100 requests per second, split by the current canary weight
//! (each request independently); each request fails with its release's error probability; latency
//! is log-normal with a median of 20 ms (sigma 0.5) plus the release's added latency. opsd ticks
//! every 250 ms, as `opsd up` does; a weight decided at one tick applies from the next.
//! The CodeDeploy-style policy is a CloudWatch alarm on the canary's error rate above 1 % over
//! 1-minute periods, 1 evaluation period, evaluated when each minute completes (no extra
//! CloudWatch delivery delay is added, which flatters it).

use std::collections::BTreeMap;

use opsd::core::alarms::parse_alarm_file;
use opsd::core::plan::{preset, RolloutPlan};
use opsd::core::rollout::{
    step, Action, DecisionKind, Observation, Phase, Readiness, RolloutPolicy, RolloutState,
};
use opsd::core::traffic::{SecondSample, TrafficSample};
use opsd::platform::{HealthStatus, ReleaseSpec};

/// splitmix64: a small, good, seedable generator.
struct Random(u64);

impl Random {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn poisson(&mut self, mean: f64) -> u64 {
        let limit = (-mean).exp();
        let mut product = self.uniform();
        let mut count = 0;
        while product > limit {
            product *= self.uniform();
            count += 1;
        }
        count
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[derive(Clone, Copy)]
struct Release {
    error_rate: f64,
    added_latency_ms: f64,
}

const HEALTHY: Release = Release {
    error_rate: 0.002,
    added_latency_ms: 0.0,
};

struct RunResult {
    outcome: Phase,
    /// Seconds from the canary's first failed request to the rollback decision (weight 0).
    seconds_from_first_bad_to_rollback: Option<f64>,
    /// Seconds from the canary taking traffic to the rollback decision.
    seconds_to_rollback: Option<f64>,
    /// Bad canary responses (failed, or slowed) served to users before the rollback.
    bad_requests_served: u64,
}

const TICK_MS: i64 = 250;
const TOTAL_RPS: f64 = 100.0;

fn simulate(plan: &RolloutPlan, policy: &RolloutPolicy, canary: Release, seed: u64) -> RunResult {
    let mut random = Random(seed);
    let release = |version: &str| ReleaseSpec {
        service: "steno".into(),
        version: version.into(),
        env: BTreeMap::new(),
        env_from: Default::default(),
    };
    let start_ms = 1_800_000_000_000;
    let mut state = RolloutState::new(
        "bench".into(),
        release("v1"),
        release("v2"),
        plan.clone(),
        start_ms,
    );
    let (next, _) = step(
        &state,
        &Observation {
            now_ms: start_ms,
            canary_readiness: Readiness::Ready,
            ..Observation::default()
        },
        policy,
    );
    state = next;
    let mut now_ms = start_ms;
    let mut canary_step = TrafficSample::default();
    let mut baseline_step = TrafficSample::default();
    let mut series: Vec<SecondSample> = Vec::new();
    let mut current_second = TrafficSample::default();
    let mut first_bad_ms: Option<i64> = None;
    let mut bad_served = 0u64;
    let limit_ms = start_ms
        + (plan
            .steps
            .iter()
            .map(|step| step.bake.as_millis() as i64)
            .sum::<i64>())
        + 120_000;

    while !state.phase.is_terminal() && now_ms < limit_ms {
        let weight = f64::from(state.canary_weight_percent()) / 100.0;
        let arrivals = random.poisson(TOTAL_RPS * TICK_MS as f64 / 1000.0);
        for _ in 0..arrivals {
            let to_canary = random.uniform() < weight;
            let release = if to_canary { canary } else { HEALTHY };
            let is_error = random.uniform() < release.error_rate;
            let latency =
                (20.0 * (0.5 * random.normal()).exp() + release.added_latency_ms).round() as u64;
            if to_canary {
                canary_step.record(latency, is_error);
                current_second.record(latency, is_error);
                // A bad response: a failure, or a slow answer from a slowed release.
                if is_error || canary.added_latency_ms > 0.0 {
                    bad_served += 1;
                    first_bad_ms.get_or_insert(now_ms);
                }
            } else {
                baseline_step.record(latency, is_error);
            }
        }
        now_ms += TICK_MS;
        let elapsed_ms = now_ms - start_ms;
        if elapsed_ms % 1000 == 0 {
            series.push(SecondSample {
                second: now_ms / 1000 - 1,
                sample: current_second,
            });
            current_second = TrafficSample::default();
        }
        let step_before = (state.step_index, state.step_started_at_ms);
        let (next, actions) = step(
            &state,
            &Observation {
                now_ms,
                canary_readiness: Readiness::Ready,
                canary_traffic: canary_step,
                baseline_traffic: baseline_step,
                canary_series: series.clone(),
                canary_health: Some(HealthStatus::Healthy),
                check_results: actions_checks(&state),
                ..Observation::default()
            },
            policy,
        );
        let rolled_back = actions.iter().any(|action| matches!(action, Action::Record(decision) if decision.kind == DecisionKind::RollBack));
        state = next;
        if rolled_back {
            break;
        }
        if (state.step_index, state.step_started_at_ms) != step_before {
            canary_step = TrafficSample::default();
            baseline_step = TrafficSample::default();
        }
        if series.len() > 900 {
            series.drain(..series.len() - 900);
        }
    }
    let rolled_back_at = (state.phase == Phase::RolledBack).then_some(now_ms);
    RunResult {
        outcome: state.phase,
        seconds_from_first_bad_to_rollback: rolled_back_at
            .zip(first_bad_ms)
            .map(|(end, first)| (end - first) as f64 / 1000.0),
        seconds_to_rollback: rolled_back_at.map(|end| (end - start_ms) as f64 / 1000.0),
        bad_requests_served: bad_served,
    }
}

/// What the CodeDeploy-style policy does with the same traffic (the same random stream).
struct CodeDeployResult {
    rollback_second: Option<u64>,
    bad_requests_served: u64,
}

/// The plan's weights over time, with a CloudWatch-style alarm: error rate above 1 % over a
/// 1-minute period, evaluated as each minute completes; ALARM rolls back. It draws random numbers
/// in the same order as [`simulate`], so both see the same requests while their weights agree.
fn simulate_codedeploy(plan: &RolloutPlan, canary: Release, seed: u64) -> CodeDeployResult {
    let mut random = Random(seed);
    let mut elapsed_ms: i64 = 0;
    let mut bad_served = 0u64;
    let mut minute_requests = 0u64;
    let mut minute_errors = 0u64;
    for plan_step in &plan.steps {
        if plan_step.canary_weight_percent == 100 {
            break;
        }
        let weight = f64::from(plan_step.canary_weight_percent) / 100.0;
        let step_end = elapsed_ms + plan_step.bake.as_millis() as i64;
        while elapsed_ms < step_end {
            let arrivals = random.poisson(TOTAL_RPS * TICK_MS as f64 / 1000.0);
            for _ in 0..arrivals {
                let to_canary = random.uniform() < weight;
                let release = if to_canary { canary } else { HEALTHY };
                let is_error = random.uniform() < release.error_rate;
                let _latency_draw = random.normal();
                if to_canary {
                    minute_requests += 1;
                    if is_error {
                        minute_errors += 1;
                    }
                    if is_error || canary.added_latency_ms > 0.0 {
                        bad_served += 1;
                    }
                }
            }
            elapsed_ms += TICK_MS;
            if elapsed_ms % 60_000 == 0 {
                let breaching =
                    minute_requests > 0 && minute_errors as f64 / minute_requests as f64 > 0.01;
                if breaching {
                    return CodeDeployResult {
                        rollback_second: Some((elapsed_ms / 1000) as u64),
                        bad_requests_served: bad_served,
                    };
                }
                minute_requests = 0;
                minute_errors = 0;
            }
        }
    }
    CodeDeployResult {
        rollback_second: None,
        bad_requests_served: bad_served,
    }
}

/// Smoke checks pass at once in the replay (they are exercised by the end-to-end tests).
fn actions_checks(state: &RolloutState) -> Vec<(String, opsd::core::rollout::CheckState)> {
    state
        .checks
        .iter()
        .map(|check| (check.name.clone(), opsd::core::rollout::CheckState::Passed))
        .collect()
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((values.len() as f64) * q).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

struct Options {
    runs: u64,
    seed: u64,
}

fn parse_options() -> Options {
    let mut options = Options { runs: 200, seed: 7 };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    for pair in arguments.windows(2) {
        match pair[0].as_str() {
            "--runs" => options.runs = pair[1].parse().unwrap_or(options.runs),
            "--seed" => options.seed = pair[1].parse().unwrap_or(options.seed),
            _ => {}
        }
    }
    options
}

fn main() {
    let options = parse_options();
    // R-ALARM-1 (docs/requirements.md): an error rate above 1 % rolls the canary back.
    let alarms = parse_alarm_file(
        "lambda-error-rate.yaml",
        include_str!("../../alarms/lambda-error-rate.yaml"),
    )
    .expect("the shipped lambda-error-rate rule parses");
    let policy = RolloutPolicy {
        alarms,
        ..RolloutPolicy::default()
    };
    let plan = preset("Canary10Percent5Minutes").expect("preset");
    println!(
        "# Rollout replay: {} runs per scenario, seed {}, plan {}\n",
        options.runs, options.seed, plan.name
    );
    println!("| canary | opsd rolled back | opsd time from first bad response to weight 0 (median / p95 / max s) | bad requests served, opsd (mean) | CodeDeploy-style rolled back | CodeDeploy-style time (median s) | bad requests served, CodeDeploy-style (mean) |");
    println!("|---|---|---|---|---|---|---|");
    let scenarios = [
        (
            "20 % errors",
            Release {
                error_rate: 0.20,
                added_latency_ms: 0.0,
            },
        ),
        (
            "0.8 % errors (baseline 0.2 %)",
            Release {
                error_rate: 0.008,
                added_latency_ms: 0.0,
            },
        ),
        (
            "+500 ms latency",
            Release {
                error_rate: 0.002,
                added_latency_ms: 500.0,
            },
        ),
        ("healthy (0.2 % errors, same latency)", HEALTHY),
    ];
    for (name, canary) in scenarios {
        let mut rolled_back = 0u64;
        let mut promoted = 0u64;
        let mut detection = Vec::new();
        let mut bad_served = 0u64;
        let mut codedeploy_rolled_back = 0u64;
        let mut codedeploy_times = Vec::new();
        let mut codedeploy_bad = 0u64;
        for run in 0..options.runs {
            let seed = options.seed.wrapping_mul(1_000_003).wrapping_add(run);
            let result = simulate(&plan, &policy, canary, seed);
            let codedeploy = simulate_codedeploy(&plan, canary, seed);
            match result.outcome {
                Phase::RolledBack => rolled_back += 1,
                Phase::Promoted => promoted += 1,
                _ => {}
            }
            if let Some(seconds) = result
                .seconds_from_first_bad_to_rollback
                .or(result.seconds_to_rollback)
            {
                detection.push(seconds);
            }
            bad_served += result.bad_requests_served;
            if let Some(second) = codedeploy.rollback_second {
                codedeploy_rolled_back += 1;
                codedeploy_times.push(second as f64);
            }
            codedeploy_bad += codedeploy.bad_requests_served;
        }
        let runs = options.runs as f64;
        println!(
            "| {name} | {rolled_back}/{} (promoted {promoted}) | {:.2} / {:.2} / {:.2} | {:.1} | {codedeploy_rolled_back}/{} | {:.0} | {:.1} |",
            options.runs,
            quantile(&mut detection.clone(), 0.5),
            quantile(&mut detection.clone(), 0.95),
            quantile(&mut detection, 1.0),
            bad_served as f64 / runs,
            options.runs,
            quantile(&mut codedeploy_times, 0.5),
            codedeploy_bad as f64 / runs,
        );
    }
}
