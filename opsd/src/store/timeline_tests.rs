//! Tests of the store's timeline: events listed by service and time, the merged timeline of
//! events, drills, snapshots, cost checks and the audit log, the append-only audit log, and the
//! timeline's query plans.

use serde_json::json;
use sqlx::Row;

use super::tests::{at, audit_entry, new_event, new_rollout, test_store};
use super::*;

#[tokio::test]
async fn events_are_listed_newest_first_by_service_and_time() {
    let store = test_store().await;
    store
        .insert_rollout(new_rollout("r1", "steno", 0))
        .await
        .unwrap();
    let first = store
        .append_event(&new_event("steno", Some("r1"), 0, "rollout_started"))
        .await
        .unwrap();
    let second = store
        .append_event(&new_event("billing", None, 5, "alarm"))
        .await
        .unwrap();
    store
        .append_event(&new_event("steno", Some("r1"), 10, "step_passed"))
        .await
        .unwrap();
    assert!(second > first);

    let all = store.list_events(None, None, 10).await.unwrap();
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["step_passed", "alarm", "rollout_started"]);
    assert_eq!(all[2].rollout_id.as_deref(), Some("r1"));
    assert_eq!(all[2].message, "rollout_started happened");
    assert_eq!(all[2].data, json!({"second": 0}));
    assert_eq!(all[2].at, at(0));

    let steno = store.list_events(Some("steno"), None, 10).await.unwrap();
    assert_eq!(steno.len(), 2);
    assert!(steno.iter().all(|e| e.service == "steno"));

    let since = store.list_events(None, Some(at(5)), 10).await.unwrap();
    let kinds: Vec<&str> = since.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["step_passed", "alarm"]);

    let limited = store.list_events(None, None, 1).await.unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].kind, "step_passed");

    let timeline = |service: Option<&str>, kind: Option<&str>, since, until| {
        let filter = TimelineFilter {
            service: service.map(str::to_string),
            kind: kind.map(str::to_string),
            since,
            until,
            limit: 10,
            ..TimelineFilter::default()
        };
        let store = store.clone();
        async move {
            let found = store.timeline(&filter).await.unwrap();
            found
                .into_iter()
                .map(|event| event.kind)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        timeline(None, None, None, None).await,
        ["step_passed", "alarm", "rollout_started"]
    );
    assert_eq!(
        timeline(Some("steno"), Some("rollout_started"), None, None).await,
        ["rollout_started"]
    );
    assert_eq!(
        timeline(None, None, Some(at(5)), Some(at(10))).await,
        ["alarm"],
        "since is inclusive, until is not"
    );
    assert!(timeline(Some("billing"), Some("step_passed"), None, None)
        .await
        .is_empty());

    let orphan = store
        .append_event(&new_event("steno", Some("missing"), 20, "x"))
        .await
        .unwrap_err();
    assert!(matches!(orphan, StoreError::RolloutNotFound { .. }));
}

