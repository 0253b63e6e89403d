//! One HTTP/1.1 connection from the router to a release, spoken directly: the request head is
//! written in one piece, its body streamed after it (as received, or chunked when the client's
//! length is unknown), and the response head parsed off the same socket in the task that serves
//! the client. Nothing passes through a channel or another future, which is what a general
//! client (one connection future fed by a dispatch channel) costs on every request.
//!
//! The response body is read by [`super::upstream_body::UpstreamBody`], which hands the
//! connection back to its pool once the answer was read to the end.
//!
//! invariant: a response head is at most 64 KiB and 100 headers; anything longer or unreadable
//! fails the request with a message naming the release's address and what was wrong.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING,
};
use hyper::http::{request, response};
use hyper::{Method, Response, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::chunked_coding::{encode_chunk, LAST_CHUNK};
use super::reclaimable_body::ReclaimableBody;

/// The longest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most response headers accepted.
const MAX_HEADERS: usize = 100;
/// Bytes asked of the socket per read.
pub(super) const READ_CHUNK: usize = 16 * 1024;

/// How a response's body is delimited (RFC 9112, section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body: an answer to HEAD, a 204 or 304, or a Content-Length of 0.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the release closes the connection.
    UntilClose,
}

/// A parsed response head and what it says about the body and the connection.
#[derive(Debug)]
pub(super) struct ResponseHead {
    pub(super) parts: response::Parts,
    pub(super) framing: Framing,
    /// Whether the connection can carry another request once this body was read.
    pub(super) keep_alive: bool,
}

/// Why an exchange got no response head.
#[derive(Debug)]
pub(super) enum ExchangeFailure {
    /// The request head could not be written: the release cannot have acted on the request.
    HeadNotSent(String),
    /// The connection ended before the first byte of an answer; the release read the request
    /// and may have acted on it. `body_sent` tells whether any of the request body was taken.
    NoAnswer { body_sent: bool, message: String },
    /// The client's request body failed (broken, or the client went away): the release is not
    /// to blame.
    ClientBody(ClientBodyFailure),
    /// Anything else: a broken answer, a reset mid-head.
    Failed(String),
}

impl ExchangeFailure {
    pub(super) fn message(&self) -> &str {
        match self {
            ExchangeFailure::HeadNotSent(message)
            | ExchangeFailure::NoAnswer { message, .. }
            | ExchangeFailure::Failed(message) => message,
            ExchangeFailure::ClientBody(failure) => &failure.message,
        }
    }
}

/// Why a client's request body stopped before its end: the client's doing, not the release's.
#[derive(Debug)]
pub(super) struct ClientBodyFailure {
    pub(super) message: String,
    /// The client paused its body past the router's limit.
    pub(super) timed_out: bool,
}

/// One connection to a release; see the module documentation.
pub(super) struct Http1Connection {
    upstream: SocketAddr,
    stream: TcpStream,
    /// Bytes read from the socket and not yet handed on.
    buffer: BytesMut,
}

impl Http1Connection {
    pub(super) fn new(upstream: SocketAddr, stream: TcpStream) -> Http1Connection {
        Http1Connection {
            upstream,
            stream,
            buffer: BytesMut::new(),
        }
    }

    pub(super) fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Whether an idle connection can take a request: the release has not closed it and sent
    /// nothing unasked. Costs no system call while the socket has not been signalled readable.
    pub(super) fn is_idle_and_open(&self) -> bool {
        if !self.buffer.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(error) if error.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends `head` and `body` and reads the response head. `head` is already in origin form
    /// with the router's headers; a body still arriving from the client is streamed while the
    /// answer is awaited, so a release that answers early (say 413) is not blocked on it.
    pub(super) async fn exchange(
        &mut self,
        head: &request::Parts,
        body: &mut ReclaimableBody,
    ) -> Result<ResponseHead, ExchangeFailure> {
        let has_body = !body.is_end_stream();
        let chunked = has_body && !head.headers.contains_key(CONTENT_LENGTH);
        let encoded = encode_request_head(head, chunked);
        let upstream = self.upstream;
        if let Err(error) = self.stream.write_all(&encoded).await {
            return Err(ExchangeFailure::HeadNotSent(format!(
                "could not send the request to {upstream}: {error}"
            )));
        }
        let is_head_request = head.method == Method::HEAD;
        if !has_body {
            return read_response_head(
                &mut self.stream,
                &mut self.buffer,
                upstream,
                is_head_request,
                false,
            )
            .await;
        }
        let (mut reader, mut writer) = self.stream.split();
        let receiving = read_response_head(
            &mut reader,
            &mut self.buffer,
            upstream,
            is_head_request,
            true,
        );
        let sending = write_body(&mut writer, body, chunked, upstream);
        tokio::pin!(receiving, sending);
        let mut body_outcome: Option<Result<(), BodyWriteError>> = None;
        let mut response = loop {
            tokio::select! {
                head = &mut receiving => break head?,
                outcome = &mut sending, if body_outcome.is_none() => {
                    if let Err(BodyWriteError::Client(failure)) = outcome {
                        return Err(ExchangeFailure::ClientBody(failure));
                    }
                    body_outcome = Some(outcome);
                }
            }
        };
        // A connection whose request body was not sent whole cannot carry another request.
        if !matches!(body_outcome, Some(Ok(()))) {
            response.keep_alive = false;
        }
        Ok(response)
    }

    /// Reads more of the response from the socket into the buffer; `Ok(0)` at its end.
    pub(super) fn poll_fill(&mut self, context: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.buffer.reserve(READ_CHUNK);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), context, &mut self.buffer)
    }

    /// The bytes read and not yet handed on.
    pub(super) fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buffer
    }
}

