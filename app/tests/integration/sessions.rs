//! Token revocation: logout revokes the presented token and a password change revokes every
//! token of the user, for every Steno process on the database.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;

use crate::on_both_backends;
use crate::support::{TestApp, ADMIN_PASSWORD};

async fn me_on(router: &axum::Router, token: &str) -> StatusCode {
    let request = Request::get("/v1/me")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    tower::ServiceExt::oneshot(router.clone(), request)
        .await
        .unwrap()
        .status()
}

async fn login_token(app: &TestApp, email: &str, password: &str) -> String {
    let login = app.login_from("192.0.2.1", email, password).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    login.json()["access_token"].as_str().unwrap().to_string()
}

async fn logout_revokes_the_token_everywhere(app: TestApp) {
    let email = "avery@riverahale.test";
    let (registration_token, _) = app.register("Rivera & Hale LLP", email).await;
    let second_token = login_token(&app, email, ADMIN_PASSWORD).await;
    let other_process = app.second_process().await;
    assert_eq!(me_on(&other_process, &second_token).await, StatusCode::OK);

    let logout = app
        .call(Method::POST, "/v1/auth/logout", Some(&second_token), None)
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT, "{}", logout.text());
    let message = app
        .get("/v1/me", &second_token)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    assert!(message.contains("revoked"), "{message}");
    assert_eq!(
        me_on(&other_process, &second_token).await,
        StatusCode::UNAUTHORIZED,
        "another process on the database refuses the revoked token too"
    );
    app.call(Method::POST, "/v1/auth/logout", Some(&second_token), None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    // Only that token: the session from registration is still valid.
    assert_eq!(
        me_on(&app.router, &registration_token).await,
        StatusCode::OK
    );
}
on_both_backends!(logout_revokes_the_token_everywhere);

async fn a_password_change_revokes_every_token(app: TestApp) {
    let email = "avery@riverahale.test";
    let (first_token, _) = app.register("Rivera & Hale LLP", email).await;
    let second_token = login_token(&app, email, ADMIN_PASSWORD).await;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});

    let wrong = app
        .post(
            "/v1/auth/password",
            &first_token,
            change("not my password at all", "violet kettles hum at dawn"),
        )
        .await;
    assert!(wrong
        .assert_error(StatusCode::FORBIDDEN)
        .contains("current_password"));
    let weak = app
        .post(
            "/v1/auth/password",
            &first_token,
            change(ADMIN_PASSWORD, "password12"),
        )
        .await;
    assert!(weak
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY)
        .contains("new_password"));
    assert_eq!(me_on(&app.router, &first_token).await, StatusCode::OK);

    let changed = app
        .post(
            "/v1/auth/password",
            &first_token,
            change(ADMIN_PASSWORD, "violet kettles hum at dawn"),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    let fresh_token = changed.json()["access_token"].as_str().unwrap().to_string();
    let other_process = app.second_process().await;
    for old in [&first_token, &second_token] {
        let message = app
            .get("/v1/me", old)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        assert!(message.contains("password change"), "{message}");
        assert_eq!(me_on(&other_process, old).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(me_on(&app.router, &fresh_token).await, StatusCode::OK);
    assert_eq!(me_on(&other_process, &fresh_token).await, StatusCode::OK);

    app.login_from("192.0.2.1", email, ADMIN_PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    let relogin = login_token(&app, email, "violet kettles hum at dawn").await;
    assert_eq!(me_on(&app.router, &relogin).await, StatusCode::OK);
}
on_both_backends!(a_password_change_revokes_every_token);
