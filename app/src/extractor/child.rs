//! The hidden `steno extract` subcommand: the child side of extraction. It reads one document
//! (or logo) on stdin, parses it within the limits given on its command line, and writes the
//! result on stdout; it starts no runtime, opens no files and knows no secrets.

use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::protocol::{
    encode_document_output, DocumentHeader, Rejection, EXIT_REJECTED, EXIT_USAGE, MAX_HEADER_BYTES,
    PROBE_ANSWER,
};
use crate::export::logo::{normalise_png, LogoError};
use crate::extract::{detect_kind, extract_text_within, DocumentLimits, ExtractError};

/// What the child is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum ExtractJob {
    /// Print the extractor's protocol version and exit.
    Probe,
    /// Stdin: a JSON header line, then the document. Stdout: its kind, a newline, its text.
    Document(DocumentArgs),
    /// Stdin: a PNG. Stdout: the PNG normalised (scaled to fit, re-encoded).
    Logo(LogoArgs),
}

/// The document limits, as the parent passes them.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DocumentArgs {
    #[arg(long)]
    pub max_text_bytes: u64,
    #[arg(long)]
    pub max_decompressed_bytes: u64,
    #[arg(long)]
    pub max_nesting_depth: usize,
    #[arg(long)]
    pub max_pdf_objects: u64,
    #[arg(long)]
    pub max_page_content_bytes: u64,
}

impl DocumentArgs {
    pub fn from_limits(limits: &DocumentLimits) -> DocumentArgs {
        DocumentArgs {
            max_text_bytes: limits.max_text_bytes,
            max_decompressed_bytes: limits.max_decompressed_bytes,
            max_nesting_depth: limits.max_nesting_depth,
            max_pdf_objects: limits.max_pdf_objects,
            max_page_content_bytes: limits.max_page_content_bytes,
        }
    }

    fn limits(&self) -> DocumentLimits {
        DocumentLimits {
            max_text_bytes: self.max_text_bytes,
            max_decompressed_bytes: self.max_decompressed_bytes,
            max_nesting_depth: self.max_nesting_depth,
            max_pdf_objects: self.max_pdf_objects,
            max_page_content_bytes: self.max_page_content_bytes,
        }
    }

