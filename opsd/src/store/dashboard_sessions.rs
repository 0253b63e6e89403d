//! Dashboard sessions as the store keeps them, so a browser's session outlives the opsd that
//! started it: a restart, or a takeover by another instance sharing a PostgreSQL store, which
//! loads them when it starts to lead. A row holds the SHA-256 of the session id (the id itself
//! is only in the browser's cookie), the hash of the token it stands for, and its expiry.
//!
//! invariant: the table is bounded like the daemon's own: saving a session drops the expired
//! ones, and at the bound the one closest to expiry (then the smallest key) makes room.

use sqlx::Row;

use super::{Store, StoreError};

/// A session as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The SHA-256 of the session id.
    pub key: String,
    /// The SHA-256 of the token the session stands for.
    pub token_hash: String,
    pub expires_at_ms: i64,
}

impl Store {
    /// Keeps a new session, dropping expired ones and, when `max` are kept, the one closest to
    /// expiry; returns whether a live session made room.
    pub async fn save_dashboard_session(
        &self,
        session: &StoredSession,
        now_ms: i64,
        max: usize,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at_ms <= $1")
            .bind(now_ms)
            .execute(&mut *transaction)
            .await?;
        let kept: i64 = sqlx::query("SELECT COUNT(*) AS kept FROM dashboard_sessions")
            .fetch_one(&mut *transaction)
            .await?
            .try_get("kept")?;
        let full = usize::try_from(kept).unwrap_or(usize::MAX) >= max;
        if full {
            sqlx::query(
                "DELETE FROM dashboard_sessions WHERE key = (SELECT key FROM dashboard_sessions \
                 ORDER BY expires_at_ms, key LIMIT 1)",
            )
            .execute(&mut *transaction)
            .await?;
        }
        sqlx::query(
            "INSERT INTO dashboard_sessions (key, token_hash, expires_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(&session.key)
        .bind(&session.token_hash)
        .bind(session.expires_at_ms)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(full)
    }

    /// Ends the session kept under `key`; whether it was kept.
    pub async fn end_dashboard_session(&self, key: &str) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let ended = sqlx::query("DELETE FROM dashboard_sessions WHERE key = $1")
            .bind(key)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        transaction.commit().await?;
        Ok(ended > 0)
    }

    /// The sessions live at `now_ms`, the longest-lived first.
    pub async fn live_dashboard_sessions(
        &self,
        now_ms: i64,
    ) -> Result<Vec<StoredSession>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, token_hash, expires_at_ms FROM dashboard_sessions \
             WHERE expires_at_ms > $1 ORDER BY expires_at_ms DESC, key",
        )
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredSession {
                    key: row.try_get("key")?,
                    token_hash: row.try_get("token_hash")?,
                    expires_at_ms: row.try_get("expires_at_ms")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(key: &str, expires_at_ms: i64) -> StoredSession {
        StoredSession {
            key: key.to_string(),
            token_hash: format!("token-of-{key}"),
            expires_at_ms,
        }
    }

    #[tokio::test]
    async fn sessions_are_kept_until_they_end_or_expire() {
        let store = crate::store::tests::test_store().await;
        assert!(!store
            .save_dashboard_session(&session("a", 100), 0, 10)
            .await
            .unwrap());
        assert!(!store
            .save_dashboard_session(&session("b", 200), 0, 10)
            .await
            .unwrap());
        assert_eq!(
            store.live_dashboard_sessions(50).await.unwrap(),
            vec![session("b", 200), session("a", 100)]
        );
        assert_eq!(
            store.live_dashboard_sessions(100).await.unwrap(),
            vec![session("b", 200)],
            "expired at its expiry"
        );
        assert!(store.end_dashboard_session("b").await.unwrap());
        assert!(!store.end_dashboard_session("b").await.unwrap());
        assert_eq!(
            store.live_dashboard_sessions(0).await.unwrap(),
            vec![session("a", 100)]
        );
        // Saving at 150 drops the expired `a` without counting it against the bound.
        assert!(!store
            .save_dashboard_session(&session("c", 300), 150, 1)
            .await
            .unwrap());
        assert_eq!(
            store.live_dashboard_sessions(0).await.unwrap(),
            vec![session("c", 300)]
        );
    }

    #[tokio::test]
    async fn at_the_bound_the_session_closest_to_expiry_makes_room() {
        let store = crate::store::tests::test_store().await;
        for (key, expiry) in [("x", 500), ("y", 400), ("z", 600)] {
            store
                .save_dashboard_session(&session(key, expiry), 0, 3)
                .await
                .unwrap();
        }
        assert!(store
            .save_dashboard_session(&session("w", 700), 0, 3)
            .await
            .unwrap());
        let keys: Vec<String> = store
            .live_dashboard_sessions(0)
            .await
            .unwrap()
            .into_iter()
            .map(|kept| kept.key)
            .collect();
        assert_eq!(keys, vec!["w", "z", "x"]);
    }
}
