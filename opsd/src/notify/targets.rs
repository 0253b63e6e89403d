//! Where notifications go: the target and route definitions of `opsd.yaml` (their flat YAML
//! form, mapped field by field, and their validation, SNS topic ARNs included), and the choice
//! of targets for one notification.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Notification, Severity};

/// PagerDuty's Events API v2 endpoint, used when a target names no `url`.
pub const DEFAULT_PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// One place notifications are delivered to. Written flat in YAML: `name`, `kind` (`slack`,
/// `pagerduty` or `sns`) and the fields of that kind; a field of another kind, or any unknown
/// field, is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TargetFields", into = "TargetFields")]
pub struct NotificationTarget {
    pub name: String,
    pub kind: TargetKind,
}

/// How a target is reached. Its URL and key are secrets: `Debug` does not show them.
#[derive(Clone, PartialEq, Eq)]
pub enum TargetKind {
    /// A Slack-compatible incoming webhook: POST `{"text": ..., "blocks": [...]}`.
    Slack { webhook_url: String },
    /// PagerDuty Events API v2 (`url` is [`DEFAULT_PAGERDUTY_URL`] unless configured).
    Pagerduty { routing_key: String, url: String },
    /// An Amazon SNS topic: `Publish` with a subject, a message for people, and the message
    /// attributes `severity` and `service`.
    Sns(SnsTarget),
}

/// An SNS topic notifications are published to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsTarget {
    /// `arn:aws:sns:<region>:<account>:<name>`.
    pub topic_arn: String,
    /// The region to call; `None` means the topic ARN's region.
    pub region: Option<String>,
    /// Where to send SNS requests instead of SNS's public endpoint (an emulator, a VPC endpoint).
    pub endpoint_url: Option<String>,
}

impl SnsTarget {
    /// The region requests go to: the configured one, else the topic ARN's (`None` only when
    /// neither is usable, which [`validate_notifications`] refuses).
    pub fn region(&self) -> Option<&str> {
        match &self.region {
            Some(region) => Some(region),
            None => parse_sns_topic_arn(&self.topic_arn)
                .ok()
                .map(|arn| arn.region),
        }
    }
}

/// The parts of an SNS topic ARN, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnsTopicArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

