//! Notifications: what opsd tells people, and how it reaches Slack-compatible webhooks,
//! PagerDuty (Events API v2) and Amazon SNS topics.
//!
//! The flow, one file per step:
//! 1. A [`Notification`] is built where something happened (`daemon`, `drill`, `costs`) with
//!    [`Notification::new`] and only what differs from the defaults (`notification.rs`).
//! 2. [`Notifier::send`] queues it and returns at once; a router picks its targets: the ones it
//!    names ([`Notification::targets`], e.g. a cost budget's `notify` list), else every target of
//!    each route whose `min_severity` it meets ([`notification_targets`], in `targets.rs`, which
//!    also reads and checks the target and route definitions).
//! 3. Each target has its own queue and delivery task (`notifier.rs`): a delivery already made is
//!    skipped (dedupe), and the rest is formatted for its channel (`slack.rs`, `pagerduty.rs`,
//!    `sns.rs`) and sent.
//! 4. A failed attempt that retrying may fix is retried with jittered exponential backoff
//!    (`retry.rs`): for webhooks, no answer, 429 or 5xx (`webhook.rs`); for SNS, what the shared
//!    AWS classification of `platform::aws::retry` calls throttled or transient.
//!
//! invariant: [`Notifier::send`] never blocks and never fails the caller: a notification that
//! cannot be queued is dropped with a warning (a rollback never waits for a chat message).
//!
//! Configuration: the `notifications` section of `opsd.yaml` (read by the config loader, which
//! should call [`validate_notifications`]) holds `targets` and `routes`:
//!
//! ```yaml
//! notifications:
//!   targets:
//!     - name: team-chat
//!       kind: slack
//!       webhook_url: "https://chat.example/hooks/T000/B000/XXXX"
//!     - name: on-call
//!       kind: pagerduty
//!       routing_key: "R0UT1NGKEY"
//!       # url: defaults to PagerDuty's Events API v2 endpoint
//!     - name: alerts-topic
//!       kind: sns
//!       topic_arn: "arn:aws:sns:us-east-1:123456789012:steno-alerts"
//!       # region: defaults to the topic ARN's region
//!       # endpoint_url: e.g. a VPC endpoint or an emulator; defaults to SNS's public endpoint
//!   routes:
//!     - { min_severity: warning, targets: [team-chat] }
//!     - { min_severity: critical, targets: [on-call, alerts-topic] }
//! ```
//!
//! SNS: credentials come from the standard AWS chain (environment, profile, SSO, container or
//! instance role); the role needs `sns:Publish` on the topic. Each SNS target builds its client
//! once, on its first delivery, with the SDK's own retries off: the [`DeliveryPolicy`] is the
//! one retry loop for every kind of target.
//!
//! Routing: a notification goes to every target named by a route whose `min_severity` it meets
//! (critical meets warning and info; warning meets info), unless it names its own targets: then
//! it goes to exactly those and the routes are not consulted. Each target has its own queue and
//! delivery task, so a dead or stalled target never delays the others.
//!
//! Dedupe: a delivery is identified by the notification's `key`, whether it triggers or
//! resolves, and the target (`<key>#<trigger|resolve>@<target>`); one already delivered is
//! skipped. With a [`Store`](crate::store::Store) the record survives restarts; without one it
//! is kept in memory. A delivery is recorded after the target accepted it, so a crash in between
//! may repeat it once rather than lose it.

mod notification;
mod notifier;
mod pagerduty;
mod retry;
mod slack;
mod sns;
mod targets;
mod text;
mod webhook;

#[cfg(test)]
mod test_support;

pub use crate::core::severity::{Severity, UnknownSeverity};
pub use notification::Notification;
pub use notifier::{DeliveryPolicy, NotificationCounters, NotificationCounts, Notifier};
pub use targets::{
    notification_targets, parse_sns_topic_arn, routed_targets, validate_notifications,
    NotificationRoute, NotificationTarget, NotifyError, SnsTarget, SnsTopicArn, TargetKind,
    DEFAULT_PAGERDUTY_URL,
};
