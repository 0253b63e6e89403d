//! The document store a database's rows point at (Steno's uploaded documents): listed with each
//! object's size and SHA-256 for a snapshot's manifest, and looked up one key at a time when a
//! drill or a restore verifies the documents the restored rows reference. Implemented for a
//! directory (local) and an S3 bucket prefix (aws). invariant: no platform SDK type crosses
//! this trait.

use crate::core::documents::DocumentEntry;

use super::PlatformError;

/// The most objects a manifest lists; a larger store is refused with a message, never truncated.
pub const MAX_MANIFEST_OBJECTS: usize = 1_000_000;

/// One document store.
#[async_trait::async_trait]
pub trait DocumentStore: Send + Sync {
    /// `directory …` or `s3://bucket/prefix`.
    fn describe(&self) -> String;

    /// Every object with its size and SHA-256 (each read in full), sorted by key.
    async fn manifest(&self) -> Result<Vec<DocumentEntry>, PlatformError>;

    /// One object as the store has it now; `None` when it is missing (or the key could not name
    /// an object of the store).
    async fn entry(&self, key: &str) -> Result<Option<DocumentEntry>, PlatformError>;

    /// Makes the manifest's objects survive later changes where the store would not keep them
    /// (an unversioned bucket copies each under the snapshot's prefix and notes `copy_key`).
    /// Nothing to do by default: a directory is backed up by the host's own backups.
    async fn preserve(
        &self,
        snapshot_id: &str,
        entries: &mut [DocumentEntry],
    ) -> Result<(), PlatformError> {
        let _ = (snapshot_id, entries);
        Ok(())
    }

    /// Removes what [`DocumentStore::preserve`] kept for a snapshot (retention).
    async fn forget(&self, snapshot_id: &str) -> Result<(), PlatformError> {
        let _ = snapshot_id;
        Ok(())
    }
}

/// Whether `key` is a plain relative key: non-empty segments separated by `/`, none `.` or `..`,
/// no NUL or backslash. Keys that are not are never looked up.
pub fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 1024
        && !key.contains(['\0', '\\'])
        && key
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_keys_are_looked_up() {
        assert!(is_plain_key("firm-1/doc-7"));
        for bad in [
            "",
            "/etc/passwd",
            "firm/../../x",
            "a//b",
            "a/./b",
            "a\\b",
            "a\0b",
        ] {
            assert!(!is_plain_key(bad), "{bad:?}");
        }
    }
}
