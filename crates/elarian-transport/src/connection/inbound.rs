//! The peer's requests on this side: the responder futures and streams the driver runs, the
//! queue of requests waiting for a responder slot, and the overflow policy beyond it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{BoxStream, FuturesUnordered, StreamExt};

use super::HandleLimits;
use crate::frame::ErrorCode;
use crate::payload::Payload;
use crate::protocol::{IdMap, InboundKind, Session, StreamError};
use crate::responder::RequestHandler;

/// Payload bytes of queued inbound requests beyond which reading pauses even though the queue
/// has room by count, so that a queue of large requests stays small in memory.
const QUEUED_BYTES_LIMIT: usize = 64 * 1024 * 1024;

/// What a connection does with the peer's requests once its limit of requests being handled
/// at once (`max_inbound_requests`) is reached.
///
/// ```
/// use elarian_transport::{ClientSessionConfig, InboundOverflow};
///
/// let config = ClientSessionConfig {
///     max_inbound_requests: 64,
///     max_pending_inbound: 1024,
///     inbound_overflow: InboundOverflow::PauseReading,
///     ..ClientSessionConfig::default()
/// };
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InboundOverflow {
    /// Backpressure in two levels; no request is refused.
    ///
    /// 1. At `max_inbound_requests` running responders, the connection keeps reading, and
    ///    further requests wait in a queue of `max_pending_inbound` (their payloads are already
    ///    in memory); each starts, in arrival order, when a running responder finishes. A
    ///    CANCEL for a waiting request removes it. Every other frame is handled at once, in
    ///    particular the answers to this side's own requests: a responder that sends a request
    ///    to the peer and awaits its answer (a notification handler that sends a command) gets
    ///    it even while every responder slot is taken.
    /// 2. Only once that queue is full (or holds 64 MiB of payloads) does the connection stop
    ///    reading from the transport, until a responder finishes: unread frames stay in the
    ///    transport and the peer's sends eventually block, so memory stays bounded however
    ///    fast the peer sends.
    ///
    /// Reading paused, *every* frame from the peer waits, answers to this side's requests
    /// included, so responders that await the peer may wait until another responder finishes;
    /// keep responders bounded in time (the Elarian client applies its notification timeout).
    /// Writing goes on, so this side's KEEPALIVEs still go out, and the keepalive lifetime does
    /// not run while reading is paused.
    ///
    /// Requests that run no responder and are not queued still hold memory: partially received
    /// (fragmented) requests and streams waiting for credit. They are capped at another
    /// `max_inbound_requests`, beyond which new requests are refused with REJECTED.
    #[default]
    PauseReading,
    /// Keep reading and refuse requests beyond the limit with ERROR(REJECTED). Suits a server,
    /// which must keep reading its clients' frames; a refused request is lost unless the peer
    /// retries it.
    Reject,
}

type ItemStream = BoxStream<'static, Result<Payload, StreamError>>;

/// What a responder stream's [`ItemFuture`] yields: its stream id, the item (`None` at the end)
/// and the stream, to poll again.
pub(super) type ItemReady = (
    u32,
    Option<Result<Payload, StreamError>>,
    Option<ItemStream>,
);

/// Runs `f`, turning a panic of application code into a stream error.
fn isolate<T>(f: impl FnOnce() -> Poll<T>, on_panic: impl FnOnce() -> T) -> Poll<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(poll) => poll,
        Err(_) => {
            tracing::error!("responder panicked; the request fails with APPLICATION_ERROR");
            Poll::Ready(on_panic())
        }
    }
}

fn panicked() -> StreamError {
    StreamError::application("the responder panicked")
}

/// Remembers the waker of a pending responder future, so that canceling the request can drop
/// the application's future at once and wake its (now empty) slot to be removed.
#[derive(Default)]
struct CancelSlot(Option<std::task::Waker>);

impl CancelSlot {
    fn remember(&mut self, cx: &Context<'_>) {
        // FuturesUnordered gives each future a stable waker: clone it once, not on every poll.
        if !self.0.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.0 = Some(cx.waker().clone());
        }
    }

    fn wake(&mut self) {
        if let Some(waker) = self.0.take() {
            waker.wake();
        }
    }
}

