//! End to end: the local cost model. `opsd up` runs Steno behind its router with `costs.source:
//! local`; the test sends a known load through the router and records known token counts on
//! Steno's letter revisions, then checks `opsd cost report` against a hand computation from the
//! price table of R-COST-8 (docs/requirements.md), and `opsd cost check` against the budget.

use std::time::{Duration, Instant};

use e2e_tests::steno_data::{
    create_postgres_database, drop_postgres_databases, fill_postgres, fill_sqlite,
    migrate_with_steno, postgres_admin_url,
};
use e2e_tests::{run_opsd, start_opsd_up};
use serde_json::Value;

/// Requests the test sends through the router.
const REQUESTS: u64 = 240;
/// Tokens put on each of the 10 letter revisions the test data holds.
const INPUT_TOKENS_PER_REVISION: u64 = 250_000;
const OUTPUT_TOKENS_PER_REVISION: u64 = 50_000;

fn service_amount(report: &Value, service: &str) -> f64 {
    report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|spend| spend["service"] == service)
        .unwrap_or_else(|| panic!("no {service} in {report:#}"))["month_to_date_usd"]
        .as_f64()
        .unwrap()
}

#[test]
fn a_known_local_load_costs_what_the_price_table_says() {
    let dir = tempfile::tempdir().unwrap();
    let steno_dir = dir.path().join("steno-data");
    std::fs::create_dir_all(&steno_dir).unwrap();
    let database_path = steno_dir.join("steno.db");
    migrate_with_steno(&format!("sqlite://{}", database_path.display()), &steno_dir);
    let now = chrono::Utc::now();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        fill_sqlite(&database_path, 1, 1, 5, 100).await;
        let mut connection =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", database_path.display()))
                .await
                .unwrap();
        let updated = sqlx::query(
            "UPDATE letter_revisions SET input_tokens = ?, output_tokens = ?, created_at = ?",
        )
        .bind(INPUT_TOKENS_PER_REVISION as i64)
        .bind(OUTPUT_TOKENS_PER_REVISION as i64)
        .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .execute(&mut connection)
        .await
        .unwrap();
        assert_eq!(updated.rows_affected(), 10);
        connection.close().await.unwrap();
    });
    // AI: 2.5M input tokens at $3/M and 0.5M output tokens at $15/M = $15. A $18 budget warned at
    // 80 % is crossed by that alone (83 %); the router's traffic adds a fraction of a cent.
    std::fs::write(
        dir.path().join("opsd.yaml"),
        format!(
            "listen: 127.0.0.1:0\n\
             data_dir: data\n\
             services:\n  steno:\n    public_addr: 127.0.0.1:0\n    database: steno\n    ready_timeout: 20s\n\
             databases:\n  steno:\n    kind: sqlite\n    path: {}\n    schedule: \"@yearly\"\n\
             costs:\n  source: local\n  local:\n    memory_mb: 512\n    ai: {{database: steno, per_million_input_tokens_usd: 3, per_million_output_tokens_usd: 15}}\n  \
             budgets:\n    - name: monthly\n      amount_usd: 18\n      thresholds: [{{basis: actual, percent: 80, severity: warning}}]\n",
            database_path.display()
        ),
    )
    .unwrap();

    let (mut process, public_url) = start_opsd_up(dir.path(), "steno");

    // The known load: unauthenticated reads, each answered 401 with a JSON body whose bytes the
    // client counts as it receives them.
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let mut bytes_received: u64 = 0;
    for _ in 0..REQUESTS {
        let response = client
            .get(format!("{public_url}/v1/matters"))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        bytes_received += response.bytes().unwrap().len() as u64;
    }
    assert!(bytes_received > 0);

    // The recorder stores a window every 10 s; wait until the whole load is in the store.
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = loop {
        let output = run_opsd(dir.path(), &["cost", "report", "--json"]);
        assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
        let report = output.json();
        if report["usage"]["requests"].as_u64() == Some(REQUESTS)
            && report["usage"]["bytes_out"].as_u64() == Some(bytes_received)
        {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "the usage never reached {REQUESTS} requests and {bytes_received} bytes: {:#}",
            report["usage"]
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let usage = &report["usage"];
    assert_eq!(report["source"], "the local cost model");
    assert_eq!(usage["memory_mb"], 512);
    assert_eq!(usage["ai_input_tokens"], 2_500_000);
    assert_eq!(usage["ai_output_tokens"], 500_000);
    // Durations are measured, not known in advance; each request is billed at least 1 ms.
    let duration_ms = usage["duration_ms"].as_u64().unwrap();
    assert!(duration_ms >= REQUESTS, "{duration_ms} ms");

    // By hand, from the prices of R-COST-8 (AI: the configured token prices, R-COST-10):
    //   Lambda      $0.20 per 1M requests + $0.0000166667 per GB-second (512 MB = 0.5 GB)
    //   API Gateway $3.50 per 1M requests
    //   CloudFront  $0.085 per GB out (2^30 bytes) + $0.01 per 10,000 requests
    //   AI          $3 per 1M input tokens + $15 per 1M output tokens
    let requests = REQUESTS as f64;
    let gb_seconds = duration_ms as f64 / 1000.0 * 0.5;
    let lambda = requests / 1e6 * 0.20 + gb_seconds * 0.000_016_666_7;
    let api_gateway = requests / 1e6 * 3.50;
    let cloudfront = bytes_received as f64 / 1_073_741_824.0 * 0.085 + requests / 1e4 * 0.01;
    let ai = 2.5 * 3.0 + 0.5 * 15.0;
    for (service, expected) in [
        ("AWS Lambda", lambda),
        ("Amazon API Gateway", api_gateway),
        ("Amazon CloudFront", cloudfront),
        ("AI", ai),
    ] {
        let amount = service_amount(&report, service);
        assert!(
            (amount - expected).abs() < 1e-9,
            "{service}: the model says {amount}, the hand computation {expected}"
        );
    }
    let total = report["month_to_date_usd"].as_f64().unwrap();
    assert!(
        (total - (lambda + api_gateway + cloudfront + ai)).abs() < 1e-9,
        "{total}"
    );

    let text = run_opsd(dir.path(), &["cost", "report"]);
    assert!(
        text.stdout.contains(&format!("{REQUESTS} requests")),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("2500000 input and 500000 output tokens"),
        "{}",
        text.stdout
    );

    let check = run_opsd(dir.path(), &["cost", "check", "--json"]);
    assert_eq!(check.code, 3, "{}\n{}", check.stdout, check.stderr);
    let checked = check.json();
    assert_eq!(checked["budgets"][0]["state"], "warning");

    process.terminate(Duration::from_secs(20));
}

#[test]
fn ai_spend_is_read_from_a_steno_postgres_database() {
    let admin_url = postgres_admin_url();
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database_name = format!("steno_costs_e2e_{}", std::process::id());
    let url = runtime.block_on(create_postgres_database(&admin_url, &database_name));
    migrate_with_steno(&url, dir.path());
    let today = chrono::Utc::now();
    runtime.block_on(async {
        use sqlx::Connection;
        fill_postgres(&url, 1, 1, 3, 100).await;
        let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
        // Six revisions: four today with known tokens, two last year (outside the month).
        sqlx::query(
            "UPDATE letter_revisions SET input_tokens = 100000, output_tokens = 20000, created_at = $1",
        )
        .bind(today.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .execute(&mut connection)
        .await
        .unwrap();
        let last_year = sqlx::query(
            "UPDATE letter_revisions SET created_at = '2025-01-15T10:00:00Z' WHERE letter_id = 'letter-3'",
        )
        .execute(&mut connection)
        .await
        .unwrap();
        assert_eq!(last_year.rows_affected(), 2);
        connection.close().await.unwrap();
    });
    std::fs::write(
        dir.path().join("opsd.yaml"),
        format!(
            "data_dir: data\n\
             services:\n  steno: {{database: steno}}\n\
             databases:\n  steno: {{kind: postgres, url: \"{url}\"}}\n\
             costs:\n  source: local\n  local:\n    ai: {{database: steno, per_million_input_tokens_usd: 3, per_million_output_tokens_usd: 15, service: Anthropic}}\n  \
             budgets: [{{name: monthly, amount_usd: 1000}}]\n"
        ),
    )
    .unwrap();
    let output = run_opsd(dir.path(), &["cost", "report", "--json"]);
    assert_eq!(output.code, 0, "{}\n{}", output.stdout, output.stderr);
    let report = output.json();
    // 4 × 100,000 input tokens at $3/M + 4 × 20,000 output tokens at $15/M = $1.20 + $1.20.
    assert_eq!(report["usage"]["ai_input_tokens"], 400_000);
    assert_eq!(report["usage"]["ai_output_tokens"], 80_000);
    let ai = service_amount(&report, "Anthropic");
    assert!((ai - 2.40).abs() < 1e-9, "{ai}");
    // No traffic recorded: no AWS service has spend.
    assert_eq!(report["usage"]["requests"], 0);

    runtime.block_on(drop_postgres_databases(&admin_url, &[database_name]));
}
