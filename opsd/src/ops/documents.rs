//! The document store in snapshots, drills and restores, at the I/O edge: each snapshot of a
//! database with `documents` gets a manifest (`<data dir>/document-manifests/<snapshot>.json`,
//! 0600: every object's key, size and SHA-256, and the version or the copy that preserves it); a drill or a restore reads the document
//! references of the restored rows and looks each one up in the store, and `core::documents`
//! judges them against the rows and the manifest.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::{Config, DatabaseConfig};
use crate::core::documents::{
    documents_not_checked, verify_documents, DocumentManifest, DocumentReference,
};
use crate::core::drill::VerificationItem;
use crate::platform::factory::document_store;
use crate::platform::snapshots::{DatabaseSnapshots, RestoredCopy};
use crate::platform::PlatformError;

/// Where a snapshot's document manifest is kept.
pub fn manifest_path(config: &Config, snapshot_id: &str) -> PathBuf {
    config
        .data_dir
        .join("document-manifests")
        .join(format!("{snapshot_id}.json"))
}

fn failed(operation: impl Into<String>, message: impl ToString) -> PlatformError {
    PlatformError::Operation {
        operation: operation.into(),
        message: message.to_string(),
    }
}

/// Lists the database's document store and keeps it as the snapshot's manifest; the number of
/// documents, or `None` when the database has no document store.
pub async fn record_manifest(
    config: &Config,
    database: &DatabaseConfig,
    snapshot_id: &str,
) -> Result<Option<usize>, PlatformError> {
    let Some(documents) = &database.documents else {
        return Ok(None);
    };
    let store = document_store(documents).await;
    let mut entries = store.manifest().await?;
    store.preserve(snapshot_id, &mut entries).await?;
    let manifest = DocumentManifest {
        snapshot_id: snapshot_id.to_string(),
        store: store.describe(),
        documents: entries,
    };
    let path = manifest_path(config, snapshot_id);
    let operation = format!("writing the document manifest {}", path.display());
    let text = serde_json::to_vec(&manifest).map_err(|error| failed(&operation, error))?;
    if let Some(dir) = path.parent() {
        crate::private_files::ensure_private_dir(dir).map_err(|error| failed(&operation, error))?;
    }
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, text).map_err(|error| failed(&operation, error))?;
    crate::private_files::restrict_existing_file(&partial)
        .map_err(|error| failed(&operation, error))?;
    std::fs::rename(&partial, &path).map_err(|error| failed(&operation, error))?;
    Ok(Some(manifest.documents.len()))
}

/// Removes what a snapshot kept of the document store (retention): the copies the store made and
/// the manifest; a missing one is fine, a failure is logged.
pub async fn remove_manifest(config: &Config, database: &DatabaseConfig, snapshot_id: &str) {
    if let Some(documents) = &database.documents {
        if let Err(error) = document_store(documents).await.forget(snapshot_id).await {
            tracing::warn!(snapshot = %snapshot_id, error = %error, "could not remove the snapshot's document copies");
        }
    }
    let path = manifest_path(config, snapshot_id);
    if let Err(error) = std::fs::remove_file(&path) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %error, "could not remove a document manifest");
        }
    }
}

fn read_manifest(config: &Config, snapshot_id: &str) -> Option<DocumentManifest> {
    let text = std::fs::read(manifest_path(config, snapshot_id)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The verification items of the documents the restored copy's rows reference; none when the
/// database has no document store.
pub async fn verify_restored_documents(
    config: &Config,
    database: &DatabaseConfig,
    platform: &dyn DatabaseSnapshots,
    copy: &RestoredCopy,
    snapshot_id: &str,
) -> Vec<VerificationItem> {
    let Some(documents) = &database.documents else {
        return Vec::new();
    };
    let rows = match platform.rows_of(copy, &documents.references).await {
        Ok(Some(rows)) => rows,
        Ok(None) => {
            return vec![documents_not_checked(
                "the platform cannot query the restored copy, so the documents its rows \
                 reference are not known",
            )]
        }
        Err(error) => {
            return vec![documents_not_checked(format!(
                "the references query failed on the restored copy: {error}"
            ))]
        }
    };
    let mut references = Vec::with_capacity(rows.len());
    for row in rows {
        match <[String; 2]>::try_from(row) {
            Ok([key, sha256]) => references.push(DocumentReference { key, sha256 }),
            Err(_) => {
                return vec![documents_not_checked(
                    "the references query must return two columns, key and sha256",
                )]
            }
        }
    }
    let store = document_store(documents).await;
    let mut found = BTreeMap::new();
    for reference in &references {
        if found.contains_key(&reference.key) {
            continue;
        }
        match store.entry(&reference.key).await {
            Ok(entry) => {
                found.insert(reference.key.clone(), entry);
            }
            Err(error) => {
                return vec![documents_not_checked(format!(
                    "the document store {} could not be read: {error}",
                    store.describe()
                ))]
            }
        }
    }
    let manifest = read_manifest(config, snapshot_id);
    verify_documents(&references, &found, manifest.as_ref())
}
