//! The tokio driver of a [`Session`] and the [`Connection`] handle applications use.
//!
//! One task per connection owns the session, the transport halves and the responder futures, so
//! the hot path takes no lock. Reads and writes run concurrently as futures that own their half of
//! the transport; every frame ready when a write starts goes out in one batch with one flush.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::{BoxFuture, FusedFuture, FutureExt};
use futures_util::stream::{BoxStream, FuturesUnordered, Stream, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::frame::{ErrorCode, ErrorFrame, Frame, ResumeFrame};
use crate::io::{
    BoxReader, BoxTransport, BoxWriter, FrameReader, FrameTransport, FrameWriter, TransportError,
};
use crate::limit::{InflightLimit, OwnedPermit};
use crate::protocol::{Event, IdMap, InboundKind, OperationError, Session};
use crate::responder::RequestHandler;
use crate::{CloseReason, Payload, RequestError, ResumeError, StreamError};

/// How long closing a transport may take (final flush included).
const CLOSE_LINGER: Duration = Duration::from_secs(2);
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
/// Payload bytes of queued inbound requests beyond which reading pauses even though the queue
/// has room by count, so that a queue of large requests stays small in memory.
const QUEUED_BYTES_LIMIT: usize = 64 * 1024 * 1024;

/// Erases a transport's type without boxing a [`BoxTransport`] twice.
pub(crate) fn into_halves<T: FrameTransport>(transport: T) -> (BoxReader, BoxWriter) {
    let mut slot = Some(transport);
    let any: &mut dyn std::any::Any = &mut slot;
    let boxed = match any.downcast_mut::<Option<BoxTransport>>() {
        Some(b) => b.take(),
        None => None,
    };
    match boxed {
        Some(b) => b.split(),
        None => match slot {
            Some(t) => BoxTransport::new(t).split(),
            // `slot` is only emptied by the downcast branch, which returns above.
            None => unreachable!("transport taken twice"),
        },
    }
}

/// Where the session's transport stands, as seen by handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkState {
    Connected,
    Detached,
    Closed(CloseReason),
}

/// Requests carry a token chosen by the handle rather than a stream id: the session assigns
/// stream ids in the order the driver hands it requests, so ids go out strictly increasing even
/// when tasks race.
/// The token lets a handle cancel or grant credit before it could know the stream id.
pub(crate) enum Command {
    RequestResponse {
        token: u64,
        payload: Payload,
        reply: oneshot::Sender<Result<Payload, RequestError>>,
        /// When the request fails with [`RequestError::TimedOut`] unless answered.
        deadline: Option<Instant>,
    },
    FireAndForget {
        payload: Payload,
    },
    Stream {
        token: u64,
        payload: Payload,
        initial_n: u32,
        items: mpsc::Sender<Result<Payload, RequestError>>,
    },
    MetadataPush(Bytes),
}

pub(crate) enum Control {
    /// Cancel the request with this token.
    Cancel(u64),
    /// Grant more items to the stream request with this token.
    RequestN(u64, u32),
    Close,
}

/// A new transport for a detached (or still attached) session.
pub(crate) enum Attach {
    ClientResume {
        reader: BoxReader,
        writer: BoxWriter,
        token: Bytes,
        reply: oneshot::Sender<Result<(), ResumeError>>,
    },
    ServerResume {
        reader: BoxReader,
        writer: BoxWriter,
        frame: ResumeFrame,
        /// Whether the session took the transport (the text says why not).
        outcome: oneshot::Sender<Result<(), String>>,
    },
    /// The server evicts this detached session to make room for another (ignored once the
    /// session is attached again).
    Evict,
}

/// What a server learns from a resumable session's driver, to account for detached sessions.
pub(crate) trait SessionHooks: Send {
    /// The session lost its transport and waits for a RESUME. Returns false when the session
    /// must end instead (no room is left for detached sessions).
    fn detached(&mut self, session: &mut Session) -> bool;
    /// The session took a new transport.
    fn resumed(&mut self);
}

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

