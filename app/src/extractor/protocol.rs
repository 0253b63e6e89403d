//! The contract between Steno and its extractor child: what goes in on stdin, what comes out on
//! stdout, the exit codes, and the pure judgement of how a child ended (which limit it hit).

use serde::{Deserialize, Serialize};

use crate::extract::{DocumentKind, ExtractError};
use crate::limits::{Limit, LimitExceeded};

/// The probe's answer; a program that prints anything else is not a compatible extractor.
pub const PROBE_ANSWER: &str = "steno-extractor 1";
/// Exit code of a child that refused its input with a [`Rejection`] on stdout.
pub const EXIT_REJECTED: i32 = 3;
/// Exit code of a child whose command line or input header it could not read.
pub const EXIT_USAGE: i32 = 2;

/// The first line on a document child's stdin (JSON), before the document's bytes. The name
/// travels here rather than on the command line, which other local users can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentHeader {
    pub filename: String,
    pub content_type: Option<String>,
}

/// Longest header line a child accepts.
pub const MAX_HEADER_BYTES: usize = 4096;

/// Why a child refused its input, as it reports it on stdout (JSON) with [`EXIT_REJECTED`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The file is not a kind Steno reads (answered 415), rather than unreadable (422).
    pub unsupported_type: bool,
    pub message: String,
    pub limit: Option<LimitExceeded>,
}

impl From<&ExtractError> for Rejection {
    fn from(error: &ExtractError) -> Rejection {
        Rejection {
            unsupported_type: matches!(
                error,
                ExtractError::EmptyFile { .. }
                    | ExtractError::UnsupportedFile { .. }
                    | ExtractError::NameDoesNotMatchContent { .. }
            ),
            message: error.to_string(),
            limit: match error {
                ExtractError::Limit(hit) => Some(hit.clone()),
                _ => None,
            },
        }
    }
}

/// A document child's successful output: the kind's name, a newline, then the text.
pub fn encode_document_output(kind: DocumentKind, text: &str) -> Vec<u8> {
    let mut output = Vec::with_capacity(text.len() + 8);
    output.extend_from_slice(kind.as_str().as_bytes());
    output.push(b'\n');
    output.extend_from_slice(text.as_bytes());
    output
}

/// The inverse of [`encode_document_output`].
pub fn decode_document_output(output: &[u8]) -> Result<(DocumentKind, String), String> {
    let newline = output
        .iter()
        .position(|byte| *byte == b'\n')
        .ok_or("the output has no kind line")?;
    let kind_name = std::str::from_utf8(&output[..newline]).map_err(|_| "the kind is not UTF-8")?;
    let kind = DocumentKind::from_name(kind_name)
        .ok_or_else(|| format!("the kind {kind_name:?} is unknown"))?;
    let text = String::from_utf8(output[newline + 1..].to_vec())
        .map_err(|_| "the text is not UTF-8".to_string())?;
    Ok((kind, text))
}

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEnd {
    Exited(i32),
    Signalled(i32),
}

/// Everything observed about one finished child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildReport {
    pub end: ChildEnd,
    pub stdout: Vec<u8>,
    /// Steno stopped reading stdout at its cap and killed the child.
    pub stdout_overflowed: bool,
    /// Steno killed the child at the wall-clock deadline.
    pub timed_out: bool,
    /// The start of stderr (Rust's runtime reports stack overflows and failed allocations there).
    pub stderr: Vec<u8>,
}

/// What a child's end means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildVerdict {
    Output(Vec<u8>),
    Rejected(Rejection),
    /// A process limit ended it; the caller words the message with the limit's value.
    Limit(Limit),
    /// It died in a way no limit explains (a parser bug); the detail is for the logs.
    Crashed(String),
}

const SIGKILL: i32 = 9;
const SIGBUS: i32 = 7;
const SIGSEGV: i32 = 11;
const SIGXCPU: i32 = 24;

