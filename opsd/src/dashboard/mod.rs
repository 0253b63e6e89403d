//! The on-call dashboard, served by `opsd up` at the API address: a login page, one page of
//! HTML, its scripts (shared pieces, one per page, the router) and a style sheet, all embedded
//! in the binary (nothing is fetched from elsewhere at run time). The page reads the same JSON
//! API the CLI uses, through the same authorisation check ([`crate::api::Caller`]), with a
//! session cookie instead of a bearer token; its live overview arrives as server-sent events
//! (`/v1/events`).
//!
//! `sessions` holds the logged-in browsers; `feed` computes the overview once for all of them,
//! only while one is open.

pub mod feed;
pub mod sessions;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use crate::api::{same_origin, ApiError, ApiState, Caller, SESSION_COOKIE};
use crate::auth::sha256_hex;

const INDEX_HTML: &str = include_str!("assets/index.html");
const LOGIN_HTML: &str = include_str!("assets/login.html");
/// The page's scripts, in the order the page loads them: shared pieces first, the router last.
const SCRIPTS: [(&str, &str); 7] = [
    ("charts.js", include_str!("assets/charts.js")),
    ("ui.js", include_str!("assets/ui.js")),
    ("overview.js", include_str!("assets/overview.js")),
    ("rollout.js", include_str!("assets/rollout.js")),
    ("timeline.js", include_str!("assets/timeline.js")),
    ("reports.js", include_str!("assets/reports.js")),
    ("app.js", include_str!("assets/app.js")),
];
const STYLE_CSS: &str = include_str!("assets/style.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");

/// What the dashboard's pages may load and do: only opsd's own scripts, styles and API.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's routes (merged into the API router).
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(index))
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/assets/{script}", get(script))
        .route(
            "/assets/style.css",
            get(|| asset(STYLE_CSS, "text/css; charset=utf-8")),
        )
        .route("/assets/icon.svg", get(|| asset(ICON_SVG, "image/svg+xml")))
}

/// Headers every dashboard response carries.
fn with_page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn asset(body: &'static str, content_type: &'static str) -> Response {
    with_page_headers(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// One of the page's scripts by its file name; any other name is not found.
async fn script(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match SCRIPTS.iter().find(|(file, _)| *file == name) {
        Some((_, body)) => asset(body, "text/javascript; charset=utf-8").await,
        None => with_page_headers(StatusCode::NOT_FOUND.into_response()),
    }
}

fn html(status: StatusCode, body: String) -> Response {
    with_page_headers(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

fn redirect(to: &'static str) -> Response {
    with_page_headers((StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response())
}

/// The page itself for a logged-in browser; the login page otherwise.
async fn index(caller: Result<Caller, ApiError>) -> Response {
    match caller {
        Ok(_) => html(StatusCode::OK, INDEX_HTML.to_string()),
        Err(_) => redirect("/login"),
    }
}

/// Text made safe to place inside HTML.
fn escape_html(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            other => other.to_string(),
        })
        .collect()
}

fn login_form(status: StatusCode, problem: Option<&str>) -> Response {
    let message = problem
        .map(|problem| {
            format!(
                "<p class=\"problem\" role=\"alert\">{}</p>",
                escape_html(problem)
            )
        })
        .unwrap_or_default();
    html(status, LOGIN_HTML.replace("<!--problem-->", &message))
}

#[derive(Deserialize)]
struct LoginQuery {
    once: Option<String>,
}

/// The login form, or a one-time login link printed by `opsd up`.
async fn login_page(State(state): State<ApiState>, Query(query): Query<LoginQuery>) -> Response {
    let Some(code) = query.once else {
        return login_form(StatusCode::OK, None);
    };
    match state.sessions.redeem(&code, state.daemon.now_ms()) {
        Some(token_hash) => start_session(&state, &token_hash, None).await,
        None => login_form(
            StatusCode::UNAUTHORIZED,
            Some("that login link was used already or has expired; log in with a token"),
        ),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<ApiState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return login_form(
            StatusCode::FORBIDDEN,
            Some("a login must come from this page, not from another site"),
        );
    }
    let Ok(Form(form)) = form else {
        return login_form(
            StatusCode::BAD_REQUEST,
            Some("paste an opsd token to log in"),
        );
    };
    let token_hash = sha256_hex(form.token.trim().as_bytes());
    start_session(&state, &token_hash, Some(&headers)).await
}

/// Logs the token with hash `token_hash` in, if it is known, and sends the browser to the page.
async fn start_session(
    state: &ApiState,
    token_hash: &str,
    headers: Option<&HeaderMap>,
) -> Response {
    match state.daemon.store().find_token(token_hash).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return login_form(
                StatusCode::UNAUTHORIZED,
                Some("that token is not known to this opsd; `opsd token create NAME --role viewer|operator` makes one"),
            )
        }
        Err(error) => {
            tracing::error!(error = %error, "cannot read tokens for a dashboard login");
            return login_form(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some("opsd cannot read its store right now; try again"),
            );
        }
    }
    let session = match state
        .sessions
        .create(token_hash, state.daemon.now_ms())
        .await
    {
        Ok(session) => session,
        Err(error) => {
            tracing::error!(error = %error, "cannot keep a dashboard session in the store");
            return login_form(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("opsd cannot record the session in its store right now; try again"),
            );
        }
    };
    let secure = headers
        .and_then(|headers| headers.get("x-forwarded-proto"))
        .is_some_and(|proto| proto.as_bytes() == b"https");
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        session.id,
        sessions::SESSION_LIFETIME_MS / 1000,
        if secure { "; Secure" } else { "" }
    );
    let mut response = redirect("/");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Ends the browser's session (the request carries its CSRF token, like every change).
async fn logout(State(state): State<ApiState>, headers: HeaderMap, _caller: Caller) -> Response {
    if let Some(id) = crate::api::cookie(&headers, SESSION_COOKIE) {
        if let Err(error) = state.sessions.end(id).await {
            tracing::error!(error = %error, "cannot end a dashboard session in the store");
            let refused = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "opsd cannot record the logout in its store right now; the session is still live, log out again",
            );
            return with_page_headers(refused.into_response());
        }
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("opsd_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    with_page_headers(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_leaves_no_markup() {
        assert_eq!(
            escape_html("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn the_pages_load_only_embedded_assets() {
        for page in [INDEX_HTML, LOGIN_HTML] {
            assert!(!page.contains("http://") && !page.contains("https://"));
            assert!(
                !page.contains("<script>"),
                "no inline scripts (the CSP forbids them)"
            );
            assert!(
                !page.contains("style=\""),
                "no inline styles (the CSP forbids them)"
            );
        }
        assert!(LOGIN_HTML.contains("<!--problem-->"));
    }

    #[test]
    fn the_page_loads_every_script_in_order() {
        let loaded: Vec<&str> = INDEX_HTML
            .lines()
            .filter_map(|line| line.strip_prefix("<script src=\"/assets/"))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        let served: Vec<&str> = SCRIPTS.iter().map(|(name, _)| *name).collect();
        assert_eq!(loaded, served);
        for (name, body) in SCRIPTS {
            assert!(body.starts_with("// "), "{name} opens with what it is");
            assert!(body.contains("'use strict';"), "{name} is strict");
        }
    }
}
