//! End to end: the on-call dashboard of a real `opsd up` with real Steno releases and `opsd
//! load` traffic, driven in headless Chromium. An operator logs in with the one-time link `opsd
//! up` printed, watches a rollout advance and a bad canary roll back on the page without
//! reloading, reads the decision's evidence, aborts a rollout from the page (with a reason and a
//! confirmation naming the service and versions) and finds the abort in the audit log. A viewer
//! sees no controls. The timeline's filter narrows it to one kind. Outside the browser: the session cookie's attributes, and state-changing
//! requests without the CSRF token, with a wrong one or from another origin, are refused.
//! Screenshots are kept under `target/dashboard-screenshots/`.

use std::path::Path;
use std::time::Duration;

use e2e_tests::opsd_up::{start_opsd_with_login_link, write_config, Opsd};
use e2e_tests::webdriver::Browser;
use e2e_tests::workspace_root;
use serde_json::Value;

/// Two quick steps, then full traffic with no watch; `slow.yaml` bakes long enough to act on.
const FAST_PLAN: &str = "name: fast-dashboard\nsteps:\n  - weight: 10\n    bake: 5s\n  - weight: 50\n    bake: 5s\n  - weight: 100\nwatch: 0\n";
const SLOW_PLAN: &str =
    "name: slow-dashboard\nsteps:\n  - weight: 10\n    bake: 10m\n  - weight: 100\nwatch: 0\n";

/// `opsd up` with the dashboard plans, and its one-time login link.
fn start_opsd(dir: &Path) -> (Opsd, String) {
    write_config(dir);
    std::fs::write(dir.join("fast.yaml"), FAST_PLAN).unwrap();
    std::fs::write(dir.join("slow.yaml"), SLOW_PLAN).unwrap();
    start_opsd_with_login_link(dir)
}

fn screenshot(browser: &Browser, name: &str) {
    browser.screenshot(
        &workspace_root()
            .join("target/dashboard-screenshots")
            .join(format!("{name}.png")),
    );
}

