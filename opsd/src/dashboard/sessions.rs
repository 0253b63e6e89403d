//! Dashboard sessions: a browser that logged in with an opsd token holds a random session id
//! in an HttpOnly cookie. The daemon keeps, per session, only the SHA-256 of that id, the hash
//! of the token it stands for (so a removed token ends its sessions at once) and an expiry; the
//! CSRF token is derived from the id, so it is never kept anywhere. Sessions are written through
//! to the store (`store/dashboard_sessions.rs`) and loaded from it when an opsd starts to lead,
//! so a restart or a takeover by another instance does not log anyone out. One-time login codes,
//! printed by `opsd up`, turn into a session once; they live only in the opsd that printed them.
//! Both tables are bounded: at the bound the entry closest to expiry makes room. A session that
//! ends before its expiry (logout, or making room) is announced, so its live feeds close at once.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::auth::sha256_hex;
use crate::store::{Store, StoreError, StoredSession};

/// How long a session lasts after login (a working day, so a shift never re-logs in twice).
pub const SESSION_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;
/// How long a one-time login code printed by `opsd up` stays usable.
pub const ONE_TIME_CODE_LIFETIME_MS: i64 = 15 * 60 * 1000;
/// The most sessions kept at once; more logins push out the ones closest to expiry.
pub const MAX_SESSIONS: usize = 10_000;
/// The most one-time codes kept at once.
const MAX_ONE_TIME_CODES: usize = 100;

/// What a session id stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The SHA-256 of the opsd token the person logged in with.
    pub token_hash: String,
    /// The value every state-changing request of this session must carry.
    pub csrf_token: String,
    pub expires_at_ms: i64,
}

/// A session just created: the secret id for the cookie and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub csrf_token: String,
    pub expires_at_ms: i64,
}

/// What is kept of a session under its key.
#[derive(Debug, Clone)]
struct Kept {
    token_hash: String,
    expires_at_ms: i64,
}

/// The sessions and one-time codes of this opsd process.
pub struct Sessions {
    sessions: Mutex<HashMap<String, Kept>>,
    one_time_codes: Mutex<HashMap<String, (String, i64)>>,
    /// Where sessions are written through to; `None` keeps them in memory only.
    store: Option<Store>,
    /// Counts sessions ended before their expiry; watchers re-check theirs when it moves.
    ended: watch::Sender<u64>,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions {
            sessions: Mutex::default(),
            one_time_codes: Mutex::default(),
            store: None,
            ended: watch::channel(0).0,
        }
    }
}

/// The key a session is kept under: the SHA-256 of its id (the id itself is never kept).
pub fn session_key(id: &str) -> String {
    sha256_hex(id.as_bytes())
}

/// The CSRF token of the session `id`: derived from the secret id, so it needs no keeping and
/// cannot be guessed without the cookie, and differs from the key the session is kept under.
fn csrf_token_of(id: &str) -> String {
    sha256_hex(format!("opsd dashboard csrf token\n{id}").as_bytes())
}

impl Sessions {
    /// Sessions kept in this process only.
    pub fn new() -> Sessions {
        Sessions::default()
    }

    /// Sessions written through to `store`; [`Sessions::load`] reads the ones it keeps.
    pub fn kept_in(store: Store) -> Sessions {
        Sessions {
            store: Some(store),
            ..Sessions::default()
        }
    }

