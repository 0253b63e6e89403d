//! A request body as the router reads it off a client connection: delimited by the request's
//! Content-Length or chunked coding (`client_http1.rs` decided which), handed on in frames of
//! what the socket gave. The body owns the connection's reading half while it is read and hands
//! it back to the serving loop: read to its end, with any pipelined bytes after the body, so the
//! loop can take the connection's next request; dropped before its end (the release answered
//! without reading all of it) or broken, marked so, and the loop closes the connection after
//! its answer.
//!
//! invariant: a connection carries another request only when the previous request's body was
//! read exactly to its end (`ReturnedReader::whole`); memory held per body is one socket read (16 KiB) plus one chunk size
//! line (4 KiB).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::{Instant, Sleep};

use super::body_delimiting::{Remaining, Step};
use super::chunked_coding::ChunkedDecoder;
use super::client_http1::RequestFraming;
use super::upstream_http1::READ_CHUNK;

/// The reading half of a client connection and the bytes read from it and not yet used.
pub(super) struct ClientReader {
    pub(super) stream: OwnedReadHalf,
    pub(super) buffer: BytesMut,
}

impl ClientReader {
    /// Reads more from the client into the buffer; `Ok(0)` once the client closed its side.
    pub(super) fn poll_fill(&mut self, context: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.buffer.reserve(READ_CHUNK);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), context, &mut self.buffer)
    }
}

/// The reading half a body gave back, and whether the body was read exactly to its end.
pub(super) struct ReturnedReader {
    pub(super) reader: ClientReader,
    pub(super) whole: bool,
}

/// Where a body leaves the connection's reading half.
#[derive(Clone, Default)]
pub(super) struct ReaderReturn(Arc<Mutex<Option<ReturnedReader>>>);

impl ReaderReturn {
    /// The reading half, once the body finished or was dropped.
    pub(super) fn take(&self) -> Option<ReturnedReader> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn put(&self, reader: ClientReader, whole: bool) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(ReturnedReader { reader, whole });
    }
}

/// A request body; see the module documentation.
pub(super) struct ClientBody {
    reader: Option<ClientReader>,
    remaining: Remaining,
    /// The body broke or the client went away: nothing more is read.
    failed: bool,
    back: Option<ReaderReturn>,
    /// How long the body may go without a byte, and the timer of the current wait (set only
    /// once a read has to wait).
    idle_limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl ClientBody {
    /// The body of a request that has none.
    pub(super) fn empty() -> ClientBody {
        ClientBody {
            reader: None,
            remaining: Remaining::Done,
            failed: false,
            back: None,
            idle_limit: Duration::MAX,
            stalled: None,
        }
    }

    /// The body that follows a request head in `reader`, and where the reader comes back; the
    /// body fails once no byte arrived for `idle_limit`.
    pub(super) fn new(
        reader: ClientReader,
        framing: RequestFraming,
        idle_limit: Duration,
    ) -> (ClientBody, ReaderReturn) {
        let back = ReaderReturn::default();
        let remaining = match framing {
            RequestFraming::Empty => Remaining::Done,
            RequestFraming::Length(length) => Remaining::Length(length),
            RequestFraming::Chunked => Remaining::Chunked(ChunkedDecoder::default()),
        };
        let mut body = ClientBody {
            reader: Some(reader),
            remaining,
            failed: false,
            back: Some(back.clone()),
            idle_limit,
            stalled: None,
        };
        if matches!(body.remaining, Remaining::Done) {
            body.finish();
        }
        (body, back)
    }

    fn finish(&mut self) {
        self.remaining = Remaining::Done;
        if let (Some(reader), Some(back)) = (self.reader.take(), self.back.as_ref()) {
            back.put(reader, true);
        }
    }

    fn fail(
        &mut self,
        kind: io::ErrorKind,
        message: String,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.failed = true;
        Poll::Ready(Some(Err(io::Error::new(kind, message))))
    }
}

impl Drop for ClientBody {
    fn drop(&mut self) {
        if let (Some(reader), Some(back)) = (self.reader.take(), self.back.as_ref()) {
            back.put(reader, false);
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let body = self.get_mut();
        loop {
            let Some(reader) = body.reader.as_mut() else {
                return Poll::Ready(None);
            };
            if body.failed {
                return Poll::Ready(None);
            }
            let step = body.remaining.step(&mut reader.buffer);
            match step {
                Step::Data(data) => {
                    // The upstream stops polling once the body says it ended, so the reader
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
                    return body.fail(
                        io::ErrorKind::InvalidData,
                        format!("the request's chunked body is broken: {problem}"),
                    );
                }
                Step::NeedMore => {
                    let filled = match reader.poll_fill(context) {
                        Poll::Ready(filled) => filled,
                        Poll::Pending => {
                            // A wait begins (or goes on): the client has `idle_limit` to send
                            // the next byte.
                            let limit = body.idle_limit;
                            let stalled = body
                                .stalled
                                .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                            ready!(stalled.as_mut().poll(context));
                            return body.fail(
                                io::ErrorKind::TimedOut,
                                format!(
                                    "the request body sent nothing for {} ms",
                                    limit.as_millis()
                                ),
                            );
                        }
                    };
                    if let Some(stalled) = body.stalled.as_mut() {
                        stalled.as_mut().reset(Instant::now() + body.idle_limit);
                    }
                    match filled {
                        Ok(0) => return body.fail(
                            io::ErrorKind::UnexpectedEof,
                            "the client closed the connection before the end of its request body"
                                .to_string(),
                        ),
                        Ok(_) => continue,
                        Err(error) => {
                            return body.fail(
                                error.kind(),
                                format!("reading the request body failed: {error}"),
                            )
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.remaining.is_end()
    }

    fn size_hint(&self) -> SizeHint {
        if self.failed {
            return SizeHint::with_exact(0);
        }
        self.remaining.size_hint()
    }
}
