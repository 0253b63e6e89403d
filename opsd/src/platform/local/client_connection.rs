//! One client connection of the router's public port, served in one task: read a request head
//! (`client_http1.rs`), hand the request to the route, write the answer's head and body back,
//! and take the next request while the connection is kept alive. Requests a client sends
//! without waiting (pipelining) are answered in order.
//!
//! Limits that keep one client from holding the router: a kept-alive connection with no request
//! for 60 s is closed, a request head must arrive whole within 30 s of its first byte (or it is
//! answered 408), a head is at most 64 KiB, a request body may not pause for more than 60 s, and
//! a client that does not read its answer for 60 s is let go. On shutdown, an idle connection is closed at
//! once and a busy one after its answer (`connection: close`), within the router's drain time.
//!
//! invariant: an answer's body is sent exactly as its head delimits it; when that cannot be kept
//! (the release's body failed or fell short) the connection is closed, never reused.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::{Method, Request, Response, StatusCode, Version};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::chunked_coding::{encode_chunk, LAST_CHUNK};
use super::client_body::{ClientBody, ClientReader};
use super::client_http1::{
    answer_framing, encode_answer_head, parse_request_head, AnswerFraming, ClientRequest, Refusal,
    RequestFraming, MAX_HEAD_BYTES,
};
use super::router::{json_error, ProxyBody, ServiceRoute};
use super::upstream_connections::UpstreamConnections;

/// How long the router reads and drops what a refused client still sends before closing, so
/// the refusal is not lost to a reset.
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);
/// The most a refused client's leftover bytes are read before closing anyway.
const LINGER_BYTES: usize = 256 * 1024;
/// Bytes asked of the socket per read while a request head is awaited: most heads fit, and an
/// idle connection holds no more than this (a body is read 16 KiB at a time).
const HEAD_READ_CHUNK: usize = 4 * 1024;
/// Answer bytes gathered before they are written even though more are ready.
const WRITE_BATCH: usize = 64 * 1024;
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How long a client connection may take at each stage.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnectionLimits {
    /// How long a kept-alive connection may wait for its next request.
    pub(super) idle: Duration,
    /// How long a request head may take from its first byte to its end.
    pub(super) head: Duration,
    /// How long a request body may go without a byte arriving.
    pub(super) body_idle: Duration,
    /// How long writing to the client may wait for it to read.
    pub(super) send: Duration,
    /// How long open requests may take to finish once the router shuts down.
    pub(super) drain: Duration,
    /// How long connecting to a release may take.
    pub(super) upstream_connect: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            idle: Duration::from_secs(60),
            head: Duration::from_secs(30),
            body_idle: Duration::from_secs(60),
            send: Duration::from_secs(60),
            drain: Duration::from_secs(5),
            upstream_connect: Duration::from_secs(2),
        }
    }
}

/// Serves one client connection until it closes, fails, idles out or the router shuts down.
pub(super) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    route: Arc<ServiceRoute>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = route.limits;
    let _ = stream.set_nodelay(true);
    let (reading, writing) = stream.into_split();
    let mut connection = ClientConnection {
        reader: Some(ClientReader {
            stream: reading,
            buffer: BytesMut::new(),
        }),
        writer: writing,
        out: BytesMut::new(),
        peer,
        upstreams: UpstreamConnections::new(limits.upstream_connect),
        shutdown: shutdown.clone(),
        limits,
    };
    let mut stopping = shutdown;
    let drained = async {
        let _ = stopping.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(limits.drain).await;
    };
    tokio::select! {
        () = connection.serve(&route) => {}
        () = drained => {}
    }
}

struct ClientConnection {
    /// The reading half, while no request body holds it.
    reader: Option<ClientReader>,
    writer: OwnedWriteHalf,
    /// Answer bytes not yet written.
    out: BytesMut,
    peer: SocketAddr,
    upstreams: UpstreamConnections,
    shutdown: watch::Receiver<bool>,
    limits: ConnectionLimits,
}

/// What waiting for the next request gave.
enum NextRequest {
    Request(ClientRequest),
    /// The client closed, idled out, or the router is shutting down: close quietly.
    Closed,
    Refused(Refusal),
}

