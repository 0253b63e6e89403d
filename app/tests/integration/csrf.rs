//! CSRF protection of every web UI form (login included), `Secure` cookies over HTTPS, and the
//! security headers on every response.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use steno::config::Settings;

use crate::on_both_backends;
use crate::support::{
    csrf_field_in, set_cookie_value, with_peer, Answer, Browser, TestApp, TEST_HOST, TEST_ORIGIN,
};

const LOGIN_BODY: &str = "email=avery%40riverahale.test&password=correct+horse+battery+staple";

async fn post_login(
    app: &TestApp,
    origin: Option<(&str, &str)>,
    cookie: Option<String>,
    body: String,
) -> Answer {
    let mut builder = Request::post("/login")
        .header(header::HOST, TEST_HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((name, value)) = origin {
        builder = builder.header(name, value);
    }
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    app.send(builder.body(Body::from(body)).unwrap()).await
}

fn assert_refused_without_session(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert!(answer.text().contains("refused"), "{}", answer.text());
    assert!(
        set_cookie_value(answer, "steno_session").is_none(),
        "no session is set by a refused login"
    );
}

async fn login_forms_need_the_token_and_steno_origin(app: TestApp) {
    app.register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let browser = Browser::open(&app).await;
    let with_token = format!("csrf_token={}&{LOGIN_BODY}", browser.csrf_token);
    let cookie = Some(browser.cookie_header());

    // Another site posting the login form (the browser sends Steno's cookies along).
    let foreign = post_login(
        &app,
        Some(("origin", "https://evil.example")),
        cookie.clone(),
        with_token.clone(),
    )
    .await;
    assert_refused_without_session(&foreign);
    assert!(foreign.text().contains("evil.example"));
    // No token, or a token made for another browser's cookie.
    assert_refused_without_session(
        &post_login(
            &app,
            Some(("origin", TEST_ORIGIN)),
            cookie.clone(),
            LOGIN_BODY.into(),
        )
        .await,
    );
    let other_browser = Browser::open(&app).await;
    assert_refused_without_session(
        &post_login(
            &app,
            Some(("origin", TEST_ORIGIN)),
            Some(other_browser.cookie_header()),
            with_token.clone(),
        )
        .await,
    );
    // A token without its cookie (a pre-session token is bound to the cookie).
    assert_refused_without_session(
        &post_login(
            &app,
            Some(("origin", TEST_ORIGIN)),
            None,
            with_token.clone(),
        )
        .await,
    );
    // Neither Origin nor Referer.
    assert_refused_without_session(
        &post_login(&app, None, cookie.clone(), with_token.clone()).await,
    );

    // Steno's own form, identified by Origin or, failing that, by Referer.
    for origin in [
        ("origin", TEST_ORIGIN),
        ("referer", "http://steno.test/login"),
    ] {
        let accepted = post_login(&app, Some(origin), cookie.clone(), with_token.clone()).await;
        assert_eq!(
            accepted.status,
            StatusCode::SEE_OTHER,
            "{}",
            accepted.text()
        );
        assert!(set_cookie_value(&accepted, "steno_session").is_some());
    }
}
on_both_backends!(login_forms_need_the_token_and_steno_origin);

/// Every state-changing form of the UI refuses a post without the token, even with a valid
/// session cookie and the right origin; nothing changes.
async fn every_form_needs_the_token(app: TestApp) {
    let mut browser = Browser::open(&app).await;
    let registered = browser
        .post_form(
            &app,
            "/register",
            "firm_name=Rivera+%26+Hale&admin_name=Avery&admin_email=avery%40rh.test&admin_password=correct+horse+battery",
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::SEE_OTHER,
        "{}",
        registered.text()
    );
    for (path, content_type) in [
        ("/login", "application/x-www-form-urlencoded"),
        ("/register", "application/x-www-form-urlencoded"),
        ("/logout", "application/x-www-form-urlencoded"),
        ("/invite/accept", "application/x-www-form-urlencoded"),
        ("/app/documents", "multipart/form-data; boundary=x"),
        ("/app/matters", "application/x-www-form-urlencoded"),
        (
            "/app/matters/some-matter/letters",
            "application/x-www-form-urlencoded",
        ),
        (
            "/app/letters/some-letter/refine",
            "application/x-www-form-urlencoded",
        ),
        ("/app/firm", "application/x-www-form-urlencoded"),
        ("/app/firm/logo", "multipart/form-data; boundary=x"),
        ("/app/invitations", "application/x-www-form-urlencoded"),
        ("/app/account/password", "application/x-www-form-urlencoded"),
    ] {
        let answer = app
            .send(
                Request::post(path)
                    .header(header::HOST, TEST_HOST)
                    .header(header::ORIGIN, TEST_ORIGIN)
                    .header(header::COOKIE, browser.cookie_header())
                    .header(header::CONTENT_TYPE, content_type)
                    .body(Body::from("name=Renamed&email=x%40y.test&role=member"))
                    .unwrap(),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.text()
        );
    }
    let firm = browser.get(&app, "/app/firm").await.text();
    assert!(firm.contains("Rivera &amp; Hale") && !firm.contains("Renamed"));
    assert!(!firm.contains("x@y.test"));
    // The session is still valid: the refused /logout changed nothing.
    assert_eq!(browser.get(&app, "/app").await.status, StatusCode::OK);
}
on_both_backends!(every_form_needs_the_token);

fn assert_security_headers(answer: &Answer, what: &str) {
    let csp = answer.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{what}"
    );
    assert_eq!(answer.headers[header::X_FRAME_OPTIONS], "DENY", "{what}");
    assert_eq!(
        answer.headers[header::X_CONTENT_TYPE_OPTIONS],
        "nosniff",
        "{what}"
    );
    assert_eq!(
        answer.headers[header::REFERRER_POLICY],
        "same-origin",
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::sqlite().await;
    for path in [
        "/login",
        "/register",
        "/v1/health",
        "/no/such/page",
        "/v1/me",
    ] {
        let answer = app
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        assert_security_headers(&answer, path);
        assert!(answer
            .headers
            .get(header::STRICT_TRANSPORT_SECURITY)
            .is_none());
    }
    let page = app
        .send(Request::get("/login").body(Body::empty()).unwrap())
        .await;
    assert!(
        !page.text().contains("javascript:"),
        "the policy allows no script"
    );
}

fn behind_a_trusted_proxy(settings: &mut Settings) {
    settings.account_security.trusted_proxies =
        steno::client_identity::TrustedProxies::parse("127.0.0.1").unwrap();
}

async fn login_page_from(app: &TestApp, peer: &str, forwarded_proto: Option<&str>) -> Answer {
    let mut builder = Request::get("/login").header(header::HOST, TEST_HOST);
    if let Some(proto) = forwarded_proto {
        builder = builder.header("x-forwarded-proto", proto);
    }
    let mut request = builder.body(Body::empty()).unwrap();
    with_peer(&mut request, peer);
    app.send(request).await
}

fn csrf_cookie_line(answer: &Answer) -> String {
    answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_string())
        .find(|value| value.contains("steno_csrf="))
        .expect("a csrf cookie")
}

