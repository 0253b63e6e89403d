//! CloudWatch metrics of one Lambda version, turned into the per-second traffic samples the
//! analysis reads on every platform.
//!
//! Two sources, asked for in one `GetMetricData` call:
//! - Steno's own high-resolution metrics (namespace `Steno` by default, dimensions
//!   `FunctionName` + `ExecutedVersion`, 1-second storage): `Requests`, `ServerErrors`,
//!   `LatencyMs` and one counter per latency bucket (`LatencyUpTo5Ms` … `LatencyOver10000Ms`, the
//!   bounds of [`LATENCY_BUCKET_BOUNDS_MS`]). Steno writes them as embedded-metric-format log
//!   lines under Lambda. They give the same samples as the local router counts.
//! - Lambda's standard metrics (`AWS/Lambda`, dimensions `FunctionName`, `Resource`
//!   (`function:alias`) and `ExecutedVersion`, 1-minute storage): `Invocations`, `Errors`,
//!   `Throttles`, `Duration` (average). They are used only for minutes without Steno's metrics
//!   (a crash or timeout before Steno wrote its line, or Steno's metrics not set up): a throttled
//!   request counts as a request that failed, and every request is put in the bucket of the
//!   average duration (so a latency comparison needs Steno's metrics).
//!
//! Missing datapoints stay missing: a second without data is not a healthy second, so too little
//! data makes the analysis inconclusive. opsd computes every ratio itself from raw sums.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_smithy_types::DateTime;

use super::retry::{call_with_retries, AwsCallError, RetryPolicy};
use crate::core::traffic::{
    latency_bucket, SecondSample, TrafficSample, LATENCY_BUCKETS, LATENCY_BUCKET_BOUNDS_MS,
};

/// Steno's metric name for a latency bucket: `LatencyUpTo250Ms`, or `LatencyOver10000Ms` for
/// the last bucket.
pub fn bucket_metric_name(bucket: usize) -> String {
    if bucket + 1 >= LATENCY_BUCKETS {
        format!(
            "LatencyOver{}Ms",
            LATENCY_BUCKET_BOUNDS_MS[LATENCY_BUCKETS - 2]
        )
    } else {
        format!("LatencyUpTo{}Ms", LATENCY_BUCKET_BOUNDS_MS[bucket])
    }
}

/// Where one version's metrics live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMetrics {
    pub function_name: String,
    pub alias: String,
    pub version: String,
    pub steno_namespace: String,
}

/// One query: an id, a metric, a statistic and a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    pub id: String,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub stat: String,
    pub period_secs: i32,
}

/// The queries for one version. Pure.
pub fn queries_for(version: &VersionMetrics) -> Vec<QuerySpec> {
    let steno_dimensions = vec![
        ("FunctionName".to_string(), version.function_name.clone()),
        ("ExecutedVersion".to_string(), version.version.clone()),
    ];
    let lambda_dimensions = vec![
        ("FunctionName".to_string(), version.function_name.clone()),
        (
            "Resource".to_string(),
            format!("{}:{}", version.function_name, version.alias),
        ),
        ("ExecutedVersion".to_string(), version.version.clone()),
    ];
    let steno = |id: String, metric: String| QuerySpec {
        id,
        namespace: version.steno_namespace.clone(),
        metric_name: metric,
        dimensions: steno_dimensions.clone(),
        stat: "Sum".into(),
        period_secs: 1,
    };
    let lambda = |id: &str, metric: &str, stat: &str| QuerySpec {
        id: id.to_string(),
        namespace: "AWS/Lambda".into(),
        metric_name: metric.to_string(),
        dimensions: lambda_dimensions.clone(),
        stat: stat.to_string(),
        period_secs: 60,
    };
    let mut queries = vec![
        steno("requests".into(), "Requests".into()),
        steno("server_errors".into(), "ServerErrors".into()),
        steno("latency_ms".into(), "LatencyMs".into()),
    ];
    for bucket in 0..LATENCY_BUCKETS {
        queries.push(steno(
            format!("bucket_{bucket}"),
            bucket_metric_name(bucket),
        ));
    }
    queries.push(lambda("invocations", "Invocations", "Sum"));
    queries.push(lambda("errors", "Errors", "Sum"));
    queries.push(lambda("throttles", "Throttles", "Sum"));
    queries.push(lambda("duration", "Duration", "Average"));
    queries
}

/// One query's answer: (epoch second, value) pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    pub id: String,
    pub points: Vec<(i64, f64)>,
}

