//! Cost Explorer: daily unblended cost per service or per tag value through `GetCostAndUsage`,
//! every page read, amounts parsed from Cost Explorer's decimal strings, behind the
//! [`CostSource`] trait.

use std::collections::BTreeMap;

use aws_sdk_costexplorer::operation::get_cost_and_usage::GetCostAndUsageOutput;
use aws_sdk_costexplorer::types::{
    DateInterval, Granularity, GroupDefinition, GroupDefinitionType,
};
use chrono::NaiveDate;

use super::retry::{call_with_retries, classify, AwsCallError, RetryClass, RetryPolicy};
pub use crate::config::{CostExplorerConfig, DEFAULT_COST_EXPLORER_REGION as DEFAULT_REGION};
use crate::core::cost::DailyCost;
use crate::platform::cost_source::{
    check_request, tag_value_of_group_key, CostGrouping, CostSource, CostSourceError,
};

/// How errors name this source.
pub const SOURCE_NAME: &str = "AWS Cost Explorer";

/// The metric read: what was billed, before amortisation of upfront fees or blending across the
/// organisation's accounts.
pub const METRIC: &str = "UnblendedCost";

/// More pages than this for one request means the answers are not progressing.
pub const MAX_PAGES: usize = 1_000;

const DATE_FORMAT: &str = "%Y-%m-%d";

/// Daily costs from Cost Explorer.
#[derive(Clone)]
pub struct CostExplorerSource {
    client: aws_sdk_costexplorer::Client,
    retry: RetryPolicy,
}

impl CostExplorerSource {
    /// Builds the client with credentials from the standard chain (environment, profile, SSO,
    /// instance role, ...), the configured region and endpoint, and SDK retries off (opsd's
    /// [`RetryPolicy`] retries), as the other AWS clients are built.
    pub async fn connect(config: &CostExplorerConfig) -> CostExplorerSource {
        let shared = super::shared_sdk_config(&config.region, config.endpoint_url.as_deref()).await;
        CostExplorerSource {
            client: aws_sdk_costexplorer::Client::new(&shared),
            retry: config.retry,
        }
    }

    /// Builds the client on an existing AWS configuration (its credentials and timeouts), with
    /// the configured region and endpoint and SDK retries off.
    pub fn from_sdk_config(
        shared: &aws_config::SdkConfig,
        config: &CostExplorerConfig,
    ) -> CostExplorerSource {
        let mut builder = aws_sdk_costexplorer::config::Builder::from(shared)
            .region(aws_sdk_costexplorer::config::Region::new(
                config.region.clone(),
            ))
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled());
        if let Some(endpoint) = &config.endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        CostExplorerSource {
            client: aws_sdk_costexplorer::Client::from_conf(builder.build()),
            retry: config.retry,
        }
    }
}

/// The error a failed call becomes, by how it failed.
fn call_error(error: AwsCallError) -> CostSourceError {
    let message = error.to_string();
    let access_codes = [
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "InvalidSignatureException",
    ];
    if error
        .code()
        .is_some_and(|code| access_codes.contains(&code))
        || error.facts.status == Some(403)
    {
        return CostSourceError::AccessDenied {
            source_name: SOURCE_NAME.into(),
            message,
        };
    }
    match classify(&error.facts) {
        RetryClass::Throttled | RetryClass::Transient => CostSourceError::Unavailable {
            source_name: SOURCE_NAME.into(),
            message,
        },
        RetryClass::Permanent => CostSourceError::Rejected {
            source_name: SOURCE_NAME.into(),
            message,
        },
    }
}

fn malformed(detail: String) -> CostSourceError {
    CostSourceError::MalformedResponse {
        source_name: SOURCE_NAME.into(),
        detail,
    }
}

