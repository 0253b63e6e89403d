//! Schema changes across a rollout (expand/contract): what a release reports of its migrations,
//! which of them are new against the stable release, and whether the rollout may go on.
//!
//! A release lists its migrations with their class (`steno migrations --json`). The ones the
//! canary has and the stable release lacks are the rollout's schema change:
//! - **expand** migrations are applied by opsd as an explicit phase after the pre-deployment
//!   snapshot and before the canary starts; the stable release must stay healthy on the expanded
//!   schema, and it can still restart on it after a rollback;
//! - **contract** migrations would break the stable release, so a rollout carrying one is refused
//!   unless its plan says `contract_migrations: after_watch`: then they run only once the new
//!   release is promoted after its watch and the previous release is stopped.
//!
//! Pure: the JSON comes in as text, decisions go out as data.

use serde::{Deserialize, Serialize};

/// The most migrations a release may report (a bound on what opsd reads and stores).
pub const MAX_REPORTED_MIGRATIONS: usize = 10_000;

/// What a migration does to releases already running on the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationClass {
    Expand,
    Contract,
}

impl MigrationClass {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationClass::Expand => "expand",
            MigrationClass::Contract => "contract",
        }
    }
}

/// One migration a release knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    pub version: i64,
    pub name: String,
    pub class: MigrationClass,
}

impl Migration {
    /// `9001 rehearsal_expand (expand)`.
    pub fn describe(&self) -> String {
        format!("{} {} ({})", self.version, self.name, self.class.as_str())
    }
}

/// Names a list of migrations in one line.
pub fn describe_all(migrations: &[Migration]) -> String {
    migrations
        .iter()
        .map(Migration::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Deserialize)]
struct Report {
    migrations: Vec<Migration>,
}

/// Reads a release's report, `{"migrations": [{"version", "name", "class"}, ...]}`: every
/// version once, names of at most 200 characters, at most [`MAX_REPORTED_MIGRATIONS`].
pub fn parse_report(text: &str) -> Result<Vec<Migration>, String> {
    let report: Report = serde_json::from_str(text.trim()).map_err(|error| {
        format!(
            "the release's migration report is not {{\"migrations\": [{{\"version\", \"name\", \"class\": \"expand\"|\"contract\"}}]}}: {error}"
        )
    })?;
    if report.migrations.len() > MAX_REPORTED_MIGRATIONS {
        return Err(format!(
            "the release reports {} migrations; at most {MAX_REPORTED_MIGRATIONS} are read",
            report.migrations.len()
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for migration in &report.migrations {
        if migration.name.is_empty() || migration.name.chars().count() > 200 {
            return Err(format!(
                "migration {} has an empty name or one longer than 200 characters",
                migration.version
            ));
        }
        if !seen.insert(migration.version) {
            return Err(format!(
                "migration version {} is reported twice",
                migration.version
            ));
        }
    }
    Ok(report.migrations)
}

/// When a plan lets contract migrations run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractMigrations {
    /// A release with a new contract migration is refused while an older release serves.
    #[default]
    Refuse,
    /// They run after the promotion (after the watch), once the previous release is stopped.
    AfterWatch,
}

/// Where a group of migrations of a rollout is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum MigrationRun {
    /// Not run yet.
    Pending,
    /// Applied at this time (ms since the epoch).
    Applied(i64),
    /// The run failed; the text says how.
    Failed(String),
    /// Will never run: the rollout did not end promoted.
    Skipped,
}

impl MigrationRun {
    pub fn describe(&self) -> String {
        match self {
            MigrationRun::Pending => "pending".into(),
            MigrationRun::Applied(_) => "applied".into(),
            MigrationRun::Failed(reason) => format!("failed: {reason}"),
            MigrationRun::Skipped => "not run (the rollout was not promoted)".into(),
        }
    }
}

/// The migrations a rollout brings, and how far they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaChange {
    /// New expand migrations: applied before the canary starts.
    pub expand: Vec<Migration>,
    pub expand_run: MigrationRun,
    /// New contract migrations: applied after the promotion, only with a plan that allows it.
    pub contract: Vec<Migration>,
    pub contract_run: MigrationRun,
}

impl SchemaChange {
    /// Whether the canary may start: no expand migrations, or they were applied.
    pub fn canary_may_start(&self) -> bool {
        self.expand.is_empty() || matches!(self.expand_run, MigrationRun::Applied(_))
    }

    /// Whether expand migrations are still to be run before the canary starts.
    pub fn expand_due(&self) -> bool {
        !self.expand.is_empty() && self.expand_run == MigrationRun::Pending
    }

    /// One line: `expand 9001 a (expand): applied; contract 9002 b (contract): pending`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.expand.is_empty() {
            parts.push(format!(
                "expand {}: {}",
                describe_all(&self.expand),
                self.expand_run.describe()
            ));
        }
        if !self.contract.is_empty() {
            parts.push(format!(
                "contract {}: {}",
                describe_all(&self.contract),
                self.contract_run.describe()
            ));
        }
        parts.join("; ")
    }

    /// Whether contract migrations are still to be run after a promotion.
    pub fn contract_due(&self) -> bool {
        !self.contract.is_empty() && self.contract_run == MigrationRun::Pending
    }
}

