//! The early-errors test: a canary whose first requests fail far more often than the stable
//! release did over its recorded reference window is failed after two or three errors.
//!
//! # The test
//!
//! A broken release shows itself in its first requests. For each window `(k, m)` of
//! [`EARLY_WINDOWS`] the test bets on the event "at least `k` of the canary's first `m` requests of
//! the step fail". Under the healthy model (the canary fails requests at the rate the stable
//! release failed them in its reference window, [`crate::core::watch`]), the canary's first `m`
//! requests and the reference's `N` requests are exchangeable: given the `K` errors among all
//! `N + m` of them, the canary's share is hypergeometric, whatever the common rate is. So
//! `E = 1{event} / P(Hypergeometric(N + m, K, m) ≥ k)` is an exact e-value (its expectation is 1),
//! and the event is a two-error, fixed-sample test turned into a bet.
//!
//! `K` includes the window's own errors, which are not all known when the event is seen. The tail
//! grows with `K`, so the test uses the largest `K` the data so far allows: at a look where the
//! canary served `n ≤ m` requests of which `x` failed, the window holds at most `x + (m − n)`
//! errors, so `K ≤ K_ref + x + m − n`. Whatever the window's last `m − n` requests do, the exact
//! value is at least the reported one, so the reported one is at most `E[E_exact | data so far]`.
//! (Bounding by `K_ref + m`, all `m` requests failing, is valid too but gives away a factor of
//! about `((K_ref + m) / (K_ref + x + m − n))^k` for nothing.)
//! The event counts only at a look where the canary has served at most `m` requests (the counts
//! are cumulative, so a later look cannot tell which errors were among the first `m`); a missed
//! event only lowers the value.
//!
//! # Why mixing it in keeps the false-positive guarantee
//!
//! The error statistic becomes `w_live · E_share + Σ w_(k,m) · E_(k,m)` with weights summing to 1
//! ([`LIVE_SHARE_WEIGHT`] and the windows' weights). Under the healthy model each term is bounded
//! by a test martingale on the same data: `E_share` is one (the live comparison, unchanged), and
//! each `E_(k,m)` reported at a look is at most the Doob martingale `E[E_exact | data so far]` of
//! the exact e-value, which starts at 1. A weighted average of test martingales with weights
//! summing to 1 is a test martingale, so by Ville's inequality the statistic ever reaches `1/a`
//! with probability at most `a`: averaging, not taking the largest, is what keeps the bound. The
//! guard below only ever lowers the statistic, so it keeps the bound too.
//!
//! While the bets are on, the error test takes [`ERROR_BUDGET_SHARE`] of the step's budget and
//! the latency test the rest; the step's bound is the sum of the two (a union bound), so it holds
//! whatever the split.
//!
//! The healthy model here is stronger than the live comparison's: it assumes the stable release
//! fails requests now as it did in the reference window. When the live baseline contradicts that
//! (its errors so far are improbable at the recorded rate, [`GUARD_P_VALUE`]), the early windows
//! bet nothing, so a failure that hits both releases (an outage downstream) is left to the live
//! comparison, which allows a common rate that changes over time.

use super::ln_gamma;
use crate::core::traffic::TrafficSample;

/// The weight of the live share test (the comparison with the baseline over the same window) in
/// the mixture. The early windows share the rest.
pub const LIVE_SHARE_WEIGHT: f64 = 0.45;

/// The error test's share of a step's false-positive budget when the early windows bet: three
/// quarters: with one canary step and a watch (`Canary10Percent5Minutes`, a budget of 0.005 a
/// step) the error test fires at 1/0.00375 ≈ 267 instead of 400, and the
/// two-failure window's bet reaches it at the earliest looks. The latency test's threshold rises
/// from 400 to 800, a few more slow requests for a slow canary (ln 2 more evidence: its
/// statistic grows exponentially in the requests seen). Without a recorded reference the two
/// tests share the budget equally.
pub const ERROR_BUDGET_SHARE: f64 = 0.75;

/// One early window: at least `errors` failures among the canary's first `requests` requests of a
/// step, with the weight of its bet in the mixture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarlyWindow {
    pub errors: u64,
    pub requests: u64,
    pub weight: f64,
}

