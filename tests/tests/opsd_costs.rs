//! End to end: `opsd cost check` and `opsd cost report` against Cost Explorer in the emulator,
//! with daily costs injected per scenario: within budget (exit 0), 80 % warning (exit 3), 100 %
//! critical (exit 2), a forecast past 120 % (exit 2, the forecast threshold named) and a spend
//! anomaly named in the report. Each change of state is notified once to a Slack-compatible
//! webhook served by the test; checking the same state again notifies nothing. A budget scoped
//! to a tag is evaluated from answers grouped by that tag, and a budget that names its
//! notification targets notifies only them.

use std::path::Path;
use std::process::Command;

use chrono::{Days, NaiveDate};
use e2e_tests::aws_emulator::{use_test_credentials, AwsEmulator};
use e2e_tests::webhook::Webhook;
use e2e_tests::{start_opsd_up_with, CommandOutput};
use serde_json::{json, Value};
use std::time::Duration;

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// A `GetCostAndUsage` answer covering the days opsd asks for on `today` (63 days of history
/// through today): `AWS Lambda` costs `daily` a day, except `today`, which costs `today_usd`.
fn answer(today: NaiveDate, daily: f64, today_usd: f64) -> Value {
    let first = today.checked_sub_days(Days::new(63)).unwrap();
    let mut results = Vec::new();
    let mut current = first;
    while current <= today {
        let amount = if current == today { today_usd } else { daily };
        results.push(json!({
            "TimePeriod": {"Start": current.to_string(), "End": current.succ_opt().unwrap().to_string()},
            "Total": {},
            "Groups": [{"Keys": ["AWS Lambda"], "Metrics": {"UnblendedCost": {"Amount": format!("{amount:.2}"), "Unit": "USD"}}}],
            "Estimated": false
        }));
        current = current.succ_opt().unwrap();
    }
    json!({
        "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
        "ResultsByTime": results,
        "DimensionValueAttributes": []
    })
}

/// A `GetCostAndUsage` answer grouped by the tag `key` for the days opsd asks for on `today`:
/// each `(value, daily)` costs `daily` every day. Cost Explorer names the groups `key$value`.
fn tag_answer(today: NaiveDate, key: &str, values: &[(&str, f64)]) -> Value {
    let first = today.checked_sub_days(Days::new(63)).unwrap();
    let mut results = Vec::new();
    let mut current = first;
    while current <= today {
        let groups: Vec<Value> = values
            .iter()
            .map(|(value, daily)| {
                json!({"Keys": [format!("{key}${value}")], "Metrics": {"UnblendedCost": {"Amount": format!("{daily:.2}"), "Unit": "USD"}}})
            })
            .collect();
        results.push(json!({
            "TimePeriod": {"Start": current.to_string(), "End": current.succ_opt().unwrap().to_string()},
            "Total": {},
            "Groups": groups,
            "Estimated": false
        }));
        current = current.succ_opt().unwrap();
    }
    json!({
        "GroupDefinitions": [{"Type": "TAG", "Key": key}],
        "ResultsByTime": results,
        "DimensionValueAttributes": []
    })
}

/// Queues one answer; moto gives it to the next `GetCostAndUsage` with a body it has not seen
/// and answers the same body again from its cache.
fn inject(emulator: &AwsEmulator, answer: Value) {
    let url = format!(
        "{}/moto-api/static/ce/cost-and-usage-results",
        emulator.moto_url()
    );
    let response = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(&url)
        .json(&json!({ "results": [answer] }))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 201, "POST {url}");
}

fn write_config(dir: &Path, emulator: &AwsEmulator, webhook: &Webhook) {
    write_config_with_service(dir, emulator, webhook, "");
}

fn write_config_with_service(
    dir: &Path,
    emulator: &AwsEmulator,
    webhook: &Webhook,
    service_lines: &str,
) {
    let config = format!(
        "listen: 127.0.0.1:0\n\
         data_dir: data\n\
         services:\n  steno:\n    public_addr: 127.0.0.1:0\n{service_lines}\
         notifications:\n  targets:\n    - {{name: hook, kind: slack, webhook_url: \"{hook}\"}}\n  routes:\n    - {{min_severity: info, targets: [hook]}}\n\
         costs:\n  source: aws\n  aws: {{endpoint_url: \"{endpoint}\", max_attempts: 1}}\n  anomalies: {{check_account_total: false}}\n  budgets:\n    - {{name: monthly, amount_usd: 1000}}\n",
        hook = webhook.url,
        endpoint = emulator.endpoint_url(),
    );
    std::fs::write(dir.join("opsd.yaml"), config).unwrap();
}

