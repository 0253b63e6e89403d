//! opsd's HTTP API (JSON), used by the CLI, CI and the dashboard: `router(state) -> Router`.
//! Every route but `/v1/health` and `/metrics` needs a bearer token; mutating routes need the
//! operator role and are audited by the daemon (who, what, when, why).

mod caller;
mod events;
pub mod gateway;
mod reports;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

pub use caller::{cookie, same_origin, Caller, CSRF_HEADER, SESSION_COOKIE};

use crate::control::{ControlError, Daemon};
use crate::core::rollout::OperatorCommand;
use crate::dashboard::feed::OverviewFeed;
use crate::dashboard::sessions::Sessions;

/// What the API and dashboard handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub daemon: Arc<Daemon>,
    /// The dashboard's logged-in browsers.
    pub sessions: Arc<Sessions>,
    /// The overview as the dashboard shows it, refreshed by one task for every viewer.
    pub feed: OverviewFeed,
}

/// An error answer: status plus `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store",
            error.to_string(),
        )
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> ApiError {
        let message = error.to_string();
        match error {
            ControlError::UnknownService(..) | ControlError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            ControlError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            ControlError::GateClosed(_) => {
                ApiError::new(StatusCode::CONFLICT, "gate_closed", message)
            }
            ControlError::Invalid(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            }
            ControlError::Store(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", message)
            }
            ControlError::Platform(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "platform", message)
            }
        }
    }
}

/// A JSON body whose problems become 4xx answers naming them.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send JSON with `Content-Type: application/json`",
            )),
            Err(JsonRejection::JsonSyntaxError(error)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body is not valid JSON: {}", error.body_text()),
            )),
            Err(rejection) => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                rejection.body_text(),
            )),
        }
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/v1/health",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status_all))
        .route("/v1/services/{service}", get(status_one))
        .route("/v1/services/{service}/history", get(history))
        .route("/v1/services/{service}/deploy", post(deploy))
        .route("/v1/services/{service}/rollback", post(rollback))
        .route("/v1/services/{service}/{command}", post(command))
        .route("/v1/databases/{database}/restore", post(restore))
        .route("/v1/runbook-runs", post(record_runbook_run))
        .route("/v1/rollouts/{id}", get(rollout))
        .route("/v1/rollouts/{id}/traffic", get(reports::rollout_traffic))
        .route("/v1/drills", get(reports::drills))
        .route("/v1/costs", get(reports::costs))
        .route("/v1/alarms/history", get(reports::alarm_history))
        .route("/v1/audit", get(audit))
        .route("/v1/timeline", get(timeline))
        .route("/v1/freezes", get(freezes))
        .route("/v1/alarms", get(alarms))
        .route("/v1/freeze", post(freeze))
        .route("/v1/unfreeze", post(unfreeze))
        .route("/v1/maintenance", get(maintenance).post(start_maintenance))
        .route("/v1/maintenance/stop", post(stop_maintenance))
        .route("/status.json", get(status_document))
        .route("/v1/session", get(session))
        .route("/v1/overview", get(overview))
        .route("/v1/events", get(events::overview_events))
        .merge(crate::dashboard::router())
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route; see `opsd --help`",
            )
        })
        .with_state(state)
}

/// Who the caller is, and for a dashboard session its CSRF token and expiry.
async fn session(caller: Caller) -> Response {
    Json(json!({
        "name": caller.actor.name,
        "role": caller.role.as_str(),
        "csrf_token": caller.session_csrf,
        "expires_at": caller.session_expires_at_ms.map(crate::control::time_of),
    }))
    .into_response()
}

/// The dashboard's overview document: the live feed's copy while dashboards are open,
/// otherwise computed for this request.
async fn overview(State(state): State<ApiState>, _caller: Caller) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.feed.current().await.to_string(),
    )
        .into_response()
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(header::CONTENT_TYPE, crate::control::METRICS_CONTENT_TYPE)],
        state.daemon.metrics_text().await,
    )
        .into_response()
}