/// Splits `arn:<partition>:sns:<region>:<account>:<name>`, checking each part; the error says
/// which part is wrong (without the "topic_arn" prefix the caller adds).
pub fn parse_sns_topic_arn(arn: &str) -> Result<SnsTopicArn<'_>, String> {
    const SHAPE: &str = "arn:aws:sns:<region>:<account>:<name>";
    let parts: Vec<&str> = arn.split(':').collect();
    let [prefix, partition, service, region, account, name] = parts[..] else {
        return Err(format!(
            "{arn:?} is not an SNS topic ARN; it should look like {SHAPE}"
        ));
    };
    if prefix != "arn" || !partition.starts_with("aws") || service != "sns" {
        return Err(format!(
            "{arn:?} is not an SNS topic ARN; it should look like {SHAPE}"
        ));
    }
    if !is_region_name(region) {
        return Err(format!(
            "{arn:?} has no valid region (like us-east-1) after arn:aws:sns:"
        ));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{arn:?} has no 12-digit account id after the region"
        ));
    }
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    let valid_name = !base.is_empty()
        && name.len() <= 256
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_name {
        return Err(format!(
            "{arn:?} ends in an invalid topic name (1 to 256 letters, digits, - and _)"
        ));
    }
    Ok(SnsTopicArn {
        partition,
        region,
        account,
        name,
    })
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`: lowercase letters, digits and dashes.
fn is_region_name(region: &str) -> bool {
    !region.is_empty()
        && region.contains('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// The names `kind` takes in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TargetKindName {
    Slack,
    Pagerduty,
    Sns,
}

impl TargetKindName {
    fn as_str(self) -> &'static str {
        match self {
            TargetKindName::Slack => "slack",
            TargetKindName::Pagerduty => "pagerduty",
            TargetKindName::Sns => "sns",
        }
    }

    /// The fields a target of this kind may have, besides `name` and `kind`.
    fn fields(self) -> &'static [&'static str] {
        match self {
            TargetKindName::Slack => &["webhook_url"],
            TargetKindName::Pagerduty => &["routing_key", "url"],
            TargetKindName::Sns => &["topic_arn", "region", "endpoint_url"],
        }
    }
}

/// A target as written in configuration.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFields {
    name: String,
    kind: TargetKindName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    routing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint_url: Option<String>,
}

impl TryFrom<TargetFields> for NotificationTarget {
    type Error = String;

    fn try_from(fields: TargetFields) -> Result<NotificationTarget, String> {
        let name = fields.name;
        let present = [
            ("webhook_url", fields.webhook_url.is_some()),
            ("routing_key", fields.routing_key.is_some()),
            ("url", fields.url.is_some()),
            ("topic_arn", fields.topic_arn.is_some()),
            ("region", fields.region.is_some()),
            ("endpoint_url", fields.endpoint_url.is_some()),
        ];
        let allowed = fields.kind.fields();
        if let Some((field, _)) = present
            .iter()
            .find(|(field, given)| *given && !allowed.contains(field))
        {
            let hint = match (fields.kind, *field) {
                (TargetKindName::Slack, "url") => " (use webhook_url)",
                (TargetKindName::Sns, "url") => " (use endpoint_url)",
                _ => "",
            };
            let article = match fields.kind {
                TargetKindName::Sns => "an",
                _ => "a",
            };
            return Err(format!(
                "notification target {name:?}: {field}{hint} does not apply to {article} {} \
                 target",
                fields.kind.as_str()
            ));
        }
        let kind = match fields.kind {
            TargetKindName::Slack => {
                let webhook_url = fields.webhook_url.ok_or_else(|| {
                    format!("notification target {name:?}: a slack target needs webhook_url")
                })?;
                TargetKind::Slack { webhook_url }
            }
            TargetKindName::Pagerduty => {
                let routing_key = fields.routing_key.ok_or_else(|| {
                    format!("notification target {name:?}: a pagerduty target needs routing_key")
                })?;
                let url = fields
                    .url
                    .unwrap_or_else(|| DEFAULT_PAGERDUTY_URL.to_string());
                TargetKind::Pagerduty { routing_key, url }
            }
            TargetKindName::Sns => {
                let topic_arn = fields.topic_arn.ok_or_else(|| {
                    format!(
                        "notification target {name:?}: an sns target needs topic_arn \
                         (arn:aws:sns:<region>:<account>:<name>)"
                    )
                })?;
                TargetKind::Sns(SnsTarget {
                    topic_arn,
                    region: fields.region,
                    endpoint_url: fields.endpoint_url,
                })
            }
        };
        Ok(NotificationTarget { name, kind })
    }
}

impl From<NotificationTarget> for TargetFields {
    fn from(target: NotificationTarget) -> TargetFields {
        let empty = |kind| TargetFields {
            name: target.name,
            kind,
            webhook_url: None,
            routing_key: None,
            url: None,
            topic_arn: None,
            region: None,
            endpoint_url: None,
        };
        match target.kind {
            TargetKind::Slack { webhook_url } => TargetFields {
                webhook_url: Some(webhook_url),
                ..empty(TargetKindName::Slack)
            },
            TargetKind::Pagerduty { routing_key, url } => TargetFields {
                routing_key: Some(routing_key),
                url: Some(url),
                ..empty(TargetKindName::Pagerduty)
            },
            TargetKind::Sns(sns) => TargetFields {
                topic_arn: Some(sns.topic_arn),
                region: sns.region,
                endpoint_url: sns.endpoint_url,
                ..empty(TargetKindName::Sns)
            },
        }
    }
}

impl TargetKind {
    /// The `kind` name, as configuration writes it (`slack`, `pagerduty`, `sns`).
    pub fn label(&self) -> &'static str {
        match self {
            TargetKind::Slack { .. } => "slack",
            TargetKind::Pagerduty { .. } => "pagerduty",
            TargetKind::Sns(_) => "sns",
        }
    }
}

impl fmt::Debug for TargetKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetKind::Slack { .. } => formatter
                .debug_struct("Slack")
                .field("webhook_url", &"<redacted>")
                .finish(),
            TargetKind::Pagerduty { url, .. } => formatter
                .debug_struct("Pagerduty")
                .field("routing_key", &"<redacted>")
                .field("url", url)
                .finish(),
            TargetKind::Sns(sns) => formatter.debug_tuple("Sns").field(sns).finish(),
        }
    }
}

/// Sends every notification of at least `min_severity` to each named target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationRoute {
    pub min_severity: Severity,
    pub targets: Vec<String>,
}

/// A configuration mistake in the notifications section.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("a notification target has an empty name; give every target a name")]
    EmptyTargetName,
    #[error("notification target name {name:?} is used twice; give each target its own name")]
    DuplicateTarget { name: String },
    #[error("notification target {name:?}: {problem}")]
    InvalidTarget { name: String, problem: String },
    #[error(
        "notification route {route_index} names target {target:?}, which is not configured; add it \
         under notifications.targets or fix the name"
    )]
    UnknownRouteTarget { route_index: usize, target: String },
}

/// Checks the notifications section: target names present and unique, URLs http(s), routing
/// keys present, SNS topic ARNs well formed (and any region matching them), and routes naming
/// configured targets. The config loader should call it; [`Notifier::start`](super::Notifier::start) tolerates mistakes
/// (it disables what is wrong and logs why) so that a bad webhook never stops opsd.
pub fn validate_notifications(
    targets: &[NotificationTarget],
    routes: &[NotificationRoute],
) -> Result<(), NotifyError> {
    let mut names = HashSet::new();
    for target in targets {
        validate_target(target)?;
        if !names.insert(target.name.as_str()) {
            return Err(NotifyError::DuplicateTarget {
                name: target.name.clone(),
            });
        }
    }
    for (route_index, route) in routes.iter().enumerate() {
        if let Some(unknown) = route.targets.iter().find(|t| !names.contains(t.as_str())) {
            return Err(NotifyError::UnknownRouteTarget {
                route_index,
                target: unknown.clone(),
            });
        }
    }
    Ok(())
}

/// The names of the targets `notification` goes to, each once: its own
/// [`Notification::targets`] when it names them, else [`routed_targets`] by its severity.
pub fn notification_targets<'a>(
    routes: &'a [NotificationRoute],
    notification: &'a Notification,
) -> Vec<&'a str> {
    match &notification.targets {
        Some(names) => {
            let mut chosen: Vec<&str> = Vec::new();
            for name in names {
                if !chosen.contains(&name.as_str()) {
                    chosen.push(name);
                }
            }
            chosen
        }
        None => routed_targets(routes, notification.severity),
    }
}

/// The names of the targets a notification of `severity` goes to, each once, in the order the
/// routes name them.
pub fn routed_targets(routes: &[NotificationRoute], severity: Severity) -> Vec<&str> {
    let mut chosen: Vec<&str> = Vec::new();
    for route in routes {
        if !severity.is_at_least(route.min_severity) {
            continue;
        }
        for target in &route.targets {
            if !chosen.contains(&target.as_str()) {
                chosen.push(target);
            }
        }
    }
    chosen
}

/// Checks one target on its own (its name and how it is reached).
pub(super) fn validate_target(target: &NotificationTarget) -> Result<(), NotifyError> {
    if target.name.trim().is_empty() {
        return Err(NotifyError::EmptyTargetName);
    }
    let invalid = |problem: String| NotifyError::InvalidTarget {
        name: target.name.clone(),
        problem,
    };
    let (field, url) = match &target.kind {
        TargetKind::Slack { webhook_url } => ("webhook_url", webhook_url),
        TargetKind::Pagerduty { routing_key, url } => {
            if routing_key.trim().is_empty() {
                return Err(invalid(
                    "routing_key is empty; copy the integration key of the PagerDuty service"
                        .to_string(),
                ));
            }
            ("url", url)
        }
        TargetKind::Sns(sns) => {
            let arn = parse_sns_topic_arn(&sns.topic_arn)
                .map_err(|problem| invalid(format!("topic_arn {problem}")))?;
            if arn.name.ends_with(".fifo") {
                return Err(invalid(format!(
                    "topic_arn {:?} names a FIFO topic; notifications need a standard topic",
                    sns.topic_arn
                )));
            }
            if let Some(region) = &sns.region {
                if !is_region_name(region) {
                    return Err(invalid(format!(
                        "region {region:?} is not a region name like us-east-1"
                    )));
                }
                if region != arn.region {
                    return Err(invalid(format!(
                        "region {region} is not the topic's region {}; SNS publishes to a topic \
                         only in its own region, so drop region or fix the topic ARN",
                        arn.region
                    )));
                }
            }
            match &sns.endpoint_url {
                Some(endpoint_url) => ("endpoint_url", endpoint_url),
                None => return Ok(()),
            }
        }
    };
    // The URL itself is a secret for Slack: name the problem, never the value.
    match reqwest::Url::parse(url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(_) => Err(invalid(format!("{field} must be an http or https URL"))),
        Err(error) => Err(invalid(format!(
            "{field} is not a URL ({error}); use an http or https URL"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::notify::test_support::{config, pagerduty, route, slack, sns, Section, TOPIC_ARN};

    #[test]
    fn severities_parse_print_and_compare() {
        assert_eq!("critical".parse::<Severity>().unwrap(), Severity::Critical);
        assert_eq!("warning".parse::<Severity>().unwrap(), Severity::Warning);
        assert_eq!("info".parse::<Severity>().unwrap(), Severity::Info);
        let unknown = "page".parse::<Severity>().unwrap_err();
        assert!(unknown
            .to_string()
            .contains("use critical, warning or info"));
        assert_eq!(
            serde_json::to_value(Severity::Warning).unwrap(),
            json!("warning")
        );
        assert_eq!(Severity::Critical.to_string(), "critical");
        assert!(Severity::Critical.is_at_least(Severity::Warning));
        assert!(Severity::Warning.is_at_least(Severity::Warning));
        assert!(Severity::Warning.is_at_least(Severity::Info));
        assert!(!Severity::Warning.is_at_least(Severity::Critical));
        assert!(!Severity::Info.is_at_least(Severity::Warning));
    }

    #[test]
    fn configuration_reads_from_yaml() {
        let yaml = r#"
targets:
  - name: team-chat
    kind: slack
    webhook_url: "https://chat.example/hooks/T000/B000/XXXX"
  - name: on-call
    kind: pagerduty
    routing_key: "R0UT1NGKEY"
routes:
  - { min_severity: warning, targets: [team-chat] }
  - { min_severity: critical, targets: [on-call] }
"#;
        let parsed: Section = serde_yaml::from_str(yaml).unwrap();
        parsed.validate().unwrap();
        assert_eq!(parsed.targets.len(), 2);
        assert_eq!(
            parsed.targets[0].kind,
            TargetKind::Slack {
                webhook_url: "https://chat.example/hooks/T000/B000/XXXX".to_string(),
            }
        );
        assert_eq!(
            parsed.targets[1].kind,
            TargetKind::Pagerduty {
                routing_key: "R0UT1NGKEY".to_string(),
                url: DEFAULT_PAGERDUTY_URL.to_string(),
            }
        );
        assert_eq!(parsed.routes[0], route(Severity::Warning, &["team-chat"]));
        let written = serde_yaml::to_string(&parsed).unwrap();
        assert_eq!(serde_yaml::from_str::<Section>(&written).unwrap(), parsed);
        assert_eq!(
            serde_yaml::from_str::<Section>("{}").unwrap(),
            Section::default()
        );

        let refused = |yaml: &str| {
            serde_yaml::from_str::<Section>(yaml)
                .unwrap_err()
                .to_string()
        };
        let unknown_field = refused(concat!(
            "targets:\n  - { name: x, kind: slack, ",
            "webhook_url: \"https://a.example/\", channel: ops }\n"
        ));
        assert!(unknown_field.contains("channel"), "{unknown_field}");
        let unknown_kind = refused("targets:\n  - { name: x, kind: email, to: t }\n");
        assert!(unknown_kind.contains("email"), "{unknown_kind}");
        let misplaced = refused(concat!(
            "targets:\n  - { name: x, kind: slack, ",
            "webhook_url: \"https://a.example/\", routing_key: k }\n"
        ));
        assert!(
            misplaced.contains("routing_key does not apply to a slack target"),
            "{misplaced}"
        );
        let missing = refused("targets:\n  - { name: x, kind: pagerduty }\n");
        assert!(missing.contains("needs routing_key"), "{missing}");
        let unknown_route_field =
            refused("routes:\n  - { min_severity: info, targets: [], extra: 1 }\n");
        assert!(
            unknown_route_field.contains("extra"),
            "{unknown_route_field}"
        );
        let unknown_severity = refused("routes:\n  - { min_severity: urgent, targets: [] }\n");
        assert!(unknown_severity.contains("urgent"), "{unknown_severity}");
    }

    #[test]
    fn validation_names_the_mistake_without_revealing_secrets() {
        let secret_url = "https://chat.example/hooks/SECRET";
        let duplicate = config(vec![slack("a", secret_url), slack("a", secret_url)], vec![]);
        assert!(matches!(
            duplicate.validate(),
            Err(NotifyError::DuplicateTarget { .. })
        ));

        let unknown = config(
            vec![slack("a", secret_url)],
            vec![route(Severity::Info, &["a", "b"])],
        );
        match unknown.validate() {
            Err(NotifyError::UnknownRouteTarget {
                route_index,
                target,
            }) => {
                assert_eq!(route_index, 0);
                assert_eq!(target, "b");
            }
            other => panic!("expected UnknownRouteTarget, got {other:?}"),
        }

        let not_http = config(vec![slack("a", "ftp://chat.example/SECRET")], vec![]);
        let error = not_http.validate().unwrap_err();
        assert!(matches!(error, NotifyError::InvalidTarget { .. }));
        assert!(!error.to_string().contains("SECRET"), "{error}");
        let not_a_url = config(vec![slack("a", "SECRET")], vec![]);
        assert!(!not_a_url
            .validate()
            .unwrap_err()
            .to_string()
            .contains("SECRET"));

        let mut no_key = pagerduty("pd", DEFAULT_PAGERDUTY_URL);
        if let TargetKind::Pagerduty { routing_key, .. } = &mut no_key.kind {
            routing_key.clear();
        }
        assert!(matches!(
            config(vec![no_key], vec![]).validate(),
            Err(NotifyError::InvalidTarget { .. })
        ));
        assert!(matches!(
            config(vec![slack(" ", secret_url)], vec![]).validate(),
            Err(NotifyError::EmptyTargetName)
        ));

        let rendered = format!(
            "{:?}",
            config(
                vec![
                    slack("a", secret_url),
                    pagerduty("pd", DEFAULT_PAGERDUTY_URL)
                ],
                vec![]
            )
        );
        assert!(!rendered.contains("SECRET"), "{rendered}");
        assert!(!rendered.contains("routing-key-0123"), "{rendered}");
    }

    #[test]
    fn routes_choose_targets_by_minimum_severity() {
        let routes = config(
            vec![],
            vec![
                route(Severity::Info, &["log"]),
                route(Severity::Warning, &["chat", "log"]),
                route(Severity::Critical, &["pager"]),
            ],
        );
        assert_eq!(routed_targets(&routes.routes, Severity::Info), ["log"]);
        assert_eq!(
            routed_targets(&routes.routes, Severity::Warning),
            ["log", "chat"]
        );
        assert_eq!(
            routed_targets(&routes.routes, Severity::Critical),
            ["log", "chat", "pager"]
        );
    }

    #[test]
    fn sns_targets_read_from_yaml_and_name_the_wrong_field() {
        let yaml = r#"
targets:
  - name: alerts
    kind: sns
    topic_arn: "arn:aws:sns:us-east-1:123456789012:steno-alerts"
  - name: emulated
    kind: sns
    topic_arn: "arn:aws:sns:eu-west-1:123456789012:steno-alerts"
    region: eu-west-1
    endpoint_url: "http://127.0.0.1:5000"
routes:
  - { min_severity: critical, targets: [alerts, emulated] }
"#;
        let parsed: Section = serde_yaml::from_str(yaml).unwrap();
        parsed.validate().unwrap();
        assert_eq!(parsed.targets[0], sns("alerts", TOPIC_ARN, None));
        let TargetKind::Sns(emulated) = &parsed.targets[1].kind else {
            panic!("expected an sns target");
        };
        assert_eq!(emulated.region(), Some("eu-west-1"));
        assert_eq!(
            emulated.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        let TargetKind::Sns(alerts) = &parsed.targets[0].kind else {
            panic!("expected an sns target");
        };
        assert_eq!(alerts.region(), Some("us-east-1"));
        let written = serde_yaml::to_string(&parsed).unwrap();
        assert!(!written.contains("webhook_url"), "{written}");
        assert_eq!(serde_yaml::from_str::<Section>(&written).unwrap(), parsed);

        let refused = |yaml: &str| {
            serde_yaml::from_str::<Section>(yaml)
                .unwrap_err()
                .to_string()
        };
        let missing = refused("targets:\n  - { name: x, kind: sns }\n");
        assert!(missing.contains("needs topic_arn"), "{missing}");
        let misplaced = refused(concat!(
            "targets:\n  - { name: x, kind: sns, ",
            "topic_arn: \"arn:aws:sns:us-east-1:123456789012:t\", url: \"http://a\" }\n"
        ));
        assert!(
            misplaced.contains("url (use endpoint_url) does not apply to an sns target"),
            "{misplaced}"
        );
        let foreign = refused(concat!(
            "targets:\n  - { name: x, kind: slack, ",
            "webhook_url: \"https://a.example/\", topic_arn: t }\n"
        ));
        assert!(
            foreign.contains("topic_arn does not apply to a slack target"),
            "{foreign}"
        );

        let problem = |target: NotificationTarget| {
            config(vec![target], vec![])
                .validate()
                .unwrap_err()
                .to_string()
        };
        for (arn, expected) in [
            ("steno-alerts", "is not an SNS topic ARN"),
            (
                "arn:aws:sqs:us-east-1:123456789012:q",
                "is not an SNS topic ARN",
            ),
            (
                "arn:aws:sns:us-east-1:123456789012",
                "is not an SNS topic ARN",
            ),
            ("arn:aws:sns::123456789012:t", "no valid region"),
            ("arn:aws:sns:us-east-1:1234:t", "12-digit account"),
            ("arn:aws:sns:us-east-1:123456789012:", "invalid topic name"),
            (
                "arn:aws:sns:us-east-1:123456789012:a b",
                "invalid topic name",
            ),
            ("arn:aws:sns:us-east-1:123456789012:t.fifo", "FIFO topic"),
        ] {
            let message = problem(sns("x", arn, None));
            assert!(message.contains("topic_arn"), "{arn}: {message}");
            assert!(message.contains(expected), "{arn}: {message}");
        }
        let mut other_region = sns("x", TOPIC_ARN, None);
        if let TargetKind::Sns(target) = &mut other_region.kind {
            target.region = Some("eu-west-1".to_string());
        }
        let message = problem(other_region);
        assert!(
            message.contains("region eu-west-1 is not the topic's region us-east-1"),
            "{message}"
        );
        let message = problem(sns("x", TOPIC_ARN, Some("localhost:5000")));
        assert!(message.contains("endpoint_url"), "{message}");
        assert_eq!(
            parse_sns_topic_arn("arn:aws-cn:sns:cn-north-1:123456789012:a_b-c").unwrap(),
            SnsTopicArn {
                partition: "aws-cn",
                region: "cn-north-1",
                account: "123456789012",
                name: "a_b-c",
            }
        );
    }
}