/// HTTPS is decided from X-Forwarded-Proto sent by a trusted proxy, or from STENO_PUBLIC_URL:
/// then cookies are Secure with the __Host- prefix and HSTS is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_when_served_over_https() {
    let app = TestApp::sqlite_with(behind_a_trusted_proxy).await;
    let proxied = login_page_from(&app, "127.0.0.1", Some("https")).await;
    let cookie = csrf_cookie_line(&proxied);
    assert!(
        cookie.starts_with("__Host-steno_csrf=") && cookie.contains("; Secure"),
        "{cookie}"
    );
    assert!(proxied
        .headers
        .contains_key(header::STRICT_TRANSPORT_SECURITY));
    let spoofed = login_page_from(&app, "198.51.100.7", Some("https")).await;
    let cookie = csrf_cookie_line(&spoofed);
    assert!(
        cookie.starts_with("steno_csrf=") && !cookie.contains("Secure"),
        "{cookie}"
    );
    assert!(!spoofed
        .headers
        .contains_key(header::STRICT_TRANSPORT_SECURITY));

    let public = TestApp::sqlite_with(|settings| {
        settings.account_security.public_url = Some("https://steno.example.com".into());
    })
    .await;
    public.register("Rivera & Hale LLP", "avery@rh.test").await;
    let page = login_page_from(&public, "198.51.100.7", None).await;
    let csrf_cookie = set_cookie_value(&page, "__Host-steno_csrf").expect("secure csrf cookie");
    let token = csrf_field_in(&page.text()).unwrap();
    let body =
        format!("csrf_token={token}&email=avery%40rh.test&password=correct+horse+battery+staple");
    let cookie = format!("__Host-steno_csrf={csrf_cookie}");
    // With a public URL, the form must come from exactly that origin.
    let from_host =
        post_login_with(&public, "http://steno.test", cookie.clone(), body.clone()).await;
    assert_eq!(
        from_host.status,
        StatusCode::FORBIDDEN,
        "{}",
        from_host.text()
    );
    let accepted = post_login_with(&public, "https://steno.example.com", cookie, body).await;
    assert_eq!(
        accepted.status,
        StatusCode::SEE_OTHER,
        "{}",
        accepted.text()
    );
    let session = accepted.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        session.starts_with("__Host-steno_session=") && session.contains("; Secure"),
        "{session}"
    );
}

async fn post_login_with(app: &TestApp, origin: &str, cookie: String, body: String) -> Answer {
    app.send(
        Request::post("/login")
            .header(header::HOST, TEST_HOST)
            .header(header::ORIGIN, origin)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}