/// The page was not reloaded: the id the script gave it at load time is still there.
fn page_id(browser: &Browser) -> String {
    browser
        .execute(
            "return document.documentElement.dataset.pageId",
            serde_json::json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn assert_no_console_errors(browser: &Browser) {
    let errors = browser.console_errors();
    assert!(
        errors.is_empty(),
        "the browser console has errors: {errors:#?}"
    );
}

#[test]
fn an_operator_watches_rollouts_live_and_aborts_one_from_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (opsd, login_link) = start_opsd(dir.path());
    let mut load = opsd.load(150, 600);
    let browser = Browser::start();
    let wait = Duration::from_secs(60);

    // The one-time link logs the operator in; it works once.
    browser.goto(&login_link);
    browser.wait_for("article[data-service='steno']", wait);
    browser.wait_for_text("stable v1", wait);
    browser.wait_for("#act-steno-freeze", wait);
    browser.wait_for_text("● live", wait);
    let loaded = page_id(&browser);
    assert!(!loaded.is_empty());
    let reused = reqwest::blocking::get(&login_link).unwrap();
    assert_eq!(reused.status(), 401, "a one-time link works once");

    // A good release advances step by step on the page, then is promoted.
    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v2"]);
    assert_eq!(code, 0, "{out}");
    browser.wait_for_text("Rollout of v2 over v1", wait);
    browser.wait_for_text("step 2 of 3", wait);
    screenshot(&browser, "overview-rollout-in-progress");
    browser.wait_for_text("stable v2", Duration::from_secs(90));
    browser.wait_for_text("v2 promoted", wait);
    assert_eq!(
        page_id(&browser),
        loaded,
        "updates arrived without a reload"
    );

    // A bad canary is rolled back, and the page says so at the top.
    let (code, out) = opsd.cli(&[
        "deploy",
        "steno",
        "--version",
        "v3",
        "--env",
        "STENO_CHAOS_ERROR_RATE=0.5",
    ]);
    assert_eq!(code, 0, "{out}");
    browser.wait_for_text("v3 was rolled back", Duration::from_secs(90));
    assert_eq!(
        page_id(&browser),
        loaded,
        "updates arrived without a reload"
    );
    screenshot(&browser, "overview-after-rollback");
    let link = browser.wait_for(".attention a[href^='#/rollouts/']", wait);
    browser.click(&link);
    browser.wait_for("li[data-kind='roll_back']", wait);
    let evidence = browser.wait_for("li[data-kind='roll_back'] details summary", wait);
    browser.click(&evidence);
    browser.wait_for("li[data-kind='roll_back'] details[open] dl.evidence", wait);
    browser.wait_for_text("anytime p", wait);
    screenshot(&browser, "rollout-rolled-back");
    assert_no_console_errors(&browser);

    // A slow rollout is aborted from the page, with a reason, after a confirmation that names it.
    browser.goto(&format!("{}/#/", opsd.api_url));
    let slow = dir.path().join("slow.yaml").display().to_string();
    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v4", "--plan", &slow]);
    assert_eq!(code, 0, "{out}");
    let abort = browser.wait_for("#act-steno-abort", wait);
    browser.click(&abort);
    let title = browser.text(&browser.wait_for("#confirm-title", wait));
    assert_eq!(title, "Abort steno v4 (stable v2)?");
    let go = browser.wait_for("#confirm-go", wait);
    browser.click(&go);
    browser.wait_for_text("Say why", wait);
    let reason = browser.wait_for("#confirm-reason", wait);
    browser.type_into(&reason, "checking the abort button on the dashboard");
    browser.click(&go);
    browser.wait_for_text("v4 aborted", wait);
    let aborted = opsd
        .audit()
        .into_iter()
        .find(|entry| entry["action"] == "abort")
        .expect("the abort is audited");
    assert_eq!(aborted["actor"], "operator");
    assert_eq!(aborted["target"], "steno");
    assert_eq!(
        aborted["reason"],
        "checking the abort button on the dashboard"
    );

    // The audit page shows it too.
    browser.goto(&format!("{}/#/audit", opsd.api_url));
    browser.wait_for("tr[data-action='abort']", wait);
    browser.wait_for_text("checking the abort button on the dashboard", wait);
    screenshot(&browser, "audit");
    assert_no_console_errors(&browser);

    // The timeline, filtered by kind through its form: only the rollback is left, linked.
    browser.goto(&format!("{}/#/timeline", opsd.api_url));
    browser.wait_for("tr[data-kind='rollout_started']", wait);
    let kind = browser.wait_for("#filter-kind", wait);
    browser.type_into(&kind, "roll_back");
    browser.click(&browser.wait_for("#filter-apply", wait));
    browser.wait_for_text("1 entry, newest first", wait);
    let kinds = browser.execute(
        "return Array.from(document.querySelectorAll('tr[data-kind]')).map((row) => row.dataset.kind)",
        serde_json::json!([]),
    );
    assert_eq!(kinds, serde_json::json!(["roll_back"]));
    assert!(browser.current_url().ends_with("#/timeline?kind=roll_back"));
    browser.wait_for("tr[data-kind='roll_back'] a[href^='#/rollouts/']", wait);
    screenshot(&browser, "timeline-filtered");
    assert_no_console_errors(&browser);
    let refused = reqwest::blocking::Client::new()
        .get(format!("{}/v1/timeline?since=yesterday", opsd.api_url))
        .bearer_auth(opsd.token())
        .send()
        .unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused
        .text()
        .unwrap()
        .contains("`since` must be an RFC 3339 time"));
    let _ = load.kill();
    let _ = load.wait();
}

/// The value of `Set-Cookie` for the session, and the session id.
fn session_cookie(response: &reqwest::blocking::Response) -> (String, String) {
    let header = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    let id = header
        .strip_prefix("opsd_session=")
        .and_then(|rest| rest.split(';').next())
        .unwrap()
        .to_string();
    (header, id)
}