/// A responder's answer to a REQUEST_RESPONSE, tagged with its stream id.
pub(super) struct ResponseFuture {
    id: u32,
    /// `None` once the request was canceled: the application's future is dropped.
    fut: Option<BoxFuture<'static, Result<Payload, StreamError>>>,
    slot: CancelSlot,
}

impl ResponseFuture {
    fn cancel(&mut self) {
        self.fut = None;
        self.slot.wake();
    }
}

impl Future for ResponseFuture {
    type Output = (u32, Result<Payload, StreamError>);
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let id = this.id;
        let Some(fut) = this.fut.as_mut() else {
            // Nobody reads this answer: the session already forgot the stream.
            return Poll::Ready((id, Err(StreamError::new(ErrorCode::Canceled, "canceled"))));
        };
        match isolate(|| fut.as_mut().poll(cx), || Err(panicked())) {
            Poll::Ready(r) => Poll::Ready((id, r)),
            Poll::Pending => {
                this.slot.remember(cx);
                Poll::Pending
            }
        }
    }
}

/// The next item of a responder's stream, tagged with its stream id; yields the stream back.
pub(super) struct ItemFuture {
    id: u32,
    stream: Option<ItemStream>,
    slot: CancelSlot,
}

fn next_item(id: u32, stream: ItemStream) -> ItemFuture {
    ItemFuture {
        id,
        stream: Some(stream),
        slot: CancelSlot::default(),
    }
}

impl ItemFuture {
    fn cancel(&mut self) {
        self.stream = None;
        self.slot.wake();
    }
}

impl Future for ItemFuture {
    type Output = ItemReady;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let id = this.id;
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready((id, None, None));
        };
        match isolate(|| stream.poll_next_unpin(cx).map(Ok), || Err(())) {
            Poll::Pending => {
                this.slot.remember(cx);
                Poll::Pending
            }
            Poll::Ready(Ok(item)) => Poll::Ready((id, item, this.stream.take())),
            // A panicking stream is dropped and the request fails.
            Poll::Ready(Err(())) => Poll::Ready((id, Some(Err(panicked())), None)),
        }
    }
}

/// A request of the peer waiting for a responder slot ([`InboundOverflow::PauseReading`]).
struct Queued {
    stream_id: u32,
    kind: InboundKind,
    payload: Payload,
}

/// The peer's requests on this side: the responder, its running futures and streams, the
/// streams parked without credit, and the queue of requests waiting for a responder slot.
/// Owned by the driver task; every answer goes into the [`Session`] passed in.
pub(super) struct Inbound {
    responder: Arc<dyn RequestHandler>,
    /// Most responder futures (or streams) running at once.
    pub(super) max_responders: usize,
    /// Capacity of `queued`.
    pub(super) max_pending: usize,
    overflow: InboundOverflow,
    /// Responder futures answering requests; the driver polls them in its `select!`, next to
    /// (and borrowed apart from) `items`.
    pub(super) responses: FuturesUnordered<ResponseFuture>,
    /// Responder streams producing their next item.
    pub(super) items: FuturesUnordered<ItemFuture>,
    parked: IdMap<ItemStream>,
    /// Requests received while every responder slot was taken, in arrival order. Bounded by
    /// `max_pending` and [`QUEUED_BYTES_LIMIT`]: the driver stops reading first.
    queued: VecDeque<Queued>,
    /// Payload bytes held by `queued`.
    queued_bytes: usize,
}

impl Inbound {
    pub(super) fn new(responder: Arc<dyn RequestHandler>, limits: &HandleLimits) -> Self {
        Inbound {
            responder,
            max_responders: limits.max_responders.max(1),
            max_pending: limits.max_pending,
            overflow: limits.overflow,
            responses: FuturesUnordered::new(),
            items: FuturesUnordered::new(),
            parked: IdMap::default(),
            queued: VecDeque::new(),
            queued_bytes: 0,
        }
    }

    /// Responders producing an answer or an item right now (parked streams wait for credit).
    fn running(&self) -> usize {
        self.responses.len() + self.items.len()
    }

    fn enqueue(&mut self, q: Queued) {
        self.queued_bytes += q.payload.len();
        self.queued.push_back(q);
    }

