//! Steno benchmarks: the API under concurrent load over real HTTP (latency percentiles and
//! throughput) and drafting a demand letter for a matter with 20 source documents.
//!
//! Run: `cargo bench -p steno --bench steno_bench` (options after `--`: `--seconds N`,
//! `--concurrency N`, `--draft-runs N`, `--postgres URL` to load PostgreSQL instead of SQLite).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::{json, Value};
use steno::config::Settings;
use steno::drafting::engine_from_settings;
use steno::model::{MatterFacts, SourceDocument};
use steno::state::AppState;
use tokio::sync::Mutex;

struct Options {
    seconds: u64,
    concurrency: usize,
    draft_runs: usize,
    postgres_url: Option<String>,
}

fn parse_options() -> Options {
    let mut options = Options {
        seconds: 10,
        concurrency: 32,
        draft_runs: 50,
        postgres_url: None,
    };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let mut index = 0;
    while index < arguments.len() {
        let value = arguments.get(index + 1).cloned().unwrap_or_default();
        match arguments[index].as_str() {
            "--seconds" => options.seconds = value.parse().unwrap_or(options.seconds),
            "--concurrency" => options.concurrency = value.parse().unwrap_or(options.concurrency),
            "--draft-runs" => options.draft_runs = value.parse().unwrap_or(options.draft_runs),
            "--postgres" => options.postgres_url = Some(value),
            _ => {
                // `cargo bench` adds its own flags (such as --bench); they are not ours.
                index += 1;
                continue;
            }
        }
        index += 2;
    }
    options
}

/// A realistic medical bill of about 40 lines; `index` varies provider, dates and amounts.
fn bill_text(index: usize) -> String {
    let mut text = format!(
        "Provider {index} Medical Group\nStatement for Jordan Rivera, account {}\n",
        10_000 + index
    );
    for line in 0..30 {
        let day = 1 + (index + line) % 28;
        let amount = 75 + (index * 37 + line * 53) % 900;
        text.push_str(&format!(
            "04/{day:02}/2025  Office visit and treatment, CPT 9921{}      ${amount}.{:02}\n",
            line % 5,
            (index + line) % 100
        ));
    }
    text.push_str("Diagnosis: cervical strain; assessment: improving with therapy.\n");
    text.push_str("Total charges  $9,999.99\nAmount due  $9,999.99\n");
    text
}

fn twenty_documents() -> Vec<SourceDocument> {
    (0..20)
        .map(|index| SourceDocument {
            id: format!("document-{index}"),
            filename: format!("bill-{index}.txt"),
            text: bill_text(index),
        })
        .collect()
}

