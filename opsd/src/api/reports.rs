//! What the dashboard's pages read besides the overview, for viewers and operators alike: a
//! rollout's per-second traffic as chart points, the drill history, the latest cost check, and
//! an alarm rule's history. Every list is bounded.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ApiState, Caller};
use crate::core::duration::format_duration;
use crate::core::traffic_chart::traffic_chart;
use crate::store::ALARM_TRANSITIONS_KEPT;

/// The most drills one request returns.
const DRILLS_LIMIT: u32 = 200;

/// `GET /v1/rollouts/{id}/traffic`: canary against baseline, from the rollout's creation to its
/// end (or now), as chart points; `samples_expired` when the rollout finished longer ago than
/// `sample_retention` and its seconds were (or are about to be) deleted.
pub(super) async fn rollout_traffic(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = state.daemon.store();
    let rollout = store.get_rollout(&id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no rollout {id:?}; `opsd history SERVICE` lists them"),
        )
    })?;
    let samples = store.rollout_samples(&id).await?;
    let from = rollout.created_at.timestamp();
    // A running rollout is charted up to the second before its newest recorded one: that one and
    // those after it are still being counted, and would show as a drop.
    let newest_recorded = samples
        .canary
        .iter()
        .chain(&samples.baseline)
        .map(|entry| entry.second)
        .max();
    let to = match (rollout.finished_at, newest_recorded) {
        (Some(finished), _) => finished.timestamp() + 1,
        (None, Some(newest)) => newest,
        (None, None) => state.daemon.now_ms().div_euclid(1000),
    };
    let chart = traffic_chart(&samples.canary, &samples.baseline, from, to);
    let retention = state.daemon.config().sample_retention;
    let samples_expired = rollout.finished_at.is_some_and(|finished| {
        let age_ms = state.daemon.now_ms() - finished.timestamp_millis();
        age_ms > i64::try_from(retention.as_millis()).unwrap_or(i64::MAX)
    });
    Ok(Json(json!({
        "samples_expired": samples_expired,
        "sample_retention": format_duration(retention),
        "rollout_id": rollout.id,
        "stable_version": rollout.stable_version,
        "canary_version": rollout.canary_version,
        "chart": chart,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DrillsQuery {
    database: Option<String>,
    limit: Option<u32>,
}

/// `GET /v1/drills`: drills newest first (with their reports: phases, RTO and RPO against the
/// targets, verification items), of one configured database or all.
pub(super) async fn drills(
    State(state): State<ApiState>,
    _caller: Caller,
    Query(query): Query<DrillsQuery>,
) -> Result<Response, ApiError> {
    let database = query.database.filter(|name| !name.is_empty());
    if let Some(name) = &database {
        if !state.daemon.config().databases.contains_key(name) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no database {name:?} in opsd.yaml"),
            ));
        }
    }
    let limit = query.limit.unwrap_or(50).clamp(1, DRILLS_LIMIT);
    let drills = state
        .daemon
        .store()
        .list_drills(database.as_deref(), limit)
        .await?;
    let databases: Vec<&String> = state.daemon.config().databases.keys().collect();
    Ok(Json(json!({ "databases": databases, "drills": drills })).into_response())
}

/// `GET /v1/costs`: the latest cost check (month to date by service, the forecast with its
/// interval, every budget, the anomalies with the rollouts before them), `null` before the first.
pub(super) async fn costs(
    State(state): State<ApiState>,
    _caller: Caller,
) -> Result<Response, ApiError> {
    let latest = state.daemon.store().latest_cost_check().await?;
    Ok(Json(json!({ "latest": latest })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlarmHistoryQuery {
    service: String,
    rule: String,
}

/// `GET /v1/alarms/history?service=S&rule=R`: the rule's recent state changes, newest first.
pub(super) async fn alarm_history(
    State(state): State<ApiState>,
    _caller: Caller,
    Query(query): Query<AlarmHistoryQuery>,
) -> Result<Response, ApiError> {
    let config = state.daemon.config();
    if !config.services.contains_key(&query.service) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no service {:?} in opsd.yaml", query.service),
        ));
    }
    if !config
        .policy
        .alarms
        .iter()
        .any(|rule| rule.name == query.rule)
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no alarm rule {:?}; `opsd alarms status` lists them",
                query.rule
            ),
        ));
    }
    let transitions = state
        .daemon
        .store()
        .alarm_transitions(&query.service, &query.rule, ALARM_TRANSITIONS_KEPT as u32)
        .await?;
    Ok(Json(json!({ "transitions": transitions })).into_response())
}
