//! Leadership among the opsd instances that share a store (`store: postgres://...`): one leads,
//! the others follow and take over when its lease lapses. The lease is a row in the store
//! (`store/leader.rs`), claimed and renewed in write transactions by the database's clock; it
//! was chosen over a session advisory lock because a lock held by a paused process's connection
//! lasts as long as that connection, which nothing bounds, while a lease lapses on time.
//!
//! Failure modes and what bounds them:
//! - the leader dies: its lease lapses within [`LeaseTiming::lease`] of its last renewal and a
//!   follower, claiming every [`LeaseTiming::follow_every`], takes it with the next epoch;
//! - the leader is paused or cut off from the database: it stops acting at its own deadline,
//!   [`LeaseTiming::margin`] before the lease could lapse, by its monotonic clock (the platform
//!   calls are behind [`LeaderPermit`]), and the store refuses its writes once the lease is not
//!   its own at its epoch ([`crate::store::Store::fenced`]), checked inside each transaction;
//! - the database is unreachable for everyone: nobody leads; releases and routers keep serving
//!   the last split (the data plane fails static).
//!
//! A leader that loses its lease does not try to step down in place: `opsd up` exits with an
//! error, and its supervisor (systemd's `Restart=always`) starts it again as a follower.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::platform::fenced::ActPermit;
use crate::store::{LeaseClaim, LeaseHolder, Store};

/// How long a lease runs and how often it is claimed.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    /// How long a claim keeps the lease.
    pub lease: Duration,
    /// How often the leader renews it.
    pub renew_every: Duration,
    /// How often a follower tries to take it.
    pub follow_every: Duration,
    /// How long before the lease could lapse the leader stops acting.
    pub margin: Duration,
}

impl LeaseTiming {
    /// `opsd up`'s: a dead leader is replaced within 7 s (its lease, then a follower's next
    /// claim), inside the 10 s the design allows.
    pub const DEFAULT: LeaseTiming = LeaseTiming {
        lease: Duration::from_secs(6),
        renew_every: Duration::from_secs(2),
        follow_every: Duration::from_secs(1),
        margin: Duration::from_secs(1),
    };
}

/// This instance's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Not decided yet (before the first claim answered).
    Starting,
    /// Another instance leads (`None`: the store could not be read).
    Following(Option<LeaseHolder>),
    /// This instance leads at `epoch`.
    Leading(LeaseHolder),
    /// This instance led and may no longer: why.
    Lost(String),
}

/// The lease's deadline as this process sees it, by its monotonic clock.
#[derive(Debug, Default)]
struct Deadline(Mutex<Option<Instant>>);

impl Deadline {
    fn set(&self, deadline: Option<Instant>) {
        *self.0.lock().unwrap_or_else(|poison| poison.into_inner()) = deadline;
    }
    fn get(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Whether this instance may act: it leads and its deadline has not passed.
#[derive(Clone)]
pub struct LeaderPermit(Arc<Deadline>);

impl ActPermit for LeaderPermit {
    fn may_act(&self) -> Result<(), String> {
        match self.0.get() {
            Some(deadline) if Instant::now() < deadline => Ok(()),
            Some(_) => Err("the leader lease was not renewed in time".into()),
            None => Err("this instance does not lead".into()),
        }
    }
}

/// The lease claims of one instance, in a task of their own.
pub struct Leadership {
    instance: String,
    store: Store,
    role: watch::Receiver<Role>,
    deadline: Arc<Deadline>,
    task: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// The name of this instance: its host and data directory, the same across its restarts
    /// (so a restarted leader takes its own lease back at once: one opsd runs per data directory).
    pub fn instance_name(data_dir: &std::path::Path) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_string())
            .unwrap_or_else(|_| "localhost".to_string());
        let directory = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_path_buf());
        format!("{host}:{}", directory.display())
    }

    /// Starts claiming the lease for `instance`, whose API listens at `api`.
    pub fn start(store: Store, instance: String, api: String, timing: LeaseTiming) -> Leadership {
        let (sender, role) = watch::channel(Role::Starting);
        let deadline = Arc::new(Deadline::default());
        let task = tokio::spawn(claim_loop(
            store.clone(),
            instance.clone(),
            api,
            timing,
            sender,
            deadline.clone(),
        ));
        Leadership {
            instance,
            store,
            role,
            deadline,
            task,
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The role now.
    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// Changes of the role, to wait on.
    pub fn watch(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// What the platforms ask before changing anything.
    pub fn permit(&self) -> LeaderPermit {
        LeaderPermit(self.deadline.clone())
    }

    /// Waits until this instance leads (its lease at that moment) or lost.
    pub async fn until_leading(&self) -> Result<LeaseHolder, String> {
        let mut role = self.role.clone();
        loop {
            match role.borrow_and_update().clone() {
                Role::Leading(holder) => return Ok(holder),
                Role::Lost(why) => return Err(why),
                Role::Starting | Role::Following(_) => {}
            }
            if role.changed().await.is_err() {
                return Err("the lease task ended".into());
            }
        }
    }

    /// Waits until a leader loses its lease; why.
    pub async fn until_lost(&self) -> String {
        let mut role = self.role.clone();
        loop {
            if let Role::Lost(why) = role.borrow_and_update().clone() {
                return why;
            }
            if role.changed().await.is_err() {
                return "the lease task ended".into();
            }
        }
    }

    /// Stops claiming and, when leading, ends the lease now so a follower takes over at once.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.deadline.set(None);
        if let Role::Leading(holder) = self.role.borrow().clone() {
            if let Err(error) = self.store.release_lease(&self.instance, holder.epoch).await {
                tracing::warn!(%error, "could not end the leader lease; a follower takes over when it lapses");
            }
        }
    }
}

async fn claim_loop(
    store: Store,
    instance: String,
    api: String,
    timing: LeaseTiming,
    role: watch::Sender<Role>,
    deadline: Arc<Deadline>,
) {
    let mut epoch: Option<i64> = None;
    loop {
        let started = Instant::now();
        let claim = tokio::time::timeout(
            timing.renew_every,
            store.claim_lease(&instance, &api, epoch, timing.lease),
        )
        .await;
        let next = match (claim, epoch) {
            (Ok(Ok(LeaseClaim::Leading(holder))), None) => {
                tracing::info!(epoch = holder.epoch, "this opsd leads");
                Next::Lead(holder)
            }
            (Ok(Ok(LeaseClaim::Leading(holder))), Some(known)) if holder.epoch == known => {
                Next::Lead(holder)
            }
            (Ok(Ok(LeaseClaim::Leading(holder))), Some(known)) => Next::Lose(format!(
                "the lease at epoch {known} lapsed before it was renewed (taken again at epoch {})",
                holder.epoch
            )),
            (Ok(Ok(LeaseClaim::Following(holder))), Some(known)) => Next::Lose(format!(
                "{} took the lease at epoch {} (this instance led at epoch {known})",
                holder.instance, holder.epoch
            )),
            (Ok(Ok(LeaseClaim::Following(holder))), None) => Next::Follow(Some(holder)),
            (outcome, _) => {
                let error = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => format!("no answer within {} ms", timing.renew_every.as_millis()),
                };
                tracing::warn!(%error, "could not claim the leader lease");
                match (epoch, deadline.get()) {
                    (Some(_), Some(at)) if Instant::now() + timing.renew_every >= at => {
                        Next::Lose(format!("the lease could not be renewed: {error}"))
                    }
                    (Some(_), _) => Next::Wait,
                    (None, _) => Next::Follow(None),
                }
            }
        };
        match next {
            Next::Lead(holder) => {
                deadline.set(Some(started + timing.lease.saturating_sub(timing.margin)));
                epoch = Some(holder.epoch);
                role.send_replace(Role::Leading(holder));
            }
            Next::Follow(holder) => {
                role.send_replace(Role::Following(holder));
            }
            Next::Wait => {}
            Next::Lose(why) => {
                deadline.set(None);
                tracing::error!(reason = %why, "this opsd no longer leads");
                role.send_replace(Role::Lost(why));
                return;
            }
        }
        let pause = if epoch.is_some() {
            timing.renew_every
        } else {
            timing.follow_every
        };
        tokio::time::sleep(pause.saturating_sub(started.elapsed())).await;
    }
}

