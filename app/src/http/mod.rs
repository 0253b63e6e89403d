//! The HTTP surface: `router(state)` builds one axum `Router` (JSON API, web UI, health, metrics)
//! that either host serves: `axum::serve` for `steno serve`, `lambda_http` under AWS Lambda (where
//! `router_with_lambda_metrics` adds one CloudWatch EMF metrics line per request). Middleware,
//! outside in: observation, fault injection, client identification, security headers; the web
//! UI's routes add CSRF protection.

mod api;
mod chaos;
mod client;
mod cookies;
mod csrf;
mod extractors;
mod health;
mod observe;
mod security_headers;
mod ui;
mod upload;

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::error::AppError;
use crate::lambda_metrics::LambdaMetrics;
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
        .merge(ui::routes(&state))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(security_headers::add_security_headers))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            client::identify_client,
        ))
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

/// The router Steno runs under AWS Lambda: [`router`] wrapped in a layer that emits every
/// request's CloudWatch EMF line through `lambda_metrics` (see [`crate::lambda_metrics`]).
pub fn router_with_lambda_metrics(state: AppState, lambda_metrics: LambdaMetrics) -> Router {
    router(state).layer(middleware::from_fn_with_state(
        lambda_metrics,
        observe::emit_lambda_metrics,
    ))
}

/// Serves the router on a bound listener until `shutdown` completes, then drains open requests.
/// Each request knows its TCP peer (the client address when no trusted proxy is in front).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::METRICS_CONTENT_TYPE,
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
        let mut body = json!({
            "error": {
                "code": self.code(),
                "message": self.public_message(),
            }
        });
        if let AppError::LimitExceeded(hit) = &self {
            body["error"]["limit"] = json!({
                "name": hit.limit.name(),
                "value": hit.value,
                "variable": hit.limit.variable(),
            });
        }
        let mut response = (self.status(), Json(body)).into_response();
        add_retry_after(&mut response, &self);
        response
    }
}

/// Adds `Retry-After` to a throttled answer.
pub(crate) fn add_retry_after(response: &mut Response, error: &AppError) {
    if let Some(seconds) = error.retry_after_secs() {
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(seconds),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::http::Request;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::config::Settings;
    use crate::lambda_metrics::LambdaFunction;

    /// A Lambda router on a fresh SQLite app whose EMF lines land in the returned buffer.
    async fn lambda_app(
        data_dir: &std::path::Path,
        adjust: impl FnOnce(&mut Settings),
    ) -> (Router, Arc<Mutex<Vec<String>>>) {
        let mut settings = Settings::for_data_dir(data_dir);
        adjust(&mut settings);
        let state = AppState::start(settings).await.expect("steno starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let captured = lines.clone();
        let lambda_metrics = LambdaMetrics::with_sink(
            LambdaFunction {
                name: "steno".to_string(),
                version: "7".to_string(),
            },
            Arc::new(move |line: &str| captured.lock().unwrap().push(line.to_string())),
        );
        (router_with_lambda_metrics(state, lambda_metrics), lines)
    }

    async fn get(router: &Router, path: &str) -> StatusCode {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        router.clone().oneshot(request).await.unwrap().status()
    }

    fn take_record(lines: &Mutex<Vec<String>>) -> Value {
        let mut lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1, "one EMF line per request: {lines:?}");
        let line = lines.remove(0);
        assert!(!line.contains('\n'));
        serde_json::from_str(&line).expect("an EMF line is JSON")
    }

    #[tokio::test]
    async fn every_request_emits_one_emf_line_for_its_version() {
        let data_dir = tempfile::tempdir().unwrap();
        let (router, lines) = lambda_app(data_dir.path(), |_| {}).await;
        let before_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;

        assert_eq!(get(&router, "/v1/health").await, StatusCode::OK);
        let record = take_record(&lines);
        assert_eq!(record["FunctionName"], "steno");
        assert_eq!(record["ExecutedVersion"], "7");
        assert_eq!(record["Requests"], 1);
        assert_eq!(record["ServerErrors"], 0);
        assert!(record["LatencyMs"].as_f64().unwrap() >= 0.0);
        assert!(record["_aws"]["Timestamp"].as_u64().unwrap() >= before_ms);
        assert_eq!(record["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Steno");

        assert_eq!(get(&router, "/no/such/page").await, StatusCode::NOT_FOUND);
        let record = take_record(&lines);
        assert_eq!(record["ServerErrors"], 0, "a 4xx is not a server error");
    }

    #[tokio::test]
    async fn server_errors_and_slow_requests_are_counted() {
        let data_dir = tempfile::tempdir().unwrap();
        let (router, lines) = lambda_app(data_dir.path(), |settings| {
            settings.chaos.error_rate = 1.0;
            settings.chaos.added_latency = std::time::Duration::from_millis(30);
        })
        .await;
        assert_eq!(
            get(&router, "/v1/letters").await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        let record = take_record(&lines);
        assert_eq!(record["ServerErrors"], 1);
        assert!(record["LatencyMs"].as_f64().unwrap() >= 30.0);
        assert!(record.get("LatencyUpTo5Ms").is_none());
        assert!(record.get("LatencyUpTo25Ms").is_none());
    }
}
