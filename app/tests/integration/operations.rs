//! What opsd relies on: the health document and its 503s, Prometheus metrics, request ids, fault
//! injection, and the maintenance banner read from opsd's status document.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use axum::routing::get;
use serde_json::json;

use crate::support::{csrf_field_in, TestApp};

/// R-HEALTH-1 (docs/requirements.md): status, timestamp, version, services and latency_ms.
#[tokio::test]
async fn health_reports_the_required_schema() {
    let app = TestApp::sqlite_with(|settings| settings.version = "v7".into()).await;
    let health = app.call(Method::GET, "/v1/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    let body = health.json();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["version"], "v7");
    assert_eq!(body["services"]["database"], "ok");
    assert_eq!(body["services"]["storage"], "ok");
    assert_eq!(body["services"]["ai"], "ok");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(body["latency_ms"].is_u64());
}

#[tokio::test]
async fn health_is_503_when_the_database_is_down() {
    let app = TestApp::sqlite().await;
    app.state.database().close().await;
    let health = app.call(Method::GET, "/v1/health", None, None).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json()["services"]["database"], "error");
}

#[tokio::test]
async fn health_is_503_when_storage_is_down() {
    let app = TestApp::sqlite().await;
    let documents = app.data_dir().join("documents");
    std::fs::remove_dir_all(&documents).unwrap();
    std::fs::write(&documents, b"a file where the directory was").unwrap();
    let health = app.call(Method::GET, "/v1/health", None, None).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json()["services"]["storage"], "error");
}

#[tokio::test]
async fn postgres_health_is_ok() {
    let app = TestApp::postgres().await;
    let health = app.call(Method::GET, "/v1/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text());
}

#[tokio::test]
async fn chaos_fails_a_fraction_of_requests_but_not_health() {
    let app = TestApp::sqlite_with(|settings| settings.chaos.error_rate = 1.0).await;
    let answer = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"email": "a@b.test", "password": "x"})),
        )
        .await;
    assert!(answer
        .assert_error(StatusCode::INTERNAL_SERVER_ERROR)
        .contains("STENO_CHAOS_ERROR_RATE"));
    assert_eq!(
        app.call(Method::GET, "/v1/health", None, None).await.status,
        StatusCode::OK
    );
    let metrics = app.call(Method::GET, "/metrics", None, None).await.text();
    assert!(metrics.contains("steno_chaos_errors_total 1"), "{metrics}");

    let half = TestApp::sqlite_with(|settings| settings.chaos.error_rate = 0.5).await;
    let mut failures = 0;
    for _ in 0..200 {
        if half.call(Method::GET, "/login", None, None).await.status
            == StatusCode::INTERNAL_SERVER_ERROR
        {
            failures += 1;
        }
    }
    // Binomial(200, 0.5): outside 60..=140 has probability below 1e-8.
    assert!((60..=140).contains(&failures), "{failures} of 200 failed");
}

