//! End to end against a running `steno` process with its default limits: every input of the
//! hostile corpus is answered 422 naming the limit it reached, while another client's requests
//! keep being answered; the process stays alive, and nothing is stored (the document list, the
//! storage directory and the database rows are unchanged).

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_tests::hostile::{corpus, HostileInput, Size, Target};
use e2e_tests::{binary, register_firm, RunningProcess};
use serde_json::Value;
use sqlx::{Connection, Row, SqliteConnection};

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

async fn document_rows(data_dir: &std::path::Path) -> i64 {
    let url = format!("sqlite://{}", data_dir.join("steno.db").display());
    let mut connection = SqliteConnection::connect(&url)
        .await
        .expect("open the database");
    let rows: i64 = sqlx::query("SELECT COUNT(*) AS n FROM documents")
        .fetch_one(&mut connection)
        .await
        .unwrap()
        .get("n");
    connection.close().await.unwrap();
    rows
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    input: &HostileInput,
) -> reqwest::Response {
    let request = match input.target {
        Target::Document => client.post(format!("{base}/v1/documents")).multipart(
            reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(input.bytes.clone())
                    .file_name(input.filename.clone())
                    .mime_str(input.content_type)
                    .unwrap(),
            ),
        ),
        Target::Logo => client
            .put(format!("{base}/v1/firm/logo"))
            .header("content-type", input.content_type)
            .body(input.bytes.clone()),
    };
    request
        .bearer_auth(token)
        .send()
        .await
        .expect("steno answers")
}

/// Another firm's client listing its documents in a loop until `stop`; returns each answer's
/// status and latency.
fn bystander(
    client: reqwest::Client,
    url: String,
    token: String,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(u16, Duration)>> {
    tokio::spawn(async move {
        let mut answers = Vec::new();
        loop {
            let started = Instant::now();
            let status = client
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .map(|response| response.status().as_u16())
                .unwrap_or(0);
            answers.push((status, started.elapsed()));
            if stop.load(Ordering::Relaxed) {
                return answers;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_steno_refuses_every_hostile_upload_and_keeps_serving() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(binary("steno"));
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("STENO_DATA_DIR", data_dir.path())
        .env("STENO_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("ANTHROPIC_API_KEY");
    let mut process = RunningProcess::start(command, Duration::from_secs(60));
    let base = process.base_url.clone();
    let client = reqwest::Client::new();
    let token = register_firm(
        &client,
        &base,
        "Rivera & Hale LLP",
        "avery@rh.test",
        "correct horse battery",
    )
    .await;
    let other_token = register_firm(
        &client,
        &base,
        "Okafor Law",
        "ngozi@okafor.test",
        "correct horse battery",
    )
    .await;

    let ordinary = client
        .post(format!("{base}/v1/documents"))
        .bearer_auth(&token)
        .multipart(
            reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(
                    b"03/14/2025  Emergency visit  $1,850.00\n".to_vec(),
                )
                .file_name("bill.txt")
                .mime_str("text/plain")
                .unwrap(),
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(ordinary.status(), 201);
    let list = || async {
        let listed: Value = client
            .get(format!("{base}/v1/documents"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed["documents"].as_array().unwrap().len()
    };
    let storage = data_dir.path().join("documents");
    assert_eq!(list().await, 1);
    assert_eq!(files_under(&storage).len(), 1);
    assert_eq!(document_rows(data_dir.path()).await, 1);

    for input in corpus(Size::Test) {
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = bystander(
            client.clone(),
            format!("{base}/v1/documents"),
            other_token.clone(),
            stop.clone(),
        );
        let answer = send(&client, &base, &token, &input).await;
        stop.store(true, Ordering::Relaxed);
        let answers = watcher.await.unwrap();
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap();
        assert_eq!(status, 422, "{}: {body}", input.name);
        assert_eq!(
            body["error"]["code"], "limit_exceeded",
            "{}: {body}",
            input.name
        );
        assert_eq!(
            body["error"]["limit"]["name"], input.expected_limit,
            "{}: {body}",
            input.name
        );
        assert!(
            !answers.is_empty() && answers.iter().all(|(status, _)| *status == 200),
            "{}: the other client was answered during the upload: {answers:?}",
            input.name
        );
        assert!(
            process.child.try_wait().unwrap().is_none(),
            "steno is still running after {}",
            input.name
        );
        let slowest = answers.iter().map(|(_, latency)| *latency).max().unwrap();
        println!(
            "{:<40} 422 {:<24} other client: {} answers, slowest {:?}",
            input.name,
            input.expected_limit,
            answers.len(),
            slowest
        );
    }

    assert_eq!(list().await, 1, "the document list is unchanged");
    assert_eq!(files_under(&storage).len(), 1, "nothing new in storage");
    assert_eq!(document_rows(data_dir.path()).await, 1, "no new rows");
    let firm: Value = client
        .get(format!("{base}/v1/firm"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(firm["firm"]["has_logo"], false, "no logo was stored");
    let status = process.terminate(Duration::from_secs(20));
    assert!(status.success(), "steno exits cleanly: {status:?}");
}
