//! The leader lease of the opsd instances sharing a store: one row naming the instance that
//! acts (reconciles, runs scheduled drills and cost checks, notifies), its API address, its
//! epoch and until when, by the database's clock. An instance claims the lease when it is vacant
//! or lapsed, with the next epoch, and the leader renews it; a store made [`Store::fenced`] by a
//! leader writes only while the lease is still its own at that epoch and unexpired, checked in
//! the write's own transaction, so a leader that was paused past its lease cannot write after
//! it wakes.
//!
//! invariant: lease times are the database's clock, never an instance's: two hosts' clocks are
//! never compared.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::{AnyConnection, Row};

use super::{parse_time, time_text, Backend, Store, StoreError};

/// Who holds the lease, as a lease claim or `opsd status` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The instance: its host and data directory, which stay the same across its restarts.
    pub instance: String,
    /// Where its API listens, so followers can hand requests to it.
    pub api: String,
    pub epoch: i64,
    /// When this epoch began.
    pub since: DateTime<Utc>,
    /// How long the lease still runs, by the database's clock; negative when it lapsed.
    pub expires_in_ms: i64,
}

/// What a claim of the lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseClaim {
    /// The claiming instance leads (it took the lease, or renewed it at its epoch).
    Leading(LeaseHolder),
    /// Another instance leads, and its lease runs.
    Following(LeaseHolder),
}

/// The leader a store's writes are fenced with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fence {
    instance: String,
    epoch: i64,
}

/// The database's clock in milliseconds since the Unix epoch.
fn database_now_ms(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS now_ms",
        Backend::Postgres => {
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) AS now_ms"
        }
    }
}

