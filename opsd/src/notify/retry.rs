//! The one retry loop of every delivery, whatever the channel: attempts until success, a
//! failure retrying cannot fix, or the policy's attempts are spent, with jittered exponential
//! backoff in between (lengthened by an answer's `Retry-After`). Each channel says which of its
//! failures are retryable.

use std::time::Duration;

use rand::Rng;

use super::notifier::DeliveryPolicy;

/// Why a delivery was given up.
#[derive(Debug)]
pub(super) struct DeliveryFailure {
    pub(super) attempts: u32,
    pub(super) reason: String,
}

/// The outcome of one attempt (a POST, or an SNS `Publish`) that was not a success.
pub(super) struct AttemptFailure {
    pub(super) retryable: bool,
    pub(super) reason: String,
    pub(super) retry_after: Option<Duration>,
}

/// Makes attempts until one succeeds, one fails in a way retrying cannot fix, or the policy's
/// attempts are spent, waiting [`backoff_delay`] between them. Returns the attempts made.
pub(super) async fn with_retries<Attempt, Outcome>(
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

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::notify::test_support::{
        answer, config, drain, fast_policy, notification, route, slack, start_notifier, Receiver,
    };
    use crate::notify::NotificationCounts;
    use crate::notify::Severity;

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
}
