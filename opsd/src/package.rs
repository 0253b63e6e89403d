//! `opsd package steno`: builds Steno for AWS Lambda's `provided.al2023` custom runtime and zips
//! it as the single executable entry `bootstrap`, checking the binary's architecture and the
//! glibc it needs, and reporting the zip's `CodeSha256` as Lambda will.
//!
//! The zip is reproducible: the entry has a fixed timestamp (1980-01-01) and mode, so the same
//! binary always gives the same `CodeSha256`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Where the zip goes unless `--output` says otherwise (relative to the current directory).
pub const DEFAULT_OUTPUT: &str = "target/lambda/steno/bootstrap.zip";

/// The newest glibc Amazon Linux 2023 (`provided.al2023`) ships: 2.34.
pub const AL2023_GLIBC: GlibcVersion = GlibcVersion {
    minor: 34,
    patch: 0,
};

/// Lambda's limit on a zip uploaded directly (`--zip-file`); bigger ones go through S3.
pub const DIRECT_UPLOAD_LIMIT_BYTES: u64 = 50 * 1000 * 1000;
/// Lambda's limit on a function's unzipped code.
pub const UNZIPPED_LIMIT_BYTES: u64 = 250 * 1000 * 1000;

/// The Unix mode of the `bootstrap` entry: an executable Lambda's runtime can start.
pub const BOOTSTRAP_MODE: u32 = 0o755;

/// Build Steno for AWS Lambda (custom runtime provided.al2023) and zip it as `bootstrap`.
///
/// Runs `cargo build --release -p steno [--target T]` (or takes --binary), checks the binary is
/// a Linux ELF executable for x86_64 or aarch64 and whether it needs a newer glibc than Amazon
/// Linux 2023's 2.34, then writes a zip with one entry, `bootstrap` (mode 0755), at --output
/// (default target/lambda/steno/bootstrap.zip, from the current directory), and prints its size
/// and CodeSha256 (base64 SHA-256, what Lambda reports after an upload).
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = "\
Upload and deploy:
  aws lambda update-function-code --function-name steno \\
      --zip-file fileb://target/lambda/steno/bootstrap.zip --publish
  (compare the CodeSha256 it prints with the one above), then
  opsd deploy steno --version <the published version> --wait

The function needs Runtime provided.al2023 and the Architectures value printed above (x86_64 or
arm64); its Handler is ignored. A zip over 50 MB must go through S3 (--s3-bucket/--s3-key).

Binaries built on a newer distribution than Amazon Linux 2023 may need a newer glibc than its
2.34 and fail at start; build a static binary instead:
  rustup target add x86_64-unknown-linux-musl
  opsd package steno --target x86_64-unknown-linux-musl")]
pub struct PackageArgs {
    /// What to package (only Steno can be).
    #[arg(value_parser = ["steno"])]
    pub service: String,
    /// Where to write the zip; its directory is created.
    #[arg(long, value_name = "ZIP", default_value = DEFAULT_OUTPUT)]
    pub output: PathBuf,
    /// Rust target triple to build for, e.g. x86_64-unknown-linux-musl or
    /// aarch64-unknown-linux-gnu (for arm64 functions).
    #[arg(long, value_name = "TRIPLE", conflicts_with = "binary")]
    pub target: Option<String>,
    /// A steno binary built already: skip the build and package this file.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What failed while packaging, and where. Each message carries its cause and what to do, so
/// none is exposed as a `source` (printing the chain would repeat it).
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(
        "could not run `{command}`: {error}; install Rust (https://rustup.rs) or pass --binary"
    )]
    CargoNotRun {
        command: String,
        error: std::io::Error,
    },
    #[error(
        "`{command}` failed ({status}); fix the errors above, or pass --binary with a steno \
         binary built elsewhere"
    )]
    BuildFailed { command: String, status: ExitStatus },
    #[error(
        "`cargo metadata` did not name the target directory ({problem}); pass --binary instead"
    )]
    NoTargetDirectory { problem: String },
    #[error("the steno binary was not found at {}; {hint}", path.display())]
    BinaryNotFound { path: PathBuf, hint: &'static str },
    #[error("cannot read the steno binary {}: {error}", path.display())]
    ReadBinary {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} cannot run on Lambda: {problem}", path.display())]
    NotLambdaExecutable { path: PathBuf, problem: ElfProblem },
    #[error(
        "cannot write the zip at {}: {error}; check that the directory is writable, or choose \
         another --output",
        path.display()
    )]
    WriteZip {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The CPU a Lambda function runs on (its `Architectures` value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LambdaArchitecture {
    X86_64,
    Arm64,
}

impl LambdaArchitecture {
    /// The name Lambda uses in `Architectures`.
    pub fn lambda_name(self) -> &'static str {
        match self {
            LambdaArchitecture::X86_64 => "x86_64",
            LambdaArchitecture::Arm64 => "arm64",
        }
    }

    /// The static (musl) Rust target for this CPU.
    pub fn musl_target(self) -> &'static str {
        match self {
            LambdaArchitecture::X86_64 => "x86_64-unknown-linux-musl",
            LambdaArchitecture::Arm64 => "aarch64-unknown-linux-musl",
        }
    }
}

