//! Cost checks at the I/O edge: builds the configured [`CostSource`], reads the daily costs of
//! the month and enough history for the forecast and the anomaly baselines, evaluates every
//! budget, finds the anomalies of today and yesterday and names the rollouts that started shortly
//! before them, records the check in the store and says which notifications are new
//! ([`CostState::advance`], persisted, so a restart does not alert again).
//!
//! Exit codes (R-OPS-1 in docs/requirements.md): 0 every budget within its thresholds, 3 a warning threshold crossed,
//! 2 a critical threshold crossed (actual or forecast); 1 for configuration or platform errors.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;

use crate::config::{Config, CostSourceConfig, CostsConfig};
use crate::core::cost::pricing::{AiPrices, PriceTable};
use crate::core::cost::{
    budget_gate, daily_totals, daily_totals_by_service, detect_anomalies, evaluate_budget,
    forecast_month_end, link_rollouts, month_bounds, Anomaly, BudgetGateClosed, BudgetScope,
    BudgetState, BudgetStatus, CostError, CostNotification, CostState, DailyCost, Forecast,
    NewestCostCheck, ThresholdBasis,
};
use crate::notify::{Notification, Notifier};
use crate::platform::cost_source::{CostGrouping, CostSource, CostSourceError};
use crate::store::{Store, StoreError};

/// Days of history read before `today`: four weeks of forecast lookback and four same-weekday
/// weeks of anomaly baseline before yesterday, with a margin; always covers the month's start.
pub const HISTORY_DAYS: u64 = 63;

/// Rollouts read from the store to link anomalies to.
const ROLLOUTS_TO_LINK: u32 = 500;

/// What went wrong in a cost check. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CostCheckError {
    #[error("no costs: block in {0}; add one with a source and at least one budget")]
    NotConfigured(String),
    #[error("{0}")]
    Source(#[from] CostSourceError),
    #[error("{0}")]
    Core(#[from] CostError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("the remembered cost state cannot be read ({0}); delete the row of the cost_state table to start afresh (the next check notifies every current state once)")]
    State(String),
}

/// The spend of one service (or tag value) this month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceSpend {
    pub service: String,
    pub month_to_date_usd: f64,
}

/// One cost check: the month so far by service, the account's forecast, every budget and the
/// anomalies of today and yesterday.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub today: NaiveDate,
    pub source: String,
    pub month_start: NaiveDate,
    pub month_end: NaiveDate,
    pub month_to_date_usd: f64,
    /// Services by month-to-date spend, largest first.
    pub services: Vec<ServiceSpend>,
    /// The whole account's month-end forecast.
    pub forecast: Forecast,
    pub budgets: Vec<BudgetStatus>,
    pub anomalies: Vec<Anomaly>,
    /// The worst budget state.
    pub state: BudgetState,
    /// Whether some budget's forecast threshold is crossed (what the budget gate reads).
    pub forecast_over_budget: bool,
    /// 0, 2 or 3 (see the module documentation).
    pub exit_code: u8,
    /// The local cost model's month-to-date usage and prices (absent for Cost Explorer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<LocalUsageSummary>,
}

/// The configured `costs` block, or an error naming the configuration file.
pub fn costs_config(config: &Config) -> Result<&CostsConfig, CostCheckError> {
    config
        .costs
        .as_ref()
        .ok_or_else(|| CostCheckError::NotConfigured(config.source.clone()))
}

fn source_name(costs: &CostsConfig) -> String {
    match &costs.source {
        CostSourceConfig::Aws(_) => crate::platform::aws::costs::SOURCE_NAME.to_string(),
        CostSourceConfig::Local(_) => crate::platform::local::costs::SOURCE_NAME.to_string(),
    }
}

/// What the local cost model priced this month: the counted usage, the tokens and the prices,
/// so anyone can redo the sums by hand.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocalUsageSummary {
    pub requests: u64,
    pub errors: u64,
    /// Summed request durations (time to response headers, each rounded up to 1 ms).
    pub duration_ms: u64,
    pub memory_mb: u32,
    /// `duration_ms` / 1,000 × `memory_mb` / 1,024.
    pub gb_seconds: f64,
    pub bytes_out: u64,
    pub ai_input_tokens: u64,
    pub ai_output_tokens: u64,
    pub prices: PriceTable,
    pub ai_prices: Option<AiPrices>,
}

