//! Lambda: the alias that carries a service's traffic, and the function versions that are its
//! releases.
//!
//! A traffic split becomes the alias's `FunctionVersion` (the stable version) plus
//! `RoutingConfig.AdditionalVersionWeights` (`{canary version: weight}`); promotion and rollback
//! both end with one version and an *empty* weight map (sent explicitly: an update without
//! `RoutingConfig` keeps the old weights). Every write also stores a marker in the alias's
//! description saying what opsd set, so before each write opsd can tell whether someone else
//! changed the alias since (drift), even after a restart; it then refuses to act and says so.
//!
//! Release labels map to function versions: a numeric label *is* the version number; any other
//! label is the version opsd published with the description `opsd release <label>`.

use std::collections::BTreeMap;

use aws_sdk_lambda::types::{AliasRoutingConfiguration, Environment, LastUpdateStatus, State};
use aws_smithy_types::Blob;

use super::retry::{call_with_retries, AwsCallError, RetryPolicy};

/// What an alias routes: one version plus weights for others (fractions, 0.1 is 10 %).
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRouting {
    pub function_version: String,
    pub additional_weights: BTreeMap<String, f64>,
}

impl AliasRouting {
    pub fn single(version: &str) -> AliasRouting {
        AliasRouting {
            function_version: version.to_string(),
            additional_weights: BTreeMap::new(),
        }
    }

    /// The routing for a split: the canary's weight as a fraction, no entry at 0 %.
    pub fn for_split(stable_version: &str, canary: Option<(&str, u8)>) -> AliasRouting {
        let mut routing = AliasRouting::single(stable_version);
        if let Some((canary_version, percent)) = canary {
            if percent > 0 && canary_version != stable_version {
                routing.additional_weights.insert(
                    canary_version.to_string(),
                    f64::from(percent.min(99)) / 100.0,
                );
            }
        }
        routing
    }

    /// Equal up to float noise in the weights (the API stores doubles).
    pub fn same_as(&self, other: &AliasRouting) -> bool {
        self.function_version == other.function_version
            && self.additional_weights.len() == other.additional_weights.len()
            && self.additional_weights.iter().all(|(version, weight)| {
                other
                    .additional_weights
                    .get(version)
                    .is_some_and(|theirs| (theirs - weight).abs() < 1e-6)
            })
    }

    /// Like `2` or `2 + 3 at 10 %`.
    pub fn describe(&self) -> String {
        let mut text = self.function_version.clone();
        for (version, weight) in &self.additional_weights {
            text.push_str(&format!(" + {version} at {:.0} %", weight * 100.0));
        }
        text
    }

    /// The description opsd writes on the alias: `managed by opsd; routing 2` or
    /// `managed by opsd; routing 2, 3=0.1`.
    pub fn marker(&self) -> String {
        let mut text = format!("{MARKER_PREFIX}{}", self.function_version);
        for (version, weight) in &self.additional_weights {
            text.push_str(&format!(", {version}={weight}"));
        }
        text
    }

    /// Reads a marker back; `None` when the description is not opsd's.
    pub fn from_marker(description: &str) -> Option<AliasRouting> {
        let rest = description.strip_prefix(MARKER_PREFIX)?;
        let mut parts = rest.split(", ");
        let function_version = parts.next()?.trim().to_string();
        if function_version.is_empty() {
            return None;
        }
        let mut additional_weights = BTreeMap::new();
        for part in parts {
            let (version, weight) = part.split_once('=')?;
            additional_weights.insert(version.trim().to_string(), weight.trim().parse().ok()?);
        }
        Some(AliasRouting {
            function_version,
            additional_weights,
        })
    }
}

const MARKER_PREFIX: &str = "managed by opsd; routing ";

/// What opsd finds when it reads an alias before changing it.
#[derive(Debug, Clone, PartialEq)]
pub enum AliasCheck {
    /// The alias routes what opsd last wrote.
    AsOpsdLeftIt,
    /// Not marked by opsd, but routing one version only: opsd may take it over.
    Adoptable,
    /// Someone else changed it: opsd must not fight that change.
    Drifted {
        last_written_by_opsd: Option<AliasRouting>,
        observed: AliasRouting,
    },
}

