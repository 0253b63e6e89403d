//! The one place opsd's platforms are built from its configuration: the local platform (release
//! processes behind opsd's router), every service's capabilities (local or AWS, dispatched per
//! service), each database's snapshots (SQLite, PostgreSQL or RDS), the cost source (recorded
//! usage or Cost Explorer) and the AWS clients of the direct commands. Everything else is handed
//! what it needs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::aws::costs::CostExplorerSource;
use super::aws::rds::RdsSnapshots;
use super::aws::{AwsClients, AwsPlatform, AwsServiceSetup};
use super::cost_source::CostSource;
use super::dispatch::{NoPlatformExtras, PerService, PlatformSet};
use super::local::costs::LocalCostSource;
use super::local::postgres_snapshots::PostgresSnapshots;
use super::local::sqlite_snapshots::SqliteSnapshots;
use super::local::{FailStaticSetup, LocalPlatform, LocalServiceConfig};
use super::secrets::Secrets;
use super::snapshots::DatabaseSnapshots;
use super::PlatformError;
use crate::config::{
    AwsServiceConfig, Config, CostSourceConfig, CostsConfig, DatabaseConfig, DatabaseKind,
};
use crate::store::Store;

/// Starts the local platform with every service that is not on AWS, failing static: a router
/// process per service listens on its public address and releases outlive opsd (both recorded
/// under `fail_static`, and re-adopted from there by the next opsd); logs go under the data
/// directory.
pub async fn start_local_platform(
    config: &Config,
    secrets: &Secrets,
    fail_static: &FailStaticSetup,
) -> Result<Arc<LocalPlatform>, PlatformError> {
    let services: Vec<(LocalServiceConfig, std::net::SocketAddr)> = config
        .services
        .values()
        .filter(|service| service.aws.is_none())
        .map(|service| {
            let mut local = LocalServiceConfig::new(service.name.clone(), service.command.clone());
            local.base_env = service.env.clone();
            local.env_from = service.env_from.clone();
            local.health_path = service.health_path.clone();
            local.ready_timeout = service.ready_timeout;
            (local, service.public_addr)
        })
        .collect();
    let log_dir = config.data_dir.join("logs");
    LocalPlatform::start_fail_static(services, log_dir, secrets.clone(), fail_static).await
}

/// Every service's capabilities: the local platform's, or AWS's for services with an `aws` block.
pub async fn service_platforms(
    config: &Config,
    local: Arc<LocalPlatform>,
    secrets: &Secrets,
) -> PlatformSet {
    let aws_setups: Vec<AwsServiceSetup> = config
        .services
        .values()
        .filter_map(|service| {
            service.aws.as_ref().map(|aws| AwsServiceSetup {
                name: service.name.clone(),
                config: aws.clone(),
                rules: config.policy.alarms.clone(),
                ready_timeout: service.ready_timeout,
                env_from: service.env_from.clone(),
                secrets: secrets.clone(),
            })
        })
        .collect();
    let aws = AwsPlatform::connect(aws_setups).await;
    let extras = Arc::new(NoPlatformExtras);
    let local_set = PlatformSet {
        runner: local.clone(),
        shifter: local.clone(),
        metrics: local,
        alarms: extras.clone(),
        cdn: extras,
    };
    let aws_set = PlatformSet {
        runner: aws.clone(),
        shifter: aws.clone(),
        metrics: aws.clone(),
        alarms: aws.clone(),
        cdn: aws,
    };
    let by_service: HashMap<String, PlatformSet> = config
        .services
        .values()
        .map(|service| {
            let set = if service.aws.is_some() {
                aws_set.clone()
            } else {
                local_set.clone()
            };
            (service.name.clone(), set)
        })
        .collect();
    let dispatch = Arc::new(PerService::new(by_service));
    PlatformSet {
        runner: dispatch.clone(),
        shifter: dispatch.clone(),
        metrics: dispatch.clone(),
        alarms: dispatch.clone(),
        cdn: dispatch,
    }
}

/// The AWS clients of one service, for the commands that call AWS directly (`alarms`, `cdn`).
pub async fn aws_clients(aws: &AwsServiceConfig) -> AwsClients {
    AwsClients::connect(aws).await
}

/// Where drills keep scratch files and their lock files.
pub fn drills_dir(config: &Config) -> PathBuf {
    config.data_dir.join("drills")
}

/// The snapshot platform of one database, by its kind.
pub async fn database_snapshots(
    config: &Config,
    database: &DatabaseConfig,
) -> Result<Arc<dyn DatabaseSnapshots>, PlatformError> {
    let snapshot_dir = config.data_dir.join("snapshots").join(&database.name);
    Ok(match &database.kind {
        DatabaseKind::Sqlite { path } => Arc::new(SqliteSnapshots::new(
            &database.name,
            path,
            &snapshot_dir,
            &drills_dir(config),
        )),
        DatabaseKind::Postgres { url, tools_dir } => Arc::new(PostgresSnapshots::new(
            &database.name,
            url,
            &snapshot_dir,
            tools_dir.as_deref(),
        )?),
        DatabaseKind::Rds(rds) => Arc::new(RdsSnapshots::connect(&database.name, rds).await),
    })
}

/// The document store a database's rows reference.
pub async fn document_store(
    config: &crate::config::DocumentStoreConfig,
) -> Arc<dyn crate::platform::documents::DocumentStore> {
    use crate::config::DocumentLocation;
    match &config.location {
        DocumentLocation::Directory(dir) => {
            Arc::new(crate::platform::local::document_dir::DirectoryDocuments::new(dir))
        }
        DocumentLocation::S3(s3) => {
            Arc::new(crate::platform::aws::document_bucket::BucketDocuments::connect(s3).await)
        }
    }
}

/// Each configured database's snapshot platform, built on first use and kept, for the daemon's
/// pre-deployment snapshots. A database whose platform cannot be built (a missing `pg_dump`) is
/// tried again on the next use.
pub struct DatabasePlatforms {
    config: Config,
    built: Mutex<HashMap<String, Arc<dyn DatabaseSnapshots>>>,
}

impl DatabasePlatforms {
    pub fn new(config: &Config) -> DatabasePlatforms {
        DatabasePlatforms {
            config: config.clone(),
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The snapshot platform of `database`.
    pub async fn snapshots(
        &self,
        database: &DatabaseConfig,
    ) -> Result<Arc<dyn DatabaseSnapshots>, PlatformError> {
        let mut built = self.built.lock().await;
        if let Some(platform) = built.get(&database.name) {
            return Ok(platform.clone());
        }
        let platform = database_snapshots(&self.config, database).await?;
        built.insert(database.name.clone(), platform.clone());
        Ok(platform)
    }
}

/// The cost source `costs.source` names.
pub async fn cost_source(costs: &CostsConfig, store: &Store) -> Box<dyn CostSource> {
    match &costs.source {
        CostSourceConfig::Aws(explorer) => Box::new(CostExplorerSource::connect(explorer).await),
        CostSourceConfig::Local(local) => {
            Box::new(LocalCostSource::new(store.clone(), local.clone()))
        }
    }
}
