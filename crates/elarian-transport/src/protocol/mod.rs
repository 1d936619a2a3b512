//! The sans-IO RSocket state machine.
//!
//! A [`Session`] is fed whole frames ([`Session::handle_frame`]) and the current time
//! ([`Session::handle_timeout`]); it produces frames to write ([`Session::poll_transmit`]), the next
//! deadline ([`Session::poll_timeout`]) and [`Event`]s ([`Session::poll_event`]). It never touches
//! a socket or a clock, so every protocol rule can be tested deterministically with a fake clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use elarian_transport::protocol::{Session, SessionConfig, Side, Event};
//! use elarian_transport::frame::SetupFrame;
//!
//! let now = Instant::now();
//! let setup = SetupFrame {
//!     major_version: 1, minor_version: 0, keepalive_ms: 1000, max_lifetime_ms: 60_000,
//!     resume_token: None, lease: false,
//!     metadata_mime: "application/json".into(), data_mime: "application/octet-stream".into(),
//!     metadata: None, data: Default::default(),
//! };
//! let mut client = Session::client(SessionConfig::new(Side::Client), &setup, now).unwrap();
//! let mut server = Session::server(SessionConfig::new(Side::Server), now);
//! // SETUP is consumed by the server's handshake; the KEEPALIVE behind it goes to the session.
//! let _setup = client.poll_transmit().unwrap();
//! server.handle_frame(client.poll_transmit().unwrap(), now);
//! client.handle_frame(server.poll_transmit().unwrap(), now);
//! assert!(matches!(client.poll_event(), Some(Event::Established)));
//! ```

mod budget;
mod error;
mod fragment;
mod handshake;
mod idmap;
mod peer_ids;
mod resume;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::frame::MAX_FRAME_LEN;
use crate::frame::{
    ErrorCode, ErrorFrame, Frame, FrameError, KeepaliveFrame, MAX_U31, PayloadFrame, RequestFrame,
    RequestKind, ResumeFrame, SetupFrame,
};
use crate::payload::Payload;

pub use budget::ByteBudget;
use budget::{Budgets, Exhausted};
pub use error::{CloseReason, LostCause, RequestError, StreamError};
use fragment::{PushError, Reassembly};
pub use handshake::{SetupRejection, check_setup};
pub(crate) use idmap::IdMap;
use peer_ids::{IdViolation, PeerIds};
use resume::ResumeState;

/// Which end of the connection a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Sent SETUP; uses odd stream ids and sends KEEPALIVEs.
    Client,
    /// Accepted SETUP; uses even stream ids and answers KEEPALIVEs.
    Server,
}

/// Tunables of a [`Session`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Client or server.
    pub role: Side,
    /// Interval between KEEPALIVEs (client side).
    pub keepalive_interval: Duration,
    /// Without any frame from the peer for this long, the connection is dead.
    pub max_lifetime: Duration,
    /// Largest frame to send; larger payloads are fragmented (at least
    /// [`MIN_MTU`](crate::frame::MIN_MTU)).
    pub mtu: usize,
    /// Largest payload accepted through reassembly.
    pub max_reassembly: usize,
    /// Most bytes of payloads being reassembled at once on this connection, across all its
    /// streams; a fragment beyond it fails its stream (REJECTED for a peer's request).
    pub max_reassembly_total: usize,
    /// A reassembly budget shared with other sessions (process-wide), charged as well.
    pub shared_reassembly: Option<Arc<ByteBudget>>,
    /// Bytes of sent frames kept for resumption; `None` disables resumption.
    pub resume_buffer: Option<usize>,
    /// How long a detached resumable session waits to be resumed.
    pub resume_window: Duration,
    /// How long a client waits for RESUME_OK.
    pub resume_timeout: Duration,
    /// Most requests from the peer open at once (being answered, streaming, or still arriving
    /// in fragments); more are refused with REJECTED.
    pub max_inbound_streams: usize,
}

impl SessionConfig {
    /// Defaults: keepalive 1 s, lifetime 60 s, no fragmentation below the 16 MiB frame limit,
    /// 16 MiB reassembly per payload and 64 MiB per connection, no shared budget, no resumption, 1024 concurrent inbound requests.
    pub fn new(role: Side) -> Self {
        SessionConfig {
            role,
            keepalive_interval: Duration::from_secs(1),
            max_lifetime: Duration::from_secs(60),
            mtu: MAX_FRAME_LEN,
            max_reassembly: 16 * 1024 * 1024,
            max_reassembly_total: 64 * 1024 * 1024,
            shared_reassembly: None,
            resume_buffer: None,
            resume_window: Duration::from_secs(60),
            resume_timeout: Duration::from_secs(10),
            max_inbound_streams: 1024,
        }
    }
}

/// Connection-level codes are not valid on a stream; an application that uses one gets
/// APPLICATION_ERROR instead, so that the peer does not misread it.
fn stream_code(code: ErrorCode) -> ErrorCode {
    if code.is_connection_error() {
        ErrorCode::ApplicationError
    } else {
        code
    }
}

/// Size of the buffers frames are encoded into (larger frames get a buffer of their own).
const SCRATCH_CHUNK: usize = 16 * 1024;

/// The interaction a peer's request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundKind {
    /// REQUEST_RESPONSE: answer with [`Session::respond`].
    Response,
    /// REQUEST_FNF: no answer.
    FireAndForget,
    /// REQUEST_STREAM: answer with [`Session::stream_next`] within credit, then complete.
    Stream {
        /// Initial credit.
        initial_n: u32,
    },
}

