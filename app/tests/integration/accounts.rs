//! Firms, users, login, invitations and tokens.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::on_both_backends;
use crate::support::TestApp;

async fn register_login_and_me(app: TestApp) {
    let (token, session) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["user"]["role"], "admin");
    assert_eq!(session["firm"]["name"], "Rivera & Hale LLP");
    assert!(session["expires_at"].is_string());

    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["user"]["email"], "avery@riverahale.test");

    let login = app
        .call(Method::POST, "/v1/auth/login", None, Some(json!({"email": "AVERY@riverahale.test", "password": "correct horse battery staple"})))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let fresh_token = login.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.get("/v1/me", &fresh_token).await.status, StatusCode::OK);

    let wrong = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"email": "avery@riverahale.test", "password": "wrong password!"})),
        )
        .await;
    let message = wrong.assert_error(StatusCode::UNAUTHORIZED);
    let unknown = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"email": "nobody@riverahale.test", "password": "wrong password!"})),
        )
        .await;
    assert_eq!(
        unknown.assert_error(StatusCode::UNAUTHORIZED),
        message,
        "unknown emails are not revealed"
    );

    // Emails are unique per firm: the same email registers another firm, answered like any other.
    let same_email = app
        .call(
            Method::POST,
            "/v1/firms",
            None,
            Some(json!({"firm_name": "Other", "admin_name": "X", "admin_email": "avery@riverahale.test", "admin_password": "another long password"})),
        )
        .await;
    assert_eq!(
        same_email.status,
        StatusCode::CREATED,
        "{}",
        same_email.text()
    );

    let short = app
        .call(
            Method::POST,
            "/v1/firms",
            None,
            Some(json!({"firm_name": "Other", "admin_name": "X", "admin_email": "x@other.test", "admin_password": "short"})),
        )
        .await;
    assert!(short
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY)
        .contains("admin_password"));
}
on_both_backends!(register_login_and_me);

async fn invitations_add_members_once(app: TestApp) {
    let (admin_token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let invited = app
        .post(
            "/v1/invitations",
            &admin_token,
            json!({"email": "blake@riverahale.test", "role": "member"}),
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.text());
    let invite_token = invited.json()["token"].as_str().unwrap().to_string();

    let accepted = app
        .call(
            Method::POST,
            "/v1/invitations/accept",
            None,
            Some(json!({"token": invite_token, "name": "Blake Member", "password": "member password 123"})),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.text());
    let member = accepted.json();
    assert_eq!(member["user"]["role"], "member");
    assert_eq!(member["firm"]["name"], "Rivera & Hale LLP");
    let member_token = member["access_token"].as_str().unwrap().to_string();

    let reused = app
        .call(
            Method::POST,
            "/v1/invitations/accept",
            None,
            Some(json!({"token": invite_token, "name": "Someone Else", "password": "member password 123"})),
        )
        .await;
    reused.assert_error(StatusCode::UNAUTHORIZED);

    let users = app.get("/v1/users", &member_token).await.json();
    assert_eq!(users["users"].as_array().unwrap().len(), 2);

    let forbidden = app
        .post(
            "/v1/invitations",
            &member_token,
            json!({"email": "casey@riverahale.test"}),
        )
        .await;
    forbidden.assert_error(StatusCode::FORBIDDEN);
    let forbidden_firm = app
        .call(
            Method::PUT,
            "/v1/firm",
            Some(&member_token),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    forbidden_firm.assert_error(StatusCode::FORBIDDEN);

    let renamed = app
        .call(
            Method::PUT,
            "/v1/firm",
            Some(&admin_token),
            Some(json!({"name": "Rivera Hale & Co", "address": "1 Court Sq"})),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text());
    assert_eq!(renamed.json()["firm"]["name"], "Rivera Hale & Co");
}
on_both_backends!(invitations_add_members_once);

async fn tokens_are_checked(app: TestApp) {
    let (token, session) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    app.call(Method::GET, "/v1/me", None, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    app.get("/v1/me", "not-a-token")
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    app.get("/v1/me", &tampered)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);

    let expired = app.state.signer().issue(&steno::auth::Claims {
        sub: session["user"]["id"].as_str().unwrap().into(),
        firm: session["firm"]["id"].as_str().unwrap().into(),
        iat: 1_000,
        exp: 2_000,
        jti: None,
        generation: None,
    });
    let message = app
        .get("/v1/me", &expired)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    assert!(message.contains("expired"), "{message}");
}
on_both_backends!(tokens_are_checked);

#[tokio::test]
async fn tokens_from_one_process_work_on_another_sharing_the_database() {
    let first = TestApp::sqlite().await;
    let (token, _) = first
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let mut settings = crate::support::test_settings(first.data_dir());
    settings.version = "v2".into();
    let second_state = steno::state::AppState::start(settings).await.unwrap();
    let second = steno::http::router(second_state);
    let answer = tower::ServiceExt::oneshot(
        second,
        axum::http::Request::get("/v1/me")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}
