//! Document storage: the `DocumentStorage` trait, its errors and key rules, with a directory backend by default and S3 when configured.
//!
//! Uploaded source documents and exported files are stored as opaque blobs
//! under keys such as `{firm_id}/{document_id}`. Every backend validates keys
//! with [`validate_key`] before touching anything, so a key can never name a
//! location outside the storage root or bucket prefix.

mod directory;
mod s3;

pub use directory::DirectoryStorage;
pub use s3::{S3Settings, S3Storage};

use std::path::PathBuf;

/// Longest accepted key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;

/// A place where document bytes are kept under string keys.
#[async_trait::async_trait]
pub trait DocumentStorage: Send + Sync {
    /// Stores bytes under key, replacing any previous object.
    async fn put(
        &self,
        key: &str,
        bytes: bytes::Bytes,
        content_type: &str,
    ) -> Result<(), StorageError>;

    /// Reads the bytes stored under key; [`StorageError::NotFound`] when nothing is stored there.
    async fn get(&self, key: &str) -> Result<bytes::Bytes, StorageError>;

    /// Removes the object stored under key. Deleting a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// Cheap readiness probe for the health endpoint (directory writable / bucket reachable).
    async fn check(&self) -> Result<(), StorageError>;

    /// Human description for logs and health: "directory /var/steno/documents", "s3://bucket/prefix".
    fn describe(&self) -> String;
}

/// Everything that can go wrong while storing or reading documents.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key breaks the key rules (see [`validate_key`]).
    #[error(
        "invalid storage key {key:?}: {reason}; use '/'-separated segments of letters, digits, '.', '_' and '-', such as \"firm-1/document-7\""
    )]
    InvalidKey { key: String, reason: &'static str },

    /// Nothing is stored under the key.
    #[error("no document is stored under key {key:?}; it was never stored or has been deleted")]
    NotFound { key: String },

    /// A file-system operation of the directory backend failed.
    #[error(
        "could not {action} {}: {source}; check that the storage directory exists, is a directory and is writable by this process",
        path.display()
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An S3 request failed. `key` is the document key, absent for bucket-level operations.
    #[error("S3 {operation} failed for {}: {message}", s3_location(bucket, key.as_deref()))]
    S3 {
        operation: &'static str,
        bucket: String,
        key: Option<String>,
        message: String,
    },

    /// The storage settings cannot work as given.
    #[error("document storage is misconfigured: {message}")]
    Configuration { message: String },
}

fn s3_location(bucket: &str, key: Option<&str>) -> String {
    match key {
        Some(key) => format!("key {key:?} in bucket {bucket:?}"),
        None => format!("bucket {bucket:?}"),
    }
}

/// Checks a storage key against the key rules.
///
/// A key is non-empty, at most [`MAX_KEY_BYTES`] bytes long, and made of
/// segments separated by single '/' characters. Each segment is non-empty,
/// uses only ASCII letters, digits, '.', '_' and '-', and is neither "." nor
/// "..". So a key never starts or ends with '/', and never climbs out of the
/// storage root.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    let invalid = |reason: &'static str| StorageError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("the key is empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid("the key is longer than 512 bytes"));
    }
    if key.starts_with('/') {
        return Err(invalid("the key starts with '/'"));
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err(invalid(
                "the key has an empty segment (a trailing or doubled '/')",
            ));
        }
        if segment == "." || segment == ".." {
            return Err(invalid("the key has a '.' or '..' segment"));
        }
        let allowed = |character: char| {
            character.is_ascii_alphanumeric() || matches!(character, '.' | '_' | '-')
        };
        if !segment.chars().all(allowed) {
            return Err(invalid(
                "the key has a character other than letters, digits, '.', '_', '-' and '/'",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_invalid(key: &str) {
        match validate_key(key) {
            Err(StorageError::InvalidKey { key: named, .. }) => assert_eq!(named, key),
            other => panic!("expected InvalidKey for {key:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_ordinary_keys() {
        for key in [
            "firm-1/3f2b6c1e-8d7a-4c1e-9a51-0b6f3e2d1c4a",
            "firm_2/exports/letter.v2.pdf",
            "a",
            ".hidden",
            "a..b",
        ] {
            assert!(validate_key(key).is_ok(), "{key:?} should be valid");
        }
        assert!(validate_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
    }

    #[test]
    fn rejects_keys_that_could_escape_or_are_malformed() {
        for key in [
            "",
            "../etc/passwd",
            "firm/../../etc/passwd",
            "..",
            ".",
            "firm/./doc",
            "/etc/passwd",
            "firm//doc",
            "firm/doc/",
            "firm\\doc",
            "firm/doc name",
            "firm/dóc",
            "firm/doc\0",
            "C:/windows",
        ] {
            assert_invalid(key);
        }
        assert_invalid(&"k".repeat(MAX_KEY_BYTES + 1));
    }

    #[test]
    fn invalid_key_message_names_the_key_and_the_rule() {
        let message = validate_key("../etc/passwd")
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(message.contains("\"../etc/passwd\""), "{message}");
        assert!(message.contains("'..'"), "{message}");
    }
}
