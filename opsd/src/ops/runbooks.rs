//! Where runbooks come from: a directory of Markdown files (`--dir`, else `runbooks/` beside
//! opsd.yaml), or, when there is none, the runbooks built into opsd, so `opsd runbook list`
//! works on any machine opsd runs on. A runbook's name is its file's stem; `README.md` is the
//! directory's own documentation, not a runbook.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};

/// The runbooks of the repository, built into the binary.
const EMBEDDED: [(&str, &str); 8] = [
    (
        "high-api-latency",
        include_str!("../../../runbooks/high-api-latency.md"),
    ),
    (
        "database-errors",
        include_str!("../../../runbooks/database-errors.md"),
    ),
    (
        "authentication-failures",
        include_str!("../../../runbooks/authentication-failures.md"),
    ),
    ("deploy", include_str!("../../../runbooks/deploy.md")),
    ("rollback", include_str!("../../../runbooks/rollback.md")),
    (
        "restore-database",
        include_str!("../../../runbooks/restore-database.md"),
    ),
    (
        "disaster-recovery",
        include_str!("../../../runbooks/disaster-recovery.md"),
    ),
    (
        "incident-response",
        include_str!("../../../runbooks/incident-response.md"),
    ),
];

/// The largest runbook file read, in bytes.
const MAX_RUNBOOK_BYTES: u64 = 256 * 1024;

/// One runbook's text and where it came from.
#[derive(Debug, Clone)]
pub struct RunbookFile {
    pub name: String,
    /// The file's path, or `built-in` for an embedded runbook.
    pub origin: String,
    pub text: String,
}

/// Every runbook of `dir` when given (it must exist), else of `default_dir` when it exists,
/// else the built-in ones; sorted by name.
pub fn runbook_files(dir: Option<&Path>, default_dir: &Path) -> anyhow::Result<Vec<RunbookFile>> {
    let chosen: Option<PathBuf> = match dir {
        Some(dir) if !dir.is_dir() => bail!("{} is not a directory of runbooks", dir.display()),
        Some(dir) => Some(dir.to_path_buf()),
        None if default_dir.is_dir() => Some(default_dir.to_path_buf()),
        None => None,
    };
    let Some(dir) = chosen else {
        let mut files: Vec<RunbookFile> = EMBEDDED
            .iter()
            .map(|(name, text)| RunbookFile {
                name: name.to_string(),
                origin: format!("built-in {name}.md"),
                text: text.to_string(),
            })
            .collect();
        files.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(files);
    };
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let Some(name) = runbook_name(&path) else {
            continue;
        };
        let size = std::fs::metadata(&path)?.len();
        if size > MAX_RUNBOOK_BYTES {
            bail!(
                "{} has {size} bytes; a runbook has at most {MAX_RUNBOOK_BYTES}",
                path.display()
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))?;
        files.push(RunbookFile {
            name,
            origin: path.display().to_string(),
            text,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The runbook named `name` among `files`; the error lists the names there are.
pub fn find<'a>(files: &'a [RunbookFile], name: &str) -> anyhow::Result<&'a RunbookFile> {
    files.iter().find(|file| file.name == name).ok_or_else(|| {
        anyhow!(
            "there is no runbook {name:?}; the runbooks are: {}",
            files
                .iter()
                .map(|file| file.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// The name of a runbook file: the stem of a `*.md` file other than README.md, made of
/// lowercase letters, digits, `-` and `_`.
fn runbook_name(path: &Path) -> Option<String> {
    if path.extension()? != "md" || !path.is_file() {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    let plain = !stem.is_empty()
        && stem
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    (plain && stem != "readme").then(|| stem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::runbook::parse;

    #[test]
    fn every_built_in_runbook_parses() {
        for (name, text) in EMBEDDED {
            if let Err(problems) = parse(name, text) {
                panic!("{name}: {problems:?}");
            }
        }
    }

    #[test]
    fn the_built_in_runbooks_are_exactly_the_repository_ones() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runbooks");
        let on_disk: Vec<String> = runbook_files(Some(&dir), &dir)
            .unwrap()
            .into_iter()
            .map(|file| file.name)
            .collect();
        let built_in: Vec<String> = runbook_files(None, &dir.join("missing"))
            .unwrap()
            .into_iter()
            .map(|file| file.name)
            .collect();
        assert_eq!(built_in, on_disk, "add a new runbook to EMBEDDED too");
    }

    #[test]
    fn a_directory_lists_its_markdown_runbooks_and_the_default_falls_back_to_the_built_in_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.md"), "# B").unwrap();
        std::fs::write(dir.path().join("a.md"), "# A").unwrap();
        std::fs::write(dir.path().join("README.md"), "# docs").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        std::fs::write(dir.path().join("Bad Name.md"), "x").unwrap();
        let files = runbook_files(Some(dir.path()), Path::new("/nonexistent")).unwrap();
        let names: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b"]);
        assert!(find(&files, "c").unwrap_err().to_string().contains("a, b"));

        let missing = dir.path().join("missing");
        assert!(runbook_files(Some(&missing), Path::new(".")).is_err());
        let built_in = runbook_files(None, &missing).unwrap();
        assert_eq!(built_in.len(), EMBEDDED.len());
        assert!(built_in[0].origin.starts_with("built-in"));
    }
}
