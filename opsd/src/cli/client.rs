//! A typed client of the opsd API: each call returns the API's own view types
//! ([`RolloutView`], [`ServiceStatus`]), so the CLI and the server share one shape.

use anyhow::{bail, Context};
use opsd::control::{AlarmStatusView, DeployRequest, RolloutView, ServiceStatus};
use opsd::store::FreezeRecord;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::args::Cli;

/// `{"rollout": ...}`: what deploy, the operator commands and a rollout's page answer.
#[derive(Serialize, Deserialize)]
pub struct RolloutAnswer {
    pub rollout: RolloutView,
}

/// `{"rollouts": [...]}`: a service's history.
#[derive(Serialize, Deserialize)]
pub struct HistoryAnswer {
    pub rollouts: Vec<RolloutView>,
}

/// `{"service": ...}`: one service's status.
#[derive(Serialize, Deserialize)]
pub struct ServiceAnswer {
    pub service: ServiceStatus,
}

/// `{"services": [...]}`: every service's status.
#[derive(Serialize, Deserialize)]
pub struct StatusAnswer {
    pub services: Vec<ServiceStatus>,
    /// The opsd instance holding the leader lease (absent from an older opsd).
    #[serde(default)]
    pub leader: Option<opsd::control::LeaderView>,
    /// Which instance answered: `leader`, or `follower` (from the store); from the
    /// `X-Opsd-Answered-By` header, not the document.
    #[serde(skip)]
    pub answered_by: Option<String>,
}

/// `{"freeze": ...}`: the freeze `POST /v1/freeze` set.
#[derive(Serialize, Deserialize)]
pub struct FreezeAnswer {
    pub freeze: FreezeRecord,
}

/// `{"lifted": ...}`: the freeze `POST /v1/unfreeze` lifted.
#[derive(Serialize, Deserialize)]
pub struct UnfreezeAnswer {
    pub lifted: FreezeRecord,
}

/// `{"maintenance": ...}`: the window `POST /v1/maintenance` started or planned.
#[derive(Serialize, Deserialize)]
pub struct MaintenanceStarted {
    pub maintenance: opsd::core::maintenance::MaintenanceWindow,
}

/// `{"maintenance": ...}`: what `GET /v1/maintenance` says is in force and announced.
#[derive(Serialize, Deserialize)]
pub struct MaintenanceAnswer {
    pub maintenance: opsd::core::maintenance::MaintenanceStatus,
}

/// `{"stopped": N}`: how many windows `POST /v1/maintenance/stop` ended.
#[derive(Serialize, Deserialize)]
pub struct MaintenanceStopped {
    pub stopped: u64,
}

/// `{"freezes": [...]}`: every freeze in force.
#[derive(Serialize, Deserialize)]
pub struct FreezesAnswer {
    pub freezes: Vec<FreezeRecord>,
}

/// `{"alarms": [...]}`: every alarm rule's production state.
#[derive(Serialize, Deserialize)]
pub struct AlarmsAnswer {
    pub alarms: Vec<AlarmStatusView>,
}

/// An operator command on a service's active rollout, as the API's path names it.
#[derive(Debug, Clone, Copy)]
pub enum Verb {
    Promote,
    Pause,
    Resume,
    Abort,
    Rollback,
    Approve,
}

impl Verb {
    fn path(self) -> &'static str {
        match self {
            Verb::Promote => "promote",
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Abort => "abort",
            Verb::Rollback => "rollback",
            Verb::Approve => "approve",
        }
    }
}