impl fmt::Display for LambdaArchitecture {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.lambda_name())
    }
}

/// What the ELF header says about an executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ElfInfo {
    pub architecture: LambdaArchitecture,
    /// It names a program interpreter (the dynamic loader), so it needs the system's libc;
    /// a static binary (musl) does not.
    pub dynamic: bool,
}

/// Why a file is not an executable Lambda's `provided.al2023` can start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfProblem {
    #[error(
        "it is not an ELF file (a Linux executable); build on Linux, or cross-compile with \
         --target x86_64-unknown-linux-musl"
    )]
    NotElf,
    #[error("its ELF header is cut short ({length} bytes); the file is truncated, build it again")]
    Truncated { length: usize },
    #[error("it is a 32-bit ELF file; Lambda runs 64-bit x86_64 or arm64 executables")]
    NotSixtyFourBit,
    #[error("it is a big-endian ELF file; Lambda runs little-endian x86_64 or arm64 executables")]
    BigEndian,
    #[error("it is an ELF {kind}, not an executable; point --binary at the steno program")]
    NotExecutable { kind: &'static str },
    #[error(
        "it is an ELF executable for machine {machine}, not x86_64 (62) or aarch64 (183); build \
         for one of those"
    )]
    UnsupportedMachine { machine: u16 },
}

/// Reads the ELF header (and program headers, for the interpreter): a 64-bit little-endian
/// executable (`ET_EXEC`, or `ET_DYN` as position-independent executables are) for x86_64 or
/// aarch64.
pub fn inspect_elf(bytes: &[u8]) -> Result<ElfInfo, ElfProblem> {
    const HEADER_LEN: usize = 64;
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Err(ElfProblem::NotElf);
    }
    if bytes.len() < 6 {
        return Err(ElfProblem::Truncated {
            length: bytes.len(),
        });
    }
    match bytes[4] {
        2 => {}
        1 => return Err(ElfProblem::NotSixtyFourBit),
        _ => return Err(ElfProblem::NotElf),
    }
    match bytes[5] {
        1 => {}
        2 => return Err(ElfProblem::BigEndian),
        _ => return Err(ElfProblem::NotElf),
    }
    if bytes.len() < HEADER_LEN {
        return Err(ElfProblem::Truncated {
            length: bytes.len(),
        });
    }
    let kind = match read_u16(bytes, 16) {
        Some(2 | 3) => None,
        Some(0) => Some("file of no type"),
        Some(1) => Some("object file"),
        Some(4) => Some("core dump"),
        _ => Some("file of unknown type"),
    };
    if let Some(kind) = kind {
        return Err(ElfProblem::NotExecutable { kind });
    }
    let architecture = match read_u16(bytes, 18) {
        Some(62) => LambdaArchitecture::X86_64,
        Some(183) => LambdaArchitecture::Arm64,
        machine => {
            return Err(ElfProblem::UnsupportedMachine {
                machine: machine.unwrap_or(0),
            })
        }
    };
    Ok(ElfInfo {
        architecture,
        dynamic: has_interpreter(bytes),
    })
}

/// Whether a program header of type `PT_INTERP` exists (headers out of the file's bounds are
/// ignored).
fn has_interpreter(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let (Some(offset), Some(entry_size), Some(count)) = (
        read_u64(bytes, 32),
        read_u16(bytes, 54),
        read_u16(bytes, 56),
    ) else {
        return false;
    };
    let Ok(offset) = usize::try_from(offset) else {
        return false;
    };
    (0..usize::from(count)).any(|index| {
        usize::from(entry_size)
            .checked_mul(index)
            .and_then(|start| start.checked_add(offset))
            .and_then(|start| read_u32(bytes, start))
            == Some(PT_INTERP)
    })
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let field = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(field.try_into().ok()?))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}

