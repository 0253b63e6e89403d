//! `opsd maintenance start|stop|status`: clients of the API's maintenance routes.

use opsd::control::MaintenanceRequest;
use opsd::core::maintenance::MaintenanceWindow;

use super::args::MaintenanceAction;
use super::client::Client;

/// `02:00 UTC 2026-12-06 → 04:00 UTC: Weekly maintenance (schedule weekly)`.
fn describe(window: &MaintenanceWindow) -> String {
    let format = "%Y-%m-%d %H:%M UTC";
    let end = window.ends_at.map_or("until stopped".to_string(), |end| {
        format!("until {}", end.format(format))
    });
    let source = if window.source.is_empty() {
        String::new()
    } else {
        format!(" ({})", window.source)
    };
    format!(
        "from {} {end}: {}{source}",
        window.starts_at.format(format),
        window.message
    )
}

pub async fn run(client: &Client, action: &MaintenanceAction) -> anyhow::Result<u8> {
    match action {
        MaintenanceAction::Start {
            message,
            at,
            duration,
            no_deploys,
        } => {
            let request = MaintenanceRequest {
                message: message.clone(),
                at: at.clone(),
                duration: duration.clone(),
                no_deploys: *no_deploys,
            };
            let window = client.start_maintenance(&request).await?.maintenance;
            println!("maintenance {}", describe(&window));
            println!("Steno's banner shows it while it is in force (its releases read opsd's /status.json).");
        }
        MaintenanceAction::Stop { reason } => {
            let stopped = client.stop_maintenance(reason.as_deref()).await?.stopped;
            println!("stopped {stopped} maintenance window(s)");
        }
        MaintenanceAction::Status { json } => {
            let status = client.maintenance().await?.maintenance;
            if *json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(0);
            }
            match &status.active {
                Some(window) => println!("in force: {}", describe(window)),
                None => println!("in force: none"),
            }
            match &status.upcoming {
                Some(window) => println!("next:     {}", describe(window)),
                None => println!("next:     none announced"),
            }
        }
    }
    Ok(0)
}
