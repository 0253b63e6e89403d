//! A streaming, non-recursive lexer for PDF and PostScript-like syntax (file bodies, content
//! streams, object streams, CMaps) that measures nesting without building objects, so a hostile
//! file is measured in constant memory before any recursive parser sees it.

/// The nesting limit was passed: arrays, dictionaries, procedures and parentheses inside literal
/// strings all count as levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep {
    pub depth: usize,
}

/// One lexical token; regular tokens and names carry at most [`MAX_TOKEN_BYTES`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// A keyword, number or operator such as `obj`, `stream`, `12`, `Do`.
    Regular(&'a [u8]),
    /// A name without its slash, such as `FlateDecode`.
    Name(&'a [u8]),
    /// `<<`
    OpenDictionary,
    /// `>>`
    CloseDictionary,
    /// `[` or `{`
    OpenArray,
    /// `]` or `}`
    CloseArray,
    /// A literal `( )` or hexadecimal `< >` string, content not kept.
    String,
}

/// What the token handler wants the lexer to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    Continue,
    /// Resume lexing at this offset of the current input (skipping stream data).
    SkipTo(usize),
}

/// Where a token ended: `end` is the offset just past it in the current input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub start: usize,
    pub end: usize,
    /// Nesting depth after the token.
    pub depth: usize,
}

/// Longest regular token or name kept for comparison; longer ones are cut (they never match a
/// keyword or a name Steno looks for).
pub(crate) const MAX_TOKEN_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Comment,
    LiteralString {
        parens: usize,
        escaped: bool,
    },
    HexString,
    /// Saw `<`: a dictionary if `<` follows, else a hexadecimal string.
    LessThan,
    /// Saw `>`: a dictionary end if `>` follows.
    GreaterThan,
    /// Inside inline image data (`ID` ... `EI`) of a content stream.
    InlineImage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Regular,
    Name,
}

/// The lexer's state, kept between chunks of one input.
#[derive(Debug)]
pub(crate) struct Lexer {
    max_depth: usize,
    depth: usize,
    state: State,
    token: Vec<u8>,
    token_kind: Option<TokenKind>,
    token_start: usize,
    /// Content streams carry inline images whose binary data must be skipped.
    content_stream: bool,
    /// The last three bytes seen inside inline image data, to find `EI`.
    inline_tail: [u8; 3],
}

