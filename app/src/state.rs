//! `AppState`: the database, document storage, drafting engine, extractor, token signer, metrics and banner
//! one Steno process shares between its requests, built from validated `Settings`.

use std::sync::Arc;

use crate::auth::{random_secret, TokenSigner};
use crate::config::{Settings, StorageSettings};
use crate::db::{firms, Database, DbError};
use crate::drafting::{engine_from_settings, DraftingEngine};
use crate::extractor::{Extractor, ExtractorError};
use crate::metrics::Metrics;
use crate::status_banner::Banner;
use crate::storage::{DirectoryStorage, DocumentStorage, S3Storage, StorageError};

/// Why Steno could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("document storage is not usable: {0}")]
    Storage(#[from] StorageError),
    #[error("the document extractor is not usable: {0}")]
    Extractor(#[from] ExtractorError),
}

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    database: Database,
    storage: Arc<dyn DocumentStorage>,
    engine: Arc<dyn DraftingEngine>,
    extractor: Extractor,
    signer: TokenSigner,
    metrics: Metrics,
    banner: Arc<Banner>,
}

impl AppState {
    /// Connects to the database (migrating it), opens document storage and picks the drafting engine.
    pub async fn start(settings: Settings) -> Result<AppState, StartError> {
        let database = Database::connect(&settings.database_url).await?;
        let storage: Arc<dyn DocumentStorage> = match &settings.storage {
            StorageSettings::Directory(root) => Arc::new(DirectoryStorage::open(root.clone())?),
            StorageSettings::S3(s3) => Arc::new(S3Storage::new(s3.clone()).await?),
        };
        let engine = match &settings.anthropic {
            Some(anthropic) => engine_from_settings(
                Some(anthropic.api_key.clone()),
                anthropic.base_url.clone(),
                anthropic.model.clone(),
            ),
            None => engine_from_settings(None, None, None),
        };
        AppState::from_parts(settings, database, storage, engine).await
    }

    /// Assembles a state from ready parts (tests inject their own engine or storage here). The
    /// extractor program is resolved here and probed by the hosts (`Extractor::probe`).
    pub async fn from_parts(
        settings: Settings,
        database: Database,
        storage: Arc<dyn DocumentStorage>,
        engine: Arc<dyn DraftingEngine>,
    ) -> Result<AppState, StartError> {
        let extractor = Extractor::new(&settings.extractor, settings.max_logo_dimension)?;
        let secret = match &settings.jwt_secret {
            Some(secret) => secret.clone(),
            None => firms::setting_or_insert(&database, "jwt_secret", &random_secret()).await?,
        };
        Ok(AppState {
            inner: Arc::new(Inner {
                signer: TokenSigner::new(secret.as_bytes()),
                settings,
                database,
                storage,
                engine,
                extractor,
                metrics: Metrics::default(),
                banner: Arc::new(Banner::default()),
            }),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn database(&self) -> &Database {
        &self.inner.database
    }

    pub fn storage(&self) -> &dyn DocumentStorage {
        self.inner.storage.as_ref()
    }

    pub fn engine(&self) -> &dyn DraftingEngine {
        self.inner.engine.as_ref()
    }

    pub fn extractor(&self) -> &Extractor {
        &self.inner.extractor
    }

    pub fn signer(&self) -> &TokenSigner {
        &self.inner.signer
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn banner(&self) -> &Arc<Banner> {
        &self.inner.banner
    }
}
