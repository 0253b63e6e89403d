//! How long an RDS wait (a snapshot, a restored instance, a deletion) may go on and how often it
//! looks, with the error that names what was awaited and the status last seen.

use std::time::{Duration, Instant};

use crate::platform::PlatformError;

/// How long a wait may go on, and how often it looks.
pub(super) struct Wait {
    started: Instant,
    timeout: Duration,
    poll_interval: Duration,
}

impl Wait {
    pub(super) fn start(timeout: Duration, poll_interval: Duration) -> Wait {
        Wait {
            started: Instant::now(),
            timeout,
            poll_interval,
        }
    }

    pub(super) fn timed_out(&self) -> bool {
        self.started.elapsed() >= self.timeout
    }

    /// The error of a wait for `what` that ended with `status` when `rds.wait_timeout` passed.
    pub(super) fn timeout_error(&self, what: &str, status: &str) -> PlatformError {
        super::rds::failed(
            format!("waiting for {what}"),
            format!(
                "still {status} after {:?} (rds.wait_timeout); it may yet finish in AWS, raise \
                 rds.wait_timeout if that is normal for this instance",
                self.timeout
            ),
        )
    }

    /// Sleeps one poll interval (less when the deadline comes sooner).
    pub(super) async fn sleep(&self) {
        let remaining = self.timeout.saturating_sub(self.started.elapsed());
        tokio::time::sleep(self.poll_interval.min(remaining)).await;
    }

    /// Sleeps one poll interval, or fails naming `what` and the `status` last seen once
    /// `rds.wait_timeout` has passed.
    pub(super) async fn pause(&self, what: &str, status: &str) -> Result<(), PlatformError> {
        if self.timed_out() {
            return Err(self.timeout_error(what, status));
        }
        self.sleep().await;
        Ok(())
    }
}
