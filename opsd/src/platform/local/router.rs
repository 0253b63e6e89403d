//! The local router: each service's public port, an HTTP/1.1 reverse proxy that splits requests
//! between the stable and canary releases by weight and counts every release's requests, errors,
//! latencies, response bytes and reported AI tokens per second (the usage the local cost model
//! and the cost-per-request check price). A request the canary refuses before anything was sent
//! (the canary is not running, or refuses the connection), or a safe request (GET, HEAD,
//! OPTIONS) it took and failed without answering (its process died under it), goes once to the
//! stable release, and counts as a failed canary request. Both sides of the proxy speak the
//! router's own HTTP/1.1: each client connection is served in one task
//! (`client_connection.rs`, `client_http1.rs`, `client_body.rs`), which keeps that connection's
//! upstream connections (`upstream_connections.rs`, `upstream_http1.rs`, `upstream_body.rs`),
//! so a request and its answer never pass through another task or a channel.
//!
//! invariant: bodies stream through in both directions; nothing buffers a whole request or
//! response. A request is sent again only when no upstream began to read its body.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, SizeHint};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, EXPECT, HOST, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};
use hyper::http::uri::PathAndQuery;
use hyper::{Request, Response, StatusCode, Uri, Version};
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::client_body::ClientBody;
use super::client_connection::{serve_connection, ConnectionLimits};
use super::reclaimable_body::ReclaimableBody;
use super::upstream_body::UpstreamBody;
use super::upstream_connections::{SendFailure, UpstreamConnections};
use super::upstream_http1::ClientBodyFailure;
use crate::core::traffic::{SecondSample, TrafficSample};
use crate::platform::{MetricSource, PlatformError, TrafficShifter, TrafficSplit};

/// Seconds of per-release samples kept (15 minutes).
pub const SAMPLE_RETENTION_SECS: i64 = 15 * 60;
/// The window of [`TrafficRouter::router_stats`].
pub const DASHBOARD_WINDOW_SECS: i64 = 60;

/// Response headers in which a release reports the AI tokens a request spent (Steno sets them).
pub const AI_INPUT_TOKENS_HEADER: &str = "x-ai-input-tokens";
pub const AI_OUTPUT_TOKENS_HEADER: &str = "x-ai-output-tokens";

/// Headers that describe one connection rather than the message, dropped in both directions.
const HOP_BY_HOP_HEADERS: [HeaderName; 7] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Finds the loopback address a release listens on; `None` for releases not running.
pub trait UpstreamResolver: Send + Sync {
    fn upstream_of(&self, release_id: &str) -> Option<SocketAddr>;
}

impl<F> UpstreamResolver for F
where
    F: Fn(&str) -> Option<SocketAddr> + Send + Sync,
{
    fn upstream_of(&self, release_id: &str) -> Option<SocketAddr> {
        self(release_id)
    }
}

/// One service's public side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    pub service: String,
    /// Where the service's public listener binds; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Request paths (exact match) forwarded but not counted.
    pub excluded_paths: Vec<String>,
}

pub(super) type ProxyBody = BoxBody<Bytes, std::io::Error>;

/// The reverse proxy of every service. Dropping it closes the listeners.
pub struct TrafficRouter {
    routes: HashMap<String, Arc<ServiceRoute>>,
    shutdown: watch::Sender<bool>,
    accept_tasks: Mutex<Vec<JoinHandle<()>>>,
}

pub(super) struct ServiceRoute {
    pub(super) service: String,
    public_addr: SocketAddr,
    excluded_paths: HashSet<String>,
    split: RwLock<Option<Arc<TrafficSplit>>>,
    counters: RwLock<HashMap<String, Arc<ReleaseCounter>>>,
    resolver: Arc<dyn UpstreamResolver>,
    in_flight: AtomicUsize,
    /// How long its client connections may take at each stage.
    pub(super) limits: ConnectionLimits,
}

/// The recent seconds of one release, oldest first.
#[derive(Default)]
struct ReleaseCounter {
    seconds: Mutex<VecDeque<SecondSample>>,
}

impl TrafficRouter {
    /// Binds every service's listener and starts serving. Services without a split answer 503.
    pub async fn bind(
        routes: Vec<RouteConfig>,
        resolver: Arc<dyn UpstreamResolver>,
    ) -> Result<TrafficRouter, PlatformError> {
        TrafficRouter::bind_with_limits(routes, resolver, ConnectionLimits::default()).await
    }

    /// [`TrafficRouter::bind`] with other limits on client connections.
    pub(super) async fn bind_with_limits(
        routes: Vec<RouteConfig>,
        resolver: Arc<dyn UpstreamResolver>,
        limits: ConnectionLimits,
    ) -> Result<TrafficRouter, PlatformError> {
        let (shutdown, _) = watch::channel(false);
        let mut bound = HashMap::new();
        let mut listeners = Vec::new();
        for route in routes {
            if bound.contains_key(&route.service) {
                return Err(PlatformError::Operation {
                    operation: format!("start the router of {}", route.service),
                    message: "the service is configured twice".to_string(),
                });
            }
            let listener = TcpListener::bind(route.listen).await.map_err(|error| {
                PlatformError::Operation {
                    operation: format!("listen for {} on {}", route.service, route.listen),
                    message: error.to_string(),
                }
            })?;
            let public_addr = listener
                .local_addr()
                .map_err(|error| PlatformError::Operation {
                    operation: format!("listen for {} on {}", route.service, route.listen),
                    message: error.to_string(),
                })?;
            tracing::info!(service = %route.service, addr = %public_addr, "router listening");
            let service_route = Arc::new(ServiceRoute {
                service: route.service.clone(),
                public_addr,
                excluded_paths: route.excluded_paths.into_iter().collect(),
                split: RwLock::new(None),
                counters: RwLock::new(HashMap::new()),
                resolver: Arc::clone(&resolver),
                in_flight: AtomicUsize::new(0),
                limits,
            });
            bound.insert(route.service, Arc::clone(&service_route));
            listeners.push((listener, service_route));
        }
        let accept_tasks = listeners
            .into_iter()
            .map(|(listener, route)| {
                tokio::spawn(accept_connections(listener, route, shutdown.subscribe()))
            })
            .collect();
        Ok(TrafficRouter {
            routes: bound,
            shutdown,
            accept_tasks: Mutex::new(accept_tasks),
        })
    }

