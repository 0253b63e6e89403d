//! Steno's own metrics in the Prometheus text format: requests by route and status, a latency
//! histogram, and business counters (letters generated, uploads, refinements, exports, AI tokens).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    bucket_counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    letters_generated: BTreeMap<String, u64>,
    uploads: BTreeMap<String, u64>,
    upload_bytes: u64,
    refinements: BTreeMap<String, u64>,
    exports: BTreeMap<String, u64>,
    ai_tokens: BTreeMap<String, u64>,
    chaos_errors: u64,
    extractions: BTreeMap<String, u64>,
    extractor_peak_rss_bytes: u64,
}

/// A process-wide set of counters; cheap to clone behind an `Arc` in the app state.
#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Metrics {
    fn with<R>(&self, update: impl FnOnce(&mut Registry) -> R) -> R {
        let mut registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        update(&mut registry)
    }

    /// Counts one finished HTTP request. `route` is the matched route template, never the raw path.
    pub fn record_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.with(|registry| {
            *registry
                .requests
                .entry((route.to_string(), method.to_string(), status))
                .or_default() += 1;
            let histogram = registry.latency.entry(route.to_string()).or_default();
            let seconds = elapsed.as_secs_f64();
            histogram.count += 1;
            histogram.sum_seconds += seconds;
            for (index, upper) in LATENCY_BUCKETS.iter().enumerate() {
                if seconds <= *upper {
                    histogram.bucket_counts[index] += 1;
                }
            }
        });
    }

    pub fn letter_generated(&self, engine: &str) {
        self.with(|registry| {
            *registry
                .letters_generated
                .entry(engine.to_string())
                .or_default() += 1
        });
    }

    pub fn document_uploaded(&self, kind: &str, bytes: usize) {
        self.with(|registry| {
            *registry.uploads.entry(kind.to_string()).or_default() += 1;
            registry.upload_bytes += bytes as u64;
        });
    }

    pub fn letter_refined(&self, engine: &str) {
        self.with(|registry| *registry.refinements.entry(engine.to_string()).or_default() += 1);
    }

    pub fn letter_exported(&self, format: &str) {
        self.with(|registry| *registry.exports.entry(format.to_string()).or_default() += 1);
    }

    pub fn ai_tokens_used(&self, input_tokens: u64, output_tokens: u64) {
        self.with(|registry| {
            *registry.ai_tokens.entry("input".into()).or_default() += input_tokens;
            *registry.ai_tokens.entry("output".into()).or_default() += output_tokens;
        });
    }

    /// Counts one extractor child by outcome ("ok", "rejected", a limit's name, "crashed",
    /// "busy") and keeps the largest resident set a child has reached.
    pub fn extraction_finished(&self, outcome: &str, peak_child_rss_bytes: u64) {
        self.with(|registry| {
            *registry.extractions.entry(outcome.to_string()).or_default() += 1;
            registry.extractor_peak_rss_bytes =
                registry.extractor_peak_rss_bytes.max(peak_child_rss_bytes);
        });
    }

    pub fn chaos_error_injected(&self) {
        self.with(|registry| registry.chaos_errors += 1);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, version: &str) -> String {
        self.with(|registry| {
            let mut out = String::new();
            let _ = writeln!(out, "# HELP steno_build_info The running Steno release.");
            let _ = writeln!(out, "# TYPE steno_build_info gauge");
            let _ = writeln!(out, "steno_build_info{{version=\"{}\"}} 1", escape_label(version));

            let _ = writeln!(out, "# HELP steno_http_requests_total HTTP requests by route, method and status.");
            let _ = writeln!(out, "# TYPE steno_http_requests_total counter");
            for ((route, method, status), count) in &registry.requests {
                let _ = writeln!(
                    out,
                    "steno_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                    escape_label(route),
                    escape_label(method)
                );
            }

            let _ = writeln!(out, "# HELP steno_http_request_duration_seconds HTTP request latency by route.");
            let _ = writeln!(out, "# TYPE steno_http_request_duration_seconds histogram");
            for (route, histogram) in &registry.latency {
                let route = escape_label(route);
                for (index, upper) in LATENCY_BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "steno_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{upper}\"}} {}",
                        histogram.bucket_counts[index]
                    );
                }
                let _ = writeln!(
                    out,
                    "steno_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    histogram.count
                );
                let _ = writeln!(
                    out,
                    "steno_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    histogram.sum_seconds
                );
                let _ = writeln!(
                    out,
                    "steno_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    histogram.count
                );
            }

            write_labelled_counter(
                &mut out,
                "steno_letters_generated_total",
                "Demand letters drafted, by drafting engine.",
                "engine",
                &registry.letters_generated,
            );
            write_labelled_counter(
                &mut out,
                "steno_document_uploads_total",
                "Source documents uploaded, by kind.",
                "kind",
                &registry.uploads,
            );
            let _ = writeln!(out, "# HELP steno_document_upload_bytes_total Bytes of source documents uploaded.");
            let _ = writeln!(out, "# TYPE steno_document_upload_bytes_total counter");
            let _ = writeln!(out, "steno_document_upload_bytes_total {}", registry.upload_bytes);
            write_labelled_counter(
                &mut out,
                "steno_letter_refinements_total",
                "Letter refinements, by drafting engine.",
                "engine",
                &registry.refinements,
            );
            write_labelled_counter(
                &mut out,
                "steno_letter_exports_total",
                "Letter exports, by format.",
                "format",
                &registry.exports,
            );
            write_labelled_counter(
                &mut out,
                "steno_ai_tokens_total",
                "Tokens used by the AI drafting engine, by direction.",
                "direction",
                &registry.ai_tokens,
            );
            write_labelled_counter(
                &mut out,
                "steno_extractions_total",
                "Extractor child processes run, by outcome (ok, rejected, crashed, busy, or the limit reached).",
                "outcome",
                &registry.extractions,
            );
            let _ = writeln!(out, "# HELP steno_extractor_peak_rss_bytes Largest resident set any extractor child reached.");
            let _ = writeln!(out, "# TYPE steno_extractor_peak_rss_bytes gauge");
            let _ = writeln!(out, "steno_extractor_peak_rss_bytes {}", registry.extractor_peak_rss_bytes);
            let _ = writeln!(out, "# HELP steno_chaos_errors_total Requests answered 500 by fault injection.");
            let _ = writeln!(out, "# TYPE steno_chaos_errors_total counter");
            let _ = writeln!(out, "steno_chaos_errors_total {}", registry.chaos_errors);
            out
        })
    }
}

fn write_labelled_counter(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<String, u64>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for (value, count) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape_label(value));
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
            "steno_http_request_duration_seconds_bucket{route=\"/v1/letters/{id}\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "steno_http_request_duration_seconds_bucket{route=\"/v1/letters/{id}\",le=\"+Inf\"} 3"
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
