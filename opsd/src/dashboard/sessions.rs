//! Dashboard sessions: a browser that logged in with an opsd token holds a random session id
//! in an HttpOnly cookie. The daemon keeps, per session, only the SHA-256 of that id, the hash
//! of the token it stands for (so a removed token ends its sessions at once), a CSRF token and
//! an expiry. One-time login codes, printed by `opsd up`, turn into a session once.
//! Both tables are bounded: at the bound the entry closest to expiry makes room. A session that
//! ends before its expiry (logout, or making room) is announced, so its live feeds close at once.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::auth::sha256_hex;

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

/// The sessions and one-time codes of this opsd process.
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    one_time_codes: Mutex<HashMap<String, (String, i64)>>,
    /// Counts sessions ended before their expiry; watchers re-check theirs when it moves.
    ended: watch::Sender<u64>,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions {
            sessions: Mutex::default(),
            one_time_codes: Mutex::default(),
            ended: watch::channel(0).0,
        }
    }
}

/// The key a session is kept under: the SHA-256 of its id (the id itself is never kept).
pub fn session_key(id: &str) -> String {
    sha256_hex(id.as_bytes())
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions::default()
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

    /// Starts a session for the token whose hash is `token_hash`.
    pub fn create(&self, token_hash: &str, now_ms: i64) -> NewSession {
        let id = random_hex();
        let session = Session {
            token_hash: token_hash.to_string(),
            csrf_token: random_hex(),
            expires_at_ms: now_ms + SESSION_LIFETIME_MS,
        };
        let created = NewSession {
            id: id.clone(),
            csrf_token: session.csrf_token.clone(),
            expires_at_ms: session.expires_at_ms,
        };
        let made_room = {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            sessions.retain(|_, kept| kept.expires_at_ms > now_ms);
            let full = sessions.len() >= MAX_SESSIONS;
            if full {
                make_room(&mut sessions, |kept| kept.expires_at_ms);
            }
            sessions.insert(session_key(&id), session);
            full
        };
        if made_room {
            self.announce_end();
        }
        created
    }

    /// The live session the cookie value `id` names, if any.
    pub fn find(&self, id: &str, now_ms: i64) -> Option<Session> {
        let key = session_key(id);
        let mut sessions = self.sessions.lock().expect("sessions lock");
        match sessions.get(&key) {
            Some(session) if session.expires_at_ms > now_ms => Some(session.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session `id` (logout). Returns whether it existed.
    pub fn end(&self, id: &str) -> bool {
        let removed = self
            .sessions
            .lock()
            .expect("sessions lock")
            .remove(&session_key(id))
            .is_some();
        if removed {
            self.announce_end();
        }
        removed
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

/// Removes the entry that expires first.
fn make_room<V>(entries: &mut HashMap<String, V>, expiry: impl Fn(&V) -> i64) {
    if let Some(first) = entries
        .iter()
        .min_by_key(|(_, value)| expiry(value))
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

    #[test]
    fn a_session_is_found_by_its_id_until_it_expires_or_ends() {
        let sessions = Sessions::new();
        let created = sessions.create("hash-of-token", 1_000);
        let found = sessions.find(&created.id, 2_000).expect("a live session");
        assert_eq!(found.token_hash, "hash-of-token");
        assert_eq!(found.csrf_token, created.csrf_token);
        assert_ne!(created.id, created.csrf_token);
        assert!(sessions.find("not-a-session", 2_000).is_none());
        assert!(sessions
            .find(&created.id, 1_000 + SESSION_LIFETIME_MS)
            .is_none());
        assert!(sessions.is_empty(), "an expired session is dropped");

        let again = sessions.create("hash-of-token", 1_000);
        let ended = sessions.ended();
        assert!(sessions.is_live(&session_key(&again.id), 2_000));
        assert!(sessions.end(&again.id));
        assert!(ended.has_changed().unwrap(), "a logout is announced");
        assert!(!sessions.is_live(&session_key(&again.id), 2_000));
        assert!(sessions.find(&again.id, 2_000).is_none());
        assert!(!sessions.end(&again.id));
    }

    #[test]
    fn only_hashes_of_session_ids_are_kept() {
        let sessions = Sessions::new();
        let created = sessions.create("hash-of-token", 0);
        let held = sessions.sessions.lock().unwrap();
        assert!(!held.contains_key(&created.id));
        assert!(held.contains_key(&sha256_hex(created.id.as_bytes())));
    }

    #[test]
    fn the_session_table_is_bounded() {
        let sessions = Sessions::new();
        let first = sessions.create("first", 0);
        for at in 1..=MAX_SESSIONS as i64 {
            sessions.create("later", at);
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