    fn dequeue(&mut self) -> Option<Queued> {
        let q = self.queued.pop_front()?;
        self.queued_bytes = self.queued_bytes.saturating_sub(q.payload.len());
        Some(q)
    }

    /// How many more requests the queue takes before reading must pause.
    fn queue_room(&self) -> usize {
        if self.queued_bytes >= QUEUED_BYTES_LIMIT {
            0
        } else {
            self.max_pending.saturating_sub(self.queued.len())
        }
    }

    /// How many more of the peer's requests may be read now: free responder slots plus room
    /// in the queue with [`InboundOverflow::PauseReading`] (0 means reading must pause);
    /// unlimited with [`InboundOverflow::Reject`], which refuses the excess instead.
    pub(super) fn read_room(&self) -> Option<usize> {
        match self.overflow {
            InboundOverflow::PauseReading => Some(
                self.max_responders
                    .saturating_sub(self.running())
                    .saturating_add(self.queue_room()),
            ),
            InboundOverflow::Reject => None,
        }
    }

    /// Payload bytes the queue may still take; a read batch stops there too.
    pub(super) fn queue_byte_room(&self) -> usize {
        QUEUED_BYTES_LIMIT.saturating_sub(self.queued_bytes)
    }

    /// Drops the application's future (or stream) answering `id`, so canceled work stops.
    pub(super) fn cancel(&mut self, id: u32) {
        if self.parked.remove(&id).is_some() {
            return;
        }
        // A linear scan of a bounded queue; a request canceled before it started never
        // reaches the responder.
        if let Some(at) = self.queued.iter().position(|q| q.stream_id == id) {
            if let Some(q) = self.queued.remove(at) {
                self.queued_bytes = self.queued_bytes.saturating_sub(q.payload.len());
            }
            return;
        }
        // A linear scan: cancellations are rare next to requests, and the number of running
        // responders is bounded by `max_responders`.
        if let Some(r) = self.responses.iter_mut().find(|r| r.id == id) {
            r.cancel();
            return;
        }
        if let Some(i) = self.items.iter_mut().find(|i| i.id == id) {
            i.cancel();
        }
    }

    /// The stream `id` got credit again: its parked responder stream produces the next item.
    pub(super) fn on_credit(&mut self, id: u32) {
        if let Some(stream) = self.parked.remove(&id) {
            self.items.push(next_item(id, stream));
        }
    }