#[test]
fn a_viewer_sees_no_controls_and_changes_without_the_csrf_token_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (opsd, _) = start_opsd(dir.path());
    let viewer = opsd.create_token("vera", "viewer");

    // In the browser: a wrong token is refused with a message; the viewer sees no controls.
    let browser = Browser::start();
    let wait = Duration::from_secs(60);
    browser.goto(&format!("{}/", opsd.api_url));
    let field = browser.wait_for("#token", wait);
    browser.type_into(&field, "opsd_not-a-real-token");
    browser.click(&browser.wait_for("#login", wait));
    browser.wait_for_text("that token is not known to this opsd", wait);
    let field = browser.wait_for("#token", wait);
    browser.type_into(&field, &viewer);
    browser.click(&browser.wait_for("#login", wait));
    browser.wait_for("article[data-service='steno']", wait);
    browser.wait_for_text("vera (viewer)", wait);
    browser.wait_for("table.gates tr[data-gate='drill']", wait);
    assert!(
        browser.find_all("[data-action]").is_empty(),
        "a viewer gets no action controls"
    );
    let audit_link_hidden = browser.execute(
        "return document.getElementById('nav-audit').hidden",
        serde_json::json!([]),
    );
    assert_eq!(audit_link_hidden, true);
    screenshot(&browser, "overview-viewer");
    // Browsers log a refused login (401) as a failed load; only this page's errors count.
    let errors: Vec<String> = browser
        .console_errors()
        .into_iter()
        .filter(|error| !error.contains("/login"))
        .collect();
    assert!(
        errors.is_empty(),
        "the browser console has errors: {errors:#?}"
    );

    // Over HTTP: the session cookie and the CSRF rules.
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let api = opsd.api_url.to_string();
    let from_elsewhere = http
        .post(format!("{api}/login"))
        .header("origin", "http://evil.example")
        .form(&[("token", opsd.token())])
        .send()
        .unwrap();
    assert_eq!(
        from_elsewhere.status(),
        403,
        "a login posted by another site"
    );
    let login = http
        .post(format!("{api}/login"))
        .form(&[("token", opsd.token())])
        .send()
        .unwrap();
    assert_eq!(login.status(), 303);
    let (set_cookie, session) = session_cookie(&login);
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = format!("opsd_session={session}");
    let me: Value = http
        .get(format!("{api}/v1/session"))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["role"], "operator");
    let csrf = me["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(csrf.len(), 64);

    let freeze = |csrf: Option<&str>, origin: Option<&str>| {
        let mut request = http
            .post(format!("{api}/v1/freeze"))
            .header("cookie", &cookie)
            .header("content-type", "application/json")
            .body(r#"{"service":"steno","reason":"checking CSRF"}"#);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send().unwrap()
    };
    let missing = freeze(None, None);
    assert_eq!(missing.status(), 403);
    assert!(missing.text().unwrap().contains("CSRF"));
    assert_eq!(freeze(Some("0".repeat(64).as_str()), None).status(), 403);
    assert_eq!(
        freeze(Some(&csrf), Some("http://evil.example")).status(),
        403
    );
    assert!(
        opsd.audit().iter().all(|entry| entry["action"] != "freeze"),
        "refused requests changed nothing"
    );
    let allowed = freeze(Some(&csrf), Some(&api));
    assert_eq!(allowed.status(), 201, "{:?}", allowed.text());
    let frozen = opsd
        .audit()
        .into_iter()
        .find(|entry| entry["action"] == "freeze")
        .expect("the freeze is audited like the CLI's");
    assert_eq!(frozen["actor"], "operator");
    assert_eq!(frozen["reason"], "checking CSRF");

    // Logging out needs the CSRF token too, and ends the session.
    let logout = |csrf: Option<&str>| {
        let mut request = http.post(format!("{api}/logout")).header("cookie", &cookie);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send().unwrap().status()
    };
    assert_eq!(logout(None), 403);
    assert_eq!(logout(Some(&csrf)), 204);
    let after = http
        .get(format!("{api}/v1/session"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(after.status(), 401);
    let page = http.get(format!("{api}/")).send().unwrap();
    assert_eq!(
        page.status(),
        303,
        "the page sends a browser with no session to the login"
    );
    let csp = http
        .get(format!("{api}/login"))
        .send()
        .unwrap()
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
}
