//! What the notify tests share: local webhook receivers that record what they are sent and
//! answer from a script, targets and routes in one line, a fast delivery policy, and a
//! notification to send.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinHandle;

use super::{
    validate_notifications, DeliveryPolicy, Notification, NotificationRoute, NotificationTarget,
    Notifier, NotifyError, Severity, SnsTarget, TargetKind,
};
use crate::store::Store;

/// What a receiver answers: a status, optionally with `Retry-After` seconds.
#[derive(Clone, Copy)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) retry_after_secs: Option<u64>,
}

pub(super) fn answer(status: StatusCode) -> Answer {
    Answer {
        status,
        retry_after_secs: None,
    }
}

/// A local webhook receiver on 127.0.0.1 that records every body it is sent and answers from
/// a script (then 200), or never answers when stalled.
#[derive(Clone, Default)]
pub(super) struct Receiver {
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
    pub(super) async fn start(script: &[Answer]) -> (Receiver, String) {
        Receiver::start_with(script, false).await
    }

    pub(super) async fn start_stalled() -> (Receiver, String) {
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

    pub(super) fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }

    pub(super) fn count(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
}

pub(super) fn fast_policy() -> DeliveryPolicy {
    DeliveryPolicy {
        attempts: 5,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(5),
        queue_capacity: 64,
    }
}

pub(super) fn slack(name: &str, url: &str) -> NotificationTarget {
    NotificationTarget {
        name: name.to_string(),
        kind: TargetKind::Slack {
            webhook_url: url.to_string(),
        },
    }
}

pub(super) fn pagerduty(name: &str, url: &str) -> NotificationTarget {
    NotificationTarget {
        name: name.to_string(),
        kind: TargetKind::Pagerduty {
            routing_key: "routing-key-0123".to_string(),
            url: url.to_string(),
        },
    }
}

pub(super) fn route(min_severity: Severity, targets: &[&str]) -> NotificationRoute {
    NotificationRoute {
        min_severity,
        targets: targets.iter().map(|t| t.to_string()).collect(),
    }
}

/// The notifications section as the config loader reads it.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Section {
    #[serde(default)]
    pub(super) targets: Vec<NotificationTarget>,
    #[serde(default)]
    pub(super) routes: Vec<NotificationRoute>,
}

impl Section {
    pub(super) fn validate(&self) -> Result<(), NotifyError> {
        validate_notifications(&self.targets, &self.routes)
    }
}

pub(super) fn config(targets: Vec<NotificationTarget>, routes: Vec<NotificationRoute>) -> Section {
    Section { targets, routes }
}

pub(super) fn start_notifier(
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

/// A rollback of steno's rollout r1 with a body and details, routed by `severity`.
pub(super) fn notification(key: &str, severity: Severity) -> Notification {
    Notification::new(key, severity, "steno", "Rollout r1 rolled back")
        .with_body("error rate 7% > 1% for 60 s")
        .for_rollout("r1")
        .with_details(json!({"error_rate": 0.07}))
}

/// Drops the notifier and waits for its tasks to deliver everything queued.
pub(super) async fn drain(notifier: Notifier, handle: JoinHandle<()>) {
    drop(notifier);
    tokio::time::timeout(Duration::from_secs(60), handle)
        .await
        .expect("the notifier should drain its queues")
        .unwrap();
}

/// Polls `condition` (a guard against hanging, not a measurement).
pub(super) async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..6000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("gave up waiting for {what}");
}

pub(super) const TOPIC_ARN: &str = "arn:aws:sns:us-east-1:123456789012:steno-alerts";

pub(super) fn sns(name: &str, topic_arn: &str, endpoint_url: Option<&str>) -> NotificationTarget {
    NotificationTarget {
        name: name.to_string(),
        kind: TargetKind::Sns(SnsTarget {
            topic_arn: topic_arn.to_string(),
            region: None,
            endpoint_url: endpoint_url.map(str::to_string),
        }),
    }
}