fn matter_facts() -> MatterFacts {
    MatterFacts {
        claimant_name: "Jordan Rivera".into(),
        defendant_name: "Casey Morgan".into(),
        insurer_name: Some("Granite Mutual Insurance".into()),
        claim_number: Some("GM-2025-00417".into()),
        incident_date: NaiveDate::from_ymd_opt(2025, 3, 14).unwrap_or_default(),
        incident_place: "Main Street and 3rd Avenue, Springfield".into(),
        incident_description: "The defendant ran a red light and struck our client's car.".into(),
        injuries: "Cervical strain and a fractured wrist.".into(),
        treatment: "Emergency care, imaging, casting and physical therapy.".into(),
        manual_specials: Vec::new(),
        demand_amount_cents: None,
        response_days: None,
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(duration: Duration) -> String {
    format!("{:.2}", duration.as_secs_f64() * 1000.0)
}

async fn bench_drafting(runs: usize) {
    let engine = engine_from_settings(None, None, None);
    let facts = matter_facts();
    let documents = twenty_documents();
    let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default();
    let mut timings = Vec::with_capacity(runs);
    let mut items = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let outcome = engine
            .draft(&facts, &documents, today)
            .await
            .expect("offline drafting works");
        timings.push(started.elapsed());
        items = outcome.draft.specials.len();
    }
    timings.sort();
    println!("## Drafting a 20-document matter (offline engine, {runs} runs)\n");
    println!("| specials found | mean ms | p95 ms | max ms | target |");
    println!("|---|---|---|---|---|");
    let mean = timings.iter().sum::<Duration>() / runs.max(1) as u32;
    println!(
        "| {items} | {} | {} | {} | < 1000 ms |\n",
        millis(mean),
        millis(percentile(&timings, 0.95)),
        millis(*timings.last().unwrap_or(&Duration::ZERO))
    );
}

struct Fixture {
    base: String,
    token: String,
    letter_id: String,
    matter_id: String,
}

async fn prepare(client: &reqwest::Client, base: &str) -> Fixture {
    let session: Value = client
        .post(format!("{base}/v1/firms"))
        .json(&json!({"firm_name": "Bench LLP", "admin_name": "Bench", "admin_email": "bench@bench.test", "admin_password": "benchmark password"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("register json");
    let token = session["access_token"].as_str().expect("token").to_string();
    let mut document_ids = Vec::new();
    for index in 0..20 {
        let form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bill_text(index).into_bytes())
                .file_name(format!("bill-{index}.txt"))
                .mime_str("text/plain")
                .expect("mime"),
        );
        let document: Value = client
            .post(format!("{base}/v1/documents"))
            .bearer_auth(&token)
            .multipart(form)
            .send()
            .await
            .expect("upload")
            .json()
            .await
            .expect("upload json");
        document_ids.push(document["document"]["id"].clone());
    }
    let facts = matter_facts();
    let mut matter_body = serde_json::to_value(&facts).expect("facts json");
    matter_body["document_ids"] = Value::Array(document_ids);
    if let Value::Object(map) = &mut matter_body {
        map.remove("manual_specials");
    }
    let matter: Value = client
        .post(format!("{base}/v1/matters"))
        .bearer_auth(&token)
        .json(&matter_body)
        .send()
        .await
        .expect("matter")
        .json()
        .await
        .expect("matter json");
    let matter_id = matter["matter"]["id"]
        .as_str()
        .expect("matter id")
        .to_string();
    let letter: Value = client
        .post(format!("{base}/v1/matters/{matter_id}/letters"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("letter")
        .json()
        .await
        .expect("letter json");
    Fixture {
        base: base.to_string(),
        token,
        letter_id: letter["letter"]["id"]
            .as_str()
            .expect("letter id")
            .to_string(),
        matter_id,
    }
}

/// One measured request: its name in the traffic mix, its latency, and whether it succeeded.
type Sample = (&'static str, Duration, bool);

/// One request of the traffic mix; returns its name and whether it succeeded.
async fn one_request(
    client: &reqwest::Client,
    fixture: &Fixture,
    draw: u64,
) -> (&'static str, bool) {
    let base = &fixture.base;
    let token = &fixture.token;
    let (name, request) = match draw % 100 {
        0..=29 => ("list documents", client.get(format!("{base}/v1/documents"))),
        30..=54 => (
            "get letter",
            client.get(format!("{base}/v1/letters/{}", fixture.letter_id)),
        ),
        55..=69 => (
            "get matter",
            client.get(format!("{base}/v1/matters/{}", fixture.matter_id)),
        ),
        70..=79 => ("health", client.get(format!("{base}/v1/health"))),
        80..=89 => (
            "export pdf",
            client.get(format!(
                "{base}/v1/letters/{}/export?format=pdf",
                fixture.letter_id
            )),
        ),
        90..=94 => {
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(bill_text(draw as usize % 50).into_bytes())
                    .file_name("upload.txt")
                    .mime_str("text/plain")
                    .expect("mime"),
            );
            (
                "upload",
                client.post(format!("{base}/v1/documents")).multipart(form),
            )
        }
        _ => (
            "draft letter",
            client.post(format!("{base}/v1/matters/{}/letters", fixture.matter_id)),
        ),
    };
    let ok = match request.bearer_auth(token).send().await {
        Ok(response) => {
            let success = response.status().is_success();
            let _ = response.bytes().await;
            success
        }
        Err(_) => false,
    };
    (name, ok)
}

async fn bench_api(options: &Options) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::for_data_dir(data_dir.path());
    // The bench serves the router in its own process; uploads are read by the built binary.
    settings.extractor.program =
        steno::config::ExtractorProgram::Path(env!("CARGO_BIN_EXE_steno").into());
    let backend = match &options.postgres_url {
        Some(url) => {
            settings.database_url = url.clone();
            "PostgreSQL"
        }
        None => "SQLite",
    };
    let state = AppState::start(settings).await.expect("steno starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(steno::http::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let base = format!("http://{address}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .build()
        .expect("client");
    let fixture = Arc::new(prepare(&client, &base).await);

    let timings: Arc<Mutex<Vec<Sample>>> = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..options.concurrency {
        let client = client.clone();
        let fixture = fixture.clone();
        let timings = timings.clone();
        workers.push(tokio::spawn(async move {
            let mut draw = worker as u64 * 7919;
            let mut local = Vec::new();
            while Instant::now() < deadline {
                draw = draw
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let request_started = Instant::now();
                let (name, ok) = one_request(&client, &fixture, (draw >> 33) % 100).await;
                local.push((name, request_started.elapsed(), ok));
            }
            timings.lock().await.extend(local);
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(());
    let _ = server.await;

    let all = timings.lock().await.clone();
    let errors = all.iter().filter(|(_, _, ok)| !ok).count();
    println!(
        "## API under load ({backend}, {} concurrent clients, {:.1} s, loopback HTTP)\n",
        options.concurrency,
        elapsed.as_secs_f64()
    );
    println!("| request | count | p50 ms | p95 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let mut names: Vec<&'static str> = all.iter().map(|(name, _, _)| *name).collect();
    names.sort();
    names.dedup();
    for name in names.iter().copied().chain(std::iter::once("all")) {
        let mut durations: Vec<Duration> = all
            .iter()
            .filter(|(request, _, _)| name == "all" || *request == name)
            .map(|(_, duration, _)| *duration)
            .collect();
        durations.sort();
        println!(
            "| {name} | {} | {} | {} | {} |",
            durations.len(),
            millis(percentile(&durations, 0.50)),
            millis(percentile(&durations, 0.95)),
            millis(percentile(&durations, 0.99))
        );
    }
    println!(
        "\nthroughput {:.0} req/s, errors {errors} of {}; target: p95 < 500 ms\n",
        all.len() as f64 / elapsed.as_secs_f64(),
        all.len()
    );
}

fn main() {
    let options = parse_options();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        bench_drafting(options.draft_runs).await;
        bench_api(&options).await;
    });
}