/// A client of the opsd API.
pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// How long the CLI waits to connect to opsd's API.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Client {
    /// The API named by `--server` (else the configured listen address), with `--token` (else
    /// the operator token `opsd up` wrote).
    pub fn from_cli(cli: &Cli) -> anyhow::Result<Client> {
        let config = super::load_config(&cli.config)?;
        let base = cli
            .server
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.listen));
        let token = match &cli.token {
            Some(token) => token.clone(),
            None => {
                let path = opsd::up::operator_token_path(&config);
                std::fs::read_to_string(&path)
                    .with_context(|| format!("no --token given and {} cannot be read; run `opsd up` first or pass --token", path.display()))?
                    .trim()
                    .to_string()
            }
        };
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .build()
                .context("cannot build the HTTP client")?,
        })
    }

    pub async fn deploy(
        &self,
        service: &str,
        request: &DeployRequest,
    ) -> anyhow::Result<RolloutAnswer> {
        let body = serde_json::to_value(request)?;
        self.call(
            Method::POST,
            &format!("/v1/services/{service}/deploy"),
            Some(body),
        )
        .await
    }

    pub async fn command(
        &self,
        service: &str,
        verb: Verb,
        reason: Option<&str>,
    ) -> anyhow::Result<RolloutAnswer> {
        self.call(
            Method::POST,
            &format!("/v1/services/{service}/{}", verb.path()),
            Some(serde_json::json!({ "reason": reason })),
        )
        .await
    }

    pub async fn rollout(&self, id: &str) -> anyhow::Result<RolloutAnswer> {
        self.call(Method::GET, &format!("/v1/rollouts/{id}"), None)
            .await
    }

    pub async fn service(&self, service: &str) -> anyhow::Result<ServiceAnswer> {
        self.call(Method::GET, &format!("/v1/services/{service}"), None)
            .await
    }

    pub async fn status(&self) -> anyhow::Result<StatusAnswer> {
        let (mut answer, answered_by): (StatusAnswer, _) =
            self.call_answered(Method::GET, "/v1/status", None).await?;
        answer.answered_by = answered_by;
        Ok(answer)
    }

    pub async fn freeze(
        &self,
        service: Option<&str>,
        reason: &str,
    ) -> anyhow::Result<FreezeAnswer> {
        let body = serde_json::json!({ "service": service, "reason": reason });
        self.call(Method::POST, "/v1/freeze", Some(body)).await
    }

    pub async fn unfreeze(
        &self,
        service: Option<&str>,
        reason: Option<&str>,
    ) -> anyhow::Result<UnfreezeAnswer> {
        let body = serde_json::json!({ "service": service, "reason": reason });
        self.call(Method::POST, "/v1/unfreeze", Some(body)).await
    }

    pub async fn start_maintenance(
        &self,
        request: &opsd::control::MaintenanceRequest,
    ) -> anyhow::Result<MaintenanceStarted> {
        let body = serde_json::to_value(request)?;
        self.call(Method::POST, "/v1/maintenance", Some(body)).await
    }

    pub async fn stop_maintenance(
        &self,
        reason: Option<&str>,
    ) -> anyhow::Result<MaintenanceStopped> {
        let body = serde_json::json!({ "reason": reason });
        self.call(Method::POST, "/v1/maintenance/stop", Some(body))
            .await
    }

    pub async fn maintenance(&self) -> anyhow::Result<MaintenanceAnswer> {
        self.call(Method::GET, "/v1/maintenance", None).await
    }

    pub async fn alarms(&self, service: Option<&str>) -> anyhow::Result<AlarmsAnswer> {
        let path = match service {
            Some(service) => format!("/v1/alarms?service={}", query_value(service)),
            None => "/v1/alarms".to_string(),
        };
        self.call(Method::GET, &path, None).await
    }

    pub async fn freezes(&self) -> anyhow::Result<FreezesAnswer> {
        self.call(Method::GET, "/v1/freezes", None).await
    }

    pub async fn history(&self, service: &str, limit: u32) -> anyhow::Result<HistoryAnswer> {
        self.call(
            Method::GET,
            &format!("/v1/services/{service}/history?limit={limit}"),
            None,
        )
        .await
    }

    /// The token this client sends (handed to the opsd commands a runbook runs).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `POST /v1/runbook-runs`: the record of a runbook run.
    pub async fn record_runbook_run(
        &self,
        run: &opsd::core::runbook::run::RunbookRun,
    ) -> anyhow::Result<()> {
        let _: serde_json::Value = self
            .call(
                Method::POST,
                "/v1/runbook-runs",
                Some(serde_json::to_value(run)?),
            )
            .await?;
        Ok(())
    }

    /// `POST /v1/databases/{database}/restore`: `{"preview": ...}` or `{"restore": ...}`.
    pub async fn restore(
        &self,
        database: &str,
        request: &opsd::control::RestoreRequest,
    ) -> anyhow::Result<serde_json::Value> {
        let body = serde_json::to_value(request)?;
        self.call(
            Method::POST,
            &format!("/v1/databases/{}/restore", query_value(database)),
            Some(body),
        )
        .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<T> {
        Ok(self.call_answered(method, path, body).await?.0)
    }

    /// [`ApiClient::call`], and which instance answered (`X-Opsd-Answered-By`).
    async fn call_answered<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(T, Option<String>)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| {
            format!("cannot reach opsd at {}; is `opsd up` running?", self.base)
        })?;
        let status = response.status();
        let answered_by = response
            .headers()
            .get(opsd::api::gateway::ANSWERED_BY.as_str())
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("opsd's answer to {path} was cut off"))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ApiErrorAnswer>(&bytes)
                .map(|answer| answer.error.message)
                .unwrap_or_else(|_| "no message".into());
            bail!("opsd answered {status}: {message}");
        }
        let answer = serde_json::from_slice(&bytes)
            .with_context(|| format!("opsd's answer to {path} is not what this opsd expects"))?;
        Ok((answer, answered_by))
    }
}

/// `{"error": {"message": ...}}`: how the API reports a refusal.
#[derive(Deserialize)]
struct ApiErrorAnswer {
    error: ApiErrorMessage,
}

#[derive(Deserialize)]
struct ApiErrorMessage {
    message: String,
}

/// `value` percent-encoded for a query string (everything but unreserved characters).
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}