/// The month-to-date usage behind the local model's costs (`None` for other sources).
pub async fn local_usage_summary(
    costs: &CostsConfig,
    store: &Store,
    today: NaiveDate,
) -> Result<Option<LocalUsageSummary>, CostCheckError> {
    let CostSourceConfig::Local(local) = &costs.source else {
        return Ok(None);
    };
    let (month_start, _) = month_bounds(today)?;
    let to_exclusive = today
        .succ_opt()
        .ok_or(CostError::DayOutOfRange { day: today })?;
    let rows = store.usage_between(month_start, to_exclusive).await?;
    let mut summary = LocalUsageSummary {
        requests: rows.iter().map(|row| row.requests).sum(),
        errors: rows.iter().map(|row| row.errors).sum(),
        duration_ms: rows.iter().map(|row| row.duration_ms).sum(),
        memory_mb: local.memory_mb,
        gb_seconds: 0.0,
        bytes_out: rows.iter().map(|row| row.bytes_out).sum(),
        ai_input_tokens: 0,
        ai_output_tokens: 0,
        prices: local.prices,
        ai_prices: local.ai.as_ref().map(|ai| ai.prices.clone()),
    };
    summary.gb_seconds =
        summary.duration_ms as f64 / 1_000.0 * f64::from(summary.memory_mb) / 1_024.0;
    if let Some(ai) = &local.ai {
        let tokens =
            crate::platform::local::costs::read_tokens_by_day(ai, month_start, to_exclusive)
                .await?;
        summary.ai_input_tokens = tokens.values().map(|day| day.input).sum();
        summary.ai_output_tokens = tokens.values().map(|day| day.output).sum();
    }
    Ok(Some(summary))
}

/// Today as a UTC calendar day.
pub fn utc_today() -> NaiveDate {
    Utc::now().date_naive()
}

/// The check's exit code: 2 when any budget is critical, 3 when any is at warning, else 0.
pub fn exit_code(state: BudgetState) -> u8 {
    match state {
        BudgetState::Ok => 0,
        BudgetState::Warning => 3,
        BudgetState::Critical => 2,
    }
}

fn state_name(state: BudgetState) -> &'static str {
    match state {
        BudgetState::Ok => "ok",
        BudgetState::Warning => "warning",
        BudgetState::Critical => "critical",
    }
}

/// Reads the costs and evaluates them on `today`, without touching the store's state.
pub async fn evaluate(
    costs: &CostsConfig,
    store: &Store,
    source: &dyn CostSource,
    today: NaiveDate,
) -> Result<CostReport, CostCheckError> {
    let (month_start, _) = month_bounds(today)?;
    let from = today
        .checked_sub_days(Days::new(HISTORY_DAYS))
        .unwrap_or(NaiveDate::MIN)
        .min(month_start);
    let to_exclusive = today
        .succ_opt()
        .ok_or(CostError::DayOutOfRange { day: today })?;
    let by_service = source
        .daily_costs(from, to_exclusive, CostGrouping::Service)
        .await?;
    let tag_keys: BTreeSet<&str> = costs
        .budgets
        .iter()
        .filter_map(|budget| budget.scope.tag_key())
        .collect();
    let mut by_tag: BTreeMap<&str, Vec<DailyCost>> = BTreeMap::new();
    for key in tag_keys {
        let rows = source
            .daily_costs(from, to_exclusive, CostGrouping::Tag(key.to_string()))
            .await?;
        by_tag.insert(key, rows);
    }
    let rollouts = store.list_rollouts(None, ROLLOUTS_TO_LINK).await?;
    let rollouts: Vec<(String, chrono::NaiveDateTime)> = rollouts
        .into_iter()
        .map(|rollout| (rollout.id, rollout.created_at.naive_utc()))
        .collect();
    let mut report = build_report(
        costs,
        &source_name(costs),
        &by_service,
        &by_tag,
        &rollouts,
        today,
    )?;
    report.usage = local_usage_summary(costs, store, today).await?;
    Ok(report)
}

