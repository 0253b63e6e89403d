//! The upstream side of one client connection of the router: the kept-alive HTTP/1.1 connections
//! to the releases it last sent to, driven by the task that serves the client connection, so a
//! request and its answer never pass through another task.
//!
//! invariant: a connection is used for one request at a time, and only again once its previous
//! answer has been read to the end.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use hyper::body::Incoming;
use hyper::client::conn::http1::{handshake, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::reclaimable_body::ReclaimableBody;
use crate::error_chain::error_chain;

/// Idle connections kept per client connection: the stable and the canary release.
const KEPT_PER_CLIENT_CONNECTION: usize = 2;

type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Why a request to an upstream got no answer.
#[derive(Debug)]
pub(super) enum SendFailure {
    /// No connection could be made: nothing of the request was sent.
    NotConnected(String),
    /// The request was sent (perhaps in part) and failed.
    Failed(String),
}

/// The upstream connections of one client connection; see the module documentation.
pub(super) struct UpstreamConnections {
    connect_timeout: Duration,
    idle: Mutex<Vec<(SocketAddr, SendRequest<ReclaimableBody>)>>,
    drivers: mpsc::UnboundedSender<Driver>,
}

/// What drives the connections of an [`UpstreamConnections`]: polled with the client connection.
pub(super) struct UpstreamDrivers {
    new: mpsc::UnboundedReceiver<Driver>,
    running: FuturesUnordered<Driver>,
}

impl UpstreamConnections {
    pub(super) fn new(connect_timeout: Duration) -> (UpstreamConnections, UpstreamDrivers) {
        let (drivers, new) = mpsc::unbounded_channel();
        (
            UpstreamConnections {
                connect_timeout,
                idle: Mutex::new(Vec::new()),
                drivers,
            },
            UpstreamDrivers {
                new,
                running: FuturesUnordered::new(),
            },
        )
    }

    /// Sends `request` to `upstream` over a kept-alive connection, or a new one. A kept-alive
    /// connection that closed before the request went out is replaced by a new one.
    pub(super) async fn send(
        &self,
        upstream: SocketAddr,
        request: Request<ReclaimableBody>,
    ) -> Result<Response<Incoming>, SendFailure> {
        let (mut sender, request) = match self.take_idle(upstream).await {
            Some(mut sender) => match sender.try_send_request(request).await {
                Ok(response) => {
                    self.keep(upstream, sender);
                    return Ok(response);
                }
                Err(mut failure) => match failure.take_message() {
                    Some(request) => (self.connect(upstream).await?, request),
                    None => return Err(SendFailure::Failed(error_chain(failure.error()))),
                },
            },
            None => (self.connect(upstream).await?, request),
        };
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| SendFailure::Failed(error_chain(&error)))?;
        self.keep(upstream, sender);
        Ok(response)
    }

    /// A kept-alive connection to `upstream` that can take a request now.
    async fn take_idle(&self, upstream: SocketAddr) -> Option<SendRequest<ReclaimableBody>> {
        loop {
            let mut sender = {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                let at = idle.iter().position(|(addr, _)| *addr == upstream)?;
                idle.remove(at).1
            };
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    fn keep(&self, upstream: SocketAddr, sender: SendRequest<ReclaimableBody>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.push((upstream, sender));
        if idle.len() > KEPT_PER_CLIENT_CONNECTION {
            idle.remove(0);
        }
    }

    async fn connect(
        &self,
        upstream: SocketAddr,
    ) -> Result<SendRequest<ReclaimableBody>, SendFailure> {
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
        let (sender, connection) = handshake(TokioIo::new(stream))
            .await
            .map_err(|error| SendFailure::Failed(error_chain(&error)))?;
        let driver: Driver = Box::pin(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "upstream connection ended with an error");
            }
        });
        self.drivers
            .send(driver)
            .map_err(|_| SendFailure::Failed("the client connection is closing".to_string()))?;
        Ok(sender)
    }
}

impl UpstreamDrivers {
    /// Runs `future` to its end while driving the upstream connections beside it.
    pub(super) async fn alongside<F: Future>(&mut self, future: Pin<&mut F>) -> F::Output {
        let mut future = future;
        loop {
            // Biased: the client connection first, then new upstream connections, then the
            // running ones (saves the random draw of an unbiased select on every wake-up).
            tokio::select! {
                biased;
                output = future.as_mut() => return output,
                Some(driver) = self.new.recv() => self.running.push(driver),
                Some(()) = self.running.next(), if !self.running.is_empty() => {}
            }
        }
    }
}
