//! `opsd cost check` and `opsd cost report`: run in the CLI's own process against the store
//! (exit codes: 0 within budget, 3 a warning threshold crossed, 2 a critical one).

use std::time::Duration;

use anyhow::anyhow;
use opsd::config::Config;

use super::args::CostAction;
use super::open_store;

fn parse_today(today: Option<&str>) -> anyhow::Result<chrono::NaiveDate> {
    match today {
        Some(text) => text
            .parse()
            .map_err(|_| anyhow!("--today {text:?} is not a day like 2025-06-30")),
        None => Ok(opsd::ops::costs::utc_today()),
    }
}

pub async fn run(config: &Config, action: &CostAction) -> anyhow::Result<u8> {
    use opsd::ops::costs;
    let costs_config = costs::costs_config(config)?;
    match action {
        CostAction::Check { today, json } => {
            let today = parse_today(today.as_deref())?;
            let store = open_store(config).await?;
            let source = opsd::platform::factory::cost_source(costs_config, &store).await;
            let (notifier, delivery) = opsd::notify::Notifier::start(
                config.notification_targets.clone(),
                config.notification_routes.clone(),
                Some(store.clone()),
            );
            let outcome =
                costs::check_and_notify(costs_config, &store, source.as_ref(), today, &notifier)
                    .await;
            drop(notifier);
            if tokio::time::timeout(Duration::from_secs(60), delivery)
                .await
                .is_err()
            {
                eprintln!("warning: notifications still undelivered after 60 s; giving up");
            }
            let outcome = outcome?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&outcome)?);
            } else {
                print!("{}", costs::format_check(&outcome));
            }
            Ok(outcome.report.exit_code)
        }
        CostAction::Report { today, json } => {
            let today = parse_today(today.as_deref())?;
            let store = open_store(config).await?;
            let source = opsd::platform::factory::cost_source(costs_config, &store).await;
            let report = costs::evaluate(costs_config, &store, source.as_ref(), today).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", costs::format_report(&report));
            }
            Ok(0)
        }
    }
}