async fn status_all(State(state): State<ApiState>, _caller: Caller) -> Result<Response, ApiError> {
    let statuses = state.daemon.status(None).await?;
    let leader = state.daemon.leader().await?;
    Ok(Json(json!({ "services": statuses, "leader": leader })).into_response())
}

async fn status_one(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(service): Path<String>,
) -> Result<Response, ApiError> {
    let mut statuses = state.daemon.status(Some(&service)).await?;
    let status = statuses.pop().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("unknown service {service}"),
        )
    })?;
    Ok(Json(json!({ "service": status })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    limit: Option<u32>,
}

async fn history(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(service): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let rollouts = state
        .daemon
        .history(&service, query.limit.unwrap_or(20).min(500))
        .await?;
    Ok(Json(json!({ "rollouts": rollouts })).into_response())
}

async fn deploy(
    State(state): State<ApiState>,
    caller: Caller,
    Path(service): Path<String>,
    Body(request): Body<crate::control::DeployRequest>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let view = state
        .daemon
        .deploy(&service, request, &caller.actor)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "rollout": view }))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CommandRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// An optional JSON body: empty means the defaults.
fn optional_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("the JSON body is not valid here: {error}"),
        )
    })
}

async fn rollback(
    State(state): State<ApiState>,
    caller: Caller,
    Path(service): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let reason = optional_body::<CommandRequest>(&body)?.reason;
    let view = state
        .daemon
        .rollback(&service, &caller.actor, reason)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "rollout": view }))).into_response())
}

/// `opsd restore`: a preview (`dry_run`) or the restore itself, which answers once the
/// releases serve again (operators only; audited).
async fn restore(
    State(state): State<ApiState>,
    caller: Caller,
    Path(database): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let request = optional_body::<crate::control::RestoreRequest>(&body)?;
    let answer = state
        .daemon
        .restore(&database, request, &caller.actor)
        .await?;
    Ok(Json(answer).into_response())
}

/// `POST /v1/runbook-runs`: the record of a runbook run, kept in the audit log and on the
/// timeline (operators only: a run changes things).
async fn record_runbook_run(
    State(state): State<ApiState>,
    caller: Caller,
    Body(run): Body<crate::core::runbook::run::RunbookRun>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let summary = state.daemon.record_runbook_run(run, &caller.actor).await?;
    Ok((StatusCode::CREATED, Json(json!({ "recorded": summary }))).into_response())
}

async fn command(
    State(state): State<ApiState>,
    caller: Caller,
    Path((service, command)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if command == "approve" {
        caller.require_operator()?;
        let reason = optional_body::<CommandRequest>(&body)?.reason;
        let view = state
            .daemon
            .approve(&service, &caller.actor, reason)
            .await?;
        return Ok(Json(json!({ "rollout": view })).into_response());
    }
    let command = match command.as_str() {
        "promote" => OperatorCommand::Promote,
        "pause" => OperatorCommand::Pause,
        "resume" => OperatorCommand::Resume,
        "abort" => OperatorCommand::Abort,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                "unknown command {other:?}; use promote, pause, resume, abort, approve, rollback or deploy"
            ),
            ))
        }
    };
    caller.require_operator()?;
    let reason = optional_body::<CommandRequest>(&body)?.reason;
    let view = state
        .daemon
        .command(&service, command, &caller.actor, reason)
        .await?;
    Ok(Json(json!({ "rollout": view })).into_response())
}

/// The body of `POST /v1/freeze` and `POST /v1/unfreeze`: a service (every service when
/// missing) and why.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FreezeRequest {
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

async fn freeze(
    State(state): State<ApiState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let request = optional_body::<FreezeRequest>(&body)?;
    let freeze = state
        .daemon
        .freeze(request.service.as_deref(), request.reason, &caller.actor)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "freeze": freeze }))).into_response())
}

async fn unfreeze(
    State(state): State<ApiState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let request = optional_body::<FreezeRequest>(&body)?;
    let lifted = state
        .daemon
        .unfreeze(request.service.as_deref(), request.reason, &caller.actor)
        .await?;
    Ok(Json(json!({ "lifted": lifted })).into_response())
}