impl ClientConnection {
    async fn serve(&mut self, route: &ServiceRoute) {
        while let Some(mut reader) = self.reader.take() {
            let request = match self.next_request(&mut reader).await {
                NextRequest::Request(request) => request,
                NextRequest::Closed => return,
                NextRequest::Refused(refusal) => {
                    tracing::debug!(service = %route.service, peer = %self.peer, error = %refusal.message, "router refused a request");
                    self.refuse(reader, &refusal).await;
                    return;
                }
            };
            let ClientRequest {
                parts,
                framing,
                keep_alive,
                expects_continue,
            } = request;
            let (method, version) = (parts.method.clone(), parts.version);
            let (body, reader_back) = if framing == RequestFraming::Empty {
                self.reader = Some(reader);
                (ClientBody::empty(), None)
            } else {
                if expects_continue && !self.send(CONTINUE).await {
                    return;
                }
                let (body, back) = ClientBody::new(reader, framing, self.limits.body_idle);
                (body, Some(back))
            };
            let proxying =
                route.proxy(Request::from_parts(parts, body), self.peer, &self.upstreams);
            let answer = match self.reader.as_mut() {
                // A client that goes away while its answer is awaited drops the request (and
                // its upstream connection) rather than leaving it running.
                Some(reader) => tokio::select! {
                    biased;
                    answer = proxying => answer,
                    () = client_gone(reader) => return,
                },
                None => proxying.await,
            };
            // A body not read to its end: the answer goes out, then the connection closes.
            let mut unread = None;
            if let Some(returned) = reader_back.and_then(|back| back.take()) {
                if returned.whole {
                    self.reader = Some(returned.reader);
                } else {
                    unread = Some(returned.reader);
                }
            }
            let kept = self
                .write_answer(
                    answer,
                    &method,
                    version,
                    keep_alive && self.reader.is_some(),
                )
                .await;
            if !kept {
                if let Some(reader) = unread {
                    self.linger(reader).await;
                }
                return;
            }
        }
    }

    /// Reads until a whole request head is in the buffer.
    async fn next_request(&mut self, reader: &mut ClientReader) -> NextRequest {
        let mut head_deadline: Option<Instant> = None;
        loop {
            if !reader.buffer.is_empty() {
                match parse_request_head(&mut reader.buffer) {
                    Ok(Some(request)) => return NextRequest::Request(request),
                    Ok(None) => {}
                    Err(refusal) => return NextRequest::Refused(refusal),
                }
            }
            let idle = reader.buffer.is_empty();
            if idle && *self.shutdown.borrow() {
                return NextRequest::Closed;
            }
            reader.buffer.reserve(HEAD_READ_CHUNK);
            let deadline = if idle {
                Instant::now() + self.limits.idle
            } else {
                *head_deadline.get_or_insert_with(|| Instant::now() + self.limits.head)
            };
            let mut shutdown = self.shutdown.clone();
            // Biased, so a request already there is read without the timer ever being set.
            tokio::select! {
                biased;
                read = reader.stream.read_buf(&mut reader.buffer) => match read {
                    Ok(0) | Err(_) => return NextRequest::Closed,
                    Ok(_) => {}
                },
                () = tokio::time::sleep_until(deadline) => {
                    if idle {
                        return NextRequest::Closed;
                    }
                    return NextRequest::Refused(Refusal {
                        status: StatusCode::REQUEST_TIMEOUT,
                        code: "request_timeout",
                        message: format!(
                            "the request head did not arrive whole within {} ms",
                            self.limits.head.as_millis()
                        ),
                    });
                }
                _ = shutdown.wait_for(|stopping| *stopping), if idle => return NextRequest::Closed,
            }
        }
    }

    /// Writes `answer` to a request made with `method` in `version`; whether the connection
    /// can take another request (`keep_alive`, and the answer went out whole as its head said).
    async fn write_answer(
        &mut self,
        answer: Response<ProxyBody>,
        method: &Method,
        version: Version,
        keep_alive: bool,
    ) -> bool {
        let (parts, body) = answer.into_parts();
        let framing = answer_framing(method, version, &parts, body.size_hint().exact());
        let keep = keep_alive && framing != AnswerFraming::UntilClose && !*self.shutdown.borrow();
        self.out.clear();
        encode_answer_head(&parts, version, framing, keep, &mut self.out);
        self.write_body(body, framing).await && keep
    }

