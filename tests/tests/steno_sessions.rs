//! End to end over real sockets: login throttling, token revocation and CSRF protection of a
//! served `steno`, with two processes sharing one database where that is the point, and the
//! permissions of the files Steno creates under a 022 umask.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e_tests::{binary, file_mode, register_firm, RunningProcess};
use reqwest::{header, redirect, Client, StatusCode};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

/// `steno serve` on a free loopback port, started under a 022 umask.
fn steno(data_dir: &Path, extra_env: &[(&str, &str)]) -> RunningProcess {
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 022 && exec \"$0\" \"$@\""])
        .arg(binary("steno"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("STENO_DATA_DIR", data_dir)
        .env("STENO_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("STENO_TRUSTED_PROXIES")
        .env_remove("STENO_PUBLIC_URL");
    for (key, value) in extra_env {
        command.env(key, value);
    }
    RunningProcess::start(command, Duration::from_secs(60))
}

fn client() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

async fn login(client: &Client, base: &str, email: &str, password: &str) -> reqwest::Response {
    client
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn me(client: &Client, base: &str, token: &str) -> StatusCode {
    client
        .get(format!("{base}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn two_processes_share_lockouts_and_revocations() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("steno-data");
    let settings = [
        ("STENO_LOGIN_ACCOUNT_MAX_FAILURES", "3"),
        ("STENO_LOGIN_CLIENT_MAX_ATTEMPTS", "1000"),
    ];
    let first = steno(&data_dir, &settings);
    let second = steno(&data_dir, &settings);
    let (a, b) = (first.base_url.clone(), second.base_url.clone());
    let client = client();

    let token = register_firm(&client, &a, "Rivera & Hale LLP", "avery@rh.test", PASSWORD).await;
    assert_eq!(me(&client, &b, &token).await, StatusCode::OK);

    // Three failures on one process lock the email on both; the right password is refused.
    for _ in 0..3 {
        let refused = login(&client, &a, "avery@rh.test", "wrong password here").await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    for base in [&a, &b] {
        let locked = login(&client, base, "avery@rh.test", PASSWORD).await;
        assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = locked.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry_after));
    }

    // Logging out on one process revokes the token on the other.
    let logout = client
        .post(format!("{a}/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&client, &b, &token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&client, &a, &token).await, StatusCode::UNAUTHORIZED);

    // The files and directories Steno created are private to its user.
    assert_eq!(file_mode(&data_dir), 0o700);
    for file in ["steno.db", "steno.db-wal", "steno.db-shm"] {
        assert_eq!(file_mode(&data_dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(file_mode(&data_dir.join("documents")), 0o700);
}

#[tokio::test]
async fn one_client_is_limited_without_affecting_others() {
    let data_dir = tempfile::tempdir().unwrap();
    let process = steno(data_dir.path(), &[("STENO_LOGIN_CLIENT_MAX_ATTEMPTS", "5")]);
    let base = process.base_url.clone();
    let client = client();
    for attempt in 0..5 {
        let refused = login(
            &client,
            &base,
            &format!("guess{attempt}@rh.test"),
            "wrong password here",
        )
        .await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = login(&client, &base, "guess9@rh.test", "wrong password here").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
    // Without STENO_TRUSTED_PROXIES, a forwarded address is not believed.
    let spoofed = client
        .post(format!("{base}/v1/auth/login"))
        .header("x-forwarded-for", "203.0.113.77")
        .json(&json!({"email": "x@rh.test", "password": "wrong password here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other routes are not throttled.
    let health = client
        .get(format!("{base}/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(|value| value.split(';').next().unwrap().to_string())
}

#[tokio::test]
async fn cross_site_login_forms_are_refused() {
    let data_dir = tempfile::tempdir().unwrap();
    let process = steno(data_dir.path(), &[]);
    let base = process.base_url.clone();
    let client = client();
    register_firm(
        &client,
        &base,
        "Rivera & Hale LLP",
        "avery@rh.test",
        PASSWORD,
    )
    .await;

    let page = client.get(format!("{base}/login")).send().await.unwrap();
    for (name, expected) in [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
    ] {
        assert_eq!(page.headers()[name], expected);
    }
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let csrf_cookie = set_cookie(&page, "steno_csrf").expect("a csrf cookie before any session");
    let html = page.text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("the form has a token") + marker.len();
    let token = &html[start..start + html[start..].find('"').unwrap()];
    let form = [
        ("csrf_token", token),
        ("email", "avery@rh.test"),
        ("password", PASSWORD),
    ];

    let cross_site = client
        .post(format!("{base}/login"))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::COOKIE, &csrf_cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&cross_site, "steno_session").is_none());

    let same_site = client
        .post(format!("{base}/login"))
        .header(header::ORIGIN, &base)
        .header(header::COOKIE, &csrf_cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&same_site, "steno_session").is_some());
}
