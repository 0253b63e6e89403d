//! The commands that talk to AWS directly rather than through the daemon: `opsd alarms sync`,
//! `opsd alarms list` and `opsd cdn invalidate`. Each reads `opsd.yaml`, builds the service's
//! clients and prints a table (or JSON with `--json`).

use std::time::Duration;

use anyhow::{anyhow, bail};

use crate::config::{Config, ServiceConfig};
use crate::platform::aws::alarm_sync::{self, AlarmListing, SyncReport};
use crate::platform::aws::cdn::Distribution;
use crate::platform::factory;

/// The services a command applies to: one by name, or every service on AWS.
fn aws_services<'a>(
    config: &'a Config,
    service: Option<&str>,
) -> anyhow::Result<Vec<&'a ServiceConfig>> {
    match service {
        Some(name) => {
            let service = config.service_named(name).map_err(|error| anyhow!(error))?;
            if service.aws.is_none() {
                bail!("{name} runs on the local platform, where opsd evaluates alarms itself; CloudWatch is for services with platform: aws");
            }
            Ok(vec![service])
        }
        None => {
            let services: Vec<&ServiceConfig> = config
                .services
                .values()
                .filter(|service| service.aws.is_some())
                .collect();
            if services.is_empty() {
                bail!(
                    "no service in {} has platform: aws; alarms on the local platform are evaluated by opsd itself",
                    config.source
                );
            }
            Ok(services)
        }
    }
}

/// `opsd alarms sync`: returns the reports (printed by the caller).
pub async fn alarms_sync(
    config: &Config,
    service: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<Vec<SyncReport>> {
    let mut reports = Vec::new();
    for service in aws_services(config, service)? {
        let Some(aws) = &service.aws else { continue };
        let clients = factory::aws_clients(aws).await;
        let report = alarm_sync::apply_sync(
            &clients.cloudwatch,
            &aws.retry,
            &service.name,
            aws,
            &config.policy.alarms,
            dry_run,
        )
        .await?;
        reports.push(report);
    }
    Ok(reports)
}

/// Human-readable lines for sync reports.
pub fn format_sync_reports(reports: &[SyncReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let verb = if report.dry_run { "would " } else { "" };
        out.push_str(&format!(
            "{}: {verb}create {}, {verb}update {}, {verb}delete {}, unchanged {}\n",
            report.service,
            report.created.len(),
            report.updated.len(),
            report.deleted.len(),
            report.unchanged.len()
        ));
        for (label, names) in [
            ("create", &report.created),
            ("update", &report.updated),
            ("delete", &report.deleted),
        ] {
            for name in names {
                out.push_str(&format!("  {verb}{label} {name}\n"));
            }
        }
        for skipped in &report.skipped {
            out.push_str(&format!(
                "  not synced: {} ({})\n",
                skipped.rule, skipped.reason
            ));
        }
    }
    out
}

/// `opsd alarms list`: opsd's rules and CloudWatch's alarms side by side.
pub async fn alarms_list(
    config: &Config,
    service: Option<&str>,
) -> anyhow::Result<Vec<AlarmListing>> {
    let mut rows = Vec::new();
    for service in aws_services(config, service)? {
        let Some(aws) = &service.aws else { continue };
        let clients = factory::aws_clients(aws).await;
        let existing =
            alarm_sync::describe_owned(&clients.cloudwatch, &aws.retry, &service.name).await?;
        rows.extend(alarm_sync::listing(
            &service.name,
            aws,
            &config.policy.alarms,
            &existing,
        ));
    }
    Ok(rows)
}

/// A table of alarm listings.
pub fn format_alarm_listing(rows: &[AlarmListing]) -> String {
    let mut out = format!(
        "{:<8} {:<20} {:<44} {:<8} {:<34} {:<18} {}\n",
        "SERVICE", "RULE", "OPSD CONDITION", "ROLLBACK", "CLOUDWATCH ALARM", "STATE", "SYNC"
    );
    for row in rows {
        out.push_str(&format!(
            "{:<8} {:<20} {:<44} {:<8} {:<34} {:<18} {}\n",
            row.service,
            row.rule.as_deref().unwrap_or("-"),
            row.opsd_condition.as_deref().unwrap_or("-"),
            if row.rollback { "yes" } else { "no" },
            row.cloudwatch_alarm.as_deref().unwrap_or("-"),
            row.cloudwatch_state,
            row.sync
        ));
    }
    out
}

/// The outcome of `opsd cdn invalidate`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InvalidationReport {
    pub service: String,
    pub distribution_id: String,
    pub invalidation_id: String,
    pub paths: Vec<String>,
    pub completed: bool,
    pub waited_secs: u64,
}

/// `opsd cdn invalidate`: creates an invalidation and, unless `wait` is false, waits for it with
/// a progress line on stderr.
pub async fn cdn_invalidate(
    config: &Config,
    service_name: &str,
    paths: Vec<String>,
    wait: bool,
    timeout: Duration,
) -> anyhow::Result<InvalidationReport> {
    let service = aws_services(config, Some(service_name))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("unknown service {service_name:?}"))?;
    let Some(aws) = &service.aws else {
        bail!("{service_name} is not on AWS");
    };
    let Some(cloudfront) = &aws.cloudfront else {
        bail!(
            "{service_name} has no CloudFront distribution; set services.{service_name}.aws.cloudfront.distribution_id in {}",
            config.source
        );
    };
    let paths = if paths.is_empty() {
        cloudfront.paths.clone()
    } else {
        paths
    };
    let clients = factory::aws_clients(aws).await;
    let distribution = Distribution {
        client: clients.cloudfront,
        distribution_id: cloudfront.distribution_id.clone(),
        retry: aws.retry,
    };
    let reference = format!("opsd-{service_name}-{}", uuid::Uuid::new_v4());
    let invalidation_id = distribution.create_invalidation(&paths, &reference).await?;
    eprintln!(
        "created invalidation {invalidation_id} on distribution {} for {}",
        cloudfront.distribution_id,
        paths.join(" ")
    );
    let started = std::time::Instant::now();
    let completed = if wait {
        let done = distribution
            .wait_for_invalidation(
                &invalidation_id,
                Duration::from_secs(2),
                timeout,
                |status, waited| {
                    eprint!("\r  invalidation {invalidation_id}: {status} after {waited} s      ");
                },
            )
            .await?;
        eprintln!();
        done
    } else {
        false
    };
    Ok(InvalidationReport {
        service: service_name.to_string(),
        distribution_id: cloudfront.distribution_id.clone(),
        invalidation_id,
        paths,
        completed,
        waited_secs: started.elapsed().as_secs(),
    })
}