/// Folds the answers into per-second samples. Pure.
pub fn samples_from_results(results: &[QueryResult]) -> Vec<SecondSample> {
    let mut by_second: BTreeMap<i64, TrafficSample> = BTreeMap::new();
    let mut steno_seconds: std::collections::BTreeSet<i64> = Default::default();
    // Per minute: invocations, errors, throttles, average duration.
    let mut lambda: BTreeMap<i64, (f64, f64, f64, Option<f64>)> = BTreeMap::new();
    let count = |value: f64| -> u64 {
        if value.is_finite() && value > 0.0 {
            value.round() as u64
        } else {
            0
        }
    };
    for result in results {
        for &(second, value) in &result.points {
            match result.id.as_str() {
                "requests" => {
                    steno_seconds.insert(second);
                    by_second.entry(second).or_default().requests += count(value);
                }
                "server_errors" => by_second.entry(second).or_default().errors += count(value),
                "latency_ms" => {
                    let sample = by_second.entry(second).or_default();
                    sample.latency_total_ms = sample.latency_total_ms.saturating_add(count(value));
                }
                "invocations" => lambda.entry(second).or_default().0 += value,
                "errors" => lambda.entry(second).or_default().1 += value,
                "throttles" => lambda.entry(second).or_default().2 += value,
                "duration" => lambda.entry(second).or_default().3 = Some(value),
                id => {
                    if let Some(bucket) = id
                        .strip_prefix("bucket_")
                        .and_then(|index| index.parse::<usize>().ok())
                        .filter(|index| *index < LATENCY_BUCKETS)
                    {
                        by_second.entry(second).or_default().latency_buckets[bucket] +=
                            count(value);
                    }
                }
            }
        }
    }
    // Steno's seconds are authoritative; drop partial entries without a request count.
    by_second.retain(|second, _| steno_seconds.contains(second));
    // Lambda's minutes fill in only where Steno reported nothing in that minute.
    for (minute_start, (invocations, errors, throttles, duration)) in lambda {
        let covered = by_second
            .range(minute_start..minute_start + 60)
            .next()
            .is_some();
        if covered {
            continue;
        }
        let invoked = count(invocations);
        let throttled = count(throttles);
        let requests = invoked + throttled;
        if requests == 0 {
            continue;
        }
        let mut sample = TrafficSample {
            requests,
            errors: count(errors).min(invoked) + throttled,
            ..TrafficSample::default()
        };
        if let Some(average_ms) = duration.filter(|value| value.is_finite() && *value >= 0.0) {
            sample.latency_buckets[latency_bucket(average_ms.round() as u64)] = invoked;
            sample.latency_total_ms = (average_ms * invoked as f64).round() as u64;
        }
        by_second.insert(minute_start, sample);
    }
    by_second
        .into_iter()
        .map(|(second, sample)| SecondSample { second, sample })
        .collect()
}

fn to_sdk_query(spec: &QuerySpec) -> MetricDataQuery {
    let mut metric = Metric::builder()
        .namespace(&spec.namespace)
        .metric_name(&spec.metric_name);
    for (name, value) in &spec.dimensions {
        metric = metric.dimensions(Dimension::builder().name(name).value(value).build());
    }
    MetricDataQuery::builder()
        .id(&spec.id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric.build())
                .period(spec.period_secs)
                .stat(&spec.stat)
                .build(),
        )
        .return_data(true)
        .build()
}

