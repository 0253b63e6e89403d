//! The body of a release's response as the router streams it to the client: read off the
//! upstream connection in frames of what the socket gave, delimited by its Content-Length, its
//! chunked coding or the end of the connection. Read to the end, the connection goes back to its
//! client connection's pool; dropped earlier (the client went away), it is closed.
//!
//! invariant: a connection goes back to the pool only when its answer was read exactly to the
//! end with nothing after it; memory held per body is one socket read (16 KiB) plus one chunk
//! size line (at most 4 KiB, `chunked_coding.rs`).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::body_delimiting::{Remaining, Step};
use super::chunked_coding::ChunkedDecoder;
use super::upstream_connections::IdlePool;
use super::upstream_http1::{Framing, Http1Connection};

/// A response body on its way from a release; see the module documentation.
pub(super) struct UpstreamBody {
    connection: Option<Http1Connection>,
    remaining: Remaining,
    keep_alive: bool,
    pool: IdlePool,
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
            let step = body.remaining.step(connection.buffer());
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
        self.remaining.is_end()
    }

    fn size_hint(&self) -> SizeHint {
        self.remaining.size_hint()
    }
}