    /// Answers a refused request with the router's JSON error, then closes lingering.
    async fn refuse(&mut self, reader: ClientReader, refusal: &Refusal) {
        let answer = json_error(refusal.status, refusal.code, &refusal.message);
        self.write_answer(answer, &Method::GET, Version::HTTP_11, false)
            .await;
        self.linger(reader).await;
    }

    /// Closes the write side, then reads and drops what the client still sends for a moment, so
    /// the last answer reaches it rather than a reset for unread bytes.
    async fn linger(&mut self, mut reader: ClientReader) {
        let _ = self.writer.shutdown().await;
        let mut dropped = 0usize;
        let _ = tokio::time::timeout(LINGER_TIMEOUT, async {
            while dropped < LINGER_BYTES {
                reader.buffer.clear();
                match reader.stream.read_buf(&mut reader.buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => dropped += read,
                }
            }
        })
        .await;
    }

    /// Writes the answer's head (already in `out`) and body as `framing` delimits it; whether
    /// the whole answer went out as its head said. Bytes that are ready are gathered and written
    /// together; before waiting for more of the body, what is gathered is written.
    async fn write_body(&mut self, body: ProxyBody, framing: AnswerFraming) -> bool {
        if framing == AnswerFraming::None {
            drop(body);
            return self.flush().await;
        }
        let mut body = body;
        let mut sent: u64 = 0;
        loop {
            let polled =
                poll_fn(|context| Poll::Ready(Pin::new(&mut body).poll_frame(context))).await;
            let frame = match polled {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    if !self.flush().await {
                        return false;
                    }
                    body.frame().await
                }
            };
            match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers are not forwarded
                    };
                    if data.is_empty() {
                        continue;
                    }
                    match framing {
                        AnswerFraming::Chunked => encode_chunk(&data, &mut self.out),
                        AnswerFraming::Length(length) => {
                            if sent + data.len() as u64 > length {
                                // More than the head said: what fits goes, then the connection
                                // closes.
                                let fits = usize::try_from(length - sent).unwrap_or(0);
                                self.out.put_slice(&data[..fits.min(data.len())]);
                                let _ = self.flush().await;
                                return false;
                            }
                            self.out.put_slice(&data);
                        }
                        AnswerFraming::UntilClose | AnswerFraming::None => {
                            self.out.put_slice(&data)
                        }
                    }
                    sent += data.len() as u64;
                    if self.out.len() >= WRITE_BATCH && !self.flush().await {
                        return false;
                    }
                }
                Some(Err(_)) => {
                    // The release's body failed: what came goes out, and the connection closes
                    // so the client sees the answer end short rather than a wrong one.
                    let _ = self.flush().await;
                    return false;
                }
                None => {
                    let complete = match framing {
                        AnswerFraming::Chunked => {
                            self.out.put_slice(LAST_CHUNK);
                            true
                        }
                        AnswerFraming::Length(length) => sent == length,
                        AnswerFraming::UntilClose | AnswerFraming::None => true,
                    };
                    return self.flush().await && complete;
                }
            }
        }
    }

    /// Writes what is gathered in `out`; whether it went.
    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let out = std::mem::take(&mut self.out);
        let written = self.send(&out).await;
        self.out = out;
        self.out.clear();
        written
    }

    /// Writes `bytes` to the client; whether they went within the send limit (a client that
    /// stops reading its answer is let go).
    async fn send(&mut self, bytes: &[u8]) -> bool {
        matches!(
            tokio::time::timeout(self.limits.send, self.writer.write_all(bytes)).await,
            Ok(Ok(()))
        )
    }
}

/// Completes once the client closed its side or the connection failed. Bytes the client sends
/// meanwhile (a pipelined request) are kept, up to one request head's length.
async fn client_gone(reader: &mut ClientReader) {
    while reader.buffer.len() < MAX_HEAD_BYTES {
        reader.buffer.reserve(HEAD_READ_CHUNK);
        match reader.stream.read_buf(&mut reader.buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    std::future::pending::<()>().await;
}