/// The pure part of [`evaluate`]: a report from rows already read.
pub fn build_report(
    costs: &CostsConfig,
    source: &str,
    by_service: &[DailyCost],
    by_tag: &BTreeMap<&str, Vec<DailyCost>>,
    rollouts: &[(String, chrono::NaiveDateTime)],
    today: NaiveDate,
) -> Result<CostReport, CostCheckError> {
    let (month_start, month_end) = month_bounds(today)?;
    let rows: Vec<DailyCost> = by_service
        .iter()
        .filter(|row| row.day <= today)
        .cloned()
        .collect();
    let mut budgets = Vec::new();
    for budget in &costs.budgets {
        let in_scope = match &budget.scope {
            BudgetScope::Tag { key, .. } => budget
                .scope
                .select(by_tag.get(key.as_str()).map(Vec::as_slice).unwrap_or(&[])),
            _ => budget.scope.select(&rows),
        };
        budgets.push(evaluate_budget(budget, &in_scope, today)?);
    }
    let mut anomalies = Vec::new();
    if let Some(yesterday) = today.pred_opt() {
        anomalies.extend(detect_anomalies(&rows, yesterday, &costs.anomalies)?);
    }
    anomalies.extend(detect_anomalies(&rows, today, &costs.anomalies)?);
    let window = chrono::Duration::from_std(costs.rollout_window)
        .unwrap_or_else(|_| chrono::Duration::days(1));
    let anomalies = link_rollouts(anomalies, rollouts, window);
    let mut services: Vec<ServiceSpend> = daily_totals_by_service(&rows)?
        .into_iter()
        .map(|(service, totals)| ServiceSpend {
            service,
            month_to_date_usd: totals
                .range(month_start..=today)
                .map(|(_, amount)| amount)
                .sum(),
        })
        .filter(|spend| spend.month_to_date_usd != 0.0)
        .collect();
    services.sort_by(|a, b| {
        b.month_to_date_usd
            .total_cmp(&a.month_to_date_usd)
            .then(a.service.cmp(&b.service))
    });
    let forecast = forecast_month_end(&daily_totals(&rows)?, today)?;
    let state = budgets
        .iter()
        .map(|status| status.state)
        .max()
        .unwrap_or(BudgetState::Ok);
    let forecast_over_budget = budgets.iter().any(|status| {
        status
            .crossed
            .iter()
            .any(|crossing| crossing.threshold.basis == ThresholdBasis::Forecast)
    });
    Ok(CostReport {
        today,
        source: source.to_string(),
        month_start,
        month_end,
        month_to_date_usd: forecast.month_to_date_usd,
        services,
        forecast,
        budgets,
        anomalies,
        state,
        forecast_over_budget,
        exit_code: exit_code(state),
        usage: None,
    })
}

/// A check's report and the notifications it sent.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    pub check_id: i64,
    #[serde(flatten)]
    pub report: CostReport,
    /// One line per new notification (state changes and new anomalies only).
    pub notified: Vec<String>,
}

/// Evaluates, records the check, advances the remembered state and sends a notification for each
/// change it reports (through `notifier`: to a budget's `notify` targets, else by severity).
pub async fn check_and_notify(
    costs: &CostsConfig,
    store: &Store,
    source: &dyn CostSource,
    today: NaiveDate,
    notifier: &Notifier,
) -> Result<CheckOutcome, CostCheckError> {
    let report = evaluate(costs, store, source, today).await?;
    let checked_at = Utc::now();
    let report_json =
        serde_json::to_string(&report).map_err(|error| CostCheckError::State(error.to_string()))?;
    let check_id = store
        .insert_cost_check(
            checked_at,
            &today.to_string(),
            state_name(report.state),
            report.forecast_over_budget,
            &report_json,
        )
        .await?;
    let previous: CostState = match store.cost_state_json().await? {
        Some(text) => {
            serde_json::from_str(&text).map_err(|error| CostCheckError::State(error.to_string()))?
        }
        None => CostState::default(),
    };
    let (notifications, next) = previous.advance(&report.budgets, &report.anomalies, today);
    let next_json =
        serde_json::to_string(&next).map_err(|error| CostCheckError::State(error.to_string()))?;
    store.save_cost_state_json(&next_json).await?;
    let mut notified = Vec::new();
    for notification in &notifications {
        notifier.send(notification_of(notification, check_id, checked_at));
        notified.push(notification.summary());
    }
    Ok(CheckOutcome {
        check_id,
        report,
        notified,
    })
}

