//! The overview feed: while at least one dashboard is connected, one task computes the overview
//! document every [`FEED_PERIOD`] and publishes it when it changed; every connected dashboard
//! reads the latest copy. So the cost of the overview does not grow with the number of open
//! dashboards, nothing is computed while none is open, and a dashboard that (re)connects gets a
//! current document at once.
//!
//! Live feeds are bounded: at most [`MAX_FEEDS_PER_TOKEN`] per token and [`MAX_FEEDS`] in all,
//! so one token holder cannot make the daemon hold connections without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::control::{Daemon, Timings};

/// How often the overview is recomputed: a change reaches dashboards within this plus the
/// time to send it.
pub const FEED_PERIOD: Duration = Duration::from_millis(250);
/// The most live feeds one token may hold open (tabs, wall screens).
pub const MAX_FEEDS_PER_TOKEN: usize = 64;
/// The most live feeds the daemon holds open in all.
pub const MAX_FEEDS: usize = 1024;

/// Why a dashboard cannot connect to the live feed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedFull {
    #[error("this token already holds {MAX_FEEDS_PER_TOKEN} live dashboards open; close some tabs and reload")]
    ForToken,
    #[error("opsd already serves {MAX_FEEDS} live dashboards; try again later")]
    InAll,
}

/// A handle on the feed: the latest overview document (JSON text) and who is connected.
#[derive(Clone)]
pub struct OverviewFeed {
    shared: Arc<Shared>,
}

struct Shared {
    daemon: Arc<Daemon>,
    sender: watch::Sender<Arc<str>>,
    /// Open feeds per token hash.
    clients: Mutex<HashMap<String, usize>>,
    timings: Timings,
}

/// Holds one connected dashboard's place while it lives.
pub struct ConnectedClient {
    shared: Arc<Shared>,
    token_hash: String,
}

impl Drop for ConnectedClient {
    fn drop(&mut self) {
        let mut clients = self.shared.clients.lock().expect("feed clients lock");
        if let Some(count) = clients.get_mut(&self.token_hash) {
            *count -= 1;
            if *count == 0 {
                clients.remove(&self.token_hash);
            }
        }
        self.shared.timings.dashboard_clients.dec();
    }
}

impl OverviewFeed {
    /// Starts the task that keeps the feed current until `stop` turns true.
    pub fn start(
        daemon: Arc<Daemon>,
        mut stop: watch::Receiver<bool>,
    ) -> (OverviewFeed, tokio::task::JoinHandle<()>) {
        let (sender, _) = watch::channel(Arc::<str>::from("{\"attention\":[],\"services\":[]}"));
        let feed = OverviewFeed {
            shared: Arc::new(Shared {
                timings: daemon.timings().clone(),
                daemon,
                sender,
                clients: Mutex::new(HashMap::new()),
            }),
        };
        let publisher = feed.clone();
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(FEED_PERIOD);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = stop.changed() => return,
                }
                if publisher.connected() > 0 {
                    publisher.publish_now().await;
                }
            }
        });
        (feed, task)
    }

    /// Computes the overview now and publishes it if it changed; returns the latest document
    /// (the previous one when the overview cannot be computed).
    pub async fn publish_now(&self) -> Arc<str> {
        let started = std::time::Instant::now();
        let overview = self.shared.daemon.overview().await;
        self.shared
            .timings
            .overview
            .observe(started.elapsed().as_secs_f64());
        match overview {
            Ok(overview) => {
                let text = serde_json::to_string(&overview)
                    .unwrap_or_else(|error| format!("{{\"error\":\"{error}\"}}"));
                self.shared.sender.send_if_modified(|current| {
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
        self.latest()
    }

    /// The overview document as last computed.
    pub fn latest(&self) -> Arc<str> {
        self.shared.sender.borrow().clone()
    }

    /// The current overview: the feed's copy while dashboards keep it current, otherwise
    /// computed now.
    pub async fn current(&self) -> Arc<str> {
        if self.connected() > 0 {
            self.latest()
        } else {
            self.publish_now().await
        }
    }

    /// A receiver that wakes on every new document, starting with the latest one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<str>> {
        let mut receiver = self.shared.sender.subscribe();
        receiver.mark_changed();
        receiver
    }

    /// Takes a place for one dashboard of the token with hash `token_hash` until the returned
    /// guard is dropped; refused beyond the bounds. The first dashboard to connect brings the
    /// document up to date before it reads it.
    pub async fn connect(&self, token_hash: &str) -> Result<ConnectedClient, FeedFull> {
        let first = {
            let mut clients = self.shared.clients.lock().expect("feed clients lock");
            let held: usize = clients.values().sum();
            let for_token = clients.get(token_hash).copied().unwrap_or(0);
            if for_token >= MAX_FEEDS_PER_TOKEN {
                return Err(FeedFull::ForToken);
            }
            if held >= MAX_FEEDS {
                return Err(FeedFull::InAll);
            }
            *clients.entry(token_hash.to_string()).or_insert(0) += 1;
            self.shared.timings.dashboard_clients.inc();
            held == 0
        };
        let client = ConnectedClient {
            shared: self.shared.clone(),
            token_hash: token_hash.to_string(),
        };
        if first {
            self.publish_now().await;
        }
        Ok(client)
    }

    /// How many dashboards are connected to the live feed.
    pub fn connected(&self) -> i64 {
        self.shared.timings.dashboard_clients.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn feed() -> (OverviewFeed, watch::Sender<bool>) {
        let daemon = crate::control::test_daemon().await;
        let (stop, stopped) = watch::channel(false);
        let (feed, _task) = OverviewFeed::start(daemon, stopped);
        (feed, stop)
    }

    #[tokio::test]
    async fn live_feeds_are_bounded_per_token_and_freed_when_dropped() {
        let (feed, _stop) = feed().await;
        let mut held = Vec::new();
        for _ in 0..MAX_FEEDS_PER_TOKEN {
            held.push(feed.connect("token-a").await.expect("within the bound"));
        }
        assert_eq!(
            feed.connect("token-a").await.err(),
            Some(FeedFull::ForToken)
        );
        let other = feed
            .connect("token-b")
            .await
            .expect("another token has its own bound");
        assert_eq!(feed.connected(), MAX_FEEDS_PER_TOKEN as i64 + 1);
        held.pop();
        assert!(
            feed.connect("token-a").await.is_ok(),
            "a closed feed frees its place"
        );
        drop(other);
        drop(held);
        assert_eq!(feed.connected(), 0);
        assert!(feed.shared.clients.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_overview_is_current_with_or_without_connected_dashboards() {
        let (feed, _stop) = feed().await;
        let document = feed.current().await;
        assert!(document.contains("\"services\""), "{document}");
        let _client = feed.connect("token").await.unwrap();
        assert_eq!(feed.current().await, feed.latest());
    }
}
