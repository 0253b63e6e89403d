//! opsd.yaml's `services.<name>.aws` block: where a service runs on AWS (region, Lambda function
//! and alias, endpoint, metrics, alarms, CloudFront, package, retries), validated into the
//! [`AwsServiceConfig`] the aws platform reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawAlarmTopics, RawAws};
use super::yaml::duration_field;
use crate::core::config_error::ConfigError;
use crate::core::retry::RetryPolicy;
use crate::core::severity::Severity;

/// CloudFront settings of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudFrontConfig {
    pub distribution_id: String,
    /// Invalidated after every promotion (default `/*`).
    pub paths: Vec<String>,
}

/// One service on AWS, as `opsd.yaml` configures it.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsServiceConfig {
    pub region: String,
    pub function_name: String,
    pub alias: String,
    /// For emulators and VPC endpoints; `None` uses AWS's public endpoints.
    pub endpoint_url: Option<String>,
    /// The namespace of Steno's own high-resolution metrics.
    pub metrics_namespace: String,
    /// How long metric, alias and alarm reads are reused before CloudWatch or Lambda is asked
    /// again (each read costs API quota and money).
    pub poll_interval: Duration,
    /// CloudWatch alarms not synced by opsd that roll a rollout back when in ALARM.
    pub rollback_alarms: Vec<String>,
    /// The SNS topic synced alarms notify when their severity has no topic of its own and the
    /// rule names notification targets.
    pub alarm_topic_arn: Option<String>,
    /// The SNS topic of each severity (critical to the pager, warning to chat, ...).
    pub alarm_topics: AlarmTopics,
    /// The RDS instance the database alarms watch.
    pub database_instance: Option<String>,
    pub cloudfront: Option<CloudFrontConfig>,
    /// A Lambda zip (see `opsd package`) published for release labels that are not versions yet.
    pub package: Option<PathBuf>,
    pub retry: RetryPolicy,
}

impl AwsServiceConfig {
    /// Defaults for a function and alias.
    pub fn for_function(region: &str, function_name: &str, alias: &str) -> AwsServiceConfig {
        AwsServiceConfig {
            region: region.to_string(),
            function_name: function_name.to_string(),
            alias: alias.to_string(),
            endpoint_url: None,
            metrics_namespace: "Steno".into(),
            poll_interval: Duration::from_secs(10),
            rollback_alarms: Vec::new(),
            alarm_topic_arn: None,
            alarm_topics: AlarmTopics::default(),
            database_instance: None,
            cloudfront: None,
            package: None,
            retry: RetryPolicy::default(),
        }
    }

    /// Like `lambda:steno:live`, for status output.
    pub fn describe_target(&self) -> String {
        format!("lambda:{}:{}", self.function_name, self.alias)
    }
}

/// The SNS topic each severity's synced alarms notify, entering ALARM and returning to OK.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlarmTopics {
    pub critical: Option<String>,
    pub warning: Option<String>,
    pub info: Option<String>,
}

impl AlarmTopics {
    /// The topic of `severity`, if one is configured.
    pub fn for_severity(&self, severity: Severity) -> Option<&str> {
        match severity {
            Severity::Critical => self.critical.as_deref(),
            Severity::Warning => self.warning.as_deref(),
            Severity::Info => self.info.as_deref(),
        }
    }
}