/// The notifier's message for one cost notification. Budget changes carry the check's id in
/// their key (a budget may go back and forth in a month) and go to the budget's `notify` targets
/// when it names some (else by severity); anomalies are keyed by day, service and rule, so one is
/// delivered once, and are always routed by severity.
pub fn notification_of(
    notification: &CostNotification,
    check_id: i64,
    checked_at: DateTime<Utc>,
) -> Notification {
    let (key, title) = match notification {
        CostNotification::Budget(change) => (
            format!(
                "cost/budget/{}/{}/{}-{}/{check_id}",
                change.budget,
                change.status.period_start,
                state_name(change.from),
                state_name(change.to)
            ),
            format!(
                "budget {}: {} -> {}",
                change.budget,
                state_name(change.from),
                state_name(change.to)
            ),
        ),
        CostNotification::Anomaly(anomaly) => (
            format!(
                "cost/anomaly/{}/{}/{}",
                anomaly.day,
                anomaly.service,
                anomaly.rule.as_str()
            ),
            format!("cost anomaly: {} on {}", anomaly.service, anomaly.day),
        ),
    };
    let mut body = notification.summary();
    if let CostNotification::Anomaly(anomaly) = notification {
        if !anomaly.rollouts_before.is_empty() {
            body.push_str(&format!(
                "; rollouts shortly before: {}",
                anomaly.rollouts_before.join(", ")
            ));
        }
    }
    Notification::new(key, notification.severity(), "costs", title)
        .with_body(body)
        .with_details(serde_json::json!({
            "checked_at": checked_at.to_rfc3339(),
            "notification": notification,
        }))
        .with_targets(notification.explicit_targets().map(<[String]>::to_vec))
}

/// Dollars with cents; amounts under a dollar (the local model's, typically) get four decimals,
/// so a fraction of a cent does not read as nothing. A negative zero (a sum of nothing) reads
/// as $0.00.
fn money(amount: f64) -> String {
    let amount = amount + 0.0;
    if amount != 0.0 && amount.abs() < 1.0 {
        format!("${amount:.4}")
    } else {
        format!("${amount:.2}")
    }
}

/// The local model's month-to-date usage: what was counted and the prices it was priced at.
fn format_local_usage(usage: &LocalUsageSummary) -> String {
    let mut out = format!(
        "usage this month (local model, priced as Lambda at {} MB + API Gateway + CloudFront):\n  \
         {} requests ({} errors), {:.3} GB-seconds, {:.6} GB out\n",
        usage.memory_mb,
        usage.requests,
        usage.errors,
        usage.gb_seconds,
        usage.bytes_out as f64 / 1_073_741_824.0
    );
    match &usage.ai_prices {
        Some(prices) => out.push_str(&format!(
            "  {} input and {} output tokens at ${}/M and ${}/M ({})\n\n",
            usage.ai_input_tokens,
            usage.ai_output_tokens,
            prices.per_million_input_tokens_usd,
            prices.per_million_output_tokens_usd,
            prices.service
        )),
        None => out.push_str("  AI tokens not counted (no costs.local.ai block)\n\n"),
    }
    out
}

/// The budgets as a table: name, budget, month-to-date, forecast, state, crossed thresholds.
fn format_budgets(report: &CostReport) -> String {
    let mut out = format!(
        "{:<16} {:>12} {:>12} {:>6} {:>12} {:>6} {:<9} {}\n",
        "BUDGET", "AMOUNT", "SPENT", "%", "FORECAST", "%", "STATE", "CROSSED"
    );
    for status in &report.budgets {
        let crossed: Vec<String> = status
            .crossed
            .iter()
            .map(|crossing| {
                format!(
                    "{} ({:?})",
                    crossing.threshold.label(),
                    crossing.threshold.severity
                )
                .to_lowercase()
            })
            .collect();
        out.push_str(&format!(
            "{:<16} {:>12} {:>12} {:>5.0}% {:>12} {:>5.0}% {:<9} {}\n",
            status.budget,
            money(status.budget_usd),
            money(status.month_to_date_usd),
            status.actual_percent + 0.0,
            money(status.forecast.point_usd),
            status.forecast_percent + 0.0,
            state_name(status.state),
            if crossed.is_empty() {
                "-".to_string()
            } else {
                crossed.join(", ")
            }
        ));
        for skipped in &status.skipped {
            out.push_str(&format!(
                "  {} not evaluated: {}\n",
                skipped.threshold.label(),
                skipped.reason
            ));
        }
    }
    out
}

