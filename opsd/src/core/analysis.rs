//! Canary analysis: whether the canary is worse than the baseline, decided by anytime-valid
//! sequential tests on error proportions and latency distributions, with the evidence attached.
//!
//! # What is compared
//!
//! The caller passes the canary's and the baseline's traffic since the current step began (the same
//! window for both), once per second while the step bakes. Two one-sided tests ask "is the canary
//! worse?":
//!
//! - **Errors.** Under the null hypothesis the canary and the baseline fail requests at the same
//!   rate (which may change over time: an outage downstream hits both). Then, given that an error
//!   happened, it came from the canary with probability π, the canary's share of requests. So the
//!   canary's errors `X` out of all errors `K` are Binomial(K, π), whatever the common rate is. The
//!   test statistic is the mixture likelihood ratio
//!   `E = ∫_π^1 (q/π)^X ((1−q)/(1−π))^(K−X) dq / (1−π)`, the likelihood of "a share q above π,
//!   uniformly" against "share π"; it has a closed form with a Beta function and a binomial
//!   distribution function. Conditioning on the errors makes it exact for small counts (it needs
//!   no normal approximation, unlike a pooled z test, which badly overstates the evidence of, say,
//!   3 errors in 20 canary requests against none in 180), and the uniform mixture puts most weight
//!   on large effects, so a canary failing one request in five is caught after a handful of errors.
//! - **Early errors.** When the stable release's traffic before the rollout was recorded
//!   ([`crate::core::watch`]) and [`AnalysisPolicy::early_errors`] is on, the error statistic is
//!   the average `0.45 · E_share + 0.50 · E_(2 of 25) + 0.05 · E_(3 of 40)` (and the error test takes three quarters of the step's budget), where `E_(k of m)`
//!   bets on "at least k of the canary's first m requests of the step fail", priced exactly
//!   against the recorded requests (hypergeometric, so whatever the common rate). A canary failing
//!   one request in five then fails at its second failure instead of its fourth. [`early_errors`]
//!   holds the test, its validity argument and the guard that stops the bets when the live
//!   baseline no longer fails as the recorded traffic did.
//! - **Latency.** The Mann–Whitney U statistic of the two latency histograms (ties share midranks,
//!   the variance carries the tie correction, continuity-corrected), standardised to `z`, measures
//!   whether canary requests tend to be slower. The test statistic is the one-sided mixture
//!   likelihood ratio of a Brownian motion with drift, the mixture over drifts being half-normal with
//!   scale [`LATENCY_MIXTURE_SCALE`] per request:
//!   `E = 2 (1+ρ)^(−1/2) exp(z² ρ / (2(1+ρ))) Φ(z √(ρ/(1+ρ)))` with `ρ = n τ²` and `n` the
//!   effective sample size `n_c n_b / (n_c + n_b)`.
//!
//! # Why looking every second is safe: the false-positive guarantee
//!
//! Both statistics are test martingales under the null hypothesis (non-negative, starting at 1,
//! not growing in expectation as data arrives): a mixture of likelihood ratios is one. By Ville's
//! inequality the probability that such a martingale *ever* reaches `1/a` is at most `a`, no matter
//! how often it is looked at or when the looking stops. So each test fails a healthy canary with
//! probability at most its `a`, over the whole step, for any number of looks; `1/E` is reported
//! as an anytime-valid p-value. No look budget is spent, so looking every second costs nothing and
//! a bake may run as long as it likes.
//!
//! The policy's `false_positive_rate` (α, default 1 % per rollout) is split evenly over the
//! rollout's compared steps (`steps_per_rollout`; [`AnalysisPolicy::for_plan`] sets it from the
//! plan) and, within a step, evenly between the two tests (Bonferroni). The guarantee: a rollout
//! of a healthy canary (same error rate, same latency distribution as the baseline) is failed by
//! this analysis with probability at most α, provided `steps_per_rollout` is at least the number
//! of compared steps (a step baked again after a hold counts again), however long each bake runs.
//! Two approximations sit under it: the error test takes the canary's share of requests so far as
//! π (exact for a fixed split), and the latency test rests on the normal approximation of U. The
//! simulations in this module's tests check both at 10 canary requests per second from the first
//! second on: 2,000 healthy five-minute rollouts at α = 1 % fail about 0.25 % of the time; and
//! at four looks a second, as `opsd up` ticks, on latencies narrow enough that nearly all fall
//! into two histogram buckets (ties), 1,000 such rollouts with the early-errors bets fail 0.3 %
//! of the time. The ceiling rule used without baseline traffic is a plain threshold, outside this
//! guarantee, and so are the alarm rules (`alarms/`), which the rollout judges beside it.
//!
//! With early errors the statistic is an average of terms each bounded by a test martingale under
//! the healthy model, so it is bounded by a test martingale and Ville's inequality applies to it
//! unchanged; the healthy model then also says the stable release fails requests as it did in
//! its recorded window (see [`early_errors`]).
//!
//! # The verdict
//!
//! - **Fail** when a test's statistic reaches `1/a` *and* its effect clears both floors (an absolute
//!   difference and a ratio), so a tiny but real difference on huge traffic never rolls back. A
//!   failure needs no minimum sample: strong evidence is evidence.
//! - **Pass** only when both sides have at least the minimum requests and nothing fails.
//! - **Inconclusive** otherwise, with the reason. Without baseline traffic (a plan at 100 %, or an
//!   idle stable release) nothing can be compared; only an absolute ceiling on the canary's error
//!   rate can fail it then.

use serde::{Deserialize, Serialize};

pub mod early_errors;
#[cfg(test)]
mod quarter_second_tests;

use super::plan::RolloutPlan;
use super::traffic::{TrafficSample, LATENCY_BUCKETS, LATENCY_BUCKET_BOUNDS_MS};

/// Scale τ of the half-normal mixture over latency drifts, in standard deviations of a single
/// request's rank score: 0.5 weighs shifts from "slightly slower" (a rank AUC near 0.55) to
/// "slower than every baseline request" without betting on one.
pub const LATENCY_MIXTURE_SCALE: f64 = 0.5;

/// How canary analysis decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisPolicy {
    /// The highest probability that the analysis fails a healthy canary during one rollout.
    pub false_positive_rate: f64,
    /// Compared steps (below 100 %) per rollout; each gets `false_positive_rate / steps_per_rollout`.
    pub steps_per_rollout: u32,
    /// Requests the canary needs before the analysis can pass it.
    pub min_canary_requests: u64,
    /// Requests the baseline needs before the analysis can pass the canary.
    pub min_baseline_requests: u64,
    /// The canary's error rate must exceed the baseline's by at least this much (a fraction:
    /// 0.005 is half a percentage point) to fail.
    pub error_rate_floor: f64,
    /// ... and be at least this multiple of the baseline's.
    pub error_ratio_floor: f64,
    /// The canary's latency quantile must exceed the baseline's by at least this many ms to fail.
    pub latency_floor_ms: f64,
    /// ... and be at least this multiple of the baseline's.
    pub latency_ratio_floor: f64,
    /// The latency quantile the floors apply to (0.95: p95).
    pub latency_quantile: f64,
    /// Without baseline traffic, a canary error rate above this fails the canary ...
    pub canary_error_ceiling: f64,
    /// ... once the canary served at least this many requests.
    pub canary_ceiling_min_requests: u64,
    /// Mix the early-errors test ([`early_errors`]) into the error test when the stable release's
    /// recorded traffic is known: two failures among a canary's first requests can then fail it.
    pub early_errors: bool,
    /// The early-errors test's windows and weights: always the shipped rule in opsd; the replay
    /// benchmark compares others. Not configurable.
    #[serde(skip)]
    pub early_errors_rule: early_errors::EarlyErrorsRule,
}

impl Default for AnalysisPolicy {
    fn default() -> Self {
        AnalysisPolicy {
            false_positive_rate: 0.01,
            steps_per_rollout: 3,
            min_canary_requests: 200,
            min_baseline_requests: 200,
            error_rate_floor: 0.005,
            error_ratio_floor: 2.0,
            latency_floor_ms: 100.0,
            latency_ratio_floor: 1.25,
            latency_quantile: 0.95,
            canary_error_ceiling: 0.05,
            canary_ceiling_min_requests: 20,
            early_errors: true,
            early_errors_rule: early_errors::EarlyErrorsRule::SHIPPED,
        }
    }
}

impl AnalysisPolicy {
    /// This policy with the false-positive budget split over `plan`'s compared steps.
    pub fn for_plan(&self, plan: &RolloutPlan) -> AnalysisPolicy {
        AnalysisPolicy {
            steps_per_rollout: u32::try_from(plan.compared_steps())
                .unwrap_or(u32::MAX)
                .max(1),
            ..self.clone()
        }
    }

