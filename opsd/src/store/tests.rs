//! Tests of the store: every operation, the one-active-rollout rule, revisions, the audit log's
//! triggers, durability across reopening, and migrations.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;
use sqlx::Row;

use super::*;

pub(super) fn at(second: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap() + Duration::seconds(second)
}

pub(super) fn new_rollout(id: &str, service: &str, second: i64) -> NewRollout {
    NewRollout {
        id: id.to_string(),
        service: service.to_string(),
        stable_version: "v1".to_string(),
        canary_version: "v2".to_string(),
        plan_name: "default".to_string(),
        phase: "starting".to_string(),
        state_json: json!({"step": 0}).to_string(),
        created_at: at(second),
    }
}

pub(super) fn new_event(
    service: &str,
    rollout_id: Option<&str>,
    second: i64,
    kind: &str,
) -> NewEvent {
    NewEvent {
        at: at(second),
        service: service.to_string(),
        rollout_id: rollout_id.map(str::to_string),
        kind: kind.to_string(),
        message: format!("{kind} happened"),
        data: json!({"second": second}),
    }
}

pub(super) fn audit_entry(second: i64, action: &str) -> NewAuditEntry {
    NewAuditEntry {
        at: at(second),
        actor: "alice".to_string(),
        role: "operator".to_string(),
        action: action.to_string(),
        target: "steno".to_string(),
        reason: Some("testing".to_string()),
        detail: json!({"action": action}),
    }
}

/// Names the engine the engine-independent store tests run on: `postgres` for a fresh schema on
/// the PostgreSQL server `STENO_TEST_POSTGRES_URL` names; SQLite in memory otherwise.
const TEST_STORE_VARIABLE: &str = "OPSD_TEST_STORE";

/// A fresh, empty store for a test, on the engine [`TEST_STORE_VARIABLE`] names.
pub(crate) async fn test_store() -> Store {
    match std::env::var(TEST_STORE_VARIABLE).as_deref() {
        Ok("postgres") => postgres_test_store().await,
        Ok("sqlite") | Err(_) => Store::open_in_memory().await.expect("a store in memory"),
        Ok(other) => panic!("{TEST_STORE_VARIABLE} is {other:?}: use postgres or sqlite"),
    }
}

