//! The client side of the router's HTTP/1.1, spoken directly: a request head parsed off the
//! public port's socket, the rules that decide how its body is delimited and whether the
//! connection is kept, and the answer's head encoded in one piece. The serving loop is in
//! `client_connection.rs`; the request body is read by `client_body.rs`.
//!
//! The public port faces anyone, so the rules are strict where a lenient reading would let two
//! servers disagree on where a request ends (request smuggling): a request with both
//! Content-Length and Transfer-Encoding, with a Transfer-Encoding other than `chunked`, with
//! Content-Length values that differ, with a Transfer-Encoding in HTTP/1.0, or with two Host
//! headers is refused.
//!
//! invariant: a request head is at most 64 KiB and 100 headers; anything else unreadable is
//! refused with a 4xx or 5xx naming what was wrong (the serving loop answers it as the router's
//! JSON error and closes the connection after it).

use std::mem::MaybeUninit;

use bytes::{BufMut, BytesMut};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, EXPECT, HOST, TRANSFER_ENCODING,
};
use hyper::http::{request, response};
use hyper::{Method, Request, StatusCode, Uri, Version};

/// The longest request head accepted.
pub(super) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most request headers accepted.
const MAX_HEADERS: usize = 100;

/// How a request's body is delimited (RFC 9112, section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestFraming {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

/// A parsed request head and what it says about its body and the connection.
#[derive(Debug)]
pub(super) struct ClientRequest {
    pub(super) parts: request::Parts,
    pub(super) framing: RequestFraming,
    /// The client wants the connection kept for another request.
    pub(super) keep_alive: bool,
    /// The client waits for a `100 Continue` before sending its body.
    pub(super) expects_continue: bool,
}

/// A request head that cannot be served: the status to answer with and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl Refusal {
    fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }
}

/// Parses the request head at the start of `buffer`, consuming it (its body, if any, follows
/// there); `None` while the head is not whole yet. Empty lines before it are skipped, as
/// RFC 9112 (section 2.2) asks of a server.
pub(super) fn parse_request_head(buffer: &mut BytesMut) -> Result<Option<ClientRequest>, Refusal> {
    let leading_breaks = buffer
        .iter()
        .take_while(|byte| matches!(byte, b'\r' | b'\n'))
        .count();
    if leading_breaks > 0 {
        let _ = buffer.split_to(leading_breaks);
    }
    let mut slots = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let length = match httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut parsed,
        buffer,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buffer.len() >= MAX_HEAD_BYTES => {
            return Err(head_too_large())
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Refusal {
                status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                code: "request_header_fields_too_large",
                message: format!("the request has more than {MAX_HEADERS} headers"),
            })
        }
        Err(httparse::Error::Version) => return Err(version_refusal(buffer)),
        Err(error) => {
            return Err(Refusal::bad_request(format!(
                "the request head is unreadable: {error}"
            )))
        }
    };
    if length > MAX_HEAD_BYTES {
        return Err(head_too_large());
    }
    let method_text = parsed.method.unwrap_or_default();
    let method = Method::from_bytes(method_text.as_bytes())
        .map_err(|_| Refusal::bad_request(format!("the method {method_text:?} is invalid")))?;
    if method == Method::CONNECT {
        return Err(Refusal {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: "the router does not open tunnels (CONNECT)".to_string(),
        });
    }
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let start = buffer.as_ptr() as usize;
    let place_of = |slice: &[u8]| {
        (slice.as_ptr() as usize)
            .checked_sub(start)
            .map(|offset| offset..offset + slice.len())
            .filter(|place| place.end <= length)
    };
    let target_place = place_of(parsed.path.unwrap_or_default().as_bytes())
        .ok_or_else(|| Refusal::bad_request("the request target lies outside the request head"))?;
    let mut named = Vec::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
            Refusal::bad_request(format!("the header name {:?} is invalid", header.name))
        })?;
        let place = place_of(header.value).ok_or_else(|| {
            Refusal::bad_request(format!("the header {name} lies outside the request head"))
        })?;
        named.push((name, place));
    }
    // Header values and the target are slices of the head's own bytes, not copies of them.
    let head = buffer.split_to(length).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target_place))
        .map_err(|error| Refusal::bad_request(format!("the request target is invalid: {error}")))?;
    let mut headers = HeaderMap::with_capacity(named.len());
    for (name, place) in named {
        let value = HeaderValue::from_maybe_shared(head.slice(place)).map_err(|_| {
            Refusal::bad_request(format!("the value of the header {name} is invalid"))
        })?;
        headers.append(name, value);
    }
    // Two Host headers could name two sites to two readers (RFC 9112, section 3.2).
    if headers.get_all(HOST).iter().nth(1).is_some() {
        return Err(Refusal::bad_request(
            "the request has more than one Host header",
        ));
    }
    let framing = request_framing(&headers, version)?;
    let keep_alive = match version {
        Version::HTTP_10 => has_connection_token(&headers, "keep-alive"),
        _ => !has_connection_token(&headers, "close"),
    };
    let expects_continue = version == Version::HTTP_11
        && headers
            .get(EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(ClientRequest {
        parts,
        framing,
        keep_alive,
        expects_continue,
    }))
}

