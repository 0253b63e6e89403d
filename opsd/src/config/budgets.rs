//! opsd.yaml's `costs.budgets`: each budget's name, monthly amount, scope (the account, a
//! service, or a tag value), thresholds (actual or forecast, with a severity) and the
//! notification targets it names, validated into the core's [`Budget`].

use serde_yaml::Value;

use super::costs::CostError;
use super::raw::{RawBudget, RawThreshold};
use super::yaml::names_or_none;
use crate::core::config_error::ConfigError;
use crate::core::cost::{
    Budget, BudgetPeriod, BudgetScope, Threshold, ThresholdBasis, ThresholdSeverity,
};
use crate::notify::NotificationTarget;

/// `costs.budgets`: at least one, names unique.
pub(super) fn validate_budgets(
    raw: Vec<RawBudget>,
    notification_targets: &[NotificationTarget],
    error: &CostError,
) -> Result<Vec<Budget>, ConfigError> {
    let mut budgets: Vec<Budget> = Vec::new();
    for (index, raw_budget) in raw.into_iter().enumerate() {
        let name = raw_budget
            .name
            .clone()
            .filter(|name| !name.trim().is_empty())
            .ok_or_else(|| {
                error(
                    &format!("budgets[{index}].name"),
                    "is missing; give each budget a name".into(),
                )
            })?;
        if budgets.iter().any(|budget| budget.name == name) {
            return Err(error(
                &format!("budgets.{name}.name"),
                "is used twice; budget names must be unique".into(),
            ));
        }
        budgets.push(validate_budget(
            name,
            raw_budget,
            notification_targets,
            error,
        )?);
    }
    if budgets.is_empty() {
        return Err(error(
            "budgets",
            "is empty; add at least one, like budgets: [{name: monthly, amount_usd: 1000}]".into(),
        ));
    }
    Ok(budgets)
}

/// One budget, named `name`; errors name `costs.budgets.<name>.<field>`.
fn validate_budget(
    name: String,
    raw: RawBudget,
    notification_targets: &[NotificationTarget],
    error: &CostError,
) -> Result<Budget, ConfigError> {
    let field = |key: &str| format!("budgets.{name}.{key}");
    let amount_usd = raw.amount_usd.ok_or_else(|| {
        error(
            &field("amount_usd"),
            "is missing, like amount_usd: 1000".into(),
        )
    })?;
    if !(amount_usd.is_finite() && amount_usd > 0.0) {
        return Err(error(
            &field("amount_usd"),
            format!("{amount_usd} must be a positive number of US dollars"),
        ));
    }
    match raw.period.as_deref() {
        None | Some("monthly") => {}
        Some(other) => {
            return Err(error(
                &field("period"),
                format!("{other:?} is not monthly (the only period for now)"),
            ))
        }
    }
    let scope = validate_scope(raw.scope, &field, error)?;
    let thresholds = match raw.thresholds {
        None => Budget::seed_default(amount_usd).thresholds,
        Some(raw_thresholds) => validate_thresholds(raw_thresholds, &field, error)?,
    };
    let notify = validate_notify(raw.notify, notification_targets, &field, error)?;
    let budget = Budget {
        name: name.clone(),
        amount_usd,
        period: BudgetPeriod::Monthly,
        scope,
        thresholds,
        notify,
    };
    budget
        .validate()
        .map_err(|problem| error(&field("amount_usd"), problem.to_string()))?;
    Ok(budget)
}

/// A budget's `scope`: `account` (the default), `{service: <name>}` or `{tag: "Key=value"}`.
fn validate_scope(
    raw: Option<Value>,
    field: &dyn Fn(&str) -> String,
    error: &CostError,
) -> Result<BudgetScope, ConfigError> {
    let shapes = "account, {service: <name>} or {tag: \"Key=value\"}";
    let entry = match raw {
        None => return Ok(BudgetScope::Account),
        Some(Value::String(word)) if word == "account" => return Ok(BudgetScope::Account),
        Some(Value::String(word)) => {
            return Err(error(&field("scope"), format!("{word:?} is not {shapes}")))
        }
        Some(Value::Mapping(map)) if map.len() == 1 => map.into_iter().next(),
        Some(_) => None,
    };
    match entry {
        Some((Value::String(key), Value::String(service)))
            if key == "service" && !service.trim().is_empty() =>
        {
            Ok(BudgetScope::Service(service))
        }
        Some((Value::String(key), Value::String(tag))) if key == "tag" => {
            match tag.split_once('=') {
                Some((tag_key, value)) if !tag_key.trim().is_empty() && !value.is_empty() => {
                    Ok(BudgetScope::Tag {
                        key: tag_key.trim().to_string(),
                        value: value.to_string(),
                    })
                }
                _ => Err(error(
                    &field("scope.tag"),
                    format!("{tag:?} is not Key=value, like Environment=production"),
                )),
            }
        }
        _ => Err(error(&field("scope"), format!("must be {shapes}"))),
    }
}