/// The canary's migrations that the stable release does not have, split by class, or the
/// refusal of a rollout that would run a contract migration under a release that cannot take it.
/// `None` when nothing is new.
pub fn plan_schema_change(
    stable: &[Migration],
    canary: &[Migration],
    canary_version: &str,
    stable_version: &str,
    contract_migrations: ContractMigrations,
) -> Result<Option<SchemaChange>, String> {
    let new: Vec<&Migration> = canary
        .iter()
        .filter(|migration| {
            !stable
                .iter()
                .any(|known| known.version == migration.version)
        })
        .collect();
    let pick = |class: MigrationClass| -> Vec<Migration> {
        new.iter()
            .filter(|migration| migration.class == class)
            .map(|migration| (*migration).clone())
            .collect()
    };
    let expand = pick(MigrationClass::Expand);
    let contract = pick(MigrationClass::Contract);
    if !contract.is_empty() && contract_migrations == ContractMigrations::Refuse {
        return Err(format!(
            "{canary_version} carries contract migration{} {} that {stable_version}, which serves \
             now, cannot run after; a rollout would break it and make a rollback impossible. Ship \
             it as expand/contract: deploy with a plan that says `contract_migrations: after_watch` \
             (they then run once {canary_version} is promoted after its watch and \
             {stable_version} is stopped), or first release the expand part alone",
            if contract.len() == 1 { "" } else { "s" },
            describe_all(&contract)
        ));
    }
    if expand.is_empty() && contract.is_empty() {
        return Ok(None);
    }
    Ok(Some(SchemaChange {
        expand,
        expand_run: MigrationRun::Pending,
        contract,
        contract_run: MigrationRun::Pending,
    }))
}

/// Whether `target` can run on the database `current` may have contracted: the contract
/// migrations `current` knows that `target` does not. A rollback to `target` is refused then.
pub fn contract_migrations_unknown_to(
    current: &[Migration],
    target: &[Migration],
) -> Vec<Migration> {
    current
        .iter()
        .filter(|migration| migration.class == MigrationClass::Contract)
        .filter(|migration| {
            !target
                .iter()
                .any(|known| known.version == migration.version)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migration(version: i64, class: MigrationClass) -> Migration {
        Migration {
            version,
            name: format!("m{version}"),
            class,
        }
    }

    #[test]
    fn a_report_is_read_and_checked() {
        let text = r#"{"migrations":[{"version":1,"name":"initial","class":"expand"},{"version":9002,"name":"drop","class":"contract"}]}"#;
        let migrations = parse_report(text).unwrap();
        assert_eq!(migrations[1].describe(), "9002 drop (contract)");
        assert!(parse_report("steno 1.0")
            .unwrap_err()
            .contains("not {\"migrations\""));
        assert!(
            parse_report(r#"{"migrations":[{"version":1,"name":"a","class":"shrink"}]}"#).is_err()
        );
        let twice = r#"{"migrations":[{"version":1,"name":"a","class":"expand"},{"version":1,"name":"b","class":"expand"}]}"#;
        assert!(parse_report(twice).unwrap_err().contains("reported twice"));
    }

    #[test]
    fn new_expand_migrations_run_before_the_canary_and_nothing_new_changes_nothing() {
        let stable = vec![migration(1, MigrationClass::Expand)];
        let canary = vec![
            migration(1, MigrationClass::Expand),
            migration(2, MigrationClass::Expand),
        ];
        let change = plan_schema_change(&stable, &canary, "v2", "v1", ContractMigrations::Refuse)
            .unwrap()
            .unwrap();
        assert_eq!(change.expand, vec![migration(2, MigrationClass::Expand)]);
        assert!(change.expand_due() && !change.canary_may_start() && !change.contract_due());
        assert_eq!(
            plan_schema_change(&canary, &canary, "v3", "v2", ContractMigrations::Refuse),
            Ok(None)
        );
        // A rollback to an older release brings nothing new.
        assert_eq!(
            plan_schema_change(&canary, &stable, "v1", "v2", ContractMigrations::Refuse),
            Ok(None)
        );
    }

    #[test]
    fn a_contract_migration_is_refused_unless_the_plan_runs_it_after_the_watch() {
        let stable = vec![migration(1, MigrationClass::Expand)];
        let canary = vec![
            migration(1, MigrationClass::Expand),
            migration(9001, MigrationClass::Expand),
            migration(9002, MigrationClass::Contract),
        ];
        let refusal = plan_schema_change(&stable, &canary, "v3", "v1", ContractMigrations::Refuse)
            .unwrap_err();
        assert!(
            refusal.contains("contract migration 9002 m9002 (contract)"),
            "{refusal}"
        );
        assert!(
            refusal.contains("contract_migrations: after_watch"),
            "{refusal}"
        );
        let change =
            plan_schema_change(&stable, &canary, "v3", "v1", ContractMigrations::AfterWatch)
                .unwrap()
                .unwrap();
        assert_eq!(change.expand.len(), 1);
        assert_eq!(
            change.contract,
            vec![migration(9002, MigrationClass::Contract)]
        );
        assert!(change.contract_due());
    }

    #[test]
    fn a_rollback_past_a_contract_migration_is_named() {
        let newer = vec![
            migration(1, MigrationClass::Expand),
            migration(2, MigrationClass::Contract),
        ];
        let older = vec![migration(1, MigrationClass::Expand)];
        assert_eq!(
            contract_migrations_unknown_to(&newer, &older),
            vec![migration(2, MigrationClass::Contract)]
        );
        assert!(contract_migrations_unknown_to(&older, &newer).is_empty());
    }
}
