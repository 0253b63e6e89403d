//! The dashboard's overview document: every service's status, the health of its releases, each
//! alarm rule's state, each gate's state with its reason when closed, and what the active
//! rollout waits for; above them, everything that needs a person, most urgent first.
//! Assembling reads the store and the platform; ranking what needs attention is pure
//! ([`needs_attention`]).

use serde::{Deserialize, Serialize};

use super::{time_of, AlarmStatusView, ControlError, Daemon, ServiceStatus};
use crate::config::ServiceConfig;
use crate::core::drill::GateMode;
use crate::core::gate::{window_verdict, GateKind, Verdict};
use crate::core::next_decision::next_decision;
use crate::core::rollout::Phase;

/// How long a finished rollout that rolled back or failed stays on the attention list.
const RECENT_FAILURE_MS: i64 = 24 * 60 * 60 * 1000;

/// The whole overview.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub attention: Vec<Attention>,
    pub services: Vec<ServiceOverview>,
    /// The latest cost check, account-wide; `None` before the first or without `costs`.
    pub costs: Option<CostSummary>,
    /// Which opsd instance leads and since when; `None` before any claimed the lease.
    pub leader: Option<LeaderView>,
}

/// The instance holding the leader lease, as `opsd status` and the dashboard show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaderView {
    /// Its host and data directory.
    pub instance: String,
    /// Where its API listens.
    pub api: String,
    pub epoch: i64,
    /// When this epoch began (RFC 3339).
    pub since: String,
    /// Whether the lease lapsed without a new leader yet (a follower takes it within a second).
    pub lapsed: bool,
}

impl LeaderView {
    pub fn from_holder(holder: &crate::store::LeaseHolder) -> LeaderView {
        LeaderView {
            instance: holder.instance.clone(),
            api: holder.api.clone(),
            epoch: holder.epoch,
            since: holder
                .since
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            lapsed: holder.expires_in_ms <= 0,
        }
    }
}

/// The latest cost check in a line per budget that is not ok.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CostSummary {
    pub checked_at: String,
    /// The worst budget state: `ok`, `warning` or `critical`.
    pub state: String,
    pub month_to_date_usd: Option<f64>,
    pub forecast_usd: Option<f64>,
    /// Like `monthly: warning, 83 % spent, forecast 120 %`.
    pub budgets_not_ok: Vec<String>,
}

impl CostSummary {
    /// Reads the stored report (its JSON, so an older report missing a field still shows).
    fn from_check(check: &crate::store::CostCheckRecord) -> CostSummary {
        let report = &check.report;
        let budgets_not_ok = report["budgets"]
            .as_array()
            .map(|budgets| {
                budgets
                    .iter()
                    .filter(|budget| budget["state"].as_str().is_some_and(|state| state != "ok"))
                    .map(|budget| {
                        format!(
                            "{}: {}, {:.0} % spent, forecast {:.0} %",
                            budget["budget"].as_str().unwrap_or("?"),
                            budget["state"].as_str().unwrap_or("?"),
                            budget["actual_percent"].as_f64().unwrap_or(0.0),
                            budget["forecast_percent"].as_f64().unwrap_or(0.0)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        CostSummary {
            checked_at: check.checked_at.to_rfc3339(),
            state: check.state.clone(),
            month_to_date_usd: report["month_to_date_usd"].as_f64(),
            forecast_usd: report["forecast"]["point_usd"].as_f64(),
            budgets_not_ok,
        }
    }
}

/// One service on the overview.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceOverview {
    #[serde(flatten)]
    pub status: ServiceStatus,
    /// What the active rollout's next decision waits for, in words.
    pub next_decision: Option<String>,
    pub stable_health: ReleaseHealth,
    /// The canary's health while a rollout runs.
    pub canary_health: Option<ReleaseHealth>,
    pub gates: Vec<GateView>,
    pub alarms: Vec<AlarmStatusView>,
}

/// A release's health as the daemon last saw it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReleaseHealth {
    pub version: String,
    pub healthy: bool,
    /// Why it is not healthy, in words.
    pub problem: Option<String>,
}

/// One deploy gate of a service, as a deploy would find it now.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GateView {
    pub gate: &'static str,
    /// `refuse`, `hold` or `off`: what a deploy does while the gate is closed.
    pub mode: &'static str,
    pub open: bool,
    pub reason: Option<String>,
    pub what_to_do: Option<String>,
}

/// Something a person should look at.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attention {
    pub service: String,
    /// `critical` or `warning`.
    pub level: &'static str,
    pub message: String,
    /// The rollout the entry is about, when it is about one.
    pub rollout_id: Option<String>,
    /// The dashboard page that shows it in full (`#/alarms`, `#/drills`, `#/costs`), when it is
    /// not a rollout.
    pub page: Option<&'static str>,
}

fn mode_name(mode: GateMode) -> &'static str {
    match mode {
        GateMode::Refuse => "refuse",
        GateMode::Hold => "hold",
        GateMode::Off => "off",
    }
}