/// Something the application (or driver) must act upon.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Client: the server answered the first KEEPALIVE, so it accepted the SETUP.
    Established,
    /// Client: the server accepted the RESUME; retransmission is queued.
    Resumed,
    /// The transport should be dropped: keepalive timeout or a RESUME that timed out on a
    /// resumable session. The session is now detached and waits for a resumption.
    Disconnected,
    /// The peer sent a request.
    Request {
        /// Its stream.
        stream_id: u32,
        /// What it asks for.
        kind: InboundKind,
        /// The (reassembled) request payload.
        payload: Payload,
    },
    /// The response to our REQUEST_RESPONSE.
    Response {
        /// The stream.
        stream_id: u32,
        /// The response.
        payload: Payload,
    },
    /// An item of our REQUEST_STREAM.
    StreamNext {
        /// The stream.
        stream_id: u32,
        /// The item.
        payload: Payload,
    },
    /// Our REQUEST_STREAM completed.
    StreamComplete {
        /// The stream.
        stream_id: u32,
    },
    /// One of our requests failed.
    RequestFailed {
        /// The stream.
        stream_id: u32,
        /// Why.
        error: RequestError,
    },
    /// A stream we respond to received credit after it ran out.
    Credit {
        /// The stream.
        stream_id: u32,
    },
    /// The peer canceled a request we respond to.
    Canceled {
        /// The stream.
        stream_id: u32,
    },
    /// The peer pushed connection metadata.
    MetadataPush(Bytes),
    /// The session ended; nothing more happens after this event.
    Closed(CloseReason),
}

/// Why a local operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    /// The stream is not active (completed, canceled, or never opened).
    #[error("stream {0} is not active")]
    UnknownStream(u32),
    /// A responder stream has no credit left.
    #[error("stream {0} has no credit")]
    NoCredit(u32),
    /// The operation does not fit the session's state (resuming a session that is not a
    /// detached client session).
    #[error("the session is not in a state that allows this")]
    InvalidState,
    /// Every stream id of this side was used; open a new connection.
    #[error("stream ids exhausted")]
    StreamIdsExhausted,
    /// The session is closed.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The transport is lost (the session may be resumed) and the frame is not resumable.
    #[error("the transport is lost and the frame cannot wait for resumption")]
    Detached,
    /// The frame cannot be encoded.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

#[derive(Debug)]
enum StreamState {
    /// We sent REQUEST_RESPONSE.
    // Reassemblies are boxed: only fragmented payloads need one, and the state of every
    // stream stays small.
    AwaitResponse(Option<Box<Reassembly>>),
    /// We sent REQUEST_STREAM.
    AwaitStream {
        re: Option<Box<Reassembly>>,
        /// Items the responder may still send.
        credit: u64,
    },
    /// The peer's request is still arriving in fragments.
    InboundFragments(InboundKind, Box<Reassembly>),
    /// We owe a response.
    Responding,
    /// We owe stream items, within `credit`.
    StreamingOut { credit: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Client waiting for the first KEEPALIVE answer.
    Connecting,
    Open,
    /// No transport; resumable.
    Detached {
        since: Instant,
    },
    /// Client sent RESUME and waits for RESUME_OK.
    Resuming {
        deadline: Instant,
    },
    Closed,
}

/// Frames waiting to be written, with their total size.
#[derive(Debug, Default)]
struct TxQueue {
    frames: VecDeque<Bytes>,
    bytes: usize,
}

impl TxQueue {
    fn push_back(&mut self, frame: Bytes) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    fn pop_front(&mut self) -> Option<Bytes> {
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some(frame)
    }

    fn extend(&mut self, frames: impl IntoIterator<Item = Bytes>) {
        for f in frames {
            self.push_back(f);
        }
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

/// The protocol state of one RSocket session (one connection, or a resumable sequence of them).
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    streams: IdMap<StreamState>,
    inbound_count: usize,
    transmit: TxQueue,
    scratch: BytesMut,
    events: VecDeque<Event>,
    resume: ResumeState,
    /// What payloads being reassembled are charged to.
    budgets: Budgets,
    last_received: Instant,
    /// Since when the driver has stopped reading (see [`Session::set_reading_paused`]).
    reading_paused: Option<Instant>,
    /// The stream ids of the peer's requests, to refuse reused ones.
    peer_ids: PeerIds,
    /// The id of this side's next request: odd for clients, even for servers, above
    /// [`MAX_U31`] once exhausted. Allocated here, where request frames are queued, so that
    /// ids go out strictly increasing as the spec requires.
    next_stream_id: u32,
    /// Requests handed to the application (REQUEST_RESPONSE and REQUEST_STREAM).
    delivered: u64,
    next_keepalive: Option<Instant>,
    /// An out-of-schedule KEEPALIVE asked the peer for its position and no KEEPALIVE came back
    /// yet (see `ask_position`).
    position_asked: bool,
    close_reason: Option<CloseReason>,
}

impl Session {
    /// A client session; queues SETUP and the first KEEPALIVE (respond) for transmission.
    ///
    /// The keepalive and lifetime values of `setup` override those of `config`; resumption is
    /// enabled when `setup` carries a resume token and `config.resume_buffer` is set.
    pub fn client(
        mut config: SessionConfig,
        setup: &SetupFrame,
        now: Instant,
    ) -> Result<Self, FrameError> {
        config.role = Side::Client;
        config.keepalive_interval = Duration::from_millis(u64::from(setup.keepalive_ms));
        config.max_lifetime = Duration::from_millis(u64::from(setup.max_lifetime_ms));
        if setup.resume_token.is_none() {
            config.resume_buffer = None;
        }
        let setup_bytes = Frame::Setup(setup.clone()).to_bytes()?;
        let mut session = Session::new(config, now);
        session.state = State::Connecting;
        session.transmit.push_back(setup_bytes);
        session.send_keepalive(now, true, Bytes::new());
        Ok(session)
    }