fn is_whitespace(byte: u8) -> bool {
    matches!(byte, b'\0' | b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
}

fn is_delimiter(byte: u8) -> bool {
    matches!(
        byte,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

impl Lexer {
    /// A lexer for a file body or an object stream.
    pub fn new(max_depth: usize) -> Lexer {
        Lexer {
            max_depth,
            depth: 0,
            state: State::Normal,
            token: Vec::with_capacity(MAX_TOKEN_BYTES),
            token_kind: None,
            token_start: 0,
            content_stream: false,
            inline_tail: [0; 3],
        }
    }

    /// A lexer for a content stream, which skips inline image data.
    pub fn for_content_stream(max_depth: usize) -> Lexer {
        Lexer {
            content_stream: true,
            ..Lexer::new(max_depth)
        }
    }

    fn open(&mut self, extra: usize) -> Result<(), TooDeep> {
        let depth = self.depth + extra;
        if depth > self.max_depth {
            Err(TooDeep { depth })
        } else {
            Ok(())
        }
    }

    /// Lexes one chunk; `on_token` sees every token with its position in this chunk.
    pub fn feed(
        &mut self,
        input: &[u8],
        mut on_token: impl FnMut(Token<'_>, Position) -> Next,
    ) -> Result<(), TooDeep> {
        let mut index = 0;
        while index < input.len() {
            let byte = input[index];
            match self.state {
                State::Comment => {
                    if byte == b'\n' || byte == b'\r' {
                        self.state = State::Normal;
                    }
                    index += 1;
                }
                State::LiteralString { parens, escaped } => {
                    self.state = if escaped {
                        State::LiteralString {
                            parens,
                            escaped: false,
                        }
                    } else {
                        match byte {
                            b'\\' => State::LiteralString {
                                parens,
                                escaped: true,
                            },
                            b'(' => {
                                self.open(parens + 1)?;
                                State::LiteralString {
                                    parens: parens + 1,
                                    escaped: false,
                                }
                            }
                            b')' if parens == 1 => {
                                let position = self.position(index, index + 1);
                                self.state = State::Normal;
                                if let Next::SkipTo(offset) = on_token(Token::String, position) {
                                    index = offset;
                                    continue;
                                }
                                State::Normal
                            }
                            b')' => State::LiteralString {
                                parens: parens - 1,
                                escaped: false,
                            },
                            _ => State::LiteralString {
                                parens,
                                escaped: false,
                            },
                        }
                    };
                    index += 1;
                }
                State::HexString => {
                    if byte == b'>' {
                        self.state = State::Normal;
                        let position = self.position(index, index + 1);
                        if let Next::SkipTo(offset) = on_token(Token::String, position) {
                            index = offset;
                            continue;
                        }
                    }
                    index += 1;
                }
                State::LessThan => {
                    if byte == b'<' {
                        self.open(1)?;
                        self.depth += 1;
                        self.state = State::Normal;
                        let position = self.position(index.saturating_sub(1), index + 1);
                        index += 1;
                        if let Next::SkipTo(offset) = on_token(Token::OpenDictionary, position) {
                            index = offset;
                        }
                    } else {
                        // A hexadecimal string; this byte is its first digit (or its end).
                        self.state = State::HexString;
                    }
                }
                State::GreaterThan => {
                    self.state = State::Normal;
                    if byte == b'>' {
                        self.depth = self.depth.saturating_sub(1);
                        let position = self.position(index.saturating_sub(1), index + 1);
                        index += 1;
                        if let Next::SkipTo(offset) = on_token(Token::CloseDictionary, position) {
                            index = offset;
                        }
                    }
                    // A stray `>` is ignored and this byte is lexed normally.
                }
                State::InlineImage => {
                    let ends_data = (is_whitespace(byte) || is_delimiter(byte))
                        && is_whitespace(self.inline_tail[0])
                        && self.inline_tail[1..] == *b"EI";
                    self.inline_tail = [self.inline_tail[1], self.inline_tail[2], byte];
                    if ends_data {
                        self.state = State::Normal;
                        // The byte after `EI` is lexed normally.
                    } else {
                        index += 1;
                    }
                }
                State::Normal => {
                    if self.token_kind.is_some() && (is_whitespace(byte) || is_delimiter(byte)) {
                        if let Next::SkipTo(offset) = self.finish_token(index, &mut on_token) {
                            index = offset;
                            continue;
                        }
                        if self.state == State::InlineImage {
                            // The single whitespace after `ID` belongs to the keyword.
                            index += 1;
                            continue;
                        }
                    }
                    if let Some(next) = self.normal_byte(input, index, byte, &mut on_token)? {
                        index = next;
                    } else {
                        index += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Handles a byte outside any string or comment; returns a new offset when a handler skips.
    fn normal_byte(
        &mut self,
        _input: &[u8],
        index: usize,
        byte: u8,
        on_token: &mut impl FnMut(Token<'_>, Position) -> Next,
    ) -> Result<Option<usize>, TooDeep> {
        let skip = |next: Next| match next {
            Next::Continue => None,
            Next::SkipTo(offset) => Some(offset),
        };
        match byte {
            byte if is_whitespace(byte) => Ok(None),
            b'%' => {
                self.state = State::Comment;
                Ok(None)
            }
            b'(' => {
                self.open(1)?;
                self.token_start = index;
                self.state = State::LiteralString {
                    parens: 1,
                    escaped: false,
                };
                Ok(None)
            }
            b')' => Ok(None),
            b'<' => {
                self.token_start = index;
                self.state = State::LessThan;
                Ok(None)
            }
            b'>' => {
                self.state = State::GreaterThan;
                Ok(None)
            }
            b'[' | b'{' => {
                self.open(1)?;
                self.depth += 1;
                let position = self.position(index, index + 1);
                Ok(skip(on_token(Token::OpenArray, position)).map(|offset| offset.max(index + 1)))
            }
            b']' | b'}' => {
                self.depth = self.depth.saturating_sub(1);
                let position = self.position(index, index + 1);
                Ok(skip(on_token(Token::CloseArray, position)).map(|offset| offset.max(index + 1)))
            }
            b'/' => {
                self.token_kind = Some(TokenKind::Name);
                self.token.clear();
                self.token_start = index;
                Ok(None)
            }
            other => {
                if self.token_kind.is_none() {
                    self.token_kind = Some(TokenKind::Regular);
                    self.token.clear();
                    self.token_start = index;
                }
                if self.token.len() < MAX_TOKEN_BYTES {
                    self.token.push(other);
                }
                Ok(None)
            }
        }
    }

    fn position(&self, start: usize, end: usize) -> Position {
        Position {
            start,
            end,
            depth: self.depth,
        }
    }

    fn finish_token(
        &mut self,
        end: usize,
        on_token: &mut impl FnMut(Token<'_>, Position) -> Next,
    ) -> Next {
        let kind = self.token_kind.take();
        let position = self.position(self.token_start, end);
        let token = match kind {
            Some(TokenKind::Name) => Token::Name(&self.token),
            Some(TokenKind::Regular) => Token::Regular(&self.token),
            None => return Next::Continue,
        };
        let is_inline_data = self.content_stream && token == Token::Regular(b"ID");
        let next = on_token(token, position);
        if is_inline_data {
            self.state = State::InlineImage;
            self.inline_tail = [0; 3];
        }
        next
    }

    /// Ends the input: a token running to the very end is reported.
    pub fn finish(&mut self, mut on_token: impl FnMut(Token<'_>, Position) -> Next, end: usize) {
        if self.state == State::Normal {
            self.finish_token(end, &mut on_token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(lexer: &mut Lexer, input: &[u8]) -> Result<Vec<String>, TooDeep> {
        let mut seen = Vec::new();
        let mut record = |token: Token<'_>, position: Position| {
            seen.push(match token {
                Token::Regular(bytes) => {
                    format!("{}@{}", String::from_utf8_lossy(bytes), position.depth)
                }
                Token::Name(bytes) => format!("/{}", String::from_utf8_lossy(bytes)),
                Token::OpenDictionary => "<<".to_string(),
                Token::CloseDictionary => ">>".to_string(),
                Token::OpenArray => "[".to_string(),
                Token::CloseArray => "]".to_string(),
                Token::String => "()".to_string(),
            });
            Next::Continue
        };
        lexer.feed(input, &mut record)?;
        lexer.finish(&mut record, input.len());
        Ok(seen)
    }

    #[test]
    fn tokens_of_an_object() {
        let mut lexer = Lexer::new(10);
        let seen = tokens(
            &mut lexer,
            b"1 0 obj << /Type /Page /Kids [2 0 R] /T (a (b) \\) c) /H <41 42> >> endobj % note [[[\n",
        )
        .unwrap();
        assert_eq!(
            seen.join(" "),
            "1@0 0@0 obj@0 << /Type /Page /Kids [ 2@2 0@2 R@2 ] /T () /H () >> endobj@0"
        );
    }

    #[test]
    fn nesting_past_the_limit_is_reported_in_arrays_dictionaries_and_strings() {
        let deep_array = format!("{}{}", "[".repeat(11), "]".repeat(11));
        assert_eq!(
            tokens(&mut Lexer::new(10), deep_array.as_bytes()).unwrap_err(),
            TooDeep { depth: 11 }
        );
        assert!(tokens(&mut Lexer::new(11), deep_array.as_bytes()).is_ok());
        let deep_dictionary = format!("{}{}", "<</A ".repeat(11), ">>".repeat(11));
        assert!(tokens(&mut Lexer::new(10), deep_dictionary.as_bytes()).is_err());
        let deep_string = format!("[[{}{}]]", "(".repeat(9), ")".repeat(9));
        assert_eq!(
            tokens(&mut Lexer::new(10), deep_string.as_bytes()).unwrap_err(),
            TooDeep { depth: 11 }
        );
        // Brackets inside strings and comments are not nesting.
        let quoted = format!("({}) %{}\n", "[".repeat(50), "<<".repeat(50));
        assert!(tokens(&mut Lexer::new(2), quoted.as_bytes()).is_ok());
    }

    #[test]
    fn nesting_is_measured_across_chunks() {
        let mut lexer = Lexer::new(5);
        let mut ignore = |_: Token<'_>, _: Position| Next::Continue;
        for _ in 0..5 {
            lexer.feed(b"<", &mut ignore).unwrap();
            lexer.feed(b"<", &mut ignore).unwrap();
        }
        assert_eq!(
            lexer.feed(b"[", &mut ignore).unwrap_err(),
            TooDeep { depth: 6 }
        );
    }

    #[test]
    fn inline_image_data_in_content_streams_is_skipped() {
        let mut content = b"q BI /W 4 /H 4 /BPC 8 /CS /G ID ".to_vec();
        content.extend_from_slice(&[b'['; 40]);
        content.extend_from_slice(b"(((( \nEI Q [1 2] TJ");
        let seen = tokens(&mut Lexer::for_content_stream(3), &content).unwrap();
        assert_eq!(
            seen.join(" "),
            "q@0 BI@0 /W 4@0 /H 4@0 /BPC 8@0 /CS /G ID@0 Q@0 [ 1@1 2@1 ] TJ@0"
        );
    }

    #[test]
    fn a_handler_can_skip_ahead() {
        let input = b"<< /Length 3 >> stream\n[[[endstream endobj";
        let mut lexer = Lexer::new(1);
        let mut seen = Vec::new();
        lexer
            .feed(input, |token, position| {
                if let Token::Regular(word) = token {
                    seen.push(String::from_utf8_lossy(word).into_owned());
                    if word == b"stream" {
                        return Next::SkipTo(position.end + 4);
                    }
                }
                Next::Continue
            })
            .unwrap();
        lexer.finish(
            |token, _| {
                if let Token::Regular(word) = token {
                    seen.push(String::from_utf8_lossy(word).into_owned());
                }
                Next::Continue
            },
            input.len(),
        );
        assert_eq!(seen, ["3", "stream", "endstream", "endobj"]);
    }
}
