//! Malformed requests get clear 4xx JSON errors naming the problem.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};

use crate::on_both_backends;
use crate::support::TestApp;

async fn malformed_requests_name_the_problem(app: TestApp) {
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let raw = |method: Method, path: &str, content_type: &str, body: &str| {
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_string()))
            .unwrap()
    };

    let syntax = app
        .send(raw(
            Method::POST,
            "/v1/matters",
            "application/json",
            "{\"claimant_name\": ",
        ))
        .await;
    assert!(syntax
        .assert_error(StatusCode::BAD_REQUEST)
        .contains("not valid JSON"));

    let missing = app
        .send(raw(
            Method::POST,
            "/v1/auth/login",
            "application/json",
            "{\"email\": \"a@b.test\"}",
        ))
        .await;
    assert!(missing
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY)
        .contains("password"));

    let unknown = app
        .send(raw(
            Method::POST,
            "/v1/auth/login",
            "application/json",
            "{\"email\": \"a@b.test\", \"password\": \"x\", \"remember\": true}",
        ))
        .await;
    assert!(unknown
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY)
        .contains("remember"));

    let wrong_type = app
        .send(raw(
            Method::POST,
            "/v1/letters/x/refine",
            "text/plain",
            "shorter please",
        ))
        .await;
    assert!(wrong_type.status.is_client_error());
    assert!(wrong_type.json()["error"]["message"].is_string());

    let wrong_content_type = app
        .send(raw(Method::POST, "/v1/auth/login", "text/plain", "{}"))
        .await;
    assert!(wrong_content_type
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .contains("application/json"));

    let no_route = app.get("/v1/nothing-here", &token).await;
    assert!(no_route
        .assert_error(StatusCode::NOT_FOUND)
        .contains("/v1/nothing-here"));

    let bad_revision = app.get("/v1/letters/x/revisions/zero", &token).await;
    assert!(bad_revision
        .assert_error(StatusCode::BAD_REQUEST)
        .contains("zero"));

    let bad_logo = app
        .send(raw(
            Method::PUT,
            "/v1/firm/logo",
            "image/png",
            "not an image",
        ))
        .await;
    bad_logo.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}
on_both_backends!(malformed_requests_name_the_problem);