/// A store in a new schema of its own on the suite's PostgreSQL server.
async fn postgres_test_store() -> Store {
    use sqlx::Connection;
    let url = std::env::var("STENO_TEST_POSTGRES_URL").expect(
        "OPSD_TEST_STORE=postgres needs STENO_TEST_POSTGRES_URL to name a PostgreSQL server \
         (scripts/test.sh starts one)",
    );
    let schema = format!("opsd_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .expect("the test PostgreSQL server answers");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("a schema for the test");
    let separator = if url.contains('?') { '&' } else { '?' };
    Store::open_postgres(&format!("{url}{separator}options[search_path]={schema}"))
        .await
        .expect("the store opens on PostgreSQL")
}

fn hash_of(fill: char) -> String {
    std::iter::repeat_n(fill, 64).collect()
}

async fn file_store(directory: &tempfile::TempDir) -> Store {
    Store::open(&directory.path().join("state").join("opsd.db"))
        .await
        .unwrap()
}

#[tokio::test]
async fn open_creates_the_file_and_its_directory_in_wal_mode() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory
        .path()
        .join("nested")
        .join("deeper")
        .join("opsd.db");
    let store = Store::open(&path).await.unwrap();
    assert!(path.exists());
    assert_eq!(
        store.schema_version().await.unwrap(),
        MIGRATIONS.last().unwrap().version
    );
    let journal: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(journal, "wal");
    let foreign_keys: i64 = sqlx::query("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(foreign_keys, 1);
}

#[tokio::test]
async fn rollouts_are_inserted_read_listed_updated_and_finished() {
    let store = test_store().await;
    store
        .insert_rollout(new_rollout("r1", "steno", 0))
        .await
        .unwrap();
    store
        .insert_rollout(new_rollout("r2", "billing", 1))
        .await
        .unwrap();

    let stored = store.get_rollout("r1").await.unwrap().unwrap();
    assert_eq!(stored.service, "steno");
    assert_eq!(stored.stable_version, "v1");
    assert_eq!(stored.canary_version, "v2");
    assert_eq!(stored.plan_name, "default");
    assert_eq!(stored.phase, "starting");
    assert_eq!(stored.revision, 1);
    assert_eq!(stored.created_at, at(0));
    assert_eq!(stored.updated_at, at(0));
    assert!(!stored.is_finished());
    assert!(store.get_rollout("missing").await.unwrap().is_none());

    let state = json!({"step": 1}).to_string();
    let revision = store
        .update_rollout("r1", 1, "canary", &state, None)
        .await
        .unwrap();
    assert_eq!(revision, 2);
    let active = store.active_rollout("steno").await.unwrap().unwrap();
    assert_eq!(active.id, "r1");
    assert_eq!(active.phase, "canary");
    assert_eq!(active.state_json, state);
    assert_eq!(active.revision, 2);

    let active_ids: Vec<String> = store
        .active_rollouts()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(active_ids, ["r1", "r2"]);

    let revision = store
        .update_rollout("r1", 2, "done", &state, Some((at(60), "promoted")))
        .await
        .unwrap();
    assert_eq!(revision, 3);
    let finished = store.get_rollout("r1").await.unwrap().unwrap();
    assert_eq!(finished.finished_at, Some(at(60)));
    assert_eq!(finished.outcome.as_deref(), Some("promoted"));
    assert!(store.active_rollout("steno").await.unwrap().is_none());
    assert_eq!(store.active_rollouts().await.unwrap().len(), 1);

    store
        .insert_rollout(new_rollout("r3", "steno", 120))
        .await
        .unwrap();
    let all: Vec<String> = store
        .list_rollouts(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all, ["r3", "r2", "r1"]);
    let steno: Vec<String> = store
        .list_rollouts(Some("steno"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(steno, ["r3", "r1"]);
    assert_eq!(store.list_rollouts(None, 1).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_service_has_at_most_one_unfinished_rollout() {
    let store = test_store().await;
    store
        .insert_rollout(new_rollout("first", "steno", 0))
        .await
        .unwrap();

    let refused = store
        .insert_rollout(new_rollout("second", "steno", 1))
        .await
        .unwrap_err();
    match &refused {
        StoreError::RolloutInProgress {
            service,
            rollout_id,
        } => {
            assert_eq!(service, "steno");
            assert_eq!(rollout_id, "first");
        }
        other => panic!("expected RolloutInProgress, got {other:?}"),
    }
    assert!(refused.to_string().contains("wait for it to finish"));
    assert!(store.get_rollout("second").await.unwrap().is_none());

    // Another service is independent.
    store
        .insert_rollout(new_rollout("other", "billing", 2))
        .await
        .unwrap();

    // Reusing an id is named as such.
    let duplicate = store
        .insert_rollout(new_rollout("other", "search", 3))
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, StoreError::DuplicateRollout { ref rollout_id } if rollout_id == "other")
    );

    // Once the first finishes, the service may start another.
    let state = json!({}).to_string();
    store
        .update_rollout("first", 1, "done", &state, Some((at(10), "rolled_back")))
        .await
        .unwrap();
    store
        .insert_rollout(new_rollout("second", "steno", 11))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_for_one_service_let_exactly_one_win() {
    let directory = tempfile::tempdir().unwrap();
    let store = file_store(&directory).await;
    // A second handle on the same file stands for a second opsd process.
    let other_process = file_store(&directory).await;
    for round in 0..20 {
        let service = format!("service-{round}");
        let first = {
            let store = store.clone();
            let rollout = new_rollout(&format!("{service}-a"), &service, round);
            tokio::spawn(async move { store.insert_rollout(rollout).await })
        };
        let second = {
            let store = other_process.clone();
            let rollout = new_rollout(&format!("{service}-b"), &service, round);
            tokio::spawn(async move { store.insert_rollout(rollout).await })
        };
        let outcomes = [first.await.unwrap(), second.await.unwrap()];
        let winners = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(winners, 1, "round {round}: {outcomes:?}");
        let active = store.active_rollout(&service).await.unwrap().unwrap();
        let loser = outcomes
            .iter()
            .find_map(|outcome| outcome.as_ref().err())
            .unwrap();
        match loser {
            StoreError::RolloutInProgress { rollout_id, .. } => assert_eq!(rollout_id, &active.id),
            other => panic!("round {round}: expected RolloutInProgress, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_update_from_a_stale_revision_is_a_conflict() {
    let store = test_store().await;
    store
        .insert_rollout(new_rollout("r1", "steno", 0))
        .await
        .unwrap();
    let state = json!({"driver": "a"}).to_string();

    // Two drivers read revision 1; the first to write wins.
    store
        .update_rollout("r1", 1, "canary", &state, None)
        .await
        .unwrap();
    let conflict = store
        .update_rollout("r1", 1, "canary", &json!({"driver": "b"}).to_string(), None)
        .await
        .unwrap_err();
    match &conflict {
        StoreError::Conflict {
            rollout_id,
            expected_revision,
            found_revision,
        } => {
            assert_eq!(rollout_id, "r1");
            assert_eq!(*expected_revision, 1);
            assert_eq!(*found_revision, 2);
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(conflict.to_string().contains("reload it"));
    let stored = store.get_rollout("r1").await.unwrap().unwrap();
    assert_eq!(stored.state_json, state);
    assert_eq!(stored.revision, 2);

    let missing = store
        .update_rollout("nope", 1, "canary", &state, None)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::RolloutNotFound { .. }));

    store
        .update_rollout("r1", 2, "done", &state, Some((at(5), "promoted")))
        .await
        .unwrap();
    let after_finish = store
        .update_rollout("r1", 3, "canary", &state, None)
        .await
        .unwrap_err();
    assert!(
        matches!(after_finish, StoreError::RolloutFinished { ref outcome, .. } if outcome == "promoted")
    );
}

#[tokio::test]
async fn rollout_state_must_be_json() {
    let store = test_store().await;
    let mut rollout = new_rollout("r1", "steno", 0);
    rollout.state_json = "{not json".to_string();
    let refused = store.insert_rollout(rollout).await.unwrap_err();
    assert!(matches!(refused, StoreError::InvalidJson { .. }));

    store
        .insert_rollout(new_rollout("r1", "steno", 0))
        .await
        .unwrap();
    let refused = store
        .update_rollout("r1", 1, "canary", "", None)
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::InvalidJson { .. }));
    assert_eq!(store.get_rollout("r1").await.unwrap().unwrap().revision, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_numbered_per_rollout() {
    let directory = tempfile::tempdir().unwrap();
    let store = file_store(&directory).await;
    store
        .insert_rollout(new_rollout("r1", "steno", 0))
        .await
        .unwrap();
    store
        .insert_rollout(new_rollout("r2", "billing", 0))
        .await
        .unwrap();
    let decision = |rollout_id: &str, step_index: u32| NewDecision {
        rollout_id: rollout_id.to_string(),
        at: at(i64::from(step_index)),
        step_index,
        verdict: "pass".to_string(),
        summary: format!("step {step_index} healthy"),
        evidence: json!({"error_rate": 0.001, "step": step_index}),
    };
    assert_eq!(store.append_decision(&decision("r1", 0)).await.unwrap(), 1);
    assert_eq!(store.append_decision(&decision("r1", 1)).await.unwrap(), 2);
    assert_eq!(store.append_decision(&decision("r2", 0)).await.unwrap(), 1);

    // Concurrent appends to one rollout never share a number.
    let appends: Vec<_> = (2..12)
        .map(|step| {
            let store = store.clone();
            let decision = decision("r1", step);
            tokio::spawn(async move { store.append_decision(&decision).await })
        })
        .collect();
    for append in appends {
        append.await.unwrap().unwrap();
    }

    let listed = store.list_decisions("r1").await.unwrap();
    let seqs: Vec<i64> = listed.iter().map(|d| d.seq).collect();
    assert_eq!(seqs, (1..=12).collect::<Vec<i64>>());
    assert_eq!(listed[0].step_index, 0);
    assert_eq!(listed[0].verdict, "pass");
    assert_eq!(listed[0].summary, "step 0 healthy");
    assert_eq!(listed[0].evidence, json!({"error_rate": 0.001, "step": 0}));
    assert_eq!(listed[0].at, at(0));
    assert_eq!(store.list_decisions("r2").await.unwrap().len(), 1);

    let orphan = store
        .append_decision(&decision("missing", 0))
        .await
        .unwrap_err();
    assert!(
        matches!(orphan, StoreError::RolloutNotFound { ref rollout_id } if rollout_id == "missing")
    );
}

#[tokio::test]
async fn stable_releases_keep_a_history_for_rollback() {
    let store = test_store().await;
    assert!(store.stable_release("steno").await.unwrap().is_none());
    assert!(store.release_history("steno").await.unwrap().is_empty());

    let v1 = json!({"service": "steno", "version": "v1", "env": {}});
    let v2 = json!({"service": "steno", "version": "v2", "env": {"A": "1"}});
    assert!(store
        .set_stable_release("steno", "v1", &v1, at(0))
        .await
        .unwrap());
    assert!(store
        .set_stable_release("steno", "v2", &v2, at(10))
        .await
        .unwrap());
    // Repeating the current one (a resumed rollout) changes nothing.
    assert!(!store
        .set_stable_release("steno", "v2", &v2, at(20))
        .await
        .unwrap());
    store
        .set_stable_release("billing", "b7", &json!({"version": "b7"}), at(30))
        .await
        .unwrap();

    let stable = store.stable_release("steno").await.unwrap().unwrap();
    assert_eq!(stable.version, "v2");
    assert_eq!(stable.release, v2);
    assert_eq!(stable.updated_at, at(10));

    let history = store.release_history("steno").await.unwrap();
    let versions: Vec<&str> = history.iter().map(|r| r.version.as_str()).collect();
    assert_eq!(versions, ["v2", "v1"]);
    assert_eq!(history[1].release, v1);
    assert_eq!(history[1].promoted_at, at(0));

    // Rolling back to v1 is a new promotion.
    assert!(store
        .set_stable_release("steno", "v1", &v1, at(40))
        .await
        .unwrap());
    let versions: Vec<String> = store
        .release_history("steno")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, ["v1", "v2", "v1"]);
}

#[tokio::test]
async fn api_tokens_are_found_by_hash() {
    let store = test_store().await;
    assert_eq!(store.count_tokens().await.unwrap(), 0);
    store
        .insert_token(&hash_of('a'), "ci", TokenRole::Operator)
        .await
        .unwrap();
    store
        .insert_token(&hash_of('b'), "dashboard", TokenRole::Viewer)
        .await
        .unwrap();
    assert_eq!(store.count_tokens().await.unwrap(), 2);

    let found = store.find_token(&hash_of('a')).await.unwrap().unwrap();
    assert_eq!(found.name, "ci");
    assert_eq!(found.role, TokenRole::Operator);
    assert_eq!(found.token_hash, hash_of('a'));
    assert!(store.find_token(&hash_of('c')).await.unwrap().is_none());
    assert!(store.find_token("not-a-hash").await.unwrap().is_none());

    let duplicate = store
        .insert_token(&hash_of('a'), "again", TokenRole::Viewer)
        .await
        .unwrap_err();
    assert!(matches!(duplicate, StoreError::TokenExists));
    let uppercase = store
        .insert_token(&hash_of('A'), "bad", TokenRole::Viewer)
        .await
        .unwrap_err();
    assert!(matches!(uppercase, StoreError::InvalidTokenHash));
    assert_eq!(store.count_tokens().await.unwrap(), 2);

    assert_eq!(store.revoke_token("ci").await.unwrap(), 1);
    assert!(store.find_token(&hash_of('a')).await.unwrap().is_none());
    assert_eq!(store.revoke_token("ci").await.unwrap(), 0);
    assert_eq!(store.count_tokens().await.unwrap(), 1);
}

#[test]
fn token_roles_parse_and_print() {
    assert_eq!("viewer".parse::<TokenRole>().unwrap(), TokenRole::Viewer);
    assert_eq!(
        "operator".parse::<TokenRole>().unwrap(),
        TokenRole::Operator
    );
    assert!("admin".parse::<TokenRole>().is_err());
    assert_eq!(TokenRole::Operator.to_string(), "operator");
    assert_eq!(
        serde_json::to_value(TokenRole::Viewer).unwrap(),
        json!("viewer")
    );
}

#[tokio::test]
async fn notifications_are_marked_once() {
    let store = test_store().await;
    assert!(!store.was_notified("rollout/r1/rolled_back").await.unwrap());
    assert!(store.mark_notified("rollout/r1/rolled_back").await.unwrap());
    assert!(!store.mark_notified("rollout/r1/rolled_back").await.unwrap());
    assert!(store.was_notified("rollout/r1/rolled_back").await.unwrap());
    assert!(store.mark_notified("rollout/r2/rolled_back").await.unwrap());
}

#[tokio::test]
async fn times_are_stored_as_utc_text_with_milliseconds() {
    let store = test_store().await;
    let mut rollout = new_rollout("r1", "steno", 0);
    rollout.created_at = at(0) + Duration::microseconds(123_456);
    store.insert_rollout(rollout).await.unwrap();
    let text: String = sqlx::query("SELECT created_at FROM rollouts WHERE id = 'r1'")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(text, "2025-03-01T12:00:00.123Z");
    let stored = store.get_rollout("r1").await.unwrap().unwrap();
    assert_eq!(stored.created_at, at(0) + Duration::milliseconds(123));
}

#[tokio::test]
async fn reopening_the_file_keeps_everything() {
    let directory = tempfile::tempdir().unwrap();
    {
        let store = file_store(&directory).await;
        store
            .insert_rollout(new_rollout("r1", "steno", 0))
            .await
            .unwrap();
        store
            .update_rollout("r1", 1, "canary", &json!({"step": 2}).to_string(), None)
            .await
            .unwrap();
        store
            .insert_rollout(new_rollout("r0", "billing", 0))
            .await
            .unwrap();
        store
            .update_rollout("r0", 1, "done", "{}", Some((at(3), "promoted")))
            .await
            .unwrap();
        store
            .append_decision(&NewDecision {
                rollout_id: "r1".to_string(),
                at: at(1),
                step_index: 0,
                verdict: "pass".to_string(),
                summary: "fine".to_string(),
                evidence: json!({}),
            })
            .await
            .unwrap();
        store
            .append_event(&new_event("steno", Some("r1"), 1, "rollout_started"))
            .await
            .unwrap();
        store.append_audit(&audit_entry(1, "deploy")).await.unwrap();
        store
            .set_stable_release("steno", "v1", &json!({"version": "v1"}), at(0))
            .await
            .unwrap();
        store
            .insert_token(&hash_of('d'), "ci", TokenRole::Operator)
            .await
            .unwrap();
        store.mark_notified("rollout/r0/promoted").await.unwrap();
        store.close().await;
    }

    let store = file_store(&directory).await;
    let newest = MIGRATIONS.last().unwrap().version;
    assert_eq!(store.schema_version().await.unwrap(), newest);
    let ledger_rows: i64 = sqlx::query("SELECT COUNT(*) FROM schema_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(ledger_rows, MIGRATIONS.len() as i64);

    let active = store.active_rollouts().await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].id, "r1");
    assert_eq!(active[0].revision, 2);
    assert_eq!(active[0].phase, "canary");
    assert_eq!(active[0].state_json, json!({"step": 2}).to_string());
    let finished = store.get_rollout("r0").await.unwrap().unwrap();
    assert_eq!(finished.outcome.as_deref(), Some("promoted"));
    assert_eq!(store.list_decisions("r1").await.unwrap().len(), 1);
    assert_eq!(store.list_events(None, None, 10).await.unwrap().len(), 1);
    assert_eq!(store.list_audit(10).await.unwrap().len(), 1);
    assert_eq!(
        store
            .stable_release("steno")
            .await
            .unwrap()
            .unwrap()
            .version,
        "v1"
    );
    assert_eq!(store.release_history("steno").await.unwrap().len(), 1);
    assert_eq!(
        store.find_token(&hash_of('d')).await.unwrap().unwrap().name,
        "ci"
    );
    assert!(!store.mark_notified("rollout/r0/promoted").await.unwrap());

    // The one-active rule and revisions hold across the restart.
    assert!(matches!(
        store.insert_rollout(new_rollout("r2", "steno", 9)).await,
        Err(StoreError::RolloutInProgress { .. })
    ));
    assert!(matches!(
        store.update_rollout("r1", 1, "x", "{}", None).await,
        Err(StoreError::Conflict { .. })
    ));
    // The audit triggers survived too.
    assert!(sqlx::query("DELETE FROM audit_log")
        .execute(store.pool())
        .await
        .is_err());
}

#[tokio::test]
async fn a_store_from_a_newer_opsd_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("opsd.db");
    {
        let store = Store::open(&path).await.unwrap();
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(99_i64)
        .bind("from the future")
        .bind(time_text(Utc::now()))
        .execute(store.pool())
        .await
        .unwrap();
        store.close().await;
    }
    let refused = Store::open(&path).await.unwrap_err();
    match &refused {
        StoreError::SchemaTooNew {
            found,
            known,
            location,
        } => {
            assert_eq!(*found, 99);
            assert_eq!(*known, MIGRATIONS.last().unwrap().version);
            assert!(location.ends_with("opsd.db"));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let message = refused.to_string();
    assert!(message.contains("schema version 99"), "{message}");
    let newest = MIGRATIONS.last().unwrap().version;
    assert!(
        message.contains(&format!("newer than version {newest}")),
        "{message}"
    );
    assert!(
        message.contains("run the opsd release that wrote it"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_opening_a_new_file_together_migrate_it_once() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("opsd.db");
    let (first, second) = tokio::join!(Store::open(&path), Store::open(&path));
    let first = first.unwrap();
    second.unwrap();
    let ledger_rows: i64 = sqlx::query("SELECT COUNT(*) FROM schema_migrations")
        .fetch_one(first.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(ledger_rows, MIGRATIONS.len() as i64);
}
