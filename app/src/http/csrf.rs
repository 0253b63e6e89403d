//! CSRF protection for every web UI form, login and registration included.
//!
//! Each browser gets a random CSRF cookie (set on its first page, before any session exists). Every
//! form carries `csrf_token`, an HMAC of that cookie under the token signing secret: in a hidden
//! field for URL-encoded forms, in the action's query for multipart uploads. A state-changing
//! request is accepted only when (1) its `Origin` (or, without one, its `Referer`) is Steno's own
//! origin and (2) its token matches its cookie. Another site can make a browser send the cookie
//! but can neither read it nor compute the token, and its requests carry its own origin.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::cookies::{csrf_cookie_name, read_cookie, set_cookie};
use crate::client_identity::ClientContext;
use crate::state::AppState;

/// The form field (and query parameter) that carries the token.
pub const CSRF_FIELD: &str = "csrf_token";
/// The largest URL-encoded form read to find the token.
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// The token the current browser's forms must carry.
#[derive(Debug, Clone, Default)]
pub struct CsrfToken(pub String);

impl CsrfToken {
    /// A hidden form field with the token.
    pub fn field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">",
            self.0
        )
    }

    /// The token as a query string parameter (for multipart form actions).
    pub fn query(&self) -> String {
        format!("{CSRF_FIELD}={}", self.0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .unwrap_or_default())
    }
}

/// Why a form post was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrfRefusal {
    #[error("the form came from another site ({0}), not from Steno")]
    ForeignOrigin(String),
    #[error(
        "the request says neither where it came from (Origin) nor which page sent it (Referer)"
    )]
    UnknownOrigin,
    #[error("Steno cannot tell its own address: the request has no Host header")]
    NoHost,
    #[error("the form has no valid CSRF token; it is out of date or was not made by Steno")]
    BadToken,
    #[error("the form is too large")]
    FormTooLarge,
}

/// The origin forms must come from: `STENO_PUBLIC_URL` when set, else this request's scheme and
/// `Host`.
pub fn expected_origin(
    headers: &HeaderMap,
    client: &ClientContext,
    public_url: Option<&str>,
) -> Option<String> {
    if let Some(url) = public_url {
        return Some(url.to_string());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?.trim();
    if host.is_empty() {
        return None;
    }
    let scheme = if client.https { "https" } else { "http" };
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    if host.is_empty() {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    ))
}

/// Checks `Origin`, or `Referer` when there is no `Origin`, against the expected origin.
pub fn check_origin(headers: &HeaderMap, expected: Option<&str>) -> Result<(), CsrfRefusal> {
    let Some(expected) = expected else {
        return Err(CsrfRefusal::NoHost);
    };
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
    };
    let claimed = match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => origin.to_string(),
        (None, Some(referer)) => origin_of(referer).unwrap_or_else(|| referer.to_string()),
        (None, None) => return Err(CsrfRefusal::UnknownOrigin),
    };
    if origin_of(&claimed).as_deref() == Some(expected) {
        Ok(())
    } else {
        Err(CsrfRefusal::ForeignOrigin(claimed))
    }
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_urlencoded_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

fn token_in(pairs: &[u8]) -> Option<String> {
    form_urlencoded::parse(pairs)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned())
}