/// A glibc symbol version `GLIBC_2.<minor>[.<patch>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlibcVersion {
    pub minor: u32,
    pub patch: u32,
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patch == 0 {
            write!(formatter, "2.{}", self.minor)
        } else {
            write!(formatter, "2.{}.{}", self.minor, self.patch)
        }
    }
}

impl Serialize for GlibcVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The highest `GLIBC_2.x[.y]` version named anywhere in `bytes` (the symbol versions a
/// dynamically linked binary requires), or `None` when there is none.
pub fn max_glibc_version(bytes: &[u8]) -> Option<GlibcVersion> {
    const PREFIX: &[u8] = b"GLIBC_2.";
    let mut highest = None;
    let mut from = 0;
    while let Some(found) = find(&bytes[from..], PREFIX) {
        let start = from + found + PREFIX.len();
        from = start;
        let Some((minor, after_minor)) = read_number(bytes, start) else {
            continue;
        };
        let patch = match bytes.get(after_minor) {
            Some(b'.') => read_number(bytes, after_minor + 1).map_or(0, |(patch, _)| patch),
            _ => 0,
        };
        let version = GlibcVersion { minor, patch };
        if highest.is_none_or(|highest| version > highest) {
            highest = Some(version);
        }
    }
    highest
}

/// The position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The decimal number at `at` (1 to 5 digits) and the position after it.
fn read_number(bytes: &[u8], at: usize) -> Option<(u32, usize)> {
    let digits = bytes
        .get(at..)?
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if digits == 0 || digits > 5 {
        return None;
    }
    let number = bytes[at..at + digits]
        .iter()
        .fold(0_u32, |number, digit| number * 10 + u32::from(digit - b'0'));
    Some((number, at + digits))
}

/// The base64 SHA-256 of `bytes`: what Lambda reports as `CodeSha256` for a zip.
pub fn code_sha256(bytes: &[u8]) -> String {
    aws_smithy_types::base64::encode(Sha256::digest(bytes))
}

/// A zip with one entry, `bootstrap`: `binary`, deflated, mode 0755, dated 1980-01-01.
pub fn bootstrap_zip(binary: &[u8]) -> std::io::Result<Vec<u8>> {
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(BOOTSTRAP_MODE)
        .last_modified_time(zip::DateTime::default())
        .large_file(binary.len() as u64 >= u64::from(u32::MAX));
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file("bootstrap", options)
        .map_err(std::io::Error::other)?;
    writer.write_all(binary)?;
    let cursor = writer.finish().map_err(std::io::Error::other)?;
    Ok(cursor.into_inner())
}

/// Writes `bytes` to `path` through a temporary file beside it, so a failed write never
/// leaves a half-written zip under the final name.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(directory)?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = std::fs::write(&partial, bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// The outcome of packaging, as printed (and as `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageReport {
    pub zip: PathBuf,
    pub zip_bytes: u64,
    /// Base64 SHA-256 of the zip, as Lambda reports it.
    pub code_sha256: String,
    pub binary: PathBuf,
    pub binary_bytes: u64,
    /// The Lambda function's `Architectures` value this zip needs.
    pub architecture: LambdaArchitecture,
    pub dynamic: bool,
    /// The newest glibc version the binary asks for, if any.
    pub glibc: Option<GlibcVersion>,
    pub warnings: Vec<String>,
}

/// Runs the command: builds (unless `--binary`), packages, and prints the result.
pub fn run(args: &PackageArgs) -> Result<PackageReport, PackageError> {
    let binary = match &args.binary {
        Some(binary) => binary.clone(),
        None => build_steno(args.target.as_deref())?,
    };
    let report = package_binary(&binary, &args.output)?;
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => eprintln!("error: cannot print the report as JSON: {error}"),
        }
    } else {
        print!("{}", render_report(&report));
    }
    Ok(report)
}