    /// The false-positive budget of one step (both tests together).
    pub fn alpha_per_step(&self) -> f64 {
        self.false_positive_rate / f64::from(self.steps_per_rollout.max(1))
    }

    /// Checks that every number makes sense; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !self.early_errors_rule.is_valid() {
            return Err("early_errors_rule: the weights must be positive and sum to 1, and the error test's budget share lie between 0 and 1".to_string());
        }
        let in_open_unit = |value: f64| value > 0.0 && value < 1.0;
        if !in_open_unit(self.false_positive_rate) {
            return Err(format!(
                "false_positive_rate: {} must be between 0 and 1 (0.01 is 1 %)",
                self.false_positive_rate
            ));
        }
        if self.steps_per_rollout == 0 {
            return Err("steps_per_rollout: must be at least 1".to_string());
        }
        if !(0.0..1.0).contains(&self.error_rate_floor) {
            return Err(format!(
                "error_rate_floor: {} must be a fraction from 0 to 1 (0.005 is half a point)",
                self.error_rate_floor
            ));
        }
        if !(self.error_ratio_floor >= 1.0 && self.error_ratio_floor.is_finite()) {
            return Err(format!(
                "error_ratio_floor: {} must be at least 1",
                self.error_ratio_floor
            ));
        }
        if !(self.latency_floor_ms >= 0.0 && self.latency_floor_ms.is_finite()) {
            return Err(format!(
                "latency_floor_ms: {} must be 0 or more",
                self.latency_floor_ms
            ));
        }
        if !(self.latency_ratio_floor >= 1.0 && self.latency_ratio_floor.is_finite()) {
            return Err(format!(
                "latency_ratio_floor: {} must be at least 1",
                self.latency_ratio_floor
            ));
        }
        if !in_open_unit(self.latency_quantile) {
            return Err(format!(
                "latency_quantile: {} must be between 0 and 1 (0.95 is p95)",
                self.latency_quantile
            ));
        }
        if !(self.canary_error_ceiling > 0.0 && self.canary_error_ceiling <= 1.0) {
            return Err(format!(
                "canary_error_ceiling: {} must be a fraction above 0, at most 1",
                self.canary_error_ceiling
            ));
        }
        Ok(())
    }
}

/// What the analysis concluded at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

/// One side's traffic in numbers; rates and latencies are `None` without requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SideSummary {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mean_ms: Option<f64>,
}

impl SideSummary {
    pub fn of(sample: &TrafficSample) -> SideSummary {
        SideSummary {
            requests: sample.requests,
            errors: sample.errors,
            error_rate: sample.error_rate(),
            p50_ms: histogram_quantile_ms(sample, 0.50),
            p95_ms: histogram_quantile_ms(sample, 0.95),
            p99_ms: histogram_quantile_ms(sample, 0.99),
            mean_ms: sample.mean_latency_ms(),
        }
    }
}

/// One statistical test's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestOutcome {
    /// `error_rate` or `latency`.
    pub name: String,
    /// How the test works, in a sentence.
    pub method: String,
    /// False when the test could not run (no traffic on a side); then nothing below is evidence.
    pub ran: bool,
    /// A z-score for reading at a glance (errors: canary errors against their share of all
    /// errors; latency: the Mann–Whitney U).
    pub statistic: f64,
    /// The test martingale's value (the mixture likelihood ratio); the test fires at `1/alpha`.
    pub e_value: f64,
    /// Anytime-valid p-value, `min(1, 1/e_value)`.
    pub p_value: f64,
    /// This test's share of the step's false-positive budget.
    pub alpha: f64,
    /// The compared quantity on the canary: its error rate (a fraction) or latency quantile (ms).
    pub canary_value: f64,
    /// The same on the baseline.
    pub baseline_value: f64,
    /// `canary_value - baseline_value`.
    pub effect: f64,
    /// Canary over baseline; `None` when the baseline's value is 0.
    pub effect_ratio: Option<f64>,
    /// `p_value <= alpha`.
    pub significant: bool,
    /// Both effect floors (absolute and ratio) are met.
    pub floor_met: bool,
}

impl TestOutcome {
    fn not_run(name: &str, method: &str, alpha: f64) -> TestOutcome {
        TestOutcome {
            name: name.to_string(),
            method: method.to_string(),
            ran: false,
            statistic: 0.0,
            e_value: 1.0,
            p_value: 1.0,
            alpha,
            canary_value: 0.0,
            baseline_value: 0.0,
            effect: 0.0,
            effect_ratio: None,
            significant: false,
            floor_met: false,
        }
    }

    /// Whether this test fails the canary.
    pub fn fails(&self) -> bool {
        self.ran && self.significant && self.floor_met
    }
}

/// The analysis of one look, with everything that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    /// 1 for the first look of a step.
    pub look: u32,
    pub canary: SideSummary,
    pub baseline: SideSummary,
    pub error_test: TestOutcome,
    pub latency_test: TestOutcome,
    /// The false-positive budget in force at this look (both tests together). The tests are
    /// anytime-valid, so it is the same at every look of a step.
    pub alpha_this_look: f64,
}

const ERROR_METHOD: &str = "anytime-valid test: canary errors among all errors against the canary's share of requests, uniform mixture likelihood ratio";
const LATENCY_METHOD: &str = "anytime-valid test: Mann-Whitney U of the latency histograms (midranks, tie-corrected), half-normal mixture likelihood ratio";

/// Compares the canary with the baseline over the same window (cumulative since the step began).
/// `looks_so_far` counts earlier looks in this step; it is recorded, and needs no correction
/// because the tests are anytime-valid.
pub fn compare(
    canary: &TrafficSample,
    baseline: &TrafficSample,
    looks_so_far: u32,
    policy: &AnalysisPolicy,
) -> Comparison {
    compare_with_reference(canary, baseline, None, looks_so_far, policy)
}

/// [`compare`], knowing the stable release's recorded traffic from before the rollout
/// ([`crate::core::watch::ReferenceTraffic`]): with [`AnalysisPolicy::early_errors`], the error
/// test also bets on early canary failures against its error rate ([`early_errors`]).
pub fn compare_with_reference(
    canary: &TrafficSample,
    baseline: &TrafficSample,
    reference: Option<&TrafficSample>,
    looks_so_far: u32,
    policy: &AnalysisPolicy,
) -> Comparison {
    let alpha_this_look = policy.alpha_per_step();
    let alpha_per_test = alpha_this_look / 2.0;
    let reference = reference.filter(|_| policy.early_errors);
    // With the early bets the error test takes its rule's share of the budget.
    let (alpha_errors, alpha_latency) = match reference {
        Some(_) => {
            let share = policy.early_errors_rule.error_budget_share;
            (alpha_this_look * share, alpha_this_look * (1.0 - share))
        }
        None => (alpha_per_test, alpha_per_test),
    };
    let canary_summary = SideSummary::of(canary);
    let baseline_summary = SideSummary::of(baseline);
    let mut reasons = Vec::new();

    let (verdict, error_test, latency_test) = if canary.requests == 0 {
        reasons.push(format!(
            "the canary has 0 requests; at least {} are needed",
            policy.min_canary_requests
        ));
        (
            Verdict::Inconclusive,
            TestOutcome::not_run("error_rate", ERROR_METHOD, alpha_per_test),
            TestOutcome::not_run("latency", LATENCY_METHOD, alpha_per_test),
        )
    } else if baseline.requests == 0 {
        let verdict = judge_without_baseline(canary, policy, &mut reasons);
        (
            verdict,
            TestOutcome::not_run("error_rate", ERROR_METHOD, alpha_per_test),
            TestOutcome::not_run("latency", LATENCY_METHOD, alpha_per_test),
        )
    } else {
        let (error_test, early_words) =
            error_rate_test(canary, baseline, reference, alpha_errors, policy);
        let latency_test = latency_test(canary, baseline, alpha_latency, policy);
        let verdict = judge(
            canary,
            baseline,
            (&error_test, early_words.as_deref()),
            &latency_test,
            policy,
            &mut reasons,
        );
        (verdict, error_test, latency_test)
    };

    Comparison {
        verdict,
        reasons,
        look: looks_so_far.saturating_add(1),
        canary: canary_summary,
        baseline: baseline_summary,
        error_test,
        latency_test,
        alpha_this_look,
    }
}