/// The rows of one page, added into `rows` keyed by `(day, group)` (Cost Explorer may split one
/// day's groups across pages; a pair seen twice is summed). Days without groups add no row.
fn add_page_rows(
    output: &GetCostAndUsageOutput,
    group_by: &CostGrouping,
    rows: &mut BTreeMap<(NaiveDate, String), f64>,
) -> Result<(), CostSourceError> {
    for result in output.results_by_time() {
        let start = result
            .time_period()
            .map(|period| period.start())
            .ok_or_else(|| malformed("a result has no TimePeriod".into()))?;
        let day = NaiveDate::parse_from_str(start, DATE_FORMAT).map_err(|error| {
            malformed(format!(
                "the TimePeriod start {start:?} is not a date: {error}"
            ))
        })?;
        for group in result.groups() {
            let key = group
                .keys()
                .first()
                .ok_or_else(|| malformed(format!("a group on {day} has no key")))?;
            let name = match group_by {
                CostGrouping::Service => key.clone(),
                CostGrouping::Tag(tag_key) => tag_value_of_group_key(tag_key, key),
            };
            let metric = group
                .metrics()
                .and_then(|metrics| metrics.get(METRIC))
                .ok_or_else(|| malformed(format!("the group {key} on {day} has no {METRIC}")))?;
            let amount = metric.amount().unwrap_or_default();
            let amount_usd = amount
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite())
                .ok_or_else(|| CostSourceError::MalformedAmount {
                    source_name: SOURCE_NAME.into(),
                    day,
                    group: key.clone(),
                    metric: METRIC.into(),
                    amount: amount.to_string(),
                })?;
            if let Some(unit) = metric.unit() {
                if !unit.eq_ignore_ascii_case("USD") {
                    return Err(malformed(format!(
                        "the {METRIC} of {key} on {day} is in {unit:?}; opsd budgets are in USD"
                    )));
                }
            }
            *rows.entry((day, name)).or_insert(0.0) += amount_usd;
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl CostSource for CostExplorerSource {
    /// `GetCostAndUsage` with daily granularity and the `UnblendedCost` metric, grouped by the
    /// `SERVICE` dimension or by the tag, following `NextPageToken` until it is absent. Rows come
    /// in day order, then group order.
    async fn daily_costs(
        &self,
        from: NaiveDate,
        to_exclusive: NaiveDate,
        group_by: CostGrouping,
    ) -> Result<Vec<DailyCost>, CostSourceError> {
        check_request(from, to_exclusive, &group_by)?;
        let period = DateInterval::builder()
            .start(from.format(DATE_FORMAT).to_string())
            .end(to_exclusive.format(DATE_FORMAT).to_string())
            .build()
            .map_err(|error| malformed(format!("cannot build the date interval: {error}")))?;
        let group = match &group_by {
            CostGrouping::Service => GroupDefinition::builder()
                .r#type(GroupDefinitionType::Dimension)
                .key("SERVICE")
                .build(),
            CostGrouping::Tag(key) => GroupDefinition::builder()
                .r#type(GroupDefinitionType::Tag)
                .key(key)
                .build(),
        };
        let resource = format!("costs {from}..{to_exclusive} by {}", group_by.describe());
        let mut rows = BTreeMap::new();
        let mut seen_tokens = Vec::new();
        let mut next_page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let output = call_with_retries(
                &self.retry,
                "Cost Explorer GetCostAndUsage",
                &resource,
                || {
                    self.client
                        .get_cost_and_usage()
                        .time_period(period.clone())
                        .granularity(Granularity::Daily)
                        .metrics(METRIC)
                        .group_by(group.clone())
                        .set_next_page_token(next_page_token.clone())
                        .send()
                },
            )
            .await
            .map_err(call_error)?;
            add_page_rows(&output, &group_by, &mut rows)?;
            match output.next_page_token().filter(|token| !token.is_empty()) {
                None => {
                    return Ok(rows
                        .into_iter()
                        .map(|((day, service), amount_usd)| DailyCost {
                            day,
                            service,
                            amount_usd,
                        })
                        .collect())
                }
                Some(token) if seen_tokens.iter().any(|seen| seen == token) => {
                    return Err(malformed(format!(
                        "the NextPageToken {token:?} came back a second time for {resource}, so \
                         the pages would never end"
                    )));
                }
                Some(token) => {
                    seen_tokens.push(token.to_string());
                    next_page_token = Some(token.to_string());
                }
            }
        }
        Err(malformed(format!(
            "more than {MAX_PAGES} pages for {resource}; ask for a shorter date range"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use e2e_tests::aws_emulator::AwsEmulator;
    use serde_json::{json, Value};

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// One day of a `GetCostAndUsage` answer with `(group key, amount)` groups.
    fn day_result(start: &str, end: &str, groups: &[(&str, &str)]) -> Value {
        json!({
            "TimePeriod": {"Start": start, "End": end},
            "Total": {},
            "Groups": groups
                .iter()
                .map(|(key, amount)| json!({
                    "Keys": [key],
                    "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}
                }))
                .collect::<Vec<Value>>(),
            "Estimated": false
        })
    }

    /// Starts moto (behind the test front) and queues `answers` for `GetCostAndUsage`.
    async fn emulator_with_answers(answers: Vec<Value>) -> (AwsEmulator, CostExplorerSource) {
        let emulator = tokio::task::spawn_blocking(AwsEmulator::start)
            .await
            .expect("the emulator starts");
        let url = format!(
            "{}/moto-api/static/ce/cost-and-usage-results",
            emulator.moto_url()
        );
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(&url)
            .json(&json!({ "results": answers }))
            .send()
            .await
            .unwrap_or_else(|error| panic!("POST {url} failed: {error}"));
        assert_eq!(response.status().as_u16(), 201, "POST {url}");
        let config = CostExplorerConfig {
            endpoint_url: Some(emulator.endpoint_url()),
            retry: RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
            ..CostExplorerConfig::default()
        };
        let source = CostExplorerSource::from_sdk_config(&emulator.sdk_config().await, &config);
        (emulator, source)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_page_is_read() {
        let first_page = json!({
            "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
            "ResultsByTime": [
                day_result("2025-06-01", "2025-06-02", &[("AWS Lambda", "1.25"), ("AI", "20.5")]),
                day_result("2025-06-02", "2025-06-03", &[("AWS Lambda", "1.5")]),
            ],
            "DimensionValueAttributes": [],
            "NextPageToken": "page-2"
        });
        // Cost Explorer can continue a day's groups on the next page.
        let second_page = json!({
            "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
            "ResultsByTime": [
                day_result("2025-06-02", "2025-06-03", &[("AI", "18.0")]),
                day_result("2025-06-03", "2025-06-04", &[("AWS Lambda", "0.0000012"), ("AI", "3E+1")]),
            ],
            "DimensionValueAttributes": []
        });
        let (_emulator, source) = emulator_with_answers(vec![first_page, second_page]).await;
        let rows = source
            .daily_costs(day("2025-06-01"), day("2025-06-04"), CostGrouping::Service)
            .await
            .unwrap();
        let flat: Vec<(String, &str, f64)> = rows
            .iter()
            .map(|row| (row.day.to_string(), row.service.as_str(), row.amount_usd))
            .collect();
        assert_eq!(
            flat,
            vec![
                ("2025-06-01".to_string(), "AI", 20.5),
                ("2025-06-01".to_string(), "AWS Lambda", 1.25),
                ("2025-06-02".to_string(), "AI", 18.0),
                ("2025-06-02".to_string(), "AWS Lambda", 1.5),
                ("2025-06-03".to_string(), "AI", 30.0),
                ("2025-06-03".to_string(), "AWS Lambda", 0.0000012),
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tag_groups_carry_the_bare_tag_value() {
        let answer = json!({
            "GroupDefinitions": [{"Type": "TAG", "Key": "Environment"}],
            "ResultsByTime": [
                day_result(
                    "2025-06-01",
                    "2025-06-02",
                    &[("Environment$production", "40.10"), ("Environment$staging", "3.2"), ("Environment$", "0.75")]
                ),
            ],
            "DimensionValueAttributes": []
        });
        let (_emulator, source) = emulator_with_answers(vec![answer]).await;
        let rows = source
            .daily_costs(
                day("2025-06-01"),
                day("2025-06-02"),
                CostGrouping::Tag("Environment".into()),
            )
            .await
            .unwrap();
        let services: Vec<(&str, f64)> = rows
            .iter()
            .map(|row| (row.service.as_str(), row.amount_usd))
            .collect();
        assert_eq!(
            services,
            vec![
                ("(untagged)", 0.75),
                ("production", 40.10),
                ("staging", 3.2)
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_malformed_amount_names_the_day_and_the_group() {
        let answer = json!({
            "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
            "ResultsByTime": [
                day_result("2025-06-01", "2025-06-02", &[("AWS Lambda", "1.25")]),
                day_result("2025-06-02", "2025-06-03", &[("Amazon CloudFront", "12,50")]),
            ],
            "DimensionValueAttributes": []
        });
        let (_emulator, source) = emulator_with_answers(vec![answer]).await;
        let error = source
            .daily_costs(day("2025-06-01"), day("2025-06-03"), CostGrouping::Service)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            CostSourceError::MalformedAmount {
                source_name: SOURCE_NAME.into(),
                day: day("2025-06-02"),
                group: "Amazon CloudFront".into(),
                metric: METRIC.into(),
                amount: "12,50".into(),
            }
        );
        let message = error.to_string();
        assert!(message.contains("\"12,50\""), "{message}");
        assert!(
            message.contains("Amazon CloudFront on 2025-06-02"),
            "{message}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_page_token_that_comes_back_is_an_error_not_a_loop() {
        // moto answers the same request body with the same queued answer, so a token that is
        // not sent back would repeat forever; here the second page repeats the first's token.
        let page = |token: &str| {
            json!({
                "ResultsByTime": [day_result("2025-06-01", "2025-06-02", &[("AI", "1")])],
                "DimensionValueAttributes": [],
                "NextPageToken": token
            })
        };
        let (_emulator, source) = emulator_with_answers(vec![page("t1"), page("t1")]).await;
        let message = source
            .daily_costs(day("2025-06-01"), day("2025-06-02"), CostGrouping::Service)
            .await
            .unwrap_err()
            .to_string();
        assert!(message.contains("came back a second time"), "{message}");
    }

    #[tokio::test]
    async fn bad_requests_fail_before_calling_aws() {
        let source = CostExplorerSource::from_sdk_config(
            &aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .build(),
            &CostExplorerConfig {
                endpoint_url: Some("http://127.0.0.1:9".into()),
                ..CostExplorerConfig::default()
            },
        );
        let error = source
            .daily_costs(day("2025-06-02"), day("2025-06-01"), CostGrouping::Service)
            .await
            .unwrap_err();
        assert!(
            matches!(error, CostSourceError::EmptyRange { .. }),
            "{error}"
        );
    }

    #[test]
    fn access_errors_say_which_permission_is_needed() {
        use super::super::retry::{FailureFacts, FailureKind};
        let denied = call_error(AwsCallError {
            operation: "Cost Explorer GetCostAndUsage".into(),
            resource: "costs".into(),
            attempts: 1,
            facts: FailureFacts {
                kind: FailureKind::Service,
                status: Some(400),
                code: Some("AccessDeniedException".into()),
                message: "not allowed".into(),
            },
        });
        assert!(
            denied.to_string().contains("ce:GetCostAndUsage"),
            "{denied}"
        );
        let throttled = call_error(AwsCallError {
            operation: "Cost Explorer GetCostAndUsage".into(),
            resource: "costs".into(),
            attempts: 4,
            facts: FailureFacts {
                kind: FailureKind::Service,
                status: Some(400),
                code: Some("LimitExceededException".into()),
                message: "slow down".into(),
            },
        });
        assert!(
            matches!(throttled, CostSourceError::Unavailable { .. }),
            "{throttled}"
        );
    }
}
