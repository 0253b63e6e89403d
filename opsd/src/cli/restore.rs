//! `opsd restore`: a client of the running opsd. It asks for a preview first (the snapshot
//! chosen, what stops, what is lost), asks the operator to type the database's name unless
//! `--yes`, then restores and prints the report. Exit 0 restored and verified, 2 restored but a
//! verification item failed.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use opsd::control::{RestorePreview, RestoreRequest};
use opsd::core::drill::ItemStatus;
use opsd::core::restore::{RestoreOutcome, RestoreReport};

use super::args::Command;
use super::client::Client;

pub async fn run(client: &Client, command: &Command) -> anyhow::Result<u8> {
    let Command::Restore {
        database,
        snapshot,
        latest,
        before,
        to,
        reason,
        yes,
        dry_run,
        override_rollout,
        json,
    } = command
    else {
        bail!("not a restore command");
    };
    let mut request = RestoreRequest {
        snapshot: snapshot.clone(),
        latest: *latest,
        before: before.clone(),
        to: to.clone(),
        reason: Some(reason.clone()),
        override_rollout: *override_rollout,
        dry_run: true,
    };
    let answer = client.restore(database, &request).await?;
    let preview: RestorePreview = serde_json::from_value(answer["preview"].clone())
        .context("opsd answered the preview in an unexpected shape")?;
    if *dry_run {
        if *json {
            println!("{}", serde_json::to_string_pretty(&preview)?);
        } else {
            print!("{}", describe_preview(&preview));
        }
        return Ok(0);
    }
    if !*yes {
        eprint!("{}", describe_preview(&preview));
        confirm(database)?;
    }
    eprintln!(
        "restoring {} from snapshot {}{}…",
        preview.database,
        preview.snapshot_id,
        if preview.releases_stopped.is_empty() {
            String::new()
        } else {
            format!(
                " ({} stop until it ends)",
                preview.releases_stopped.join(", ")
            )
        }
    );
    request.dry_run = false;
    let answer = client.restore(database, &request).await?;
    let report: RestoreReport = serde_json::from_value(answer["restore"].clone())
        .context("opsd answered the restore in an unexpected shape")?;
    if *json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", describe_report(&report));
    }
    Ok(match report.outcome {
        RestoreOutcome::Restored => 0,
        RestoreOutcome::RestoredUnverified => 2,
    })
}

/// Asks for the database's name on a terminal; anything else changes nothing.
fn confirm(database: &str) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("a restore needs confirmation: run it in a terminal, or pass --yes; nothing was changed");
    }
    eprint!("Type the database's name ({database}) to restore it: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != database {
        bail!("not confirmed; nothing was changed");
    }
    Ok(())
}

fn describe_preview(preview: &RestorePreview) -> String {
    let mut text = format!(
        "restore {} ({})\n  snapshot {} taken {} ({})\n  into {}\n",
        preview.database,
        preview.describe,
        preview.snapshot_id,
        preview.snapshot_taken_at,
        preview.snapshot_reason,
        preview.target
    );
    if !preview.releases_stopped.is_empty() {
        text.push_str(&format!(
            "  stops {} during the restore, then starts them again\n",
            preview.releases_stopped.join(", ")
        ));
    }
    match &preview.rows_lost {
        Some(lost) if lost.is_empty() => text.push_str("  no row was written since the snapshot\n"),
        Some(lost) => text.push_str(&format!(
            "  loses the rows written since: {}\n",
            lost.iter()
                .map(|(table, rows)| format!("{table} {rows}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => text.push_str("  the rows written since cannot be counted here\n"),
    }
    text.push_str("  a safety snapshot of the current state is taken first\n");
    text
}

fn describe_report(report: &RestoreReport) -> String {
    let mut text = format!(
        "{} {}: snapshot {} (taken {}) restored into {}\n  RTO {} ms; safety snapshot {}\n",
        report.database,
        match report.outcome {
            RestoreOutcome::Restored => "restored and verified",
            RestoreOutcome::RestoredUnverified => "restored, VERIFICATION FAILED",
        },
        report.snapshot_id,
        report.snapshot_taken_at,
        report.location,
        report.rto_ms,
        report.safety_snapshot_id
    );
    match &report.rows_lost {
        Some(lost) => text.push_str(&format!(
            "  rows lost (written after the snapshot): {}{}\n",
            report.total_rows_lost().unwrap_or(0),
            if lost.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    lost.iter()
                        .map(|(table, rows)| format!("{table} {rows}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )),
        None => text.push_str("  rows lost: not counted (the platform cannot read the tables)\n"),
    }
    if !report.releases_restarted.is_empty() {
        text.push_str(&format!(
            "  restarted: {}\n",
            report.releases_restarted.join(", ")
        ));
    }
    for item in &report.verification {
        let mark = match item.status {
            ItemStatus::Passed => "ok  ",
            ItemStatus::Failed => "FAIL",
            ItemStatus::NotChecked => "n/c ",
        };
        text.push_str(&format!("  {mark} {}: {}\n", item.name, item.detail));
    }
    for step in &report.next_steps {
        text.push_str(&format!("  next: {step}\n"));
    }
    text
}
