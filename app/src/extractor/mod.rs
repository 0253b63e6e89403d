//! The bounded extractor: Steno parses uploaded documents and logos only in a child process of
//! its own binary (`steno extract`, see [`child`]), started with an address-space, CPU, stack and
//! file-size limit, no environment, a wall-clock deadline and a cap on what it may print, at most
//! `concurrency` at a time. However hostile the file, the server's memory stays its own plus
//! `concurrency` x the child's address-space limit, and the worst outcome is a 422 naming the
//! limit the child reached.

pub mod child;
pub mod protocol;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use self::child::{DocumentArgs, LogoArgs};
use self::protocol::{
    decode_document_output, judge, ChildEnd, ChildReport, ChildVerdict, DocumentHeader, Rejection,
    PROBE_ANSWER,
};
use crate::config::{ExtractorProgram, ExtractorSettings};
use crate::extract::DocumentKind;
use crate::limits::{Limit, LimitExceeded};

/// How much of a child's stderr is kept (the runtime's last words are short).
const STDERR_CAP_BYTES: usize = 16 * 1024;
/// The most a logo child may print: a normalised logo is at most 1024 x 1024 RGB.
const LOGO_OUTPUT_CAP_BYTES: usize = 8 * 1024 * 1024;
/// Room for a rejection's JSON whatever the text limit.
const MIN_DOCUMENT_OUTPUT_CAP_BYTES: usize = 64 * 1024;
/// Open files a child may hold: stdin, stdout, stderr and what the runtime opens at start.
const CHILD_MAX_OPEN_FILES: u64 = 32;

/// Why an extraction did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum ExtractorError {
    /// The child read the file and refused it (not a supported kind, unreadable, or a limit).
    #[error("{}", .0.message)]
    Rejected(Rejection),
    /// The child was stopped by a process limit.
    #[error("{0}")]
    Limit(LimitExceeded),
    /// The child died in a way no limit explains.
    #[error("the {subject} could not be read: its parser stopped unexpectedly; save or print it to a new file and upload that")]
    Crashed {
        subject: &'static str,
        detail: String,
    },
    /// No extraction slot came free in time.
    #[error("all {slots} extraction slots stayed busy for {seconds} s (STENO_EXTRACT_CONCURRENCY); try again in a moment")]
    Busy { slots: usize, seconds: u64 },
    /// The extractor program cannot be run or does not speak the protocol.
    #[error("the extractor program {program} cannot be used: {reason}; set STENO_EXTRACTOR to a steno binary (or unset it to use this one)")]
    Unusable { program: String, reason: String },
}

impl ExtractorError {
    /// A short label for metrics and logs: "rejected", a limit's name, "crashed", "busy", "unusable".
    pub fn outcome(&self) -> &'static str {
        match self {
            ExtractorError::Rejected(Rejection {
                limit: Some(hit), ..
            }) => hit.limit.name(),
            ExtractorError::Rejected(_) => "rejected",
            ExtractorError::Limit(hit) => hit.limit.name(),
            ExtractorError::Crashed { .. } => "crashed",
            ExtractorError::Busy { .. } => "busy",
            ExtractorError::Unusable { .. } => "unusable",
        }
    }
}

/// A document's kind and text, as the child read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractedDocument {
    pub kind: DocumentKind,
    pub text: String,
}

/// Runs extractor children; cheap to clone.
#[derive(Clone)]
pub struct Extractor {
    inner: Arc<Inner>,
}

struct Inner {
    program: PathBuf,
    settings: ExtractorSettings,
    max_logo_dimension: u32,
    slots: Semaphore,
    /// The largest resident set any finished child reached (the kernel's `RUSAGE_CHILDREN`).
    peak_child_rss_bytes: AtomicU64,
}

/// The resource limits a child starts under; applied between fork and exec.
#[derive(Debug, Clone, Copy)]
struct ProcessLimits {
    memory_bytes: u64,
    cpu_seconds: u64,
    stack_bytes: u64,
}

