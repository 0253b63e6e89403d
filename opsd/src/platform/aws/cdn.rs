//! CloudFront: invalidate a distribution's cached paths after a frontend release and wait until
//! the invalidation completes.

use std::time::Duration;

use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};

use super::retry::{call_with_retries, AwsCallError, FailureFacts, FailureKind, RetryPolicy};
use crate::config::validate_invalidation_paths;

/// One distribution's invalidation calls.
#[derive(Clone)]
pub struct Distribution {
    pub client: aws_sdk_cloudfront::Client,
    pub distribution_id: String,
    pub retry: RetryPolicy,
}

impl Distribution {
    fn resource(&self) -> String {
        format!("distribution {}", self.distribution_id)
    }

    /// Creates an invalidation; returns its id. `caller_reference` makes a retried request
    /// idempotent (CloudFront answers the same invalidation for the same reference).
    pub async fn create_invalidation(
        &self,
        paths: &[String],
        caller_reference: &str,
    ) -> Result<String, AwsCallError> {
        let invalid = |message: String| AwsCallError {
            operation: "CloudFront CreateInvalidation".into(),
            resource: self.resource(),
            attempts: 0,
            facts: FailureFacts {
                kind: FailureKind::Construction,
                status: None,
                code: None,
                message,
            },
        };
        validate_invalidation_paths(paths).map_err(invalid)?;
        let batch = InvalidationBatch::builder()
            .paths(
                Paths::builder()
                    .quantity(paths.len() as i32)
                    .set_items(Some(paths.to_vec()))
                    .build()
                    .map_err(|error| invalid(error.to_string()))?,
            )
            .caller_reference(caller_reference)
            .build()
            .map_err(|error| invalid(error.to_string()))?;
        let output = call_with_retries(
            &self.retry,
            "CloudFront CreateInvalidation",
            &self.resource(),
            || {
                self.client
                    .create_invalidation()
                    .distribution_id(&self.distribution_id)
                    .invalidation_batch(batch.clone())
                    .send()
            },
        )
        .await?;
        Ok(output
            .invalidation()
            .map(|invalidation| invalidation.id().to_string())
            .unwrap_or_default())
    }

    /// The invalidation's status: `InProgress` or `Completed`.
    pub async fn invalidation_status(&self, id: &str) -> Result<String, AwsCallError> {
        let output = call_with_retries(
            &self.retry,
            "CloudFront GetInvalidation",
            &format!("{}, invalidation {id}", self.resource()),
            || {
                self.client
                    .get_invalidation()
                    .distribution_id(&self.distribution_id)
                    .id(id)
                    .send()
            },
        )
        .await?;
        Ok(output
            .invalidation()
            .map(|invalidation| invalidation.status().to_string())
            .unwrap_or_default())
    }

    /// Polls every `interval` until the invalidation completes or `timeout` passes; reports each
    /// poll to `progress` (status, seconds waited). Returns whether it completed.
    pub async fn wait_for_invalidation(
        &self,
        id: &str,
        interval: Duration,
        timeout: Duration,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<bool, AwsCallError> {
        let started = tokio::time::Instant::now();
        loop {
            let status = self.invalidation_status(id).await?;
            progress(&status, started.elapsed().as_secs());
            if status.eq_ignore_ascii_case("Completed") {
                return Ok(true);
            }
            if started.elapsed() >= timeout {
                return Ok(false);
            }
            tokio::time::sleep(interval).await;
        }
    }
}
