//! End to end on the `aws` platform against a local AWS emulator (moto behind the CBOR front):
//! a Lambda function with published versions and a `live` alias; `opsd up` drives rollouts by
//! the alias's routing weights while this test plays Lambda's traffic, writing per-version
//! metrics into CloudWatch according to the weights it reads off the alias. Every assertion is
//! on the emulator's state (alias, alarms, invalidations), not on opsd's log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StateValue};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use e2e_tests::aws_emulator::{use_test_credentials, AwsEmulator, TEST_CREDENTIAL, TEST_REGION};
use e2e_tests::{binary, RunningProcess};
use serde_json::Value;

const FUNCTION: &str = "steno";
const ALIAS: &str = "live";
/// The SNS topics `aws.alarm_topics` routes critical and warning alarms to.
const PAGER_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:steno-pager";
const CHAT_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:steno-chat";
/// Requests per second the simulated Lambda serves, split by the alias's weights.
const SIMULATED_RPS: f64 = 200.0;

/// The steps of R-CANARY-1, R-CANARY-3 and R-CANARY-4 (docs/requirements.md): 10 → 25 with smoke
/// checks → 50 with end-to-end checks → 100, with short bakes.
const SEED_PLAN_FAST: &str = "name: seed-fast\nsteps:\n  - weight: 10\n    bake: 4s\n  - weight: 25\n    bake: 4s\n    checks: [smoke]\n  - weight: 50\n    bake: 4s\n    checks: [e2e]\n  - weight: 100\n";

/// A tiny zip holding a `bootstrap`; the emulator stores it, nothing runs it.
fn bootstrap_zip(marker: &str) -> Vec<u8> {
    use std::io::Write;
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        zip.start_file("bootstrap", options).unwrap();
        zip.write_all(format!("#!/bin/sh\necho {marker}\n").as_bytes())
            .unwrap();
        zip.finish().unwrap();
    }
    buffer.into_inner()
}

/// IAM has no client in this workspace: CreateRole is one form POST (moto reads the service from
/// the credential scope and does not check signatures).
fn create_role(emulator: &AwsEmulator) -> String {
    let body = "Action=CreateRole&Version=2010-05-08&RoleName=steno-lambda&AssumeRolePolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
    let response = reqwest::blocking::Client::new()
        .post(emulator.moto_url())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential={TEST_CREDENTIAL}/20260101/{TEST_REGION}/iam/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body)
        .send()
        .unwrap();
    let status = response.status();
    let text = response.text().unwrap();
    assert!(status.is_success(), "CreateRole: {status} {text}");
    let start = text.find("<Arn>").expect("the role's ARN") + 5;
    let end = text[start..].find("</Arn>").unwrap() + start;
    text[start..end].to_string()
}

struct Fixture {
    emulator: AwsEmulator,
    lambda: aws_sdk_lambda::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    cloudfront: aws_sdk_cloudfront::Client,
    distribution_id: String,
}

