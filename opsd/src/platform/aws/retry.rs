//! Calls to AWS with opsd's own retry policy: throttling, 5xx answers, timeouts and connection
//! failures are retried with exponential backoff and full jitter; everything else fails at once
//! with an error that names the AWS operation and the resource.
//!
//! The SDK clients are built with their own retries turned off (see [`super::AwsClients`]), so the
//! classification here is the only one, and it is tested without AWS: [`classify`] is a pure
//! function of the facts [`FailureFacts::of`] reads off an SDK error.

use std::future::Future;
use std::time::Duration;

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use rand::Rng;

pub use crate::core::retry::RetryPolicy;
use crate::error_chain::error_chain;

/// How a failure came about, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The request could not be built: a bug or bad input; never retried.
    Construction,
    /// No answer in time.
    Timeout,
    /// The connection failed (refused, reset, DNS).
    Dispatch,
    /// An answer that could not be read.
    Response,
    /// The service answered with an error.
    Service,
}

/// What opsd knows about one failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureFacts {
    pub kind: FailureKind,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
}

/// Whether a failure is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    Throttled,
    Transient,
    Permanent,
}

/// Error codes AWS services use for throttling. The notifier's SNS targets are classified by this
/// list too: `Throttled` and `KMSThrottling` (a topic encrypted with a KMS key) are SNS's.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "Throttled",
    "KMSThrottling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "LimitExceededException",
    "TooManyInvalidationsInProgress",
];

/// Error codes that say "try again" without being throttling.
const TRANSIENT_CODES: &[&str] = &[
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalError",
    "InternalServiceError",
    "InternalServiceFault",
    "RequestTimeout",
    "RequestTimeoutException",
    "ResourceConflictException",
];

/// The retry class of a failure. Pure, so the policy is tested without AWS.
pub fn classify(facts: &FailureFacts) -> RetryClass {
    match facts.kind {
        FailureKind::Construction => RetryClass::Permanent,
        FailureKind::Timeout | FailureKind::Dispatch => RetryClass::Transient,
        FailureKind::Response | FailureKind::Service => {
            if let Some(code) = facts.code.as_deref() {
                if THROTTLING_CODES.contains(&code) {
                    return RetryClass::Throttled;
                }
                if TRANSIENT_CODES.contains(&code) {
                    return RetryClass::Transient;
                }
            }
            match facts.status {
                Some(429) => RetryClass::Throttled,
                Some(status) if status >= 500 => RetryClass::Transient,
                // An answer without a status that could not be read: the connection broke.
                None if facts.kind == FailureKind::Response => RetryClass::Transient,
                _ => RetryClass::Permanent,
            }
        }
    }
}

impl FailureFacts {
    /// Reads the facts off any SDK error (every AWS SDK crate shares these types).
    pub fn of<E>(error: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> FailureFacts
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = error.raw_response().map(|raw| raw.status().as_u16());
        let (kind, code, message) = match error {
            SdkError::ConstructionFailure(_) => {
                (FailureKind::Construction, None, error_chain(error))
            }
            SdkError::TimeoutError(_) => (FailureKind::Timeout, None, "timed out".to_string()),
            SdkError::DispatchFailure(failure) => {
                let kind = if failure.is_timeout() {
                    FailureKind::Timeout
                } else {
                    FailureKind::Dispatch
                };
                (kind, None, error_chain(error))
            }
            SdkError::ResponseError(_) => (FailureKind::Response, None, error_chain(error)),
            SdkError::ServiceError(service_error) => {
                let inner = service_error.err();
                let code = inner.code().map(str::to_string);
                let message = inner
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| error_chain(error));
                (FailureKind::Service, code, message)
            }
            _ => (FailureKind::Response, None, error_chain(error)),
        };
        FailureFacts {
            kind,
            status,
            code,
            message,
        }
    }
}

