//! `opsd restore` in the daemon: the request checked (one way to name the snapshot, a reason),
//! refused while a rollout of a service on the database runs (unless overridden, audited), a
//! preview for the confirmation, then the releases of the database's services on the local
//! platform stopped, the restore (`ops::restore`), the releases started again and ready, and the
//! whole measured (RTO), audited, put on the timeline and notified.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Actor, ControlError, Daemon};
use crate::config::DatabaseConfig;
use crate::core::event::EventKind;
use crate::core::restore::{RestoreOutcome, RestoreReport, SnapshotChoice};
use crate::notify::{Notification, Severity};
use crate::ops::restore::{
    chosen_snapshot, restore_database, rows_written_since, RestoreError, RestoreJob,
};
use crate::platform::snapshots::RestoreTarget;
use crate::platform::ReleaseSpec;
use crate::store::NewEvent;

/// What `POST /v1/databases/{name}/restore` asks for.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// A snapshot id; or `latest`; or `before` (RFC 3339): exactly one.
    #[serde(default)]
    pub snapshot: Option<String>,
    #[serde(default)]
    pub latest: bool,
    #[serde(default)]
    pub before: Option<String>,
    /// A new target instead of the database itself: a file name beside the database (SQLite,
    /// never a path), a database name (PostgreSQL), an instance identifier (RDS).
    #[serde(default)]
    pub to: Option<String>,
    /// Why (required; audited).
    #[serde(default)]
    pub reason: Option<String>,
    /// Restore even while a rollout of a service on the database runs (audited).
    #[serde(default)]
    pub override_rollout: bool,
    /// Only say what would happen.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a restore would do: the confirmation an operator reads first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestorePreview {
    pub database: String,
    /// `SQLite database …`, `PostgreSQL database …`, `RDS instance …`.
    pub describe: String,
    pub snapshot_id: String,
    pub snapshot_taken_at: String,
    pub snapshot_reason: String,
    /// `the database itself` or the new target.
    pub target: String,
    /// Releases stopped during the restore and started again after it.
    pub releases_stopped: Vec<String>,
    /// Rows written since the snapshot, which the restore loses (when they can be counted).
    pub rows_lost: Option<std::collections::BTreeMap<String, u64>>,
}

impl RestoreRequest {
    fn choice(&self) -> Result<SnapshotChoice, ControlError> {
        let given = [self.snapshot.is_some(), self.latest, self.before.is_some()]
            .iter()
            .filter(|given| **given)
            .count();
        if given != 1 {
            return Err(ControlError::Invalid(
                "name the snapshot one way: --snapshot ID, --latest or --before TIME".into(),
            ));
        }
        if let Some(id) = &self.snapshot {
            let id = id.trim();
            if id.is_empty() || id.len() > 200 {
                return Err(ControlError::Invalid(
                    "--snapshot needs a snapshot id (`opsd drill list` shows them)".into(),
                ));
            }
            return Ok(SnapshotChoice::Id(id.to_string()));
        }
        if let Some(before) = &self.before {
            let at = chrono::DateTime::parse_from_rfc3339(before.trim()).map_err(|_| {
                ControlError::Invalid(format!(
                    "--before {before:?} is not a time like 2026-12-04T14:00:00Z"
                ))
            })?;
            return Ok(SnapshotChoice::Before(at.timestamp_millis()));
        }
        Ok(SnapshotChoice::Latest)
    }

    fn target(&self) -> Result<RestoreTarget, ControlError> {
        match self.to.as_deref().map(str::trim) {
            None => Ok(RestoreTarget::InPlace),
            Some("") => Err(ControlError::Invalid("--to needs a target".into())),
            Some(to) if to.len() > 1024 || to.chars().any(char::is_control) => Err(
                ControlError::Invalid("--to names a path, database or instance".into()),
            ),
            Some(to) => Ok(RestoreTarget::New(to.to_string())),
        }
    }
}

fn restore_failed(error: RestoreError) -> ControlError {
    match error {
        RestoreError::Choice(message) => ControlError::NotFound(message),
        RestoreError::DigestChanged(_) => ControlError::Conflict(error.to_string()),
        RestoreError::Drill(crate::ops::drill::DrillError::Store(inner)) => {
            ControlError::Store(inner)
        }
        RestoreError::Drill(crate::ops::drill::DrillError::Platform(inner)) => {
            ControlError::Platform(inner)
        }
        RestoreError::Drill(inner) => ControlError::Conflict(inner.to_string()),
        RestoreError::Store(inner) => ControlError::Store(inner),
        other => ControlError::Platform(crate::platform::PlatformError::Operation {
            operation: "the restore".into(),
            message: other.to_string(),
        }),
    }
}