/// Runs the queries over `[from_second, to_second)`, following `NextToken`.
pub async fn fetch(
    client: &aws_sdk_cloudwatch::Client,
    retry: &RetryPolicy,
    resource: &str,
    queries: &[QuerySpec],
    from_second: i64,
    to_second: i64,
) -> Result<Vec<QueryResult>, AwsCallError> {
    let sdk_queries: Vec<MetricDataQuery> = queries.iter().map(to_sdk_query).collect();
    let mut merged: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    let mut next_token: Option<String> = None;
    loop {
        let output = call_with_retries(retry, "CloudWatch GetMetricData", resource, || {
            client
                .get_metric_data()
                .set_metric_data_queries(Some(sdk_queries.clone()))
                .start_time(DateTime::from_secs(from_second))
                .end_time(DateTime::from_secs(to_second))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(next_token.clone())
                .send()
        })
        .await?;
        for result in output.metric_data_results() {
            let id = result.id().unwrap_or_default().to_string();
            let points = merged.entry(id).or_default();
            for (timestamp, value) in result.timestamps().iter().zip(result.values()) {
                points.push((timestamp.secs(), *value));
            }
        }
        match output.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
            _ => break,
        }
    }
    Ok(merged
        .into_iter()
        .map(|(id, points)| QueryResult { id, points })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version() -> VersionMetrics {
        VersionMetrics {
            function_name: "steno".into(),
            alias: "live".into(),
            version: "3".into(),
            steno_namespace: "Steno".into(),
        }
    }

    #[test]
    fn bucket_names_follow_the_bucket_bounds() {
        assert_eq!(bucket_metric_name(0), "LatencyUpTo5Ms");
        assert_eq!(bucket_metric_name(7), "LatencyUpTo250Ms");
        assert_eq!(bucket_metric_name(14), "LatencyUpTo10000Ms");
        assert_eq!(bucket_metric_name(15), "LatencyOver10000Ms");
    }

    #[test]
    fn queries_ask_for_steno_per_second_and_lambda_per_minute_of_one_version() {
        let queries = queries_for(&version());
        assert_eq!(queries.len(), 3 + LATENCY_BUCKETS + 4);
        let requests = &queries[0];
        assert_eq!(requests.namespace, "Steno");
        assert_eq!(requests.metric_name, "Requests");
        assert_eq!(requests.period_secs, 1);
        assert_eq!(
            requests.dimensions,
            vec![
                ("FunctionName".to_string(), "steno".to_string()),
                ("ExecutedVersion".to_string(), "3".to_string())
            ]
        );
        let errors = queries.iter().find(|query| query.id == "errors").unwrap();
        assert_eq!(errors.namespace, "AWS/Lambda");
        assert_eq!(errors.period_secs, 60);
        assert!(errors
            .dimensions
            .contains(&("Resource".to_string(), "steno:live".to_string())));
        // Query ids must be unique and start with a lower-case letter (a CloudWatch rule).
        let mut ids: Vec<&str> = queries.iter().map(|query| query.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), queries.len());
        assert!(ids
            .iter()
            .all(|id| id.starts_with(|c: char| c.is_ascii_lowercase())));
    }

    fn result(id: &str, points: &[(i64, f64)]) -> QueryResult {
        QueryResult {
            id: id.into(),
            points: points.to_vec(),
        }
    }

    #[test]
    fn steno_metrics_become_per_second_samples_with_histograms() {
        let samples = samples_from_results(&[
            result("requests", &[(100, 10.0), (101, 4.0)]),
            result("server_errors", &[(100, 2.0)]),
            result("latency_ms", &[(100, 300.0), (101, 2000.0)]),
            result("bucket_3", &[(100, 10.0)]),
            result("bucket_10", &[(101, 4.0)]),
        ]);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].second, 100);
        assert_eq!(samples[0].sample.requests, 10);
        assert_eq!(samples[0].sample.errors, 2);
        assert_eq!(samples[0].sample.latency_buckets[3], 10);
        assert_eq!(samples[0].sample.latency_total_ms, 300);
        assert_eq!(samples[1].sample.errors, 0);
        assert_eq!(samples[1].sample.latency_buckets[10], 4);
    }

    #[test]
    fn lambda_minutes_fill_in_only_where_steno_is_silent() {
        let samples = samples_from_results(&[
            result("requests", &[(120, 5.0)]),
            // The minute starting at 120 is covered by Steno; the one at 180 is not.
            result("invocations", &[(120, 500.0), (180, 50.0)]),
            result("errors", &[(120, 9.0), (180, 5.0)]),
            result("duration", &[(180, 80.0)]),
        ]);
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].sample.requests, 5);
        let minute = &samples[1];
        assert_eq!(minute.second, 180);
        assert_eq!(minute.sample.requests, 50);
        assert_eq!(minute.sample.errors, 5);
        assert_eq!(minute.sample.latency_buckets[latency_bucket(80)], 50);
        assert_eq!(minute.sample.latency_total_ms, 4000);
    }

    #[test]
    fn throttled_requests_count_as_failed_requests() {
        let samples = samples_from_results(&[
            result("invocations", &[(240, 90.0)]),
            result("errors", &[(240, 0.0)]),
            result("throttles", &[(240, 10.0)]),
        ]);
        assert_eq!(samples[0].sample.requests, 100);
        assert_eq!(samples[0].sample.errors, 10);
    }

    #[test]
    fn no_datapoints_means_no_samples_not_healthy_ones() {
        assert!(samples_from_results(&[]).is_empty());
        // Errors without a request count are not a sample either.
        assert!(samples_from_results(&[result("server_errors", &[(5, 1.0)])]).is_empty());
    }
}
