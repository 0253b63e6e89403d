//! The processes of releases: how they are spawned (from one lasting thread, in a process group
//! of their own, dying with opsd or outliving it), waited for, and terminated, whether this opsd
//! started them or took them over from an earlier one, and how their health is probed.

use std::net::Ipv4Addr;
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use super::process_records::ProcessIdentity;
use crate::error_chain::error_chain;

/// How often a re-adopted release (not opsd's child, so not waitable) is looked at.
const ADOPTED_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The process running a release: a child of this opsd, or one an earlier opsd started.
pub(super) enum ReleaseProcess {
    Child(Child),
    Adopted(ProcessIdentity),
}

impl ReleaseProcess {
    /// Waits until the process exits; says how.
    pub(super) async fn wait(&mut self) -> String {
        match self {
            ReleaseProcess::Child(child) => describe_exit(child.wait().await),
            ReleaseProcess::Adopted(process) => {
                while process.is_alive() {
                    tokio::time::sleep(ADOPTED_POLL_INTERVAL).await;
                }
                "exited (started by an earlier opsd, so its exit status is unknown)".to_string()
            }
        }
    }

    /// SIGTERM to its process group, SIGKILL after `grace`.
    pub(super) async fn terminate(&mut self, grace: Duration, release_id: &str) {
        match self {
            ReleaseProcess::Child(child) => terminate(child, grace, release_id).await,
            ReleaseProcess::Adopted(process) => {
                if grace.is_zero() {
                    process.signal_group(libc::SIGKILL);
                }
                if !process.stop(grace).await {
                    tracing::warn!(release = %release_id, pid = process.pid, "a re-adopted release did not stop");
                }
            }
        }
    }
}

fn describe_exit(exit: std::io::Result<ExitStatus>) -> String {
    match exit {
        Ok(status) => format!("exited ({status})"),
        Err(error) => format!("could not be waited for ({error})"),
    }
}

/// SIGTERM to the child's process group, SIGKILL after `grace`, then reap.
pub(super) async fn terminate(child: &mut Child, grace: Duration, release_id: &str) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        if !grace.is_zero() {
            signal_process_group(pid, libc::SIGTERM);
            if tokio::time::timeout(grace, child.wait()).await.is_ok() {
                return;
            }
            tracing::warn!(release = %release_id, grace_ms = grace.as_millis() as u64, "release ignored SIGTERM; killing it");
        }
        signal_process_group(pid, libc::SIGKILL);
    }
    #[cfg(not(unix))]
    let _ = (grace, release_id);
    let _ = child.start_kill();
    if let Err(error) = child.wait().await {
        tracing::warn!(release = %release_id, error = %error, "could not reap a stopped release");
    }
}

#[cfg(unix)]
pub(crate) fn signal_process_group(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions. The child is not reaped yet (we hold its
    // unwaited handle), so its pid, which is also its process group id, cannot have been reused.
    unsafe {
        libc::kill(-pid, signal);
    }
}

/// Puts the child in its own process group (a Ctrl-C at opsd's terminal does not reach it) and
/// nothing more: it outlives opsd.
pub(super) fn own_process_group(command: &mut Command) {
    #[cfg(unix)]
    command.process_group(0);
}

/// Puts the child in its own process group and, on Linux, has the kernel SIGKILL it when opsd
/// dies.
pub(super) fn confine_child(command: &mut Command) {
    #[cfg(unix)]
    command.process_group(0);
    #[cfg(target_os = "linux")]
    {
        let parent = std::process::id();
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls
        // (prctl, getppid) without allocating.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // opsd may have died before prctl took effect.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
}

struct SpawnRequest {
    command: Command,
    runtime: tokio::runtime::Handle,
    reply: oneshot::Sender<std::io::Result<Child>>,
}

/// Spawns on a thread that lives as long as opsd: the Linux parent-death signal fires when the
/// *thread* that forked the child exits, and tokio's blocking threads come and go.
pub(super) async fn spawn_from_lasting_thread(mut command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Option<std::sync::mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = std::sync::mpsc::channel::<SpawnRequest>();
        let started = std::thread::Builder::new()
            .name("opsd-spawner".to_string())
            .spawn(move || {
                for mut request in incoming {
                    let _runtime = request.runtime.enter();
                    let spawned = request.command.spawn();
                    // The caller gave up waiting (its task was cancelled): nobody would ever
                    // stop this child, so it does not start serving.
                    if let Err(Ok(mut unwanted)) = request.reply.send(spawned) {
                        let _ = unwanted.start_kill();
                    }
                }
            });
        match started {
            Ok(_) => Some(requests),
            Err(error) => {
                tracing::warn!(error = %error, "no spawner thread; children are spawned from runtime threads");
                None
            }
        }
    });
    let Some(spawner) = spawner else {
        return command.spawn();
    };
    let (reply, answer) = oneshot::channel();
    let request = SpawnRequest {
        command,
        runtime: tokio::runtime::Handle::current(),
        reply,
    };
    if let Err(unsent) = spawner.send(request) {
        command = unsent.0.command;
        return command.spawn();
    }
    answer
        .await
        .map_err(|_| std::io::Error::other("the spawner thread stopped"))?
}

/// Why a health probe failed.
pub(super) struct ProbeFailure {
    pub(super) detail: String,
    pub(super) timed_out: bool,
}

pub(super) async fn probe(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<(), ProbeFailure> {
    match http.get(url).timeout(timeout).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let snippet: String = body.chars().take(200).collect();
            Err(ProbeFailure {
                detail: format!("health check answered {status}: {snippet}"),
                timed_out: false,
            })
        }
        Err(error) => Err(ProbeFailure {
            detail: format!("health check failed: {}", error_chain(&error)),
            timed_out: error.is_timeout(),
        }),
    }
}

pub(super) fn health_url(port: u16, health_path: &str) -> String {
    if health_path.starts_with('/') {
        format!("http://127.0.0.1:{port}{health_path}")
    } else {
        format!("http://127.0.0.1:{port}/{health_path}")
    }
}

pub(super) fn pick_free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
