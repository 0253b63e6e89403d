//! opsd.yaml's `costs` section: where daily costs come from (Cost Explorer or the local cost
//! model with its AI token prices), how often budgets are checked and how old a check the budget
//! gate trusts, the anomaly rules, and the budgets with their scopes, thresholds and targets,
//! validated into [`CostsConfig`] and the plain settings the cost sources are built from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::budgets;
use super::databases::{DatabaseConfig, DatabaseKind};
use super::raw::{RawAnomalies, RawCosts, RawCostsAi, RawCostsAws, RawCostsLocal};
use super::services::ServiceConfig;
use super::yaml::{line_of, names_or_none, Source};
use crate::core::config_error::ConfigError;
use crate::core::cost::pricing::{AiPrices, PriceTable};
use crate::core::cost::{AnomalyRules, Budget};
use crate::core::duration::{format_duration, parse_duration};
use crate::core::retry::RetryPolicy;
use crate::notify::NotificationTarget;

/// The default interval of `opsd up`'s cost checks: hourly (R-COST-12).
pub const DEFAULT_COST_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

/// The default window before an anomaly in which rollouts are named with it: 24 h (R-COST-13).
pub const DEFAULT_ROLLOUT_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How many check intervals old the newest cost check may be, by default, for the budget gate to
/// trust it: one missed or failed scheduled check is tolerated, a stopped checker is not.
pub const DEFAULT_GATE_MAX_AGE_INTERVALS: u32 = 3;

/// Cost Explorer is served from one region.
pub const DEFAULT_COST_EXPLORER_REGION: &str = "us-east-1";

/// Where and how Cost Explorer is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostExplorerConfig {
    pub region: String,
    /// For emulators and VPC endpoints; `None` uses AWS's public endpoint.
    pub endpoint_url: Option<String>,
    pub retry: RetryPolicy,
}

impl Default for CostExplorerConfig {
    fn default() -> CostExplorerConfig {
        CostExplorerConfig {
            region: DEFAULT_COST_EXPLORER_REGION.into(),
            endpoint_url: None,
            retry: RetryPolicy::default(),
        }
    }
}

/// The Lambda memory size the local traffic is priced at when none is configured: 512 MB
/// (R-COST-9 in docs/requirements.md).
pub const DEFAULT_MEMORY_MB: u32 = 512;

/// Where Steno's letter revisions (and their token counts) are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenDatabase {
    Sqlite(PathBuf),
    Postgres(String),
}

/// AI spend: which database's revisions to read and what a million tokens cost.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalAiConfig {
    /// The database's name under `databases` (for messages).
    pub database: String,
    pub location: TokenDatabase,
    pub prices: AiPrices,
    /// The opsd service whose `database` this is: its tag value for `Service` grouping.
    pub owner_service: Option<String>,
}

/// The local cost model's settings (`costs.local` in `opsd.yaml`).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalCostConfig {
    pub memory_mb: u32,
    pub prices: PriceTable,
    /// `None`: AI spend is not counted.
    pub ai: Option<LocalAiConfig>,
}

impl Default for LocalCostConfig {
    fn default() -> LocalCostConfig {
        LocalCostConfig {
            memory_mb: DEFAULT_MEMORY_MB,
            prices: PriceTable::seed(),
            ai: None,
        }
    }
}

/// Where daily costs come from.
#[derive(Debug, Clone, PartialEq)]
pub enum CostSourceConfig {
    /// AWS Cost Explorer (`GetCostAndUsage`).
    Aws(CostExplorerConfig),
    /// The local cost model: the router's counted usage and Steno's tokens, priced.
    Local(LocalCostConfig),
}

/// The `costs` block, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CostsConfig {
    pub source: CostSourceConfig,
    /// How often `opsd up` checks the budgets (default 1 h).
    pub check_interval: Duration,
    /// How old the newest cost check may be for the budget gate to trust it (default 3 ×
    /// `check_interval`, at least `check_interval`); an older one keeps the gate closed.
    pub gate_max_age: Duration,
    pub anomalies: AnomalyRules,
    /// Rollouts that started this long before an anomaly's day (or on it) are named with it.
    pub rollout_window: Duration,
    pub budgets: Vec<Budget>,
}

