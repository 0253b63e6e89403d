//! The records of release processes that outlive opsd: which release a process runs, a
//! fingerprint of how it was started (the release's spec and its service's command and
//! environment, hashed, so no value of either is written), its identity and its port. A restarted
//! opsd re-adopts a release only when the fingerprint still matches (see
//! [`super::supervisor::Supervisor::stop_unclaimed`] for the ones it no longer wants); one started
//! differently keeps serving, its record set aside, until its replacement is ready.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::process_records::{file_name_safe, read_records, remove_record, ProcessIdentity};
use super::supervisor::LocalServiceConfig;
use crate::platform::ReleaseSpec;

/// What opsd records about one running release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub release_id: String,
    pub fingerprint: String,
    pub process: ProcessIdentity,
    pub port: u16,
}

/// Where the record of `release_id` lives in `dir`.
pub fn record_path(dir: &Path, release_id: &str) -> PathBuf {
    dir.join(format!("{}.json", file_name_safe(release_id)))
}

/// Where the record of a process of `release_id` that is being replaced is set aside.
pub fn superseded_record_path(dir: &Path, release_id: &str, pid: u32) -> PathBuf {
    dir.join(format!(
        "{}.superseded-{pid}.json",
        file_name_safe(release_id)
    ))
}

/// A SHA-256 of everything that decides how a release runs.
pub fn fingerprint(config: &LocalServiceConfig, spec: &ReleaseSpec) -> String {
    let described = serde_json::json!({
        "service": config.name,
        "command": config.command,
        "base_env": config.base_env,
        "env_from": config.env_from,
        "health_path": config.health_path,
        "working_dir": config.working_dir,
        "spec": spec,
    });
    let digest = Sha256::digest(described.to_string().as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Stops every recorded release process still running (SIGTERM, SIGKILL after `grace`) and
/// removes the records; returns the release ids stopped. For `opsd down` without an opsd.
pub async fn stop_recorded_releases(dir: &Path, grace: std::time::Duration) -> Vec<String> {
    let mut stopped = Vec::new();
    for (path, record) in read_records::<ReleaseRecord>(dir) {
        if record.process.is_alive() {
            record.process.stop(grace).await;
            stopped.push(record.release_id.clone());
        }
        remove_record(&path);
    }
    stopped
}
