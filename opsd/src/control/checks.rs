//! Smoke checks a plan step runs against the canary: the release's own health, an HTTP request,
//! or a command with the canary's URL and version in its environment and in its arguments
//! (`{canary_url}`, `{canary_version}`); a failed command is reported with the tail of what it
//! printed, where a probe names what failed.

use tokio::task::JoinHandle;

use super::Daemon;
use crate::config::CheckSpec;
use crate::core::rollout::CheckState;
use crate::platform::{HealthStatus, ReleaseSpec};

impl Daemon {
    pub(super) async fn spawn_check(
        &self,
        service: &str,
        canary: &ReleaseSpec,
        name: &str,
    ) -> JoinHandle<CheckState> {
        let spec = self
            .config
            .services
            .get(service)
            .and_then(|config| config.checks.get(name))
            .cloned();
        let address = self.platforms.runner.release_url(canary).await;
        let name = name.to_string();
        let runner = self.platforms.runner.clone();
        let canary = canary.clone();
        tokio::spawn(async move {
            match spec {
                None => CheckState::Failed(format!("check {name} is not defined")),
                Some(CheckSpec::ReleaseHealth) => match runner.probe_health(&canary).await {
                    HealthStatus::Healthy => CheckState::Passed,
                    HealthStatus::Unhealthy(detail) => CheckState::Failed(detail),
                },
                Some(spec) => run_check(&spec, address.as_deref(), &canary.version).await,
            }
        })
    }
}

/// Runs one smoke check against the canary (its base URL, when the platform gives one).
pub async fn run_check(
    spec: &CheckSpec,
    base_url: Option<&str>,
    canary_version: &str,
) -> CheckState {
    match spec {
        CheckSpec::ReleaseHealth => {
            CheckState::Failed("release health checks are run by the daemon".into())
        }
        CheckSpec::Http { .. } if base_url.is_none() => {
            CheckState::Failed("the canary has no address to check".into())
        }
        CheckSpec::Http {
            path,
            expect_status,
            timeout,
        } => {
            let base_url = base_url.unwrap_or_default();
            let client = reqwest::Client::new();
            match client
                .get(format!("{base_url}{path}"))
                .timeout(*timeout)
                .send()
                .await
            {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let passed = match expect_status {
                        Some(expected) => status == *expected,
                        None => (200..300).contains(&status),
                    };
                    if passed {
                        CheckState::Passed
                    } else {
                        CheckState::Failed(format!("GET {path} answered {status}"))
                    }
                }
                Err(error) => CheckState::Failed(format!("GET {path} failed: {error}")),
            }
        }
        CheckSpec::Command { argv, timeout } => {
            let argv = match command_arguments(argv, base_url, canary_version) {
                Ok(argv) => argv,
                Err(detail) => return CheckState::Failed(detail),
            };
            let Some((program, args)) = argv.split_first() else {
                return CheckState::Failed("the check command is empty".into());
            };
            let program_name = std::path::Path::new(program)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| program.clone());
            let mut command = tokio::process::Command::new(program);
            command
                .args(args)
                .env("CANARY_VERSION", canary_version)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true);
            if let Some(base_url) = base_url {
                command.env("CANARY_URL", base_url);
            }
            match tokio::time::timeout(*timeout, command.output()).await {
                Ok(Ok(output)) if output.status.success() => CheckState::Passed,
                Ok(Ok(output)) => CheckState::Failed(format!(
                    "{program_name} exited with {}: {}",
                    output.status,
                    output_tail(&output.stdout, &output.stderr)
                )),
                Ok(Err(error)) => {
                    CheckState::Failed(format!("{program_name} could not run: {error}"))
                }
                Err(_) => CheckState::Failed(format!(
                    "{program_name} took longer than {} s",
                    timeout.as_secs()
                )),
            }
        }
    }
}

/// A check command's arguments with `{canary_url}` and `{canary_version}` filled in; a command
/// that names the URL fails when the canary has none.
fn command_arguments(
    argv: &[String],
    base_url: Option<&str>,
    canary_version: &str,
) -> Result<Vec<String>, String> {
    argv.iter()
        .map(|arg| {
            let arg = arg.replace("{canary_version}", canary_version);
            match (arg.contains("{canary_url}"), base_url) {
                (false, _) => Ok(arg),
                (true, Some(url)) => Ok(arg.replace("{canary_url}", url)),
                (true, None) => Err("the canary has no address to check".to_string()),
            }
        })
        .collect()
}

/// The most characters of a failed command's output a check's detail keeps.
const MAX_OUTPUT_TAIL_CHARS: usize = 400;

