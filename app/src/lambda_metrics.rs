//! Steno's per-version request metrics under AWS Lambda: one CloudWatch Embedded Metric Format
//! (EMF) line per request on stdout, which CloudWatch Logs turns into high-resolution metrics.
//!
//! opsd reads these metrics with `GetMetricData` to compare a canary Lambda version with the
//! baseline version, second by second. It relies on this contract exactly:
//!
//! - Namespace `Steno`, two dimension sets `[["FunctionName", "ExecutedVersion"], ["FunctionName"]]`
//!   (per version for canary analysis, per function for CloudWatch alarms): `FunctionName`
//!   is `AWS_LAMBDA_FUNCTION_NAME`, `ExecutedVersion` is `AWS_LAMBDA_FUNCTION_VERSION` (`"3"`,
//!   `"$LATEST"`).
//! - Every metric is high resolution (`"StorageResolution": 1`):
//!   - `Requests` (Count) = 1;
//!   - `ServerErrors` (Count) = 1 when the response status is 5xx, else 0;
//!   - `LatencyMs` (Milliseconds) = the request's latency in milliseconds;
//!   - exactly one latency-bucket counter (Count) = 1: `LatencyUpTo5Ms`, `LatencyUpTo10Ms`,
//!     `LatencyUpTo25Ms`, `LatencyUpTo50Ms`, `LatencyUpTo75Ms`, `LatencyUpTo100Ms`,
//!     `LatencyUpTo150Ms`, `LatencyUpTo250Ms`, `LatencyUpTo400Ms`, `LatencyUpTo600Ms`,
//!     `LatencyUpTo1000Ms`, `LatencyUpTo1500Ms`, `LatencyUpTo2500Ms`, `LatencyUpTo5000Ms`,
//!     `LatencyUpTo10000Ms` or `LatencyOver10000Ms`. A latency goes in the first bucket whose
//!     bound is at least the latency (bounds inclusive, so 5 ms is `LatencyUpTo5Ms` and 5.001 ms
//!     is `LatencyUpTo10Ms`), else in `LatencyOver10000Ms`. The bounds are opsd's
//!     `LATENCY_BUCKET_BOUNDS_MS` (`opsd/src/core/traffic.rs`). The other buckets are absent
//!     from the line, not 0.
//! - `_aws.Timestamp` is the time the request ended, in milliseconds since the Unix epoch.
//!
//! One line looks like this (the `Metrics` list names exactly the metrics the line carries):
//!
//! ```text
//! {"_aws":{"Timestamp":1767225600123,"CloudWatchMetrics":[{"Namespace":"Steno",
//!   "Dimensions":[["FunctionName","ExecutedVersion"],["FunctionName"]],"Metrics":[
//!   {"Name":"Requests","Unit":"Count","StorageResolution":1},
//!   {"Name":"ServerErrors","Unit":"Count","StorageResolution":1},
//!   {"Name":"LatencyMs","Unit":"Milliseconds","StorageResolution":1},
//!   {"Name":"LatencyUpTo25Ms","Unit":"Count","StorageResolution":1}]}]},
//!  "FunctionName":"steno","ExecutedVersion":"3",
//!  "Requests":1,"ServerErrors":0,"LatencyMs":12.5,"LatencyUpTo25Ms":1}
//! ```
//!
//! (shown wrapped; each record is written as a single line). Emission is on only when `main`
//! runs Steno under Lambda and finds the function's name and version in the environment.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "Steno";
/// The dimension naming the Lambda function (from `AWS_LAMBDA_FUNCTION_NAME`).
pub const FUNCTION_NAME_DIMENSION: &str = "FunctionName";
/// The dimension naming the function version that served the request
/// (from `AWS_LAMBDA_FUNCTION_VERSION`).
pub const EXECUTED_VERSION_DIMENSION: &str = "ExecutedVersion";

pub const REQUESTS_METRIC: &str = "Requests";
pub const SERVER_ERRORS_METRIC: &str = "ServerErrors";
pub const LATENCY_METRIC: &str = "LatencyMs";

