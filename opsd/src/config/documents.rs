//! `databases.<name>.documents`: the document store the database's rows point at, which
//! snapshots list in a manifest and drills and restores verify (`core::documents`).
//!
//! ```yaml
//! documents:
//!   dir: .opsd/steno-data/documents          # a directory, or:
//!   # s3: {bucket: steno-documents, prefix: documents/, region: eu-west-1}
//!   references: "SELECT storage_key AS key, sha256 FROM documents"   # the default (Steno's)
//! ```

use std::path::PathBuf;

use super::raw::RawDocuments;
use crate::core::config_error::ConfigError;
use crate::core::retry::RetryPolicy;

/// Steno's: every uploaded document's key and the SHA-256 recorded at upload.
pub const STENO_DOCUMENT_REFERENCES: &str = "SELECT storage_key AS key, sha256 FROM documents";

/// Where the documents are and which rows reference them.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentStoreConfig {
    pub location: DocumentLocation,
    /// A query of the database returning two columns named `key` and `sha256`.
    pub references: String,
}

/// A directory or an S3 bucket prefix.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentLocation {
    Directory(PathBuf),
    S3(S3DocumentsConfig),
}

/// Documents in an S3 bucket, under a prefix (keys are relative to it).
#[derive(Debug, Clone, PartialEq)]
pub struct S3DocumentsConfig {
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub endpoint_url: Option<String>,
    pub retry: RetryPolicy,
}

/// `documents`, validated; relative directories are under opsd.yaml's directory.
pub(super) fn validate_documents(
    raw: RawDocuments,
    base_dir: &std::path::Path,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<DocumentStoreConfig, ConfigError> {
    let location = match (raw.dir, raw.s3) {
        (Some(dir), None) if !dir.trim().is_empty() => {
            DocumentLocation::Directory(base_dir.join(dir.trim()))
        }
        (None, Some(s3)) => {
            let bucket = s3.bucket.unwrap_or_default();
            if bucket.trim().is_empty() || bucket.len() > 63 {
                return Err(error(
                    "documents.s3.bucket",
                    "needs the bucket's name (3 to 63 characters)".into(),
                ));
            }
            let region = s3.region.unwrap_or_default();
            if region.trim().is_empty() {
                return Err(error(
                    "documents.s3.region",
                    "needs the bucket's region, like eu-west-1".into(),
                ));
            }
            DocumentLocation::S3(S3DocumentsConfig {
                bucket: bucket.trim().to_string(),
                prefix: s3.prefix.unwrap_or_default(),
                region: region.trim().to_string(),
                endpoint_url: s3.endpoint_url,
                retry: RetryPolicy::default(),
            })
        }
        _ => {
            return Err(error(
                "documents",
                "needs exactly one of dir: (a directory) or s3: {bucket, prefix, region}".into(),
            ))
        }
    };
    let references = raw
        .references
        .map(|query| query.trim().to_string())
        .unwrap_or_else(|| STENO_DOCUMENT_REFERENCES.to_string());
    if references.is_empty() || references.len() > 4096 {
        return Err(error(
            "documents.references",
            "needs a query returning the columns key and sha256 (at most 4096 characters)".into(),
        ));
    }
    Ok(DocumentStoreConfig {
        location,
        references,
    })
}