/// Compares an alias's routing with the marker in its description. Pure.
pub fn check_alias(observed: &AliasRouting, description: Option<&str>) -> AliasCheck {
    match description.and_then(AliasRouting::from_marker) {
        Some(marked) if marked.same_as(observed) => AliasCheck::AsOpsdLeftIt,
        Some(marked) => AliasCheck::Drifted {
            last_written_by_opsd: Some(marked),
            observed: observed.clone(),
        },
        None if observed.additional_weights.is_empty() => AliasCheck::Adoptable,
        None => AliasCheck::Drifted {
            last_written_by_opsd: None,
            observed: observed.clone(),
        },
    }
}

/// The description of a version opsd publishes for a release label.
pub fn release_description(label: &str) -> String {
    format!("opsd release {label}")
}

/// The release label of a published version: its opsd label, else its number.
pub fn label_of_version(version: &str, description: Option<&str>) -> String {
    description
        .and_then(|text| text.strip_prefix("opsd release "))
        .map(str::to_string)
        .unwrap_or_else(|| version.to_string())
}

/// A published version as opsd needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedVersion {
    pub version: String,
    pub description: Option<String>,
}

/// Whether a version can take traffic, from its `State` and `LastUpdateStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionReadiness {
    Ready,
    Pending,
    Broken(String),
}

/// Pure: a version is ready when Active (or Inactive, which wakes on the first invocation) and
/// its last update did not fail.
pub fn version_readiness(
    state: Option<&State>,
    state_reason: Option<&str>,
    last_update: Option<&LastUpdateStatus>,
) -> VersionReadiness {
    if matches!(last_update, Some(LastUpdateStatus::Failed)) {
        return VersionReadiness::Broken(format!(
            "its last update failed{}",
            state_reason
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default()
        ));
    }
    match state {
        Some(State::Failed) => VersionReadiness::Broken(format!(
            "its state is Failed{}",
            state_reason
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default()
        )),
        Some(State::Pending) => VersionReadiness::Pending,
        Some(State::Active) | Some(State::Inactive) | None => {
            if matches!(last_update, Some(LastUpdateStatus::InProgress)) {
                VersionReadiness::Pending
            } else {
                VersionReadiness::Ready
            }
        }
        Some(other) => VersionReadiness::Broken(format!("its state is {}", other.as_str())),
    }
}

/// Lambda calls for one function and alias.
#[derive(Clone)]
pub struct LambdaFunction {
    pub client: aws_sdk_lambda::Client,
    pub function_name: String,
    pub alias: String,
    pub retry: RetryPolicy,
}

impl LambdaFunction {
    fn alias_resource(&self) -> String {
        format!("function {}, alias {}", self.function_name, self.alias)
    }

    /// The alias's routing and description.
    pub async fn read_alias(&self) -> Result<(AliasRouting, Option<String>), AwsCallError> {
        let (routing, description, _) = self.read_alias_revision().await?;
        Ok((routing, description))
    }

