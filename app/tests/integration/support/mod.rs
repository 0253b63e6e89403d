//! Test support for the router-level integration tests: an app on a fresh SQLite file or a fresh
//! PostgreSQL database, and small helpers to call it with `oneshot` and read JSON answers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use steno::clock::{Clock, ManualClock};
use steno::config::{ExtractorProgram, Settings};
use steno::state::AppState;
use tempfile::TempDir;
use tower::ServiceExt;

/// The environment variable naming a PostgreSQL server the tests may create databases on.
pub const POSTGRES_URL_VARIABLE: &str = "STENO_TEST_POSTGRES_URL";

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub data_dir: TempDir,
    /// The clock the app reads; tests move it to end throttling windows.
    pub clock: Arc<ManualClock>,
}

/// The password every test firm's admin registers with.
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A response as the tests read it.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|error| {
            panic!(
                "expected JSON ({error}), got {}: {}",
                self.status,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Asserts the status and that the body is a JSON error with a non-empty message.
    pub fn assert_error(&self, status: StatusCode) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        let body = self.json();
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message in {body}"))
            .to_string();
        assert!(!message.is_empty());
        assert!(body["error"]["code"].is_string());
        message
    }
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        Self::sqlite_with(|_| {}).await
    }

    pub async fn sqlite_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = test_settings(data_dir.path());
        adjust(&mut settings);
        Self::start(settings, data_dir).await
    }

    /// An app on a new, empty database of the PostgreSQL server named by STENO_TEST_POSTGRES_URL.
    pub async fn postgres() -> TestApp {
        Self::postgres_with(|_| {}).await
    }

    pub async fn postgres_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = test_settings(data_dir.path());
        settings.database_url = fresh_postgres_database().await;
        adjust(&mut settings);
        Self::start(settings, data_dir).await
    }

    async fn start(settings: Settings, data_dir: TempDir) -> TestApp {
        let clock = Arc::new(ManualClock::starting_at(chrono::Utc::now()));
        let shared: Arc<dyn Clock> = clock.clone();
        let state = AppState::start_with_clock(settings, shared)
            .await
            .expect("steno starts");
        TestApp {
            router: steno::http::router(state.clone()),
            state,
            data_dir,
            clock,
        }
    }

    /// A second Steno process on the same database and document storage (its own router,
    /// limiter and clock), as during a rollout.
    pub async fn second_process(&self) -> Router {
        let state = AppState::start(self.state.settings().clone())
            .await
            .expect("second steno starts");
        steno::http::router(state)
    }

    /// Logs in through the API from `peer` and returns the answer.
    pub async fn login_from(&self, peer: &str, email: &str, password: &str) -> Answer {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/v1/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"email": email, "password": password}).to_string(),
            ))
            .expect("request");
        with_peer(&mut request, peer);
        self.send(request).await
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            bytes,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Registers a firm and returns its admin's access token and the session body.
    pub async fn register(&self, firm_name: &str, email: &str) -> (String, Value) {
        let answer = self
            .call(
                Method::POST,
                "/v1/firms",
                None,
                Some(json!({
                    "firm_name": firm_name,
                    "firm_address": "100 Main Street\nSpringfield, IL 62701",
                    "admin_name": "Avery Admin",
                    "admin_email": email,
                    "admin_password": ADMIN_PASSWORD,
                })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        let body = answer.json();
        (
            body["access_token"].as_str().expect("token").to_string(),
            body,
        )
    }

    /// Uploads a file as multipart form data.
    pub async fn upload(
        &self,
        token: &str,
        filename: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Answer {
        let (body, boundary) = multipart_body("file", filename, content_type, bytes);
        let request = Request::builder()
            .method(Method::POST)
            .uri("/v1/documents")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }
}

/// Marks a request as coming over TCP from `peer` (an IP address), as `axum::serve` does.
pub fn with_peer(request: &mut Request<Body>, peer: &str) {
    let address: std::net::IpAddr = peer.parse().expect("peer is an IP address");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::new(address, 40_000)));
}

/// Settings for a test app under `data_dir`: the router runs inside the test binary, so its
/// extractor child is the real `steno` binary Cargo built for these tests.
pub fn test_settings(data_dir: &Path) -> Settings {
    let mut settings = Settings::for_data_dir(data_dir);
    settings.extractor.program = ExtractorProgram::Path(steno_binary().into());
    settings
}

/// The `steno` binary built for these tests.
pub fn steno_binary() -> &'static str {
    env!("CARGO_BIN_EXE_steno")
}

/// A multipart/form-data body with one file part.
pub fn multipart_body(
    field: &str,
    filename: &str,
    content_type: &str,
    bytes: &[u8],
) -> (Vec<u8>, String) {
    let boundary = "steno-test-boundary-7d41a2".to_string();
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (body, boundary)
}

