//! What answers at opsd's API address from the moment `opsd up` listens. While this instance
//! follows, it answers reads of the API itself from the store the leader writes
//! ([`crate::follower`]), so `opsd status`, history, the timeline and the reports work on every
//! instance, also while the leader is dead or paused and before a follower takes over; every
//! other request (changes, the dashboard with its sessions and live feed) is handed to the
//! leader's API, streamed both ways. Once it leads, its own API answers. Every answer says who
//! gave it in `X-Opsd-Answered-By` (`leader` or `follower`).
//!
//! invariant: a follower changes nothing itself: its reader's store and platforms refuse every
//! write, and what it forwards the leader checks (token, role, CSRF) as if it had come to it
//! directly.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::leadership::Role;

/// How long a follower waits to connect to the leader's API.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a follower waits for the leader to start answering a read (a leader that accepts
/// connections but does not answer is paused or stuck: its lease will lapse).
const READ_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// The same for requests that change something (a deploy's snapshot, a restore, take longer).
const WRITE_ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

/// Says which instance answered: `leader` (its own API) or `follower` (from the store).
pub const ANSWERED_BY: HeaderName = HeaderName::from_static("x-opsd-answered-by");

/// Headers of one connection, not of the request: never forwarded.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
];

/// The API address's one service: the leader's API once installed, the hand-over before.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    own_api: OnceLock<Router>,
    /// This instance's answers to reads while it does not lead.
    reader: OnceLock<Router>,
    role: watch::Receiver<Role>,
    client: Client<HttpConnector, Body>,
}

impl Gateway {
    /// A gateway that forwards to whichever instance `role` says leads.
    pub fn new(role: watch::Receiver<Role>) -> Gateway {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        Gateway {
            inner: Arc::new(Inner {
                own_api: OnceLock::new(),
                reader: OnceLock::new(),
                role,
                client: Client::builder(TokioExecutor::new()).build(connector),
            }),
        }
    }

    /// From now on this instance's own API answers (it leads).
    pub fn install(&self, api: Router) {
        let _ = self.inner.own_api.set(api);
    }

    /// Until this instance leads, `reader` answers the reads [`answered_from_the_store`]
    /// picks out.
    pub fn install_reader(&self, reader: Router) {
        let _ = self.inner.reader.set(reader);
    }

    /// The router to serve at the API address.
    pub fn router(&self) -> Router {
        Router::new().fallback(answer).with_state(self.clone())
    }
}

async fn answer(State(gateway): State<Gateway>, request: Request) -> Response {
    if let Some(api) = gateway.inner.own_api.get() {
        return answered_by(api, request, "leader").await;
    }
    let role = gateway.inner.role.borrow().clone();
    if !matches!(role, Role::Lost(_)) && answered_from_the_store(&request) {
        if let Some(reader) = gateway.inner.reader.get() {
            return answered_by(reader, request, "follower").await;
        }
    }
    match role {
        Role::Following(Some(leader)) => forward(&gateway.inner.client, &leader.api, request).await,
        Role::Leading(_) => unavailable(
            "this instance has just taken the leader lease and is starting; retry in a few seconds",
        ),
        Role::Starting | Role::Following(None) => {
            unavailable("no leader is known yet (the store is being read); retry in a few seconds")
        }
        Role::Lost(_) => unavailable("this instance lost the leader lease and is stopping"),
    }
}

/// `router`'s answer to `request`, marked as given by `who`.
async fn answered_by(router: &Router, request: Request, who: &'static str) -> Response {
    let mut response = match router.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    response
        .headers_mut()
        .insert(ANSWERED_BY, HeaderValue::from_static(who));
    response
}

/// Whether a follower answers `request` itself, from the store: a read (GET or HEAD) of the
/// health check, of the status document Steno's releases poll, or of an API route called with
/// a bearer token. Dashboard sessions live on the leader that made them, and the dashboard's
/// live overview is the leader's, so those reads go to the leader.
fn answered_from_the_store(request: &Request) -> bool {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return false;
    }
    match request.uri().path() {
        "/v1/health" | "/status.json" => true,
        "/v1/overview" | "/v1/events" | "/v1/session" => false,
        path => path.starts_with("/v1/") && request.headers().contains_key(header::AUTHORIZATION),
    }
}

