//! A document store that is a directory (Steno's `STENO_STORAGE_DIR`, `<data dir>/documents` by
//! default): the key `firm-1/doc-7` is the file `<root>/firm-1/doc-7`. Files whose name holds
//! `~` are Steno's unfinished writes and are not documents.

use std::path::{Path, PathBuf};

use super::sqlite_snapshots::file_digest;
use crate::core::documents::DocumentEntry;
use crate::platform::documents::{is_plain_key, DocumentStore, MAX_MANIFEST_OBJECTS};
use crate::platform::PlatformError;

/// The documents under one directory.
#[derive(Debug, Clone)]
pub struct DirectoryDocuments {
    root: PathBuf,
}

impl DirectoryDocuments {
    pub fn new(root: &Path) -> DirectoryDocuments {
        DirectoryDocuments {
            root: root.to_path_buf(),
        }
    }
}

fn failed(operation: impl Into<String>, message: impl ToString) -> PlatformError {
    PlatformError::Operation {
        operation: operation.into(),
        message: message.to_string(),
    }
}

/// Size and SHA-256 of a file, read in blocks.
fn digest_file(path: &Path) -> std::io::Result<(u64, String)> {
    file_digest(path).map(|(sha256, size)| (size, sha256))
}

fn manifest_blocking(root: &Path) -> Result<Vec<DocumentEntry>, PlatformError> {
    let operation = format!("listing the documents under {}", root.display());
    if !root.is_dir() {
        return Err(failed(
            operation,
            "the directory does not exist; check databases.<name>.documents.dir",
        ));
    }
    let mut entries = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let listing = std::fs::read_dir(&dir).map_err(|error| failed(&operation, error))?;
        for item in listing {
            let item = item.map_err(|error| failed(&operation, error))?;
            let kind = item
                .file_type()
                .map_err(|error| failed(&operation, error))?;
            let path = item.path();
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            if !kind.is_file() || item.file_name().to_string_lossy().contains('~') {
                continue;
            }
            let Some(key) = path
                .strip_prefix(root)
                .ok()
                .and_then(|relative| relative.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if entries.len() == MAX_MANIFEST_OBJECTS {
                return Err(failed(
                    &operation,
                    format!("more than {MAX_MANIFEST_OBJECTS} documents; a manifest lists at most that many"),
                ));
            }
            let (size, sha256) = digest_file(&path)
                .map_err(|error| failed(format!("reading document {key}"), error))?;
            entries.push(DocumentEntry {
                key,
                size,
                sha256,
                version_id: None,
                copy_key: None,
            });
        }
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(entries)
}

fn entry_blocking(root: &Path, key: &str) -> Result<Option<DocumentEntry>, PlatformError> {
    if !is_plain_key(key) {
        return Ok(None);
    }
    let mut path = root.to_path_buf();
    path.extend(key.split('/'));
    match std::fs::symlink_metadata(&path) {
        Ok(metadata) if metadata.is_file() => {}
        Ok(_) => return Ok(None),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(failed(format!("reading document {key}"), error)),
    }
    let (size, sha256) =
        digest_file(&path).map_err(|error| failed(format!("reading document {key}"), error))?;
    Ok(Some(DocumentEntry {
        key: key.to_string(),
        size,
        sha256,
        version_id: None,
        copy_key: None,
    }))
}

#[async_trait::async_trait]
impl DocumentStore for DirectoryDocuments {
    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    async fn manifest(&self) -> Result<Vec<DocumentEntry>, PlatformError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || manifest_blocking(&root))
            .await
            .map_err(|error| failed("listing documents", error))?
    }

    async fn entry(&self, key: &str) -> Result<Option<DocumentEntry>, PlatformError> {
        let root = self.root.clone();
        let key = key.to_string();
        tokio::task::spawn_blocking(move || entry_blocking(&root, &key))
            .await
            .map_err(|error| failed("reading a document", error))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn documents_are_listed_with_their_digest_and_looked_up_by_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("firm-1")).unwrap();
        std::fs::write(dir.path().join("firm-1/doc-1"), b"hello").unwrap();
        std::fs::write(dir.path().join("firm-1/doc-2~tmp"), b"unfinished").unwrap();
        let store = DirectoryDocuments::new(dir.path());
        let manifest = store.manifest().await.unwrap();
        assert_eq!(manifest.len(), 1);
        assert_eq!(manifest[0].key, "firm-1/doc-1");
        assert_eq!(manifest[0].size, 5);
        assert_eq!(
            manifest[0].sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(
            store.entry("firm-1/doc-1").await.unwrap(),
            Some(manifest[0].clone())
        );
        assert_eq!(store.entry("firm-1/missing").await.unwrap(), None);
        assert_eq!(store.entry("../outside").await.unwrap(), None);
        let missing = DirectoryDocuments::new(&dir.path().join("nope"))
            .manifest()
            .await
            .unwrap_err()
            .to_string();
        assert!(missing.contains("does not exist"), "{missing}");
    }
}
