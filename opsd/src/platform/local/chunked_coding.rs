//! The chunked transfer coding of HTTP/1.1 (RFC 9112, section 7.1), both ways: the decoder the
//! router reads a release's chunked answer and a client's chunked request body with, and the
//! encoder it sends a body of unknown length with. Trailers are read and dropped.
//!
//! invariant: the decoder holds no more than one line (4 KiB) beyond what it hands on, and a
//! chunk size over 15 hexadecimal digits, a line without its end, or more than 100 trailer lines
//! are refused with what was wrong.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The longest chunk size line or trailer line accepted.
const MAX_LINE_BYTES: usize = 4 * 1024;
/// The most trailer lines accepted (they are read and dropped).
const MAX_TRAILER_LINES: usize = 100;

/// `data` as one chunk: its size in hexadecimal, the data, a line break.
pub(super) fn encode_chunk(data: &[u8], into: &mut BytesMut) {
    into.reserve(data.len() + 20);
    into.put_slice(format!("{:x}\r\n", data.len()).as_bytes());
    into.put_slice(data);
    into.put_slice(b"\r\n");
}

/// What ends a chunked body: the last (empty) chunk and no trailers.
pub(super) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// What the chunked decoder found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decoded {
    Data(Bytes),
    End,
    NeedMore,
}

/// Where the decoder is in a chunked body (RFC 9112, section 7.1).
#[derive(Debug, Default)]
pub(super) enum ChunkedDecoder {
    /// Before a chunk size line.
    #[default]
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data, before its line break.
    DataEnd,
    /// After the last chunk: trailer lines (dropped) until an empty line.
    Trailers(usize),
    Done,
}

impl ChunkedDecoder {
    /// Takes what it can from `buffer`: some data, the end, or nothing until more arrives.
    pub(super) fn decode(&mut self, buffer: &mut BytesMut) -> Result<Decoded, String> {
        loop {
            match self {
                ChunkedDecoder::Size => {
                    let Some(line) = take_line(buffer)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = parse_chunk_size(&line)?;
                    *self = if size == 0 {
                        ChunkedDecoder::Trailers(0)
                    } else {
                        ChunkedDecoder::Data(size)
                    };
                }
                ChunkedDecoder::Data(left) => {
                    if buffer.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take =
                        usize::try_from(*left).map_or(buffer.len(), |left| left.min(buffer.len()));
                    *left -= take as u64;
                    if *left == 0 {
                        *self = ChunkedDecoder::DataEnd;
                    }
                    return Ok(Decoded::Data(buffer.split_to(take).freeze()));
                }
                ChunkedDecoder::DataEnd => {
                    if buffer.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buffer[..2] != b"\r\n" {
                        return Err("a chunk's data is not followed by a line break".to_string());
                    }
                    buffer.advance(2);
                    *self = ChunkedDecoder::Size;
                }
                ChunkedDecoder::Trailers(lines) => {
                    let Some(line) = take_line(buffer)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    if line.is_empty() {
                        *self = ChunkedDecoder::Done;
                    } else if *lines >= MAX_TRAILER_LINES {
                        return Err(format!("more than {MAX_TRAILER_LINES} trailer lines"));
                    } else {
                        *lines += 1;
                    }
                }
                ChunkedDecoder::Done => return Ok(Decoded::End),
            }
        }
    }
}

/// One line without its CRLF, or `None` until the buffer holds a whole one.
fn take_line(buffer: &mut BytesMut) -> Result<Option<Bytes>, String> {
    let Some(end) = buffer.windows(2).position(|pair| pair == b"\r\n") else {
        if buffer.len() > MAX_LINE_BYTES {
            return Err(format!(
                "a line is longer than {} KiB",
                MAX_LINE_BYTES / 1024
            ));
        }
        return Ok(None);
    };
    if end > MAX_LINE_BYTES {
        return Err(format!(
            "a line is longer than {} KiB",
            MAX_LINE_BYTES / 1024
        ));
    }
    let line = buffer.split_to(end).freeze();
    buffer.advance(2);
    Ok(Some(line))
}