/// Why streaming a request body stopped.
enum BodyWriteError {
    /// The client's body failed (it went away, stalled, or sent a broken chunk).
    Client(ClientBodyFailure),
    /// The release stopped reading; its answer may still come.
    Upstream,
}

async fn write_body<W: AsyncWrite + Unpin>(
    writer: &mut W,
    body: &mut ReclaimableBody,
    chunked: bool,
    upstream: SocketAddr,
) -> Result<(), BodyWriteError> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            BodyWriteError::Client(ClientBodyFailure {
                message: format!("the client's request body to {upstream} failed: {error}"),
                timed_out: error.kind() == io::ErrorKind::TimedOut,
            })
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers are not forwarded
        };
        if data.is_empty() {
            continue;
        }
        let written = if chunked {
            let mut chunk = BytesMut::new();
            encode_chunk(&data, &mut chunk);
            writer.write_all(&chunk).await
        } else {
            writer.write_all(&data).await
        };
        written.map_err(|_| BodyWriteError::Upstream)?;
    }
    if chunked {
        writer
            .write_all(LAST_CHUNK)
            .await
            .map_err(|_| BodyWriteError::Upstream)?;
    }
    Ok(())
}

/// The request line and headers, ending with the empty line. Header names and values come from
/// a request hyper already parsed, so they hold no line breaks.
fn encode_request_head(head: &request::Parts, chunked: bool) -> Vec<u8> {
    let target = head
        .uri
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    let mut encoded = Vec::with_capacity(64 + target.len() + head.headers.len() * 48);
    encoded.extend_from_slice(head.method.as_str().as_bytes());
    encoded.push(b' ');
    encoded.extend_from_slice(target.as_bytes());
    encoded.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &head.headers {
        encoded.extend_from_slice(name.as_str().as_bytes());
        encoded.extend_from_slice(b": ");
        encoded.extend_from_slice(value.as_bytes());
        encoded.extend_from_slice(b"\r\n");
    }
    if chunked {
        encoded.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    encoded.extend_from_slice(b"\r\n");
    encoded
}

/// Reads until a final (non-1xx) response head is complete; the bytes after it stay in
/// `buffer` as the start of the body.
async fn read_response_head<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
    upstream: SocketAddr,
    is_head_request: bool,
    body_sent: bool,
) -> Result<ResponseHead, ExchangeFailure> {
    let mut received_any = !buffer.is_empty();
    loop {
        while !buffer.is_empty() {
            match parse_response_head(buffer, is_head_request)
                .map_err(|problem| ExchangeFailure::Failed(format!("{upstream} {problem}")))?
            {
                Parsed::Final(head) => return Ok(head),
                Parsed::Interim => continue,
                Parsed::Partial => break,
            }
        }
        if buffer.len() >= MAX_HEAD_BYTES {
            return Err(ExchangeFailure::Failed(format!(
                "{upstream} sent a response head over {} KiB",
                MAX_HEAD_BYTES / 1024
            )));
        }
        buffer.reserve(READ_CHUNK);
        let read = reader.read_buf(buffer).await;
        match read {
            Ok(0) | Err(_) if !received_any => {
                let how = match read {
                    Err(error) => error.to_string(),
                    Ok(_) => "the connection closed".to_string(),
                };
                return Err(ExchangeFailure::NoAnswer {
                    body_sent,
                    message: format!("{upstream} did not answer: {how}"),
                });
            }
            Ok(0) => {
                return Err(ExchangeFailure::Failed(format!(
                    "{upstream} closed the connection in the middle of its response head"
                )))
            }
            Ok(_) => received_any = true,
            Err(error) => {
                return Err(ExchangeFailure::Failed(format!(
                    "reading the response of {upstream} failed: {error}"
                )))
            }
        }
    }
}

