//! DR drill decisions, pure: what a restored copy must match (integrity, per-table row counts at
//! snapshot time, app-level checks), how RTO and RPO are measured and judged against targets,
//! and whether a rollout's drill gate is open (which old snapshots retention removes is in
//! `core::retention`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::schedule::{is_overdue, Schedule};

/// Row count per table, by table name.
pub type TableCounts = BTreeMap<String, u64>;

/// What the source database held at the instant of a snapshot, taken inside the same
/// transaction (PostgreSQL's exported snapshot, SQLite's read transaction) so it matches the
/// snapshot exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceFingerprint {
    pub table_rows: TableCounts,
    /// The value of every check whose expectation is `source`, by check name.
    pub check_values: BTreeMap<String, String>,
}

/// An app-level invariant from a checks file: a query and what its value must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillCheck {
    pub name: String,
    /// A read-only query. One row with one column gives that value as text; anything else gives
    /// `sha256:<hex>` over every row, so `SELECT id, revision FROM ... ORDER BY id` is a checksum.
    pub sql: String,
    pub expect: CheckExpectation,
}

/// What a check's value must be on the restored copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckExpectation {
    /// Exactly this text (e.g. `0` for "no letter without a firm").
    Value(String),
    /// The value the source had at snapshot time.
    SameAsSource,
}

/// What a restored scratch copy contains, as read by the platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScratchInspection {
    /// Problems the engine's own integrity check reported (empty: intact).
    pub integrity_problems: Vec<String>,
    pub table_rows: TableCounts,
    /// Each check's value, or why it could not be read.
    pub check_values: BTreeMap<String, Result<String, String>>,
}

/// The verdict on one thing verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Passed,
    Failed,
    /// Could not be checked (the reason says why); never counts as passed evidence.
    NotChecked,
}

/// One line of a drill's verification report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationItem {
    pub name: String,
    pub status: ItemStatus,
    pub detail: String,
}

impl VerificationItem {
    fn new(name: impl Into<String>, status: ItemStatus, detail: impl Into<String>) -> Self {
        VerificationItem {
            name: name.into(),
            status,
            detail: detail.into(),
        }
    }
}