/// Inclusive upper bounds, in milliseconds, of the latency buckets; the same as opsd's
/// `LATENCY_BUCKET_BOUNDS_MS` without its catch-all last bound.
pub const LATENCY_BUCKET_BOUNDS_MS: [u64; 15] = [
    5, 10, 25, 50, 75, 100, 150, 250, 400, 600, 1_000, 1_500, 2_500, 5_000, 10_000,
];

/// The counter of each bucket in [`LATENCY_BUCKET_BOUNDS_MS`], in the same order.
pub const LATENCY_BUCKET_METRICS: [&str; 15] = [
    "LatencyUpTo5Ms",
    "LatencyUpTo10Ms",
    "LatencyUpTo25Ms",
    "LatencyUpTo50Ms",
    "LatencyUpTo75Ms",
    "LatencyUpTo100Ms",
    "LatencyUpTo150Ms",
    "LatencyUpTo250Ms",
    "LatencyUpTo400Ms",
    "LatencyUpTo600Ms",
    "LatencyUpTo1000Ms",
    "LatencyUpTo1500Ms",
    "LatencyUpTo2500Ms",
    "LatencyUpTo5000Ms",
    "LatencyUpTo10000Ms",
];

/// The counter of requests slower than the last bound of [`LATENCY_BUCKET_BOUNDS_MS`].
pub const LATENCY_OVER_LAST_BUCKET_METRIC: &str = "LatencyOver10000Ms";

/// The Lambda function version this process serves, as Lambda announces it in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaFunction {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION`: a published version number, or `$LATEST`.
    pub version: String,
}

impl LambdaFunction {
    /// Reads the function's name and version from a map of environment variables (only `main`
    /// reads the real environment). `None` unless both are set and non-empty.
    pub fn from_environment(variables: &HashMap<String, String>) -> Option<LambdaFunction> {
        let get = |name: &str| {
            variables
                .get(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        Some(LambdaFunction {
            name: get("AWS_LAMBDA_FUNCTION_NAME")?,
            version: get("AWS_LAMBDA_FUNCTION_VERSION")?,
        })
    }
}

/// The latency-bucket counter a request of this latency increments.
pub fn latency_bucket_metric(latency: Duration) -> &'static str {
    // Whole nanoseconds compare exactly: 5 ms is in the 5 ms bucket, 5 ms + 1 ns is not.
    let nanos = latency.as_nanos();
    LATENCY_BUCKET_BOUNDS_MS
        .iter()
        .position(|bound_ms| nanos <= u128::from(*bound_ms) * 1_000_000)
        .map(|index| LATENCY_BUCKET_METRICS[index])
        .unwrap_or(LATENCY_OVER_LAST_BUCKET_METRIC)
}

/// The EMF record of one finished request (see the module documentation for the contract).
pub fn request_metrics_record(
    function: &LambdaFunction,
    ended_at_epoch_ms: u64,
    status: u16,
    latency: Duration,
) -> Value {
    let is_server_error = (500..=599).contains(&status);
    let latency_ms = latency.as_nanos() as f64 / 1_000_000.0;
    let metrics: [(&str, &str, Value); 4] = [
        (REQUESTS_METRIC, "Count", json!(1)),
        (
            SERVER_ERRORS_METRIC,
            "Count",
            json!(u8::from(is_server_error)),
        ),
        (LATENCY_METRIC, "Milliseconds", json!(latency_ms)),
        (latency_bucket_metric(latency), "Count", json!(1)),
    ];
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit, "StorageResolution": 1}))
        .collect();
    let mut record = Map::new();
    record.insert(
        "_aws".to_string(),
        json!({
            "Timestamp": ended_at_epoch_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [
                    [FUNCTION_NAME_DIMENSION, EXECUTED_VERSION_DIMENSION],
                    [FUNCTION_NAME_DIMENSION]
                ],
                "Metrics": definitions,
            }],
        }),
    );
    record.insert(FUNCTION_NAME_DIMENSION.to_string(), json!(function.name));
    record.insert(
        EXECUTED_VERSION_DIMENSION.to_string(),
        json!(function.version),
    );
    for (name, _, value) in metrics {
        record.insert(name.to_string(), value);
    }
    Value::Object(record)
}

