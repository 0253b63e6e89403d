//! End to end: the on-call dashboard of a real `opsd up` with real Steno releases and `opsd
//! load` traffic, driven in headless Chromium. An operator logs in with the one-time link `opsd
//! up` printed, watches a rollout advance and a bad canary roll back on the page without
//! reloading, reads the decision's evidence, aborts a rollout from the page (with a reason and a
//! confirmation naming the service and versions) and finds the abort in the audit log. A viewer
//! sees no controls. The timeline's filter narrows it to one kind. With a database and a budget:
//! the first drill runs before the API answers, a rollout's page charts canary against baseline
//! per second, the drills, costs and alarms pages show their history, the timeline merges drills,
//! cost checks and the audit log, and an operator pauses a rollout with the keyboard alone.
//! Outside the browser: the session cookie's attributes, and state-changing requests without the
//! CSRF token, with a wrong one or from another origin, are refused; live feeds are bounded per
//! token and close when their session logs out or their token is revoked.
//! Screenshots are kept under `target/dashboard-screenshots/`.

use std::io::BufRead;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use e2e_tests::opsd_up::{start_opsd_with_login_link, write_config, Opsd};
use e2e_tests::steno_data::new_steno_sqlite;
use e2e_tests::webdriver::{Browser, ENTER};
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
    // The one opsd here leads (the lease of its store), named with its epoch.
    let leader = browser.wait_for("p.leader[data-leader]", wait);
    let leader_text = browser.text(&leader);
    assert!(
        leader_text.starts_with("leader ") && leader_text.contains("epoch 1"),
        "{leader_text}"
    );
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
    browser.click_on(".attention a[href^='#/rollouts/']", wait);
    browser.wait_for("li[data-kind='roll_back']", wait);
    browser.click_on("li[data-kind='roll_back'] details summary", wait);
    browser.wait_for("li[data-kind='roll_back'] details[open] dl.evidence", wait);
    browser.wait_for_text("anytime p", wait);
    // The rollout's own timeline: from its start to the rollback, nothing of other rollouts.
    browser.wait_for("#rollout-timeline tr[data-kind='rollout_started']", wait);
    browser.wait_for("#rollout-timeline tr[data-kind='roll_back']", wait);
    let started = browser.execute(
        "return document.querySelectorAll('#rollout-timeline tr[data-kind=\"rollout_started\"]').length",
        serde_json::json!([]),
    );
    assert_eq!(started, 1, "only this rollout's start");
    assert!(
        chart_points(&browser, "chart-error_rate_percent", "canary") > 0,
        "the seconds the rollback was decided on are charted"
    );
    screenshot(&browser, "rollout-rolled-back");
    assert_no_console_errors(&browser);

    // A slow rollout is aborted from the page, with a reason, after a confirmation that names it.
    browser.goto(&format!("{}/#/", opsd.api_url));
    let slow = dir.path().join("slow.yaml").display().to_string();
    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v4", "--plan", &slow]);
    assert_eq!(code, 0, "{out}");
    browser.click_on("#act-steno-abort", wait);
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
    browser.type_into_selector("#filter-kind", "roll_back", wait);
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

/// Opens the live feed with `header: value` as the credential and waits for its first
/// overview; the receiver then gets one message when the stream ends.
fn open_live_feed(api: &str, header: &str, value: &str) -> mpsc::Receiver<()> {
    let feeds = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap();
    let response = feeds
        .get(format!("{api}/v1/events"))
        .header(header, value)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "the live feed opens");
    let (first_sender, first) = mpsc::channel();
    let (ended_sender, ended) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(response).lines();
        for line in lines.by_ref() {
            match line {
                Ok(line) if line == "event: overview" => {
                    let _ = first_sender.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = ended_sender.send(());
    });
    first
        .recv_timeout(Duration::from_secs(30))
        .expect("the live feed sends the overview first");
    ended
}

