//! `opsd drill run|list|show|snapshot`: DR drills and snapshots, run in the CLI's own process
//! (`drill run` exits 0 when the drill passed, 2 when it failed).

use std::time::Instant;

use anyhow::anyhow;
use opsd::config::Config;
use opsd::core::duration::parse_duration;

use super::args::DrillAction;
use super::open_store;

pub async fn run(config: &Config, action: &DrillAction) -> anyhow::Result<u8> {
    use opsd::ops::drill;
    match action {
        DrillAction::Run {
            database,
            use_latest,
            pause_after_restore,
            json,
        } => {
            let database = drill::database(config, database)?;
            let pause = pause_after_restore
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|error| anyhow!("--pause-after-restore: {error}"))?;
            let store = open_store(config).await?;
            let options = drill::DrillOptions {
                use_latest_snapshot: *use_latest,
                pause_after_restore: pause,
            };
            let started = Instant::now();
            let progress = |line: &str| {
                eprintln!("[{:>6.1} s] {line}", started.elapsed().as_secs_f64());
            };
            let report = drill::run_drill(config, &store, database, &options, &progress).await?;
            let value = serde_json::to_value(&report)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print!("{}", drill::format_drill_report(&value));
            }
            Ok(match report.outcome {
                opsd::core::drill::DrillOutcome::Passed => 0,
                _ => 2,
            })
        }
        DrillAction::List {
            database,
            limit,
            json,
        } => {
            if let Some(name) = database {
                drill::database(config, name)?;
            }
            let store = open_store(config).await?;
            for line in drill::clean_up_interrupted_drills(config, &store).await {
                eprintln!("{line}");
            }
            let drills = store.list_drills(database.as_deref(), *limit).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&drills)?);
            } else {
                print!("{}", drill::format_drill_list(&drills));
            }
            Ok(0)
        }
        DrillAction::Show { id, json } => {
            let store = open_store(config).await?;
            let record = store.get_drill(id).await?.ok_or_else(|| {
                anyhow!("no drill {id:?}; `opsd drill list` shows the known ones")
            })?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else if record.outcome.is_none() {
                println!(
                    "drill {} of {} started {} is still running (scratch {})",
                    record.id,
                    record.database,
                    record.started_at,
                    record.scratch.as_deref().unwrap_or("not yet created")
                );
            } else {
                print!("{}", drill::format_drill_report(&record.report));
            }
            Ok(0)
        }
        DrillAction::Snapshot { database, json } => {
            let database = drill::database(config, database)?;
            let store = open_store(config).await?;
            let _lock = drill::DrillLock::try_acquire(&drill::drills_dir(config), &database.name)?
                .ok_or_else(|| {
                    anyhow!(
                        "a drill of {} is running; try again when it ends",
                        database.name
                    )
                })?;
            let platform = opsd::platform::factory::database_snapshots(config, database).await?;
            eprintln!("taking a snapshot of {}", platform.describe());
            let record = drill::take_recorded_snapshot(
                config,
                &store,
                database,
                platform.as_ref(),
                "manual",
                None,
            )
            .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                println!(
                    "snapshot {} of {} at {} ({})",
                    record.id,
                    record.database,
                    record.location,
                    record
                        .size_bytes
                        .map_or("size unknown".to_string(), |size| format!("{size} bytes"))
                );
            }
            Ok(0)
        }
    }
}
