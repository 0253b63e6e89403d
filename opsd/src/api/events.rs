//! `GET /v1/events`: the dashboard's live feed as server-sent events. The first event is the
//! current overview, so a dashboard that reconnects catches up at once; then one `overview`
//! event per change. The browser's `EventSource` reconnects by itself after `retry` ms.

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
    _caller: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.feed.subscribe();
    let client = state.feed.connect();
    let stream = futures_util::stream::unfold(
        (receiver, client),
        |(mut receiver, client): (watch::Receiver<Arc<str>>, ConnectedClient)| async move {
            receiver.changed().await.ok()?;
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