/// Limits of the handle side of a connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandleLimits {
    pub(crate) max_in_flight: usize,
    pub(crate) command_queue: usize,
    pub(crate) stream_window: u32,
    /// Most responder futures (or streams) running at once.
    pub(crate) max_responders: usize,
    /// Requests waiting for a responder slot at most ([`InboundOverflow::PauseReading`]).
    pub(crate) max_pending: usize,
    /// What happens beyond `max_responders`.
    pub(crate) overflow: InboundOverflow,
}

impl HandleLimits {
    /// The session's cap of open inbound requests for these limits. With
    /// [`InboundOverflow::PauseReading`]: the running responders, the queue waiting for them,
    /// and another `max_responders` for requests that run no responder (fragments still
    /// arriving, streams waiting for credit), which must not stop reading.
    pub(crate) fn session_inbound_cap(&self) -> usize {
        match self.overflow {
            InboundOverflow::PauseReading => {
                let running = self.max_responders.max(1);
                running
                    .saturating_add(self.max_pending)
                    .saturating_add(running)
            }
            InboundOverflow::Reject => self.max_responders,
        }
    }
}

struct Shared {
    cmd_tx: mpsc::Sender<Command>,
    ctrl_tx: mpsc::UnboundedSender<Control>,
    tokens: AtomicU64,
    inflight: Arc<InflightLimit>,
    state: watch::Receiver<LinkState>,
    stream_window: u32,
}

/// A handle to one RSocket connection (client or server side). Cheap to clone.
///
/// Requests carry no timeout of their own: wrap them in `tokio::time::timeout`. Dropping a
/// request future cancels the request (CANCEL is sent and a late answer is discarded).
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("state", &*self.shared.state.borrow())
            .finish_non_exhaustive()
    }
}

/// The reply slot of a request; dropped before the answer, it cancels the request.
struct PendingReply<'a> {
    token: u64,
    ctrl: &'a mpsc::UnboundedSender<Control>,
    rx: Option<oneshot::Receiver<Result<Payload, RequestError>>>,
}

impl Drop for PendingReply<'_> {
    fn drop(&mut self) {
        if let Some(rx) = self.rx.take() {
            // Close the slot first: a driver that has not yet seen the request then skips it.
            drop(rx);
            let _ = self.ctrl.send(Control::Cancel(self.token));
        }
    }
}

/// Why a command did not reach the driver.
enum NotSubmitted {
    Closed,
    TimedOut,
}

/// Queues a command for the driver, waiting (until `deadline`, if any) only when the queue is
/// full.
async fn submit(
    tx: &mpsc::Sender<Command>,
    cmd: Command,
    deadline: Option<Instant>,
) -> Result<(), NotSubmitted> {
    // `try_send` is a single atomic step; `send` builds a semaphore future even when there is
    // room, which shows up on the request path.
    match tx.try_send(cmd) {
        Ok(()) => Ok(()),
        // Boxed, as a rare wait whose state should not enlarge every request's future.
        Err(mpsc::error::TrySendError::Full(cmd)) => Box::pin(until(deadline, tx.send(cmd)))
            .await?
            .map_err(|_| NotSubmitted::Closed),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(NotSubmitted::Closed),
    }
}

/// Runs `wait` until `deadline`, if there is one.
async fn until<T>(
    deadline: Option<Instant>,
    wait: impl Future<Output = T>,
) -> Result<T, NotSubmitted> {
    match deadline {
        None => Ok(wait.await),
        Some(at) => tokio::time::timeout_at(at.into(), wait)
            .await
            .map_err(|_| NotSubmitted::TimedOut),
    }
}

impl Connection {
    fn closed_error(&self) -> RequestError {
        match &*self.shared.state.borrow() {
            LinkState::Closed(reason) => RequestError::Closed(reason.clone()),
            _ => RequestError::Closed(CloseReason::TransportLost(
                "connection driver stopped".into(),
            )),
        }
    }

    /// Sends a REQUEST_RESPONSE and waits for the answer.
    ///
    /// Waits for a slot when the connection's in-flight limit is reached. While a resumable
    /// session is detached, requests queue (bounded) and go out on resumption.
    pub async fn request_response(&self, payload: Payload) -> Result<Payload, RequestError> {
        self.request(payload, None).await
    }