/// Creates a uniquely named database on the test PostgreSQL server and returns its URL.
/// Fails loudly when no server is configured: the README's test command starts one.
pub async fn fresh_postgres_database() -> String {
    let admin_url = std::env::var(POSTGRES_URL_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VARIABLE} is not set: these tests need a PostgreSQL server. \
             Run ./scripts/test.sh, which installs and starts one on loopback."
        )
    });
    sqlx::any::install_default_drivers();
    let name = format!("steno_test_{}", uuid::Uuid::new_v4().simple());
    let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {admin_url}: {error}"));
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut connection)
        .await
        .expect("create test database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("postgres url has a database part");
    format!("{base}/{name}")
}

/// Runs a command-line tool on a file and returns its standard output; fails loudly when missing.
pub fn run_tool(tool: &str, args: &[&str], debian_package: &str) -> String {
    let output = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("{tool} is needed by this test ({error}); install the Debian package {debian_package}")
        });
    assert!(
        output.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Declares one test per backend for an async scenario `fn(TestApp)`.
#[macro_export]
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario($crate::support::TestApp::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario($crate::support::TestApp::postgres().await).await;
            }
        }
    };
}

/// Declares one test per backend for an async scenario `fn(TestApp)` on adjusted settings.
#[macro_export]
macro_rules! on_both_backends_with {
    ($scenario:ident, $adjust:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario($crate::support::TestApp::sqlite_with(super::$adjust).await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$scenario($crate::support::TestApp::postgres_with(super::$adjust).await)
                    .await;
            }
        }
    };
}

/// The host and origin the browser tests use.
pub const TEST_HOST: &str = "steno.test";
pub const TEST_ORIGIN: &str = "http://steno.test";

/// A browser for the web UI tests: keeps its CSRF cookie and session cookie, sends forms with
/// the CSRF token and its own origin, like a real browser on Steno's pages.
pub struct Browser {
    pub csrf_cookie: String,
    pub csrf_token: String,
    pub session_cookie: Option<String>,
}

/// The value of the hidden `csrf_token` field in a page.
pub fn csrf_field_in(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// The `name=value` of the cookie `name` set by a response.
pub fn set_cookie_value(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim_start_matches(&format!("{name}="))
                .to_string()
        })
}

impl Browser {
    /// Opens the login page: the browser receives its CSRF cookie and the forms' token.
    pub async fn open(app: &TestApp) -> Browser {
        let page = app
            .send(
                Request::get("/login")
                    .header(header::HOST, TEST_HOST)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        Browser {
            csrf_cookie: set_cookie_value(&page, "steno_csrf").expect("a csrf cookie"),
            csrf_token: csrf_field_in(&page.text()).expect("a csrf field"),
            session_cookie: None,
        }
    }

    pub fn cookie_header(&self) -> String {
        match &self.session_cookie {
            Some(session) => format!("steno_csrf={}; steno_session={session}", self.csrf_cookie),
            None => format!("steno_csrf={}", self.csrf_cookie),
        }
    }

    fn remember_session(&mut self, answer: &Answer) {
        if let Some(session) = set_cookie_value(answer, "steno_session") {
            self.session_cookie = Some(session).filter(|value| !value.is_empty());
        }
    }

    /// Posts a URL-encoded form (the CSRF field is added) from Steno's own origin.
    pub async fn post_form(&mut self, app: &TestApp, path: &str, body: &str) -> Answer {
        let body = if body.is_empty() {
            format!("csrf_token={}", self.csrf_token)
        } else {
            format!("csrf_token={}&{body}", self.csrf_token)
        };
        let answer = app
            .send(
                Request::post(path)
                    .header(header::HOST, TEST_HOST)
                    .header(header::ORIGIN, TEST_ORIGIN)
                    .header(header::COOKIE, self.cookie_header())
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        self.remember_session(&answer);
        answer
    }

    /// Posts a multipart upload (the CSRF token in the action's query) from Steno's origin.
    pub async fn post_multipart(
        &mut self,
        app: &TestApp,
        path: &str,
        field: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Answer {
        let (body, boundary) = multipart_body(field, filename, "text/plain", bytes);
        app.send(
            Request::post(format!("{path}?csrf_token={}", self.csrf_token))
                .header(header::HOST, TEST_HOST)
                .header(header::ORIGIN, TEST_ORIGIN)
                .header(header::COOKIE, self.cookie_header())
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    pub async fn get(&self, app: &TestApp, path: &str) -> Answer {
        app.send(
            Request::get(path)
                .header(header::HOST, TEST_HOST)
                .header(header::COOKIE, self.cookie_header())
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }
}