    /// Hands pushed metadata to the responder, isolating its panics.
    pub(super) fn metadata_push(&self, metadata: Bytes) {
        let responder = &self.responder;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            responder.metadata_push(metadata)
        }))
        .is_err()
        {
            tracing::error!("metadata push handler panicked");
        }
    }

    /// Sends a responder's answer, and every other answer already ready with it.
    pub(super) fn on_answer(
        &mut self,
        session: &mut Session,
        id: u32,
        result: Result<Payload, StreamError>,
    ) {
        // The stream may have been canceled meanwhile; then the answer is dropped.
        let _ = session.respond(id, result);
        while let Some(Some((id, result))) = self.responses.next().now_or_never() {
            let _ = session.respond(id, result);
        }
    }

    /// Sends a responder stream's item (or end), and keeps the stream going within credit.
    pub(super) fn on_item(&mut self, session: &mut Session, (id, item, stream): ItemReady) {
        match item {
            Some(Ok(payload)) => {
                // An error means the stream was canceled or the session closed: drop the stream.
                if session.stream_next(id, payload).is_ok()
                    && let Some(stream) = stream
                {
                    if session.credit(id) > 0 {
                        self.items.push(next_item(id, stream));
                    } else {
                        self.parked.insert(id, stream);
                    }
                }
            }
            Some(Err(e)) => {
                let _ = session.stream_error(id, e);
            }
            None => {
                let _ = session.stream_complete(id);
            }
        }
    }

    /// A request of the peer, as the session delivered it: started, queued, or refused as the
    /// overflow policy says.
    pub(super) fn on_request(
        &mut self,
        session: &mut Session,
        stream_id: u32,
        kind: InboundKind,
        payload: Payload,
    ) {
        match (self.overflow, kind) {
            (_, InboundKind::FireAndForget) => self.start(session, stream_id, kind, payload),
            // Requests queued earlier start first, so the queue keeps arrival order. The read
            // loop stops before the queue could exceed `max_pending` (see `read_room`).
            (InboundOverflow::PauseReading, _)
                if !self.queued.is_empty() || self.running() >= self.max_responders =>
            {
                self.enqueue(Queued {
                    stream_id,
                    kind,
                    payload,
                });
            }
            (InboundOverflow::Reject, InboundKind::Response)
                if self.responses.len() >= self.max_responders =>
            {
                let busy = StreamError::rejected("too many requests in progress");
                let _ = session.respond(stream_id, Err(busy));
            }
            (InboundOverflow::Reject, InboundKind::Stream { .. })
                if self.items.len() + self.parked.len() >= self.max_responders =>
            {
                let busy = StreamError::rejected("too many streams in progress");
                let _ = session.stream_error(stream_id, busy);
            }
            _ => self.start(session, stream_id, kind, payload),
        }
    }

    /// Starts queued requests while responder slots are free.
    pub(super) fn start_queued(&mut self, session: &mut Session) {
        while self.running() < self.max_responders {
            let Some(q) = self.dequeue() else {
                break;
            };
            self.start(session, q.stream_id, q.kind, q.payload);
        }
    }

    /// Hands a request to the responder, isolating its panics.
    fn start(
        &mut self,
        session: &mut Session,
        stream_id: u32,
        kind: InboundKind,
        payload: Payload,
    ) {
        let responder = &self.responder;
        match kind {
            InboundKind::Response => {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    responder.request_response(payload)
                })) {
                    Ok(fut) => {
                        let mut answer = ResponseFuture {
                            id: stream_id,
                            fut: Some(fut),
                            slot: CancelSlot::default(),
                        };
                        // Answers ready at once skip the FuturesUnordered bookkeeping.
                        match (&mut answer).now_or_never() {
                            Some((id, result)) => {
                                let _ = session.respond(id, result);
                            }
                            None => self.responses.push(answer),
                        }
                    }
                    Err(_) => {
                        let _ = session.respond(stream_id, Err(panicked()));
                    }
                }
            }
            InboundKind::FireAndForget => {
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    responder.fire_and_forget(payload)
                }))
                .is_err()
                {
                    tracing::error!("fire-and-forget handler panicked");
                }
            }
            InboundKind::Stream { .. } => {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    responder.request_stream(payload)
                })) {
                    Ok(stream) => self.items.push(next_item(stream_id, stream)),
                    Err(_) => {
                        let _ = session.stream_error(stream_id, panicked());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(stream_id: u32, data: &Bytes) -> Queued {
        Queued {
            stream_id,
            kind: InboundKind::Response,
            payload: Payload::new(data.clone()),
        }
    }

    #[test]
    fn the_queue_is_full_by_count_or_by_bytes() {
        let limits = HandleLimits {
            max_in_flight: 1,
            command_queue: 1,
            stream_window: 2,
            max_responders: 1,
            max_pending: 3,
            overflow: InboundOverflow::PauseReading,
        };
        let mut work = Inbound::new(Arc::new(crate::responder::RejectAll), &limits);
        let small = Bytes::from_static(b"small");
        work.enqueue(queued(2, &small));
        work.enqueue(queued(4, &small));
        assert_eq!(work.queue_room(), 1);
        // One responder slot free as well.
        assert_eq!(work.read_room(), Some(2));
        work.max_pending = 2;
        assert_eq!(work.queue_room(), 0);

        // Large payloads fill the byte budget long before the count.
        work.max_pending = 1024;
        let large = Bytes::from(vec![0u8; QUEUED_BYTES_LIMIT / 4]);
        for i in 0..4 {
            work.enqueue(queued(6 + 2 * i, &large));
        }
        assert_eq!(work.queue_room(), 0);
        assert_eq!(work.queue_byte_room(), 0);

        // A canceled request and a started one give their bytes back, in arrival order.
        work.cancel(8);
        assert_eq!(work.queue_room(), 1024 - 5);
        assert_eq!(work.dequeue().map(|q| q.stream_id), Some(2));
        assert_eq!(work.dequeue().map(|q| q.stream_id), Some(4));
        assert_eq!(work.dequeue().map(|q| q.stream_id), Some(6));
        assert_eq!(work.queued_bytes, 2 * large.len());
    }
}
