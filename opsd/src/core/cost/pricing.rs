//! The local platform's cost model: usage counted by opsd's router priced with the AWS price
//! table of R-COST-8 (docs/requirements.md), plus AI tokens at configured prices (R-COST-10), so a
//! local run is budgeted as if it ran on AWS.
//!
//! Every counted request is taken to pass through CloudFront, API Gateway and Lambda (R-COST-8).
//! Service names are Cost Explorer's `SERVICE` names, so a budget scoped to `AWS Lambda` means the
//! same on both platforms. Free tiers are not subtracted (the budgets of R-COST-1 are for
//! production, past the free tier). Data sizes follow AWS billing: 1 GB = 2^30 bytes for
//! transfer and 1,024 MB for Lambda memory.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{CostError, DailyCost, DEFAULT_AI_SERVICE};

/// Cost Explorer's name of Lambda.
pub const LAMBDA_SERVICE: &str = "AWS Lambda";
/// Cost Explorer's name of API Gateway.
pub const API_GATEWAY_SERVICE: &str = "Amazon API Gateway";
/// Cost Explorer's name of CloudFront.
pub const CLOUDFRONT_SERVICE: &str = "Amazon CloudFront";

const BYTES_PER_GB: f64 = 1_073_741_824.0;
const MB_PER_GB: f64 = 1_024.0;

/// AWS prices in US dollars, per the unit in each field's name.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    /// Lambda requests, per million.
    pub lambda_per_million_requests_usd: f64,
    /// Lambda compute, per GB-second (memory in GB × duration in seconds).
    pub lambda_per_gb_second_usd: f64,
    /// API Gateway requests, per million.
    pub api_gateway_per_million_requests_usd: f64,
    /// CloudFront data transfer out, per GB.
    pub cloudfront_per_gb_out_usd: f64,
    /// CloudFront requests, per 10,000.
    pub cloudfront_per_ten_thousand_requests_usd: f64,
}

impl PriceTable {
    /// The prices of R-COST-8:
    /// - Lambda: "$0.20/1M requests, $0.0000166667/GB-second";
    /// - API Gateway: "$3.50/million requests";
    /// - CloudFront: "$0.085/GB data transfer, $0.01/10K requests".
    pub fn seed() -> PriceTable {
        PriceTable {
            lambda_per_million_requests_usd: 0.20,
            lambda_per_gb_second_usd: 0.000_016_666_7,
            api_gateway_per_million_requests_usd: 3.50,
            cloudfront_per_gb_out_usd: 0.085,
            cloudfront_per_ten_thousand_requests_usd: 0.01,
        }
    }

    /// Checks that every price is a finite number of 0 or more.
    pub fn validate(&self) -> Result<(), CostError> {
        for (field, value) in [
            (
                "lambda_per_million_requests_usd",
                self.lambda_per_million_requests_usd,
            ),
            ("lambda_per_gb_second_usd", self.lambda_per_gb_second_usd),
            (
                "api_gateway_per_million_requests_usd",
                self.api_gateway_per_million_requests_usd,
            ),
            ("cloudfront_per_gb_out_usd", self.cloudfront_per_gb_out_usd),
            (
                "cloudfront_per_ten_thousand_requests_usd",
                self.cloudfront_per_ten_thousand_requests_usd,
            ),
        ] {
            check_price(field, value)?;
        }
        Ok(())
    }
}

impl Default for PriceTable {
    fn default() -> PriceTable {
        PriceTable::seed()
    }
}

/// AI model prices in US dollars per million tokens (R-COST-10). No guide gives them: they depend
/// on the model and come from configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AiPrices {
    /// The service name the AI spend is reported under ([`DEFAULT_AI_SERVICE`] unless configured).
    pub service: String,
    pub per_million_input_tokens_usd: f64,
    pub per_million_output_tokens_usd: f64,
}

impl AiPrices {
    /// Prices under the default AI service name.
    pub fn new(per_million_input_tokens_usd: f64, per_million_output_tokens_usd: f64) -> AiPrices {
        AiPrices {
            service: DEFAULT_AI_SERVICE.into(),
            per_million_input_tokens_usd,
            per_million_output_tokens_usd,
        }
    }