/// The windows. A canary failing one request in five (the rollback-speed bar of
/// `docs/benchmarks.md`) shows 2 failures in its first 25 requests with probability 0.97 and 3 in
/// its first 40 with probability 0.99; a canary at the stable release's 0.2 % does so with
/// probabilities near 1.2e-3 and 1e-5.
///
/// Why 25: a rule needing a second failure waits for it, and at 10 canary requests per second,
/// with 20 in the window, the 7 % of such canaries whose second failure came after their 20th
/// request were left to the three-failure window, which put the p95 from the first failed
/// response to weight 0 at the 2 s bar; with 25 that share is 3 %. The window's bet must still
/// reach the error test's threshold at the earliest looks, where its tail is priced as if every
/// unseen request of the window failed: with a weight of 0.50 it does at such a plan's 267
/// ([`ERROR_BUDGET_SHARE`]) against 15 minutes of recorded traffic at 0.2 %. The replay benchmark
/// (`opsd/benches/rollout_bench.rs`) compares the rule with the one before it on the same traffic.
pub const EARLY_WINDOWS: [EarlyWindow; 2] = [
    EarlyWindow {
        errors: 2,
        requests: 25,
        weight: 0.50,
    },
    EarlyWindow {
        errors: 3,
        requests: 40,
        weight: 0.05,
    },
];

/// The early-errors test's shape: the live share test's weight and the windows sharing the rest
/// (the weights sum to 1). [`EarlyErrorsRule::SHIPPED`] is the one opsd uses; the replay benchmark
/// (`opsd/benches/rollout_bench.rs`) measures others against it on the same traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarlyErrorsRule {
    pub live_share_weight: f64,
    pub windows: &'static [EarlyWindow],
    /// The share of a step's false-positive budget the error test takes when the bets are on
    /// (the latency test gets the rest; without the bets the two tests share it equally).
    pub error_budget_share: f64,
}

impl EarlyErrorsRule {
    /// [`LIVE_SHARE_WEIGHT`] and [`EARLY_WINDOWS`].
    pub const SHIPPED: EarlyErrorsRule = EarlyErrorsRule {
        live_share_weight: LIVE_SHARE_WEIGHT,
        windows: &EARLY_WINDOWS,
        error_budget_share: ERROR_BUDGET_SHARE,
    };

    /// Whether the weights are positive and sum to 1 (the mixture's validity needs it) and the
    /// error test's share of the budget is a fraction.
    pub fn is_valid(&self) -> bool {
        if !(self.error_budget_share > 0.0 && self.error_budget_share < 1.0) {
            return false;
        }
        let weights = std::iter::once(self.live_share_weight)
            .chain(self.windows.iter().map(|window| window.weight));
        let mut sum = 0.0;
        for weight in weights {
            if weight.is_nan() || weight <= 0.0 {
                return false;
            }
            sum += weight;
        }
        (sum - 1.0).abs() < 1e-9
    }

