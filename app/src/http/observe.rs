//! Per-request observation: a request id (taken from `x-request-id` or generated), a tracing span
//! carrying it (plus the user and firm once known), one log line per request, the metrics
//! (Prometheus always; under AWS Lambda also one CloudWatch EMF line per request), and the AI
//! tokens the request spent as response headers (`request_usage`).

use std::time::{Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::lambda_metrics::LambdaMetrics;
use crate::state::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub async fn observe_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
        user_id = tracing::field::Empty,
        firm_id = tracing::field::Empty,
    );
    let (mut response, ai_tokens) =
        crate::request_usage::metered(next.run(request).instrument(span.clone())).await;
    crate::request_usage::add_token_headers(response.headers_mut(), ai_tokens);
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics()
        .record_request(&route, &method, status, elapsed);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    span.in_scope(|| {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        if status >= 500 {
            tracing::warn!(status, duration_ms, "request finished");
        } else if route != "/v1/health" && route != "/metrics" {
            tracing::info!(status, duration_ms, "request finished");
        } else {
            tracing::debug!(status, duration_ms, "request finished");
        }
    });
    response
}

/// Under AWS Lambda only: emits each request's CloudWatch EMF line (see [`crate::lambda_metrics`]).
/// The latency runs from the request entering the router to its response head being ready.
pub async fn emit_lambda_metrics(
    State(lambda_metrics): State<LambdaMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let response = next.run(request).await;
    lambda_metrics.record_request(
        response.status().as_u16(),
        started.elapsed(),
        SystemTime::now(),
    );
    response
}
