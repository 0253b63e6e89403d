//! opsd.yaml's `services.<name>.aws` block: where a service runs on AWS (region, Lambda function
//! and alias, endpoint, metrics, alarms, CloudFront, package, retries), validated into the
//! [`AwsServiceConfig`] the aws platform reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::RawAws;
use super::yaml::duration_field;
use crate::core::config_error::ConfigError;
use crate::core::retry::RetryPolicy;

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
    /// The SNS topic synced alarms notify.
    pub alarm_topic_arn: Option<String>,
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
        if !topic.starts_with("arn:aws:sns:") {
            return Err(error(
                "aws.alarm_topic_arn",
                format!("{topic:?} is not an SNS topic ARN (arn:aws:sns:region:account:name)"),
            ));
        }
        config.alarm_topic_arn = Some(topic);
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