/// A request line whose version httparse could not read: another HTTP version (505), or a line
/// that is not `METHOD TARGET HTTP/1.x` at all (400).
fn version_refusal(buffer: &[u8]) -> Refusal {
    let line_end = buffer
        .iter()
        .position(|byte| matches!(byte, b'\r' | b'\n'))
        .unwrap_or(buffer.len());
    let words: Vec<&[u8]> = buffer[..line_end].split(|byte| *byte == b' ').collect();
    if words.len() == 3 && words[2].starts_with(b"HTTP/") {
        return Refusal {
            status: StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            code: "http_version_not_supported",
            message: format!(
                "the router speaks HTTP/1.0 and HTTP/1.1 only, not {}",
                String::from_utf8_lossy(&words[2][..words[2].len().min(16)])
            ),
        };
    }
    Refusal::bad_request("the request line is not METHOD TARGET HTTP/1.x")
}

fn head_too_large() -> Refusal {
    Refusal {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        code: "request_header_fields_too_large",
        message: format!(
            "the request head is longer than {} KiB",
            MAX_HEAD_BYTES / 1024
        ),
    }
}

/// How the body of a request is delimited (RFC 9112, section 6.3), refusing what two servers
/// could read differently.
fn request_framing(headers: &HeaderMap, version: Version) -> Result<RequestFraming, Refusal> {
    let has_length = headers.contains_key(CONTENT_LENGTH);
    if headers.contains_key(TRANSFER_ENCODING) {
        if has_length {
            return Err(Refusal::bad_request(
                "the request has both Content-Length and Transfer-Encoding",
            ));
        }
        if version == Version::HTTP_10 {
            return Err(Refusal::bad_request(
                "an HTTP/1.0 request cannot have a Transfer-Encoding",
            ));
        }
        let codings: Vec<&[u8]> = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
            .map(<[u8]>::trim_ascii)
            .collect();
        return match codings.as_slice() {
            [coding] if coding.eq_ignore_ascii_case(b"chunked") => Ok(RequestFraming::Chunked),
            _ => Err(Refusal {
                status: StatusCode::NOT_IMPLEMENTED,
                code: "not_implemented",
                message: "the router accepts no Transfer-Encoding but chunked".to_string(),
            }),
        };
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for item in value.as_bytes().split(|byte| *byte == b',') {
            let item = item.trim_ascii();
            let parsed = std::str::from_utf8(item)
                .ok()
                .filter(|text| !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or_else(|| {
                    Refusal::bad_request(format!(
                        "the Content-Length {:?} is not a number of bytes",
                        String::from_utf8_lossy(&value.as_bytes()[..value.len().min(40)])
                    ))
                })?;
            if length.is_some_and(|earlier| earlier != parsed) {
                return Err(Refusal::bad_request(
                    "the request has Content-Length values that differ",
                ));
            }
            length = Some(parsed);
        }
    }
    Ok(match length {
        None | Some(0) => RequestFraming::Empty,
        Some(length) => RequestFraming::Length(length),
    })
}

fn has_connection_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// How the answer's body goes to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AnswerFraming {
    /// No body is sent (an answer to HEAD, a 204 or 304): the head is sent as it is.
    None,
    /// The answer's Content-Length, or one the router adds for a body of known length.
    Length(u64),
    /// Chunked transfer coding (an HTTP/1.1 client, a body of unknown length).
    Chunked,
    /// Until the router closes the connection (an HTTP/1.0 client, a body of unknown length).
    UntilClose,
}

/// How the answer to a request is delimited: `known_length` is the body's exact length when
/// it is known, the answer's own Content-Length winning.
pub(super) fn answer_framing(
    request_method: &Method,
    request_version: Version,
    answer: &response::Parts,
    known_length: Option<u64>,
) -> AnswerFraming {
    let status = answer.status;
    if request_method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return AnswerFraming::None;
    }
    let declared = answer
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok());
    match (declared.or(known_length), request_version) {
        (Some(length), _) => AnswerFraming::Length(length),
        (None, Version::HTTP_10) => AnswerFraming::UntilClose,
        (None, _) => AnswerFraming::Chunked,
    }
}

