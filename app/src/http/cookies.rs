//! The web UI's cookies: names, attributes and reading. Every cookie is `HttpOnly`,
//! `SameSite=Lax` and `Path=/`; over HTTPS it is also `Secure` and carries the `__Host-` prefix,
//! which browsers accept only from a secure origin, for the whole host, never from a subdomain.

use axum::http::{header, HeaderMap};

/// The cookie holding the web UI's access token.
pub fn session_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-steno_session"
    } else {
        "steno_session"
    }
}

/// The cookie holding the browser's CSRF secret (forms carry an HMAC of it).
pub fn csrf_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-steno_csrf"
    } else {
        "steno_csrf"
    }
}

/// A `Set-Cookie` value; `max_age` of `None` makes a cookie for the browser session.
pub fn set_cookie(name: &str, value: &str, max_age_secs: Option<u64>, https: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(seconds) = max_age_secs {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    if https {
        cookie.push_str("; Secure");
    }
    cookie
}

/// The value of the cookie `name`, when the request has a non-empty one.
pub fn read_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie_name, _)| *cookie_name == name)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_secure_and_host_only_over_https() {
        let plain = set_cookie(session_cookie_name(false), "t", Some(60), false);
        assert_eq!(
            plain,
            "steno_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
        );
        let secure = set_cookie(session_cookie_name(true), "t", None, true);
        assert!(secure.starts_with("__Host-steno_session=t;"));
        assert!(secure.ends_with("; Secure"));
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "steno_session_old=x; steno_session=abc; steno_csrf="
                .parse()
                .unwrap(),
        );
        assert_eq!(
            read_cookie(&headers, "steno_session").as_deref(),
            Some("abc")
        );
        assert_eq!(read_cookie(&headers, "steno_csrf"), None);
    }
}