fn judge_without_baseline(
    canary: &TrafficSample,
    policy: &AnalysisPolicy,
    reasons: &mut Vec<String>,
) -> Verdict {
    let canary_rate = canary.errors as f64 / canary.requests as f64;
    if canary.requests >= policy.canary_ceiling_min_requests
        && canary_rate > policy.canary_error_ceiling
    {
        reasons.push(format!(
            "the canary failed {} of {} requests ({}), above the {} ceiling that applies without baseline traffic",
            canary.errors,
            canary.requests,
            percent(canary_rate),
            percent(policy.canary_error_ceiling)
        ));
        return Verdict::Fail;
    }
    reasons.push(format!(
        "the baseline has no traffic to compare with; only the {} error ceiling applies (the canary is at {} over {} requests)",
        percent(policy.canary_error_ceiling),
        percent(canary_rate),
        canary.requests
    ));
    Verdict::Inconclusive
}

fn judge(
    canary: &TrafficSample,
    baseline: &TrafficSample,
    (error_test, early_words): (&TestOutcome, Option<&str>),
    latency_test: &TestOutcome,
    policy: &AnalysisPolicy,
    reasons: &mut Vec<String>,
) -> Verdict {
    let mut error_line = describe_error_test(canary, baseline, error_test);
    if let Some(words) = early_words {
        error_line.push_str("; ");
        error_line.push_str(words);
    }
    let latency_line = describe_latency_test(latency_test, policy);
    if error_test.fails() || latency_test.fails() {
        if error_test.fails() {
            reasons.push(format!("the canary fails more requests: {error_line}"));
        }
        if latency_test.fails() {
            reasons.push(format!("the canary is slower: {latency_line}"));
        }
        return Verdict::Fail;
    }

    let mut verdict = Verdict::Pass;
    if canary.requests < policy.min_canary_requests {
        reasons.push(format!(
            "the canary has {} requests; at least {} are needed",
            canary.requests, policy.min_canary_requests
        ));
        verdict = Verdict::Inconclusive;
    }
    if baseline.requests < policy.min_baseline_requests {
        reasons.push(format!(
            "the baseline has {} requests; at least {} are needed",
            baseline.requests, policy.min_baseline_requests
        ));
        verdict = Verdict::Inconclusive;
    }
    if !latency_test.ran {
        reasons.push("no latency histogram on one side; latency cannot be judged".to_string());
        verdict = Verdict::Inconclusive;
    }
    reasons.push(format!("errors: {error_line}"));
    if latency_test.ran {
        reasons.push(format!("latency: {latency_line}"));
    }
    verdict
}

fn describe_error_test(
    canary: &TrafficSample,
    baseline: &TrafficSample,
    test: &TestOutcome,
) -> String {
    let ratio = match test.effect_ratio {
        Some(ratio) => format!("{ratio:.2}×"),
        None if canary.errors > 0 => "baseline had none".to_string(),
        None => "none on either side".to_string(),
    };
    format!(
        "{} of {} canary requests failed ({}) against {} of {} on the baseline ({}); difference {} points, {}; {}{}",
        canary.errors,
        canary.requests,
        percent(test.canary_value),
        baseline.errors,
        baseline.requests,
        percent(test.baseline_value),
        signed_points(test.effect),
        ratio,
        evidence_words(test),
        floor_words(test),
    )
}

fn describe_latency_test(test: &TestOutcome, policy: &AnalysisPolicy) -> String {
    if !test.ran {
        return "not judged".to_string();
    }
    let label = quantile_label(policy.latency_quantile);
    let (canary_value, baseline_value) = (test.canary_value, test.baseline_value);
    let ratio = test
        .effect_ratio
        .map(|ratio| format!("{ratio:.2}×"))
        .unwrap_or_else(|| "baseline at 0 ms".to_string());
    format!(
        "{label} {canary_value:.0} ms on the canary against {baseline_value:.0} ms ({:+.0} ms, {ratio}); U z = {:.2}; {}{}",
        test.effect,
        test.statistic,
        evidence_words(test),
        floor_words(test),
    )
}

fn evidence_words(test: &TestOutcome) -> String {
    let relation = if test.significant { "≤" } else { ">" };
    format!(
        "anytime p = {} {relation} α {}",
        short_number(test.p_value),
        short_number(test.alpha)
    )
}

fn floor_words(test: &TestOutcome) -> &'static str {
    match (test.significant, test.floor_met) {
        (true, true) => "",
        (true, false) => " (significant, but smaller than the effect floors; not failed)",
        _ => "",
    }
}

fn quantile_label(q: f64) -> String {
    let hundredths = (q * 100.0).round();
    if (q * 100.0 - hundredths).abs() < 1e-9 {
        format!("p{hundredths:.0}")
    } else {
        format!("p{:.1}", q * 100.0)
    }
}

fn percent(fraction: f64) -> String {
    format!("{:.2} %", fraction * 100.0)
}

fn signed_points(fraction: f64) -> String {
    format!("{:+.2}", fraction * 100.0)
}

fn short_number(value: f64) -> String {
    if value == 0.0 || (1e-3..1e4).contains(&value.abs()) {
        format!("{value:.4}")
    } else {
        format!("{value:.2e}")
    }
}

/// The error-proportion test: canary errors among all errors against the canary's request share;
/// with a reference, mixed with the early-errors test. Also returns what the early windows saw,
/// in words, when they saw something.
fn error_rate_test(
    canary: &TrafficSample,
    baseline: &TrafficSample,
    reference: Option<&TrafficSample>,
    alpha: f64,
    policy: &AnalysisPolicy,
) -> (TestOutcome, Option<String>) {
    let canary_requests = canary.requests as f64;
    let baseline_requests = baseline.requests as f64;
    let canary_errors = canary.errors.min(canary.requests);
    let baseline_errors = baseline.errors.min(baseline.requests);
    let canary_share = canary_requests / (canary_requests + baseline_requests);
    let share_log_e = log_error_share_mixture(canary_errors, baseline_errors, canary_share);
    let rule = &policy.early_errors_rule;
    let early = reference
        .and_then(|reference| early_errors::early_errors(rule, canary, baseline, reference));
    let (log_e, method, early_words) = match early {
        Some(early) => (
            early_errors::log_sum_exp(&[
                rule.live_share_weight.ln() + share_log_e,
                early.log_weighted_e,
            ]),
            format!("anytime-valid test: canary errors among all errors against the canary's share of requests (uniform mixture likelihood ratio, weight {:.2}), averaged with bets on early canary failures against the stable release's recorded error rate ({})", rule.live_share_weight, rule.describe_windows()),
            early.fired.or(early.guarded),
        ),
        None => (share_log_e, ERROR_METHOD.to_string(), None),
    };

    let all_errors = (canary_errors + baseline_errors) as f64;
    let statistic = if all_errors > 0.0 {
        (canary_errors as f64 - all_errors * canary_share)
            / (all_errors * canary_share * (1.0 - canary_share)).sqrt()
    } else {
        0.0
    };
    let canary_rate = canary_errors as f64 / canary_requests;
    let baseline_rate = baseline_errors as f64 / baseline_requests;
    let test = outcome(
        "error_rate",
        &method,
        alpha,
        Measured {
            statistic,
            log_e,
            canary_value: canary_rate,
            baseline_value: baseline_rate,
        },
        (policy.error_rate_floor, policy.error_ratio_floor),
    );
    (test, early_words)
}

/// What a test measured, before it is judged.
struct Measured {
    statistic: f64,
    log_e: f64,
    canary_value: f64,
    baseline_value: f64,
}

/// Judges a measurement: significance against `alpha`, and the effect against the
/// `(absolute, ratio)` floors. A zero baseline value makes any positive canary value meet the
/// ratio floor.
fn outcome(
    name: &str,
    method: &str,
    alpha: f64,
    measured: Measured,
    (absolute_floor, ratio_floor): (f64, f64),
) -> TestOutcome {
    let Measured {
        statistic,
        log_e,
        canary_value,
        baseline_value,
    } = measured;
    let effect = canary_value - baseline_value;
    let effect_ratio = (baseline_value > 0.0).then(|| canary_value / baseline_value);
    let ratio_met = match effect_ratio {
        Some(ratio) => ratio >= ratio_floor,
        None => canary_value > 0.0,
    };
    // Keep the numbers finite so they serialise as numbers.
    let log_e = if log_e.is_nan() {
        0.0
    } else {
        log_e.clamp(-700.0, 700.0)
    };
    TestOutcome {
        name: name.to_string(),
        method: method.to_string(),
        ran: true,
        statistic,
        e_value: log_e.exp(),
        p_value: (-log_e).exp().min(1.0),
        alpha,
        canary_value,
        baseline_value,
        effect,
        effect_ratio,
        significant: alpha > 0.0 && log_e >= -alpha.ln(),
        floor_met: effect >= absolute_floor && ratio_met,
    }
}

