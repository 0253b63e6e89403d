//! POSTing JSON to a webhook (Slack's and PagerDuty's channels): one attempt, and which of
//! its failures are worth another (no answer, 429 with its `Retry-After`, 5xx).

use std::time::Duration;

use super::notifier::DeliveryPolicy;
use super::retry::{with_retries, AttemptFailure, DeliveryFailure};
use super::text::truncate_chars;

/// POSTs `body` until a 2xx, a failure that retrying cannot fix (a 4xx other than 429), or the
/// policy's attempts are spent. Returns the attempts made.
pub(super) async fn post_with_retries(
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

/// Connect errors, timeouts and other failures to complete the exchange are worth retrying.
fn is_transient(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// How much of an error answer's body is kept for the log.
const ANSWER_EXCERPT_CHARS: usize = 200;

/// A non-2xx answer as an attempt failure: the status and an excerpt of the answer.
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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use crate::notify::test_support::{
        answer, config, drain, fast_policy, notification, pagerduty, route, slack, start_notifier,
        wait_until, Answer, Receiver,
    };
    use crate::notify::NotificationCounts;
    use crate::notify::Severity;

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
}
