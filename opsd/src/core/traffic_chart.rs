//! A rollout's per-second traffic as chart points: canary and baseline side by side on the same
//! time buckets (one second each while the rollout is short, wider once it is long, so a chart
//! never holds more than [`MAX_CHART_POINTS`] points), each with its request rate, error rate and
//! latency quantiles. Pure: the API feeds it the stored seconds.

use serde::Serialize;

use super::traffic::{SecondSample, TrafficSample};

/// The most points one release's chart series holds.
pub const MAX_CHART_POINTS: i64 = 900;

/// One time bucket of one release. Rates and quantiles are `None` for a bucket without requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartPoint {
    /// The bucket's first second (Unix seconds).
    pub second: i64,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_second: f64,
    pub error_rate_percent: Option<f64>,
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

/// Both releases' points over the same buckets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficChart {
    /// The first second charted and the second after the last one.
    pub from_second: i64,
    pub to_second: i64,
    pub bucket_seconds: i64,
    pub canary: Vec<ChartPoint>,
    pub baseline: Vec<ChartPoint>,
}

/// The bucket width that keeps `from..to` within [`MAX_CHART_POINTS`] buckets.
pub fn bucket_seconds(from_second: i64, to_second: i64) -> i64 {
    let span = (to_second - from_second).max(1);
    ((span + MAX_CHART_POINTS - 1) / MAX_CHART_POINTS).max(1)
}

/// Charts `canary` and `baseline` over `from..to` (seconds outside are left out). Every bucket
/// of the span has a point in both series, so a second without traffic shows as zero requests.
pub fn traffic_chart(
    canary: &[SecondSample],
    baseline: &[SecondSample],
    from_second: i64,
    to_second: i64,
) -> TrafficChart {
    let to_second = to_second.max(from_second);
    let width = bucket_seconds(from_second, to_second);
    TrafficChart {
        from_second,
        to_second,
        bucket_seconds: width,
        canary: points(canary, from_second, to_second, width),
        baseline: points(baseline, from_second, to_second, width),
    }
}

fn points(samples: &[SecondSample], from: i64, to: i64, width: i64) -> Vec<ChartPoint> {
    let buckets = ((to - from + width - 1) / width).max(0) as usize;
    let mut sums = vec![TrafficSample::default(); buckets];
    for entry in samples {
        if entry.second >= from && entry.second < to {
            sums[((entry.second - from) / width) as usize].add(&entry.sample);
        }
    }
    sums.iter()
        .enumerate()
        .map(|(index, sum)| {
            let start = from + index as i64 * width;
            let seconds = (to.min(start + width) - start).max(1);
            ChartPoint {
                second: start,
                requests: sum.requests,
                errors: sum.errors,
                requests_per_second: sum.requests as f64 / seconds as f64,
                error_rate_percent: sum.error_rate().map(|rate| rate * 100.0),
                p50_ms: sum.latency_quantile_ms(0.50),
                p95_ms: sum.latency_quantile_ms(0.95),
                p99_ms: sum.latency_quantile_ms(0.99),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(second: i64, latencies_ms: &[u64], errors: usize) -> SecondSample {
        let mut sample = TrafficSample::default();
        for (index, latency) in latencies_ms.iter().enumerate() {
            sample.record(*latency, index < errors);
        }
        SecondSample { second, sample }
    }

    #[test]
    fn a_short_rollout_is_charted_second_by_second_with_gaps_as_zero() {
        let canary = [second(100, &[5, 5, 900, 5], 1), second(102, &[5], 0)];
        let baseline = [second(101, &[5, 5], 0)];
        let chart = traffic_chart(&canary, &baseline, 100, 103);
        assert_eq!(chart.bucket_seconds, 1);
        assert_eq!(chart.canary.len(), 3);
        assert_eq!(chart.baseline.len(), 3);
        let first = &chart.canary[0];
        assert_eq!((first.second, first.requests, first.errors), (100, 4, 1));
        assert_eq!(first.requests_per_second, 4.0);
        assert_eq!(first.error_rate_percent, Some(25.0));
        assert!(first.p99_ms.unwrap() >= 900, "{first:?}");
        assert!(first.p50_ms.unwrap() < 900, "{first:?}");
        assert_eq!(chart.canary[1].requests, 0);
        assert_eq!(chart.canary[1].error_rate_percent, None);
        assert_eq!(chart.baseline[1].requests, 2);
    }

    #[test]
    fn a_long_rollout_is_bucketed_to_at_most_the_point_limit_and_rates_stay_per_second() {
        let from = 1_000;
        let to = from + 4 * 3600;
        let canary: Vec<SecondSample> = (from..to).map(|s| second(s, &[10, 10], 0)).collect();
        let chart = traffic_chart(&canary, &[], from, to);
        assert!(chart.canary.len() as i64 <= MAX_CHART_POINTS);
        assert_eq!(chart.bucket_seconds, 16);
        assert_eq!(chart.canary[0].requests, 32);
        assert_eq!(chart.canary[0].requests_per_second, 2.0);
        let total: u64 = chart.canary.iter().map(|point| point.requests).sum();
        assert_eq!(total, 2 * 4 * 3600, "no second lost or counted twice");
    }

    #[test]
    fn samples_outside_the_span_are_left_out_and_an_empty_span_has_no_points() {
        let canary = [second(5, &[1], 0), second(50, &[1], 0)];
        let chart = traffic_chart(&canary, &[], 10, 20);
        assert_eq!(chart.canary.iter().map(|p| p.requests).sum::<u64>(), 0);
        let empty = traffic_chart(&canary, &[], 30, 30);
        assert!(empty.canary.is_empty());
        let reversed = traffic_chart(&canary, &[], 30, 10);
        assert!(reversed.canary.is_empty());
    }
}
