//! A small Rust lexer for the IAM policy test: identifiers, punctuation and literals with their
//! line numbers. Comments are dropped, and strings and characters stay whole tokens, so text
//! inside them never looks like code (a `")"` in a call's argument, a `.send()` in a comment).

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Ident,
    Punct,
    /// Strings, characters, numbers and lifetimes.
    Literal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) kind: Kind,
    pub(super) text: String,
    pub(super) line: usize,
}

impl Token {
    /// Whether this is the identifier or punctuation `text` (never a literal's content).
    pub(super) fn is(&self, text: &str) -> bool {
        self.kind != Kind::Literal && self.text == text
    }

    pub(super) fn is_ident(&self) -> bool {
        self.kind == Kind::Ident
    }
}

/// Punctuation kept as one token.
const TWO_CHAR_PUNCT: &[&str] = &[
    "::", "==", "!=", "<=", ">=", "=>", "->", "&&", "||", "+=", "-=",
];

struct Lexer {
    chars: Vec<char>,
    at: usize,
    line: usize,
    tokens: Vec<Token>,
}

impl Lexer {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    /// Moves past `count` characters, counting the lines they end.
    fn advance(&mut self, count: usize) {
        for _ in 0..count {
            if self.peek(0) == Some('\n') {
                self.line += 1;
            }
            self.at += 1;
        }
    }

    fn push(&mut self, kind: Kind, start: usize, line: usize) {
        let end = self.at.min(self.chars.len());
        let text = self.chars[start..end].iter().collect();
        self.tokens.push(Token { kind, text, line });
    }

    fn skip_line_comment(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.advance(1);
        }
    }

    fn skip_block_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.peek(0) {
            if c == '/' && self.peek(1) == Some('*') {
                depth += 1;
                self.advance(2);
            } else if c == '*' && self.peek(1) == Some('/') {
                self.advance(2);
                depth -= 1;
                if depth == 0 {
                    return;
                }
            } else {
                self.advance(1);
            }
        }
    }

    /// A quoted string with escapes, the opening quote at the current position.
    fn quoted(&mut self) {
        self.advance(1);
        while let Some(c) = self.peek(0) {
            match c {
                '\\' => self.advance(2),
                '"' => {
                    self.advance(1);
                    return;
                }
                _ => self.advance(1),
            }
        }
    }

    /// A raw string `r#"..."#` whose `#`s start at the current position.
    fn raw(&mut self) {
        let mut hashes = 0;
        while self.peek(0) == Some('#') {
            hashes += 1;
            self.advance(1);
        }
        self.advance(1);
        while self.peek(0).is_some() {
            if self.peek(0) == Some('"') && (1..=hashes).all(|i| self.peek(i) == Some('#')) {
                self.advance(1 + hashes);
                return;
            }
            self.advance(1);
        }
    }

    /// After a string prefix (`r`, `b`, `br`, `c`, `cr`) of `prefix_len` characters: a raw
    /// string, a plain one, or none (an identifier that happens to start that way).
    fn string_after_prefix(&mut self, prefix_len: usize, raw: bool) -> bool {
        let after = self.peek(prefix_len);
        if raw {
            let mut hashes = 0;
            while self.peek(prefix_len + hashes) == Some('#') {
                hashes += 1;
            }
            if self.peek(prefix_len + hashes) != Some('"') {
                return false;
            }
            self.advance(prefix_len);
            self.raw();
            return true;
        }
        if after == Some('"') {
            self.advance(prefix_len);
            self.quoted();
            return true;
        }
        false
    }

    fn string_literal(&mut self) -> bool {
        let (c0, c1) = (self.peek(0), self.peek(1));
        match (c0, c1) {
            (Some('r'), Some('"' | '#')) => self.string_after_prefix(1, true),
            (Some('b' | 'c'), Some('r')) => self.string_after_prefix(2, true),
            (Some('b' | 'c'), Some('"')) => self.string_after_prefix(1, false),
            (Some('b'), Some('\'')) => {
                self.advance(1);
                self.char_or_lifetime();
                true
            }
            _ => false,
        }
    }

    /// A character literal, or a lifetime or label (`'a`).
    fn char_or_lifetime(&mut self) {
        if self.peek(1) == Some('\\') {
            self.advance(2);
            while self.peek(0).is_some_and(|c| c != '\'') {
                self.advance(1);
            }
            self.advance(1);
        } else if self.peek(2) == Some('\'') {
            self.advance(3);
        } else {
            self.advance(1);
            while self
                .peek(0)
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
            {
                self.advance(1);
            }
        }
    }

    fn run(mut self) -> Vec<Token> {
        while let Some(c) = self.peek(0) {
            let (start, line) = (self.at, self.line);
            if c.is_whitespace() {
                self.advance(1);
            } else if c == '/' && self.peek(1) == Some('/') {
                self.skip_line_comment();
            } else if c == '/' && self.peek(1) == Some('*') {
                self.skip_block_comment();
            } else if self.string_literal() {
                self.push(Kind::Literal, start, line);
            } else if c == '"' {
                self.quoted();
                self.push(Kind::Literal, start, line);
            } else if c == '\'' {
                self.char_or_lifetime();
                self.push(Kind::Literal, start, line);
            } else if c == 'r' && self.peek(1) == Some('#') {
                // A raw identifier: r#type is the identifier `type`.
                self.advance(2);
                let name_start = self.at;
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
                {
                    self.advance(1);
                }
                self.push(Kind::Ident, name_start, line);
            } else if c.is_alphabetic() || c == '_' {
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
                {
                    self.advance(1);
                }
                self.push(Kind::Ident, start, line);
            } else if c.is_ascii_digit() {
                while self
                    .peek(0)
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
                {
                    self.advance(1);
                }
                self.push(Kind::Literal, start, line);
            } else {
                let pair: String = [Some(c), self.peek(1)].iter().flatten().collect();
                let width = if TWO_CHAR_PUNCT.contains(&pair.as_str()) {
                    2
                } else {
                    1
                };
                self.advance(width);
                self.push(Kind::Punct, start, line);
            }
        }
        self.tokens
    }
}

/// The tokens of `source`, without comments.
pub(super) fn lex(source: &str) -> Vec<Token> {
    Lexer {
        chars: source.chars().collect(),
        at: 0,
        line: 1,
        tokens: Vec::new(),
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(source: &str) -> Vec<String> {
        lex(source).into_iter().map(|token| token.text).collect()
    }

    #[test]
    fn strings_chars_and_comments_do_not_leak_code() {
        let source = "a.b(\")\", ')', r#\"x.send()\"#) // c.send()\n/* d.send() /* nested */ */ 'label: loop {}";
        assert_eq!(
            texts(source),
            vec![
                "a",
                ".",
                "b",
                "(",
                "\")\"",
                ",",
                "')'",
                ",",
                "r#\"x.send()\"#",
                ")",
                "'label",
                ":",
                "loop",
                "{",
                "}"
            ]
        );
    }

    #[test]
    fn lines_are_counted_across_strings_and_comments() {
        let tokens = lex("a\n\"two\nlines\"\n/* one\nmore */ b :: c");
        let lines: Vec<(String, usize)> = tokens.into_iter().map(|t| (t.text, t.line)).collect();
        assert_eq!(lines[0], ("a".into(), 1));
        assert_eq!(lines[1].1, 2);
        assert_eq!(lines[2], ("b".into(), 5));
        assert_eq!(lines[3], ("::".into(), 5));
    }
}