    /// The alias's routing, description and revision id (for a conditional write).
    pub async fn read_alias_revision(
        &self,
    ) -> Result<(AliasRouting, Option<String>, Option<String>), AwsCallError> {
        let output = call_with_retries(
            &self.retry,
            "Lambda GetAlias",
            &self.alias_resource(),
            || {
                self.client
                    .get_alias()
                    .function_name(&self.function_name)
                    .name(&self.alias)
                    .send()
            },
        )
        .await?;
        let routing = AliasRouting {
            function_version: output.function_version().unwrap_or_default().to_string(),
            additional_weights: output
                .routing_config()
                .and_then(|config| config.additional_version_weights())
                .map(|weights| {
                    weights
                        .iter()
                        .map(|(version, weight)| (version.clone(), *weight))
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok((
            routing,
            output.description().map(str::to_string),
            output.revision_id().map(str::to_string),
        ))
    }

    /// Writes the routing, with an explicit (possibly empty) weight map and opsd's marker.
    pub async fn write_alias(&self, routing: &AliasRouting) -> Result<(), AwsCallError> {
        self.write_alias_if_unchanged(routing, None).await
    }

    /// Like [`LambdaFunction::write_alias`], but only if the alias is still at `revision_id`
    /// (Lambda answers `PreconditionFailedException` when someone changed it in between).
    pub async fn write_alias_if_unchanged(
        &self,
        routing: &AliasRouting,
        revision_id: Option<&str>,
    ) -> Result<(), AwsCallError> {
        let weights: std::collections::HashMap<String, f64> = routing
            .additional_weights
            .iter()
            .map(|(version, weight)| (version.clone(), *weight))
            .collect();
        call_with_retries(
            &self.retry,
            "Lambda UpdateAlias",
            &self.alias_resource(),
            || {
                self.client
                    .update_alias()
                    .function_name(&self.function_name)
                    .name(&self.alias)
                    .function_version(&routing.function_version)
                    .description(routing.marker())
                    .set_revision_id(revision_id.map(str::to_string))
                    .routing_config(
                        AliasRoutingConfiguration::builder()
                            .set_additional_version_weights(Some(weights.clone()))
                            .build(),
                    )
                    .send()
            },
        )
        .await?;
        Ok(())
    }

    /// Every published version (not `$LATEST`), following the pagination markers.
    pub async fn published_versions(&self) -> Result<Vec<PublishedVersion>, AwsCallError> {
        let mut versions = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let output = call_with_retries(
                &self.retry,
                "Lambda ListVersionsByFunction",
                &format!("function {}", self.function_name),
                || {
                    self.client
                        .list_versions_by_function()
                        .function_name(&self.function_name)
                        .set_marker(marker.clone())
                        .send()
                },
            )
            .await?;
            for version in output.versions() {
                if let Some(number) = version.version().filter(|number| *number != "$LATEST") {
                    versions.push(PublishedVersion {
                        version: number.to_string(),
                        description: version.description().map(str::to_string),
                    });
                }
            }
            match output.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_string()),
                _ => return Ok(versions),
            }
        }
    }

    /// Whether a version (or `$LATEST`) can take traffic.
    pub async fn readiness(&self, qualifier: &str) -> Result<VersionReadiness, AwsCallError> {
        let output = call_with_retries(
            &self.retry,
            "Lambda GetFunctionConfiguration",
            &format!("function {}, version {qualifier}", self.function_name),
            || {
                self.client
                    .get_function_configuration()
                    .function_name(&self.function_name)
                    .qualifier(qualifier)
                    .send()
            },
        )
        .await?;
        Ok(version_readiness(
            output.state(),
            output.state_reason(),
            output.last_update_status(),
        ))
    }

    /// Uploads new code (and, when given, environment variables layered over the current ones)
    /// to `$LATEST`, waits for the update, and publishes a version labelled `label`.
    pub async fn publish(
        &self,
        label: &str,
        zip: Vec<u8>,
        env: &BTreeMap<String, String>,
        wait: std::time::Duration,
    ) -> Result<String, AwsCallError> {
        let resource = format!("function {}", self.function_name);
        if !env.is_empty() {
            let current = call_with_retries(
                &self.retry,
                "Lambda GetFunctionConfiguration",
                &resource,
                || {
                    self.client
                        .get_function_configuration()
                        .function_name(&self.function_name)
                        .send()
                },
            )
            .await?;
            let mut variables: std::collections::HashMap<String, String> = current
                .environment()
                .and_then(|environment| environment.variables())
                .cloned()
                .unwrap_or_default();
            variables.extend(env.iter().map(|(key, value)| (key.clone(), value.clone())));
            call_with_retries(
                &self.retry,
                "Lambda UpdateFunctionConfiguration",
                &resource,
                || {
                    self.client
                        .update_function_configuration()
                        .function_name(&self.function_name)
                        .environment(
                            Environment::builder()
                                .set_variables(Some(variables.clone()))
                                .build(),
                        )
                        .send()
                },
            )
            .await?;
            self.wait_until_updated("$LATEST", wait).await?;
        }
        call_with_retries(&self.retry, "Lambda UpdateFunctionCode", &resource, || {
            self.client
                .update_function_code()
                .function_name(&self.function_name)
                .zip_file(Blob::new(zip.clone()))
                .send()
        })
        .await?;
        self.wait_until_updated("$LATEST", wait).await?;
        let output = call_with_retries(&self.retry, "Lambda PublishVersion", &resource, || {
            self.client
                .publish_version()
                .function_name(&self.function_name)
                .description(release_description(label))
                .send()
        })
        .await?;
        Ok(output.version().unwrap_or_default().to_string())
    }