/// ln of `∫_π^1 (q/π)^X ((1−q)/(1−π))^Y dq / (1−π)`: the likelihood ratio of "the canary's share of
/// errors is some q above its share π of requests (q uniform)" against "it is π", for X canary
/// and Y baseline errors. With `∫_π^1 q^X (1−q)^Y dq = B(X+1, Y+1) · P(Binomial(X+Y+1, π) ≤ X)`.
fn log_error_share_mixture(canary_errors: u64, baseline_errors: u64, canary_share: f64) -> f64 {
    if !(canary_share > 0.0 && canary_share < 1.0) {
        return 0.0;
    }
    let x = canary_errors as f64;
    let y = baseline_errors as f64;
    let all = canary_errors + baseline_errors;
    ln_gamma(x + 1.0) + ln_gamma(y + 1.0) - ln_gamma(x + y + 2.0)
        + ln_binomial_cdf(canary_errors, all + 1, canary_share)
        - x * canary_share.ln()
        - (y + 1.0) * (-canary_share).ln_1p()
}

/// The latency test: one-sided Mann–Whitney U on the two histograms.
fn latency_test(
    canary: &TrafficSample,
    baseline: &TrafficSample,
    alpha: f64,
    policy: &AnalysisPolicy,
) -> TestOutcome {
    let Some(rank_test) = mann_whitney(&canary.latency_buckets, &baseline.latency_buckets) else {
        return TestOutcome::not_run("latency", LATENCY_METHOD, alpha);
    };
    let log_e = log_half_normal_mixture(
        rank_test.z,
        rank_test.effective_samples,
        LATENCY_MIXTURE_SCALE,
    );
    outcome(
        "latency",
        LATENCY_METHOD,
        alpha,
        Measured {
            statistic: rank_test.z,
            log_e,
            canary_value: histogram_quantile_ms(canary, policy.latency_quantile).unwrap_or(0.0),
            baseline_value: histogram_quantile_ms(baseline, policy.latency_quantile).unwrap_or(0.0),
        },
        (policy.latency_floor_ms, policy.latency_ratio_floor),
    )
}

/// The Mann–Whitney U statistic of canary against baseline latencies, standardised.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RankTest {
    /// Positive when canary requests tend to be slower.
    z: f64,
    /// `n_c n_b / (n_c + n_b)`: the information in the comparison.
    effective_samples: f64,
}

/// U for histograms: requests in one bucket are ties and share the bucket's midrank; the variance
/// is `n_c n_b / 12 · (N + 1 − Σ(t³ − t) / (N (N − 1)))`; a continuity correction of ½ keeps the
/// normal approximation on the cautious side. `None` when a side has no latencies.
fn mann_whitney(
    canary: &[u64; LATENCY_BUCKETS],
    baseline: &[u64; LATENCY_BUCKETS],
) -> Option<RankTest> {
    let canary_count: f64 = canary.iter().map(|&count| count as f64).sum();
    let baseline_count: f64 = baseline.iter().map(|&count| count as f64).sum();
    if canary_count == 0.0 || baseline_count == 0.0 {
        return None;
    }
    let total = canary_count + baseline_count;
    let mut ranked_below = 0.0;
    let mut canary_rank_sum = 0.0;
    let mut tie_sum = 0.0;
    for (&canary_in_bucket, &baseline_in_bucket) in canary.iter().zip(baseline.iter()) {
        let tied = (canary_in_bucket + baseline_in_bucket) as f64;
        if tied == 0.0 {
            continue;
        }
        let midrank = ranked_below + (tied + 1.0) / 2.0;
        canary_rank_sum += canary_in_bucket as f64 * midrank;
        tie_sum += tied * tied * tied - tied;
        ranked_below += tied;
    }
    let u = canary_rank_sum - canary_count * (canary_count + 1.0) / 2.0;
    let mean = canary_count * baseline_count / 2.0;
    let variance = canary_count * baseline_count / 12.0
        * ((total + 1.0)
            - if total > 1.0 {
                tie_sum / (total * (total - 1.0))
            } else {
                0.0
            });
    let z = if variance > 0.0 {
        let distance = u - mean;
        let corrected = if distance > 0.5 {
            distance - 0.5
        } else if distance < -0.5 {
            distance + 0.5
        } else {
            0.0
        };
        corrected / variance.sqrt()
    } else {
        0.0
    };
    Some(RankTest {
        z,
        effective_samples: canary_count * baseline_count / total,
    })
}

/// ln of the one-sided mixture likelihood ratio for a standardised statistic `z` after `n`
/// samples, drifts mixed half-normally with scale `tau` per sample:
/// `2 (1+ρ)^(−1/2) exp(z² ρ / (2 (1+ρ))) Φ(z √(ρ/(1+ρ)))`, `ρ = n τ²`.
fn log_half_normal_mixture(z: f64, n: f64, tau: f64) -> f64 {
    let rho = n * tau * tau;
    if rho.is_nan() || rho <= 0.0 || !z.is_finite() {
        return 0.0;
    }
    let shrink = rho / (1.0 + rho);
    std::f64::consts::LN_2 - 0.5 * rho.ln_1p()
        + z * z * shrink / 2.0
        + ln_normal_cdf(z * shrink.sqrt())
}

/// A latency quantile (`q` in 0..=1) from a histogram, interpolating linearly inside the bucket
/// that holds it (the first bucket starts at 0 ms). Latencies beyond the last finite bound
/// (10 000 ms) are not resolved by the histogram: a quantile among them is reported as that
/// bound plus 1 ms, meaning "slower than 10 s". `None` without latencies.
pub fn histogram_quantile_ms(sample: &TrafficSample, q: f64) -> Option<f64> {
    let total: u64 = sample.latency_buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0.0;
    for (index, &count) in sample.latency_buckets.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let count = count as f64;
        let lower = if index == 0 {
            0.0
        } else {
            LATENCY_BUCKET_BOUNDS_MS[index - 1] as f64
        };
        if below + count >= rank {
            if index == LATENCY_BUCKETS - 1 {
                return Some(lower + 1.0);
            }
            let upper = LATENCY_BUCKET_BOUNDS_MS[index] as f64;
            let fraction = ((rank - below) / count).clamp(0.0, 1.0);
            return Some(lower + (upper - lower) * fraction);
        }
        below += count;
    }
    Some(LATENCY_BUCKET_BOUNDS_MS[LATENCY_BUCKETS - 2] as f64 + 1.0)
}

/// The standard normal distribution function Φ.
pub fn normal_cdf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    let x = z / std::f64::consts::SQRT_2;
    if x >= 0.0 {
        1.0 - 0.5 * erfc(x)
    } else {
        0.5 * erfc(-x)
    }
}

/// ln Φ(z), accurate far into the lower tail (where Φ itself underflows).
pub fn ln_normal_cdf(z: f64) -> f64 {
    if z > -5.0 {
        return normal_cdf(z).ln();
    }
    let x = -z / std::f64::consts::SQRT_2;
    ln_erfc_large(x) - std::f64::consts::LN_2
}

/// The complementary error function, erfc(x) = 1 − erf(x), to about 1e-15 relative error:
/// the Maclaurin series of erf below 2.5, a continued fraction (evaluated by Lentz's method)
/// from 2.5 on, and erfc(−x) = 2 − erfc(x) for negative x.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.5 {
        1.0 - erf_series(x)
    } else {
        ln_erfc_large(x).exp()
    }
}

/// erf(x) = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1)), for |x| < 2.5.
fn erf_series(x: f64) -> f64 {
    let x_squared = x * x;
    let mut power_term = x; // (−1)^n x^(2n+1) / n!
    let mut sum = x;
    for n in 1..200 {
        power_term *= -x_squared / n as f64;
        let term = power_term / (2 * n + 1) as f64;
        sum += term;
        if term.abs() < 1e-17 * sum.abs() {
            break;
        }
    }
    sum * std::f64::consts::FRAC_2_SQRT_PI
}

/// ln erfc(x) for x ≥ 2.5 from the continued fraction
/// erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))).
fn ln_erfc_large(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut value = x;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..500 {
        let a = k as f64 / 2.0;
        d = x + a * d;
        if d.abs() < TINY {
            d = TINY;
        }
        d = 1.0 / d;
        c = x + a / c;
        if c.abs() < TINY {
            c = TINY;
        }
        let delta = c * d;
        value *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    -x * x - 0.5 * std::f64::consts::PI.ln() - value.ln()
}

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, nine coefficients; about 1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let shifted = x - 1.0;
    let mut series = COEFFICIENTS[0];
    for (index, coefficient) in COEFFICIENTS.iter().enumerate().skip(1) {
        series += coefficient / (shifted + index as f64);
    }
    let t = shifted + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (shifted + 0.5) * t.ln() - t + series.ln()
}