impl Daemon {
    /// Restores a database from a snapshot, or previews it (`dry_run`). Returns the preview or
    /// the report as JSON (`{"preview": ...}` or `{"restore": ...}`).
    pub async fn restore(
        &self,
        database_name: &str,
        request: RestoreRequest,
        actor: &Actor,
    ) -> Result<serde_json::Value, ControlError> {
        let database = self.config.databases.get(database_name).ok_or_else(|| {
            ControlError::NotFound(format!(
                "unknown database {database_name:?}; the configured databases are: {}",
                self.config
                    .databases
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let choice = request.choice()?;
        let target = request.target()?;
        let reason = request
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|reason| !reason.is_empty())
            .map(str::to_string);
        if reason.is_none() && !request.dry_run {
            return Err(ControlError::Invalid(
                "a restore needs --reason: it is kept in the audit log".into(),
            ));
        }
        let services = self.services_on(database_name);
        self.refuse_during_rollouts(&services, request.override_rollout)
            .await?;
        let record = chosen_snapshot(&self.store, database_name, &choice)
            .await
            .map_err(restore_failed)?;
        let platform = self.databases.snapshots(database).await?;
        let releases = if target == RestoreTarget::InPlace {
            self.releases_of(&services).await
        } else {
            Vec::new()
        };
        if request.dry_run {
            let preview = RestorePreview {
                database: database_name.to_string(),
                describe: platform.describe(),
                snapshot_id: record.id.clone(),
                snapshot_taken_at: record.taken_at.to_rfc3339(),
                snapshot_reason: record.reason.clone(),
                target: match &target {
                    RestoreTarget::InPlace => "the database itself".into(),
                    RestoreTarget::New(name) => name.clone(),
                },
                releases_stopped: releases.iter().map(ReleaseSpec::release_id).collect(),
                rows_lost: rows_written_since(platform.as_ref(), &record).await,
            };
            return Ok(serde_json::json!({ "preview": preview }));
        }
        let restore_id = uuid::Uuid::new_v4().simple().to_string();
        let started = Instant::now();
        for release in &releases {
            tracing::info!(release = %release.release_id(), "stopping for the restore");
            self.platforms.runner.stop(release).await?;
        }
        let progress = |step: &str| tracing::info!(database = %database_name, "restore: {step}");
        let job = RestoreJob {
            record: &record,
            target: &target,
            restore_id: &restore_id,
        };
        let outcome = restore_database(
            &self.config,
            &self.store,
            database,
            platform.as_ref(),
            &job,
            &progress,
        )
        .await;
        let mut restart_problems = Vec::new();
        for release in &releases {
            if let Err(error) = self.platforms.runner.ensure_running(release).await {
                restart_problems.push(format!(
                    "{} did not start again: {error}",
                    release.release_id()
                ));
            }
        }
        let rto_ms = started.elapsed().as_millis() as u64;
        let mut report = match outcome {
            Ok(report) => report,
            Err(error) => {
                let message = format!("restore of {database_name} failed: {error}");
                self.audit(
                    actor,
                    "restore",
                    database_name,
                    reason,
                    serde_json::json!({"snapshot": record.id, "error": message}),
                )
                .await;
                return Err(restore_failed(error));
            }
        };
        report.rto_ms = rto_ms;
        report.releases_restarted = releases.iter().map(ReleaseSpec::release_id).collect();
        report.next_steps.extend(restart_problems);
        self.record_restore(
            database,
            &services,
            &report,
            reason,
            actor,
            request.override_rollout,
        )
        .await;
        Ok(serde_json::json!({ "restore": report }))
    }

    /// The services whose `database` is `database`.
    fn services_on(&self, database: &str) -> Vec<String> {
        self.config
            .services
            .values()
            .filter(|service| service.database.as_deref() == Some(database))
            .map(|service| service.name.clone())
            .collect()
    }

    async fn refuse_during_rollouts(
        &self,
        services: &[String],
        overridden: bool,
    ) -> Result<(), ControlError> {
        if overridden {
            return Ok(());
        }
        for service in services {
            let entry = self.active.lock().await.get(service).cloned();
            let Some(entry) = entry else { continue };
            let rollout = entry.lock().await;
            if !rollout.state.phase.is_terminal() {
                return Err(ControlError::Conflict(format!(
                    "a rollout of {service} ({} → {}, id {}) is in progress on this database; \
                     wait for it, abort it (`opsd abort {service}`), or restore anyway with \
                     --override-rollout (audited)",
                    rollout.state.stable.version, rollout.state.canary.version, rollout.state.id
                )));
            }
        }
        Ok(())
    }

    /// The running releases of `services` on the local platform (Lambda versions do not hold
    /// connections between requests that a restore must wait for).
    async fn releases_of(&self, services: &[String]) -> Vec<ReleaseSpec> {
        let local: Vec<&String> = services
            .iter()
            .filter(|service| {
                self.config
                    .services
                    .get(*service)
                    .is_some_and(|config| config.aws.is_none())
            })
            .collect();
        self.platforms
            .runner
            .running()
            .await
            .into_iter()
            .filter(|release| local.contains(&&release.service))
            .collect()
    }

    async fn record_restore(
        &self,
        database: &DatabaseConfig,
        services: &[String],
        report: &RestoreReport,
        reason: Option<String>,
        actor: &Actor,
        overridden: bool,
    ) {
        let detail = serde_json::to_value(report).unwrap_or_default();
        self.audit(
            actor,
            if overridden {
                "restore_during_rollout"
            } else {
                "restore"
            },
            &database.name,
            reason,
            detail.clone(),
        )
        .await;
        let lost = match report.total_rows_lost() {
            Some(rows) => format!("{rows} rows written after it lost"),
            None => "rows lost not counted (the platform cannot read the tables)".into(),
        };
        let message = format!(
            "database {} restored from snapshot {} (taken {}) into {}: {}; {lost}; RTO {} ms; \
             the state before it is safety snapshot {}",
            database.name,
            report.snapshot_id,
            report.snapshot_taken_at,
            report.location,
            match report.outcome {
                RestoreOutcome::Restored => "verified",
                RestoreOutcome::RestoredUnverified => "VERIFICATION FAILED",
            },
            report.rto_ms,
            report.safety_snapshot_id
        );
        let on = if services.is_empty() {
            vec![database.name.clone()]
        } else {
            services.to_vec()
        };
        for service in &on {
            let event = NewEvent {
                at: self.now(),
                service: service.clone(),
                rollout_id: None,
                kind: EventKind::Restore.as_str().to_string(),
                message: message.clone(),
                data: detail.clone(),
            };
            if let Err(error) = self.store.append_event(&event).await {
                tracing::error!(error = %error, "could not store the restore's event");
            }
        }
        let severity = match report.outcome {
            RestoreOutcome::Restored => Severity::Warning,
            RestoreOutcome::RestoredUnverified => Severity::Critical,
        };
        self.notifier.send(
            Notification::new(
                format!("restore/{}", report.id),
                severity,
                on[0].clone(),
                format!("database {} restored by {}", database.name, actor.name),
            )
            .with_body(message),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_names_its_snapshot_one_way_and_its_target_plainly() {
        let request = |snapshot: Option<&str>, latest: bool, before: Option<&str>| RestoreRequest {
            snapshot: snapshot.map(str::to_string),
            latest,
            before: before.map(str::to_string),
            ..RestoreRequest::default()
        };
        assert_eq!(
            request(None, true, None).choice().unwrap(),
            SnapshotChoice::Latest
        );
        assert_eq!(
            request(Some("opsd-steno-1"), false, None).choice().unwrap(),
            SnapshotChoice::Id("opsd-steno-1".into())
        );
        assert_eq!(
            request(None, false, Some("2026-12-04T14:00:00Z"))
                .choice()
                .unwrap(),
            SnapshotChoice::Before(1_796_392_800_000)
        );
        for ambiguous in [
            request(None, false, None),
            request(Some("a"), true, None),
            request(None, true, Some("2026-12-04T14:00:00Z")),
        ] {
            let error = ambiguous.choice().unwrap_err().to_string();
            assert!(error.contains("one way"), "{error}");
        }
        let error = request(None, false, Some("yesterday"))
            .choice()
            .unwrap_err()
            .to_string();
        assert!(error.contains("2026-12-04T14:00:00Z"), "{error}");

        let target = |to: Option<&str>| RestoreRequest {
            to: to.map(str::to_string),
            ..RestoreRequest::default()
        };
        assert_eq!(target(None).target().unwrap(), RestoreTarget::InPlace);
        assert_eq!(
            target(Some(" steno_restored ")).target().unwrap(),
            RestoreTarget::New("steno_restored".into())
        );
        assert!(target(Some("")).target().is_err());
        assert!(target(Some("a\nb")).target().is_err());
    }
}
