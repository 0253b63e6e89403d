//! The local platform's cost source: the usage opsd's router counted (stored per day by the
//! usage recorder in `opsd up`) and the AI tokens Steno recorded on its letter revisions, priced
//! with the AWS price table (`core::cost::pricing`), so a local run is budgeted as if its traffic
//! ran on Lambda, API Gateway and CloudFront.
//!
//! Grouping by service gives Cost Explorer's service names (`AWS Lambda`, `Amazon API Gateway`,
//! `Amazon CloudFront`, and the AI service name). Grouping by tag: the key `Service` (any case)
//! gives opsd's service names, each service's usage and, for the service whose `database` holds
//! the AI tokens, its AI spend; every other tag key puts a day's whole spend under
//! [`UNTAGGED`], as Cost Explorer does for resources without the tag.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};

pub use crate::config::{LocalAiConfig, LocalCostConfig, TokenDatabase, DEFAULT_MEMORY_MB};
use crate::core::cost::pricing::{as_daily_costs, price_usage, AiPrices, Usage};
use crate::core::cost::DailyCost;
use crate::platform::cost_source::{
    check_request, CostGrouping, CostSource, CostSourceError, UNTAGGED,
};
use crate::store::{Store, UsageRow};

/// The name this source gives itself in reports and errors.
pub const SOURCE_NAME: &str = "the local cost model";

/// Input and output tokens of one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayTokens {
    pub input: u64,
    pub output: u64,
}

/// Reads the local usage from the store and the tokens from Steno's database.
pub struct LocalCostSource {
    store: Store,
    config: LocalCostConfig,
}

impl LocalCostSource {
    pub fn new(store: Store, config: LocalCostConfig) -> LocalCostSource {
        LocalCostSource { store, config }
    }

