//! What of a Rust file is compiled outside tests, for the IAM policy test: items under
//! `#[cfg(test)]` or `#[test]` are dropped, and `mod name;` declarations are followed from the
//! crate roots, so a file only tests declare is never read.

use std::path::{Path, PathBuf};

use super::rust_tokens::{lex, Kind, Token};

/// The index just past the bracket matching the opening one at `open` (`(`, `[` or `{`).
pub(super) fn after_matching(tokens: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (index, token) in tokens.iter().enumerate().skip(open) {
        if token.kind != Kind::Punct {
            continue;
        }
        match token.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return index + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// Whether the attribute whose tokens (between `#[` and `]`) are `inner` makes an item test-only:
/// `#[test]`, `#[tokio::test(...)]`, or a `cfg` naming `test` outside a `not(...)`.
fn is_test_attribute(inner: &[Token]) -> bool {
    let path: Vec<&str> = inner
        .iter()
        .take_while(|token| token.is_ident() || token.is("::"))
        .filter(|token| token.is_ident())
        .map(|token| token.text.as_str())
        .collect();
    match path.as_slice() {
        ["cfg"] => {
            inner.iter().any(|token| token.is("test")) && !inner.iter().any(|token| token.is("not"))
        }
        [.., "test"] => true,
        _ => false,
    }
}

/// The index just past the item starting at `start` (after its attributes): its `;` or the
/// block that closes it.
fn after_item(tokens: &[Token], start: usize) -> usize {
    let mut index = start;
    while index < tokens.len() {
        let token = &tokens[index];
        if token.is(";") {
            return index + 1;
        }
        if token.is("{") {
            return after_matching(tokens, index);
        }
        if token.is("(") || token.is("[") {
            index = after_matching(tokens, index);
        } else {
            index += 1;
        }
    }
    tokens.len()
}

/// The tokens compiled outside tests: every item marked test-only is left out (an inner
/// `#![cfg(test)]` leaves out the whole file).
pub(super) fn strip_test_items(tokens: &[Token]) -> Vec<Token> {
    let mut kept = Vec::with_capacity(tokens.len());
    let mut index = 0;
    while index < tokens.len() {
        let inner_attribute = tokens[index].is("#")
            && tokens.get(index + 1).is_some_and(|t| t.is("!"))
            && tokens.get(index + 2).is_some_and(|t| t.is("["));
        let outer_attribute =
            tokens[index].is("#") && tokens.get(index + 1).is_some_and(|t| t.is("["));
        if inner_attribute || outer_attribute {
            let open = if inner_attribute {
                index + 2
            } else {
                index + 1
            };
            let end = after_matching(tokens, open);
            let inner = &tokens[(open + 1).min(end)..end.saturating_sub(1).max(open + 1)];
            if is_test_attribute(inner) {
                if inner_attribute {
                    return Vec::new();
                }
                // Further attributes belong to the same item.
                let mut item = end;
                while tokens.get(item).is_some_and(|t| t.is("#"))
                    && tokens.get(item + 1).is_some_and(|t| t.is("["))
                {
                    item = after_matching(tokens, item + 1);
                }
                index = after_item(tokens, item);
                continue;
            }
            kept.extend_from_slice(&tokens[index..end]);
            index = end;
            continue;
        }
        kept.push(tokens[index].clone());
        index += 1;
    }
    kept
}

/// The modules `tokens` declare in other files (`mod name;`).
pub(super) fn declared_modules(tokens: &[Token]) -> Vec<String> {
    tokens
        .windows(3)
        .filter(|w| w[0].is("mod") && w[1].is_ident() && w[2].is(";"))
        .map(|w| w[1].text.clone())
        .collect()
}

/// The file of module `name` declared in `parent`.
fn module_file(parent: &Path, name: &str) -> PathBuf {
    let directory = match parent.file_name().and_then(|f| f.to_str()) {
        Some("lib.rs" | "main.rs" | "mod.rs") => parent.parent().map(Path::to_path_buf),
        _ => parent.with_extension("").into(),
    }
    .unwrap_or_default();
    let flat = directory.join(format!("{name}.rs"));
    if flat.exists() {
        flat
    } else {
        directory.join(name).join("mod.rs")
    }
}

/// Every source file compiled outside tests, reached from the crate `roots` (lib.rs, main.rs)
/// through `mod` declarations that are not test-only, with its test-free tokens.
pub(super) fn compiled_sources(roots: &[PathBuf]) -> Vec<(PathBuf, Vec<Token>)> {
    let mut pending: Vec<PathBuf> = roots.to_vec();
    let mut done: Vec<(PathBuf, Vec<Token>)> = Vec::new();
    while let Some(file) = pending.pop() {
        if done.iter().any(|(seen, _)| *seen == file) {
            continue;
        }
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("reading {}: {error}", file.display()));
        let tokens = strip_test_items(&lex(&source));
        for name in declared_modules(&tokens) {
            let child = module_file(&file, &name);
            assert!(
                child.exists(),
                "{} declares `mod {name};` but neither {name}.rs nor {name}/mod.rs exists beside it",
                file.display()
            );
            pending.push(child);
        }
        done.push((file, tokens));
    }
    done.sort_by(|a, b| a.0.cmp(&b.0));
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(tokens: &[Token]) -> Vec<&str> {
        tokens
            .iter()
            .filter(|t| t.is_ident())
            .map(|t| t.text.as_str())
            .collect()
    }

    #[test]
    fn test_only_items_are_dropped_and_the_rest_kept() {
        let source = r#"
            mod kept;
            #[cfg(test)]
            mod tests_file;
            #[cfg(test)]
            #[allow(dead_code)]
            mod inline { fn gone() {} }
            #[cfg(not(test))]
            fn stays() {}
            #[tokio::test(flavor = "multi_thread")]
            async fn gone_too() { let a = [1; 3]; }
            #[cfg(test)]
            const GONE: [u8; 2] = [1, 2];
            fn last() {}
        "#;
        let kept = strip_test_items(&lex(source));
        assert_eq!(declared_modules(&kept), vec!["kept".to_string()]);
        let names = idents(&kept);
        assert!(
            names.contains(&"stays") && names.contains(&"last"),
            "{names:?}"
        );
        for gone in ["tests_file", "inline", "gone", "gone_too", "GONE"] {
            assert!(!names.contains(&gone), "{gone} kept: {names:?}");
        }
    }

    #[test]
    fn an_inner_cfg_test_drops_the_whole_file() {
        assert!(strip_test_items(&lex("#![cfg(test)]\nfn f() {}")).is_empty());
    }
}