/// Receives each EMF record as one line of JSON, without its newline.
pub type EmfSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Writes one EMF line per request to its sink (stdout in production); cheap to clone.
#[derive(Clone)]
pub struct LambdaMetrics {
    function: Arc<LambdaFunction>,
    sink: EmfSink,
}

impl LambdaMetrics {
    /// Lines go to stdout, where Lambda hands them to CloudWatch Logs.
    pub fn to_stdout(function: LambdaFunction) -> LambdaMetrics {
        LambdaMetrics::with_sink(function, Arc::new(write_line_to_stdout))
    }

    /// Lines go to `sink` (tests capture them this way).
    pub fn with_sink(function: LambdaFunction, sink: EmfSink) -> LambdaMetrics {
        LambdaMetrics {
            function: Arc::new(function),
            sink,
        }
    }

    pub fn function(&self) -> &LambdaFunction {
        &self.function
    }

    /// Emits the record of one request that ended at `ended_at`.
    pub fn record_request(&self, status: u16, latency: Duration, ended_at: SystemTime) {
        let ended_at_epoch_ms = ended_at
            .duration_since(UNIX_EPOCH)
            .map(|since_epoch| since_epoch.as_millis() as u64)
            .unwrap_or(0);
        let record = request_metrics_record(&self.function, ended_at_epoch_ms, status, latency);
        // `Value`'s compact form never contains a raw newline (strings escape it), so one record
        // is one line.
        (self.sink)(&record.to_string());
    }
}