fn gate_view(kind: GateKind, mode: GateMode, verdict: Verdict) -> GateView {
    match verdict {
        Verdict::Open => GateView {
            gate: kind.name(),
            mode: mode_name(mode),
            open: true,
            reason: None,
            what_to_do: None,
        },
        Verdict::Closed(closure) => GateView {
            gate: kind.name(),
            mode: mode_name(mode),
            open: false,
            reason: Some(closure.reason),
            what_to_do: Some(closure.what_to_do),
        },
    }
}

impl Daemon {
    /// The overview of every service.
    pub async fn overview(&self) -> Result<Overview, ControlError> {
        let now_ms = self.now_ms();
        let alarms = self.alarm_statuses(None).await?;
        let mut services = Vec::new();
        for status in self.status(None).await? {
            let config = self.service(&status.service)?.clone();
            let gates = self.gate_views(&config).await?;
            let next = status
                .active_rollout
                .as_ref()
                .map(|rollout| next_decision(&rollout.state, now_ms));
            let canary_health = status.active_rollout.as_ref().map(|rollout| {
                let failures = rollout.state.consecutive_health_failures;
                ReleaseHealth {
                    version: rollout.canary_version.clone(),
                    healthy: failures == 0,
                    problem: (failures > 0)
                        .then(|| format!("{failures} failed health probe(s) in a row")),
                }
            });
            services.push(ServiceOverview {
                stable_health: self.stable_health_view(&status).await,
                canary_health,
                next_decision: next,
                gates,
                alarms: alarms
                    .iter()
                    .filter(|alarm| alarm.service == status.service)
                    .cloned()
                    .collect(),
                status,
            });
        }
        let costs = match self.config.costs {
            Some(_) => self
                .store
                .latest_cost_check()
                .await?
                .map(|check| CostSummary::from_check(&check)),
            None => None,
        };
        Ok(Overview {
            attention: needs_attention(&services, costs.as_ref(), now_ms),
            services,
            costs,
            leader: self.leader().await?,
        })
    }

    /// Which instance holds the leader lease of the store, and since when.
    pub async fn leader(&self) -> Result<Option<LeaderView>, ControlError> {
        Ok(self
            .store
            .lease_holder()
            .await?
            .map(|holder| LeaderView::from_holder(&holder)))
    }

    /// The gates a deploy of `service` would meet now. Quarantine (which depends on the
    /// version) and the snapshot (which writes) are a deploy's own and are not shown.
    pub async fn gate_views(&self, service: &ServiceConfig) -> Result<Vec<GateView>, ControlError> {
        let window = self.window_state(service, self.now_ms()).await?;
        let window_mode = service
            .deploy_windows
            .as_ref()
            .map_or(GateMode::Off, |windows| windows.outside);
        Ok(vec![
            gate_view(
                GateKind::Freeze,
                GateMode::Refuse,
                self.freeze_verdict(service).await?,
            ),
            gate_view(GateKind::Window, window_mode, window_verdict(&window)),
            gate_view(
                GateKind::Alarm,
                service.alarm_gate,
                self.alarm_verdict(service).await?,
            ),
            gate_view(
                GateKind::Budget,
                service.budget_gate,
                self.budget_verdict(service).await,
            ),
            gate_view(
                GateKind::Drill,
                service.drill_gate,
                self.drill_verdict(service).await?,
            ),
        ])
    }

