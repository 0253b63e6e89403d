//! `GET /v1/events`: the dashboard's live feed as server-sent events. The first event is the
//! current overview, so a dashboard that reconnects catches up at once; then one `overview`
//! event per change. The browser's `EventSource` reconnects by itself after `retry` ms.
//!
//! A stream lasts only as long as what it was opened with: a dashboard session's stream ends
//! at the session's expiry and at once when the session ends (logout), and every stream ends
//! within [`TOKEN_RECHECK`] of its token being removed; the reconnection is then refused and
//! the page goes to the login. Streams are bounded per token and in all (see
//! [`crate::dashboard::feed`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;
use tokio::time::{Instant, Interval};

use super::{ApiError, ApiState, Caller};
use crate::dashboard::feed::ConnectedClient;

/// How long a browser waits before reconnecting a lost feed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// How often an open stream checks that its token still exists.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(5);

/// One open stream and what it checks to stay open.
struct OpenStream {
    state: ApiState,
    documents: watch::Receiver<Arc<str>>,
    sessions_ended: watch::Receiver<u64>,
    token_recheck: Interval,
    session_key: Option<String>,
    token_hash: String,
    ends_at: Instant,
    _client: ConnectedClient,
}

impl OpenStream {
    /// The next document to send, or `None` when the stream must end.
    async fn next_document(&mut self) -> Option<Arc<str>> {
        loop {
            tokio::select! {
                changed = self.documents.changed() => {
                    changed.ok()?;
                    return Some(self.documents.borrow_and_update().clone());
                }
                _ = tokio::time::sleep_until(self.ends_at) => return None,
                ended = self.sessions_ended.changed() => {
                    ended.ok()?;
                    if !self.session_is_live() {
                        return None;
                    }
                }
                _ = self.token_recheck.tick() => {
                    if !self.token_exists().await {
                        return None;
                    }
                }
            }
        }
    }

    fn session_is_live(&self) -> bool {
        self.session_key
            .as_deref()
            .is_none_or(|key| self.state.sessions.is_live(key, self.state.daemon.now_ms()))
    }

    /// Whether the stream's token is still in the store (a store that cannot answer right now
    /// keeps the stream open).
    async fn token_exists(&self) -> bool {
        !matches!(
            self.state.daemon.store().find_token(&self.token_hash).await,
            Ok(None)
        )
    }
}

pub(super) async fn overview_events(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let client = state
        .feed
        .connect(&caller.token_hash)
        .await
        .map_err(|full| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_live_feeds",
                full.to_string(),
            )
        })?;
    // A bearer token has no expiry here; a session's stream lasts as long as the session.
    let lasts = caller
        .session_expires_at_ms
        .map(|expires_at_ms| {
            let left_ms = (expires_at_ms - state.daemon.now_ms()).max(0) as u64;
            Duration::from_millis(left_ms)
        })
        .unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
    let mut token_recheck = tokio::time::interval_at(Instant::now() + TOKEN_RECHECK, TOKEN_RECHECK);
    token_recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let open = OpenStream {
        documents: state.feed.subscribe(),
        sessions_ended: state.sessions.ended(),
        token_recheck,
        session_key: caller.session_key,
        token_hash: caller.token_hash,
        ends_at: Instant::now() + lasts,
        state,
        _client: client,
    };
    let stream = futures_util::stream::unfold(open, |mut open| async move {
        let document = open.next_document().await?;
        let event = Event::default()
            .event("overview")
            .retry(RECONNECT_AFTER)
            .data(&*document);
        Some((Ok(event), open))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
