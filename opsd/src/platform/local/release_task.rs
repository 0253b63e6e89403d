//! One-off commands of a release on the local platform (its migrations, say): the service's
//! program with other arguments and the release's environment, confined like a release (own
//! process group, killed with opsd), bounded in time and in the output kept.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::release_process::{confine_child, spawn_from_lasting_thread};
use super::supervisor::LocalServiceConfig;
use crate::core::duration::format_duration;
use crate::platform::{PlatformError, ReleaseSpec, TaskOutput};

/// The most of each stream kept.
const KEPT_OUTPUT_BYTES: usize = 64 * 1024;

/// Runs `config`'s program with `args` and `env`, waiting at most `timeout`.
pub(super) async fn run(
    config: &LocalServiceConfig,
    release: &ReleaseSpec,
    env: BTreeMap<String, String>,
    args: &[String],
    timeout: Duration,
) -> Result<TaskOutput, PlatformError> {
    let failed = |message: String| PlatformError::Operation {
        operation: format!("{} {}", release.release_id(), args.join(" ")),
        message,
    };
    let program = config
        .command
        .first()
        .ok_or_else(|| failed("the service has no command".into()))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(&env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = &config.working_dir {
        command.current_dir(dir);
    }
    confine_child(&mut command);
    let mut child = spawn_from_lasting_thread(command)
        .await
        .map_err(|error| failed(format!("could not run {program}: {error}")))?;
    let stdout = tokio::spawn(read_kept(child.stdout.take()));
    let stderr = tokio::spawn(read_kept(child.stderr.take()));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status.map_err(|error| failed(format!("waiting for it failed: {error}")))?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(failed(format!(
                "it did not finish within {} and was killed",
                format_duration(timeout)
            )));
        }
    };
    let stdout = stdout.await.unwrap_or_default();
    let stderr = stderr.await.unwrap_or_default();
    Ok(TaskOutput {
        success: status.success(),
        ended: describe_status(status),
        stdout,
        stderr,
    })
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended without a status".into(),
    }
}

/// Reads a stream to its end, keeping its first [`KEPT_OUTPUT_BYTES`] (the rest is read and
/// dropped, so the child never blocks on a full pipe).
async fn read_kept(stream: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => {
                let room = KEPT_OUTPUT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..read.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell_service() -> LocalServiceConfig {
        LocalServiceConfig::new("svc", vec!["/bin/sh".into()])
    }

    fn release() -> ReleaseSpec {
        ReleaseSpec {
            service: "svc".into(),
            version: "v2".into(),
            env: BTreeMap::from([("GREETING".to_string(), "hello".to_string())]),
            env_from: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn a_task_runs_with_the_release_environment_and_reports_its_end() {
        let args = [
            "-c".to_string(),
            "echo $GREETING; echo oops >&2; exit 3".to_string(),
        ];
        let env = release().env.clone();
        let output = run(
            &shell_service(),
            &release(),
            env,
            &args,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(output.stdout.trim(), "hello");
        assert_eq!(output.stderr.trim(), "oops");
        assert!(!output.success);
        assert_eq!(output.ended, "exit status 3");
    }

    #[tokio::test]
    async fn a_task_past_its_timeout_is_killed_and_its_output_is_bounded() {
        let args = ["-c".to_string(), "sleep 30".to_string()];
        let error = run(
            &shell_service(),
            &release(),
            BTreeMap::new(),
            &args,
            Duration::from_millis(200),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.contains("did not finish within 200ms"), "{error}");
        let loud = [
            "-c".to_string(),
            "head -c 300000 /dev/zero | tr '\\\\0' x".to_string(),
        ];
        let output = run(
            &shell_service(),
            &release(),
            BTreeMap::new(),
            &loud,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert!(output.success);
        assert_eq!(output.stdout.len(), KEPT_OUTPUT_BYTES);
    }
}
