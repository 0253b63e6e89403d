//! opsd's metrics, exposed with the Prometheus project's client (`prometheus-client`, OpenMetrics
//! text): per service whether a rollout is active and in which phase, the canary's weight, per
//! release the last minute of traffic the platform counted, and the notifier's totals. Every
//! scrape builds a fresh registry from the daemon's state, so nothing here can drift from it.
//! [`Timings`] are the exception: histograms of how long the reconciler's ticks and the
//! dashboard's overview take, and how many dashboards are connected, kept as they happen.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::Daemon;
use crate::core::traffic::TrafficSample;

/// The content type of [`Daemon::metrics_text`].
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    service: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReleaseLabels {
    service: String,
    release: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// How long the daemon's recurring work takes, recorded as it happens.
#[derive(Clone)]
pub struct Timings {
    /// One reconciler tick over every active rollout, in seconds.
    pub reconcile_tick: Histogram,
    /// One computation of the dashboard's overview, in seconds.
    pub overview: Histogram,
    /// Dashboards connected to the live feed.
    pub dashboard_clients: Gauge,
}

impl Default for Timings {
    fn default() -> Timings {
        // 50 µs to about 1.6 s, doubling.
        let buckets = || exponential_buckets(0.000_05, 2.0, 16);
        Timings {
            reconcile_tick: Histogram::new(buckets()),
            overview: Histogram::new(buckets()),
            dashboard_clients: Gauge::default(),
        }
    }
}

/// The families of one scrape.
#[derive(Default)]
struct Scrape {
    rollout_active: Family<RolloutLabels, Gauge>,
    canary_weight: Family<ReleaseLabels, Gauge>,
    requests_last_minute: Family<ReleaseLabels, Gauge>,
    errors_last_minute: Family<ReleaseLabels, Gauge>,
    notifications: Family<ResultLabels, Counter>,
}

impl Scrape {
    fn encode(self, timings: &Timings) -> String {
        let mut registry = Registry::default();
        registry.register(
            "opsd_reconcile_tick_seconds",
            "How long one reconciler tick over every active rollout took",
            timings.reconcile_tick.clone(),
        );
        registry.register(
            "opsd_dashboard_overview_seconds",
            "How long one computation of the dashboard's overview took",
            timings.overview.clone(),
        );
        registry.register(
            "opsd_dashboard_clients",
            "Dashboards connected to the live feed",
            timings.dashboard_clients.clone(),
        );
        registry.register(
            "opsd_rollout_active",
            "Whether a rollout of the service is in progress",
            self.rollout_active,
        );
        registry.register(
            "opsd_canary_weight_percent",
            "The canary's share of traffic",
            self.canary_weight,
        );
        registry.register(
            "opsd_release_requests_last_minute",
            "Requests the router sent to a release in the last 60 s",
            self.requests_last_minute,
        );
        registry.register(
            "opsd_release_errors_last_minute",
            "Failed requests of a release in the last 60 s",
            self.errors_last_minute,
        );
        registry.register(
            "opsd_notifications",
            "Notifications by result",
            self.notifications,
        );
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &registry) {
            tracing::error!(error = %error, "cannot encode the metrics");
        }
        text
    }
}

fn gauge_value(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Daemon {
    /// The histograms of the daemon's recurring work.
    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// opsd's metrics in the OpenMetrics text format ([`METRICS_CONTENT_TYPE`]).
    pub async fn metrics_text(&self) -> String {
        let scrape = Scrape::default();
        let now_second = self.now_ms().div_euclid(1000);
        for service in self.config.services.keys() {
            let active = self.active.lock().await.get(service).cloned();
            let mut releases = Vec::new();
            if let Ok(stable) = self.stable_release(service).await {
                releases.push(stable.release_id());
            }
            match active {
                Some(entry) => {
                    let rollout = entry.lock().await;
                    let labels = RolloutLabels {
                        service: service.clone(),
                        phase: rollout.state.phase.as_str().to_string(),
                    };
                    scrape.rollout_active.get_or_create(&labels).set(1);
                    let canary = ReleaseLabels {
                        service: service.clone(),
                        release: rollout.state.canary.release_id(),
                    };
                    scrape
                        .canary_weight
                        .get_or_create(&canary)
                        .set(i64::from(rollout.state.canary_weight_percent()));
                    releases.push(rollout.state.canary.release_id());
                }
                None => {
                    let labels = RolloutLabels {
                        service: service.clone(),
                        phase: "none".into(),
                    };
                    scrape.rollout_active.get_or_create(&labels).set(0);
                }
            }
            releases.dedup();
            for release in releases {
                let Ok(samples) = self
                    .platforms
                    .metrics
                    .samples(service, &release, now_second - 60, now_second + 1)
                    .await
                else {
                    continue;
                };
                let total = TrafficSample::sum(samples.iter().map(|entry| &entry.sample));
                let labels = ReleaseLabels {
                    service: service.clone(),
                    release,
                };
                scrape
                    .requests_last_minute
                    .get_or_create(&labels)
                    .set(gauge_value(total.requests));
                scrape
                    .errors_last_minute
                    .get_or_create(&labels)
                    .set(gauge_value(total.errors));
            }
        }
        let counts = self.notifier.counters().snapshot();
        for (result, count) in [
            ("sent", counts.sent),
            ("failed", counts.failed),
            ("dropped", counts.dropped),
            ("deduplicated", counts.deduplicated),
        ] {
            let labels = ResultLabels {
                result: result.into(),
            };
            scrape.notifications.get_or_create(&labels).inc_by(count);
        }
        scrape.encode(&self.timings)
    }
}
