//! The maintenance banner: Steno polls opsd's status document (`STENO_STATUS_URL`) and shows its
//! maintenance message in the UI while maintenance is active.
//!
//! The status document is JSON; Steno reads only this part of it:
//! `{"maintenance": {"active": true, "message": "Deploying v2 until 02:30 UTC"},
//!   "upcoming": {"message": "Weekly maintenance", "starts_at": "2026-12-06T02:00:00Z"}}`.
//! An upcoming window (announced ahead, e.g. 7 days) is shown when none is in force.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Deserialize;

#[derive(Deserialize)]
struct StatusDocument {
    #[serde(default)]
    maintenance: Option<Maintenance>,
    #[serde(default)]
    upcoming: Option<Upcoming>,
}

#[derive(Deserialize)]
struct Upcoming {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    starts_at: Option<String>,
}

/// `2026-12-06 02:00 UTC` for an RFC 3339 time; the text itself when it is not one.
fn readable_time(text: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(time) => time
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string(),
        Err(_) => text.chars().take(40).collect(),
    }
}

#[derive(Deserialize)]
struct Maintenance {
    active: bool,
    #[serde(default)]
    message: Option<String>,
}

/// The banner currently shown, if any; shared between the poller and the UI.
#[derive(Default)]
pub struct Banner {
    message: RwLock<Option<String>>,
}

impl Banner {
    pub fn current(&self) -> Option<String> {
        self.message
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn set(&self, message: Option<String>) {
        *self
            .message
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = message;
    }
}

/// The banner text a status document asks for: `None` when no maintenance is active.
pub fn banner_from_status_document(body: &[u8]) -> Result<Option<String>, String> {
    let document: StatusDocument = serde_json::from_slice(body)
        .map_err(|error| format!("the status document is not valid JSON: {error}"))?;
    Ok(match document.maintenance {
        Some(maintenance) if maintenance.active => Some(
            maintenance
                .message
                .filter(|message| !message.trim().is_empty())
                .unwrap_or_else(|| "Scheduled maintenance is in progress.".to_string()),
        ),
        _ => document.upcoming.and_then(|upcoming| {
            let starts = upcoming.starts_at.as_deref().map(readable_time)?;
            let message = upcoming
                .message
                .filter(|message| !message.trim().is_empty())
                .unwrap_or_else(|| "Steno may be briefly unavailable.".to_string());
            Some(format!("planned from {starts}: {message}"))
        }),
    })
}

/// Fetches the status document once and updates the banner. On failure the last known banner is
/// kept, so a brief opsd outage neither hides nor invents a maintenance window.
pub async fn refresh_banner(
    client: &reqwest::Client,
    url: &str,
    banner: &Banner,
) -> Result<(), String> {
    let response = client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|error| format!("could not fetch the status document {url}: {error}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "the status document {url} answered {}",
            response.status()
        ));
    }
    let body = response
        .bytes()
        .await
        .map_err(|error| format!("could not read the status document {url}: {error}"))?;
    banner.set(banner_from_status_document(&body)?);
    Ok(())
}

/// Polls the status document forever at `interval`; spawn it and abort it on shutdown.
pub async fn poll_status_document(url: String, interval: Duration, banner: Arc<Banner>) {
    let client = reqwest::Client::new();
    loop {
        if let Err(error) = refresh_banner(&client, &url, &banner).await {
            tracing::warn!(error = %error, "status document unavailable");
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_maintenance_gives_its_message() {
        let body = br#"{"service":"steno","maintenance":{"active":true,"message":"Upgrading"}}"#;
        assert_eq!(
            banner_from_status_document(body).unwrap().as_deref(),
            Some("Upgrading")
        );
    }

    #[test]
    fn inactive_or_absent_maintenance_gives_none() {
        assert_eq!(
            banner_from_status_document(br#"{"maintenance":{"active":false}}"#).unwrap(),
            None
        );
        assert_eq!(
            banner_from_status_document(br#"{"rollouts":[]}"#).unwrap(),
            None
        );
    }

    #[test]
    fn active_without_message_has_a_default() {
        let banner = banner_from_status_document(br#"{"maintenance":{"active":true}}"#).unwrap();
        assert!(banner.unwrap().contains("maintenance"));
    }

    #[test]
    fn an_announced_window_shows_when_none_is_in_force() {
        let body = br#"{"maintenance":{"active":false},"upcoming":{"message":"Weekly maintenance","starts_at":"2026-12-06T02:00:00Z"}}"#;
        assert_eq!(
            banner_from_status_document(body).unwrap().as_deref(),
            Some("planned from 2026-12-06 02:00 UTC: Weekly maintenance")
        );
        let both = br#"{"maintenance":{"active":true,"message":"Now"},"upcoming":{"message":"Later","starts_at":"2026-12-06T02:00:00Z"}}"#;
        assert_eq!(
            banner_from_status_document(both).unwrap().as_deref(),
            Some("Now")
        );
        assert_eq!(
            banner_from_status_document(br#"{"upcoming":null}"#).unwrap(),
            None
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(banner_from_status_document(b"<html>").is_err());
    }
}