    /// Sends a REQUEST_RESPONSE and waits for the answer until `deadline`, then fails with
    /// [`RequestError::TimedOut`] and cancels the request (the peer gets CANCEL if the request
    /// went out). The deadline covers waiting for an in-flight slot too.
    ///
    /// Cheaper than wrapping [`request_response`](Connection::request_response) in
    /// `tokio::time::timeout_at`: the connection keeps the deadlines of all its requests and
    /// arms one timer for the earliest, rather than each request registering its own.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use elarian_transport::responder::BoxFuture;
    /// use elarian_transport::{ClientSessionConfig, ClientSession, Payload, RejectAll, RequestError};
    /// use elarian_transport::{RequestHandler, Server, ServerConfig, StreamError};
    /// use elarian_transport::io::memory;
    ///
    /// /// Never answers.
    /// struct Silent;
    /// impl RequestHandler for Silent {
    ///     fn request_response(&self, _: Payload) -> BoxFuture<'static, Result<Payload, StreamError>> {
    ///         Box::pin(std::future::pending())
    ///     }
    /// }
    ///
    /// let server = Server::new(ServerConfig::default());
    /// let (client_end, server_end) = memory::pair(64);
    /// server.serve_transport(server_end);
    /// let accept = tokio::spawn({
    ///     let server = server.clone();
    ///     async move { server.accept().await.unwrap().accept(Arc::new(Silent)) }
    /// });
    /// let session = ClientSession::connect(client_end, ClientSessionConfig::default(), Arc::new(RejectAll))
    ///     .await
    ///     .unwrap();
    /// let _server_side = accept.await.unwrap();
    /// let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
    /// let answer = session.connection().request_response_until(Payload::new("hi"), deadline).await;
    /// assert!(matches!(answer, Err(RequestError::TimedOut)));
    /// # });
    /// ```
    pub async fn request_response_until(
        &self,
        payload: Payload,
        deadline: tokio::time::Instant,
    ) -> Result<Payload, RequestError> {
        self.request(payload, Some(deadline.into_std())).await
    }

    async fn request(
        &self,
        payload: Payload,
        deadline: Option<Instant>,
    ) -> Result<Payload, RequestError> {
        let inflight = &self.shared.inflight;
        let _permit = match inflight.try_acquire() {
            Some(permit) => permit,
            // Boxed: waiting for a slot is rare, and its state would otherwise enlarge every
            // request's future (which callers move and box).
            None => Box::pin(until(deadline, inflight.acquire()))
                .await
                .map_err(|_| RequestError::TimedOut)?
                .map_err(|_| self.closed_error())?,
        };
        let token = self.shared.tokens.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let command = Command::RequestResponse {
            token,
            payload,
            reply,
            deadline,
        };
        submit(&self.shared.cmd_tx, command, deadline)
            .await
            .map_err(|e| match e {
                NotSubmitted::Closed => self.closed_error(),
                NotSubmitted::TimedOut => RequestError::TimedOut,
            })?;
        let mut pending = PendingReply {
            token,
            ctrl: &self.shared.ctrl_tx,
            rx: Some(rx),
        };
        let result = match pending.rx.as_mut() {
            Some(rx) => rx.await,
            None => return Err(self.closed_error()),
        };
        // Answered: nothing to cancel.
        pending.rx = None;
        result.unwrap_or_else(|_| Err(self.closed_error()))
    }

    /// Sends a REQUEST_FNF. Resolves once the request is queued on the connection.
    pub async fn fire_and_forget(&self, payload: Payload) -> Result<(), RequestError> {
        submit(
            &self.shared.cmd_tx,
            Command::FireAndForget { payload },
            None,
        )
        .await
        .map_err(|_| self.closed_error())
    }

