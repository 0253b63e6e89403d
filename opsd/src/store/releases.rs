//! Each service's last known stable release, and the history of promotions that `opsd rollback`
//! searches for the release before the current one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{parse_json, parse_time, time_text, Store, StoreError};

/// A service's current stable release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StableRelease {
    pub service: String,
    pub version: String,
    /// The release as the caller described it (the store does not interpret it).
    pub release: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

/// One promotion to stable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub service: String,
    pub version: String,
    pub release: serde_json::Value,
    pub promoted_at: DateTime<Utc>,
}

impl Store {
    /// Makes `version` the service's stable release and appends it to the service's history.
    /// Setting the release that is already stable changes nothing (so a resumed rollout may
    /// repeat it) and returns `false`; otherwise returns `true`.
    pub async fn set_stable_release(
        &self,
        service: &str,
        version: &str,
        release: &serde_json::Value,
        promoted_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let current = sqlx::query(
            "SELECT service, version, release_json, updated_at FROM stable_releases \
             WHERE service = $1",
        )
        .bind(service)
        .fetch_optional(&mut *transaction)
        .await?
        .as_ref()
        .map(stable_from_row)
        .transpose()?;
        if current
            .as_ref()
            .is_some_and(|current| current.version == version && &current.release == release)
        {
            return Ok(false);
        }
        let release_json = release.to_string();
        let at = time_text(promoted_at);
        sqlx::query(
            "INSERT INTO stable_releases (service, version, release_json, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (service) DO UPDATE SET \
             version = excluded.version, release_json = excluded.release_json, \
             updated_at = excluded.updated_at",
        )
        .bind(service)
        .bind(version)
        .bind(&release_json)
        .bind(&at)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO releases (service, version, release_json, promoted_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(service)
        .bind(version)
        .bind(&release_json)
        .bind(&at)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        tracing::info!(
            service,
            version,
            previous_version = current.as_ref().map(|c| c.version.as_str()),
            "stable release recorded"
        );
        Ok(true)
    }

    /// The service's current stable release, if one was ever recorded.
    pub async fn stable_release(&self, service: &str) -> Result<Option<StableRelease>, StoreError> {
        let row = sqlx::query(
            "SELECT service, version, release_json, updated_at FROM stable_releases \
             WHERE service = $1",
        )
        .bind(service)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(stable_from_row).transpose()
    }

    /// Every promotion of the service to stable, newest first (the first is the current one).
    pub async fn release_history(&self, service: &str) -> Result<Vec<ReleaseRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT service, version, release_json, promoted_at FROM releases \
             WHERE service = $1 ORDER BY id DESC",
        )
        .bind(service)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(release_from_row).collect()
    }
}

fn stable_from_row(row: &AnyRow) -> Result<StableRelease, StoreError> {
    Ok(StableRelease {
        service: row.try_get("service")?,
        version: row.try_get("version")?,
        release: parse_json(
            &row.try_get::<String, _>("release_json")?,
            "stable_releases.release_json",
        )?,
        updated_at: parse_time(
            &row.try_get::<String, _>("updated_at")?,
            "stable_releases.updated_at",
        )?,
    })
}

fn release_from_row(row: &AnyRow) -> Result<ReleaseRecord, StoreError> {
    Ok(ReleaseRecord {
        service: row.try_get("service")?,
        version: row.try_get("version")?,
        release: parse_json(
            &row.try_get::<String, _>("release_json")?,
            "releases.release_json",
        )?,
        promoted_at: parse_time(
            &row.try_get::<String, _>("promoted_at")?,
            "releases.promoted_at",
        )?,
    })
}
