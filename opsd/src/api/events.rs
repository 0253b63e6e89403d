//! `GET /v1/events`: the dashboard's live feed as server-sent events. The first event is the
//! current overview, so a dashboard that reconnects catches up at once; then one `overview`
//! event per change. The browser's `EventSource` reconnects by itself after `retry` ms. A
//! dashboard session's stream ends when the session expires, so the reconnection is refused
//! and the page goes to the login.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::watch;

use super::{ApiState, Caller};
use crate::dashboard::feed::ConnectedClient;

/// How long a browser waits before reconnecting a lost feed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub(super) async fn overview_events(
    State(state): State<ApiState>,
    caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.feed.subscribe();
    let client = state.feed.connect();
    // A bearer token has no expiry here; a session's stream lasts as long as the session.
    let lasts = caller
        .session_expires_at_ms
        .map(|expires_at_ms| {
            let left_ms = (expires_at_ms - state.daemon.now_ms()).max(0) as u64;
            Duration::from_millis(left_ms)
        })
        .unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
    let ends_at = tokio::time::Instant::now() + lasts;
    let stream = futures_util::stream::unfold(
        (receiver, client),
        move |(mut receiver, client): (watch::Receiver<Arc<str>>, ConnectedClient)| async move {
            tokio::select! {
                changed = receiver.changed() => changed.ok()?,
                _ = tokio::time::sleep_until(ends_at) => return None,
            }
            let document = receiver.borrow_and_update().clone();
            let event = Event::default()
                .event("overview")
                .retry(RECONNECT_AFTER)
                .data(&*document);
            Some((Ok(event), (receiver, client)))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
