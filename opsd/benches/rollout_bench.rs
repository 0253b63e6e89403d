//! Rollback speed and false-rollback rate, measured by replaying generated traffic through the
//! pure rollout core, side by side with a CodeDeploy-style alarm policy on the same traffic, and
//! with the error test without and with its early-errors bets (`AnalysisPolicy::early_errors`)
//! on the same traffic: the shipped rule and two others (`EarlyErrorsRule`), the trade-off table
//! of `docs/benchmarks.md`.
//!
//! Run: `cargo bench -p opsd --bench rollout_bench` (options after `--`: `--runs N` per faulty
//! scenario (200), `--healthy-runs N` for the healthy scenario (the `--runs` value), `--seed N`
//! (7)).
//!
//! Traffic model: Poisson arrivals at 100 requests per second, split by the current canary weight
//! (each request independently); each request fails with its release's error probability; latency
//! is log-normal with a median of 20 ms (sigma 0.5) plus the release's added latency. opsd ticks
//! every 250 ms, as `opsd up` does; a weight decided at one tick applies from the next. Each
//! request arrives at a uniform moment within its tick (drawn from a stream of its own, so the
//! requests are the same as without it); the time to a rollback counts from the moment the
//! canary's first bad response was served to the tick that set its weight to 0. The figure with
//! the first bad response stamped at the start of its tick (up to 250 ms early, the measure used
//! before 2026-12-05) is printed beside it. Before the
//! rollout the stable release served the same traffic alone for as long as the plan's watch (up to
//! an hour): that is the reference opsd records when a rollout is created (`core::watch`), drawn
//! from its own random stream so the rollout's requests are the same with or without it.
//! Each rollback is attributed to what decided it: the `lambda-error-rate` alarm rule, or the
//! analysis (the comparison with the baseline, or during the watch with the reference).
//! The CodeDeploy-style policy is a CloudWatch alarm on the canary's error rate above 1 % over
//! 1-minute periods, 1 evaluation period, evaluated when each minute completes (no extra
//! CloudWatch delivery delay is added, which flatters it).

use std::collections::BTreeMap;

use opsd::core::alarms::parse_alarm_file;
use opsd::core::analysis::early_errors::{EarlyErrorsRule, EarlyWindow};
use opsd::core::plan::{preset, RolloutPlan};
use opsd::core::rollout::{
    step, Action, DecisionKind, Observation, Phase, Readiness, RolloutPolicy, RolloutState,
};
use opsd::core::traffic::{SecondSample, TrafficSample};
use opsd::core::watch::{reference_window_seconds, ReferenceTraffic, MAX_REFERENCE_WINDOW};
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
    /// Seconds from the canary's first bad response to the rollback decision (weight 0).
    seconds_from_first_bad_to_rollback: Option<f64>,
    /// The same, with the first bad response stamped at the start of its tick.
    seconds_from_first_bad_tick_to_rollback: Option<f64>,
    /// Seconds from the canary taking traffic to the rollback decision.
    seconds_to_rollback: Option<f64>,
    /// Bad canary responses (failed, or slowed) served to users before the rollback.
    bad_requests_served: u64,
    /// What rolled the canary back: the decision's summary.
    rollback_summary: Option<String>,
}

/// The early-errors rule before 2026-12-05: two failures among the canary's first 20 requests.
const TWO_OF_20: EarlyErrorsRule = EarlyErrorsRule {
    live_share_weight: 0.55,
    windows: &[
        EarlyWindow {
            errors: 2,
            requests: 20,
            weight: 0.40,
        },
        EarlyWindow {
            errors: 3,
            requests: 40,
            weight: 0.05,
        },
    ],
    error_budget_share: 0.5,
};