    /// Sends a REQUEST_STREAM. The returned stream grants REQUEST_N credit as it is consumed
    /// (a window of `stream_window` items); dropping it cancels the request.
    pub fn request_stream(&self, payload: Payload) -> RequestStream {
        let window = self.shared.stream_window.max(2);
        let shared = self.shared.clone();
        // One slot beyond the window is kept for the terminal error, so that a stream cut for a
        // protocol violation (or a closed connection) always tells its consumer why, even when
        // the consumer has not taken a single item yet.
        let (items_tx, items_rx) = mpsc::channel(window as usize + 1);
        let conn = self.clone();
        let token = self.shared.tokens.fetch_add(1, Ordering::Relaxed);
        let start = async move {
            let permit = shared
                .inflight
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| conn.closed_error())?;
            shared
                .cmd_tx
                .send(Command::Stream {
                    token,
                    payload,
                    initial_n: window,
                    items: items_tx,
                })
                .await
                .map_err(|_| conn.closed_error())?;
            Ok(permit)
        };
        RequestStream {
            start: Some(Box::pin(start)),
            token,
            items: items_rx,
            ctrl: self.shared.ctrl_tx.clone(),
            window,
            consumed: 0,
            done: false,
            _permit: None,
        }
    }

    /// Sends METADATA_PUSH. Resolves once it is queued on the connection. METADATA_PUSH is
    /// not resumable (RSocket 1.0): one queued while the transport is lost is dropped (and
    /// logged at debug level) rather than sent on resumption.
    pub async fn metadata_push(&self, metadata: Bytes) -> Result<(), RequestError> {
        self.shared
            .cmd_tx
            .send(Command::MetadataPush(metadata))
            .await
            .map_err(|_| self.closed_error())
    }

    /// Closes the connection: the peer gets ERROR(CONNECTION_CLOSE), pending requests fail with
    /// [`RequestError::Closed`]. Returns at once; await [`closed`](Connection::closed) to wait.
    pub fn close(&self) {
        let _ = self.shared.ctrl_tx.send(Control::Close);
    }

    /// Whether the connection has closed.
    pub fn is_closed(&self) -> bool {
        matches!(*self.shared.state.borrow(), LinkState::Closed(_))
    }

    /// Waits until the connection closes and tells why.
    pub async fn closed(&self) -> CloseReason {
        let mut rx = self.shared.state.clone();
        loop {
            if let LinkState::Closed(reason) = &*rx.borrow_and_update() {
                return reason.clone();
            }
            if rx.changed().await.is_err() {
                return match &*rx.borrow() {
                    LinkState::Closed(reason) => reason.clone(),
                    _ => CloseReason::TransportLost("connection driver stopped".into()),
                };
            }
        }
    }

    /// Waits until the transport is lost (the session may be resumable) or the connection closes.
    pub(crate) async fn link_down(&self) {
        let mut rx = self.shared.state.clone();
        loop {
            if !matches!(*rx.borrow_and_update(), LinkState::Connected) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    pub(crate) fn link_state(&self) -> LinkState {
        self.shared.state.borrow().clone()
    }
}

type StartFuture = BoxFuture<'static, Result<OwnedPermit, RequestError>>;

/// The items of a REQUEST_STREAM, from [`Connection::request_stream`].
pub struct RequestStream {
    start: Option<StartFuture>,
    token: u64,
    items: mpsc::Receiver<Result<Payload, RequestError>>,
    ctrl: mpsc::UnboundedSender<Control>,
    window: u32,
    consumed: u32,
    done: bool,
    _permit: Option<OwnedPermit>,
}

impl std::fmt::Debug for RequestStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStream")
            .field("started", &self.start.is_none())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Stream for RequestStream {
    type Item = Result<Payload, RequestError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(start) = this.start.as_mut() {
            match start.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(permit)) => {
                    this._permit = Some(permit);
                    this.start = None;
                }
                Poll::Ready(Err(e)) => {
                    this.start = None;
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
        match this.items.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.done = true;
                this._permit = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                this._permit = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(p))) => {
                this.consumed += 1;
                if this.consumed >= this.window / 2 {
                    let _ = this.ctrl.send(Control::RequestN(this.token, this.consumed));
                    this.consumed = 0;
                }
                Poll::Ready(Some(Ok(p)))
            }
        }
    }
}

impl Drop for RequestStream {
    fn drop(&mut self) {
        // Only a request that reached the driver (its start completed) needs canceling.
        if !self.done && self.start.is_none() {
            // Close the channel first: a driver that has not yet seen the request skips it.
            self.items.close();
            let _ = self.ctrl.send(Control::Cancel(self.token));
        }
    }
}

/// Where the answer to one of our requests goes.
struct Waiter {
    token: u64,
    kind: WaiterKind,
}