/// Middleware for the web UI's routes: gives every browser a CSRF cookie, makes its token
/// available to the pages, and refuses state-changing requests that fail the checks.
pub async fn protect_forms(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ClientContext>()
        .cloned()
        .unwrap_or_default();
    let cookie_name = csrf_cookie_name(client.https);
    let existing_cookie = read_cookie(request.headers(), cookie_name);
    let cookie_value = existing_cookie
        .clone()
        .unwrap_or_else(crate::auth::random_secret);
    let token = state.signer().csrf_token(&cookie_value);
    let (mut parts, mut body) = request.into_parts();
    if is_state_changing(&parts.method) {
        let public_url = state.settings().account_security.public_url.as_deref();
        let expected = expected_origin(&parts.headers, &client, public_url);
        let verdict = match check_origin(&parts.headers, expected.as_deref()) {
            Err(refusal) => Err(refusal),
            Ok(()) => {
                let presented = if is_urlencoded_form(&parts.headers) {
                    match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
                        Ok(bytes) => {
                            let found = token_in(&bytes);
                            body = Body::from(bytes);
                            Ok(found)
                        }
                        Err(_) => {
                            body = Body::empty();
                            Err(CsrfRefusal::FormTooLarge)
                        }
                    }
                } else {
                    Ok(parts
                        .uri
                        .query()
                        .and_then(|query| token_in(query.as_bytes())))
                };
                presented.and_then(|presented| match (&existing_cookie, presented) {
                    (Some(cookie), Some(presented))
                        if state.signer().verify_csrf_token(cookie, &presented) =>
                    {
                        Ok(())
                    }
                    _ => Err(CsrfRefusal::BadToken),
                })
            }
        };
        if let Err(refusal) = verdict {
            tracing::warn!(path = %parts.uri.path(), reason = %refusal, "form refused by csrf protection");
            let status = if refusal == CsrfRefusal::FormTooLarge {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::FORBIDDEN
            };
            let message =
                format!("This form was refused: {refusal}. Reload the page and submit it again.");
            let response = super::ui::error_page(status, &message);
            return with_cookie(
                response,
                existing_cookie.is_none(),
                cookie_name,
                &cookie_value,
                &client,
            );
        }
    }
    parts.extensions.insert(CsrfToken(token));
    let response = next.run(Request::from_parts(parts, body)).await;
    with_cookie(
        response,
        existing_cookie.is_none(),
        cookie_name,
        &cookie_value,
        &client,
    )
}

fn with_cookie(
    mut response: Response,
    needed: bool,
    name: &str,
    value: &str,
    client: &ClientContext,
) -> Response {
    if needed {
        if let Ok(header_value) =
            HeaderValue::from_str(&set_cookie(name, value, None, client.https))
        {
            response
                .headers_mut()
                .append(header::SET_COOKIE, header_value);
        }
    }
    response.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), value.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_expected_origin_comes_from_the_public_url_or_the_host() {
        let plain = ClientContext::default();
        let request = headers(&[(header::HOST, "Steno.Test:8080")]);
        assert_eq!(
            expected_origin(&request, &plain, None).as_deref(),
            Some("http://steno.test:8080")
        );
        let https = ClientContext {
            https: true,
            ..ClientContext::default()
        };
        assert_eq!(
            expected_origin(&request, &https, None).as_deref(),
            Some("https://steno.test:8080")
        );
        assert_eq!(
            expected_origin(&request, &plain, Some("https://steno.example.com")).as_deref(),
            Some("https://steno.example.com")
        );
        assert_eq!(expected_origin(&HeaderMap::new(), &plain, None), None);
    }

    #[test]
    fn origin_then_referer_must_match() {
        let expected = Some("http://steno.test");
        assert_eq!(
            check_origin(&headers(&[(header::ORIGIN, "http://steno.test")]), expected),
            Ok(())
        );
        assert_eq!(
            check_origin(
                &headers(&[(header::REFERER, "http://steno.test/login?x=1")]),
                expected
            ),
            Ok(())
        );
        assert_eq!(
            check_origin(
                &headers(&[
                    (header::ORIGIN, "https://evil.example"),
                    (header::REFERER, "http://steno.test/login")
                ]),
                expected
            ),
            Err(CsrfRefusal::ForeignOrigin("https://evil.example".into()))
        );
        assert_eq!(
            check_origin(&headers(&[(header::ORIGIN, "null")]), expected),
            Err(CsrfRefusal::ForeignOrigin("null".into()))
        );
        assert_eq!(
            check_origin(&HeaderMap::new(), expected),
            Err(CsrfRefusal::UnknownOrigin)
        );
        assert_eq!(
            check_origin(
                &headers(&[(header::ORIGIN, "http://steno.test.evil.example")]),
                expected
            ),
            Err(CsrfRefusal::ForeignOrigin(
                "http://steno.test.evil.example".into()
            ))
        );
    }

    #[test]
    fn the_token_is_found_in_a_form_body() {
        assert_eq!(
            token_in(b"email=a%40b.test&csrf_token=abc-_1&password=x").as_deref(),
            Some("abc-_1")
        );
        assert_eq!(token_in(b"email=a"), None);
    }
}
