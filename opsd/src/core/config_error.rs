//! Configuration errors that name the file, line, column and field at fault, and the helpers that
//! find those lines in YAML text.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A configuration file that cannot be used, and where it is wrong.
///
/// Displayed as `file:line:column: field: message`; parts that are unknown are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field at fault as a path, like `steps[1].weight`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(formatter, ":{line}")?;
            if let Some(column) = self.column {
                write!(formatter, ":{column}")?;
            }
        }
        formatter.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(formatter, "{field}: ")?;
        }
        formatter.write_str(&self.message)
    }
}

impl ConfigError {
    /// An error about the file as a whole.
    pub fn new(file: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }

    /// The same error, about `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> ConfigError {
        self.field = Some(field.into());
        self
    }

    /// The same error, at a place in the file.
    pub fn at(mut self, location: Option<TextLocation>) -> ConfigError {
        if let Some(location) = location {
            self.line = Some(location.line);
            self.column = Some(location.column);
        }
        self
    }

    /// Translates a serde_yaml error on `text`: its location, the field path it names, and its
    /// message in a user's words (no Rust type names, no second copy of the position). A
    /// duplicate key is placed on its second occurrence rather than on its mapping's start.
    pub fn from_yaml(file: &str, text: &str, error: &serde_yaml::Error) -> ConfigError {
        let location = error.location().map(|location| TextLocation {
            line: location.line(),
            column: location.column(),
        });
        let mut written = error.to_string();
        if let Some(location) = &location {
            let suffix = format!(" at line {} column {}", location.line, location.column);
            if let Some(start) = written.find(&suffix) {
                written.replace_range(start..start + suffix.len(), "");
            }
        }
        let (path, message) = split_field_path(&written);
        let field = match (path, named_field(message)) {
            (Some(path), Some(name)) => Some(format!("{path}.{name}")),
            (None, Some(name)) => Some(name.to_string()),
            (Some(path), None) => Some(path.to_string()),
            (None, None) => None,
        };
        let location = match (location, duplicate_key(message)) {
            (Some(mapping), Some(key)) => {
                Some(duplicate_key_location(text, mapping, key).unwrap_or(mapping))
            }
            (location, _) => location,
        };
        ConfigError {
            file: file.to_string(),
            line: location.map(|location| location.line),
            column: location.map(|location| location.column),
            field,
            message: in_user_words(&shortened_quotes(message)),
        }
    }
}

/// The longest quoted value an error repeats from the file; longer ones are cut with `...`, so
/// an error never prints a whole file that is not YAML of the expected shape.
const QUOTED_VALUE_LIMIT: usize = 60;