/// `opsd` on the config in `dir`, with the emulator's credentials and no proxy.
/// `opsd --config ...` with the emulator's credentials and no proxies.
fn opsd_command(dir: &Path) -> Command {
    let mut command = e2e_tests::opsd_command(dir);
    use_test_credentials(&mut command);
    command
}

fn opsd(dir: &Path, args: &[&str]) -> CommandOutput {
    CommandOutput::of(opsd_command(dir).args(args))
}

/// Runs one scenario in a fresh data directory: the first check exits `code` and sends
/// `notifications`, a second check of the same day exits the same and sends nothing new.
/// Returns the first check's JSON.
fn scenario(
    emulator: &AwsEmulator,
    webhook: &Webhook,
    today: &str,
    answer_value: Value,
    code: i32,
    notifications: usize,
) -> Value {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), emulator, webhook);
    inject(emulator, answer_value);
    let before = webhook.count();
    let first = opsd(dir.path(), &["cost", "check", "--today", today, "--json"]);
    assert_eq!(
        first.code, code,
        "{today}: {}\n{}",
        first.stdout, first.stderr
    );
    let report = first.json();
    assert_eq!(
        webhook.count() - before,
        notifications,
        "{today}: {report:#}"
    );
    assert_eq!(report["notified"].as_array().unwrap().len(), notifications);
    let second = opsd(dir.path(), &["cost", "check", "--today", today]);
    assert_eq!(second.code, code, "{}\n{}", second.stdout, second.stderr);
    assert!(
        second.stdout.contains("notified: nothing new"),
        "{}",
        second.stdout
    );
    assert_eq!(
        webhook.count() - before,
        notifications,
        "a second check of the same state notified again"
    );
    report
}

#[test]
fn cost_checks_exit_by_budget_state_and_notify_changes_once() {
    let emulator = AwsEmulator::start();
    let webhook = Webhook::start();

    // $20 a day: $300 by June 15 and $600 forecast of $1,000.
    let ok = scenario(
        &emulator,
        &webhook,
        "2026-06-15",
        answer(day("2026-06-15"), 20.0, 20.0),
        0,
        0,
    );
    assert_eq!(ok["state"], "ok", "{ok:#}");
    assert!((ok["month_to_date_usd"].as_f64().unwrap() - 300.0).abs() < 0.01);

    // $30 a day: $840 by June 28 (84 %), $900 forecast: warning only.
    let warning = scenario(
        &emulator,
        &webhook,
        "2026-06-28",
        answer(day("2026-06-28"), 30.0, 30.0),
        3,
        1,
    );
    assert_eq!(warning["budgets"][0]["state"], "warning", "{warning:#}");
    assert!(
        webhook.last_text().contains("ok -> warning"),
        "{}",
        webhook.last_text()
    );

    // $40 a day: $1,120 by May 28 (112 %): critical on actual spend.
    let critical = scenario(
        &emulator,
        &webhook,
        "2026-05-28",
        answer(day("2026-05-28"), 40.0, 40.0),
        2,
        1,
    );
    let crossed = critical["budgets"][0]["crossed"].as_array().unwrap();
    assert!(
        crossed
            .iter()
            .any(|crossing| crossing["threshold"]["basis"] == "actual"
                && crossing["threshold"]["percent"] == 100.0),
        "{critical:#}"
    );
    assert!(
        webhook.last_text().contains("ok -> critical"),
        "{}",
        webhook.last_text()
    );

    // $45 a day: $450 by June 10 (45 %), but $1,350 forecast (135 %): critical on the forecast.
    let forecast = scenario(
        &emulator,
        &webhook,
        "2026-06-10",
        answer(day("2026-06-10"), 45.0, 45.0),
        2,
        1,
    );
    let crossed = forecast["budgets"][0]["crossed"].as_array().unwrap();
    assert_eq!(crossed.len(), 1, "{forecast:#}");
    assert_eq!(crossed[0]["threshold"]["basis"], "forecast");
    assert_eq!(crossed[0]["threshold"]["percent"], 120.0);
    assert!(forecast["forecast_over_budget"].as_bool().unwrap());
    assert!(
        webhook.last_text().contains("forecast 120%"),
        "{}",
        webhook.last_text()
    );

    // $10 a day, then $80 on July 10: an anomaly (+$70, +700 % over the weekday baseline)
    // within budget.
    let anomaly = scenario(
        &emulator,
        &webhook,
        "2026-07-10",
        answer(day("2026-07-10"), 10.0, 80.0),
        0,
        1,
    );
    let anomalies = anomaly["anomalies"].as_array().unwrap();
    assert_eq!(anomalies.len(), 1, "{anomaly:#}");
    assert_eq!(anomalies[0]["service"], "AWS Lambda");
    assert_eq!(anomalies[0]["day"], "2026-07-10");
    assert!(
        webhook.last_text().contains("cost anomaly"),
        "{}",
        webhook.last_text()
    );
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &emulator, &webhook);
    let report = opsd(dir.path(), &["cost", "report", "--today", "2026-07-10"]);
    assert_eq!(report.code, 0, "{}\n{}", report.stdout, report.stderr);
    assert!(report.stdout.contains("AWS Lambda"), "{}", report.stdout);
    assert!(
        report.stdout.contains("AWS Lambda on 2026-07-10: $80.00"),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains("forecast for 2026-07-31"),
        "{}",
        report.stdout
    );
}

