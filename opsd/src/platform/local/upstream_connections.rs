//! The upstream side of one client connection of the router: the kept-alive HTTP/1.1 connections
//! (`upstream_http1.rs`) to the releases it last sent to, used by the task that serves the client
//! connection, so a request and its answer never pass through another task.
//!
//! invariant: a connection is used for one request at a time, and only again once its previous
//! answer has been read to the end (`upstream_body.rs` hands it back).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::http::request;
use hyper::Response;
use tokio::net::TcpStream;

use super::reclaimable_body::ReclaimableBody;
use super::upstream_body::UpstreamBody;
use super::upstream_http1::{ClientBodyFailure, ExchangeFailure, Http1Connection};

/// Idle connections kept per client connection: the stable and the canary release.
const KEPT_PER_CLIENT_CONNECTION: usize = 2;

/// Why a request to an upstream got no answer.
#[derive(Debug)]
pub(super) enum SendFailure {
    /// No connection could be made, or the request head could not be written on it: the release
    /// cannot have acted on the request.
    NotConnected(String),
    /// The request was sent (perhaps in part) and failed.
    Failed(String),
    /// The client's request body failed while it was sent.
    ClientBody(ClientBodyFailure),
}

/// Where the idle connections of one client connection wait; response bodies hand theirs back.
#[derive(Clone, Default)]
pub(super) struct IdlePool(Arc<Mutex<Vec<Http1Connection>>>);

impl IdlePool {
    /// Keeps a connection whose answer was read to the end, dropping the oldest beyond the limit.
    pub(super) fn keep(&self, connection: Http1Connection) {
        let mut idle = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        idle.push(connection);
        if idle.len() > KEPT_PER_CLIENT_CONNECTION {
            idle.remove(0);
        }
    }

    /// An idle connection to `upstream` that is still open; closed ones are dropped.
    fn take(&self, upstream: SocketAddr) -> Option<Http1Connection> {
        let mut idle = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(at) = idle
            .iter()
            .position(|connection| connection.upstream() == upstream)
        {
            let connection = idle.remove(at);
            if connection.is_idle_and_open() {
                return Some(connection);
            }
        }
        None
    }
}

/// The upstream connections of one client connection; see the module documentation.
pub(super) struct UpstreamConnections {
    connect_timeout: Duration,
    idle: IdlePool,
}

impl UpstreamConnections {
    pub(super) fn new(connect_timeout: Duration) -> UpstreamConnections {
        UpstreamConnections {
            connect_timeout,
            idle: IdlePool::default(),
        }
    }

    /// Sends a request to `upstream` over a kept-alive connection, or a new one. A kept-alive
    /// connection found closed when the request went out is replaced by a new one, and so is one
    /// that closed without a word after a safe request whose body was not touched (the release
    /// closed it as the request arrived; nginx retries these too).
    pub(super) async fn send(
        &self,
        upstream: SocketAddr,
        head: request::Parts,
        mut body: ReclaimableBody,
    ) -> Result<Response<UpstreamBody>, SendFailure> {
        if let Some(mut connection) = self.idle.take(upstream) {
            match connection.exchange(&head, &mut body).await {
                Ok(response) => return Ok(self.response(connection, response)),
                Err(ExchangeFailure::HeadNotSent(_)) => {}
                Err(ExchangeFailure::NoAnswer {
                    body_sent: false, ..
                }) if head.method.is_safe() => {}
                Err(ExchangeFailure::ClientBody(failure)) => {
                    return Err(SendFailure::ClientBody(failure))
                }
                Err(failure) => return Err(SendFailure::Failed(failure.message().to_string())),
            }
        }
        let mut connection = self.connect(upstream).await?;
        match connection.exchange(&head, &mut body).await {
            Ok(response) => Ok(self.response(connection, response)),
            Err(ExchangeFailure::HeadNotSent(message)) => Err(SendFailure::NotConnected(message)),
            Err(ExchangeFailure::ClientBody(failure)) => Err(SendFailure::ClientBody(failure)),
            Err(failure) => Err(SendFailure::Failed(failure.message().to_string())),
        }
    }

    fn response(
        &self,
        connection: Http1Connection,
        head: super::upstream_http1::ResponseHead,
    ) -> Response<UpstreamBody> {
        let body = UpstreamBody::new(connection, head.framing, head.keep_alive, self.idle.clone());
        Response::from_parts(head.parts, body)
    }

    async fn connect(&self, upstream: SocketAddr) -> Result<Http1Connection, SendFailure> {
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(upstream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    return Err(SendFailure::NotConnected(format!(
                        "could not connect to {upstream}: {error}"
                    )))
                }
                Err(_) => {
                    return Err(SendFailure::NotConnected(format!(
                        "could not connect to {upstream} within {} ms",
                        self.connect_timeout.as_millis()
                    )))
                }
            };
        let _ = stream.set_nodelay(true);
        Ok(Http1Connection::new(upstream, stream))
    }
}
