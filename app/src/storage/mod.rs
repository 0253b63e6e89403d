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

/// Starting a real local S3 emulator (`moto_server`) for tests.
///
/// Usage from any test in this crate:
///
/// ```ignore
/// let server = crate::storage::moto::MotoServer::start();
/// let client = server.s3_client();            // dummy credentials, us-east-1
/// client.create_bucket().bucket("documents").send().await.unwrap();
/// let sdk_config = crate::storage::moto::test_sdk_config(); // for S3Storage::from_sdk_config
/// // ... use server.endpoint_url() as the S3 endpoint ...
/// // the emulator is killed when `server` is dropped
/// ```
///
/// The executable is `.venv/bin/moto_server` under the workspace root, or
/// the path in the `MOTO_SERVER` environment variable. A missing executable
/// fails the test with instructions; it never skips.
#[cfg(test)]
pub(crate) mod moto {
    use std::io::{BufRead, BufReader};
    use std::net::{SocketAddr, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// How long the emulator may take to start listening.
    const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

    /// Region the test clients sign requests for.
    pub(crate) const TEST_REGION: &str = "us-east-1";

    /// A running `moto_server` child process, killed when dropped.
    pub(crate) struct MotoServer {
        child: Child,
        port: u16,
    }

    /// What the thread reading the emulator's log reports back.
    enum StartupReport {
        Listening(u16),
        ExitedBeforeListening(String),
    }

    /// Path of the `moto_server` executable: `MOTO_SERVER`, else the workspace's virtual environment.
    pub(crate) fn moto_server_path() -> PathBuf {
        match std::env::var_os("MOTO_SERVER") {
            Some(path) => PathBuf::from(path),
            None => Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new(".."))
                .join(".venv")
                .join("bin")
                .join("moto_server"),
        }
    }

    /// Reads the port out of the server's " * Running on http://127.0.0.1:PORT" log line.
    fn port_from_log_line(line: &str) -> Option<u16> {
        let address = line.split("Running on http://").nth(1)?;
        let port_text = address.trim().rsplit(':').next()?;
        let digits: String = port_text
            .chars()
            .take_while(|character| character.is_ascii_digit())
            .collect();
        digits.parse().ok()
    }

    impl MotoServer {
        /// Starts `moto_server` on 127.0.0.1 with a port picked by the operating system
        /// and waits until it accepts connections. Panics with instructions on failure.
        pub(crate) fn start() -> MotoServer {
            let executable = moto_server_path();
            assert!(
                executable.is_file(),
                "the S3 emulator moto_server was not found at {}: run the project's test-dependency \
                 installer (it installs the Python package `moto` into .venv at the workspace root), \
                 or set MOTO_SERVER to the path of a moto_server executable",
                executable.display()
            );
            // Port 0 lets the operating system pick a free port, so parallel tests never race
            // for one; the server prints the port it got in its startup log on stderr.
            let mut child = Command::new(&executable)
                .args(["-H", "127.0.0.1", "-p", "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|error| {
                    panic!("could not start {}: {error}", executable.display())
                });
            let stderr = child.stderr.take().expect("stderr was requested as a pipe");
            let (report_sender, report_receiver) = mpsc::channel();
            // The thread keeps draining stderr after startup so the server never blocks on a
            // full pipe while logging requests; it ends when the server exits.
            std::thread::spawn(move || {
                let mut startup_log = String::new();
                let mut port_reported = false;
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if port_reported {
                        continue;
                    }
                    if let Some(port) = port_from_log_line(&line) {
                        port_reported = true;
                        let _ = report_sender.send(StartupReport::Listening(port));
                    } else {
                        startup_log.push_str(&line);
                        startup_log.push('\n');
                    }
                }
                if !port_reported {
                    let _ = report_sender.send(StartupReport::ExitedBeforeListening(startup_log));
                }
            });
            let port = match report_receiver.recv_timeout(STARTUP_TIMEOUT) {
                Ok(StartupReport::Listening(port)) => port,
                Ok(StartupReport::ExitedBeforeListening(log)) => {
                    let status = child.wait();
                    panic!(
                        "moto_server exited before listening ({status:?}); its output was:\n{log}"
                    )
                }
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "moto_server did not report a listening port within {STARTUP_TIMEOUT:?}: {error}"
                    )
                }
            };
            let server = MotoServer { child, port };
            server.wait_until_accepting();
            server
        }

        fn wait_until_accepting(&self) {
            let address = SocketAddr::from(([127, 0, 0, 1], self.port));
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                match TcpStream::connect_timeout(&address, Duration::from_secs(1)) {
                    Ok(_) => return,
                    Err(error) if Instant::now() >= deadline => {
                        panic!("moto_server on {address} does not accept connections: {error}")
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }

        /// The HTTP endpoint to give the S3 client, such as "http://127.0.0.1:40123".
        pub(crate) fn endpoint_url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        /// An S3 client for this emulator with dummy credentials, path-style addressing and
        /// no retries, independent of the machine's AWS configuration.
        pub(crate) fn s3_client(&self) -> aws_sdk_s3::Client {
            let config = aws_sdk_s3::config::Builder::from(&test_sdk_config())
                .endpoint_url(self.endpoint_url())
                .force_path_style(true)
                .build();
            aws_sdk_s3::Client::from_conf(config)
        }
    }

    impl Drop for MotoServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// An AWS configuration built only from constants: dummy static credentials,
    /// [`TEST_REGION`], one attempt per request. Reads no environment variables or files.
    pub(crate) fn test_sdk_config() -> aws_config::SdkConfig {
        let credentials = aws_sdk_s3::config::Credentials::new("test", "test", None, None, "test");
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(TEST_REGION))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::standard().with_max_attempts(1))
            .build()
    }

    mod tests {
        use super::port_from_log_line;

        #[test]
        fn reads_port_from_startup_line() {
            assert_eq!(
                port_from_log_line(" * Running on http://127.0.0.1:36969"),
                Some(36969)
            );
            assert_eq!(port_from_log_line("Press CTRL+C to quit"), None);
        }
    }
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