/// Two failures among the first 25 with the budget shared equally between the error and latency
/// tests: the window needs more weight to bet enough at the earliest looks.
const TWO_OF_25_EQUAL_BUDGET: EarlyErrorsRule = EarlyErrorsRule {
    live_share_weight: 0.35,
    windows: &[
        EarlyWindow {
            errors: 2,
            requests: 25,
            weight: 0.60,
        },
        EarlyWindow {
            errors: 3,
            requests: 40,
            weight: 0.05,
        },
    ],
    error_budget_share: 0.5,
};

const TICK_MS: i64 = 250;
const START_MS: i64 = 1_800_000_000_000;
const TOTAL_RPS: f64 = 100.0;

/// The stable release's traffic over the window before the rollout (as long as the watch, at most
/// an hour), from its own random stream.
fn recorded_reference(plan: &RolloutPlan, start_ms: i64, seed: u64) -> Option<ReferenceTraffic> {
    let (from, to) = reference_window_seconds(start_ms, plan.watch())?;
    let seconds = (to - from).clamp(0, MAX_REFERENCE_WINDOW.as_secs() as i64);
    let mut random = Random(seed ^ 0x5EED_0FBA_5E11_E5ED);
    let mut traffic = TrafficSample::default();
    for _ in 0..seconds {
        for _ in 0..random.poisson(TOTAL_RPS) {
            let is_error = random.uniform() < HEALTHY.error_rate;
            let latency = (20.0 * (0.5 * random.normal()).exp()).round() as u64;
            traffic.record(latency, is_error);
        }
    }
    Some(ReferenceTraffic {
        version: "v1".into(),
        from_ms: from * 1000,
        to_ms: to * 1000,
        traffic,
    })
}

fn simulate(
    plan: &RolloutPlan,
    policy: &RolloutPolicy,
    canary: Release,
    reference: Option<&ReferenceTraffic>,
    seed: u64,
) -> RunResult {
    let mut random = Random(seed);
    // When within its tick each bad response was served: a stream of its own, so the requests
    // (and the decisions) are those of the same seed without it.
    let mut moments = Random(seed ^ 0x7113_5EED_0F7E_C4ED);
    let start_ms = START_MS;
    let release = |version: &str| ReleaseSpec {
        service: "steno".into(),
        version: version.into(),
        env: BTreeMap::new(),
        env_from: Default::default(),
    };
    let mut state = RolloutState::new(
        "bench".into(),
        release("v1"),
        release("v2"),
        plan.clone(),
        start_ms,
    );
    state.reference = reference.cloned();
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
    // As `opsd up` reads it: the seconds the longest alarm rule looks at, plus one period (a
    // bake judges the last whole periods since the canary took traffic).
    let series_seconds = policy
        .alarms
        .iter()
        .map(|rule| rule.period.as_secs() as usize * (rule.evaluation_periods as usize + 1))
        .max()
        .unwrap_or(60);
    let mut now_ms = start_ms;
    let mut canary_step = TrafficSample::default();
    let mut baseline_step = TrafficSample::default();
    let mut series: Vec<SecondSample> = Vec::new();
    let mut current_second = TrafficSample::default();
    let mut first_bad_tick_ms: Option<i64> = None;
    let mut first_bad_ms: Option<f64> = None;
    let mut bad_served = 0u64;
    let mut rollback_summary = None;
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
                    let served_at = now_ms as f64 + moments.uniform() * TICK_MS as f64;
                    if *first_bad_tick_ms.get_or_insert(now_ms) == now_ms {
                        first_bad_ms =
                            Some(first_bad_ms.map_or(served_at, |first| first.min(served_at)));
                    }
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
        let rollback = actions.iter().find_map(|action| match action {
            Action::Record(decision) if decision.kind == DecisionKind::RollBack => {
                Some(decision.summary.clone())
            }
            _ => None,
        });
        state = next;
        if rollback.is_some() {
            rollback_summary = rollback;
            break;
        }
        if (state.step_index, state.step_started_at_ms) != step_before {
            canary_step = TrafficSample::default();
            baseline_step = TrafficSample::default();
        }
        if series.len() > series_seconds {
            series.drain(..series.len() - series_seconds);
        }
    }
    let rolled_back_at = (state.phase == Phase::RolledBack).then_some(now_ms);
    RunResult {
        outcome: state.phase,
        seconds_from_first_bad_to_rollback: rolled_back_at
            .zip(first_bad_ms)
            .map(|(end, first)| (end as f64 - first) / 1000.0),
        seconds_from_first_bad_tick_to_rollback: rolled_back_at
            .zip(first_bad_tick_ms)
            .map(|(end, first)| (end - first) as f64 / 1000.0),
        seconds_to_rollback: rolled_back_at.map(|end| (end - start_ms) as f64 / 1000.0),
        bad_requests_served: bad_served,
        rollback_summary,
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
    healthy_runs: u64,
    seed: u64,
}

