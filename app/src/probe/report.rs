//! The probe's pure parts: its steps and their order, the record of each step's outcome and
//! latency, the report (text lines, JSON, exit code), and the judgement of each answer (expected
//! status, error bodies, identifiers, the exported PDF).

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

/// One step of the journey a firm takes, in the order the probe walks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A throwaway firm and its admin (`POST /v1/firms`).
    Register,
    /// An existing probe account (`POST /v1/auth/login`), when credentials are given.
    Login,
    /// A small text document (`POST /v1/documents`).
    Upload,
    /// A matter citing the document (`POST /v1/matters`).
    CreateMatter,
    /// A demand letter drafted from the matter (`POST /v1/matters/{id}/letters`).
    Draft,
    /// The letter exported as PDF (`GET /v1/letters/{id}/export?format=pdf`).
    ExportPdf,
    /// The probe's session revoked (`POST /v1/auth/logout`); run even after a failed step.
    Logout,
}

impl Step {
    /// The name printed and reported for the step.
    pub fn name(self) -> &'static str {
        match self {
            Step::Register => "register",
            Step::Login => "login",
            Step::Upload => "upload",
            Step::CreateMatter => "create-matter",
            Step::Draft => "draft",
            Step::ExportPdf => "export-pdf",
            Step::Logout => "logout",
        }
    }

    /// What the step asks Steno for, as a failure message names it ("the PDF export answered 500").
    pub fn request(self) -> &'static str {
        match self {
            Step::Register => "the registration",
            Step::Login => "the login",
            Step::Upload => "the upload",
            Step::CreateMatter => "the matter creation",
            Step::Draft => "the draft",
            Step::ExportPdf => "the PDF export",
            Step::Logout => "the logout",
        }
    }

    /// The status a working Steno answers the step with.
    pub fn expected_status(self) -> u16 {
        match self {
            Step::Register | Step::Upload | Step::CreateMatter | Step::Draft => 201,
            Step::Login | Step::ExportPdf => 200,
            Step::Logout => 204,
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepOutcome {
    pub name: &'static str,
    pub ok: bool,
    pub latency_ms: u64,
    pub error: Option<String>,
}

/// Runs steps in order and records each one's outcome and latency. After a failed step the
/// journey stops: [`Journey::step`] runs nothing more and answers `None`; only
/// [`Journey::cleanup`] still runs, so a failed probe does not leave its session behind.
#[derive(Debug, Default)]
pub struct Journey {
    outcomes: Vec<StepOutcome>,
}

impl Journey {
    pub fn new() -> Journey {
        Journey::default()
    }

    /// Whether a step failed so far.
    pub fn has_failed(&self) -> bool {
        self.outcomes.iter().any(|outcome| !outcome.ok)
    }

    /// Runs `work` as `step` unless an earlier step failed; its value on success.
    pub async fn step<T>(
        &mut self,
        step: Step,
        work: impl Future<Output = Result<T, String>>,
    ) -> Option<T> {
        if self.has_failed() {
            return None;
        }
        self.run(step, work).await
    }

    /// Runs `work` as `step` whatever happened before (cleaning up after the journey).
    pub async fn cleanup<T>(
        &mut self,
        step: Step,
        work: impl Future<Output = Result<T, String>>,
    ) -> Option<T> {
        self.run(step, work).await
    }

    async fn run<T>(
        &mut self,
        step: Step,
        work: impl Future<Output = Result<T, String>>,
    ) -> Option<T> {
        let started = Instant::now();
        let result = work.await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (ok, error, value) = match result {
            Ok(value) => (true, None, Some(value)),
            Err(error) => (false, Some(error), None),
        };
        self.outcomes.push(StepOutcome {
            name: step.name(),
            ok,
            latency_ms,
            error,
        });
        value
    }

    pub fn finish(self, base_url: &str) -> ProbeReport {
        ProbeReport {
            base_url: base_url.to_string(),
            steps: self.outcomes,
        }
    }
}

/// Every step the probe ran, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    pub base_url: String,
    pub steps: Vec<StepOutcome>,
}

impl ProbeReport {
    /// The first step that failed; later failures (a cleanup after it) are not the cause.
    pub fn first_failure(&self) -> Option<&StepOutcome> {
        self.steps.iter().find(|step| !step.ok)
    }

    pub fn passed(&self) -> bool {
        !self.steps.is_empty() && self.first_failure().is_none()
    }

    /// 0 when every step passed, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.passed() {
            0
        } else {
            1
        }
    }

    /// One line per step: `register ok 35 ms`, `export-pdf failed 120 ms: ...`.
    pub fn step_lines(&self) -> Vec<String> {
        self.steps
            .iter()
            .map(|step| match &step.error {
                None => format!("{} ok {} ms", step.name, step.latency_ms),
                Some(error) => format!("{} failed {} ms: {error}", step.name, step.latency_ms),
            })
            .collect()
    }

    /// The last line: `probe passed: ...`, or `probe failed at export-pdf after 120 ms: ...`.
    pub fn verdict(&self) -> String {
        let total_ms: u64 = self.steps.iter().map(|step| step.latency_ms).sum();
        match self.first_failure() {
            None => format!(
                "probe passed: {} steps in {total_ms} ms against {}",
                self.steps.len(),
                self.base_url
            ),
            Some(failed) => format!(
                "probe failed at {} after {} ms: {}",
                failed.name,
                failed.latency_ms,
                failed.error.as_deref().unwrap_or("no step ran")
            ),
        }
    }

    /// The report as a JSON document: every step's name, ok, latency_ms and error.
    pub fn to_json(&self) -> Value {
        json!({
            "base_url": self.base_url,
            "ok": self.passed(),
            "failed_step": self.first_failure().map(|step| step.name),
            "steps": self.steps,
        })
    }
}