/// A budget's `thresholds`: at least one when given.
fn validate_thresholds(
    raw: Vec<RawThreshold>,
    field: &dyn Fn(&str) -> String,
    error: &CostError,
) -> Result<Vec<Threshold>, ConfigError> {
    let mut thresholds = Vec::new();
    for (position, raw_threshold) in raw.into_iter().enumerate() {
        let at = |key: &str| field(&format!("thresholds[{position}].{key}"));
        thresholds.push(validate_threshold(raw_threshold, &at, error)?);
    }
    if thresholds.is_empty() {
        return Err(error(
            &field("thresholds"),
            "is empty; leave it out for the defaults 80 % / 100 % / forecast 120 % \
             (R-COST-2 to R-COST-4)"
                .into(),
        ));
    }
    Ok(thresholds)
}

/// One threshold: `basis`, `percent` and `severity`, all required.
fn validate_threshold(
    raw: RawThreshold,
    at: &dyn Fn(&str) -> String,
    error: &CostError,
) -> Result<Threshold, ConfigError> {
    let basis = match raw.basis.as_deref() {
        Some("actual") => ThresholdBasis::Actual,
        Some("forecast") => ThresholdBasis::Forecast,
        Some(other) => {
            return Err(error(
                &at("basis"),
                format!("{other:?} is not actual or forecast"),
            ))
        }
        None => return Err(error(&at("basis"), "is missing: actual or forecast".into())),
    };
    let percent = raw
        .percent
        .ok_or_else(|| error(&at("percent"), "is missing, like percent: 80".into()))?;
    if !(percent.is_finite() && percent > 0.0 && percent <= 1000.0) {
        return Err(error(
            &at("percent"),
            format!("{percent} must be above 0 and at most 1000"),
        ));
    }
    let severity = match raw.severity.as_deref() {
        Some("warning") => ThresholdSeverity::Warning,
        Some("critical") => ThresholdSeverity::Critical,
        Some(other) => {
            return Err(error(
                &at("severity"),
                format!("{other:?} is not warning or critical"),
            ))
        }
        None => {
            return Err(error(
                &at("severity"),
                "is missing: warning or critical".into(),
            ))
        }
    };
    Ok(Threshold {
        basis,
        percent,
        severity,
    })
}

/// A budget's `notify`: targets under `notifications.targets`, each once; empty when left out
/// (notifications route by severity then).
fn validate_notify(
    raw: Option<Vec<String>>,
    notification_targets: &[NotificationTarget],
    field: &dyn Fn(&str) -> String,
    error: &CostError,
) -> Result<Vec<String>, ConfigError> {
    let mut notify: Vec<String> = Vec::new();
    let Some(names) = raw else {
        return Ok(notify);
    };
    if names.is_empty() {
        return Err(error(
            &field("notify"),
            "is empty; name at least one target, or leave it out to route by severity".into(),
        ));
    }
    for target in names {
        if !notification_targets
            .iter()
            .any(|known| known.name == target)
        {
            return Err(error(
                &field("notify"),
                format!(
                    "{target:?} is not under notifications.targets; configured: {}",
                    names_or_none(notification_targets.iter().map(|known| &known.name))
                ),
            ));
        }
        if !notify.contains(&target) {
            notify.push(target);
        }
    }
    Ok(notify)
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;
    use std::time::Duration;

    const TWO_TARGETS: &str = "notifications:\n  targets:\n    - {name: chat, kind: slack, webhook_url: \"http://127.0.0.1:9/hook\"}\n    - {name: finance, kind: slack, webhook_url: \"http://127.0.0.1:9/finance\"}\n  routes:\n    - {min_severity: info, targets: [chat]}\n";

    #[test]
    fn budgets_may_name_their_notification_targets_and_the_gate_its_max_age() {
        let config = parse(&format!(
            "services:\n  steno: {{}}\n{TWO_TARGETS}costs:\n  check_interval: 1h\n  gate_max_age: 2h\n  budgets:\n    - {{name: monthly, amount_usd: 1000}}\n    - {{name: prod, amount_usd: 700, notify: [finance, chat, finance]}}\n"
        ))
        .unwrap();
        let costs = config.costs.as_ref().unwrap();
        assert_eq!(costs.gate_max_age, Duration::from_secs(7200));
        assert!(costs.budgets[0].notify.is_empty());
        assert_eq!(costs.budgets[1].notify, ["finance", "chat"]);
        let equal = parse(
            "services:\n  steno: {}\ncosts:\n  check_interval: 1h\n  gate_max_age: 1h\n  budgets: [{name: b, amount_usd: 1}]\n",
        )
        .unwrap();
        assert_eq!(equal.costs.unwrap().gate_max_age, Duration::from_secs(3600));
    }

    #[test]
    fn an_unknown_notify_target_names_the_budget_and_lists_the_targets() {
        let error = parse(&format!(
            "services:\n  steno: {{}}\n{TWO_TARGETS}costs:\n  budgets:\n    - {{name: prod, amount_usd: 700, notify: [finanse]}}\n"
        ))
        .unwrap_err();
        assert_eq!(error.field.as_deref(), Some("costs.budgets.prod.notify"));
        let message = error.to_string();
        assert!(message.contains("\"finanse\""), "{message}");
        assert!(message.contains("configured: chat, finance"), "{message}");
        let none = parse(
            "services:\n  steno: {}\ncosts:\n  budgets: [{name: b, amount_usd: 1, notify: [chat]}]\n",
        )
        .unwrap_err();
        assert!(none.to_string().contains("configured: none"), "{none}");
    }
}
