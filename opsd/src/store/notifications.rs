//! Which notifications were already delivered, so that a restarted opsd does not send them again.

use chrono::Utc;
use sqlx::Row;

use super::{time_text, Store, StoreError};

impl Store {
    /// Marks `key` as delivered. Returns `true` if it was not marked before.
    pub async fn mark_notified(&self, key: &str) -> Result<bool, StoreError> {
        let result =
            sqlx::query("INSERT OR IGNORE INTO notifications_sent (key, sent_at) VALUES (?, ?)")
                .bind(key)
                .bind(time_text(Utc::now()))
                .execute(self.pool())
                .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Whether `key` was marked as delivered.
    pub async fn was_notified(&self, key: &str) -> Result<bool, StoreError> {
        let row =
            sqlx::query("SELECT EXISTS (SELECT 1 FROM notifications_sent WHERE key = ?) AS sent")
                .bind(key)
                .fetch_one(self.pool())
                .await?;
        Ok(row.try_get::<bool, _>("sent")?)
    }
}