/// What a cost error is built with: the field under `costs` and the message.
pub(super) type CostError<'a> = dyn Fn(&str, String) -> ConfigError + 'a;

/// `costs`, validated; errors name `costs.<field>` (budgets by name: `costs.budgets.<name>.<field>`).
/// A budget's `notify` must name targets of `notification_targets`.
pub(super) fn validate_costs(
    source: &Source,
    raw: RawCosts,
    databases: &BTreeMap<String, DatabaseConfig>,
    services: &BTreeMap<String, ServiceConfig>,
    notification_targets: &[NotificationTarget],
) -> Result<CostsConfig, ConfigError> {
    let error = |field: &str, message: String| {
        let key = field.rsplit('.').next().unwrap_or(field);
        source.error(line_of(source.text, key), format!("costs.{field}"), message)
    };
    let cost_source = validate_cost_source(&raw, databases, services, &error)?;
    let (check_interval, gate_max_age) = validate_check_intervals(
        raw.check_interval.as_deref(),
        raw.gate_max_age.as_deref(),
        &error,
    )?;
    let (anomalies, rollout_window) = validate_anomalies(raw.anomalies, &error)?;
    let budgets = budgets::validate_budgets(raw.budgets, notification_targets, &error)?;
    Ok(CostsConfig {
        source: cost_source,
        check_interval,
        gate_max_age,
        anomalies,
        rollout_window,
        budgets,
    })
}

/// `costs.source` with its `aws` or `local` block; `local` is refused with another source.
fn validate_cost_source(
    raw: &RawCosts,
    databases: &BTreeMap<String, DatabaseConfig>,
    services: &BTreeMap<String, ServiceConfig>,
    error: &CostError,
) -> Result<CostSourceConfig, ConfigError> {
    let cost_source = match raw.source.as_deref() {
        None | Some("aws") => {
            CostSourceConfig::Aws(validate_cost_explorer(raw.aws.as_ref(), error)?)
        }
        Some("local") => CostSourceConfig::Local(validate_local_costs(
            raw.local.as_ref(),
            databases,
            services,
            error,
        )?),
        Some(other) => return Err(error("source", format!("{other:?} is not aws or local"))),
    };
    if raw.source.as_deref() != Some("local") && raw.local.is_some() {
        return Err(error(
            "local",
            "is only read with source: local; remove it or set source: local".into(),
        ));
    }
    Ok(cost_source)
}

/// `costs.aws`: Cost Explorer's region, endpoint and attempts.
fn validate_cost_explorer(
    raw: Option<&RawCostsAws>,
    error: &CostError,
) -> Result<CostExplorerConfig, ConfigError> {
    let mut explorer = CostExplorerConfig::default();
    let Some(aws) = raw else {
        return Ok(explorer);
    };
    if let Some(region) = &aws.region {
        if region.trim().is_empty() {
            return Err(error(
                "aws.region",
                "is empty; Cost Explorer is served from us-east-1".into(),
            ));
        }
        explorer.region = region.clone();
    }
    if let Some(url) = &aws.endpoint_url {
        match reqwest::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            _ => {
                return Err(error(
                    "aws.endpoint_url",
                    format!("{url:?} is not an http or https URL"),
                ))
            }
        }
        explorer.endpoint_url = Some(url.clone());
    }
    if let Some(attempts) = aws.max_attempts {
        if attempts == 0 || attempts > 10 {
            return Err(error(
                "aws.max_attempts",
                format!("{attempts} must be between 1 and 10"),
            ));
        }
        explorer.retry.max_attempts = attempts;
    }
    Ok(explorer)
}