/// The public status document Steno's maintenance banner reads (R-WINDOW-5): no token, read
/// only, the banner's text and times and nothing else.
async fn status_document(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let document = state.daemon.status_document().await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(json!(document))).into_response())
}

async fn maintenance(State(state): State<ApiState>, _caller: Caller) -> Result<Response, ApiError> {
    let status = state.daemon.maintenance_status().await?;
    Ok(Json(json!({ "maintenance": status })).into_response())
}

async fn start_maintenance(
    State(state): State<ApiState>,
    caller: Caller,
    Body(request): Body<crate::control::MaintenanceRequest>,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let window = state
        .daemon
        .start_maintenance(request, &caller.actor)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "maintenance": window }))).into_response())
}

async fn stop_maintenance(
    State(state): State<ApiState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let reason = optional_body::<CommandRequest>(&body)?.reason;
    let stopped = state.daemon.stop_maintenance(reason, &caller.actor).await?;
    Ok(Json(json!({ "stopped": stopped })).into_response())
}

async fn freezes(State(state): State<ApiState>, _caller: Caller) -> Result<Response, ApiError> {
    let freezes = state.daemon.freezes().await?;
    Ok(Json(json!({ "freezes": freezes })).into_response())
}

#[derive(Deserialize)]
struct AlarmsQuery {
    service: Option<String>,
}

/// Every alarm rule's production state (viewers may read it).
async fn alarms(
    State(state): State<ApiState>,
    _caller: Caller,
    Query(query): Query<AlarmsQuery>,
) -> Result<Response, ApiError> {
    let alarms = state
        .daemon
        .alarm_statuses(query.service.as_deref())
        .await?;
    Ok(Json(json!({ "alarms": alarms })).into_response())
}

async fn rollout(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.daemon.rollout(&id).await?;
    Ok(Json(json!({ "rollout": view })).into_response())
}

/// `GET /v1/timeline`: the query a dashboard's timeline filter sends.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineQuery {
    service: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    /// One rollout's entries only.
    rollout: Option<String>,
}

/// The most timeline entries one request returns.
const TIMELINE_LIMIT: u32 = 1_000;

/// A time of the timeline query: RFC 3339, or an error naming the parameter.
fn query_time(
    name: &str,
    value: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    value
        .filter(|text| !text.is_empty())
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&chrono::Utc))
                .map_err(|error| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid",
                        format!(
                            "`{name}` must be an RFC 3339 time like 2026-12-04T02:00:00Z: {error}"
                        ),
                    )
                })
        })
        .transpose()
}

/// The merged timeline, newest first, narrowed by service, kind, time or one rollout. Viewers
/// may read it; audit entries are merged in for operators only, as the audit page is theirs.
async fn timeline(
    State(state): State<ApiState>,
    caller: Caller,
    Query(query): Query<TimelineQuery>,
) -> Result<Response, ApiError> {
    let non_empty = |value: Option<String>| value.filter(|text| !text.is_empty());
    let service = non_empty(query.service);
    let database = service
        .as_ref()
        .and_then(|name| state.daemon.config().services.get(name))
        .and_then(|config| config.database.clone());
    let filter = crate::store::TimelineFilter {
        since: query_time("since", query.since.as_deref())?,
        until: query_time("until", query.until.as_deref())?,
        service,
        kind: non_empty(query.kind),
        limit: query.limit.unwrap_or(200).clamp(1, TIMELINE_LIMIT),
        database,
        include_audit: caller.require_operator().is_ok(),
        rollout_id: non_empty(query.rollout),
    };
    let entries = state.daemon.store().timeline(&filter).await?;
    Ok(Json(json!({ "entries": entries })).into_response())
}

async fn audit(State(state): State<ApiState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require_operator()?;
    let entries = state.daemon.store().list_audit(200).await?;
    Ok(Json(json!({ "audit": entries })).into_response())
}
