//! Running one runbook step: an opsd command (this very opsd binary, talking to the same API
//! with the same token), an HTTP check, or a shell script. Output is printed as it comes,
//! indented, and its end kept for the record; a step is bounded by its timeout, and Ctrl-C stops
//! it (its whole process group) and the run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::core::duration::format_duration;
use crate::core::runbook::run::output_tail;
use crate::core::runbook::words::{shell_quoted, substitute, verbatim};
use crate::core::runbook::{Step, StepAction};

/// The most of a step's output held in memory while it runs (its end).
const HELD_OUTPUT_BYTES: usize = 64 * 1024;
/// The most of an HTTP answer's body read.
const HTTP_BODY_LIMIT: usize = 1024 * 1024;
/// How long output still arriving after a process ended is waited for.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

/// What every step of a run shares.
pub struct StepEnvironment {
    /// The opsd binary `opsd` steps run.
    pub opsd: PathBuf,
    /// Environment given to opsd and shell steps (the API, the token, the configuration).
    pub env: Vec<(String, String)>,
    /// Parameter values, built-in ones included.
    pub values: BTreeMap<String, String>,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub passed: bool,
    pub interrupted: bool,
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub message: Option<String>,
    /// The end of its output.
    pub output: String,
    pub duration: Duration,
}

/// The step as it will run, parameters substituted: what a dry run prints and a record keeps.
pub fn command_line(step: &Step, values: &BTreeMap<String, String>) -> Result<String, String> {
    match &step.action {
        StepAction::Opsd { args } => {
            let args = substituted_args(args, values)?;
            Ok(format!(
                "opsd {}",
                args.iter()
                    .map(|arg| display_word(arg))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
        }
        StepAction::Http { method, url, .. } => Ok(format!(
            "{} {}",
            method.as_str(),
            substitute(url, values, verbatim)?
        )),
        StepAction::Shell { script } => substitute(script.trim(), values, shell_quoted),
    }
}

fn substituted_args(
    args: &[String],
    values: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    args.iter()
        .map(|arg| substitute(arg, values, verbatim))
        .collect()
}

/// A word as a reader would type it: quoted when it holds spaces or quotes.
fn display_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        word.to_string()
    } else {
        shell_quoted(word)
    }
}

/// Runs `step`, printing its output indented as it comes.
pub async fn run_step(step: &Step, environment: &StepEnvironment) -> StepResult {
    let started = Instant::now();
    let mut result = match &step.action {
        StepAction::Opsd { args } => match substituted_args(args, &environment.values) {
            Ok(args) => {
                let mut command = Command::new(&environment.opsd);
                command.args(args);
                run_process(command, step, environment).await
            }
            Err(message) => failed(message),
        },
        StepAction::Shell { script } => {
            match substitute(script, &environment.values, shell_quoted) {
                Ok(script) => {
                    let mut command = Command::new("sh");
                    command.args(["-e", "-c", &script]);
                    command.env("OPSD", &environment.opsd);
                    if let Some(dir) = environment.opsd.parent() {
                        let path = std::env::var("PATH").unwrap_or_default();
                        command.env("PATH", format!("{}:{path}", dir.display()));
                    }
                    run_process(command, step, environment).await
                }
                Err(message) => failed(message),
            }
        }
        StepAction::Http { .. } => run_http(step, &environment.values).await,
    };
    result.duration = started.elapsed();
    result
}

fn failed(message: String) -> StepResult {
    StepResult {
        passed: false,
        interrupted: false,
        exit_code: None,
        message: Some(message),
        output: String::new(),
        duration: Duration::ZERO,
    }
}

/// A line of output as it is printed under the step.
fn echo(line: &str) {
    println!("    │ {line}");
}

