//! `steno probe`: the journey a law firm takes, walked through Steno's public JSON API like a
//! client would (register or log in, upload a document, create a matter, draft a letter, export
//! it as PDF, log out), each step timed; opsd runs it as the `e2e` check of a canary. Every
//! request has a deadline and every answer is read up to a cap; an odd answer fails its step with
//! what was wrong, never a panic. The pure parts are in `report.rs`.

pub mod report;

use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::Rng;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

use report::{check_pdf, identifier_at, quote_server_text, unexpected_status, Journey};
pub use report::{parse_timeout, ProbeReport, Step, StepOutcome};

/// The longest one request may take, within the probe's overall deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most bytes read from a JSON answer.
const MAX_JSON_BYTES: usize = 1024 * 1024;
/// The most bytes read from the exported PDF.
const MAX_PDF_BYTES: usize = 16 * 1024 * 1024;

/// An existing account the probe logs in to instead of registering a new firm
/// (`STENO_PROBE_EMAIL`, `STENO_PROBE_PASSWORD`).
#[derive(Clone)]
pub struct ProbeCredentials {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for ProbeCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ProbeCredentials")
            .field("email", &self.email)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// What `steno probe` was asked to do.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Steno's origin, e.g. `http://127.0.0.1:8080` (no trailing slash needed).
    pub base_url: String,
    /// The whole journey's deadline; each request gets what is left of it (at most 30 s).
    pub timeout: Duration,
    /// `None`: register a throwaway firm `probe+<random>@probe.invalid`.
    pub credentials: Option<ProbeCredentials>,
}

/// Why the probe could not start at all.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0:?} is not an http:// or https:// URL")]
    BaseUrl(String),
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// The throwaway identity of one probe run: a firm of its own, clearly named.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeIdentity {
    pub email: String,
    pub firm_name: String,
    pub password: String,
}

