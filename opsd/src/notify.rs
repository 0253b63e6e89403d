//! Notifications routed by severity to Slack-compatible webhooks, PagerDuty (Events API v2) and
//! Amazon SNS topics, delivered by background tasks with retries and deduplicated across restarts.
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
//! (critical meets warning and info; warning meets info), unless it names its own targets
//! ([`Notification::targets`], e.g. a cost budget's `notify` list): then it goes to exactly those
//! and the routes are not consulted. Each target has its own queue and delivery task, so a dead
//! or stalled target never delays the others.
//!
//! Dedupe: a delivery is identified by the notification's `key`, whether it triggers or
//! resolves, and the target (`<key>#<trigger|resolve>@<target>`); one already delivered is
//! skipped. With a [`Store`] the record survives restarts; without one it is kept in memory.
//! A delivery is recorded after the target accepted it, so a crash in between may repeat it
//! once rather than lose it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};

use crate::error_chain::error_chain;
use crate::store::Store;

/// PagerDuty's Events API v2 endpoint, used when a target names no `url`.
pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

pub use crate::core::severity::{Severity, UnknownSeverity};

/// The PagerDuty `payload.severity` for a severity.
fn pagerduty_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// One place notifications are delivered to. Written flat in YAML: `name`, `kind` (`slack`,
/// `pagerduty` or `sns`) and the fields of that kind; a field of another kind, or any unknown
/// field, is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TargetFields", into = "TargetFields")]
pub struct NotificationTarget {
    pub name: String,
    pub kind: TargetKind,
}

/// How a target is reached. Its URL and key are secrets: `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// A Slack-compatible incoming webhook: POST `{"text": ..., "blocks": [...]}`.
    Slack { webhook_url: String },
    /// PagerDuty Events API v2 (`url` is [`DEFAULT_PAGERDUTY_URL`] unless configured).
    Pagerduty { routing_key: String, url: String },
    /// An Amazon SNS topic: `Publish` with a subject, a message for people, and the message
    /// attributes `severity` and `service`.
    Sns(SnsTarget),
}

/// An SNS topic notifications are published to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsTarget {
    /// `arn:aws:sns:<region>:<account>:<name>`.
    pub topic_arn: String,
    /// The region to call; `None` means the topic ARN's region.
    pub region: Option<String>,
    /// Where to send SNS requests instead of SNS's public endpoint (an emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
}

impl SnsTarget {
    /// The region requests go to: the configured one, else the topic ARN's (`None` only when
    /// neither is usable, which [`validate_notifications`] refuses).
    pub fn region(&self) -> Option<&str> {
        match &self.region {
            Some(region) => Some(region),
            None => parse_sns_topic_arn(&self.topic_arn)
                .ok()
                .map(|arn| arn.region),
        }
    }
}

/// The parts of an SNS topic ARN, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnsTopicArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

/// Splits `arn:<partition>:sns:<region>:<account>:<name>`, checking each part; the error says
/// which part is wrong (without the "topic_arn" prefix the caller adds).
pub fn parse_sns_topic_arn(arn: &str) -> Result<SnsTopicArn<'_>, String> {
    const SHAPE: &str = "arn:aws:sns:<region>:<account>:<name>";
    let parts: Vec<&str> = arn.split(':').collect();
    let [prefix, partition, service, region, account, name] = parts[..] else {
        return Err(format!(
            "{arn:?} is not an SNS topic ARN; it should look like {SHAPE}"
        ));
    };
    if prefix != "arn" || !partition.starts_with("aws") || service != "sns" {
        return Err(format!(
            "{arn:?} is not an SNS topic ARN; it should look like {SHAPE}"
        ));
    }
    if !is_region_name(region) {
        return Err(format!(
            "{arn:?} has no valid region (like us-east-1) after arn:aws:sns:"
        ));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{arn:?} has no 12-digit account id after the region"
        ));
    }
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    let valid_name = !base.is_empty()
        && name.len() <= 256
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_name {
        return Err(format!(
            "{arn:?} ends in an invalid topic name (1 to 256 letters, digits, - and _)"
        ));
    }
    Ok(SnsTopicArn {
        partition,
        region,
        account,
        name,
    })
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`: lowercase letters, digits and dashes.
fn is_region_name(region: &str) -> bool {
    !region.is_empty()
        && region.contains('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// The names `kind` takes in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TargetKindName {
    Slack,
    Pagerduty,
    Sns,
}

impl TargetKindName {
    fn as_str(self) -> &'static str {
        match self {
            TargetKindName::Slack => "slack",
            TargetKindName::Pagerduty => "pagerduty",
            TargetKindName::Sns => "sns",
        }
    }

    /// The fields a target of this kind may have, besides `name` and `kind`.
    fn fields(self) -> &'static [&'static str] {
        match self {
            TargetKindName::Slack => &["webhook_url"],
            TargetKindName::Pagerduty => &["routing_key", "url"],
            TargetKindName::Sns => &["topic_arn", "region", "endpoint_url"],
        }
    }
}

/// A target as written in configuration.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFields {
    name: String,
    kind: TargetKindName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    routing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint_url: Option<String>,
}

impl TryFrom<TargetFields> for NotificationTarget {
    type Error = String;

    fn try_from(fields: TargetFields) -> Result<NotificationTarget, String> {
        let name = fields.name;
        let present = [
            ("webhook_url", fields.webhook_url.is_some()),
            ("routing_key", fields.routing_key.is_some()),
            ("url", fields.url.is_some()),
            ("topic_arn", fields.topic_arn.is_some()),
            ("region", fields.region.is_some()),
            ("endpoint_url", fields.endpoint_url.is_some()),
        ];
        let allowed = fields.kind.fields();
        if let Some((field, _)) = present
            .iter()
            .find(|(field, given)| *given && !allowed.contains(field))
        {
            let hint = match (fields.kind, *field) {
                (TargetKindName::Slack, "url") => " (use webhook_url)",
                (TargetKindName::Sns, "url") => " (use endpoint_url)",
                _ => "",
            };
            let article = match fields.kind {
                TargetKindName::Sns => "an",
                _ => "a",
            };
            return Err(format!(
                "notification target {name:?}: {field}{hint} does not apply to {article} {} \
                 target",
                fields.kind.as_str()
            ));
        }
        let kind = match fields.kind {
            TargetKindName::Slack => {
                let webhook_url = fields.webhook_url.ok_or_else(|| {
                    format!("notification target {name:?}: a slack target needs webhook_url")
                })?;
                TargetKind::Slack { webhook_url }
            }
            TargetKindName::Pagerduty => {
                let routing_key = fields.routing_key.ok_or_else(|| {
                    format!("notification target {name:?}: a pagerduty target needs routing_key")
                })?;
                let url = fields
                    .url
                    .unwrap_or_else(|| DEFAULT_PAGERDUTY_URL.to_string());
                TargetKind::Pagerduty { routing_key, url }
            }
            TargetKindName::Sns => {
                let topic_arn = fields.topic_arn.ok_or_else(|| {
                    format!(
                        "notification target {name:?}: an sns target needs topic_arn \
                         (arn:aws:sns:<region>:<account>:<name>)"
                    )
                })?;
                TargetKind::Sns(SnsTarget {
                    topic_arn,
                    region: fields.region,
                    endpoint_url: fields.endpoint_url,
                })
            }
        };
        Ok(NotificationTarget { name, kind })
    }
}

impl From<NotificationTarget> for TargetFields {
    fn from(target: NotificationTarget) -> TargetFields {
        let empty = |kind| TargetFields {
            name: target.name,
            kind,
            webhook_url: None,
            routing_key: None,
            url: None,
            topic_arn: None,
            region: None,
            endpoint_url: None,
        };
        match target.kind {
            TargetKind::Slack { webhook_url } => TargetFields {
                webhook_url: Some(webhook_url),
                ..empty(TargetKindName::Slack)
            },
            TargetKind::Pagerduty { routing_key, url } => TargetFields {
                routing_key: Some(routing_key),
                url: Some(url),
                ..empty(TargetKindName::Pagerduty)
            },
            TargetKind::Sns(sns) => TargetFields {
                topic_arn: Some(sns.topic_arn),
                region: sns.region,
                endpoint_url: sns.endpoint_url,
                ..empty(TargetKindName::Sns)
            },
        }
    }
}

impl TargetKind {
    fn label(&self) -> &'static str {
        match self {
            TargetKind::Slack { .. } => "slack",
            TargetKind::Pagerduty { .. } => "pagerduty",
            TargetKind::Sns(_) => "sns",
        }
    }
}

impl fmt::Debug for TargetKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetKind::Slack { .. } => formatter
                .debug_struct("Slack")
                .field("webhook_url", &"<redacted>")
                .finish(),
            TargetKind::Pagerduty { url, .. } => formatter
                .debug_struct("Pagerduty")
                .field("routing_key", &"<redacted>")
                .field("url", url)
                .finish(),
            TargetKind::Sns(sns) => formatter.debug_tuple("Sns").field(sns).finish(),
        }
    }
}

/// Sends every notification of at least `min_severity` to each named target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationRoute {
    pub min_severity: Severity,
    pub targets: Vec<String>,
}

/// A configuration mistake in the notifications section.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("a notification target has an empty name; give every target a name")]
    EmptyTargetName,
    #[error("notification target name {name:?} is used twice; give each target its own name")]
    DuplicateTarget { name: String },
    #[error("notification target {name:?}: {problem}")]
    InvalidTarget { name: String, problem: String },
    #[error(
        "notification route {route_index} names target {target:?}, which is not configured; add it \
         under notifications.targets or fix the name"
    )]
    UnknownRouteTarget { route_index: usize, target: String },
}

/// Checks the notifications section: target names present and unique, URLs http(s), routing
/// keys present, SNS topic ARNs well formed (and any region matching them), and routes naming
/// configured targets. The config loader should call it; [`Notifier::start`] tolerates mistakes
/// (it disables what is wrong and logs why) so that a bad webhook never stops opsd.
pub fn validate_notifications(
    targets: &[NotificationTarget],
    routes: &[NotificationRoute],
) -> Result<(), NotifyError> {
    let mut names = HashSet::new();
    for target in targets {
        validate_target(target)?;
        if !names.insert(target.name.as_str()) {
            return Err(NotifyError::DuplicateTarget {
                name: target.name.clone(),
            });
        }
    }
    for (route_index, route) in routes.iter().enumerate() {
        if let Some(unknown) = route.targets.iter().find(|t| !names.contains(t.as_str())) {
            return Err(NotifyError::UnknownRouteTarget {
                route_index,
                target: unknown.clone(),
            });
        }
    }
    Ok(())
}

/// The names of the targets `notification` goes to, each once: its own
/// [`Notification::targets`] when it names them, else [`routed_targets`] by its severity.
pub fn notification_targets<'a>(
    routes: &'a [NotificationRoute],
    notification: &'a Notification,
) -> Vec<&'a str> {
    match &notification.targets {
        Some(names) => {
            let mut chosen: Vec<&str> = Vec::new();
            for name in names {
                if !chosen.contains(&name.as_str()) {
                    chosen.push(name);
                }
            }
            chosen
        }
        None => routed_targets(routes, notification.severity),
    }
}

/// The names of the targets a notification of `severity` goes to, each once, in the order the
/// routes name them.
pub fn routed_targets(routes: &[NotificationRoute], severity: Severity) -> Vec<&str> {
    let mut chosen: Vec<&str> = Vec::new();
    for route in routes {
        if !severity.is_at_least(route.min_severity) {
            continue;
        }
        for target in &route.targets {
            if !chosen.contains(&target.as_str()) {
                chosen.push(target);
            }
        }
    }
    chosen
}

/// Checks one target on its own (its name and how it is reached).
fn validate_target(target: &NotificationTarget) -> Result<(), NotifyError> {
    if target.name.trim().is_empty() {
        return Err(NotifyError::EmptyTargetName);
    }
    let invalid = |problem: String| NotifyError::InvalidTarget {
        name: target.name.clone(),
        problem,
    };
    let (field, url) = match &target.kind {
        TargetKind::Slack { webhook_url } => ("webhook_url", webhook_url),
        TargetKind::Pagerduty { routing_key, url } => {
            if routing_key.trim().is_empty() {
                return Err(invalid(
                    "routing_key is empty; copy the integration key of the PagerDuty service"
                        .to_string(),
                ));
            }
            ("url", url)
        }
        TargetKind::Sns(sns) => {
            let arn = parse_sns_topic_arn(&sns.topic_arn)
                .map_err(|problem| invalid(format!("topic_arn {problem}")))?;
            if arn.name.ends_with(".fifo") {
                return Err(invalid(format!(
                    "topic_arn {:?} names a FIFO topic; notifications need a standard topic",
                    sns.topic_arn
                )));
            }
            if let Some(region) = &sns.region {
                if !is_region_name(region) {
                    return Err(invalid(format!(
                        "region {region:?} is not a region name like us-east-1"
                    )));
                }
                if region != arn.region {
                    return Err(invalid(format!(
                        "region {region} is not the topic's region {}; SNS publishes to a topic \
                         only in its own region, so drop region or fix the topic ARN",
                        arn.region
                    )));
                }
            }
            match &sns.endpoint_url {
                Some(endpoint_url) => ("endpoint_url", endpoint_url),
                None => return Ok(()),
            }
        }
    };
    // The URL itself is a secret for Slack: name the problem, never the value.
    match reqwest::Url::parse(url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(_) => Err(invalid(format!("{field} must be an http or https URL"))),
        Err(error) => Err(invalid(format!(
            "{field} is not a URL ({error}); use an http or https URL"
        ))),
    }
}

/// Something worth telling people about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Identifies the state change, e.g. `rollout/<id>/rolled_back`; delivered once per target.
    /// Also PagerDuty's `dedup_key`, so a resolve must carry the key of what it resolves.
    pub key: String,
    pub severity: Severity,
    pub title: String,
    pub body: String,
    pub service: String,
    pub rollout_id: Option<String>,
    /// Resolves (PagerDuty `event_action: resolve`) what the same key triggered.
    pub resolve: bool,
    pub details: serde_json::Value,
    /// The targets (by name) this notification goes to, instead of the severity routes; `None`
    /// routes it by severity. Dedupe per target is the same either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
}

/// Delivery settings; the defaults suit production, tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Attempts per delivery (POSTs, or SNS `Publish` calls), the first included.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each failure, up to `max_backoff`,
    /// and is jittered down to half of that.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// The limit on one attempt, connecting and reading the answer included.
    pub request_timeout: Duration,
    /// Notifications waiting for the router, and deliveries waiting per target.
    pub queue_capacity: usize,
}

impl Default for DeliveryPolicy {
    fn default() -> DeliveryPolicy {
        DeliveryPolicy {
            attempts: 5,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            queue_capacity: 256,
        }
    }
}

/// Running totals for `/metrics`, counted per delivery (one notification to two targets counts
/// twice).
#[derive(Debug, Default)]
pub struct NotificationCounters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    deduplicated: AtomicU64,
}

/// A snapshot of [`NotificationCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NotificationCounts {
    /// Accepted by the target (2xx, or SNS accepted the `Publish`).
    pub sent: u64,
    /// Given up on after the retries, or refused for good (a 4xx other than 429; for SNS, an
    /// error other than throttling or a 5xx).
    pub failed: u64,
    /// Not queued: a queue was full or the notifier had stopped.
    pub dropped: u64,
    /// Skipped because the same delivery was already made.
    pub deduplicated: u64,
}

