//! `AppState`: the database, document storage, drafting engine, extractor, token signer, metrics,
//! banner, clock, per-client login limiter and bounded password hasher one Steno process shares
//! between its requests, built from validated `Settings`.

use std::sync::Arc;

use crate::auth::{random_secret, TokenSigner};
use crate::clock::{Clock, SystemClock};
use crate::config::{Settings, StorageSettings};
use crate::db::{firms, Database, DbError};
use crate::drafting::{engine_from_settings, DraftingEngine};
use crate::extractor::{Extractor, ExtractorError};
use crate::metrics::Metrics;
use crate::password_hashing::PasswordHasher;
use crate::status_banner::Banner;
use crate::storage::{DirectoryStorage, DocumentStorage, S3Storage, StorageError};
use crate::throttle::{ClientLimiter, WindowPolicy};

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
    clock: Arc<dyn Clock>,
    client_limiter: ClientLimiter,
    password_hasher: PasswordHasher,
}

impl AppState {
    /// Connects to the database (migrating it), opens document storage and picks the drafting engine.
    pub async fn start(settings: Settings) -> Result<AppState, StartError> {
        AppState::start_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// Like [`AppState::start`], reading time from `clock` (tests move a manual clock).
    pub async fn start_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<AppState, StartError> {
        let database = Database::connect_with(&settings.database_url, settings.migrations).await?;
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
        AppState::from_parts(settings, database, storage, engine, clock).await
    }

    /// Assembles a state from ready parts (tests inject their own engine or storage here). The
    /// extractor program is resolved here and probed by the hosts (`Extractor::probe`).
    pub async fn from_parts(
        settings: Settings,
        database: Database,
        storage: Arc<dyn DocumentStorage>,
        engine: Arc<dyn DraftingEngine>,
        clock: Arc<dyn Clock>,
    ) -> Result<AppState, StartError> {
        let extractor = Extractor::new(&settings.extractor, settings.max_logo_dimension)?;
        let secret = match &settings.jwt_secret {
            Some(secret) => secret.clone(),
            None => firms::setting_or_insert(&database, "jwt_secret", &random_secret()).await?,
        };
        let security = &settings.account_security;
        let client_limiter = ClientLimiter::new(
            WindowPolicy {
                max_events: security.client_max_attempts,
                window: security.client_window,
            },
            security.client_table_size,
        );
        let password_hasher = PasswordHasher::new(security.hash_concurrency, security.hash_queue);
        Ok(AppState {
            inner: Arc::new(Inner {
                signer: TokenSigner::new(secret.as_bytes()),
                clock,
                client_limiter,
                password_hasher,
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

    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub fn client_limiter(&self) -> &ClientLimiter {
        &self.inner.client_limiter
    }

    pub fn password_hasher(&self) -> &PasswordHasher {
        &self.inner.password_hasher
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
