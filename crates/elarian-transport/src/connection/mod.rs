//! The tokio side of a connection: the [`Connection`] handle applications use (`handle`), the
//! driver task that owns the [`Session`] (`driver`), and the peer's requests the driver runs
//! responders for (`inbound`). This module holds what they share: the messages from handles to
//! the driver, the limits, and spawning.

mod driver;
mod handle;
mod inbound;
mod reply;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::ResumeError;
use crate::frame::{ErrorCode, ErrorFrame, Frame, ResumeFrame};
use crate::io::{BoxReader, BoxTransport, BoxWriter, FrameTransport, FrameWriter, TransportError};
use crate::limit::InflightLimit;
use crate::payload::Payload;
use crate::protocol::{CloseReason, RequestError, Session};
use crate::responder::RequestHandler;
use driver::{Channels, Driver};
use handle::Shared;

pub use handle::{Connection, RequestStream};
pub use inbound::InboundOverflow;

/// How long closing a transport may take (final flush included).
const CLOSE_LINGER: Duration = Duration::from_secs(2);

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
        reply: reply::Completion,
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
pub(crate) fn spawn(mut parts: DriverParts) -> (Connection, mpsc::Sender<Attach>) {
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
    let replies = Arc::new(reply::ReplySlots::new(inflight.clone()));
    let transport = parts.transport.take();
    let channels = Channels {
        cmd_rx,
        ctrl_rx,
        attach_rx,
        state_tx,
    };
    let driver = Driver::new(parts, channels, inflight.clone());
    tokio::spawn(driver.run(transport));
    let conn = Connection {
        shared: Arc::new(Shared {
            cmd_tx,
            ctrl_tx,
            tokens: AtomicU64::new(0),
            inflight,
            replies,
            state: state_rx,
            stream_window: limits.stream_window,
        }),
    };
    (conn, attach_tx)
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

/// The current time as the session sees it: tokio's clock, so that paused test time applies.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
