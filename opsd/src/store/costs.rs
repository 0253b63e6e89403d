//! Cost checks: the "notify on change only" state (the core's `CostState`, as JSON, one row) and
//! every check run, so the daemon's schedule and the deploy gate read the newest one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{parse_json, parse_time, require_json, time_text, Store, StoreError};

/// A cost check as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostCheckRecord {
    pub id: i64,
    pub checked_at: DateTime<Utc>,
    /// The day checked (`YYYY-MM-DD`).
    pub today: String,
    /// The worst budget state: `ok`, `warning` or `critical`.
    pub state: String,
    /// Whether a budget's forecast threshold was crossed (what the budget gate reads).
    pub forecast_over_budget: bool,
    pub report: serde_json::Value,
}

impl Store {
    /// The remembered cost state as JSON text, `None` before the first check.
    pub async fn cost_state_json(&self) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT state_json FROM cost_state WHERE id = 1")
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<String, _>("state_json")?),
            None => None,
        })
    }

    /// Replaces the remembered cost state.
    pub async fn save_cost_state_json(&self, state_json: &str) -> Result<(), StoreError> {
        require_json(state_json, "cost state")?;
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO cost_state (id, state_json, updated_at) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET state_json = $1, updated_at = $2",
        )
        .bind(state_json)
        .bind(time_text(Utc::now()))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Records a cost check; returns its id.
    pub async fn insert_cost_check(
        &self,
        checked_at: DateTime<Utc>,
        today: &str,
        state: &str,
        forecast_over_budget: bool,
        report_json: &str,
    ) -> Result<i64, StoreError> {
        require_json(report_json, "cost report")?;
        let mut transaction = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO cost_checks (checked_at, today, state, forecast_over_budget, report_json) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(time_text(checked_at))
        .bind(today)
        .bind(state)
        .bind(i64::from(forecast_over_budget))
        .bind(report_json)
        .fetch_one(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(id)
    }

    /// The newest cost check, if any.
    pub async fn latest_cost_check(&self) -> Result<Option<CostCheckRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, checked_at, today, state, forecast_over_budget, report_json \
             FROM cost_checks ORDER BY checked_at DESC, id DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(CostCheckRecord {
            id: row.try_get("id")?,
            checked_at: parse_time(&row.try_get::<String, _>("checked_at")?, "cost check time")?,
            today: row.try_get("today")?,
            state: row.try_get("state")?,
            forecast_over_budget: row.try_get::<i64, _>("forecast_over_budget")? != 0,
            report: parse_json(&row.try_get::<String, _>("report_json")?, "cost report")?,
        }))
    }
}
