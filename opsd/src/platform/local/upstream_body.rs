//! The body of a release's response as the router streams it to the client: read off the
//! upstream connection in frames of what the socket gave, delimited by its Content-Length, its
//! chunked coding or the end of the connection. Read to the end, the connection goes back to its
//! client connection's pool; dropped earlier (the client went away), it is closed.
//!
//! invariant: a connection goes back to the pool only when its answer was read exactly to the
//! end with nothing after it; memory held per body is one socket read (16 KiB) plus one chunk
//! size line (at most 4 KiB).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};

use super::upstream_connections::IdlePool;
use super::upstream_http1::{Framing, Http1Connection};

/// The longest chunk size line or trailer line accepted.
const MAX_LINE_BYTES: usize = 4 * 1024;
/// The most trailer lines accepted (they are read and dropped).
const MAX_TRAILER_LINES: usize = 100;

/// A response body on its way from a release; see the module documentation.
pub(super) struct UpstreamBody {
    connection: Option<Http1Connection>,
    remaining: Remaining,
    keep_alive: bool,
    pool: IdlePool,
}

/// What is left of the body.
#[derive(Debug)]
enum Remaining {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

impl UpstreamBody {
    pub(super) fn new(
        connection: Http1Connection,
        framing: Framing,
        keep_alive: bool,
        pool: IdlePool,
    ) -> UpstreamBody {
        let remaining = match framing {
            Framing::Empty => Remaining::Done,
            Framing::Length(length) => Remaining::Length(length),
            Framing::Chunked => Remaining::Chunked(ChunkedDecoder::default()),
            Framing::UntilClose => Remaining::UntilClose,
        };
        let mut body = UpstreamBody {
            connection: Some(connection),
            remaining,
            keep_alive,
            pool,
        };
        if matches!(body.remaining, Remaining::Done) {
            body.finish();
        }
        body
    }

    /// The body was read to its end: the connection goes back to the pool if it can be reused.
    fn finish(&mut self) {
        self.remaining = Remaining::Done;
        if let Some(mut connection) = self.connection.take() {
            if self.keep_alive && connection.buffer().is_empty() {
                self.pool.keep(connection);
            }
        }
    }

    fn fail(&mut self, message: String) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.remaining = Remaining::Done;
        self.connection = None;
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            message,
        ))))
    }
}

/// What the buffer gave towards the body.
enum Step {
    Data(Bytes),
    End,
    NeedMore,
    Invalid(String),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let body = self.get_mut();
        loop {
            let Some(connection) = body.connection.as_mut() else {
                return Poll::Ready(None);
            };
            let step = match &mut body.remaining {
                Remaining::Done => Step::End,
                Remaining::Length(0) => Step::End,
                Remaining::Length(left) => {
                    let buffer = connection.buffer();
                    if buffer.is_empty() {
                        Step::NeedMore
                    } else {
                        let take = usize::try_from(*left)
                            .map_or(buffer.len(), |left| left.min(buffer.len()));
                        *left -= take as u64;
                        Step::Data(buffer.split_to(take).freeze())
                    }
                }
                Remaining::UntilClose => {
                    let buffer = connection.buffer();
                    if buffer.is_empty() {
                        Step::NeedMore
                    } else {
                        Step::Data(buffer.split().freeze())
                    }
                }
                Remaining::Chunked(decoder) => match decoder.decode(connection.buffer()) {
                    Ok(Decoded::Data(data)) => Step::Data(data),
                    Ok(Decoded::End) => Step::End,
                    Ok(Decoded::NeedMore) => Step::NeedMore,
                    Err(problem) => Step::Invalid(problem),
                },
            };
            match step {
                Step::Data(data) => {
                    // A server stops polling once the body says it ended, so the connection
                    // goes back with the last bytes rather than at a poll that never comes.
                    if matches!(body.remaining, Remaining::Length(0)) {
                        body.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Step::End => {
                    body.finish();
                    return Poll::Ready(None);
                }
                Step::Invalid(problem) => {
                    let upstream = connection.upstream();
                    return body.fail(format!("{upstream} sent a broken chunked body: {problem}"));
                }
                Step::NeedMore => {
                    let upstream = connection.upstream();
                    match ready!(connection.poll_fill(context)) {
                        Ok(0) if matches!(body.remaining, Remaining::UntilClose) => {
                            body.remaining = Remaining::Done;
                            body.connection = None;
                            return Poll::Ready(None);
                        }
                        Ok(0) => {
                            return body.fail(format!(
                            "{upstream} closed the connection before the end of its response body"
                        ))
                        }
                        Ok(_) => continue,
                        Err(error) => {
                            return body.fail(format!(
                                "reading the response body of {upstream} failed: {error}"
                            ))
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.remaining, Remaining::Done | Remaining::Length(0))
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Remaining::Length(left) => SizeHint::with_exact(left),
            Remaining::Done => SizeHint::with_exact(0),
            Remaining::Chunked(_) | Remaining::UntilClose => SizeHint::default(),
        }
    }
}

/// What the chunked decoder found in the buffer.
#[derive(Debug, PartialEq, Eq)]
enum Decoded {
    Data(Bytes),
    End,
    NeedMore,
}

/// Where the decoder is in a chunked body (RFC 9112, section 7.1).
#[derive(Debug, Default)]
enum ChunkedDecoder {
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
    fn decode(&mut self, buffer: &mut BytesMut) -> Result<Decoded, String> {
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
}