enum WaiterKind {
    Response(oneshot::Sender<Result<Payload, RequestError>>),
    Stream(mpsc::Sender<Result<Payload, RequestError>>),
}

/// Everything the driver task needs.
pub(crate) struct DriverParts {
    pub(crate) session: Session,
    pub(crate) responder: Arc<dyn RequestHandler>,
    pub(crate) transport: Option<(BoxReader, BoxWriter)>,
    pub(crate) limits: HandleLimits,
    pub(crate) established: Option<oneshot::Sender<Result<(), CloseReason>>>,
    pub(crate) on_exit: Option<Box<dyn FnOnce() + Send>>,
    pub(crate) hooks: Option<Box<dyn SessionHooks>>,
}

/// Spawns the driver; returns the handle and the channel that feeds new transports.
pub(crate) fn spawn(parts: DriverParts) -> (Connection, mpsc::Sender<Attach>) {
    let limits = parts.limits;
    let (cmd_tx, cmd_rx) = mpsc::channel(limits.command_queue.max(1));
    // Unbounded so that `Drop` impls can send without waiting; still bounded in practice: a
    // request sends at most one CANCEL, a stream one REQUEST_N per half window it consumed, and
    // requests are capped by the in-flight limit.
    let (ctrl_tx, ctrl_rx) = mpsc::unbounded_channel();
    let (attach_tx, attach_rx) = mpsc::channel(4);
    let initial = if parts.transport.is_some() {
        LinkState::Connected
    } else {
        LinkState::Detached
    };
    let (state_tx, state_rx) = watch::channel(initial);
    let inflight = Arc::new(InflightLimit::new(limits.max_in_flight));
    let driver = Driver {
        session: parts.session,
        responder: parts.responder,
        cmd_rx,
        ctrl_rx,
        attach_rx,
        waiters: IdMap::default(),
        deadlines: BinaryHeap::new(),
        max_responders: limits.max_responders.max(1),
        max_pending: limits.max_pending,
        overflow: limits.overflow,
        reading_paused: false,
        state_tx,
        inflight: inflight.clone(),
        established: parts.established,
        resume_reply: None,
        on_exit: parts.on_exit,
        hooks: parts.hooks,
    };
    tokio::spawn(driver.run(parts.transport));
    let conn = Connection {
        shared: Arc::new(Shared {
            cmd_tx,
            ctrl_tx,
            tokens: AtomicU64::new(0),
            inflight,
            state: state_rx,
            stream_window: limits.stream_window,
        }),
    };
    (conn, attach_tx)
}

struct Driver {
    session: Session,
    responder: Arc<dyn RequestHandler>,
    cmd_rx: mpsc::Receiver<Command>,
    ctrl_rx: mpsc::UnboundedReceiver<Control>,
    attach_rx: mpsc::Receiver<Attach>,
    waiters: IdMap<Waiter>,
    /// Deadlines of requests that have one, earliest first. Entries of requests answered
    /// meanwhile stay until they come up or the heap is compacted (see `note_deadline`).
    deadlines: BinaryHeap<Reverse<(Instant, u32)>>,
    max_responders: usize,
    /// Capacity of [`Work::queued`].
    max_pending: usize,
    overflow: InboundOverflow,
    /// Whether reading is paused for [`InboundOverflow::PauseReading`] (as last told to the
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

type ItemStream = BoxStream<'static, Result<Payload, StreamError>>;

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
struct ResponseFuture {
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
struct ItemFuture {
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
    type Output = (
        u32,
        Option<Result<Payload, StreamError>>,
        Option<ItemStream>,
    );
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

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// A request of the peer waiting for a responder slot ([`InboundOverflow::PauseReading`]).
struct Queued {
    stream_id: u32,
    kind: InboundKind,
    payload: Payload,
}

/// RequestHandler work owned by the driver task.
struct Work {
    responses: FuturesUnordered<ResponseFuture>,
    items: FuturesUnordered<ItemFuture>,
    parked: IdMap<ItemStream>,
    /// Requests received while every responder slot was taken, in arrival order. Bounded by
    /// `Driver::max_pending` and [`QUEUED_BYTES_LIMIT`]: the driver stops reading first.
    queued: VecDeque<Queued>,
    /// Payload bytes held by `queued`.
    queued_bytes: usize,
}

impl Work {
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
    fn queue_room(&self, max_pending: usize) -> usize {
        if self.queued_bytes >= QUEUED_BYTES_LIMIT {
            0
        } else {
            max_pending.saturating_sub(self.queued.len())
        }
    }

