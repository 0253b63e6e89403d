//! Directory storage backend: documents as files under a root directory, written atomically.
//!
//! The key `firm-1/doc-7` is stored at `{root}/firm-1/doc-7`. A write goes to a
//! temporary file in the same directory, is flushed to disk, and is then renamed
//! over the final name, so a crash never leaves half a document under a key.
//! Temporary file names contain '~', which no valid key may contain, so a key
//! can never address a temporary file. Documents are private to Steno's user: files are created
//! 0600 and the directories Steno creates 0700, whatever the umask.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::{validate_key, DocumentStorage, StorageError};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

/// Mode of stored documents.
const DOCUMENT_FILE_MODE: u32 = 0o600;
/// Mode of the directories the storage creates.
const DOCUMENT_DIR_MODE: u32 = 0o700;

/// A directory builder that creates private directories.
fn private_dir_builder(recursive: bool) -> DirBuilder {
    let mut builder = DirBuilder::new();
    builder.recursive(recursive);
    #[cfg(unix)]
    builder.mode(DOCUMENT_DIR_MODE);
    builder
}

/// Stores documents as files below a root directory.
#[derive(Debug, Clone)]
pub struct DirectoryStorage {
    root: PathBuf,
}

impl DirectoryStorage {
    /// Opens the storage at `root`, creating the directory (and its parents) when missing.
    pub fn open(root: PathBuf) -> Result<Self, StorageError> {
        private_dir_builder(true)
            .create(&root)
            .map_err(|source| StorageError::Io {
                action: "create storage directory",
                path: root.clone(),
                source,
            })?;
        let root = fs::canonicalize(&root).map_err(|source| StorageError::Io {
            action: "resolve storage directory",
            path: root.clone(),
            source,
        })?;
        if !root.is_dir() {
            return Err(StorageError::Io {
                action: "use storage directory",
                path: root,
                source: std::io::Error::new(ErrorKind::NotADirectory, "not a directory"),
            });
        }
        Ok(DirectoryStorage { root })
    }

    /// The absolute root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file path for a key. Only call with a key that passed [`validate_key`].
    fn path_for(&self, key: &str) -> PathBuf {
        let mut path = self.root.clone();
        path.extend(key.split('/'));
        path
    }
}

/// Runs blocking file-system work on tokio's blocking thread pool.
async fn run_blocking<T, Work>(path: &Path, work: Work) -> Result<T, StorageError>
where
    T: Send + 'static,
    Work: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join_error) => Err(StorageError::Io {
            action: "finish background file operation on",
            path: path.to_path_buf(),
            source: std::io::Error::other(join_error.to_string()),
        }),
    }
}

/// Whether an I/O error means "there is no file at this path".
fn is_missing(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::NotFound | ErrorKind::NotADirectory | ErrorKind::IsADirectory
    )
}

/// A name for a temporary file next to `final_path`: hidden, unique, and unreachable by any key.
fn temporary_path_next_to(final_path: &Path, purpose: &str) -> PathBuf {
    let final_name = final_path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = uuid::Uuid::new_v4().simple();
    final_path.with_file_name(format!(".{final_name}~{purpose}-{unique}.tmp"))
}