/// Checks `binary` and writes it as `bootstrap` in a zip at `output`.
pub fn package_binary(binary: &Path, output: &Path) -> Result<PackageReport, PackageError> {
    let bytes = std::fs::read(binary).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => PackageError::BinaryNotFound {
            path: binary.to_path_buf(),
            hint: "check the --binary path",
        },
        _ => PackageError::ReadBinary {
            path: binary.to_path_buf(),
            error,
        },
    })?;
    let elf = inspect_elf(&bytes).map_err(|problem| PackageError::NotLambdaExecutable {
        path: binary.to_path_buf(),
        problem,
    })?;
    let glibc = if elf.dynamic {
        max_glibc_version(&bytes)
    } else {
        None
    };
    let zip = bootstrap_zip(&bytes).map_err(|error| PackageError::WriteZip {
        path: output.to_path_buf(),
        error,
    })?;
    write_atomically(output, &zip).map_err(|error| PackageError::WriteZip {
        path: output.to_path_buf(),
        error,
    })?;
    let mut report = PackageReport {
        zip: output.to_path_buf(),
        zip_bytes: zip.len() as u64,
        code_sha256: code_sha256(&zip),
        binary: binary.to_path_buf(),
        binary_bytes: bytes.len() as u64,
        architecture: elf.architecture,
        dynamic: elf.dynamic,
        glibc,
        warnings: Vec::new(),
    };
    report.warnings = warnings(&report);
    Ok(report)
}

/// What might stop the zip from working on Lambda, each with what to do.
fn warnings(report: &PackageReport) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(glibc) = report.glibc.filter(|glibc| *glibc > AL2023_GLIBC) {
        warnings.push(format!(
            "{} needs glibc {glibc} (GLIBC_{glibc}) but Lambda's provided.al2023 has glibc \
             {AL2023_GLIBC}, so it would fail at start; build a static binary with --target {} \
             (rustup target add {}), or build on Amazon Linux 2023",
            report.binary.display(),
            report.architecture.musl_target(),
            report.architecture.musl_target(),
        ));
    }
    if report.binary_bytes > UNZIPPED_LIMIT_BYTES {
        warnings.push(format!(
            "the binary is {}, over Lambda's 250 MB limit on unzipped code; build with --release \
             and strip it (profile.release strip = true)",
            human_size(report.binary_bytes)
        ));
    }
    if report.zip_bytes > DIRECT_UPLOAD_LIMIT_BYTES {
        warnings.push(format!(
            "the zip is {}, over the 50 MB limit of a direct upload; copy it to S3 and use \
             aws lambda update-function-code --s3-bucket ... --s3-key ...",
            human_size(report.zip_bytes)
        ));
    }
    warnings
}

/// The human form of a report: the `packaged steno: ...` line, then the details and the upload
/// command.
pub fn render_report(report: &PackageReport) -> String {
    let linking = match (report.dynamic, report.glibc) {
        (false, _) => "static".to_string(),
        (true, Some(glibc)) => format!("dynamic, needs glibc {glibc}"),
        (true, None) => "dynamic".to_string(),
    };
    format!(
        "packaged steno: {zip} ({size}, CodeSha256 {sha})\n  \
         binary: {binary} ({binary_size}, ELF {architecture}, {linking})\n  \
         function settings: Runtime provided.al2023, Architectures {architecture}\n  \
         upload: aws lambda update-function-code --function-name steno --zip-file fileb://{zip} \
         --publish\n",
        zip = report.zip.display(),
        size = human_size(report.zip_bytes),
        sha = report.code_sha256,
        binary = report.binary.display(),
        binary_size = human_size(report.binary_bytes),
        architecture = report.architecture,
    )
}

/// `512 B`, `3.4 KiB`, `9.8 MiB`.
pub fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let value = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} B")
    } else if value < KIB * KIB {
        format!("{:.1} KiB", value / KIB)
    } else if value < KIB * KIB * KIB {
        format!("{:.1} MiB", value / (KIB * KIB))
    } else {
        format!("{:.1} GiB", value / (KIB * KIB * KIB))
    }
}

/// The cargo to run: the one running us (`CARGO`), else `cargo` on the PATH.
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The arguments of the release build.
pub fn build_arguments(target: Option<&str>) -> Vec<String> {
    let mut arguments = ["build", "--release", "-p", "steno"]
        .map(String::from)
        .to_vec();
    if let Some(target) = target {
        arguments.extend(["--target".to_string(), target.to_string()]);
    }
    arguments
}

