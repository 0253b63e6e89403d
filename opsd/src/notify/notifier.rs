//! [`Notifier`]: the queue notifications are sent through, the router that hands each one to
//! the queues of its targets, one delivery task per target (dedupe, then the channel's format and
//! sending), the delivery policy and the counters `/metrics` shows.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::sns::SnsPublisher;
use super::targets::{notification_targets, validate_target};
use super::{pagerduty, slack, sns};
use super::{Notification, NotificationRoute, NotificationTarget, TargetKind};
use crate::core::event::EventKind;
use crate::store::{NewEvent, Store};

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
                slack::deliver(&self.client, &self.name, webhook_url, notification, policy).await
            }
            TargetKind::Pagerduty { routing_key, url } => {
                let queued_at = queued.queued_at;
                pagerduty::deliver(
                    &self.client,
                    &self.name,
                    routing_key,
                    url,
                    notification,
                    queued_at,
                    policy,
                )
                .await
            }
            TargetKind::Sns(target) => {
                let publisher = match self.sns {
                    Some(ref publisher) => publisher,
                    None => self
                        .sns
                        .insert(SnsPublisher::connect(target, self.aws.as_ref(), policy).await),
                };
                sns::deliver(publisher, &self.name, notification, policy).await
            }
        };
        match outcome {
            Ok(attempts) => {
                NotificationCounters::count(&self.counters.sent);
                self.remember(delivery_key).await;
                self.put_on_timeline(notification, EventKind::Notification, "sent to")
                    .await;
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
                self.put_on_timeline(
                    notification,
                    EventKind::NotificationFailed,
                    "could not be sent to",
                )
                .await;
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

    /// Puts a delivery or a failure on the service's timeline when the notifier has a store.
    async fn put_on_timeline(&self, notification: &Notification, kind: EventKind, verb: &str) {
        let Dedupe::Store(store) = &self.dedupe else {
            return;
        };
        let action = if notification.resolve {
            "resolved"
        } else {
            "notified"
        };
        let event = NewEvent {
            at: chrono::Utc::now(),
            service: notification.service.clone(),
            rollout_id: notification.rollout_id.clone(),
            kind: kind.as_str().to_string(),
            message: format!(
                "{} ({action}, {}) {verb} {} ({})",
                notification.title,
                notification.severity,
                self.name,
                self.kind.label()
            ),
            data: serde_json::json!({"key": notification.key, "target": self.name}),
        };
        let mut appended = store.append_event(&event).await;
        if let Err(crate::store::StoreError::RolloutNotFound { .. }) = appended {
            // A notification about a rollout this store does not hold still belongs on the
            // service's timeline.
            appended = store
                .append_event(&NewEvent {
                    rollout_id: None,
                    ..event
                })
                .await;
        }
        if let Err(error) = appended {
            tracing::warn!(target_name = %self.name, error = %error, "cannot put a notification on the timeline");
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::notify::test_support::{
        config, drain, fast_policy, notification, pagerduty, route, slack, start_notifier,
        wait_until, Receiver, Section,
    };
    use crate::notify::Severity;

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
        let on_timeline: Vec<String> = store
            .list_events(None, None, 10)
            .await
            .unwrap()
            .into_iter()
            .filter(|event| event.kind == "notification")
            .map(|event| event.message)
            .collect();
        assert_eq!(
            on_timeline.len(),
            2,
            "each delivery, none of the duplicates: {on_timeline:?}"
        );
        assert!(
            on_timeline[0].contains("(resolved, critical) sent to chat (slack)"),
            "{on_timeline:?}"
        );
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
}