impl Fixture {
    /// The function with versions 1 and 2 and the alias on 1, and a CloudFront distribution.
    async fn new() -> Fixture {
        let emulator = AwsEmulator::start();
        let role = tokio::task::block_in_place(|| create_role(&emulator));
        let config = emulator.sdk_config().await;
        let lambda = aws_sdk_lambda::Client::new(&config);
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&config);
        let cloudfront = aws_sdk_cloudfront::Client::new(&config);
        lambda
            .create_function()
            .function_name(FUNCTION)
            .runtime(Runtime::Providedal2023)
            .role(role)
            .handler("bootstrap")
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(bootstrap_zip("v1")))
                    .build(),
            )
            .send()
            .await
            .expect("CreateFunction");
        let fixture = Fixture {
            distribution_id: create_distribution(&cloudfront).await,
            emulator,
            lambda,
            cloudwatch,
            cloudfront,
        };
        assert_eq!(fixture.publish("v1").await, "1");
        assert_eq!(fixture.publish("v2").await, "2");
        fixture
            .lambda
            .create_alias()
            .function_name(FUNCTION)
            .name(ALIAS)
            .function_version("1")
            .send()
            .await
            .expect("CreateAlias");
        fixture
    }

    /// New code, then a published version; returns its number.
    async fn publish(&self, marker: &str) -> String {
        self.lambda
            .update_function_code()
            .function_name(FUNCTION)
            .zip_file(Blob::new(bootstrap_zip(marker)))
            .send()
            .await
            .expect("UpdateFunctionCode");
        self.lambda
            .publish_version()
            .function_name(FUNCTION)
            .description(format!("built from {marker}"))
            .send()
            .await
            .expect("PublishVersion")
            .version()
            .unwrap()
            .to_string()
    }

    /// (function version, additional weights) of the alias, as the emulator has it.
    async fn alias(&self) -> (String, HashMap<String, f64>) {
        let alias = self
            .lambda
            .get_alias()
            .function_name(FUNCTION)
            .name(ALIAS)
            .send()
            .await
            .expect("GetAlias");
        (
            alias.function_version().unwrap().to_string(),
            alias
                .routing_config()
                .and_then(|config| config.additional_version_weights())
                .cloned()
                .unwrap_or_default(),
        )
    }

    /// Waits (up to 30 s) for the alias to route as expected. `deploy --wait` returns once the
    /// outcome is stored; the alias write follows within a reconciler tick or two.
    async fn expect_alias(&self, version: &str, weights: HashMap<String, f64>) {
        let expected = (version.to_string(), weights);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let actual = self.alias().await;
            if actual == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the alias routes {actual:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn invalidation_ids(&self) -> Vec<String> {
        let list = self
            .cloudfront
            .list_invalidations()
            .distribution_id(&self.distribution_id)
            .send()
            .await
            .expect("ListInvalidations");
        list.invalidation_list()
            .map(|list| {
                list.items()
                    .iter()
                    .map(|item| item.id().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn create_distribution(cloudfront: &aws_sdk_cloudfront::Client) -> String {
    use aws_sdk_cloudfront::types::{
        DefaultCacheBehavior, DistributionConfig, Origin, Origins, ViewerProtocolPolicy,
    };
    let origin = Origin::builder()
        .id("steno-assets")
        .domain_name("steno-assets.s3.amazonaws.com")
        .s3_origin_config(
            aws_sdk_cloudfront::types::S3OriginConfig::builder()
                .origin_access_identity("")
                .build(),
        )
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference("steno-e2e")
        .comment("steno static assets")
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("steno-assets")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cloudfront
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .expect("CreateDistribution")
        .distribution()
        .unwrap()
        .id()
        .to_string()
}

/// Plays Lambda: every second reads the alias's weights and writes each version's share of
/// the traffic as Steno's per-version metrics, with the error rate the test chose per version.
fn start_traffic(
    lambda: aws_sdk_lambda::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    error_rates: Arc<Mutex<HashMap<String, f64>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let second = chrono_now_secs();
            if let Ok(alias) = lambda
                .get_alias()
                .function_name(FUNCTION)
                .name(ALIAS)
                .send()
                .await
            {
                let mut shares: Vec<(String, f64)> = Vec::new();
                let weights = alias
                    .routing_config()
                    .and_then(|config| config.additional_version_weights())
                    .cloned()
                    .unwrap_or_default();
                let canary_total: f64 = weights.values().sum();
                shares.push((
                    alias.function_version().unwrap_or("1").to_string(),
                    1.0 - canary_total,
                ));
                shares.extend(weights);
                let mut data = Vec::new();
                for (version, share) in shares {
                    let requests = (SIMULATED_RPS * share).round();
                    if requests <= 0.0 {
                        continue;
                    }
                    let rate = error_rates
                        .lock()
                        .unwrap()
                        .get(&version)
                        .copied()
                        .unwrap_or(0.0);
                    let errors = (requests * rate).round();
                    for (name, value, unit) in [
                        ("Requests", requests, StandardUnit::Count),
                        ("ServerErrors", errors, StandardUnit::Count),
                        ("LatencyMs", requests * 30.0, StandardUnit::Milliseconds),
                        ("LatencyUpTo50Ms", requests, StandardUnit::Count),
                    ] {
                        data.push(
                            MetricDatum::builder()
                                .metric_name(name)
                                .dimensions(
                                    Dimension::builder()
                                        .name("FunctionName")
                                        .value(FUNCTION)
                                        .build(),
                                )
                                .dimensions(
                                    Dimension::builder()
                                        .name("ExecutedVersion")
                                        .value(&version)
                                        .build(),
                                )
                                .timestamp(aws_smithy_types::DateTime::from_secs(second))
                                .value(value)
                                .unit(unit)
                                .storage_resolution(1)
                                .build(),
                        );
                    }
                }
                if !data.is_empty() {
                    let _ = cloudwatch
                        .put_metric_data()
                        .namespace("Steno")
                        .set_metric_data(Some(data))
                        .send()
                        .await;
                }
            }
            let next = Duration::from_millis(1000 - (now_millis() % 1000) as u64);
            tokio::time::sleep(next).await;
        }
    })
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn chrono_now_secs() -> i64 {
    now_millis() / 1000
}

fn write_config(dir: &Path, endpoint: &str, distribution_id: &str) -> PathBuf {
    std::fs::write(dir.join("seed-fast.yaml"), SEED_PLAN_FAST).unwrap();
    std::fs::write(
        dir.join("bootstrap.zip"),
        bootstrap_zip("packaged by opsd package"),
    )
    .unwrap();
    let config = format!(
        "listen: 127.0.0.1:0\n\
         data_dir: data\n\
         tick: 250ms\n\
         health_probe_interval: 1s\n\
         analysis:\n  min_requests: 40\n  on_inconclusive: rollback\n\
         services:\n  steno:\n    platform: aws\n    plan: {plan}\n    ready_timeout: 20s\n\
         \x20   aws:\n      region: {TEST_REGION}\n      function_name: {FUNCTION}\n      alias: {ALIAS}\n\
         \x20     endpoint_url: {endpoint}\n      poll_interval: 1s\n      max_attempts: 2\n\
         \x20     package: bootstrap.zip\n\
         \x20     alarm_topics: {{critical: \"{PAGER_TOPIC}\", warning: \"{CHAT_TOPIC}\"}}\n\
         \x20     cloudfront:\n        distribution_id: {distribution_id}\n        paths: [\"/*\"]\n",
        plan = dir.join("seed-fast.yaml").display(),
    );
    let path = dir.join("opsd.yaml");
    std::fs::write(&path, config).unwrap();
    path
}

/// `opsd` on the config in `dir`, with the emulator's credentials.
fn opsd_command(dir: &Path) -> Command {
    let mut command = e2e_tests::opsd_command(dir);
    use_test_credentials(&mut command);
    command
}

/// Runs `opsd up`; the process is killed when the returned handle drops.
fn start_opsd(dir: &Path) -> (RunningProcess, Opsd) {
    let mut command = opsd_command(dir);
    command.arg("up");
    let process = RunningProcess::start(command, Duration::from_secs(60));
    let client = Opsd {
        api_url: process.base_url.clone(),
        dir: dir.to_path_buf(),
    };
    (process, client)
}

/// A client of a running `opsd up`.
#[derive(Clone)]
struct Opsd {
    api_url: String,
    dir: PathBuf,
}

impl Opsd {
    fn cli(&self, args: &[&str]) -> (i32, String) {
        let token = std::fs::read_to_string(self.dir.join("data/operator.token")).unwrap();
        let output = opsd_command(&self.dir)
            .arg("--server")
            .arg(&self.api_url)
            .arg("--token")
            .arg(token.trim())
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    }

    fn last_rollout(&self) -> Value {
        let (code, out) = self.cli(&["history", "steno", "--json", "--limit", "1"]);
        assert_eq!(code, 0, "{out}");
        let history: Value = serde_json::from_str(&out).unwrap();
        history["rollouts"][0].clone()
    }
}

/// Starts `deploy --wait` of `version` in the background and returns once the canary takes
/// traffic on the alias; the handle gives the deploy's exit code and output.
async fn deploy_and_wait_for_canary(
    opsd: &Opsd,
    fixture: &Fixture,
    version: &str,
    timeout: &str,
) -> tokio::task::JoinHandle<(i32, String)> {
    let deploy = tokio::task::spawn_blocking({
        let opsd = opsd.clone();
        let version = version.to_string();
        let timeout = timeout.to_string();
        move || {
            opsd.cli(&[
                "deploy",
                "steno",
                "--version",
                &version,
                "--wait",
                "--timeout",
                &timeout,
            ])
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, weights) = fixture.alias().await;
        if weights.contains_key(version) {
            return deploy;
        }
        assert!(
            Instant::now() < deadline,
            "the canary {version} never took traffic"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs a blocking CLI call without stalling the runtime's other tasks (the traffic writer).
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_rollouts_shift_the_alias_and_roll_back_on_errors_and_alarms() {
    binary("opsd");
    let fixture = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &fixture.emulator.endpoint_url(),
        &fixture.distribution_id,
    );
    let error_rates: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
    let traffic = start_traffic(
        fixture.lambda.clone(),
        fixture.cloudwatch.clone(),
        error_rates.clone(),
    );
    let (_daemon, opsd) = tokio::task::block_in_place(|| start_opsd(dir.path()));

    // A healthy canary (version 2) goes through the steps of R-CANARY-1 and is promoted: the
    // alias ends on version 2 with no weights, and the promotion invalidated the CDN (R-WATCH-3).
    let (code, out) = blocking({
        let opsd = opsd.clone();
        move || {
            opsd.cli(&[
                "deploy",
                "steno",
                "--version",
                "2",
                "--wait",
                "--timeout",
                "120s",
            ])
        }
    })
    .await;
    assert_eq!(code, 0, "a healthy version is promoted:\n{out}");
    fixture.expect_alias("2", HashMap::new()).await;
    let rollout = blocking({
        let opsd = opsd.clone();
        move || opsd.last_rollout()
    })
    .await;
    let steps: Vec<(String, u64)> = rollout["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|decision| {
            (
                decision["kind"].as_str().unwrap().to_string(),
                decision["step_index"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("start".to_string(), 0),
            ("advance".to_string(), 1),
            ("advance".to_string(), 2),
            ("promote".to_string(), 2)
        ],
        "10 % → 25 % → 50 % → promoted: {rollout:#}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while fixture.invalidation_ids().await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the promotion created no CloudFront invalidation"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // A canary whose errors climb (version 3 at 20 %) is rolled back: the alias is back on
    // version 2 with an empty weight map.
    let bad = fixture.publish("v3-errors").await;
    error_rates.lock().unwrap().insert(bad.clone(), 0.2);
    let (code, out) = blocking({
        let opsd = opsd.clone();
        let bad = bad.clone();
        move || {
            opsd.cli(&[
                "deploy",
                "steno",
                "--version",
                &bad,
                "--wait",
                "--timeout",
                "120s",
            ])
        }
    })
    .await;
    assert_eq!(code, 2, "a version with 20 % errors is rolled back:\n{out}");
    fixture.expect_alias("2", HashMap::new()).await;

    // A CloudWatch alarm marked as a rollback trigger (the synced error-rate rule) in ALARM rolls
    // a healthy-looking canary back.
    let (code, out) = blocking({
        let dir = dir.path().to_path_buf();
        move || {
            let output = opsd_command(&dir)
                .args(["alarms", "sync"])
                .output()
                .unwrap();
            (
                output.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&output.stdout).into_owned()
                    + &String::from_utf8_lossy(&output.stderr),
            )
        }
    })
    .await;
    assert_eq!(code, 0, "{out}");
    let alarmed = fixture.publish("v4-alarmed").await;
    let deploy = deploy_and_wait_for_canary(&opsd, &fixture, &alarmed, "120s").await;
    fixture
        .cloudwatch
        .set_alarm_state()
        .alarm_name("opsd-steno-lambda-error-rate")
        .state_value(StateValue::Alarm)
        .state_reason("Threshold Crossed: 1 datapoint [0.05] was greater than the threshold (0.01)")
        .send()
        .await
        .expect("SetAlarmState");
    let (code, out) = deploy.await.unwrap();
    assert_eq!(
        code, 2,
        "a rollback alarm in ALARM rolls the canary back:\n{out}"
    );
    assert!(out.contains("opsd-steno-lambda-error-rate"), "{out}");
    fixture.expect_alias("2", HashMap::new()).await;
    fixture
        .cloudwatch
        .set_alarm_state()
        .alarm_name("opsd-steno-lambda-error-rate")
        .state_value(StateValue::Ok)
        .state_reason("reset by the test")
        .send()
        .await
        .expect("SetAlarmState");
    // opsd reuses what it read for `poll_interval` (1 s here): let that read expire, or the next
    // rollout would still see the alarm firing (as it should, while an alarm really fires).
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // A label that is not a version yet: opsd publishes the configured package as a new version
    // (described with the label), rolls it out and promotes it.
    let (code, out) = blocking({
        let opsd = opsd.clone();
        move || {
            opsd.cli(&[
                "deploy",
                "steno",
                "--version",
                "v6-packaged",
                "--wait",
                "--timeout",
                "120s",
            ])
        }
    })
    .await;
    assert_eq!(
        code, 0,
        "a packaged release is published and promoted:\n{out}"
    );
    let versions = fixture
        .lambda
        .list_versions_by_function()
        .function_name(FUNCTION)
        .send()
        .await
        .expect("ListVersionsByFunction");
    let published = versions
        .versions()
        .iter()
        .find(|version| version.description() == Some("opsd release v6-packaged"))
        .expect("opsd published the package as a version");
    let packaged = published.version().unwrap().to_string();
    fixture.expect_alias(&packaged, HashMap::new()).await;

    // Drift: someone shifts the alias by hand during a rollout; opsd reports it and does not
    // touch the alias while it differs from what opsd last set.
    let drifted = fixture.publish("v5-drift").await;
    let deploy = deploy_and_wait_for_canary(&opsd, &fixture, &drifted, "15s").await;
    let hand_weights = HashMap::from([(drifted.clone(), 0.5)]);
    fixture
        .lambda
        .update_alias()
        .function_name(FUNCTION)
        .name(ALIAS)
        .function_version(&packaged)
        .routing_config(
            aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                .set_additional_version_weights(Some(hand_weights.clone()))
                .build(),
        )
        .send()
        .await
        .expect("UpdateAlias by hand");
    let (code, out) = deploy.await.unwrap();
    assert_ne!(code, 0, "a drifted rollout is not promoted:\n{out}");
    assert_eq!(
        fixture.alias().await,
        (packaged.clone(), hand_weights),
        "opsd left the hand-made change alone"
    );
    let (code, out) = blocking({
        let opsd = opsd.clone();
        move || opsd.cli(&["history", "steno", "--json", "--limit", "1"])
    })
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("drift"),
        "the drift is on the timeline:\n{out}"
    );

    traffic.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_sync_is_idempotent_and_cdn_invalidations_complete() {
    binary("opsd");
    let fixture = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &fixture.emulator.endpoint_url(),
        &fixture.distribution_id,
    );
    let run = |args: &'static [&'static str]| {
        let dir = dir.path().to_path_buf();
        blocking(move || {
            let output = opsd_command(&dir).args(args).output().unwrap();
            (
                output.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            )
        })
    };
    let describe = || async {
        let alarms = fixture
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix("opsd-steno-")
            .send()
            .await
            .expect("DescribeAlarms");
        alarms
            .metric_alarms()
            .iter()
            .map(|alarm| {
                (
                    alarm.alarm_name().unwrap().to_string(),
                    alarm.alarm_description().unwrap_or_default().to_string(),
                    alarm.threshold(),
                    alarm.evaluation_periods(),
                    alarm
                        .comparison_operator()
                        .map(|op| op.as_str().to_string()),
                    alarm.metrics().len(),
                    alarm.extended_statistic().map(str::to_string),
                )
            })
            .collect::<Vec<_>>()
    };

    let (code, out, err) = run(&["alarms", "sync", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let first: Value = serde_json::from_str(&out).unwrap();
    let created = first[0]["created"].as_array().unwrap().len();
    assert!(
        created >= 5,
        "the shipped rules with a CloudWatch metric are created (R-ALARM-11): {first:#}"
    );
    let after_first = describe().await;
    assert_eq!(after_first.len(), created);
    let error_rate = after_first
        .iter()
        .find(|alarm| alarm.0 == "opsd-steno-lambda-error-rate")
        .expect("the error-rate alarm");
    assert_eq!(error_rate.2, Some(0.01));
    assert_eq!(error_rate.5, 3, "error rate is metric math over two sums");
    let p99 = after_first
        .iter()
        .find(|alarm| alarm.0 == "opsd-steno-p99-latency")
        .expect("the p99 alarm");
    assert_eq!(p99.3, Some(5));
    assert_eq!(p99.6.as_deref(), Some("p99"));

    // Each alarm notifies its severity's topic, entering ALARM and returning to OK.
    let cloudwatch = &fixture.cloudwatch;
    let actions = |name: &'static str| async move {
        let alarms = cloudwatch
            .describe_alarms()
            .alarm_names(name)
            .send()
            .await
            .expect("DescribeAlarms");
        let alarm = &alarms.metric_alarms()[0];
        (alarm.alarm_actions().to_vec(), alarm.ok_actions().to_vec())
    };
    let pager = vec![PAGER_TOPIC.to_string()];
    let chat = vec![CHAT_TOPIC.to_string()];
    assert_eq!(
        actions("opsd-steno-lambda-error-rate").await,
        (pager.clone(), pager),
        "critical: the pager's topic"
    );
    assert_eq!(
        actions("opsd-steno-lambda-throttles").await,
        (chat.clone(), chat),
        "warning: the chat topic"
    );

    // A second sync changes nothing.
    let (code, out, err) = run(&["alarms", "sync", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let second: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(second[0]["created"], serde_json::json!([]));
    assert_eq!(second[0]["updated"], serde_json::json!([]));
    assert_eq!(second[0]["deleted"], serde_json::json!([]));
    assert_eq!(describe().await, after_first);

    // An owned alarm whose rule is gone is deleted; a threshold changed by hand is put back;
    // alarms opsd does not own are left alone.
    for (name, threshold) in [
        ("opsd-steno-retired-rule", 1.0),
        ("someone-elses-alarm", 2.0),
    ] {
        fixture
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("Steno")
            .metric_name("Requests")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(threshold)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .unwrap();
    }
    let (code, out, err) = run(&["alarms", "list"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("orphan"), "{out}");
    assert!(out.contains("health-check"), "{out}");
    assert!(out.contains("not synced"), "{out}");
    let (code, out, err) = run(&["alarms", "sync", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let third: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        third[0]["deleted"],
        serde_json::json!(["opsd-steno-retired-rule"])
    );
    assert_eq!(describe().await, after_first);
    let others = fixture
        .cloudwatch
        .describe_alarms()
        .alarm_name_prefix("someone-elses")
        .send()
        .await
        .unwrap();
    assert_eq!(others.metric_alarms().len(), 1);

    // An invalidation is created and followed to completion.
    let (code, out, err) = run(&["cdn", "invalidate", "steno", "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["completed"], true, "{report:#}");
    assert!(err.contains("invalidation"), "a progress line: {err}");
    let id = report["invalidation_id"].as_str().unwrap().to_string();
    assert!(fixture.invalidation_ids().await.contains(&id));
    let status = fixture
        .cloudfront
        .get_invalidation()
        .distribution_id(&fixture.distribution_id)
        .id(&id)
        .send()
        .await
        .unwrap();
    assert!(
        status
            .invalidation()
            .unwrap()
            .status()
            .eq_ignore_ascii_case("completed"),
        "the emulator reports the invalidation completed"
    );
}
