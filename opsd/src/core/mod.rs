//! The pure decision core: traffic samples, rollout plans, alarm rules, canary analysis, the
//! rollout state machine, DR drill verdicts with their schedules, and cost budgets, forecasts
//! and anomalies.
//! invariant: nothing here awaits, reads a clock, or does I/O.
pub mod alarms;
pub mod analysis;
pub mod config_error;
pub mod cost;
pub mod drill;
pub mod duration;
pub mod event;
pub mod gate;
pub mod plan;
pub mod release;
pub mod release_env;
pub mod retry;
pub mod rollout;
pub mod schedule;
pub mod severity;
pub mod traffic;

#[cfg(test)]
mod purity_tests {
    //! The invariant above, checked on the source: the non-test code of every file under
    //! `core/` names no I/O, clock, runtime or outer layer.

    use std::path::{Path, PathBuf};

    /// What pure code never names: file, network and process I/O, clocks, the async runtime, and
    /// the layers that sit on top of the core.
    const FORBIDDEN: &[&str] = &[
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
        "crate::daemon",
        "crate::control",
        "crate::notify",
    ];

    fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("core directory is readable") {
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

    #[test]
    fn the_core_does_no_io_and_imports_no_outer_layer() {
        let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core");
        let mut files = Vec::new();
        rust_files(&core, &mut files);
        assert!(files.len() > 10, "found only {files:?}");
        let mut violations = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).expect("source is readable");
            for (line_number, code) in code_lines(&text) {
                for forbidden in FORBIDDEN {
                    if code.contains(forbidden) {
                        violations.push(format!("{}:{line_number}: {forbidden}", file.display()));
                    }
                }
            }
        }
        assert!(violations.is_empty(), "impure core: {violations:#?}");
    }

    #[test]
    fn the_check_finds_what_it_forbids() {
        let text = "use std::fs;\n// tokio in a comment is fine\nlet now = Utc::now();\n#[cfg(test)]\nuse tokio;\n";
        let found: Vec<(usize, &str)> = code_lines(text)
            .filter(|(_, code)| FORBIDDEN.iter().any(|forbidden| code.contains(forbidden)))
            .collect();
        assert_eq!(
            found.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }
}