    /// Polls until the qualifier's last update is no longer in progress (or `wait` passes).
    async fn wait_until_updated(
        &self,
        qualifier: &str,
        wait: std::time::Duration,
    ) -> Result<(), AwsCallError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.readiness(qualifier).await? != VersionReadiness::Pending
                || tokio::time::Instant::now() >= deadline
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_become_a_version_plus_a_fractional_weight() {
        assert_eq!(
            AliasRouting::for_split("1", None),
            AliasRouting::single("1")
        );
        assert_eq!(
            AliasRouting::for_split("1", Some(("2", 0))),
            AliasRouting::single("1")
        );
        let routing = AliasRouting::for_split("1", Some(("2", 25)));
        assert_eq!(routing.function_version, "1");
        assert_eq!(routing.additional_weights.get("2"), Some(&0.25));
        assert_eq!(routing.describe(), "1 + 2 at 25 %");
    }

    #[test]
    fn markers_round_trip_and_foreign_descriptions_are_not_markers() {
        for routing in [
            AliasRouting::single("7"),
            AliasRouting::for_split("7", Some(("8", 10))),
        ] {
            let back = AliasRouting::from_marker(&routing.marker()).unwrap();
            assert!(back.same_as(&routing), "{back:?} != {routing:?}");
        }
        assert_eq!(AliasRouting::from_marker("production alias"), None);
        assert_eq!(AliasRouting::from_marker("managed by opsd; routing "), None);
    }

    #[test]
    fn an_alias_changed_behind_opsds_back_is_drift() {
        let written = AliasRouting::for_split("1", Some(("2", 10)));
        // As opsd left it.
        assert_eq!(
            check_alias(&written, Some(&written.marker())),
            AliasCheck::AsOpsdLeftIt
        );
        // Someone moved the weight to 50 % in the console; the description still says 10 %.
        let moved = AliasRouting::for_split("1", Some(("2", 50)));
        assert_eq!(
            check_alias(&moved, Some(&written.marker())),
            AliasCheck::Drifted {
                last_written_by_opsd: Some(written.clone()),
                observed: moved.clone()
            }
        );
        // Never managed by opsd: one version is adoptable, a shift in progress is not.
        assert_eq!(
            check_alias(&AliasRouting::single("1"), Some("live traffic")),
            AliasCheck::Adoptable
        );
        assert!(matches!(
            check_alias(&moved, None),
            AliasCheck::Drifted {
                last_written_by_opsd: None,
                ..
            }
        ));
    }

    #[test]
    fn labels_come_from_opsds_descriptions_or_the_number() {
        assert_eq!(
            label_of_version("3", Some(&release_description("v2"))),
            "v2"
        );
        assert_eq!(label_of_version("3", Some("hand published")), "3");
        assert_eq!(label_of_version("4", None), "4");
    }

    #[test]
    fn readiness_follows_state_and_last_update() {
        assert_eq!(
            version_readiness(
                Some(&State::Active),
                None,
                Some(&LastUpdateStatus::Successful)
            ),
            VersionReadiness::Ready
        );
        assert_eq!(
            version_readiness(Some(&State::Pending), None, None),
            VersionReadiness::Pending
        );
        assert_eq!(
            version_readiness(
                Some(&State::Active),
                None,
                Some(&LastUpdateStatus::InProgress)
            ),
            VersionReadiness::Pending
        );
        assert!(matches!(
            version_readiness(Some(&State::Failed), Some("bad zip"), None),
            VersionReadiness::Broken(reason) if reason.contains("bad zip")
        ));
        assert!(matches!(
            version_readiness(Some(&State::Active), None, Some(&LastUpdateStatus::Failed)),
            VersionReadiness::Broken(_)
        ));
    }