/// What one parse of the buffer found.
#[derive(Debug)]
enum Parsed {
    /// A final response head, consumed from the buffer.
    Final(ResponseHead),
    /// A 1xx head, consumed and dropped (the client's expectations are the router's to answer).
    Interim,
    /// Not a whole head yet.
    Partial,
}

fn parse_response_head(buffer: &mut BytesMut, is_head_request: bool) -> Result<Parsed, String> {
    // Slots httparse fills before they are read: no 100 empty headers to write per response.
    let mut slots = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let parsing = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buffer,
        &mut slots,
    );
    let length = match parsing {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(format!("sent more than {MAX_HEADERS} response headers"))
        }
        Err(error) => return Err(format!("sent an unreadable response head: {error}")),
    };
    let code = parsed.code.unwrap_or(0);
    let status = StatusCode::from_u16(code)
        .map_err(|_| format!("answered with an invalid status code {code}"))?;
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // Header values are slices of the head's own bytes rather than copies of them: where each
    // value lies in the buffer, kept until the head is split off it.
    let start = buffer.as_ptr() as usize;
    let mut named = Vec::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| format!("sent an invalid header name {:?}", header.name))?;
        let place = (header.value.as_ptr() as usize)
            .checked_sub(start)
            .map(|offset| offset..offset + header.value.len())
            .filter(|place| place.end <= length)
            .ok_or_else(|| format!("sent a header {name} outside its head"))?;
        named.push((name, place));
    }
    let head = buffer.split_to(length).freeze();
    let mut headers = HeaderMap::with_capacity(named.len());
    for (name, place) in named {
        let value = HeaderValue::from_maybe_shared(head.slice(place))
            .map_err(|_| format!("sent an invalid value for the header {name}"))?;
        headers.append(name, value);
    }
    if status.is_informational() {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err("switched protocols, which the router does not forward".to_string());
        }
        return Ok(Parsed::Interim);
    }
    let framing = response_framing(status, &mut headers, is_head_request)?;
    let keep_alive = version == Version::HTTP_11
        && framing != Framing::UntilClose
        && !has_connection_token(&headers, "close");
    let (mut parts, ()) = Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    Ok(Parsed::Final(ResponseHead {
        parts,
        framing,
        keep_alive,
    }))
}

/// How the body of a response is delimited (RFC 9112, section 6.3). A Transfer-Encoding wins
/// over a Content-Length, which is then dropped so the client never sees both.
fn response_framing(
    status: StatusCode,
    headers: &mut HeaderMap,
    is_head_request: bool,
) -> Result<Framing, String> {
    if is_head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        headers.remove(CONTENT_LENGTH);
        let last_coding = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .rfind(|coding| !coding.is_empty());
        return Ok(match last_coding {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => Framing::Chunked,
            _ => Framing::UntilClose,
        });
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let text = value
            .to_str()
            .map_err(|_| "sent an unreadable Content-Length".to_string())?;
        for item in text.split(',') {
            let item = item.trim();
            let parsed: u64 = item
                .parse()
                .ok()
                .filter(|_| !item.starts_with('+'))
                .ok_or_else(|| format!("sent an invalid Content-Length {text:?}"))?;
            if length.is_some_and(|earlier| earlier != parsed) {
                return Err(format!("sent conflicting Content-Length values {text:?}"));
            }
            length = Some(parsed);
        }
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(length) => Framing::Length(length),
        None => Framing::UntilClose,
    })
}