/// Compares a restored copy with the source at snapshot time. `source` is `None` when the
/// snapshot was not taken by opsd (nothing to compare counts with). `digest_matches` is whether
/// the snapshot file still has the digest recorded when it was taken (`None`: no file digest).
pub fn verify_restore(
    source: Option<&SourceFingerprint>,
    scratch: &ScratchInspection,
    checks: &[DrillCheck],
    digest_matches: Option<bool>,
) -> Vec<VerificationItem> {
    let mut items: Vec<VerificationItem> = digest_item(digest_matches).into_iter().collect();
    if scratch.integrity_problems.is_empty() {
        items.push(VerificationItem::new(
            "integrity",
            ItemStatus::Passed,
            "the engine's integrity check found no problem",
        ));
    } else {
        items.push(VerificationItem::new(
            "integrity",
            ItemStatus::Failed,
            scratch.integrity_problems.join("; "),
        ));
    }
    match source {
        Some(source) => {
            for (table, &expected) in &source.table_rows {
                let item_name = format!("rows in {table}");
                match scratch.table_rows.get(table) {
                    Some(&restored) if restored == expected => items.push(VerificationItem::new(
                        item_name,
                        ItemStatus::Passed,
                        format!("{restored} rows, as at snapshot time"),
                    )),
                    Some(&restored) => items.push(VerificationItem::new(
                        item_name,
                        ItemStatus::Failed,
                        format!(
                            "{restored} rows restored, {expected} at snapshot time ({})",
                            if restored < expected {
                                format!("{} lost", expected - restored)
                            } else {
                                format!("{} more", restored - expected)
                            }
                        ),
                    )),
                    None => items.push(VerificationItem::new(
                        item_name,
                        ItemStatus::Failed,
                        format!("the table is missing from the restore ({expected} rows at snapshot time)"),
                    )),
                }
            }
            for table in scratch.table_rows.keys() {
                if !source.table_rows.contains_key(table) {
                    items.push(VerificationItem::new(
                        format!("rows in {table}"),
                        ItemStatus::Failed,
                        "the restore has a table the source did not have at snapshot time",
                    ));
                }
            }
        }
        None => items.push(VerificationItem::new(
            "row counts",
            ItemStatus::NotChecked,
            "the snapshot was not taken by opsd, so the source's counts at snapshot time are unknown",
        )),
    }
    for check in checks {
        let item_name = format!("check {}", check.name);
        let restored = match scratch.check_values.get(&check.name) {
            Some(Ok(value)) => value,
            Some(Err(error)) => {
                items.push(VerificationItem::new(
                    item_name,
                    ItemStatus::Failed,
                    format!("the query failed on the restore: {error}"),
                ));
                continue;
            }
            None => {
                items.push(VerificationItem::new(
                    item_name,
                    ItemStatus::NotChecked,
                    "the platform could not run queries on the restore",
                ));
                continue;
            }
        };
        let expected = match &check.expect {
            CheckExpectation::Value(value) => Some(value.clone()),
            CheckExpectation::SameAsSource => {
                source.and_then(|source| source.check_values.get(&check.name).cloned())
            }
        };
        match expected {
            Some(expected) if &expected == restored => items.push(VerificationItem::new(
                item_name,
                ItemStatus::Passed,
                format!("{} as expected", abbreviate(restored)),
            )),
            Some(expected) => items.push(VerificationItem::new(
                item_name,
                ItemStatus::Failed,
                format!(
                    "{} on the restore, expected {}",
                    abbreviate(restored),
                    abbreviate(&expected)
                ),
            )),
            None => items.push(VerificationItem::new(
                item_name,
                ItemStatus::NotChecked,
                "no source value was recorded at snapshot time to compare with",
            )),
        }
    }
    items
}

/// The verification item for a snapshot file's digest (`None`: the platform keeps no digest).
pub fn digest_item(digest_matches: Option<bool>) -> Option<VerificationItem> {
    match digest_matches? {
        true => Some(VerificationItem::new(
            "snapshot digest",
            ItemStatus::Passed,
            "the snapshot's sha256 matches the one recorded when it was taken",
        )),
        false => Some(VerificationItem::new(
            "snapshot digest",
            ItemStatus::Failed,
            "the snapshot's sha256 differs from the one recorded when it was taken: it was \
             changed or truncated since",
        )),
    }
}

fn abbreviate(value: &str) -> String {
    if value.chars().count() > 24 {
        format!("{}…", value.chars().take(24).collect::<String>())
    } else {
        value.to_string()
    }
}

/// Rows written to the source after the snapshot: for each table, how many more rows it has now
/// than at snapshot time (tables that shrank count zero). What a restore from this snapshot
/// would lose.
pub fn write_gap_rows(at_snapshot: &TableCounts, now: &TableCounts) -> u64 {
    now.iter()
        .map(|(table, &rows)| rows.saturating_sub(at_snapshot.get(table).copied().unwrap_or(0)))
        .sum()
}

/// Recovery targets of one database (R-DR-2 in docs/requirements.md, database corruption: RTO
/// < 2 h, RPO < 1 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrillTargets {
    pub rto: Duration,
    pub rpo: Duration,
}

impl Default for DrillTargets {
    fn default() -> Self {
        DrillTargets {
            rto: Duration::from_secs(2 * 3600),
            rpo: Duration::from_secs(3600),
        }
    }
}

/// How long one phase of a drill took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTiming {
    pub phase: String,
    pub millis: u64,
}