    async fn tokens_by_day(
        &self,
        from: NaiveDate,
        to_exclusive: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, DayTokens>, CostSourceError> {
        match &self.config.ai {
            None => Ok(BTreeMap::new()),
            Some(ai) => read_tokens_by_day(ai, from, to_exclusive).await,
        }
    }
}

#[async_trait::async_trait]
impl CostSource for LocalCostSource {
    async fn daily_costs(
        &self,
        from: NaiveDate,
        to_exclusive: NaiveDate,
        group_by: CostGrouping,
    ) -> Result<Vec<DailyCost>, CostSourceError> {
        check_request(from, to_exclusive, &group_by)?;
        let usage = self
            .store
            .usage_between(from, to_exclusive)
            .await
            .map_err(|error| CostSourceError::Unavailable {
                source_name: SOURCE_NAME.into(),
                message: format!("the usage recorded in opsd's store cannot be read: {error}"),
            })?;
        let tokens = self.tokens_by_day(from, to_exclusive).await?;
        price_days(&usage, &tokens, &self.config, &group_by)
    }
}

/// Prices the usage rows and tokens of each day into cost rows, grouped as asked. A day appears
/// when the recorder ran on it or Steno recorded tokens on it (so a quiet day is $0, and a day
/// before opsd recorded anything is missing data).
pub fn price_days(
    usage: &[UsageRow],
    tokens: &BTreeMap<NaiveDate, DayTokens>,
    config: &LocalCostConfig,
    group_by: &CostGrouping,
) -> Result<Vec<DailyCost>, CostSourceError> {
    // Usage per day per opsd service.
    let mut by_day: BTreeMap<NaiveDate, BTreeMap<&str, Usage>> = BTreeMap::new();
    for row in usage {
        let day = by_day.entry(row.day).or_default();
        let service = day.entry(row.service.as_str()).or_insert(Usage {
            memory_mb: config.memory_mb,
            ..Usage::default()
        });
        service.requests += row.requests;
        service.duration_ms_total += row.duration_ms as f64;
        service.bytes_out += row.bytes_out;
    }
    for day in tokens.keys() {
        by_day.entry(*day).or_default();
    }
    let ai_prices = config
        .ai
        .as_ref()
        .map(|ai| ai.prices.clone())
        .unwrap_or_else(|| AiPrices::new(0.0, 0.0));
    let priced =
        |usage: &Usage| -> Result<Vec<crate::core::cost::pricing::ServiceCost>, CostSourceError> {
            price_usage(usage, &config.prices, &ai_prices).map_err(|error| {
                CostSourceError::MalformedResponse {
                    source_name: SOURCE_NAME.into(),
                    detail: error.to_string(),
                }
            })
        };
    let tag_is_service =
        matches!(group_by, CostGrouping::Tag(key) if key.eq_ignore_ascii_case("service"));
    let mut rows = Vec::new();
    for (day, services) in &by_day {
        let day_tokens = tokens.get(day).copied().unwrap_or_default();
        match group_by {
            CostGrouping::Service => {
                let mut lines = priced(&day_total(services, day_tokens, config.memory_mb))?;
                if config.ai.is_none() {
                    lines.retain(|line| line.service != ai_prices.service);
                }
                rows.extend(as_daily_costs(*day, &lines));
            }
            CostGrouping::Tag(_) if tag_is_service => {
                let ai_owner = config
                    .ai
                    .as_ref()
                    .and_then(|ai| ai.owner_service.as_deref())
                    .unwrap_or(UNTAGGED);
                let mut amounts: BTreeMap<&str, f64> = BTreeMap::new();
                for (service, usage) in services {
                    let amount: f64 = priced(usage)?.iter().map(|line| line.amount_usd).sum();
                    *amounts.entry(service).or_default() += amount;
                }
                if config.ai.is_some() {
                    let ai_only = Usage {
                        ai_input_tokens: day_tokens.input,
                        ai_output_tokens: day_tokens.output,
                        ..Usage::default()
                    };
                    let amount: f64 = priced(&ai_only)?.iter().map(|line| line.amount_usd).sum();
                    *amounts.entry(ai_owner).or_default() += amount;
                }
                rows.extend(amounts.into_iter().map(|(service, amount_usd)| DailyCost {
                    day: *day,
                    service: service.to_string(),
                    amount_usd,
                }));
            }
            CostGrouping::Tag(_) => {
                let amount_usd: f64 = priced(&day_total(services, day_tokens, config.memory_mb))?
                    .iter()
                    .map(|line| line.amount_usd)
                    .sum();
                rows.push(DailyCost {
                    day: *day,
                    service: UNTAGGED.into(),
                    amount_usd,
                });
            }
        }
    }
    Ok(rows)
}

/// One day's usage of every service together, with the day's tokens.
fn day_total(services: &BTreeMap<&str, Usage>, tokens: DayTokens, memory_mb: u32) -> Usage {
    let mut total = Usage {
        memory_mb,
        ai_input_tokens: tokens.input,
        ai_output_tokens: tokens.output,
        ..Usage::default()
    };
    for usage in services.values() {
        total.requests += usage.requests;
        total.duration_ms_total += usage.duration_ms_total;
        total.bytes_out += usage.bytes_out;
    }
    total
}

/// The tokens per day; the same text for SQLite and PostgreSQL (both read `$1`, `$2`).
const TOKENS_BY_DAY: &str = "SELECT substr(created_at, 1, 10) AS day, \
     CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input, \
     CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output \
     FROM letter_revisions WHERE created_at >= $1 AND created_at < $2 \
     GROUP BY substr(created_at, 1, 10)";

/// The tokens Steno recorded on the letter revisions created on each UTC day of
/// `from..to_exclusive` (revision times are RFC 3339 UTC text, so the day is their first ten
/// characters). Reads only: the SQLite file is opened read-only.
pub async fn read_tokens_by_day(
    ai: &LocalAiConfig,
    from: NaiveDate,
    to_exclusive: NaiveDate,
) -> Result<BTreeMap<NaiveDate, DayTokens>, CostSourceError> {
    let unavailable = |what: String| CostSourceError::Unavailable {
        source_name: SOURCE_NAME.into(),
        message: format!(
            "the AI tokens in database {} cannot be read: {what}; check that Steno's database \
             exists and has been migrated (steno migrate)",
            ai.database
        ),
    };
    let (from_text, to_text) = (from.to_string(), to_exclusive.to_string());
    let rows = match &ai.location {
        TokenDatabase::Sqlite(path) => {
            let options = SqliteConnectOptions::from_str("sqlite://")
                .map_err(|error| unavailable(error.to_string()))?
                .filename(path)
                .read_only(true);
            let mut connection = SqliteConnection::connect_with(&options)
                .await
                .map_err(|error| unavailable(format!("{}: {error}", path.display())))?;
            let rows = sqlx::query_as::<_, (String, i64, i64)>(TOKENS_BY_DAY)
                .bind(&from_text)
                .bind(&to_text)
                .fetch_all(&mut connection)
                .await
                .map_err(|error| unavailable(error.to_string()))?;
            let _ = connection.close().await;
            rows
        }
        TokenDatabase::Postgres(url) => {
            let mut connection = PgConnection::connect(url)
                .await
                .map_err(|error| unavailable(error.to_string()))?;
            let rows = sqlx::query_as::<_, (String, i64, i64)>(TOKENS_BY_DAY)
                .bind(&from_text)
                .bind(&to_text)
                .fetch_all(&mut connection)
                .await
                .map_err(|error| unavailable(error.to_string()))?;
            let _ = connection.close().await;
            rows
        }
    };
    let mut by_day = BTreeMap::new();
    for (day_text, input, output) in rows {
        let day =
            day_text
                .parse::<NaiveDate>()
                .map_err(|_| CostSourceError::MalformedResponse {
                    source_name: SOURCE_NAME.into(),
                    detail: format!(
                        "a letter revision's created_at starts with {day_text:?}, not a date"
                    ),
                })?;
        by_day.insert(
            day,
            DayTokens {
                input: u64::try_from(input).unwrap_or(0),
                output: u64::try_from(output).unwrap_or(0),
            },
        );
    }
    Ok(by_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn row(
        on: &str,
        service: &str,
        release: &str,
        requests: u64,
        duration_ms: u64,
        bytes_out: u64,
    ) -> UsageRow {
        UsageRow {
            day: day(on),
            service: service.into(),
            release_id: release.into(),
            requests,
            errors: 0,
            duration_ms,
            bytes_out,
        }
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-12
    }

    fn ai_config() -> LocalCostConfig {
        LocalCostConfig {
            ai: Some(LocalAiConfig {
                database: "steno".into(),
                location: TokenDatabase::Sqlite("unused".into()),
                prices: AiPrices::new(3.0, 15.0),
                owner_service: Some("steno".into()),
            }),
            ..LocalCostConfig::default()
        }
    }

    #[test]
    fn a_day_of_usage_is_priced_by_aws_service_by_hand() {
        // Two releases of steno on one day: 3,000 requests, 600,000 ms, 2^30 bytes out; and
        // 1M input + 0.2M output tokens.
        // Lambda      = 3,000 / 1e6 × $0.20 + 600 s × 0.5 GB × $0.0000166667 = 0.0006 + 0.005
        // API Gateway = 3,000 / 1e6 × $3.50 = $0.0105
        // CloudFront  = 1 GB × $0.085 + 3,000 / 1e4 × $0.01 = 0.085 + 0.003
        // AI          = 1 × $3 + 0.2 × $15 = $6
        let usage = vec![
            row("2026-05-04", "steno", "", 0, 0, 0),
            row("2026-05-04", "steno", "steno@v1", 2_000, 400_000, 1 << 29),
            row("2026-05-04", "steno", "steno@v2", 1_000, 200_000, 1 << 29),
        ];
        let mut tokens = BTreeMap::new();
        tokens.insert(
            day("2026-05-04"),
            DayTokens {
                input: 1_000_000,
                output: 200_000,
            },
        );
        let rows = price_days(&usage, &tokens, &ai_config(), &CostGrouping::Service).unwrap();
        let amounts: Vec<(&str, f64)> = rows
            .iter()
            .map(|row| (row.service.as_str(), row.amount_usd))
            .collect();
        assert_eq!(amounts.len(), 4);
        assert_eq!(amounts[0].0, "AWS Lambda");
        assert!(
            close(amounts[0].1, 0.0006 + 600.0 * 0.5 * 0.000_016_666_7),
            "{amounts:?}"
        );
        assert_eq!(amounts[1].0, "Amazon API Gateway");
        assert!(close(amounts[1].1, 0.0105), "{amounts:?}");
        assert_eq!(amounts[2].0, "Amazon CloudFront");
        assert!(close(amounts[2].1, 0.088), "{amounts:?}");
        assert_eq!(amounts[3], ("AI", 6.0));

        // By the Service tag: all of it is steno's.
        let by_tag = price_days(
            &usage,
            &tokens,
            &ai_config(),
            &CostGrouping::Tag("Service".into()),
        )
        .unwrap();
        assert_eq!(by_tag.len(), 1);
        assert_eq!(by_tag[0].service, "steno");
        let total: f64 = rows.iter().map(|row| row.amount_usd).sum();
        assert!(close(by_tag[0].amount_usd, total));
        // Any other tag: untagged.
        let other = price_days(
            &usage,
            &tokens,
            &ai_config(),
            &CostGrouping::Tag("Environment".into()),
        )
        .unwrap();
        assert_eq!(other[0].service, UNTAGGED);
        assert!(close(other[0].amount_usd, total));
    }

    #[test]
    fn quiet_days_cost_nothing_and_unrecorded_days_are_missing() {
        let usage = vec![
            row("2026-05-01", "steno", "", 0, 0, 0),
            row("2026-05-03", "steno", "steno@v1", 10, 100, 1_000),
        ];
        let rows = price_days(
            &usage,
            &BTreeMap::new(),
            &LocalCostConfig::default(),
            &CostGrouping::Service,
        )
        .unwrap();
        // No AI configured: three AWS services a day, two days, none on May 2.
        assert_eq!(rows.len(), 6);
        assert!(rows.iter().all(|row| row.day != day("2026-05-02")));
        assert!(rows
            .iter()
            .filter(|row| row.day == day("2026-05-01"))
            .all(|row| row.amount_usd == 0.0));
        assert!(rows.iter().all(|row| row.service != "AI"));
    }

    #[tokio::test]
    async fn tokens_are_read_per_day_from_a_steno_sqlite_database() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("steno.db");
        let options = SqliteConnectOptions::from_str("sqlite://")
            .unwrap()
            .filename(&path)
            .create_if_missing(true);
        let mut connection = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query(
            "CREATE TABLE letter_revisions (input_tokens BIGINT, output_tokens BIGINT, created_at TEXT NOT NULL)",
        )
        .execute(&mut connection)
        .await
        .unwrap();
        for (input, output, at) in [
            (Some(100), Some(10), "2026-05-01T23:59:59Z"),
            (Some(200), Some(20), "2026-05-02T00:00:00Z"),
            (None, None, "2026-05-02T08:00:00Z"),
            (Some(300), Some(30), "2026-05-02T09:00:00Z"),
            (Some(999), Some(99), "2026-05-09T09:00:00Z"),
        ] {
            sqlx::query("INSERT INTO letter_revisions VALUES (?, ?, ?)")
                .bind(input)
                .bind(output)
                .bind(at)
                .execute(&mut connection)
                .await
                .unwrap();
        }
        connection.close().await.unwrap();
        let ai = LocalAiConfig {
            database: "steno".into(),
            location: TokenDatabase::Sqlite(path),
            prices: AiPrices::new(3.0, 15.0),
            owner_service: None,
        };
        let tokens = read_tokens_by_day(&ai, day("2026-05-01"), day("2026-05-03"))
            .await
            .unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(
            tokens[&day("2026-05-01")],
            DayTokens {
                input: 100,
                output: 10
            }
        );
        assert_eq!(
            tokens[&day("2026-05-02")],
            DayTokens {
                input: 500,
                output: 50
            }
        );
        let missing = LocalAiConfig {
            location: TokenDatabase::Sqlite(directory.path().join("absent.db")),
            ..ai
        };
        let message = read_tokens_by_day(&missing, day("2026-05-01"), day("2026-05-03"))
            .await
            .unwrap_err()
            .to_string();
        assert!(message.contains("database steno"), "{message}");
        assert!(message.contains("absent.db"), "{message}");
    }
}
