//! opsd's metrics in the Prometheus text format.

use super::Daemon;
use crate::core::traffic::TrafficSample;

impl Daemon {
    /// opsd's metrics in the Prometheus text format: per service the stable release, the active
    /// rollout's phase and canary weight, per release the last minute of traffic the router
    /// counted, and the notifier's counters.
    pub async fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let now_second = self.now_ms().div_euclid(1000);
        let _ = writeln!(
            out,
            "# HELP opsd_rollout_active Whether a rollout of the service is in progress."
        );
        let _ = writeln!(out, "# TYPE opsd_rollout_active gauge");
        let mut weights = String::new();
        let mut traffic = String::new();
        for service in self.config.services.keys() {
            let active = self.active.lock().await.get(service).cloned();
            let mut releases = Vec::new();
            if let Ok(stable) = self.stable_release(service).await {
                releases.push(stable.release_id());
            }
            match active {
                Some(entry) => {
                    let rollout = entry.lock().await;
                    let _ = writeln!(
                        out,
                        "opsd_rollout_active{{service=\"{service}\",phase=\"{}\"}} 1",
                        rollout.state.phase.as_str()
                    );
                    let _ = writeln!(
                        weights,
                        "opsd_canary_weight_percent{{service=\"{service}\",release=\"{}\"}} {}",
                        rollout.state.canary.release_id(),
                        rollout.state.canary_weight_percent()
                    );
                    releases.push(rollout.state.canary.release_id());
                }
                None => {
                    let _ = writeln!(
                        out,
                        "opsd_rollout_active{{service=\"{service}\",phase=\"none\"}} 0"
                    );
                }
            }
            releases.dedup();
            for release in releases {
                if let Ok(samples) = self
                    .platforms
                    .metrics
                    .samples(service, &release, now_second - 60, now_second + 1)
                    .await
                {
                    let total = TrafficSample::sum(samples.iter().map(|entry| &entry.sample));
                    let _ = writeln!(traffic, "opsd_release_requests_last_minute{{service=\"{service}\",release=\"{release}\"}} {}", total.requests);
                    let _ = writeln!(traffic, "opsd_release_errors_last_minute{{service=\"{service}\",release=\"{release}\"}} {}", total.errors);
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP opsd_canary_weight_percent The canary's share of traffic."
        );
        let _ = writeln!(out, "# TYPE opsd_canary_weight_percent gauge");
        out.push_str(&weights);
        let _ = writeln!(out, "# HELP opsd_release_requests_last_minute Requests the router sent to a release in the last 60 s.");
        let _ = writeln!(out, "# TYPE opsd_release_requests_last_minute gauge");
        let _ = writeln!(
            out,
            "# HELP opsd_release_errors_last_minute Failed requests of a release in the last 60 s."
        );
        let _ = writeln!(out, "# TYPE opsd_release_errors_last_minute gauge");
        out.push_str(&traffic);
        let counts = self.notifier.counters().snapshot();
        let _ = writeln!(
            out,
            "# HELP opsd_notifications_total Notifications by result."
        );
        let _ = writeln!(out, "# TYPE opsd_notifications_total counter");
        for (result, count) in [
            ("sent", counts.sent),
            ("failed", counts.failed),
            ("dropped", counts.dropped),
            ("deduplicated", counts.deduplicated),
        ] {
            let _ = writeln!(
                out,
                "opsd_notifications_total{{result=\"{result}\"}} {count}"
            );
        }
        out
    }
}
