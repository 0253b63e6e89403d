//! Stop-the-line freezes (`opsd freeze`): one row per scope, a service's name or `*` for every
//! service, with why, who and since when. Setting a freeze again replaces its reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{parse_time, time_text, Store, StoreError};

/// The scope of a freeze of every service.
pub const ALL_SERVICES: &str = "*";

/// A freeze in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeRecord {
    /// A service's name, or [`ALL_SERVICES`].
    pub scope: String,
    pub reason: String,
    pub actor: String,
    pub since: DateTime<Utc>,
}

impl Store {
    /// Freezes `scope` (or replaces the reason of its freeze).
    pub async fn set_freeze(&self, freeze: &FreezeRecord) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO freezes (scope, reason, actor, since) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope) DO UPDATE SET reason = excluded.reason, actor = excluded.actor",
        )
        .bind(&freeze.scope)
        .bind(&freeze.reason)
        .bind(&freeze.actor)
        .bind(time_text(freeze.since))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Lifts the freeze of `scope`; returns the freeze that was lifted.
    pub async fn clear_freeze(&self, scope: &str) -> Result<Option<FreezeRecord>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(
            "DELETE FROM freezes WHERE scope = $1 RETURNING scope, reason, actor, since",
        )
        .bind(scope)
        .fetch_optional(&mut *transaction)
        .await?;
        transaction.commit().await?;
        row.as_ref().map(freeze_from_row).transpose()
    }

    /// Every freeze in force, the freeze of every service first.
    pub async fn freezes(&self) -> Result<Vec<FreezeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT scope, reason, actor, since FROM freezes \
             ORDER BY scope = '*' DESC, scope",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(freeze_from_row).collect()
    }

    /// The freeze that covers `service`: its own, else the freeze of every service.
    pub async fn freeze_covering(&self, service: &str) -> Result<Option<FreezeRecord>, StoreError> {
        let freezes = self.freezes().await?;
        let own = freezes.iter().find(|freeze| freeze.scope == service);
        let all = freezes.iter().find(|freeze| freeze.scope == ALL_SERVICES);
        Ok(own.or(all).cloned())
    }
}

fn freeze_from_row(row: &AnyRow) -> Result<FreezeRecord, StoreError> {
    Ok(FreezeRecord {
        scope: row.try_get("scope")?,
        reason: row.try_get("reason")?,
        actor: row.try_get("actor")?,
        since: parse_time(&row.try_get::<String, _>("since")?, "freezes.since")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn freeze(scope: &str, reason: &str) -> FreezeRecord {
        FreezeRecord {
            scope: scope.into(),
            reason: reason.into(),
            actor: "alice".into(),
            since: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_service_is_covered_by_its_own_freeze_or_the_freeze_of_all() {
        let store = crate::store::tests::test_store().await;
        assert_eq!(store.freeze_covering("steno").await.unwrap(), None);
        store.set_freeze(&freeze("*", "incident 42")).await.unwrap();
        let covering = store.freeze_covering("steno").await.unwrap().unwrap();
        assert_eq!(covering.scope, "*");
        store
            .set_freeze(&freeze("steno", "migration"))
            .await
            .unwrap();
        let covering = store.freeze_covering("steno").await.unwrap().unwrap();
        assert_eq!(covering.reason, "migration");
        store
            .set_freeze(&freeze("steno", "migration, day 2"))
            .await
            .unwrap();
        assert_eq!(store.freezes().await.unwrap().len(), 2);
        let lifted = store.clear_freeze("*").await.unwrap().unwrap();
        assert_eq!(lifted.reason, "incident 42");
        assert_eq!(store.clear_freeze("*").await.unwrap(), None);
        let left = store.freezes().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].reason, "migration, day 2");
    }
}
