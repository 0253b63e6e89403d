//! Request extractors: the API's bearer-token user, the web UI's cookie user (with the page's
//! CSRF token), and a JSON body extractor whose rejections are clear JSON errors naming the
//! problem.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

use super::cookies::{read_cookie, session_cookie_name};
use super::csrf::CsrfToken;
use crate::accounts;
use crate::client_identity::ClientContext;
use crate::error::AppError;
use crate::service::CurrentUser;
use crate::state::AppState;

/// The caller of an API request, authenticated by `Authorization: Bearer <token>`.
pub struct ApiUser(pub CurrentUser);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header_value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| {
                AppError::Unauthorized(
                    "missing Authorization header; send `Authorization: Bearer <token>` with a token from POST /v1/auth/login".into(),
                )
            })?
            .to_str()
            .map_err(|_| AppError::Unauthorized("the Authorization header is not valid text".into()))?;
        let token = header_value
            .strip_prefix("Bearer ")
            .or_else(|| header_value.strip_prefix("bearer "))
            .ok_or_else(|| {
                AppError::Unauthorized("the Authorization header must use the Bearer scheme".into())
            })?;
        let user = accounts::authenticate(state, token.trim()).await?;
        record_caller(&user);
        Ok(ApiUser(user))
    }
}

/// The caller of a web UI request, authenticated by the session cookie, with the CSRF token the
/// page's forms carry; redirects to the login page when there is no session or it ended
/// (expired, logged out, or revoked by a password change).
pub struct UiUser(pub CurrentUser, pub CsrfToken);

impl FromRequestParts<AppState> for UiUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = session_token(parts) else {
            return Err(Redirect::to("/login").into_response());
        };
        let csrf = parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .unwrap_or_default();
        match accounts::authenticate(state, &token).await {
            Ok(user) => {
                record_caller(&user);
                Ok(UiUser(user, csrf))
            }
            Err(_) => Err(Redirect::to("/login?expired=1").into_response()),
        }
    }
}

/// The access token in the request's session cookie, if any.
pub fn session_token(parts: &Parts) -> Option<String> {
    let https = parts
        .extensions
        .get::<ClientContext>()
        .is_some_and(|client| client.https);
    read_cookie(&parts.headers, session_cookie_name(https))
}

fn record_caller(user: &CurrentUser) {
    let span = tracing::Span::current();
    span.record("user_id", user.user.id.as_str());
    span.record("firm_id", user.user.firm_id.as_str());
}

/// A JSON body; a malformed body, a missing or unknown field, or a wrong content type is a 4xx
/// whose message names the problem (and the field, line and column when serde knows them).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection_error(rejection)),
        }
    }
}

fn json_rejection_error(rejection: JsonRejection) -> AppError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => AppError::UnsupportedMediaType(
            "send the body as JSON with `Content-Type: application/json`".into(),
        ),
        JsonRejection::JsonSyntaxError(error) => {
            AppError::BadRequest(format!("the body is not valid JSON: {}", error.body_text()))
        }
        JsonRejection::JsonDataError(error) => AppError::Unprocessable(format!(
            "the JSON body does not match what this endpoint expects: {}",
            error.body_text()
        )),
        JsonRejection::BytesRejection(error) => {
            if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge("the request body is too large".into())
            } else {
                AppError::BadRequest(format!(
                    "could not read the request body: {}",
                    error.body_text()
                ))
            }
        }
        other => AppError::BadRequest(other.body_text()),
    }
}