    /// The bound public address of a service.
    pub fn public_address(&self, service: &str) -> Option<SocketAddr> {
        self.routes.get(service).map(|route| route.public_addr)
    }

    /// Every service's bound public address.
    pub fn public_addresses(&self) -> Vec<(String, SocketAddr)> {
        let mut addresses: Vec<(String, SocketAddr)> = self
            .routes
            .values()
            .map(|route| (route.service.clone(), route.public_addr))
            .collect();
        addresses.sort();
        addresses
    }

    /// Requests of a service currently waiting for an upstream's response headers.
    pub fn in_flight(&self, service: &str) -> Option<usize> {
        self.routes
            .get(service)
            .map(|route| route.in_flight.load(Ordering::Relaxed))
    }

    /// Each release's traffic over the last 60 seconds, by release id.
    pub fn router_stats(&self, service: &str) -> Vec<(String, TrafficSample)> {
        let Some(route) = self.routes.get(service) else {
            return Vec::new();
        };
        let now = unix_second();
        let from = now - DASHBOARD_WINDOW_SECS + 1;
        let counters: Vec<(String, Arc<ReleaseCounter>)> = read(&route.counters)
            .iter()
            .map(|(id, counter)| (id.clone(), Arc::clone(counter)))
            .collect();
        let mut stats: Vec<(String, TrafficSample)> = counters
            .into_iter()
            .map(|(id, counter)| {
                let seconds = counter.between(from, now + 1);
                let total = TrafficSample::sum(seconds.iter().map(|second| &second.sample));
                (id, total)
            })
            .collect();
        stats.sort_by(|left, right| left.0.cmp(&right.0));
        stats
    }

    /// Each release's traffic summed over the seconds `from..to` (half open), for the releases
    /// that have counters; the usage recorder reads consecutive windows of this.
    pub fn usage_between(&self, service: &str, from: i64, to: i64) -> Vec<(String, TrafficSample)> {
        let Some(route) = self.routes.get(service) else {
            return Vec::new();
        };
        let counters: Vec<(String, Arc<ReleaseCounter>)> = read(&route.counters)
            .iter()
            .map(|(id, counter)| (id.clone(), Arc::clone(counter)))
            .collect();
        let mut usage: Vec<(String, TrafficSample)> = counters
            .into_iter()
            .map(|(id, counter)| {
                let seconds = counter.between(from, to);
                (
                    id,
                    TrafficSample::sum(seconds.iter().map(|second| &second.sample)),
                )
            })
            .collect();
        usage.sort_by(|left, right| left.0.cmp(&right.0));
        usage
    }

    /// Stops accepting connections and lets open ones finish their requests (up to 5 s).
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let tasks: Vec<JoinHandle<()>> = lock(&self.accept_tasks).drain(..).collect();
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(error = %error, "router accept task failed");
            }
        }
    }

    fn route(&self, operation: &str, service: &str) -> Result<&Arc<ServiceRoute>, PlatformError> {
        self.routes
            .get(service)
            .ok_or_else(|| PlatformError::Operation {
                operation: format!("{operation} of {service}"),
                message: format!("the router has no service named {service}"),
            })
    }
}

#[async_trait::async_trait]
impl TrafficShifter for TrafficRouter {
    async fn set_split(&self, service: &str, split: &TrafficSplit) -> Result<(), PlatformError> {
        let route = self.route("set the traffic split", service)?;
        if split.canary_weight_percent > 100 {
            return Err(PlatformError::Operation {
                operation: format!("set the traffic split of {service}"),
                message: format!(
                    "a canary weight of {} % is over 100 %",
                    split.canary_weight_percent
                ),
            });
        }
        for release in std::iter::once(&split.stable).chain(split.canary.as_ref()) {
            if route.resolver.upstream_of(release).is_none() {
                return Err(PlatformError::UnknownRelease {
                    release: release.clone(),
                });
            }
        }
        *write(&route.split) = Some(Arc::new(split.clone()));
        tracing::info!(
            service = %service,
            stable = %split.stable,
            canary = split.canary.as_deref().unwrap_or("none"),
            canary_weight_percent = split.canary_weight_percent,
            "traffic split set"
        );
        Ok(())
    }

    async fn current_split(&self, service: &str) -> Result<Option<TrafficSplit>, PlatformError> {
        let route = self.route("read the traffic split", service)?;
        Ok(route.current_split().map(|split| (*split).clone()))
    }
}