    /// The stable release's health as the production watch last saw it.
    async fn stable_health_view(&self, status: &ServiceStatus) -> ReleaseHealth {
        let watch = self.production.lock().await;
        let health = watch.health.get(&status.service);
        let problem = health.and_then(|health| {
            if let Some(crash) = &health.open_crash {
                Some(format!(
                    "crashed at {} ({} crash(es) recently)",
                    time_of(crash.since_ms).to_rfc3339(),
                    health.recent_crashes_ms.len()
                ))
            } else if health.consecutive_failures > 0 {
                Some(format!(
                    "{} failed health probe(s) in a row",
                    health.consecutive_failures
                ))
            } else {
                None
            }
        });
        ReleaseHealth {
            version: status.stable_version.clone(),
            healthy: problem.is_none(),
            problem,
        }
    }
}

/// Everything on the overview that needs a person, critical first, then by service; a budget
/// that is not ok is listed under `costs`.
pub fn needs_attention(
    services: &[ServiceOverview],
    costs: Option<&CostSummary>,
    now_ms: i64,
) -> Vec<Attention> {
    let mut found = Vec::new();
    if let Some(costs) = costs {
        let level = if costs.state == "critical" {
            "critical"
        } else {
            "warning"
        };
        for budget in &costs.budgets_not_ok {
            found.push(Attention {
                service: "costs".into(),
                level,
                message: format!("budget {budget}"),
                rollout_id: None,
                page: Some("#/costs"),
            });
        }
    }
    for service in services {
        let name = &service.status.service;
        // An entry links to its rollout, or else to the page that shows it.
        let mut add = |level: &'static str,
                       message: String,
                       rollout_id: Option<&String>,
                       page: Option<&'static str>| {
            found.push(Attention {
                service: name.clone(),
                level,
                message,
                rollout_id: rollout_id.cloned(),
                page,
            })
        };
        if let Some(rollout) = &service.status.active_rollout {
            let id = Some(&rollout.id);
            let version = &rollout.canary_version;
            match rollout.phase {
                Phase::Held => add(
                    "warning",
                    format!("rollout of {version} is held: {}", rollout.summary),
                    id,
                    None,
                ),
                Phase::Paused => add(
                    "warning",
                    format!("rollout of {version} is paused by an operator"),
                    id,
                    None,
                ),
                _ => {}
            }
            if rollout.state.approval.is_some() {
                add(
                    "warning",
                    format!("rollout of {version} waits for approval"),
                    id,
                    None,
                );
            }
            if let Some(window) = &rollout.waiting_for_window {
                add(
                    "warning",
                    format!("rollout of {version} is {window}"),
                    id,
                    None,
                );
            }
        }
        if let Some(last) = &service.status.last_rollout {
            let recent = last
                .state
                .finished_at_ms
                .is_some_and(|finished| now_ms - finished < RECENT_FAILURE_MS);
            if recent && matches!(last.phase, Phase::RolledBack | Phase::Failed) {
                add(
                    "warning",
                    format!(
                        "{} was {}: {}",
                        last.canary_version,
                        last.phase.as_str().replace('_', " "),
                        last.summary
                    ),
                    Some(&last.id),
                    None,
                );
            }
        }
        for alarm in &service.alarms {
            if alarm.state.as_deref() == Some("ALARM") {
                let level = if alarm.severity == crate::core::severity::Severity::Critical {
                    "critical"
                } else {
                    "warning"
                };
                add(
                    level,
                    format!(
                        "alarm {} is firing: {}",
                        alarm.rule,
                        alarm.reason.clone().unwrap_or_default()
                    ),
                    None,
                    Some("#/alarms"),
                );
            }
        }
        for health in std::iter::once(&service.stable_health).chain(&service.canary_health) {
            if let Some(problem) = &health.problem {
                add(
                    "critical",
                    format!("{}: {problem}", health.version),
                    None,
                    None,
                );
            }
        }
        for gate in &service.gates {
            if !gate.open && gate.mode != "off" {
                add(
                    "warning",
                    format!(
                        "the {} gate is closed: {}",
                        gate.gate,
                        gate.reason.clone().unwrap_or_default()
                    ),
                    None,
                    Some(match gate.gate {
                        "drill" => "#/drills",
                        "budget" => "#/costs",
                        "alarm" => "#/alarms",
                        _ => "#/timeline",
                    }),
                );
            }
        }
    }
    found.sort_by_key(|entry| (entry.level != "critical", entry.service.clone()));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::severity::Severity;

    fn service(name: &str) -> ServiceOverview {
        ServiceOverview {
            status: ServiceStatus {
                service: name.into(),
                public_addr: "127.0.0.1:8080".into(),
                stable_version: "v1".into(),
                split: None,
                active_rollout: None,
                last_rollout: None,
            },
            next_decision: None,
            stable_health: ReleaseHealth {
                version: "v1".into(),
                healthy: true,
                problem: None,
            },
            canary_health: None,
            gates: vec![GateView {
                gate: "drill",
                mode: "refuse",
                open: true,
                reason: None,
                what_to_do: None,
            }],
            alarms: Vec::new(),
        }
    }

    fn alarm(rule: &str, severity: Severity, state: &str) -> AlarmStatusView {
        AlarmStatusView {
            service: "steno".into(),
            rule: rule.into(),
            description: String::new(),
            severity,
            condition: String::new(),
            threshold: 1.0,
            state: Some(state.into()),
            since: None,
            value: None,
            value_text: None,
            reason: Some("error_rate 3 % > 1 %".into()),
            notify_targets: Vec::new(),
        }
    }

    #[test]
    fn a_quiet_service_needs_nobody() {
        assert!(needs_attention(&[service("steno")], None, 0).is_empty());
    }

    #[test]
    fn critical_alarms_and_sick_releases_come_before_warnings() {
        let mut quiet = service("another");
        quiet.gates[0].open = false;
        quiet.gates[0].reason = Some("the newest drill failed".into());
        let mut steno = service("steno");
        steno.alarms = vec![
            alarm("latency", Severity::Warning, "ALARM"),
            alarm("errors", Severity::Critical, "ALARM"),
            alarm("calm", Severity::Critical, "OK"),
        ];
        steno.stable_health.healthy = false;
        steno.stable_health.problem = Some("2 failed health probe(s) in a row".into());
        let found = needs_attention(&[quiet, steno], None, 0);
        let levels: Vec<(&str, &str)> = found
            .iter()
            .map(|entry| (entry.level, entry.service.as_str()))
            .collect();
        assert_eq!(
            levels,
            vec![
                ("critical", "steno"),
                ("critical", "steno"),
                ("warning", "another"),
                ("warning", "steno"),
            ]
        );
        assert!(found[0].message.starts_with("alarm errors is firing"));
        assert_eq!(found[1].message, "v1: 2 failed health probe(s) in a row");
        assert_eq!(
            found[2].message,
            "the drill gate is closed: the newest drill failed"
        );
        assert_eq!(found[0].page, Some("#/alarms"));
        assert_eq!(found[2].page, Some("#/drills"));
    }

    #[test]
    fn a_budget_that_is_not_ok_is_listed_with_the_costs_page() {
        let check = crate::store::CostCheckRecord {
            id: 1,
            checked_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            today: "2026-12-04".into(),
            state: "warning".into(),
            forecast_over_budget: true,
            report: serde_json::json!({
                "month_to_date_usd": 41.5,
                "forecast": {"point_usd": 60.0},
                "budgets": [
                    {"budget": "monthly", "state": "warning", "actual_percent": 83.0, "forecast_percent": 120.0},
                    {"budget": "ai", "state": "ok", "actual_percent": 10.0, "forecast_percent": 20.0}
                ]
            }),
        };
        let costs = CostSummary::from_check(&check);
        assert_eq!(costs.forecast_usd, Some(60.0));
        let found = needs_attention(&[service("steno")], Some(&costs), 0);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].level, "warning");
        assert_eq!(
            found[0].message,
            "budget monthly: warning, 83 % spent, forecast 120 %"
        );
        assert_eq!(found[0].page, Some("#/costs"));
        let calm = CostSummary {
            state: "ok".into(),
            budgets_not_ok: Vec::new(),
            ..costs
        };
        assert!(needs_attention(&[service("steno")], Some(&calm), 0).is_empty());
    }

    #[test]
    fn a_closed_gate_that_is_off_is_not_a_problem() {
        let mut steno = service("steno");
        steno.gates[0].open = false;
        steno.gates[0].mode = "off";
        assert!(needs_attention(&[steno], None, 0).is_empty());
    }
}
