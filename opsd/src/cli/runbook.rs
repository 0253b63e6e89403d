//! `opsd runbook list | show | run | check`. A run executes the steps here, on the operator's
//! machine (opsd steps call the same API with the same token), asks before dangerous steps,
//! stops at the first failure, and sends the record of the run to the daemon, which keeps it in
//! the audit log and on the timeline.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use chrono::Utc;
use opsd::core::duration::format_duration;
use opsd::core::runbook::run::{RunOutcome, RunbookRun, StepOutcome, StepRecord};
use opsd::core::runbook::{parse, Runbook, Step, BUILT_IN_PARAMETERS, DEFAULT_STEP_TIMEOUT};
use opsd::ops::runbook_steps::{command_line, run_step, StepEnvironment};
use opsd::ops::runbooks::{find, runbook_files, RunbookFile};

use super::args::{Cli, RunbookAction, RunbookSource};
use super::client::Client;
use super::load_config;

/// Runs a `runbook` subcommand; its exit code.
pub async fn run(cli: &Cli, action: &RunbookAction) -> anyhow::Result<u8> {
    match action {
        RunbookAction::List { source } => {
            let files = files_of(cli, source)?;
            println!("{:<26} {:>5}  TITLE", "RUNBOOK", "STEPS");
            for file in &files {
                match parse(&file.name, &file.text) {
                    Ok(runbook) => println!(
                        "{:<26} {:>5}  {}",
                        runbook.name,
                        runbook.steps.len(),
                        runbook.title
                    ),
                    Err(problems) => println!(
                        "{:<26} {:>5}  (invalid: {} problem(s); see `opsd runbook check`)",
                        file.name,
                        "-",
                        problems.len()
                    ),
                }
            }
            if let Some(file) = files.first() {
                println!("\nfrom {}", origin_dir(file));
            }
            Ok(0)
        }
        RunbookAction::Show { name, source } => {
            let files = files_of(cli, source)?;
            let runbook = parsed(find(&files, name)?)?;
            show(&runbook);
            Ok(0)
        }
        RunbookAction::Check { source } => {
            let files = files_of(cli, source)?;
            Ok(super::runbook_check::check(&files))
        }
        RunbookAction::Run {
            name,
            params,
            dry_run,
            from,
            yes,
            source,
        } => {
            let files = files_of(cli, source)?;
            let runbook = parsed(find(&files, name)?)?;
            let run = RunRequest {
                runbook: &runbook,
                params,
                from: from.as_deref(),
                yes: *yes,
            };
            if *dry_run {
                dry_run_of(cli, &run).await
            } else {
                execute(cli, &run).await
            }
        }
    }
}

fn files_of(cli: &Cli, source: &RunbookSource) -> anyhow::Result<Vec<RunbookFile>> {
    let beside_config = cli
        .config
        .parent()
        .map(|dir| dir.join("runbooks"))
        .unwrap_or_else(|| PathBuf::from("runbooks"));
    runbook_files(source.dir.as_deref(), &beside_config)
}

fn origin_dir(file: &RunbookFile) -> String {
    if file.origin.starts_with("built-in") {
        "the runbooks built into opsd".into()
    } else {
        std::path::Path::new(&file.origin)
            .parent()
            .map(|dir| dir.display().to_string())
            .unwrap_or_default()
    }
}

