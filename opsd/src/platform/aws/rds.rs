//! Snapshots and drill restores of an RDS instance: `CreateDBSnapshot` of the configured
//! instance, `RestoreDBInstanceFromDBSnapshot` into a scratch instance `<instance>-drill-<id>`,
//! a look at the scratch instance, and `DeleteDBInstance` of it afterwards.
//!
//! What this adapter can and cannot verify: it has AWS credentials but no database credentials,
//! so it cannot read the tables of the source or of the scratch copy. A snapshot therefore has no
//! fingerprint, the inspection reports no row counts and no check values (the drill marks those
//! "not checked"), and the integrity check is what RDS itself tells: the scratch instance became
//! `available` with the source's engine and allocated storage.
//!
//! Every AWS call goes through [`super::retry::call_with_retries`] (the SDK's own retries are
//! off) and every failure is a [`PlatformError`] naming the RDS operation and the snapshot or
//! instance. invariant: no AWS SDK type leaves this file.
//!
//! Differences of the moto emulator the tests run against, compared with real RDS:
//! - snapshots and restored instances are `available` at once (real RDS takes minutes), and a
//!   deleted instance is gone at once (real RDS shows `deleting` for minutes), so the tests do not
//!   exercise a long wait or its timeout against AWS; the waiting itself is unit tested;
//! - `DescribeDBSnapshots` ignores `MaxRecords`/`Marker` and returns everything in one page;
//! - `CreateDBInstance` immediately takes an automated snapshot `rds:<instance>-<minute>`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};

use super::retry::{call_with_retries, AwsCallError, RetryPolicy};
use crate::config::RdsDatabaseConfig;
use crate::core::drill::{DrillCheck, ScratchInspection, TableCounts};
use crate::platform::snapshots::{
    identifier_part, DatabaseSnapshots, RestoreTarget, RestoredTarget, Snapshot, TakenSnapshot,
};
use crate::platform::PlatformError;

use super::rds_names::{
    drill_suffix, is_scratch_with_prefix, rds_identifier, restore_phase, scratch_prefix_of,
    snapshot_phase, Phase, DRILL_ID_CHARS, INSTANCE_ID_MAX_CHARS,
};
use super::rds_wait::Wait;

/// The tag every snapshot and scratch instance opsd creates carries.
const MANAGED_BY_TAG: (&str, &str) = ("managed-by", "opsd");
/// The tag that marks a scratch instance of a drill.
const DRILL_TAG: (&str, &str) = ("opsd-drill", "true");
/// The tag that marks an instance `opsd restore` made.
const RESTORE_TAG: (&str, &str) = ("opsd-restore", "true");
/// The longest DB snapshot identifier RDS accepts.
const SNAPSHOT_ID_MAX_CHARS: usize = 255;
/// The start of every snapshot id opsd takes; only those are deleted by retention.
const OPSD_SNAPSHOT_PREFIX: &str = "opsd-";
/// Records asked for per page of a `Describe…` call (RDS allows 20 to 100).
const PAGE_SIZE: i32 = 100;
/// The error code of a `Describe…`/`Delete…` call on an instance that does not exist.
const INSTANCE_NOT_FOUND: &str = "DBInstanceNotFound";
/// The error code of a call on a snapshot that does not exist.
const SNAPSHOT_NOT_FOUND: &str = "DBSnapshotNotFound";
/// The error code of `DeleteDBInstance` on an instance in a state that cannot be deleted (among
/// others: already `deleting`).
const INVALID_INSTANCE_STATE: &str = "InvalidDBInstanceState";

/// One RDS instance and how opsd snapshots it and restores drills of it.
#[derive(Debug, Clone)]
pub struct RdsSnapshots {
    /// The database's name in `opsd.yaml`, for logs.
    name: String,
    region: String,
    /// The source instance's identifier, as configured.
    instance: String,
    client: aws_sdk_rds::Client,
    /// The scratch instance's class; `None` takes the source's.
    instance_class: Option<String>,
    wait_timeout: Duration,
    poll_interval: Duration,
    retry: RetryPolicy,
}

/// What opsd reads off a DB instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct InstanceFacts {
    identifier: String,
    status: String,
    engine: Option<String>,
    /// GiB.
    allocated_storage: Option<i32>,
    instance_class: Option<String>,
    subnet_group: Option<String>,
    vpc_security_groups: Vec<String>,
    /// `address:port`, once RDS reports one.
    endpoint: Option<String>,
}

impl InstanceFacts {
    fn of(instance: &DbInstance) -> InstanceFacts {
        InstanceFacts {
            identifier: instance
                .db_instance_identifier()
                .unwrap_or_default()
                .to_string(),
            status: instance
                .db_instance_status()
                .unwrap_or("unknown")
                .to_string(),
            engine: instance.engine().map(str::to_string),
            allocated_storage: instance.allocated_storage(),
            instance_class: instance.db_instance_class().map(str::to_string),
            subnet_group: instance
                .db_subnet_group()
                .and_then(|group| group.db_subnet_group_name())
                .map(str::to_string),
            vpc_security_groups: instance
                .vpc_security_groups()
                .iter()
                .filter_map(|group| group.vpc_security_group_id())
                .map(str::to_string)
                .collect(),
            endpoint: instance.endpoint().and_then(|endpoint| {
                let address = endpoint.address()?;
                Some(match endpoint.port() {
                    Some(port) => format!("{address}:{port}"),
                    None => address.to_string(),
                })
            }),
        }
    }
}

/// A snapshot as listed, with its RDS status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListedSnapshot {
    snapshot: Snapshot,
    status: String,
}

