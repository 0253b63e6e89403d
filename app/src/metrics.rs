//! Steno's own metrics, kept and exposed with the Prometheus project's client
//! (`prometheus-client`, OpenMetrics text): requests by route and status, a latency histogram,
//! and business counters (letters generated, uploads, refinements, exports, AI tokens,
//! extractions).

use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`].
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EngineLabels {
    engine: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FormatLabels {
    format: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// A process-wide set of metrics; cheap to share behind an `Arc` in the app state.
pub struct Metrics {
    registry: Registry,
    build_info: Family<VersionLabels, Gauge>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    letters_generated: Family<EngineLabels, Counter>,
    uploads: Family<KindLabels, Counter>,
    upload_bytes: Counter,
    refinements: Family<EngineLabels, Counter>,
    exports: Family<FormatLabels, Counter>,
    ai_tokens: Family<DirectionLabels, Counter>,
    extractions: Family<OutcomeLabels, Counter>,
    extractor_peak_rss_bytes: Gauge,
    chaos_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let metrics = Metrics {
            registry: Registry::default(),
            build_info: Family::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            letters_generated: Family::default(),
            uploads: Family::default(),
            upload_bytes: Counter::default(),
            refinements: Family::default(),
            exports: Family::default(),
            ai_tokens: Family::default(),
            extractions: Family::default(),
            extractor_peak_rss_bytes: Gauge::default(),
            chaos_errors: Counter::default(),
        };
        metrics.registered()
    }
}

impl Metrics {
    fn registered(mut self) -> Metrics {
        let registry = &mut self.registry;
        registry.register(
            "steno_build_info",
            "The running Steno release",
            self.build_info.clone(),
        );
        registry.register(
            "steno_http_requests",
            "HTTP requests by route, method and status",
            self.requests.clone(),
        );
        registry.register(
            "steno_http_request_duration_seconds",
            "HTTP request latency by route",
            self.latency.clone(),
        );
        registry.register(
            "steno_letters_generated",
            "Demand letters drafted, by drafting engine",
            self.letters_generated.clone(),
        );
        registry.register(
            "steno_document_uploads",
            "Source documents uploaded, by kind",
            self.uploads.clone(),
        );
        registry.register(
            "steno_document_upload_bytes",
            "Bytes of source documents uploaded",
            self.upload_bytes.clone(),
        );
        registry.register(
            "steno_letter_refinements",
            "Letter refinements, by drafting engine",
            self.refinements.clone(),
        );
        registry.register(
            "steno_letter_exports",
            "Letter exports, by format",
            self.exports.clone(),
        );
        registry.register(
            "steno_ai_tokens",
            "Tokens used by the AI drafting engine, by direction",
            self.ai_tokens.clone(),
        );
        registry.register(
            "steno_extractions",
            "Extractor child processes run, by outcome (ok, rejected, crashed, busy, or the limit reached)",
            self.extractions.clone(),
        );
        registry.register(
            "steno_extractor_peak_rss_bytes",
            "Largest resident set any extractor child reached",
            self.extractor_peak_rss_bytes.clone(),
        );
        registry.register(
            "steno_chaos_errors",
            "Requests answered 500 by fault injection",
            self.chaos_errors.clone(),
        );
        self
    }

    /// Counts one finished HTTP request. `route` is the matched route template, never the raw path.
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn letter_generated(&self, engine: &str) {
        self.letters_generated
            .get_or_create(&EngineLabels {
                engine: engine.to_string(),
            })
            .inc();
    }

    pub fn document_uploaded(&self, kind: &str, bytes: usize) {
        self.uploads
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc();
        self.upload_bytes.inc_by(bytes as u64);
    }

    pub fn letter_refined(&self, engine: &str) {
        self.refinements
            .get_or_create(&EngineLabels {
                engine: engine.to_string(),
            })
            .inc();
    }

    pub fn letter_exported(&self, format: &str) {
        self.exports
            .get_or_create(&FormatLabels {
                format: format.to_string(),
            })
            .inc();
    }

    pub fn ai_tokens_used(&self, input_tokens: u64, output_tokens: u64) {
        for (direction, tokens) in [("input", input_tokens), ("output", output_tokens)] {
            self.ai_tokens
                .get_or_create(&DirectionLabels {
                    direction: direction.into(),
                })
                .inc_by(tokens);
        }
    }

    /// Counts one extractor child by outcome ("ok", "rejected", a limit's name, "crashed",
    /// "busy") and keeps the largest resident set a child has reached.
    pub fn extraction_finished(&self, outcome: &str, peak_child_rss_bytes: u64) {
        self.extractions
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
        let peak = i64::try_from(peak_child_rss_bytes).unwrap_or(i64::MAX);
        self.extractor_peak_rss_bytes
            .inner()
            .fetch_max(peak, Ordering::Relaxed);
    }

    pub fn chaos_error_injected(&self) {
        self.chaos_errors.inc();
    }

    /// The OpenMetrics text exposition of every metric ([`METRICS_CONTENT_TYPE`]).
    pub fn render(&self, version: &str) -> String {
        self.build_info
            .get_or_create(&VersionLabels {
                version: version.to_string(),
            })
            .set(1);
        let mut text = String::new();
        if let Err(error) = encode(&mut text, &self.registry) {
            tracing::error!(error = %error, "cannot encode the metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_fill_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record_request("/v1/letters/{id}", "GET", 200, Duration::from_millis(3));
        metrics.record_request("/v1/letters/{id}", "GET", 200, Duration::from_millis(300));
        metrics.record_request("/v1/letters/{id}", "GET", 404, Duration::from_millis(1));
        let text = metrics.render("v1");
        assert!(text.contains(
            "steno_http_requests_total{route=\"/v1/letters/{id}\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "steno_http_requests_total{route=\"/v1/letters/{id}\",method=\"GET\",status=\"404\"} 1"
        ));
        assert!(text.contains(
            "steno_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/v1/letters/{id}\"} 2"
        ));
        assert!(text.contains(
            "steno_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/v1/letters/{id}\"} 3"
        ));
        assert!(text.contains("steno_build_info{version=\"v1\"} 1"));
    }

    #[test]
    fn business_counters_are_labelled() {
        let metrics = Metrics::default();
        metrics.letter_generated("offline");
        metrics.document_uploaded("pdf", 1000);
        metrics.letter_exported("docx");
        metrics.letter_exported("docx");
        let text = metrics.render("v1");
        assert!(text.contains("steno_letters_generated_total{engine=\"offline\"} 1"));
        assert!(text.contains("steno_document_uploads_total{kind=\"pdf\"} 1"));
        assert!(text.contains("steno_document_upload_bytes_total 1000"));
        assert!(text.contains("steno_letter_exports_total{format=\"docx\"} 2"));
    }
}
