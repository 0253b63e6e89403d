//! The production watch: all the time, not only during rollouts, every service's stable release
//! is health-probed (`health_probe_interval`) and its crashes counted, and every alarm rule is
//! evaluated (`alarm_interval`) on the service's live traffic (every release it runs, the
//! canary's included during a rollout) or, for metrics only a cloud platform has, on that
//! platform's alarms. Each rule's state is stored with its transitions; the pure decisions
//! (what changed, what to notify) are `core::alarm_state` and `core::stable_health`.
//!
//! Routing: an alarm's notification goes to the targets of the routes its severity meets plus
//! the rule's own `notify` targets ([`crate::config::TARGET_KINDS`] explains the names). A
//! crash goes by severity (critical from the third within ten minutes).

use std::sync::Arc;

use super::{ControlError, Daemon};
use crate::core::alarm_state::{step_alarm, AlarmNotice, Observed, RuleStatus, Transition};
use crate::core::alarms::{evaluate_alarm, AlarmRule, AlarmState, ExternalAlarm, MetricSource};
use crate::core::duration::format_duration;
use crate::core::event::EventKind;
use crate::core::stable_health::{observe_stable_health, HealthLook, HealthNotice};
use crate::notify::{routed_targets, Notification};
use crate::platform::aws::alarm_sync::owned_prefix;
use crate::platform::HealthStatus;
use crate::store::{AlarmStateRecord, AlarmTransitionRecord};

/// One evaluation round of every service's alarm rules, stored and announced together.
#[derive(Default)]
struct AlarmRound {
    updates: Vec<(AlarmStateRecord, Option<AlarmTransitionRecord>)>,
    /// The timeline entries of the rules that changed state, by service.
    changes: Vec<(String, String)>,
    notifications: Vec<Notification>,
}