    /// A server session for a connection whose SETUP was accepted.
    pub fn server(mut config: SessionConfig, now: Instant) -> Self {
        config.role = Side::Server;
        Session::new(config, now)
    }

    fn new(config: SessionConfig, now: Instant) -> Self {
        let resume = ResumeState::new(config.resume_buffer);
        let next_stream_id = match config.role {
            Side::Client => 1,
            Side::Server => 2,
        };
        let budgets = Budgets {
            connection: Arc::new(ByteBudget::new(config.max_reassembly_total)),
            shared: config.shared_reassembly.clone(),
        };
        Session {
            budgets,
            config,
            state: State::Open,
            streams: IdMap::default(),
            inbound_count: 0,
            transmit: TxQueue::default(),
            scratch: BytesMut::new(),
            events: VecDeque::new(),
            resume,
            last_received: now,
            reading_paused: None,
            peer_ids: PeerIds::default(),
            next_stream_id,
            delivered: 0,
            next_keepalive: None,
            position_asked: false,
            close_reason: None,
        }
    }

    /// The role of this session.
    pub fn role(&self) -> Side {
        self.config.role
    }

    /// Bytes of payloads being reassembled now (charged to the connection's budget).
    pub fn reassembly_bytes(&self) -> usize {
        self.budgets.connection.used()
    }

    /// Bytes of sent frames held for retransmission on resumption.
    pub fn resume_buffered_bytes(&self) -> usize {
        self.resume.usage().0
    }

    /// Whether the session can still be resumed after a transport loss.
    pub fn is_resumable(&self) -> bool {
        self.resume.is_resumable()
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the session is detached (waiting for resumption).
    pub fn is_detached(&self) -> bool {
        matches!(self.state, State::Detached { .. })
    }

    /// Why the session closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_ref()
    }

    /// Number of active streams (both directions).
    pub fn active_streams(&self) -> usize {
        self.streams.len()
    }

    /// Bytes of resumable frames received so far.
    pub fn received_position(&self) -> u64 {
        self.resume.received
    }

    /// The next frame to write, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// Whether frames wait to be written.
    pub fn has_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// Bytes of frames waiting to be written (drivers apply backpressure on it).
    pub fn pending_transmit_bytes(&self) -> usize {
        self.transmit.bytes
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// How many of the peer's requests are open: being answered, streaming, or still arriving
    /// in fragments.
    pub fn inbound_requests(&self) -> usize {
        self.inbound_count
    }

    /// How many requests (REQUEST_RESPONSE or REQUEST_STREAM) have been handed to the
    /// application as [`Event::Request`] so far; a driver compares two readings to learn how
    /// many a batch of frames started.
    pub fn delivered_requests(&self) -> u64 {
        self.delivered
    }

    /// Tells the session that its driver stopped (or resumed) reading frames on purpose, for
    /// backpressure. While paused, silence from the peer is our doing, so it does not count
    /// towards the keepalive lifetime: the lifetime runs again from where it stood once reading
    /// resumes. KEEPALIVEs still go out.
    pub fn set_reading_paused(&mut self, paused: bool, now: Instant) {
        match (paused, self.reading_paused) {
            (true, None) => self.reading_paused = Some(now),
            (false, Some(since)) => {
                self.reading_paused = None;
                self.last_received += now.saturating_duration_since(since);
            }
            _ => {}
        }
    }

    /// When [`handle_timeout`](Session::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Detached { since } => Some(after(since, self.config.resume_window)),
            State::Resuming { deadline } => Some(deadline),
            State::Open | State::Connecting => match (self.next_keepalive, self.lifetime_end()) {
                (Some(k), Some(l)) => Some(k.min(l)),
                (k, l) => k.or(l),
            },
        }
    }

    /// When the peer counts as gone without a frame; `None` while reading is paused.
    fn lifetime_end(&self) -> Option<Instant> {
        if self.reading_paused.is_some() {
            None
        } else {
            Some(after(self.last_received, self.config.max_lifetime))
        }
    }