/// What a drill measured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillMeasurement {
    /// Drill start to verified restore.
    pub rto_ms: Option<u64>,
    pub phases: Vec<PhaseTiming>,
    /// Age of the newest restorable point when the drill started (before the drill's own
    /// snapshot); `None` when there was none.
    pub rpo_ms: Option<u64>,
    /// Rows written to the source after the restored snapshot was taken.
    pub write_gap_rows: Option<u64>,
}

/// How a drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillOutcome {
    Passed,
    Failed,
    /// opsd stopped mid-drill; its scratch target was removed at the next start.
    Interrupted,
}

impl DrillOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            DrillOutcome::Passed => "passed",
            DrillOutcome::Failed => "failed",
            DrillOutcome::Interrupted => "interrupted",
        }
    }
}

/// The verdict of a finished drill: failed when any verification item failed or a target was
/// missed, with one reason per problem.
pub fn judge_drill(
    verification: &[VerificationItem],
    measurement: &DrillMeasurement,
    targets: &DrillTargets,
) -> (DrillOutcome, Vec<String>) {
    let mut reasons: Vec<String> = verification
        .iter()
        .filter(|item| item.status == ItemStatus::Failed)
        .map(|item| format!("{}: {}", item.name, item.detail))
        .collect();
    match measurement.rto_ms {
        Some(rto) if rto > targets.rto.as_millis() as u64 => reasons.push(format!(
            "RTO {} is over the target {}",
            human_millis(rto),
            human_millis(targets.rto.as_millis() as u64)
        )),
        Some(_) => {}
        None => reasons.push("the restore was never verified, so there is no RTO".into()),
    }
    if let Some(rpo) = measurement.rpo_ms {
        if rpo > targets.rpo.as_millis() as u64 {
            reasons.push(format!(
                "RPO {} (age of the newest restorable point) is over the target {}",
                human_millis(rpo),
                human_millis(targets.rpo.as_millis() as u64)
            ));
        }
    }
    let outcome = if reasons.is_empty() {
        DrillOutcome::Passed
    } else {
        DrillOutcome::Failed
    };
    (outcome, reasons)
}

/// `1 h 02 min`, `3.4 s`, `850 ms`.
pub fn human_millis(millis: u64) -> String {
    if millis < 1000 {
        format!("{millis} ms")
    } else if millis < 60_000 {
        format!("{:.1} s", millis as f64 / 1000.0)
    } else if millis < 3_600_000 {
        format!("{} min {:02} s", millis / 60_000, (millis / 1000) % 60)
    } else {
        format!("{} h {:02} min", millis / 3_600_000, (millis / 60_000) % 60)
    }
}

/// What a rollout does while its database's drill gate is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateMode {
    /// The deploy is refused unless overridden.
    Refuse,
    /// The rollout is created but held before its canary starts, until an operator resumes it.
    Hold,
    /// No gate.
    Off,
}

/// The newest drill of a database, as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestDrill {
    pub id: String,
    pub started_at: NaiveDateTime,
    pub outcome: Option<DrillOutcome>,
    pub reasons: Vec<String>,
}

