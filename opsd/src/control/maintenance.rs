//! Maintenance (R-WINDOW-5): `opsd maintenance start --message [--at] [--duration]` and `stop`,
//! audited and on every service's timeline, plus the public status document Steno's banner
//! reads (`GET /status.json`): the window in force and the next one announced, from the
//! operators' windows and the schedules in opsd.yaml.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Actor, ControlError, Daemon};
use crate::config::check_maintenance_message;
use crate::core::duration::parse_duration;
use crate::core::event::EventKind;
use crate::core::maintenance::{maintenance_at, MaintenanceStatus, MaintenanceWindow};
use crate::store::ALL_SERVICES;

/// How far ahead an operator may plan a window.
const MAX_LEAD: Duration = Duration::from_secs(365 * 24 * 3600);
/// The longest window an operator may give a duration for (open-ended ones end with `stop`).
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The body of `POST /v1/maintenance`: the banner text, when (RFC 3339; now when missing) and
/// for how long (until `stop` when missing).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    pub message: String,
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub duration: Option<String>,
    /// Keep deploys to the deploy windows during it (by default a maintenance window is also a
    /// deploy window).
    #[serde(default)]
    pub no_deploys: bool,
}

/// The public status document: what Steno's banner shows (`maintenance.active`,
/// `maintenance.message`) and the window announced next.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusDocument {
    pub maintenance: MaintenanceState,
    pub upcoming: Option<MaintenanceWindow>,
    pub generated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MaintenanceState {
    pub active: bool,
    pub message: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl Daemon {
    /// The maintenance in force now and the next one announced.
    pub async fn maintenance_status(&self) -> Result<MaintenanceStatus, ControlError> {
        let now = self.now();
        let operator_windows = self.store.operator_maintenance(now).await?;
        Ok(maintenance_at(
            now,
            &self.config.maintenance,
            &operator_windows,
        ))
    }

    /// The status document served to the public (no names, no reasons, only the banner).
    pub async fn status_document(&self) -> Result<StatusDocument, ControlError> {
        let status = self.maintenance_status().await?;
        let public = |window: MaintenanceWindow| MaintenanceWindow {
            source: String::new(),
            ..window
        };
        let active = status.active.map(public);
        Ok(StatusDocument {
            maintenance: MaintenanceState {
                active: active.is_some(),
                message: active.as_ref().map(|window| window.message.clone()),
                starts_at: active.as_ref().map(|window| window.starts_at),
                ends_at: active.as_ref().and_then(|window| window.ends_at),
            },
            upcoming: status.upcoming.map(public),
            generated_at: self.now(),
        })
    }

    /// Starts (or plans) an operator's maintenance window.
    pub async fn start_maintenance(
        &self,
        request: MaintenanceRequest,
        actor: &Actor,
    ) -> Result<MaintenanceWindow, ControlError> {
        let invalid =
            |field: &str, message: String| ControlError::Invalid(format!("{field}: {message}"));
        let message = check_maintenance_message(&request.message)
            .map_err(|error| invalid("message", error))?;
        let now = self.now();
        let starts_at = match request.at.as_deref().map(str::trim) {
            None | Some("") | Some("now") => now,
            Some(text) => DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    invalid(
                        "at",
                        format!(
                            "{:?} is not a time; use RFC 3339 like 2026-12-06T02:00:00Z",
                            text.chars().take(40).collect::<String>()
                        ),
                    )
                })?
                .with_timezone(&Utc),
        };
        let lead = starts_at - now;
        if lead > chrono::Duration::from_std(MAX_LEAD).unwrap_or_default() {
            return Err(invalid("at", "at most a year ahead".into()));
        }
        if lead < chrono::Duration::minutes(-1) {
            return Err(invalid(
                "at",
                "that time has passed; leave --at out to start now".into(),
            ));
        }
        let starts_at = starts_at.max(now);
        let ends_at = match request.duration.as_deref() {
            None => None,
            Some(text) => {
                let duration = parse_duration(text).map_err(|error| invalid("duration", error))?;
                if duration.is_zero() || duration > MAX_DURATION {
                    return Err(invalid(
                        "duration",
                        "more than 0 and at most 7d; leave it out for a window that lasts until `opsd maintenance stop`".into(),
                    ));
                }
                Some(starts_at + chrono::Duration::from_std(duration).unwrap_or_default())
            }
        };
        let window = MaintenanceWindow {
            message: message.clone(),
            starts_at,
            ends_at,
            source: format!("operator {}", actor.name),
            allows_deploys: !request.no_deploys,
        };
        self.store.insert_maintenance(&window, &actor.name).await?;
        self.audit(
            actor,
            "maintenance_start",
            ALL_SERVICES,
            Some(message.clone()),
            serde_json::json!({
                "starts_at": starts_at,
                "ends_at": ends_at,
                "allows_deploys": window.allows_deploys,
            }),
        )
        .await;
        let until = ends_at.map_or("until stopped".to_string(), |end| {
            format!("until {}", end.to_rfc3339())
        });
        let when = if starts_at <= now {
            "started".to_string()
        } else {
            format!("planned from {}", starts_at.to_rfc3339())
        };
        self.on_covered_timelines(
            ALL_SERVICES,
            EventKind::Maintenance,
            &format!("maintenance {when} {until} by {}: {message}", actor.name),
        )
        .await;
        Ok(window)
    }

    /// Ends every operator window in force; scheduled windows are changed in opsd.yaml.
    pub async fn stop_maintenance(
        &self,
        reason: Option<String>,
        actor: &Actor,
    ) -> Result<u64, ControlError> {
        let stopped = self.store.stop_maintenance(self.now()).await?;
        if stopped == 0 {
            let scheduled = self
                .maintenance_status()
                .await?
                .active
                .map(|window| format!(" ({} is in force; change it in opsd.yaml)", window.source))
                .unwrap_or_default();
            return Err(ControlError::NotFound(format!(
                "no maintenance started with `opsd maintenance start` is in force{scheduled}"
            )));
        }
        self.audit(
            actor,
            "maintenance_stop",
            ALL_SERVICES,
            reason,
            serde_json::json!({"stopped": stopped}),
        )
        .await;
        self.on_covered_timelines(
            ALL_SERVICES,
            EventKind::Maintenance,
            &format!("maintenance stopped by {}", actor.name),
        )
        .await;
        Ok(stopped)
    }
}
