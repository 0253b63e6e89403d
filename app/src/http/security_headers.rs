//! Security headers on every response: a Content Security Policy that allows only Steno's own
//! pages (no scripts at all, inline styles, images and form targets from Steno itself, no framing),
//! `X-Frame-Options`, `X-Content-Type-Options`, `Referrer-Policy`, and HSTS over HTTPS.

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::client_identity::ClientContext;

/// The policy: the UI is server-rendered HTML with one inline stylesheet and no script.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// HSTS for a year once a browser has reached Steno over HTTPS.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Middleware: adds the headers unless a handler set them already.
pub async fn add_security_headers(request: Request, next: Next) -> Response {
    let https = request
        .extensions()
        .get::<ClientContext>()
        .is_some_and(|client| client.https);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    if https {
        set(header::STRICT_TRANSPORT_SECURITY, STRICT_TRANSPORT_SECURITY);
    }
    response
}