/// A call that failed for good, naming the operation and the resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} on {resource} failed{}: {}{}", attempts_note(*.attempts), code_prefix(.facts.code.as_deref()), .facts.message)]
pub struct AwsCallError {
    /// Like `Lambda UpdateAlias`.
    pub operation: String,
    /// Like `function steno, alias live`.
    pub resource: String,
    pub attempts: u32,
    pub facts: FailureFacts,
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

fn code_prefix(code: Option<&str>) -> String {
    code.map(|code| format!("{code}: ")).unwrap_or_default()
}

impl AwsCallError {
    pub fn code(&self) -> Option<&str> {
        self.facts.code.as_deref()
    }
}

impl From<AwsCallError> for crate::platform::PlatformError {
    fn from(error: AwsCallError) -> Self {
        crate::platform::PlatformError::Operation {
            operation: format!("{} on {}", error.operation, error.resource),
            message: format!(
                "{}{}{}",
                code_prefix(error.facts.code.as_deref()),
                error.facts.message,
                attempts_note(error.attempts)
            ),
        }
    }
}

/// Runs `attempt` until it succeeds, fails permanently, or `policy.max_attempts` are used up.
pub async fn call_with_retries<T, E, F, Fut>(
    policy: &RetryPolicy,
    operation: &str,
    resource: &str,
    mut attempt: F,
) -> Result<T, AwsCallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                let facts = FailureFacts::of(&error);
                let class = classify(&facts);
                if class == RetryClass::Permanent || attempts >= policy.max_attempts.max(1) {
                    return Err(AwsCallError {
                        operation: operation.to_string(),
                        resource: resource.to_string(),
                        attempts,
                        facts,
                    });
                }
                let ceiling = policy.delay_ceiling(attempts);
                let delay = if ceiling.is_zero() {
                    Duration::ZERO
                } else {
                    rand::thread_rng().gen_range(Duration::ZERO..=ceiling)
                };
                tracing::warn!(
                    operation = %operation,
                    resource = %resource,
                    attempt = attempts,
                    class = ?class,
                    code = facts.code.as_deref().unwrap_or(""),
                    status = facts.status.unwrap_or(0),
                    delay_ms = delay.as_millis() as u64,
                    "aws call failed; retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: Option<&str>) -> FailureFacts {
        FailureFacts {
            kind: FailureKind::Service,
            status: Some(status),
            code: code.map(str::to_string),
            message: "m".into(),
        }
    }

    #[test]
    fn throttling_codes_and_429_are_throttled() {
        assert_eq!(
            classify(&service(400, Some("ThrottlingException"))),
            RetryClass::Throttled
        );
        assert_eq!(
            classify(&service(400, Some("Throttling"))),
            RetryClass::Throttled
        );
        assert_eq!(
            classify(&service(429, Some("TooManyRequestsException"))),
            RetryClass::Throttled
        );
        assert_eq!(classify(&service(429, None)), RetryClass::Throttled);
    }

    #[test]
    fn server_errors_timeouts_and_broken_connections_are_transient() {
        assert_eq!(classify(&service(500, None)), RetryClass::Transient);
        assert_eq!(
            classify(&service(503, Some("ServiceUnavailable"))),
            RetryClass::Transient
        );
        for kind in [FailureKind::Timeout, FailureKind::Dispatch] {
            let facts = FailureFacts {
                kind,
                status: None,
                code: None,
                message: "x".into(),
            };
            assert_eq!(classify(&facts), RetryClass::Transient);
        }
        // Lambda answers 409 ResourceConflictException while an update is in progress.
        assert_eq!(
            classify(&service(409, Some("ResourceConflictException"))),
            RetryClass::Transient
        );
    }

    #[test]
    fn client_errors_and_construction_failures_are_permanent() {
        assert_eq!(
            classify(&service(404, Some("ResourceNotFoundException"))),
            RetryClass::Permanent
        );
        assert_eq!(
            classify(&service(400, Some("InvalidParameterValueException"))),
            RetryClass::Permanent
        );
        assert_eq!(
            classify(&service(403, Some("AccessDeniedException"))),
            RetryClass::Permanent
        );
        let construction = FailureFacts {
            kind: FailureKind::Construction,
            status: None,
            code: None,
            message: "missing field".into(),
        };
        assert_eq!(classify(&construction), RetryClass::Permanent);
    }

    #[test]
    fn errors_name_the_operation_the_resource_and_the_code() {
        let error = AwsCallError {
            operation: "Lambda UpdateAlias".into(),
            resource: "function steno, alias live".into(),
            attempts: 3,
            facts: service(429, Some("TooManyRequestsException")),
        };
        assert_eq!(
            error.to_string(),
            "Lambda UpdateAlias on function steno, alias live failed after 3 attempts: \
             TooManyRequestsException: m"
        );
    }
}
