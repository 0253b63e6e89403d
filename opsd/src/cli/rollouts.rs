//! The rollout commands, clients of the API: deploy (and wait), status, the operator commands,
//! rollback, history and gate. `--wait` and `gate` exit with the code of the rollout's phase
//! ([`Phase::exit_code`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use opsd::control::{DeployRequest, PlanChoice, RolloutView, ServiceStatus};
use opsd::core::duration::parse_duration;

use super::args::Command;
use super::client::{Client, Verb};

/// Runs a command that talks to a running opsd.
pub async fn run(client: &Client, command: &Command) -> anyhow::Result<u8> {
    match command {
        Command::Deploy {
            service,
            version,
            env,
            env_from,
            plan,
            reason,
            overrides,
            watch,
            wait,
            timeout,
            json,
        } => {
            let timeout = parse_duration(timeout).map_err(|error| anyhow!("--timeout: {error}"))?;
            let request = DeployRequest {
                version: version.clone(),
                env: parse_env(env, "--env")?,
                env_from: parse_env(env_from, "--env-from")?,
                plan: plan.as_deref().map(plan_for_request).transpose()?,
                reason: reason.clone(),
                overrides: overrides.clone(),
                watch: watch.clone(),
            };
            let answer = client.deploy(service, &request).await?;
            let rollout = answer.rollout;
            if !*json {
                println!(
                    "rollout {} of {service} {version} started ({})",
                    rollout.id, rollout.plan
                );
            }
            if *wait {
                return wait_for_rollout(client, &rollout.id, timeout, *json).await;
            }
            if *json {
                println!("{}", serde_json::to_string_pretty(&rollout)?);
            }
            Ok(0)
        }
        Command::Status { service, json } => {
            let services = match service {
                Some(service) => {
                    let answer = client.service(service).await?;
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&answer)?);
                        return Ok(0);
                    }
                    vec![answer.service]
                }
                None => {
                    let answer = client.status().await?;
                    if *json {
                        println!("{}", serde_json::to_string_pretty(&answer)?);
                        return Ok(0);
                    }
                    if let Some(leader) = &answer.leader {
                        println!("{}", leader_line(leader));
                    }
                    if answer.answered_by.as_deref() == Some("follower") {
                        println!(
                            "answered by a follower, from the store (changes go to the leader)"
                        );
                    }
                    answer.services
                }
            };
            for freeze in client.freezes().await?.freezes {
                println!(
                    "FROZEN: {} since {} by {}: {}",
                    scope_name(&freeze.scope),
                    freeze.since.to_rfc3339(),
                    freeze.actor,
                    freeze.reason
                );
            }
            for status in &services {
                print_status(status);
            }
            Ok(0)
        }
        Command::Promote { service, reason }
        | Command::Pause { service, reason }
        | Command::Resume { service, reason }
        | Command::Abort { service, reason } => {
            let verb = match command {
                Command::Promote { .. } => Verb::Promote,
                Command::Pause { .. } => Verb::Pause,
                Command::Resume { .. } => Verb::Resume,
                _ => Verb::Abort,
            };
            let answer = client.command(service, verb, reason.as_deref()).await?;
            print_rollout_line(&answer.rollout);
            Ok(0)
        }
        Command::Approve { service, reason } => {
            let answer = client
                .command(service, Verb::Approve, reason.as_deref())
                .await?;
            print_rollout_line(&answer.rollout);
            Ok(0)
        }
        Command::Rollback { service, reason } => {
            let answer = client
                .command(service, Verb::Rollback, reason.as_deref())
                .await?;
            println!(
                "rolling {service} back to {} (rollout {})",
                answer.rollout.canary_version, answer.rollout.id
            );
            Ok(0)
        }
        Command::Freeze { service, reason } => {
            let freeze = client.freeze(service.as_deref(), reason).await?.freeze;
            println!(
                "{} frozen since {}: {}",
                scope_name(&freeze.scope),
                freeze.since.to_rfc3339(),
                freeze.reason
            );
            Ok(0)
        }
        Command::Unfreeze { service, reason } => {
            let lifted = client
                .unfreeze(service.as_deref(), reason.as_deref())
                .await?
                .lifted;
            println!(
                "{} unfrozen (frozen by {} since {}: {})",
                scope_name(&lifted.scope),
                lifted.actor,
                lifted.since.to_rfc3339(),
                lifted.reason
            );
            Ok(0)
        }
        Command::History {
            service,
            limit,
            json,
        } => {
            let answer = client.history(service, *limit).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
                return Ok(0);
            }
            for rollout in &answer.rollouts {
                print_rollout_line(rollout);
                for decision in &rollout.decisions {
                    println!(
                        "    {}  {:<9} {}",
                        decision.at, decision.kind, decision.summary
                    );
                }
            }
            Ok(0)
        }
        Command::Gate {
            service,
            timeout,
            json,
            format,
        } => {
            let timeout = parse_duration(timeout).map_err(|error| anyhow!("--timeout: {error}"))?;
            let status = client.service(service).await?.service;
            let Some(rollout) = status.active_rollout.or(status.last_rollout) else {
                bail!("{service} has no rollout to gate on");
            };
            let code = wait_for_rollout(client, &rollout.id, timeout, *json).await?;
            if format == "github" {
                let rollout = client.rollout(&rollout.id).await?.rollout;
                let outcome = if rollout.phase.exit_code().is_some() {
                    rollout.phase.as_str()
                } else {
                    "timed_out"
                };
                let summary = super::github::step_summary(&rollout, outcome, code);
                if !super::github::write_step_summary(&summary)? {
                    eprint!("{summary}");
                }
                for annotation in super::github::annotations(&rollout, outcome, code) {
                    println!("{annotation}");
                }
            }
            Ok(code)
        }
        _ => unreachable!("only rollout commands are sent here"),
    }
}

