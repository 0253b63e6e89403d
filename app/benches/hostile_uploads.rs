//! Hostile uploads against a running `steno` process: for each input of the hostile corpus, a
//! fresh server started under an address-space cap (`prlimit --as`) receives the attack while
//! another firm's client keeps listing its documents. Reports the answer, the time, the server's
//! peak resident set (`VmHWM` from `/proc/<pid>/status`, reset before each attack), the largest
//! extractor child (the kernel's `RUSAGE_CHILDREN`, from the server's `/metrics`), whether the
//! server survived, and the other client's latency. Accepted logos are followed by three
//! concurrent PDF exports, accepted DOCX text bombs by a draft, as an attacker would.
//!
//! Run (see docs/hostile-uploads.md): `cargo bench -p steno --bench hostile_uploads -- [--steno
//! PATH] [--label NAME] [--cap-gib 4] [--size full|test] [--only NAME] [--timeout-secs 180]
//! [--markdown FILE]`. Without `--steno` it attacks the `steno` binary built with the bench
//! (release).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_tests::hostile::{corpus, HostileInput, Size, Target};
use e2e_tests::RunningProcess;
use serde_json::{json, Value};

struct Options {
    steno: PathBuf,
    label: String,
    cap_bytes: u64,
    size: Size,
    only: Option<String>,
    /// How long the attacker waits for an answer before giving up.
    timeout: Duration,
    markdown: Option<PathBuf>,
}