    /// The windows in words: "2 of the first 25 requests, weight 0.50; 3 of the first 40, weight 0.05".
    pub fn describe_windows(&self) -> String {
        self.windows
            .iter()
            .enumerate()
            .map(|(index, window)| {
                let requests = if index == 0 { " requests" } else { "" };
                format!(
                    "{} of the first {}{requests}, weight {:.2}",
                    window.errors, window.requests, window.weight
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Default for EarlyErrorsRule {
    fn default() -> Self {
        EarlyErrorsRule::SHIPPED
    }
}

/// The early windows bet only while the live baseline's errors so far are at least this probable
/// at the reference's error rate (one-sided binomial tail).
pub const GUARD_P_VALUE: f64 = 0.001;

/// What the early windows found at one look.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyErrors {
    /// ln of `Σ w_(k,m) · E_(k,m)` (without the live test's term); `-inf` when no window's event
    /// was seen.
    pub log_weighted_e: f64,
    /// The window whose event was seen with the largest bet, in words, for the evidence.
    pub fired: Option<String>,
    /// Why the windows bet nothing, when the guard stopped them.
    pub guarded: Option<String>,
}

/// The early windows' weighted e-value at this look; `None` without a usable reference.
pub fn early_errors(
    rule: &EarlyErrorsRule,
    canary: &TrafficSample,
    baseline: &TrafficSample,
    reference: &TrafficSample,
) -> Option<EarlyErrors> {
    if reference.requests == 0 {
        return None;
    }
    let reference_errors = reference.errors.min(reference.requests);
    let canary_errors = canary.errors.min(canary.requests);
    let mut found = EarlyErrors {
        log_weighted_e: f64::NEG_INFINITY,
        fired: None,
        guarded: None,
    };
    let seen: Vec<&EarlyWindow> = rule
        .windows
        .iter()
        .filter(|window| canary.requests <= window.requests && canary_errors >= window.errors)
        .collect();
    if seen.is_empty() {
        return Some(found);
    }
    let reference_rate = reference_errors as f64 / reference.requests as f64;
    let baseline_errors = baseline.errors.min(baseline.requests);
    let guard = ln_binomial_upper_tail(baseline_errors, baseline.requests, reference_rate);
    if guard < GUARD_P_VALUE.ln() {
        found.guarded = Some(format!(
            "the baseline's {baseline_errors} errors in {} requests are improbable at the recorded rate ({:.3} %), so the early windows do not bet",
            baseline.requests,
            reference_rate * 100.0
        ));
        return Some(found);
    }
    let mut best: Option<(f64, String)> = None;
    let mut terms = Vec::new();
    for window in seen {
        let ln_tail = ln_hypergeometric_upper_tail(
            window.errors,
            reference.requests + window.requests,
            largest_total_errors(reference_errors, canary_errors, canary.requests, window),
            window.requests,
        );
        let term = window.weight.ln() - ln_tail;
        terms.push(term);
        if best.as_ref().is_none_or(|(value, _)| term > *value) {
            best = Some((
                term,
                format!(
                    "{canary_errors} of the canary's first {} requests failed (window: {} of {}; at the recorded {:.3} % that has probability {:.2e})",
                    canary.requests,
                    window.errors,
                    window.requests,
                    reference_rate * 100.0,
                    ln_tail.exp()
                ),
            ));
        }
    }
    found.log_weighted_e = log_sum_exp(&terms);
    found.fired = best.map(|(_, words)| words);
    Some(found)
}

/// The most errors the reference and the window's `m` requests can hold together, knowing that
/// `canary_errors` of the canary's first `canary_requests` (at most `m`) failed.
fn largest_total_errors(
    reference_errors: u64,
    canary_errors: u64,
    canary_requests: u64,
    window: &EarlyWindow,
) -> u64 {
    let unseen = window.requests.saturating_sub(canary_requests);
    reference_errors
        .saturating_add(canary_errors.min(window.requests))
        .saturating_add(unseen)
}

/// ln Σ exp(terms), `-inf` for no terms.
pub fn log_sum_exp(terms: &[f64]) -> f64 {
    let largest = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if largest == f64::NEG_INFINITY || largest.is_nan() {
        return largest;
    }
    largest
        + terms
            .iter()
            .map(|term| (term - largest).exp())
            .sum::<f64>()
            .ln()
}

/// ln C(n, k); `-inf` when `k > n`.
fn ln_choose(n: u64, k: u64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// ln P(X ≥ k) for X ~ Hypergeometric(population, successes, draws): `draws` taken without
/// replacement from `population` items of which `successes` are marked. 0 (certain) for `k = 0`,
/// `-inf` when `k` cannot be reached.
pub fn ln_hypergeometric_upper_tail(k: u64, population: u64, successes: u64, draws: u64) -> f64 {
    let successes = successes.min(population);
    let draws = draws.min(population);
    if k == 0 {
        return 0.0;
    }
    let highest = successes.min(draws);
    let lowest = (successes + draws).saturating_sub(population);
    if k > highest {
        return f64::NEG_INFINITY;
    }
    if k <= lowest {
        return 0.0;
    }
    let ln_all = ln_choose(population, draws);
    let terms: Vec<f64> = (k..=highest)
        .map(|j| ln_choose(successes, j) + ln_choose(population - successes, draws - j) - ln_all)
        .collect();
    log_sum_exp(&terms).min(0.0)
}

/// ln P(Binomial(n, p) ≥ k); 0 for `k = 0`.
fn ln_binomial_upper_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 0.0;
    }
    if k > n || p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let below = super::ln_binomial_cdf(k - 1, n, p).exp();
    (1.0 - below).max(0.0).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: EarlyErrorsRule = EarlyErrorsRule::SHIPPED;

    fn traffic(requests: u64, errors: u64) -> TrafficSample {
        let mut sample = TrafficSample {
            requests,
            errors,
            ..TrafficSample::default()
        };
        sample.latency_buckets[3] = requests;
        sample
    }

    fn brute_hypergeometric_tail(k: u64, population: u64, successes: u64, draws: u64) -> f64 {
        (k..=draws.min(successes))
            .map(|j| {
                (ln_choose(successes, j) + ln_choose(population - successes, draws - j)
                    - ln_choose(population, draws))
                .exp()
            })
            .sum()
    }

    #[test]
    fn hypergeometric_tails_match_direct_sums_and_edges() {
        for (k, population, successes, draws) in
            [(1, 10, 3, 4), (2, 50, 5, 20), (3, 90_040, 220, 40)]
        {
            let expected = brute_hypergeometric_tail(k, population, successes, draws);
            let actual = ln_hypergeometric_upper_tail(k, population, successes, draws).exp();
            assert!(
                ((actual - expected) / expected).abs() < 1e-9,
                "{actual} against {expected}"
            );
        }
        assert_eq!(ln_hypergeometric_upper_tail(0, 10, 0, 4), 0.0);
        assert_eq!(ln_hypergeometric_upper_tail(3, 10, 2, 4), f64::NEG_INFINITY);
        // Every draw is a success when there are no failures left to draw.
        assert_eq!(ln_hypergeometric_upper_tail(2, 5, 4, 3), 0.0);
    }

    #[test]
    fn each_window_is_a_fair_bet_under_the_healthy_model() {
        // The exact e-value 1{X ≥ k} / P(X ≥ k | K) has expectation 1 given K, and the one
        // reported after n of the window's m requests, x of them failed, is never larger than
        // the exact one, whatever the other m − n requests do: its tail is never smaller.
        let (n_ref, k_ref) = (90_000, 180);
        for window in EARLY_WINDOWS {
            for seen in 1..=window.requests {
                for seen_errors in window.errors..=seen {
                    let reported = ln_hypergeometric_upper_tail(
                        window.errors,
                        n_ref + window.requests,
                        largest_total_errors(k_ref, seen_errors, seen, &window),
                        window.requests,
                    );
                    for later_errors in 0..=(window.requests - seen) {
                        let exact = ln_hypergeometric_upper_tail(
                            window.errors,
                            n_ref + window.requests,
                            k_ref + seen_errors + later_errors,
                            window.requests,
                        );
                        assert!(reported >= exact - 1e-12, "window {window:?}");
                    }
                }
            }
        }
        assert!(EarlyErrorsRule::SHIPPED.is_valid());
        assert_eq!(
            EarlyErrorsRule::SHIPPED.describe_windows(),
            "2 of the first 25 requests, weight 0.50; 3 of the first 40, weight 0.05"
        );
        let lopsided = EarlyErrorsRule {
            live_share_weight: 0.9,
            ..EarlyErrorsRule::SHIPPED
        };
        assert!(!lopsided.is_valid());
    }

    #[test]
    fn two_early_failures_against_a_long_quiet_reference_bet_big() {
        // 15 minutes of the stable release at 100 requests per second, 0.2 % errors.
        let reference = traffic(90_000, 180);
        let found = early_errors(&SHIPPED, &traffic(12, 2), &traffic(110, 0), &reference).unwrap();
        // 12 requests seen, 2 failed: at most 180 + 2 + 13 errors among the 90,025 requests, so
        // 0.50 / P(≥ 2 of 25 | 195 errors) ≈ 0.50 × 738 (with 205 errors, 0.50 × 669).
        let bet = found.log_weighted_e.exp();
        assert!((362.0..374.0).contains(&bet), "{bet}");
        assert!(found.fired.unwrap().contains("2 of the canary's first 12"));

        // One failure is not an event; past the window the event cannot be placed.
        let one = early_errors(&SHIPPED, &traffic(12, 1), &traffic(110, 0), &reference).unwrap();
        assert_eq!(one.log_weighted_e, f64::NEG_INFINITY);
        let late = early_errors(&SHIPPED, &traffic(41, 9), &traffic(400, 0), &reference).unwrap();
        assert_eq!(late.log_weighted_e, f64::NEG_INFINITY);
        // Without a reference there is nothing to bet against.
        assert!(
            early_errors(&SHIPPED, &traffic(12, 2), &traffic(110, 0), &traffic(0, 0)).is_none()
        );
    }

    #[test]
    fn a_noisy_reference_or_a_failing_baseline_weakens_or_stops_the_bet() {
        let quiet = early_errors(
            &SHIPPED,
            &traffic(12, 2),
            &traffic(110, 0),
            &traffic(90_000, 180),
        )
        .unwrap()
        .log_weighted_e;
        // A reference failing 2 % of requests makes two early failures unremarkable.
        let noisy = early_errors(
            &SHIPPED,
            &traffic(12, 2),
            &traffic(110, 2),
            &traffic(90_000, 1_800),
        )
        .unwrap()
        .log_weighted_e;
        assert!(noisy < quiet - 4.0, "{noisy} against {quiet}");
        // The live baseline failing 6 of 110 (an outage downstream) contradicts the recorded
        // 0.2 %: the windows do not bet.
        let outage = early_errors(
            &SHIPPED,
            &traffic(12, 2),
            &traffic(110, 6),
            &traffic(90_000, 180),
        )
        .unwrap();
        assert_eq!(outage.log_weighted_e, f64::NEG_INFINITY);
        assert!(outage.guarded.unwrap().contains("improbable"));
    }
}