enum Next {
    Lead(LeaseHolder),
    Follow(Option<LeaseHolder>),
    Wait,
    Lose(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: LeaseTiming = LeaseTiming {
        lease: Duration::from_millis(600),
        renew_every: Duration::from_millis(150),
        follow_every: Duration::from_millis(50),
        margin: Duration::from_millis(150),
    };

    #[tokio::test]
    async fn one_instance_leads_and_the_other_takes_over_when_it_stops() {
        let store = crate::store::test_store().await;
        let a = Leadership::start(store.clone(), "a".into(), "api-a".into(), FAST);
        let led = a.until_leading().await.unwrap();
        assert!(a.permit().may_act().is_ok());
        let b = Leadership::start(store.clone(), "b".into(), "api-b".into(), FAST);
        let mut watch = b.watch();
        while !matches!(*watch.borrow_and_update(), Role::Following(Some(_))) {
            watch.changed().await.unwrap();
        }
        assert!(matches!(b.role(), Role::Following(Some(holder)) if holder.instance == "a"));
        assert!(b.permit().may_act().is_err(), "a follower may not act");
        a.stop().await;
        let took = b.until_leading().await.unwrap();
        assert_eq!(took.epoch, led.epoch + 1);
        assert!(b.permit().may_act().is_ok());
    }

    #[tokio::test]
    async fn a_leader_whose_lease_was_taken_loses_and_may_no_longer_act() {
        let store = crate::store::test_store().await;
        let a = Leadership::start(store.clone(), "a".into(), "api-a".into(), FAST);
        let led = a.until_leading().await.unwrap();
        let permit = a.permit();
        // Another instance takes the lease as if a's had lapsed while a was paused.
        store.release_lease("a", led.epoch).await.unwrap();
        store
            .claim_lease("b", "api-b", None, Duration::from_secs(30))
            .await
            .unwrap();
        let why = a.until_lost().await;
        assert!(why.contains("b took the lease"), "{why}");
        assert!(permit.may_act().is_err());
        let refused = store
            .fenced("a", led.epoch)
            .append_audit(&crate::store::NewAuditEntry {
                at: chrono::Utc::now(),
                actor: "opsd".into(),
                role: "system".into(),
                action: "late".into(),
                target: "steno".into(),
                reason: None,
                detail: serde_json::json!({}),
            })
            .await;
        assert!(matches!(
            refused,
            Err(crate::store::StoreError::Fenced { .. })
        ));
    }

    #[test]
    fn the_permit_ends_at_the_deadline_by_the_monotonic_clock() {
        let deadline = Arc::new(Deadline::default());
        let permit = LeaderPermit(deadline.clone());
        assert!(permit.may_act().is_err());
        deadline.set(Some(Instant::now() + Duration::from_secs(60)));
        assert!(permit.may_act().is_ok());
        deadline.set(Some(Instant::now() - Duration::from_millis(1)));
        assert_eq!(
            permit.may_act(),
            Err("the leader lease was not renewed in time".to_string())
        );
    }
}
