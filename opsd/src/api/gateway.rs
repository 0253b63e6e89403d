//! What answers at opsd's API address from the moment `opsd up` listens: while this instance
//! follows, every request (API, dashboard, live feeds) is handed to the leader's API, streamed
//! both ways, so an operator can use any instance; once it leads, its own API answers.
//!
//! invariant: a follower changes nothing itself: it has no daemon, and what it forwards the
//! leader checks (token, role, CSRF) as if it had come to it directly.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, StatusCode, Uri};
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
                role,
                client: Client::builder(TokioExecutor::new()).build(connector),
            }),
        }
    }

    /// From now on this instance's own API answers (it leads).
    pub fn install(&self, api: Router) {
        let _ = self.inner.own_api.set(api);
    }

    /// The router to serve at the API address.
    pub fn router(&self) -> Router {
        Router::new().fallback(answer).with_state(self.clone())
    }
}

async fn answer(State(gateway): State<Gateway>, request: Request) -> Response {
    if let Some(api) = gateway.inner.own_api.get() {
        return match api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    let role = gateway.inner.role.borrow().clone();
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