    /// Runs timers: KEEPALIVE emission, lifetime expiry, resume expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Closed => {}
            State::Detached { since } => {
                if now >= after(since, self.config.resume_window) {
                    self.close(CloseReason::ResumeExpired);
                }
            }
            State::Resuming { deadline } => {
                if now >= deadline {
                    tracing::debug!("RESUME timed out; the session stays detached");
                    self.state = State::Detached { since: now };
                    self.transmit.clear();
                    self.events.push_back(Event::Disconnected);
                }
            }
            State::Open | State::Connecting => {
                if self.lifetime_end().is_some_and(|end| now >= end) {
                    if self.resume.is_resumable() && self.state == State::Open {
                        tracing::debug!("keepalive timeout; detaching the resumable session");
                        self.detach(now);
                        self.events.push_back(Event::Disconnected);
                    } else {
                        self.close(CloseReason::KeepaliveTimeout);
                    }
                    return;
                }
                if let Some(k) = self.next_keepalive
                    && now >= k
                {
                    self.send_keepalive(now, true, Bytes::new());
                }
            }
        }
    }

    /// Sends a KEEPALIVE with the respond flag outside the periodic schedule: the peer's answer
    /// carries its position, which releases the resume buffer. One at a time: the next waits
    /// for a KEEPALIVE from the peer. Either side may ask (RSocket 1.0, KEEPALIVE frame).
    fn ask_position(&mut self) {
        let frame = Frame::Keepalive(KeepaliveFrame {
            respond: true,
            last_received_position: self.resume.received,
            data: Bytes::new(),
        });
        if let Ok(bytes) = self.encode(&frame) {
            self.position_asked = true;
            self.transmit.push_back(bytes);
        }
    }

    fn send_keepalive(&mut self, now: Instant, respond: bool, data: Bytes) {
        let frame = Frame::Keepalive(KeepaliveFrame {
            respond,
            last_received_position: self.resume.received,
            data,
        });
        if let Ok(bytes) = self.encode(&frame) {
            self.transmit.push_back(bytes);
        }
        if self.config.role == Side::Client && respond {
            self.next_keepalive = Some(after(now, self.config.keepalive_interval));
        }
    }

    /// Encodes a frame into the shared scratch buffer. Frames are slices of a few large buffers
    /// rather than one allocation each.
    fn encode(&mut self, frame: &Frame) -> Result<Bytes, FrameError> {
        let len = frame.encoded_len();
        if self.scratch.capacity() < len {
            self.scratch.reserve(len.max(SCRATCH_CHUNK));
        }
        if let Err(e) = frame.encode(&mut self.scratch) {
            self.scratch.clear();
            return Err(e);
        }
        Ok(self.scratch.split().freeze())
    }

    /// Queues a frame; resumable frames also go to the resume buffer.
    fn emit(&mut self, frame: &Frame) -> Result<(), FrameError> {
        let bytes = self.encode(frame)?;
        if frame.is_resumable() {
            self.resume.on_sent(&bytes);
            if self.resume.is_filling() && !self.position_asked && self.state == State::Open {
                self.ask_position();
            }
            if self.is_detached() && !self.resume.is_resumable() {
                // Frames queued while detached overflowed the resume buffer: no resumption can
                // deliver them any more.
                self.close(CloseReason::TransportLost(LostCause::new(
                    "the resume buffer overflowed while detached",
                )));
                return Ok(());
            }
        }
        match self.state {
            // Detached: resumable frames wait in the resume buffer and go out on resumption.
            State::Detached { .. } | State::Resuming { .. } | State::Closed => {}
            State::Open | State::Connecting => self.transmit.push_back(bytes),
        }
        Ok(())
    }

    fn emit_error(&mut self, stream_id: u32, code: ErrorCode, message: &str) {
        let frame = Frame::Error(ErrorFrame {
            stream_id,
            code,
            data: Bytes::copy_from_slice(message.as_bytes()),
        });
        if let Err(e) = self.emit(&frame) {
            tracing::warn!(error = %e, "could not encode an ERROR frame");
        }
    }

    /// Ends the session: every active stream fails and [`Event::Closed`] is queued.
    fn close(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        tracing::debug!(reason = ?reason.to_string(), "session closed");
        self.state = State::Closed;
        for (stream_id, state) in self.streams.drain() {
            if matches!(
                state,
                StreamState::AwaitResponse(_) | StreamState::AwaitStream { .. }
            ) {
                self.events.push_back(Event::RequestFailed {
                    stream_id,
                    error: RequestError::Closed(reason.clone()),
                });
            }
        }
        self.inbound_count = 0;
        self.resume.disable();
        self.next_keepalive = None;
        self.close_reason = Some(reason.clone());
        self.events.push_back(Event::Closed(reason));
    }

    /// Closes with a connection-level ERROR sent to the peer (queued before the close).
    pub fn close_with_error(&mut self, code: ErrorCode, message: &str) {
        if self.state == State::Closed {
            return;
        }
        self.emit_error(0, code, message);
        self.close(CloseReason::Error {
            code,
            message: message.to_owned(),
        });
    }

    /// Closes the session on this side's request, telling the peer with CONNECTION_CLOSE.
    pub fn close_local(&mut self) {
        if self.state == State::Closed {
            return;
        }
        self.emit_error(0, ErrorCode::ConnectionClose, "closed by peer");
        self.close(CloseReason::Local);
    }

    /// The transport is gone. A resumable session becomes detached; otherwise it closes.
    pub fn transport_lost(&mut self, now: Instant, why: impl Into<LostCause>) {
        match self.state {
            State::Closed | State::Detached { .. } => {}
            State::Open | State::Resuming { .. } if self.resume.is_resumable() => self.detach(now),
            _ => self.close(CloseReason::TransportLost(why.into())),
        }
    }

    fn detach(&mut self, now: Instant) {
        self.state = State::Detached { since: now };
        // Unwritten resumable frames are in the resume buffer; the rest is stale.
        self.transmit.clear();
        self.next_keepalive = None;
        // A question in flight on the lost transport gets no answer.
        self.position_asked = false;
    }

    /// Client: starts resuming a detached session over a new transport; queues RESUME.
    pub fn start_resume(&mut self, token: Bytes, now: Instant) -> Result<(), OperationError> {
        match self.state {
            State::Detached { .. } if self.config.role == Side::Client => {}
            State::Closed => {
                return Err(OperationError::Closed(
                    self.close_reason.clone().unwrap_or(CloseReason::Local),
                ));
            }
            _ => return Err(OperationError::InvalidState),
        }
        if !self.resume.is_resumable() {
            return Err(OperationError::Closed(CloseReason::TransportLost(
                LostCause::new("the resume buffer overflowed"),
            )));
        }
        let frame = Frame::Resume(ResumeFrame {
            major_version: 1,
            minor_version: 0,
            resume_token: token,
            last_received_server_position: self.resume.received,
            first_available_client_position: self.resume.first_available,
        });
        self.transmit.clear();
        let bytes = self.encode(&frame)?;
        self.transmit.push_back(bytes);
        self.state = State::Resuming {
            deadline: after(now, self.config.resume_timeout),
        };
        Ok(())
    }

    /// Server: a client asks to resume this session over a new transport.
    ///
    /// On success RESUME_OK and the retransmission are queued and the session is open again;
    /// this also holds for a session that is still attached (RSocket lets a client resume over
    /// a new connection before the server noticed the old one died): the caller then drops the
    /// old transport. On failure the caller answers REJECTED_RESUME with the returned text and
    /// the session is left exactly as it was: the positions are checked before anything
    /// changes, so a RESUME with positions the session cannot serve (forged, or from a client
    /// that lost data) never harms the session it names.
    pub fn accept_resume(&mut self, frame: &ResumeFrame, now: Instant) -> Result<(), String> {
        if self.state == State::Closed || self.config.role != Side::Server {
            return Err("session closed".into());
        }
        if !self.resume.is_resumable() {
            return Err("session is not resumable".into());
        }
        if frame.first_available_client_position > self.resume.received {
            return Err(format!(
                "client position {} gone: server received up to {}",
                frame.first_available_client_position, self.resume.received
            ));
        }
        let peer = frame.last_received_server_position;
        if !self.resume.can_retransmit_from(peer) {
            return Err(format!("server position {peer} is not available"));
        }
        let ok = Frame::ResumeOk {
            last_received_client_position: self.resume.received,
        };
        let ok = self.encode(&ok).map_err(|e| e.to_string())?;
        let retransmit: Vec<Bytes> = match self.resume.retransmit_from(peer) {
            Ok(frames) => frames,
            // Checked above; kept as an error rather than a panic.
            Err(_) => return Err(format!("server position {peer} is not available")),
        };
        if let Some(limit) = self.config.resume_buffer {
            self.resume.set_limit(limit);
        }
        self.transmit.clear();
        self.transmit.push_back(ok);
        self.transmit.extend(retransmit);
        self.state = State::Open;
        self.last_received = now;
        Ok(())
    }

    /// Server, detached session: bounds the resume buffer to what it holds plus `headroom`
    /// (frames queued while detached beyond that end resumability). Returns the new bound,
    /// which is what the detached session may hold at most; `None` when not resumable. The
    /// bound returns to [`SessionConfig::resume_buffer`] on resumption.
    pub fn limit_detached_buffer(&mut self, headroom: usize) -> Option<usize> {
        let (buffered, limit) = self.resume.usage();
        let bound = limit?.min(buffered.saturating_add(headroom));
        self.resume.set_limit(bound);
        Some(bound.max(buffered))
    }

    /// Handles one received frame.
    pub fn handle_frame(&mut self, raw: Bytes, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        let len = raw.len() as u64;
        let frame = match Frame::decode(raw) {
            Ok(f) => f,
            Err(FrameError::UnknownType {
                ignorable: true, ..
            }) => return,
            Err(e) => {
                tracing::debug!(error = %e, "malformed frame");
                self.close_with_error(ErrorCode::ConnectionError, &format!("malformed frame: {e}"));
                return;
            }
        };
        self.last_received = now;
        if let State::Detached { .. } = self.state {
            // Late frames from a transport we already gave up on.
            return;
        }
        if let State::Resuming { .. } = self.state {
            self.handle_resuming(frame, now);
            return;
        }
        if frame.is_resumable() {
            self.resume.received += len;
        }
        match frame {
            Frame::Keepalive(k) => {
                self.resume.release(k.last_received_position);
                self.position_asked = false;
                if k.respond {
                    self.send_keepalive(now, false, k.data);
                } else if self.state == State::Connecting {
                    self.state = State::Open;
                    self.events.push_back(Event::Established);
                }
            }
            Frame::Request(r) => self.on_request(r),
            Frame::Payload(p) => self.on_payload(p),
            Frame::RequestN { stream_id, n } => {
                if let Some(StreamState::StreamingOut { credit }) = self.streams.get_mut(&stream_id)
                {
                    let was_empty = *credit == 0;
                    *credit = credit.saturating_add(u64::from(n));
                    if was_empty {
                        self.events.push_back(Event::Credit { stream_id });
                    }
                }
            }
            Frame::Cancel { stream_id } => match self.streams.get(&stream_id) {
                Some(StreamState::Responding | StreamState::StreamingOut { .. }) => {
                    self.remove_inbound(stream_id);
                    self.events.push_back(Event::Canceled { stream_id });
                }
                Some(StreamState::InboundFragments(..)) => {
                    self.remove_inbound(stream_id);
                }
                _ => {}
            },
            Frame::Error(e) => self.on_error(e),
            Frame::MetadataPush { metadata } => {
                self.events.push_back(Event::MetadataPush(metadata))
            }
            Frame::Setup(_) | Frame::Resume(_) => self.close_with_error(
                ErrorCode::ConnectionError,
                "SETUP or RESUME on an established connection",
            ),
            Frame::Lease(_) => {
                self.close_with_error(ErrorCode::ConnectionError, "LEASE was not negotiated")
            }
            Frame::ResumeOk { .. } => {
                self.close_with_error(ErrorCode::ConnectionError, "unexpected RESUME_OK")
            }
            Frame::Ext(ext) => {
                if !ext.ignore {
                    self.close_with_error(ErrorCode::ConnectionError, "unsupported EXT frame");
                }
            }
        }
    }

    fn handle_resuming(&mut self, frame: Frame, now: Instant) {
        match frame {
            Frame::ResumeOk {
                last_received_client_position: peer,
            } => {
                let frames: Vec<Bytes> = match self.resume.retransmit_from(peer) {
                    Ok(frames) => frames,
                    Err(_) => {
                        self.close_with_error(
                            ErrorCode::ConnectionError,
                            "RESUME_OK position is not available",
                        );
                        return;
                    }
                };
                self.transmit.extend(frames);
                self.state = State::Open;
                self.last_received = now;
                self.send_keepalive(now, true, Bytes::new());
                self.events.push_back(Event::Resumed);
            }
            Frame::Error(e) if e.stream_id == 0 => {
                let message = e.message().into_owned();
                self.close(CloseReason::Error {
                    code: e.code,
                    message,
                });
            }
            _ => self.close_with_error(ErrorCode::ConnectionError, "expected RESUME_OK"),
        }
    }

    fn peer_parity_ok(&self, stream_id: u32) -> bool {
        match self.config.role {
            // The server receives requests on odd ids, the client on even ones.
            Side::Server => !stream_id.is_multiple_of(2),
            Side::Client => stream_id.is_multiple_of(2),
        }
    }

    fn on_request(&mut self, r: RequestFrame) {
        let stream_id = r.stream_id;
        if !self.peer_parity_ok(stream_id) {
            self.close_with_error(
                ErrorCode::ConnectionError,
                &format!("invalid stream id {stream_id} for a request"),
            );
            return;
        }
        // Ids are never reused and increase (see `peer_ids` for the reordering tolerated).
        if let Err(violation) = self.peer_ids.record(stream_id) {
            let message = match violation {
                IdViolation::Reused => format!("request stream id {stream_id} was already used"),
                IdViolation::TooOld { newest } => {
                    format!("request stream id {stream_id} is far below the newest, {newest}")
                }
            };
            self.close_with_error(ErrorCode::ConnectionError, &message);
            return;
        }
        let kind = match r.kind {
            RequestKind::Response => InboundKind::Response,
            RequestKind::FireAndForget => InboundKind::FireAndForget,
            RequestKind::Stream { initial_n } => InboundKind::Stream { initial_n },
            RequestKind::Channel { .. } => {
                self.emit_error(
                    stream_id,
                    ErrorCode::Rejected,
                    "REQUEST_CHANNEL is not supported",
                );
                return;
            }
        };
        if self.inbound_count >= self.config.max_inbound_streams {
            if kind != InboundKind::FireAndForget {
                self.emit_error(
                    stream_id,
                    ErrorCode::Rejected,
                    "too many concurrent requests",
                );
            }
            return;
        }
        self.inbound_count += 1;
        if r.follows {
            let mut re = Box::<Reassembly>::default();
            if let Err(e) = re.push(
                r.metadata,
                r.data,
                self.config.max_reassembly,
                &self.budgets,
            ) {
                self.inbound_count -= 1;
                self.reject_too_large(stream_id, kind, e);
                return;
            }
            self.streams
                .insert(stream_id, StreamState::InboundFragments(kind, re));
            return;
        }
        self.deliver_request(
            stream_id,
            kind,
            Payload {
                data: r.data,
                metadata: r.metadata,
            },
        );
    }

    fn reject_too_large(&mut self, stream_id: u32, kind: InboundKind, why: PushError) {
        let msg = match why {
            PushError::TooLarge { .. } => format!(
                "request exceeds the reassembly limit of {} bytes",
                self.config.max_reassembly
            ),
            PushError::Budget(Exhausted::Connection) => format!(
                "this connection's reassembly budget of {} bytes is spent",
                self.budgets.connection.limit()
            ),
            PushError::Budget(Exhausted::Process) => {
                "the server's reassembly budget is spent; retry later".to_owned()
            }
        };
        if let PushError::Budget(_) = why {
            tracing::debug!(stream_id, reason = %msg, "fragmented request refused");
        }
        if kind != InboundKind::FireAndForget {
            self.emit_error(stream_id, ErrorCode::Rejected, &msg);
        }
    }

    fn deliver_request(&mut self, stream_id: u32, kind: InboundKind, payload: Payload) {
        match kind {
            InboundKind::Response => {
                self.streams.insert(stream_id, StreamState::Responding);
            }
            InboundKind::Stream { initial_n } => {
                self.streams.insert(
                    stream_id,
                    StreamState::StreamingOut {
                        credit: u64::from(initial_n),
                    },
                );
            }
            InboundKind::FireAndForget => {
                self.streams.remove(&stream_id);
                self.inbound_count -= 1;
            }
        }
        if kind != InboundKind::FireAndForget {
            self.delivered += 1;
        }
        self.events.push_back(Event::Request {
            stream_id,
            kind,
            payload,
        });
    }

    fn remove_inbound(&mut self, stream_id: u32) {
        if self.streams.remove(&stream_id).is_some() {
            self.inbound_count = self.inbound_count.saturating_sub(1);
        }
    }

    fn on_payload(&mut self, p: PayloadFrame) {
        let stream_id = p.stream_id;
        let limit = self.config.max_reassembly;
        let budgets = &self.budgets;
        let Some(state) = self.streams.get_mut(&stream_id) else {
            // Frames for unknown (finished or canceled) streams are ignored, per the spec.
            return;
        };
        let is_stream = matches!(state, StreamState::AwaitStream { .. });
        match state {
            StreamState::InboundFragments(kind, re) => {
                let kind = *kind;
                if let Err(e) = re.push(p.metadata, p.data, limit, budgets) {
                    self.remove_inbound(stream_id);
                    self.reject_too_large(stream_id, kind, e);
                    return;
                }
                if p.follows {
                    return;
                }
                let Some(StreamState::InboundFragments(_, re)) = self.streams.remove(&stream_id)
                else {
                    return;
                };
                self.deliver_request(stream_id, kind, re.finish());
            }
            StreamState::AwaitResponse(re) | StreamState::AwaitStream { re, .. } => {
                let payload = if p.follows || re.is_some() {
                    let r = re.get_or_insert_with(Box::default);
                    if let Err(e) = r.push(p.metadata, p.data, limit, budgets) {
                        self.streams.remove(&stream_id);
                        // We are the requester: stop the responder and fail locally.
                        let _ = self.emit(&Frame::Cancel { stream_id });
                        let error = match e {
                            PushError::TooLarge { len } => {
                                RequestError::PayloadTooLarge { len, limit }
                            }
                            PushError::Budget(_) => {
                                RequestError::Protocol("the reassembly budget is spent")
                            }
                        };
                        self.events
                            .push_back(Event::RequestFailed { stream_id, error });
                        return;
                    }
                    if p.follows {
                        return;
                    }
                    re.take().map(|r| r.finish())
                } else if p.next {
                    Some(Payload {
                        data: p.data,
                        metadata: p.metadata,
                    })
                } else {
                    None
                };
                if is_stream {
                    if let Some(payload) = payload {
                        if let Some(StreamState::AwaitStream { credit, .. }) =
                            self.streams.get_mut(&stream_id)
                        {
                            if *credit == 0 {
                                self.streams.remove(&stream_id);
                                let _ = self.emit(&Frame::Cancel { stream_id });
                                self.events.push_back(Event::RequestFailed {
                                    stream_id,
                                    error: RequestError::Protocol(
                                        "the responder sent more items than requested",
                                    ),
                                });
                                return;
                            }
                            *credit -= 1;
                        }
                        self.events
                            .push_back(Event::StreamNext { stream_id, payload });
                    }
                    if p.complete {
                        self.streams.remove(&stream_id);
                        self.events.push_back(Event::StreamComplete { stream_id });
                    }
                } else if payload.is_some() || p.complete {
                    self.streams.remove(&stream_id);
                    self.events.push_back(Event::Response {
                        stream_id,
                        payload: payload.unwrap_or_default(),
                    });
                }
            }
            StreamState::Responding | StreamState::StreamingOut { .. } => {
                // REQUEST_CHANNEL is refused, so a peer never sends PAYLOAD on a stream we answer.
                self.remove_inbound(stream_id);
                self.emit_error(stream_id, ErrorCode::Invalid, "unexpected PAYLOAD");
                self.events.push_back(Event::Canceled { stream_id });
            }
        }
    }

    fn on_error(&mut self, e: ErrorFrame) {
        let message = e.message().into_owned();
        if e.stream_id == 0 {
            self.close(CloseReason::Error {
                code: e.code,
                message,
            });
            return;
        }
        match self.streams.get(&e.stream_id) {
            Some(StreamState::AwaitResponse(_) | StreamState::AwaitStream { .. }) => {
                self.streams.remove(&e.stream_id);
                self.events.push_back(Event::RequestFailed {
                    stream_id: e.stream_id,
                    error: RequestError::Remote {
                        code: e.code,
                        message,
                    },
                });
            }
            Some(_) => {
                // An ERROR from the requester on a stream we answer ends it, like CANCEL.
                self.remove_inbound(e.stream_id);
                self.events.push_back(Event::Canceled {
                    stream_id: e.stream_id,
                });
            }
            None => {}
        }
    }

    fn check_open(&self) -> Result<(), OperationError> {
        if self.state == State::Closed {
            return Err(OperationError::Closed(
                self.close_reason.clone().unwrap_or(CloseReason::Local),
            ));
        }
        Ok(())
    }

    /// Takes the next stream id of this side; ids are never reused within a session.
    fn allocate_id(&mut self) -> Result<u32, OperationError> {
        self.check_open()?;
        let id = self.next_stream_id;
        if id > MAX_U31 {
            return Err(OperationError::StreamIdsExhausted);
        }
        // MAX_U31 + 2 still fits a u32, so the counter cannot wrap back to valid ids.
        self.next_stream_id = id + 2;
        Ok(id)
    }

    /// Sends a request frame (fragmented if needed) followed by PAYLOAD fragments.
    fn emit_request(
        &mut self,
        stream_id: u32,
        kind: RequestKind,
        payload: Payload,
    ) -> Result<(), OperationError> {
        let extra = match kind {
            RequestKind::Stream { .. } | RequestKind::Channel { .. } => 4,
            _ => 0,
        };
        let mut first = true;
        for frag in fragment::split(payload, self.config.mtu, extra) {
            let frame = if first {
                Frame::Request(RequestFrame {
                    stream_id,
                    kind,
                    follows: frag.follows,
                    metadata: frag.metadata,
                    data: frag.data,
                })
            } else {
                Frame::Payload(PayloadFrame {
                    stream_id,
                    follows: frag.follows,
                    complete: false,
                    next: true,
                    metadata: frag.metadata,
                    data: frag.data,
                })
            };
            first = false;
            self.emit(&frame)?;
        }
        Ok(())
    }

    /// Sends PAYLOAD frames (fragmented if needed); `complete` goes on the last one.
    fn emit_payload(
        &mut self,
        stream_id: u32,
        payload: Payload,
        complete: bool,
    ) -> Result<(), OperationError> {
        for frag in fragment::split(payload, self.config.mtu, 0) {
            self.emit(&Frame::Payload(PayloadFrame {
                stream_id,
                follows: frag.follows,
                complete: complete && !frag.follows,
                next: true,
                metadata: frag.metadata,
                data: frag.data,
            }))?;
        }
        Ok(())
    }

    /// Sends a REQUEST_RESPONSE on a new stream; returns its id, which the answer's
    /// [`Event`]s carry.
    pub fn request_response(&mut self, payload: Payload) -> Result<u32, OperationError> {
        let stream_id = self.allocate_id()?;
        self.emit_request(stream_id, RequestKind::Response, payload)?;
        self.streams
            .insert(stream_id, StreamState::AwaitResponse(None));
        Ok(stream_id)
    }

    /// Sends a REQUEST_FNF on a new stream; returns its id.
    pub fn fire_and_forget(&mut self, payload: Payload) -> Result<u32, OperationError> {
        let stream_id = self.allocate_id()?;
        self.emit_request(stream_id, RequestKind::FireAndForget, payload)?;
        Ok(stream_id)
    }

    /// Sends a REQUEST_STREAM with `initial_n` credit (clamped to 1..=2^31-1) on a new stream;
    /// returns its id.
    pub fn request_stream(
        &mut self,
        payload: Payload,
        initial_n: u32,
    ) -> Result<u32, OperationError> {
        let stream_id = self.allocate_id()?;
        let initial_n = initial_n.clamp(1, MAX_U31);
        self.emit_request(stream_id, RequestKind::Stream { initial_n }, payload)?;
        self.streams.insert(
            stream_id,
            StreamState::AwaitStream {
                re: None,
                credit: u64::from(initial_n),
            },
        );
        Ok(stream_id)
    }

    /// Grants `n` more items on one of our REQUEST_STREAMs.
    pub fn request_n(&mut self, stream_id: u32, n: u32) -> Result<(), OperationError> {
        self.check_open()?;
        match self.streams.get(&stream_id) {
            Some(StreamState::AwaitStream { .. }) => {
                let n = n.clamp(1, MAX_U31);
                self.emit(&Frame::RequestN { stream_id, n })?;
                if let Some(StreamState::AwaitStream { credit, .. }) =
                    self.streams.get_mut(&stream_id)
                {
                    *credit = credit.saturating_add(u64::from(n));
                }
                Ok(())
            }
            _ => Err(OperationError::UnknownStream(stream_id)),
        }
    }

    /// Cancels one of our requests. Unknown streams are ignored (the request may have finished).
    pub fn cancel(&mut self, stream_id: u32) {
        if self.state == State::Closed {
            return;
        }
        if let Some(StreamState::AwaitResponse(_) | StreamState::AwaitStream { .. }) =
            self.streams.get(&stream_id)
        {
            self.streams.remove(&stream_id);
            let _ = self.emit(&Frame::Cancel { stream_id });
        }
    }

    /// Sends METADATA_PUSH. It is not resumable: while the session is detached (or resuming)
    /// it fails with [`OperationError::Detached`] instead of being queued.
    pub fn metadata_push(&mut self, metadata: Bytes) -> Result<(), OperationError> {
        self.check_open()?;
        if !matches!(self.state, State::Open | State::Connecting) {
            return Err(OperationError::Detached);
        }
        self.emit(&Frame::MetadataPush { metadata })?;
        Ok(())
    }

    /// Answers a peer's REQUEST_RESPONSE.
    pub fn respond(
        &mut self,
        stream_id: u32,
        result: Result<Payload, StreamError>,
    ) -> Result<(), OperationError> {
        self.check_open()?;
        if !matches!(self.streams.get(&stream_id), Some(StreamState::Responding)) {
            return Err(OperationError::UnknownStream(stream_id));
        }
        self.remove_inbound(stream_id);
        match result {
            Ok(payload) => self.emit_payload(stream_id, payload, true),
            Err(e) => {
                self.emit_error(stream_id, stream_code(e.code), &e.message);
                Ok(())
            }
        }
    }

    /// Remaining credit of a stream we answer (0 if unknown).
    pub fn credit(&self, stream_id: u32) -> u64 {
        match self.streams.get(&stream_id) {
            Some(StreamState::StreamingOut { credit }) => *credit,
            _ => 0,
        }
    }

    /// Sends one item of a stream we answer; refused without credit.
    pub fn stream_next(&mut self, stream_id: u32, payload: Payload) -> Result<(), OperationError> {
        self.check_open()?;
        match self.streams.get_mut(&stream_id) {
            Some(StreamState::StreamingOut { credit }) if *credit > 0 => {
                *credit -= 1;
            }
            Some(StreamState::StreamingOut { .. }) => {
                return Err(OperationError::NoCredit(stream_id));
            }
            _ => return Err(OperationError::UnknownStream(stream_id)),
        }
        self.emit_payload(stream_id, payload, false)
    }

    /// Completes a stream we answer.
    pub fn stream_complete(&mut self, stream_id: u32) -> Result<(), OperationError> {
        self.check_open()?;
        if !matches!(
            self.streams.get(&stream_id),
            Some(StreamState::StreamingOut { .. })
        ) {
            return Err(OperationError::UnknownStream(stream_id));
        }
        self.remove_inbound(stream_id);
        self.emit(&Frame::Payload(PayloadFrame {
            stream_id,
            follows: false,
            complete: true,
            next: false,
            metadata: None,
            data: Bytes::new(),
        }))?;
        Ok(())
    }

    /// Fails a stream we answer with an ERROR frame.
    pub fn stream_error(
        &mut self,
        stream_id: u32,
        error: StreamError,
    ) -> Result<(), OperationError> {
        self.check_open()?;
        if !matches!(
            self.streams.get(&stream_id),
            Some(StreamState::StreamingOut { .. } | StreamState::Responding)
        ) {
            return Err(OperationError::UnknownStream(stream_id));
        }
        self.remove_inbound(stream_id);
        self.emit_error(stream_id, stream_code(error.code), &error.message);
        Ok(())
    }
}

/// `t + d`, or an instant decades away when that overflows: a configured duration of
/// `Duration::MAX` means "never", not a panic.
fn after(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
    t.checked_add(d).or_else(|| t.checked_add(FAR)).unwrap_or(t)
}

#[cfg(test)]
mod tests;
