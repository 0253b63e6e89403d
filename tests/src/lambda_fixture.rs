//! A Lambda function on the local AWS emulator for opsd's AWS platform tests: the function with
//! published versions and a `live` alias, a CloudFront distribution, a player of Lambda's traffic
//! (per-version metrics written into CloudWatch by the weights it reads off the alias), the
//! `opsd.yaml` that points opsd at them, and a client of the `opsd up` under test.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::aws_emulator::{use_test_credentials, AwsEmulator, TEST_CREDENTIAL, TEST_REGION};
use crate::RunningProcess;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use serde_json::Value;

pub const FUNCTION: &str = "steno";
pub const ALIAS: &str = "live";
/// The SNS topics `aws.alarm_topics` routes critical and warning alarms to.
pub const PAGER_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:steno-pager";
pub const CHAT_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:steno-chat";
/// Requests per second the simulated Lambda serves, split by the alias's weights.
pub const SIMULATED_RPS: f64 = 200.0;

/// The steps of R-CANARY-1, R-CANARY-3 and R-CANARY-4 (docs/requirements.md): 10 → 25 with smoke
/// checks → 50 with end-to-end checks → 100, with short bakes.
pub const SEED_PLAN_FAST: &str = "name: seed-fast\nsteps:\n  - weight: 10\n    bake: 4s\n  - weight: 25\n    bake: 4s\n    checks: [smoke]\n  - weight: 50\n    bake: 4s\n    checks: [e2e]\n  - weight: 100\n";

/// A tiny zip holding a `bootstrap`; the emulator stores it, nothing runs it.
pub fn bootstrap_zip(marker: &str) -> Vec<u8> {
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
pub fn create_role(emulator: &AwsEmulator) -> String {
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

pub struct Fixture {
    pub emulator: AwsEmulator,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
    pub distribution_id: String,
}

impl Fixture {
    /// The function with versions 1 and 2 and the alias on 1, and a CloudFront distribution.
    pub async fn new() -> Fixture {
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
    pub async fn publish(&self, marker: &str) -> String {
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
    pub async fn alias(&self) -> (String, HashMap<String, f64>) {
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
    pub async fn expect_alias(&self, version: &str, weights: HashMap<String, f64>) {
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

    pub async fn invalidation_ids(&self) -> Vec<String> {
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

pub async fn create_distribution(cloudfront: &aws_sdk_cloudfront::Client) -> String {
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
pub fn start_traffic(
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

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn chrono_now_secs() -> i64 {
    now_millis() / 1000
}

pub fn write_config(dir: &Path, endpoint: &str, distribution_id: &str) -> PathBuf {
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
pub fn opsd_command(dir: &Path) -> Command {
    let mut command = crate::opsd_command(dir);
    use_test_credentials(&mut command);
    command
}

/// Runs `opsd up`; the process is killed when the returned handle drops.
pub fn start_opsd(dir: &Path) -> (RunningProcess, Opsd) {
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
pub struct Opsd {
    pub api_url: String,
    pub dir: PathBuf,
}

impl Opsd {
    pub fn cli(&self, args: &[&str]) -> (i32, String) {
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

    pub fn last_rollout(&self) -> Value {
        let (code, out) = self.cli(&["history", "steno", "--json", "--limit", "1"]);
        assert_eq!(code, 0, "{out}");
        let history: Value = serde_json::from_str(&out).unwrap();
        history["rollouts"][0].clone()
    }
}

/// Starts `deploy --wait` of `version` in the background and returns once the canary takes
/// traffic on the alias; the handle gives the deploy's exit code and output.
pub async fn deploy_and_wait_for_canary(
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
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}