fn has_connection_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Parsed, String> {
        parse_response_head(&mut BytesMut::from(text), false)
    }

    fn final_head(text: &str) -> ResponseHead {
        match parse(text) {
            Ok(Parsed::Final(head)) => head,
            other => panic!("expected a final head, got {other:?}"),
        }
    }

    #[test]
    fn a_head_leaves_the_body_bytes_in_the_buffer() {
        let mut buffer =
            BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello");
        let Ok(Parsed::Final(head)) = parse_response_head(&mut buffer, false) else {
            panic!("no head");
        };
        assert_eq!(head.parts.status, StatusCode::OK);
        assert_eq!(head.framing, Framing::Length(5));
        assert!(head.keep_alive);
        assert_eq!(head.parts.headers["x-a"], "1");
        assert_eq!(&buffer[..], b"hello");
    }

    #[test]
    fn header_values_are_kept_exactly_repeated_empty_or_not_text() {
        let mut buffer = BytesMut::from(
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Empty:\r\nSet-Cookie: a=1\r\n\
               Set-Cookie: b=2\r\nX-Bytes: caf\xe9\r\nX-Last:  spaced out  \r\n\r\nok"[..],
        );
        let Ok(Parsed::Final(head)) = parse_response_head(&mut buffer, false) else {
            panic!("no head");
        };
        let headers = &head.parts.headers;
        assert_eq!(headers["x-empty"], "");
        let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(headers["x-bytes"].as_bytes(), b"caf\xe9");
        assert_eq!(headers["x-last"], "spaced out");
        assert_eq!(&buffer[..], b"ok", "the body stays in the buffer");
    }

    #[test]
    fn a_head_split_anywhere_is_partial_until_whole() {
        let text = "HTTP/1.1 204 No Content\r\nServer: steno\r\n\r\n";
        for cut in 0..text.len() {
            assert!(
                matches!(parse(&text[..cut]), Ok(Parsed::Partial)),
                "cut at {cut}"
            );
        }
        assert_eq!(final_head(text).framing, Framing::Empty);
    }

    #[test]
    fn framing_follows_the_rules_of_http_1_1() {
        let chunked = final_head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n",
        );
        assert_eq!(chunked.framing, Framing::Chunked);
        assert!(!chunked.parts.headers.contains_key(CONTENT_LENGTH));
        let unknown = final_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(unknown.framing, Framing::UntilClose);
        assert!(!unknown.keep_alive);
        let no_length = final_head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(
            (no_length.framing, no_length.keep_alive),
            (Framing::UntilClose, false)
        );
        assert_eq!(
            final_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").framing,
            Framing::Empty
        );
        assert_eq!(
            final_head("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n").framing,
            Framing::Empty
        );
        assert_eq!(
            final_head("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n").framing,
            Framing::Length(7)
        );
        let mut buffer = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n");
        let Ok(Parsed::Final(head)) = parse_response_head(&mut buffer, true) else {
            panic!("no head");
        };
        assert_eq!(
            head.framing,
            Framing::Empty,
            "an answer to HEAD has no body"
        );
    }

    #[test]
    fn connection_close_and_http_1_0_are_not_kept_alive() {
        assert!(
            !final_head(
                "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 1\r\n\r\n"
            )
            .keep_alive
        );
        assert!(!final_head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").keep_alive);
    }

    #[test]
    fn interim_answers_are_skipped() {
        let mut buffer = BytesMut::from(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(matches!(
            parse_response_head(&mut buffer, false),
            Ok(Parsed::Interim)
        ));
        let Ok(Parsed::Final(head)) = parse_response_head(&mut buffer, false) else {
            panic!("no final head");
        };
        assert_eq!(head.parts.status, StatusCode::CREATED);
        assert!(buffer.is_empty());
    }

    #[test]
    fn broken_heads_are_refused_with_what_is_wrong() {
        let refused = |text: &str| match parse(text) {
            Err(problem) => problem,
            other => panic!("{text:?} was accepted: {other:?}"),
        };
        assert!(refused("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")
            .contains("invalid Content-Length"));
        assert!(refused("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n")
            .contains("invalid Content-Length"));
        assert!(
            refused("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .contains("conflicting")
        );
        assert!(refused("HTTP/1.1 101 Switching Protocols\r\n\r\n").contains("switched protocols"));
        assert!(refused("SMTP ready\r\n\r\n").contains("unreadable response head"));
        let many: String = (0..=MAX_HEADERS)
            .map(|index| format!("X-{index}: v\r\n"))
            .collect();
        assert!(refused(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")).contains("more than 100"));
    }

    #[test]
    fn the_request_head_is_one_block_in_origin_form() {
        let request = hyper::Request::builder()
            .method(Method::POST)
            .uri("/letters?draft=1")
            .header("host", "steno.example")
            .header("content-type", "text/plain")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        assert_eq!(
            String::from_utf8(encode_request_head(&parts, true)).unwrap(),
            "POST /letters?draft=1 HTTP/1.1\r\nhost: steno.example\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let mut chunk = BytesMut::new();
        encode_chunk(b"hello, world!!!!!", &mut chunk);
        assert_eq!(&chunk[..], b"11\r\nhello, world!!!!!\r\n");
    }
}