/// `costs.check_interval` (at least 1m) and `costs.gate_max_age` (at least the interval).
fn validate_check_intervals(
    check_interval: Option<&str>,
    gate_max_age: Option<&str>,
    error: &CostError,
) -> Result<(Duration, Duration), ConfigError> {
    let check_interval = match check_interval {
        Some(text) => parse_duration(text).map_err(|message| error("check_interval", message))?,
        None => DEFAULT_COST_CHECK_INTERVAL,
    };
    if check_interval < Duration::from_secs(60) {
        return Err(error(
            "check_interval",
            "must be at least 1m (Cost Explorer updates a few times a day and bills per request)"
                .into(),
        ));
    }
    let gate_max_age = match gate_max_age {
        Some(text) => parse_duration(text).map_err(|message| error("gate_max_age", message))?,
        None => check_interval.saturating_mul(DEFAULT_GATE_MAX_AGE_INTERVALS),
    };
    if gate_max_age < check_interval {
        return Err(error(
            "gate_max_age",
            format!(
                "{} is shorter than check_interval {}: the newest check would be too old between                  two checks; make it at least check_interval (default 3 × check_interval)",
                format_duration(gate_max_age),
                format_duration(check_interval)
            ),
        ));
    }
    Ok((check_interval, gate_max_age))
}

/// `costs.anomalies` over the seed rules, and the rollout window.
fn validate_anomalies(
    raw: Option<RawAnomalies>,
    error: &CostError,
) -> Result<(AnomalyRules, Duration), ConfigError> {
    let mut anomalies = AnomalyRules::seed();
    let mut rollout_window = DEFAULT_ROLLOUT_WINDOW;
    let Some(raw_rules) = raw else {
        return Ok((anomalies, rollout_window));
    };
    if let Some(value) = raw_rules.jump_percent {
        anomalies.jump_percent = value;
    }
    if let Some(value) = raw_rules.jump_floor_usd {
        anomalies.jump_floor_usd = value;
    }
    if let Some(value) = raw_rules.same_weekday_weeks {
        anomalies.same_weekday_weeks = value;
    }
    if let Some(value) = raw_rules.ai_service {
        anomalies.ai_service = value;
    }
    if let Some(value) = raw_rules.ai_percent_of_average {
        anomalies.ai_percent_of_average = value;
    }
    if let Some(value) = raw_rules.check_account_total {
        anomalies.check_account_total = value;
    }
    if let Some(text) = raw_rules.rollout_window.as_deref() {
        rollout_window =
            parse_duration(text).map_err(|message| error("anomalies.rollout_window", message))?;
    }
    if let Err(problem) = anomalies.validate() {
        return Err(error("anomalies", problem.to_string()));
    }
    Ok((anomalies, rollout_window))
}

/// `costs.local`, validated: the memory size (Lambda's 128–10,240 MB) and the AI block.
fn validate_local_costs(
    raw: Option<&RawCostsLocal>,
    databases: &BTreeMap<String, DatabaseConfig>,
    services: &BTreeMap<String, ServiceConfig>,
    error: &CostError,
) -> Result<LocalCostConfig, ConfigError> {
    let mut local = LocalCostConfig::default();
    let Some(raw) = raw else {
        return Ok(local);
    };
    if let Some(memory_mb) = raw.memory_mb {
        if !(128..=10_240).contains(&memory_mb) {
            return Err(error(
                "local.memory_mb",
                format!("{memory_mb} must be between 128 and 10240 (Lambda's memory sizes)"),
            ));
        }
        local.memory_mb = memory_mb;
    }
    if let Some(ai) = &raw.ai {
        local.ai = Some(validate_local_ai(ai, databases, services, error)?);
    }
    Ok(local)
}