/// Reads a listed snapshot; `None` without an identifier. `taken_at_ms` is the snapshot's
/// `SnapshotCreateTime`, else `fallback_taken_at_ms` (RDS sets the time once the snapshot runs).
fn listed_snapshot(snapshot: &DbSnapshot, fallback_taken_at_ms: i64) -> Option<ListedSnapshot> {
    let id = snapshot.db_snapshot_identifier()?.to_string();
    let taken_at_ms = snapshot
        .snapshot_create_time()
        .and_then(|time| time.to_millis().ok())
        .unwrap_or(fallback_taken_at_ms);
    let location = snapshot
        .db_snapshot_arn()
        .map(str::to_string)
        .unwrap_or_else(|| format!("rds snapshot {id}"));
    Some(ListedSnapshot {
        snapshot: Snapshot {
            id,
            taken_at_ms,
            location,
            size_bytes: snapshot
                .full_snapshot_size_in_bytes()
                .and_then(|bytes| u64::try_from(bytes).ok()),
            sha256: None,
        },
        status: snapshot.status().unwrap_or("unknown").to_string(),
    })
}

/// What differs between a scratch instance and its source, as integrity problems.
fn integrity_problems(scratch: &InstanceFacts, source: &InstanceFacts) -> Vec<String> {
    let mut problems = Vec::new();
    if restore_phase(&scratch.status) != Phase::Ready {
        problems.push(format!(
            "the scratch instance {} is {}, not available",
            scratch.identifier, scratch.status
        ));
    }
    let engine = |facts: &InstanceFacts| facts.engine.clone().unwrap_or_else(|| "unknown".into());
    if !engine(scratch).eq_ignore_ascii_case(&engine(source)) {
        problems.push(format!(
            "the scratch instance {} runs engine {}, the source {} runs {}",
            scratch.identifier,
            engine(scratch),
            source.identifier,
            engine(source)
        ));
    }
    if scratch.allocated_storage != source.allocated_storage {
        let storage = |facts: &InstanceFacts| {
            facts
                .allocated_storage
                .map(|gib| format!("{gib} GiB"))
                .unwrap_or_else(|| "an unknown size".into())
        };
        problems.push(format!(
            "the scratch instance {} has {} of allocated storage, the source {} has {}",
            scratch.identifier,
            storage(scratch),
            source.identifier,
            storage(source)
        ));
    }
    problems
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

fn tag(pair: (&str, &str)) -> Tag {
    Tag::builder().key(pair.0).value(pair.1).build()
}

pub(super) fn failed(operation: impl Into<String>, message: impl Into<String>) -> PlatformError {
    PlatformError::Operation {
        operation: operation.into(),
        message: message.into(),
    }
}

/// An AWS call that failed for good, as `RDS <Operation> of <resource> failed: <code>: <message>`.
fn rds_failure(error: AwsCallError) -> PlatformError {
    let code = error
        .code()
        .map(|code| format!("{code}: "))
        .unwrap_or_default();
    let attempts = if error.attempts > 1 {
        format!(" (after {} attempts)", error.attempts)
    } else {
        String::new()
    };
    failed(
        format!("{} of {}", error.operation, error.resource),
        format!("{code}{}{attempts}", error.facts.message),
    )
}

impl RdsSnapshots {
    /// `RestoreDBInstanceFromDBSnapshot` of `snapshot` into a new instance `identifier` with the
    /// source's instance class (or `rds.instance_class`), subnet group and security groups,
    /// tagged as opsd's drill or restore; waits until it is `available` and returns its facts.
    async fn restore_instance(
        &self,
        snapshot: &Snapshot,
        identifier: &str,
        drill: bool,
    ) -> Result<InstanceFacts, PlatformError> {
        let operation = format!(
            "RDS RestoreDBInstanceFromDBSnapshot of snapshot {} into {identifier}",
            snapshot.id
        );
        let source = self
            .describe_instance(&self.instance)
            .await?
            .ok_or_else(|| {
                failed(
                    &operation,
                    format!(
                        "the source instance {} does not exist in {}",
                        self.instance, self.region
                    ),
                )
            })?;
        let instance_class = self
            .instance_class
            .clone()
            .or_else(|| source.instance_class.clone())
            .ok_or_else(|| {
                failed(
                    &operation,
                    format!(
                        "RDS reports no instance class for {}; set rds.instance_class",
                        self.instance
                    ),
                )
            })?;
        let security_groups =
            (!source.vpc_security_groups.is_empty()).then(|| source.vpc_security_groups.clone());
        let tags = vec![
            tag(MANAGED_BY_TAG),
            tag(if drill { DRILL_TAG } else { RESTORE_TAG }),
        ];
        call_with_retries(
            &self.retry,
            "RDS RestoreDBInstanceFromDBSnapshot",
            &format!("snapshot {} into {identifier}", snapshot.id),
            || {
                self.client
                    .restore_db_instance_from_db_snapshot()
                    .db_snapshot_identifier(&snapshot.id)
                    .db_instance_identifier(identifier)
                    .db_instance_class(&instance_class)
                    .set_db_subnet_group_name(source.subnet_group.clone())
                    .set_vpc_security_group_ids(security_groups.clone())
                    .multi_az(false)
                    .publicly_accessible(false)
                    .deletion_protection(false)
                    .set_tags(Some(tags.clone()))
                    .send()
            },
        )
        .await
        .map_err(rds_failure)?;
        tracing::info!(database = %self.name, snapshot = %snapshot.id, instance = %identifier, drill, "RDS restore started");
        let what = format!(
            "RDS instance {identifier} restored from snapshot {}",
            snapshot.id
        );
        let wait = self.wait();
        loop {
            // Right after the restore call RDS may not list the new instance yet.
            let facts = self.describe_instance(identifier).await?;
            let status = match &facts {
                Some(facts) => facts.status.clone(),
                None => "not listed yet".to_string(),
            };
            match restore_phase(&status) {
                Phase::Ready => {
                    if let Some(facts) = facts {
                        return Ok(facts);
                    }
                }
                Phase::Failed => {
                    return Err(failed(
                        format!("waiting for {what}"),
                        format!("RDS reports the instance as {status}"),
                    ))
                }
                Phase::Waiting => wait.pause(&what, &status).await?,
            }
        }
    }

    /// The RDS instance `config.instance` of the database `name`, reached with credentials from
    /// the standard AWS chain (environment, profile, SSO, instance role, …), the configured region
    /// and optional endpoint URL, and the SDK's own retries off (opsd's retry policy decides).
    pub async fn connect(name: &str, config: &RdsDatabaseConfig) -> RdsSnapshots {
        let shared = super::shared_sdk_config(&config.region, config.endpoint_url.as_deref()).await;
        RdsSnapshots::with_sdk_config(name, config, &shared)
    }

    /// Like [`RdsSnapshots::connect`] on top of an already loaded AWS configuration (its
    /// credentials and timeouts; region, endpoint and retries come from `config`).
    fn with_sdk_config(
        name: &str,
        config: &RdsDatabaseConfig,
        shared: &aws_config::SdkConfig,
    ) -> RdsSnapshots {
        let mut builder = aws_sdk_rds::config::Builder::from(shared)
            .region(aws_config::Region::new(config.region.clone()))
            .retry_config(aws_config::retry::RetryConfig::disabled());
        if let Some(endpoint) = &config.endpoint_url {
            builder = builder.endpoint_url(endpoint);
        }
        RdsSnapshots {
            name: name.to_string(),
            region: config.region.clone(),
            instance: config.instance.clone(),
            client: aws_sdk_rds::Client::from_conf(builder.build()),
            instance_class: config.instance_class.clone(),
            wait_timeout: config.wait_timeout,
            poll_interval: config.poll_interval,
            retry: config.retry,
        }
    }

    fn scratch_prefix(&self) -> String {
        scratch_prefix_of(&self.instance)
    }

    fn is_scratch_name(&self, name: &str) -> bool {
        is_scratch_with_prefix(&self.scratch_prefix(), name)
    }

    fn wait(&self) -> Wait {
        Wait::start(self.wait_timeout, self.poll_interval)
    }

    /// The instance `identifier`, or `None` when RDS does not know it.
    async fn describe_instance(
        &self,
        identifier: &str,
    ) -> Result<Option<InstanceFacts>, PlatformError> {
        let described = call_with_retries(
            &self.retry,
            "RDS DescribeDBInstances",
            &format!("instance {identifier}"),
            || {
                self.client
                    .describe_db_instances()
                    .db_instance_identifier(identifier)
                    .send()
            },
        )
        .await;
        match described {
            Ok(output) => Ok(output
                .db_instances()
                .iter()
                .map(InstanceFacts::of)
                .find(|facts| facts.identifier.eq_ignore_ascii_case(identifier))),
            Err(error) if error.code() == Some(INSTANCE_NOT_FOUND) => Ok(None),
            Err(error) => Err(rds_failure(error)),
        }
    }

    /// Every instance of the account in this region, page by page.
    async fn all_instances(&self) -> Result<Vec<InstanceFacts>, PlatformError> {
        let mut instances = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let output = call_with_retries(
                &self.retry,
                "RDS DescribeDBInstances",
                &format!("the instances of {}", self.region),
                || {
                    self.client
                        .describe_db_instances()
                        .max_records(PAGE_SIZE)
                        .set_marker(marker.clone())
                        .send()
                },
            )
            .await
            .map_err(rds_failure)?;
            instances.extend(output.db_instances().iter().map(InstanceFacts::of));
            match output.marker().filter(|next| !next.is_empty()) {
                // A marker repeated would page forever; RDS never does that.
                Some(next) if marker.as_deref() != Some(next) => marker = Some(next.to_string()),
                _ => return Ok(instances),
            }
        }
    }

    /// The snapshot `snapshot_id`, or `None` when RDS does not list it (yet).
    async fn describe_snapshot(
        &self,
        snapshot_id: &str,
        fallback_taken_at_ms: i64,
    ) -> Result<Option<ListedSnapshot>, PlatformError> {
        let described = call_with_retries(
            &self.retry,
            "RDS DescribeDBSnapshots",
            &format!("snapshot {snapshot_id}"),
            || {
                self.client
                    .describe_db_snapshots()
                    .db_snapshot_identifier(snapshot_id)
                    .send()
            },
        )
        .await;
        match described {
            Ok(output) => Ok(output
                .db_snapshots()
                .iter()
                .filter_map(|snapshot| listed_snapshot(snapshot, fallback_taken_at_ms))
                .find(|listed| listed.snapshot.id.eq_ignore_ascii_case(snapshot_id))),
            Err(error) if error.code() == Some(SNAPSHOT_NOT_FOUND) => Ok(None),
            Err(error) => Err(rds_failure(error)),
        }
    }
}