/// The end of what a failed command printed (its standard error, or its standard output when it
/// wrote no error), on one line: a probe's last line names what failed.
fn output_tail(stdout: &[u8], stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let stdout = String::from_utf8_lossy(stdout);
    let text = match stderr.trim() {
        "" => stdout.trim(),
        errors => errors,
    };
    if text.is_empty() {
        return "(no output)".into();
    }
    let one_line: Vec<char> = text
        .chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .collect();
    let start = one_line.len().saturating_sub(MAX_OUTPUT_TAIL_CHARS);
    let tail: String = one_line[start..].iter().collect();
    if start > 0 {
        format!("...{}", tail.trim_start())
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) async fn server_answering(status: u16) -> String {
        let app = axum::Router::new().route(
            "/probe",
            axum::routing::get(
                move || async move { axum::http::StatusCode::from_u16(status).unwrap() },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    pub(super) async fn http_checks_pass_on_the_expected_status() {
        let ok = server_answering(200).await;
        let spec = CheckSpec::Http {
            path: "/probe".into(),
            expect_status: None,
            timeout: std::time::Duration::from_secs(5),
        };
        assert_eq!(run_check(&spec, Some(&ok), "v2").await, CheckState::Passed);
        let failing = server_answering(503).await;
        match run_check(&spec, Some(&failing), "v2").await {
            CheckState::Failed(detail) => assert!(detail.contains("503"), "{detail}"),
            other => panic!("expected a failure, got {other:?}"),
        }
        let expect_404 = CheckSpec::Http {
            path: "/missing".into(),
            expect_status: Some(404),
            timeout: std::time::Duration::from_secs(5),
        };
        assert_eq!(
            run_check(&expect_404, Some(&ok), "v2").await,
            CheckState::Passed
        );
        let unreachable = run_check(&spec, Some("http://127.0.0.1:9"), "v2").await;
        assert!(matches!(unreachable, CheckState::Failed(_)));
    }

    #[tokio::test]
    pub(super) async fn command_checks_see_the_canary_url_and_their_exit_status() {
        let timeout = std::time::Duration::from_secs(10);
        let passes = CheckSpec::Command {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "test \"$CANARY_URL\" = http://canary:1".into(),
            ],
            timeout,
        };
        assert_eq!(
            run_check(&passes, Some("http://canary:1"), "v2").await,
            CheckState::Passed
        );
        let fails = CheckSpec::Command {
            argv: vec!["sh".into(), "-c".into(), "echo broken >&2; exit 3".into()],
            timeout,
        };
        match run_check(&fails, Some("http://canary:1"), "v2").await {
            CheckState::Failed(detail) => assert!(detail.contains("broken"), "{detail}"),
            other => panic!("expected a failure, got {other:?}"),
        }
        let slow = CheckSpec::Command {
            argv: vec!["sleep".into(), "5".into()],
            timeout: std::time::Duration::from_millis(100),
        };
        assert!(
            matches!(run_check(&slow, Some("http://canary:1"), "v2").await, CheckState::Failed(detail) if detail.contains("longer"))
        );
        let placeholders = CheckSpec::Command {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "test \"$0 $1\" = \"http://canary:1 v2\"".into(),
                "{canary_url}".into(),
                "{canary_version}".into(),
            ],
            timeout,
        };
        assert_eq!(
            run_check(&placeholders, Some("http://canary:1"), "v2").await,
            CheckState::Passed
        );
        assert!(
            matches!(run_check(&placeholders, None, "v2").await, CheckState::Failed(detail) if detail.contains("no address"))
        );
        let chatty = CheckSpec::Command {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "seq 1 2000; echo 'probe failed at export-pdf after 3 ms: the PDF export answered 500' >&2; exit 1".into(),
            ],
            timeout,
        };
        match run_check(&chatty, Some("http://canary:1"), "v2").await {
            CheckState::Failed(detail) => {
                assert!(detail.starts_with("sh exited with"), "{detail}");
                assert!(
                    detail.ends_with(
                        "probe failed at export-pdf after 3 ms: the PDF export answered 500"
                    ),
                    "{detail}"
                );
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        let quiet_on_stderr = CheckSpec::Command {
            argv: vec!["sh".into(), "-c".into(), "seq 1 2000; exit 1".into()],
            timeout,
        };
        match run_check(&quiet_on_stderr, Some("http://canary:1"), "v2").await {
            CheckState::Failed(detail) => {
                assert!(
                    detail.ends_with("1999 2000"),
                    "the tail of stdout: {detail}"
                );
                assert!(detail.len() < 500, "{detail}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
        let missing = CheckSpec::Command {
            argv: vec!["no-such-program-here".into()],
            timeout,
        };
        assert!(
            matches!(run_check(&missing, Some("http://canary:1"), "v2").await, CheckState::Failed(detail) if detail.contains("could not run"))
        );
    }
}