/// The topic ARN in `field`, or why it is not one.
fn sns_topic(
    field: &str,
    topic: String,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<String, ConfigError> {
    if topic.starts_with("arn:aws:sns:") && !topic.contains(char::is_whitespace) {
        Ok(topic)
    } else {
        Err(error(
            field,
            format!("{topic:?} is not an SNS topic ARN (arn:aws:sns:region:account:name)"),
        ))
    }
}

fn validate_alarm_topics(
    raw: RawAlarmTopics,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<AlarmTopics, ConfigError> {
    let topic = |severity: &str, value: Option<String>| {
        value
            .map(|topic| sns_topic(&format!("aws.alarm_topics.{severity}"), topic, error))
            .transpose()
    };
    Ok(AlarmTopics {
        critical: topic("critical", raw.critical)?,
        warning: topic("warning", raw.warning)?,
        info: topic("info", raw.info)?,
    })
}

/// Paths must start with `/`; `*` is allowed only as the last character. Pure.
pub fn validate_invalidation_paths(paths: &[String]) -> Result<(), String> {
    if paths.is_empty() {
        return Err("at least one path is needed, like /*".into());
    }
    for path in paths {
        if !path.starts_with('/') {
            return Err(format!("{path:?} must start with /"));
        }
        if path.contains('*') && !path.ends_with('*') {
            return Err(format!("{path:?}: * may only be the last character"));
        }
    }
    Ok(())
}

/// `services.<name>.aws`, validated.
pub(super) fn validate_aws(
    raw: RawAws,
    base_dir: &Path,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<AwsServiceConfig, ConfigError> {
    let plain = |field: &str, value: Option<String>| -> Result<String, ConfigError> {
        match value {
            Some(text) if !text.trim().is_empty() && !text.contains(char::is_whitespace) => {
                Ok(text)
            }
            Some(text) => Err(error(
                &format!("aws.{field}"),
                format!("{text:?} must be a name without spaces"),
            )),
            None => Err(error(&format!("aws.{field}"), "is required".into())),
        }
    };
    let region = plain("region", raw.region)?;
    let function_name = plain("function_name", raw.function_name)?;
    let alias = plain("alias", Some(raw.alias.unwrap_or_else(|| "live".into())))?;
    let mut config = AwsServiceConfig::for_function(&region, &function_name, &alias);
    if let Some(endpoint) = raw.endpoint_url {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(error(
                "aws.endpoint_url",
                format!("{endpoint:?} must start with http:// or https://"),
            ));
        }
        config.endpoint_url = Some(endpoint);
    }
    if let Some(namespace) = raw.metrics_namespace {
        config.metrics_namespace = plain("metrics_namespace", Some(namespace))?;
    }
    config.poll_interval = duration_field(
        raw.poll_interval.as_deref(),
        "aws.poll_interval",
        config.poll_interval,
        error,
    )?;
    if config.poll_interval > Duration::from_secs(300) {
        return Err(error(
            "aws.poll_interval",
            "must be at most 5m, or rollouts would judge stale metrics".into(),
        ));
    }
    config.rollback_alarms = raw.rollback_alarms;
    if let Some(topic) = raw.alarm_topic_arn {
        config.alarm_topic_arn = Some(sns_topic("aws.alarm_topic_arn", topic, error)?);
    }
    if let Some(topics) = raw.alarm_topics {
        config.alarm_topics = validate_alarm_topics(topics, error)?;
    }
    config.database_instance = raw.database_instance;
    if let Some(cloudfront) = raw.cloudfront {
        let paths = cloudfront.paths.unwrap_or_else(|| vec!["/*".into()]);
        validate_invalidation_paths(&paths)
            .map_err(|problem| error("aws.cloudfront.paths", problem))?;
        config.cloudfront = Some(CloudFrontConfig {
            distribution_id: plain(
                "cloudfront.distribution_id",
                Some(cloudfront.distribution_id),
            )?,
            paths,
        });
    }
    config.package = raw.package.map(|path| base_dir.join(path));
    if let Some(attempts) = raw.max_attempts {
        if attempts == 0 || attempts > 10 {
            return Err(error(
                "aws.max_attempts",
                format!("{attempts} must be between 1 and 10"),
            ));
        }
        config.retry = RetryPolicy {
            max_attempts: attempts,
            ..RetryPolicy::default()
        };
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;
    use crate::config::CheckSpec;

    #[test]
    fn paths_must_be_absolute_with_a_trailing_wildcard_only() {
        assert!(validate_invalidation_paths(&["/*".into(), "/static/app.js".into()]).is_ok());
        assert!(validate_invalidation_paths(&[]).is_err());
        assert!(validate_invalidation_paths(&["static/*".into()])
            .unwrap_err()
            .contains("must start with /"));
        assert!(validate_invalidation_paths(&["/a*/b".into()])
            .unwrap_err()
            .contains("last"));
    }

    #[test]
    fn alarm_topics_are_sns_topics_per_severity() {
        let with_topics = |topics: &str| {
            parse(&format!(
                "services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n      function_name: steno-prod\n      alarm_topics: {topics}\n"
            ))
        };
        let config = with_topics(
            "{critical: \"arn:aws:sns:eu-west-1:123456789012:pager\", warning: \"arn:aws:sns:eu-west-1:123456789012:chat\"}",
        )
        .unwrap();
        let topics = &config.services["steno"].aws.as_ref().unwrap().alarm_topics;
        assert_eq!(
            topics.for_severity(Severity::Critical),
            Some("arn:aws:sns:eu-west-1:123456789012:pager")
        );
        assert_eq!(
            topics.for_severity(Severity::Warning),
            Some("arn:aws:sns:eu-west-1:123456789012:chat")
        );
        assert_eq!(topics.for_severity(Severity::Info), None);

        let wrong = with_topics("{warning: https://chat.example/hook}")
            .unwrap_err()
            .to_string();
        assert!(wrong.contains("aws.alarm_topics.warning"), "{wrong}");
        assert!(wrong.contains("is not an SNS topic ARN"), "{wrong}");
        let unknown = with_topics("{urgent: \"arn:aws:sns:eu-west-1:1:x\"}")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("urgent"), "{unknown}");
    }

    #[test]
    fn aws_services_name_their_function_alias_and_endpoint() {
        let config = parse(
            "services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n      function_name: steno-prod\n      endpoint_url: http://127.0.0.1:5000\n      poll_interval: 2s\n      rollback_alarms: [api-5xx]\n      cloudfront: {distribution_id: E2EXAMPLE}\n      max_attempts: 3\n",
        )
        .unwrap();
        let steno = &config.services["steno"];
        let aws = steno.aws.as_ref().unwrap();
        assert_eq!(aws.region, "eu-west-1");
        assert_eq!(aws.function_name, "steno-prod");
        assert_eq!(aws.alias, "live");
        assert_eq!(aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(aws.poll_interval, Duration::from_secs(2));
        assert_eq!(aws.rollback_alarms, vec!["api-5xx".to_string()]);
        assert_eq!(
            aws.cloudfront.as_ref().unwrap().paths,
            vec!["/*".to_string()]
        );
        assert_eq!(aws.retry.max_attempts, 3);
        // Lambda reports its own version; the alias decides the first stable release.
        assert_eq!(steno.version_env, None);
        assert_eq!(steno.initial_version, "");
        assert_eq!(steno.checks["smoke"], CheckSpec::ReleaseHealth);
        assert_eq!(steno.public_target(), "lambda:steno-prod:live");
    }

    #[test]
    fn aws_blocks_are_checked_field_by_field() {
        let missing = parse("services:\n  steno:\n    platform: aws\n").unwrap_err();
        assert_eq!(missing.field.as_deref(), Some("services.steno.aws"));
        let no_function =
            parse("services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n")
                .unwrap_err();
        assert_eq!(
            no_function.field.as_deref(),
            Some("services.steno.aws.function_name")
        );
        let bad_endpoint = parse(
            "services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n      function_name: steno\n      endpoint_url: localhost:5000\n",
        )
        .unwrap_err();
        assert!(
            bad_endpoint.to_string().contains("http://"),
            "{bad_endpoint}"
        );
        let unknown = parse(
            "services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n      function_name: steno\n      alais: live\n",
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("alais"), "{unknown}");
        let http_check = parse(
            "services:\n  steno:\n    platform: aws\n    aws:\n      region: eu-west-1\n      function_name: steno\n    checks:\n      smoke:\n        http: {path: /v1/health}\n",
        )
        .unwrap_err();
        assert!(
            http_check.to_string().contains("command check"),
            "{http_check}"
        );
        let local_with_aws = parse(
            "services:\n  steno:\n    aws:\n      region: eu-west-1\n      function_name: steno\n",
        )
        .unwrap_err();
        assert_eq!(local_with_aws.field.as_deref(), Some("services.steno.aws"));
        let other_platform = parse("services:\n  steno:\n    platform: kubernetes\n").unwrap_err();
        assert!(
            other_platform.to_string().contains("local or aws"),
            "{other_platform}"
        );
    }
}
