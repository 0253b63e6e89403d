//! End to end over real sockets: the `steno` binary started as a process, used through its API,
//! fault injection switched on by environment, and a graceful stop on SIGTERM.

use std::process::Command;
use std::time::Duration;

use e2e_tests::{binary, RunningProcess};
use serde_json::{json, Value};

fn steno(data_dir: &std::path::Path, extra_env: &[(&str, &str)]) -> RunningProcess {
    let mut command = Command::new(binary("steno"));
    command
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("STENO_DATA_DIR", data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("ANTHROPIC_API_KEY");
    for (key, value) in extra_env {
        command.env(key, value);
    }
    RunningProcess::start(command, Duration::from_secs(60))
}

#[tokio::test]
async fn a_served_steno_drafts_letters_and_stops_gracefully() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut process = steno(data_dir.path(), &[("STENO_VERSION", "v-e2e")]);
    let base = process.base_url.clone();
    let client = reqwest::Client::new();

    let health: Value = client
        .get(format!("{base}/v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["version"], "v-e2e");

    let session: Value = client
        .post(format!("{base}/v1/firms"))
        .json(&json!({"firm_name": "Rivera & Hale LLP", "admin_name": "Avery", "admin_email": "avery@rh.test", "admin_password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = session["access_token"].as_str().unwrap().to_string();

    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(
            b"03/14/2025  Emergency department visit   $1,850.00\n".to_vec(),
        )
        .file_name("bill.txt")
        .mime_str("text/plain")
        .unwrap(),
    );
    let upload = client
        .post(format!("{base}/v1/documents"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let document: Value = upload.json().await.unwrap();
    let matter: Value = client
        .post(format!("{base}/v1/matters"))
        .bearer_auth(&token)
        .json(&json!({
            "claimant_name": "Jordan Rivera", "defendant_name": "Casey Morgan", "incident_date": "2025-03-14",
            "incident_place": "Main Street", "incident_description": "Red light.", "injuries": "Strain.",
            "treatment": "Therapy.", "document_ids": [document["document"]["id"]],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let letter = client
        .post(format!(
            "{base}/v1/matters/{}/letters",
            matter["matter"]["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(letter.status(), 201);
    let letter: Value = letter.json().await.unwrap();
    let pdf = client
        .get(format!(
            "{base}/v1/letters/{}/export?format=pdf",
            letter["letter"]["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));

    let status = process.terminate(Duration::from_secs(20));
    assert!(
        status.success(),
        "steno exits cleanly on SIGTERM: {status:?}"
    );
}

#[tokio::test]
async fn chaos_variables_make_a_bad_release() {
    let data_dir = tempfile::tempdir().unwrap();
    let process = steno(
        data_dir.path(),
        &[
            ("STENO_VERSION", "v2"),
            ("STENO_CHAOS_ERROR_RATE", "1.0"),
            ("STENO_CHAOS_FAIL_HEALTH", "true"),
        ],
    );
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/login", process.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 500);
    let health = client
        .get(format!("{}/v1/health", process.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
}

#[test]
fn invalid_settings_stop_steno_with_a_clear_message() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary("steno"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("STENO_DATA_DIR", data_dir.path())
        .env("STENO_CHAOS_ERROR_RATE", "lots")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("STENO_CHAOS_ERROR_RATE"), "{stderr}");
}

#[test]
fn steno_reports_its_migrations_with_their_class_without_a_database() {
    let output = Command::new(binary("steno"))
        .args(["migrations", "--json"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let migrations = report["migrations"].as_array().expect("a list");
    assert!(migrations.len() >= 2);
    for (index, migration) in migrations.iter().enumerate() {
        assert_eq!(migration["version"], json!(index + 1));
        assert!(["expand", "contract"].contains(&migration["class"].as_str().unwrap()));
        assert!(migration["name"]
            .as_str()
            .is_some_and(|name| !name.is_empty()));
    }
}
