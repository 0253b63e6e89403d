//! `services.<name>.migrations`: how opsd asks a release for its schema migrations and runs them
//! around a rollout (see `core::schema`). Each entry is the arguments of the release's own
//! program, run with the release's environment. Steno's defaults apply to the default Steno
//! command on the local platform; another command gets none unless given.

use std::time::Duration;

use super::raw::RawMigrations;
use super::yaml::duration_field;
use crate::core::config_error::ConfigError;

/// The arguments that list, expand and contract a release's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationCommands {
    /// Prints `{"migrations": [{"version", "name", "class"}]}` without touching the database.
    pub list: Vec<String>,
    /// Applies the pending migrations before the first contract one.
    pub expand: Vec<String>,
    /// Applies every pending migration.
    pub contract: Vec<String>,
    /// How long one of them may run.
    pub timeout: Duration,
}

impl MigrationCommands {
    /// Steno's: `migrations --json`, `migrate --class expand`, `migrate --class all`.
    pub fn steno() -> MigrationCommands {
        let words = |words: &[&str]| words.iter().map(|word| word.to_string()).collect();
        MigrationCommands {
            list: words(&["migrations", "--json"]),
            expand: words(&["migrate", "--class", "expand"]),
            contract: words(&["migrate", "--class", "all"]),
            timeout: Duration::from_secs(300),
        }
    }
}

/// The service's migration commands: the block given, Steno's for the default Steno command on
/// the local platform, or none. `enabled: false` turns them off.
pub(super) fn validate_migrations(
    raw: Option<RawMigrations>,
    default_steno_command: bool,
    on_aws: bool,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<MigrationCommands>, ConfigError> {
    let Some(raw) = raw else {
        return Ok((default_steno_command && !on_aws).then(MigrationCommands::steno));
    };
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    if on_aws {
        return Err(error(
            "migrations",
            "opsd runs a release's migrations on the local platform only; on aws run them from \
             the pipeline before the deploy, or set enabled: false"
                .into(),
        ));
    }
    let defaults = MigrationCommands::steno();
    let words = |field: &str, given: Option<Vec<String>>, default: Vec<String>| match given {
        None if default_steno_command => Ok(default),
        None => Err(error(
            &format!("migrations.{field}"),
            "is needed for a service with its own command (the release program's arguments)".into(),
        )),
        Some(words) if words.is_empty() || words.iter().any(|word| word.is_empty()) => Err(error(
            &format!("migrations.{field}"),
            "must be non-empty arguments".into(),
        )),
        Some(words) => Ok(words),
    };
    Ok(Some(MigrationCommands {
        list: words("list", raw.list, defaults.list)?,
        expand: words("expand", raw.expand, defaults.expand)?,
        contract: words("contract", raw.contract, defaults.contract)?,
        timeout: duration_field(
            raw.timeout.as_deref(),
            "migrations.timeout",
            defaults.timeout,
            error,
        )?,
    }))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn parse(services: &str) -> Result<Config, ConfigError> {
        Config::parse(
            "opsd.yaml",
            &format!("services:\n  steno:\n{services}"),
            Path::new("/srv"),
            Path::new("/usr/bin/steno"),
        )
    }

    #[test]
    fn the_default_steno_command_has_stenos_migrations_and_serves_with_contract_ones_pending() {
        let config = parse("    initial_version: v1\n").unwrap();
        let steno = &config.services["steno"];
        assert_eq!(steno.migrations, Some(MigrationCommands::steno()));
        assert!(steno
            .command
            .ends_with(&["--migrate".into(), "expand".into()]));
        let off = parse("    migrations: {enabled: false}\n").unwrap();
        assert_eq!(off.services["steno"].migrations, None);
        assert!(!off.services["steno"]
            .command
            .contains(&"--migrate".to_string()));
    }

    #[test]
    fn another_command_has_no_migrations_unless_it_names_all_three() {
        let custom = parse("    command: [my-app, \"{port}\"]\n").unwrap();
        assert_eq!(custom.services["steno"].migrations, None);
        let partial =
            parse("    command: [my-app, \"{port}\"]\n    migrations: {list: [schema, --json]}\n")
                .unwrap_err()
                .to_string();
        assert!(
            partial.contains("services.steno.migrations.expand"),
            "{partial}"
        );
        let full = parse(
            "    command: [my-app, \"{port}\"]\n    migrations: {list: [schema], expand: [up, --expand], contract: [up], timeout: 30s}\n",
        )
        .unwrap();
        let commands = full.services["steno"].migrations.clone().unwrap();
        assert_eq!(commands.expand, vec!["up", "--expand"]);
        assert_eq!(commands.timeout, Duration::from_secs(30));
    }

    #[test]
    fn opsd_runs_no_migrations_on_aws() {
        let aws = "    platform: aws\n    aws: {region: us-east-1, function_name: steno}\n";
        assert_eq!(parse(aws).unwrap().services["steno"].migrations, None);
        let error = parse(&format!("{aws}    migrations: {{timeout: 1m}}\n"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("local platform only"), "{error}");
    }
}
