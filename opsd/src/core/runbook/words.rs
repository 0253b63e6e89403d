//! The words of a runbook's `opsd` step and its `{placeholders}`: a command line is split like a
//! shell would split it (spaces separate words; single quotes keep everything; double quotes keep
//! everything but `\"` and `\\`), with no expansion of any kind, and each `{name}` inside a word is
//! replaced by a parameter's value afterwards, so a value with spaces or quotes stays one word.

use std::collections::BTreeMap;

/// Splits `line` into words. Errors name what is wrong (an unterminated quote).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a single quote (') is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a double quote (\") is not closed".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a double quote (\") is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("the line ends with a lone backslash".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The names of the `{name}` placeholders in `text`, in order (a name is letters, digits and
/// `_`, starting with a letter; other braces are left alone).
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_name(&after[..close]) => {
                names.push(after[..close].to_string());
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    names
}

/// `text` with every `{name}` replaced by `quote(value)`. A placeholder without a value is an
/// error naming it (runbooks are checked beforehand, so this is a last line of defence).
pub fn substitute(
    text: &str,
    values: &BTreeMap<String, String>,
    quote: fn(&str) -> String,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_name(&after[..close]) => {
                let name = &after[..close];
                let value = values
                    .get(name)
                    .ok_or_else(|| format!("the parameter {{{name}}} has no value"))?;
                out.push_str(&quote(value));
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A value as it is: for words already split, and for URLs.
pub fn verbatim(value: &str) -> String {
    value.to_string()
}

/// A value as one single-quoted shell word, for `sh` steps.
pub fn shell_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Whether `text` is a parameter name.
pub fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && text.len() <= 40
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell_without_expansion() {
        assert_eq!(
            split_words(r#"rollback {service} --reason "bad release: p99 \"high\"" 'a b' c\ d"#)
                .unwrap(),
            vec![
                "rollback",
                "{service}",
                "--reason",
                r#"bad release: p99 "high""#,
                "a b",
                "c d"
            ]
        );
        assert_eq!(split_words("  status   ").unwrap(), vec!["status"]);
        assert_eq!(split_words(r#"a "" b"#).unwrap(), vec!["a", "", "b"]);
        assert!(split_words("a 'b").unwrap_err().contains("single quote"));
        assert!(split_words("a \"b").unwrap_err().contains("double quote"));
        assert!(split_words("a \\").unwrap_err().contains("backslash"));
    }

    #[test]
    fn placeholders_are_lowercase_names_in_braces() {
        assert_eq!(
            placeholders("{service}-{version} {} {Not} {a b} {x_1}"),
            vec!["service", "version", "x_1"]
        );
    }

    #[test]
    fn substitution_keeps_a_value_one_word_and_quotes_it_for_the_shell() {
        let values = BTreeMap::from([
            ("service".to_string(), "steno".to_string()),
            ("reason".to_string(), "it's; rm -rf /".to_string()),
        ]);
        assert_eq!(
            substitute("{service} {reason} {}", &values, verbatim).unwrap(),
            "steno it's; rm -rf / {}"
        );
        assert_eq!(
            substitute("echo {reason}", &values, shell_quoted).unwrap(),
            r"echo 'it'\''s; rm -rf /'"
        );
        assert!(substitute("{missing}", &values, verbatim)
            .unwrap_err()
            .contains("{missing}"));
    }
}
