//! Commands about this machine and its configuration: `opsd up` (the daemon), `opsd down`,
//! `opsd router` (one service's public port, run by `opsd up`), `opsd config
//! validate`, `opsd load` (a load generator against a service's public address) and `opsd token`
//! (API tokens in the store of opsd's data directory).

use anyhow::{anyhow, Context};
use opsd::core::duration::parse_duration;

use super::args::{Cli, Command, ConfigAction, TokenAction};
use super::load_config;

/// Runs `up`, `config validate`, `load` or `token`.
pub async fn run(cli: &Cli) -> anyhow::Result<u8> {
    match &cli.command {
        Command::Up => {
            let config = load_config(&cli.config)?;
            opsd::up::run(config, std::env::vars().collect()).await?;
            Ok(0)
        }
        Command::Down { timeout } => {
            let config = load_config(&cli.config)?;
            let timeout = parse_duration(timeout).map_err(|error| anyhow!("--timeout: {error}"))?;
            for line in opsd::data_plane::down(&config, timeout).await? {
                println!("{line}");
            }
            Ok(0)
        }
        Command::Router {
            service,
            listen,
            control,
            excluded_paths,
        } => {
            opsd::data_plane::serve_router(
                opsd::platform::local::router_process::RouterProcessOptions {
                    service: service.clone(),
                    listen: *listen,
                    control: control.clone(),
                    excluded_paths: excluded_paths.clone(),
                },
            )
            .await?;
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
                if let Some(windows) = &service.deploy_windows {
                    let outside = match windows.outside {
                        opsd::core::drill::GateMode::Hold => "queue",
                        _ => "refuse",
                    };
                    println!(
                        "    deploy windows: {}; {} freeze date entr{}; outside: {outside}",
                        if windows.windows.windows.is_empty() {
                            format!("any time, {}", windows.windows.zone_name)
                        } else {
                            windows.windows.describe_windows()
                        },
                        windows.windows.freeze_dates.len(),
                        if windows.windows.freeze_dates.len() == 1 {
                            "y"
                        } else {
                            "ies"
                        }
                    );
                }
            }
            Ok(0)
        }
        Command::Token { action } => {
            let config = load_config(&cli.config)?;
            let store = opsd::store::Store::open_location(&config.store).await?;
            match action {
                TokenAction::Create { name, role } => {
                    let role: opsd::store::TokenRole = role.parse().map_err(|_| {
                        anyhow!("--role: {role:?} is not a role; use operator or viewer")
                    })?;
                    let secret = opsd::auth::create_named_token(&store, name, role).await?;
                    eprintln!(
                        "token for {name} ({}), shown once; keep it secret:",
                        role.as_str()
                    );
                    println!("{secret}");
                }
                TokenAction::Revoke { name } => {
                    if store.revoke_token(name).await? == 0 {
                        return Err(anyhow!(
                            "no token is held by {name:?}; `opsd token list` shows the names"
                        ));
                    }
                    eprintln!("revoked the token of {name}");
                }
                TokenAction::List => {
                    for token in store.list_tokens().await? {
                        println!(
                            "{:<32} {:<9} created {}",
                            token.name,
                            token.role.as_str(),
                            token.created_at.to_rfc3339()
                        );
                    }
                }
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
