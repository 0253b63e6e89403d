//! Commands about this machine and its configuration: `opsd up` (the daemon), `opsd config
//! validate` and `opsd load` (a load generator against a service's public address).

use anyhow::{anyhow, Context};
use opsd::core::duration::parse_duration;

use super::args::{Cli, Command, ConfigAction};
use super::load_config;

/// Runs `up`, `config validate` or `load`.
pub async fn run(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Up => {
            let config = load_config(&cli.config)?;
            opsd::up::run(config, std::env::vars().collect()).await?;
            Ok(0)
        }
        Command::Config {
            action: ConfigAction::Validate,
        } => {
            let config = load_config(&cli.config)?;
            println!(
                "{}: ok — {} service(s), {} alarm rule(s), listen {}",
                config.source,
                config.services.len(),
                config.policy.alarms.len(),
                config.listen
            );
            for service in config.services.values() {
                println!(
                    "  {}: public {} plan {} ({} steps)",
                    service.name,
                    service.public_target(),
                    service.plan.name,
                    service.plan.steps.len()
                );
            }
            Ok(0)
        }
        Command::Load {
            rps,
            duration,
            target,
        } => {
            let config = load_config(&cli.config)?;
            let duration =
                parse_duration(duration).map_err(|error| anyhow!("--duration: {error}"))?;
            let target = match target {
                Some(target) => target.clone(),
                None => {
                    let service = config
                        .services
                        .values()
                        .next()
                        .context("no service is configured")?;
                    format!("http://{}", service.public_addr)
                }
            };
            opsd::up::run_load_command(&target, *rps, duration).await?;
            Ok(0)
        }
        _ => unreachable!("only local commands are sent here"),
    }
}
