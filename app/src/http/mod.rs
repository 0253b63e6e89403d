//! The HTTP surface: `router(state)` builds one axum `Router` (JSON API, web UI, health, metrics)
//! that either host serves: `axum::serve` for `steno serve`, `lambda_http` under AWS Lambda.

mod api;
mod chaos;
mod extractors;
mod health;
mod observe;
mod ui;
mod upload;

use std::future::Future;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::AppError;
use crate::state::AppState;

/// Multipart framing allowed on top of the upload limit.
const MULTIPART_OVERHEAD_BYTES: usize = 64 * 1024;

/// Builds the whole application router. No I/O happens here; tests call it with `oneshot`.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings().max_upload_bytes + MULTIPART_OVERHEAD_BYTES;
    Router::new()
        .route("/v1/health", get(health::health))
        .route("/metrics", get(metrics))
        .merge(api::routes())
        .merge(ui::routes())
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            chaos::inject_faults,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe_request,
        ))
        .with_state(state)
}

/// Serves the router on a bound listener until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(&state.settings().version),
    )
        .into_response()
}

async fn fallback(uri: axum::http::Uri) -> AppError {
    AppError::NotFound(format!("no route for {}", uri.path()))
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status() == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "request failed");
        }
        let body = json!({
            "error": {
                "code": self.code(),
                "message": self.public_message(),
            }
        });
        (self.status(), Json(body)).into_response()
    }
}
