//! opsd.yaml's `analysis` section: how a canary is judged against the baseline (false-positive
//! rate, minimum requests, the early-errors bets, what an inconclusive result does, health
//! failures before a roll-back) and the cost-per-request hold, validated into the
//! [`RolloutPolicy`].

use super::costs::{CostSourceConfig, CostsConfig, DEFAULT_MEMORY_MB};
use super::raw::RawAnalysis;
use super::yaml::Source;
use crate::core::alarms::AlarmRule;
use crate::core::analysis::AnalysisPolicy;
use crate::core::config_error::ConfigError;
use crate::core::cost::release_cost::DEFAULT_MAX_RATIO;
use crate::core::cost::{CostPerRequestPolicy, PriceTable};
use crate::core::rollout::{InconclusiveAction, RolloutPolicy};

/// The rollout policy: `analysis` (defaults where absent) and the alarm rules to watch.
pub(super) fn validate_analysis(
    source: &Source,
    raw: Option<RawAnalysis>,
    alarms: Vec<AlarmRule>,
) -> Result<RolloutPolicy, ConfigError> {
    let mut policy = RolloutPolicy {
        analysis: AnalysisPolicy::default(),
        alarms,
        ..RolloutPolicy::default()
    };
    let Some(analysis) = raw else {
        return Ok(policy);
    };
    if let Some(rate) = analysis.false_positive_rate {
        if !(rate > 0.0 && rate < 0.5) {
            return Err(source.field_error(
                "false_positive_rate",
                format!("{rate} must be between 0 and 0.5 (0.01 means 1 %)"),
            ));
        }
        policy.analysis.false_positive_rate = rate;
    }
    if let Some(min) = analysis.min_requests {
        policy.analysis.min_canary_requests = min;
        policy.analysis.min_baseline_requests = min;
    }
    if let Some(early_errors) = analysis.early_errors {
        policy.analysis.early_errors = early_errors;
    }
    if let Some(action) = analysis.on_inconclusive {
        policy.on_inconclusive = match action.as_str() {
            "hold" => InconclusiveAction::Hold,
            "rollback" | "roll_back" => InconclusiveAction::RollBack,
            other => {
                return Err(source.field_error(
                    "on_inconclusive",
                    format!("{other:?} is not hold or rollback"),
                ))
            }
        };
    }
    if let Some(failures) = analysis.health_failures_to_roll_back {
        if failures == 0 {
            return Err(
                source.field_error("health_failures_to_roll_back", "must be at least 1".into())
            );
        }
        policy.health_failures_to_roll_back = failures;
    }
    if let Some(raw_check) = analysis.cost_per_request {
        let check = CostPerRequestPolicy {
            max_ratio: raw_check.max_ratio.unwrap_or(DEFAULT_MAX_RATIO),
            min_requests: raw_check
                .min_requests
                .unwrap_or(policy.analysis.min_canary_requests),
            memory_mb: DEFAULT_MEMORY_MB,
            prices: PriceTable::seed(),
            ai_prices: None,
        };
        check
            .validate()
            .map_err(|message| source.field_error("cost_per_request", message))?;
        policy.cost_per_request = Some(check);
    }
    Ok(policy)
}

/// The cost-per-request check prices requests like the local cost model does, when that is the
/// cost source.
pub(super) fn price_like_the_cost_source(policy: &mut RolloutPolicy, costs: Option<&CostsConfig>) {
    if let (Some(check), Some(CostSourceConfig::Local(local))) = (
        policy.cost_per_request.as_mut(),
        costs.map(|costs| &costs.source),
    ) {
        check.memory_mb = local.memory_mb;
        check.prices = local.prices;
        check.ai_prices = local.ai.as_ref().map(|ai| ai.prices.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;
    use crate::core::config_error::ConfigError;

    fn parse(analysis: &str) -> Result<Config, ConfigError> {
        Config::parse(
            "opsd.yaml",
            &format!("services:\n  steno: {{}}\nanalysis:\n{analysis}"),
            Path::new("/srv"),
            Path::new("/usr/bin/steno"),
        )
    }

    #[test]
    fn early_errors_is_on_by_default_and_can_be_switched_off() {
        let default = parse("  min_requests: 200\n").unwrap();
        assert!(default.policy.analysis.early_errors);
        let off = parse("  early_errors: false\n").unwrap();
        assert!(!off.policy.analysis.early_errors);
        let on = parse("  early_errors: true\n").unwrap();
        assert!(on.policy.analysis.early_errors);
    }

    #[test]
    fn an_invalid_early_errors_value_names_the_field() {
        let error = parse("  early_errors: sometimes\n").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("analysis.early_errors"));
        assert_eq!(error.line, Some(4));
        let misspelt = parse("  early_error: false\n").unwrap_err();
        assert!(misspelt.to_string().contains("early_error"), "{misspelt}");
        assert!(misspelt.to_string().contains("early_errors"), "{misspelt}");
    }
}