impl NotificationCounters {
    pub fn snapshot(&self) -> NotificationCounts {
        NotificationCounts {
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            deduplicated: self.deduplicated.load(Ordering::Relaxed),
        }
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A notification and when it was handed to [`Notifier::send`].
#[derive(Debug)]
struct Queued {
    notification: Notification,
    queued_at: DateTime<Utc>,
}

/// The handle the rest of opsd sends notifications through. Cheap to clone; when every clone is
/// dropped the background tasks deliver what is queued and end.
#[derive(Debug, Clone)]
pub struct Notifier {
    intake: mpsc::Sender<Queued>,
    counters: Arc<NotificationCounters>,
}

impl Notifier {
    /// Spawns the router and one delivery task per target with the default [`DeliveryPolicy`]
    /// (call it inside a Tokio runtime). The handle finishes once every `Notifier` clone is
    /// dropped and the queues are drained.
    ///
    /// It never fails: a target that [`validate_notifications`] would refuse is disabled (its
    /// deliveries count as failed, with the reason logged), and a route naming an unknown target
    /// is logged and that name skipped.
    pub fn start(
        targets: Vec<NotificationTarget>,
        routes: Vec<NotificationRoute>,
        store: Option<Store>,
    ) -> (Notifier, JoinHandle<()>) {
        Notifier::start_with_policy(targets, routes, store, DeliveryPolicy::default())
    }

    /// [`Notifier::start`] with explicit retry, timeout and queue settings.
    pub fn start_with_policy(
        targets: Vec<NotificationTarget>,
        routes: Vec<NotificationRoute>,
        store: Option<Store>,
        policy: DeliveryPolicy,
    ) -> (Notifier, JoinHandle<()>) {
        Notifier::spawn(targets, routes, store, policy, None)
    }

    /// [`Notifier::start_with_policy`] with the AWS settings SNS targets start from (credentials,
    /// HTTP client, ...) instead of the standard chain; each target's region and endpoint still
    /// apply on top, and the SDK's retries stay off.
    pub fn start_with_aws_config(
        targets: Vec<NotificationTarget>,
        routes: Vec<NotificationRoute>,
        store: Option<Store>,
        policy: DeliveryPolicy,
        aws: aws_config::SdkConfig,
    ) -> (Notifier, JoinHandle<()>) {
        Notifier::spawn(targets, routes, store, policy, Some(aws))
    }

    fn spawn(
        targets: Vec<NotificationTarget>,
        routes: Vec<NotificationRoute>,
        store: Option<Store>,
        policy: DeliveryPolicy,
        aws: Option<aws_config::SdkConfig>,
    ) -> (Notifier, JoinHandle<()>) {
        let capacity = policy.queue_capacity.max(1);
        let counters = Arc::new(NotificationCounters::default());
        let mut disabled_targets: HashMap<String, String> = HashMap::new();
        let client = build_client(&policy);
        let policy = Arc::new(policy);
        let mut target_queues = HashMap::new();
        let mut deliveries = Vec::new();
        let mut seen_names = HashSet::new();
        for target in targets {
            let problem = if !seen_names.insert(target.name.clone()) {
                Some(format!(
                    "target name {:?} is used twice; only the first is used",
                    target.name
                ))
            } else if let Err(error) = validate_target(&target) {
                Some(error.to_string())
            } else if client.is_none() {
                Some("the http client could not be built".to_string())
            } else {
                None
            };
            if let Some(problem) = problem {
                tracing::error!(
                    target_name = %target.name,
                    problem = %problem,
                    "notification target disabled"
                );
                disabled_targets.entry(target.name).or_insert(problem);
                continue;
            }
            let Some(client) = &client else { continue };
            if !routes
                .iter()
                .any(|route| route.targets.contains(&target.name))
            {
                tracing::warn!(
                    target_name = %target.name,
                    "notification target is not named by any route; only notifications that name it (like a cost budget's notify) reach it"
                );
            }
            let (queue, pending) = mpsc::channel(capacity);
            target_queues.insert(target.name.clone(), queue);
            let delivery = TargetDelivery {
                name: target.name,
                kind: target.kind,
                client: client.clone(),
                aws: aws.clone(),
                sns: None,
                policy: Arc::clone(&policy),
                dedupe: match &store {
                    Some(store) => Dedupe::Store(store.clone()),
                    None => Dedupe::Memory(HashSet::new()),
                },
                counters: Arc::clone(&counters),
            };
            deliveries.push(tokio::spawn(delivery.run(pending)));
        }
        for (route_index, route) in routes.iter().enumerate() {
            for name in &route.targets {
                if !target_queues.contains_key(name) && !disabled_targets.contains_key(name) {
                    tracing::error!(
                        route_index,
                        target_name = %name,
                        "notification route names an unknown target; skipped"
                    );
                }
            }
        }
        let (intake, incoming) = mpsc::channel(capacity);
        let router = Router {
            routes,
            target_queues,
            disabled_targets,
            counters: Arc::clone(&counters),
        };
        let handle = tokio::spawn(router.run(incoming, deliveries));
        (Notifier { intake, counters }, handle)
    }

    /// Queues a notification for delivery and returns at once: `true` if it was queued, `false`
    /// if it was dropped (queue full, or the notifier stopped), which is logged and counted.
    pub fn send(&self, notification: Notification) -> bool {
        let queued = Queued {
            notification,
            queued_at: Utc::now(),
        };
        match self.intake.try_send(queued) {
            Ok(()) => true,
            Err(refused) => {
                let (reason, queued) = match refused {
                    mpsc::error::TrySendError::Full(queued) => ("queue full", queued),
                    mpsc::error::TrySendError::Closed(queued) => ("notifier stopped", queued),
                };
                NotificationCounters::count(&self.counters.dropped);
                tracing::warn!(
                    key = %queued.notification.key,
                    severity = %queued.notification.severity,
                    service = %queued.notification.service,
                    reason,
                    "notification dropped"
                );
                false
            }
        }
    }

    /// The counters, usable after the notifier is dropped.
    pub fn counters(&self) -> Arc<NotificationCounters> {
        Arc::clone(&self.counters)
    }
}

/// The client every delivery uses: the policy's timeout per POST, and no redirects (a webhook
/// that redirects is misconfigured).
fn build_client(policy: &DeliveryPolicy) -> Option<reqwest::Client> {
    let built = reqwest::Client::builder()
        .timeout(policy.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("opsd/", env!("CARGO_PKG_VERSION")))
        .build();
    match built {
        Ok(client) => Some(client),
        Err(error) => {
            tracing::error!(
                error = %error,
                "cannot build the http client; notifications are disabled"
            );
            None
        }
    }
}

/// Hands each notification to the queues of the targets it names, or else of the targets its
/// severity routes it to.
struct Router {
    routes: Vec<NotificationRoute>,
    target_queues: HashMap<String, mpsc::Sender<Arc<Queued>>>,
    /// Targets that cannot be delivered to, and why.
    disabled_targets: HashMap<String, String>,
    counters: Arc<NotificationCounters>,
}

impl Router {
    async fn run(self, mut incoming: mpsc::Receiver<Queued>, deliveries: Vec<JoinHandle<()>>) {
        while let Some(queued) = incoming.recv().await {
            self.route(Arc::new(queued));
        }
        // Every Notifier is gone: close the target queues and let them drain.
        drop(self.target_queues);
        for delivery in deliveries {
            if let Err(error) = delivery.await {
                tracing::error!(error = %error, "notification delivery task failed");
            }
        }
    }

    fn route(&self, queued: Arc<Queued>) {
        let notification = &queued.notification;
        let targets = notification_targets(&self.routes, notification);
        if targets.is_empty() {
            tracing::debug!(
                key = %notification.key,
                severity = %notification.severity,
                "no notification target for this severity"
            );
        }
        for target in targets {
            let Some(queue) = self.target_queues.get(target) else {
                if let Some(problem) = self.disabled_targets.get(target) {
                    NotificationCounters::count(&self.counters.failed);
                    tracing::error!(
                        target_name = target,
                        key = %notification.key,
                        severity = %notification.severity,
                        problem = %problem,
                        "notification not delivered: target disabled"
                    );
                } else if notification.targets.is_some() {
                    // Routes naming unknown targets are reported once at start; a notification
                    // naming one (the config loader refuses that) is reported each time.
                    NotificationCounters::count(&self.counters.failed);
                    tracing::error!(
                        target_name = target,
                        key = %notification.key,
                        severity = %notification.severity,
                        "notification not delivered: it names a target that is not configured"
                    );
                }
                continue;
            };
            if let Err(refused) = queue.try_send(Arc::clone(&queued)) {
                let reason = match refused {
                    mpsc::error::TrySendError::Full(_) => "target queue full",
                    mpsc::error::TrySendError::Closed(_) => "target delivery stopped",
                };
                NotificationCounters::count(&self.counters.dropped);
                tracing::warn!(
                    target_name = target,
                    key = %notification.key,
                    severity = %notification.severity,
                    reason,
                    "notification dropped"
                );
            }
        }
    }
}

/// Where deliveries already made are remembered.
enum Dedupe {
    Store(Store),
    Memory(HashSet<String>),
}

/// Delivers one target's queue, one notification at a time.
struct TargetDelivery {
    name: String,
    kind: TargetKind,
    client: reqwest::Client,
    /// What an SNS client starts from; `None` means the standard AWS chain.
    aws: Option<aws_config::SdkConfig>,
    /// An SNS target's publisher, built on its first delivery.
    sns: Option<SnsPublisher>,
    policy: Arc<DeliveryPolicy>,
    dedupe: Dedupe,
    counters: Arc<NotificationCounters>,
}

impl TargetDelivery {
    async fn run(mut self, mut pending: mpsc::Receiver<Arc<Queued>>) {
        while let Some(queued) = pending.recv().await {
            self.deliver(&queued).await;
        }
    }

    async fn deliver(&mut self, queued: &Queued) {
        let notification = &queued.notification;
        let delivery_key = delivery_key(notification, &self.name);
        if self.already_delivered(&delivery_key).await {
            NotificationCounters::count(&self.counters.deduplicated);
            tracing::debug!(
                target_name = %self.name,
                key = %notification.key,
                "notification already delivered"
            );
            return;
        }
        let policy = &self.policy;
        let outcome = match &self.kind {
            TargetKind::Slack { webhook_url } => {
                let body = slack_body(notification);
                post_with_retries(&self.client, &self.name, webhook_url, &body, policy).await
            }
            TargetKind::Pagerduty { routing_key, url } => {
                let body = pagerduty_body(notification, routing_key, queued.queued_at);
                post_with_retries(&self.client, &self.name, url, &body, policy).await
            }
            TargetKind::Sns(target) => {
                let publisher = match self.sns {
                    Some(ref publisher) => publisher,
                    None => self
                        .sns
                        .insert(SnsPublisher::connect(target, self.aws.as_ref(), policy).await),
                };
                let message = sns_message(notification);
                with_retries(&self.name, policy, || publisher.publish_once(&message)).await
            }
        };
        match outcome {
            Ok(attempts) => {
                NotificationCounters::count(&self.counters.sent);
                self.remember(delivery_key).await;
                tracing::info!(
                    target_name = %self.name,
                    kind = self.kind.label(),
                    key = %notification.key,
                    severity = %notification.severity,
                    attempts,
                    "notification delivered"
                );
            }
            Err(failure) => {
                NotificationCounters::count(&self.counters.failed);
                tracing::error!(
                    target_name = %self.name,
                    kind = self.kind.label(),
                    key = %notification.key,
                    severity = %notification.severity,
                    attempts = failure.attempts,
                    error = %failure.reason,
                    "notification not delivered"
                );
            }
        }
    }

    async fn already_delivered(&self, delivery_key: &str) -> bool {
        match &self.dedupe {
            Dedupe::Memory(delivered) => delivered.contains(delivery_key),
            Dedupe::Store(store) => match store.was_notified(delivery_key).await {
                Ok(delivered) => delivered,
                Err(error) => {
                    // A repeated message beats a missing page.
                    tracing::warn!(
                        target_name = %self.name,
                        delivery_key,
                        error = %error,
                        "cannot check notification dedupe; sending anyway"
                    );
                    false
                }
            },
        }
    }

    async fn remember(&mut self, delivery_key: String) {
        match &mut self.dedupe {
            Dedupe::Memory(delivered) => {
                delivered.insert(delivery_key);
            }
            Dedupe::Store(store) => {
                if let Err(error) = store.mark_notified(&delivery_key).await {
                    tracing::warn!(
                        target_name = %self.name,
                        delivery_key = %delivery_key,
                        error = %error,
                        "cannot record notification delivery; it may be sent again after a restart"
                    );
                }
            }
        }
    }
}

/// Identifies one delivery: the notification's key, trigger or resolve, and the target.
fn delivery_key(notification: &Notification, target: &str) -> String {
    let action = if notification.resolve {
        "resolve"
    } else {
        "trigger"
    };
    format!("{}#{action}@{target}", notification.key)
}

/// Why a delivery was given up.
#[derive(Debug)]
struct DeliveryFailure {
    attempts: u32,
    reason: String,
}

/// The outcome of one POST that was not a success.
struct AttemptFailure {
    retryable: bool,
    reason: String,
    retry_after: Option<Duration>,
}

/// POSTs `body` until a 2xx, a failure that retrying cannot fix (a 4xx other than 429), or the
/// policy's attempts are spent. Returns the attempts made.
async fn post_with_retries(
    client: &reqwest::Client,
    target_name: &str,
    url: &str,
    body: &serde_json::Value,
    policy: &DeliveryPolicy,
) -> Result<u32, DeliveryFailure> {
    with_retries(target_name, policy, || post_once(client, url, body)).await
}

/// One POST of `body` to `url`.
async fn post_once(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), AttemptFailure> {
    match client.post(url).json(body).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(failure_from_response(response).await),
        Err(error) => Err(AttemptFailure {
            retryable: is_transient(&error),
            // Without the URL: a webhook URL is a secret.
            reason: error.without_url().to_string(),
            retry_after: None,
        }),
    }
}

/// Makes attempts until one succeeds, one fails in a way retrying cannot fix, or the policy's
/// attempts are spent, waiting [`backoff_delay`] between them. Returns the attempts made.
async fn with_retries<Attempt, Outcome>(
    target_name: &str,
    policy: &DeliveryPolicy,
    mut attempt_once: Attempt,
) -> Result<u32, DeliveryFailure>
where
    Attempt: FnMut() -> Outcome,
    Outcome: std::future::Future<Output = Result<(), AttemptFailure>>,
{
    let attempts = policy.attempts.max(1);
    let mut attempt = 1;
    loop {
        let failure = match attempt_once().await {
            Ok(()) => return Ok(attempt),
            Err(failure) => failure,
        };
        if !failure.retryable || attempt >= attempts {
            return Err(DeliveryFailure {
                attempts: attempt,
                reason: failure.reason,
            });
        }
        let delay = backoff_delay(policy, attempt, failure.retry_after);
        tracing::warn!(
            target_name,
            attempt,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %failure.reason,
            "notification attempt failed; retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// Connect errors, timeouts and other failures to complete the exchange are worth retrying.
fn is_transient(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// How much of an error answer's body is kept for the log.
const ANSWER_EXCERPT_CHARS: usize = 200;

async fn failure_from_response(response: reqwest::Response) -> AttemptFailure {
    let status = response.status();
    let retryable = status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let answer = response.text().await.unwrap_or_default();
    let excerpt = truncate_chars(answer.trim(), ANSWER_EXCERPT_CHARS);
    let reason = if excerpt.is_empty() {
        format!("answered {status}")
    } else {
        format!("answered {status}: {excerpt}")
    };
    AttemptFailure {
        retryable,
        reason,
        retry_after,
    }
}

/// The wait after failed attempt number `attempt` (1-based): `base * 2^(attempt-1)` capped at
/// `max_backoff`, jittered uniformly down to half of that; a `Retry-After` (capped the same way)
/// lengthens it.
fn backoff_delay(policy: &DeliveryPolicy, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let ceiling = policy
        .base_backoff
        .saturating_mul(1_u32 << doublings)
        .min(policy.max_backoff);
    let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    let jittered =
        Duration::from_nanos(rand::thread_rng().gen_range(ceiling_nanos / 2..=ceiling_nanos));
    match retry_after {
        Some(asked) => jittered.max(asked.min(policy.max_backoff)),
        None => jittered,
    }
}

/// Slack's limits on a header block's text and a section's text.
const SLACK_HEADER_CHARS: usize = 150;
const SLACK_SECTION_CHARS: usize = 3000;

/// A Slack-compatible incoming-webhook message: `text` for receivers that only read that, and
/// `blocks` (header, body, context) for those that render them.
fn slack_body(notification: &Notification) -> serde_json::Value {
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

/// PagerDuty's limits on `dedup_key` and `payload.summary`.
const PAGERDUTY_DEDUP_KEY_CHARS: usize = 255;
const PAGERDUTY_SUMMARY_CHARS: usize = 1024;

/// A PagerDuty Events API v2 event. `dedup_key` is the notification's key, so a resolve with
/// the same key closes the incident its trigger opened.
fn pagerduty_body(
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

/// SNS's limit on `Subject` (characters).
const SNS_SUBJECT_CHARS: usize = 100;
/// A message and its attributes must fit in 256 KiB; the text is kept under this many bytes.
const SNS_MESSAGE_BYTES: usize = 250 * 1024;

/// What one SNS `Publish` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SnsMessage {
    /// One line, at most [`SNS_SUBJECT_CHARS`] characters (email subscribers see it).
    subject: String,
    /// Plain text for people: the headline, the body, then the facts one per line.
    message: String,
    /// String message attributes, for subscription filter policies.
    attributes: Vec<(&'static str, String)>,
}

/// The SNS form of a notification. A resolve is labelled `[RESOLVED]`.
fn sns_message(notification: &Notification) -> SnsMessage {
    let label = if notification.resolve {
        "RESOLVED".to_string()
    } else {
        notification.severity.as_str().to_uppercase()
    };
    let headline = format!("[{label}] {}: {}", notification.service, notification.title);
    // SNS refuses line breaks and control characters in a subject.
    let one_line: String = headline
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let subject = truncate_chars(one_line.trim(), SNS_SUBJECT_CHARS)
        .trim_end()
        .to_string();

    let mut message = headline;
    if !notification.body.is_empty() {
        message.push_str("\n\n");
        message.push_str(&notification.body);
    }
    message.push_str(&format!(
        "\n\nseverity: {}\nservice: {}",
        notification.severity, notification.service
    ));
    if let Some(rollout_id) = &notification.rollout_id {
        message.push_str(&format!("\nrollout: {rollout_id}"));
    }
    message.push_str(&format!("\nkey: {}", notification.key));
    let has_details = match &notification.details {
        serde_json::Value::Null => false,
        serde_json::Value::Object(fields) => !fields.is_empty(),
        _ => true,
    };
    if has_details {
        let details = serde_json::to_string_pretty(&notification.details)
            .unwrap_or_else(|_| notification.details.to_string());
        message.push_str(&format!("\ndetails: {details}"));
    }
    let message = truncate_bytes(&message, SNS_MESSAGE_BYTES).to_string();

    // SNS refuses an empty attribute value, so an empty one is left out.
    let attributes = [
        ("severity", notification.severity.as_str().to_string()),
        ("service", notification.service.clone()),
    ]
    .into_iter()
    .filter(|(_, value)| !value.is_empty())
    .collect();
    SnsMessage {
        subject,
        message,
        attributes,
    }
}

/// One SNS target's client, built once.
struct SnsPublisher {
    topic_arn: String,
    client: aws_sdk_sns::Client,
}

impl SnsPublisher {
    /// Builds the client from `base` (or the standard AWS chain) with the target's region and
    /// endpoint, the policy's timeout per request, and no SDK retries (the policy retries).
    async fn connect(
        target: &SnsTarget,
        base: Option<&aws_config::SdkConfig>,
        policy: &DeliveryPolicy,
    ) -> SnsPublisher {
        let region = target
            .region()
            .map(|region| aws_sdk_sns::config::Region::new(region.to_string()));
        let loaded;
        let base = match base {
            Some(base) => base,
            None => {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(region) = &region {
                    loader = loader.region(region.clone());
                }
                loaded = loader.load().await;
                &loaded
            }
        };
        let timeouts = base
            .timeout_config()
            .map(|timeouts| timeouts.to_builder())
            .unwrap_or_default()
            .operation_timeout(policy.request_timeout)
            .build();
        let mut config = aws_sdk_sns::config::Builder::from(base)
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some(region) = region {
            config = config.region(region);
        }
        if let Some(endpoint_url) = &target.endpoint_url {
            config = config.endpoint_url(endpoint_url);
        }
        SnsPublisher {
            topic_arn: target.topic_arn.clone(),
            client: aws_sdk_sns::Client::from_conf(config.build()),
        }
    }

    /// One `Publish` of `message` to the topic.
    async fn publish_once(&self, message: &SnsMessage) -> Result<(), AttemptFailure> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&message.subject)
            .message(&message.message);
        for (name, value) in &message.attributes {
            let built = aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build();
            match built {
                Ok(value) => request = request.message_attributes(*name, value),
                Err(error) => {
                    return Err(AttemptFailure {
                        retryable: false,
                        reason: format!(
                            "SNS Publish to {}: message attribute {name}: {error}",
                            self.topic_arn
                        ),
                        retry_after: None,
                    })
                }
            }
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) => Err(sns_attempt_failure(&self.topic_arn, &error)),
        }
    }
}

/// How an SNS call failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SnsFailure<'a> {
    /// No answer: a timeout, or the request could not be sent or its answer read (DNS,
    /// connection refused or reset).
    NoAnswer,
    /// SNS answered with an HTTP status and, when it could be read, an error code.
    Answered { status: u16, code: Option<&'a str> },
    /// The request could not be built; sending it again would fail the same way.
    NotSent,
}

/// SNS error codes that mean "slow down".
const SNS_THROTTLING_CODES: &[&str] = &[
    "Throttled",
    "ThrottledException",
    "Throttling",
    "ThrottlingException",
    "KMSThrottling",
    "RequestLimitExceeded",
];

/// Throttling, server errors (5xx) and failures to get an answer are worth retrying; every
/// other answer (`NotFound`, `AuthorizationError`, `InvalidParameter`, ...) would come back the
/// same.
fn sns_failure_is_retryable(failure: SnsFailure<'_>) -> bool {
    match failure {
        SnsFailure::NoAnswer => true,
        SnsFailure::NotSent => false,
        SnsFailure::Answered { status, code } => {
            status >= 500
                || status == 429
                || code.is_some_and(|code| SNS_THROTTLING_CODES.contains(&code))
        }
    }
}

/// An SNS SDK error as an attempt failure naming the operation and the topic:
/// `SNS Publish to <topic ARN>: <code>: <message>`.
fn sns_attempt_failure<E>(topic_arn: &str, error: &SdkError<E>) -> AttemptFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (failure, detail) = match error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code();
            let message = service.err().message().unwrap_or("no message");
            let detail = match code {
                Some(code) => format!("{code}: {message}{}", sns_hint(code)),
                None => format!("HTTP {status}: {message}"),
            };
            (SnsFailure::Answered { status, code }, detail)
        }
        SdkError::ResponseError(response) => (
            SnsFailure::Answered {
                status: response.raw().status().as_u16(),
                code: None,
            },
            error_chain(error),
        ),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            (SnsFailure::NoAnswer, error_chain(error))
        }
        _ => (SnsFailure::NotSent, error_chain(error)),
    };
    AttemptFailure {
        retryable: sns_failure_is_retryable(failure),
        reason: format!("SNS Publish to {topic_arn}: {detail}"),
        retry_after: None,
    }
}

