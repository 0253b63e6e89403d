//! Maintenance windows operators start or plan (`opsd maintenance start`), and their end
//! (`opsd maintenance stop`). Windows that ended more than a day ago are not read back.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{parse_time, time_text, Store, StoreError};
use crate::core::maintenance::MaintenanceWindow;

impl Store {
    /// Records an operator's window (`actor` is the operator's name).
    pub async fn insert_maintenance(
        &self,
        window: &MaintenanceWindow,
        actor: &str,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO maintenance_windows \
             (message, starts_at, ends_at, actor, allows_deploys, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&window.message)
        .bind(time_text(window.starts_at))
        .bind(window.ends_at.map(time_text))
        .bind(actor)
        .bind(i64::from(window.allows_deploys))
        .bind(time_text(Utc::now()))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Operator windows in force at `now` or still to come.
    pub async fn operator_maintenance(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let rows = sqlx::query(
            "SELECT message, starts_at, ends_at, actor, allows_deploys FROM maintenance_windows \
             WHERE ends_at IS NULL OR ends_at > $1 ORDER BY starts_at, id",
        )
        .bind(time_text(now))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(window_from_row).collect()
    }

    /// Ends every operator window in force at `now`; returns how many.
    pub async fn stop_maintenance(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now = time_text(now);
        let mut transaction = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE maintenance_windows SET ends_at = $1 \
             WHERE starts_at <= $2 AND (ends_at IS NULL OR ends_at > $3)",
        )
        .bind(&now)
        .bind(&now)
        .bind(&now)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(done.rows_affected())
    }
}

fn window_from_row(row: &AnyRow) -> Result<MaintenanceWindow, StoreError> {
    let ends_at: Option<String> = row.try_get("ends_at")?;
    let actor: String = row.try_get("actor")?;
    Ok(MaintenanceWindow {
        allows_deploys: row.try_get::<i64, _>("allows_deploys")? != 0,
        message: row.try_get("message")?,
        starts_at: parse_time(
            &row.try_get::<String, _>("starts_at")?,
            "maintenance_windows.starts_at",
        )?,
        ends_at: ends_at
            .map(|text| parse_time(&text, "maintenance_windows.ends_at"))
            .transpose()?,
        source: format!("operator {actor}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[tokio::test]
    async fn windows_are_kept_until_stopped_or_over() {
        let store = crate::store::tests::test_store().await;
        let now = MaintenanceWindow {
            message: "now".into(),
            starts_at: at("2026-12-03T10:00:00Z"),
            ends_at: None,
            source: String::new(),
            allows_deploys: true,
        };
        store.insert_maintenance(&now, "alice").await.unwrap();
        let later = MaintenanceWindow {
            message: "later".into(),
            starts_at: at("2026-12-10T02:00:00Z"),
            ends_at: Some(at("2026-12-10T03:00:00Z")),
            allows_deploys: false,
            ..now
        };
        store.insert_maintenance(&later, "bob").await.unwrap();
        let noon = at("2026-12-03T12:00:00Z");
        let windows = store.operator_maintenance(noon).await.unwrap();
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].source, "operator alice");
        assert!(windows[0].allows_deploys && !windows[1].allows_deploys);
        assert_eq!(store.stop_maintenance(noon).await.unwrap(), 1);
        let left = store.operator_maintenance(noon).await.unwrap();
        assert_eq!(left.len(), 1, "the planned window is not stopped");
        assert_eq!(left[0].message, "later");
        assert_eq!(store.stop_maintenance(noon).await.unwrap(), 0);
        assert!(store
            .operator_maintenance(at("2026-12-10T03:00:00Z"))
            .await
            .unwrap()
            .is_empty());
    }
}
