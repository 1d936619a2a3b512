//! The driver: one tokio task per connection that owns the [`Session`], the transport halves
//! and the [`Inbound`] work, so the hot path takes no lock. Reads and writes run concurrently
//! as futures that own their half of the transport; every frame ready when a write starts goes
//! out in one batch with one flush.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{FusedFuture, FutureExt};
use futures_util::stream::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::inbound::{Inbound, ItemReady};
use super::reply::Completion;
use super::{
    Attach, CLOSE_LINGER, Command, Control, DriverParts, LinkState, SessionHooks, now,
    send_error_and_close,
};
use crate::error::ResumeError;
use crate::frame::ErrorCode;
use crate::io::{BoxReader, BoxWriter, FrameReader, FrameWriter, TransportError};
use crate::limit::InflightLimit;
use crate::payload::Payload;
use crate::protocol::{
    CloseReason, Event, IdMap, LostCause, OperationError, RequestError, Session, StreamError,
};

/// Commands taken from the queue per driver wake, so that reading is not starved.
const COMMAND_BATCH: usize = 64;
/// Bytes queued for writing beyond which requests and answers of this side wait.
const LOCAL_TX_LIMIT: usize = 4 * 1024 * 1024;
/// Bytes queued for writing beyond which the peer's frames are not read.
const PEER_TX_LIMIT: usize = 32 * 1024 * 1024;
/// Frames read before the driver goes back to its other work (answers ready are written, then
/// reading goes on), so that commands and timers are not starved. It is also the unit of
/// pipelining: the peer starts on our answers only once they are written, so a small batch lets
/// both sides work at once where one large batch makes them take turns. With 64 requests in
/// flight, batches of 16 rather than 64 raised the echo benchmark from 50 % to 75-87 % of the
/// raw echo and the SDK's commands/s from 210k to 350k-430k (docs/benchmarks.md); 16 frames
/// still amortise the loop's cost (batches of 1 to 4 were slower).
const READ_BATCH: usize = 16;

/// Where the answer to one of our requests goes.
struct Waiter {
    token: u64,
    kind: WaiterKind,
}

enum WaiterKind {
    Response(Completion),
    Stream(mpsc::Sender<Result<Payload, RequestError>>),
}

pub(super) struct Driver {
    session: Session,
    /// The peer's requests: responders, their queue and the overflow policy.
    inbound: Inbound,
    cmd_rx: mpsc::Receiver<Command>,
    ctrl_rx: mpsc::UnboundedReceiver<Control>,
    attach_rx: mpsc::Receiver<Attach>,
    waiters: IdMap<Waiter>,
    /// Deadlines of requests that have one, earliest first. Entries of requests answered
    /// meanwhile stay until they come up or the heap is compacted (see `note_deadline`).
    deadlines: BinaryHeap<Reverse<(Instant, u32)>>,
    /// Whether reading is paused for [`InboundOverflow::PauseReading`](super::InboundOverflow::PauseReading) (as last told to the
    /// session).
    reading_paused: bool,
    state_tx: watch::Sender<LinkState>,
    inflight: Arc<InflightLimit>,
    established: Option<oneshot::Sender<Result<(), CloseReason>>>,
    resume_reply: Option<oneshot::Sender<Result<(), ResumeError>>>,
    on_exit: Option<Box<dyn FnOnce() + Send>>,
    hooks: Option<Box<dyn SessionHooks>>,
}

type ReadResult = (BoxReader, Result<Option<Bytes>, TransportError>);
type WriteResult = (BoxWriter, Vec<Bytes>, Result<(), TransportError>);

async fn read_owned(mut reader: BoxReader) -> ReadResult {
    let r = reader.read_frame().await;
    (reader, r)
}

async fn write_owned(mut writer: BoxWriter, batch: Vec<Bytes>) -> WriteResult {
    for frame in &batch {
        if let Err(e) = writer.write_frame(frame.clone()).await {
            return (writer, batch, Err(e));
        }
    }
    let r = writer.flush().await;
    (writer, batch, r)
}

