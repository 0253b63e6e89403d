//! Cost per release: what 1,000 requests of the canary cost against 1,000 of the baseline, from
//! the same traffic samples the canary analysis reads, priced like the local cost model (Lambda
//! requests and GB-seconds, API Gateway requests, CloudFront requests and bytes out). An optional
//! analysis check: a canary whose cost per request reaches `max_ratio` times the baseline's is
//! held at the end of its bake, so an operator decides whether the new cost is intended.
//!
//! AI tokens count when the releases report them on their responses (Steno does, for drafts and
//! refinements) and AI prices are configured: a prompt change that doubles the tokens per request
//! is the costliest regression a release of Steno can make.

use serde::{Deserialize, Serialize};

use super::pricing::{cost_per_thousand_requests, AiPrices, PriceTable, Usage};
use crate::core::traffic::TrafficSample;

/// R-COST-14 (docs/requirements.md; the product's own choice): a release that doubles the cost of
/// a request is held.
pub const DEFAULT_MAX_RATIO: f64 = 2.0;

/// The check's settings (`analysis.cost_per_request` in `opsd.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostPerRequestPolicy {
    /// Hold when canary / baseline cost per 1,000 requests is at least this (above 1).
    pub max_ratio: f64,
    /// Requests each side needs before the costs are compared.
    pub min_requests: u64,
    /// The Lambda memory size requests are priced at, in MB.
    pub memory_mb: u32,
    pub prices: PriceTable,
    /// Prices of the AI tokens the releases report; `None` leaves tokens out.
    #[serde(default)]
    pub ai_prices: Option<AiPrices>,
}

impl CostPerRequestPolicy {
    /// Checks the ratio and the memory size; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.max_ratio.is_finite() && self.max_ratio > 1.0) {
            return Err(format!(
                "max_ratio {} must be a number above 1 (2 holds a release that doubles the cost of a request)",
                self.max_ratio
            ));
        }
        if self.min_requests == 0 {
            return Err("min_requests must be at least 1".into());
        }
        self.prices.validate().map_err(|error| error.to_string())?;
        match &self.ai_prices {
            Some(ai_prices) => ai_prices.validate().map_err(|error| error.to_string()),
            None => Ok(()),
        }
    }
}

/// What the check found, kept as a decision's evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostPerRequestComparison {
    pub canary_usd_per_thousand: Option<f64>,
    pub baseline_usd_per_thousand: Option<f64>,
    /// Canary / baseline, when both are known and the baseline's is above 0.
    pub ratio: Option<f64>,
    pub max_ratio: f64,
    /// Whether the canary reached `max_ratio` (the rollout holds).
    pub exceeded: bool,
    /// One sentence with the numbers.
    pub reason: String,
}

fn usage_of(sample: &TrafficSample, memory_mb: u32) -> Usage {
    Usage {
        requests: sample.requests,
        duration_ms_total: sample.latency_total_ms as f64,
        memory_mb,
        bytes_out: sample.bytes_out,
        ai_input_tokens: sample.ai_input_tokens,
        ai_output_tokens: sample.ai_output_tokens,
    }
}

