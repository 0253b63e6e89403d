//! The `aws` platform: a release is a Lambda function version, traffic is split by the weights
//! of a Lambda alias, metrics and alarms come from CloudWatch, and the CDN is CloudFront.
//!
//! [`AwsPlatform`] implements the same traits as the local platform, so the rollout engine does
//! not know which one it drives. invariant: no AWS SDK type leaves this module; the traits speak
//! in release ids, splits, samples and plain alarm records.

pub mod alarm_sync;
pub mod cdn;
pub mod costs;
pub mod document_bucket;
pub mod lambda;
pub mod metrics;
pub mod rds;
mod rds_names;
mod rds_wait;
pub mod retry;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use tokio::sync::Mutex;

use self::lambda::{check_alias, AliasCheck, AliasRouting, LambdaFunction, VersionReadiness};
use self::metrics::{queries_for, samples_from_results, VersionMetrics};
pub use crate::config::{AwsServiceConfig, CloudFrontConfig};
use crate::core::alarms::{AlarmRule, ExternalAlarm};
use crate::core::traffic::SecondSample;
use crate::platform::secrets::Secrets;
use crate::platform::{
    AlarmWatcher, ContentDelivery, HealthStatus, MetricSource, PlatformError, ReleaseRunner,
    ReleaseSpec, TrafficShifter, TrafficSplit,
};

/// SDK clients for one service, built once. SDK retries are off: [`retry`] decides.
#[derive(Clone)]
pub struct AwsClients {
    pub lambda: aws_sdk_lambda::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub cloudfront: aws_sdk_cloudfront::Client,
}

/// The SDK configuration every opsd AWS client starts from: credentials from the standard chain
/// (environment, profile, SSO, instance role, ...), the region, an optional endpoint URL
/// (emulators, VPC endpoints), short timeouts, and the SDK's own retries off (`retry.rs` decides).
pub async fn shared_sdk_config(region: &str, endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .build(),
        );
    if let Some(endpoint) = endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

impl AwsClients {
    /// Credentials from the standard chain (environment, profile, SSO, instance role, ...).
    pub async fn connect(config: &AwsServiceConfig) -> AwsClients {
        let shared = shared_sdk_config(&config.region, config.endpoint_url.as_deref()).await;
        AwsClients {
            lambda: aws_sdk_lambda::Client::new(&shared),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&shared),
            cloudfront: aws_sdk_cloudfront::Client::new(&shared),
        }
    }
}

/// A value read from AWS and when.
struct Cached<T> {
    read_at: Instant,
    value: T,
}

/// Metric samples of one version over `from..` as last fetched.
struct CachedSeries {
    read_at: Instant,
    from_second: i64,
    to_second: i64,
    samples: Vec<SecondSample>,
}

/// Release labels and function versions, both ways.
#[derive(Default)]
struct VersionBook {
    version_of_label: HashMap<String, String>,
    label_of_version: HashMap<String, String>,
}

struct AwsService {
    name: String,
    config: AwsServiceConfig,
    function: LambdaFunction,
    cloudwatch: aws_sdk_cloudwatch::Client,
    distribution: Option<cdn::Distribution>,
    rules: Vec<AlarmRule>,
    ready_timeout: Duration,
    /// Keys every version opsd publishes takes from a secret (key → secret name).
    env_from: BTreeMap<String, String>,
    secrets: Secrets,
    versions: Mutex<VersionBook>,
    last_written: Mutex<Option<Cached<AliasRouting>>>,
    series: Mutex<HashMap<String, CachedSeries>>,
    alarms: Mutex<Option<Cached<Vec<ExternalAlarm>>>>,
}

/// One service to put on the AWS platform.
pub struct AwsServiceSetup {
    pub name: String,
    pub config: AwsServiceConfig,
    pub rules: Vec<AlarmRule>,
    pub ready_timeout: Duration,
    /// Keys every version opsd publishes takes from a secret (key → secret name).
    pub env_from: BTreeMap<String, String>,
    pub secrets: Secrets,
}

