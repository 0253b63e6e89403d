//! Files and directories only opsd's user may read: data directories 0700, data files 0600,
//! created so and repaired when an older opsd left them open to others.
//!
//! `main` also sets the process umask to 077, so whatever opsd and the releases it starts create
//! (logs, snapshots, Steno's database and documents) is private without each writer remembering.

use std::io;
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Data directories: only the owner may list or enter them.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// Data files: only the owner may read or write them.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Makes the process's default for new files owner-only (umask 077). Called first by `main`.
pub fn restrict_process_umask() {
    #[cfg(unix)]
    // SAFETY: umask only changes the calling process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` (and missing parents, each 0700) and sets `dir` itself to 0700.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(PRIVATE_DIR_MODE);
    builder.create(dir)?;
    set_mode(dir, PRIVATE_DIR_MODE)
}

/// Creates `path` empty with mode 0600 when it is missing, else sets it to 0600.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(PRIVATE_FILE_MODE);
    options.open(path)?;
    set_mode(path, PRIVATE_FILE_MODE)
}

/// Sets `path` to 0600 when it exists.
pub fn restrict_existing_file(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(_) => set_mode(path, PRIVATE_FILE_MODE),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Opens `path` for appending, creating it with mode 0600.
pub fn open_private_append(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    options.mode(PRIVATE_FILE_MODE);
    options.open(path)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// The permission bits of `path` (for tests and checks).
#[cfg(unix)]
pub fn mode_of(path: &Path) -> io::Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn directories_and_files_become_private_even_when_they_were_open() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode_of(&dir).unwrap(), 0o700);
        assert_eq!(mode_of(&root.path().join("a")).unwrap(), 0o700);

        let open_dir = root.path().join("open");
        std::fs::create_dir(&open_dir).unwrap();
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&open_dir).unwrap();
        assert_eq!(mode_of(&open_dir).unwrap(), 0o700);

        let file = dir.join("data.db");
        ensure_private_file(&file).unwrap();
        assert_eq!(mode_of(&file).unwrap(), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&file, b"kept").unwrap();
        ensure_private_file(&file).unwrap();
        assert_eq!(mode_of(&file).unwrap(), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"kept");

        restrict_existing_file(&dir.join("missing")).unwrap();
        let log = dir.join("release.log");
        drop(open_private_append(&log).unwrap());
        assert_eq!(mode_of(&log).unwrap(), 0o600);
    }
}