/// Compares the cost of 1,000 requests of `canary` and `baseline`. Too few requests on a side, or
/// a baseline that costs nothing, is not judged (never exceeded).
pub fn compare_cost_per_request(
    canary: &TrafficSample,
    baseline: &TrafficSample,
    policy: &CostPerRequestPolicy,
) -> CostPerRequestComparison {
    let ai_prices = policy
        .ai_prices
        .clone()
        .unwrap_or_else(|| AiPrices::new(0.0, 0.0));
    let per_thousand = |sample: &TrafficSample| {
        cost_per_thousand_requests(
            &usage_of(sample, policy.memory_mb),
            &policy.prices,
            &ai_prices,
        )
        .ok()
        .flatten()
    };
    let canary_usd = per_thousand(canary);
    let baseline_usd = per_thousand(baseline);
    let mut comparison = CostPerRequestComparison {
        canary_usd_per_thousand: canary_usd,
        baseline_usd_per_thousand: baseline_usd,
        ratio: None,
        max_ratio: policy.max_ratio,
        exceeded: false,
        reason: String::new(),
    };
    if canary.requests < policy.min_requests || baseline.requests < policy.min_requests {
        comparison.reason = format!(
            "cost per request not compared: {} canary and {} baseline requests, {} each needed",
            canary.requests, baseline.requests, policy.min_requests
        );
        return comparison;
    }
    let (Some(canary_usd), Some(baseline_usd)) = (canary_usd, baseline_usd) else {
        comparison.reason = "cost per request not compared: no requests".into();
        return comparison;
    };
    if baseline_usd <= 0.0 {
        comparison.reason =
            "cost per request not compared: the baseline's requests cost nothing".into();
        return comparison;
    }
    let ratio = canary_usd / baseline_usd;
    comparison.ratio = Some(ratio);
    comparison.exceeded = ratio >= policy.max_ratio;
    comparison.reason = format!(
        "1,000 canary requests cost ${canary_usd:.6}, {ratio:.2}× the baseline's ${baseline_usd:.6} (limit {:.2}×)",
        policy.max_ratio
    );
    comparison
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CostPerRequestPolicy {
        CostPerRequestPolicy {
            max_ratio: DEFAULT_MAX_RATIO,
            min_requests: 200,
            memory_mb: 512,
            prices: PriceTable::seed(),
            ai_prices: None,
        }
    }

    fn traffic(requests: u64, latency_ms: u64, bytes_per_request: u64) -> TrafficSample {
        TrafficSample {
            requests,
            latency_total_ms: requests * latency_ms,
            bytes_out: requests * bytes_per_request,
            ..TrafficSample::default()
        }
    }

    #[test]
    fn the_cost_of_a_thousand_requests_is_priced_by_hand() {
        // 1,000 requests of 100 ms at 512 MB, 1 MiB each:
        // Lambda      0.001 × $0.20 + 1,000 × 0.1 s × 0.5 GB × $0.0000166667 = 0.0002 + 0.000833335
        // API Gateway 0.001 × $3.50 = 0.0035
        // CloudFront  1,000 MiB = 0.9765625 GB × $0.085 + 0.1 × $0.01 = 0.0830078125 + 0.001
        let same = compare_cost_per_request(
            &traffic(1_000, 100, 1 << 20),
            &traffic(1_000, 100, 1 << 20),
            &policy(),
        );
        let expected = 0.0002 + 0.000_833_335 + 0.0035 + 0.083_007_812_5 + 0.001;
        let canary = same.canary_usd_per_thousand.unwrap();
        assert!((canary - expected).abs() < 1e-12, "{canary} vs {expected}");
        assert_eq!(same.ratio, Some(1.0));
        assert!(!same.exceeded);
    }

    #[test]
    fn a_release_that_doubles_the_cost_of_a_request_is_flagged() {
        // Four times the bytes: CloudFront transfer dominates, so the request costs > 2×.
        let heavier = compare_cost_per_request(
            &traffic(500, 100, 4 << 20),
            &traffic(5_000, 100, 1 << 20),
            &policy(),
        );
        assert!(heavier.exceeded, "{heavier:?}");
        assert!(heavier.ratio.unwrap() > 3.0);
        assert!(
            heavier.reason.contains("× the baseline's"),
            "{}",
            heavier.reason
        );
        // 50 % more is within the limit.
        let bit_more = compare_cost_per_request(
            &traffic(500, 150, 3 << 19),
            &traffic(5_000, 100, 1 << 20),
            &policy(),
        );
        assert!(!bit_more.exceeded, "{bit_more:?}");
        assert!(bit_more.ratio.unwrap() > 1.3);
    }

    #[test]
    fn a_release_whose_drafts_spend_far_more_tokens_is_flagged_when_ai_is_priced() {
        // 1,000 requests, 1 in 10 a draft of 1,200 input and 800 output tokens: at $3 and $15
        // per million the AI of 1,000 requests costs 100 × (0.0036 + 0.012) = $1.56, far above
        // the ~$0.005 the requests themselves cost.
        let with_tokens = |input_per_draft: u64, output_per_draft: u64| {
            let mut sample = traffic(1_000, 50, 2_000);
            sample.ai_input_tokens = 100 * input_per_draft;
            sample.ai_output_tokens = 100 * output_per_draft;
            sample
        };
        let priced = CostPerRequestPolicy {
            ai_prices: Some(AiPrices::new(3.0, 15.0)),
            ..policy()
        };
        let baseline =
            compare_cost_per_request(&with_tokens(1_200, 800), &with_tokens(1_200, 800), &priced);
        let expected = 100.0 * (1_200.0 * 3.0 + 800.0 * 15.0) / 1e6;
        let infra = compare_cost_per_request(
            &traffic(1_000, 50, 2_000),
            &traffic(1_000, 50, 2_000),
            &policy(),
        );
        let baseline_usd = baseline.baseline_usd_per_thousand.unwrap();
        assert!(
            (baseline_usd - infra.baseline_usd_per_thousand.unwrap() - expected).abs() < 1e-12,
            "{baseline_usd}"
        );
        // Twice the input and three times the output a draft: $4.32 of AI per 1,000 requests.
        let longer = compare_cost_per_request(
            &with_tokens(2_400, 2_400),
            &with_tokens(1_200, 800),
            &priced,
        );
        assert!(longer.exceeded, "{longer:?}");
        assert!(longer.ratio.unwrap() > 2.7, "{longer:?}");
        // Without AI prices the same traffic costs the same on both sides.
        let unpriced = compare_cost_per_request(
            &with_tokens(2_400, 2_400),
            &with_tokens(1_200, 800),
            &policy(),
        );
        assert!(
            !unpriced.exceeded && unpriced.ratio == Some(1.0),
            "{unpriced:?}"
        );
    }

    #[test]
    fn too_little_traffic_or_a_free_baseline_is_not_judged() {
        let few = compare_cost_per_request(
            &traffic(20, 100, 1 << 22),
            &traffic(5_000, 100, 1 << 20),
            &policy(),
        );
        assert!(!few.exceeded && few.ratio.is_none());
        assert!(few.reason.contains("200 each needed"), "{}", few.reason);
        let free = CostPerRequestPolicy {
            prices: PriceTable {
                lambda_per_million_requests_usd: 0.0,
                lambda_per_gb_second_usd: 0.0,
                api_gateway_per_million_requests_usd: 0.0,
                cloudfront_per_gb_out_usd: 0.0,
                cloudfront_per_ten_thousand_requests_usd: 0.0,
            },
            ..policy()
        };
        let nothing =
            compare_cost_per_request(&traffic(500, 100, 100), &traffic(500, 100, 100), &free);
        assert!(!nothing.exceeded);
        assert!(
            nothing.reason.contains("cost nothing"),
            "{}",
            nothing.reason
        );
    }

    #[test]
    fn the_policy_needs_a_ratio_above_one() {
        assert!(policy().validate().is_ok());
        let message = CostPerRequestPolicy {
            max_ratio: 1.0,
            ..policy()
        }
        .validate()
        .unwrap_err();
        assert!(message.contains("max_ratio"), "{message}");
    }
}