fn parse_options() -> Options {
    let mut runs = None;
    let mut healthy_runs = None;
    let mut seed = 7;
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    for pair in arguments.windows(2) {
        match pair[0].as_str() {
            "--runs" => runs = pair[1].parse().ok().or(runs),
            "--healthy-runs" => healthy_runs = pair[1].parse().ok().or(healthy_runs),
            "--seed" => seed = pair[1].parse().unwrap_or(seed),
            _ => {}
        }
    }
    let runs = runs.unwrap_or(200);
    Options {
        runs,
        healthy_runs: healthy_runs.unwrap_or(runs),
        seed,
    }
}

/// One scenario under one rule, and the CodeDeploy-style policy on the same traffic.
#[derive(Default)]
struct Tally {
    rolled_back: u64,
    /// Rolled back while the canary was at 10 % (the first 5 minutes), before the watch.
    rolled_back_in_canary_step: u64,
    promoted: u64,
    /// Rolled back by an alarm rule (`lambda-error-rate`) rather than by the analysis.
    rolled_back_by_alarm: u64,
    detection: Vec<f64>,
    detection_from_tick: Vec<f64>,
    bad_served: u64,
}

impl Tally {
    fn add(&mut self, result: &RunResult, canary_step_seconds: f64) {
        match result.outcome {
            Phase::RolledBack => self.rolled_back += 1,
            Phase::Promoted => self.promoted += 1,
            _ => {}
        }
        if result
            .rollback_summary
            .as_deref()
            .is_some_and(|summary| summary.starts_with("alarm "))
        {
            self.rolled_back_by_alarm += 1;
        }
        if result
            .seconds_to_rollback
            .is_some_and(|seconds| seconds <= canary_step_seconds)
        {
            self.rolled_back_in_canary_step += 1;
        }
        if let Some(seconds) = result
            .seconds_from_first_bad_to_rollback
            .or(result.seconds_to_rollback)
        {
            self.detection.push(seconds);
        }
        if let Some(seconds) = result
            .seconds_from_first_bad_tick_to_rollback
            .or(result.seconds_to_rollback)
        {
            self.detection_from_tick.push(seconds);
        }
        self.bad_served += result.bad_requests_served;
    }
}