/// The AWS implementation of the platform traits, for the services configured on AWS.
pub struct AwsPlatform {
    services: HashMap<String, Arc<AwsService>>,
}

fn release_id(service: &str, label: &str) -> String {
    format!("{service}@{label}")
}

fn label_of_release_id<'a>(service: &str, release_id: &'a str) -> Option<&'a str> {
    release_id
        .strip_prefix(service)
        .and_then(|rest| rest.strip_prefix('@'))
}

impl AwsPlatform {
    pub async fn connect(setups: Vec<AwsServiceSetup>) -> Arc<AwsPlatform> {
        let mut services = HashMap::new();
        for setup in setups {
            let clients = AwsClients::connect(&setup.config).await;
            let retry = setup.config.retry;
            let distribution =
                setup
                    .config
                    .cloudfront
                    .as_ref()
                    .map(|cloudfront| cdn::Distribution {
                        client: clients.cloudfront.clone(),
                        distribution_id: cloudfront.distribution_id.clone(),
                        retry,
                    });
            services.insert(
                setup.name.clone(),
                Arc::new(AwsService {
                    function: LambdaFunction {
                        client: clients.lambda.clone(),
                        function_name: setup.config.function_name.clone(),
                        alias: setup.config.alias.clone(),
                        retry,
                    },
                    cloudwatch: clients.cloudwatch.clone(),
                    distribution,
                    name: setup.name,
                    config: setup.config,
                    rules: setup.rules,
                    ready_timeout: setup.ready_timeout,
                    env_from: setup.env_from,
                    secrets: setup.secrets,
                    versions: Mutex::new(VersionBook::default()),
                    last_written: Mutex::new(None),
                    series: Mutex::new(HashMap::new()),
                    alarms: Mutex::new(None),
                }),
            );
        }
        Arc::new(AwsPlatform { services })
    }

    pub fn serves(&self, service: &str) -> bool {
        self.services.contains_key(service)
    }

    fn service(&self, name: &str) -> Result<&Arc<AwsService>, PlatformError> {
        self.services
            .get(name)
            .ok_or_else(|| PlatformError::Operation {
                operation: "aws platform".into(),
                message: format!("service {name} is not configured on the aws platform"),
            })
    }
}

impl AwsService {
    /// The function version of a release label, publishing the configured package when the
    /// label is new.
    async fn version_of(&self, release: &ReleaseSpec) -> Result<String, PlatformError> {
        let label = release.version.as_str();
        if let Some(version) = self.versions.lock().await.version_of_label.get(label) {
            return Ok(version.clone());
        }
        let published = self.function.published_versions().await?;
        let found = if label.chars().all(|c| c.is_ascii_digit()) && !label.is_empty() {
            published.iter().find(|entry| entry.version == label)
        } else {
            published.iter().find(|entry| {
                entry.description.as_deref() == Some(lambda::release_description(label).as_str())
            })
        };
        let version = match found {
            Some(entry) => {
                if !release.env.is_empty() || !release.env_from.is_empty() {
                    return Err(PlatformError::Start {
                        release: release.release_id(),
                        reason: format!(
                            "Lambda version {} is already published and its environment cannot \
                             change; deploy without --env, or with a new label to publish new code",
                            entry.version
                        ),
                    });
                }
                entry.version.clone()
            }
            None => {
                let Some(package) = &self.config.package else {
                    return Err(PlatformError::Start {
                        release: release.release_id(),
                        reason: format!(
                            "function {} has no version {label:?} (numeric labels are version \
                             numbers; others are versions opsd published); publish one, or set \
                             services.{}.aws.package to a zip from `opsd package` so opsd \
                             publishes it",
                            self.config.function_name, self.name
                        ),
                    });
                };
                let zip = tokio::fs::read(package)
                    .await
                    .map_err(|error| PlatformError::Start {
                        release: release.release_id(),
                        reason: format!("cannot read the package {}: {error}", package.display()),
                    })?;
                let mut env_from = self.env_from.clone();
                env_from.extend(release.env_from.clone());
                let mut env =
                    self.secrets
                        .resolve(&env_from)
                        .map_err(|error| PlatformError::Start {
                            release: release.release_id(),
                            reason: error.to_string(),
                        })?;
                env.extend(release.env.clone());
                tracing::info!(service = %self.name, label = %label, package = %package.display(), "publishing a new Lambda version");
                self.function
                    .publish(label, zip, &env, self.ready_timeout)
                    .await?
            }
        };
        let mut book = self.versions.lock().await;
        book.version_of_label
            .insert(label.to_string(), version.clone());
        book.label_of_version
            .insert(version.clone(), label.to_string());
        Ok(version)
    }

