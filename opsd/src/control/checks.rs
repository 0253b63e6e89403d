//! Smoke checks a plan step runs against the canary: the release's own health, an HTTP request,
//! or a command with the canary's URL and version in its environment.

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
            let Some((program, args)) = argv.split_first() else {
                return CheckState::Failed("the check command is empty".into());
            };
            let mut command = tokio::process::Command::new(program);
            command
                .args(args)
                .env("CANARY_VERSION", canary_version)
                .kill_on_drop(true);
            if let Some(base_url) = base_url {
                command.env("CANARY_URL", base_url);
            }
            match tokio::time::timeout(*timeout, command.output()).await {
                Ok(Ok(output)) if output.status.success() => CheckState::Passed,
                Ok(Ok(output)) => CheckState::Failed(format!(
                    "{program} exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                        .chars()
                        .take(500)
                        .collect::<String>()
                )),
                Ok(Err(error)) => CheckState::Failed(format!("{program} could not run: {error}")),
                Err(_) => CheckState::Failed(format!(
                    "{program} took longer than {} s",
                    timeout.as_secs()
                )),
            }
        }
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
        let missing = CheckSpec::Command {
            argv: vec!["no-such-program-here".into()],
            timeout,
        };
        assert!(
            matches!(run_check(&missing, Some("http://canary:1"), "v2").await, CheckState::Failed(detail) if detail.contains("could not run"))
        );
    }
}