    /// A stand-in for the Lambda API that answers recorded responses in order and keeps the
    /// requests it got.
    mod recorded {
        use std::sync::{Arc, Mutex};

        use axum::body::Bytes;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        use axum::response::IntoResponse;

        pub struct RecordedResponse {
            pub status: u16,
            pub error_type: Option<&'static str>,
            pub body: &'static str,
        }

        #[derive(Default)]
        pub struct Log {
            pub requests: Vec<(String, String, String)>,
        }

        pub async fn serve(responses: Vec<RecordedResponse>) -> (String, Arc<Mutex<Log>>) {
            let log = Arc::new(Mutex::new(Log::default()));
            let queue = Arc::new(Mutex::new(std::collections::VecDeque::from(responses)));
            let handler_log = log.clone();
            let app = axum::Router::new().fallback(
                move |method: Method, uri: Uri, _headers: HeaderMap, body: Bytes| {
                    let log = handler_log.clone();
                    let queue = queue.clone();
                    async move {
                        log.lock().unwrap().requests.push((
                            method.to_string(),
                            uri.path().to_string(),
                            String::from_utf8_lossy(&body).into_owned(),
                        ));
                        let Some(next) = queue.lock().unwrap().pop_front() else {
                            return (
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "no recorded response left",
                            )
                                .into_response();
                        };
                        let mut response =
                            (StatusCode::from_u16(next.status).unwrap(), next.body).into_response();
                        response
                            .headers_mut()
                            .insert("content-type", "application/json".parse().unwrap());
                        if let Some(error_type) = next.error_type {
                            response
                                .headers_mut()
                                .insert("x-amzn-errortype", error_type.parse().unwrap());
                        }
                        response
                    }
                },
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            (format!("http://{address}"), log)
        }
    }

    use recorded::RecordedResponse;

    fn function_at(endpoint: &str) -> LambdaFunction {
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(endpoint)
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .build();
        LambdaFunction {
            client: aws_sdk_lambda::Client::from_conf(config),
            function_name: "steno".into(),
            alias: "live".into(),
            retry: RetryPolicy {
                max_attempts: 4,
                base_delay: std::time::Duration::from_millis(1),
                max_delay: std::time::Duration::from_millis(5),
            },
        }
    }

    const ALIAS_BODY: &str = r#"{"AliasArn":"arn:aws:lambda:us-east-1:123456789012:function:steno:live","Name":"live","FunctionVersion":"1","Description":"managed by opsd; routing 1, 2=0.1","RoutingConfig":{"AdditionalVersionWeights":{"2":0.1}}}"#;

    #[tokio::test]
    async fn throttling_and_server_errors_are_retried_until_the_alias_is_read() {
        let (endpoint, log) = recorded::serve(vec![
            RecordedResponse {
                status: 429,
                error_type: Some("TooManyRequestsException"),
                body: r#"{"message":"Rate exceeded","Type":"User"}"#,
            },
            RecordedResponse {
                status: 500,
                error_type: Some("ServiceException"),
                body: r#"{"message":"internal"}"#,
            },
            RecordedResponse {
                status: 200,
                error_type: None,
                body: ALIAS_BODY,
            },
        ])
        .await;
        let (routing, description) = function_at(&endpoint).read_alias().await.unwrap();
        assert_eq!(routing, AliasRouting::for_split("1", Some(("2", 10))));
        assert_eq!(
            check_alias(&routing, description.as_deref()),
            AliasCheck::AsOpsdLeftIt
        );
        let requests = &log.lock().unwrap().requests;
        assert_eq!(requests.len(), 3);
        assert!(requests
            .iter()
            .all(|(method, path, _)| method == "GET"
                && path.ends_with("/functions/steno/aliases/live")));
    }