#[async_trait::async_trait]
impl MetricSource for TrafficRouter {
    async fn samples(
        &self,
        service: &str,
        release_id: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<SecondSample>, PlatformError> {
        let route = self.route("read the traffic samples", service)?;
        let counter = read(&route.counters).get(release_id).cloned();
        Ok(counter
            .map(|counter| counter.between(from_second, to_second))
            .unwrap_or_default())
    }
}

async fn accept_connections(
    listener: TcpListener,
    route: Arc<ServiceRoute>,
    shutdown: watch::Receiver<bool>,
) {
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(serve_connection(stream, peer, Arc::clone(&route), shutdown.clone()));
                }
                Err(error) => {
                    // Usually out of file descriptors: pause instead of spinning.
                    tracing::warn!(service = %route.service, error = %error, "router could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    tracing::info!(service = %route.service, addr = %route.public_addr, "router stopped listening");
}

/// Completes once the router shuts down or is dropped.
async fn shutdown_requested(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

impl ServiceRoute {
    fn current_split(&self) -> Option<Arc<TrafficSplit>> {
        read(&self.split).clone()
    }

    pub(super) async fn proxy(
        &self,
        request: Request<ClientBody>,
        peer: SocketAddr,
        upstreams: &UpstreamConnections,
    ) -> Response<ProxyBody> {
        let _in_flight = InFlight::enter(&self.in_flight);
        let started = Instant::now();
        let Some(split) = self.current_split() else {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_release",
                &format!("no release of {} is receiving traffic", self.service),
            );
        };
        let mut release_id = choose_release(&split);
        let counted = !self.excluded_paths.contains(request.uri().path());
        let (parts, body) = request.into_parts();
        // A canary that refuses a request before anything was sent (not running, connection
        // refused), or fails a safe one without answering, does not fail the client: the
        // request goes once to the stable release, and the failure still counts against the
        // canary. Only a canary's request keeps its head.
        let to_canary = split.canary.as_deref() == Some(release_id) && split.stable != release_id;
        let retry_head = to_canary.then(|| RequestHead::of(&parts));
        let (body, slot) = ReclaimableBody::new(body);
        let mut forwarded = self.forward(release_id, parts, body, peer, upstreams).await;
        let canary_failed = match &forwarded {
            Ok(_) => false,
            Err(UpstreamFailure::NothingSent(_)) => true,
            // A safe request (GET, HEAD, OPTIONS, TRACE) the canary took and then failed without
            // an answer (its process died under it, on a kept-alive connection) is sent again
            // too: repeating it changes nothing.
            Err(UpstreamFailure::Failed(_)) => retry_head
                .as_ref()
                .is_some_and(|head| head.method.is_safe()),
            Err(UpstreamFailure::ClientBody(_)) => false,
        };
        if let (true, Some(retry_head)) = (canary_failed, retry_head) {
            if let Some(body) = slot.reclaim() {
                if counted {
                    let refusal_ms = whole_millis_rounded_up(started.elapsed());
                    self.counter(release_id)
                        .record(unix_second(), refusal_ms, true);
                }
                if let Err(failure) = &forwarded {
                    tracing::warn!(service = %self.service, release = %release_id, error = %failure, "the canary refused a request; sending it to the stable release");
                }
                release_id = &split.stable;
                let (body, _) = ReclaimableBody::new(body);
                forwarded = self
                    .forward(release_id, retry_head.into_parts(), body, peer, upstreams)
                    .await;
            }
        }
        let response = match forwarded {
            Ok(response) => response,
            Err(UpstreamFailure::ClientBody(failure)) => {
                tracing::debug!(service = %self.service, release = %release_id, error = %failure.message, "a client's request body failed");
                return if failure.timed_out {
                    json_error(
                        StatusCode::REQUEST_TIMEOUT,
                        "request_timeout",
                        &failure.message,
                    )
                } else {
                    json_error(
                        StatusCode::BAD_REQUEST,
                        "bad_request_body",
                        &failure.message,
                    )
                };
            }
            Err(failure) => {
                tracing::warn!(service = %self.service, release = %release_id, error = %failure, "upstream request failed");
                let answer = json_error(
                    StatusCode::BAD_GATEWAY,
                    "bad_gateway",
                    &format!("{release_id} could not answer: {failure}"),
                );
                if counted {
                    // Counted as the upstream's answers are: a server error, and its bytes.
                    let (counter, second) = (self.counter(release_id), unix_second());
                    counter.record(second, whole_millis_rounded_up(started.elapsed()), true);
                    if let Some(bytes) = hyper::body::Body::size_hint(answer.body()).exact() {
                        counter.record_bytes(second, bytes);
                    }
                }
                return answer;
            }
        };
        if !counted {
            return response.map(BodyExt::boxed);
        }
        let is_error = response.status().is_server_error();
        let counter = self.counter(release_id);
        let second = unix_second();
        counter.record(second, whole_millis_rounded_up(started.elapsed()), is_error);
        let (input_tokens, output_tokens) = (
            token_header(response.headers(), AI_INPUT_TOKENS_HEADER),
            token_header(response.headers(), AI_OUTPUT_TOKENS_HEADER),
        );
        if input_tokens > 0 || output_tokens > 0 {
            counter.record_ai_tokens(second, input_tokens, output_tokens);
        }
        let (parts, body) = response.into_parts();
        let body = CountedBody {
            inner: body,
            bytes: 0,
            counter,
        };
        Response::from_parts(parts, body.boxed())
    }

    /// Sends a request to `release_id`.
    async fn forward(
        &self,
        release_id: &str,
        mut parts: hyper::http::request::Parts,
        body: ReclaimableBody,
        peer: SocketAddr,
        upstreams: &UpstreamConnections,
    ) -> Result<Response<UpstreamBody>, UpstreamFailure> {
        let Some(upstream) = self.resolver.upstream_of(release_id) else {
            return Err(UpstreamFailure::NothingSent(format!(
                "{release_id} is not running"
            )));
        };
        // Origin form, as HTTP/1.1 sends it to a server that is not a proxy.
        parts.uri = Uri::from(
            parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        parts.version = Version::HTTP_11;
        remove_hop_by_hop_headers(&mut parts.headers);
        // The client's expectation of a 100 Continue is answered by the router's own server.
        parts.headers.remove(EXPECT);
        if !parts.headers.contains_key(HOST) {
            if let Ok(host) = HeaderValue::from_str(&upstream.to_string()) {
                parts.headers.insert(HOST, host);
            }
        }
        append_forwarded_for(&mut parts.headers, peer);
        if !parts.headers.contains_key(X_REQUEST_ID) {
            if let Some(id) = new_request_id() {
                parts.headers.insert(X_REQUEST_ID, id);
            }
        }
        let response =
            upstreams
                .send(upstream, parts, body)
                .await
                .map_err(|failure| match failure {
                    SendFailure::NotConnected(message) => UpstreamFailure::NothingSent(message),
                    SendFailure::Failed(message) => UpstreamFailure::Failed(message),
                    SendFailure::ClientBody(failure) => UpstreamFailure::ClientBody(failure),
                })?;
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop_headers(&mut parts.headers);
        Ok(Response::from_parts(parts, body))
    }

    fn counter(&self, release_id: &str) -> Arc<ReleaseCounter> {
        if let Some(counter) = read(&self.counters).get(release_id) {
            return Arc::clone(counter);
        }
        Arc::clone(
            write(&self.counters)
                .entry(release_id.to_string())
                .or_default(),
        )
    }
}

impl ReleaseCounter {
    fn record(&self, second: i64, latency_ms: u64, is_error: bool) {
        let mut seconds = lock(&self.seconds);
        // Requests finish roughly in order, so the second is at or near the back.
        match seconds.iter().rposition(|entry| entry.second <= second) {
            Some(index) if seconds[index].second == second => {
                seconds[index].sample.record(latency_ms, is_error)
            }
            position => {
                let mut sample = TrafficSample::default();
                sample.record(latency_ms, is_error);
                let at = position.map_or(0, |index| index + 1);
                seconds.insert(at, SecondSample { second, sample });
            }
        }
        let newest = seconds.back().map_or(second, |entry| entry.second);
        while seconds
            .front()
            .is_some_and(|entry| entry.second <= newest - SAMPLE_RETENTION_SECS)
        {
            seconds.pop_front();
        }
    }

    /// Changes the sample of `second` (created empty when it has none yet).
    fn add_to_second(&self, second: i64, update: impl FnOnce(&mut TrafficSample)) {
        let mut seconds = lock(&self.seconds);
        match seconds.iter().rposition(|entry| entry.second <= second) {
            Some(index) if seconds[index].second == second => update(&mut seconds[index].sample),
            position => {
                let mut sample = TrafficSample::default();
                update(&mut sample);
                let at = position.map_or(0, |index| index + 1);
                seconds.insert(at, SecondSample { second, sample });
            }
        }
    }

    /// Adds response bytes to `second`.
    fn record_bytes(&self, second: i64, bytes: u64) {
        self.add_to_second(second, |sample| {
            sample.bytes_out = sample.bytes_out.saturating_add(bytes)
        });
    }

    /// Adds the AI tokens a response reported to `second`.
    fn record_ai_tokens(&self, second: i64, input: u64, output: u64) {
        self.add_to_second(second, |sample| {
            sample.ai_input_tokens = sample.ai_input_tokens.saturating_add(input);
            sample.ai_output_tokens = sample.ai_output_tokens.saturating_add(output);
        });
    }

    /// The stored seconds in `from..to`.
    fn between(&self, from: i64, to: i64) -> Vec<SecondSample> {
        lock(&self.seconds)
            .iter()
            .filter(|entry| entry.second >= from && entry.second < to)
            .copied()
            .collect()
    }
}

/// Why a request to a release got no answer.
#[derive(Debug)]
enum UpstreamFailure {
    /// The release is not running or refused the connection: nothing of the request was sent.
    NothingSent(String),
    /// The request was sent (perhaps in part) and failed.
    Failed(String),
    /// The client's request body failed (a broken chunk, the client gone): the client's fault,
    /// never counted against the release.
    ClientBody(ClientBodyFailure),
}

impl std::fmt::Display for UpstreamFailure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamFailure::NothingSent(message) | UpstreamFailure::Failed(message) => {
                formatter.write_str(message)
            }
            UpstreamFailure::ClientBody(failure) => formatter.write_str(&failure.message),
        }
    }
}