/// The driver's ends of the channels to the handles.
pub(super) struct Channels {
    pub(super) cmd_rx: mpsc::Receiver<Command>,
    pub(super) ctrl_rx: mpsc::UnboundedReceiver<Control>,
    pub(super) attach_rx: mpsc::Receiver<Attach>,
    pub(super) state_tx: watch::Sender<LinkState>,
}

impl Driver {
    pub(super) fn new(
        parts: DriverParts,
        channels: Channels,
        inflight: Arc<InflightLimit>,
    ) -> Self {
        Driver {
            session: parts.session,
            inbound: Inbound::new(parts.responder, &parts.limits),
            cmd_rx: channels.cmd_rx,
            ctrl_rx: channels.ctrl_rx,
            attach_rx: channels.attach_rx,
            waiters: IdMap::default(),
            deadlines: BinaryHeap::new(),
            reading_paused: false,
            state_tx: channels.state_tx,
            inflight,
            established: parts.established,
            resume_reply: None,
            on_exit: parts.on_exit,
            hooks: parts.hooks,
        }
    }

    /// The driver task: one `select!` over the transport, the handles' commands and controls,
    /// the responders, new transports and the timer; each arm is a method below.
    pub(super) async fn run(mut self, transport: Option<(BoxReader, BoxWriter)>) {
        let mut read_fut = std::pin::pin!(futures_util::future::Fuse::terminated());
        let mut write_fut = std::pin::pin!(futures_util::future::Fuse::terminated());
        let mut writer_idle: Option<BoxWriter> = None;
        let mut spare: Vec<Bytes> = Vec::new();
        if let Some((r, w)) = transport {
            read_fut.set(read_owned(r).fuse());
            writer_idle = Some(w);
        }
        let far = || tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let mut deadline = far();
        let mut sleep = std::pin::pin!(tokio::time::sleep_until(deadline));
        let mut cmd_open = true;
        let mut ctrl_open = true;
        let mut attach_open = true;

        loop {
            let lost = self.process_events();
            self.inbound.start_queued(&mut self.session);
            if lost {
                read_fut.set(futures_util::future::Fuse::terminated());
                write_fut.set(futures_util::future::Fuse::terminated());
                writer_idle = None;
            }
            if self.session.is_closed() {
                break;
            }
            if write_fut.is_terminated()
                && self.session.has_transmit()
                && let Some(w) = writer_idle.take()
            {
                let mut batch = std::mem::take(&mut spare);
                while let Some(f) = self.session.poll_transmit() {
                    batch.push(f);
                }
                write_fut.set(write_owned(w, batch).fuse());
            }
            let next = match (self.session.poll_timeout(), self.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(far);
            // Every received frame pushes the lifetime deadline later; re-arming the timer for
            // that on each frame is costly, so the timer is only moved earlier. Firing early is
            // harmless: the session acts on what is due and the timer is re-armed.
            if next < deadline || sleep.is_elapsed() {
                deadline = next;
                sleep.as_mut().reset(deadline);
            }

            // Backpressure: while the transport cannot keep up, stop producing (requests and
            // answers) beyond LOCAL_TX_LIMIT, and stop reading what the peer sends beyond
            // PEER_TX_LIMIT, so that the write queue stays bounded.
            let pending = self.session.pending_transmit_bytes();
            let local_ok = pending < LOCAL_TX_LIMIT;
            let room = self.read_room(!read_fut.is_terminated());
            let peer_ok = pending < PEER_TX_LIMIT && room > 0;

            tokio::select! {
                (reader, result) = &mut read_fut, if peer_ok => {
                    match self.on_frames(reader, result, room) {
                        Ok(reader) => read_fut.set(read_owned(reader).fuse()),
                        Err(why) => self.transport_failed(why, &mut writer_idle, &mut write_fut),
                    }
                }
                (writer, mut batch, result) = &mut write_fut => match result {
                    Ok(()) => {
                        batch.clear();
                        spare = batch;
                        writer_idle = Some(writer);
                    }
                    Err(e) => {
                        drop(writer);
                        read_fut.set(futures_util::future::Fuse::terminated());
                        self.on_write_failed(e);
                    }
                },
                cmd = self.cmd_rx.recv(), if cmd_open && local_ok => match cmd {
                    Some(cmd) => self.on_commands(cmd),
                    None => cmd_open = false,
                },
                ctrl = self.ctrl_rx.recv(), if ctrl_open => match ctrl {
                    Some(ctrl) => self.on_control(ctrl),
                    None => ctrl_open = false,
                },
                Some((id, result)) = self.inbound.responses.next(),
                    if local_ok && !self.inbound.responses.is_empty() =>
                {
                    self.on_responder_done(id, result);
                }
                Some(ready) = self.inbound.items.next(),
                    if local_ok && !self.inbound.items.is_empty() =>
                {
                    self.on_responder_item(ready);
                }
                attach = self.attach_rx.recv(), if attach_open => match attach {
                    Some(attach) => {
                        // A refused attachment leaves the current transport (if any) alone.
                        if let Some((r, w)) = self.on_attach(attach) {
                            write_fut.set(futures_util::future::Fuse::terminated());
                            read_fut.set(read_owned(r).fuse());
                            writer_idle = Some(w);
                        }
                    }
                    None => attach_open = false,
                },
                () = &mut sleep => self.on_timer(),
            }
        }

        self.shutdown();
        // Send what is queued (typically the closing ERROR frame), then close the transport.
        let writer = if write_fut.is_terminated() {
            writer_idle
        } else {
            match tokio::time::timeout(CLOSE_LINGER, &mut write_fut).await {
                Ok((w, _, Ok(()))) => Some(w),
                _ => None,
            }
        };
        if let Some(w) = writer {
            self.flush_and_close(w).await;
        }
    }

    /// Writes the frames still queued (within [`CLOSE_LINGER`]) and closes the transport.
    async fn flush_and_close(&mut self, mut w: BoxWriter) {
        let mut batch = Vec::new();
        while let Some(f) = self.session.poll_transmit() {
            batch.push(f);
        }
        let flush = async {
            for f in batch {
                w.write_frame(f).await?;
            }
            w.close().await
        };
        let _ = tokio::time::timeout(CLOSE_LINGER, flush).await;
    }

    /// How many of the peer's requests may be read now (see [`Inbound::read_room`]); pauses
    /// or resumes reading accordingly while a transport is attached (`reading`).
    ///
    /// With PauseReading, at most `max_responders` responders run and `max_pending` requests
    /// (QUEUED_BYTES_LIMIT bytes) wait for them; with both full, the peer's frames stay unread
    /// (in the transport, then in the peer's send buffers) until a responder finishes.
    fn read_room(&mut self, reading: bool) -> usize {
        match self.inbound.read_room() {
            Some(room) => {
                self.note_reading_paused(room == 0 && reading);
                room
            }
            None => usize::MAX,
        }
    }

    /// Frames arrived: hands the first and every frame already buffered behind it (up to
    /// [`READ_BATCH`], and no more requests than `room`) to the session. Returns the reader to
    /// read on, or why the transport failed.
    fn on_frames(
        &mut self,
        mut reader: BoxReader,
        first: Result<Option<Bytes>, TransportError>,
        room: usize,
    ) -> Result<BoxReader, LostCause> {
        let frame = match first {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err(LostCause::new("peer closed the transport")),
            Err(e) => return Err(read_failed(e)),
        };
        let now = now();
        let delivered = self.session.delivered_requests();
        // What the queue may still take in bytes; a batch stops there too.
        let byte_room = self.inbound.queue_byte_room();
        let mut batch_bytes = frame.len();
        self.session.handle_frame(frame, now);
        // Take every frame already buffered before going back to the select: one loop turn per
        // frame costs more than the frame itself. Stop early when the requests read so far
        // fill the room (slots and queue).
        for _ in 1..READ_BATCH {
            let started = self.session.delivered_requests() - delivered;
            if started >= room as u64 || batch_bytes >= byte_room {
                break;
            }
            match reader.try_read_frame() {
                Some(Ok(Some(frame))) => {
                    batch_bytes += frame.len();
                    self.session.handle_frame(frame, now);
                }
                Some(Ok(None)) => return Err(LostCause::new("peer closed the transport")),
                Some(Err(e)) => return Err(read_failed(e)),
                None => break,
            }
        }
        Ok(reader)
    }

    /// Writing failed: the transport is lost (the session detaches if it is resumable).
    fn on_write_failed(&mut self, e: TransportError) {
        self.session.transport_lost(
            now(),
            LostCause::with_source("writing to the transport failed", e),
        );
        self.link_lost();
    }

    /// Commands from the handles: the first and those queued behind it, up to
    /// [`COMMAND_BATCH`].
    fn on_commands(&mut self, first: Command) {
        // One clock read per batch, for the requests that carry a deadline.
        let mut clock = None;
        self.on_command(first, &mut clock);
        for _ in 1..COMMAND_BATCH {
            match self.cmd_rx.try_recv() {
                Ok(cmd) => self.on_command(cmd, &mut clock),
                Err(_) => break,
            }
        }
    }

    /// A responder future answered a request of the peer.
    fn on_responder_done(&mut self, id: u32, result: Result<Payload, StreamError>) {
        self.inbound.on_answer(&mut self.session, id, result);
    }

    /// A responder stream produced an item (or ended).
    fn on_responder_item(&mut self, ready: ItemReady) {
        self.inbound.on_item(&mut self.session, ready);
    }

    /// The timer fired: the session's timers (keepalive, lifetime, resumption) and the
    /// requests' deadlines.
    fn on_timer(&mut self) {
        let now = now();
        self.session.handle_timeout(now);
        self.expire_requests(now);
    }

    /// Tells the session when reading starts or stops being paused for backpressure.
    fn note_reading_paused(&mut self, paused: bool) {
        if paused != self.reading_paused {
            self.reading_paused = paused;
            if paused {
                tracing::debug!(
                    running = self.inbound.max_responders,
                    queued = self.inbound.max_pending,
                    "responders and their queue are full; reading paused"
                );
            }
            self.session.set_reading_paused(paused, now());
        }
    }

    fn transport_failed<F>(
        &mut self,
        why: LostCause,
        writer_idle: &mut Option<BoxWriter>,
        write_fut: &mut Pin<&mut futures_util::future::Fuse<F>>,
    ) where
        F: Future,
    {
        tracing::debug!(%why, source = ?std::error::Error::source(&why), "transport lost");
        *writer_idle = None;
        write_fut.set(futures_util::future::Fuse::terminated());
        self.session.transport_lost(now(), why);
        self.link_lost();
    }

    fn link_lost(&mut self) {
        if self.session.is_detached() {
            if let Some(reply) = self.resume_reply.take() {
                let _ = reply.send(Err(ResumeError::Timeout));
            }
            self.state_tx.send_replace(LinkState::Detached);
            if let Some(hooks) = self.hooks.as_mut()
                && !hooks.detached(&mut self.session)
            {
                self.session.close_local();
            }
        }
    }

    fn on_command(&mut self, cmd: Command, clock: &mut Option<Instant>) {
        match cmd {
            Command::RequestResponse {
                token,
                payload,
                reply,
                deadline,
            } => {
                if reply.is_abandoned() {
                    return;
                }
                if let Some(at) = deadline
                    && at <= *clock.get_or_insert_with(now)
                {
                    // Expired while queued: never sent, so nothing to cancel.
                    reply.complete(Err(RequestError::TimedOut));
                    return;
                }
                match self.session.request_response(payload) {
                    Ok(id) => {
                        self.waiters.insert(
                            id,
                            Waiter {
                                token,
                                kind: WaiterKind::Response(reply),
                            },
                        );
                        if let Some(at) = deadline {
                            self.note_deadline(at, id);
                        }
                    }
                    Err(e) => {
                        reply.complete(Err(op_error(e)));
                    }
                }
            }
            Command::FireAndForget { payload } => {
                if let Err(e) = self.session.fire_and_forget(payload).map_err(op_error) {
                    tracing::debug!(error = %e, "fire-and-forget not sent");
                }
            }
            Command::Stream {
                token,
                payload,
                initial_n,
                items,
            } => {
                if items.is_closed() {
                    return;
                }
                match self.session.request_stream(payload, initial_n) {
                    Ok(id) => {
                        self.waiters.insert(
                            id,
                            Waiter {
                                token,
                                kind: WaiterKind::Stream(items),
                            },
                        );
                    }
                    Err(e) => {
                        let _ = items.try_send(Err(op_error(e)));
                    }
                }
            }
            Command::MetadataPush(metadata) => {
                if let Err(e) = self.session.metadata_push(metadata) {
                    tracing::debug!(error = %e, "metadata push not sent");
                }
            }
        }
    }

    /// Remembers when request `id` times out.
    fn note_deadline(&mut self, at: Instant, id: u32) {
        self.deadlines.push(Reverse((at, id)));
        // Answered requests leave their entry behind; drop them once they outnumber the
        // requests still waiting, so the heap stays proportional to the requests in flight
        // (amortised O(1) per request) however far off the deadlines are.
        if self.deadlines.len() > 2 * self.waiters.len() + 64 {
            let waiters = &self.waiters;
            self.deadlines
                .retain(|Reverse((_, id))| waiters.contains_key(id));
        }
    }

    /// The earliest deadline in the heap. It may belong to a request answered meanwhile: the
    /// timer then fires for nothing and `expire_requests` drops the entry, which costs less
    /// than cleaning the heap's head on every turn of the loop.
    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Fails the requests whose deadline has passed, canceling them with the peer.
    fn expire_requests(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if let Some(Waiter {
                kind: WaiterKind::Response(tx),
                ..
            }) = self.waiters.remove(&id)
            {
                tx.complete(Err(RequestError::TimedOut));
                self.session.cancel(id);
            }
        }
    }