/// `costs.local.ai`: a SQLite or PostgreSQL database under `databases` holding Steno's letter
/// revisions, and the token prices.
fn validate_local_ai(
    ai: &RawCostsAi,
    databases: &BTreeMap<String, DatabaseConfig>,
    services: &BTreeMap<String, ServiceConfig>,
    error: &CostError,
) -> Result<LocalAiConfig, ConfigError> {
    let database = ai.database.clone().ok_or_else(|| {
        error(
            "local.ai.database",
            "is missing: name the database (under databases) holding Steno's letter revisions"
                .into(),
        )
    })?;
    let configured = databases.get(&database).ok_or_else(|| {
        error(
            "local.ai.database",
            format!(
                "{database:?} is not under databases; configured: {}",
                names_or_none(databases.keys())
            ),
        )
    })?;
    let location = match &configured.kind {
        DatabaseKind::Sqlite { path } => TokenDatabase::Sqlite(path.clone()),
        DatabaseKind::Postgres { url, .. } => TokenDatabase::Postgres(url.clone()),
        DatabaseKind::Rds(_) => {
            return Err(error(
                "local.ai.database",
                format!(
                    "{database:?} is an RDS instance; the local cost model reads tokens from \
                     a sqlite or postgres database"
                ),
            ))
        }
    };
    let price = |value: Option<f64>, field: &str| -> Result<f64, ConfigError> {
        let value = value.ok_or_else(|| {
            error(
                &format!("local.ai.{field}"),
                format!("is missing, like {field}: 3.0 (your model's price in US dollars)"),
            )
        })?;
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(error(
                &format!("local.ai.{field}"),
                format!("{value} must be a number of US dollars, 0 or more"),
            ))
        }
    };
    let mut prices = AiPrices::new(
        price(
            ai.per_million_input_tokens_usd,
            "per_million_input_tokens_usd",
        )?,
        price(
            ai.per_million_output_tokens_usd,
            "per_million_output_tokens_usd",
        )?,
    );
    if let Some(service) = &ai.service {
        prices.service = service.clone();
    }
    prices
        .validate()
        .map_err(|problem| error("local.ai.service", problem.to_string()))?;
    let owner_service = services
        .values()
        .find(|service| service.database.as_deref() == Some(database.as_str()))
        .map(|service| service.name.clone());
    Ok(LocalAiConfig {
        database,
        location,
        prices,
        owner_service,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;
    use crate::core::cost::BudgetScope;
    use crate::core::drill::GateMode;

    #[test]
    fn costs_take_a_source_budgets_with_scopes_and_seed_thresholds() {
        let config = parse(
            "services:\n  steno:\n    budget_gate: refuse\ncosts:\n  source: aws\n  aws: {endpoint_url: \"http://127.0.0.1:4566\", max_attempts: 2}\n  check_interval: 30m\n  anomalies: {jump_floor_usd: 25, check_account_total: false, rollout_window: 12h}\n  budgets:\n    - {name: monthly, amount_usd: 1000}\n    - name: lambda\n      amount_usd: 200\n      scope: {service: AWS Lambda}\n      thresholds: [{basis: actual, percent: 90, severity: warning}]\n    - {name: prod, amount_usd: 700, scope: {tag: \"Environment=production\"}}\n",
        )
        .unwrap();
        let costs = config.costs.as_ref().unwrap();
        assert_eq!(config.services["steno"].budget_gate, GateMode::Refuse);
        assert_eq!(costs.check_interval, Duration::from_secs(1800));
        // gate_max_age defaults to 3 x check_interval.
        assert_eq!(costs.gate_max_age, Duration::from_secs(3 * 1800));
        assert_eq!(costs.rollout_window, Duration::from_secs(12 * 3600));
        assert_eq!(costs.anomalies.jump_floor_usd, 25.0);
        assert!(!costs.anomalies.check_account_total);
        assert_eq!(costs.anomalies.jump_percent, 20.0);
        let CostSourceConfig::Aws(explorer) = &costs.source else {
            panic!("source: aws gives Cost Explorer")
        };
        assert_eq!(explorer.region, "us-east-1");
        assert_eq!(explorer.retry.max_attempts, 2);
        assert_eq!(costs.budgets[0], Budget::seed_default(1000.0));
        assert_eq!(
            costs.budgets[1].scope,
            BudgetScope::Service("AWS Lambda".into())
        );
        assert_eq!(costs.budgets[1].thresholds.len(), 1);
        assert_eq!(
            costs.budgets[2].scope,
            BudgetScope::Tag {
                key: "Environment".into(),
                value: "production".into()
            }
        );
        assert!(costs.budgets.iter().all(|budget| budget.notify.is_empty()));
        let plain = parse("services:\n  steno: {}\n").unwrap();
        assert!(plain.costs.is_none());
        assert_eq!(plain.services["steno"].budget_gate, GateMode::Off);
    }

    #[test]
    fn a_local_cost_source_prices_with_the_seed_table_and_reads_tokens_from_a_database() {
        use super::{TokenDatabase, DEFAULT_MEMORY_MB};
        let databases = "databases:\n  steno: {kind: sqlite, path: data/steno.db}\n  big: {kind: rds, rds: {region: eu-west-1, instance: prod}}\n";
        let config = parse(&format!(
            "services:\n  steno:\n    database: steno\n{databases}costs:\n  source: local\n  local:\n    memory_mb: 1024\n    ai: {{database: steno, per_million_input_tokens_usd: 3, per_million_output_tokens_usd: 15}}\n  budgets: [{{name: monthly, amount_usd: 1000}}]\n"
        ))
        .unwrap();
        let CostSourceConfig::Local(local) = &config.costs.as_ref().unwrap().source else {
            panic!("source: local gives the local model")
        };
        assert_eq!(local.memory_mb, 1024);
        assert_eq!(local.prices, crate::core::cost::pricing::PriceTable::seed());
        let ai = local.ai.as_ref().unwrap();
        assert!(
            matches!(&ai.location, TokenDatabase::Sqlite(path) if path.ends_with("data/steno.db"))
        );
        assert_eq!(ai.prices.per_million_output_tokens_usd, 15.0);
        assert_eq!(ai.prices.service, "AI");
        assert_eq!(ai.owner_service.as_deref(), Some("steno"));

        let plain = parse("services:\n  steno: {}\ncosts:\n  source: local\n  budgets: [{name: b, amount_usd: 1}]\n").unwrap();
        let CostSourceConfig::Local(local) = &plain.costs.as_ref().unwrap().source else {
            panic!("source: local gives the local model")
        };
        assert_eq!(local.memory_mb, DEFAULT_MEMORY_MB);
        assert!(local.ai.is_none());

        let cases = [
            ("ai: {per_million_input_tokens_usd: 1, per_million_output_tokens_usd: 1}", "costs.local.ai.database", "is missing"),
            ("ai: {database: nope, per_million_input_tokens_usd: 1, per_million_output_tokens_usd: 1}", "costs.local.ai.database", "big, steno"),
            ("ai: {database: big, per_million_input_tokens_usd: 1, per_million_output_tokens_usd: 1}", "costs.local.ai.database", "RDS instance"),
            ("ai: {database: steno, per_million_output_tokens_usd: 1}", "costs.local.ai.per_million_input_tokens_usd", "is missing"),
            ("ai: {database: steno, per_million_input_tokens_usd: 1, per_million_output_tokens_usd: -2}", "costs.local.ai.per_million_output_tokens_usd", "0 or more"),
            ("ai: {database: steno, per_million_input_tokens_usd: 1, per_million_output_tokens_usd: 1, service: \" \"}", "costs.local.ai.service", "empty"),
        ];
        for (ai, field, words) in cases {
            let error = parse(&format!(
                "services:\n  steno: {{}}\n{databases}costs:\n  source: local\n  local:\n    {ai}\n  budgets: [{{name: b, amount_usd: 1}}]\n"
            ))
            .unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{ai}: {error}");
            assert!(error.to_string().contains(words), "{ai}: {error}");
        }
        let checked = parse(&format!(
            "analysis:\n  cost_per_request: {{max_ratio: 3}}\nservices:\n  steno: {{}}\n{databases}costs:\n  source: local\n  local: {{memory_mb: 1024}}\n  budgets: [{{name: b, amount_usd: 1}}]\n"
        ))
        .unwrap();
        let check = checked.policy.cost_per_request.as_ref().unwrap();
        assert_eq!(check.max_ratio, 3.0);
        assert_eq!(check.memory_mb, 1024);
        assert_eq!(
            check.min_requests,
            checked.policy.analysis.min_canary_requests
        );
        let defaults =
            parse("analysis:\n  cost_per_request: {}\nservices:\n  steno: {}\n").unwrap();
        let check = defaults.policy.cost_per_request.as_ref().unwrap();
        assert_eq!((check.max_ratio, check.memory_mb), (2.0, DEFAULT_MEMORY_MB));
        assert!(parse("services:\n  steno: {}\n")
            .unwrap()
            .policy
            .cost_per_request
            .is_none());
        let bad =
            parse("analysis:\n  cost_per_request: {max_ratio: 0.5}\nservices:\n  steno: {}\n")
                .unwrap_err();
        assert_eq!(bad.field.as_deref(), Some("cost_per_request"), "{bad}");
        assert!(bad.to_string().contains("above 1"), "{bad}");
        let misplaced = parse("services:\n  steno: {}\ncosts:\n  local: {memory_mb: 512}\n  budgets: [{name: b, amount_usd: 1}]\n").unwrap_err();
        assert_eq!(
            misplaced.field.as_deref(),
            Some("costs.local"),
            "{misplaced}"
        );
    }

    #[test]
    fn bad_cost_blocks_name_the_field() {
        let cases = [
            ("costs:\n  source: gcp\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.source", "not aws or local"),
            ("costs:\n  source: local\n  local: {memory_mb: 64}\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.local.memory_mb", "between 128 and 10240"),
            ("costs:\n  budgets: []\n", "costs.budgets", "at least one"),
            ("costs:\n  budgets: [{name: b}]\n", "costs.budgets.b.amount_usd", "missing"),
            ("costs:\n  budgets: [{name: b, amount_usd: -3}]\n", "costs.budgets.b.amount_usd", "positive"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, period: weekly}]\n", "costs.budgets.b.period", "monthly"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, scope: region}]\n", "costs.budgets.b.scope", "account"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, scope: {tag: production}}]\n", "costs.budgets.b.scope.tag", "Key=value"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, thresholds: [{basis: actual, percent: 80, severity: page}]}]\n", "costs.budgets.b.thresholds[0].severity", "warning or critical"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, thresholds: [{basis: spend, percent: 80, severity: warning}]}]\n", "costs.budgets.b.thresholds[0].basis", "actual or forecast"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1}, {name: b, amount_usd: 2}]\n", "costs.budgets.b.name", "twice"),
            ("costs:\n  check_interval: 5s\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.check_interval", "at least 1m"),
            ("costs:\n  check_interval: 1h\n  gate_max_age: 30m\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.gate_max_age", "at least check_interval"),
            ("costs:\n  gate_max_age: soon\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.gate_max_age", "like"),
            ("costs:\n  budgets: [{name: b, amount_usd: 1, notify: []}]\n", "costs.budgets.b.notify", "route by severity"),
            ("costs:\n  aws: {max_attempts: 0}\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.aws.max_attempts", "between 1 and 10"),
            ("costs:\n  anomalies: {jump_percent: -1}\n  budgets: [{name: b, amount_usd: 1}]\n", "costs.anomalies", "jump_percent"),
        ];
        for (block, field, words) in cases {
            let error = parse(&format!("services:\n  steno: {{}}\n{block}")).unwrap_err();
            assert_eq!(error.field.as_deref(), Some(field), "{block}: {error}");
            assert!(error.to_string().contains(words), "{block}: {error}");
        }
        let unknown = parse(
            "services:\n  steno: {}\ncosts:\n  budgets: [{name: b, amount_usd: 1, limit: 2}]\n",
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("limit"), "{unknown}");
        let gate = parse("services:\n  steno:\n    budget_gate: refuse\n").unwrap_err();
        assert_eq!(gate.field.as_deref(), Some("services.steno.budget_gate"));
        let gate = parse("services:\n  steno:\n    budget_gate: hold\n").unwrap_err();
        assert!(gate.to_string().contains("refuse or off"), "{gate}");
    }
}