/// Runs `cargo build --release -p steno [--target T]` with its output shown, and returns the
/// path of the binary it made.
pub fn build_steno(target: Option<&str>) -> Result<PathBuf, PackageError> {
    let arguments = build_arguments(target);
    let command = format!("cargo {}", arguments.join(" "));
    eprintln!("building steno for Lambda ({command})");
    let status = Command::new(cargo())
        .args(&arguments)
        .stdin(Stdio::null())
        .status()
        .map_err(|error| PackageError::CargoNotRun {
            command: command.clone(),
            error,
        })?;
    if !status.success() {
        return Err(PackageError::BuildFailed { command, status });
    }
    let path = release_binary_path(&target_directory()?, target);
    if !path.is_file() {
        return Err(PackageError::BinaryNotFound {
            path,
            hint: "the build succeeded but made no binary there; pass --binary with its path",
        });
    }
    Ok(path)
}

/// Where cargo puts the release `steno` binary under `target_directory`.
pub fn release_binary_path(target_directory: &Path, target: Option<&str>) -> PathBuf {
    let mut path = target_directory.to_path_buf();
    if let Some(target) = target {
        path.push(target);
    }
    path.join("release").join("steno")
}

/// The workspace's target directory as cargo resolves it (`CARGO_TARGET_DIR`, configuration).
fn target_directory() -> Result<PathBuf, PackageError> {
    let command = "cargo metadata --format-version 1 --no-deps";
    let output = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| PackageError::CargoNotRun {
            command: command.to_string(),
            error,
        })?;
    if !output.status.success() {
        return Err(PackageError::NoTargetDirectory {
            problem: format!("it exited with {}", output.status),
        });
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|error| {
        PackageError::NoTargetDirectory {
            problem: format!("its output is not JSON: {error}"),
        }
    })?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| PackageError::NoTargetDirectory {
            problem: "its output has no target_directory".to_string(),
        })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// A minimal 64-bit little-endian ELF executable header for `machine`, with one program
    /// header (`PT_INTERP` when `dynamic`, else `PT_LOAD`), followed by `tail`.
    fn fake_elf(machine: u16, dynamic: bool, tail: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0_u8; 64 + 56];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2; // 64-bit
        bytes[5] = 1; // little-endian
        bytes[6] = 1; // version
        bytes[16..18].copy_from_slice(&3_u16.to_le_bytes()); // ET_DYN (PIE)
        bytes[18..20].copy_from_slice(&machine.to_le_bytes());
        bytes[32..40].copy_from_slice(&64_u64.to_le_bytes()); // e_phoff
        bytes[54..56].copy_from_slice(&56_u16.to_le_bytes()); // e_phentsize
        bytes[56..58].copy_from_slice(&1_u16.to_le_bytes()); // e_phnum
        let program_type: u32 = if dynamic { 3 } else { 1 };
        bytes[64..68].copy_from_slice(&program_type.to_le_bytes());
        bytes.extend_from_slice(tail);
        bytes
    }

    #[test]
    fn elf_headers_name_the_lambda_architecture() {
        let x86 = inspect_elf(&fake_elf(62, true, b"")).unwrap();
        assert_eq!(
            x86,
            ElfInfo {
                architecture: LambdaArchitecture::X86_64,
                dynamic: true,
            }
        );
        let arm = inspect_elf(&fake_elf(183, false, b"")).unwrap();
        assert_eq!(arm.architecture, LambdaArchitecture::Arm64);
        assert_eq!(arm.architecture.lambda_name(), "arm64");
        assert!(!arm.dynamic);

        let mut executable = fake_elf(62, false, b"");
        executable[16] = 2; // ET_EXEC
        assert!(inspect_elf(&executable).is_ok());

        // The test program itself is a real ELF executable for this machine.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let info = inspect_elf(&me).unwrap();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(info.architecture, LambdaArchitecture::X86_64);
        } else if cfg!(target_arch = "aarch64") {
            assert_eq!(info.architecture, LambdaArchitecture::Arm64);
        }
        if cfg!(target_env = "gnu") {
            assert!(info.dynamic);
            assert!(max_glibc_version(&me).is_some());
        }
    }

    #[test]
    fn files_lambda_cannot_run_are_refused_with_the_reason() {
        assert_eq!(
            inspect_elf(b"#!/bin/sh\necho hi\n"),
            Err(ElfProblem::NotElf)
        );
        assert_eq!(inspect_elf(b""), Err(ElfProblem::NotElf));
        assert_eq!(inspect_elf(b"\x7fEL"), Err(ElfProblem::NotElf));
        let whole = fake_elf(62, true, b"");
        assert_eq!(
            inspect_elf(&whole[..40]),
            Err(ElfProblem::Truncated { length: 40 })
        );
        assert_eq!(
            inspect_elf(&whole[..5]),
            Err(ElfProblem::Truncated { length: 5 })
        );
        // Program headers cut off: still an executable, just not known to be dynamic.
        assert!(!inspect_elf(&whole[..64]).unwrap().dynamic);

        let mut thirty_two = whole.clone();
        thirty_two[4] = 1;
        assert_eq!(inspect_elf(&thirty_two), Err(ElfProblem::NotSixtyFourBit));
        let mut big_endian = whole.clone();
        big_endian[5] = 2;
        assert_eq!(inspect_elf(&big_endian), Err(ElfProblem::BigEndian));
        let mut object = whole.clone();
        object[16] = 1;
        assert_eq!(
            inspect_elf(&object),
            Err(ElfProblem::NotExecutable {
                kind: "object file"
            })
        );
        assert_eq!(
            inspect_elf(&fake_elf(40, true, b"")),
            Err(ElfProblem::UnsupportedMachine { machine: 40 })
        );

        // Program header fields pointing anywhere never panic.
        let mut wild = whole;
        wild[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        wild[54..56].copy_from_slice(&u16::MAX.to_le_bytes());
        wild[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(!inspect_elf(&wild).unwrap().dynamic);
    }

    #[test]
    fn the_highest_glibc_version_is_found_in_the_bytes() {
        let bytes =
            b"\0GLIBC_2.2.5\0GLIBC_2.34\0GLIBC_2.17\0GLIBC_PRIVATE\0GLIBC_2.\0GLIBC_2.3.4\0";
        assert_eq!(
            max_glibc_version(bytes),
            Some(GlibcVersion {
                minor: 34,
                patch: 0
            })
        );
        assert_eq!(
            max_glibc_version(b"xxGLIBC_2.39"),
            Some(GlibcVersion {
                minor: 39,
                patch: 0
            })
        );
        assert_eq!(
            max_glibc_version(b"GLIBC_2.3.4 GLIBC_2.3"),
            Some(GlibcVersion { minor: 3, patch: 4 })
        );
        assert_eq!(max_glibc_version(b"GLIBC_PRIVATE musl"), None);
        assert_eq!(max_glibc_version(b"GLIBC_2.99999999999"), None);
        assert_eq!(max_glibc_version(b""), None);
        assert_eq!(GlibcVersion { minor: 2, patch: 5 }.to_string(), "2.2.5");
        assert_eq!(AL2023_GLIBC.to_string(), "2.34");
        assert!(
            GlibcVersion {
                minor: 35,
                patch: 0
            } > AL2023_GLIBC
        );
    }

    #[test]
    fn code_sha256_is_base64_of_the_sha256() {
        assert_eq!(
            code_sha256(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(
            code_sha256(b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn the_zip_holds_only_an_executable_bootstrap_with_the_same_bytes() {
        let binary: Vec<u8> = fake_elf(62, true, &b"steno ".repeat(10_000));
        let zip_bytes = bootstrap_zip(&binary).unwrap();
        assert!(zip_bytes.len() < binary.len() / 10, "deflated");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&zip_bytes)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name(), "bootstrap");
        assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
        let mode = entry.unix_mode().unwrap();
        assert_eq!(mode & 0o777, 0o755, "{mode:o}");
        assert_eq!(mode & 0o170000, 0o100000, "a regular file: {mode:o}");
        let mut unpacked = Vec::new();
        entry.read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, binary);
        // Reproducible: the same binary gives the same zip, so the same CodeSha256.
        assert_eq!(bootstrap_zip(&binary).unwrap(), zip_bytes);
    }

    #[test]
    fn packaging_a_prebuilt_binary_writes_the_zip_and_reports_it() {
        let directory = tempfile::tempdir().unwrap();
        let binary = directory.path().join("steno");
        std::fs::write(&binary, fake_elf(183, true, b"\0GLIBC_2.17\0GLIBC_2.28\0")).unwrap();
        let output = directory.path().join("out/lambda/bootstrap.zip");
        let report = package_binary(&binary, &output).unwrap();
        let written = std::fs::read(&output).unwrap();
        assert_eq!(report.zip_bytes, written.len() as u64);
        assert_eq!(report.code_sha256, code_sha256(&written));
        assert_eq!(report.architecture, LambdaArchitecture::Arm64);
        assert_eq!(
            report.glibc,
            Some(GlibcVersion {
                minor: 28,
                patch: 0
            })
        );
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert!(!directory
            .path()
            .join("out/lambda/bootstrap.zip.partial")
            .exists());
        let text = render_report(&report);
        assert!(
            text.starts_with(&format!(
                "packaged steno: {} ({} B, CodeSha256 {})\n",
                output.display(),
                written.len(),
                report.code_sha256
            )),
            "{text}"
        );
        assert!(text.contains("Architectures arm64"), "{text}");
        assert!(text.contains("dynamic, needs glibc 2.28"), "{text}");
        assert!(
            text.contains(&format!("fileb://{}", output.display())),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["architecture"], "arm64");
        assert_eq!(json["glibc"], "2.28");
        assert_eq!(json["code_sha256"], report.code_sha256.as_str());

        // Needing a newer glibc than Amazon Linux 2023's is a warning naming the fix.
        std::fs::write(&binary, fake_elf(62, true, b"\0GLIBC_2.34\0GLIBC_2.39\0")).unwrap();
        let report = package_binary(&binary, &output).unwrap();
        assert_eq!(report.warnings.len(), 1);
        let warning = &report.warnings[0];
        assert!(
            warning.contains("needs glibc 2.39 (GLIBC_2.39)"),
            "{warning}"
        );
        assert!(
            warning.contains("provided.al2023 has glibc 2.34"),
            "{warning}"
        );
        assert!(
            warning.contains("--target x86_64-unknown-linux-musl"),
            "{warning}"
        );
        // A static binary needs no glibc, whatever strings it holds.
        std::fs::write(&binary, fake_elf(62, false, b"GLIBC_2.39")).unwrap();
        let report = package_binary(&binary, &output).unwrap();
        assert_eq!(report.glibc, None);
        assert!(report.warnings.is_empty());
        assert!(render_report(&report).contains("ELF x86_64, static"));
    }

    #[test]
    fn packaging_errors_name_the_file_and_what_to_do() {
        let directory = tempfile::tempdir().unwrap();
        let output = directory.path().join("bootstrap.zip");

        let missing = directory.path().join("no-such-steno");
        let error = package_binary(&missing, &output).unwrap_err();
        assert!(matches!(error, PackageError::BinaryNotFound { .. }));
        assert!(error.to_string().contains("no-such-steno"), "{error}");

        let script = directory.path().join("steno.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let error = package_binary(&script, &output).unwrap_err().to_string();
        assert!(error.contains("steno.sh cannot run on Lambda"), "{error}");
        assert!(error.contains("not an ELF file"), "{error}");

        let binary = directory.path().join("steno");
        std::fs::write(&binary, fake_elf(62, false, b"")).unwrap();
        // The output's "directory" is a file.
        let blocked = script.join("bootstrap.zip");
        let error = package_binary(&binary, &blocked).unwrap_err();
        assert!(matches!(error, PackageError::WriteZip { .. }));
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot write the zip at {}", blocked.display())),
            "{error}"
        );
        assert!(!output.exists());
    }

    #[test]
    fn the_build_runs_cargo_release_for_steno_and_finds_the_binary() {
        assert_eq!(build_arguments(None), ["build", "--release", "-p", "steno"]);
        assert_eq!(
            build_arguments(Some("x86_64-unknown-linux-musl")),
            [
                "build",
                "--release",
                "-p",
                "steno",
                "--target",
                "x86_64-unknown-linux-musl"
            ]
        );
        assert_eq!(
            release_binary_path(Path::new("/w/target"), None),
            Path::new("/w/target/release/steno")
        );
        assert_eq!(
            release_binary_path(Path::new("/w/target"), Some("aarch64-unknown-linux-musl")),
            Path::new("/w/target/aarch64-unknown-linux-musl/release/steno")
        );
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(3 * 1024 + 400), "3.4 KiB");
        assert_eq!(human_size(10_276_044), "9.8 MiB");
    }
}
