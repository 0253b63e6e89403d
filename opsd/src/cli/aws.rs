//! The AWS-side commands that need no daemon: `opsd alarms sync|list` and `opsd cdn invalidate`.

use anyhow::anyhow;
use opsd::core::duration::parse_duration;

use super::args::{AlarmsAction, CdnAction, Cli, Command};
use super::load_config;

/// Runs `alarms` or `cdn`.
pub async fn run(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Alarms { action } => {
            let config = load_config(&cli.config)?;
            match action {
                AlarmsAction::Sync {
                    service,
                    dry_run,
                    json,
                } => {
                    let reports =
                        opsd::aws_commands::alarms_sync(&config, service.as_deref(), *dry_run)
                            .await?;
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&reports)?);
                    } else {
                        print!("{}", opsd::aws_commands::format_sync_reports(&reports));
                    }
                }
                AlarmsAction::Status { .. } => {
                    unreachable!("alarms status asks the running opsd")
                }
                AlarmsAction::List { service, json } => {
                    let rows = opsd::aws_commands::alarms_list(&config, service.as_deref()).await?;
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&rows)?);
                    } else {
                        print!("{}", opsd::aws_commands::format_alarm_listing(&rows));
                    }
                }
            }
            Ok(0)
        }
        Command::Cdn {
            action:
                CdnAction::Invalidate {
                    service,
                    paths,
                    no_wait,
                    timeout,
                    json,
                },
        } => {
            let config = load_config(&cli.config)?;
            let timeout = parse_duration(timeout).map_err(|error| anyhow!("--timeout: {error}"))?;
            let report = opsd::aws_commands::cdn_invalidate(
                &config,
                service,
                paths.clone(),
                !*no_wait,
                timeout,
            )
            .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if report.completed {
                println!(
                    "invalidation {} completed in {} s",
                    report.invalidation_id, report.waited_secs
                );
            } else if *no_wait {
                println!("invalidation {} created", report.invalidation_id);
            } else {
                println!(
                    "invalidation {} still in progress after {} s",
                    report.invalidation_id, report.waited_secs
                );
                return Ok(3);
            }
            Ok(0)
        }
        _ => unreachable!("only AWS commands are sent here"),
    }
}