    /// Checks the prices and the service name.
    pub fn validate(&self) -> Result<(), CostError> {
        check_price(
            "per_million_input_tokens_usd",
            self.per_million_input_tokens_usd,
        )?;
        check_price(
            "per_million_output_tokens_usd",
            self.per_million_output_tokens_usd,
        )?;
        if self.service.trim().is_empty() {
            return Err(CostError::InvalidPrice {
                field: "service",
                reason: "is empty; name the service AI spend is reported under, like AI".into(),
            });
        }
        Ok(())
    }
}

fn check_price(field: &'static str, value: f64) -> Result<(), CostError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(CostError::InvalidPrice {
            field,
            reason: format!("is {value}; a price must be a number of US dollars, 0 or more"),
        })
    }
}

/// What the local platform counted over some period (a day, typically).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Requests served (each through CloudFront, API Gateway and Lambda).
    pub requests: u64,
    /// The summed duration of all requests, in milliseconds.
    pub duration_ms_total: f64,
    /// The Lambda memory size the requests would run with, in MB.
    pub memory_mb: u32,
    /// Bytes sent to clients.
    pub bytes_out: u64,
    pub ai_input_tokens: u64,
    pub ai_output_tokens: u64,
}

/// One service's share of a usage's cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceCost {
    pub service: String,
    pub amount_usd: f64,
}

/// Prices a usage per service: Lambda (requests + GB-seconds), API Gateway (requests), CloudFront
/// (GB out + requests) and AI (input and output tokens), in that order.
pub fn price_usage(
    usage: &Usage,
    prices: &PriceTable,
    ai_prices: &AiPrices,
) -> Result<Vec<ServiceCost>, CostError> {
    prices.validate()?;
    ai_prices.validate()?;
    if !(usage.duration_ms_total.is_finite() && usage.duration_ms_total >= 0.0) {
        return Err(CostError::InvalidUsage {
            field: "duration_ms_total",
            reason: format!(
                "is {}; it must be a number of milliseconds, 0 or more",
                usage.duration_ms_total
            ),
        });
    }
    let requests = usage.requests as f64;
    let gb_seconds = usage.duration_ms_total / 1_000.0 * (f64::from(usage.memory_mb) / MB_PER_GB);
    let lambda_usd = requests / 1e6 * prices.lambda_per_million_requests_usd
        + gb_seconds * prices.lambda_per_gb_second_usd;
    let api_gateway_usd = requests / 1e6 * prices.api_gateway_per_million_requests_usd;
    let cloudfront_usd = usage.bytes_out as f64 / BYTES_PER_GB * prices.cloudfront_per_gb_out_usd
        + requests / 1e4 * prices.cloudfront_per_ten_thousand_requests_usd;
    let ai_usd = usage.ai_input_tokens as f64 / 1e6 * ai_prices.per_million_input_tokens_usd
        + usage.ai_output_tokens as f64 / 1e6 * ai_prices.per_million_output_tokens_usd;
    Ok(vec![
        ServiceCost {
            service: LAMBDA_SERVICE.into(),
            amount_usd: lambda_usd,
        },
        ServiceCost {
            service: API_GATEWAY_SERVICE.into(),
            amount_usd: api_gateway_usd,
        },
        ServiceCost {
            service: CLOUDFRONT_SERVICE.into(),
            amount_usd: cloudfront_usd,
        },
        ServiceCost {
            service: ai_prices.service.clone(),
            amount_usd: ai_usd,
        },
    ])
}

/// The cost of a thousand requests of this usage (all services); `None` without requests.
pub fn cost_per_thousand_requests(
    usage: &Usage,
    prices: &PriceTable,
    ai_prices: &AiPrices,
) -> Result<Option<f64>, CostError> {
    let total_usd: f64 = price_usage(usage, prices, ai_prices)?
        .iter()
        .map(|line| line.amount_usd)
        .sum();
    Ok((usage.requests > 0).then(|| total_usd / usage.requests as f64 * 1_000.0))
}

