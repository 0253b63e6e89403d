//! `GET /v1/health`: the status of Steno and its dependencies in the schema of R-HEALTH-1
//! (docs/requirements.md), answering 503 when a dependency Steno cannot work without is down.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::AppState;

/// How long a dependency may take to answer before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn health(State(state): State<AppState>) -> Response {
    let started = Instant::now();
    let database = match tokio::time::timeout(CHECK_TIMEOUT, state.database().ping()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "health: database check failed");
            "error".to_string()
        }
        Err(_) => "timeout".to_string(),
    };
    let storage = match tokio::time::timeout(CHECK_TIMEOUT, state.storage().check()).await {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "health: storage check failed");
            "error".to_string()
        }
        Err(_) => "timeout".to_string(),
    };
    // The AI engine is optional: the offline engine always works, and a remote engine's outage
    // degrades drafting but does not make Steno unhealthy.
    let ai = "ok";
    let chaos = &state.settings().chaos;
    let chaos_failure = chaos.fail_health && chaos.is_engaged();
    let healthy = database == "ok" && storage == "ok" && !chaos_failure;
    let status = if healthy {
        "healthy"
    } else if chaos_failure {
        "unhealthy (injected by STENO_CHAOS_FAIL_HEALTH)"
    } else {
        "unhealthy"
    };
    let body = json!({
        "status": status,
        "timestamp": crate::db::now_text(),
        "version": state.settings().version,
        "services": {
            "database": database,
            "storage": storage,
            "ai": ai,
        },
        "ai_engine": state.engine().name(),
        "latency_ms": started.elapsed().as_millis() as u64,
    });
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}