/// Whether a rollout may start as far as DR drills go: `Err(reason)` while the newest finished
/// drill failed, or while the schedule fired more than `grace` ago with no drill since.
pub fn drill_gate(
    database: &str,
    latest_finished: Option<&LatestDrill>,
    schedule: &Schedule,
    now: NaiveDateTime,
    grace: chrono::Duration,
) -> Result<(), String> {
    if let Some(drill) = latest_finished {
        if drill.outcome == Some(DrillOutcome::Failed) {
            return Err(format!(
                "the newest DR drill of {database} ({}, {}) failed: {}",
                drill.id,
                drill.started_at.format("%Y-%m-%d %H:%M UTC"),
                drill.reasons.join("; ")
            ));
        }
    }
    let last_run = latest_finished.map(|drill| drill.started_at);
    if let Some(due) = is_overdue(schedule, last_run, now, grace) {
        return Err(match latest_finished {
            Some(drill) => format!(
                "the newest DR drill of {database} ({}) is stale: the schedule `{}` called for one \
                 at {} and none ran since",
                drill.started_at.format("%Y-%m-%d %H:%M UTC"),
                schedule.as_str(),
                due.format("%Y-%m-%d %H:%M UTC")
            ),
            None => format!(
                "{database} has never had a DR drill; the schedule `{}` called for one at {}",
                schedule.as_str(),
                due.format("%Y-%m-%d %H:%M UTC")
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> TableCounts {
        pairs
            .iter()
            .map(|(table, rows)| (table.to_string(), *rows))
            .collect()
    }

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn checks() -> Vec<DrillCheck> {
        vec![
            DrillCheck {
                name: "letters without a firm".into(),
                sql: "SELECT count(*) FROM letters l LEFT JOIN firms f ON f.id = l.firm_id WHERE f.id IS NULL".into(),
                expect: CheckExpectation::Value("0".into()),
            },
            DrillCheck {
                name: "letter checksum".into(),
                sql: "SELECT id, current_revision FROM letters ORDER BY id".into(),
                expect: CheckExpectation::SameAsSource,
            },
        ]
    }

    fn source() -> SourceFingerprint {
        SourceFingerprint {
            table_rows: counts(&[("firms", 3), ("letters", 40)]),
            check_values: [("letter checksum".to_string(), "sha256:abc".to_string())].into(),
        }
    }

    fn faithful_scratch() -> ScratchInspection {
        ScratchInspection {
            integrity_problems: Vec::new(),
            table_rows: counts(&[("firms", 3), ("letters", 40)]),
            check_values: [
                ("letters without a firm".to_string(), Ok("0".to_string())),
                ("letter checksum".to_string(), Ok("sha256:abc".to_string())),
            ]
            .into(),
        }
    }

    #[test]
    fn a_faithful_restore_passes_every_item() {
        let items = verify_restore(Some(&source()), &faithful_scratch(), &checks(), Some(true));
        assert!(
            items.iter().all(|item| item.status == ItemStatus::Passed),
            "{items:#?}"
        );
        assert_eq!(items.len(), 6);
    }

    #[test]
    fn a_restore_that_loses_rows_fails_and_says_how_many() {
        let mut scratch = faithful_scratch();
        scratch.table_rows.insert("letters".into(), 35);
        let items = verify_restore(Some(&source()), &scratch, &checks(), None);
        let letters = items
            .iter()
            .find(|item| item.name == "rows in letters")
            .unwrap();
        assert_eq!(letters.status, ItemStatus::Failed);
        assert_eq!(
            letters.detail,
            "35 rows restored, 40 at snapshot time (5 lost)"
        );
        let (outcome, reasons) = judge_drill(
            &items,
            &DrillMeasurement {
                rto_ms: Some(1000),
                ..Default::default()
            },
            &DrillTargets::default(),
        );
        assert_eq!(outcome, DrillOutcome::Failed);
        assert!(reasons[0].contains("5 lost"), "{reasons:?}");
    }

    #[test]
    fn missing_tables_broken_integrity_and_changed_checksums_fail() {
        let mut scratch = faithful_scratch();
        scratch.table_rows.remove("firms");
        scratch.integrity_problems = vec!["row 3 missing from index letters_by_firm".into()];
        scratch
            .check_values
            .insert("letter checksum".into(), Ok("sha256:def".into()));
        scratch
            .check_values
            .insert("letters without a firm".into(), Err("no such table".into()));
        let items = verify_restore(Some(&source()), &scratch, &checks(), Some(false));
        let failed: Vec<&str> = items
            .iter()
            .filter(|item| item.status == ItemStatus::Failed)
            .map(|item| item.name.as_str())
            .collect();
        assert_eq!(
            failed,
            vec![
                "snapshot digest",
                "integrity",
                "rows in firms",
                "check letters without a firm",
                "check letter checksum"
            ]
        );
    }

    #[test]
    fn without_a_source_fingerprint_counts_are_not_checked_never_passed() {
        let items = verify_restore(None, &faithful_scratch(), &checks(), None);
        let counts = items.iter().find(|item| item.name == "row counts").unwrap();
        assert_eq!(counts.status, ItemStatus::NotChecked);
        let checksum = items
            .iter()
            .find(|item| item.name == "check letter checksum")
            .unwrap();
        assert_eq!(checksum.status, ItemStatus::NotChecked);
    }

    #[test]
    fn targets_judge_rto_and_rpo() {
        let targets = DrillTargets::default();
        let within = DrillMeasurement {
            rto_ms: Some(90 * 60 * 1000),
            rpo_ms: Some(30 * 60 * 1000),
            ..Default::default()
        };
        assert_eq!(judge_drill(&[], &within, &targets).0, DrillOutcome::Passed);
        let slow = DrillMeasurement {
            rto_ms: Some(3 * 3600 * 1000),
            rpo_ms: Some(2 * 3600 * 1000),
            ..Default::default()
        };
        let (outcome, reasons) = judge_drill(&[], &slow, &targets);
        assert_eq!(outcome, DrillOutcome::Failed);
        assert_eq!(
            reasons,
            vec![
                "RTO 3 h 00 min is over the target 2 h 00 min".to_string(),
                "RPO 2 h 00 min (age of the newest restorable point) is over the target 1 h 00 min"
                    .to_string()
            ]
        );
        // No earlier restorable point: RPO unmeasured, not a failure by itself.
        let first = DrillMeasurement {
            rto_ms: Some(500),
            rpo_ms: None,
            ..Default::default()
        };
        assert_eq!(judge_drill(&[], &first, &targets).0, DrillOutcome::Passed);
    }

    #[test]
    fn write_gap_counts_rows_added_since_the_snapshot() {
        let at_snapshot = counts(&[("letters", 40), ("firms", 3)]);
        let now = counts(&[("letters", 47), ("firms", 2), ("documents", 5)]);
        assert_eq!(write_gap_rows(&at_snapshot, &now), 12);
    }

    #[test]
    fn the_gate_closes_on_a_failed_or_stale_drill() {
        let quarterly = Schedule::parse("@quarterly").unwrap();
        let grace = chrono::Duration::hours(1);
        let now = at("2026-11-22 12:00");
        let never = drill_gate("steno", None, &quarterly, now, grace).unwrap_err();
        assert!(never.contains("never had a DR drill"), "{never}");
        let passed = LatestDrill {
            id: "d1".into(),
            started_at: at("2026-10-02 09:00"),
            outcome: Some(DrillOutcome::Passed),
            reasons: vec![],
        };
        assert_eq!(
            drill_gate("steno", Some(&passed), &quarterly, now, grace),
            Ok(())
        );
        let stale = LatestDrill {
            started_at: at("2026-09-15 09:00"),
            ..passed.clone()
        };
        let error = drill_gate("steno", Some(&stale), &quarterly, now, grace).unwrap_err();
        assert!(error.contains("stale"), "{error}");
        assert!(error.contains("2026-10-01 00:00"), "{error}");
        let failed = LatestDrill {
            outcome: Some(DrillOutcome::Failed),
            reasons: vec!["rows in letters: 35 rows restored, 40 at snapshot time".into()],
            ..passed
        };
        let error = drill_gate("steno", Some(&failed), &quarterly, now, grace).unwrap_err();
        assert!(error.contains("failed: rows in letters"), "{error}");
    }

    #[test]
    fn human_durations_read_naturally() {
        assert_eq!(human_millis(850), "850 ms");
        assert_eq!(human_millis(3400), "3.4 s");
        assert_eq!(human_millis(125_000), "2 min 05 s");
        assert_eq!(human_millis(3_720_000), "1 h 02 min");
    }
}
