//! Alarm states in production: one row per service and rule with its state (`OK`, `ALARM` or
//! `INSUFFICIENT_DATA`), since when, the last value and whether an ALARM is announced and not yet
//! recovered; and each rule's transitions, the newest [`ALARM_TRANSITIONS_KEPT`] kept.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{parse_time, time_text, Store, StoreError};

/// Transitions kept per service and rule; older ones are deleted as new ones are written.
pub const ALARM_TRANSITIONS_KEPT: i64 = 50;

/// A rule's state as last evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmStateRecord {
    pub service: String,
    pub rule: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub since: DateTime<Utc>,
    pub value: Option<f64>,
    pub reason: String,
    /// The start of an announced ALARM whose recovery is still to be announced (ms since epoch).
    pub announced_alarm_since_ms: Option<i64>,
    pub updated_at: DateTime<Utc>,
}

/// One change of a rule's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmTransitionRecord {
    pub service: String,
    pub rule: String,
    /// `None` on the rule's first evaluation.
    pub from_state: Option<String>,
    pub to_state: String,
    pub at: DateTime<Utc>,
    pub value: Option<f64>,
    pub reason: String,
}

impl Store {
    /// Writes a rule's state, and its transition when it changed, in one transaction; prunes
    /// the rule's transitions to the newest [`ALARM_TRANSITIONS_KEPT`].
    pub async fn save_alarm_state(
        &self,
        record: &AlarmStateRecord,
        transition: Option<&AlarmTransitionRecord>,
    ) -> Result<(), StoreError> {
        self.save_alarm_states(&[(record.clone(), transition.cloned())])
            .await
    }

    /// Writes many rules' states (and transitions) in one transaction: one evaluation round of
    /// every service commits once, not once per rule. All or nothing.
    pub async fn save_alarm_states(
        &self,
        updates: &[(AlarmStateRecord, Option<AlarmTransitionRecord>)],
    ) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut transaction = self.begin_write().await?;
        for (record, transition) in updates {
            write_alarm_state(&mut transaction, record, transition.as_ref()).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The stored states, of one service or all, by service and rule.
    pub async fn alarm_states(
        &self,
        service: Option<&str>,
    ) -> Result<Vec<AlarmStateRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT service, rule, state, since, value, reason, announced_alarm_since_ms, updated_at \
             FROM alarm_states WHERE ($1 IS NULL OR service = $2) ORDER BY service, rule",
        )
        .bind(service)
        .bind(service)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(state_from_row).collect()
    }

    /// A rule's transitions, newest first, at most `limit`.
    pub async fn alarm_transitions(
        &self,
        service: &str,
        rule: &str,
        limit: u32,
    ) -> Result<Vec<AlarmTransitionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT service, rule, from_state, to_state, at, value, reason FROM alarm_transitions \
             WHERE service = $1 AND rule = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(service)
        .bind(rule)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AlarmTransitionRecord {
                    service: row.try_get("service")?,
                    rule: row.try_get("rule")?,
                    from_state: row.try_get("from_state")?,
                    to_state: row.try_get("to_state")?,
                    at: parse_time(&row.try_get::<String, _>("at")?, "alarm_transitions.at")?,
                    value: row.try_get("value")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
    }
}

