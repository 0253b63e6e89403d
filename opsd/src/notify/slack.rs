//! Slack-compatible incoming webhooks: a notification as `text` plus header, section and
//! context blocks, POSTed to the target's webhook URL.

use serde_json::json;

use super::notifier::DeliveryPolicy;
use super::retry::DeliveryFailure;
use super::text::truncate_chars;
use super::webhook::post_with_retries;
use super::Notification;

/// Slack's limits on a header block's text and a section's text.
const SLACK_HEADER_CHARS: usize = 150;
const SLACK_SECTION_CHARS: usize = 3000;

/// A Slack-compatible incoming-webhook message: `text` for receivers that only read that, and
/// `blocks` (header, body, context) for those that render them.
pub(super) fn slack_body(notification: &Notification) -> serde_json::Value {
    let title = if notification.resolve {
        format!("Resolved: {}", notification.title)
    } else {
        notification.title.clone()
    };
    let label = if notification.resolve {
        "RESOLVED".to_string()
    } else {
        notification.severity.as_str().to_uppercase()
    };
    let mut text = format!(
        "[{label}] {}: {}",
        slack_escape(&notification.service),
        slack_escape(&title)
    );
    if !notification.body.is_empty() {
        text.push('\n');
        text.push_str(&slack_escape(&notification.body));
    }
    let mut context = format!(
        "severity: {} | service: {}",
        notification.severity,
        slack_escape(&notification.service)
    );
    if let Some(rollout_id) = &notification.rollout_id {
        context.push_str(&format!(" | rollout: {}", slack_escape(rollout_id)));
    }
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate_chars(&title, SLACK_HEADER_CHARS)},
    })];
    if !notification.body.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": truncate_chars(&slack_escape(&notification.body), SLACK_SECTION_CHARS),
            },
        }));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context}],
    }));
    json!({"text": text, "blocks": blocks})
}

/// Slack reads `&`, `<` and `>` as markup.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Delivers `notification` to `webhook_url` with the policy's retries; returns the attempts
/// made.
pub(super) async fn deliver(
    client: &reqwest::Client,
    target_name: &str,
    webhook_url: &str,
    notification: &Notification,
    policy: &DeliveryPolicy,
) -> Result<u32, DeliveryFailure> {
    let body = slack_body(notification);
    post_with_retries(client, target_name, webhook_url, &body, policy).await
}

#[cfg(test)]
mod tests {
    use crate::notify::test_support::{
        config, drain, fast_policy, notification, route, slack, start_notifier, Receiver,
    };
    use crate::notify::NotificationCounts;
    use crate::notify::Severity;

    #[tokio::test]
    async fn slack_receives_text_and_blocks() {
        let (receiver, url) = Receiver::start(&[]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![slack("chat", &url)],
                vec![route(Severity::Info, &["chat"])],
            ),
            fast_policy(),
            None,
        );
        assert!(notifier.send(notification("rollout/r1/rolled_back", Severity::Critical)));
        let counters = notifier.counters();
        drain(notifier, handle).await;

        let bodies = receiver.bodies();
        assert_eq!(bodies.len(), 1);
        let body = &bodies[0];
        assert_eq!(
            body["text"],
            "[CRITICAL] steno: Rollout r1 rolled back\nerror rate 7% &gt; 1% for 60 s"
        );
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(blocks[0]["text"]["text"], "Rollout r1 rolled back");
        assert_eq!(blocks[1]["type"], "section");
        assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
        assert_eq!(blocks[1]["text"]["text"], "error rate 7% &gt; 1% for 60 s");
        assert_eq!(blocks[2]["type"], "context");
        assert_eq!(
            blocks[2]["elements"][0]["text"],
            "severity: critical | service: steno | rollout: r1"
        );
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                sent: 1,
                ..Default::default()
            }
        );
    }
}
