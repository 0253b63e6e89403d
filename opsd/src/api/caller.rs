//! Who is calling: the one authorisation check the API and the dashboard share. A request
//! names its opsd token either as `Authorization: Bearer <token>` (CLI, CI) or through a
//! dashboard session cookie; both end at the same token lookup, so a token removed from the
//! store stops working everywhere at once. A state-changing request made with a session cookie
//! must also carry the session's CSRF token in `X-CSRF-Token` and, when the browser says where
//! it comes from, come from opsd's own origin; bearer requests carry no ambient authority and
//! need neither.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};

use super::{ApiError, ApiState};
use crate::auth::sha256_hex;
use crate::control::Actor;
use crate::dashboard::sessions::{same_secret, session_key};
use crate::store::TokenRole;

/// The cookie holding a dashboard session id.
pub const SESSION_COOKIE: &str = "opsd_session";
/// The header a session's state-changing request carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated caller.
pub struct Caller {
    pub actor: Actor,
    pub role: TokenRole,
    /// The CSRF token of the dashboard session the request came with (`None` for bearer).
    pub session_csrf: Option<String>,
    pub session_expires_at_ms: Option<i64>,
    /// The key of the dashboard session the request came with (the hash of its id, never the id).
    pub session_key: Option<String>,
    /// The SHA-256 of the opsd token the request authenticates with.
    pub token_hash: String,
}

impl Caller {
    pub fn require_operator(&self) -> Result<(), ApiError> {
        if self.role == TokenRole::Operator {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs an operator token; viewer tokens can only read",
            ))
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// The value of the cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether a browser request comes from opsd's own origin: no `Origin` header (not sent by a
/// browser for same-origin navigations in every case) or one whose host is the `Host` the
/// request was sent to.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(host)) = (
        origin.to_str(),
        headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok()),
    ) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    origin_host == Some(host)
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A session a request came through: its key and what it stands for.
type SessionFound = (String, crate::dashboard::sessions::Session);

/// The token hash a request authenticates with, and the session it came through, if any.
fn token_hash_of(
    parts: &Parts,
    state: &ApiState,
) -> Result<(String, Option<SessionFound>), ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| unauthorized("the Authorization header must use the Bearer scheme"))?;
        return Ok((sha256_hex(token.trim().as_bytes()), None));
    }
    let Some(session_id) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Err(unauthorized("missing `Authorization: Bearer <token>`; opsd up printed the tokens and wrote the operator token to its data directory"));
    };
    let session = state
        .sessions
        .find(session_id, state.daemon.now_ms())
        .ok_or_else(|| unauthorized("the dashboard session has ended; log in again"))?;
    if changes_state(&parts.method) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !same_secret(sent, &session.csrf_token) {
            return Err(forbidden(
                "a dashboard request that changes something must carry the session's CSRF token in X-CSRF-Token",
            ));
        }
        if !same_origin(&parts.headers) {
            return Err(forbidden(
                "the request comes from another site's page (Origin does not match)",
            ));
        }
    }
    Ok((
        session.token_hash.clone(),
        Some((session_key(session_id), session)),
    ))
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let (token_hash, session) = token_hash_of(parts, state)?;
        let found = state
            .daemon
            .store()
            .find_token(&token_hash)
            .await?
            .ok_or_else(|| unauthorized("unknown token"))?;
        Ok(Caller {
            actor: Actor {
                name: found.name,
                role: found.role.as_str().to_string(),
            },
            role: found.role,
            session_csrf: session
                .as_ref()
                .map(|(_, session)| session.csrf_token.clone()),
            session_expires_at_ms: session.as_ref().map(|(_, session)| session.expires_at_ms),
            session_key: session.map(|(key, _)| key),
            token_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn cookies_are_found_by_exact_name_across_headers() {
        let sent = headers(&[
            ("cookie", "theme=dark; opsd_session_old=x"),
            ("cookie", "opsd_session=abc123"),
        ]);
        assert_eq!(cookie(&sent, "opsd_session"), Some("abc123"));
        assert_eq!(cookie(&sent, "theme"), Some("dark"));
        assert_eq!(cookie(&sent, "missing"), None);
    }

    #[test]
    fn only_opsd_s_own_origin_is_the_same_origin() {
        let host = ("host", "127.0.0.1:7070");
        assert!(same_origin(&headers(&[host])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:7070")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[host, ("origin", "null")])));
        assert!(!same_origin(&headers(&[(
            "origin",
            "http://127.0.0.1:7070"
        )])));
    }
}