fn format_anomalies(report: &CostReport) -> String {
    if report.anomalies.is_empty() {
        return "anomalies: none\n".into();
    }
    let mut out = String::from("anomalies:\n");
    for anomaly in &report.anomalies {
        out.push_str(&format!("  {}", anomaly.summary()));
        if anomaly.rollouts_before.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!(
                "; rollouts shortly before: {}\n",
                anomaly.rollouts_before.join(", ")
            ));
        }
    }
    out
}

/// `opsd cost check` as text: the state, the budgets, the anomalies and what was notified.
pub fn format_check(outcome: &CheckOutcome) -> String {
    let report = &outcome.report;
    let mut out = format!(
        "cost check {} ({}): {} — exit {}\n",
        report.today,
        report.source,
        state_name(report.state),
        report.exit_code
    );
    out.push_str(&format_budgets(report));
    out.push_str(&format_anomalies(report));
    if outcome.notified.is_empty() {
        out.push_str("notified: nothing new\n");
    } else {
        out.push_str("notified:\n");
        for line in &outcome.notified {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// `opsd cost report` as text: month-to-date by service, the forecast with its interval, the
/// budgets and the anomalies.
pub fn format_report(report: &CostReport) -> String {
    let mut out = format!(
        "costs {}..{} as of {} ({})\n\n{:<32} {:>12}\n",
        report.month_start,
        report.month_end,
        report.today,
        report.source,
        "SERVICE",
        "MONTH TO DATE"
    );
    for spend in &report.services {
        out.push_str(&format!(
            "{:<32} {:>12}\n",
            spend.service,
            money(spend.month_to_date_usd)
        ));
    }
    out.push_str(&format!(
        "{:<32} {:>12}\n\n",
        "total",
        money(report.month_to_date_usd)
    ));
    if let Some(usage) = &report.usage {
        out.push_str(&format_local_usage(usage));
    }
    let forecast = &report.forecast;
    let high = forecast
        .high_usd
        .map(money)
        .unwrap_or_else(|| "unknown".into());
    out.push_str(&format!(
        "forecast for {}: {} ({:.0} % interval {} – {}; {} days observed, {} remaining)\n\n",
        report.month_end,
        money(forecast.point_usd),
        forecast.interval_percent,
        money(forecast.low_usd),
        high,
        forecast.days_observed,
        forecast.days_remaining
    ));
    out.push_str(&format_budgets(report));
    out.push_str(&format_anomalies(report));
    out
}

/// The budget gate's view of the newest recorded cost check at `now` (see
/// [`crate::core::cost::budget_gate`]): `Some` closed while that check found a forecast over
/// budget or is older than `max_age` (`costs.gate_max_age`), `None` open. No check yet is open:
/// a first deploy must not wait for the first cost data. A check that cannot be read closes the
/// gate (a gate that cannot see does not open; the audited override still works). Never calls
/// the cost source.
pub async fn budget_gate_closed(
    store: &Store,
    now: DateTime<Utc>,
    max_age: std::time::Duration,
) -> Option<BudgetGateClosed> {
    let newest = match store.latest_cost_check().await {
        Ok(newest) => newest.map(|check| NewestCostCheck {
            over_budget: forecast_crossings(&check.report),
            checked_at: check.checked_at,
            today: check.today,
            forecast_over_budget: check.forecast_over_budget,
        }),
        Err(error) => {
            return Some(BudgetGateClosed {
                reason: format!("the newest cost check cannot be read ({error})"),
                what_to_do: "check opsd's store, then run opsd cost check".into(),
                stale: true,
            })
        }
    };
    budget_gate(newest.as_ref(), now, max_age)
}

/// The budgets of a recorded report whose forecast threshold is crossed, like `budget monthly
/// forecast $1350.00 of $1000.00`; empty when the report does not say.
fn forecast_crossings(report: &serde_json::Value) -> Vec<String> {
    report["budgets"]
        .as_array()
        .map(|budgets| {
            budgets
                .iter()
                .filter(|budget| {
                    budget["crossed"].as_array().is_some_and(|crossed| {
                        crossed
                            .iter()
                            .any(|crossing| crossing["threshold"]["basis"] == "forecast")
                    })
                })
                .map(|budget| {
                    format!(
                        "budget {} forecast ${:.2} of ${:.2}",
                        budget["budget"].as_str().unwrap_or("?"),
                        budget["forecast"]["point_usd"].as_f64().unwrap_or(0.0),
                        budget["budget_usd"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_COST_CHECK_INTERVAL, DEFAULT_ROLLOUT_WINDOW};
    use crate::core::cost::{AnomalyRules, Budget};
    use crate::platform::aws::costs::CostExplorerConfig;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn money_reads_as_dollars_and_a_negative_zero_as_zero() {
        assert_eq!(money(-0.0), "$0.00");
        assert_eq!(money(0.0), "$0.00");
        assert_eq!(money(0.004), "$0.0040");
        assert_eq!(money(12.5), "$12.50");
        assert_eq!(format!("{:.0}%", -0.0_f64 + 0.0), "0%");
    }

    fn costs(budgets: Vec<Budget>) -> CostsConfig {
        CostsConfig {
            source: CostSourceConfig::Aws(CostExplorerConfig::default()),
            check_interval: DEFAULT_COST_CHECK_INTERVAL,
            gate_max_age: DEFAULT_COST_CHECK_INTERVAL * 3,
            anomalies: AnomalyRules {
                check_account_total: false,
                ..AnomalyRules::seed()
            },
            rollout_window: DEFAULT_ROLLOUT_WINDOW,
            budgets,
        }
    }

    /// `daily` a day of `service` for 63 days through `today`, `today_usd` on `today`.
    fn series(service: &str, today: NaiveDate, daily: f64, today_usd: f64) -> Vec<DailyCost> {
        (0..=63)
            .map(|back| {
                let on = today.checked_sub_days(Days::new(back)).unwrap();
                DailyCost {
                    day: on,
                    service: service.into(),
                    amount_usd: if on == today { today_usd } else { daily },
                }
            })
            .collect()
    }

    #[test]
    fn reports_rank_services_and_take_the_worst_budget_state() {
        let today = day("2026-06-28");
        let mut rows = series("AWS Lambda", today, 25.0, 25.0);
        rows.extend(series("Amazon CloudFront", today, 5.0, 5.0));
        let report = build_report(
            &costs(vec![Budget::seed_default(1000.0)]),
            "test",
            &rows,
            &BTreeMap::new(),
            &[],
            today,
        )
        .unwrap();
        assert_eq!(report.services[0].service, "AWS Lambda");
        assert!((report.services[0].month_to_date_usd - 700.0).abs() < 1e-6);
        assert!((report.month_to_date_usd - 840.0).abs() < 1e-6);
        assert_eq!(report.state, BudgetState::Warning);
        assert_eq!(report.exit_code, 3);
        assert!(!report.forecast_over_budget);
        let text = format_report(&report);
        assert!(text.contains("AWS Lambda"), "{text}");
        assert!(text.contains("forecast for 2026-06-30"), "{text}");
    }

    #[test]
    fn tag_budgets_read_the_tag_rows_and_anomalies_name_recent_rollouts() {
        let today = day("2026-07-10");
        let rows = series("AWS Lambda", today, 10.0, 80.0);
        let tagged = series("production", today, 40.0, 40.0);
        let mut by_tag = BTreeMap::new();
        by_tag.insert("Environment", tagged);
        let mut prod = Budget::seed_default(500.0);
        prod.name = "prod".into();
        prod.scope = BudgetScope::Tag {
            key: "Environment".into(),
            value: "production".into(),
        };
        let rollouts = vec![
            (
                "r-before".to_string(),
                day("2026-07-09").and_hms_opt(18, 0, 0).unwrap(),
            ),
            (
                "r-long-ago".to_string(),
                day("2026-07-01").and_hms_opt(9, 0, 0).unwrap(),
            ),
        ];
        let report = build_report(
            &costs(vec![Budget::seed_default(1000.0), prod]),
            "test",
            &rows,
            &by_tag,
            &rollouts,
            today,
        )
        .unwrap();
        // $400 of $500 by July 10 on the tag, and a $1,240 forecast: critical on the forecast.
        assert_eq!(report.budgets[1].state, BudgetState::Critical);
        assert!(report.forecast_over_budget);
        assert_eq!(report.exit_code, 2);
        assert_eq!(report.budgets[0].state, BudgetState::Ok);
        assert_eq!(report.anomalies.len(), 1);
        assert_eq!(report.anomalies[0].rollouts_before, vec!["r-before"]);
    }

    #[tokio::test]
    async fn the_budget_gate_reads_the_newest_check_and_its_age() {
        let store = crate::store::test_store().await;
        let max_age = std::time::Duration::from_secs(3 * 3600);
        let checked_at: DateTime<Utc> = "2026-06-10T09:00:00Z".parse().unwrap();
        let fresh = checked_at + chrono::Duration::hours(1);
        let stale = checked_at + chrono::Duration::hours(4);
        assert_eq!(budget_gate_closed(&store, fresh, max_age).await, None);
        let report = serde_json::json!({"budgets": [{"budget": "monthly", "budget_usd": 1000.0,
            "forecast": {"point_usd": 1350.0},
            "crossed": [{"threshold": {"basis": "forecast", "percent": 120.0}}]}]});
        store
            .insert_cost_check(
                checked_at,
                "2026-06-10",
                "critical",
                true,
                &report.to_string(),
            )
            .await
            .unwrap();
        let closed = budget_gate_closed(&store, fresh, max_age).await.unwrap();
        assert!(
            closed
                .reason
                .contains("budget monthly forecast $1350.00 of $1000.00"),
            "{closed:?}"
        );
        assert!(!closed.stale);
        let closed = budget_gate_closed(&store, stale, max_age).await.unwrap();
        assert!(closed.stale, "{closed:?}");
        assert!(
            closed.reason.contains("budget monthly forecast"),
            "{closed:?}"
        );
        let later = checked_at + chrono::Duration::minutes(30);
        store
            .insert_cost_check(later, "2026-06-11", "ok", false, "{}")
            .await
            .unwrap();
        assert_eq!(budget_gate_closed(&store, fresh, max_age).await, None);
        let closed = budget_gate_closed(&store, stale + chrono::Duration::hours(1), max_age)
            .await
            .unwrap();
        assert!(
            closed
                .reason
                .starts_with("the newest cost check is from 2026-06-10 09:30:00 UTC"),
            "{closed:?}"
        );
        // A store that cannot be read closes the gate.
        store.close().await;
        let blind = budget_gate_closed(&store, fresh, max_age).await.unwrap();
        assert!(
            blind
                .reason
                .starts_with("the newest cost check cannot be read"),
            "{blind:?}"
        );
        assert!(blind.stale);
    }

    #[test]
    fn budget_notifications_go_to_the_budget_targets_and_anomalies_by_severity() {
        let today = day("2026-07-10");
        let rows = series("AWS Lambda", today, 10.0, 80.0);
        let mut routed = Budget::seed_default(100.0);
        routed.name = "routed".into();
        let mut named = Budget::seed_default(100.0);
        named.name = "named".into();
        named.notify = vec!["finance".into()];
        let report = build_report(
            &costs(vec![routed, named]),
            "test",
            &rows,
            &BTreeMap::new(),
            &[],
            today,
        )
        .unwrap();
        let (notifications, _) =
            CostState::default().advance(&report.budgets, &report.anomalies, today);
        assert_eq!(notifications.len(), 3, "{notifications:?}");
        let checked_at = Utc::now();
        let sent: Vec<Notification> = notifications
            .iter()
            .map(|notification| notification_of(notification, 7, checked_at))
            .collect();
        let by_title = |prefix: &str| {
            sent.iter()
                .find(|notification| notification.title.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix}: {sent:?}"))
        };
        assert_eq!(
            by_title("budget named").targets,
            Some(vec!["finance".into()])
        );
        assert_eq!(by_title("budget routed").targets, None);
        assert_eq!(by_title("cost anomaly").targets, None);
        assert!(by_title("budget named").key.ends_with("/7"));
    }
}