/// The most characters of a server's error message a failure repeats.
const MAX_QUOTED_CHARS: usize = 200;

/// A server's text made safe to print on one line: control characters become spaces, and at most
/// [`MAX_QUOTED_CHARS`] characters are kept.
pub fn quote_server_text(text: &str) -> String {
    let mut quoted: String = text
        .chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .take(MAX_QUOTED_CHARS)
        .collect();
    if text.chars().count() > MAX_QUOTED_CHARS {
        quoted.push_str("...");
    }
    quoted.trim().to_string()
}

/// Why an answer with an unexpected status failed the step: the status, and Steno's error code
/// and message when the body is its JSON error document.
pub fn unexpected_status(step: Step, status: u16, body: &[u8]) -> String {
    let detail = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|document| {
            let error = document.get("error")?;
            let code = error.get("code").and_then(Value::as_str).unwrap_or("error");
            let message = error.get("message").and_then(Value::as_str).unwrap_or("");
            Some(format!(
                " ({}: {})",
                quote_server_text(code),
                quote_server_text(message)
            ))
        })
        .unwrap_or_default();
    format!(
        "{} answered {status}, expected {}{detail}",
        step.request(),
        step.expected_status()
    )
}

/// The identifier at `pointer` in a JSON answer, accepted only as a plain identifier (letters,
/// digits, `-` and `_`, at most 100 characters), since the probe puts it in the next URL.
pub fn identifier_at(step: Step, body: &[u8], pointer: &str) -> Result<String, String> {
    let document: Value = serde_json::from_slice(body).map_err(|error| {
        format!(
            "{} answered {} with a body that is not JSON: {}",
            step.request(),
            step.expected_status(),
            quote_server_text(&error.to_string())
        )
    })?;
    let id = document
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{} answered without {pointer}", step.request()))?;
    let plain = !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if plain {
        Ok(id.to_string())
    } else {
        Err(format!(
            "{} answered {pointer} = {:?}, which is not an identifier",
            step.request(),
            quote_server_text(id)
        ))
    }
}

/// The smallest PDF export the probe accepts: a letter on letterhead is several kilobytes.
pub const MIN_PDF_BYTES: usize = 1024;