    /// The release label of a function version.
    async fn label_of(&self, version: &str) -> Result<String, PlatformError> {
        if let Some(label) = self.versions.lock().await.label_of_version.get(version) {
            return Ok(label.clone());
        }
        let published = self.function.published_versions().await?;
        let mut book = self.versions.lock().await;
        for entry in &published {
            let label = lambda::label_of_version(&entry.version, entry.description.as_deref());
            book.version_of_label
                .insert(label.clone(), entry.version.clone());
            book.label_of_version.insert(entry.version.clone(), label);
        }
        Ok(book
            .label_of_version
            .get(version)
            .cloned()
            .unwrap_or_else(|| version.to_string()))
    }

    async fn split_of(&self, routing: &AliasRouting) -> Result<TrafficSplit, PlatformError> {
        let stable = release_id(&self.name, &self.label_of(&routing.function_version).await?);
        let canary = match routing.additional_weights.iter().next() {
            Some((version, weight)) => Some((
                release_id(&self.name, &self.label_of(version).await?),
                (weight * 100.0).round().clamp(0.0, 100.0) as u8,
            )),
            None => None,
        };
        Ok(TrafficSplit {
            stable,
            canary_weight_percent: canary.as_ref().map(|(_, weight)| *weight).unwrap_or(0),
            canary: canary.map(|(id, _)| id),
        })
    }

    async fn version_of_release_id(&self, release_id: &str) -> Result<String, PlatformError> {
        let label = label_of_release_id(&self.name, release_id).ok_or_else(|| {
            PlatformError::UnknownRelease {
                release: release_id.to_string(),
            }
        })?;
        self.version_of(&ReleaseSpec {
            service: self.name.clone(),
            version: label.to_string(),
            env: BTreeMap::new(),
            env_from: Default::default(),
        })
        .await
    }
}