#[async_trait::async_trait]
impl DatabaseSnapshots for RdsSnapshots {
    fn describe(&self) -> String {
        format!("RDS instance {} in {}", self.instance, self.region)
    }

    /// `<instance>-drill-<first 12 letters and digits of the drill id>`, lower case, within
    /// RDS's 63 characters: an instance identifier longer than 44 characters is shortened in the
    /// scratch name, so two such instances that share their first 44 characters would share
    /// scratch names too (keep instance identifiers that are drilled distinct within that).
    fn scratch_name(&self, drill_id: &str) -> String {
        format!("{}{}", self.scratch_prefix(), drill_suffix(drill_id))
    }

    /// `CreateDBSnapshot` tagged `managed-by=opsd`, then waits until it is `available`. The
    /// snapshot id is made an RDS identifier (lower case, other characters become hyphens); the
    /// returned [`Snapshot::id`] is that identifier. The fingerprint is `None`: opsd has no
    /// database credentials for RDS and cannot read the source's tables.
    async fn take_snapshot(
        &self,
        snapshot_id: &str,
        _checks: &[DrillCheck],
    ) -> Result<TakenSnapshot, PlatformError> {
        let identifier = rds_identifier(snapshot_id, SNAPSHOT_ID_MAX_CHARS).map_err(|reason| {
            failed(
                format!("RDS CreateDBSnapshot of instance {}", self.instance),
                format!("the snapshot id {snapshot_id:?} {reason}"),
            )
        })?;
        let requested_at_ms = now_ms();
        call_with_retries(
            &self.retry,
            "RDS CreateDBSnapshot",
            &format!("instance {} as snapshot {identifier}", self.instance),
            || {
                self.client
                    .create_db_snapshot()
                    .db_instance_identifier(&self.instance)
                    .db_snapshot_identifier(&identifier)
                    .tags(tag(MANAGED_BY_TAG))
                    .send()
            },
        )
        .await
        .map_err(rds_failure)?;
        tracing::info!(database = %self.name, instance = %self.instance, snapshot = %identifier, "RDS snapshot requested");
        let what = format!("RDS snapshot {identifier} of instance {}", self.instance);
        let wait = self.wait();
        loop {
            let listed = self.describe_snapshot(&identifier, requested_at_ms).await?;
            let status = match &listed {
                Some(listed) => listed.status.clone(),
                None => "not listed yet".to_string(),
            };
            match (listed, snapshot_phase(&status)) {
                (Some(listed), Phase::Ready) => {
                    return Ok(TakenSnapshot {
                        snapshot: listed.snapshot,
                        fingerprint: None,
                    })
                }
                (Some(_), Phase::Failed) => {
                    return Err(failed(
                        format!("waiting for {what}"),
                        format!("RDS reports the snapshot as {status}"),
                    ))
                }
                _ => wait.pause(&what, &status).await?,
            }
        }
    }