    #[tokio::test]
    async fn a_missing_alias_fails_at_once_naming_the_operation_and_the_alias() {
        let (endpoint, log) = recorded::serve(vec![RecordedResponse {
            status: 404,
            error_type: Some("ResourceNotFoundException"),
            body: r#"{"Type":"User","Message":"Alias not found: arn:aws:lambda:us-east-1:123456789012:function:steno:live"}"#,
        }])
        .await;
        let error = function_at(&endpoint).read_alias().await.unwrap_err();
        assert_eq!(error.attempts, 1);
        assert_eq!(error.code(), Some("ResourceNotFoundException"));
        let text = error.to_string();
        assert!(
            text.starts_with(
                "Lambda GetAlias on function steno, alias live failed: ResourceNotFoundException"
            ),
            "{text}"
        );
        assert_eq!(log.lock().unwrap().requests.len(), 1);
    }

    #[tokio::test]
    async fn throttling_that_persists_gives_up_after_the_allowed_attempts() {
        let throttled = || RecordedResponse {
            status: 429,
            error_type: Some("TooManyRequestsException"),
            body: r#"{"message":"Rate exceeded"}"#,
        };
        let (endpoint, log) = recorded::serve(vec![
            throttled(),
            throttled(),
            throttled(),
            throttled(),
            throttled(),
        ])
        .await;
        let error = function_at(&endpoint).read_alias().await.unwrap_err();
        assert_eq!(error.attempts, 4);
        assert_eq!(log.lock().unwrap().requests.len(), 4);
        assert!(error.to_string().contains("after 4 attempts"), "{error}");
    }

    #[tokio::test]
    async fn a_write_after_someone_else_changed_the_alias_is_refused_by_its_revision() {
        let (endpoint, log) = recorded::serve(vec![RecordedResponse {
            status: 412,
            error_type: Some("PreconditionFailedException"),
            body: r#"{"Type":"User","message":"The RevisionId provided does not match the latest RevisionId for the Lambda function or alias."}"#,
        }])
        .await;
        let error = function_at(&endpoint)
            .write_alias_if_unchanged(&AliasRouting::single("2"), Some("rev-1"))
            .await
            .unwrap_err();
        assert_eq!(error.code(), Some("PreconditionFailedException"));
        assert_eq!(error.attempts, 1, "a precondition failure is not retried");
        let body: serde_json::Value =
            serde_json::from_str(&log.lock().unwrap().requests[0].2).unwrap();
        assert_eq!(body["RevisionId"], "rev-1");
    }

    #[tokio::test]
    async fn alias_writes_send_an_explicit_weight_map_and_opsds_marker() {
        let (endpoint, log) = recorded::serve(vec![
            RecordedResponse {
                status: 200,
                error_type: None,
                body: ALIAS_BODY,
            },
            RecordedResponse {
                status: 200,
                error_type: None,
                body: ALIAS_BODY,
            },
        ])
        .await;
        let function = function_at(&endpoint);
        function
            .write_alias(&AliasRouting::for_split("1", Some(("2", 25))))
            .await
            .unwrap();
        // Promotion: one version and an *empty* map, so the old weight does not linger.
        function
            .write_alias(&AliasRouting::single("2"))
            .await
            .unwrap();
        let requests = &log.lock().unwrap().requests;
        let shift: serde_json::Value = serde_json::from_str(&requests[0].2).unwrap();
        assert_eq!(requests[0].0, "PUT");
        assert_eq!(shift["FunctionVersion"], "1");
        assert_eq!(
            shift["RoutingConfig"]["AdditionalVersionWeights"]["2"],
            0.25
        );
        assert_eq!(shift["Description"], "managed by opsd; routing 1, 2=0.25");
        let promote: serde_json::Value = serde_json::from_str(&requests[1].2).unwrap();
        assert_eq!(promote["FunctionVersion"], "2");
        assert_eq!(
            promote["RoutingConfig"]["AdditionalVersionWeights"],
            serde_json::json!({})
        );
    }
}