#[async_trait::async_trait]
impl ReleaseRunner for AwsPlatform {
    /// Resolves (or publishes) the release's function version and waits until it is Active.
    async fn ensure_running(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        let service = self.service(&release.service)?;
        let version = service.version_of(release).await?;
        let deadline = Instant::now() + service.ready_timeout;
        loop {
            match service.function.readiness(&version).await? {
                VersionReadiness::Ready => return Ok(()),
                VersionReadiness::Broken(reason) => {
                    return Err(PlatformError::Start {
                        release: release.release_id(),
                        reason: format!("Lambda version {version}: {reason}"),
                    })
                }
                VersionReadiness::Pending if Instant::now() >= deadline => {
                    return Err(PlatformError::NotReady {
                        release: release.release_id(),
                        waited_secs: service.ready_timeout.as_secs(),
                        last_error: format!("Lambda version {version} is still Pending"),
                    })
                }
                VersionReadiness::Pending => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Lambda versions do not run when they take no traffic; they stay published for rollback.
    async fn stop(&self, _release: &ReleaseSpec) -> Result<(), PlatformError> {
        Ok(())
    }

    async fn probe_health(&self, release: &ReleaseSpec) -> HealthStatus {
        let service = match self.service(&release.service) {
            Ok(service) => service,
            Err(error) => return HealthStatus::Unhealthy(error.to_string()),
        };
        let version = match service.version_of(release).await {
            Ok(version) => version,
            Err(error) => return HealthStatus::Unhealthy(error.to_string()),
        };
        match service.function.readiness(&version).await {
            Ok(VersionReadiness::Ready) => HealthStatus::Healthy,
            Ok(VersionReadiness::Pending) => {
                HealthStatus::Unhealthy(format!("Lambda version {version} is Pending"))
            }
            Ok(VersionReadiness::Broken(reason)) => {
                HealthStatus::Unhealthy(format!("Lambda version {version}: {reason}"))
            }
            Err(error) => HealthStatus::Unhealthy(error.to_string()),
        }
    }

    async fn running(&self) -> Vec<ReleaseSpec> {
        Vec::new()
    }
}

#[async_trait::async_trait]
impl TrafficShifter for AwsPlatform {
    /// Reads the alias, refuses to act on drift, and writes the new routing with opsd's marker.
    async fn set_split(
        &self,
        service_name: &str,
        split: &TrafficSplit,
    ) -> Result<(), PlatformError> {
        let service = self.service(service_name)?;
        let stable_version = service.version_of_release_id(&split.stable).await?;
        let canary_version = match &split.canary {
            Some(canary) if split.canary_weight_percent > 0 => {
                Some(service.version_of_release_id(canary).await?)
            }
            _ => None,
        };
        let desired = AliasRouting::for_split(
            &stable_version,
            canary_version
                .as_deref()
                .map(|version| (version, split.canary_weight_percent)),
        );
        let (observed, description, revision_id) = service.function.read_alias_revision().await?;
        match check_alias(&observed, description.as_deref()) {
            AliasCheck::Drifted {
                last_written_by_opsd,
                observed,
            } => {
                return Err(PlatformError::Drift {
                    target: service.config.describe_target(),
                    detail: format!(
                        "the alias routes {} but opsd last set {}; opsd will not fight a change it \
                         did not make: put the alias back, or route one version and clear its \
                         description to hand it to opsd",
                        observed.describe(),
                        last_written_by_opsd
                            .map(|routing| routing.describe())
                            .unwrap_or_else(|| "nothing (it never managed this alias)".into())
                    ),
                })
            }
            AliasCheck::AsOpsdLeftIt if observed.same_as(&desired) => {}
            AliasCheck::AsOpsdLeftIt | AliasCheck::Adoptable => {
                let written = service
                    .function
                    .write_alias_if_unchanged(&desired, revision_id.as_deref())
                    .await;
                match written {
                    Ok(()) => {}
                    Err(error) if error.code() == Some("PreconditionFailedException") => {
                        return Err(PlatformError::Drift {
                            target: service.config.describe_target(),
                            detail: "the alias changed between opsd reading and writing it; opsd \
                                     will look again rather than overwrite that change"
                                .into(),
                        })
                    }
                    Err(error) => return Err(error.into()),
                }
                tracing::info!(service = %service_name, routing = %desired.describe(), "lambda alias updated");
            }
        }
        *service.last_written.lock().await = Some(Cached {
            read_at: Instant::now(),
            value: desired,
        });
        Ok(())
    }

    /// What opsd last wrote while that is fresh, else the alias as Lambda reports it.
    async fn current_split(
        &self,
        service_name: &str,
    ) -> Result<Option<TrafficSplit>, PlatformError> {
        let service = self.service(service_name)?;
        let fresh = service
            .last_written
            .lock()
            .await
            .as_ref()
            .filter(|cached| cached.read_at.elapsed() < service.config.poll_interval)
            .map(|cached| cached.value.clone());
        let routing = match fresh {
            Some(routing) => routing,
            None => service.function.read_alias().await?.0,
        };
        Ok(Some(service.split_of(&routing).await?))
    }
}

#[async_trait::async_trait]
impl MetricSource for AwsPlatform {
    async fn samples(
        &self,
        service_name: &str,
        release_id: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<SecondSample>, PlatformError> {
        let service = self.service(service_name)?;
        let version = service.version_of_release_id(release_id).await?;
        let within = |samples: &[SecondSample]| -> Vec<SecondSample> {
            samples
                .iter()
                .filter(|entry| entry.second >= from_second && entry.second < to_second)
                .cloned()
                .collect()
        };
        {
            let series = service.series.lock().await;
            if let Some(cached) = series.get(&version) {
                if cached.read_at.elapsed() < service.config.poll_interval
                    && cached.from_second <= from_second
                    && cached.to_second > from_second
                {
                    return Ok(within(&cached.samples));
                }
            }
        }
        let queries = queries_for(&VersionMetrics {
            function_name: service.config.function_name.clone(),
            alias: service.config.alias.clone(),
            version: version.clone(),
            steno_namespace: service.config.metrics_namespace.clone(),
        });
        // Lambda's 1-minute datapoints are stamped at the minute's start.
        let fetch_from = from_second.div_euclid(60) * 60;
        let results = metrics::fetch(
            &service.cloudwatch,
            &service.config.retry,
            &format!(
                "function {}, version {version}",
                service.config.function_name
            ),
            &queries,
            fetch_from,
            to_second,
        )
        .await?;
        let samples = samples_from_results(&results);
        let answer = within(&samples);
        service.series.lock().await.insert(
            version,
            CachedSeries {
                read_at: Instant::now(),
                from_second,
                to_second,
                samples,
            },
        );
        Ok(answer)
    }
}

#[async_trait::async_trait]
impl AlarmWatcher for AwsPlatform {
    /// The service's owned alarms and its listed rollback alarms that are in ALARM.
    async fn firing_alarms(&self, service_name: &str) -> Result<Vec<ExternalAlarm>, PlatformError> {
        let service = self.service(service_name)?;
        if let Some(cached) = service.alarms.lock().await.as_ref() {
            if cached.read_at.elapsed() < service.config.poll_interval {
                return Ok(cached.value.clone());
            }
        }
        let firing = alarm_sync::describe(
            &service.cloudwatch,
            &service.config.retry,
            None,
            Some(aws_sdk_cloudwatch::types::StateValue::Alarm),
        )
        .await?;
        let prefix = alarm_sync::owned_prefix(service_name);
        let alarms: Vec<ExternalAlarm> = firing
            .into_iter()
            .filter_map(|alarm| {
                let rolls_back = match alarm.name.strip_prefix(&prefix) {
                    Some(rule_name) => service
                        .rules
                        .iter()
                        .any(|rule| rule.name == rule_name && rule.rollback),
                    None if service.config.rollback_alarms.contains(&alarm.name) => true,
                    None => return None,
                };
                Some(ExternalAlarm {
                    name: alarm.name,
                    state: alarm.state,
                    reason: alarm.state_reason,
                    rolls_back,
                })
            })
            .collect();
        *service.alarms.lock().await = Some(Cached {
            read_at: Instant::now(),
            value: alarms.clone(),
        });
        Ok(alarms)
    }
}

#[async_trait::async_trait]
impl ContentDelivery for AwsPlatform {
    async fn invalidate(&self, service_name: &str) -> Result<Option<String>, PlatformError> {
        let service = self.service(service_name)?;
        let (Some(distribution), Some(cloudfront)) =
            (&service.distribution, &service.config.cloudfront)
        else {
            return Ok(None);
        };
        let reference = format!("opsd-{}-{}", service_name, uuid::Uuid::new_v4());
        let id = distribution
            .create_invalidation(&cloudfront.paths, &reference)
            .await?;
        Ok(Some(id))
    }

    async fn invalidation_completed(
        &self,
        service_name: &str,
        id: &str,
    ) -> Result<bool, PlatformError> {
        let service = self.service(service_name)?;
        let Some(distribution) = &service.distribution else {
            return Ok(true);
        };
        Ok(distribution
            .invalidation_status(id)
            .await?
            .eq_ignore_ascii_case("Completed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_ids_carry_the_label() {
        assert_eq!(release_id("steno", "7"), "steno@7");
        assert_eq!(label_of_release_id("steno", "steno@7"), Some("7"));
        assert_eq!(label_of_release_id("steno", "other@7"), None);
    }
}
