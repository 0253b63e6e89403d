//! The overview feed: one task computes the overview document every [`FEED_PERIOD`] and
//! publishes it when it changed; every connected dashboard reads the latest copy. So the cost
//! of the overview does not grow with the number of open dashboards, and a dashboard that
//! reconnects gets the current document at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::control::{Daemon, Timings};

/// How often the overview is recomputed: a change reaches dashboards within this plus the
/// time to send it.
pub const FEED_PERIOD: Duration = Duration::from_millis(250);

/// A handle on the latest overview document (JSON text).
#[derive(Clone)]
pub struct OverviewFeed {
    latest: watch::Receiver<Arc<str>>,
    timings: Timings,
}

/// Counts one connected dashboard while it lives.
pub struct ConnectedClient {
    timings: Timings,
}

impl Drop for ConnectedClient {
    fn drop(&mut self) {
        self.timings.dashboard_clients.dec();
    }
}

impl OverviewFeed {
    /// Starts the task that keeps the feed current until `stop` turns true.
    pub fn start(
        daemon: Arc<Daemon>,
        mut stop: watch::Receiver<bool>,
    ) -> (OverviewFeed, tokio::task::JoinHandle<()>) {
        let (sender, latest) =
            watch::channel(Arc::<str>::from("{\"attention\":[],\"services\":[]}"));
        let timings = daemon.timings().clone();
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(FEED_PERIOD);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = stop.changed() => return,
                }
                let started = std::time::Instant::now();
                let overview = daemon.overview().await;
                daemon
                    .timings()
                    .overview
                    .observe(started.elapsed().as_secs_f64());
                match overview {
                    Ok(overview) => {
                        let text = serde_json::to_string(&overview)
                            .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"));
                        sender.send_if_modified(|current| {
                            let changed = **current != *text;
                            if changed {
                                *current = Arc::from(text);
                            }
                            changed
                        });
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "cannot compute the dashboard overview")
                    }
                }
            }
        });
        (OverviewFeed { latest, timings }, task)
    }

    /// The overview document as last computed.
    pub fn latest(&self) -> Arc<str> {
        self.latest.borrow().clone()
    }

    /// A receiver that wakes on every new document.
    pub fn subscribe(&self) -> watch::Receiver<Arc<str>> {
        let mut receiver = self.latest.clone();
        receiver.mark_changed();
        receiver
    }

    /// Counts a connected dashboard until the returned guard is dropped.
    pub fn connect(&self) -> ConnectedClient {
        self.timings.dashboard_clients.inc();
        ConnectedClient {
            timings: self.timings.clone(),
        }
    }

    /// How many dashboards are connected to the live feed.
    pub fn connected(&self) -> i64 {
        self.timings.dashboard_clients.get()
    }
}