/// Judges a finished child: Steno's own kills first, then the runtime's last words on stderr,
/// then the signal the kernel sent for a resource limit.
pub fn judge(report: ChildReport) -> ChildVerdict {
    if report.timed_out {
        return ChildVerdict::Limit(Limit::ExtractTimeoutSeconds);
    }
    if report.stdout_overflowed {
        return ChildVerdict::Limit(Limit::ExtractedTextBytes);
    }
    let stderr = String::from_utf8_lossy(&report.stderr);
    match report.end {
        ChildEnd::Exited(0) => return ChildVerdict::Output(report.stdout),
        ChildEnd::Exited(EXIT_REJECTED) => {
            return match serde_json::from_slice::<Rejection>(&report.stdout) {
                Ok(rejection) => ChildVerdict::Rejected(rejection),
                Err(error) => ChildVerdict::Crashed(format!(
                    "the child's rejection could not be read ({error})"
                )),
            }
        }
        _ => {}
    }
    if stderr.contains("memory allocation of") {
        return ChildVerdict::Limit(Limit::ExtractMemoryBytes);
    }
    if stderr.contains("has overflowed its stack") {
        return ChildVerdict::Limit(Limit::ExtractStackBytes);
    }
    match report.end {
        ChildEnd::Signalled(SIGXCPU | SIGKILL) => ChildVerdict::Limit(Limit::ExtractCpuSeconds),
        // A fault with no message from the runtime is almost always the stack guard page.
        ChildEnd::Signalled(SIGSEGV | SIGBUS) => ChildVerdict::Limit(Limit::ExtractStackBytes),
        end => {
            let first_line = stderr
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("");
            ChildVerdict::Crashed(format!("{end:?}: {first_line}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(end: ChildEnd, stderr: &str) -> ChildReport {
        ChildReport {
            end,
            stdout: Vec::new(),
            stdout_overflowed: false,
            timed_out: false,
            stderr: stderr.as_bytes().to_vec(),
        }
    }

    #[test]
    fn document_output_round_trips() {
        let output = encode_document_output(DocumentKind::Pdf, "Total $5\nline two");
        assert_eq!(
            decode_document_output(&output).unwrap(),
            (DocumentKind::Pdf, "Total $5\nline two".to_string())
        );
        assert!(decode_document_output(b"pdf").is_err());
        assert!(decode_document_output(b"exe\ntext").is_err());
        assert!(decode_document_output(b"text\n\xff").is_err());
    }

    #[test]
    fn steno_kills_are_named_before_anything_else() {
        let mut timed_out = report(ChildEnd::Signalled(SIGKILL), "");
        timed_out.timed_out = true;
        assert_eq!(
            judge(timed_out),
            ChildVerdict::Limit(Limit::ExtractTimeoutSeconds)
        );
        let mut overflowed = report(ChildEnd::Signalled(SIGKILL), "");
        overflowed.stdout_overflowed = true;
        assert_eq!(
            judge(overflowed),
            ChildVerdict::Limit(Limit::ExtractedTextBytes)
        );
    }

    #[test]
    fn runtime_messages_and_signals_name_the_limit() {
        assert_eq!(
            judge(report(
                ChildEnd::Signalled(6),
                "memory allocation of 1073741824 bytes failed\n"
            )),
            ChildVerdict::Limit(Limit::ExtractMemoryBytes)
        );
        assert_eq!(
            judge(report(
                ChildEnd::Signalled(6),
                "\nthread 'main' has overflowed its stack\nfatal runtime error: stack overflow\n"
            )),
            ChildVerdict::Limit(Limit::ExtractStackBytes)
        );
        assert_eq!(
            judge(report(ChildEnd::Signalled(SIGXCPU), "")),
            ChildVerdict::Limit(Limit::ExtractCpuSeconds)
        );
        assert_eq!(
            judge(report(ChildEnd::Signalled(SIGSEGV), "")),
            ChildVerdict::Limit(Limit::ExtractStackBytes)
        );
        assert!(matches!(
            judge(report(ChildEnd::Exited(101), "thread 'main' panicked at src/x.rs\nboom")),
            ChildVerdict::Crashed(detail) if detail.contains("panicked")
        ));
    }

    #[test]
    fn rejections_are_read_from_stdout() {
        let rejection = Rejection::from(&ExtractError::PdfWithoutText);
        let mut finished = report(ChildEnd::Exited(EXIT_REJECTED), "");
        finished.stdout = serde_json::to_vec(&rejection).unwrap();
        assert_eq!(judge(finished), ChildVerdict::Rejected(rejection.clone()));
        assert!(!rejection.unsupported_type);
        let unsupported = Rejection::from(&ExtractError::EmptyFile {
            filename: "a.pdf".into(),
        });
        assert!(unsupported.unsupported_type);
        let mut garbled = report(ChildEnd::Exited(EXIT_REJECTED), "");
        garbled.stdout = b"{not json".to_vec();
        assert!(matches!(judge(garbled), ChildVerdict::Crashed(_)));
    }
}
