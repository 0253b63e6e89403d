//! Traffic samples: what a metric source reports about one release for one second (requests,
//! server errors, a latency histogram), and sums of them over a window.
//!
//! The router on the local platform fills these per release per second; on AWS they come from
//! CloudWatch. The analysis only ever sees these numbers.

use serde::{Deserialize, Serialize};

/// Upper bounds (inclusive, milliseconds) of the latency histogram buckets; the last bucket is
/// everything slower than the one before it.
pub const LATENCY_BUCKET_BOUNDS_MS: [u64; 16] = [
    5,
    10,
    25,
    50,
    75,
    100,
    150,
    250,
    400,
    600,
    1_000,
    1_500,
    2_500,
    5_000,
    10_000,
    u64::MAX,
];
pub const LATENCY_BUCKETS: usize = LATENCY_BUCKET_BOUNDS_MS.len();

/// Requests, errors and latencies of one release over some span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSample {
    pub requests: u64,
    /// Responses with a 5xx status, plus requests the release could not answer at all.
    pub errors: u64,
    /// Request counts per latency bucket (see [`LATENCY_BUCKET_BOUNDS_MS`]).
    pub latency_buckets: [u64; LATENCY_BUCKETS],
    /// Sum of all latencies, for the mean.
    pub latency_total_ms: u64,
    /// Response body bytes sent to clients (counted by the local router when a response body
    /// ends; 0 where the platform does not report it). Priced as CDN transfer by the cost model.
    #[serde(default)]
    pub bytes_out: u64,
    /// AI tokens the release reported spending on these requests (Steno's `x-ai-input-tokens`
    /// and `x-ai-output-tokens` response headers; 0 where not reported).
    #[serde(default)]
    pub ai_input_tokens: u64,
    #[serde(default)]
    pub ai_output_tokens: u64,
}

/// The bucket a latency falls into.
pub fn latency_bucket(latency_ms: u64) -> usize {
    LATENCY_BUCKET_BOUNDS_MS
        .iter()
        .position(|bound| latency_ms <= *bound)
        .unwrap_or(LATENCY_BUCKETS - 1)
}

impl TrafficSample {
    /// Counts one request.
    pub fn record(&mut self, latency_ms: u64, is_error: bool) {
        self.requests += 1;
        if is_error {
            self.errors += 1;
        }
        self.latency_buckets[latency_bucket(latency_ms)] += 1;
        self.latency_total_ms = self.latency_total_ms.saturating_add(latency_ms);
    }

    /// Adds another sample into this one.
    pub fn add(&mut self, other: &TrafficSample) {
        self.requests += other.requests;
        self.errors += other.errors;
        for (mine, theirs) in self
            .latency_buckets
            .iter_mut()
            .zip(other.latency_buckets.iter())
        {
            *mine += theirs;
        }
        self.latency_total_ms = self.latency_total_ms.saturating_add(other.latency_total_ms);
        self.bytes_out = self.bytes_out.saturating_add(other.bytes_out);
        self.ai_input_tokens = self.ai_input_tokens.saturating_add(other.ai_input_tokens);
        self.ai_output_tokens = self.ai_output_tokens.saturating_add(other.ai_output_tokens);
    }

    /// The sum of many samples.
    pub fn sum<'a>(samples: impl IntoIterator<Item = &'a TrafficSample>) -> TrafficSample {
        let mut total = TrafficSample::default();
        for sample in samples {
            total.add(sample);
        }
        total
    }

    /// Fraction of requests that failed; `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }

    pub fn mean_latency_ms(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.latency_total_ms as f64 / self.requests as f64)
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1) of latencies; an upper
    /// estimate, never optimistic. `None` without requests.
    pub fn latency_quantile_ms(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency_buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.latency_buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(LATENCY_BUCKET_BOUNDS_MS[index]);
            }
        }
        Some(LATENCY_BUCKET_BOUNDS_MS[LATENCY_BUCKETS - 1])
    }
}

/// One second of traffic of one release: `second` is seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondSample {
    pub second: i64,
    pub sample: TrafficSample,
}

/// The sum of the samples whose second is in `from..to` (half open).
pub fn window_sum(series: &[SecondSample], from: i64, to: i64) -> TrafficSample {
    TrafficSample::sum(
        series
            .iter()
            .filter(|entry| entry.second >= from && entry.second < to)
            .map(|entry| &entry.sample),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_inclusive_buckets() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(5), 0);
        assert_eq!(latency_bucket(6), 1);
        assert_eq!(latency_bucket(10_000), 14);
        assert_eq!(latency_bucket(10_001), 15);
    }

    #[test]
    fn samples_add_and_report_rates_and_quantiles() {
        let mut sample = TrafficSample::default();
        for latency in [3, 8, 20, 40, 90] {
            sample.record(latency, false);
        }
        sample.record(700, true);
        assert_eq!(sample.requests, 6);
        assert_eq!(sample.error_rate(), Some(1.0 / 6.0));
        assert_eq!(sample.latency_quantile_ms(0.5), Some(25));
        assert_eq!(sample.latency_quantile_ms(0.99), Some(1_000));
        let doubled = TrafficSample::sum([&sample, &sample]);
        assert_eq!(doubled.requests, 12);
        assert_eq!(doubled.errors, 2);
        assert_eq!(TrafficSample::default().error_rate(), None);
    }

    #[test]
    fn windows_are_half_open() {
        let mut one = TrafficSample::default();
        one.record(10, false);
        let series: Vec<SecondSample> = (100..110)
            .map(|second| SecondSample {
                second,
                sample: one,
            })
            .collect();
        assert_eq!(window_sum(&series, 100, 105).requests, 5);
        assert_eq!(window_sum(&series, 105, 200).requests, 5);
        assert_eq!(window_sum(&series, 0, 100).requests, 0);
    }
}