    /// Drops the application's future (or stream) answering `id`, so canceled work stops.
    fn cancel(&mut self, id: u32) {
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
}

impl Driver {
    async fn run(mut self, transport: Option<(BoxReader, BoxWriter)>) {
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
        let mut work = Work {
            responses: FuturesUnordered::new(),
            items: FuturesUnordered::new(),
            parked: IdMap::default(),
            queued: VecDeque::new(),
            queued_bytes: 0,
        };
        let mut cmd_open = true;
        let mut ctrl_open = true;
        let mut attach_open = true;

        loop {
            let lost = self.process_events(&mut work);
            self.start_queued(&mut work);
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
            // With PauseReading, at most `max_responders` responders run and `max_pending`
            // requests (QUEUED_BYTES_LIMIT bytes) wait for them; with both full, the peer's
            // frames stay unread (in the transport, then in the peer's send buffers) until a
            // responder finishes.
            let room = match self.overflow {
                InboundOverflow::PauseReading => {
                    let room = self
                        .max_responders
                        .saturating_sub(work.running())
                        .saturating_add(work.queue_room(self.max_pending));
                    self.note_reading_paused(room == 0 && !read_fut.is_terminated());
                    room
                }
                InboundOverflow::Reject => usize::MAX,
            };
            let peer_ok = pending < PEER_TX_LIMIT && room > 0;

            tokio::select! {
                (reader, result) = &mut read_fut, if peer_ok => match result {
                    Ok(Some(frame)) => {
                        let now = now();
                        let delivered = self.session.delivered_requests();
                        // What the queue may still take in bytes; a batch stops there too.
                        let byte_room = QUEUED_BYTES_LIMIT.saturating_sub(work.queued_bytes);
                        let mut batch_bytes = frame.len();
                        self.session.handle_frame(frame, now);
                        // Take every frame already buffered before going back to the select:
                        // one loop turn per frame costs more than the frame itself. Stop early
                        // when the requests read so far fill the room (slots and queue).
                        let mut reader = reader;
                        let mut failed = None;
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
                                Some(Ok(None)) => {
                                    failed = Some("peer closed the transport".to_owned());
                                    break;
                                }
                                Some(Err(e)) => {
                                    failed = Some(e.to_string());
                                    break;
                                }
                                None => break,
                            }
                        }
                        match failed {
                            None => read_fut.set(read_owned(reader).fuse()),
                            Some(why) => self.transport_failed(&why, &mut writer_idle, &mut write_fut),
                        }
                    }
                    Ok(None) => self.transport_failed("peer closed the transport", &mut writer_idle, &mut write_fut),
                    Err(e) => self.transport_failed(&e.to_string(), &mut writer_idle, &mut write_fut),
                },
                (writer, mut batch, result) = &mut write_fut => match result {
                    Ok(()) => {
                        batch.clear();
                        spare = batch;
                        writer_idle = Some(writer);
                    }
                    Err(e) => {
                        drop(writer);
                        read_fut.set(futures_util::future::Fuse::terminated());
                        self.session.transport_lost(now(), &e.to_string());
                        self.link_lost();
                    }
                },
                cmd = self.cmd_rx.recv(), if cmd_open && local_ok => match cmd {
                    Some(cmd) => {
                        // One clock read per batch, for the requests that carry a deadline.
                        let mut clock = None;
                        self.on_command(cmd, &mut clock);
                        for _ in 1..COMMAND_BATCH {
                            match self.cmd_rx.try_recv() {
                                Ok(cmd) => self.on_command(cmd, &mut clock),
                                Err(_) => break,
                            }
                        }
                    }
                    None => cmd_open = false,
                },
                ctrl = self.ctrl_rx.recv(), if ctrl_open => match ctrl {
                    Some(ctrl) => self.on_control(ctrl),
                    None => ctrl_open = false,
                },
                Some((id, result)) = work.responses.next(), if local_ok && !work.responses.is_empty() => {
                    // The stream may have been canceled meanwhile; then the answer is dropped.
                    let _ = self.session.respond(id, result);
                    while let Some(Some((id, result))) = work.responses.next().now_or_never() {
                        let _ = self.session.respond(id, result);
                    }
                }
                Some((id, item, stream)) = work.items.next(), if local_ok && !work.items.is_empty() => {
                    self.on_item(&mut work, id, item, stream);
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
                () = &mut sleep => {
                    let now = now();
                    self.session.handle_timeout(now);
                    self.expire_requests(now);
                }
            }
        }