/// `message` with every double-quoted value longer than [`QUOTED_VALUE_LIMIT`] characters cut.
fn shortened_quotes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1000));
    let mut parts = message.split('"');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (index, part) in parts.enumerate() {
        out.push('"');
        let quoted = index % 2 == 0;
        if quoted && part.chars().count() > QUOTED_VALUE_LIMIT {
            out.extend(part.chars().take(QUOTED_VALUE_LIMIT));
            out.push_str("...");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// serde's words for Rust types, rewritten for someone who writes YAML: `expected struct
/// RawConfig` becomes `expected a mapping`, `expected u16` a range of whole numbers.
fn in_user_words(message: &str) -> String {
    if message.starts_with("data did not match any variant of untagged enum") {
        return "is not in any of the accepted forms".to_string();
    }
    let message = message
        .replace("expected a map", "expected a mapping")
        .replace("expected a sequence", "expected a list")
        .replace("invalid type: map,", "invalid type: mapping,")
        .replace("invalid type: sequence,", "invalid type: list,");
    let words: Vec<&str> = message.split(' ').collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut index = 0;
    while index < words.len() {
        let word = words[index];
        if index == 0 || words[index - 1] != "expected" {
            out.push(word.to_string());
            index += 1;
            continue;
        }
        // `struct Name` and `enum Name` are two words; the name may end the clause with a comma.
        let (replacement, consumed) = match word.trim_end_matches(',') {
            "struct" => ("a mapping", 2),
            "enum" => ("one of the accepted names", 2),
            "u8" => ("a whole number from 0 to 255", 1),
            "u16" => ("a whole number from 0 to 65535", 1),
            "u32" => ("a whole number from 0 to 4294967295", 1),
            "u64" | "usize" => ("a whole number, 0 or more", 1),
            "i8" | "i16" | "i32" | "i64" | "isize" => ("a whole number", 1),
            "f32" | "f64" => ("a number", 1),
            _ => {
                out.push(word.to_string());
                index += 1;
                continue;
            }
        };
        let last = words.get(index + consumed - 1).copied().unwrap_or(word);
        let comma = if last.ends_with(',') { "," } else { "" };
        out.push(format!("{replacement}{comma}"));
        index += consumed;
    }
    out.join(" ")
}

/// The key a "duplicate field" message is about.
fn duplicate_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("duplicate field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Where the second `key:` of the mapping that starts at `mapping` is written: in a block
/// mapping, among the keys at the mapping's indentation; in a flow mapping (`{...}`), on its line.
fn duplicate_key_location(text: &str, mapping: TextLocation, key: &str) -> Option<TextLocation> {
    let lines: Vec<&str> = text.lines().collect();
    let first_line = lines.get(mapping.line.checked_sub(1)?)?;
    let indent = mapping.column.checked_sub(1)?;
    let first_content = first_line.get(indent..)?;
    if first_content.starts_with('{') {
        let mut found = 0;
        for (offset, _) in first_content.match_indices(key) {
            let before = first_content[..offset].trim_end().chars().last();
            let after = first_content[offset + key.len()..].trim_start();
            if matches!(before, Some('{') | Some(',')) && after.starts_with(':') {
                found += 1;
                if found == 2 {
                    return Some(TextLocation {
                        line: mapping.line,
                        column: mapping.column + offset,
                    });
                }
            }
        }
        return None;
    }
    let mut found = 0;
    for (index, line) in lines.iter().enumerate().skip(mapping.line - 1) {
        let content = if index + 1 == mapping.line {
            first_content
        } else {
            let content = line.trim_start();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let line_indent = line.len() - content.len();
            if line_indent < indent {
                break;
            }
            if line_indent > indent {
                continue;
            }
            content
        };
        let unquoted = content
            .strip_prefix(key)
            .or_else(|| content.strip_prefix(&format!("\"{key}\"")))
            .or_else(|| content.strip_prefix(&format!("'{key}'")));
        if unquoted.is_some_and(|rest| rest.trim_start().starts_with(':')) {
            found += 1;
            if found == 2 {
                return Some(TextLocation {
                    line: index + 1,
                    column: indent + 1,
                });
            }
        }
    }
    None
}

/// serde_yaml writes `path.to[0].field: message`; the path has no spaces, messages do.
fn split_field_path(text: &str) -> (Option<&str>, &str) {
    if let Some((head, tail)) = text.split_once(": ") {
        let looks_like_path = !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']'));
        if looks_like_path {
            return (Some(head), tail);
        }
    }
    (None, text)
}

/// The key an "unknown field", "missing field" or "duplicate field" message is about.
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))
        .or_else(|| message.strip_prefix("duplicate field `"))?;
    rest.split_once('`').map(|(name, _)| name)
}

/// A 1-based line and column in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLocation {
    pub line: usize,
    pub column: usize,
}

/// Where the entries of the block sequence under the top-level key `key` start in YAML `text`,
/// one location per `- ` entry, in order. Empty when the list is written another way (flow style);
/// callers then fall back to the key's own line from [`top_level_key_location`].
pub fn list_entry_locations(text: &str, key: &str) -> Vec<TextLocation> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(key_line) = lines.iter().position(|line| is_top_level_key(line, key)) else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    let mut entry_indent: Option<usize> = None;
    for (index, line) in lines.iter().enumerate().skip(key_line + 1) {
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        let is_entry = content == "-" || content.starts_with("- ");
        match entry_indent {
            None if is_entry => entry_indent = Some(indent),
            None => break,
            Some(expected) if is_entry && indent == expected => {}
            Some(expected) if indent > expected => continue,
            Some(_) => break,
        }
        entries.push(TextLocation {
            line: index + 1,
            column: indent + 1,
        });
    }
    entries
}