/// What a request is sent again with: its method, URI and headers (the body is reclaimed).
struct RequestHead {
    method: hyper::Method,
    uri: Uri,
    headers: HeaderMap,
}

impl RequestHead {
    fn of(parts: &hyper::http::request::Parts) -> RequestHead {
        RequestHead {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
        }
    }

    fn into_parts(self) -> hyper::http::request::Parts {
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.method = self.method;
        parts.uri = self.uri;
        parts.headers = self.headers;
        parts
    }
}

/// A response body on its way to the client that counts its bytes and adds them to the release's
/// current second when it is dropped (finished, or abandoned by the client): one count per
/// response, however many chunks it streams.
struct CountedBody {
    inner: UpstreamBody,
    bytes: u64,
    counter: Arc<ReleaseCounter>,
}

impl hyper::body::Body for CountedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.bytes = self.bytes.saturating_add(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.counter.record_bytes(unix_second(), self.bytes);
        }
    }
}

/// Counts a request as in flight until dropped, also when the client goes away.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn choose_release(split: &TrafficSplit) -> &str {
    match &split.canary {
        Some(canary) if split.canary_weight_percent >= 100 => canary,
        Some(canary)
            if split.canary_weight_percent > 0
                && rand::thread_rng().gen_range(0..100u8) < split.canary_weight_percent =>
        {
            canary
        }
        _ => &split.stable,
    }
}