async fn now_ms(connection: &mut AnyConnection, backend: Backend) -> Result<i64, StoreError> {
    let row = sqlx::query(database_now_ms(backend))
        .fetch_one(&mut *connection)
        .await?;
    Ok(row.try_get("now_ms")?)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn time_of_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Store {
    /// Claims the lease for `instance` (whose API is at `api`) for `lease` from now: renews it
    /// when `instance` holds it at `known_epoch`; takes it with the next epoch when it is
    /// vacant, lapsed, or held by an earlier run of `instance` itself (one opsd per host and
    /// data directory, so that run is gone); otherwise answers who leads.
    pub async fn claim_lease(
        &self,
        instance: &str,
        api: &str,
        known_epoch: Option<i64>,
        lease: Duration,
    ) -> Result<LeaseClaim, StoreError> {
        let mut transaction = self.begin_unfenced_write().await?;
        let now = now_ms(&mut transaction, self.backend).await?;
        let expires = now.saturating_add(millis(lease));
        let current = read_lease(&mut transaction, now).await?;
        let claim = match current {
            Some(holder)
                if holder.instance == instance
                    && Some(holder.epoch) == known_epoch
                    && holder.expires_in_ms > 0 =>
            {
                sqlx::query("UPDATE leader_lease SET api = $1, expires_at_ms = $2 WHERE id = 1")
                    .bind(api)
                    .bind(expires)
                    .execute(&mut *transaction)
                    .await?;
                LeaseClaim::Leading(LeaseHolder {
                    api: api.to_string(),
                    expires_in_ms: expires - now,
                    ..holder
                })
            }
            Some(holder) if holder.instance != instance && holder.expires_in_ms > 0 => {
                LeaseClaim::Following(holder)
            }
            current => {
                let epoch = current.map_or(1, |holder| holder.epoch + 1);
                sqlx::query(
                    "INSERT INTO leader_lease (id, holder, api, epoch, since, expires_at_ms) \
                     VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET \
                     holder = excluded.holder, api = excluded.api, epoch = excluded.epoch, \
                     since = excluded.since, expires_at_ms = excluded.expires_at_ms",
                )
                .bind(instance)
                .bind(api)
                .bind(epoch)
                .bind(time_text(time_of_ms(now)))
                .bind(expires)
                .execute(&mut *transaction)
                .await?;
                tracing::info!(instance, epoch, "took the leader lease");
                LeaseClaim::Leading(LeaseHolder {
                    instance: instance.to_string(),
                    api: api.to_string(),
                    epoch,
                    since: time_of_ms(now),
                    expires_in_ms: expires - now,
                })
            }
        };
        transaction.commit().await?;
        Ok(claim)
    }

    /// Ends `instance`'s lease at `epoch` now (a clean stop), so a follower takes over at its
    /// next claim instead of when the lease would have lapsed. Nothing when it is not held so.
    pub async fn release_lease(&self, instance: &str, epoch: i64) -> Result<(), StoreError> {
        let mut transaction = self.begin_unfenced_write().await?;
        sqlx::query(
            "UPDATE leader_lease SET expires_at_ms = 0 WHERE id = 1 AND holder = $1 AND epoch = $2",
        )
        .bind(instance)
        .bind(epoch)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Who holds the lease now, lapsed or not; `None` before any instance claimed it.
    pub async fn lease_holder(&self) -> Result<Option<LeaseHolder>, StoreError> {
        let mut connection = self.pool().acquire().await?;
        let now = now_ms(&mut connection, self.backend).await?;
        read_lease(&mut connection, now).await
    }

    /// This store with every write fenced by `instance`'s lease at `epoch`: a write transaction
    /// fails with [`StoreError::Fenced`] unless the lease is still `instance`'s at `epoch` and
    /// unexpired, by the database's clock, checked inside that transaction.
    pub fn fenced(&self, instance: &str, epoch: i64) -> Store {
        Store {
            fence: Some(Fence {
                instance: instance.to_string(),
                epoch,
            }),
            ..self.clone()
        }
    }

    /// This store as a follower reads it: every write transaction fails with
    /// [`StoreError::Fenced`], even once `instance` leads (it is fenced at epoch 0, which no
    /// lease has: the first is 1), and every read works.
    pub fn refusing_writes(&self, instance: &str) -> Store {
        self.fenced(instance, 0)
    }
}

/// Fails with [`StoreError::Fenced`] unless `fence` still holds the lease, inside the caller's
/// write transaction (which holds the write lock, so no claim can come in between).
pub(super) async fn check_fence(
    connection: &mut AnyConnection,
    backend: Backend,
    fence: &Fence,
) -> Result<(), StoreError> {
    let now = now_ms(&mut *connection, backend).await?;
    match read_lease(&mut *connection, now).await? {
        Some(holder)
            if holder.instance == fence.instance
                && holder.epoch == fence.epoch
                && holder.expires_in_ms > 0 =>
        {
            Ok(())
        }
        holder => Err(StoreError::Fenced {
            epoch: fence.epoch,
            holder: holder.map_or_else(
                || "no instance".to_string(),
                |holder| format!("{} at epoch {}", holder.instance, holder.epoch),
            ),
        }),
    }
}

async fn read_lease(
    connection: &mut AnyConnection,
    now_ms: i64,
) -> Result<Option<LeaseHolder>, StoreError> {
    let row = sqlx::query(
        "SELECT holder, api, epoch, since, expires_at_ms FROM leader_lease WHERE id = 1",
    )
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(LeaseHolder {
        instance: row.try_get("holder")?,
        api: row.try_get("api")?,
        epoch: row.try_get("epoch")?,
        since: parse_time(&row.try_get::<String, _>("since")?, "leader_lease.since")?,
        expires_in_ms: row.try_get::<i64, _>("expires_at_ms")? - now_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{new_rollout, test_store};

    const LEASE: Duration = Duration::from_secs(30);

    fn leading(claim: &LeaseClaim) -> &LeaseHolder {
        match claim {
            LeaseClaim::Leading(holder) => holder,
            LeaseClaim::Following(holder) => panic!("expected to lead, {holder:?} leads"),
        }
    }

    #[tokio::test]
    async fn the_first_claim_leads_and_another_instance_follows_until_the_lease_lapses() {
        let store = test_store().await;
        assert_eq!(store.lease_holder().await.unwrap(), None);
        let first = store
            .claim_lease("a", "127.0.0.1:1", None, LEASE)
            .await
            .unwrap();
        let first = leading(&first).clone();
        assert_eq!((first.instance.as_str(), first.epoch), ("a", 1));
        let second = store
            .claim_lease("b", "127.0.0.1:2", None, LEASE)
            .await
            .unwrap();
        assert!(
            matches!(&second, LeaseClaim::Following(holder) if holder.instance == "a" && holder.api == "127.0.0.1:1"),
            "{second:?}"
        );
        let renewed = store
            .claim_lease("a", "127.0.0.1:1", Some(1), LEASE)
            .await
            .unwrap();
        assert_eq!(leading(&renewed).epoch, 1);
        assert_eq!(
            leading(&renewed).since,
            first.since,
            "a renewal keeps the epoch's start"
        );

        let lapsing = store
            .claim_lease("a", "127.0.0.1:1", Some(1), Duration::from_millis(1))
            .await
            .unwrap();
        assert_eq!(leading(&lapsing).epoch, 1);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let taken = store
            .claim_lease("b", "127.0.0.1:2", None, LEASE)
            .await
            .unwrap();
        assert_eq!(
            (leading(&taken).instance.as_str(), leading(&taken).epoch),
            ("b", 2)
        );
        let late = store
            .claim_lease("a", "127.0.0.1:1", Some(1), LEASE)
            .await
            .unwrap();
        assert!(
            matches!(late, LeaseClaim::Following(ref holder) if holder.epoch == 2),
            "{late:?}"
        );
    }

    #[tokio::test]
    async fn a_restarted_instance_takes_its_own_lease_back_with_the_next_epoch() {
        let store = test_store().await;
        store.claim_lease("a", "api", None, LEASE).await.unwrap();
        let again = store.claim_lease("a", "api", None, LEASE).await.unwrap();
        assert_eq!(leading(&again).epoch, 2);
    }

    #[tokio::test]
    async fn a_released_lease_is_taken_at_once() {
        let store = test_store().await;
        store.claim_lease("a", "api-a", None, LEASE).await.unwrap();
        store.release_lease("a", 1).await.unwrap();
        let taken = store.claim_lease("b", "api-b", None, LEASE).await.unwrap();
        assert_eq!(leading(&taken).epoch, 2);
    }

    #[tokio::test]
    async fn a_fenced_store_writes_only_while_its_lease_is_current() {
        let store = test_store().await;
        store.claim_lease("a", "api-a", None, LEASE).await.unwrap();
        let leader = store.fenced("a", 1);
        leader
            .insert_rollout(new_rollout("r1", "steno", 0))
            .await
            .unwrap();
        store.release_lease("a", 1).await.unwrap();
        store.claim_lease("b", "api-b", None, LEASE).await.unwrap();
        let refused = leader
            .insert_rollout(new_rollout("r2", "billing", 1))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, StoreError::Fenced { epoch: 1, holder } if holder == "b at epoch 2"),
            "{refused:?}"
        );
        assert!(
            store.get_rollout("r2").await.unwrap().is_none(),
            "nothing written"
        );
        let refused = leader
            .update_rollout("r1", 1, "baking", "{}", None)
            .await
            .unwrap_err();
        assert!(matches!(refused, StoreError::Fenced { .. }), "{refused:?}");
        assert_eq!(store.get_rollout("r1").await.unwrap().unwrap().revision, 1);
        store
            .fenced("b", 2)
            .append_audit(&crate::store::NewAuditEntry {
                at: Utc::now(),
                actor: "opsd".into(),
                role: "system".into(),
                action: "test".into(),
                target: "steno".into(),
                reason: None,
                detail: serde_json::json!({}),
            })
            .await
            .expect("the current leader writes");
    }

    #[tokio::test]
    async fn a_store_refusing_writes_reads_but_never_writes_even_for_the_leader() {
        let store = test_store().await;
        store.claim_lease("a", "api-a", None, LEASE).await.unwrap();
        store
            .fenced("a", 1)
            .insert_rollout(new_rollout("r1", "steno", 0))
            .await
            .unwrap();
        let follower = store.refusing_writes("a");
        assert_eq!(follower.get_rollout("r1").await.unwrap().unwrap().id, "r1");
        let refused = follower
            .insert_rollout(new_rollout("r2", "billing", 1))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, StoreError::Fenced { epoch: 0, .. }),
            "{refused:?}"
        );
        assert!(store.get_rollout("r2").await.unwrap().is_none());
    }
}