/// One rule's state, and its transition with the pruning of old ones, on `connection`.
async fn write_alarm_state(
    connection: &mut sqlx::AnyConnection,
    record: &AlarmStateRecord,
    transition: Option<&AlarmTransitionRecord>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO alarm_states \
         (service, rule, state, since, value, reason, announced_alarm_since_ms, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (service, rule) DO UPDATE SET state = excluded.state, \
         since = excluded.since, value = excluded.value, reason = excluded.reason, \
         announced_alarm_since_ms = excluded.announced_alarm_since_ms, \
         updated_at = excluded.updated_at",
    )
    .bind(&record.service)
    .bind(&record.rule)
    .bind(&record.state)
    .bind(time_text(record.since))
    .bind(record.value.filter(|value| value.is_finite()))
    .bind(&record.reason)
    .bind(record.announced_alarm_since_ms)
    .bind(time_text(record.updated_at))
    .execute(&mut *connection)
    .await?;
    if let Some(transition) = transition {
        sqlx::query(
            "INSERT INTO alarm_transitions (service, rule, from_state, to_state, at, value, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&transition.service)
        .bind(&transition.rule)
        .bind(&transition.from_state)
        .bind(&transition.to_state)
        .bind(time_text(transition.at))
        .bind(transition.value.filter(|value| value.is_finite()))
        .bind(&transition.reason)
        .execute(&mut *connection)
        .await?;
        sqlx::query(
            "DELETE FROM alarm_transitions WHERE service = $1 AND rule = $2 AND id NOT IN \
             (SELECT id FROM alarm_transitions WHERE service = $3 AND rule = $4 \
              ORDER BY id DESC LIMIT $5)",
        )
        .bind(&transition.service)
        .bind(&transition.rule)
        .bind(&transition.service)
        .bind(&transition.rule)
        .bind(ALARM_TRANSITIONS_KEPT)
        .execute(&mut *connection)
        .await?;
    }
    Ok(())
}

fn state_from_row(row: &AnyRow) -> Result<AlarmStateRecord, StoreError> {
    Ok(AlarmStateRecord {
        service: row.try_get("service")?,
        rule: row.try_get("rule")?,
        state: row.try_get("state")?,
        since: parse_time(&row.try_get::<String, _>("since")?, "alarm_states.since")?,
        value: row.try_get("value")?,
        reason: row.try_get("reason")?,
        announced_alarm_since_ms: row.try_get("announced_alarm_since_ms")?,
        updated_at: parse_time(
            &row.try_get::<String, _>("updated_at")?,
            "alarm_states.updated_at",
        )?,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_780_000_000 + second, 0).unwrap()
    }

    fn state(rule: &str, state: &str, second: i64) -> AlarmStateRecord {
        AlarmStateRecord {
            service: "steno".into(),
            rule: rule.into(),
            state: state.into(),
            since: at(second),
            value: Some(0.25),
            reason: format!("{state} at {second}"),
            announced_alarm_since_ms: (state == "ALARM").then_some(second * 1000),
            updated_at: at(second),
        }
    }

    fn transition(rule: &str, from: Option<&str>, to: &str, second: i64) -> AlarmTransitionRecord {
        AlarmTransitionRecord {
            service: "steno".into(),
            rule: rule.into(),
            from_state: from.map(str::to_string),
            to_state: to.into(),
            at: at(second),
            value: None,
            reason: format!("to {to}"),
        }
    }

    #[tokio::test]
    async fn states_are_replaced_per_rule_and_transitions_are_kept_newest_first_and_bounded() {
        let store = crate::store::tests::test_store().await;
        store
            .save_alarm_state(
                &state("errors", "OK", 0),
                Some(&transition("errors", None, "OK", 0)),
            )
            .await
            .unwrap();
        store
            .save_alarm_state(&state("latency", "INSUFFICIENT_DATA", 0), None)
            .await
            .unwrap();
        store
            .save_alarm_state(
                &state("errors", "ALARM", 5),
                Some(&transition("errors", Some("OK"), "ALARM", 5)),
            )
            .await
            .unwrap();
        let states = store.alarm_states(Some("steno")).await.unwrap();
        assert_eq!(states.len(), 2);
        assert_eq!(states[0], state("errors", "ALARM", 5));
        assert_eq!(states[1].state, "INSUFFICIENT_DATA");
        assert!(store.alarm_states(Some("other")).await.unwrap().is_empty());
        assert_eq!(store.alarm_states(None).await.unwrap().len(), 2);
        let history = store
            .alarm_transitions("steno", "errors", 10)
            .await
            .unwrap();
        assert_eq!(
            history
                .iter()
                .map(|t| (t.from_state.clone(), t.to_state.clone()))
                .collect::<Vec<_>>(),
            vec![
                (Some("OK".to_string()), "ALARM".to_string()),
                (None, "OK".to_string())
            ]
        );

        for second in 10..(10 + ALARM_TRANSITIONS_KEPT + 20) {
            let to = if second % 2 == 0 { "OK" } else { "ALARM" };
            store
                .save_alarm_state(
                    &state("errors", to, second),
                    Some(&transition("errors", Some("x"), to, second)),
                )
                .await
                .unwrap();
        }
        let history = store
            .alarm_transitions("steno", "errors", 1000)
            .await
            .unwrap();
        assert_eq!(history.len() as i64, ALARM_TRANSITIONS_KEPT);
        assert_eq!(history[0].at, at(10 + ALARM_TRANSITIONS_KEPT + 19));
    }

    #[tokio::test]
    async fn an_unknown_state_is_refused_by_the_schema() {
        let store = crate::store::tests::test_store().await;
        assert!(store
            .save_alarm_state(&state("errors", "MAYBE", 0), None)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn states_survive_reopening_the_store_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opsd.db");
        let store = Store::open(&path).await.unwrap();
        store
            .save_alarm_state(&state("errors", "ALARM", 3), None)
            .await
            .unwrap();
        store.close().await;
        let reopened = Store::open(&path).await.unwrap();
        assert_eq!(
            reopened.alarm_states(None).await.unwrap(),
            vec![state("errors", "ALARM", 3)]
        );
    }
}