    /// The `available` snapshots of the instance, manual and automated, newest first.
    async fn snapshots(&self) -> Result<Vec<Snapshot>, PlatformError> {
        let mut snapshots = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let output = call_with_retries(
                &self.retry,
                "RDS DescribeDBSnapshots",
                &format!("instance {}", self.instance),
                || {
                    self.client
                        .describe_db_snapshots()
                        .db_instance_identifier(&self.instance)
                        .max_records(PAGE_SIZE)
                        .set_marker(marker.clone())
                        .send()
                },
            )
            .await
            .map_err(rds_failure)?;
            snapshots.extend(
                output
                    .db_snapshots()
                    .iter()
                    .filter_map(|snapshot| listed_snapshot(snapshot, 0))
                    .filter(|listed| snapshot_phase(&listed.status) == Phase::Ready)
                    .map(|listed| listed.snapshot),
            );
            match output.marker().filter(|next| !next.is_empty()) {
                Some(next) if marker.as_deref() != Some(next) => marker = Some(next.to_string()),
                _ => break,
            }
        }
        snapshots.sort_by(|a, b| {
            b.taken_at_ms
                .cmp(&a.taken_at_ms)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(snapshots)
    }

    /// RDS keeps no digest opsd could compare.
    async fn digest_matches(
        &self,
        _snapshot: &Snapshot,
        _recorded_sha256: Option<&str>,
    ) -> Result<Option<bool>, PlatformError> {
        Ok(None)
    }

    /// `RestoreDBInstanceFromDBSnapshot` into the scratch instance, tagged `managed-by=opsd` and
    /// `opsd-drill=true`, then waits until it is `available`. The scratch instance gets the
    /// configured instance class (else the source's), the source's subnet group and VPC security
    /// groups (so it sits where the source does), is single-AZ, not publicly accessible and
    /// without deletion protection. Only this instance's scratch names are accepted, so every
    /// instance a restore creates is one [`DatabaseSnapshots::drop_scratch`] removes.
    async fn restore(&self, snapshot: &Snapshot, scratch: &str) -> Result<(), PlatformError> {
        let operation = format!(
            "RDS RestoreDBInstanceFromDBSnapshot of snapshot {} into {scratch}",
            snapshot.id
        );
        if !self.is_scratch_name(scratch) {
            return Err(failed(
                operation,
                format!(
                    "refused: {scratch} is not a scratch name of instance {} ({}<drill id>)",
                    self.instance,
                    self.scratch_prefix()
                ),
            ));
        }
        self.restore_instance(snapshot, scratch, true)
            .await
            .map(|_| ())
    }

    /// Compares the scratch instance with the source as RDS describes them: integrity problems
    /// when the scratch instance is not `available`, or its engine or allocated storage differ
    /// from the source's (storage the source gained since the snapshot by autoscaling shows up
    /// here too). No row counts and no check values: reading them needs database credentials,
    /// which this adapter does not have yet, so the drill reports those as not checked.
    async fn inspect(
        &self,
        scratch: &str,
        _checks: &[DrillCheck],
    ) -> Result<ScratchInspection, PlatformError> {
        let scratch_facts = self.describe_instance(scratch).await?.ok_or_else(|| {
            failed(
                format!("inspecting RDS instance {scratch}"),
                "the scratch instance does not exist",
            )
        })?;
        let mut inspection = ScratchInspection::default();
        match self.describe_instance(&self.instance).await? {
            Some(source) => inspection
                .integrity_problems
                .extend(integrity_problems(&scratch_facts, &source)),
            None => inspection.integrity_problems.push(format!(
                "the source instance {} does not exist, so the scratch instance cannot be \
                 compared with it",
                self.instance
            )),
        }
        Ok(inspection)
    }

    /// opsd cannot read the tables of an RDS instance (no database credentials).
    async fn source_table_rows(&self) -> Result<Option<TableCounts>, PlatformError> {
        Ok(None)
    }

    /// `DeleteDBInstance` without a final snapshot and with its automated backups, then waits
    /// until RDS no longer lists the instance. Names that are not this instance's scratch names
    /// are refused before any AWS call; an instance that does not exist counts as removed.
    ///
    /// Once RDS has the instance `deleting`, the deletion cannot be undone and finishes on its
    /// own, so when it is still `deleting` after `rds.wait_timeout` this returns `Ok` with a
    /// warning rather than failing the drill; [`DatabaseSnapshots::leftover_scratches`] lists
    /// the instance until it is gone, and removing it again is harmless.
    async fn drop_scratch(&self, scratch: &str) -> Result<(), PlatformError> {
        let operation = format!("RDS DeleteDBInstance of instance {scratch}");
        if !self.is_scratch_name(scratch) {
            return Err(failed(
                operation,
                format!(
                    "refused: {scratch} is not a scratch instance of {} ({}<drill id>)",
                    self.instance,
                    self.scratch_prefix()
                ),
            ));
        }
        let deleted = call_with_retries(
            &self.retry,
            "RDS DeleteDBInstance",
            &format!("instance {scratch}"),
            || {
                self.client
                    .delete_db_instance()
                    .db_instance_identifier(scratch)
                    .skip_final_snapshot(true)
                    .delete_automated_backups(true)
                    .send()
            },
        )
        .await;
        match deleted {
            Ok(_) => {
                tracing::info!(database = %self.name, scratch = %scratch, "RDS scratch instance deletion started");
            }
            Err(error) if error.code() == Some(INSTANCE_NOT_FOUND) => return Ok(()),
            Err(error) if error.code() == Some(INVALID_INSTANCE_STATE) => {
                // Already being deleted is fine; any other state is the caller's to know.
                match self.describe_instance(scratch).await? {
                    None => return Ok(()),
                    Some(facts) if facts.status.eq_ignore_ascii_case("deleting") => {}
                    Some(facts) => {
                        return Err(failed(
                            operation,
                            format!(
                                "the instance is {} and RDS refuses to delete it now: {}",
                                facts.status, error.facts.message
                            ),
                        ))
                    }
                }
            }
            Err(error) => return Err(rds_failure(error)),
        }
        let what = format!("RDS instance {scratch} to be deleted");
        let wait = self.wait();
        loop {
            let Some(facts) = self.describe_instance(scratch).await? else {
                return Ok(());
            };
            if wait.timed_out() {
                if !facts.status.eq_ignore_ascii_case("deleting") {
                    return Err(wait.timeout_error(&what, &facts.status));
                }
                tracing::warn!(
                    database = %self.name,
                    scratch = %scratch,
                    waited = ?self.wait_timeout,
                    "RDS scratch instance is still deleting after rds.wait_timeout; RDS finishes \
                     the deletion on its own"
                );
                return Ok(());
            }
            wait.sleep().await;
        }
    }

    /// Instances whose identifier starts with `<instance>-drill-`, in any state.
    async fn leftover_scratches(&self) -> Result<Vec<String>, PlatformError> {
        let prefix = self.scratch_prefix();
        let mut names: Vec<String> = self
            .all_instances()
            .await?
            .into_iter()
            .map(|facts| facts.identifier)
            .filter(|identifier| identifier.to_ascii_lowercase().starts_with(&prefix))
            .collect();
        names.sort();
        Ok(names)
    }

    /// RDS restores a snapshot only into a new instance: `--to` names it, or it is
    /// `<instance>-restore-<id>`. It must not exist yet. The service is pointed at it by the
    /// operator (its endpoint is in the next steps).
    async fn restore_production(
        &self,
        snapshot: &Snapshot,
        target: &RestoreTarget,
        restore_id: &str,
    ) -> Result<RestoredTarget, PlatformError> {
        let operation = format!("restore of RDS snapshot {}", snapshot.id);
        let wanted = match target {
            RestoreTarget::New(name) => name.clone(),
            RestoreTarget::InPlace => {
                let mut base = identifier_part(&self.instance, '-');
                base.truncate(INSTANCE_ID_MAX_CHARS - "-restore-".len() - DRILL_ID_CHARS);
                format!(
                    "{}-restore-{}",
                    base.trim_end_matches('-'),
                    drill_suffix(restore_id)
                )
            }
        };
        let identifier = rds_identifier(&wanted, INSTANCE_ID_MAX_CHARS)
            .map_err(|reason| failed(&operation, format!("{wanted:?} {reason}")))?;
        if identifier != wanted {
            return Err(failed(
                &operation,
                format!("{wanted:?} is not an RDS instance identifier; {identifier:?} would be"),
            ));
        }
        if self.describe_instance(&identifier).await?.is_some() {
            return Err(failed(
                &operation,
                format!("the instance {identifier} exists; a new target must not"),
            ));
        }
        let facts = self.restore_instance(snapshot, &identifier, false).await?;
        let endpoint = facts
            .endpoint
            .unwrap_or_else(|| "(RDS reports no endpoint yet)".to_string());
        Ok(RestoredTarget {
            location: format!("RDS instance {identifier} at {endpoint}"),
            next_steps: vec![
                format!(
                    "RDS cannot restore over an instance: point the service at {identifier} \
                     (its database host is {endpoint}; Steno: the host in DATABASE_URL) and \
                     deploy it"
                ),
                format!(
                    "once the service runs on {identifier}, delete or keep {} as evidence; \
                     databases.<name>.rds.instance in opsd.yaml should then name {identifier}",
                    self.instance
                ),
            ],
            target: RestoreTarget::New(identifier),
        })
    }

    /// The restored instance compared with the source as RDS describes them (no row counts:
    /// opsd has no database credentials for RDS).
    async fn inspect_restored(
        &self,
        target: &RestoreTarget,
        checks: &[DrillCheck],
    ) -> Result<ScratchInspection, PlatformError> {
        match target {
            RestoreTarget::New(identifier) => self.inspect(identifier, checks).await,
            RestoreTarget::InPlace => Err(failed(
                "inspecting a restored RDS instance",
                "RDS restores into a new instance; name it",
            )),
        }
    }

    /// `DeleteDBSnapshot` of a snapshot opsd took (its id starts with `opsd-`); others are
    /// refused before any AWS call. A snapshot that no longer exists counts as deleted.
    async fn delete_snapshot(&self, snapshot: &Snapshot) -> Result<(), PlatformError> {
        let operation = format!("RDS DeleteDBSnapshot of snapshot {}", snapshot.id);
        if !snapshot
            .id
            .to_ascii_lowercase()
            .starts_with(OPSD_SNAPSHOT_PREFIX)
        {
            return Err(failed(
                operation,
                format!(
                    "refused: opsd only deletes snapshots it took (ids starting with \
                     {OPSD_SNAPSHOT_PREFIX}), and {} is not one",
                    snapshot.id
                ),
            ));
        }
        let deleted = call_with_retries(
            &self.retry,
            "RDS DeleteDBSnapshot",
            &format!("snapshot {}", snapshot.id),
            || {
                self.client
                    .delete_db_snapshot()
                    .db_snapshot_identifier(&snapshot.id)
                    .send()
            },
        )
        .await;
        match deleted {
            Ok(_) => {
                tracing::info!(database = %self.name, snapshot = %snapshot.id, "RDS snapshot deleted");
                Ok(())
            }
            Err(error) if error.code() == Some(SNAPSHOT_NOT_FOUND) => Ok(()),
            Err(error) => Err(rds_failure(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::error::ProvideErrorMetadata;
    use e2e_tests::aws_emulator::{AwsEmulator, TEST_REGION};

    const SOURCE: &str = "steno-db";

    fn facts(identifier: &str, status: &str, engine: &str, storage: i32) -> InstanceFacts {
        InstanceFacts {
            identifier: identifier.into(),
            status: status.into(),
            engine: Some(engine.into()),
            allocated_storage: Some(storage),
            ..InstanceFacts::default()
        }
    }

    #[test]
    fn snapshot_ids_are_made_rds_identifiers_or_refused() {
        assert_eq!(
            rds_identifier("opsd-steno-20261122-101500", 255).unwrap(),
            "opsd-steno-20261122-101500"
        );
        assert_eq!(
            rds_identifier("Opsd_Steno..2026 11--22-", 255).unwrap(),
            "opsd-steno-2026-11-22"
        );
        assert!(rds_identifier("--", 255)
            .unwrap_err()
            .contains("no letters or digits"));
        assert!(rds_identifier("2026-steno", 255)
            .unwrap_err()
            .contains("start with a letter"));
        assert!(rds_identifier(&"a".repeat(256), 255)
            .unwrap_err()
            .contains("RDS allows 255"));
    }

    #[test]
    fn scratch_names_are_valid_rds_identifiers_of_the_instance() {
        assert_eq!(scratch_prefix_of("Steno-DB"), "steno-db-drill-");
        assert_eq!(
            format!(
                "{}{}",
                scratch_prefix_of(SOURCE),
                drill_suffix("0F3C-77aa-drill-9")
            ),
            "steno-db-drill-0f3c77aadril"
        );
        // A drill id without letters or digits still gives a name that ends in one.
        let suffix = drill_suffix("--");
        assert_eq!(suffix.len(), 12);
        assert!(suffix.chars().all(|ch| ch.is_ascii_alphanumeric()));
        // A long instance identifier is shortened, never leaving a double hyphen.
        let long_instance = format!("{}-{}", "a".repeat(43), "b".repeat(19));
        let name = format!(
            "{}{}",
            scratch_prefix_of(&long_instance),
            drill_suffix("abcdefghijklmnop")
        );
        assert!(name.len() <= 63, "{name}");
        assert!(
            rds_identifier(&name, 63).as_deref() == Ok(name.as_str()),
            "{name}"
        );
        assert!(name.ends_with("-drill-abcdefghijkl"), "{name}");
    }

    #[test]
    fn only_this_instances_scratch_names_are_scratch_names() {
        let prefix = scratch_prefix_of(SOURCE);
        assert!(is_scratch_with_prefix(&prefix, "steno-db-drill-ab12"));
        assert!(!is_scratch_with_prefix(&prefix, "steno-db"));
        assert!(!is_scratch_with_prefix(&prefix, "steno-db-drill-"));
        assert!(!is_scratch_with_prefix(&prefix, "steno-db-drill-AB12"));
        assert!(!is_scratch_with_prefix(&prefix, "steno-db-drill-ab12-x"));
        assert!(!is_scratch_with_prefix(
            &prefix,
            "steno-db-drill-abcdefghijklm"
        ));
        assert!(!is_scratch_with_prefix(&prefix, "other-db-drill-ab12"));
    }

    #[test]
    fn statuses_map_to_ready_waiting_or_failed() {
        assert_eq!(snapshot_phase("available"), Phase::Ready);
        assert_eq!(snapshot_phase("creating"), Phase::Waiting);
        assert_eq!(snapshot_phase("failed"), Phase::Failed);
        assert_eq!(snapshot_phase("error"), Phase::Failed);
        assert_eq!(restore_phase("available"), Phase::Ready);
        for waiting in ["creating", "backing-up", "modifying", "not listed yet"] {
            assert_eq!(restore_phase(waiting), Phase::Waiting, "{waiting}");
        }
        for broken in [
            "failed",
            "incompatible-restore",
            "incompatible-parameters",
            "storage-full",
        ] {
            assert_eq!(restore_phase(broken), Phase::Failed, "{broken}");
        }
    }

    #[test]
    fn integrity_problems_say_what_differs() {
        let source = facts(SOURCE, "available", "postgres", 20);
        let same = facts("steno-db-drill-a", "available", "postgres", 20);
        assert!(integrity_problems(&same, &source).is_empty());
        let problems = integrity_problems(
            &facts("steno-db-drill-a", "storage-full", "mysql", 40),
            &source,
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("is storage-full, not available"));
        assert!(problems[1].contains("engine mysql") && problems[1].contains("runs postgres"));
        assert!(problems[2].contains("40 GiB") && problems[2].contains("has 20 GiB"));
    }

    #[tokio::test]
    async fn a_wait_times_out_naming_what_and_the_status_seen() {
        let wait = Wait::start(Duration::from_millis(30), Duration::from_millis(10));
        let mut pauses = 0;
        let error = loop {
            match wait.pause("RDS snapshot opsd-x", "creating").await {
                Ok(()) => pauses += 1,
                Err(error) => break error.to_string(),
            }
        };
        assert!(pauses >= 1);
        assert!(error.contains("RDS snapshot opsd-x"), "{error}");
        assert!(error.contains("still creating after 30ms"), "{error}");
    }

    #[test]
    fn call_failures_name_the_operation_and_resource() {
        let error = rds_failure(AwsCallError {
            operation: "RDS RestoreDBInstanceFromDBSnapshot".into(),
            resource: "snapshot opsd-steno-1 into steno-db-drill-ab12".into(),
            attempts: 1,
            facts: super::super::retry::FailureFacts {
                kind: super::super::retry::FailureKind::Service,
                status: Some(404),
                code: Some(SNAPSHOT_NOT_FOUND.into()),
                message: "DBSnapshot opsd-steno-1 not found.".into(),
            },
        });
        assert_eq!(
            error.to_string(),
            "RDS RestoreDBInstanceFromDBSnapshot of snapshot opsd-steno-1 into \
             steno-db-drill-ab12 failed: DBSnapshotNotFound: DBSnapshot opsd-steno-1 not found."
        );
    }

    // ------------------------------------------------------------------------------------------
    // Against the emulator (moto behind the test front). A missing emulator fails the test.

    struct Rig {
        emulator: AwsEmulator,
        rds: aws_sdk_rds::Client,
        snapshots: RdsSnapshots,
    }

    fn config_for(emulator: &AwsEmulator) -> RdsDatabaseConfig {
        RdsDatabaseConfig {
            region: TEST_REGION.into(),
            instance: SOURCE.into(),
            endpoint_url: Some(emulator.endpoint_url()),
            instance_class: None,
            wait_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(50),
            retry: RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(50),
            },
        }
    }

    /// An emulator with the source instance `steno-db` (postgres, 20 GiB) and a cleared request
    /// log.
    async fn rig() -> Rig {
        let emulator = tokio::task::spawn_blocking(AwsEmulator::start)
            .await
            .expect("the emulator starts");
        let shared = emulator.sdk_config().await;
        let rds = aws_sdk_rds::Client::new(&shared);
        rds.create_db_instance()
            .db_instance_identifier(SOURCE)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .allocated_storage(20)
            .master_username("steno")
            .master_user_password("not-a-secret-1")
            .send()
            .await
            .expect("moto creates the source instance");
        let snapshots = RdsSnapshots::with_sdk_config("steno", &config_for(&emulator), &shared);
        emulator.clear_requests();
        Rig {
            emulator,
            rds,
            snapshots,
        }
    }

    async fn instance_identifiers(rds: &aws_sdk_rds::Client) -> Vec<String> {
        rds.describe_db_instances()
            .send()
            .await
            .expect("describe_db_instances succeeds")
            .db_instances()
            .iter()
            .filter_map(|instance| instance.db_instance_identifier())
            .map(str::to_string)
            .collect()
    }

    /// Whether `expected` occurs in `actual` in order (not necessarily adjacent).
    fn is_subsequence(expected: &[&str], actual: &[String]) -> bool {
        let mut remaining = actual.iter();
        expected
            .iter()
            .all(|wanted| remaining.any(|action| action == wanted))
    }

    #[tokio::test]
    async fn a_drill_snapshots_restores_inspects_and_drops_its_scratch_instance() {
        let rig = rig().await;
        let snapshots = &rig.snapshots;

        let taken = snapshots
            .take_snapshot("opsd-steno-20261122-101500", &[])
            .await
            .expect("the snapshot is taken");
        assert_eq!(taken.snapshot.id, "opsd-steno-20261122-101500");
        assert!(taken.fingerprint.is_none());
        assert!(
            taken.snapshot.location.starts_with("arn:aws:rds:"),
            "{taken:?}"
        );
        assert!(taken.snapshot.taken_at_ms > 0);
        let described = rig
            .rds
            .describe_db_snapshots()
            .db_snapshot_identifier(&taken.snapshot.id)
            .send()
            .await
            .expect("the snapshot is described");
        let snapshot = &described.db_snapshots()[0];
        assert_eq!(snapshot.status(), Some("available"));
        assert!(
            snapshot
                .tag_list()
                .iter()
                .any(|tag| tag.key() == Some("managed-by") && tag.value() == Some("opsd")),
            "{snapshot:?}"
        );

        let listed = snapshots.snapshots().await.expect("snapshots are listed");
        assert!(
            listed.iter().any(|listed| listed.id == taken.snapshot.id),
            "{listed:?}"
        );
        // moto took an automated snapshot when the instance was created; it is listed too.
        assert!(
            listed.iter().any(|listed| listed.id.starts_with("rds:")),
            "{listed:?}"
        );
        assert!(listed
            .windows(2)
            .all(|pair| pair[0].taken_at_ms >= pair[1].taken_at_ms));

        let scratch = snapshots.scratch_name("drill-1");
        assert_eq!(scratch, "steno-db-drill-drill1");
        snapshots
            .restore(&taken.snapshot, &scratch)
            .await
            .expect("the snapshot is restored");
        let restored = rig
            .rds
            .describe_db_instances()
            .db_instance_identifier(&scratch)
            .send()
            .await
            .expect("the scratch instance is described");
        let restored = &restored.db_instances()[0];
        assert_eq!(restored.db_instance_status(), Some("available"));
        assert_eq!(restored.db_instance_class(), Some("db.t3.micro"));
        assert!(
            restored
                .tag_list()
                .iter()
                .any(|tag| tag.key() == Some("opsd-drill") && tag.value() == Some("true")),
            "{restored:?}"
        );

        let inspection = snapshots
            .inspect(&scratch, &[])
            .await
            .expect("the scratch instance is inspected");
        assert!(inspection.integrity_problems.is_empty(), "{inspection:?}");
        assert!(inspection.table_rows.is_empty());
        assert!(inspection.check_values.is_empty());
        assert_eq!(snapshots.source_table_rows().await.unwrap(), None);
        assert_eq!(
            snapshots
                .digest_matches(&taken.snapshot, None)
                .await
                .unwrap(),
            None
        );

        assert_eq!(
            snapshots.leftover_scratches().await.unwrap(),
            vec![scratch.clone()]
        );
        snapshots
            .drop_scratch(&scratch)
            .await
            .expect("the scratch instance is dropped");
        assert!(snapshots.leftover_scratches().await.unwrap().is_empty());
        let remaining = instance_identifiers(&rig.rds).await;
        assert!(
            remaining
                .iter()
                .all(|identifier| !identifier.contains("-drill-")),
            "{remaining:?}"
        );
        assert_eq!(remaining, [SOURCE]);

        let requests = rig.emulator.requests();
        assert!(
            is_subsequence(
                &[
                    "CreateDBSnapshot",
                    "DescribeDBSnapshots",
                    "RestoreDBInstanceFromDBSnapshot",
                    "DescribeDBInstances",
                    "DeleteDBInstance",
                ],
                &requests
            ),
            "{requests:?}"
        );
    }

    #[tokio::test]
    async fn restoring_a_snapshot_that_does_not_exist_names_it() {
        let rig = rig().await;
        let missing = Snapshot {
            id: "opsd-steno-20261122-000000".into(),
            taken_at_ms: 0,
            location: String::new(),
            size_bytes: None,
            sha256: None,
        };
        let scratch = rig.snapshots.scratch_name("drill-2");
        let error = rig
            .snapshots
            .restore(&missing, &scratch)
            .await
            .expect_err("a missing snapshot cannot be restored")
            .to_string();
        assert!(
            error
                .contains("RestoreDBInstanceFromDBSnapshot of snapshot opsd-steno-20261122-000000"),
            "{error}"
        );
        assert!(error.contains(SNAPSHOT_NOT_FOUND), "{error}");
        assert!(rig.snapshots.leftover_scratches().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn dropping_refuses_other_instances_and_accepts_missing_scratches() {
        let rig = rig().await;
        for not_scratch in [SOURCE, "other-db-drill-ab12", "steno-db-drill-ab12-x"] {
            let error = rig
                .snapshots
                .drop_scratch(not_scratch)
                .await
                .expect_err("only scratch instances are dropped")
                .to_string();
            assert!(error.contains("refused"), "{error}");
            assert!(error.contains(not_scratch), "{error}");
        }
        assert!(
            rig.emulator.requests().is_empty(),
            "refusals call no AWS API: {:?}",
            rig.emulator.requests()
        );
        assert_eq!(instance_identifiers(&rig.rds).await, [SOURCE]);

        rig.emulator.clear_requests();
        rig.snapshots
            .drop_scratch(&rig.snapshots.scratch_name("never-restored"))
            .await
            .expect("dropping a scratch instance that does not exist succeeds");
        assert_eq!(rig.emulator.requests(), ["DeleteDBInstance"]);

        let error = rig
            .snapshots
            .restore(
                &Snapshot {
                    id: "opsd-x".into(),
                    taken_at_ms: 0,
                    location: String::new(),
                    size_bytes: None,
                    sha256: None,
                },
                "steno-db-copy",
            )
            .await
            .expect_err("restores only go into scratch names")
            .to_string();
        assert!(error.contains("refused"), "{error}");
    }

    #[tokio::test]
    async fn only_snapshots_opsd_took_are_deleted() {
        let rig = rig().await;
        let taken = rig
            .snapshots
            .take_snapshot("opsd-steno-20261122-101500", &[])
            .await
            .expect("the snapshot is taken");
        rig.rds
            .create_db_snapshot()
            .db_instance_identifier(SOURCE)
            .db_snapshot_identifier("before-upgrade")
            .send()
            .await
            .expect("moto takes a manual snapshot");
        let manual = rig
            .snapshots
            .snapshots()
            .await
            .unwrap()
            .into_iter()
            .find(|snapshot| snapshot.id == "before-upgrade")
            .expect("the manual snapshot is listed");

        rig.emulator.clear_requests();
        let error = rig
            .snapshots
            .delete_snapshot(&manual)
            .await
            .expect_err("a snapshot opsd did not take is kept")
            .to_string();
        assert!(
            error.contains("refused") && error.contains("before-upgrade"),
            "{error}"
        );
        assert!(rig.emulator.requests().is_empty());

        rig.snapshots
            .delete_snapshot(&taken.snapshot)
            .await
            .expect("opsd's snapshot is deleted");
        let remaining: Vec<String> = rig
            .snapshots
            .snapshots()
            .await
            .unwrap()
            .into_iter()
            .map(|snapshot| snapshot.id)
            .collect();
        assert!(!remaining.contains(&taken.snapshot.id), "{remaining:?}");
        assert!(
            remaining.contains(&"before-upgrade".to_string()),
            "{remaining:?}"
        );
        // Deleting it again finds nothing and still succeeds.
        rig.snapshots
            .delete_snapshot(&taken.snapshot)
            .await
            .expect("a snapshot already gone counts as deleted");
        let error = rig
            .rds
            .delete_db_snapshot()
            .db_snapshot_identifier(&taken.snapshot.id)
            .send()
            .await
            .expect_err("moto no longer has it");
        assert_eq!(error.code(), Some(SNAPSHOT_NOT_FOUND));
    }

    #[tokio::test]
    async fn invalid_snapshot_ids_are_refused_before_calling_aws() {
        let rig = rig().await;
        let error = rig
            .snapshots
            .take_snapshot("2026-11-22", &[])
            .await
            .expect_err("an id that does not start with a letter is refused")
            .to_string();
        assert!(
            error.contains("CreateDBSnapshot of instance steno-db"),
            "{error}"
        );
        assert!(error.contains("start with a letter"), "{error}");
        assert!(rig.emulator.requests().is_empty());
        let taken = rig
            .snapshots
            .take_snapshot("opsd_Steno_20261122.101500", &[])
            .await
            .expect("an id with other characters is made an RDS identifier");
        assert_eq!(taken.snapshot.id, "opsd-steno-20261122-101500");
    }
}