/// The priced lines of one day as cost rows, for budgets and anomaly detection on the local
/// platform.
pub fn as_daily_costs(day: NaiveDate, lines: &[ServiceCost]) -> Vec<DailyCost> {
    lines
        .iter()
        .map(|line| DailyCost {
            day,
            service: line.service.clone(),
            amount_usd: line.amount_usd,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-9
    }

    #[test]
    fn a_known_load_costs_what_the_hand_computation_says() {
        // 1,000,000 requests of 200 ms at 512 MB, 10 GB out, 2M input and 0.5M output tokens at
        // $3 and $15 per million:
        // Lambda      = 1e6 / 1e6 × $0.20 + (1e6 × 0.2 s × 0.5 GB = 100,000 GB-s) × $0.0000166667
        //             = 0.20 + 1.66667 = $1.86667
        // API Gateway = 1e6 / 1e6 × $3.50 = $3.50
        // CloudFront  = 10 GB × $0.085 + 1e6 / 1e4 × $0.01 = 0.85 + 1.00 = $1.85
        // AI          = 2 × $3 + 0.5 × $15 = 6 + 7.5 = $13.50
        // Total       = $20.71667, so $0.02071667 per thousand requests.
        let usage = Usage {
            requests: 1_000_000,
            duration_ms_total: 1_000_000.0 * 200.0,
            memory_mb: 512,
            bytes_out: 10 * 1_073_741_824,
            ai_input_tokens: 2_000_000,
            ai_output_tokens: 500_000,
        };
        let ai = AiPrices::new(3.0, 15.0);
        let lines = price_usage(&usage, &PriceTable::seed(), &ai).unwrap();
        let amounts: Vec<(&str, f64)> = lines
            .iter()
            .map(|line| (line.service.as_str(), line.amount_usd))
            .collect();
        assert_eq!(amounts[0].0, "AWS Lambda");
        assert!(close(amounts[0].1, 0.20 + 100_000.0 * 0.000_016_666_7));
        assert!(close(amounts[0].1, 1.86667));
        assert_eq!(amounts[1], ("Amazon API Gateway", 3.50));
        assert_eq!(amounts[2].0, "Amazon CloudFront");
        assert!(close(amounts[2].1, 1.85));
        assert_eq!(amounts[3].0, "AI");
        assert!(close(amounts[3].1, 13.50));
        let per_thousand = cost_per_thousand_requests(&usage, &PriceTable::seed(), &ai)
            .unwrap()
            .unwrap();
        assert!(close(per_thousand, 0.020_716_67), "{per_thousand}");
        let rows = as_daily_costs("2025-06-10".parse().unwrap(), &lines);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[3].service, "AI");
    }

    #[test]
    fn no_requests_has_no_cost_per_thousand() {
        let ai = AiPrices::new(3.0, 15.0);
        let usage = Usage::default();
        assert_eq!(
            cost_per_thousand_requests(&usage, &PriceTable::seed(), &ai).unwrap(),
            None
        );
        let lines = price_usage(&usage, &PriceTable::seed(), &ai).unwrap();
        assert!(lines.iter().all(|line| line.amount_usd == 0.0));
    }

    #[test]
    fn bad_usage_and_prices_name_the_field() {
        let ai = AiPrices::new(3.0, 15.0);
        let usage = Usage {
            duration_ms_total: -1.0,
            ..Usage::default()
        };
        let message = price_usage(&usage, &PriceTable::seed(), &ai)
            .unwrap_err()
            .to_string();
        assert!(message.contains("duration_ms_total"), "{message}");
        let prices = PriceTable {
            lambda_per_gb_second_usd: f64::NAN,
            ..PriceTable::seed()
        };
        let message = price_usage(&Usage::default(), &prices, &ai)
            .unwrap_err()
            .to_string();
        assert!(message.contains("lambda_per_gb_second_usd"), "{message}");
        let message = price_usage(
            &Usage::default(),
            &PriceTable::seed(),
            &AiPrices::new(-1.0, 1.0),
        )
        .unwrap_err()
        .to_string();
        assert!(
            message.contains("per_million_input_tokens_usd"),
            "{message}"
        );
    }
}
