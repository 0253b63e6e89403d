//! Steno's data files are private to its user: directories it creates are 0700 and the SQLite
//! database (which holds the token signing secret) with its `-wal` and `-shm` files are 0600,
//! whatever the process umask.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io;
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Mode of the files Steno writes.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of the directories Steno creates.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `path` and its missing parents with mode 0700 (existing directories are left alone).
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(PRIVATE_DIR_MODE);
    builder.create(path)
}

/// Creates the database file with mode 0600 when missing, and narrows an existing database file
/// and its `-wal`/`-shm` companions to 0600.
pub fn make_database_files_private(database: &Path) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    options.mode(PRIVATE_FILE_MODE);
    drop(options.open(database)?);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        narrow_to_private(Path::new(&name))?;
    }
    Ok(())
}

#[cfg(unix)]
fn narrow_to_private(path: &Path) -> io::Result<()> {
    match fs::metadata(path) {
        Ok(metadata) if metadata.permissions().mode() & 0o077 != 0 => {
            tracing::warn!(path = %path.display(), "narrowing database file permissions to 0600");
            fs::set_permissions(path, fs::Permissions::from_mode(PRIVATE_FILE_MODE))
        }
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(not(unix))]
fn narrow_to_private(_path: &Path) -> io::Result<()> {
    Ok(())
}