/// How a freeze's scope reads: a service's name, or "every service".
fn scope_name(scope: &str) -> &str {
    if scope == opsd::store::ALL_SERVICES {
        "every service"
    } else {
        scope
    }
}

fn parse_env(pairs: &[String], flag: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            let key = pair.chars().take(40).collect::<String>();
            bail!("{flag} {key:?}... must be KEY=VALUE");
        };
        if key.is_empty() {
            bail!("{flag} has an empty KEY in KEY=VALUE");
        }
        env.insert(key.to_string(), value.to_string());
    }
    Ok(env)
}

/// What `--plan` sends: a preset or plan name as it is, or the content of a plan file on this
/// machine as a plan document (opsd never reads a path its caller names).
fn plan_for_request(name_or_file: &str) -> anyhow::Result<PlanChoice> {
    let path = std::path::Path::new(name_or_file);
    if opsd::core::plan::preset(name_or_file).is_some() || !path.is_file() {
        return Ok(PlanChoice::Named(name_or_file.to_string()));
    }
    let plan = opsd::config::files::load_plan_file(path)?;
    Ok(PlanChoice::Document(opsd::core::plan::plan_document(&plan)))
}

/// Follows a rollout until its phase has an exit code or `timeout` passes (exit 3).
async fn wait_for_rollout(
    client: &Client,
    rollout_id: &str,
    timeout: Duration,
    json: bool,
) -> anyhow::Result<u8> {
    let started = Instant::now();
    let mut last_line = String::new();
    loop {
        let rollout = client.rollout(rollout_id).await?.rollout;
        let phase = rollout.phase.as_str();
        let line = format!(
            "{} {} → {}: {} at {} % — {}",
            rollout.service,
            rollout.stable_version,
            rollout.canary_version,
            phase,
            rollout.canary_weight_percent,
            rollout.summary
        );
        if !json && line != last_line {
            eprintln!("{line}");
            last_line = line;
        }
        if let Some(code) = rollout.phase.exit_code() {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"outcome": phase, "exit_code": code, "rollout": rollout})
                    )?
                );
            } else {
                println!("{}: {phase}", rollout.id);
            }
            return Ok(code);
        }
        if started.elapsed() >= timeout {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"outcome": "timed_out", "exit_code": 3, "rollout": rollout})
                    )?
                );
            } else {
                println!(
                    "timed out after {} s while the rollout was {phase}",
                    timeout.as_secs()
                );
            }
            return Ok(3);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_rollout_line(rollout: &RolloutView) {
    println!(
        "{}  {} → {}  {}  step {}/{} at {} %  {}",
        rollout.id,
        rollout.stable_version,
        rollout.canary_version,
        rollout.phase.as_str(),
        rollout.step,
        rollout.steps,
        rollout.canary_weight_percent,
        rollout.summary
    );
    if let Some(schema) = &rollout.state.schema {
        println!("  schema migrations: {}", schema.describe());
    }
}

fn print_status(status: &ServiceStatus) {
    println!(
        "{}  stable {}  public http://{}",
        status.service, status.stable_version, status.public_addr
    );
    if let Some(active) = &status.active_rollout {
        print!("  rollout: ");
        print_rollout_line(active);
        if let Some(waiting) = &active.waiting_for_window {
            println!("  {waiting}");
        }
        if let Some(decision) = active.decisions.last() {
            println!("  last decision: {} — {}", decision.kind, decision.summary);
        }
    } else if let Some(last) = &status.last_rollout {
        print!("  last rollout: ");
        print_rollout_line(last);
    } else {
        println!("  no rollouts yet");
    }
}

/// `leader: host:/var/lib/opsd (API 10.0.0.5:7070), epoch 3, since 2025-...`.
fn leader_line(leader: &opsd::control::LeaderView) -> String {
    format!(
        "leader: {} (API {}), epoch {}, since {}{}",
        leader.instance,
        leader.api,
        leader.epoch,
        leader.since,
        if leader.lapsed {
            " (lease lapsed: a follower takes over)"
        } else {
            ""
        }
    )
}