/// Writes `line` and its newline to stdout with one call under the stdout lock, so it never
/// interleaves with log lines written from other threads.
fn write_line_to_stdout(line: &str) {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    let written = {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&bytes).and_then(|()| stdout.flush())
    };
    if let Err(error) = written {
        tracing::warn!(error = %error, "could not write the request's EMF metrics line");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn function() -> LambdaFunction {
        LambdaFunction {
            name: "steno-prod".to_string(),
            version: "3".to_string(),
        }
    }

    fn bucket_counters(record: &Value) -> Vec<String> {
        record
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| key.starts_with("Latency") && *key != LATENCY_METRIC)
            .cloned()
            .collect()
    }

    #[test]
    fn bucket_names_spell_out_their_bounds() {
        for (bound, name) in LATENCY_BUCKET_BOUNDS_MS.iter().zip(LATENCY_BUCKET_METRICS) {
            assert_eq!(name, format!("LatencyUpTo{bound}Ms"));
        }
        assert_eq!(
            LATENCY_OVER_LAST_BUCKET_METRIC,
            format!("LatencyOver{}Ms", LATENCY_BUCKET_BOUNDS_MS.last().unwrap())
        );
    }

    #[test]
    fn bounds_are_inclusive() {
        let cases = [
            (Duration::ZERO, "LatencyUpTo5Ms"),
            (Duration::from_millis(5), "LatencyUpTo5Ms"),
            (Duration::from_micros(5_001), "LatencyUpTo10Ms"),
            (Duration::from_nanos(5_000_001), "LatencyUpTo10Ms"),
            (Duration::from_millis(10), "LatencyUpTo10Ms"),
            (Duration::from_micros(12_500), "LatencyUpTo25Ms"),
            (Duration::from_millis(1_000), "LatencyUpTo1000Ms"),
            (Duration::from_millis(10_000), "LatencyUpTo10000Ms"),
            (Duration::from_millis(10_001), "LatencyOver10000Ms"),
            (Duration::from_secs(3_600), "LatencyOver10000Ms"),
        ];
        for (latency, expected) in cases {
            assert_eq!(latency_bucket_metric(latency), expected, "{latency:?}");
        }
    }

    #[test]
    fn record_has_the_exact_shape_opsd_reads() {
        let record = request_metrics_record(
            &function(),
            1_767_225_600_123,
            200,
            Duration::from_micros(12_500),
        );
        assert_eq!(
            record,
            json!({
                "_aws": {
                    "Timestamp": 1_767_225_600_123u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Steno",
                        "Dimensions": [["FunctionName", "ExecutedVersion"], ["FunctionName"]],
                        "Metrics": [
                            {"Name": "Requests", "Unit": "Count", "StorageResolution": 1},
                            {"Name": "ServerErrors", "Unit": "Count", "StorageResolution": 1},
                            {"Name": "LatencyMs", "Unit": "Milliseconds", "StorageResolution": 1},
                            {"Name": "LatencyUpTo25Ms", "Unit": "Count", "StorageResolution": 1},
                        ],
                    }],
                },
                "FunctionName": "steno-prod",
                "ExecutedVersion": "3",
                "Requests": 1,
                "ServerErrors": 0,
                "LatencyMs": 12.5,
                "LatencyUpTo25Ms": 1,
            })
        );
    }

    #[test]
    fn metrics_list_names_exactly_the_metrics_present() {
        let dimensions = ["FunctionName", "ExecutedVersion"];
        for latency_ms in [0, 5, 6, 10_000, 10_001] {
            let record =
                request_metrics_record(&function(), 1, 200, Duration::from_millis(latency_ms));
            let listed: Vec<&str> = record["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|metric| {
                    assert_eq!(metric["StorageResolution"], 1);
                    metric["Name"].as_str().unwrap()
                })
                .collect();
            let mut present: Vec<&str> = record
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .filter(|key| *key != "_aws" && !dimensions.contains(key))
                .collect();
            let mut listed_sorted = listed.clone();
            listed_sorted.sort_unstable();
            present.sort_unstable();
            assert_eq!(listed_sorted, present, "latency {latency_ms} ms");
            assert_eq!(listed.len(), 4, "one bucket per line");
            assert_eq!(bucket_counters(&record).len(), 1);
        }
    }

    #[test]
    fn only_5xx_counts_as_a_server_error() {
        for (status, expected) in [(200, 0), (404, 0), (499, 0), (500, 1), (503, 1), (599, 1)] {
            let record = request_metrics_record(&function(), 1, status, Duration::from_millis(1));
            assert_eq!(record["ServerErrors"], expected, "status {status}");
            assert_eq!(record["Requests"], 1);
        }
    }

    #[test]
    fn latest_version_is_a_dimension_value_like_any_other() {
        let function = LambdaFunction {
            name: "steno".to_string(),
            version: "$LATEST".to_string(),
        };
        let record = request_metrics_record(&function, 1, 200, Duration::from_millis(1));
        assert_eq!(record["ExecutedVersion"], "$LATEST");
        assert_eq!(record["FunctionName"], "steno");
    }

    #[test]
    fn function_comes_from_the_lambda_variables() {
        let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect()
        };
        assert_eq!(
            LambdaFunction::from_environment(&env(&[
                ("AWS_LAMBDA_FUNCTION_NAME", "steno"),
                ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ])),
            Some(LambdaFunction {
                name: "steno".to_string(),
                version: "$LATEST".to_string(),
            })
        );
        assert_eq!(LambdaFunction::from_environment(&HashMap::new()), None);
        assert_eq!(
            LambdaFunction::from_environment(&env(&[("AWS_LAMBDA_FUNCTION_NAME", "steno")])),
            None
        );
        assert_eq!(
            LambdaFunction::from_environment(&env(&[
                ("AWS_LAMBDA_FUNCTION_NAME", " "),
                ("AWS_LAMBDA_FUNCTION_VERSION", "3"),
            ])),
            None
        );
    }

    #[test]
    fn recorder_sends_one_line_with_the_end_time_to_its_sink() {
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let captured = lines.clone();
        let metrics = LambdaMetrics::with_sink(
            function(),
            Arc::new(move |line: &str| captured.lock().unwrap().push(line.to_string())),
        );
        let ended_at = UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
        metrics.record_request(502, Duration::from_millis(30), ended_at);
        let lines = lines.lock().unwrap();
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'));
        let record: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(record["_aws"]["Timestamp"], 1_767_225_600_123u64);
        assert_eq!(record["ServerErrors"], 1);
        assert_eq!(record["LatencyUpTo50Ms"], 1);
        assert_eq!(record["LatencyMs"], 30.0);
    }
}