        self.shutdown(&mut work);
        // Send what is queued (typically the closing ERROR frame), then close the transport.
        let mut writer = if write_fut.is_terminated() {
            writer_idle
        } else {
            match tokio::time::timeout(CLOSE_LINGER, &mut write_fut).await {
                Ok((w, _, Ok(()))) => Some(w),
                _ => None,
            }
        };
        if let Some(w) = writer.as_mut() {
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
    }

    /// Tells the session when reading starts or stops being paused for backpressure.
    fn note_reading_paused(&mut self, paused: bool) {
        if paused != self.reading_paused {
            self.reading_paused = paused;
            if paused {
                tracing::debug!(
                    running = self.max_responders,
                    queued = self.max_pending,
                    "responders and their queue are full; reading paused"
                );
            }
            self.session.set_reading_paused(paused, now());
        }
    }

    fn transport_failed<F>(
        &mut self,
        why: &str,
        writer_idle: &mut Option<BoxWriter>,
        write_fut: &mut Pin<&mut futures_util::future::Fuse<F>>,
    ) where
        F: Future,
    {
        tracing::debug!(why, "transport lost");
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
                if reply.is_closed() {
                    return;
                }
                if let Some(at) = deadline
                    && at <= *clock.get_or_insert_with(now)
                {
                    // Expired while queued: never sent, so nothing to cancel.
                    let _ = reply.send(Err(RequestError::TimedOut));
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
                        let _ = reply.send(Err(op_error(e)));
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
                let _ = tx.send(Err(RequestError::TimedOut));
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

    fn on_item(
        &mut self,
        work: &mut Work,
        id: u32,
        item: Option<Result<Payload, StreamError>>,
        stream: Option<ItemStream>,
    ) {
        match item {
            Some(Ok(payload)) => {
                // An error means the stream was canceled or the session closed: drop the stream.
                if self.session.stream_next(id, payload).is_ok()
                    && let Some(stream) = stream
                {
                    if self.session.credit(id) > 0 {
                        work.items.push(next_item(id, stream));
                    } else {
                        work.parked.insert(id, stream);
                    }
                }
            }
            Some(Err(e)) => {
                let _ = self.session.stream_error(id, e);
            }
            None => {
                let _ = self.session.stream_complete(id);
            }
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
    fn process_events(&mut self, work: &mut Work) -> bool {
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
                } => self.on_request(work, stream_id, kind, payload),
                Event::Response { stream_id, payload } => {
                    if let Some(Waiter {
                        kind: WaiterKind::Response(tx),
                        ..
                    }) = self.waiters.remove(&stream_id)
                    {
                        let _ = tx.send(Ok(payload));
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
                            let _ = tx.send(Err(error));
                        }
                        Some(WaiterKind::Stream(tx)) => {
                            let _ = tx.try_send(Err(error));
                        }
                        None => {}
                    }
                }
                Event::Credit { stream_id } => {
                    if let Some(stream) = work.parked.remove(&stream_id) {
                        work.items.push(next_item(stream_id, stream));
                    }
                }
                Event::Canceled { stream_id } => work.cancel(stream_id),
                Event::MetadataPush(metadata) => {
                    let responder = &self.responder;
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        responder.metadata_push(metadata)
                    }))
                    .is_err()
                    {
                        tracing::error!("metadata push handler panicked");
                    }
                }
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