/// What to do about the SNS errors a configuration change fixes.
fn sns_hint(code: &str) -> &'static str {
    match code {
        "NotFound" | "NotFoundException" => {
            " (check the target's topic_arn and region, or create the topic)"
        }
        "AuthorizationError" | "AuthorizationErrorException" | "AccessDenied" => {
            " (allow sns:Publish on the topic for opsd's AWS credentials)"
        }
        "InvalidClientTokenId" | "UnrecognizedClientException" | "ExpiredToken" => {
            " (opsd's AWS credentials are invalid or expired; refresh them)"
        }
        _ => "",
    }
}

/// At most `limit` bytes of `text`, cut on a character boundary.
fn truncate_bytes(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// At most `limit` characters of `text`, cut on a character boundary.
fn truncate_chars(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use axum::extract::State;
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use axum::Json;
    use e2e_tests::aws_emulator::AwsEmulator;

    use super::*;

    /// What a receiver answers: a status, optionally with `Retry-After` seconds.
    #[derive(Clone, Copy)]
    struct Answer {
        status: StatusCode,
        retry_after_secs: Option<u64>,
    }

    fn answer(status: StatusCode) -> Answer {
        Answer {
            status,
            retry_after_secs: None,
        }
    }

    /// A local webhook receiver on 127.0.0.1 that records every body it is sent and answers from
    /// a script (then 200), or never answers when stalled.
    #[derive(Clone, Default)]
    struct Receiver {
        bodies: Arc<Mutex<Vec<serde_json::Value>>>,
        script: Arc<Mutex<VecDeque<Answer>>>,
        stall: bool,
    }

    async fn receive(
        State(receiver): State<Receiver>,
        Json(body): Json<serde_json::Value>,
    ) -> Response {
        receiver.bodies.lock().unwrap().push(body);
        if receiver.stall {
            std::future::pending::<()>().await;
        }
        let next = receiver.script.lock().unwrap().pop_front();
        match next {
            Some(Answer {
                status,
                retry_after_secs: Some(seconds),
            }) => (status, [(header::RETRY_AFTER, seconds.to_string())]).into_response(),
            Some(Answer { status, .. }) => status.into_response(),
            None => StatusCode::OK.into_response(),
        }
    }

    impl Receiver {
        async fn start(script: &[Answer]) -> (Receiver, String) {
            Receiver::start_with(script, false).await
        }

        async fn start_stalled() -> (Receiver, String) {
            Receiver::start_with(&[], true).await
        }

        async fn start_with(script: &[Answer], stall: bool) -> (Receiver, String) {
            let receiver = Receiver {
                bodies: Arc::default(),
                script: Arc::new(Mutex::new(script.iter().copied().collect())),
                stall,
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let app = axum::Router::new()
                .route("/hook", post(receive))
                .with_state(receiver.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
            (receiver, format!("http://{address}/hook"))
        }

        fn bodies(&self) -> Vec<serde_json::Value> {
            self.bodies.lock().unwrap().clone()
        }

        fn count(&self) -> usize {
            self.bodies.lock().unwrap().len()
        }
    }

    fn fast_policy() -> DeliveryPolicy {
        DeliveryPolicy {
            attempts: 5,
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            request_timeout: Duration::from_secs(5),
            queue_capacity: 64,
        }
    }

    fn slack(name: &str, url: &str) -> NotificationTarget {
        NotificationTarget {
            name: name.to_string(),
            kind: TargetKind::Slack {
                webhook_url: url.to_string(),
            },
        }
    }

    fn pagerduty(name: &str, url: &str) -> NotificationTarget {
        NotificationTarget {
            name: name.to_string(),
            kind: TargetKind::Pagerduty {
                routing_key: "routing-key-0123".to_string(),
                url: url.to_string(),
            },
        }
    }

    fn route(min_severity: Severity, targets: &[&str]) -> NotificationRoute {
        NotificationRoute {
            min_severity,
            targets: targets.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// The notifications section as the config loader reads it.
    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        #[serde(default)]
        targets: Vec<NotificationTarget>,
        #[serde(default)]
        routes: Vec<NotificationRoute>,
    }

    impl Section {
        fn validate(&self) -> Result<(), NotifyError> {
            validate_notifications(&self.targets, &self.routes)
        }
    }

    fn config(targets: Vec<NotificationTarget>, routes: Vec<NotificationRoute>) -> Section {
        Section { targets, routes }
    }

    fn start_notifier(
        section: &Section,
        policy: DeliveryPolicy,
        store: Option<Store>,
    ) -> (Notifier, JoinHandle<()>) {
        Notifier::start_with_policy(
            section.targets.clone(),
            section.routes.clone(),
            store,
            policy,
        )
    }

    fn notification(key: &str, severity: Severity) -> Notification {
        Notification {
            key: key.to_string(),
            severity,
            title: "Rollout r1 rolled back".to_string(),
            body: "error rate 7% > 1% for 60 s".to_string(),
            service: "steno".to_string(),
            rollout_id: Some("r1".to_string()),
            resolve: false,
            details: json!({"error_rate": 0.07}),
            targets: None,
        }
    }

    /// Drops the notifier and waits for its tasks to deliver everything queued.
    async fn drain(notifier: Notifier, handle: JoinHandle<()>) {
        drop(notifier);
        tokio::time::timeout(Duration::from_secs(60), handle)
            .await
            .expect("the notifier should drain its queues")
            .unwrap();
    }

    /// Polls `condition` (a guard against hanging, not a measurement).
    async fn wait_until(what: &str, condition: impl Fn() -> bool) {
        for _ in 0..6000 {
            if condition() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("gave up waiting for {what}");
    }

    #[test]
    fn severities_parse_print_and_compare() {
        assert_eq!("critical".parse::<Severity>().unwrap(), Severity::Critical);
        assert_eq!("warning".parse::<Severity>().unwrap(), Severity::Warning);
        assert_eq!("info".parse::<Severity>().unwrap(), Severity::Info);
        let unknown = "page".parse::<Severity>().unwrap_err();
        assert!(unknown
            .to_string()
            .contains("use critical, warning or info"));
        assert_eq!(
            serde_json::to_value(Severity::Warning).unwrap(),
            json!("warning")
        );
        assert_eq!(Severity::Critical.to_string(), "critical");
        assert!(Severity::Critical.is_at_least(Severity::Warning));
        assert!(Severity::Warning.is_at_least(Severity::Warning));
        assert!(Severity::Warning.is_at_least(Severity::Info));
        assert!(!Severity::Warning.is_at_least(Severity::Critical));
        assert!(!Severity::Info.is_at_least(Severity::Warning));
    }

    #[test]
    fn configuration_reads_from_yaml() {
        let yaml = r#"
targets:
  - name: team-chat
    kind: slack
    webhook_url: "https://chat.example/hooks/T000/B000/XXXX"
  - name: on-call
    kind: pagerduty
    routing_key: "R0UT1NGKEY"
routes:
  - { min_severity: warning, targets: [team-chat] }
  - { min_severity: critical, targets: [on-call] }
"#;
        let parsed: Section = serde_yaml::from_str(yaml).unwrap();
        parsed.validate().unwrap();
        assert_eq!(parsed.targets.len(), 2);
        assert_eq!(
            parsed.targets[0].kind,
            TargetKind::Slack {
                webhook_url: "https://chat.example/hooks/T000/B000/XXXX".to_string(),
            }
        );
        assert_eq!(
            parsed.targets[1].kind,
            TargetKind::Pagerduty {
                routing_key: "R0UT1NGKEY".to_string(),
                url: DEFAULT_PAGERDUTY_URL.to_string(),
            }
        );
        assert_eq!(parsed.routes[0], route(Severity::Warning, &["team-chat"]));
        let written = serde_yaml::to_string(&parsed).unwrap();
        assert_eq!(serde_yaml::from_str::<Section>(&written).unwrap(), parsed);
        assert_eq!(
            serde_yaml::from_str::<Section>("{}").unwrap(),
            Section::default()
        );

        let refused = |yaml: &str| {
            serde_yaml::from_str::<Section>(yaml)
                .unwrap_err()
                .to_string()
        };
        let unknown_field = refused(concat!(
            "targets:\n  - { name: x, kind: slack, ",
            "webhook_url: \"https://a.example/\", channel: ops }\n"
        ));
        assert!(unknown_field.contains("channel"), "{unknown_field}");
        let unknown_kind = refused("targets:\n  - { name: x, kind: email, to: t }\n");
        assert!(unknown_kind.contains("email"), "{unknown_kind}");
        let misplaced = refused(concat!(
            "targets:\n  - { name: x, kind: slack, ",
            "webhook_url: \"https://a.example/\", routing_key: k }\n"
        ));
        assert!(
            misplaced.contains("routing_key does not apply to a slack target"),
            "{misplaced}"
        );
        let missing = refused("targets:\n  - { name: x, kind: pagerduty }\n");
        assert!(missing.contains("needs routing_key"), "{missing}");
        let unknown_route_field =
            refused("routes:\n  - { min_severity: info, targets: [], extra: 1 }\n");
        assert!(
            unknown_route_field.contains("extra"),
            "{unknown_route_field}"
        );
        let unknown_severity = refused("routes:\n  - { min_severity: urgent, targets: [] }\n");
        assert!(unknown_severity.contains("urgent"), "{unknown_severity}");
    }

    #[test]
    fn validation_names_the_mistake_without_revealing_secrets() {
        let secret_url = "https://chat.example/hooks/SECRET";
        let duplicate = config(vec![slack("a", secret_url), slack("a", secret_url)], vec![]);
        assert!(matches!(
            duplicate.validate(),
            Err(NotifyError::DuplicateTarget { .. })
        ));

        let unknown = config(
            vec![slack("a", secret_url)],
            vec![route(Severity::Info, &["a", "b"])],
        );
        match unknown.validate() {
            Err(NotifyError::UnknownRouteTarget {
                route_index,
                target,
            }) => {
                assert_eq!(route_index, 0);
                assert_eq!(target, "b");
            }
            other => panic!("expected UnknownRouteTarget, got {other:?}"),
        }

        let not_http = config(vec![slack("a", "ftp://chat.example/SECRET")], vec![]);
        let error = not_http.validate().unwrap_err();
        assert!(matches!(error, NotifyError::InvalidTarget { .. }));
        assert!(!error.to_string().contains("SECRET"), "{error}");
        let not_a_url = config(vec![slack("a", "SECRET")], vec![]);
        assert!(!not_a_url
            .validate()
            .unwrap_err()
            .to_string()
            .contains("SECRET"));

        let mut no_key = pagerduty("pd", DEFAULT_PAGERDUTY_URL);
        if let TargetKind::Pagerduty { routing_key, .. } = &mut no_key.kind {
            routing_key.clear();
        }
        assert!(matches!(
            config(vec![no_key], vec![]).validate(),
            Err(NotifyError::InvalidTarget { .. })
        ));
        assert!(matches!(
            config(vec![slack(" ", secret_url)], vec![]).validate(),
            Err(NotifyError::EmptyTargetName)
        ));

        let rendered = format!(
            "{:?}",
            config(
                vec![
                    slack("a", secret_url),
                    pagerduty("pd", DEFAULT_PAGERDUTY_URL)
                ],
                vec![]
            )
        );
        assert!(!rendered.contains("SECRET"), "{rendered}");
        assert!(!rendered.contains("routing-key-0123"), "{rendered}");
    }

    #[test]
    fn routes_choose_targets_by_minimum_severity() {
        let routes = config(
            vec![],
            vec![
                route(Severity::Info, &["log"]),
                route(Severity::Warning, &["chat", "log"]),
                route(Severity::Critical, &["pager"]),
            ],
        );
        assert_eq!(routed_targets(&routes.routes, Severity::Info), ["log"]);
        assert_eq!(
            routed_targets(&routes.routes, Severity::Warning),
            ["log", "chat"]
        );
        assert_eq!(
            routed_targets(&routes.routes, Severity::Critical),
            ["log", "chat", "pager"]
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let policy = DeliveryPolicy::default();
        for _ in 0..100 {
            let first = backoff_delay(&policy, 1, None);
            assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
            let third = backoff_delay(&policy, 3, None);
            assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(800));
            let late = backoff_delay(&policy, 40, None);
            assert!(late >= Duration::from_millis(2500) && late <= Duration::from_secs(5));
            let asked = backoff_delay(&policy, 1, Some(Duration::from_secs(2)));
            assert_eq!(asked, Duration::from_secs(2));
            let asked_too_much = backoff_delay(&policy, 1, Some(Duration::from_secs(600)));
            assert_eq!(asked_too_much, Duration::from_secs(5));
        }
    }

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

    #[tokio::test]
    async fn a_warning_does_not_page() {
        let (chat, chat_url) = Receiver::start(&[]).await;
        let (pager, pager_url) = Receiver::start(&[]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![slack("chat", &chat_url), pagerduty("pager", &pager_url)],
                vec![
                    route(Severity::Warning, &["chat"]),
                    route(Severity::Critical, &["pager"]),
                ],
            ),
            fast_policy(),
            None,
        );
        notifier.send(notification("k/info", Severity::Info));
        notifier.send(notification("k/warning", Severity::Warning));
        notifier.send(notification("k/critical", Severity::Critical));
        drain(notifier, handle).await;

        assert_eq!(chat.count(), 2);
        let paged = pager.bodies();
        assert_eq!(paged.len(), 1);
        assert_eq!(paged[0]["dedup_key"], "k/critical");
    }

    #[tokio::test]
    async fn a_notification_naming_targets_goes_only_to_them() {
        let (chat, chat_url) = Receiver::start(&[]).await;
        let (finance, finance_url) = Receiver::start(&[]).await;
        let (pager, pager_url) = Receiver::start(&[]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![
                    slack("chat", &chat_url),
                    slack("finance", &finance_url),
                    pagerduty("pager", &pager_url),
                ],
                // No route names finance; a critical notification would reach chat and pager.
                vec![route(Severity::Info, &["chat", "pager"])],
            ),
            fast_policy(),
            None,
        );
        let mut named = notification("cost/budget/prod", Severity::Critical);
        named.targets = Some(vec!["finance".into(), "finance".into()]);
        notifier.send(named.clone());
        // The same key again: deduplicated per target as usual.
        notifier.send(named);
        let mut unknown = notification("cost/budget/other", Severity::Critical);
        unknown.targets = Some(vec!["nowhere".into()]);
        notifier.send(unknown);
        notifier.send(notification("rollout/r1/rolled_back", Severity::Critical));
        let counters = notifier.counters();
        drain(notifier, handle).await;

        let delivered = finance.bodies();
        assert_eq!(delivered.len(), 1, "{delivered:?}");
        assert!(delivered[0]["text"]
            .as_str()
            .unwrap()
            .contains("Rollout r1 rolled back"));
        // The routed notification reached its routes and not finance.
        assert_eq!(chat.count(), 1);
        assert_eq!(pager.bodies()[0]["dedup_key"], "rollout/r1/rolled_back");
        assert_eq!(pager.count(), 1);
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                sent: 3,
                deduplicated: 1,
                failed: 1,
                ..Default::default()
            }
        );
    }

    #[tokio::test]
    async fn a_key_is_delivered_once_even_after_reopening_the_store() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("opsd.db");
        let (receiver, url) = Receiver::start(&[]).await;
        let targets = config(
            vec![slack("chat", &url)],
            vec![route(Severity::Info, &["chat"])],
        );

        let store = Store::open(&path).await.unwrap();
        let (notifier, handle) = start_notifier(&targets, fast_policy(), Some(store.clone()));
        notifier.send(notification("rollout/r1/rolled_back", Severity::Critical));
        notifier.send(notification("rollout/r1/rolled_back", Severity::Critical));
        let counters = notifier.counters();
        drain(notifier, handle).await;
        assert_eq!(receiver.count(), 1);
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                sent: 1,
                deduplicated: 1,
                ..Default::default()
            }
        );
        store.close().await;

        // A restarted opsd re-emits the same state change.
        let store = Store::open(&path).await.unwrap();
        let (notifier, handle) = start_notifier(&targets, fast_policy(), Some(store.clone()));
        notifier.send(notification("rollout/r1/rolled_back", Severity::Critical));
        // Resolving is a different state change and goes through.
        let mut resolve = notification("rollout/r1/rolled_back", Severity::Critical);
        resolve.resolve = true;
        notifier.send(resolve);
        let counters = notifier.counters();
        drain(notifier, handle).await;
        assert_eq!(receiver.count(), 2);
        assert!(receiver.bodies()[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED]"));
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                sent: 1,
                deduplicated: 1,
                ..Default::default()
            }
        );
        assert!(store
            .was_notified("rollout/r1/rolled_back#trigger@chat")
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn without_a_store_dedupe_is_kept_in_memory_per_target() {
        let (chat, chat_url) = Receiver::start(&[]).await;
        let (pager, pager_url) = Receiver::start(&[]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![slack("chat", &chat_url), pagerduty("pager", &pager_url)],
                vec![route(Severity::Info, &["chat", "pager"])],
            ),
            fast_policy(),
            None,
        );
        for _ in 0..3 {
            notifier.send(notification("rollout/r1/paused", Severity::Warning));
        }
        let counters = notifier.counters();
        drain(notifier, handle).await;
        assert_eq!(chat.count(), 1);
        assert_eq!(pager.count(), 1);
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                sent: 2,
                deduplicated: 4,
                ..Default::default()
            }
        );
    }

    #[tokio::test]
    async fn server_errors_are_retried_until_accepted() {
        let failing = answer(StatusCode::INTERNAL_SERVER_ERROR);
        let (receiver, url) = Receiver::start(&[failing, failing]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![slack("chat", &url)],
                vec![route(Severity::Info, &["chat"])],
            ),
            fast_policy(),
            None,
        );
        notifier.send(notification("k", Severity::Critical));
        let counters = notifier.counters();
        drain(notifier, handle).await;
        assert_eq!(receiver.count(), 3);
        let bodies = receiver.bodies();
        assert!(bodies.iter().all(|body| body == &bodies[0]));
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                sent: 1,
                ..Default::default()
            }
        );
    }

    #[tokio::test]
    async fn too_many_requests_is_retried_after_the_asked_delay_capped_by_policy() {
        let throttled = Answer {
            status: StatusCode::TOO_MANY_REQUESTS,
            retry_after_secs: Some(30),
        };
        let (receiver, url) = Receiver::start(&[throttled, answer(StatusCode::BAD_GATEWAY)]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![pagerduty("pager", &url)],
                vec![route(Severity::Info, &["pager"])],
            ),
            fast_policy(),
            None,
        );
        notifier.send(notification("k", Severity::Critical));
        let counters = notifier.counters();
        drain(notifier, handle).await;
        assert_eq!(receiver.count(), 3);
        assert_eq!(counters.snapshot().sent, 1);
    }

    #[tokio::test]
    async fn a_client_error_is_not_retried_nor_recorded_as_delivered() {
        let refused = answer(StatusCode::BAD_REQUEST);
        let (receiver, url) = Receiver::start(&[refused]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![slack("chat", &url)],
                vec![route(Severity::Info, &["chat"])],
            ),
            fast_policy(),
            None,
        );
        let counters = notifier.counters();
        notifier.send(notification("k", Severity::Critical));
        let receiver_for_wait = receiver.clone();
        wait_until("the first failure", move || counters.snapshot().failed == 1).await;
        assert_eq!(receiver_for_wait.count(), 1);

        // The failed delivery was not recorded, so the same key may be tried again.
        notifier.send(notification("k", Severity::Critical));
        let counters = notifier.counters();
        drain(notifier, handle).await;
        assert_eq!(receiver.count(), 2);
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                sent: 1,
                failed: 1,
                ..Default::default()
            }
        );
    }

    #[tokio::test]
    async fn retries_stop_after_the_policy_attempts() {
        let unavailable = answer(StatusCode::SERVICE_UNAVAILABLE);
        let (receiver, url) = Receiver::start(&[unavailable; 10]).await;
        let policy = DeliveryPolicy {
            attempts: 3,
            ..fast_policy()
        };
        let (notifier, handle) = start_notifier(
            &config(
                vec![slack("chat", &url)],
                vec![route(Severity::Info, &["chat"])],
            ),
            policy,
            None,
        );
        notifier.send(notification("k", Severity::Critical));
        let counters = notifier.counters();
        drain(notifier, handle).await;
        assert_eq!(receiver.count(), 3);
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                failed: 1,
                ..Default::default()
            }
        );
    }

    #[tokio::test]
    async fn an_unreachable_target_fails_without_affecting_others() {
        // A port that was just free: nothing listens there.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_url = format!("http://{}/hook", closed.local_addr().unwrap());
        drop(closed);
        let (pager, pager_url) = Receiver::start(&[]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![slack("dead", &dead_url), pagerduty("pager", &pager_url)],
                vec![route(Severity::Info, &["dead", "pager"])],
            ),
            fast_policy(),
            None,
        );
        notifier.send(notification("k", Severity::Critical));
        let counters = notifier.counters();
        drain(notifier, handle).await;
        assert_eq!(pager.count(), 1);
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                sent: 1,
                failed: 1,
                ..Default::default()
            }
        );
    }

    #[tokio::test]
    async fn a_stalled_target_blocks_neither_send_nor_other_targets() {
        let (stalled, stalled_url) = Receiver::start_stalled().await;
        let (pager, pager_url) = Receiver::start(&[]).await;
        let policy = DeliveryPolicy {
            request_timeout: Duration::from_secs(3600),
            queue_capacity: 2,
            ..fast_policy()
        };
        let (notifier, _handle) = start_notifier(
            &config(
                vec![
                    slack("stalled", &stalled_url),
                    pagerduty("pager", &pager_url),
                ],
                vec![route(Severity::Info, &["stalled", "pager"])],
            ),
            policy,
            None,
        );
        let counters = notifier.counters();

        assert!(notifier.send(notification("k/0", Severity::Critical)));
        let held = stalled.clone();
        wait_until("the stalled receiver to hold a request", move || {
            held.count() == 1
        })
        .await;

        // The stalled target's delivery task now waits on an answer that never comes; every send
        // still returns, and the pager still gets each notification.
        for index in 1..=5 {
            assert!(notifier.send(notification(&format!("k/{index}"), Severity::Critical)));
            let paged = pager.clone();
            wait_until("the pager to receive", move || paged.count() == index + 1).await;
        }
        let keys: Vec<serde_json::Value> = pager
            .bodies()
            .iter()
            .map(|b| b["dedup_key"].clone())
            .collect();
        assert_eq!(
            keys,
            (0..=5).map(|i| json!(format!("k/{i}"))).collect::<Vec<_>>()
        );
        assert_eq!(stalled.count(), 1);
        // The stalled target's queue (2) overflowed: the 3 others were dropped, not waited for.
        let counts = counters.snapshot();
        assert_eq!(counts.sent, 6);
        assert_eq!(counts.dropped, 3);
    }

    #[tokio::test]
    async fn a_send_after_the_notifier_stopped_is_dropped() {
        let (notifier, handle) = start_notifier(&Section::default(), fast_policy(), None);
        handle.abort();
        let _ = handle.await;
        assert!(!notifier.send(notification("k", Severity::Critical)));
        assert_eq!(notifier.counters().snapshot().dropped, 1);
    }

    #[tokio::test]
    async fn a_notification_no_route_selects_goes_nowhere() {
        let (receiver, url) = Receiver::start(&[]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![slack("chat", &url)],
                vec![route(Severity::Critical, &["chat"])],
            ),
            fast_policy(),
            None,
        );
        assert!(notifier.send(notification("k", Severity::Info)));
        let counters = notifier.counters();
        drain(notifier, handle).await;
        assert_eq!(receiver.count(), 0);
        assert_eq!(counters.snapshot(), NotificationCounts::default());
    }

    #[tokio::test]
    async fn start_disables_a_misconfigured_target_and_keeps_the_others() {
        let (pager, pager_url) = Receiver::start(&[]).await;
        let (notifier, handle) = start_notifier(
            &config(
                vec![
                    slack("broken", "not a url"),
                    pagerduty("pager", &pager_url),
                    slack("pager", "https://chat.example/duplicate"),
                ],
                vec![route(Severity::Info, &["broken", "pager", "missing"])],
            ),
            fast_policy(),
            None,
        );
        notifier.send(notification("k", Severity::Critical));
        let counters = notifier.counters();
        drain(notifier, handle).await;
        // The duplicate name kept the first definition.
        assert_eq!(pager.count(), 1);
        assert_eq!(pager.bodies()[0]["event_action"], "trigger");
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                sent: 1,
                failed: 1,
                ..Default::default()
            }
        );
    }

    #[test]
    fn long_texts_are_cut_on_character_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 10), "hi");
        let mut long = notification(&"k".repeat(300), Severity::Info);
        long.title = "é".repeat(2000);
        let body = pagerduty_body(&long, "key", Utc::now());
        assert_eq!(body["dedup_key"].as_str().unwrap().chars().count(), 255);
        assert_eq!(
            body["payload"]["summary"].as_str().unwrap().chars().count(),
            1024
        );
        let slack = slack_body(&long);
        assert_eq!(
            slack["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            150
        );
    }

    const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:steno-alerts";

    fn sns(name: &str, topic_arn: &str, endpoint_url: Option<&str>) -> NotificationTarget {
        NotificationTarget {
            name: name.to_string(),
            kind: TargetKind::Sns(SnsTarget {
                topic_arn: topic_arn.to_string(),
                region: None,
                endpoint_url: endpoint_url.map(str::to_string),
            }),
        }
    }

    #[test]
    fn sns_targets_read_from_yaml_and_name_the_wrong_field() {
        let yaml = r#"
targets:
  - name: alerts
    kind: sns
    topic_arn: "arn:aws:sns:us-east-1:123456789012:steno-alerts"
  - name: emulated
    kind: sns
    topic_arn: "arn:aws:sns:eu-west-1:123456789012:steno-alerts"
    region: eu-west-1
    endpoint_url: "http://127.0.0.1:5000"
routes:
  - { min_severity: critical, targets: [alerts, emulated] }
"#;
        let parsed: Section = serde_yaml::from_str(yaml).unwrap();
        parsed.validate().unwrap();
        assert_eq!(parsed.targets[0], sns("alerts", TOPIC_ARN, None));
        let TargetKind::Sns(emulated) = &parsed.targets[1].kind else {
            panic!("expected an sns target");
        };
        assert_eq!(emulated.region(), Some("eu-west-1"));
        assert_eq!(
            emulated.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        let TargetKind::Sns(alerts) = &parsed.targets[0].kind else {
            panic!("expected an sns target");
        };
        assert_eq!(alerts.region(), Some("us-east-1"));
        let written = serde_yaml::to_string(&parsed).unwrap();
        assert!(!written.contains("webhook_url"), "{written}");
        assert_eq!(serde_yaml::from_str::<Section>(&written).unwrap(), parsed);

        let refused = |yaml: &str| {
            serde_yaml::from_str::<Section>(yaml)
                .unwrap_err()
                .to_string()
        };
        let missing = refused("targets:\n  - { name: x, kind: sns }\n");
        assert!(missing.contains("needs topic_arn"), "{missing}");
        let misplaced = refused(concat!(
            "targets:\n  - { name: x, kind: sns, ",
            "topic_arn: \"arn:aws:sns:us-east-1:123456789012:t\", url: \"http://a\" }\n"
        ));
        assert!(
            misplaced.contains("url (use endpoint_url) does not apply to an sns target"),
            "{misplaced}"
        );
        let foreign = refused(concat!(
            "targets:\n  - { name: x, kind: slack, ",
            "webhook_url: \"https://a.example/\", topic_arn: t }\n"
        ));
        assert!(
            foreign.contains("topic_arn does not apply to a slack target"),
            "{foreign}"
        );

        let problem = |target: NotificationTarget| {
            config(vec![target], vec![])
                .validate()
                .unwrap_err()
                .to_string()
        };
        for (arn, expected) in [
            ("steno-alerts", "is not an SNS topic ARN"),
            (
                "arn:aws:sqs:us-east-1:123456789012:q",
                "is not an SNS topic ARN",
            ),
            (
                "arn:aws:sns:us-east-1:123456789012",
                "is not an SNS topic ARN",
            ),
            ("arn:aws:sns::123456789012:t", "no valid region"),
            ("arn:aws:sns:us-east-1:1234:t", "12-digit account"),
            ("arn:aws:sns:us-east-1:123456789012:", "invalid topic name"),
            (
                "arn:aws:sns:us-east-1:123456789012:a b",
                "invalid topic name",
            ),
            ("arn:aws:sns:us-east-1:123456789012:t.fifo", "FIFO topic"),
        ] {
            let message = problem(sns("x", arn, None));
            assert!(message.contains("topic_arn"), "{arn}: {message}");
            assert!(message.contains(expected), "{arn}: {message}");
        }
        let mut other_region = sns("x", TOPIC_ARN, None);
        if let TargetKind::Sns(target) = &mut other_region.kind {
            target.region = Some("eu-west-1".to_string());
        }
        let message = problem(other_region);
        assert!(
            message.contains("region eu-west-1 is not the topic's region us-east-1"),
            "{message}"
        );
        let message = problem(sns("x", TOPIC_ARN, Some("localhost:5000")));
        assert!(message.contains("endpoint_url"), "{message}");
        assert_eq!(
            parse_sns_topic_arn("arn:aws-cn:sns:cn-north-1:123456789012:a_b-c").unwrap(),
            SnsTopicArn {
                partition: "aws-cn",
                region: "cn-north-1",
                account: "123456789012",
                name: "a_b-c",
            }
        );
    }

    #[test]
    fn sns_failures_retry_only_throttling_server_errors_and_no_answer() {
        let answered = |status, code| SnsFailure::Answered { status, code };
        for retryable in [
            answered(400, Some("Throttled")),
            answered(400, Some("ThrottlingException")),
            answered(429, Some("Throttling")),
            answered(500, Some("InternalError")),
            answered(503, None),
            SnsFailure::NoAnswer,
        ] {
            assert!(sns_failure_is_retryable(retryable), "{retryable:?}");
        }
        for final_failure in [
            answered(404, Some("NotFound")),
            answered(403, Some("AuthorizationError")),
            answered(400, Some("InvalidParameter")),
            answered(400, Some("KMSDisabled")),
            answered(400, None),
            SnsFailure::NotSent,
        ] {
            assert!(
                !sns_failure_is_retryable(final_failure),
                "{final_failure:?}"
            );
        }
    }

    #[test]
    fn sns_messages_have_a_short_subject_text_for_people_and_attributes() {
        let message = sns_message(&notification("rollout/r1/rolled_back", Severity::Critical));
        assert_eq!(message.subject, "[CRITICAL] steno: Rollout r1 rolled back");
        assert_eq!(
            message.message,
            "[CRITICAL] steno: Rollout r1 rolled back\n\nerror rate 7% > 1% for 60 s\n\n\
             severity: critical\nservice: steno\nrollout: r1\nkey: rollout/r1/rolled_back\n\
             details: {\n  \"error_rate\": 0.07\n}"
        );
        assert_eq!(
            message.attributes,
            [
                ("severity", "critical".to_string()),
                ("service", "steno".to_string())
            ]
        );

        let mut long = notification("k", Severity::Info);
        long.title = format!("line one\nline two {}", "é".repeat(300));
        long.resolve = true;
        long.service = String::new();
        long.details = json!({});
        let message = sns_message(&long);
        assert_eq!(message.subject.chars().count(), SNS_SUBJECT_CHARS);
        assert!(message
            .subject
            .starts_with("[RESOLVED] : line one line two é"));
        assert!(!message.message.contains("details"));
        assert_eq!(message.attributes, [("severity", "info".to_string())]);

        long.body = "ü".repeat(SNS_MESSAGE_BYTES);
        let message = sns_message(&long);
        assert!(message.message.len() <= SNS_MESSAGE_BYTES);
        assert!(message.message.len() > SNS_MESSAGE_BYTES - 4);
        assert_eq!(truncate_bytes("héllo", 2), "h");
        assert_eq!(truncate_bytes("hi", 10), "hi");
    }

    /// SDK settings for the AWS emulator without an endpoint, so each SNS target's
    /// `endpoint_url` decides where requests go: its fixed test credentials and region, no SDK
    /// retries.
    async fn aws_config(emulator: &AwsEmulator) -> aws_config::SdkConfig {
        let mut builder = emulator.sdk_config().await.into_builder();
        builder.set_endpoint_url(None);
        builder.build()
    }

    /// An SNS client for setting up topics and subscriptions on the emulator.
    async fn sns_client(emulator: &AwsEmulator) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&emulator.sdk_config().await)
    }

    /// The bodies an SNS `http` subscription was sent.
    type SnsDeliveries = Arc<Mutex<Vec<serde_json::Value>>>;

    /// moto POSTs each notification as JSON labelled `text/plain`, as SNS does.
    async fn receive_sns(State(received): State<SnsDeliveries>, body: String) -> StatusCode {
        let parsed = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
        received.lock().unwrap().push(parsed);
        StatusCode::OK
    }

    /// A local `http` subscription endpoint recording what it is sent.
    async fn start_sns_subscriber() -> (SnsDeliveries, String) {
        let received = SnsDeliveries::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/sns", post(receive_sns))
            .with_state(Arc::clone(&received));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (received, format!("http://{address}/sns"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sns_publishes_subject_message_and_attributes_to_the_topic() {
        let emulator = tokio::task::spawn_blocking(AwsEmulator::start)
            .await
            .unwrap();
        let sns_client = sns_client(&emulator).await;
        let topic_arn = sns_client
            .create_topic()
            .name("steno-alerts")
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        assert_eq!(topic_arn, TOPIC_ARN);
        let (received, subscriber_url) = start_sns_subscriber().await;
        sns_client
            .subscribe()
            .topic_arn(&topic_arn)
            .protocol("http")
            .endpoint(&subscriber_url)
            .send()
            .await
            .unwrap();

        let (notifier, handle) = Notifier::start_with_aws_config(
            vec![sns("alerts", &topic_arn, Some(&emulator.endpoint_url()))],
            vec![route(Severity::Warning, &["alerts"])],
            None,
            fast_policy(),
            aws_config(&emulator).await,
        );
        notifier.send(notification("rollout/r1/rolled_back", Severity::Critical));
        notifier.send(notification("rollout/r1/rolled_back", Severity::Critical));
        notifier.send(notification("rollout/r1/info", Severity::Info));
        let mut long = notification("rollout/r1/long", Severity::Warning);
        long.title = "é".repeat(300);
        notifier.send(long);
        let counters = notifier.counters();
        drain(notifier, handle).await;
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                sent: 2,
                deduplicated: 1,
                ..Default::default()
            }
        );

        // What the http subscriber was sent: moto POSTs the SNS notification envelope.
        let delivered = received.lock().unwrap().clone();
        assert_eq!(delivered.len(), 2, "{delivered:?}");
        let expected = sns_message(&notification("rollout/r1/rolled_back", Severity::Critical));
        assert_eq!(delivered[0]["Type"], "Notification");
        assert_eq!(delivered[0]["TopicArn"], topic_arn);
        assert_eq!(
            delivered[0]["Subject"],
            "[CRITICAL] steno: Rollout r1 rolled back"
        );
        assert_eq!(delivered[0]["Message"], expected.message);
        assert!(delivered[0]["Message"]
            .as_str()
            .unwrap()
            .starts_with("[CRITICAL] steno: Rollout r1 rolled back\n\nerror rate 7% > 1%"));
        let long_subject = delivered[1]["Subject"].as_str().unwrap();
        assert_eq!(long_subject.chars().count(), 100);
        assert!(long_subject.starts_with("[WARNING] steno: éé"));

        // moto's http delivery leaves the attributes out; its record of each publish has them.
        let state: serde_json::Value =
            reqwest::get(format!("{}/moto-api/data.json", emulator.moto_url()))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let topics = state["sns"]["Topic"].as_array().unwrap();
        let topic = topics.iter().find(|t| t["arn"] == topic_arn).unwrap();
        let published = topic["sent_notifications"].as_array().unwrap();
        assert_eq!(published.len(), 2);
        // Each entry: [message id, message, subject, attributes, group id].
        assert_eq!(published[0][1], expected.message);
        assert_eq!(published[0][2], expected.subject);
        assert_eq!(
            published[0][3],
            json!({
                "severity": {"Type": "String", "Value": "critical"},
                "service": {"Type": "String", "Value": "steno"},
            })
        );
        assert_eq!(published[1][3]["severity"]["Value"], "warning");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sns_publish_to_a_missing_topic_fails_at_once_naming_the_topic() {
        let emulator = tokio::task::spawn_blocking(AwsEmulator::start)
            .await
            .unwrap();
        let missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic";
        let target = SnsTarget {
            topic_arn: missing.to_string(),
            region: None,
            endpoint_url: Some(emulator.endpoint_url()),
        };
        let base = aws_config(&emulator).await;
        let publisher = SnsPublisher::connect(&target, Some(&base), &fast_policy()).await;
        let message = sns_message(&notification("k", Severity::Critical));
        let failure = publisher.publish_once(&message).await.unwrap_err();
        assert!(!failure.retryable, "{}", failure.reason);
        assert!(
            failure
                .reason
                .starts_with(&format!("SNS Publish to {missing}: NotFound: ")),
            "{}",
            failure.reason
        );

        // Through the notifier: one attempt, no backoff (a retry would wait 20 s or more).
        let policy = DeliveryPolicy {
            base_backoff: Duration::from_secs(20),
            max_backoff: Duration::from_secs(20),
            ..fast_policy()
        };
        let (notifier, handle) = Notifier::start_with_aws_config(
            vec![NotificationTarget {
                name: "alerts".to_string(),
                kind: TargetKind::Sns(target),
            }],
            vec![route(Severity::Info, &["alerts"])],
            None,
            policy,
            base,
        );
        notifier.send(notification("k", Severity::Critical));
        let counters = notifier.counters();
        drop(notifier);
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("a missing topic should not be retried")
            .unwrap();
        assert_eq!(
            counters.snapshot(),
            NotificationCounts {
                failed: 1,
                ..Default::default()
            }
        );
    }

    #[tokio::test]
    async fn sns_without_an_answer_is_retryable_and_names_the_topic() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let target = SnsTarget {
            topic_arn: TOPIC_ARN.to_string(),
            region: None,
            endpoint_url: Some(dead_url),
        };
        let base = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .credentials_provider(aws_credential_provider())
            .build();
        let publisher = SnsPublisher::connect(&target, Some(&base), &fast_policy()).await;
        let message = sns_message(&notification("k", Severity::Critical));
        let failure = publisher.publish_once(&message).await.unwrap_err();
        assert!(failure.retryable, "{}", failure.reason);
        assert!(
            failure
                .reason
                .starts_with(&format!("SNS Publish to {TOPIC_ARN}: ")),
            "{}",
            failure.reason
        );
    }

    fn aws_credential_provider() -> aws_sdk_sns::config::SharedCredentialsProvider {
        aws_sdk_sns::config::SharedCredentialsProvider::new(aws_sdk_sns::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
    }
}