/// Fails unless the live feed behind `ended` closes (the bound is generous: a logout closes a
/// feed at once, a revoked token within opsd's 5 s re-check).
fn assert_feed_ends(ended: &mpsc::Receiver<()>, why: &str) {
    assert!(
        ended.recv_timeout(Duration::from_secs(30)).is_ok(),
        "the live feed stays open after {why}"
    );
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

    // Live feeds are bounded per token: the viewer's 65th open dashboard is refused.
    let viewer_auth = format!("Bearer {viewer}");
    let viewer_feed = open_live_feed(&api, "authorization", &viewer_auth);
    let mut held = Vec::new();
    let refused = loop {
        let response = http
            .get(format!("{api}/v1/events"))
            .bearer_auth(&viewer)
            .send()
            .unwrap();
        if response.status() != 200 {
            break response;
        }
        held.push(response);
        assert!(held.len() < 64, "more than 64 live feeds for one token");
    };
    // 64 in all: these, the first one, and the viewer's page in the browser if still counted.
    assert!((62..=63).contains(&held.len()), "{} held", held.len());
    assert_eq!(refused.status(), 429);
    assert!(refused.text().unwrap().contains("64 live dashboards"));
    assert_eq!(
        http.get(format!("{api}/v1/events"))
            .header("cookie", &cookie)
            .send()
            .unwrap()
            .status(),
        200,
        "another token has its own bound"
    );
    drop(held);

    // A revoked token's live dashboards close, and it opens nothing any more.
    let (code, out) = opsd.cli(&["token", "revoke", "vera"]);
    assert_eq!(code, 0, "{out}");
    assert_feed_ends(&viewer_feed, "its token was revoked");
    assert_eq!(
        http.get(format!("{api}/v1/events"))
            .bearer_auth(&viewer)
            .send()
            .unwrap()
            .status(),
        401
    );

    // Logging out needs the CSRF token too, ends the session and closes its live feed.
    let session_feed = open_live_feed(&api, "cookie", &cookie);
    let logout = |csrf: Option<&str>| {
        let mut request = http.post(format!("{api}/logout")).header("cookie", &cookie);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send().unwrap().status()
    };
    assert_eq!(logout(None), 403);
    assert_eq!(logout(Some(&csrf)), 204);
    assert_feed_ends(&session_feed, "its session logged out");
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

/// The end of opsd's log so far, for a failure's message.
fn opsd_log(opsd: &Opsd) -> String {
    let log = opsd.process.stderr_so_far();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// How many points of a chart's series the page drew (`data-points` of its path).
fn chart_points(browser: &Browser, chart: &str, series_prefix: &str) -> u64 {
    browser
        .execute(
            "const path = document.querySelector('#' + arguments[0] + ' path[data-series^=\"' + arguments[1] + '\"]'); \
             return path ? Number(path.dataset.points) : 0",
            serde_json::json!([chart, series_prefix]),
        )
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn charts_drills_costs_and_alarms_pages_and_a_keyboard_only_operator() {
    let dir = tempfile::tempdir().unwrap();
    let database_path = new_steno_sqlite(dir.path(), 1, 5, 100);
    let config_path = write_config(dir.path());
    let mut config = std::fs::read_to_string(&config_path).unwrap();
    config.push_str(&format!(
        "    database: steno\n\
         databases:\n  steno:\n    kind: sqlite\n    path: {}\n    schedule: \"@yearly\"\n\
         costs:\n  source: local\n  budgets:\n    - name: monthly\n      amount_usd: 50\n",
        database_path.display()
    ));
    std::fs::write(&config_path, config).unwrap();
    std::fs::write(dir.path().join("slow.yaml"), SLOW_PLAN).unwrap();
    let (opsd, login_link) = start_opsd_with_login_link(dir.path());

    // The database was never drilled: its first drill ran before the API answered, so a deploy
    // in the first second is not refused by the drill gate.
    let slow = dir.path().join("slow.yaml").display().to_string();
    let (code, out) = opsd.cli(&["deploy", "steno", "--version", "v2", "--plan", &slow]);
    assert_eq!(code, 0, "{out}");
    let mut load = opsd.load(100, 600);
    let browser = Browser::start();
    let wait = Duration::from_secs(60);
    browser.goto(&login_link);
    browser.wait_for("article[data-service='steno']", wait);
    browser.wait_for_text("● live", wait);
    assert!(
        !browser.page_text().contains("127.0.0.1:0"),
        "the overview shows the bound public address"
    );

    // Keyboard only: the skip link comes first, then the pages; the pause of the rollout is
    // reached, confirmed with a reason and submitted without a pointer.
    browser.tab_to("a.skip", 3);
    browser.tab_to("#act-steno-pause", 60);
    browser.press(ENTER);
    browser.wait_for("#confirm[open]", wait);
    let focused = browser.execute("return document.activeElement.id", serde_json::json!([]));
    assert_eq!(
        focused, "confirm-reason",
        "the dialog puts the focus on the reason"
    );
    browser.press("pausing from the keyboard");
    browser.tab_to("#confirm-go", 3);
    browser.press(ENTER);
    browser.wait_for_text("paused", wait);
    let paused = opsd
        .audit()
        .into_iter()
        .find(|entry| entry["action"] == "pause")
        .expect("the keyboard's pause is audited");
    assert_eq!(paused["reason"], "pausing from the keyboard");
    browser.tab_to("nav a[href='#/drills']", 80);
    browser.press(ENTER);
    browser.wait_for("section[data-database='steno']", wait);
    assert!(browser.current_url().ends_with("#/drills"));

    // The rollout's page charts canary against baseline, second by second, as traffic flows.
    let status = opsd.status();
    let rollout_id = status["service"]["active_rollout"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a rollout in the status: {status:#}"))
        .to_string();
    browser.goto(&format!("{}/#/rollouts/{rollout_id}", opsd.api_url));
    browser.wait_for("#traffic-charts", wait);
    let deadline = std::time::Instant::now() + wait;
    while chart_points(&browser, "chart-requests_per_second", "canary") < 3
        || chart_points(&browser, "chart-requests_per_second", "baseline") < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the charts never filled; the page says:\n{}",
            browser.page_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    for chart in ["error_rate_percent", "p50_ms", "p95_ms", "p99_ms"] {
        browser.wait_for(&format!("#chart-{chart} path[data-series^='canary']"), wait);
    }
    screenshot(&browser, "rollout-charts");

    // Drills: the first drill with its RTO and RPO on the trend chart, phases and verification.
    let (code, out) = opsd.cli(&["drill", "run", "steno"]);
    assert_eq!(code, 0, "{out}");
    browser.goto(&format!("{}/#/drills", opsd.api_url));
    browser.wait_for("#drill-trend-steno path[data-series='RTO']", wait);
    let drills = browser.find_all("details[data-drill]").len();
    assert_eq!(drills, 2, "the first drill at start and the one run now");
    assert_eq!(chart_points(&browser, "drill-trend-steno", "RTO"), 2);
    browser.wait_for_text("RTO target", wait);
    browser.click_on("details[data-drill] summary", wait);
    browser.wait_for(
        "details[data-drill][open] table.verification tbody tr",
        wait,
    );
    screenshot(&browser, "drills");

    // Costs: the budget check opsd runs after it starts, charted against the budget line.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        // Away and back: going to the page's own address again would not draw it again.
        browser.goto(&format!("{}/#/", opsd.api_url));
        browser.goto(&format!("{}/#/costs", opsd.api_url));
        browser.wait_for_text("Costs", wait);
        if !browser.find_all("#cost-forecast").is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no cost check reached the page: {}\nopsd's log:\n{}",
            browser.page_text(),
            opsd_log(&opsd)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    browser.wait_for("tr[data-budget='monthly']", wait);
    browser.wait_for_text("monthly $50.00", wait);
    screenshot(&browser, "costs");

    // Alarms: every rule with its state, and the changes each went through.
    browser.goto(&format!("{}/#/alarms", opsd.api_url));
    browser.wait_for("tr[data-rule][data-service='steno']", wait);
    let deadline = std::time::Instant::now() + wait;
    while browser.find_all("details.alarm-history").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no alarm rule has a history: {}",
            browser.page_text()
        );
        std::thread::sleep(Duration::from_secs(1));
        browser.goto(&format!("{}/#/", opsd.api_url));
        browser.goto(&format!("{}/#/alarms", opsd.api_url));
        browser.wait_for("tr[data-rule]", wait);
    }
    screenshot(&browser, "alarms");

    // One timeline: the drills, the cost check and the operator's pause among the events,
    // each linked to its page.
    browser.goto(&format!("{}/#/timeline", opsd.api_url));
    browser.wait_for("tr[data-source='drill'] a[href='#/drills']", wait);
    browser.wait_for("tr[data-source='cost_check'] a[href='#/costs']", wait);
    browser.wait_for("tr[data-source='audit'][data-kind='operator_action']", wait);
    browser.wait_for("tr[data-source='event'][data-kind='rollout_started']", wait);
    assert_no_console_errors(&browser);
    let (code, out) = opsd.cli(&["abort", "steno", "--reason", "end of the test"]);
    assert_eq!(code, 0, "{out}");
    let _ = load.kill();
    let _ = load.wait();
}