impl ProcessLimits {
    /// Only async-signal-safe system calls: this runs in the forked child before exec.
    fn apply(self) -> std::io::Result<()> {
        set_limit(libc::RLIMIT_AS, self.memory_bytes, self.memory_bytes)?;
        set_limit(libc::RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 1)?;
        set_limit(libc::RLIMIT_STACK, self.stack_bytes, self.stack_bytes)?;
        set_limit(libc::RLIMIT_CORE, 0, 0)?;
        set_limit(libc::RLIMIT_FSIZE, 0, 0)?;
        set_limit(
            libc::RLIMIT_NOFILE,
            CHILD_MAX_OPEN_FILES,
            CHILD_MAX_OPEN_FILES,
        )?;
        // The child dies with the server (strictly: with the thread that started it).
        // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        Ok(())
    }
}

#[cfg(target_os = "linux")]
type ResourceKind = libc::__rlimit_resource_t;
#[cfg(not(target_os = "linux"))]
type ResourceKind = libc::c_int;

/// Lowers a resource limit; never asks for more than the current hard limit allows.
fn set_limit(resource: ResourceKind, soft: u64, hard: u64) -> std::io::Result<()> {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct passed to them.
    unsafe {
        if libc::getrlimit(resource, &mut current) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        #[allow(
            clippy::unnecessary_cast,
            reason = "rlim_t is u64 on 64-bit Linux but a 32-bit c_ulong on some 32-bit targets"
        )]
        let hard = hard.min(current.rlim_max as u64);
        let wanted = libc::rlimit {
            rlim_cur: soft.min(hard) as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        if libc::setrlimit(resource, &wanted) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The program to run: this executable through `/proc/self/exe` where it exists.
fn resolve_program(program: &ExtractorProgram) -> Result<PathBuf, ExtractorError> {
    match program {
        ExtractorProgram::Path(path) => Ok(path.clone()),
        ExtractorProgram::ThisExecutable => {
            let proc_self = Path::new("/proc/self/exe");
            if proc_self.exists() {
                return Ok(proc_self.to_path_buf());
            }
            std::env::current_exe().map_err(|error| ExtractorError::Unusable {
                program: "this executable".to_string(),
                reason: format!("its path could not be found ({error})"),
            })
        }
    }
}

/// Reads until end of file, keeping at most `cap` bytes; `true` when there was more.
async fn read_capped(mut reader: impl AsyncRead + Unpin, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return (kept, false),
            Ok(read) => {
                if kept.len() + read > cap {
                    let room = cap - kept.len();
                    kept.extend_from_slice(&chunk[..room]);
                    return (kept, true);
                }
                kept.extend_from_slice(&chunk[..read]);
            }
        }
    }
}

/// Reads all of stderr (so the child never blocks on it), keeping the start.
async fn drain_stderr(mut reader: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 8 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return kept,
            Ok(read) => {
                let room = STDERR_CAP_BYTES.saturating_sub(kept.len()).min(read);
                kept.extend_from_slice(&chunk[..room]);
            }
        }
    }
}

impl Extractor {
    /// Resolves the extractor program; [`Extractor::probe`] checks that it works.
    pub fn new(
        settings: &ExtractorSettings,
        max_logo_dimension: u32,
    ) -> Result<Extractor, ExtractorError> {
        let program = resolve_program(&settings.program)?;
        Ok(Extractor {
            inner: Arc::new(Inner {
                program,
                settings: settings.clone(),
                max_logo_dimension,
                slots: Semaphore::new(settings.concurrency),
                peak_child_rss_bytes: AtomicU64::new(0),
            }),
        })
    }

    fn unusable(&self, reason: String) -> ExtractorError {
        ExtractorError::Unusable {
            program: self.inner.program.display().to_string(),
            reason,
        }
    }

    /// Runs the program's probe under the configured limits. The hosts call it at start, so a
    /// program that is not a compatible `steno` (or limits too small to start one) stop Steno
    /// before it serves, rather than failing the first upload.
    pub async fn probe(&self) -> Result<(), ExtractorError> {
        let report = self.run(vec!["probe".to_string()], Vec::new(), 256).await?;
        let answer = String::from_utf8_lossy(&report.stdout);
        if report.end == ChildEnd::Exited(0) && answer.trim() == PROBE_ANSWER {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&report.stderr);
        Err(self.unusable(format!(
            "its probe ended with {:?}, printing {:?} (stderr: {:?})",
            report.end,
            answer.trim(),
            stderr.lines().next().unwrap_or("")
        )))
    }

    pub fn settings(&self) -> &ExtractorSettings {
        &self.inner.settings
    }

