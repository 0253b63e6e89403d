//! The local AWS emulator for opsd's AWS platform tests: a `moto_server` child process behind the
//! CBOR front ([`crate::cbor_front`]), reached by every AWS client through one endpoint URL.
//!
//! [`AwsEmulator::start`] is synchronous and serves the front from its own background tokio
//! runtime thread, so both plain `#[test]` and `#[tokio::test]` tests can use it. Each emulator
//! is a separate moto process with its own state; dropping the emulator stops the front and kills
//! moto.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudwatch::config::{Credentials, SharedCredentialsProvider};

use crate::cbor_front::{start_logged_cbor_front, RequestLog};

/// The region every test client signs for (moto keeps separate state per region).
pub const TEST_REGION: &str = "us-east-1";

/// The static access key id and secret of the test credentials.
pub const TEST_CREDENTIAL: &str = "testing";

/// Points a child process's AWS SDK at the emulator's test credentials: no profile, no instance
/// metadata, and no proxy between it and the emulator on loopback.
pub fn use_test_credentials(command: &mut Command) -> &mut Command {
    command
        .env("AWS_ACCESS_KEY_ID", TEST_CREDENTIAL)
        .env("AWS_SECRET_ACCESS_KEY", TEST_CREDENTIAL)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE");
    for proxy in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(proxy);
    }
    command
}

/// How long moto may take to start listening, and the front to start serving.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an SDK client waits to connect, and for one attempt of an operation.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const OPERATION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// A running moto behind the CBOR front. Killed and stopped when dropped.
pub struct AwsEmulator {
    moto: MotoProcess,
    front_address: SocketAddr,
    /// Dropping (or sending on) this stops the front's runtime thread.
    stop_front: Option<tokio::sync::oneshot::Sender<()>>,
    front_thread: Option<std::thread::JoinHandle<()>>,
    /// Every request the front forwarded to moto, in order.
    request_log: RequestLog,
}

impl AwsEmulator {
    /// Starts `moto_server` and the CBOR front in front of it, and waits until both accept
    /// connections. Works with or without a surrounding tokio runtime. Panics with instructions
    /// when moto is not installed or does not start.
    pub fn start() -> AwsEmulator {
        let moto = MotoProcess::start();
        let (address_sender, address_receiver) = mpsc::channel();
        let (stop_front, stop_requested) = tokio::sync::oneshot::channel::<()>();
        let moto_url = moto.url();
        let request_log = RequestLog::default();
        let front_log = request_log.clone();
        let front_thread = std::thread::Builder::new()
            .name("aws-emulator-cbor-front".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = address_sender.send(Err(format!(
                            "could not build the CBOR front's tokio runtime: {error}"
                        )));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match start_logged_cbor_front(moto_url, front_log).await {
                        Ok((address, serving)) => {
                            let _ = address_sender.send(Ok(address));
                            // Serve until the emulator is dropped (the sender is dropped too).
                            let _ = stop_requested.await;
                            serving.abort();
                        }
                        Err(error) => {
                            let _ = address_sender.send(Err(format!(
                                "could not start the CBOR front on 127.0.0.1: {error}"
                            )));
                        }
                    }
                });
            })
            .expect("the operating system can start the CBOR front's thread");
        let front_address = match address_receiver.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Ok(address)) => address,
            Ok(Err(message)) => panic!("{message}"),
            Err(error) => {
                panic!("the CBOR front did not start within {STARTUP_TIMEOUT:?}: {error}")
            }
        };
        AwsEmulator {
            moto,
            front_address,
            stop_front: Some(stop_front),
            front_thread: Some(front_thread),
            request_log,
        }
    }

    /// The actions of every request the front forwarded to moto since the start or the last
    /// [`Self::clear_requests`], oldest first: operation names such as `CreateDBSnapshot` or
    /// `DescribeAlarms`, and `METHOD path` for REST calls (see "Request log" in
    /// [`crate::cbor_front`]). Calls made to [`Self::moto_url`] directly are not seen.
    pub fn requests(&self) -> Vec<String> {
        self.request_log.actions()
    }

    /// The forwarded requests with the service each was for, oldest first.
    pub fn forwarded_requests(&self) -> Vec<crate::cbor_front::ForwardedRequest> {
        self.request_log.entries()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.request_log.clear();
    }

    /// The URL every AWS client uses (CloudWatch, Lambda, CloudFront, SNS, ...): the CBOR front,
    /// such as `http://127.0.0.1:40123`.
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.front_address)
    }

    /// The URL of moto itself, bypassing the front.
    pub fn moto_url(&self) -> String {
        self.moto.url()
    }

    /// Calls the emulator's RDS query API (the tests crate has no RDS client) with `body` (form
    /// fields like `Action=DescribeDBInstances`); moto reads the service from the credential
    /// scope and does not check signatures. Panics on an error answer.
    pub fn rds_query(&self, body: &str) -> String {
        let response = reqwest::blocking::Client::new()
            .post(self.endpoint_url())
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header(
                "Authorization",
                format!("AWS4-HMAC-SHA256 Credential={TEST_CREDENTIAL}/20260101/{TEST_REGION}/rds/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(format!("{body}&Version=2014-10-31"))
            .send()
            .unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "{body}: {status} {text}");
        text
    }

    /// An AWS configuration for this emulator built only from constants (it reads no environment
    /// variables or profile files): region [`TEST_REGION`], static credentials
    /// `testing`/`testing`, endpoint [`Self::endpoint_url`], no retries, short timeouts.
    pub async fn sdk_config(&self) -> SdkConfig {
        let credentials =
            Credentials::new(TEST_CREDENTIAL, TEST_CREDENTIAL, None, None, "aws-emulator");
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(TEST_REGION))
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .endpoint_url(self.endpoint_url())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(OPERATION_ATTEMPT_TIMEOUT)
                    .build(),
            )
            .build()
    }

    /// Forgets everything moto holds (alarms, metrics, functions, ...) through
    /// `POST /moto-api/reset`. Panics when moto does not confirm.
    pub async fn reset(&self) {
        let url = format!("{}/moto-api/reset", self.moto_url());
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client without proxy can be built")
            .post(&url)
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {url} failed: {error}"));
        assert!(
            response.status().is_success(),
            "POST {url} answered {}",
            response.status()
        );
    }
}