/// The location of the top-level `key:` in YAML `text`.
pub fn top_level_key_location(text: &str, key: &str) -> Option<TextLocation> {
    text.lines()
        .position(|line| is_top_level_key(line, key))
        .map(|index| TextLocation {
            line: index + 1,
            column: 1,
        })
}

fn is_top_level_key(line: &str, key: &str) -> bool {
    line.strip_prefix(key)
        .map(|rest| rest.trim_start().starts_with(':'))
        .unwrap_or(false)
}

/// Where `field:` is written inside the list entry that starts at `entry` (up to the next entry at
/// `next_entry`, or the end). Falls back to the entry itself.
pub fn field_location_in_entry(
    text: &str,
    entry: TextLocation,
    next_entry: Option<TextLocation>,
    field: &str,
) -> TextLocation {
    let last_line = next_entry.map(|next| next.line - 1).unwrap_or(usize::MAX);
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if number < entry.line || number > last_line {
            continue;
        }
        let content = if number == entry.line {
            line.get(entry.column - 1..)
                .and_then(|rest| rest.strip_prefix('-'))
                .unwrap_or("")
        } else {
            line
        };
        let key_start = content.len() - content.trim_start().len();
        let after_key = &content[key_start..];
        if after_key
            .strip_prefix(field)
            .is_some_and(|rest| rest.trim_start().starts_with(':'))
        {
            return TextLocation {
                line: number,
                column: line.len() - after_key.len() + 1,
            };
        }
    }
    entry
}