async fn run_process(
    mut command: Command,
    step: &Step,
    environment: &StepEnvironment,
) -> StepResult {
    command
        .envs(environment.env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    command.process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => return failed(format!("could not start it: {error}")),
    };
    let pid = child.id();
    let (lines, mut received) = mpsc::channel::<String>(256);
    tokio::spawn(forward_lines(child.stdout.take(), lines.clone()));
    tokio::spawn(forward_lines(child.stderr.take(), lines));
    let mut output = String::new();
    let deadline = tokio::time::sleep(step.timeout);
    tokio::pin!(deadline);
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let ended = loop {
        tokio::select! {
            Some(line) = received.recv() => keep_line(&mut output, &line),
            status = child.wait() => break Ok(status),
            _ = &mut deadline => break Err(false),
            _ = &mut interrupt => break Err(true),
        }
    };
    let status = match ended {
        Ok(status) => status,
        Err(interrupted) => {
            stop_group(pid);
            let _ = child.kill().await;
            let message = if interrupted {
                "interrupted (Ctrl-C); its processes were stopped".to_string()
            } else {
                format!(
                    "did not finish within {} and was stopped (timeout=DURATION after the block's language gives it longer)",
                    format_duration(step.timeout)
                )
            };
            return StepResult {
                passed: false,
                interrupted,
                exit_code: None,
                message: Some(message),
                output: output_tail(&output),
                duration: Duration::ZERO,
            };
        }
    };
    let drain = tokio::time::sleep(OUTPUT_DRAIN);
    tokio::pin!(drain);
    loop {
        tokio::select! {
            line = received.recv() => match line {
                Some(line) => keep_line(&mut output, &line),
                None => break,
            },
            _ = &mut drain => break,
        }
    }
    stop_group(pid);
    let (passed, exit_code, message) = match status {
        Ok(status) => match status.code() {
            Some(code) if code == 0 || step.allowed_exits.contains(&code) => {
                (true, Some(code), None)
            }
            Some(code) => (false, Some(code), Some(format!("exited with {code}"))),
            None => (false, None, Some("was killed by a signal".to_string())),
        },
        Err(error) => (false, None, Some(format!("waiting for it failed: {error}"))),
    };
    StepResult {
        passed,
        interrupted: false,
        exit_code,
        message,
        output: output_tail(&output),
        duration: Duration::ZERO,
    }
}

/// Prints a line and keeps it, holding at most [`HELD_OUTPUT_BYTES`] of the end.
fn keep_line(output: &mut String, line: &str) {
    echo(line);
    output.push_str(line);
    output.push('\n');
    if output.len() > HELD_OUTPUT_BYTES * 2 {
        let mut cut = output.len() - HELD_OUTPUT_BYTES;
        while !output.is_char_boundary(cut) {
            cut += 1;
        }
        output.drain(..cut);
    }
}

async fn forward_lines(stream: Option<impl AsyncRead + Unpin>, lines: mpsc::Sender<String>) {
    let Some(stream) = stream else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                let line: String = line
                    .trim_end_matches(['\n', '\r'])
                    .chars()
                    .take(4000)
                    .collect();
                if lines.send(line).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Stops what a step left running in its process group.
fn stop_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid {
        crate::platform::local::release_process::signal_process_group(pid, libc::SIGKILL);
    }
}

async fn run_http(step: &Step, values: &BTreeMap<String, String>) -> StepResult {
    let StepAction::Http {
        method,
        url,
        status: expected,
        contains,
    } = &step.action
    else {
        return failed("not an http step".into());
    };
    let (url, contains) = match (
        substitute(url, values, verbatim),
        contains
            .as_deref()
            .map(|text| substitute(text, values, verbatim))
            .transpose(),
    ) {
        (Ok(url), Ok(contains)) => (url, contains),
        (Err(message), _) | (_, Err(message)) => return failed(message),
    };
    let client = match reqwest::Client::builder().timeout(step.timeout).build() {
        Ok(client) => client,
        Err(error) => return failed(format!("could not make an HTTP client: {error}")),
    };
    let request = match method {
        crate::core::runbook::HttpMethod::Get => client.get(&url),
        crate::core::runbook::HttpMethod::Head => client.head(&url),
    };
    let interrupt = tokio::signal::ctrl_c();
    let answer = tokio::select! {
        answer = fetch(request) => answer,
        _ = interrupt => return StepResult {
            interrupted: true,
            ..failed("interrupted (Ctrl-C)".into())
        },
    };
    let (status, body) = match answer {
        Ok(answer) => answer,
        Err(error) => return failed(format!("{} {url}: {error}", method.as_str())),
    };
    let mut output = String::new();
    keep_line(&mut output, &format!("HTTP {status}, {} bytes", body.len()));
    for line in body.lines().take(20) {
        keep_line(&mut output, line);
    }
    let status_ok = match expected {
        Some(code) => status == *code,
        None => (200..300).contains(&status),
    };
    let message = if !status_ok {
        Some(format!(
            "answered HTTP {status}; expected {}",
            expected
                .map(|code| code.to_string())
                .unwrap_or_else(|| "2xx".into())
        ))
    } else {
        match &contains {
            Some(text) if !body.contains(text.as_str()) => {
                Some(format!("the answer does not contain {text:?}"))
            }
            _ => None,
        }
    };
    StepResult {
        passed: message.is_none(),
        interrupted: false,
        exit_code: None,
        message,
        output: output_tail(&output),
        duration: Duration::ZERO,
    }
}

