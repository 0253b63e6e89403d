//! Amazon SNS topics: a notification as one `Publish` (a one-line subject, a text for people,
//! attributes for filter policies), sent by a client built once per target; which SDK errors are
//! worth another attempt is decided by the shared AWS classification (`platform::aws::retry`).

use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};

use super::notifier::DeliveryPolicy;
use super::retry::{with_retries, AttemptFailure, DeliveryFailure};
use super::targets::SnsTarget;
use super::text::{truncate_bytes, truncate_chars};
use super::Notification;
use crate::error_chain::error_chain;
use crate::platform::aws::retry::{classify, FailureFacts, RetryClass};

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
pub(super) struct SnsPublisher {
    topic_arn: String,
    client: aws_sdk_sns::Client,
}

impl SnsPublisher {
    /// Builds the client from `base` (or the standard AWS chain) with the target's region and
    /// endpoint, the policy's timeout per request, and no SDK retries (the policy retries).
    pub(super) async fn connect(
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

/// Throttling, server errors (5xx) and failures to get an answer are worth retrying; every
/// other answer (`NotFound`, `AuthorizationError`, `InvalidParameter`, ...) would come back the
/// same. This is the shared AWS classification: its throttling codes include SNS's own
/// (`Throttled`, `KMSThrottling`), so SNS keeps no list of its own.
fn sns_failure_is_retryable(facts: &FailureFacts) -> bool {
    classify(facts) != RetryClass::Permanent
}

/// An SNS SDK error as an attempt failure naming the operation and the topic:
/// `SNS Publish to <topic ARN>: <code>: <message>`.
fn sns_attempt_failure<E>(topic_arn: &str, error: &SdkError<E>) -> AttemptFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = match error {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let message = service.err().message().unwrap_or("no message");
            match service.err().code() {
                Some(code) => format!("{code}: {message}{}", sns_hint(code)),
                None => format!("HTTP {status}: {message}"),
            }
        }
        _ => error_chain(error),
    };
    AttemptFailure {
        retryable: sns_failure_is_retryable(&FailureFacts::of(error)),
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

/// Publishes `notification` with the policy's retries; returns the attempts made.
pub(super) async fn deliver(
    publisher: &SnsPublisher,
    target_name: &str,
    notification: &Notification,
    policy: &DeliveryPolicy,
) -> Result<u32, DeliveryFailure> {
    let message = sns_message(notification);
    with_retries(target_name, policy, || publisher.publish_once(&message)).await
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;
    use e2e_tests::aws_emulator::AwsEmulator;
    use serde_json::json;

    use super::*;
    use crate::notify::test_support::{drain, fast_policy, notification, route, sns, TOPIC_ARN};
    use crate::notify::NotificationCounts;
    use crate::notify::{NotificationTarget, Notifier, Severity, TargetKind};
    use crate::platform::aws::retry::FailureKind;

    #[test]
    fn sns_failures_retry_only_throttling_server_errors_and_no_answer() {
        let answered = |status, code: Option<&str>| FailureFacts {
            kind: FailureKind::Service,
            status: Some(status),
            code: code.map(str::to_string),
            message: "m".to_string(),
        };
        // No answer (timed out, or the request could not be sent or its answer read), or no
        // request at all (it could not be built).
        let unanswered = |kind| FailureFacts {
            kind,
            status: None,
            code: None,
            message: "m".to_string(),
        };
        for retryable in [
            answered(400, Some("Throttled")),
            answered(400, Some("ThrottlingException")),
            answered(400, Some("KMSThrottling")),
            answered(429, Some("Throttling")),
            answered(500, Some("InternalError")),
            answered(503, None),
            unanswered(FailureKind::Timeout),
            unanswered(FailureKind::Dispatch),
        ] {
            assert!(sns_failure_is_retryable(&retryable), "{retryable:?}");
        }
        for final_failure in [
            answered(404, Some("NotFound")),
            answered(403, Some("AuthorizationError")),
            answered(400, Some("InvalidParameter")),
            answered(400, Some("KMSDisabled")),
            answered(400, None),
            unanswered(FailureKind::Construction),
        ] {
            assert!(
                !sns_failure_is_retryable(&final_failure),
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
