//! `opsd logs SERVICE [--version V] [--lines N]`: the last lines a release on the local platform
//! wrote, read from `<data_dir>/logs/<service>-<version>.log` on this machine (the release's
//! stdout and stderr). Only the file's end is read, so a large log costs no more than a small one.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use opsd::config::Config;

/// The most lines printed.
const MAX_LINES: usize = 1000;
/// The most bytes read from a log's end.
const TAIL_BYTES: u64 = 512 * 1024;

/// Prints the last `lines` lines of the release's log; exit code 0.
pub fn run(
    config: &Config,
    service: &str,
    version: Option<&str>,
    lines: usize,
) -> anyhow::Result<u8> {
    let service_config = config
        .service_named(service)
        .map_err(|error| anyhow!(error))?;
    if let Some(aws) = &service_config.aws {
        bail!(
            "{service} runs on AWS; its releases log to CloudWatch Logs (/aws/lambda/{})",
            aws.function_name
        );
    }
    if lines == 0 || lines > MAX_LINES {
        bail!("--lines {lines}: give 1 to {MAX_LINES}");
    }
    let dir = config.data_dir.join("logs");
    let path = match version {
        Some(version) => {
            if version.is_empty() || version.contains(['/', '\\']) || version.starts_with('.') {
                bail!("--version {version:?} is not a version label");
            }
            dir.join(format!("{service}-{version}.log"))
        }
        None => newest_log(&dir, service)?,
    };
    let tail =
        last_lines(&path, lines).with_context(|| format!("cannot read {}", path.display()))?;
    println!("==> {} (last {} line(s))", path.display(), tail.len());
    for line in tail {
        println!("{line}");
    }
    Ok(0)
}

/// The log of `service` written last.
fn newest_log(dir: &Path, service: &str) -> anyhow::Result<PathBuf> {
    let prefix = format!("{service}-");
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "{} cannot be read; has `opsd up` started {service} on this machine?",
            dir.display()
        )
    })?;
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !(name.starts_with(&prefix) && name.ends_with(".log")) {
            continue;
        }
        let modified = entry.metadata().and_then(|meta| meta.modified())?;
        if newest.as_ref().is_none_or(|(time, _)| modified > *time) {
            newest = Some((modified, entry.path()));
        }
    }
    newest
        .map(|(_, path)| path)
        .ok_or_else(|| anyhow!("no release of {service} has a log in {}", dir.display()))
}

/// The last `count` lines of the file, reading at most [`TAIL_BYTES`] of its end.
fn last_lines(path: &Path, count: usize) -> std::io::Result<Vec<String>> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let start = size.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let from = lines.len().saturating_sub(count);
    Ok(lines[from..]
        .iter()
        .map(|line| {
            line.chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_end_of_a_log_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steno-v1.log");
        let text: String = (0..100_000).map(|n| format!("line {n}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = last_lines(&path, 3).unwrap();
        assert_eq!(tail, vec!["line 99997", "line 99998", "line 99999"]);
        std::fs::write(dir.path().join("steno-v2.log"), "a\n\u{1b}[31mb\n").unwrap();
        assert_eq!(
            newest_log(dir.path(), "steno")
                .unwrap()
                .file_name()
                .unwrap(),
            "steno-v2.log"
        );
        assert_eq!(
            last_lines(&dir.path().join("steno-v2.log"), 10).unwrap(),
            vec!["a", "[31mb"]
        );
        assert!(newest_log(dir.path(), "other").is_err());
    }
}