/// ln P(Binomial(n, p) = k).
fn ln_binomial_pmf(k: u64, n: u64, p: f64) -> f64 {
    let (k_f, n_f) = (k as f64, n as f64);
    ln_gamma(n_f + 1.0) - ln_gamma(k_f + 1.0) - ln_gamma(n_f - k_f + 1.0)
        + k_f * p.ln()
        + (n_f - k_f) * (-p).ln_1p()
}

/// ln P(Binomial(n, p) ≤ k), summing whichever tail is the small one; its terms shrink
/// geometrically away from the mean, so few are needed.
fn ln_binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 0.0;
    }
    let mean = n as f64 * p;
    if (k as f64) < mean {
        // Lower tail, from k down: term(j−1)/term(j) = j(1−p) / ((n−j+1) p) < 1.
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut j = k;
        while j > 0 {
            term *= j as f64 * (1.0 - p) / ((n - j + 1) as f64 * p);
            sum += term;
            if term < sum * 1e-17 {
                break;
            }
            j -= 1;
        }
        ln_binomial_pmf(k, n, p) + sum.ln()
    } else {
        // One minus the upper tail, from k+1 up: term(j+1)/term(j) = (n−j) p / ((j+1)(1−p)) < 1.
        let mut term = 1.0;
        let mut sum = 1.0;
        let mut j = k + 1;
        while j < n {
            term *= (n - j) as f64 * p / ((j + 1) as f64 * (1.0 - p));
            sum += term;
            if term < sum * 1e-17 {
                break;
            }
            j += 1;
        }
        let upper_tail = (ln_binomial_pmf(k + 1, n, p) + sum.ln()).exp();
        (-upper_tail.min(1.0)).ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64, relative: f64) {
        let scale = expected.abs().max(f64::MIN_POSITIVE);
        assert!(
            ((actual - expected) / scale).abs() <= relative,
            "{actual:e} is not within {relative:e} of {expected:e}"
        );
    }

    #[test]
    fn the_normal_distribution_function_matches_known_values() {
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_265),
            (2.4, 0.000_688_513_896_645_078_9),
            (2.5, 0.000_406_952_017_444_958_9),
            (2.6, 0.000_236_034_416_529_349_08),
            (3.0, 2.209_049_699_858_543_8e-5),
            (4.0, 1.541_725_790_028_002e-8),
            (6.0, 2.151_973_671_249_891_6e-17),
            (10.0, 2.088_487_583_762_545e-45),
        ] {
            assert_close(erfc(x), expected, 1e-12);
            assert_close(erfc(-x), 2.0 - expected, 1e-14);
        }
        for (z, expected) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746_068_542_9),
            (1.96, 0.975_002_104_851_779_5),
            (-1.0, 0.158_655_253_931_457_07),
            (-2.0, 0.022_750_131_948_179_22),
            (-3.0, 0.001_349_898_031_630_095_7),
            (-5.0, 2.866_515_718_791_946e-7),
            (-8.0, 6.220_960_574_271_819e-16),
            (-10.0, 7.619_853_024_160_593e-24),
        ] {
            // The brief asks for 1e-7; this is far tighter, and relative in the tail.
            assert_close(normal_cdf(z), expected, 1e-12);
            assert_close(ln_normal_cdf(z), expected.ln(), 1e-12);
        }
        assert_close(
            ln_normal_cdf(-20.0),
            2.753_624_118_606_331_4e-89_f64.ln(),
            1e-12,
        );
        assert_close(
            ln_normal_cdf(-37.0),
            5.725_571_222_525_139e-300_f64.ln(),
            1e-12,
        );
        assert!(ln_normal_cdf(-60.0).is_finite());
        assert_eq!(normal_cdf(40.0), 1.0);
    }

    #[test]
    fn log_gamma_matches_known_values() {
        assert_close(ln_gamma(0.5), 0.572_364_942_924_700_4, 1e-13);
        assert_close(ln_gamma(3.7), 1.428_072_326_665_388_3, 1e-13);
        assert_close(ln_gamma(10.0), 12.801_827_480_081_467, 1e-14);
        assert_close(ln_gamma(1e6), 12_815_504.569_147_611, 1e-14);
        assert!(ln_gamma(1.0).abs() < 1e-14 && ln_gamma(2.0).abs() < 1e-14);
    }

    fn brute_binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
        let mut coefficient = 1.0;
        let mut total = 0.0;
        for j in 0..=k.min(n) {
            if j > 0 {
                coefficient *= (n - j + 1) as f64 / j as f64;
            }
            total += coefficient * p.powi(j as i32) * (1.0 - p).powi((n - j) as i32);
        }
        total
    }

    #[test]
    fn binomial_tails_match_direct_sums() {
        for n in [1, 2, 5, 17, 60] {
            for p in [0.01, 0.1, 0.37, 0.9] {
                for k in 0..=n {
                    let expected = brute_binomial_cdf(k, n, p);
                    assert_close(ln_binomial_cdf(k, n, p).exp(), expected, 1e-11);
                }
            }
        }
        // Far tails stay finite and accurate in log space.
        assert_close(
            ln_binomial_cdf(0, 10_000, 0.1),
            10_000.0 * 0.9_f64.ln(),
            1e-12,
        );
    }

    #[test]
    fn the_error_share_statistic_is_a_fair_bet_under_the_null() {
        // E[E_K] = 1 for every number of errors K when each error is the canary's with
        // probability π: the property Ville's inequality needs.
        for share in [0.05, 0.1, 0.25, 0.5] {
            for all_errors in [0_u64, 1, 2, 5, 20, 80] {
                let mut expectation = 0.0;
                for canary_errors in 0..=all_errors {
                    let probability = ln_binomial_pmf(canary_errors, all_errors, share).exp();
                    let e_value =
                        log_error_share_mixture(canary_errors, all_errors - canary_errors, share)
                            .exp();
                    expectation += probability * e_value;
                }
                assert_close(expectation, 1.0, 1e-9);
            }
        }
        assert_close(log_error_share_mixture(0, 0, 0.1).exp(), 1.0, 1e-12);
        // Four errors, all on a 10 % canary: (1/5) / (0.1⁴ · 0.9) · P(Bin(5, 0.1) ≤ 4).
        let expected = 0.2 / (1e-4 * 0.9) * (1.0 - 1e-5);
        assert_close(log_error_share_mixture(4, 0, 0.1).exp(), expected, 1e-10);
    }

    fn histogram(latencies_ms: &[u64]) -> TrafficSample {
        let mut sample = TrafficSample::default();
        for &latency in latencies_ms {
            sample.record(latency, false);
        }
        sample
    }

    #[test]
    fn mann_whitney_counts_ties_as_midranks() {
        // Canary {7, 30, 70, 70}, baseline {1, 7, 7}: buckets ≤5 ms holds 1 request (rank 1),
        // ≤10 ms holds 3 (ranks 2..4, midrank 3), ≤50 ms one (rank 5), ≤75 ms two (midrank 6.5).
        let canary = histogram(&[7, 30, 70, 70]);
        let baseline = histogram(&[1, 7, 7]);
        let test = mann_whitney(&canary.latency_buckets, &baseline.latency_buckets).unwrap();
        let rank_sum = 3.0 + 5.0 + 6.5 + 6.5;
        let u = rank_sum - 4.0 * 5.0 / 2.0;
        let ties = (27.0 - 3.0) + (8.0 - 2.0);
        let variance: f64 = 4.0 * 3.0 / 12.0 * (8.0 - ties / 42.0);
        let expected_z = (u - 6.0 - 0.5) / variance.sqrt();
        assert_close(test.z, expected_z, 1e-12);
        assert_close(test.effective_samples, 12.0 / 7.0, 1e-12);
        let swapped = mann_whitney(&baseline.latency_buckets, &canary.latency_buckets).unwrap();
        assert_close(swapped.z, -expected_z, 1e-12);
        assert!(mann_whitney(&canary.latency_buckets, &[0; LATENCY_BUCKETS]).is_none());
        let same = mann_whitney(&canary.latency_buckets, &canary.latency_buckets).unwrap();
        assert_eq!(same.z, 0.0);
    }

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        // 100 requests: 50 in ≤50 ms (25..50), 50 in ≤75 ms (50..75).
        let mut sample = TrafficSample::default();
        sample.latency_buckets[3] = 50;
        sample.latency_buckets[4] = 50;
        assert_close(histogram_quantile_ms(&sample, 0.5).unwrap(), 50.0, 1e-12);
        assert_close(histogram_quantile_ms(&sample, 0.25).unwrap(), 37.5, 1e-12);
        assert_close(histogram_quantile_ms(&sample, 0.95).unwrap(), 72.5, 1e-12);
        sample.latency_buckets[LATENCY_BUCKETS - 1] = 10;
        assert_eq!(histogram_quantile_ms(&sample, 0.99), Some(10_001.0));
        assert_eq!(histogram_quantile_ms(&TrafficSample::default(), 0.5), None);
    }

    /// splitmix64: a small, well-mixed deterministic generator for the simulations.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    /// A release's behaviour: its error rate and a log-normal latency distribution (median,
    /// spread, plus a fixed delay), as thresholds for 21-bit random fields.
    struct ReleaseModel {
        error_threshold: u64,
        /// Cumulative bucket probabilities.
        bucket_thresholds: [u64; LATENCY_BUCKETS],
    }

    const FIELD_BITS: i32 = 21;
    const FIELD_MASK: u64 = (1 << FIELD_BITS) - 1;

    fn field_threshold(probability: f64) -> u64 {
        (probability.clamp(0.0, 1.0) * 2f64.powi(FIELD_BITS)).round() as u64
    }

    fn release(error_rate: f64, median_ms: f64, spread: f64, delay_ms: f64) -> ReleaseModel {
        let mut bucket_thresholds = [FIELD_MASK + 1; LATENCY_BUCKETS];
        for (index, bound) in LATENCY_BUCKET_BOUNDS_MS[..LATENCY_BUCKETS - 1]
            .iter()
            .enumerate()
        {
            let own_part = *bound as f64 - delay_ms;
            let probability = if own_part <= 0.0 {
                0.0
            } else {
                normal_cdf((own_part.ln() - median_ms.ln()) / spread)
            };
            bucket_thresholds[index] = field_threshold(probability);
        }
        ReleaseModel {
            error_threshold: field_threshold(error_rate),
            bucket_thresholds,
        }
    }

    fn healthy() -> ReleaseModel {
        // 0.2 % errors; median 80 ms, p95 about 215 ms (about 230 ms read from the histogram).
        release(0.002, 80.0, 0.6, 0.0)
    }

    /// Serves one second of `requests_per_second` requests, each routed to the canary with
    /// probability `canary_weight`, into the two cumulative samples. One 64-bit draw per request
    /// gives three independent 21-bit fields: routing, error, latency bucket.
    fn serve_second(
        random: &mut SplitMix64,
        requests_per_second: u32,
        canary_weight: f64,
        models: (&ReleaseModel, &ReleaseModel),
        samples: (&mut TrafficSample, &mut TrafficSample),
    ) {
        let route_threshold = field_threshold(canary_weight);
        let (canary_model, baseline_model) = models;
        let (canary, baseline) = samples;
        // A plain loop: in unoptimised test builds a range iterator costs more than the work.
        let mut served = 0;
        while served < requests_per_second {
            served += 1;
            let draw = random.next_u64();
            let (model, sample) = if draw & FIELD_MASK < route_threshold {
                (canary_model, &mut *canary)
            } else {
                (baseline_model, &mut *baseline)
            };
            let is_error = (draw >> FIELD_BITS) & FIELD_MASK < model.error_threshold;
            let latency_field = (draw >> (2 * FIELD_BITS)) & FIELD_MASK;
            let mut bucket = 0;
            while bucket < LATENCY_BUCKETS - 1 && latency_field >= model.bucket_thresholds[bucket] {
                bucket += 1;
            }
            sample.requests += 1;
            sample.errors += u64::from(is_error);
            sample.latency_buckets[bucket] += 1;
            sample.latency_total_ms += LATENCY_BUCKET_BOUNDS_MS[bucket].min(20_000);
        }
    }

    /// One simulated step at 100 requests per second: the look (1-based) at which the analysis
    /// failed the canary, or `None` if it never did within `seconds`.
    fn simulate_step(
        seed: u64,
        canary_model: &ReleaseModel,
        baseline_model: &ReleaseModel,
        canary_weight: f64,
        seconds: u32,
        policy: &AnalysisPolicy,
    ) -> (Option<u32>, Comparison) {
        simulate_step_with_reference(
            seed,
            (canary_model, baseline_model),
            None,
            canary_weight,
            seconds,
            policy,
        )
    }

    /// [`simulate_step`] with the stable release's recorded traffic.
    fn simulate_step_with_reference(
        seed: u64,
        (canary_model, baseline_model): (&ReleaseModel, &ReleaseModel),
        reference: Option<&TrafficSample>,
        canary_weight: f64,
        seconds: u32,
        policy: &AnalysisPolicy,
    ) -> (Option<u32>, Comparison) {
        let mut random = SplitMix64(seed);
        let mut canary = TrafficSample::default();
        let mut baseline = TrafficSample::default();
        let mut last = None;
        for look in 0..seconds {
            serve_second(
                &mut random,
                100,
                canary_weight,
                (canary_model, baseline_model),
                (&mut canary, &mut baseline),
            );
            let comparison = compare_with_reference(&canary, &baseline, reference, look, policy);
            if comparison.verdict == Verdict::Fail {
                return (Some(look + 1), comparison);
            }
            last = Some(comparison);
        }
        (None, last.expect("at least one look"))
    }

    /// Runs `runs` simulated steps on two threads; returns the failing look of each run.
    fn simulate_many(
        runs: u64,
        seed: u64,
        canary_model: fn() -> ReleaseModel,
        canary_weight: f64,
        seconds: u32,
        policy: &AnalysisPolicy,
    ) -> Vec<Option<u32>> {
        let half = runs / 2;
        let run_range = |range: std::ops::Range<u64>| -> Vec<Option<u32>> {
            let canary = canary_model();
            let baseline = healthy();
            range
                .map(|run| {
                    let run_seed = seed ^ run.wrapping_mul(0xD1B5_4A32_D192_ED03);
                    simulate_step(run_seed, &canary, &baseline, canary_weight, seconds, policy).0
                })
                .collect()
        };
        std::thread::scope(|scope| {
            let first = scope.spawn(|| run_range(0..half));
            let mut second = run_range(half..runs);
            let mut results = first.join().expect("simulation thread");
            results.append(&mut second);
            results
        })
    }

    fn looks_summary(results: &[Option<u32>]) -> String {
        let mut looks: Vec<u32> = results.iter().flatten().copied().collect();
        looks.sort_unstable();
        let at = |fraction: f64| {
            looks
                .get(((looks.len() as f64 * fraction).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(0)
        };
        format!(
            "{} of {} failed; looks to fail: median {}, 90th percentile {}, 99th {}, max {}",
            looks.len(),
            results.len(),
            at(0.5),
            at(0.9),
            at(0.99),
            looks.last().copied().unwrap_or(0)
        )
    }

    fn single_step_policy() -> AnalysisPolicy {
        let plan = crate::core::plan::preset("Canary10Percent5Minutes")
            .expect("preset")
            .with_watch(std::time::Duration::ZERO);
        AnalysisPolicy::default().for_plan(&plan)
    }

    fn seed_plan_policy() -> AnalysisPolicy {
        let plan = crate::core::plan::preset("SeedCanary")
            .expect("preset")
            .with_watch(std::time::Duration::ZERO);
        AnalysisPolicy::default().for_plan(&plan)
    }

    /// R-QUALITY-3 (docs/requirements.md): healthy canaries are promoted, not rolled back, in at least 99 of 100 runs.
    /// 2,000 five-minute rollouts at 100 requests per second, 10 % on the canary, one look per
    /// second, both releases at 0.2 % errors with the same latencies.
    #[test]
    fn healthy_canaries_fail_less_often_than_the_stated_rate() {
        let policy = single_step_policy();
        assert_eq!(policy.alpha_per_step(), 0.01);
        let runs = 2_000;
        let results = simulate_many(runs, 1, healthy, 0.1, 300, &policy);
        let failed = results.iter().flatten().count();
        eprintln!(
            "healthy canaries, 5-minute bakes: {}",
            looks_summary(&results)
        );
        // The guarantee is at most 1 %; demand half of it, so a regression towards the bound shows.
        assert!(
            failed as f64 <= 0.005 * runs as f64,
            "{failed} of {runs} healthy rollouts failed"
        );
    }

    /// R-QUALITY-1: 20 % errors at 10 % of 100 requests per second fail within 2 looks.
    #[test]
    fn a_canary_failing_one_request_in_five_fails_within_two_looks() {
        let policy = seed_plan_policy();
        // The nominal traffic: each second 10 canary requests (2 failing) and 90 baseline
        // requests failing at 0.2 % (one error every 5.6 seconds).
        let mut canary = TrafficSample::default();
        let mut baseline = TrafficSample::default();
        let mut failed_at = None;
        for second in 1..=10_u64 {
            for request in 0..10 {
                canary.record(80, request < 2);
            }
            for _ in 0..90 {
                baseline.record(80, false);
            }
            baseline.errors = (second * 90) / 500;
            let comparison = compare(&canary, &baseline, second as u32 - 1, &policy);
            if comparison.verdict == Verdict::Fail {
                assert!(comparison.error_test.fails(), "{comparison:?}");
                assert!(
                    comparison.reasons[0].contains("fails more requests"),
                    "{comparison:?}"
                );
                failed_at = Some(second);
                break;
            }
        }
        assert_eq!(failed_at, Some(2));

        // With random routing and random errors, as the router would see them.
        let results = simulate_many(1_000, 3, || release(0.20, 80.0, 0.6, 0.0), 0.1, 60, &policy);
        let within_two = results
            .iter()
            .filter(|look| look.is_some_and(|look| look <= 2))
            .count();
        eprintln!(
            "20 % errors: {}; {within_two} within two looks",
            looks_summary(&results)
        );
        let mut looks: Vec<u32> = results
            .iter()
            .map(|look| look.unwrap_or(u32::MAX))
            .collect();
        looks.sort_unstable();
        assert!(
            looks[looks.len() / 2] <= 2,
            "median look {}",
            looks[looks.len() / 2]
        );
        assert!(
            looks[looks.len() - 1] <= 10,
            "slowest look {}",
            looks[looks.len() - 1]
        );
    }

    /// R-QUALITY-2: 0.8 % against 0.2 % (both under the 1 % alarm) is caught.
    #[test]
    fn a_canary_at_four_times_the_baseline_error_rate_is_caught() {
        let policy = seed_plan_policy();
        let runs = 400;
        let bad = || release(0.008, 80.0, 0.6, 0.0);
        let first_step = simulate_many(runs, 5, bad, 0.1, 300, &policy);
        let caught_in_first = first_step.iter().flatten().count();
        eprintln!(
            "0.8 % errors, 10 % for 5 minutes: {}",
            looks_summary(&first_step)
        );
        // `SeedCanary`'s second step (25 % for 10 minutes, R-CANARY-2) for those the first step
        // missed.
        let (canary, baseline) = (bad(), healthy());
        let second_step: Vec<Option<u32>> = first_step
            .iter()
            .enumerate()
            .filter(|(_, look)| look.is_none())
            .map(|(run, _)| {
                simulate_step(run as u64 + 77_777, &canary, &baseline, 0.25, 600, &policy).0
            })
            .collect();
        eprintln!(
            "   then 25 % for 10 minutes: {}",
            looks_summary(&second_step)
        );
        let caught = caught_in_first + second_step.iter().flatten().count();
        assert!(
            caught_in_first as f64 >= 0.75 * runs as f64,
            "only {caught_in_first} of {runs} caught in the first step"
        );
        assert!(
            caught as f64 >= 0.99 * runs as f64,
            "only {caught} of {runs} caught by the second step"
        );
    }

    #[test]
    fn a_canary_500_ms_slower_fails_within_two_or_three_looks() {
        let policy = seed_plan_policy();
        let results = simulate_many(
            400,
            11,
            || release(0.002, 80.0, 0.6, 500.0),
            0.1,
            60,
            &policy,
        );
        eprintln!("+500 ms: {}", looks_summary(&results));
        assert!(results
            .iter()
            .all(|look| look.is_some_and(|look| look <= 3)));
        let within_two = results
            .iter()
            .filter(|look| look.is_some_and(|look| look <= 2))
            .count();
        assert!(within_two >= 396, "{within_two} of 400 within two looks");
        let slower = simulate_step(
            12,
            &release(0.002, 80.0, 0.6, 500.0),
            &healthy(),
            0.1,
            60,
            &policy,
        )
        .1;
        assert!(
            slower.latency_test.fails() && !slower.error_test.fails(),
            "{slower:?}"
        );
        assert!(
            slower.reasons[0].starts_with("the canary is slower: p95"),
            "{:?}",
            slower.reasons
        );
    }

    /// The stable release's 15 minutes before the rollout at 100 requests per second and 0.2 %
    /// errors: 90,000 requests, the errors drawn from the normal approximation of their binomial.
    fn recorded_reference(random: &mut SplitMix64) -> TrafficSample {
        let uniform = |random: &mut SplitMix64| {
            ((random.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let z = (-2.0 * uniform(random).ln()).sqrt()
            * (2.0 * std::f64::consts::PI * uniform(random)).cos();
        let (requests, rate): (f64, f64) = (90_000.0, 0.002);
        let errors = (requests * rate + z * (requests * rate * (1.0 - rate)).sqrt()).round();
        TrafficSample {
            requests: requests as u64,
            errors: errors.max(0.0) as u64,
            ..TrafficSample::default()
        }
    }

    /// The bench's plan: a 10 % step of 5 minutes, then the 15-minute watch (two compared steps).
    fn watched_canary_policy() -> AnalysisPolicy {
        let plan = crate::core::plan::preset("Canary10Percent5Minutes").expect("preset");
        AnalysisPolicy::default().for_plan(&plan)
    }

    /// Healthy canaries against a recorded reference, early-errors bets on: still within the
    /// budget. 2,000 five-minute steps at 10 % of 100 requests per second, at α = 1 % per step
    /// (the single-step policy, the largest budget a step gets).
    #[test]
    fn early_error_bets_keep_healthy_canaries_within_the_budget() {
        let policy = single_step_policy();
        assert!(policy.early_errors);
        let runs = 2_000_u64;
        let (canary, baseline) = (healthy(), healthy());
        let failed = std::thread::scope(|scope| {
            let half = |range: std::ops::Range<u64>| {
                let (canary, baseline, policy) = (&canary, &baseline, &policy);
                move || {
                    range
                        .filter(|run| {
                            let seed = 31 ^ run.wrapping_mul(0xD1B5_4A32_D192_ED03);
                            let reference = recorded_reference(&mut SplitMix64(!seed));
                            simulate_step_with_reference(
                                seed,
                                (canary, baseline),
                                Some(&reference),
                                0.1,
                                300,
                                policy,
                            )
                            .0
                            .is_some()
                        })
                        .count()
                }
            };
            let first = scope.spawn(half(0..runs / 2));
            let second = half(runs / 2..runs)();
            first.join().expect("simulation thread") + second
        });
        eprintln!("healthy canaries with early-errors bets: {failed} of {runs} failed");
        // As for the share test alone: demand half of the 1 % bound.
        assert!(
            failed as f64 <= 0.005 * runs as f64,
            "{failed} of {runs} healthy rollouts failed"
        );
    }

    /// A canary failing one request in five is failed by its second failure when the stable
    /// release's recorded rate is known, and not on so little evidence without it.
    #[test]
    fn two_early_failures_fail_the_canary_against_a_recorded_reference() {
        let policy = watched_canary_policy();
        assert_eq!(policy.alpha_per_step(), 0.005);
        let reference = traffic(90_000, 180, 80);
        // 1.2 seconds in: 12 canary requests, 2 failed; 108 baseline requests, none failed.
        let (canary, baseline) = (traffic(12, 2, 80), traffic(108, 0, 80));
        let with = compare_with_reference(&canary, &baseline, Some(&reference), 4, &policy);
        assert_eq!(with.verdict, Verdict::Fail, "{:?}", with.reasons);
        assert!(with.error_test.fails());
        assert!(
            with.reasons[0].contains("2 of the canary's first 12 requests failed"),
            "{:?}",
            with.reasons
        );
        assert!(
            with.error_test.method.ends_with(
                "(uniform mixture likelihood ratio, weight 0.45), averaged with bets on early canary failures against the stable release's recorded error rate (2 of the first 25 requests, weight 0.50; 3 of the first 40, weight 0.05)"
            ),
            "{}",
            with.error_test.method
        );
        let without = compare(&canary, &baseline, 4, &policy);
        assert_ne!(without.verdict, Verdict::Fail, "{:?}", without.reasons);
        let switched_off = AnalysisPolicy {
            early_errors: false,
            ..policy.clone()
        };
        let off = compare_with_reference(&canary, &baseline, Some(&reference), 4, &switched_off);
        assert_eq!(off.error_test, without.error_test);

        // Random traffic: every one of 1,000 such canaries is failed, the median at look 2.
        let results: Vec<Option<u32>> = (0..1_000_u64)
            .map(|run| {
                let seed = 41 ^ run.wrapping_mul(0xD1B5_4A32_D192_ED03);
                simulate_step_with_reference(
                    seed,
                    (&release(0.20, 80.0, 0.6, 0.0), &healthy()),
                    Some(&reference),
                    0.1,
                    60,
                    &policy,
                )
                .0
            })
            .collect();
        eprintln!(
            "20 % errors with early-errors bets: {}",
            looks_summary(&results)
        );
        assert!(results.iter().all(Option::is_some));

        // An outage downstream failing the baseline too: the early windows do not bet.
        let outage = compare_with_reference(
            &traffic(12, 2, 80),
            &traffic(108, 6, 80),
            Some(&reference),
            4,
            &policy,
        );
        assert_ne!(outage.verdict, Verdict::Fail, "{:?}", outage.reasons);
    }

    fn traffic(requests: u64, errors: u64, latency_ms: u64) -> TrafficSample {
        let mut sample = TrafficSample {
            requests,
            errors,
            latency_total_ms: requests * latency_ms,
            ..TrafficSample::default()
        };
        sample.latency_buckets[crate::core::traffic::latency_bucket(latency_ms)] = requests;
        sample
    }

    #[test]
    fn too_little_traffic_is_inconclusive_never_a_pass() {
        let policy = AnalysisPolicy::default();
        let comparison = compare(&traffic(37, 0, 80), &traffic(5_000, 10, 80), 4, &policy);
        assert_eq!(comparison.verdict, Verdict::Inconclusive);
        assert_eq!(comparison.look, 5);
        assert_eq!(
            comparison.reasons[0],
            "the canary has 37 requests; at least 200 are needed"
        );

        let comparison = compare(&traffic(300, 0, 80), &traffic(150, 0, 80), 0, &policy);
        assert_eq!(comparison.verdict, Verdict::Inconclusive);
        assert_eq!(
            comparison.reasons[0],
            "the baseline has 150 requests; at least 200 are needed"
        );

        let idle = compare(
            &TrafficSample::default(),
            &traffic(5_000, 10, 80),
            0,
            &policy,
        );
        assert_eq!(idle.verdict, Verdict::Inconclusive);
        assert!(!idle.error_test.ran && !idle.latency_test.ran);

        let no_latencies = TrafficSample {
            requests: 500,
            ..TrafficSample::default()
        };
        let blind = compare(&no_latencies, &traffic(5_000, 10, 80), 0, &policy);
        assert_eq!(blind.verdict, Verdict::Inconclusive);
        assert!(blind
            .reasons
            .iter()
            .any(|reason| reason.contains("no latency histogram")));

        let fine = compare(&traffic(300, 1, 80), &traffic(2_700, 5, 80), 0, &policy);
        assert_eq!(fine.verdict, Verdict::Pass, "{:?}", fine.reasons);
    }

    #[test]
    fn strong_evidence_fails_even_with_few_requests() {
        // 8 of 20 canary requests failed while the baseline served 180 without one.
        let comparison = compare(
            &traffic(20, 8, 80),
            &traffic(180, 0, 80),
            1,
            &AnalysisPolicy::default(),
        );
        assert_eq!(comparison.verdict, Verdict::Fail);
        assert!(comparison.error_test.p_value <= comparison.error_test.alpha);
    }

    #[test]
    fn without_baseline_traffic_only_the_ceiling_can_fail() {
        let policy = AnalysisPolicy::default();
        let nothing = TrafficSample::default();
        let over = compare(&traffic(20, 2, 80), &nothing, 0, &policy);
        assert_eq!(over.verdict, Verdict::Fail);
        assert!(over.reasons[0].contains("ceiling"), "{:?}", over.reasons);
        let at_ceiling = compare(&traffic(20, 1, 80), &nothing, 0, &policy);
        assert_eq!(at_ceiling.verdict, Verdict::Inconclusive);
        let too_few = compare(&traffic(19, 5, 80), &nothing, 0, &policy);
        assert_eq!(too_few.verdict, Verdict::Inconclusive);
        let healthy_alone = compare(&traffic(50_000, 100, 80), &nothing, 0, &policy);
        assert_eq!(healthy_alone.verdict, Verdict::Inconclusive);
        assert!(
            healthy_alone.reasons[0].contains("no traffic to compare"),
            "{:?}",
            healthy_alone.reasons
        );
    }

    #[test]
    fn differences_below_the_floors_never_fail() {
        let policy = AnalysisPolicy::default();
        // 0.25 % against 0.20 % on a million canary requests: real, but only 0.05 points.
        let comparison = compare(
            &traffic(1_000_000, 2_500, 80),
            &traffic(9_000_000, 18_000, 80),
            0,
            &policy,
        );
        assert!(comparison.error_test.significant, "{comparison:?}");
        assert!(!comparison.error_test.floor_met);
        assert_eq!(comparison.verdict, Verdict::Pass);
        assert!(comparison
            .reasons
            .iter()
            .any(|reason| reason.contains("smaller than the effect floors")));

        // 0.6 % against 0.2 %: three times the rate, but only 0.4 points apart.
        let small_gap = compare(
            &traffic(1_000_000, 6_000, 80),
            &traffic(9_000_000, 18_000, 80),
            0,
            &policy,
        );
        assert_eq!(small_gap.verdict, Verdict::Pass);

        // 1.2 % against 0.7 %: 0.5 points apart, but less than twice the rate.
        let small_ratio = compare(
            &traffic(1_000_000, 12_000, 80),
            &traffic(9_000_000, 63_000, 80),
            0,
            &policy,
        );
        assert!(small_ratio.error_test.significant && !small_ratio.error_test.floor_met);
        assert_eq!(small_ratio.verdict, Verdict::Pass);

        // Every canary request 60 → 90 ms: slower for certain, but p95 moves by less than 100 ms.
        let slower = compare(
            &traffic(100_000, 0, 60),
            &traffic(900_000, 0, 90),
            0,
            &policy,
        );
        assert!(slower.latency_test.statistic < 0.0);
        let slower = compare(
            &traffic(100_000, 0, 90),
            &traffic(900_000, 0, 60),
            0,
            &policy,
        );
        assert!(
            slower.latency_test.significant && !slower.latency_test.floor_met,
            "{slower:?}"
        );
        assert_eq!(slower.verdict, Verdict::Pass);

        // 60 → 700 ms clears both latency floors.
        let much_slower = compare(&traffic(1_000, 0, 700), &traffic(9_000, 0, 60), 0, &policy);
        assert_eq!(much_slower.verdict, Verdict::Fail);
        assert!(much_slower.latency_test.fails());
    }

    #[test]
    fn evidence_serialises_with_finite_numbers() {
        let comparison = compare(
            &traffic(100_000, 50_000, 700),
            &traffic(900_000, 10, 60),
            0,
            &AnalysisPolicy::default(),
        );
        assert_eq!(comparison.verdict, Verdict::Fail);
        assert!(comparison.error_test.e_value.is_finite() && comparison.error_test.p_value > 0.0);
        let json = serde_json::to_string(&comparison).unwrap();
        let back: Comparison = serde_json::from_str(&json).unwrap();
        assert_eq!(back.verdict, comparison.verdict);
        assert_eq!(back.reasons, comparison.reasons);
        assert_eq!(back.canary, comparison.canary);
        let relative = (back.error_test.e_value / comparison.error_test.e_value - 1.0).abs();
        assert!(relative < 1e-12);
        assert!(json.contains("\"verdict\":\"fail\""), "{json}");
    }

    #[test]
    fn the_policy_splits_its_budget_and_reads_partial_configuration() {
        let policy = AnalysisPolicy::default();
        assert!((policy.alpha_per_step() - 0.01 / 3.0).abs() < 1e-15);
        // Nine steps beside the baseline plus the watch against the recorded baseline.
        let linear = crate::core::plan::preset("Linear10PercentEvery1Minute").unwrap();
        assert_eq!(policy.for_plan(&linear).steps_per_rollout, 10);
        let unwatched = linear.with_watch(std::time::Duration::ZERO);
        assert_eq!(policy.for_plan(&unwatched).steps_per_rollout, 9);
        let all_at_once = crate::core::plan::preset("AllAtOnce").unwrap();
        assert_eq!(policy.for_plan(&all_at_once).steps_per_rollout, 1);
        let comparison = compare(&traffic(300, 0, 80), &traffic(3_000, 0, 80), 0, &policy);
        assert!((comparison.alpha_this_look - 0.01 / 3.0).abs() < 1e-15);
        assert!((comparison.error_test.alpha - 0.01 / 6.0).abs() < 1e-15);

        let partial: AnalysisPolicy =
            serde_json::from_str(r#"{"false_positive_rate": 0.05}"#).unwrap();
        assert_eq!(partial.false_positive_rate, 0.05);
        assert_eq!(partial.min_canary_requests, 200);
        assert!(serde_json::from_str::<AnalysisPolicy>(r#"{"max_lookz": 3}"#).is_err());
        policy.validate().unwrap();
        let broken = AnalysisPolicy {
            latency_quantile: 95.0,
            ..AnalysisPolicy::default()
        };
        assert!(broken
            .validate()
            .unwrap_err()
            .starts_with("latency_quantile"));
    }
}