    /// Takes in the sessions the store keeps that are live at `now_ms` (those an earlier opsd,
    /// or the previous leader, started); how many.
    pub async fn load(&self, now_ms: i64) -> Result<usize, StoreError> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let stored = store.live_dashboard_sessions(now_ms).await?;
        let mut sessions = self.sessions.lock().expect("sessions lock");
        for session in stored.into_iter().take(MAX_SESSIONS) {
            sessions.insert(
                session.key,
                Kept {
                    token_hash: session.token_hash,
                    expires_at_ms: session.expires_at_ms,
                },
            );
        }
        Ok(sessions.len())
    }

    /// Wakes whenever a session ends before its expiry; check yours with [`Sessions::is_live`].
    pub fn ended(&self) -> watch::Receiver<u64> {
        self.ended.subscribe()
    }

    /// Whether the session kept under `key` (see [`session_key`]) is live at `now_ms`.
    pub fn is_live(&self, key: &str, now_ms: i64) -> bool {
        self.sessions
            .lock()
            .expect("sessions lock")
            .get(key)
            .is_some_and(|session| session.expires_at_ms > now_ms)
    }

    fn announce_end(&self) {
        self.ended.send_modify(|count| *count += 1);
    }

    /// Starts a session for the token whose hash is `token_hash`, kept in the store first (a
    /// session the store refused is not started).
    pub async fn create(&self, token_hash: &str, now_ms: i64) -> Result<NewSession, StoreError> {
        let id = random_hex();
        let key = session_key(&id);
        let expires_at_ms = now_ms + SESSION_LIFETIME_MS;
        if let Some(store) = &self.store {
            let stored = StoredSession {
                key: key.clone(),
                token_hash: token_hash.to_string(),
                expires_at_ms,
            };
            store
                .save_dashboard_session(&stored, now_ms, MAX_SESSIONS)
                .await?;
        }
        let made_room = {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            sessions.retain(|_, kept| kept.expires_at_ms > now_ms);
            let full = sessions.len() >= MAX_SESSIONS;
            if full {
                make_room(&mut sessions, |kept| kept.expires_at_ms);
            }
            sessions.insert(
                key,
                Kept {
                    token_hash: token_hash.to_string(),
                    expires_at_ms,
                },
            );
            full
        };
        if made_room {
            self.announce_end();
        }
        Ok(NewSession {
            csrf_token: csrf_token_of(&id),
            id,
            expires_at_ms,
        })
    }

    /// The live session the cookie value `id` names, if any.
    pub fn find(&self, id: &str, now_ms: i64) -> Option<Session> {
        let key = session_key(id);
        let mut sessions = self.sessions.lock().expect("sessions lock");
        match sessions.get(&key) {
            Some(kept) if kept.expires_at_ms > now_ms => Some(Session {
                token_hash: kept.token_hash.clone(),
                csrf_token: csrf_token_of(id),
                expires_at_ms: kept.expires_at_ms,
            }),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session `id` (logout), in the store first: a logout the store refused leaves the
    /// session as it was, so it cannot come back with the next leader. Returns whether it
    /// existed here.
    pub async fn end(&self, id: &str) -> Result<bool, StoreError> {
        let key = session_key(id);
        if let Some(store) = &self.store {
            store.end_dashboard_session(&key).await?;
        }
        let removed = self
            .sessions
            .lock()
            .expect("sessions lock")
            .remove(&key)
            .is_some();
        if removed {
            self.announce_end();
        }
        Ok(removed)
    }

    /// A code that logs in once as the token with hash `token_hash`, within
    /// [`ONE_TIME_CODE_LIFETIME_MS`].
    pub fn one_time_code(&self, token_hash: &str, now_ms: i64) -> String {
        let code = random_hex();
        let mut codes = self.one_time_codes.lock().expect("codes lock");
        codes.retain(|_, (_, expires)| *expires > now_ms);
        if codes.len() >= MAX_ONE_TIME_CODES {
            make_room(&mut codes, |(_, expires)| *expires);
        }
        codes.insert(
            sha256_hex(code.as_bytes()),
            (token_hash.to_string(), now_ms + ONE_TIME_CODE_LIFETIME_MS),
        );
        code
    }

    /// Uses up a one-time code: the token hash it stands for, once, while it is valid.
    pub fn redeem(&self, code: &str, now_ms: i64) -> Option<String> {
        let key = sha256_hex(code.as_bytes());
        let (token_hash, expires) = self
            .one_time_codes
            .lock()
            .expect("codes lock")
            .remove(&key)?;
        (expires > now_ms).then_some(token_hash)
    }

    /// How many sessions are held (expired ones included until they are next looked at).
    pub fn len(&self) -> usize {
        self.sessions.lock().expect("sessions lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes the entry that expires first (of those, the smallest key: the store's choice too).
fn make_room<V>(entries: &mut HashMap<String, V>, expiry: impl Fn(&V) -> i64) {
    if let Some(first) = entries
        .iter()
        .min_by(|left, right| (expiry(left.1), left.0).cmp(&(expiry(right.1), right.0)))
        .map(|(key, _)| key.clone())
    {
        entries.remove(&first);
    }
}

/// 32 random bytes as lowercase hex.
fn random_hex() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same_secret(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_is_found_by_its_id_until_it_expires_or_ends() {
        let sessions = Sessions::new();
        let created = sessions.create("hash-of-token", 1_000).await.unwrap();
        let found = sessions.find(&created.id, 2_000).expect("a live session");
        assert_eq!(found.token_hash, "hash-of-token");
        assert_eq!(found.csrf_token, created.csrf_token);
        assert_ne!(created.id, created.csrf_token);
        assert_ne!(session_key(&created.id), created.csrf_token);
        assert!(sessions.find("not-a-session", 2_000).is_none());
        assert!(sessions
            .find(&created.id, 1_000 + SESSION_LIFETIME_MS)
            .is_none());
        assert!(sessions.is_empty(), "an expired session is dropped");

        let again = sessions.create("hash-of-token", 1_000).await.unwrap();
        let ended = sessions.ended();
        assert!(sessions.is_live(&session_key(&again.id), 2_000));
        assert!(sessions.end(&again.id).await.unwrap());
        assert!(ended.has_changed().unwrap(), "a logout is announced");
        assert!(!sessions.is_live(&session_key(&again.id), 2_000));
        assert!(sessions.find(&again.id, 2_000).is_none());
        assert!(!sessions.end(&again.id).await.unwrap());
    }

    #[tokio::test]
    async fn only_hashes_of_session_ids_are_kept() {
        let store = crate::store::test_store().await;
        let sessions = Sessions::kept_in(store.clone());
        let created = sessions.create("hash-of-token", 0).await.unwrap();
        let held = sessions.sessions.lock().unwrap().clone();
        assert!(!held.contains_key(&created.id));
        assert!(held.contains_key(&sha256_hex(created.id.as_bytes())));
        let stored = store.live_dashboard_sessions(0).await.unwrap();
        assert_eq!(stored.len(), 1);
        let row = format!("{stored:?}");
        assert!(!row.contains(&created.id), "{row}");
        assert!(!row.contains(&created.csrf_token), "{row}");
    }

    #[tokio::test]
    async fn sessions_outlive_the_opsd_that_started_them_but_not_a_logout() {
        let store = crate::store::test_store().await;
        let first = Sessions::kept_in(store.clone());
        let kept = first.create("operator-hash", 1_000).await.unwrap();
        let ended = first.create("viewer-hash", 1_000).await.unwrap();
        assert!(first.end(&ended.id).await.unwrap());

        // The next opsd (a restart, or the instance that takes over the lease) loads them.
        let next = Sessions::kept_in(store.clone());
        assert_eq!(next.load(2_000).await.unwrap(), 1);
        let found = next
            .find(&kept.id, 2_000)
            .expect("the session carried over");
        assert_eq!(found.token_hash, "operator-hash");
        assert_eq!(
            found.csrf_token, kept.csrf_token,
            "same CSRF token, never stored"
        );
        assert!(
            next.find(&ended.id, 2_000).is_none(),
            "a logout stays a logout"
        );
        // An expired one is not taken in.
        let later = Sessions::kept_in(store);
        assert_eq!(later.load(1_000 + SESSION_LIFETIME_MS).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_session_the_store_refuses_is_not_started() {
        let store = crate::store::test_store().await;
        let sessions = Sessions::kept_in(store.refusing_writes("test-instance"));
        assert!(sessions.create("operator-hash", 0).await.is_err());
        assert!(sessions.is_empty());
    }

    #[tokio::test]
    async fn the_session_table_is_bounded() {
        let sessions = Sessions::new();
        let first = sessions.create("first", 0).await.unwrap();
        for at in 1..=MAX_SESSIONS as i64 {
            sessions.create("later", at).await.unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(
            sessions.find(&first.id, 10).is_none(),
            "the session closest to expiry made room"
        );
    }

    #[test]
    fn a_one_time_code_logs_in_once_and_only_in_time() {
        let sessions = Sessions::new();
        let code = sessions.one_time_code("operator-hash", 0);
        assert_eq!(sessions.redeem(&code, 10).as_deref(), Some("operator-hash"));
        assert_eq!(sessions.redeem(&code, 20), None, "used once");
        let late = sessions.one_time_code("operator-hash", 0);
        assert_eq!(sessions.redeem(&late, ONE_TIME_CODE_LIFETIME_MS), None);
        assert_eq!(sessions.redeem("made-up", 0), None);
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }
}
