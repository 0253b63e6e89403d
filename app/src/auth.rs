//! Passwords (argon2id), access tokens (JWT, HS256, with expiry, an id and a generation for
//! revocation) and the web UI's CSRF tokens (an HMAC of the browser's CSRF cookie).
//!
//! The signing secret is shared by every Steno process on one database (stable and canary alike),
//! so a token issued by one release is accepted by the other during a rollout.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a token or password was refused. Messages are safe to show to the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the access token is malformed; send `Authorization: Bearer <token>` with a token from /v1/auth/login")]
    MalformedToken,
    #[error("the access token's signature is invalid; log in again")]
    BadSignature,
    #[error("the access token expired; log in again")]
    Expired,
    #[error("could not hash the password: {0}")]
    Hashing(String),
}

/// What a Steno access token asserts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's firm id.
    pub firm: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// The token's id, revoked by logout. Tokens issued before revocation existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The user's token generation when issued; a password change moves it on and every token
    /// of an older generation is refused. Absent means generation 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AuthError::Hashing(error.to_string()))
}

/// Checks a password against a stored hash; false for a wrong password or an unreadable hash.
pub fn verify_password(password: &str, stored_hash: &str) -> bool {
    match PasswordHash::new(stored_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a password nobody knows, verified when a login names an unknown email so that the
/// response time does not reveal which emails exist.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that never matches").unwrap_or_default())
}

/// Signs and checks access tokens with one HMAC-SHA256 secret.
#[derive(Clone)]
pub struct TokenSigner {
    secret: Vec<u8>,
}

const JWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl TokenSigner {
    pub fn new(secret: &[u8]) -> TokenSigner {
        TokenSigner {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length, so this never fails.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("hmac keys of any length are valid"))
    }

    /// Issues a token for `claims`.
    pub fn issue(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(JWT_HEADER);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Verifies a token's signature and expiry at `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::MalformedToken);
        };
        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| AuthError::MalformedToken)?;
        let header_value: serde_json::Value =
            serde_json::from_slice(&header_json).map_err(|_| AuthError::MalformedToken)?;
        if header_value.get("alg").and_then(|alg| alg.as_str()) != Some("HS256") {
            return Err(AuthError::MalformedToken);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| AuthError::MalformedToken)?;
        let mut mac = self.mac();
        mac.update(header.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| AuthError::BadSignature)?;
        let payload_json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| AuthError::MalformedToken)?;
        let claims: Claims =
            serde_json::from_slice(&payload_json).map_err(|_| AuthError::MalformedToken)?;
        if claims.exp <= now {
            return Err(AuthError::Expired);
        }
        Ok(claims)
    }
}

/// The prefix that keeps CSRF MACs apart from token signatures made with the same secret
/// (a JWT's signing input is base64url text and never contains a NUL byte).
const CSRF_DOMAIN: &[u8] = b"steno-csrf\0";

impl TokenSigner {
    /// The CSRF token a form must carry for the browser whose CSRF cookie is `cookie_value`.
    pub fn csrf_token(&self, cookie_value: &str) -> String {
        let mut mac = self.mac();
        mac.update(CSRF_DOMAIN);
        mac.update(cookie_value.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Checks a form's CSRF token against the browser's CSRF cookie, in constant time.
    pub fn verify_csrf_token(&self, cookie_value: &str, token: &str) -> bool {
        let Ok(signature) = URL_SAFE_NO_PAD.decode(token.trim()) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(CSRF_DOMAIN);
        mac.update(cookie_value.as_bytes());
        mac.verify_slice(&signature).is_ok()
    }
}

/// A random secret of 32 bytes, hex encoded.
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// SHA-256 of text, hex encoded (invitation tokens are stored only as this hash).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "user-1".into(),
            firm: "firm-1".into(),
            iat: 1_000,
            exp,
            jti: Some("token-1".into()),
            generation: Some(2),
        }
    }

    #[test]
    fn tokens_without_an_id_or_generation_still_parse() {
        let signer = TokenSigner::new(b"secret");
        let legacy = Claims {
            jti: None,
            generation: None,
            ..claims(2_000)
        };
        let token = signer.issue(&legacy);
        let payload = token.split('.').nth(1).unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert!(
            !json.contains("jti") && !json.contains("generation"),
            "{json}"
        );
        assert_eq!(signer.verify(&token, 1_500).unwrap(), legacy);
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_cookie_and_secret() {
        let signer = TokenSigner::new(b"secret");
        let token = signer.csrf_token("cookie-a");
        assert!(signer.verify_csrf_token("cookie-a", &token));
        assert!(!signer.verify_csrf_token("cookie-b", &token));
        assert!(!TokenSigner::new(b"other").verify_csrf_token("cookie-a", &token));
        assert!(!signer.verify_csrf_token("cookie-a", ""));
        assert!(!signer.verify_csrf_token("cookie-a", "not base64 !!"));
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn tokens_round_trip_and_expire() {
        let signer = TokenSigner::new(b"secret");
        let token = signer.issue(&claims(2_000));
        assert_eq!(signer.verify(&token, 1_500).unwrap(), claims(2_000));
        assert_eq!(signer.verify(&token, 2_000), Err(AuthError::Expired));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let signer = TokenSigner::new(b"secret");
        let token = signer.issue(&claims(2_000));
        let other = TokenSigner::new(b"other secret");
        assert_eq!(other.verify(&token, 1_500), Err(AuthError::BadSignature));

        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                firm: "firm-2".into(),
                ..claims(2_000)
            })
            .unwrap(),
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &forged_payload;
        assert_eq!(
            signer.verify(&parts.join("."), 1_500),
            Err(AuthError::BadSignature)
        );
        for garbage in ["", "a.b", "a.b.c.d", "!!.??.**", "e30.e30.e30"] {
            assert!(signer.verify(garbage, 1_500).is_err(), "{garbage}");
        }
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        let signer = TokenSigner::new(b"secret");
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(2_000)).unwrap());
        assert_eq!(
            signer.verify(&format!("{header}.{payload}."), 1_500),
            Err(AuthError::MalformedToken)
        );
    }
}