impl Daemon {
    /// Runs the production watch until `shutdown`.
    pub async fn watch_production(
        self: Arc<Self>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let period = self
            .config
            .health_probe_interval
            .min(self.config.alarm_interval);
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => break,
            }
            self.watch_tick().await;
        }
    }

    /// One look at every service: the stable release's health when a probe is due, the alarm
    /// rules when an evaluation is due. Returns the notifications sent.
    pub async fn watch_tick(&self) -> Vec<Notification> {
        let now = self.now_ms();
        let (probe_due, alarms_due) = {
            let mut watch = self.production.lock().await;
            let probe_due =
                now - watch.last_probe_ms >= self.config.health_probe_interval.as_millis() as i64;
            let alarms_due =
                now - watch.last_alarms_ms >= self.config.alarm_interval.as_millis() as i64;
            if probe_due {
                watch.last_probe_ms = now;
            }
            if alarms_due {
                watch.last_alarms_ms = now;
            }
            (probe_due, alarms_due)
        };
        let mut sent = Vec::new();
        let services: Vec<String> = self.config.services.keys().cloned().collect();
        if probe_due {
            for service in &services {
                match self.watch_stable_health(service, now).await {
                    Ok(notifications) => sent.extend(notifications),
                    Err(error) => {
                        tracing::warn!(service = %service, error = %error, "cannot look at the stable release")
                    }
                }
            }
        }
        if alarms_due {
            sent.extend(self.evaluate_all_production_alarms(&services, now).await);
        }
        for notification in &sent {
            self.notifier.send(notification.clone());
        }
        sent
    }

    /// Probes the stable release, reads its crash count, and turns crashes and recoveries into
    /// timeline events and notifications.
    async fn watch_stable_health(
        &self,
        service: &str,
        now: i64,
    ) -> Result<Vec<Notification>, ControlError> {
        let stable = self.stable_release(service).await?;
        let release_id = stable.release_id();
        let health = self.platforms.runner.probe_health(&stable).await;
        let crashes_so_far = self.platforms.runner.crashes(&stable).await;
        let look = HealthLook {
            release_id: release_id.clone(),
            healthy: health == HealthStatus::Healthy,
            crashes_so_far,
            now_ms: now,
        };
        let notices = {
            let mut watch = self.production.lock().await;
            let state = watch.health.entry(service.to_string()).or_default();
            observe_stable_health(state, &look)
        };
        let mut notifications = Vec::new();
        for notice in notices {
            match notice {
                HealthNotice::Crashed {
                    key,
                    severity,
                    new_crashes,
                    crashes_in_window,
                } => {
                    let message = format!(
                        "the stable release {release_id} crashed ({} in the last 10 minutes); the platform restarts it",
                        plural(crashes_in_window, "crash", "crashes")
                    );
                    tracing::warn!(service = %service, release = %release_id, new_crashes, crashes_in_window, "stable release crashed");
                    self.event(service, None, EventKind::ReleaseCrashed, message.clone())
                        .await;
                    notifications.push(
                        Notification::new(
                            key,
                            severity,
                            service,
                            format!("{service}: stable release {} crashed", stable.version),
                        )
                        .with_body(message)
                        .with_details(serde_json::json!({
                            "release": release_id,
                            "new_crashes": new_crashes,
                            "crashes_in_10_minutes": crashes_in_window,
                        })),
                    );
                }
                HealthNotice::Recovered {
                    key,
                    severity,
                    down_ms,
                } => {
                    let message = format!(
                        "the stable release {release_id} answers its health check again, {} after its crash",
                        format_duration(std::time::Duration::from_millis(down_ms.max(0) as u64))
                    );
                    tracing::info!(service = %service, release = %release_id, "stable release recovered");
                    self.event(service, None, EventKind::ReleaseRecovered, message.clone())
                        .await;
                    let mut notification = Notification::new(
                        key,
                        severity,
                        service,
                        format!("{service}: stable release {} recovered", stable.version),
                    )
                    .with_body(message);
                    notification.resolve = true;
                    notifications.push(notification);
                }
            }
        }
        Ok(notifications)
    }

    /// Evaluates every alarm rule of every service at `now`, stores all their states in one
    /// transaction, then puts the changes on the timeline and returns their notifications. When
    /// the states cannot be stored nothing is announced: the next round sees the same changes.
    async fn evaluate_all_production_alarms(
        &self,
        services: &[String],
        now: i64,
    ) -> Vec<Notification> {
        let stored = match self.store.alarm_states(None).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(error = %error, "cannot read the alarm states");
                return Vec::new();
            }
        };
        let mut round = AlarmRound::default();
        for service in services {
            let first = stored.partition_point(|record| record.service < *service);
            let end = first + stored[first..].partition_point(|record| record.service == *service);
            if let Err(error) = self
                .evaluate_production_alarms(service, now, &stored[first..end], &mut round)
                .await
            {
                tracing::warn!(service = %service, error = %error, "cannot evaluate the alarm rules");
            }
        }
        if let Err(error) = self.store.save_alarm_states(&round.updates).await {
            tracing::warn!(error = %error, "cannot store the alarm states; the next evaluation tries again");
            return Vec::new();
        }
        for (service, message) in round.changes {
            self.event(&service, None, EventKind::AlarmState, message)
                .await;
        }
        round.notifications
    }

    /// Evaluates every alarm rule of `service` at `now` against its `stored` states, adding
    /// the new states, the changes and their notifications to `round`.
    async fn evaluate_production_alarms(
        &self,
        service: &str,
        now: i64,
        stored: &[AlarmStateRecord],
        round: &mut AlarmRound,
    ) -> Result<(), ControlError> {
        let service_config = self.service(service)?;
        let mut series = Vec::new();
        for release_id in self.live_release_ids(service).await? {
            series.extend(self.alarm_series(service, &release_id, now).await?);
        }
        let consecutive_health_failures = self
            .production
            .lock()
            .await
            .health
            .get(service)
            .map_or(0, |health| health.consecutive_failures);
        let on_cloud = service_config.aws.is_some();
        let platform_alarms: Vec<ExternalAlarm> = if on_cloud {
            match self.platforms.alarms.firing_alarms(service).await {
                Ok(alarms) => alarms,
                Err(error) => {
                    tracing::warn!(service = %service, error = %error, "cannot read the platform's alarms");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        for rule in &self.config.policy.alarms {
            let observed = if on_cloud && rule.metric.source() == MetricSource::Platform {
                platform_observation(service, rule, &platform_alarms)
            } else {
                let evaluation = evaluate_alarm(
                    rule,
                    &series,
                    consecutive_health_failures,
                    now.div_euclid(1000),
                );
                Observed {
                    state: evaluation.state,
                    value: evaluation.value,
                    reason: evaluation.reason,
                }
            };
            let previous = stored
                .iter()
                .find(|record| record.rule == rule.name)
                .and_then(status_from_record);
            let step = step_alarm(service, &rule.name, previous.as_ref(), observed, now);
            let transition = step.transition.map(|transition| AlarmTransitionRecord {
                service: service.to_string(),
                rule: rule.name.clone(),
                from_state: transition.from.map(|state| state.to_string()),
                to_state: transition.to.to_string(),
                at: super::time_of(now),
                value: step.status.value,
                reason: step.status.reason.clone(),
            });
            round.updates.push((
                record_from_status(service, &rule.name, &step.status, now),
                transition,
            ));
            if let Some(Transition {
                from: Some(from),
                to,
            }) = step.transition
            {
                tracing::info!(service = %service, rule = %rule.name, from = %from, to = %to, "alarm state changed");
                round.changes.push((
                    service.to_string(),
                    format!(
                        "alarm {} {from} → {to} ({}): {}",
                        rule.name, rule.severity, step.status.reason
                    ),
                ));
            }
            if let Some(notice) = step.notice {
                round.notifications.push(self.alarm_notification(
                    service,
                    rule,
                    &step.status,
                    notice,
                ));
            }
        }
        Ok(())
    }

    /// The releases of `service` that take traffic: the stable one, and a rollout's canary.
    async fn live_release_ids(&self, service: &str) -> Result<Vec<String>, ControlError> {
        let mut ids = vec![self.stable_release(service).await?.release_id()];
        let rollout = self.active.lock().await.get(service).cloned();
        if let Some(rollout) = rollout {
            let canary = rollout.lock().await.state.canary.release_id();
            if !ids.contains(&canary) {
                ids.push(canary);
            }
        }
        Ok(ids)
    }

    /// The notification of an alarm's change, to its routes and its own targets.
    fn alarm_notification(
        &self,
        service: &str,
        rule: &AlarmRule,
        status: &RuleStatus,
        notice: AlarmNotice,
    ) -> Notification {
        let value = status
            .value
            .map(|value| rule.metric.format_value(value))
            .unwrap_or_else(|| "no value".into());
        let details = serde_json::json!({
            "rule": rule.name,
            "condition": rule.describe_condition(),
            "value": value,
            "severity": rule.severity,
        });
        let (key, title, resolve) = match notice {
            AlarmNotice::Firing { key } => (
                key,
                format!("{service}: alarm {} is in ALARM", rule.name),
                false,
            ),
            AlarmNotice::Recovered {
                key,
                alarm_lasted_ms,
            } => (
                key,
                format!(
                    "{service}: alarm {} recovered after {}",
                    rule.name,
                    format_duration(std::time::Duration::from_millis(
                        alarm_lasted_ms.max(0) as u64
                    ))
                ),
                true,
            ),
        };
        let body = if rule.description.is_empty() {
            status.reason.clone()
        } else {
            format!("{}: {}", rule.description, status.reason)
        };
        let mut notification = Notification::new(key, rule.severity, service, title)
            .with_body(body)
            .with_details(details)
            .with_targets(self.alarm_targets(rule));
        notification.resolve = resolve;
        notification
    }

    /// The targets of the routes the rule's severity meets, then the rule's own; `None` when no
    /// targets are configured (nothing is sent anywhere).
    fn alarm_targets(&self, rule: &AlarmRule) -> Option<Vec<String>> {
        if self.config.notification_targets.is_empty() {
            return None;
        }
        let mut targets: Vec<String> =
            routed_targets(&self.config.notification_routes, rule.severity)
                .into_iter()
                .map(str::to_string)
                .collect();
        for own in self
            .config
            .alarm_targets
            .get(&rule.name)
            .into_iter()
            .flatten()
        {
            if !targets.contains(own) {
                targets.push(own.clone());
            }
        }
        Some(targets)
    }

    /// The targets a change of `rule` is notified to, for views.
    pub(super) fn alarm_targets_of(&self, rule: &AlarmRule) -> Vec<String> {
        self.alarm_targets(rule).unwrap_or_default()
    }

    /// Logs, once at start, the rules whose notifications would reach no target although
    /// targets are configured (their `notify` names a kind with no configured target, and no
    /// route takes their severity).
    pub(super) fn warn_about_unrouted_alarms(&self) {
        for rule in &self.config.policy.alarms {
            if self
                .alarm_targets(rule)
                .is_some_and(|targets| targets.is_empty())
            {
                tracing::warn!(rule = %rule.name, severity = %rule.severity, notify = ?rule.notify, "this alarm rule's notifications reach no target: no route takes its severity and its notify names no configured target");
            }
        }
    }
}

/// A rule that only a cloud platform can evaluate: ALARM while the platform's alarm synced from
/// it is in ALARM, else OK.
fn platform_observation(service: &str, rule: &AlarmRule, firing: &[ExternalAlarm]) -> Observed {
    let name = format!("{}{}", owned_prefix(service), rule.name);
    match firing
        .iter()
        .find(|alarm| alarm.name == name && alarm.is_firing())
    {
        Some(alarm) => Observed {
            state: AlarmState::Alarm,
            value: None,
            reason: format!("the platform's alarm {name} is in ALARM: {}", alarm.reason),
        },
        None => Observed {
            state: AlarmState::Ok,
            value: None,
            reason: format!("the platform's alarm {name} is not in ALARM"),
        },
    }
}

fn status_from_record(record: &AlarmStateRecord) -> Option<RuleStatus> {
    let state = match record.state.as_str() {
        "OK" => AlarmState::Ok,
        "ALARM" => AlarmState::Alarm,
        "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
        _ => return None,
    };
    Some(RuleStatus {
        state,
        since_ms: record.since.timestamp_millis(),
        value: record.value,
        reason: record.reason.clone(),
        announced_alarm_since_ms: record.announced_alarm_since_ms,
    })
}

fn record_from_status(
    service: &str,
    rule: &str,
    status: &RuleStatus,
    now: i64,
) -> AlarmStateRecord {
    AlarmStateRecord {
        service: service.to_string(),
        rule: rule.to_string(),
        state: status.state.to_string(),
        since: super::time_of(status.since_ms),
        value: status.value,
        reason: status.reason.clone(),
        announced_alarm_since_ms: status.announced_alarm_since_ms,
        updated_at: super::time_of(now),
    }
}

fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}