#[test]
fn a_config_without_costs_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("opsd.yaml"),
        "services:\n  steno:\n    public_addr: 127.0.0.1:0\n",
    )
    .unwrap();
    let output = opsd(dir.path(), &["cost", "check"]);
    assert_eq!(output.code, 1);
    assert!(
        output.stderr.contains("no costs: block"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_forecast_over_budget_refuses_deploys_until_an_audited_override() {
    let emulator = AwsEmulator::start();
    let webhook = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    write_config_with_service(
        dir.path(),
        &emulator,
        &webhook,
        "    ready_timeout: 20s\n    budget_gate: refuse\n",
    );
    // $60 a day is past 120 % of $1,000 by the month's end, whatever today is. The daemon's own
    // scheduled check asks for the same days and gets the same (cached) answer.
    let today = chrono::Utc::now().date_naive();
    inject(&emulator, answer(today, 60.0, 60.0));
    let check = opsd(dir.path(), &["cost", "check", "--json"]);
    assert_eq!(check.code, 2, "{}\n{}", check.stdout, check.stderr);
    assert!(check.json()["forecast_over_budget"].as_bool().unwrap());

    let (mut process, _) = start_opsd_up_with(opsd_command(dir.path()), "steno");
    let server = process.base_url.clone();
    let client = |args: &[&str]| {
        let mut full = vec!["--server", server.as_str()];
        full.extend_from_slice(args);
        opsd(dir.path(), &full)
    };
    let refused = client(&["deploy", "steno", "--version", "v2"]);
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("refused by the budget gate"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("--override budget"),
        "{}",
        refused.stderr
    );
    let overridden = client(&[
        "deploy",
        "steno",
        "--version",
        "v2",
        "--override",
        "budget",
        "--reason",
        "security fix; spend reviewed with finance",
        "--json",
    ]);
    assert_eq!(overridden.code, 0, "{}", overridden.stderr);
    let token = std::fs::read_to_string(dir.path().join("data/operator.token")).unwrap();
    let audit: Value = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{server}/v1/audit"))
        .bearer_auth(token.trim())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let entry = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["action"] == "override_budget_gate")
        .unwrap_or_else(|| panic!("no override in the audit log: {audit:#}"));
    assert_eq!(entry["reason"], "security fix; spend reviewed with finance");
    assert!(entry["detail"]["closed_because"]
        .as_str()
        .unwrap()
        .contains("budget monthly forecast"));
    let aborted = client(&["abort", "steno", "--reason", "test over"]);
    assert_eq!(aborted.code, 0, "{}", aborted.stderr);

    // A gate that cannot read the newest cost check does not open.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let store = dir.path().join("data/opsd.db");
        let mut connection =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", store.display()))
                .await
                .unwrap();
        sqlx::query("ALTER TABLE cost_checks RENAME TO cost_checks_hidden")
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let blind = loop {
        let attempt = client(&["deploy", "steno", "--version", "v3"]);
        if !attempt.stderr.contains("in progress") {
            break attempt;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the aborted rollout never settled"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(blind.code, 1, "{}", blind.stdout);
    assert!(
        blind.stderr.contains("cost check cannot be read"),
        "{}",
        blind.stderr
    );
    process.terminate(Duration::from_secs(20));
}

/// Two webhook targets: `ops`, which the routes send every severity to, and `finance`, which no
/// route names. A generous account budget and a $1,000 budget on the tag
/// `Environment=production`, with `notify_line` added to it.
fn write_tag_config(
    dir: &Path,
    endpoint: &str,
    ops: &Webhook,
    finance: &Webhook,
    notify_line: &str,
) {
    let config = format!(
        "listen: 127.0.0.1:0\n\
         data_dir: data\n\
         services:\n  steno:\n    public_addr: 127.0.0.1:0\n\
         notifications:\n  targets:\n    - {{name: ops, kind: slack, webhook_url: \"{ops}\"}}\n    - {{name: finance, kind: slack, webhook_url: \"{finance}\"}}\n  routes:\n    - {{min_severity: info, targets: [ops]}}\n\
         costs:\n  source: aws\n  aws: {{endpoint_url: \"{endpoint}\", max_attempts: 1}}\n  anomalies: {{check_account_total: false}}\n  budgets:\n    - {{name: monthly, amount_usd: 100000}}\n    - name: production\n      amount_usd: 1000\n      scope: {{tag: \"Environment=production\"}}\n{notify_line}",
        ops = ops.url,
        finance = finance.url,
    );
    std::fs::write(dir.join("opsd.yaml"), config).unwrap();
}

/// Queues the two answers one check on `today` asks for, in the order opsd asks: by service
/// (flat $10 a day of Lambda: no anomaly, far under the account budget), then by the tag
/// `Environment` ($45 a day in production, $100 in staging, $5 untagged).
fn inject_tagged_day(emulator: &AwsEmulator, today: NaiveDate) {
    inject(emulator, answer(today, 10.0, 10.0));
    inject(
        emulator,
        tag_answer(
            today,
            "Environment",
            &[("production", 45.0), ("staging", 100.0), ("", 5.0)],
        ),
    );
}

#[test]
fn a_tag_budget_counts_its_tag_and_notifies_the_targets_it_names() {
    let emulator = AwsEmulator::start();
    let ops = Webhook::start();
    let finance = Webhook::start();

    // Without notify: routed by severity, to ops only.
    let dir = tempfile::tempdir().unwrap();
    write_tag_config(dir.path(), &emulator.endpoint_url(), &ops, &finance, "");
    inject_tagged_day(&emulator, day("2026-06-10"));
    let check = opsd(
        dir.path(),
        &["cost", "check", "--today", "2026-06-10", "--json"],
    );
    // Production: $450 by June 10 (45 %), $1,350 forecast (135 %): critical on the forecast.
    // Staging's $100 a day would be over the actual thresholds if it were counted.
    assert_eq!(check.code, 2, "{}\n{}", check.stdout, check.stderr);
    let report = check.json();
    let production = &report["budgets"][1];
    assert_eq!(production["budget"], "production", "{report:#}");
    assert_eq!(production["state"], "critical", "{report:#}");
    assert!(
        (production["month_to_date_usd"].as_f64().unwrap() - 450.0).abs() < 0.01,
        "{report:#}"
    );
    let crossed = production["crossed"].as_array().unwrap();
    assert_eq!(crossed.len(), 1, "{report:#}");
    assert_eq!(crossed[0]["threshold"]["basis"], "forecast");
    assert_eq!(report["budgets"][0]["state"], "ok", "{report:#}");
    assert_eq!(
        report["notified"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert_eq!(ops.count(), 1, "{report:#}");
    assert_eq!(finance.count(), 0, "{report:#}");
    assert!(
        ops.last_text()
            .contains("budget production: ok -> critical"),
        "{}",
        ops.last_text()
    );

    // With notify: [finance]: to finance only, though the routes send everything to ops.
    let dir = tempfile::tempdir().unwrap();
    write_tag_config(
        dir.path(),
        &emulator.endpoint_url(),
        &ops,
        &finance,
        "      notify: [finance]\n",
    );
    inject_tagged_day(&emulator, day("2026-06-11"));
    let check = opsd(
        dir.path(),
        &["cost", "check", "--today", "2026-06-11", "--json"],
    );
    assert_eq!(check.code, 2, "{}\n{}", check.stdout, check.stderr);
    let report = check.json();
    assert_eq!(report["budgets"][1]["state"], "critical", "{report:#}");
    assert_eq!(
        report["notified"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert_eq!(finance.count(), 1, "{report:#}");
    assert_eq!(
        ops.count(),
        1,
        "ops got the budget's notification: {}",
        ops.last_text()
    );
    assert!(
        finance
            .last_text()
            .contains("budget production: ok -> critical"),
        "{}",
        finance.last_text()
    );

    // The same state again (the emulator answers the same requests from its cache): nothing new.
    let again = opsd(dir.path(), &["cost", "check", "--today", "2026-06-11"]);
    assert_eq!(again.code, 2, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("notified: nothing new"),
        "{}",
        again.stdout
    );
    assert_eq!((ops.count(), finance.count()), (1, 1));
}

#[test]
fn a_budget_naming_an_unknown_target_is_a_config_error() {
    let ops = Webhook::start();
    let finance = Webhook::start();
    let dir = tempfile::tempdir().unwrap();
    // Refused while loading the configuration, before any cost source is called.
    write_tag_config(
        dir.path(),
        "http://127.0.0.1:9",
        &ops,
        &finance,
        "      notify: [accounting]\n",
    );
    let output = opsd(dir.path(), &["cost", "check"]);
    assert_eq!(output.code, 1, "{}", output.stdout);
    assert!(
        output.stderr.contains("costs.budgets.production.notify"),
        "{}",
        output.stderr
    );
    assert!(
        output.stderr.contains("configured: ops, finance"),
        "{}",
        output.stderr
    );
}
