//! The production watch in-process, on the fake platform and a clock the test moves: the stable
//! release's error rate rises with no rollout running (one notification to the routed targets,
//! then one recovery), its state and history survive a restart, and a crash notifies once and
//! its recovery once.

use super::reconcile_tests::{daemon_with_config, world_with_config, World};
use crate::notify::{Notification, Severity};

/// Two targets (chat for warnings, the pager for critical alarms) and the embedded alarm rules.
const WATCHED: &str = "services:\n  steno:\n    initial_version: v1\n    plan: Canary10Percent5Minutes\n\
notifications:\n  targets:\n    - {name: pager, kind: pagerduty, routing_key: k, url: \"http://127.0.0.1:9/pd\"}\n    \
- {name: chat, kind: slack, webhook_url: \"http://127.0.0.1:9/chat\"}\n  routes:\n    \
- {min_severity: warning, targets: [chat]}\n    - {min_severity: critical, targets: [pager]}\n";

/// Ticks the watch once a second for `seconds` and returns what it sent.
async fn watch_for(world: &World, seconds: i64) -> Vec<Notification> {
    let mut sent = Vec::new();
    for _ in 0..seconds {
        world.clock.advance_secs(1);
        sent.extend(world.daemon.watch_tick().await);
    }
    sent
}

fn about_rule<'a>(sent: &'a [Notification], rule: &str) -> Vec<&'a Notification> {
    let prefix = format!("alarm/steno/{rule}/");
    sent.iter()
        .filter(|notification| notification.key.starts_with(&prefix))
        .collect()
}

#[tokio::test]
async fn a_stable_error_rate_that_rises_without_a_rollout_notifies_once_and_recovers_once() {
    let world = world_with_config(WATCHED).await;
    world.platform.set_traffic("v1", 50, 0);
    let quiet = watch_for(&world, 90).await;
    assert!(
        quiet.is_empty(),
        "a healthy release notifies nothing: {quiet:?}"
    );

    // 20 % of the stable release's requests fail; no rollout runs.
    world.platform.set_traffic("v1", 50, 10);
    let rising = watch_for(&world, 120).await;
    assert!(world.daemon.active.lock().await.is_empty(), "no rollout");
    let error_rate = about_rule(&rising, "lambda-error-rate");
    assert_eq!(error_rate.len(), 1, "once, not every tick: {rising:?}");
    assert!(!error_rate[0].resolve);
    assert_eq!(error_rate[0].severity, Severity::Critical);
    // Critical meets both routes (warning: chat, critical: pager), in the routes' order; the
    // rule's `notify: [pagerduty, slack]` names the same two again.
    assert_eq!(
        error_rate[0].targets,
        Some(vec!["chat".to_string(), "pager".to_string()])
    );
    // api-5xx (critical, notify [pagerduty, sns]: no SNS target is configured) reaches the pager.
    let server_errors = about_rule(&rising, "api-5xx");
    assert_eq!(server_errors.len(), 1);
    assert_eq!(
        server_errors[0].targets,
        Some(vec!["chat".to_string(), "pager".to_string()])
    );

    let statuses = world.daemon.alarm_statuses(Some("steno")).await.unwrap();
    let status = statuses
        .iter()
        .find(|status| status.rule == "lambda-error-rate")
        .unwrap();
    assert_eq!(status.state.as_deref(), Some("ALARM"));
    assert_eq!(status.value_text.as_deref(), Some("20.00 %"));

    // A restarted opsd reads the states back and does not announce the ALARM again.
    let restarted = World {
        daemon: daemon_with_config(
            WATCHED,
            world.platform.clone(),
            world.store.clone(),
            world.clock.clone(),
        )
        .await,
        clock: world.clock.clone(),
        platform: world.platform.clone(),
        store: world.store.clone(),
    };
    let after_restart = watch_for(&restarted, 30).await;
    assert!(
        about_rule(&after_restart, "lambda-error-rate").is_empty(),
        "{after_restart:?}"
    );

    world.platform.set_traffic("v1", 50, 0);
    let recovering = watch_for(&restarted, 400).await;
    let recovered = about_rule(&recovering, "lambda-error-rate");
    assert_eq!(recovered.len(), 1, "{recovering:?}");
    assert!(recovered[0].resolve);
    assert_eq!(
        recovered[0].key, error_rate[0].key,
        "the recovery resolves the ALARM"
    );
    assert_eq!(recovered[0].targets, error_rate[0].targets);
    assert_eq!(about_rule(&recovering, "api-5xx").len(), 1);

    let history = world
        .store
        .alarm_transitions("steno", "lambda-error-rate", 10)
        .await
        .unwrap();
    let changes: Vec<(Option<String>, String)> = history
        .into_iter()
        .rev()
        .map(|transition| (transition.from_state, transition.to_state))
        .collect();
    assert_eq!(
        changes,
        vec![
            (None, "OK".to_string()),
            (Some("OK".to_string()), "ALARM".to_string()),
            (Some("ALARM".to_string()), "OK".to_string()),
        ]
    );
    let alarm_events = world
        .event_kinds()
        .await
        .into_iter()
        .filter(|kind| kind == "alarm_state")
        .count();
    assert_eq!(
        alarm_events, 4,
        "two changes each of lambda-error-rate and api-5xx"
    );
}

#[tokio::test]
async fn a_crash_of_the_stable_release_notifies_once_and_its_recovery_once() {
    use std::sync::atomic::Ordering;

    let world = world_with_config(WATCHED).await;
    world.platform.set_traffic("v1", 50, 0);
    assert!(watch_for(&world, 3).await.is_empty());
    world.platform.crashes.store(1, Ordering::SeqCst);
    let sent = watch_for(&world, 5).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[0].key.starts_with("crash/steno@v1/") && !sent[0].resolve);
    assert_eq!(sent[0].severity, Severity::Warning);
    assert_eq!(sent[0].targets, None, "a crash is routed by severity");
    assert!(sent[1].resolve && sent[1].key == sent[0].key);
    let kinds = world.event_kinds().await;
    assert!(kinds.contains(&"release_crashed".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"release_recovered".to_string()));

    // Two more within ten minutes: the third is critical.
    world.platform.crashes.store(3, Ordering::SeqCst);
    let sent = watch_for(&world, 2).await;
    assert_eq!(sent[0].severity, Severity::Critical, "{sent:?}");
}