/// The status and (at most [`HTTP_BODY_LIMIT`] bytes of) the body.
async fn fetch(request: reqwest::RequestBuilder) -> Result<(u16, String), String> {
    let mut response = request
        .send()
        .await
        .map_err(|error| crate::error_chain::error_chain(&error))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| format!("the answer was cut off: {error}"))?
    {
        let room = HTTP_BODY_LIMIT.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::runbook::parse;

    fn environment(values: &[(&str, &str)]) -> StepEnvironment {
        StepEnvironment {
            opsd: PathBuf::from("/bin/false"),
            env: Vec::new(),
            values: values
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        }
    }

    const SHELL: &str = "---\nparams:\n  word:\n    help: w\n---\n# T\n\n## Echo\n\n```sh\necho {word}\necho second >&2\n```\n\n## Fail\n\n```sh allow-exit=3\nexit 4\n```\n\n## Allowed\n\n```sh allow-exit=3\nexit 3\n```\n\n## Slow\n\n```sh timeout=200ms\nsleep 5\n```\n";

    #[tokio::test]
    async fn shell_steps_keep_their_output_and_follow_exit_codes_and_timeouts() {
        let runbook = parse("t", SHELL).unwrap();
        let environment = environment(&[("word", "it's $HOME")]);
        let echo = run_step(&runbook.steps[0], &environment).await;
        assert!(echo.passed, "{echo:?}");
        assert!(echo.output.contains("it's $HOME\n"), "{echo:?}");
        assert!(echo.output.contains("second"));
        assert_eq!(
            command_line(&runbook.steps[0], &environment.values).unwrap(),
            "echo 'it'\\''s $HOME'\necho second >&2"
        );

        let fail = run_step(&runbook.steps[1], &environment).await;
        assert!(!fail.passed);
        assert_eq!(fail.exit_code, Some(4));
        assert_eq!(fail.message.as_deref(), Some("exited with 4"));
        assert!(run_step(&runbook.steps[2], &environment).await.passed);

        let slow = run_step(&runbook.steps[3], &environment).await;
        assert!(!slow.passed && !slow.interrupted);
        assert!(slow
            .message
            .unwrap()
            .contains("did not finish within 200ms"));
    }

    #[tokio::test]
    async fn an_http_step_checks_status_and_body() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let app =
                axum::Router::new().route("/health", axum::routing::get(|| async { "status: ok" }));
            axum::serve(listener, app).await.unwrap();
        });
        let text = "---\nparams:\n  base:\n    help: b\n---\n# T\n\n## Up\n\n```http\nGET {base}/health\ncontains ok\n```\n\n## Wrong text\n\n```http\nGET {base}/health\ncontains healthy\n```\n\n## Missing\n\n```http\nGET {base}/nothing\n```\n";
        let runbook = parse("t", text).unwrap();
        let environment = environment(&[("base", &format!("http://{address}"))]);
        let up = run_step(&runbook.steps[0], &environment).await;
        assert!(up.passed, "{up:?}");
        assert!(up.output.starts_with("HTTP 200"));
        let wrong = run_step(&runbook.steps[1], &environment).await;
        assert_eq!(
            wrong.message.as_deref(),
            Some("the answer does not contain \"healthy\"")
        );
        let missing = run_step(&runbook.steps[2], &environment).await;
        assert_eq!(
            missing.message.as_deref(),
            Some("answered HTTP 404; expected 2xx")
        );
    }

    #[test]
    fn an_opsd_command_line_is_shown_as_typed() {
        let text = "---\nparams:\n  reason:\n    help: r\n---\n# T\n\n## R\n\n```opsd\nopsd rollback steno --reason {reason}\n```\n";
        let runbook = parse("t", text).unwrap();
        let values = BTreeMap::from([("reason".to_string(), "p99 too high".to_string())]);
        assert_eq!(
            command_line(&runbook.steps[0], &values).unwrap(),
            "opsd rollback steno --reason 'p99 too high'"
        );
    }
}
