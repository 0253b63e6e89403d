//! What opsd writes down about the processes of the local data plane that outlive it (each
//! service's router and each release): the pid with the kernel's start time of that process, in
//! private JSON files under the data directory. A restarted opsd re-adopts exactly those
//! processes, never a stranger that reused a pid, and stops the ones it no longer wants.
//!
//! invariant: a process is signalled through its record only while its pid still has the
//! recorded start time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How often a process being waited for is looked at again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long a process that got SIGKILL may take to disappear.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// One process, told apart from any later process that reuses its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    pub pid: u32,
    /// When it started, in clock ticks since boot (`/proc/<pid>/stat`, field 22).
    pub start_ticks: u64,
}

impl ProcessIdentity {
    /// The identity of the running process `pid`; `None` when there is none (or a zombie).
    pub fn of(pid: u32) -> Option<ProcessIdentity> {
        start_ticks(pid).map(|start_ticks| ProcessIdentity { pid, start_ticks })
    }

    /// Whether this very process still runs.
    pub fn is_alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }

    /// Waits up to `timeout` for the process to end; true once it has.
    pub async fn wait_gone(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.is_alive() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        true
    }

    /// Sends `signal` to the process group this process leads, if it is still this process.
    pub fn signal_group(&self, signal: libc::c_int) {
        if self.is_alive() {
            super::release_process::signal_process_group(self.pid, signal);
        }
    }

    /// SIGTERM to its process group, SIGKILL after `grace`; true once it is gone.
    pub async fn stop(&self, grace: Duration) -> bool {
        self.signal_group(libc::SIGTERM);
        self.stop_after(grace).await
    }

    /// Waits up to `grace` for the process to end, then sends SIGKILL to its process group;
    /// true once it is gone.
    pub async fn stop_after(&self, grace: Duration) -> bool {
        if self.wait_gone(grace).await {
            return true;
        }
        tracing::warn!(
            pid = self.pid,
            grace_ms = grace.as_millis() as u64,
            "a process ignored SIGTERM; killing it"
        );
        self.signal_group(libc::SIGKILL);
        self.wait_gone(KILL_WAIT).await
    }
}

/// Field 22 of `/proc/<pid>/stat`, or `None` when the process does not exist or is a zombie.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: the name may hold spaces and parentheses, so fields are
    // counted after the last ')'. There, field 3 (state) is the first and field 22 the 20th.
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Writes `record` to `path` (owner-only), replacing the file in one step.
pub fn write_record<T: Serialize>(path: &Path, record: &T) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::private_files::ensure_private_dir(dir)?;
    }
    let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    let partial = path.with_extension("json.partial");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&partial)?;
        file.write_all(&json)?;
    }
    std::fs::rename(&partial, path)
}

/// Every record in `dir` (files ending in `.json`), with its path. A file that cannot be read
/// as a record is reported and left out.
pub fn read_records<T: DeserializeOwned>(dir: &Path) -> Vec<(PathBuf, T)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        match read_record(&path) {
            Some(record) => records.push((path, record)),
            None => continue,
        }
    }
    records.sort_by(|left, right| left.0.cmp(&right.0));
    records
}

/// The record at `path`; `None` when there is none or it cannot be read (reported).
pub fn read_record<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(path = %path.display(), error = %error, "cannot read a process record");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(record) => Some(record),
        Err(error) => {
            tracing::warn!(path = %path.display(), error = %error, "a process record is not valid; ignoring it");
            None
        }
    }
}

/// Removes the record at `path`, if any.
pub fn remove_record(path: &Path) {
    if let Err(error) = std::fs::remove_file(path) {
        if error.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %error, "cannot remove a process record");
        }
    }
}

/// A file name made of `text` with everything but letters, digits, `.`, `-` and `_` replaced.
pub fn file_name_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_an_identity_and_a_reused_pid_does_not_pass_for_it() {
        let me = ProcessIdentity::of(std::process::id()).expect("this process runs");
        assert!(me.is_alive());
        let impostor = ProcessIdentity {
            pid: me.pid,
            start_ticks: me.start_ticks + 1,
        };
        assert!(!impostor.is_alive());
        assert_eq!(ProcessIdentity::of(u32::MAX), None);
    }

    #[tokio::test]
    async fn a_stopped_process_is_gone_and_its_identity_says_so() {
        let mut command = std::process::Command::new("sleep");
        command.arg("30");
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().unwrap();
        let identity = ProcessIdentity::of(child.id()).unwrap();
        let reaper = std::thread::spawn(move || child.wait());
        assert!(identity.stop(Duration::from_secs(5)).await);
        assert!(!identity.is_alive());
        reaper.join().unwrap().unwrap();
    }

    #[test]
    fn records_round_trip_privately_and_unreadable_ones_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records").join("a.json");
        let identity = ProcessIdentity {
            pid: 7,
            start_ticks: 9,
        };
        write_record(&path, &identity).unwrap();
        std::fs::write(dir.path().join("records").join("b.json"), "not json").unwrap();
        let records: Vec<(PathBuf, ProcessIdentity)> = read_records(&dir.path().join("records"));
        assert_eq!(records, vec![(path.clone(), identity)]);
        assert_eq!(crate::private_files::mode_of(&path).unwrap() & 0o777, 0o600);
        remove_record(&path);
        assert_eq!(read_record::<ProcessIdentity>(&path), None);
    }
}