impl ProbeIdentity {
    /// `probe+<12 random characters>@probe.invalid`, firm `Steno probe <same>`, a random
    /// 24-character password (nothing the password policy refuses).
    pub fn random() -> ProbeIdentity {
        let mut rng = rand::thread_rng();
        let suffix: String = (&mut rng)
            .sample_iter(&Alphanumeric)
            .take(12)
            .map(|byte| char::from(byte).to_ascii_lowercase())
            .collect();
        let password: String = (&mut rng)
            .sample_iter(&Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        ProbeIdentity {
            email: format!("probe+{suffix}@probe.invalid"),
            firm_name: format!("Steno probe {suffix}"),
            password,
        }
    }
}

/// A small itemised bill the offline drafting engine finds specials in.
const PROBE_DOCUMENT: &str = "Springfield General Hospital - itemised statement\n\
Synthetic document uploaded by steno probe; not a real patient.\n\
Patient: Probe Claimant\n\
03/14/2025  Emergency department visit   $1,850.00\n\
03/14/2025  X-ray, cervical spine          $420.00\n";

/// Walks the journey against `options.base_url` and reports every step it ran.
pub async fn run(options: &ProbeOptions) -> Result<ProbeReport, ProbeError> {
    let base_url = options.base_url.trim_end_matches('/').to_string();
    let parsed = reqwest::Url::parse(&base_url)
        .map_err(|_| ProbeError::BaseUrl(options.base_url.clone()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ProbeError::BaseUrl(options.base_url.clone()));
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .no_proxy()
        .user_agent(concat!("steno-probe/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| ProbeError::Client(error.to_string()))?;
    let client = ProbeClient {
        http,
        base_url: base_url.clone(),
        deadline: Instant::now() + options.timeout,
        timeout: options.timeout,
    };
    let mut journey = Journey::new();
    let token = match &options.credentials {
        Some(credentials) => journey.step(Step::Login, client.login(credentials)).await,
        None => {
            journey
                .step(Step::Register, client.register(&ProbeIdentity::random()))
                .await
        }
    };
    if let Some(token) = token {
        walk_letter_journey(&mut journey, &client, &token).await;
        journey.cleanup(Step::Logout, client.logout(&token)).await;
    }
    Ok(journey.finish(&base_url))
}

/// Upload, matter, draft and export; stops at the first failed step.
async fn walk_letter_journey(journey: &mut Journey, client: &ProbeClient, token: &str) {
    let Some(document_id) = journey.step(Step::Upload, client.upload(token)).await else {
        return;
    };
    let Some(matter_id) = journey
        .step(
            Step::CreateMatter,
            client.create_matter(token, &document_id),
        )
        .await
    else {
        return;
    };
    let Some(letter_id) = journey
        .step(Step::Draft, client.draft(token, &matter_id))
        .await
    else {
        return;
    };
    journey
        .step(Step::ExportPdf, client.export_pdf(token, &letter_id))
        .await;
}

/// Steno's API as the probe calls it, within one deadline.
struct ProbeClient {
    http: reqwest::Client,
    base_url: String,
    deadline: Instant,
    timeout: Duration,
}

/// An answer read within its cap.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl ProbeClient {
    async fn register(&self, identity: &ProbeIdentity) -> Result<String, String> {
        let request = self.request(Method::POST, "/v1/firms").json(&json!({
            "firm_name": identity.firm_name,
            "firm_address": "1 Probe Street\nSpringfield",
            "admin_name": "Steno Probe",
            "admin_email": identity.email,
            "admin_password": identity.password,
        }));
        let answer = self.expect(Step::Register, request, MAX_JSON_BYTES).await?;
        access_token(Step::Register, &answer.body)
    }

    async fn login(&self, credentials: &ProbeCredentials) -> Result<String, String> {
        let request = self.request(Method::POST, "/v1/auth/login").json(&json!({
            "email": credentials.email,
            "password": credentials.password,
        }));
        let answer = self.expect(Step::Login, request, MAX_JSON_BYTES).await?;
        access_token(Step::Login, &answer.body)
    }

    async fn upload(&self, token: &str) -> Result<String, String> {
        let part = reqwest::multipart::Part::bytes(PROBE_DOCUMENT.as_bytes().to_vec())
            .file_name("probe-bill.txt")
            .mime_str("text/plain")
            .map_err(|error| format!("could not build the upload: {error}"))?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let request = self
            .request(Method::POST, "/v1/documents")
            .bearer_auth(token)
            .multipart(form);
        let answer = self.expect(Step::Upload, request, MAX_JSON_BYTES).await?;
        identifier_at(Step::Upload, &answer.body, "/document/id")
    }

    async fn create_matter(&self, token: &str, document_id: &str) -> Result<String, String> {
        let request = self
            .request(Method::POST, "/v1/matters")
            .bearer_auth(token)
            .json(&json!({
                "title": "Steno probe matter",
                "claimant_name": "Probe Claimant",
                "defendant_name": "Probe Defendant",
                "incident_date": "2025-03-14",
                "incident_place": "Main Street and 5th Avenue, Springfield",
                "incident_description": "The defendant ran a red light and struck the claimant's car.",
                "injuries": "Cervical strain.",
                "treatment": "Emergency department visit and an X-ray.",
                "document_ids": [document_id],
            }));
        let answer = self
            .expect(Step::CreateMatter, request, MAX_JSON_BYTES)
            .await?;
        identifier_at(Step::CreateMatter, &answer.body, "/matter/id")
    }

    async fn draft(&self, token: &str, matter_id: &str) -> Result<String, String> {
        let request = self
            .request(Method::POST, &format!("/v1/matters/{matter_id}/letters"))
            .bearer_auth(token);
        let answer = self.expect(Step::Draft, request, MAX_JSON_BYTES).await?;
        let letter_id = identifier_at(Step::Draft, &answer.body, "/letter/id")?;
        let document: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        if document
            .pointer("/revision/revision")
            .and_then(Value::as_i64)
            != Some(1)
        {
            return Err("the draft answered without its first revision".into());
        }
        Ok(letter_id)
    }

    async fn export_pdf(&self, token: &str, letter_id: &str) -> Result<(), String> {
        let request = self
            .request(
                Method::GET,
                &format!("/v1/letters/{letter_id}/export?format=pdf"),
            )
            .bearer_auth(token);
        let answer = self.expect(Step::ExportPdf, request, MAX_PDF_BYTES).await?;
        if !answer.content_type.starts_with("application/pdf") {
            return Err(format!(
                "the PDF export answered with content type {:?}",
                quote_server_text(&answer.content_type)
            ));
        }
        check_pdf(&answer.body)
    }

    async fn logout(&self, token: &str) -> Result<(), String> {
        let request = self
            .request(Method::POST, "/v1/auth/logout")
            .bearer_auth(token);
        self.expect(Step::Logout, request, MAX_JSON_BYTES).await?;
        Ok(())
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
    }

    /// Sends `request` with what is left of the deadline, reads at most `max_bytes` of the
    /// answer, and fails unless it has the step's expected status.
    async fn expect(
        &self,
        step: Step,
        request: RequestBuilder,
        max_bytes: usize,
    ) -> Result<Answer, String> {
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(format!(
                "the probe's {} s deadline passed before {}",
                self.timeout.as_secs(),
                step.request()
            ));
        }
        let answer = send(request.timeout(remaining.min(REQUEST_TIMEOUT)), max_bytes)
            .await
            .map_err(|error| format!("{} {error}", step.request()))?;
        if answer.status != step.expected_status() {
            return Err(unexpected_status(step, answer.status, &answer.body));
        }
        Ok(answer)
    }
}

/// The `access_token` of a session answer, as a bearer token can be sent.
fn access_token(step: Step, body: &[u8]) -> Result<String, String> {
    let document: Value = serde_json::from_slice(body)
        .map_err(|_| format!("{} answered with a body that is not JSON", step.request()))?;
    let token = document
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{} answered without an access_token", step.request()))?;
    if token.is_empty() || !token.chars().all(|ch| ch.is_ascii_graphic()) {
        return Err(format!(
            "{} answered an access_token that cannot be sent",
            step.request()
        ));
    }
    Ok(token.to_string())
}

/// Sends a request and reads its body, refusing more than `max_bytes`.
async fn send(request: RequestBuilder, max_bytes: usize) -> Result<Answer, String> {
    let mut response = request.send().await.map_err(describe_transport_error)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes as u64)
    {
        return Err(format!(
            "answered {status} with more than {max_bytes} bytes"
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe_transport_error)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(format!(
                "answered {status} with more than {max_bytes} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

/// What went wrong below HTTP, phrased to follow "the <request>".
fn describe_transport_error(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "got no complete answer in time".into()
    } else if error.is_connect() {
        format!("could not connect: {}", root_cause(&error))
    } else {
        format!("failed: {}", root_cause(&error))
    }
}

/// The innermost cause of an error, where the useful words usually are.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    quote_server_text(&cause.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_throwaway_and_pass_the_password_policy() {
        let first = ProbeIdentity::random();
        let second = ProbeIdentity::random();
        assert_ne!(first.email, second.email);
        assert!(first.email.starts_with("probe+"));
        assert!(first.email.ends_with("@probe.invalid"));
        assert!(first.firm_name.starts_with("Steno probe "));
        assert_eq!(first.password.len(), 24);
        crate::password_policy::check_password(
            &first.password,
            crate::password_policy::PasswordContext {
                email: Some(&first.email),
                firm_name: Some(&first.firm_name),
            },
        )
        .expect("the probe's password passes the policy");
    }

    #[test]
    fn credentials_never_print_the_password() {
        let credentials = ProbeCredentials {
            email: "probe@firm.test".into(),
            password: "correct horse battery".into(),
        };
        let printed = format!("{credentials:?}");
        assert!(printed.contains("probe@firm.test"));
        assert!(!printed.contains("horse"));
    }

    #[tokio::test]
    async fn a_base_url_must_be_http() {
        for base_url in ["ftp://steno", "steno.example.com", "", "http://"] {
            let options = ProbeOptions {
                base_url: base_url.into(),
                timeout: Duration::from_secs(5),
                credentials: None,
            };
            assert!(
                matches!(run(&options).await, Err(ProbeError::BaseUrl(_))),
                "{base_url:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unreachable_steno_fails_the_first_step_and_nothing_else_runs() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let options = ProbeOptions {
            base_url: format!("http://{address}/"),
            timeout: Duration::from_secs(5),
            credentials: None,
        };
        let report = run(&options).await.unwrap();
        assert_eq!(report.steps.len(), 1, "{:?}", report.steps);
        assert_eq!(report.exit_code(), 1);
        let verdict = report.verdict();
        assert!(
            verdict.starts_with("probe failed at register after "),
            "{verdict}"
        );
        assert!(verdict.contains("could not connect"), "{verdict}");
    }

    /// A server answering every request with `answer`, on a free loopback port.
    async fn odd_server(answer: axum::routing::MethodRouter) -> String {
        let app = axum::Router::new().fallback(answer);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn options(base_url: String, timeout: Duration) -> ProbeOptions {
        ProbeOptions {
            base_url,
            timeout,
            credentials: None,
        }
    }

    #[tokio::test]
    async fn odd_answers_fail_their_step_with_what_was_wrong() {
        let huge = odd_server(axum::routing::any(|| async {
            (
                axum::http::StatusCode::CREATED,
                vec![b'{'; 2 * MAX_JSON_BYTES],
            )
        }))
        .await;
        let report = run(&options(huge, Duration::from_secs(10))).await.unwrap();
        assert!(
            report.verdict().contains("more than 1048576 bytes"),
            "{}",
            report.verdict()
        );

        let not_json = odd_server(axum::routing::any(|| async {
            (axum::http::StatusCode::CREATED, "welcome")
        }))
        .await;
        let report = run(&options(not_json, Duration::from_secs(10)))
            .await
            .unwrap();
        assert!(
            report.verdict().contains("not JSON"),
            "{}",
            report.verdict()
        );

        let silent = odd_server(axum::routing::any(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "too late"
        }))
        .await;
        let report = run(&options(silent, Duration::from_millis(300)))
            .await
            .unwrap();
        assert!(
            report.verdict().starts_with("probe failed at register")
                && report.verdict().contains("no complete answer in time"),
            "{}",
            report.verdict()
        );
    }
}