impl Drop for AwsEmulator {
    fn drop(&mut self) {
        if let Some(stop_front) = self.stop_front.take() {
            let _ = stop_front.send(());
        }
        if let Some(front_thread) = self.front_thread.take() {
            let _ = front_thread.join();
        }
        // `self.moto` is dropped (and killed) after this.
    }
}

/// A `moto_server` child process on 127.0.0.1, killed when dropped.
struct MotoProcess {
    child: Child,
    port: u16,
}

/// What the thread reading moto's log reports back.
enum StartupReport {
    Listening(u16),
    ExitedBeforeListening(String),
}

/// Path of the `moto_server` executable: `MOTO_SERVER`, else `<workspace>/.venv/bin/moto_server`.
fn moto_server_path() -> PathBuf {
    match std::env::var_os("MOTO_SERVER") {
        Some(path) => PathBuf::from(path),
        None => crate::workspace_root()
            .join(".venv")
            .join("bin")
            .join("moto_server"),
    }
}

/// The port in moto's ` * Running on http://127.0.0.1:PORT` log line.
fn port_from_log_line(line: &str) -> Option<u16> {
    let address = line.split("Running on http://").nth(1)?;
    let port_text = address.trim().rsplit(':').next()?;
    let digits: String = port_text
        .chars()
        .take_while(|character| character.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

impl MotoProcess {
    fn start() -> MotoProcess {
        let executable = moto_server_path();
        assert!(
            executable.is_file(),
            "the AWS emulator moto_server was not found at {}: run scripts/install-test-deps.sh \
             (it installs the Python package moto into .venv at the workspace root), or set \
             MOTO_SERVER to the path of a moto_server executable",
            executable.display()
        );
        // Port 0 lets the operating system pick a free port, so parallel tests never race for
        // one; moto prints the port it got on stderr.
        let mut child = Command::new(&executable)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "could not start {}: {error}; run scripts/install-test-deps.sh to reinstall it",
                    executable.display()
                )
            });
        let stderr = child.stderr.take().expect("stderr was requested as a pipe");
        let (report_sender, report_receiver) = mpsc::channel();
        // The thread keeps draining stderr after startup so moto never blocks on a full pipe
        // while logging requests; it ends when moto exits.
        std::thread::spawn(move || {
            let mut startup_log = String::new();
            let mut port_reported = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if port_reported {
                    continue;
                }
                if let Some(port) = port_from_log_line(&line) {
                    port_reported = true;
                    let _ = report_sender.send(StartupReport::Listening(port));
                } else {
                    startup_log.push_str(&line);
                    startup_log.push('\n');
                }
            }
            if !port_reported {
                let _ = report_sender.send(StartupReport::ExitedBeforeListening(startup_log));
            }
        });
        let port = match report_receiver.recv_timeout(STARTUP_TIMEOUT) {
            Ok(StartupReport::Listening(port)) => port,
            Ok(StartupReport::ExitedBeforeListening(log)) => {
                let status = child.wait();
                panic!(
                    "moto_server exited before listening ({status:?}); run \
                     scripts/install-test-deps.sh if it is broken. Its output was:\n{log}"
                )
            }
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "moto_server did not report a listening port within {STARTUP_TIMEOUT:?}: {error}"
                )
            }
        };
        let moto = MotoProcess { child, port };
        moto.wait_until_accepting();
        moto
    }

    fn wait_until_accepting(&self) {
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            match TcpStream::connect_timeout(&address, Duration::from_secs(1)) {
                Ok(_) => return,
                Err(error) if Instant::now() >= deadline => {
                    panic!("moto_server on {address} does not accept connections: {error}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for MotoProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{
        ComparisonOperator, Dimension, Metric, MetricAlarm, MetricDataQuery, MetricDatum,
        MetricStat, StateValue, Statistic,
    };
    use std::time::SystemTime;

    const NAMESPACE: &str = "AWS/Lambda";
    const FUNCTION: &str = "steno-api";

    fn cloudwatch(config: &SdkConfig) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(config)
    }

    fn dimension(name: &str, value: &str) -> Dimension {
        Dimension::builder().name(name).value(value).build()
    }

    fn lambda_dimensions(version: &str) -> Vec<Dimension> {
        vec![
            dimension("FunctionName", FUNCTION),
            dimension("ExecutedVersion", version),
        ]
    }

    fn lambda_metric(name: &str, version: &str) -> Metric {
        Metric::builder()
            .namespace(NAMESPACE)
            .metric_name(name)
            .set_dimensions(Some(lambda_dimensions(version)))
            .build()
    }

    /// Ten minutes ago, rounded down to a whole minute (so period-60 buckets are aligned).
    fn recent_minute() -> i64 {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs() as i64;
        (now - 600) / 60 * 60
    }

    /// `(epoch seconds, value)` of a query's result, oldest first.
    async fn sums(
        client: &aws_sdk_cloudwatch::Client,
        metric: Metric,
        period: i32,
        start: i64,
        end: i64,
    ) -> Vec<(i64, f64)> {
        let output = client
            .get_metric_data()
            .metric_data_queries(
                MetricDataQuery::builder()
                    .id("m1")
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric)
                            .period(period)
                            .stat("Sum")
                            .build(),
                    )
                    .build(),
            )
            .start_time(DateTime::from_secs(start))
            .end_time(DateTime::from_secs(end))
            .send()
            .await
            .expect("get_metric_data succeeds through the front");
        let results = output.metric_data_results();
        assert_eq!(results.len(), 1, "one result per query: {results:?}");
        let result = &results[0];
        assert_eq!(result.id(), Some("m1"));
        let mut points: Vec<(i64, f64)> = result
            .timestamps()
            .iter()
            .map(DateTime::secs)
            .zip(result.values().iter().copied())
            .collect();
        points.sort_by_key(|(seconds, _)| *seconds);
        points
    }

    #[tokio::test]
    async fn metric_data_round_trips_with_one_second_and_one_minute_periods() {
        let emulator = AwsEmulator::start();
        let client = cloudwatch(&emulator.sdk_config().await);
        let base = recent_minute();
        let datum = |version: &str, offset: i64, value: f64| {
            MetricDatum::builder()
                .metric_name("Errors")
                .set_dimensions(Some(lambda_dimensions(version)))
                .timestamp(DateTime::from_secs(base + offset))
                .value(value)
                .storage_resolution(1)
                .build()
        };
        client
            .put_metric_data()
            .namespace(NAMESPACE)
            .metric_data(datum("7", 0, 1.0))
            .metric_data(datum("7", 0, 2.0))
            .metric_data(datum("7", 1, 4.0))
            .metric_data(datum("7", 30, 5.0))
            .metric_data(datum("7", 61, 7.0))
            // Another version's data must not leak into version 7's sums.
            .metric_data(datum("6", 0, 100.0))
            .send()
            .await
            .expect("put_metric_data succeeds through the front");

        let per_second = sums(&client, lambda_metric("Errors", "7"), 1, base, base + 120).await;
        assert_eq!(
            per_second,
            vec![
                (base, 3.0),
                (base + 1, 4.0),
                (base + 30, 5.0),
                (base + 61, 7.0)
            ]
        );
        let per_minute = sums(&client, lambda_metric("Errors", "7"), 60, base, base + 120).await;
        assert_eq!(per_minute, vec![(base, 12.0), (base + 60, 7.0)]);
        let other_version = sums(&client, lambda_metric("Errors", "6"), 60, base, base + 120).await;
        assert_eq!(other_version, vec![(base, 100.0)]);
    }

    #[tokio::test]
    async fn gzip_compressed_put_metric_data_is_inflated_by_the_front() {
        let emulator = AwsEmulator::start();
        // Compress every request body, however small, the way the SDK compresses large ones.
        let config = aws_sdk_cloudwatch::config::Builder::from(&emulator.sdk_config().await)
            .request_min_compression_size_bytes(0)
            .build();
        let client = aws_sdk_cloudwatch::Client::from_conf(config);
        let base = recent_minute();
        client
            .put_metric_data()
            .namespace(NAMESPACE)
            .metric_data(
                MetricDatum::builder()
                    .metric_name("Invocations")
                    .set_dimensions(Some(lambda_dimensions("7")))
                    .timestamp(DateTime::from_secs(base + 5))
                    .value(42.0)
                    .build(),
            )
            .send()
            .await
            .expect("a gzip-compressed put_metric_data succeeds through the front");
        let per_minute = sums(
            &client,
            lambda_metric("Invocations", "7"),
            60,
            base,
            base + 60,
        )
        .await;
        assert_eq!(per_minute, vec![(base, 42.0)]);
    }

    fn alarm_named<'a>(alarms: &'a [MetricAlarm], name: &str) -> &'a MetricAlarm {
        alarms
            .iter()
            .find(|alarm| alarm.alarm_name() == Some(name))
            .unwrap_or_else(|| panic!("no alarm {name} among {alarms:?}"))
    }

    fn alarm_names(alarms: &[MetricAlarm]) -> Vec<&str> {
        let mut names: Vec<&str> = alarms.iter().filter_map(MetricAlarm::alarm_name).collect();
        names.sort_unstable();
        names
    }

    #[tokio::test]
    async fn metric_and_metric_math_alarms_are_stored_described_set_and_deleted() {
        let emulator = AwsEmulator::start();
        let client = cloudwatch(&emulator.sdk_config().await);
        client
            .put_metric_alarm()
            .alarm_name("steno-canary-errors")
            .namespace(NAMESPACE)
            .metric_name("Errors")
            .set_dimensions(Some(lambda_dimensions("7")))
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(3)
            .datapoints_to_alarm(2)
            .threshold(5.0)
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .treat_missing_data("notBreaching")
            .send()
            .await
            .expect("put_metric_alarm (metric) succeeds through the front");
        let query = |id: &str, metric_name: &str| {
            MetricDataQuery::builder()
                .id(id)
                .return_data(false)
                .metric_stat(
                    MetricStat::builder()
                        .metric(lambda_metric(metric_name, "7"))
                        .period(60)
                        .stat("Sum")
                        .build(),
                )
                .build()
        };
        client
            .put_metric_alarm()
            .alarm_name("steno-canary-error-rate")
            .evaluation_periods(2)
            .threshold(0.05)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .metrics(
                MetricDataQuery::builder()
                    .id("e1")
                    .expression("m1/m2")
                    .label("error rate")
                    .return_data(true)
                    .build(),
            )
            .metrics(query("m1", "Errors"))
            .metrics(query("m2", "Invocations"))
            .send()
            .await
            .expect("put_metric_alarm (metric math) succeeds through the front");
        client
            .put_metric_alarm()
            .alarm_name("unrelated-alarm")
            .namespace("Other")
            .metric_name("Latency")
            .statistic(Statistic::Average)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
            .send()
            .await
            .expect("put_metric_alarm (unrelated) succeeds through the front");

        let described = client
            .describe_alarms()
            .alarm_name_prefix("steno-canary-")
            .send()
            .await
            .expect("describe_alarms succeeds through the front");
        let alarms = described.metric_alarms();
        assert_eq!(
            alarm_names(alarms),
            ["steno-canary-error-rate", "steno-canary-errors"]
        );

        let errors = alarm_named(alarms, "steno-canary-errors");
        assert_eq!(errors.namespace(), Some(NAMESPACE));
        assert_eq!(errors.metric_name(), Some("Errors"));
        assert_eq!(errors.statistic(), Some(&Statistic::Sum));
        assert_eq!(errors.threshold(), Some(5.0));
        assert_eq!(errors.period(), Some(60));
        assert_eq!(errors.evaluation_periods(), Some(3));
        assert_eq!(errors.datapoints_to_alarm(), Some(2));
        assert_eq!(
            errors.comparison_operator(),
            Some(&ComparisonOperator::GreaterThanOrEqualToThreshold)
        );
        assert_eq!(errors.treat_missing_data(), Some("notBreaching"));
        assert_eq!(errors.dimensions(), lambda_dimensions("7").as_slice());
        let updated = errors
            .state_updated_timestamp()
            .expect("moto reports when the state was last updated");
        let now = DateTime::from(SystemTime::now());
        assert!(
            (now.secs() - updated.secs()).abs() < 3600,
            "state updated at {updated}, now is {now}"
        );
        assert!(errors.alarm_configuration_updated_timestamp().is_some());

        let error_rate = alarm_named(alarms, "steno-canary-error-rate");
        assert_eq!(error_rate.threshold(), Some(0.05));
        assert_eq!(error_rate.evaluation_periods(), Some(2));
        assert_eq!(
            error_rate.comparison_operator(),
            Some(&ComparisonOperator::GreaterThanThreshold)
        );
        let queries = error_rate.metrics();
        let ids: Vec<&str> = queries.iter().filter_map(MetricDataQuery::id).collect();
        assert_eq!(ids, ["e1", "m1", "m2"]);
        assert_eq!(queries[0].expression(), Some("m1/m2"));
        assert_eq!(queries[0].return_data(), Some(true));
        let m2 = queries[2].metric_stat().expect("m2 keeps its metric stat");
        assert_eq!(m2.period(), Some(60));
        assert_eq!(m2.stat(), Some("Sum"));
        let m2_metric = m2.metric().expect("m2's metric stat names a metric");
        assert_eq!(m2_metric.metric_name(), Some("Invocations"));
        assert_eq!(m2_metric.dimensions(), lambda_dimensions("7").as_slice());

        client
            .set_alarm_state()
            .alarm_name("steno-canary-errors")
            .state_value(StateValue::Alarm)
            .state_reason("rehearsal")
            .send()
            .await
            .expect("set_alarm_state succeeds through the front");
        let in_alarm = client
            .describe_alarms()
            .state_value(StateValue::Alarm)
            .send()
            .await
            .expect("describe_alarms by state succeeds through the front");
        assert_eq!(
            alarm_names(in_alarm.metric_alarms()),
            ["steno-canary-errors"]
        );
        let alarm = &in_alarm.metric_alarms()[0];
        assert_eq!(alarm.state_value(), Some(&StateValue::Alarm));
        assert_eq!(alarm.state_reason(), Some("rehearsal"));

        client
            .delete_alarms()
            .alarm_names("steno-canary-errors")
            .alarm_names("steno-canary-error-rate")
            .send()
            .await
            .expect("delete_alarms succeeds through the front");
        let remaining = client
            .describe_alarms()
            .send()
            .await
            .expect("describe_alarms succeeds through the front");
        assert_eq!(alarm_names(remaining.metric_alarms()), ["unrelated-alarm"]);
    }

    #[tokio::test]
    async fn moto_errors_surface_their_code() {
        let emulator = AwsEmulator::start();
        let client = cloudwatch(&emulator.sdk_config().await);
        let error = client
            .set_alarm_state()
            .alarm_name("no-such-alarm")
            .state_value(StateValue::Alarm)
            .state_reason("rehearsal")
            .send()
            .await
            .expect_err("setting the state of a missing alarm fails");
        assert_eq!(error.code(), Some("ResourceNotFound"), "{error:?}");
        let service_error = error.into_service_error();
        assert!(service_error.is_resource_not_found(), "{service_error:?}");
    }

    #[tokio::test]
    async fn other_protocols_pass_through_the_front() {
        let emulator = AwsEmulator::start();
        let config = emulator.sdk_config().await;

        let functions = aws_sdk_lambda::Client::new(&config)
            .list_functions()
            .send()
            .await
            .expect("Lambda (restJson) list_functions succeeds through the front");
        assert!(functions.functions().is_empty(), "{functions:?}");

        let sns = aws_sdk_sns::Client::new(&config);
        let topic = sns
            .create_topic()
            .name("opsd-notifications")
            .send()
            .await
            .expect("SNS (query) create_topic succeeds through the front");
        let topic_arn = topic.topic_arn().expect("the new topic has an ARN");
        assert!(topic_arn.ends_with(":opsd-notifications"), "{topic_arn}");
        let topics = sns
            .list_topics()
            .send()
            .await
            .expect("SNS list_topics succeeds through the front");
        assert_eq!(topics.topics().len(), 1, "{topics:?}");

        let distributions = aws_sdk_cloudfront::Client::new(&config)
            .list_distributions()
            .send()
            .await
            .expect("CloudFront (restXml) list_distributions succeeds through the front");
        let items = distributions
            .distribution_list()
            .map(|list| list.items().len())
            .unwrap_or(0);
        assert_eq!(items, 0, "{distributions:?}");
    }

    #[tokio::test]
    async fn the_request_log_lists_forwarded_calls_in_order_until_cleared() {
        let emulator = AwsEmulator::start();
        let config = emulator.sdk_config().await;
        assert!(emulator.requests().is_empty(), "{:?}", emulator.requests());
        let sns = aws_sdk_sns::Client::new(&config);
        sns.create_topic()
            .name("opsd-log")
            .send()
            .await
            .expect("SNS create_topic succeeds through the front");
        cloudwatch(&config)
            .describe_alarms()
            .send()
            .await
            .expect("describe_alarms succeeds through the front");
        aws_sdk_lambda::Client::new(&config)
            .list_functions()
            .send()
            .await
            .expect("Lambda list_functions succeeds through the front");
        let requests = emulator.requests();
        assert_eq!(requests.len(), 3, "{requests:?}");
        assert_eq!(requests[0], "CreateTopic");
        assert_eq!(requests[1], "DescribeAlarms");
        assert!(
            requests[2].starts_with("GET /2015-03-31/functions"),
            "{requests:?}"
        );
        let services: Vec<String> = emulator
            .forwarded_requests()
            .into_iter()
            .map(|request| request.service)
            .collect();
        assert_eq!(services, ["sns", "monitoring", "lambda"]);
        emulator.clear_requests();
        assert!(emulator.requests().is_empty());
        sns.list_topics()
            .send()
            .await
            .expect("SNS list_topics succeeds through the front");
        assert_eq!(emulator.requests(), ["ListTopics"]);
    }

    #[tokio::test]
    async fn reset_forgets_alarms() {
        let emulator = AwsEmulator::start();
        let client = cloudwatch(&emulator.sdk_config().await);
        client
            .put_metric_alarm()
            .alarm_name("forgotten")
            .namespace(NAMESPACE)
            .metric_name("Errors")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .expect("put_metric_alarm succeeds through the front");
        emulator.reset().await;
        let described = client
            .describe_alarms()
            .send()
            .await
            .expect("describe_alarms succeeds after a reset");
        assert!(described.metric_alarms().is_empty(), "{described:?}");
    }

    #[test]
    fn starts_without_a_tokio_runtime_and_passes_moto_api_through() {
        let emulator = AwsEmulator::start();
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .expect("an HTTP client without proxy can be built");
        let response = client
            .post(format!("{}/moto-api/reset", emulator.endpoint_url()))
            .send()
            .expect("the front answers");
        assert!(response.status().is_success(), "{response:?}");
        let body = response.text().expect("moto answers with text");
        assert!(body.contains("status"), "moto's reset answer: {body}");
        assert_ne!(emulator.endpoint_url(), emulator.moto_url());
    }

    #[test]
    fn reads_port_from_moto_startup_line() {
        assert_eq!(
            port_from_log_line(" * Running on http://127.0.0.1:36969"),
            Some(36969)
        );
        assert_eq!(port_from_log_line("Press CTRL+C to quit"), None);
    }
}