/// `request` sent to the leader's API at `leader_api`, its answer streamed back.
async fn forward(
    client: &Client<HttpConnector, Body>,
    leader_api: &str,
    request: Request,
) -> Response {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_string();
    let Ok(uri) = format!("http://{leader_api}{path}").parse::<Uri>() else {
        return unavailable("the leader's API address in the store is not an address");
    };
    let (mut parts, body) = request.into_parts();
    parts.uri = uri;
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    let patience =
        if parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD {
            READ_ANSWER_TIMEOUT
        } else {
            WRITE_ANSWER_TIMEOUT
        };
    let answer = tokio::time::timeout(patience, client.request(Request::from_parts(parts, body)));
    match answer.await {
        Err(_) => {
            tracing::warn!(leader_api, "the leader's API did not answer in time");
            unavailable(&format!(
                "the leader's API at {leader_api} did not answer within {} s; if it stalled, a \
                 follower takes over within 10 s: retry then",
                patience.as_secs()
            ))
        }
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(name);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, leader_api, "could not reach the leader's API");
            unavailable(&format!(
                "the leader's API at {leader_api} does not answer; if it died, a follower takes \
                 over within 10 s: retry then"
            ))
        }
    }
}

fn unavailable(message: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "2")],
        Json(json!({ "error": { "code": "no_leader", "message": message } })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LeaseHolder;

    /// A router answering `text` with the request's method and path.
    fn answering(text: &'static str) -> Router {
        Router::new().fallback(move |request: Request| async move {
            format!("{text} {} {}", request.method(), request.uri().path())
        })
    }

    /// A leader's API on a loopback port.
    async fn leader_api() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, answering("leader")).await });
        address
    }

    fn following(api: String) -> watch::Receiver<Role> {
        // The gateway reads the role last sent; the sender is not needed for that.
        let (_role, receiver) = watch::channel(Role::Following(Some(LeaseHolder {
            instance: "host-a:/data".into(),
            api,
            epoch: 1,
            since: chrono::Utc::now(),
            expires_in_ms: 6_000,
        })));
        receiver
    }

    /// The gateway's answer: who gave it (header) and its body.
    async fn ask(gateway: &Gateway, request: Request) -> (Option<String>, String) {
        let response = gateway.router().oneshot(request).await.unwrap();
        let who = response
            .headers()
            .get(ANSWERED_BY)
            .map(|value| value.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (who, String::from_utf8(body.to_vec()).unwrap())
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    const BEARER: (&str, &str) = ("authorization", "Bearer opsd_x");
    const SESSION: (&str, &str) = ("cookie", "opsd_session=abc");

    #[tokio::test]
    async fn a_follower_answers_reads_from_the_store_and_hands_the_rest_to_the_leader() {
        let gateway = Gateway::new(following(leader_api().await));
        gateway.install_reader(answering("store"));
        let cases = [
            (
                request("GET", "/v1/status", &[BEARER]),
                "store GET /v1/status",
            ),
            (
                request("GET", "/v1/services/steno/history", &[BEARER]),
                "store GET /v1/services/steno/history",
            ),
            (request("GET", "/v1/health", &[]), "store GET /v1/health"),
            (
                request("GET", "/status.json", &[]),
                "store GET /status.json",
            ),
            // Changes, the dashboard's sessions and its live overview are the leader's.
            (
                request("POST", "/v1/services/steno/deploy", &[BEARER]),
                "leader POST /v1/services/steno/deploy",
            ),
            (
                request("GET", "/v1/status", &[SESSION]),
                "leader GET /v1/status",
            ),
            (
                request("GET", "/v1/overview", &[BEARER]),
                "leader GET /v1/overview",
            ),
            (
                request("GET", "/v1/events", &[BEARER]),
                "leader GET /v1/events",
            ),
            (request("GET", "/", &[SESSION]), "leader GET /"),
        ];
        for (request, expected) in cases {
            let (who, body) = ask(&gateway, request).await;
            assert_eq!(body, expected);
            let expected_who = if expected.starts_with("store") {
                Some("follower")
            } else {
                None
            };
            assert_eq!(who.as_deref(), expected_who, "{expected}");
        }
    }

    #[tokio::test]
    async fn without_a_reader_a_follower_hands_reads_to_the_leader_and_a_leader_answers_itself() {
        let gateway = Gateway::new(following(leader_api().await));
        let (who, body) = ask(&gateway, request("GET", "/v1/status", &[BEARER])).await;
        assert_eq!((who, body.as_str()), (None, "leader GET /v1/status"));

        gateway.install_reader(answering("store"));
        gateway.install(answering("own"));
        let (who, body) = ask(&gateway, request("GET", "/v1/status", &[BEARER])).await;
        assert_eq!(
            (who.as_deref(), body.as_str()),
            (Some("leader"), "own GET /v1/status")
        );
    }

    #[tokio::test]
    async fn a_follower_whose_leader_is_unknown_still_answers_reads_and_refuses_changes() {
        let (_role, receiver) = watch::channel(Role::Following(None));
        let gateway = Gateway::new(receiver);
        gateway.install_reader(answering("store"));
        let (who, body) = ask(&gateway, request("GET", "/v1/audit", &[BEARER])).await;
        assert_eq!(
            (who.as_deref(), body.as_str()),
            (Some("follower"), "store GET /v1/audit")
        );
        let response = gateway
            .router()
            .oneshot(request("POST", "/v1/freeze", &[BEARER]))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
