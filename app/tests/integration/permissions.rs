//! Steno's data files are private under a permissive umask: the SQLite database (with the token
//! signing secret), its WAL and shared-memory files and stored documents are 0600, and the
//! directories Steno creates are 0700.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use steno::config::StorageSettings;

use crate::fixtures::HOSPITAL_BILL;
use crate::support::TestApp;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn files_under(directory: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.push(path.clone());
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_private_under_a_022_umask() {
    // SAFETY: umask only sets this process's file-creation mask; 022 is the usual default.
    let previous = unsafe { libc::umask(0o022) };
    let app = TestApp::sqlite_with(|settings| {
        let root = Path::new(settings.database_url.trim_start_matches("sqlite://"))
            .parent()
            .unwrap()
            .join("created-by-steno");
        settings.database_url = format!("sqlite://{}", root.join("db/steno.db").display());
        settings.storage = StorageSettings::Directory(root.join("documents"));
    })
    .await;
    let (token, _) = app.register("Rivera & Hale LLP", "avery@rh.test").await;
    let uploaded = app
        .upload(&token, "bill.txt", "text/plain", HOSPITAL_BILL.as_bytes())
        .await;
    assert_eq!(uploaded.status, axum::http::StatusCode::CREATED);
    unsafe { libc::umask(previous) };

    let root = app.data_dir().join("created-by-steno");
    let database = root.join("db/steno.db");
    for file in [
        database.clone(),
        root.join("db/steno.db-wal"),
        root.join("db/steno.db-shm"),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    for directory in [root.clone(), root.join("db"), root.join("documents")] {
        assert_eq!(mode(&directory), 0o700, "{}", directory.display());
    }
    let stored = files_under(&root.join("documents"));
    assert!(stored.iter().any(|path| path.is_file()), "{stored:?}");
    for path in stored {
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), expected, "{}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_file_left_readable_by_an_older_release_is_narrowed() {
    let data_dir = tempfile::tempdir().unwrap();
    let database = data_dir.path().join("steno.db");
    std::fs::write(&database, b"").unwrap();
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let url = format!("sqlite://{}", database.display());
    let opened = steno::db::Database::connect(&url).await.unwrap();
    assert_eq!(mode(&database), 0o600);
    opened.close().await;
}
