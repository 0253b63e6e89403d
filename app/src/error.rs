//! `AppError`: every failure a request can meet, with the HTTP status and stable error code it
//! maps to. The API renders it as JSON, the web UI as a page.

use axum::http::StatusCode;

use crate::db::DbError;
use crate::drafting::DraftingError;
use crate::export::logo::LogoError;
use crate::export::ExportError;
use crate::extract::ExtractError;
use crate::extractor::ExtractorError;
use crate::limits::LimitExceeded;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    /// Throttled; the client may retry after this many seconds (sent as `Retry-After`).
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    /// A request reached one of the named limits (`crate::limits`); answered 422 with the
    /// limit's name, value and variable.
    #[error("{0}")]
    LimitExceeded(LimitExceeded),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unprocessable(_) | AppError::LimitExceeded(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Unprocessable(_) => "unprocessable",
            AppError::TooManyRequests { .. } => "too_many_requests",
            AppError::LimitExceeded(_) => "limit_exceeded",
            AppError::Upstream(_) => "upstream_error",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// The message shown to the caller; internal details are logged, not shown.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => {
                "an internal error occurred; it has been logged with this request's id".to_string()
            }
            other => other.to_string(),
        }
    }

    /// The seconds a throttled client should wait, for the `Retry-After` header.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AppError::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }

    pub fn not_found(what: &str, id: &str) -> AppError {
        AppError::NotFound(format!("{what} {id} not found"))
    }
}

impl From<DbError> for AppError {
    fn from(error: DbError) -> AppError {
        match error {
            DbError::Conflict => AppError::Conflict(error.to_string()),
            DbError::Connect { .. } => AppError::Unavailable(error.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(error: StorageError) -> AppError {
        match error {
            StorageError::NotFound { .. } => AppError::Internal(format!(
                "a stored document is missing from document storage: {error}"
            )),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<ExtractError> for AppError {
    fn from(error: ExtractError) -> AppError {
        match error {
            ExtractError::Limit(hit) => AppError::LimitExceeded(hit),
            other => AppError::Unprocessable(other.to_string()),
        }
    }
}

impl From<ExtractorError> for AppError {
    fn from(error: ExtractorError) -> AppError {
        match error {
            ExtractorError::Rejected(rejection) => match rejection.limit {
                Some(hit) => AppError::LimitExceeded(hit),
                None if rejection.unsupported_type => {
                    AppError::UnsupportedMediaType(rejection.message)
                }
                None => AppError::Unprocessable(rejection.message),
            },
            ExtractorError::Limit(hit) => AppError::LimitExceeded(hit),
            error @ ExtractorError::Crashed { .. } => AppError::Unprocessable(error.to_string()),
            error @ ExtractorError::Busy { .. } => AppError::Unavailable(error.to_string()),
            error @ ExtractorError::Unusable { .. } => AppError::Internal(error.to_string()),
        }
    }
}

impl From<LogoError> for AppError {
    fn from(error: LogoError) -> AppError {
        match error {
            LogoError::Limit(hit) => AppError::LimitExceeded(hit),
            LogoError::Image(error) => error.into(),
        }
    }
}

impl From<ExportError> for AppError {
    fn from(error: ExportError) -> AppError {
        match error {
            ExportError::InvalidLogo { .. } | ExportError::UnsupportedLogo { .. } => {
                AppError::Unprocessable(format!("the firm's logo cannot be used: {error}"))
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<DraftingError> for AppError {
    fn from(error: DraftingError) -> AppError {
        let message = error.to_string();
        match error.http_status() {
            422 => AppError::Unprocessable(message),
            502 | 504 => AppError::Upstream(message),
            _ => AppError::Internal(message),
        }
    }
}
