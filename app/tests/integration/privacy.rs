//! Emails are unique per firm: registering or inviting never tells a stranger whether another
//! firm uses an email, and a login finds the account whose password matches. Plus the password
//! policy on every path that sets a password.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::{TestApp, ADMIN_PASSWORD};

async fn register_with(
    app: &TestApp,
    firm: &str,
    email: &str,
    password: &str,
) -> (StatusCode, Value) {
    let answer = app
        .call(
            Method::POST,
            "/v1/firms",
            None,
            Some(json!({"firm_name": firm, "admin_name": "Avery", "admin_email": email, "admin_password": password})),
        )
        .await;
    let body = answer.json();
    (answer.status, body)
}

fn shape(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

async fn emails_taken_elsewhere_are_not_revealed(app: TestApp) {
    let email = "avery@shared.test";
    let (status, first) = register_with(&app, "First Firm LLP", email, ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, second) = register_with(
        &app,
        "Second Firm LLP",
        "AVERY@shared.test",
        "violet kettles hum",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a taken email registers like a fresh one"
    );
    let (status, fresh) = register_with(
        &app,
        "Third Firm LLP",
        "fresh@shared.test",
        "violet kettles hum",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(shape(&second), shape(&fresh));
    assert_ne!(first["firm"]["id"], second["firm"]["id"]);

    // A login lands in the firm whose account has that password.
    for (password, firm) in [(ADMIN_PASSWORD, &first), ("violet kettles hum", &second)] {
        let login = app.login_from("192.0.2.1", email, password).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text());
        assert_eq!(login.json()["firm"]["id"], firm["firm"]["id"]);
    }
    let wrong = app
        .login_from("192.0.2.1", email, "neither of the two")
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    let unknown = app
        .login_from("192.0.2.1", "nobody@shared.test", "neither of the two")
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    assert_eq!(wrong, unknown);

    // Inviting an email another firm uses succeeds; one of your own firm is a conflict.
    let third_token = fresh["access_token"].as_str().unwrap();
    let invited = app
        .post("/v1/invitations", third_token, json!({"email": email}))
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.text());
    let accepted = app
        .call(
            Method::POST,
            "/v1/invitations/accept",
            None,
            Some(json!({"token": invited.json()["token"], "name": "Avery Again", "password": "a third fine passphrase"})),
        )
        .await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.text());
    assert_eq!(accepted.json()["firm"]["id"], fresh["firm"]["id"]);
    let own = app
        .post("/v1/invitations", third_token, json!({"email": email}))
        .await;
    assert!(own.assert_error(StatusCode::CONFLICT).contains(email));
}
on_both_backends!(emails_taken_elsewhere_are_not_revealed);

async fn weak_passwords_are_refused_with_a_reason(app: TestApp) {
    for (password, reason) in [
        ("aaaaaaaaaa", "repeats"),
        ("password12", "most common"),
        ("P@ssw0rd2024", "most common"),
        ("qwertyuiop", "most common"),
        ("3456789012", "sequence"),
        ("mnbvcxzlkj", "keyboard walk"),
        ("averyadmin2026", "email"),
        ("Granite Law 2026", "firm"),
    ] {
        let answer = app
            .call(
                Method::POST,
                "/v1/firms",
                None,
                Some(json!({"firm_name": "Granite Law", "admin_name": "Avery", "admin_email": "avery.admin@granite.test", "admin_password": password})),
            )
            .await;
        let message = answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            message.starts_with("admin_password ") && message.contains(reason),
            "{password}: {message}"
        );
    }
    let (token, _) = app.register("Granite Law", "avery@granite.test").await;
    let invited = app
        .post(
            "/v1/invitations",
            &token,
            json!({"email": "blake@granite.test"}),
        )
        .await;
    let weak = app
        .call(
            Method::POST,
            "/v1/invitations/accept",
            None,
            Some(json!({"token": invited.json()["token"], "name": "Blake", "password": "blake123456"})),
        )
        .await;
    assert!(weak
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY)
        .contains("email"));
}
on_both_backends!(weak_passwords_are_refused_with_a_reason);