/// Creates the directories between `root` and `file_path`, but never `root` itself:
/// a missing root means the storage is misconfigured or unmounted, and is reported.
fn create_parent_directories(root: &Path, file_path: &Path) -> Result<(), StorageError> {
    let Some(parent) = file_path.parent() else {
        return Ok(());
    };
    let Ok(relative_parent) = parent.strip_prefix(root) else {
        return Ok(());
    };
    let mut directory = root.to_path_buf();
    for component in relative_parent.components() {
        directory.push(component);
        match private_dir_builder(false).create(&directory) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::AlreadyExists && directory.is_dir() => {}
            Err(source) => {
                return Err(StorageError::Io {
                    action: "create directory",
                    path: directory,
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to a new file at `temporary_path` and flushes it to disk.
fn write_and_sync(temporary_path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let io_error = |action: &'static str| {
        let path = temporary_path.to_path_buf();
        move |source| StorageError::Io {
            action,
            path,
            source,
        }
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(DOCUMENT_FILE_MODE);
    let mut file = options
        .open(temporary_path)
        .map_err(io_error("create temporary file"))?;
    file.write_all(bytes)
        .map_err(io_error("write temporary file"))?;
    file.sync_all().map_err(io_error("flush temporary file"))?;
    Ok(())
}

/// Flushes a directory's entries (such as a rename into it) to disk.
fn sync_directory(directory: &Path) -> Result<(), StorageError> {
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| StorageError::Io {
            action: "flush directory",
            path: directory.to_path_buf(),
            source,
        })
}

/// Atomically replaces the file at `final_path` with `bytes`.
fn write_atomically(root: &Path, final_path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    create_parent_directories(root, final_path)?;
    let temporary_path = temporary_path_next_to(final_path, "upload");
    let written = write_and_sync(&temporary_path, bytes).and_then(|()| {
        fs::rename(&temporary_path, final_path).map_err(|source| StorageError::Io {
            action: "move temporary file into place at",
            path: final_path.to_path_buf(),
            source,
        })
    });
    if let Err(error) = written {
        // Best effort: the temporary file may not exist if creating it failed.
        let _ = fs::remove_file(&temporary_path);
        return Err(error);
    }
    match final_path.parent() {
        Some(directory) => sync_directory(directory),
        None => Ok(()),
    }
}

/// Proves the root accepts new files by creating, flushing and removing a probe file.
fn probe_writable(root: &Path) -> Result<(), StorageError> {
    let probe_path = temporary_path_next_to(&root.join("health"), "check");
    let written = write_and_sync(&probe_path, b"steno storage check");
    let removed = fs::remove_file(&probe_path);
    written?;
    removed.map_err(|source| StorageError::Io {
        action: "remove probe file",
        path: probe_path,
        source,
    })
}

#[async_trait::async_trait]
impl DocumentStorage for DirectoryStorage {
    async fn put(
        &self,
        key: &str,
        bytes: bytes::Bytes,
        _content_type: &str,
    ) -> Result<(), StorageError> {
        validate_key(key)?;
        let root = self.root.clone();
        let final_path = self.path_for(key);
        let reported_path = final_path.clone();
        run_blocking(&reported_path, move || {
            write_atomically(&root, &final_path, &bytes)
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<bytes::Bytes, StorageError> {
        validate_key(key)?;
        let path = self.path_for(key);
        match tokio::fs::read(&path).await {
            Ok(contents) => Ok(bytes::Bytes::from(contents)),
            Err(error) if is_missing(&error) && !self.root.is_dir() => Err(StorageError::Io {
                action: "read storage directory",
                path: self.root.clone(),
                source: error,
            }),
            Err(error) if is_missing(&error) => Err(StorageError::NotFound {
                key: key.to_string(),
            }),
            Err(source) => Err(StorageError::Io {
                action: "read document file",
                path,
                source,
            }),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        validate_key(key)?;
        let path = self.path_for(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if is_missing(&error) => Ok(()),
            Err(source) => Err(StorageError::Io {
                action: "delete document file",
                path,
                source,
            }),
        }
    }

    async fn check(&self) -> Result<(), StorageError> {
        let root = self.root.clone();
        run_blocking(&self.root, move || probe_writable(&root)).await
    }

    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn open_in(temporary: &tempfile::TempDir) -> DirectoryStorage {
        DirectoryStorage::open(temporary.path().join("documents")).unwrap()
    }

    /// Every file below `directory`, as paths relative to it.
    fn files_below(directory: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![directory.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in fs::read_dir(&current).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    let relative = path.strip_prefix(directory).unwrap();
                    found.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        found.sort();
        found
    }

    #[tokio::test]
    async fn open_creates_the_root_and_describes_it() {
        let temporary = tempfile::tempdir().unwrap();
        let root = temporary.path().join("nested").join("documents");
        let storage = DirectoryStorage::open(root.clone()).unwrap();
        assert!(root.is_dir());
        assert_eq!(
            storage.describe(),
            format!("directory {}", fs::canonicalize(&root).unwrap().display())
        );
    }

    #[tokio::test]
    async fn open_fails_when_the_root_is_a_file() {
        let temporary = tempfile::tempdir().unwrap();
        let root = temporary.path().join("documents");
        fs::write(&root, b"not a directory").unwrap();
        let error = DirectoryStorage::open(root).unwrap_err();
        assert!(matches!(error, StorageError::Io { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn put_get_overwrite_delete_round_trip() {
        let temporary = tempfile::tempdir().unwrap();
        let storage = open_in(&temporary);
        let key = "firm-1/3f2b6c1e-8d7a-4c1e-9a51-0b6f3e2d1c4a";

        storage
            .put(key, Bytes::from_static(b"first version"), "application/pdf")
            .await
            .unwrap();
        assert_eq!(
            storage.get(key).await.unwrap(),
            Bytes::from_static(b"first version")
        );
        assert!(storage.root().join("firm-1").is_dir());

        storage
            .put(key, Bytes::from_static(b"second"), "application/pdf")
            .await
            .unwrap();
        assert_eq!(
            storage.get(key).await.unwrap(),
            Bytes::from_static(b"second")
        );

        storage.delete(key).await.unwrap();
        let error = storage.get(key).await.unwrap_err();
        assert!(
            matches!(&error, StorageError::NotFound { key: missing } if missing == key),
            "{error:?}"
        );
        // Deleting again is not an error.
        storage.delete(key).await.unwrap();
    }

    #[tokio::test]
    async fn empty_documents_are_stored() {
        let temporary = tempfile::tempdir().unwrap();
        let storage = open_in(&temporary);
        storage
            .put("firm-1/empty", Bytes::new(), "text/plain")
            .await
            .unwrap();
        assert!(storage.get("firm-1/empty").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn missing_keys_are_not_found() {
        let temporary = tempfile::tempdir().unwrap();
        let storage = open_in(&temporary);
        storage
            .put("firm-1/doc", Bytes::from_static(b"x"), "text/plain")
            .await
            .unwrap();
        for key in ["firm-2/doc", "firm-1/other", "firm-1", "firm-1/doc/inner"] {
            let error = storage.get(key).await.unwrap_err();
            assert!(
                matches!(error, StorageError::NotFound { .. }),
                "{key}: {error:?}"
            );
            storage.delete(key).await.unwrap();
        }
        assert_eq!(
            storage.get("firm-1/doc").await.unwrap(),
            Bytes::from_static(b"x")
        );
    }

    #[tokio::test]
    async fn invalid_keys_are_rejected_and_nothing_is_written_outside_the_root() {
        let temporary = tempfile::tempdir().unwrap();
        let storage = open_in(&temporary);
        let outside = temporary.path().join("outside");
        let outside_absolute = format!("{}", outside.display());
        for key in [
            "../etc/passwd",
            "../outside",
            "firm/../../outside",
            outside_absolute.as_str(),
            "/etc/passwd",
            "",
            "firm//doc",
            "firm/doc/",
        ] {
            let error = storage
                .put(key, Bytes::from_static(b"x"), "text/plain")
                .await
                .unwrap_err();
            assert!(
                matches!(&error, StorageError::InvalidKey { key: named, .. } if named == key),
                "{key:?}: {error:?}"
            );
            assert!(matches!(
                storage.get(key).await,
                Err(StorageError::InvalidKey { .. })
            ));
            assert!(matches!(
                storage.delete(key).await,
                Err(StorageError::InvalidKey { .. })
            ));
        }
        assert!(!outside.exists());
        let mut entries: Vec<String> = fs::read_dir(temporary.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        assert_eq!(entries, ["documents"]);
        assert!(files_below(storage.root()).is_empty());
    }

    #[tokio::test]
    async fn no_temporary_files_are_left_behind() {
        let temporary = tempfile::tempdir().unwrap();
        let storage = open_in(&temporary);
        for round in 0..3 {
            let contents = Bytes::from(format!("version {round}"));
            storage
                .put("firm-1/doc-a", contents.clone(), "text/plain")
                .await
                .unwrap();
            storage
                .put("firm-1/sub/doc-b", contents, "text/plain")
                .await
                .unwrap();
        }
        storage.check().await.unwrap();
        assert_eq!(
            files_below(storage.root()),
            ["firm-1/doc-a", "firm-1/sub/doc-b"]
        );
    }

    #[tokio::test]
    async fn failed_put_leaves_no_temporary_file() {
        let temporary = tempfile::tempdir().unwrap();
        let storage = open_in(&temporary);
        // A directory already sits at the final path, so the rename must fail.
        fs::create_dir_all(storage.root().join("firm-1").join("taken").join("child")).unwrap();
        let error = storage
            .put("firm-1/taken", Bytes::from_static(b"x"), "text/plain")
            .await
            .unwrap_err();
        assert!(matches!(error, StorageError::Io { .. }), "{error:?}");
        assert!(files_below(storage.root()).is_empty());
    }

    #[tokio::test]
    async fn concurrent_puts_to_one_key_leave_one_whole_version() {
        let temporary = tempfile::tempdir().unwrap();
        let storage = std::sync::Arc::new(open_in(&temporary));
        let versions: Vec<Bytes> = (0..8u8)
            .map(|version| Bytes::from(vec![version; 64 * 1024]))
            .collect();
        let mut tasks = Vec::new();
        for contents in versions.clone() {
            let storage = storage.clone();
            tasks.push(tokio::spawn(async move {
                storage
                    .put("firm-1/contested", contents, "text/plain")
                    .await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let stored = storage.get("firm-1/contested").await.unwrap();
        assert!(versions.contains(&stored));
        assert_eq!(files_below(storage.root()), ["firm-1/contested"]);
    }

    #[tokio::test]
    async fn check_passes_on_a_writable_root() {
        let temporary = tempfile::tempdir().unwrap();
        let storage = open_in(&temporary);
        storage.check().await.unwrap();
        assert!(files_below(storage.root()).is_empty());
    }

    #[tokio::test]
    async fn check_and_put_fail_when_the_root_is_replaced_by_a_file() {
        let temporary = tempfile::tempdir().unwrap();
        let storage = open_in(&temporary);
        fs::remove_dir(storage.root()).unwrap();
        fs::write(storage.root(), b"not a directory any more").unwrap();

        let error = storage.check().await.unwrap_err();
        assert!(matches!(error, StorageError::Io { .. }), "{error:?}");
        assert!(error.to_string().contains("documents"), "{error}");

        let error = storage
            .put("firm-1/doc", Bytes::from_static(b"x"), "text/plain")
            .await
            .unwrap_err();
        assert!(matches!(error, StorageError::Io { .. }), "{error:?}");
        let error = storage.get("firm-1/doc").await.unwrap_err();
        assert!(matches!(error, StorageError::Io { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn put_does_not_recreate_a_removed_root() {
        let temporary = tempfile::tempdir().unwrap();
        let storage = open_in(&temporary);
        fs::remove_dir(storage.root()).unwrap();
        assert!(storage.check().await.is_err());
        let error = storage
            .put("firm-1/doc", Bytes::from_static(b"x"), "text/plain")
            .await
            .unwrap_err();
        assert!(matches!(error, StorageError::Io { .. }), "{error:?}");
        assert!(!storage.root().exists());
    }
}