/// The location of `field` in the `index`-th entry of the top-level list `list_key`, for errors
/// found after parsing; `None` only when the list cannot be found in the text at all.
pub fn locate_list_field(
    text: &str,
    list_key: &str,
    index: usize,
    field: Option<&str>,
) -> Option<TextLocation> {
    let entries = list_entry_locations(text, list_key);
    match entries.get(index) {
        Some(entry) => Some(match field {
            Some(field) => {
                field_location_in_entry(text, *entry, entries.get(index + 1).copied(), field)
            }
            None => *entry,
        }),
        None => top_level_key_location(text, list_key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name: demo\n# a comment\nsteps:\n  - weight: 10\n    bake: 20s\n\n  - bake: 30s\n    weight: 5\n  -   weight: 100\nother: 1\n";

    #[test]
    fn displays_every_known_part() {
        let full = ConfigError::new("plan.yaml", "must be 1..=100")
            .with_field("steps[0].weight")
            .at(Some(TextLocation {
                line: 4,
                column: 13,
            }));
        assert_eq!(
            full.to_string(),
            "plan.yaml:4:13: steps[0].weight: must be 1..=100"
        );
        assert_eq!(
            ConfigError::new("a.yaml", "empty").to_string(),
            "a.yaml: empty"
        );
    }

    #[test]
    fn finds_list_entries_and_their_fields() {
        let entries = list_entry_locations(TEXT, "steps");
        let lines: Vec<usize> = entries.iter().map(|entry| entry.line).collect();
        assert_eq!(lines, vec![4, 7, 9]);
        assert_eq!(
            locate_list_field(TEXT, "steps", 0, Some("weight")),
            Some(TextLocation { line: 4, column: 5 })
        );
        assert_eq!(
            locate_list_field(TEXT, "steps", 1, Some("weight")),
            Some(TextLocation { line: 8, column: 5 })
        );
        assert_eq!(
            locate_list_field(TEXT, "steps", 2, Some("weight")),
            Some(TextLocation { line: 9, column: 7 })
        );
        assert_eq!(
            locate_list_field(TEXT, "steps", 7, Some("weight")),
            Some(TextLocation { line: 3, column: 1 })
        );
        assert_eq!(locate_list_field(TEXT, "alarms", 0, None), None);
    }

    #[test]
    fn reads_serde_yaml_errors() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            weight: u8,
        }
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Outer {
            steps: Vec<Inner>,
        }
        let unknown =
            serde_yaml::from_str::<Outer>("steps:\n  - weight: 1\n  - wieght: 2\n").unwrap_err();
        let error = ConfigError::from_yaml("p.yaml", "", &unknown);
        assert_eq!(error.line, Some(3));
        assert_eq!(error.field.as_deref(), Some("steps[1].wieght"));
        assert!(
            error.message.starts_with("unknown field `wieght`"),
            "{error}"
        );
        assert!(!error.message.contains("line"), "{error}");

        let too_big = serde_yaml::from_str::<Outer>("steps:\n  - weight: 300\n").unwrap_err();
        let error = ConfigError::from_yaml("p.yaml", "", &too_big);
        assert_eq!(error.line, Some(2));
        assert_eq!(error.field.as_deref(), Some("steps[0].weight"));

        let syntax = serde_yaml::from_str::<Outer>("steps: [\n").unwrap_err();
        let error = ConfigError::from_yaml("p.yaml", "", &syntax);
        assert!(error.line.is_some(), "{error}");
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct RawEntry {
        name: String,
        #[serde(default)]
        port: Option<u16>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct RawDocument {
        #[serde(default)]
        listen: Option<String>,
        #[serde(default)]
        entries: Vec<RawEntry>,
    }

    fn error_in(text: &str) -> ConfigError {
        let error = serde_yaml::from_str::<RawDocument>(text).unwrap_err();
        ConfigError::from_yaml("opsd.yaml", text, &error)
    }

    #[test]
    fn long_values_are_not_repeated_whole() {
        let long = "x".repeat(5000);
        let error = error_in(&format!("\"{long}\"\n"));
        let shown = error.to_string();
        assert!(shown.len() < 300, "{shown}");
        assert!(
            shown.contains(&format!("\"{}...\"", "x".repeat(60))),
            "{shown}"
        );
        assert_eq!(shortened_quotes("a \"short\" value"), "a \"short\" value");
    }

    #[test]
    fn a_duplicate_key_is_placed_on_its_second_occurrence() {
        let top = error_in("# settings\nlisten: a\nentries: []\nlisten: b\n");
        assert_eq!((top.line, top.column), (Some(4), Some(1)), "{top}");
        assert_eq!(top.field.as_deref(), Some("listen"));
        assert_eq!(
            top.to_string(),
            "opsd.yaml:4:1: listen: duplicate field `listen`"
        );

        let nested =
            error_in("entries:\n  - name: a\n    port: 1\n  - name: b\n    port: 2\n    name: c\n");
        assert_eq!((nested.line, nested.column), (Some(6), Some(5)), "{nested}");
        assert_eq!(nested.field.as_deref(), Some("entries[1].name"));

        let flow = error_in("entries: [{name: a, port: 1, name: b}]\n");
        assert_eq!((flow.line, flow.column), (Some(1), Some(30)), "{flow}");
    }

    #[test]
    fn messages_name_no_rust_types_and_give_the_position_once() {
        let cases = [
            ("- a\n", "invalid type: list, expected a mapping"),
            (
                "entries: [{name: a, port: 70000}]\n",
                "expected a whole number from 0 to 65535",
            ),
            (
                "entries: {name: a}\n",
                "invalid type: mapping, expected a list",
            ),
            (
                "entries: [5]\n",
                "invalid type: integer `5`, expected a mapping",
            ),
        ];
        for (text, words) in cases {
            let error = error_in(text);
            let shown = error.to_string();
            assert!(shown.contains(words), "{text:?}: {shown}");
            for internal in ["Raw", "struct", "u16", " at line ", "column"] {
                assert!(!shown.contains(internal), "{text:?}: {shown}");
            }
        }
        assert_eq!(
            in_user_words("invalid type: string \"x\", expected enum Severity"),
            "invalid type: string \"x\", expected one of the accepted names"
        );
        assert_eq!(
            in_user_words("data did not match any variant of untagged enum RawScope"),
            "is not in any of the accepted forms"
        );
    }
}
