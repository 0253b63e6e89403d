//! A request body the router can take back when the upstream never read it. The router hands
//! the upstream client a [`ReclaimableBody`] and keeps a [`BodySlot`]: the body moves out of the
//! slot only when the client first polls it (after the connection is made and the headers are
//! sent). A request refused before that still has its body in the slot, so it can go to another
//! release whole, while a body the upstream began to read is gone and is never sent twice.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::client_body::ClientBody;

/// Where a request body waits until an upstream reads it.
#[derive(Clone)]
pub(super) struct BodySlot(Arc<Mutex<Option<ClientBody>>>);

impl BodySlot {
    /// The body, when no upstream has begun to read it.
    pub(super) fn reclaim(&self) -> Option<ClientBody> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The body an upstream client sends; see the module documentation.
pub(super) struct ReclaimableBody {
    slot: BodySlot,
    taken: Option<ClientBody>,
}

impl ReclaimableBody {
    pub(super) fn new(body: ClientBody) -> (ReclaimableBody, BodySlot) {
        let slot = BodySlot(Arc::new(Mutex::new(Some(body))));
        (
            ReclaimableBody {
                slot: slot.clone(),
                taken: None,
            },
            slot,
        )
    }

    fn with_body<T>(&self, read: impl FnOnce(&ClientBody) -> T, when_gone: T) -> T {
        match &self.taken {
            Some(body) => read(body),
            None => match self
                .slot
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
            {
                Some(body) => read(body),
                None => when_gone,
            },
        }
    }
}

impl Body for ReclaimableBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.taken.is_none() {
            self.taken = self.slot.reclaim();
        }
        match self.taken.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.with_body(Body::is_end_stream, true)
    }

    fn size_hint(&self) -> SizeHint {
        self.with_body(Body::size_hint, SizeHint::with_exact(0))
    }
}