    /// The stream id of the request with `token`. A linear search: only cancellation and
    /// credit grants need it, and the number of waiters is bounded by the in-flight limit.
    fn stream_of(&self, token: u64) -> Option<u32> {
        self.waiters
            .iter()
            .find(|(_, w)| w.token == token)
            .map(|(id, _)| *id)
    }

    fn on_control(&mut self, ctrl: Control) {
        match ctrl {
            Control::Cancel(token) => {
                if let Some(id) = self.stream_of(token) {
                    self.waiters.remove(&id);
                    self.session.cancel(id);
                }
            }
            Control::RequestN(token, n) => {
                if let Some(id) = self.stream_of(token) {
                    let _ = self.session.request_n(id, n);
                }
            }
            Control::Close => self.session.close_local(),
        }
    }

    fn on_attach(&mut self, attach: Attach) -> Option<(BoxReader, BoxWriter)> {
        match attach {
            Attach::ClientResume {
                reader,
                writer,
                token,
                reply,
            } => {
                if !self.session.is_detached() {
                    let _ = reply.send(Err(ResumeError::NotDetached));
                    return None;
                }
                match self.session.start_resume(token, now()) {
                    Ok(()) => {
                        self.resume_reply = Some(reply);
                        Some((reader, writer))
                    }
                    Err(OperationError::Closed(reason)) => {
                        let _ = reply.send(Err(ResumeError::NotResumable(reason.to_string())));
                        None
                    }
                    Err(e) => {
                        let _ = reply.send(Err(ResumeError::NotResumable(e.to_string())));
                        None
                    }
                }
            }
            Attach::ServerResume {
                reader,
                mut writer,
                frame,
                outcome,
            } => match self.session.accept_resume(&frame, now()) {
                Ok(()) => {
                    tracing::debug!("session resumed");
                    self.state_tx.send_replace(LinkState::Connected);
                    if let Some(hooks) = self.hooks.as_mut() {
                        hooks.resumed();
                    }
                    let _ = outcome.send(Ok(()));
                    // A still-attached session's old transport is dropped by the caller.
                    Some((reader, writer))
                }
                Err(message) => {
                    // The session is untouched (see `Session::accept_resume`); only the new
                    // transport is refused.
                    let _ = outcome.send(Err(message.clone()));
                    tokio::spawn(async move {
                        let _ =
                            send_error_and_close(&mut writer, ErrorCode::RejectedResume, &message)
                                .await;
                    });
                    None
                }
            },
            Attach::Evict => {
                if self.session.is_detached() {
                    tracing::info!("detached session evicted to make room for another");
                    self.session.close_local();
                }
                None
            }
        }
    }