/// Whether the exported bytes are a PDF: the `%PDF-` header, at least [`MIN_PDF_BYTES`], and the
/// `%%EOF` marker near the end.
pub fn check_pdf(bytes: &[u8]) -> Result<(), String> {
    if !bytes.starts_with(b"%PDF-") {
        let start = String::from_utf8_lossy(&bytes[..bytes.len().min(16)]).into_owned();
        return Err(format!(
            "the PDF export is not a PDF: it starts with {:?} instead of %PDF-",
            quote_server_text(&start)
        ));
    }
    if bytes.len() < MIN_PDF_BYTES {
        return Err(format!(
            "the PDF export is only {} bytes (at least {MIN_PDF_BYTES} expected)",
            bytes.len()
        ));
    }
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    if !tail.windows(5).any(|window| window == b"%%EOF") {
        return Err("the PDF export is cut short: no %%EOF marker at its end".into());
    }
    Ok(())
}

/// Parses the probe's `--timeout`: `500ms`, `30s`, `2m` or a number of seconds; between 1 s and
/// 1 h.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(number) = text.strip_suffix("ms") {
        (number, 1)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1_000)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60_000)
    } else {
        (text, 1_000)
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 60s, 2m or 1500ms"))?;
    let duration = Duration::from_millis(value.saturating_mul(unit_ms));
    if duration < Duration::from_secs(1) || duration > Duration::from_secs(3600) {
        return Err(format!("{text:?} must be between 1s and 1h"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(step: Step, ok: bool, latency_ms: u64, error: Option<&str>) -> StepOutcome {
        StepOutcome {
            name: step.name(),
            ok,
            latency_ms,
            error: error.map(String::from),
        }
    }

    #[tokio::test]
    async fn a_failed_step_stops_the_journey_but_not_its_cleanup() {
        let mut journey = Journey::new();
        let mut ran = Vec::new();
        assert_eq!(
            journey
                .step(Step::Register, async { Ok::<_, String>("token") })
                .await,
            Some("token")
        );
        ran.push("register");
        assert_eq!(
            journey
                .step(Step::Upload, async { Ok::<_, String>(7) })
                .await,
            Some(7)
        );
        let failed: Option<()> = journey
            .step(Step::Draft, async {
                Err("the draft answered 500".to_string())
            })
            .await;
        assert_eq!(failed, None);
        let skipped = journey
            .step(Step::ExportPdf, async {
                panic!("a step after a failure must not run");
                #[allow(unreachable_code)]
                Ok::<(), String>(())
            })
            .await;
        assert_eq!(skipped, None);
        assert_eq!(
            journey
                .cleanup(Step::Logout, async { Ok::<_, String>(()) })
                .await,
            Some(())
        );
        let report = journey.finish("http://127.0.0.1:1");
        let names: Vec<&str> = report.steps.iter().map(|step| step.name).collect();
        assert_eq!(names, ["register", "upload", "draft", "logout"]);
        assert_eq!(report.first_failure().unwrap().name, "draft");
        assert_eq!(report.exit_code(), 1);
        assert!(report.verdict().starts_with("probe failed at draft after "));
        assert!(report.verdict().ends_with("ms: the draft answered 500"));
    }

    #[test]
    fn the_first_failure_names_the_report_even_when_cleanup_fails_too() {
        let report = ProbeReport {
            base_url: "http://canary".into(),
            steps: vec![
                outcome(Step::Register, true, 35, None),
                outcome(
                    Step::ExportPdf,
                    false,
                    120,
                    Some("the PDF export answered 500"),
                ),
                outcome(Step::Logout, false, 3, Some("the logout answered 500")),
            ],
        };
        assert_eq!(
            report.verdict(),
            "probe failed at export-pdf after 120 ms: the PDF export answered 500"
        );
        assert_eq!(
            report.step_lines(),
            [
                "register ok 35 ms",
                "export-pdf failed 120 ms: the PDF export answered 500",
                "logout failed 3 ms: the logout answered 500",
            ]
        );
        let document = report.to_json();
        assert_eq!(document["ok"], false);
        assert_eq!(document["failed_step"], "export-pdf");
        assert_eq!(document["steps"][0]["name"], "register");
        assert_eq!(document["steps"][0]["latency_ms"], 35);
        assert_eq!(document["steps"][0]["error"], Value::Null);
        assert_eq!(document["steps"][1]["error"], "the PDF export answered 500");
    }

    #[test]
    fn a_passing_report_exits_0_and_an_empty_one_does_not() {
        let passing = ProbeReport {
            base_url: "http://canary".into(),
            steps: vec![
                outcome(Step::Register, true, 35, None),
                outcome(Step::Logout, true, 2, None),
            ],
        };
        assert_eq!(passing.exit_code(), 0);
        assert_eq!(
            passing.verdict(),
            "probe passed: 2 steps in 37 ms against http://canary"
        );
        assert_eq!(passing.to_json()["failed_step"], Value::Null);
        let empty = ProbeReport {
            base_url: "http://canary".into(),
            steps: Vec::new(),
        };
        assert_eq!(empty.exit_code(), 1);
    }

    #[test]
    fn unexpected_answers_name_the_status_and_steno_error() {
        let body = br#"{"error": {"code": "injected_fault", "message": "this error was injected by STENO_CHAOS_BREAK_EXPORT"}}"#;
        assert_eq!(
            unexpected_status(Step::ExportPdf, 500, body),
            "the PDF export answered 500, expected 200 (injected_fault: this error was injected by STENO_CHAOS_BREAK_EXPORT)"
        );
        assert_eq!(
            unexpected_status(Step::Register, 502, b"<html>bad gateway</html>"),
            "the registration answered 502, expected 201"
        );
        let hostile = format!(
            r#"{{"error": {{"code": "x", "message": "line\nbreak{}"}}}}"#,
            "a".repeat(5000)
        );
        let message = unexpected_status(Step::Draft, 500, hostile.as_bytes());
        assert!(!message.contains('\n'), "{message}");
        assert!(message.len() < 400, "{message}");
    }

    #[test]
    fn identifiers_must_be_plain() {
        let body = br#"{"document": {"id": "5f0c-11aa_b"}}"#;
        assert_eq!(
            identifier_at(Step::Upload, body, "/document/id").unwrap(),
            "5f0c-11aa_b"
        );
        let missing = identifier_at(Step::Upload, br#"{"document": {}}"#, "/document/id");
        assert!(missing.unwrap_err().contains("without /document/id"));
        let traversal = identifier_at(
            Step::Draft,
            br#"{"letter": {"id": "../../firms"}}"#,
            "/letter/id",
        );
        assert!(traversal.unwrap_err().contains("not an identifier"));
        let not_json = identifier_at(Step::CreateMatter, b"ok", "/matter/id");
        assert!(not_json.unwrap_err().contains("not JSON"));
        let number = identifier_at(Step::Upload, br#"{"document": {"id": 7}}"#, "/document/id");
        assert!(number.is_err());
    }

    #[test]
    fn only_a_complete_pdf_passes() {
        let mut pdf = b"%PDF-1.7\n".to_vec();
        pdf.extend(std::iter::repeat_n(b'x', 2000));
        pdf.extend(b"\n%%EOF\n");
        assert_eq!(check_pdf(&pdf), Ok(()));
        assert!(check_pdf(b"{\"error\": 1}")
            .unwrap_err()
            .contains("not a PDF"));
        assert!(check_pdf(b"%PDF-1.7\n%%EOF")
            .unwrap_err()
            .contains("only 14 bytes"));
        let cut = &pdf[..pdf.len() - 8];
        assert!(check_pdf(cut).unwrap_err().contains("cut short"));
        assert!(check_pdf(b"").unwrap_err().contains("not a PDF"));
    }

    #[test]
    fn timeouts_take_units_and_bounds() {
        assert_eq!(parse_timeout("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("45"), Ok(Duration::from_secs(45)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("2h").is_err());
        assert!(parse_timeout("soon").is_err());
        assert!(parse_timeout("99999999999999999999m").is_err());
    }
}
