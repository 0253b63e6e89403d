//! PagerDuty (Events API v2): a notification as a trigger or resolve event, POSTed to the
//! target's events URL.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::notifier::DeliveryPolicy;
use super::retry::DeliveryFailure;
use super::text::truncate_chars;
use super::webhook::post_with_retries;
use super::{Notification, Severity};

/// The PagerDuty `payload.severity` for a severity.
fn pagerduty_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// PagerDuty's limits on `dedup_key` and `payload.summary`.
const PAGERDUTY_DEDUP_KEY_CHARS: usize = 255;
const PAGERDUTY_SUMMARY_CHARS: usize = 1024;

/// A PagerDuty Events API v2 event. `dedup_key` is the notification's key, so a resolve with
/// the same key closes the incident its trigger opened.
pub(super) fn pagerduty_body(
    notification: &Notification,
    routing_key: &str,
    queued_at: DateTime<Utc>,
) -> serde_json::Value {
    let dedup_key = truncate_chars(&notification.key, PAGERDUTY_DEDUP_KEY_CHARS);
    if notification.resolve {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let summary = truncate_chars(
        &format!("{}: {}", notification.service, notification.title),
        PAGERDUTY_SUMMARY_CHARS,
    );
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": summary,
            "source": "opsd",
            "severity": pagerduty_severity(notification.severity),
            "timestamp": queued_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "component": notification.service,
            "custom_details": {
                "body": notification.body,
                "rollout_id": notification.rollout_id,
                "details": notification.details,
            },
        },
    })
}

/// Delivers `notification` as an event to `url` with the policy's retries; returns the attempts
/// made.
pub(super) async fn deliver(
    client: &reqwest::Client,
    target_name: &str,
    routing_key: &str,
    url: &str,
    notification: &Notification,
    queued_at: DateTime<Utc>,
    policy: &DeliveryPolicy,
) -> Result<u32, DeliveryFailure> {
    let body = pagerduty_body(notification, routing_key, queued_at);
    post_with_retries(client, target_name, url, &body, policy).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_support::{
        config, drain, fast_policy, notification, pagerduty, route, start_notifier, Receiver,
    };

    #[tokio::test]
    async fn pagerduty_receives_events_api_v2_with_mapped_severities() {
        let (receiver, url) = Receiver::start(&[]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![pagerduty("pager", &url)],
                vec![route(Severity::Info, &["pager"])],
            ),
            fast_policy(),
            None,
        );
        notifier.send(notification("rollout/r1/critical", Severity::Critical));
        notifier.send(notification("rollout/r1/warning", Severity::Warning));
        notifier.send(notification("rollout/r1/info", Severity::Info));
        let mut resolve = notification("rollout/r1/critical", Severity::Critical);
        resolve.resolve = true;
        notifier.send(resolve);
        drain(notifier, handle).await;

        let bodies = receiver.bodies();
        assert_eq!(bodies.len(), 4);
        let trigger = &bodies[0];
        assert_eq!(trigger["routing_key"], "routing-key-0123");
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(trigger["dedup_key"], "rollout/r1/critical");
        let payload = &trigger["payload"];
        assert_eq!(payload["summary"], "steno: Rollout r1 rolled back");
        assert_eq!(payload["source"], "opsd");
        assert_eq!(payload["severity"], "critical");
        assert_eq!(payload["component"], "steno");
        let timestamp = payload["timestamp"].as_str().unwrap();
        assert!(
            DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
        assert_eq!(payload["custom_details"]["rollout_id"], "r1");
        assert_eq!(
            payload["custom_details"]["body"],
            "error rate 7% > 1% for 60 s"
        );
        assert_eq!(
            payload["custom_details"]["details"],
            json!({"error_rate": 0.07})
        );

        assert_eq!(bodies[1]["payload"]["severity"], "warning");
        assert_eq!(bodies[1]["dedup_key"], "rollout/r1/warning");
        assert_eq!(bodies[2]["payload"]["severity"], "info");

        let resolved = &bodies[3];
        assert_eq!(resolved["event_action"], "resolve");
        assert_eq!(resolved["dedup_key"], "rollout/r1/critical");
        assert_eq!(resolved["routing_key"], "routing-key-0123");
    }
}