    /// The largest resident set a finished extractor child reached, in bytes.
    pub fn peak_child_rss_bytes(&self) -> u64 {
        self.inner.peak_child_rss_bytes.load(Ordering::Relaxed)
    }

    /// Detects a document's kind and extracts its text in a child.
    pub async fn extract_document(
        &self,
        filename: &str,
        declared_content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<ExtractedDocument, ExtractorError> {
        let document = &self.inner.settings.document;
        let mut header = serde_json::to_vec(&DocumentHeader {
            filename: filename.to_string(),
            content_type: declared_content_type.map(str::to_string),
        })
        .map_err(|error| self.unusable(format!("the header could not be written ({error})")))?;
        header.push(b'\n');
        let text_cap = usize::try_from(document.max_text_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(16);
        let output_cap = text_cap.max(MIN_DOCUMENT_OUTPUT_CAP_BYTES);
        let arguments = DocumentArgs::from_limits(document).to_arguments();
        let started = Instant::now();
        let report = self
            .run(arguments, vec![Bytes::from(header), bytes], output_cap)
            .await?;
        let verdict = match judge(report) {
            // The output cap sits just above the text limit, so passing it is the text limit.
            ChildVerdict::Output(output) if output.len() > text_cap => {
                ChildVerdict::Limit(Limit::ExtractedTextBytes)
            }
            verdict => verdict,
        };
        let outcome = match verdict {
            ChildVerdict::Output(output) => decode_document_output(&output)
                .map(|(kind, text)| ExtractedDocument { kind, text })
                .map_err(|reason| self.unusable(format!("its output could not be read: {reason}"))),
            other => Err(self.failure(other, "document")),
        };
        log_outcome("document", started, &outcome);
        outcome
    }

    /// Normalises a PNG logo in a child: size checked, scaled to fit, re-encoded.
    pub async fn normalise_logo(&self, png: Bytes) -> Result<Vec<u8>, ExtractorError> {
        let arguments = LogoArgs {
            max_dimension: self.inner.max_logo_dimension,
        }
        .to_arguments();
        let started = Instant::now();
        let report = self
            .run(arguments, vec![png], LOGO_OUTPUT_CAP_BYTES)
            .await?;
        let outcome =
            match judge(report) {
                ChildVerdict::Output(output) => Ok(output),
                ChildVerdict::Limit(Limit::ExtractedTextBytes) => Err(self
                    .unusable("a normalised logo came out larger than the output cap".to_string())),
                other => Err(self.failure(other, "logo")),
            };
        log_outcome("logo", started, &outcome);
        outcome
    }

    /// The error for a child that did not produce output.
    fn failure(&self, verdict: ChildVerdict, subject: &'static str) -> ExtractorError {
        match verdict {
            ChildVerdict::Rejected(rejection) => ExtractorError::Rejected(rejection),
            ChildVerdict::Limit(limit) => ExtractorError::Limit(self.limit_hit(limit, subject)),
            ChildVerdict::Crashed(detail) => ExtractorError::Crashed { subject, detail },
            ChildVerdict::Output(_) => ExtractorError::Crashed {
                subject,
                detail: "unexpected output".to_string(),
            },
        }
    }

    fn limit_hit(&self, limit: Limit, subject: &str) -> LimitExceeded {
        let settings = &self.inner.settings;
        let advice = if subject == "logo" {
            "save the logo as a smaller PNG or JPEG and upload it again"
        } else {
            "split the document, or print it to a new PDF, and upload the result"
        };
        let (value, what) = match limit {
            Limit::ExtractTimeoutSeconds => (
                settings.timeout.as_secs(),
                format!("reading the {subject} took longer than"),
            ),
            Limit::ExtractCpuSeconds => (
                settings.cpu_seconds,
                format!("reading the {subject} used more CPU time than"),
            ),
            Limit::ExtractMemoryBytes => (
                settings.memory_bytes,
                format!("reading the {subject} needed more memory than"),
            ),
            Limit::ExtractStackBytes => (
                settings.stack_bytes,
                format!("the {subject} is nested so deeply that its parser ran out of stack; it needed more than"),
            ),
            _ => (
                settings.document.max_text_bytes,
                format!("the text extracted from the {subject} is larger than"),
            ),
        };
        let limit = match limit {
            Limit::ExtractTimeoutSeconds
            | Limit::ExtractCpuSeconds
            | Limit::ExtractMemoryBytes
            | Limit::ExtractStackBytes => limit,
            _ => Limit::ExtractedTextBytes,
        };
        LimitExceeded::new(limit, value, what, advice)
    }

    /// Runs one child: waits for a slot, starts it under the limits, feeds `input` to its
    /// stdin, reads at most `output_cap` bytes of stdout, and kills it at the deadline.
    async fn run(
        &self,
        arguments: Vec<String>,
        input: Vec<Bytes>,
        output_cap: usize,
    ) -> Result<ChildReport, ExtractorError> {
        let settings = &self.inner.settings;
        let _slot = match tokio::time::timeout(settings.timeout, self.inner.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(ExtractorError::Busy {
                    slots: settings.concurrency,
                    seconds: settings.timeout.as_secs(),
                })
            }
        };
        let deadline = tokio::time::Instant::now() + settings.timeout;
        let limits = ProcessLimits {
            memory_bytes: settings.memory_bytes,
            cpu_seconds: settings.cpu_seconds,
            stack_bytes: settings.stack_bytes,
        };
        let mut command = tokio::process::Command::new(&self.inner.program);
        command
            .arg("extract")
            .args(&arguments)
            .env_clear()
            // One malloc arena and one parser thread: the address-space limit is spent on the
            // document, not on per-thread arena reservations.
            .env("MALLOC_ARENA_MAX", "1")
            .env("RAYON_NUM_THREADS", "1")
            // Threads the parser starts get the same stack as the main thread.
            .env("RUST_MIN_STACK", settings.stack_bytes.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: `apply` only makes async-signal-safe system calls (getrlimit, setrlimit, prctl).
        unsafe {
            command.pre_exec(move || limits.apply());
        }
        let mut child = command
            .spawn()
            .map_err(|error| self.unusable(format!("it could not be started ({error})")))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(self.unusable("its pipes could not be opened".to_string()));
        };
        let writer = tokio::spawn(async move {
            for piece in input {
                if stdin.write_all(&piece).await.is_err() {
                    break;
                }
            }
        });
        let stderr_reader = tokio::spawn(drain_stderr(stderr));
        let (stdout, stdout_overflowed, mut timed_out) =
            match tokio::time::timeout_at(deadline, read_capped(stdout, output_cap)).await {
                Ok((stdout, overflowed)) => (stdout, overflowed, false),
                Err(_) => (Vec::new(), false, true),
            };
        if stdout_overflowed || timed_out {
            let _ = child.start_kill();
        }
        let status = match tokio::time::timeout_at(deadline, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                timed_out = true;
                let _ = child.start_kill();
                child.wait().await
            }
        }
        .map_err(|error| self.unusable(format!("it could not be waited for ({error})")))?;
        writer.abort();
        let stderr = tokio::time::timeout(std::time::Duration::from_secs(1), stderr_reader)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        self.record_peak_rss();
        let end = match (status.code(), status.signal()) {
            (Some(code), _) => ChildEnd::Exited(code),
            (None, Some(signal)) => ChildEnd::Signalled(signal),
            (None, None) => ChildEnd::Signalled(0),
        };
        Ok(ChildReport {
            end,
            stdout,
            stdout_overflowed,
            timed_out,
            stderr,
        })
    }

    fn record_peak_rss(&self) {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage writes one rusage struct into the pointer it is given.
        let peak_kib = unsafe {
            if libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) != 0 {
                return;
            }
            usage.assume_init().ru_maxrss
        };
        let peak_bytes = u64::try_from(peak_kib).unwrap_or(0) * 1024;
        self.inner
            .peak_child_rss_bytes
            .fetch_max(peak_bytes, Ordering::Relaxed);
    }
}

fn log_outcome<T>(job: &str, started: Instant, outcome: &Result<T, ExtractorError>) {
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(_) => tracing::debug!(job, elapsed_ms, "extraction finished"),
        Err(ExtractorError::Crashed { detail, .. }) => {
            tracing::warn!(job, elapsed_ms, detail = %detail, "extractor child crashed")
        }
        Err(ExtractorError::Unusable { .. }) => {}
        Err(error) => tracing::info!(
            job,
            elapsed_ms,
            outcome = error.outcome(),
            "extraction refused"
        ),
    }
}