fn parse_options() -> Options {
    let mut options = Options {
        steno: PathBuf::from(env!("CARGO_BIN_EXE_steno")),
        label: "after".to_string(),
        cap_bytes: 4 << 30,
        size: Size::Full,
        only: None,
        timeout: Duration::from_secs(180),
        markdown: None,
    };
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let mut index = 0;
    while index < arguments.len() {
        let value = arguments.get(index + 1).cloned().unwrap_or_default();
        match arguments[index].as_str() {
            "--steno" => options.steno = PathBuf::from(value),
            "--label" => options.label = value,
            "--cap-gib" => {
                options.cap_bytes = value.parse::<u64>().expect("--cap-gib takes a number") << 30
            }
            "--size" => {
                options.size = match value.as_str() {
                    "test" => Size::Test,
                    _ => Size::Full,
                }
            }
            "--only" => options.only = Some(value),
            "--timeout-secs" => {
                options.timeout =
                    Duration::from_secs(value.parse().expect("--timeout-secs takes a number"))
            }
            "--markdown" => options.markdown = Some(PathBuf::from(value)),
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

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets the process's peak resident set (`VmHWM`) to its current size.
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn gib(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

fn size_text(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / 1e6)
    } else {
        format!("{:.1} kB", bytes as f64 / 1e3)
    }
}

struct Server {
    process: RunningProcess,
    pid: u32,
    _data_dir: tempfile::TempDir,
}

fn start_server(options: &Options) -> Server {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--as={}", options.cap_bytes))
        .arg("--core=0")
        .arg("--")
        .arg(&options.steno)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("STENO_DATA_DIR", data_dir.path())
        .env("STENO_LOG", "error")
        .env_remove("DATABASE_URL")
        .env_remove("ANTHROPIC_API_KEY");
    let process = RunningProcess::start(command, Duration::from_secs(60));
    let pid = process.child.id();
    Server {
        process,
        pid,
        _data_dir: data_dir,
    }
}

/// Stops a server: SIGTERM, then SIGKILL if it has not exited within 20 s (a server still busy
/// parsing an abandoned upload may never finish its graceful shutdown).
fn stop_server(server: &mut Server) {
    let _ = Command::new("kill")
        .args(["-TERM", &server.pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.process.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("  (the server did not stop within 20 s of SIGTERM; killed)");
    let _ = server.process.child.kill();
    let _ = server.process.child.wait();
}

/// A firm with one ordinary document, a matter and a letter (so an accepted logo can be
/// exported and an accepted document drafted from).
struct Firm {
    token: String,
    letter_id: String,
}

async fn register(client: &reqwest::Client, base: &str, name: &str, email: &str) -> String {
    let session: Value = client
        .post(format!("{base}/v1/firms"))
        .json(&json!({"firm_name": name, "admin_name": "Avery", "admin_email": email, "admin_password": "correct horse battery"}))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("session");
    session["access_token"].as_str().expect("token").to_string()
}

async fn upload(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    filename: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{base}/v1/documents"))
        .bearer_auth(token)
        .multipart(
            reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(filename.to_string())
                    .mime_str(content_type)
                    .expect("mime"),
            ),
        )
        .send()
        .await
}

async fn matter_and_letter(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    document_id: &str,
) -> reqwest::Result<reqwest::Response> {
    let matter: Value = client
        .post(format!("{base}/v1/matters"))
        .bearer_auth(token)
        .json(&json!({
            "claimant_name": "Jordan Rivera", "defendant_name": "Casey Morgan", "incident_date": "2025-03-14",
            "incident_place": "Main Street", "incident_description": "Red light.", "injuries": "Strain.",
            "treatment": "Therapy.", "document_ids": [document_id],
        }))
        .send()
        .await?
        .json()
        .await?;
    client
        .post(format!(
            "{base}/v1/matters/{}/letters",
            matter["matter"]["id"].as_str().unwrap_or("")
        ))
        .bearer_auth(token)
        .send()
        .await
}

async fn prepare(client: &reqwest::Client, base: &str) -> Firm {
    let token = register(client, base, "Rivera & Hale LLP", "avery@rh.test").await;
    let document: Value = upload(
        client,
        base,
        &token,
        "bill.txt",
        "text/plain",
        b"03/14/2025  Emergency visit  $1,850.00\n".to_vec(),
    )
    .await
    .expect("upload")
    .json()
    .await
    .expect("document");
    let letter: Value = matter_and_letter(
        client,
        base,
        &token,
        document["document"]["id"].as_str().expect("id"),
    )
    .await
    .expect("draft")
    .json()
    .await
    .expect("letter");
    Firm {
        token,
        letter_id: letter["letter"]["id"]
            .as_str()
            .expect("letter id")
            .to_string(),
    }
}

/// One step of an attack as measured.
struct Step {
    what: String,
    outcome: String,
    elapsed: Duration,
}

async fn describe(
    response: reqwest::Result<reqwest::Response>,
    timeout: Duration,
) -> (Option<u16>, String, Value) {
    match response {
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let limit = json["error"]["limit"]["name"].as_str().map(str::to_string);
            let text = match limit {
                Some(limit) => format!("{status} `{limit}`"),
                None => format!("{status}"),
            };
            (Some(status), text, json)
        }
        Err(error) if error.is_timeout() => (
            None,
            format!("no answer in {} s", timeout.as_secs()),
            Value::Null,
        ),
        Err(_) => (None, "connection lost".to_string(), Value::Null),
    }
}

/// Sends the input, and follows an accepted logo with three concurrent exports and an
/// accepted document with a draft.
async fn attack(
    client: &reqwest::Client,
    base: &str,
    firm: &Firm,
    input: &HostileInput,
    timeout: Duration,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let started = Instant::now();
    let response = match input.target {
        Target::Document => {
            upload(
                client,
                base,
                &firm.token,
                &input.filename,
                input.content_type,
                input.bytes.clone(),
            )
            .await
        }
        Target::Logo => {
            client
                .put(format!("{base}/v1/firm/logo"))
                .bearer_auth(&firm.token)
                .header("content-type", input.content_type)
                .body(input.bytes.clone())
                .send()
                .await
        }
    };
    let (status, outcome, body) = describe(response, timeout).await;
    steps.push(Step {
        what: match input.target {
            Target::Document => "upload".to_string(),
            Target::Logo => "logo upload".to_string(),
        },
        outcome,
        elapsed: started.elapsed(),
    });
    if status != Some(200) && status != Some(201) {
        return steps;
    }
    let started = Instant::now();
    match input.target {
        Target::Logo => {
            let url = format!("{base}/v1/letters/{}/export?format=pdf", firm.letter_id);
            let exports = (0..3).map(|_| client.get(&url).bearer_auth(&firm.token).send());
            let answers = futures_join_all(exports.collect()).await;
            let mut outcomes = Vec::new();
            for answer in answers {
                outcomes.push(describe(answer, timeout).await.1);
            }
            steps.push(Step {
                what: "3 concurrent PDF exports".to_string(),
                outcome: outcomes.join(", "),
                elapsed: started.elapsed(),
            });
        }
        Target::Document => {
            let document_id = body["document"]["id"].as_str().unwrap_or_default();
            let drafted = matter_and_letter(client, base, &firm.token, document_id).await;
            let (_, outcome, _) = describe(drafted, timeout).await;
            steps.push(Step {
                what: "draft from it".to_string(),
                outcome,
                elapsed: started.elapsed(),
            });
        }
    }
    steps
}

/// Awaits all futures concurrently.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: Vec<F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

#[tokio::main]
async fn main() {
    let options = parse_options();
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .build()
        .expect("client");
    println!(
        "hostile uploads against {} ({}), address space capped at {}",
        options.steno.display(),
        options.label,
        gib(options.cap_bytes)
    );
    let mut rows = vec![
        format!("Attack on `{}` ({}), `prlimit --as={}`:", options.label, options.steno.display(), options.cap_bytes),
        String::new(),
        "| input | file | request | answer | time | server peak RSS | extractor peak RSS | server after | other client: answers, p50 / p95 / max |".to_string(),
        "|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    for input in corpus(options.size) {
        if options
            .only
            .as_ref()
            .is_some_and(|only| !input.name.contains(only.as_str()))
        {
            continue;
        }
        let mut server = start_server(&options);
        let base = server.process.base_url.clone();
        let firm = prepare(&client, &base).await;
        let other = register(&client, &base, "Okafor Law", "ngozi@okafor.test").await;

        // The peak resident set is sampled while the attack runs, so a server that dies still
        // leaves its last peak.
        reset_peak(server.pid);
        let sampled_peak = Arc::new(AtomicU64::new(
            status_field(server.pid, "VmHWM:").unwrap_or(0),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop, pid) = (sampled_peak.clone(), stop.clone(), server.pid);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(now) = status_field(pid, "VmHWM:") {
                        peak.fetch_max(now, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        let bystander = {
            let (client, url, token, stop) = (
                client.clone(),
                format!("{base}/v1/documents"),
                other.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    match client
                        .get(&url)
                        .bearer_auth(&token)
                        .timeout(Duration::from_secs(30))
                        .send()
                        .await
                    {
                        Ok(response) if response.status().is_success() => {
                            latencies.push(started.elapsed())
                        }
                        _ => failures += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (latencies, failures)
            })
        };
        let steps = attack(&client, &base, &firm, &input, options.timeout).await;
        // A server that dropped the connection may still be dying (a stack overflow, an abort
        // on a failed allocation): give it a moment before saying whether it survived.
        if steps.iter().any(|step| step.outcome == "connection lost") {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline
                && server.process.child.try_wait().ok().flatten().is_none()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let alive = server.process.child.try_wait().ok().flatten().is_none();
        let server_peak = status_field(server.pid, "VmHWM:")
            .unwrap_or(0)
            .max(sampled_peak.load(Ordering::Relaxed));
        let extractor_peak = if alive {
            let metrics = match client.get(format!("{base}/metrics")).send().await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            metrics
                .lines()
                .find_map(|line| line.strip_prefix("steno_extractor_peak_rss_bytes "))
                .and_then(|value| value.trim().parse::<u64>().ok())
        } else {
            None
        };
        stop.store(true, Ordering::Relaxed);
        let (mut latencies, failures) = bystander.await.expect("bystander");
        let _ = sampler.join();
        latencies.sort();
        let server_after = if alive {
            "alive".to_string()
        } else {
            let status = server.process.child.wait().expect("exit status");
            use std::os::unix::process::ExitStatusExt;
            let how = match status.signal() {
                Some(6) => "aborted (SIGABRT)".to_string(),
                Some(9) => "killed (SIGKILL)".to_string(),
                Some(11) => "crashed (SIGSEGV)".to_string(),
                Some(signal) => format!("died (signal {signal})"),
                None => format!("exited ({})", status.code().unwrap_or(-1)),
            };
            if server_peak + (256 << 20) >= options.cap_bytes {
                format!("{how} at the {} cap", gib(options.cap_bytes))
            } else {
                how
            }
        };
        let bystander_text = format!(
            "{} ok{}, {:.0} / {:.0} / {:.0} ms",
            latencies.len(),
            if failures > 0 {
                format!(" + {failures} failed")
            } else {
                String::new()
            },
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.95).as_secs_f64() * 1000.0,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        );
        for (index, step) in steps.iter().enumerate() {
            let first = index == 0;
            let row = format!(
                "| {} | {} | {} | {} | {:.2} s | {} | {} | {} | {} |",
                if first { input.name } else { "" },
                if first {
                    size_text(input.bytes.len())
                } else {
                    String::new()
                },
                step.what,
                step.outcome,
                step.elapsed.as_secs_f64(),
                if index + 1 == steps.len() {
                    gib(server_peak)
                } else {
                    String::new()
                },
                if index + 1 == steps.len() {
                    extractor_peak.map(gib).unwrap_or_else(|| "-".to_string())
                } else {
                    String::new()
                },
                if index + 1 == steps.len() {
                    server_after.clone()
                } else {
                    String::new()
                },
                if index + 1 == steps.len() {
                    bystander_text.clone()
                } else {
                    String::new()
                },
            );
            println!("{row}");
            rows.push(row);
        }
        if alive {
            stop_server(&mut server);
        }
    }
    if let Some(path) = &options.markdown {
        std::fs::write(path, rows.join("\n") + "\n").expect("write the markdown table");
        println!("table written to {}", path.display());
    }
}
