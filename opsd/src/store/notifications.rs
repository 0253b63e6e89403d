//! Which notifications were already delivered, so that a restarted opsd does not send them again.

use chrono::Utc;
use sqlx::Row;

use super::{time_text, Store, StoreError};

impl Store {
    /// Marks `key` as delivered. Returns `true` if it was not marked before.
    pub async fn mark_notified(&self, key: &str) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let result = sqlx::query(
            "INSERT INTO notifications_sent (key, sent_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(time_text(Utc::now()))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(result.rows_affected() == 1)
    }

    /// Whether `key` was marked as delivered.
    pub async fn was_notified(&self, key: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS sent FROM notifications_sent WHERE key = $1")
            .bind(key)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<i64, _>("sent")? > 0)
    }
}
