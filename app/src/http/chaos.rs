//! Fault injection for canary drills (off by default): a fraction of non-health requests answered
//! 500, added latency, padded response bodies (a release that costs more bytes per request), a
//! failing health check, or broken letter exports, as set by the `STENO_CHAOS_*` variables, from
//! the start or from `STENO_CHAOS_AFTER_SECS` on.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use serde_json::json;

use crate::state::AppState;

/// Paths that report on Steno rather than serve users; chaos never touches them
/// (the health check has its own switch, `STENO_CHAOS_FAIL_HEALTH`).
fn is_observability_path(path: &str) -> bool {
    path == "/v1/health" || path == "/metrics"
}

/// A letter export: `/v1/letters/{id}/export` (API) or `/app/letters/{id}/export/{format}` (UI).
fn is_export_path(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "v1", "letters", id, "export"] => !id.is_empty(),
        ["", "app", "letters", id, "export", format] => !id.is_empty() && !format.is_empty(),
        _ => false,
    }
}

/// The 500 every injected fault answers, naming the switch that caused it.
fn injected_fault(variable: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({
            "error": {
                "code": "injected_fault",
                "message": format!("this error was injected by {variable}"),
            }
        })),
    )
        .into_response()
}

pub async fn inject_faults(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let chaos = &state.settings().chaos;
    if !chaos.is_active() || !chaos.is_engaged() || is_observability_path(request.uri().path()) {
        return next.run(request).await;
    }
    if !chaos.added_latency.is_zero() {
        tokio::time::sleep(chaos.added_latency).await;
    }
    if chaos.break_export && is_export_path(request.uri().path()) {
        state.metrics().chaos_error_injected();
        return injected_fault("STENO_CHAOS_BREAK_EXPORT");
    }
    if chaos.error_rate > 0.0 && rand::thread_rng().gen_bool(chaos.error_rate) {
        state.metrics().chaos_error_injected();
        return injected_fault("STENO_CHAOS_ERROR_RATE");
    }
    let response = next.run(request).await;
    if chaos.padding_bytes == 0 {
        return response;
    }
    pad_body(response, chaos.padding_bytes).await
}

/// Appends `padding` spaces to the body (still valid JSON or HTML); the length header is dropped
/// so the server computes it again.
async fn pad_body(response: Response, padding: usize) -> Response {
    let (mut parts, body) = response.into_parts();
    let mut bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes.to_vec(),
        Err(error) => {
            tracing::warn!(error = %error, "cannot read a response body to pad it");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "response body unreadable",
            )
                .into_response();
        }
    };
    bytes.resize(bytes.len() + padding, b' ');
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_paths_of_both_surfaces_are_recognised() {
        assert!(is_export_path("/v1/letters/abc/export"));
        assert!(is_export_path("/app/letters/abc/export/pdf"));
        assert!(is_export_path("/app/letters/abc/export/docx"));
        assert!(!is_export_path("/v1/letters/abc"));
        assert!(!is_export_path("/v1/letters//export"));
        assert!(!is_export_path("/v1/letters/abc/revisions"));
        assert!(!is_export_path("/app/letters/abc"));
        assert!(!is_export_path("/v1/health"));
        assert!(!is_export_path("/v1/letters/abc/export/extra"));
    }
}
