//! Password hashing and checking with bounded concurrency: at most `concurrency` argon2 runs at
//! once on the blocking pool, at most `max_waiting` callers queued behind them, and a clear
//! "busy" refusal beyond that, so a flood of logins cannot take every core from other requests.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Semaphore;

/// Why a hash could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error("too many passwords are being checked right now; try again in a second")]
    Busy,
    #[error("the password hashing task failed: {0}")]
    Failed(String),
}

/// The bounded pool every password hash and check goes through.
#[derive(Debug)]
pub struct PasswordHasher {
    permits: Semaphore,
    concurrency: usize,
    max_waiting: usize,
    waiting: AtomicUsize,
    running: AtomicUsize,
    peak_running: AtomicUsize,
}

/// Decrements a counter when dropped (also when the caller gives up while waiting).
struct CountGuard<'a>(&'a AtomicUsize);

impl Drop for CountGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordHasher {
    pub fn new(concurrency: usize, max_waiting: usize) -> PasswordHasher {
        let concurrency = concurrency.max(1);
        PasswordHasher {
            permits: Semaphore::new(concurrency),
            concurrency,
            max_waiting,
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            peak_running: AtomicUsize::new(0),
        }
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The most hashing jobs that ever ran at once in this process.
    pub fn peak_concurrency(&self) -> usize {
        self.peak_running.load(Ordering::SeqCst)
    }

    /// Runs CPU-heavy `work` on the blocking pool once a slot is free.
    pub async fn run<T, Work>(&self, work: Work) -> Result<T, HashingError>
    where
        T: Send + 'static,
        Work: FnOnce() -> T + Send + 'static,
    {
        let _permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                let queued = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
                let _waiting_guard = CountGuard(&self.waiting);
                if queued > self.max_waiting {
                    return Err(HashingError::Busy);
                }
                self.permits
                    .acquire()
                    .await
                    .map_err(|error| HashingError::Failed(error.to_string()))?
            }
        };
        let now_running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        let _running_guard = CountGuard(&self.running);
        self.peak_running.fetch_max(now_running, Ordering::SeqCst);
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| HashingError::Failed(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_bound_run_at_once_and_excess_callers_are_refused() {
        let hasher = Arc::new(PasswordHasher::new(2, 3));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let hasher = hasher.clone();
            let wait = wait.clone();
            tasks.push(tokio::spawn(async move {
                hasher
                    .run(move || {
                        let _ = wait.lock().unwrap().recv_timeout(Duration::from_secs(10));
                    })
                    .await
            }));
        }
        // Two run, three wait: the queue is full, so a sixth caller is refused at once.
        while hasher.waiting.load(Ordering::SeqCst) < 3 || hasher.peak_concurrency() < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hasher.run(|| ()).await, Err(HashingError::Busy)));
        for _ in 0..5 {
            release.send(()).unwrap();
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(hasher.peak_concurrency(), 2);
        assert_eq!(hasher.waiting.load(Ordering::SeqCst), 0);
    }
}
