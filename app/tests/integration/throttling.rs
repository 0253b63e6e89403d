//! Login throttling: per account (in the database, so every process shares it), per client
//! address (with forwarding headers believed only from trusted proxies), and bounded password
//! hashing.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;
use steno::config::Settings;

use crate::support::{with_peer, Answer, TestApp, ADMIN_PASSWORD};
use crate::{on_both_backends, on_both_backends_with};

fn retry_after(answer: &Answer) -> u64 {
    answer
        .headers
        .get(header::RETRY_AFTER)
        .unwrap_or_else(|| panic!("a 429 carries Retry-After: {}", answer.text()))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Ten failures lock the email for 15 minutes; the right password is refused until then, on
/// this process and on another one sharing the database; then it works again.
async fn an_account_locks_after_repeated_failures(app: TestApp) {
    let email = "avery@riverahale.test";
    app.register("Rivera & Hale LLP", email).await;
    for attempt in 1..=10 {
        // Different client addresses: the per-client limit is not what stops this.
        let peer = format!("198.51.100.{attempt}");
        app.login_from(&peer, email, "wrong password here")
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
    let locked = app.login_from("198.51.100.50", email, ADMIN_PASSWORD).await;
    let message = locked.assert_error(StatusCode::TOO_MANY_REQUESTS);
    assert!(
        message.contains("too many failed password attempts"),
        "{message}"
    );
    assert!((1..=900).contains(&retry_after(&locked)));

    let other_process = app.second_process().await;
    let mut request = Request::post("/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"email": email, "password": ADMIN_PASSWORD}).to_string(),
        ))
        .unwrap();
    with_peer(&mut request, "198.51.100.51");
    let answer = tower::ServiceExt::oneshot(other_process, request)
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);

    app.clock.advance(Duration::from_secs(14 * 60));
    app.login_from("198.51.100.52", email, ADMIN_PASSWORD)
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS);
    app.clock.advance(Duration::from_secs(60));
    let login = app.login_from("198.51.100.53", email, ADMIN_PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());

    // An email nobody uses locks exactly the same way, so the lockout tells nothing.
    for attempt in 1..=10 {
        app.login_from(
            &format!("203.0.113.{attempt}"),
            "nobody@riverahale.test",
            "wrong password here",
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    }
    let unknown = app
        .login_from(
            "203.0.113.99",
            "nobody@riverahale.test",
            "any password at all",
        )
        .await;
    let without_digits = |text: &str| text.replace(|ch: char| ch.is_ascii_digit(), "");
    assert_eq!(
        without_digits(&unknown.assert_error(StatusCode::TOO_MANY_REQUESTS)),
        without_digits(&message)
    );
}
on_both_backends!(an_account_locks_after_repeated_failures);

fn sixty_per_client(settings: &mut Settings) {
    settings.account_security.client_max_attempts = 60;
    settings.account_security.account_max_failures = 1_000;
}

/// The 61st password attempt from one address within a minute is refused, whatever the email;
/// other addresses are not affected; a new minute starts afresh.
async fn a_client_is_limited_per_window(app: TestApp) {
    app.register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    for attempt in 1..=60 {
        app.login_from(
            "192.0.2.10",
            &format!("guess{attempt}@riverahale.test"),
            "wrong password here",
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
    }
    let limited = app
        .login_from("192.0.2.10", "avery@riverahale.test", ADMIN_PASSWORD)
        .await;
    let message = limited.assert_error(StatusCode::TOO_MANY_REQUESTS);
    assert!(message.contains("from your address"), "{message}");
    assert!((1..=60).contains(&retry_after(&limited)));
    let other = app
        .login_from("192.0.2.11", "avery@riverahale.test", ADMIN_PASSWORD)
        .await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.text());

    // Registration is a password attempt too.
    let register = app
        .call(
            Method::POST,
            "/v1/firms",
            None,
            Some(json!({"firm_name": "X", "admin_name": "X", "admin_email": "x@x.test", "admin_password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(
        register.status,
        StatusCode::CREATED,
        "no peer is one client, 'unknown'"
    );

    app.clock.advance(Duration::from_secs(60));
    let after = app
        .login_from("192.0.2.10", "avery@riverahale.test", ADMIN_PASSWORD)
        .await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text());
}
on_both_backends_with!(a_client_is_limited_per_window, sixty_per_client);

fn two_per_client_behind_a_proxy(settings: &mut Settings) {
    settings.account_security.client_max_attempts = 2;
    settings.account_security.trusted_proxies =
        steno::client_identity::TrustedProxies::parse("127.0.0.1").unwrap();
}

async fn login_with_forwarded_for(app: &TestApp, peer: &str, forwarded_for: &str) -> Answer {
    let mut request = Request::post("/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", forwarded_for)
        .body(Body::from(
            json!({"email": "who@example.test", "password": "wrong password here"}).to_string(),
        ))
        .unwrap();
    with_peer(&mut request, peer);
    app.send(request).await
}

/// Behind a trusted proxy each forwarded client has its own limit; a direct client cannot
/// escape its limit by sending X-Forwarded-For itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let app = TestApp::sqlite_with(two_per_client_behind_a_proxy).await;
    for _ in 0..2 {
        login_with_forwarded_for(&app, "127.0.0.1", "203.0.113.1")
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
    login_with_forwarded_for(&app, "127.0.0.1", "203.0.113.1")
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS);
    login_with_forwarded_for(&app, "127.0.0.1", "203.0.113.2")
        .await
        .assert_error(StatusCode::UNAUTHORIZED);

    for spoofed in ["10.9.9.1", "10.9.9.2"] {
        login_with_forwarded_for(&app, "198.51.100.9", spoofed)
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
    login_with_forwarded_for(&app, "198.51.100.9", "10.9.9.3")
        .await
        .assert_error(StatusCode::TOO_MANY_REQUESTS);
}

fn one_hash_at_a_time(settings: &mut Settings) {
    settings.account_security.hash_concurrency = 1;
    settings.account_security.hash_queue = 64;
}

/// Eight registrations at once still compute one password hash at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_hashing_has_bounded_concurrency() {
    let app = TestApp::sqlite_with(one_hash_at_a_time).await;
    let mut registrations = Vec::new();
    for index in 0..8 {
        let router = app.router.clone();
        registrations.push(tokio::spawn(async move {
            let mut request = Request::post("/v1/firms")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"firm_name": format!("Firm {index}"), "admin_name": "A", "admin_email": format!("a{index}@firm.test"), "admin_password": ADMIN_PASSWORD}).to_string(),
                ))
                .unwrap();
            with_peer(&mut request, &format!("192.0.2.{index}"));
            tower::ServiceExt::oneshot(router, request).await.unwrap().status()
        }));
    }
    for registration in registrations {
        assert_eq!(registration.await.unwrap(), StatusCode::CREATED);
    }
    assert_eq!(app.state.password_hasher().peak_concurrency(), 1);
}