/// The hexadecimal size at the start of a chunk size line (extensions after `;` are ignored).
fn parse_chunk_size(line: &[u8]) -> Result<u64, String> {
    let digits = line
        .split(|byte| *byte == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let text = std::str::from_utf8(digits).unwrap_or_default();
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(format!(
            "invalid chunk size {:?}",
            String::from_utf8_lossy(&line[..line.len().min(32)])
        ));
    }
    u64::from_str_radix(text, 16).map_err(|error| format!("invalid chunk size {text:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a decoder in pieces of `piece` bytes and returns the data and whether the
    /// end was found.
    fn decode_in_pieces(wire: &[u8], piece: usize) -> Result<(Vec<u8>, bool), String> {
        let mut decoder = ChunkedDecoder::default();
        let mut buffer = BytesMut::new();
        let mut data = Vec::new();
        for part in wire.chunks(piece.max(1)) {
            buffer.extend_from_slice(part);
            loop {
                match decoder.decode(&mut buffer)? {
                    Decoded::Data(bytes) => data.extend_from_slice(&bytes),
                    Decoded::End => return Ok((data, buffer.is_empty())),
                    Decoded::NeedMore => break,
                }
            }
        }
        Ok((data, false))
    }

    const WIRE: &[u8] =
        b"5\r\nhello\r\n7;name=value\r\n, world\r\nA \r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n";

    #[test]
    fn chunked_bodies_decode_however_they_are_split() {
        for piece in 1..=WIRE.len() {
            assert_eq!(
                decode_in_pieces(WIRE, piece),
                Ok((b"hello, world0123456789".to_vec(), true)),
                "pieces of {piece} bytes"
            );
        }
    }

    #[test]
    fn broken_chunked_bodies_are_refused_with_what_is_wrong() {
        let refused = |wire: &[u8]| decode_in_pieces(wire, wire.len()).unwrap_err();
        assert!(refused(b"zz\r\nhello\r\n").contains("invalid chunk size"));
        assert!(refused(b"\r\n").contains("invalid chunk size"));
        assert!(refused(b"fffffffffffffffff\r\n").contains("invalid chunk size"));
        assert!(refused(b"-1\r\n").contains("invalid chunk size"));
        assert!(refused(b"5\r\nhelloXX0\r\n\r\n").contains("not followed by a line break"));
        let endless_line = vec![b'1'; MAX_LINE_BYTES + 1];
        assert!(refused(&endless_line).contains("longer than 4 KiB"));
        let mut many_trailers = b"0\r\n".to_vec();
        for index in 0..=MAX_TRAILER_LINES {
            many_trailers.extend_from_slice(format!("X-{index}: 1\r\n").as_bytes());
        }
        assert!(refused(&many_trailers).contains("trailer lines"));
    }

    #[test]
    fn a_large_chunk_is_handed_on_as_it_arrives() {
        let mut decoder = ChunkedDecoder::default();
        let mut buffer = BytesMut::from(&b"100000\r\nabc"[..]);
        assert_eq!(
            decoder.decode(&mut buffer),
            Ok(Decoded::Data(Bytes::from_static(b"abc")))
        );
        assert_eq!(decoder.decode(&mut buffer), Ok(Decoded::NeedMore));
        assert!(matches!(decoder, ChunkedDecoder::Data(left) if left == 0x100000 - 3));
    }

    #[test]
    fn an_encoded_body_decodes_to_itself() {
        let mut wire = BytesMut::new();
        encode_chunk(b"hello", &mut wire);
        encode_chunk(&[b'x'; 300], &mut wire);
        wire.put_slice(LAST_CHUNK);
        let mut expected = b"hello".to_vec();
        expected.extend_from_slice(&[b'x'; 300]);
        assert_eq!(decode_in_pieces(&wire, 7), Ok((expected, true)));
    }
}