#[tokio::test]
async fn the_timeline_merges_drills_snapshots_cost_checks_and_for_operators_the_audit_log() {
    let store = test_store().await;
    store
        .insert_rollout(new_rollout("r1", "steno", 0))
        .await
        .unwrap();
    store
        .append_event(&new_event("steno", Some("r1"), 1, "rollout_started"))
        .await
        .unwrap();
    store.insert_drill("d1", "steno-db", at(2)).await.unwrap();
    store
        .finish_drill("d1", "passed", at(3), "{}")
        .await
        .unwrap();
    store.insert_drill("d2", "other-db", at(4)).await.unwrap();
    for (id, reason, second) in [("s1", "scheduled", 5), ("s2", "pre_deploy", 6)] {
        store
            .insert_snapshot(&SnapshotRecord {
                id: id.into(),
                database: "steno-db".into(),
                taken_at: at(second),
                reason: reason.into(),
                rollout_id: None,
                location: "x".into(),
                size_bytes: None,
                sha256: None,
                fingerprint: None,
                deleted_at: None,
            })
            .await
            .unwrap();
    }
    store
        .insert_cost_check(
            at(7),
            "2025-03-01",
            "warning",
            true,
            r#"{"anomalies": [{}, {}]}"#,
        )
        .await
        .unwrap();
    store
        .insert_cost_check(at(8), "2025-03-01", "ok", false, r#"{"anomalies": []}"#)
        .await
        .unwrap();
    store.append_audit(&audit_entry(9, "pause")).await.unwrap();

    let list = |filter: TimelineFilter| {
        let store = store.clone();
        async move {
            store
                .timeline(&TimelineFilter {
                    limit: 50,
                    ..filter
                })
                .await
                .unwrap()
                .into_iter()
                .map(|entry| format!("{}:{}:{}", entry.source, entry.kind, entry.service))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(TimelineFilter {
            include_audit: true,
            ..TimelineFilter::default()
        })
        .await,
        [
            "audit:operator_action:steno",
            "cost_check:cost_check:",
            "cost_check:cost_anomaly:",
            "snapshot:snapshot:steno-db",
            "drill:drill_started:other-db",
            "drill:drill_passed:steno-db",
            "event:rollout_started:steno",
        ],
        "newest first; the pre-deployment snapshot has its own event"
    );
    assert_eq!(
        list(TimelineFilter {
            service: Some("steno".into()),
            database: Some("steno-db".into()),
            ..TimelineFilter::default()
        })
        .await,
        [
            "snapshot:snapshot:steno-db",
            "drill:drill_passed:steno-db",
            "event:rollout_started:steno",
        ],
        "a service's timeline has its database's drills, not the account's costs or the audit \
         log without asking"
    );
    assert_eq!(
        list(TimelineFilter {
            kind: Some("cost_anomaly".into()),
            ..TimelineFilter::default()
        })
        .await,
        ["cost_check:cost_anomaly:"]
    );
    let anomaly = store
        .timeline(&TimelineFilter {
            kind: Some("cost_anomaly".into()),
            limit: 1,
            ..TimelineFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        anomaly[0].message,
        "cost check of 2025-03-01: warning, forecast over budget, 2 anomalies"
    );
    assert_eq!(
        list(TimelineFilter {
            since: Some(at(3)),
            until: Some(at(6)),
            ..TimelineFilter::default()
        })
        .await,
        [
            "snapshot:snapshot:steno-db",
            "drill:drill_started:other-db",
            "drill:drill_passed:steno-db",
        ]
    );
    assert_eq!(
        list(TimelineFilter {
            rollout_id: Some("r1".into()),
            include_audit: true,
            ..TimelineFilter::default()
        })
        .await,
        ["event:rollout_started:steno"],
        "a rollout's timeline is its own events"
    );
}

#[tokio::test]
async fn the_audit_log_is_appended_and_listed_newest_first() {
    let store = test_store().await;
    let first = store.append_audit(&audit_entry(0, "deploy")).await.unwrap();
    let mut no_reason = audit_entry(1, "pause");
    no_reason.reason = None;
    let second = store.append_audit(&no_reason).await.unwrap();
    assert!(second > first);

    let listed = store.list_audit(10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].action, "pause");
    assert_eq!(listed[0].reason, None);
    assert_eq!(listed[1].seq, first);
    assert_eq!(listed[1].actor, "alice");
    assert_eq!(listed[1].role, "operator");
    assert_eq!(listed[1].target, "steno");
    assert_eq!(listed[1].reason.as_deref(), Some("testing"));
    assert_eq!(listed[1].detail, json!({"action": "deploy"}));
    assert_eq!(listed[1].at, at(0));
    assert_eq!(store.list_audit(1).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_database_refuses_to_update_or_delete_audit_entries() {
    let store = test_store().await;
    store.append_audit(&audit_entry(0, "deploy")).await.unwrap();

    let update = sqlx::query("UPDATE audit_log SET actor = 'mallory'")
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(
        update.to_string().contains("audit log is append-only"),
        "{update}"
    );
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(store.pool())
        .await
        .unwrap_err();
    assert!(
        delete.to_string().contains("audit log is append-only"),
        "{delete}"
    );

    let listed = store.list_audit(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].actor, "alice");
}

/// Events and audit entries grow without bound: every branch of the merged timeline that reads
/// them searches an index in time order (no scan of the table, no sort of its rows), whatever
/// the filters, so a page a year back costs what the newest page costs.
#[tokio::test]
async fn the_merged_timeline_reads_events_and_audit_entries_by_index() {
    // SQLite's query plans; PostgreSQL plans by its statistics.
    let store = Store::open_in_memory().await.unwrap();
    let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {}", timeline::MERGED_TIMELINE))
        .bind("steno")
        .bind("decision_advance")
        .bind("2025-01-01T00:00:00.000Z")
        .bind("2026-01-01T00:00:00.000Z")
        .bind(200_i64)
        .bind("steno")
        .bind(true)
        .bind("r1")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let plan: Vec<(i64, i64, String)> = rows
        .iter()
        .map(|row| (row.get("id"), row.get("parent"), row.get("detail")))
        .collect();
    let mut branches = 0;
    for (_, parent, detail) in &plan {
        let words: Vec<&str> = detail.split_whitespace().collect();
        if !matches!(words.get(1), Some(&"events") | Some(&"audit_log")) {
            continue;
        }
        branches += 1;
        assert!(
            words[0] == "SEARCH" && detail.contains("at>? AND at<?"),
            "{detail}"
        );
        let sorted = plan.iter().any(|(_, sibling_parent, sibling)| {
            sibling_parent == parent && sibling.starts_with("USE TEMP B-TREE")
        });
        assert!(!sorted, "{detail} is sorted after it is read");
    }
    assert_eq!(branches, 7, "{plan:#?}");
}