#[tokio::test]
async fn chaos_breaks_letter_exports_and_nothing_else() {
    let app = TestApp::sqlite_with(|settings| settings.chaos.break_export = true).await;
    let (token, _) = app.register("Export Drill LLP", "drill@export.test").await;
    let upload = app
        .upload(
            &token,
            "bill.txt",
            "text/plain",
            b"03/14/2025  Emergency department visit   $1,850.00\n",
        )
        .await;
    assert_eq!(upload.status, StatusCode::CREATED, "{}", upload.text());
    let matter = app
        .post(
            "/v1/matters",
            &token,
            json!({
                "claimant_name": "Jordan Rivera", "defendant_name": "Casey Morgan",
                "incident_date": "2025-03-14", "incident_place": "Main Street",
                "incident_description": "Red light.", "injuries": "Strain.", "treatment": "Therapy.",
                "document_ids": [upload.json()["document"]["id"]],
            }),
        )
        .await;
    assert_eq!(matter.status, StatusCode::CREATED, "{}", matter.text());
    let matter_id = matter.json()["matter"]["id"].as_str().unwrap().to_string();
    let letter = app
        .post(
            &format!("/v1/matters/{matter_id}/letters"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(letter.status, StatusCode::CREATED, "{}", letter.text());
    let letter_id = letter.json()["letter"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.get(&format!("/v1/letters/{letter_id}"), &token)
            .await
            .status,
        StatusCode::OK
    );
    for format in ["pdf", "docx"] {
        let export = app
            .get(
                &format!("/v1/letters/{letter_id}/export?format={format}"),
                &token,
            )
            .await;
        assert!(
            export
                .assert_error(StatusCode::INTERNAL_SERVER_ERROR)
                .contains("STENO_CHAOS_BREAK_EXPORT"),
            "{format}"
        );
    }
    assert_eq!(
        app.call(Method::GET, "/v1/health", None, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn chaos_pads_response_bodies_but_not_health() {
    let plain = TestApp::sqlite().await;
    // Each page carries its own CSRF token (same length); compare the pages without it.
    let without_token = |html: String| {
        let token = csrf_field_in(&html).expect("the login form has a token");
        html.replace(&token, "")
    };
    let unpadded = without_token(plain.call(Method::GET, "/login", None, None).await.text());
    let app = TestApp::sqlite_with(|settings| settings.chaos.padding_bytes = 5_000).await;
    let padded = without_token(app.call(Method::GET, "/login", None, None).await.text());
    assert_eq!(padded.len(), unpadded.len() + 5_000);
    assert!(padded.starts_with(&unpadded));
    let error = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"email": "a@b.test", "password": "x"})),
        )
        .await;
    // Trailing spaces keep a JSON answer JSON.
    assert!(error.json()["error"]["code"].is_string());
    let health = app.call(Method::GET, "/v1/health", None, None).await.text();
    assert!(!health.ends_with(' '), "health is not padded");
}

#[tokio::test]
async fn chaos_can_fail_health() {
    let app = TestApp::sqlite_with(|settings| settings.chaos.fail_health = true).await;
    let health = app.call(Method::GET, "/v1/health", None, None).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(health.json()["status"]
        .as_str()
        .unwrap()
        .contains("STENO_CHAOS_FAIL_HEALTH"));
}

#[tokio::test]
async fn chaos_adds_latency() {
    let app =
        TestApp::sqlite_with(|settings| settings.chaos.added_latency = Duration::from_millis(500))
            .await;
    // Virtual time from here on: the injected delay advances the clock without real waiting.
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    app.call(Method::GET, "/login", None, None).await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "virtual time advanced by the injected delay"
    );
    let health_started = tokio::time::Instant::now();
    app.call(Method::GET, "/metrics", None, None).await;
    assert!(
        health_started.elapsed() < Duration::from_millis(500),
        "observability routes are not delayed"
    );
}

#[tokio::test]
async fn metrics_count_requests_and_business_events() {
    let app = TestApp::sqlite().await;
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    app.upload(
        &token,
        "note.txt",
        "text/plain",
        b"Office visit 01/02/2025 $120.00",
    )
    .await;
    app.get("/v1/documents/unknown", &token).await;
    let answer = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let metrics = answer.text();
    for expected in [
        "steno_http_requests_total{route=\"/v1/firms\",method=\"POST\",status=\"201\"} 1",
        "steno_http_requests_total{route=\"/v1/documents/{id}\",method=\"GET\",status=\"404\"} 1",
        "steno_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/v1/documents\"} 1",
        "steno_document_uploads_total{kind=\"text\"} 1",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::sqlite().await;
    let given = app
        .send(
            axum::http::Request::get("/v1/health")
                .header("x-request-id", "req-123")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(given.headers["x-request-id"], "req-123");
    let generated = app.call(Method::GET, "/v1/health", None, None).await;
    assert_eq!(generated.headers["x-request-id"].len(), 36);
}

#[tokio::test]
async fn the_maintenance_banner_follows_the_status_document() {
    let status = std::sync::Arc::new(std::sync::Mutex::new(
        json!({"maintenance": {"active": true, "message": "Deploying v2 until 02:30 UTC"}}),
    ));
    let served = status.clone();
    let server = axum::Router::new().route(
        "/v1/status",
        get(move || {
            let served = served.clone();
            async move { axum::Json(served.lock().unwrap().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/status", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, server).await });

    let app = TestApp::sqlite().await;
    let client = reqwest::Client::new();
    steno::status_banner::refresh_banner(&client, &url, app.state.banner())
        .await
        .unwrap();
    let page = app.call(Method::GET, "/login", None, None).await.text();
    assert!(page.contains("Deploying v2 until 02:30 UTC"), "{page}");

    *status.lock().unwrap() = json!({"maintenance": {"active": false}});
    steno::status_banner::refresh_banner(&client, &url, app.state.banner())
        .await
        .unwrap();
    let page = app.call(Method::GET, "/login", None, None).await.text();
    assert!(!page.contains("Deploying v2"));

    // An unreachable status document keeps the last known banner and reports why.
    let error = steno::status_banner::refresh_banner(
        &client,
        "http://127.0.0.1:9/none",
        app.state.banner(),
    )
    .await
    .unwrap_err();
    assert!(error.contains("127.0.0.1:9"));
}