    /// The command line after `steno extract`.
    pub fn to_arguments(&self) -> Vec<String> {
        vec![
            "document".into(),
            "--max-text-bytes".into(),
            self.max_text_bytes.to_string(),
            "--max-decompressed-bytes".into(),
            self.max_decompressed_bytes.to_string(),
            "--max-nesting-depth".into(),
            self.max_nesting_depth.to_string(),
            "--max-pdf-objects".into(),
            self.max_pdf_objects.to_string(),
            "--max-page-content-bytes".into(),
            self.max_page_content_bytes.to_string(),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LogoArgs {
    #[arg(long)]
    pub max_dimension: u32,
}

impl LogoArgs {
    pub fn to_arguments(&self) -> Vec<String> {
        vec![
            "logo".into(),
            "--max-dimension".into(),
            self.max_dimension.to_string(),
        ]
    }
}

/// What the child writes and how it exits.
#[derive(Debug, PartialEq, Eq)]
struct ChildOutput {
    stdout: Vec<u8>,
    exit_code: i32,
}

fn rejected(rejection: &Rejection) -> ChildOutput {
    ChildOutput {
        stdout: serde_json::to_vec(rejection).unwrap_or_default(),
        exit_code: EXIT_REJECTED,
    }
}

fn usage(message: &str) -> ChildOutput {
    eprintln!("steno extract: {message}");
    ChildOutput {
        stdout: Vec::new(),
        exit_code: EXIT_USAGE,
    }
}

/// Runs one job with stdin and stdout; returns the process exit code.
pub fn run(job: ExtractJob) -> i32 {
    let output = match job {
        ExtractJob::Probe => ChildOutput {
            stdout: format!("{PROBE_ANSWER}\n").into_bytes(),
            exit_code: 0,
        },
        ExtractJob::Document(args) => match read_stdin() {
            Ok(input) => document(&args, &input),
            Err(error) => usage(&format!("stdin could not be read ({error})")),
        },
        ExtractJob::Logo(args) => match read_stdin() {
            Ok(input) => logo(&args, &input),
            Err(error) => usage(&format!("stdin could not be read ({error})")),
        },
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&output.stdout)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return 1;
    }
    output.exit_code
}

fn read_stdin() -> std::io::Result<Vec<u8>> {
    let mut input = Vec::new();
    std::io::stdin().lock().read_to_end(&mut input)?;
    Ok(input)
}

/// Splits the header line from the document and extracts the document's text.
fn document(args: &DocumentArgs, input: &[u8]) -> ChildOutput {
    let Some(newline) = input
        .iter()
        .take(MAX_HEADER_BYTES)
        .position(|byte| *byte == b'\n')
    else {
        return usage("the input does not start with a header line");
    };
    let header: DocumentHeader = match serde_json::from_slice(&input[..newline]) {
        Ok(header) => header,
        Err(error) => return usage(&format!("the header line is not valid ({error})")),
    };
    let bytes = &input[newline + 1..];
    let limits = args.limits();
    let extracted = catch_unwind(AssertUnwindSafe(|| {
        let kind = detect_kind(&header.filename, header.content_type.as_deref(), bytes)?;
        let text = extract_text_within(kind, bytes, &limits)?;
        Ok::<_, ExtractError>((kind, text))
    }));
    match extracted {
        Ok(Ok((kind, text))) => ChildOutput {
            stdout: encode_document_output(kind, &text),
            exit_code: 0,
        },
        Ok(Err(error)) => rejected(&Rejection::from(&error)),
        Err(_) => rejected(&Rejection {
            unsupported_type: false,
            message: "the document could not be read: its parser failed on its structure; \
                      save or print it to a new file and upload that"
                .to_string(),
            limit: None,
        }),
    }
}

fn logo(args: &LogoArgs, input: &[u8]) -> ChildOutput {
    let normalised = catch_unwind(AssertUnwindSafe(|| {
        normalise_png(input, args.max_dimension)
    }));
    let error = match normalised {
        Ok(Ok(png)) => {
            return ChildOutput {
                stdout: png,
                exit_code: 0,
            }
        }
        Ok(Err(error)) => error,
        Err(_) => LogoError::Image(crate::export::ExportError::InvalidLogo {
            format: "PNG",
            reason: "its decoder failed on its structure".to_string(),
        }),
    };
    rejected(&Rejection {
        unsupported_type: false,
        limit: match &error {
            LogoError::Limit(hit) => Some(hit.clone()),
            LogoError::Image(_) => None,
        },
        message: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::DocumentKind;
    use crate::extractor::protocol::decode_document_output;

    fn with_header(filename: &str, bytes: &[u8]) -> Vec<u8> {
        let mut input = serde_json::to_vec(&DocumentHeader {
            filename: filename.to_string(),
            content_type: None,
        })
        .unwrap();
        input.push(b'\n');
        input.extend_from_slice(bytes);
        input
    }

    fn default_args() -> DocumentArgs {
        DocumentArgs::from_limits(&DocumentLimits::default())
    }

    #[test]
    fn a_text_document_comes_back_with_its_kind() {
        let output = document(&default_args(), &with_header("bill.txt", b"Total $40\n"));
        assert_eq!(output.exit_code, 0);
        assert_eq!(
            decode_document_output(&output.stdout).unwrap(),
            (DocumentKind::PlainText, "Total $40".to_string())
        );
    }

    #[test]
    fn refusals_carry_the_status_class_and_the_limit() {
        let output = document(
            &default_args(),
            &with_header("photo.pdf", b"\x89PNG\r\n\x1a\nxx"),
        );
        assert_eq!(output.exit_code, EXIT_REJECTED);
        let rejection: Rejection = serde_json::from_slice(&output.stdout).unwrap();
        assert!(rejection.unsupported_type);
        assert!(rejection.message.contains("photo.pdf"));

        let mut args = default_args();
        args.max_text_bytes = 10;
        let output = document(&args, &with_header("notes.txt", b"twenty bytes of text"));
        let rejection: Rejection = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            rejection.limit.map(|hit| hit.limit),
            Some(crate::limits::Limit::ExtractedTextBytes)
        );
    }

    #[test]
    fn a_missing_header_is_a_usage_error() {
        assert_eq!(
            document(&default_args(), b"no header").exit_code,
            EXIT_USAGE
        );
        assert_eq!(
            document(&default_args(), b"{\"file\": 1}\nbody").exit_code,
            EXIT_USAGE
        );
    }

    #[test]
    fn arguments_parse_back() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(subcommand)]
            job: ExtractJob,
        }
        let args = DocumentArgs::from_limits(&DocumentLimits::default());
        let parsed = Wrapper::try_parse_from(
            std::iter::once("extract".to_string()).chain(args.to_arguments()),
        )
        .unwrap();
        assert_eq!(parsed.job, ExtractJob::Document(args));
        let logo = LogoArgs {
            max_dimension: 4096,
        };
        let parsed = Wrapper::try_parse_from(
            std::iter::once("extract".to_string()).chain(logo.to_arguments()),
        )
        .unwrap();
        assert_eq!(parsed.job, ExtractJob::Logo(logo));
    }
}
