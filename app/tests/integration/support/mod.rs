//! Test support for the router-level integration tests: an app on a fresh SQLite file or a fresh
//! PostgreSQL database, and small helpers to call it with `oneshot` and read JSON answers.
#![allow(dead_code)]

use std::path::Path;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
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
}

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
        let state = AppState::start(settings).await.expect("steno starts");
        TestApp {
            router: steno::http::router(state.clone()),
            state,
            data_dir,
        }
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
                    "admin_password": "correct horse battery staple",
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
