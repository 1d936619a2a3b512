//! The handle side: [`Connection`] and [`RequestStream`], which application tasks hold. They
//! never touch the session: requests travel to the driver as commands over bounded channels and
//! answers come back in the connection's reply slots (`reply`) or over mpsc channels.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::Stream;
use tokio::sync::{mpsc, watch};

use super::reply::{PendingReply, ReplySlots};
use super::{Command, Control, LinkState};
use crate::limit::{InflightLimit, OwnedPermit};
use crate::payload::Payload;
use crate::protocol::{CloseReason, RequestError};

pub(super) struct Shared {
    pub(super) cmd_tx: mpsc::Sender<Command>,
    pub(super) ctrl_tx: mpsc::UnboundedSender<Control>,
    pub(super) tokens: AtomicU64,
    pub(super) inflight: Arc<InflightLimit>,
    /// Where the answers to REQUEST_RESPONSEs wait; its slots hold `inflight`'s permits.
    pub(super) replies: Arc<ReplySlots>,
    pub(super) state: watch::Receiver<LinkState>,
    pub(super) stream_window: u32,
}

/// A handle to one RSocket connection (client or server side). Cheap to clone.
///
/// Requests carry no timeout of their own: wrap them in `tokio::time::timeout`. Dropping a
/// request future cancels the request (CANCEL is sent and a late answer is discarded).
#[derive(Clone)]
pub struct Connection {
    pub(super) shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("state", &*self.shared.state.borrow())
            .finish_non_exhaustive()
    }
}

/// A request the driver has; dropped before the answer, it cancels the request.
struct Submitted<'a> {
    token: u64,
    ctrl: &'a mpsc::UnboundedSender<Control>,
    reply: PendingReply<'a>,
}

impl Drop for Submitted<'_> {
    fn drop(&mut self) {
        // Give the slot up first: a driver that has not yet seen the request then skips it.
        if self.reply.abandon() {
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
            _ => RequestError::Closed(CloseReason::TransportLost(crate::protocol::LostCause::new(
                "connection driver stopped",
            ))),
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
    /// use elarian_transport::BoxFuture;
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
        let permit = match inflight.try_acquire() {
            Some(permit) => permit,
            // Boxed: waiting for a slot is rare, and its state would otherwise enlarge every
            // request's future (which callers move and box).
            None => Box::pin(until(deadline, inflight.acquire()))
                .await
                .map_err(|_| RequestError::TimedOut)?
                .map_err(|_| self.closed_error())?,
        };
        // The slot keeps the permit until both the driver and this request are done with it.
        let (reply, completion) = self.shared.replies.take(permit);
        let token = self.shared.tokens.fetch_add(1, Ordering::Relaxed);
        let command = Command::RequestResponse {
            token,
            payload,
            reply: completion,
            deadline,
        };
        // Not yet submitted, `reply` is only given up when dropped: nothing to cancel.
        submit(&self.shared.cmd_tx, command, deadline)
            .await
            .map_err(|e| match e {
                NotSubmitted::Closed => self.closed_error(),
                NotSubmitted::TimedOut => RequestError::TimedOut,
            })?;
        let mut submitted = Submitted {
            token,
            ctrl: &self.shared.ctrl_tx,
            reply,
        };
        match std::future::poll_fn(|cx| submitted.reply.poll_answer(cx)).await {
            Some(result) => result,
            None => Err(self.closed_error()),
        }
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
                    _ => CloseReason::TransportLost(crate::protocol::LostCause::new(
                        "connection driver stopped",
                    )),
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
