//! Where daily costs come from: the [`CostSource`] trait (Cost Explorer on AWS, the price model on
//! the local platform), how its rows are grouped, and its errors. invariant: no platform SDK type
//! appears here; rows are the core's [`DailyCost`].

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::core::cost::DailyCost;

/// The `service` of rows grouped by a tag for resources that do not carry the tag.
pub const UNTAGGED: &str = "(untagged)";

/// How a cost source groups each day's spend into rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostGrouping {
    /// One row per service; `service` is the service's name, like `AWS Lambda`.
    Service,
    /// One row per value of the tag with this key; `service` carries the bare tag value, like
    /// `production` for the tag `Environment=production` (Cost Explorer's `Environment$production`
    /// is normalised to `production`), and [`UNTAGGED`] for resources without the tag.
    Tag(String),
}

impl CostGrouping {
    /// Like `service` or `tag Environment`, for messages.
    pub fn describe(&self) -> String {
        match self {
            CostGrouping::Service => "service".into(),
            CostGrouping::Tag(key) => format!("tag {key}"),
        }
    }
}

/// Normalises a tag group key as Cost Explorer returns it (`<key>$<value>`, `<key>$` for untagged
/// resources) to the bare value, or [`UNTAGGED`]. A key without `$` is taken as the value itself.
pub fn tag_value_of_group_key(tag_key: &str, group_key: &str) -> String {
    let value = match group_key
        .strip_prefix(tag_key)
        .and_then(|rest| rest.strip_prefix('$'))
    {
        Some(value) => value,
        None => group_key
            .split_once('$')
            .map(|(_, value)| value)
            .unwrap_or(group_key),
    };
    if value.is_empty() {
        UNTAGGED.to_string()
    } else {
        value.to_string()
    }
}

/// What went wrong reading costs. Each message says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CostSourceError {
    #[error("the cost range {from}..{to_exclusive} is empty: the end is exclusive and must be after the start")]
    EmptyRange {
        from: NaiveDate,
        to_exclusive: NaiveDate,
    },
    #[error("cannot group costs by {grouping}: {reason}")]
    InvalidGrouping { grouping: String, reason: String },
    #[error("{source_name} refused the request: {message}; check the credentials and that they may read cost data (on AWS the ce:GetCostAndUsage permission, with Cost Explorer enabled for the account)")]
    AccessDenied {
        source_name: String,
        message: String,
    },
    #[error("{source_name} is unavailable: {message}; this is usually temporary (throttling, a network fault): try again later")]
    Unavailable {
        source_name: String,
        message: String,
    },
    #[error("{source_name} rejected the request: {message}; check the date range (Cost Explorer keeps about 14 months of daily data) and the tag key")]
    Rejected {
        source_name: String,
        message: String,
    },
    #[error("{source_name} returned {amount:?} as the {metric} of {group} on {day}, which is not a number of US dollars; re-run later, and report it if it persists")]
    MalformedAmount {
        source_name: String,
        day: NaiveDate,
        group: String,
        metric: String,
        amount: String,
    },
    #[error("{source_name} returned an answer opsd cannot read: {detail}; re-run later, and report it if it persists")]
    MalformedResponse { source_name: String, detail: String },
}

/// Reads daily costs.
#[async_trait::async_trait]
pub trait CostSource: Send + Sync {
    /// The spend of every day in `from..to_exclusive` (UTC days), one row per day per group. A
    /// day the source has no data for has no rows; a group without spend on a day may have no row
    /// (read it as $0 when the day has other rows).
    async fn daily_costs(
        &self,
        from: NaiveDate,
        to_exclusive: NaiveDate,
        group_by: CostGrouping,
    ) -> Result<Vec<DailyCost>, CostSourceError>;
}

/// Checks the arguments of [`CostSource::daily_costs`] (for implementations).
pub fn check_request(
    from: NaiveDate,
    to_exclusive: NaiveDate,
    group_by: &CostGrouping,
) -> Result<(), CostSourceError> {
    if to_exclusive <= from {
        return Err(CostSourceError::EmptyRange { from, to_exclusive });
    }
    if let CostGrouping::Tag(key) = group_by {
        if key.trim().is_empty() {
            return Err(CostSourceError::InvalidGrouping {
                grouping: group_by.describe(),
                reason: "the tag key is empty; name a cost allocation tag, like Environment".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_group_keys_become_bare_values() {
        assert_eq!(
            tag_value_of_group_key("Environment", "Environment$production"),
            "production"
        );
        assert_eq!(
            tag_value_of_group_key("Environment", "Environment$"),
            UNTAGGED
        );
        assert_eq!(tag_value_of_group_key("Environment", "staging"), "staging");
        // A value may itself hold a `$`: only the first one separates the key.
        assert_eq!(tag_value_of_group_key("Team", "Team$a$b"), "a$b");
    }

    #[test]
    fn requests_need_a_range_and_a_tag_key() {
        let day = |text: &str| text.parse::<NaiveDate>().unwrap();
        assert!(
            check_request(day("2025-06-01"), day("2025-06-02"), &CostGrouping::Service).is_ok()
        );
        let message = check_request(day("2025-06-02"), day("2025-06-02"), &CostGrouping::Service)
            .unwrap_err()
            .to_string();
        assert!(message.contains("exclusive"), "{message}");
        let message = check_request(
            day("2025-06-01"),
            day("2025-06-02"),
            &CostGrouping::Tag(" ".into()),
        )
        .unwrap_err()
        .to_string();
        assert!(message.contains("tag key is empty"), "{message}");
    }
}