fn parsed(file: &RunbookFile) -> anyhow::Result<Runbook> {
    parse(&file.name, &file.text).map_err(|problems| {
        anyhow!(
            "{} is not a valid runbook:\n{}",
            file.origin,
            problems
                .iter()
                .map(|problem| format!("  {problem}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn show(runbook: &Runbook) {
    println!("{} ({})", runbook.title, runbook.name);
    if !runbook.summary.is_empty() {
        println!("{}", runbook.summary);
    }
    println!("\nparameters:");
    if runbook.params.is_empty() {
        println!("  none");
    }
    for param in &runbook.params {
        let default = match &param.default {
            Some(default) => format!("default {default:?}"),
            None => "required".into(),
        };
        println!("  {:<12} {default}: {}", param.name, param.help);
    }
    println!("\nsteps:");
    for step in &runbook.steps {
        let mut notes = vec![step.action.kind().to_string()];
        if step.dangerous {
            notes.push("DANGEROUS: asks first".into());
        }
        if step.timeout != DEFAULT_STEP_TIMEOUT {
            notes.push(format!("timeout {}", format_duration(step.timeout)));
        }
        if !step.allowed_exits.is_empty() {
            notes.push(format!("also passes on exit {:?}", step.allowed_exits));
        }
        println!(
            "  {}. {} [{}] ({})",
            step.number,
            step.title,
            step.slug,
            notes.join(", ")
        );
        for line in step.action.describe().lines() {
            println!("       {line}");
        }
    }
}

/// What `opsd runbook run` was asked.
struct RunRequest<'a> {
    runbook: &'a Runbook,
    params: &'a [String],
    from: Option<&'a str>,
    yes: bool,
}

/// The parameters' values (built-in ones included) and the index of the first step to run. A
/// local service's public address comes from the running opsd when it answers (it may have
/// picked the port), else from opsd.yaml.
async fn prepare(
    cli: &Cli,
    run: &RunRequest<'_>,
    client: Option<&Client>,
) -> anyhow::Result<(BTreeMap<String, String>, usize)> {
    let mut given = BTreeMap::new();
    for pair in run.params {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--param {pair:?}: write NAME=VALUE"))?;
        if given.insert(name.to_string(), value.to_string()).is_some() {
            bail!("--param {name} is given twice");
        }
    }
    let mut built_in = BTreeMap::new();
    for name in BUILT_IN_PARAMETERS {
        if let Some(value) = given.remove(name) {
            built_in.insert(name.to_string(), value);
        }
    }
    let mut values = run.runbook.values(&given).map_err(|error| anyhow!(error))?;
    let config = load_config(&cli.config)?;
    let api = cli
        .server
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    built_in.entry("opsd_api".into()).or_insert(api);
    if let Some(service) = values.get("service") {
        let service = config
            .service_named(service)
            .map_err(|error| anyhow!("--param service: {error}"))?;
        if service.aws.is_none() && !built_in.contains_key("public_url") {
            let served = match client {
                Some(client) => client
                    .service(&service.name)
                    .await
                    .ok()
                    .map(|answer| answer.service.public_addr),
                None => None,
            };
            let address = served.unwrap_or_else(|| service.public_addr.to_string());
            built_in.insert("public_url".into(), format!("http://{address}"));
        }
    }
    let uses_public_url = run.runbook.steps.iter().any(|step| {
        step.action.describe().contains("{public_url}")
            || matches!(&step.action, opsd::core::runbook::StepAction::Http { contains: Some(text), .. } if text.contains("{public_url}"))
    });
    if uses_public_url && !built_in.contains_key("public_url") {
        bail!("{} checks the service's public address, which opsd.yaml does not give for a service on AWS; pass --param public_url=https://...", run.runbook.name);
    }
    values.extend(built_in);
    let first = match run.from {
        Some(from) => run
            .runbook
            .step_index(from)
            .map_err(|error| anyhow!(error))?,
        None => 0,
    };
    Ok((values, first))
}

async fn dry_run_of(cli: &Cli, run: &RunRequest<'_>) -> anyhow::Result<u8> {
    let client = Client::from_cli(cli).ok();
    let (values, first) = prepare(cli, run, client.as_ref()).await?;
    let total = run.runbook.steps.len();
    println!(
        "{} (dry run: nothing runs, nothing is recorded)",
        run.runbook.title
    );
    for step in &run.runbook.steps {
        let skipped = if step.number <= first {
            " (skipped: before --from)"
        } else {
            ""
        };
        let dangerous = if step.dangerous { " [dangerous]" } else { "" };
        println!(
            "\nstep {}/{total}: {}{dangerous}{skipped}",
            step.number, step.title
        );
        let command = command_line(step, &values).map_err(|error| anyhow!(error))?;
        for line in command.lines() {
            println!("    {line}");
        }
    }
    Ok(0)
}

async fn execute(cli: &Cli, run: &RunRequest<'_>) -> anyhow::Result<u8> {
    let client = Client::from_cli(cli);
    let (values, first) = prepare(cli, run, client.as_ref().ok()).await?;
    let mut env = vec![("OPSD_CONFIG".to_string(), cli.config.display().to_string())];
    if let Some(api) = values.get("opsd_api") {
        env.push(("OPSD_SERVER".into(), api.clone()));
    }
    match &client {
        Ok(client) => env.push(("OPSD_TOKEN".into(), client.token().to_string())),
        Err(error) => eprintln!("warning: this run cannot be recorded: {error:#}"),
    }
    let environment = StepEnvironment {
        opsd: std::env::current_exe()?,
        env,
        values: values.clone(),
    };
    let started_at = Utc::now();
    let total = run.runbook.steps.len();
    println!("{}: {total} steps", run.runbook.title);
    let mut records = Vec::new();
    let mut outcome = RunOutcome::Succeeded;
    for step in &run.runbook.steps {
        let command = command_line(step, &values).unwrap_or_else(|error| error);
        let mut record = StepRecord {
            number: step.number,
            title: step.title.clone(),
            kind: step.action.kind().to_string(),
            command: command.clone(),
            outcome: StepOutcome::NotRun,
            exit_code: None,
            duration_ms: 0,
            message: None,
            output_tail: String::new(),
        };
        if step.number <= first {
            record.outcome = StepOutcome::Skipped;
            records.push(record);
            continue;
        }
        if outcome != RunOutcome::Succeeded {
            records.push(record);
            continue;
        }
        println!("\n==> step {}/{total}: {}", step.number, step.title);
        for line in command.lines() {
            println!("    $ {line}");
        }
        if step.dangerous && !run.yes {
            if let Err(why) = confirm(step) {
                println!("    ✗ not run: {why}");
                record.outcome = StepOutcome::Declined;
                record.message = Some(why);
                outcome = RunOutcome::Declined;
                records.push(record);
                continue;
            }
        }
        let result = run_step(step, &environment).await;
        record.exit_code = result.exit_code;
        record.duration_ms = u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX);
        record.output_tail = result.output;
        record.message = result.message.clone();
        let took = format_duration(result.duration);
        if result.passed {
            record.outcome = StepOutcome::Passed;
            println!("    ✓ passed in {took}");
        } else if result.interrupted {
            record.outcome = StepOutcome::Interrupted;
            outcome = RunOutcome::Interrupted;
            println!("    ✗ interrupted after {took}");
        } else {
            record.outcome = StepOutcome::Failed;
            outcome = RunOutcome::Failed;
            println!(
                "    ✗ failed after {took}: {}",
                result.message.as_deref().unwrap_or("failed")
            );
        }
        records.push(record);
    }
    let record = RunbookRun {
        runbook: run.runbook.name.clone(),
        title: run.runbook.title.clone(),
        params: values
            .into_iter()
            .filter(|(name, _)| !BUILT_IN_PARAMETERS.contains(&name.as_str()))
            .collect(),
        started_at,
        finished_at: Utc::now(),
        outcome,
        steps: records,
    };
    println!();
    report(&record);
    if let Ok(client) = &client {
        match client.record_runbook_run(&record).await {
            Ok(()) => println!("recorded on the timeline and in the audit log"),
            Err(error) => eprintln!("warning: the run could not be recorded: {error:#}"),
        }
    }
    Ok(match outcome {
        RunOutcome::Succeeded => 0,
        RunOutcome::Failed => 2,
        RunOutcome::Declined | RunOutcome::Interrupted => 3,
    })
}

/// Asks before a dangerous step; the reason it may not run, if it may not.
fn confirm(step: &Step) -> Result<(), String> {
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "step {} ({}) is dangerous and there is no terminal to ask; run again with --yes (and --from {}) once you are sure",
            step.number, step.slug, step.number
        ));
    }
    print!("    this step is dangerous. Type yes to run it: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim() == "yes" {
        Ok(())
    } else {
        Err(format!(
            "declined; continue later with --from {}",
            step.number
        ))
    }
}

fn report(run: &RunbookRun) {
    match run.outcome {
        RunOutcome::Succeeded => println!(
            "{}: every step passed ({} skipped)",
            run.runbook,
            run.steps
                .iter()
                .filter(|step| step.outcome == StepOutcome::Skipped)
                .count()
        ),
        _ => {
            if let Some(step) = run.steps.iter().find(|step| {
                matches!(
                    step.outcome,
                    StepOutcome::Failed | StepOutcome::Declined | StepOutcome::Interrupted
                )
            }) {
                println!(
                    "{}: {} at step {} ({}): {}",
                    run.runbook,
                    run.outcome.as_str(),
                    step.number,
                    step.title,
                    step.message.as_deref().unwrap_or("")
                );
                println!(
                    "the steps after it did not run; fix the cause and continue with `opsd runbook run {} --from {}`",
                    run.runbook, step.number
                );
            }
        }
    }
}