fn remove_hop_by_hop_headers(headers: &mut HeaderMap) {
    if headers.contains_key(CONNECTION) {
        let nominated: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in nominated {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP_HEADERS {
        headers.remove(name);
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, peer: SocketAddr) {
    let client = peer.ip().to_string();
    let earlier: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    let chain = if earlier.is_empty() {
        client
    } else {
        format!("{}, {client}", earlier.join(", "))
    };
    if let Ok(value) = HeaderValue::from_str(&chain) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

/// A random (version 4) UUID for a request that came without an id, drawn from the thread's
/// generator rather than the operating system's.
fn new_request_id() -> Option<HeaderValue> {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = id.hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).ok()
}

/// The router's own answer: `{"error": {"code", "message"}}` with `status`.
pub(super) fn json_error(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A token count from a response header; missing or unreadable counts as 0.
fn token_header(headers: &HeaderMap, name: &str) -> u64 {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

fn whole_millis_rounded_up(elapsed: Duration) -> u64 {
    let nanos = elapsed.as_nanos();
    u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

fn unix_second() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
pub(super) mod tests {
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::sync::atomic::AtomicU64;
    use std::task::{Context, Poll};

    use axum::extract::{ConnectInfo, State};
    use axum::response::IntoResponse;
    use hyper::body::Frame;
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    use tokio::sync::{mpsc, Notify};

    use super::*;
    use crate::core::traffic::{latency_bucket, window_sum};
    use crate::platform::local::test_support::eventually;

    const STREAM_CHUNK: usize = 64 * 1024;
    const STREAM_TAIL_CHUNKS: usize = 128; // 8 MiB after the first chunk
    const SLOW_DELAY: Duration = Duration::from_millis(120);

    /// What a test upstream does with the requests of `/`.
    #[derive(Clone, Copy)]
    pub(in crate::platform::local) enum Behaviour {
        Answer,
        /// Every second request fails with 500.
        FailEverySecond,
        Slow,
    }

    #[derive(Clone)]
    struct UpstreamState {
        name: &'static str,
        behaviour: Behaviour,
        hits: Arc<AtomicU64>,
        /// Lets `/stream` send the rest of its body.
        release_stream: Arc<Notify>,
    }

    pub(in crate::platform::local) struct Upstream {
        pub(in crate::platform::local) addr: SocketAddr,
        release_stream: Arc<Notify>,
    }

    pub(in crate::platform::local) async fn start_upstream(
        name: &'static str,
        behaviour: Behaviour,
    ) -> Upstream {
        let state = UpstreamState {
            name,
            behaviour,
            hits: Arc::new(AtomicU64::new(0)),
            release_stream: Arc::new(Notify::new()),
        };
        let release_stream = Arc::clone(&state.release_stream);
        let app = axum::Router::new()
            .route("/headers", axum::routing::any(echo_headers))
            .route("/echo", axum::routing::post(echo_body))
            .route("/stream", axum::routing::get(stream_body))
            .route("/hang", axum::routing::get(hang))
            .route("/draft", axum::routing::post(draft))
            .fallback(answer)
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Upstream {
            addr,
            release_stream,
        }
    }

    async fn answer(State(state): State<UpstreamState>) -> axum::response::Response {
        let hit = state.hits.fetch_add(1, Ordering::Relaxed);
        match state.behaviour {
            Behaviour::Answer => {}
            Behaviour::FailEverySecond if hit % 2 == 1 => {
                return (StatusCode::INTERNAL_SERVER_ERROR, "failed").into_response()
            }
            Behaviour::FailEverySecond => {}
            Behaviour::Slow => tokio::time::sleep(SLOW_DELAY).await,
        }
        state.name.into_response()
    }

    /// Answers like a drafting request that spent 1,200 input and 800 output tokens.
    async fn draft() -> axum::response::Response {
        let mut response = "drafted".into_response();
        let headers = response.headers_mut();
        headers.insert(AI_INPUT_TOKENS_HEADER, HeaderValue::from_static("1200"));
        headers.insert(AI_OUTPUT_TOKENS_HEADER, HeaderValue::from_static("800"));
        response
    }

    async fn echo_headers(
        ConnectInfo(peer): ConnectInfo<SocketAddr>,
        request: axum::extract::Request,
    ) -> axum::response::Response {
        let headers: serde_json::Map<String, serde_json::Value> = request
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    serde_json::Value::from(value.to_str().unwrap_or("")),
                )
            })
            .collect();
        let body = serde_json::json!({
            "method": request.method().as_str(),
            "uri": request.uri().to_string(),
            "peer_port": peer.port(),
            "headers": headers,
        });
        (
            [("keep-alive", "timeout=5"), ("x-upstream-answer", "kept")],
            axum::Json(body),
        )
            .into_response()
    }

    async fn echo_body(request: axum::extract::Request) -> String {
        let Ok(bytes) = axum::body::to_bytes(request.into_body(), usize::MAX).await else {
            return "the body did not arrive whole".to_string();
        };
        let checksum: u64 = bytes.iter().map(|byte| u64::from(*byte)).sum();
        format!("{} {checksum}", bytes.len())
    }

    async fn stream_body(State(state): State<UpstreamState>) -> axum::response::Response {
        let (chunks, receiver) = mpsc::channel::<Bytes>(4);
        tokio::spawn(async move {
            let _ = chunks.send(Bytes::from(vec![b'a'; STREAM_CHUNK])).await;
            state.release_stream.notified().await;
            for _ in 0..STREAM_TAIL_CHUNKS {
                if chunks
                    .send(Bytes::from(vec![b'b'; STREAM_CHUNK]))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        axum::body::Body::new(ChannelBody(receiver)).into_response()
    }

    async fn hang() -> &'static str {
        tokio::time::sleep(Duration::from_secs(30)).await;
        "late"
    }

    /// A response body fed chunk by chunk through a channel (no length: sent chunked).
    struct ChannelBody(mpsc::Receiver<Bytes>);

    impl hyper::body::Body for ChannelBody {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|data| Ok(Frame::data(data))))
        }
    }

    pub(in crate::platform::local) type ReleaseTable = Arc<Mutex<HashMap<String, SocketAddr>>>;

    pub(in crate::platform::local) async fn router_for(
        releases: &[(&str, SocketAddr)],
    ) -> (TrafficRouter, ReleaseTable) {
        router_with_limits(releases, ConnectionLimits::default()).await
    }

    /// A router of the service `web` over `releases`, its client connections held to `limits`.
    pub(in crate::platform::local) async fn router_with_limits(
        releases: &[(&str, SocketAddr)],
        limits: ConnectionLimits,
    ) -> (TrafficRouter, ReleaseTable) {
        let table: ReleaseTable = Arc::new(Mutex::new(
            releases
                .iter()
                .map(|(id, addr)| (id.to_string(), *addr))
                .collect(),
        ));
        let lookup = Arc::clone(&table);
        let resolver = move |id: &str| lock(&lookup).get(id).copied();
        let router = TrafficRouter::bind_with_limits(
            vec![RouteConfig {
                service: "web".to_string(),
                listen: "127.0.0.1:0".parse().unwrap(),
                excluded_paths: vec!["/excluded".to_string()],
            }],
            Arc::new(resolver),
            limits,
        )
        .await
        .unwrap();
        (router, table)
    }

    pub(in crate::platform::local) fn base_url(router: &TrafficRouter) -> String {
        format!("http://{}", router.public_address("web").unwrap())
    }

    pub(in crate::platform::local) fn http_client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    pub(in crate::platform::local) async fn split(
        router: &TrafficRouter,
        stable: &str,
        canary: Option<&str>,
        weight: u8,
    ) {
        router
            .set_split(
                "web",
                &TrafficSplit {
                    stable: stable.to_string(),
                    canary: canary.map(str::to_string),
                    canary_weight_percent: weight,
                },
            )
            .await
            .unwrap();
    }

    pub(in crate::platform::local) async fn total(
        router: &TrafficRouter,
        release: &str,
    ) -> TrafficSample {
        let now = unix_second();
        let series = router
            .samples("web", release, now - 120, now + 2)
            .await
            .unwrap();
        window_sum(&series, now - 120, now + 2)
    }

    async fn get_text(client: &reqwest::Client, url: &str) -> (u16, String) {
        let response = client.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    #[tokio::test]
    async fn weights_route_requests_in_proportion() {
        let stable = start_upstream("stable", Behaviour::Answer).await;
        let canary = start_upstream("canary", Behaviour::Answer).await;
        let (router, _) =
            router_for(&[("web@stable", stable.addr), ("web@canary", canary.addr)]).await;
        let client = http_client();
        let url = base_url(&router);
        const REQUESTS: u64 = 300;
        let mut to_canary_overall = 0;
        for weight in [0u8, 10, 50, 100] {
            split(&router, "web@stable", Some("web@canary"), weight).await;
            let mut to_canary = 0;
            for _ in 0..REQUESTS {
                let (status, body) = get_text(&client, &url).await;
                assert_eq!(status, 200);
                if body == "canary" {
                    to_canary += 1;
                }
            }
            let p = f64::from(weight) / 100.0;
            let expected = REQUESTS as f64 * p;
            let six_sigma = 6.0 * (REQUESTS as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (to_canary as f64 - expected).abs() <= six_sigma,
                "weight {weight} %: {to_canary} of {REQUESTS} went to the canary"
            );
            to_canary_overall += to_canary;
        }
        let canary_total = total(&router, "web@canary").await;
        let stable_total = total(&router, "web@stable").await;
        assert_eq!(canary_total.requests, to_canary_overall);
        assert_eq!(stable_total.requests, 4 * REQUESTS - to_canary_overall);
        assert_eq!(canary_total.errors + stable_total.errors, 0);
        // Every answer is six bytes ("stable", "canary"), counted for the release that sent it.
        eventually(
            "every body's bytes are counted",
            Duration::from_secs(5),
            async || {
                total(&router, "web@canary").await.bytes_out == 6 * to_canary_overall
                    && total(&router, "web@stable").await.bytes_out
                        == 6 * (4 * REQUESTS - to_canary_overall)
            },
        )
        .await;
    }

    #[tokio::test]
    async fn counts_errors_latencies_and_skips_excluded_paths() {
        let fast = start_upstream("fast", Behaviour::Answer).await;
        let flaky = start_upstream("flaky", Behaviour::FailEverySecond).await;
        let slow = start_upstream("slow", Behaviour::Slow).await;
        let (router, _) = router_for(&[
            ("web@fast", fast.addr),
            ("web@flaky", flaky.addr),
            ("web@slow", slow.addr),
        ])
        .await;
        let client = http_client();
        let url = base_url(&router);

        split(&router, "web@flaky", None, 0).await;
        for _ in 0..20 {
            get_text(&client, &url).await;
        }
        let flaky_total = total(&router, "web@flaky").await;
        assert_eq!((flaky_total.requests, flaky_total.errors), (20, 10));

        split(&router, "web@slow", None, 0).await;
        for _ in 0..5 {
            assert_eq!(get_text(&client, &url).await.1, "slow");
        }
        let slow_total = total(&router, "web@slow").await;
        assert_eq!((slow_total.requests, slow_total.errors), (5, 0));
        let fastest_slow_bucket = latency_bucket(SLOW_DELAY.as_millis() as u64);
        assert_eq!(
            slow_total.latency_buckets[fastest_slow_bucket..]
                .iter()
                .sum::<u64>(),
            5
        );
        assert!(slow_total.latency_total_ms >= 5 * SLOW_DELAY.as_millis() as u64);

        split(&router, "web@fast", None, 0).await;
        for _ in 0..20 {
            get_text(&client, &url).await;
        }
        for _ in 0..7 {
            get_text(&client, &format!("{url}/excluded")).await;
        }
        let fast_total = total(&router, "web@fast").await;
        assert_eq!((fast_total.requests, fast_total.errors), (20, 0));
        assert!(fast_total.latency_quantile_ms(0.5).unwrap() <= 50);

        let stats = router.router_stats("web");
        let requests: Vec<(&str, u64)> = stats
            .iter()
            .map(|(id, sample)| (id.as_str(), sample.requests))
            .collect();
        assert_eq!(
            requests,
            vec![("web@fast", 20), ("web@flaky", 20), ("web@slow", 5)]
        );
        assert!(router.router_stats("nope").is_empty());
    }

    #[tokio::test]
    async fn streams_large_bodies_without_buffering_them() {
        let upstream = start_upstream("streamer", Behaviour::Answer).await;
        let (router, _) = router_for(&[("web@streamer", upstream.addr)]).await;
        split(&router, "web@streamer", None, 0).await;
        let client = http_client();
        let url = base_url(&router);

        let mut response = client.get(format!("{url}/stream")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        // The upstream holds back everything after its first chunk until we have seen bytes: a
        // router that buffered whole bodies would never deliver them.
        let first = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("the first bytes arrive while the upstream is still writing")
            .unwrap()
            .unwrap();
        assert!(first.iter().all(|byte| *byte == b'a'));
        let mut received = first.len();
        upstream.release_stream.notify_one();
        while let Some(chunk) = response.chunk().await.unwrap() {
            received += chunk.len();
        }
        assert_eq!(received, STREAM_CHUNK * (STREAM_TAIL_CHUNKS + 1));

        // Uploads stream the other way.
        let upload: Vec<u8> = (0..9 * 1024 * 1024)
            .map(|index| (index % 251) as u8)
            .collect();
        let checksum: u64 = upload.iter().map(|byte| u64::from(*byte)).sum();
        let (length, expected) = (upload.len(), format!("{} {checksum}", upload.len()));
        let echoed = client
            .post(format!("{url}/echo"))
            .body(upload)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(echoed, expected, "{length} bytes sent");
        assert_eq!(total(&router, "web@streamer").await.requests, 2);
        // Response bytes are counted once each body is done: the stream and the echo's answer.
        let bytes_sent = (received + echoed.len()) as u64;
        eventually(
            "the response bytes are counted",
            Duration::from_secs(5),
            async || total(&router, "web@streamer").await.bytes_out == bytes_sent,
        )
        .await;
        let now = unix_second();
        let usage = router.usage_between("web", now - 120, now + 2);
        assert_eq!(usage.len(), 1);
        assert_eq!(usage[0].0, "web@streamer");
        assert_eq!(usage[0].1.requests, 2);
        assert_eq!(usage[0].1.bytes_out, bytes_sent);
        assert!(router.usage_between("nope", now - 120, now + 2).is_empty());

        // AI tokens a release reports on its responses are counted for it.
        for _ in 0..3 {
            let drafted = client.post(format!("{url}/draft")).send().await.unwrap();
            assert_eq!(drafted.headers()[AI_INPUT_TOKENS_HEADER], "1200");
            drafted.bytes().await.unwrap();
        }
        let counted = total(&router, "web@streamer").await;
        assert_eq!(counted.requests, 5);
        assert_eq!(
            (counted.ai_input_tokens, counted.ai_output_tokens),
            (3_600, 2_400)
        );
    }

    pub(in crate::platform::local) async fn one_connection(
        addr: SocketAddr,
    ) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender
    }

    pub(in crate::platform::local) async fn send(
        sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
        request: Request<Full<Bytes>>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (parts.status, parts.headers, body)
    }

    #[tokio::test]
    async fn preserves_headers_and_drops_hop_by_hop_ones() {
        let upstream = start_upstream("echo", Behaviour::Answer).await;
        let (router, _) = router_for(&[("web@echo", upstream.addr)]).await;
        split(&router, "web@echo", None, 0).await;
        let public = router.public_address("web").unwrap();
        let mut sender = one_connection(public).await;

        let request = Request::builder()
            .method("PUT")
            .uri("/headers?matter=17&draft=yes")
            .header("host", "steno.example")
            .header("connection", "keep-alive, x-hop-only")
            .header("x-hop-only", "secret")
            .header("keep-alive", "timeout=5")
            .header("proxy-connection", "keep-alive")
            .header("te", "trailers")
            .header("upgrade", "websocket")
            .header("x-custom", "kept")
            .header("authorization", "Bearer token")
            .header("x-forwarded-for", "203.0.113.9")
            .body(Full::new(Bytes::from_static(b"payload")))
            .unwrap();
        let (status, headers, body) = send(&mut sender, request).await;
        assert_eq!(status, StatusCode::OK);
        let echoed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(echoed["method"], "PUT");
        assert_eq!(echoed["uri"], "/headers?matter=17&draft=yes");
        let seen = &echoed["headers"];
        assert_eq!(seen["host"], "steno.example");
        assert_eq!(seen["x-custom"], "kept");
        assert_eq!(seen["authorization"], "Bearer token");
        assert_eq!(seen["content-length"], "7");
        assert_eq!(seen["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        let request_id = seen["x-request-id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");
        for dropped in [
            "x-hop-only",
            "keep-alive",
            "proxy-connection",
            "te",
            "upgrade",
        ] {
            assert!(
                seen.get(dropped).is_none(),
                "{dropped} reached the upstream"
            );
        }
        assert_eq!(headers["x-upstream-answer"], "kept");
        assert!(headers.get("keep-alive").is_none());

        // A request id the client sent is kept.
        let request = Request::builder()
            .uri("/headers")
            .header("host", "steno.example")
            .header("x-request-id", "client-chosen")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (_, _, body) = send(&mut sender, request).await;
        let echoed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(echoed["headers"]["x-request-id"], "client-chosen");
    }

    #[tokio::test]
    async fn keep_alive_connections_are_reused_on_both_sides() {
        let upstream = start_upstream("echo", Behaviour::Answer).await;
        let (router, _) = router_for(&[("web@echo", upstream.addr)]).await;
        split(&router, "web@echo", None, 0).await;
        let mut sender = one_connection(router.public_address("web").unwrap()).await;
        let mut upstream_ports = HashSet::new();
        for _ in 0..10 {
            let request = Request::builder()
                .uri("/headers")
                .header("host", "steno.example")
                .body(Full::new(Bytes::new()))
                .unwrap();
            // Every request goes over the one client connection.
            let (status, _, body) = send(&mut sender, request).await;
            assert_eq!(status, StatusCode::OK);
            let echoed: serde_json::Value = serde_json::from_slice(&body).unwrap();
            upstream_ports.insert(echoed["peer_port"].as_u64().unwrap());
        }
        assert_eq!(
            upstream_ports.len(),
            1,
            "upstream connections: {upstream_ports:?}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_counted_bad_gateway() {
        let closed = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let live = start_upstream("live", Behaviour::Answer).await;
        let (router, table) = router_for(&[("web@down", closed), ("web@live", live.addr)]).await;
        let client = http_client();
        let url = base_url(&router);

        split(&router, "web@down", None, 0).await;
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 502);
        let text = response.text().await.unwrap();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["code"], "bad_gateway");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("web@down"));
        let down = total(&router, "web@down").await;
        // One request, one error, and the bytes of the answer the client got.
        assert_eq!(
            (down.requests, down.errors, down.bytes_out),
            (1, 1, text.len() as u64)
        );

        // A release that stops running after the split was set is a bad gateway too.
        split(&router, "web@live", None, 0).await;
        assert_eq!(get_text(&client, &url).await.0, 200);
        lock(&table).remove("web@live");
        assert_eq!(get_text(&client, &url).await.0, 502);
        let live_total = total(&router, "web@live").await;
        assert_eq!((live_total.requests, live_total.errors), (2, 1));
    }

    #[tokio::test]
    async fn a_canary_that_refuses_requests_hands_them_to_the_stable_release_and_is_counted() {
        let refusing = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap()
        };
        let stable = start_upstream("stable", Behaviour::Answer).await;
        let (router, table) =
            router_for(&[("web@stable", stable.addr), ("web@canary", refusing)]).await;
        let client = http_client();
        let url = base_url(&router);
        split(&router, "web@stable", Some("web@canary"), 100).await;

        // Refused connections: every request is answered by the stable release, bodies whole.
        const REQUESTS: u64 = 20;
        for index in 0..REQUESTS {
            let body = format!("upload number {index} ").repeat(1000);
            let response = client
                .post(format!("{url}/echo"))
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let checksum: u64 = body.bytes().map(u64::from).sum();
            assert_eq!(
                response.text().await.unwrap(),
                format!("{} {checksum}", body.len())
            );
        }
        // A canary that is not running at all is the same.
        lock(&table).remove("web@canary");
        assert_eq!(get_text(&client, &url).await, (200, "stable".to_string()));

        let canary = total(&router, "web@canary").await;
        assert_eq!(
            (canary.requests, canary.errors),
            (REQUESTS + 1, REQUESTS + 1)
        );
        let stable_total = total(&router, "web@stable").await;
        assert_eq!(
            (stable_total.requests, stable_total.errors),
            (REQUESTS + 1, 0)
        );

        // Without a canary in the split, a release that is down is still a bad gateway.
        lock(&table).insert("web@canary".to_string(), refusing);
        split(&router, "web@canary", None, 0).await;
        assert_eq!(get_text(&client, &url).await.0, 502);
    }

    #[tokio::test]
    async fn a_canary_that_dies_under_a_safe_request_hands_it_to_the_stable_release() {
        // A canary that reads each request and closes the connection without answering, as a
        // process killed while serving does.
        let dying = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dying_addr = dying.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut connection, _)) = dying.accept().await {
                let mut request = [0u8; 1024];
                let _ = tokio::io::AsyncReadExt::read(&mut connection, &mut request).await;
            }
        });
        let stable = start_upstream("stable", Behaviour::Answer).await;
        let (router, _table) =
            router_for(&[("web@stable", stable.addr), ("web@canary", dying_addr)]).await;
        let client = http_client();
        let url = base_url(&router);
        split(&router, "web@stable", Some("web@canary"), 100).await;

        assert_eq!(get_text(&client, &url).await, (200, "stable".to_string()));
        // A request that changes something is not repeated: the canary may have acted on it.
        let posted = client
            .post(format!("{url}/echo"))
            .body("once")
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), 502);
        let canary = total(&router, "web@canary").await;
        assert_eq!((canary.requests, canary.errors), (2, 2));
    }

    #[tokio::test]
    async fn a_new_split_applies_to_the_next_request() {
        let one = start_upstream("one", Behaviour::Answer).await;
        let two = start_upstream("two", Behaviour::Answer).await;
        let (router, _) = router_for(&[("web@one", one.addr), ("web@two", two.addr)]).await;
        let client = http_client();
        let url = base_url(&router);

        let (status, body) = get_text(&client, &url).await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("no_release"));

        split(&router, "web@one", None, 0).await;
        assert_eq!(get_text(&client, &url).await.1, "one");
        split(&router, "web@one", Some("web@two"), 100).await;
        assert_eq!(get_text(&client, &url).await.1, "two");
        split(&router, "web@two", None, 0).await;
        assert_eq!(get_text(&client, &url).await.1, "two");
        assert_eq!(
            router.current_split("web").await.unwrap(),
            Some(TrafficSplit::all_to("web@two"))
        );
    }

    #[tokio::test]
    async fn a_split_naming_an_unknown_release_is_refused() {
        let one = start_upstream("one", Behaviour::Answer).await;
        let (router, _) = router_for(&[("web@one", one.addr)]).await;
        assert_eq!(router.current_split("web").await.unwrap(), None);
        split(&router, "web@one", None, 0).await;

        let unknown_stable = TrafficSplit::all_to("web@ghost");
        assert!(matches!(
            router.set_split("web", &unknown_stable).await,
            Err(PlatformError::UnknownRelease { release }) if release == "web@ghost"
        ));
        let unknown_canary = TrafficSplit {
            stable: "web@one".to_string(),
            canary: Some("web@ghost".to_string()),
            canary_weight_percent: 5,
        };
        assert!(matches!(
            router.set_split("web", &unknown_canary).await,
            Err(PlatformError::UnknownRelease { release }) if release == "web@ghost"
        ));
        let too_heavy = TrafficSplit {
            stable: "web@one".to_string(),
            canary: Some("web@one".to_string()),
            canary_weight_percent: 101,
        };
        assert!(matches!(
            router.set_split("web", &too_heavy).await,
            Err(PlatformError::Operation { .. })
        ));
        assert!(matches!(
            router
                .set_split("other", &TrafficSplit::all_to("web@one"))
                .await,
            Err(PlatformError::Operation { .. })
        ));
        assert!(router.samples("other", "web@one", 0, 10).await.is_err());
        assert_eq!(
            router.current_split("web").await.unwrap(),
            Some(TrafficSplit::all_to("web@one"))
        );
    }

    #[tokio::test]
    async fn clients_that_go_away_leave_nothing_behind() {
        let upstream = start_upstream("patient", Behaviour::Answer).await;
        let (router, _) = router_for(&[("web@patient", upstream.addr)]).await;
        split(&router, "web@patient", None, 0).await;
        let public = router.public_address("web").unwrap();

        // Gone while the upstream has not answered yet.
        let mut stream = TcpStream::connect(public).await.unwrap();
        stream
            .write_all(b"GET /hang HTTP/1.1\r\nhost: steno.example\r\n\r\n")
            .await
            .unwrap();
        eventually(
            "the request is in flight",
            Duration::from_secs(5),
            async || router.in_flight("web") == Some(1),
        )
        .await;
        drop(stream);
        eventually(
            "the request is dropped",
            Duration::from_secs(5),
            async || router.in_flight("web") == Some(0),
        )
        .await;

        // Gone halfway through a streamed body.
        let client = http_client();
        let url = base_url(&router);
        let mut response = client.get(format!("{url}/stream")).send().await.unwrap();
        response.chunk().await.unwrap().unwrap();
        upstream.release_stream.notify_one();
        response.chunk().await.unwrap();
        drop(response);
        drop(client);

        // The router still serves.
        assert_eq!(get_text(&http_client(), &url).await.1, "patient");

        router.shutdown().await;
        assert!(TcpStream::connect(public).await.is_err());
    }

    #[test]
    fn latencies_round_up_to_whole_milliseconds() {
        assert_eq!(whole_millis_rounded_up(Duration::ZERO), 0);
        assert_eq!(whole_millis_rounded_up(Duration::from_micros(1)), 1);
        assert_eq!(whole_millis_rounded_up(Duration::from_micros(1000)), 1);
        assert_eq!(whole_millis_rounded_up(Duration::from_micros(1001)), 2);
    }

    #[test]
    fn counters_keep_seconds_in_order_and_forget_old_ones() {
        let counter = ReleaseCounter::default();
        counter.record(100, 3, false);
        counter.record(102, 3, true);
        counter.record(101, 3, false);
        counter.record(102, 3, false);
        let seconds: Vec<(i64, u64, u64)> = counter
            .between(0, 1_000)
            .iter()
            .map(|entry| (entry.second, entry.sample.requests, entry.sample.errors))
            .collect();
        assert_eq!(seconds, vec![(100, 1, 0), (101, 1, 0), (102, 2, 1)]);
        assert_eq!(counter.between(101, 102).len(), 1);
        counter.record(100 + SAMPLE_RETENTION_SECS, 3, false);
        assert_eq!(counter.between(0, 101).len(), 0);
        assert_eq!(counter.between(0, i64::MAX).len(), 3);
    }
}