    /// Applies the session's events. Returns true when the transport must be dropped.
    fn process_events(&mut self) -> bool {
        let mut lost = false;
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Established => {
                    if let Some(tx) = self.established.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
                Event::Resumed => {
                    self.state_tx.send_replace(LinkState::Connected);
                    if let Some(reply) = self.resume_reply.take() {
                        let _ = reply.send(Ok(()));
                    }
                }
                Event::Disconnected => {
                    lost = true;
                    self.link_lost();
                }
                Event::Request {
                    stream_id,
                    kind,
                    payload,
                } => self
                    .inbound
                    .on_request(&mut self.session, stream_id, kind, payload),
                Event::Response { stream_id, payload } => {
                    if let Some(Waiter {
                        kind: WaiterKind::Response(tx),
                        ..
                    }) = self.waiters.remove(&stream_id)
                    {
                        tx.complete(Ok(payload));
                    }
                }
                Event::StreamNext { stream_id, payload } => {
                    if let Some(Waiter {
                        kind: WaiterKind::Stream(tx),
                        ..
                    }) = self.waiters.get(&stream_id)
                    {
                        // The session enforces credit, so items never take the slot kept for the
                        // terminal error; if they would, the responder overran what we granted.
                        if tx.capacity() > 1 {
                            let _ = tx.try_send(Ok(payload));
                        } else {
                            let _ = tx.try_send(Err(RequestError::Protocol(
                                "the responder sent more items than requested",
                            )));
                            self.waiters.remove(&stream_id);
                            self.session.cancel(stream_id);
                        }
                    }
                }
                Event::StreamComplete { stream_id } => {
                    self.waiters.remove(&stream_id);
                }
                Event::RequestFailed { stream_id, error } => {
                    match self.waiters.remove(&stream_id).map(|w| w.kind) {
                        Some(WaiterKind::Response(tx)) => {
                            tx.complete(Err(error));
                        }
                        Some(WaiterKind::Stream(tx)) => {
                            let _ = tx.try_send(Err(error));
                        }
                        None => {}
                    }
                }
                Event::Credit { stream_id } => self.inbound.on_credit(stream_id),
                Event::Canceled { stream_id } => self.inbound.cancel(stream_id),
                Event::MetadataPush(metadata) => self.inbound.metadata_push(metadata),
                Event::Closed(reason) => {
                    if let Some(tx) = self.established.take() {
                        let _ = tx.send(Err(reason.clone()));
                    }
                    if let Some(reply) = self.resume_reply.take() {
                        let _ = reply.send(Err(match &reason {
                            CloseReason::Error {
                                code: ErrorCode::RejectedResume,
                                message,
                            } => ResumeError::Rejected {
                                message: message.clone(),
                            },
                            other => ResumeError::Closed(other.clone()),
                        }));
                    }
                }
            }
        }
        lost
    }

    fn shutdown(&mut self) {
        let reason = self
            .session
            .close_reason()
            .cloned()
            .unwrap_or(CloseReason::Local);
        self.process_events();
        for (_, waiter) in self.waiters.drain() {
            match waiter.kind {
                WaiterKind::Response(tx) => {
                    tx.complete(Err(RequestError::Closed(reason.clone())));
                }
                WaiterKind::Stream(tx) => {
                    let _ = tx.try_send(Err(RequestError::Closed(reason.clone())));
                }
            }
        }
        self.inflight.close();
        self.cmd_rx.close();
        self.attach_rx.close();
        self.state_tx.send_replace(LinkState::Closed(reason));
        if let Some(on_exit) = self.on_exit.take() {
            on_exit();
        }
    }
}

fn op_error(e: OperationError) -> RequestError {
    match e {
        OperationError::Closed(reason) => RequestError::Closed(reason),
        OperationError::Frame(_) => RequestError::Protocol("the request cannot be encoded"),
        OperationError::StreamIdsExhausted => RequestError::StreamIdsExhausted,
        _ => RequestError::Protocol("the stream is not active"),
    }
}

/// A failed read as the session sees it, keeping the transport's error as the source.
fn read_failed(e: TransportError) -> LostCause {
    LostCause::with_source("reading from the transport failed", e)
}