/// The status line and headers of an answer, ending with the empty line, appended to `into`.
/// The answer's own Content-Length and Connection headers are replaced by what `framing` and
/// `keep_alive` say; header values come from parsed heads, so they hold no line breaks.
pub(super) fn encode_answer_head(
    answer: &response::Parts,
    request_version: Version,
    framing: AnswerFraming,
    keep_alive: bool,
    into: &mut BytesMut,
) {
    into.reserve(128 + answer.headers.len() * 48);
    let status = answer.status;
    into.put_slice(b"HTTP/1.1 ");
    into.put_slice(status.as_str().as_bytes());
    into.put_u8(b' ');
    into.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    into.put_slice(b"\r\n");
    for (name, value) in &answer.headers {
        if name == CONTENT_LENGTH || name == CONNECTION || name == TRANSFER_ENCODING {
            continue;
        }
        into.put_slice(name.as_str().as_bytes());
        into.put_slice(b": ");
        into.put_slice(value.as_bytes());
        into.put_slice(b"\r\n");
    }
    match framing {
        AnswerFraming::None => {
            // The head of an answer without a body keeps what it says of the body it would have.
            for value in answer.headers.get_all(CONTENT_LENGTH) {
                into.put_slice(b"content-length: ");
                into.put_slice(value.as_bytes());
                into.put_slice(b"\r\n");
            }
        }
        AnswerFraming::Length(length) => {
            into.put_slice(b"content-length: ");
            into.put_slice(length.to_string().as_bytes());
            into.put_slice(b"\r\n");
        }
        AnswerFraming::Chunked => into.put_slice(b"transfer-encoding: chunked\r\n"),
        AnswerFraming::UntilClose => {}
    }
    if !keep_alive {
        into.put_slice(b"connection: close\r\n");
    } else if request_version == Version::HTTP_10 {
        into.put_slice(b"connection: keep-alive\r\n");
    }
    into.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<Option<ClientRequest>, Refusal> {
        parse_request_head(&mut BytesMut::from(text))
    }

    fn request(text: &str) -> ClientRequest {
        match parse(text.as_bytes()) {
            Ok(Some(request)) => request,
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    fn refused(text: &[u8]) -> Refusal {
        match parse(text) {
            Err(refusal) => refusal,
            other => panic!("{:?} gave {other:?}", String::from_utf8_lossy(text)),
        }
    }

    #[test]
    fn a_head_is_parsed_and_its_body_left_in_the_buffer() {
        let mut buffer = BytesMut::from(
            &b"\r\nPOST /letters?draft=1 HTTP/1.1\r\nHost: steno.example\r\nX-Tag: a\r\nx-tag: \r\nContent-Length: 5\r\n\r\nhelloGET"[..],
        );
        let Ok(Some(request)) = parse_request_head(&mut buffer) else {
            panic!("not parsed");
        };
        assert_eq!(request.parts.method, Method::POST);
        assert_eq!(request.parts.uri, "/letters?draft=1");
        assert_eq!(request.parts.version, Version::HTTP_11);
        assert_eq!(request.parts.headers["host"], "steno.example");
        let tags: Vec<&[u8]> = request
            .parts
            .headers
            .get_all("x-tag")
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        assert_eq!(tags, vec![&b"a"[..], b""]);
        assert_eq!(request.framing, RequestFraming::Length(5));
        assert!(request.keep_alive);
        assert!(!request.expects_continue);
        assert_eq!(&buffer[..], b"helloGET");
    }

    #[test]
    fn a_head_split_anywhere_is_partial_until_whole() {
        let wire = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..wire.len() {
            assert!(matches!(parse(&wire[..cut]), Ok(None)), "cut at {cut}");
        }
        assert!(matches!(parse(wire), Ok(Some(_))));
    }

    #[test]
    fn the_connection_is_kept_as_the_client_asks() {
        assert!(request("GET / HTTP/1.1\r\n\r\n").keep_alive);
        assert!(!request("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").keep_alive);
        assert!(!request("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(
            request("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                .expects_continue
        );
        assert!(!request("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expects_continue);
    }

    #[test]
    fn the_body_is_delimited_by_one_unambiguous_rule() {
        let framing = |headers: &str| request(&format!("POST / HTTP/1.1\r\n{headers}\r\n")).framing;
        assert_eq!(framing(""), RequestFraming::Empty);
        assert_eq!(framing("Content-Length: 0\r\n"), RequestFraming::Empty);
        assert_eq!(
            framing("Content-Length: 12\r\n"),
            RequestFraming::Length(12)
        );
        assert_eq!(
            framing("Content-Length: 7, 7\r\nContent-Length: 7\r\n"),
            RequestFraming::Length(7)
        );
        assert_eq!(
            framing("Transfer-Encoding: Chunked\r\n"),
            RequestFraming::Chunked
        );
    }

    #[test]
    fn requests_two_servers_could_read_differently_are_refused() {
        let status =
            |headers: &str| refused(format!("POST / HTTP/1.1\r\n{headers}\r\n").as_bytes());
        let both = status("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n");
        assert_eq!(both.status, StatusCode::BAD_REQUEST);
        assert!(both
            .message
            .contains("both Content-Length and Transfer-Encoding"));
        for coding in [
            "gzip",
            "gzip, chunked",
            "chunked, chunked",
            "chunked\r\nTransfer-Encoding: gzip",
            "xchunked",
            "",
        ] {
            let refusal = status(&format!("Transfer-Encoding: {coding}\r\n"));
            assert_eq!(refusal.status, StatusCode::NOT_IMPLEMENTED, "{coding:?}");
        }
        for length in ["+5", "-1", "5 5", "0x10", "", "18446744073709551616", "٣"] {
            let refusal = status(&format!("Content-Length: {length}\r\n"));
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{length:?}");
            assert!(refusal.message.contains("Content-Length"), "{length:?}");
        }
        let differing = status("Content-Length: 5\r\nContent-Length: 6\r\n");
        assert!(differing.message.contains("differ"));
        let old = refused(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(old.message.contains("HTTP/1.0"));
        let hosts = refused(b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n");
        assert_eq!(hosts.status, StatusCode::BAD_REQUEST);
        assert!(hosts.message.contains("more than one Host"));
    }

    #[test]
    fn broken_heads_are_refused_with_what_is_wrong() {
        assert_eq!(
            refused(b"GET / HTTP/2.0\r\n\r\n").status,
            StatusCode::HTTP_VERSION_NOT_SUPPORTED
        );
        assert_eq!(
            refused(b"\x16\x03\x01\x02\x00\x01\x00").status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n").status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n").status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            refused(b"GET /a b HTTP/1.1\r\n\r\n").status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            refused(b"CONNECT steno.example:443 HTTP/1.1\r\n\r\n").status,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for index in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{index}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let refusal = refused(&many);
        assert_eq!(refusal.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert!(refusal.message.contains("more than 100 headers"));
        let mut endless = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        endless.resize(MAX_HEAD_BYTES + 1, b'a');
        let refusal = refused(&endless);
        assert_eq!(refusal.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert!(refusal.message.contains("64 KiB"));
    }

    fn answer(status: u16, headers: &[(&str, &str)]) -> response::Parts {
        let mut builder = hyper::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_answer_is_delimited_for_the_client_that_asked() {
        let with_length = answer(200, &[("content-length", "10")]);
        let plain = answer(200, &[]);
        let framing = |method: Method, version, parts: &response::Parts, known| {
            answer_framing(&method, version, parts, known)
        };
        assert_eq!(
            framing(Method::HEAD, Version::HTTP_11, &with_length, Some(0)),
            AnswerFraming::None
        );
        assert_eq!(
            framing(Method::GET, Version::HTTP_11, &answer(204, &[]), None),
            AnswerFraming::None
        );
        assert_eq!(
            framing(Method::GET, Version::HTTP_11, &answer(304, &[]), None),
            AnswerFraming::None
        );
        assert_eq!(
            framing(Method::GET, Version::HTTP_11, &with_length, None),
            AnswerFraming::Length(10)
        );
        assert_eq!(
            framing(Method::GET, Version::HTTP_11, &plain, Some(3)),
            AnswerFraming::Length(3)
        );
        assert_eq!(
            framing(Method::GET, Version::HTTP_11, &plain, None),
            AnswerFraming::Chunked
        );
        assert_eq!(
            framing(Method::GET, Version::HTTP_10, &plain, None),
            AnswerFraming::UntilClose
        );
    }

    #[test]
    fn the_answer_head_says_what_the_router_will_do() {
        let encoded = |parts: &response::Parts, version, framing, keep_alive| {
            let mut into = BytesMut::new();
            encode_answer_head(parts, version, framing, keep_alive, &mut into);
            String::from_utf8(into.to_vec()).unwrap()
        };
        let parts = answer(
            201,
            &[
                ("content-type", "text/plain"),
                ("content-length", "99"),
                ("connection", "keep-alive"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
            ],
        );
        assert_eq!(
            encoded(&parts, Version::HTTP_11, AnswerFraming::Length(5), true),
            "HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 5\r\n\r\n"
        );
        assert_eq!(
            encoded(&parts, Version::HTTP_11, AnswerFraming::None, false),
            "HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 99\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(
            encoded(
                &answer(200, &[]),
                Version::HTTP_11,
                AnswerFraming::Chunked,
                true
            ),
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        assert_eq!(
            encoded(
                &answer(200, &[]),
                Version::HTTP_10,
                AnswerFraming::Length(0),
                true
            ),
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
        );
        assert_eq!(
            encoded(
                &answer(599, &[]),
                Version::HTTP_10,
                AnswerFraming::UntilClose,
                false
            ),
            "HTTP/1.1 599 Unknown\r\nconnection: close\r\n\r\n"
        );
    }
}