fn main() {
    let options = parse_options();
    // R-ALARM-1 (docs/requirements.md): an error rate above 1 % rolls the canary back.
    let alarms = parse_alarm_file(
        "lambda-error-rate.yaml",
        include_str!("../../alarms/lambda-error-rate.yaml"),
    )
    .expect("the shipped lambda-error-rate rule parses");
    let policy_with = |early_errors: Option<EarlyErrorsRule>| {
        let mut policy = RolloutPolicy {
            alarms: alarms.clone(),
            ..RolloutPolicy::default()
        };
        policy.analysis.early_errors = early_errors.is_some();
        if let Some(rule) = early_errors {
            assert!(rule.is_valid(), "{rule:?}");
            policy.analysis.early_errors_rule = rule;
        }
        policy
    };
    let rules = [
        ("share test alone", policy_with(None)),
        (
            "+ early errors, 2 of 20 (before)",
            policy_with(Some(TWO_OF_20)),
        ),
        (
            "+ early errors, 2 of 25, budget halved",
            policy_with(Some(TWO_OF_25_EQUAL_BUDGET)),
        ),
        (
            "+ early errors, 2 of 25, 3/4 of the budget (shipped)",
            policy_with(Some(EarlyErrorsRule::SHIPPED)),
        ),
    ];
    let plan = preset("Canary10Percent5Minutes").expect("preset");
    let canary_step_seconds = plan.steps[0].bake.as_secs_f64();
    println!(
        "# Rollout replay: {} runs per faulty scenario, {} healthy runs, seed {}, plan {}\n",
        options.runs, options.healthy_runs, options.seed, plan.name
    );
    println!("| canary | rule | rolled back (in the 10 % step; by the alarm rule) | first bad response → weight 0 (median / p95 / max s) | the same from its tick's start (median / p95 s) | bad requests served (mean) |");
    println!("|---|---|---|---|---|---|");
    let mut codedeploy_rows = Vec::new();
    let scenarios = [
        (
            "20 % errors",
            Release {
                error_rate: 0.20,
                added_latency_ms: 0.0,
            },
            options.runs,
        ),
        (
            "0.8 % errors (baseline 0.2 %)",
            Release {
                error_rate: 0.008,
                added_latency_ms: 0.0,
            },
            options.runs,
        ),
        (
            "+500 ms latency",
            Release {
                error_rate: 0.002,
                added_latency_ms: 500.0,
            },
            options.runs,
        ),
        (
            "healthy (0.2 % errors, same latency)",
            HEALTHY,
            options.healthy_runs,
        ),
    ];
    for (name, canary, runs) in scenarios {
        let mut tallies: Vec<Tally> = rules.iter().map(|_| Tally::default()).collect();
        let mut codedeploy_rolled_back = 0u64;
        let mut codedeploy_times = Vec::new();
        let mut codedeploy_bad = 0u64;
        for run in 0..runs {
            let seed = options.seed.wrapping_mul(1_000_003).wrapping_add(run);
            let reference = recorded_reference(&plan, START_MS, seed);
            for ((_, policy), tally) in rules.iter().zip(tallies.iter_mut()) {
                let result = simulate(&plan, policy, canary, reference.as_ref(), seed);
                tally.add(&result, canary_step_seconds);
            }
            let codedeploy = simulate_codedeploy(&plan, canary, seed);
            if let Some(second) = codedeploy.rollback_second {
                codedeploy_rolled_back += 1;
                codedeploy_times.push(second as f64);
            }
            codedeploy_bad += codedeploy.bad_requests_served;
        }
        for ((rule, _), tally) in rules.iter().zip(tallies.iter_mut()) {
            println!(
                "| {name} | {rule} | {}/{runs} ({}; {}; promoted {}) | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} | {:.1} |",
                tally.rolled_back,
                tally.rolled_back_in_canary_step,
                tally.rolled_back_by_alarm,
                tally.promoted,
                quantile(&mut tally.detection.clone(), 0.5),
                quantile(&mut tally.detection.clone(), 0.95),
                quantile(&mut tally.detection, 1.0),
                quantile(&mut tally.detection_from_tick.clone(), 0.5),
                quantile(&mut tally.detection_from_tick, 0.95),
                tally.bad_served as f64 / runs.max(1) as f64,
            );
        }
        codedeploy_rows.push(format!(
            "| {name} | {codedeploy_rolled_back}/{runs} | {:.0} | {:.1} |",
            quantile(&mut codedeploy_times, 0.5),
            codedeploy_bad as f64 / runs.max(1) as f64,
        ));
    }
    println!("\nCodeDeploy-style alarm on the same traffic:\n");
    println!(
        "| canary | rolled back | time to roll back (median s) | bad requests served (mean) |"
    );
    println!("|---|---|---|---|");
    for row in codedeploy_rows {
        println!("{row}");
    }
}