    /// A request of the peer, as the session delivered it.
    fn on_request(&mut self, work: &mut Work, stream_id: u32, kind: InboundKind, payload: Payload) {
        match (self.overflow, kind) {
            (_, InboundKind::FireAndForget) => self.start_request(work, stream_id, kind, payload),
            // Requests queued earlier start first, so the queue keeps arrival order. The read
            // loop stops before the queue could exceed `max_pending` (see `run`).
            (InboundOverflow::PauseReading, _)
                if !work.queued.is_empty() || work.running() >= self.max_responders =>
            {
                work.enqueue(Queued {
                    stream_id,
                    kind,
                    payload,
                });
            }
            (InboundOverflow::Reject, InboundKind::Response)
                if work.responses.len() >= self.max_responders =>
            {
                let busy = StreamError::rejected("too many requests in progress");
                let _ = self.session.respond(stream_id, Err(busy));
            }
            (InboundOverflow::Reject, InboundKind::Stream { .. })
                if work.items.len() + work.parked.len() >= self.max_responders =>
            {
                let busy = StreamError::rejected("too many streams in progress");
                let _ = self.session.stream_error(stream_id, busy);
            }
            _ => self.start_request(work, stream_id, kind, payload),
        }
    }

    /// Starts queued requests while responder slots are free.
    fn start_queued(&mut self, work: &mut Work) {
        while work.running() < self.max_responders {
            let Some(q) = work.dequeue() else {
                break;
            };
            self.start_request(work, q.stream_id, q.kind, q.payload);
        }
    }

    /// Hands a request to the responder, isolating its panics.
    fn start_request(
        &mut self,
        work: &mut Work,
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
                                let _ = self.session.respond(id, result);
                            }
                            None => work.responses.push(answer),
                        }
                    }
                    Err(_) => {
                        let _ = self.session.respond(stream_id, Err(panicked()));
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
                    Ok(stream) => work.items.push(next_item(stream_id, stream)),
                    Err(_) => {
                        let _ = self.session.stream_error(stream_id, panicked());
                    }
                }
            }
        }
    }

    fn shutdown(&mut self, work: &mut Work) {
        let reason = self
            .session
            .close_reason()
            .cloned()
            .unwrap_or(CloseReason::Local);
        self.process_events(work);
        for (_, waiter) in self.waiters.drain() {
            match waiter.kind {
                WaiterKind::Response(tx) => {
                    let _ = tx.send(Err(RequestError::Closed(reason.clone())));
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

/// Writes one connection-level ERROR frame and closes the writer, within [`CLOSE_LINGER`].
pub(crate) async fn send_error_and_close(
    writer: &mut BoxWriter,
    code: ErrorCode,
    message: &str,
) -> Result<(), TransportError> {
    let frame = Frame::Error(ErrorFrame {
        stream_id: 0,
        code,
        data: Bytes::copy_from_slice(message.as_bytes()),
    });
    let Ok(bytes) = frame.to_bytes() else {
        return Ok(());
    };
    let work = async {
        writer.write_frame(bytes).await?;
        writer.close().await
    };
    match tokio::time::timeout(CLOSE_LINGER, work).await {
        Ok(r) => r,
        Err(_) => Ok(()),
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
        let mut work = Work {
            responses: FuturesUnordered::new(),
            items: FuturesUnordered::new(),
            parked: IdMap::default(),
            queued: VecDeque::new(),
            queued_bytes: 0,
        };
        let small = Bytes::from_static(b"small");
        work.enqueue(queued(2, &small));
        work.enqueue(queued(4, &small));
        assert_eq!(work.queue_room(3), 1);
        assert_eq!(work.queue_room(2), 0);

        // Large payloads fill the byte budget long before the count.
        let large = Bytes::from(vec![0u8; QUEUED_BYTES_LIMIT / 4]);
        for i in 0..4 {
            work.enqueue(queued(6 + 2 * i, &large));
        }
        assert_eq!(work.queue_room(1024), 0);

        // A canceled request and a started one give their bytes back, in arrival order.
        work.cancel(8);
        assert_eq!(work.queue_room(1024), 1024 - 5);
        assert_eq!(work.dequeue().map(|q| q.stream_id), Some(2));
        assert_eq!(work.dequeue().map(|q| q.stream_id), Some(4));
        assert_eq!(work.dequeue().map(|q| q.stream_id), Some(6));
        assert_eq!(work.queued_bytes, 2 * large.len());
    }
}
