//! The layering rules of ARCHITECTURE.md, checked on the source: the core is pure, config
//! imports no platform code, and only the AWS platform and the SNS sender name an AWS SDK crate.

use std::path::{Path, PathBuf};

/// What pure code never names: file, network and process I/O, clocks, the async runtime, and
/// the layers that sit on top of the core.
const FORBIDDEN_IN_CORE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "tokio",
    "reqwest",
    "async fn",
    ".await",
    "SystemTime",
    "Instant::now",
    "Utc::now",
    "Local::now",
    "crate::platform",
    "crate::config",
    "crate::store",
    "crate::control",
    "crate::notify",
];

/// The AWS SDK's crates.
const AWS_SDK: &[&str] = &["aws_sdk_", "aws_config", "aws_smithy", "aws_types"];

/// Files outside `platform/aws/` that may name an AWS SDK crate: the SNS sender and the notifier
/// that hands it the shared SDK configuration, and the packager's base64 of the zip's hash.
const SDK_OUTSIDE_AWS_PLATFORM: &[&str] = &["notify/sns.rs", "notify/notifier.rs", "package.rs"];

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source directory is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// The lines of `text` before its test module, without comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .map(|(index, line)| (index + 1, line.split("//").next().unwrap_or_default()))
}

/// `file:line: word` for every non-test code line under `dir` naming one of `words`, in files
/// `allowed` does not accept.
fn violations(dir: &Path, words: &[&str], allowed: impl Fn(&str) -> bool) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    assert!(!files.is_empty(), "no source under {}", dir.display());
    let mut found = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(source_dir())
            .unwrap_or(file)
            .display()
            .to_string();
        if allowed(&relative) {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("source is readable");
        for (line_number, code) in code_lines(&text) {
            for word in words {
                if code.contains(word) {
                    found.push(format!("{relative}:{line_number}: {word}"));
                }
            }
        }
    }
    found
}

#[test]
fn the_core_does_no_io_and_imports_no_outer_layer() {
    let found = violations(&source_dir().join("core"), FORBIDDEN_IN_CORE, |_| false);
    assert!(found.is_empty(), "impure core: {found:#?}");
}

#[test]
fn config_imports_no_platform_code() {
    let found = violations(
        &source_dir().join("config"),
        &["crate::platform", "platform::"],
        |_| false,
    );
    assert!(found.is_empty(), "config imports the platform: {found:#?}");
}

#[test]
fn only_the_aws_platform_and_the_sns_sender_name_the_aws_sdk() {
    let found = violations(&source_dir(), AWS_SDK, |file| {
        file.starts_with("platform/aws/")
            || SDK_OUTSIDE_AWS_PLATFORM.contains(&file)
            || file == "layering_tests.rs"
            // The IAM policy test reads opsd's SDK calls, so it names the SDK's crates.
            || file.starts_with("iam_policy_tests")
    });
    assert!(
        found.is_empty(),
        "the AWS SDK outside its places: {found:#?}"
    );
}

#[test]
fn the_check_finds_what_it_forbids() {
    let text = "use std::fs;\n// tokio in a comment is fine\nlet now = Utc::now();\n#[cfg(test)]\nuse tokio;\n";
    let found: Vec<usize> = code_lines(text)
        .filter(|(_, code)| FORBIDDEN_IN_CORE.iter().any(|word| code.contains(word)))
        .map(|(line, _)| line)
        .collect();
    assert_eq!(found, vec![1, 3]);
}
