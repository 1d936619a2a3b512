//! The server side: handshake, accept/reject, and the table of resumable sessions.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::Payload;
use crate::connection::{
    self, Attach, Connection, DriverParts, HandleLimits, InboundOverflow, SessionHooks,
    send_error_and_close,
};
use crate::frame::MAX_FRAME_LEN;
use crate::frame::{ErrorCode, Frame, ResumeFrame, SetupFrame};
use crate::io::{BoxReader, BoxWriter, FrameReader, FrameTransport, TransportError};
use crate::protocol::{ByteBudget, Session, SessionConfig, Side, check_setup};
use crate::responder::RequestHandler;

/// Settings of a [`Server`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long a new transport may take to send its first frame (default 10 s).
    pub setup_timeout: Duration,
    /// Whether clients may ask for resumable sessions (default true).
    pub resume_enabled: bool,
    /// How long a detached session is kept for resumption (default 60 s).
    pub resume_window: Duration,
    /// Bytes of sent frames kept per session for resumption (default 16 MiB).
    pub resume_buffer_size: usize,
    /// Largest frame to send; larger payloads are fragmented (default 16 MiB - 1).
    pub mtu: usize,
    /// Largest payload accepted through reassembly (default 16 MiB).
    pub max_reassembly: usize,
    /// Most server-initiated requests in flight per connection (default 1024).
    pub max_in_flight: usize,
    /// Most client requests handled at once per connection (default 1024); what happens beyond
    /// it is [`inbound_overflow`](ServerConfig::inbound_overflow).
    pub max_inbound_requests: usize,
    /// Beyond `max_inbound_requests`: refuse with REJECTED (the default,
    /// [`InboundOverflow::Reject`]) or queue, then stop reading that client until a responder
    /// finishes.
    pub inbound_overflow: InboundOverflow,
    /// With [`InboundOverflow::PauseReading`], most requests per client waiting for a
    /// responder slot (default 1024); once that many (or 64 MiB of payloads) wait, the
    /// connection stops reading.
    pub max_pending_inbound: usize,
    /// SETUPs waiting for [`Server::accept`]; beyond it new clients are refused (default 128).
    pub accept_queue: usize,
    /// Capacity of the request queue into each connection task (default 1024).
    pub command_queue: usize,
    /// REQUEST_N window of request-streams (default 256).
    pub stream_window: u32,
    /// Most connections at once (default 1024): transports in their handshake plus sessions,
    /// attached or detached. Beyond it a new transport gets a connection ERROR and is closed
    /// (logged).
    pub max_connections: usize,
    /// Largest first frame (SETUP or RESUME) accepted, in bytes (default 16 KiB): until it
    /// arrived the peer is unauthenticated, so it cannot make the server buffer more.
    pub max_setup_frame_len: usize,
    /// Most bytes of payloads being reassembled at once on one connection, across all its
    /// streams (default 32 MiB); beyond it a fragmented request gets REJECTED.
    pub max_connection_reassembly: usize,
    /// Most bytes of payloads being reassembled at once across all connections (default
    /// 256 MiB); beyond it a fragmented request gets REJECTED.
    pub max_total_reassembly: usize,
    /// Most detached sessions kept for resumption (default 256); beyond it the one detached
    /// longest is ended.
    pub max_detached_sessions: usize,
    /// Most bytes of resume buffers held by detached sessions (default 256 MiB); beyond it the
    /// sessions detached longest are ended. Each detached session is charged what its buffer
    /// holds plus up to 1 MiB of room for frames queued while it is detached.
    pub max_detached_bytes: usize,
    /// Longest keepalive lifetime a client may ask for in its SETUP (default 5 minutes): a
    /// longer one is lowered to this; a keepalive interval above it is refused with
    /// REJECTED_SETUP.
    pub max_lifetime: Duration,
    /// Failed RESUMEs (unknown token, positions the session cannot serve, token already in
    /// use) a peer address may make per [`resume_failure_window`](Self::resume_failure_window)
    /// (default 10); beyond it its RESUMEs are refused unexamined until the window ends.
    pub max_resume_failures: u32,
    /// The window of [`max_resume_failures`](Self::max_resume_failures) (default 60 s).
    pub resume_failure_window: Duration,
    /// Peer addresses whose failed RESUMEs are remembered (default 4096); when full, the one
    /// remembered longest is forgotten.
    pub resume_failure_table: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            setup_timeout: Duration::from_secs(10),
            resume_enabled: true,
            resume_window: Duration::from_secs(60),
            resume_buffer_size: 16 * 1024 * 1024,
            mtu: MAX_FRAME_LEN,
            max_reassembly: 16 * 1024 * 1024,
            max_in_flight: 1024,
            max_inbound_requests: 1024,
            inbound_overflow: InboundOverflow::Reject,
            max_pending_inbound: 1024,
            accept_queue: 128,
            command_queue: 1024,
            stream_window: 256,
            max_connections: 1024,
            max_setup_frame_len: 16 * 1024,
            max_connection_reassembly: 32 * 1024 * 1024,
            max_total_reassembly: 256 * 1024 * 1024,
            max_detached_sessions: 256,
            max_detached_bytes: 256 * 1024 * 1024,
            max_lifetime: Duration::from_secs(300),
            max_resume_failures: 10,
            resume_failure_window: Duration::from_secs(60),
            resume_failure_table: 4096,
        }
    }
}

/// What a client asked for in its SETUP.
#[derive(Clone)]
pub struct SetupInfo {
    /// Protocol version (major, minor).
    pub version: (u16, u16),
    /// The client's keepalive interval.
    pub keepalive_interval: Duration,
    /// The client's max lifetime.
    pub max_lifetime: Duration,
    /// MIME type of metadata.
    pub metadata_mime_type: String,
    /// MIME type of data.
    pub data_mime_type: String,
    /// Resume token, if the client wants a resumable session (not printed by `Debug`).
    pub resume_token: Option<Bytes>,
    /// Setup payload (carries credentials for Elarian; not printed by `Debug`).
    pub payload: Payload,
}

impl std::fmt::Debug for SetupInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupInfo")
            .field("version", &self.version)
            .field("keepalive_interval", &self.keepalive_interval)
            .field("max_lifetime", &self.max_lifetime)
            .field("metadata_mime_type", &self.metadata_mime_type)
            .field("data_mime_type", &self.data_mime_type)
            .field(
                "resume_token",
                &self.resume_token.as_ref().map(|_| "<redacted>"),
            )
            .field("payload", &"<redacted>")
            .finish()
    }
}

impl SetupInfo {
    fn from_frame(s: SetupFrame) -> Self {
        SetupInfo {
            version: (s.major_version, s.minor_version),
            keepalive_interval: Duration::from_millis(u64::from(s.keepalive_ms)),
            max_lifetime: Duration::from_millis(u64::from(s.max_lifetime_ms)),
            metadata_mime_type: s.metadata_mime,
            data_mime_type: s.data_mime,
            resume_token: s.resume_token,
            payload: Payload {
                data: s.data,
                metadata: s.metadata,
            },
        }
    }
}

/// A resume token as a key of the session table. Equality is decided in constant time, so
/// that the time a lookup takes tells nothing of how much of a guessed token was right. (The
/// table's hasher is SipHash with a per-process random key, so which bucket a guess lands in
/// tells nothing either.)
#[derive(Clone)]
struct TokenKey(Bytes);

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

impl Eq for TokenKey {}

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Whether `a == b`, in a time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A resumable session in the table.
struct SessionEntry {
    attach: mpsc::Sender<Attach>,
    /// Set while the session waits for a RESUME.
    detached: Option<Detached>,
}

#[derive(Clone, Copy)]
struct Detached {
    /// Order of detachment: the lowest is evicted first.
    seq: u64,
    /// What its resume buffer may hold at most.
    bytes: usize,
}

#[derive(Default)]
struct Sessions {
    map: HashMap<TokenKey, SessionEntry>,
    detached_count: usize,
    detached_bytes: usize,
    next_seq: u64,
}

impl Sessions {
    fn forget_detached(&mut self, d: Detached) {
        self.detached_count = self.detached_count.saturating_sub(1);
        self.detached_bytes = self.detached_bytes.saturating_sub(d.bytes);
    }
}

/// Failed RESUMEs per peer address, over a window.
#[derive(Default)]
struct Throttle {
    peers: HashMap<IpAddr, Strikes>,
}

#[derive(Clone, Copy)]
struct Strikes {
    count: u32,
    since: Instant,
}

impl Throttle {
    fn blocked(&mut self, ip: IpAddr, now: Instant, config: &ServerConfig) -> bool {
        match self.peers.get(&ip) {
            Some(s) if now.duration_since(s.since) < config.resume_failure_window => {
                s.count >= config.max_resume_failures
            }
            Some(_) => {
                self.peers.remove(&ip);
                false
            }
            None => false,
        }
    }

    /// Records a failure; returns the failures of `ip` in the current window.
    fn strike(&mut self, ip: IpAddr, now: Instant, config: &ServerConfig) -> u32 {
        if !self.peers.contains_key(&ip) && self.peers.len() >= config.resume_failure_table.max(1) {
            // Full: forget expired entries, else the oldest one.
            let window = config.resume_failure_window;
            self.peers
                .retain(|_, s| now.duration_since(s.since) < window);
            if self.peers.len() >= config.resume_failure_table.max(1)
                && let Some(oldest) = self
                    .peers
                    .iter()
                    .min_by_key(|(_, s)| s.since)
                    .map(|(ip, _)| *ip)
            {
                self.peers.remove(&oldest);
            }
        }
        let entry = self.peers.entry(ip).or_insert(Strikes {
            count: 0,
            since: now,
        });
        if now.duration_since(entry.since) >= config.resume_failure_window {
            *entry = Strikes {
                count: 0,
                since: now,
            };
        }
        entry.count = entry.count.saturating_add(1);
        entry.count
    }
}

struct Inner {
    config: ServerConfig,
    incoming_tx: Mutex<Option<mpsc::Sender<Incoming>>>,
    incoming_rx: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    sessions: Mutex<Sessions>,
    throttle: Mutex<Throttle>,
    /// Transports in their handshake plus sessions (see [`ServerConfig::max_connections`]).
    connections: AtomicUsize,
    /// Connections refused for `max_connections`, and when that was last logged (ms since
    /// `started`), so that a flood is logged once a second rather than once a connection.
    refused: AtomicU64,
    refusal_logged: AtomicU64,
    started: Instant,
    /// Process-wide reassembly budget, shared by every session.
    reassembly: Arc<ByteBudget>,
}

/// One of [`ServerConfig::max_connections`]; released on drop.
struct ConnectionSlot(Arc<Inner>);

impl ConnectionSlot {
    fn take(inner: &Arc<Inner>) -> Option<Self> {
        let max = inner.config.max_connections;
        inner
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(inner.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An RSocket server engine, fed with transports from any listener. Cheap to clone.
///
/// SETUPs reach the application through [`accept`](Server::accept); RESUMEs are handled inside
/// against the resumable sessions the server keeps. What the server bounds, and how it treats a
/// RESUME, is in `docs/security.md`.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with `config`.
    pub fn new(config: ServerConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.accept_queue.max(1));
        let reassembly = Arc::new(ByteBudget::new(config.max_total_reassembly));
        Server {
            inner: Arc::new(Inner {
                config,
                incoming_tx: Mutex::new(Some(tx)),
                incoming_rx: tokio::sync::Mutex::new(rx),
                sessions: Mutex::new(Sessions::default()),
                throttle: Mutex::new(Throttle::default()),
                connections: AtomicUsize::new(0),
                refused: AtomicU64::new(0),
                refusal_logged: AtomicU64::new(0),
                started: Instant::now(),
                reassembly,
            }),
        }
    }

    /// Starts the handshake on a new transport (in a task). Malformed or unsupported SETUPs are
    /// answered with INVALID_SETUP / UNSUPPORTED_SETUP without reaching [`accept`](Server::accept).
    ///
    /// Without the peer's address, failed RESUMEs of all such transports are counted together
    /// (see [`serve_transport_from`](Server::serve_transport_from)).
    pub fn serve_transport<T: FrameTransport>(&self, transport: T) {
        self.serve(transport, None);
    }

    /// Like [`serve_transport`](Server::serve_transport), for a transport from `peer`: failed
    /// RESUMEs are counted and throttled per peer IP address, and logs name the peer.
    pub fn serve_transport_from<T: FrameTransport>(&self, transport: T, peer: SocketAddr) {
        self.serve(transport, Some(peer));
    }

    fn serve<T: FrameTransport>(&self, transport: T, peer: Option<SocketAddr>) {
        let inner = self.inner.clone();
        let (reader, mut writer) = connection::into_halves(transport);
        let Some(slot) = ConnectionSlot::take(&inner) else {
            self.note_refused(peer);
            tokio::spawn(async move {
                let _ = send_error_and_close(
                    &mut writer,
                    ErrorCode::ConnectionError,
                    "too many connections; retry later",
                )
                .await;
                drop(reader);
            });
            return;
        };
        tokio::spawn(handshake(inner, reader, writer, peer, slot));
    }

    fn note_refused(&self, peer: Option<SocketAddr>) {
        let inner = &self.inner;
        let refused = inner.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now_ms = u64::try_from(inner.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = inner.refusal_logged.load(Ordering::Relaxed);
        if (refused == 1 || now_ms.saturating_sub(last) >= 1000)
            && inner
                .refusal_logged
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                peer = ?peer,
                max_connections = inner.config.max_connections,
                refused_so_far = refused,
                "connection refused: too many connections"
            );
        }
    }

    /// The next client whose SETUP passed validation; `None` after
    /// [`stop_accepting`](Server::stop_accepting) once the queue is drained.
    pub async fn accept(&self) -> Option<Incoming> {
        self.inner.incoming_rx.lock().await.recv().await
    }

    /// Refuses new clients from now on (they get REJECTED_SETUP); established sessions go on.
    pub fn stop_accepting(&self) {
        if let Ok(mut tx) = self.inner.incoming_tx.lock() {
            tx.take();
        }
    }

    /// Number of resumable sessions the server keeps (attached or detached).
    pub fn resumable_sessions(&self) -> usize {
        self.inner.sessions.lock().map_or(0, |s| s.map.len())
    }

    /// Detached sessions kept for resumption, and the bytes their resume buffers may hold (what
    /// [`ServerConfig::max_detached_sessions`] and [`ServerConfig::max_detached_bytes`] bound).
    pub fn detached_sessions(&self) -> (usize, usize) {
        self.inner
            .sessions
            .lock()
            .map_or((0, 0), |s| (s.detached_count, s.detached_bytes))
    }

    /// Connections counted against [`ServerConfig::max_connections`] now.
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::Acquire)
    }

    /// Connections refused so far for [`ServerConfig::max_connections`].
    pub fn refused_connections(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Bytes of payloads being reassembled now, across all connections (what
    /// [`ServerConfig::max_total_reassembly`] bounds).
    pub fn reassembly_bytes(&self) -> usize {
        self.inner.reassembly.used()
    }
}

/// Sends a connection ERROR and closes, in the handshake task.
async fn refuse(mut writer: BoxWriter, code: ErrorCode, message: &str) {
    let _ = send_error_and_close(&mut writer, code, message).await;
}

async fn handshake(
    inner: Arc<Inner>,
    mut reader: BoxReader,
    writer: BoxWriter,
    peer: Option<SocketAddr>,
    slot: ConnectionSlot,
) {
    let setup_limit = inner.config.max_setup_frame_len;
    reader.set_frame_limit(Some(setup_limit));
    let first = match tokio::time::timeout(inner.config.setup_timeout, reader.read_frame()).await {
        Ok(Ok(Some(frame))) => frame,
        Ok(Ok(None)) => return,
        Ok(Err(TransportError::FrameTooLarge { len, limit })) => {
            tracing::info!(peer = ?peer, len, limit, "first frame too large; connection closed");
            let message = format!("first frame of {len} bytes exceeds the limit of {limit}");
            refuse(writer, ErrorCode::InvalidSetup, &message).await;
            return;
        }
        Ok(Err(e)) => {
            tracing::debug!(peer = ?peer, error = %e, "transport failed before SETUP");
            return;
        }
        Err(_) => {
            refuse(writer, ErrorCode::InvalidSetup, "no SETUP received in time").await;
            return;
        }
    };
    if first.len() > setup_limit {
        // Transports that cannot refuse a frame before buffering it (WebSocket) end here.
        let message = format!(
            "first frame of {} bytes exceeds the limit of {setup_limit}",
            first.len()
        );
        tracing::info!(peer = ?peer, len = first.len(), "first frame too large; connection closed");
        refuse(writer, ErrorCode::InvalidSetup, &message).await;
        return;
    }
    reader.set_frame_limit(None);
    let ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
    match Frame::decode(first) {
        Ok(Frame::Setup(setup)) => {
            if let Err(rejection) = check_setup(&setup, inner.config.resume_enabled) {
                refuse(writer, rejection.code, &rejection.message).await;
                return;
            }
            let keepalive = Duration::from_millis(u64::from(setup.keepalive_ms));
            if keepalive > inner.config.max_lifetime {
                let message = format!(
                    "keepalive interval of {keepalive:?} exceeds the server's max lifetime of {:?}",
                    inner.config.max_lifetime
                );
                refuse(writer, ErrorCode::RejectedSetup, &message).await;
                return;
            }
            if let Some(token) = &setup.resume_token {
                if throttled(&inner, ip) {
                    tracing::info!(peer = ?peer, "SETUP refused: too many failed resume attempts");
                    refuse(
                        writer,
                        ErrorCode::RejectedSetup,
                        "too many failed resume attempts; retry later",
                    )
                    .await;
                    return;
                }
                let key = TokenKey(token.clone());
                let in_use = inner
                    .sessions
                    .lock()
                    .map_or(true, |s| s.map.contains_key(&key));
                if in_use {
                    resume_failed(&inner, ip, peer, "SETUP with a resume token already in use");
                    refuse(
                        writer,
                        ErrorCode::RejectedSetup,
                        "resume token already in use",
                    )
                    .await;
                    return;
                }
            }
            let incoming = Incoming {
                setup: SetupInfo::from_frame(setup),
                reader,
                writer,
                server: inner.clone(),
                slot: Some(slot),
            };
            let tx = inner.incoming_tx.lock().ok().and_then(|tx| tx.clone());
            let refused = match tx {
                Some(tx) => tx.try_send(incoming).err().map(|e| e.into_inner()),
                None => Some(incoming),
            };
            if let Some(incoming) = refused {
                incoming.reject(
                    ErrorCode::RejectedSetup,
                    "server is not accepting connections",
                );
            }
        }
        Ok(Frame::Resume(resume)) => {
            handle_resume(&inner, reader, writer, resume, ip, peer).await;
            // The session holds its own slot; this transport's ends here.
            drop(slot);
        }
        Ok(_) => {
            refuse(
                writer,
                ErrorCode::InvalidSetup,
                "the first frame must be SETUP or RESUME",
            )
            .await;
        }
        Err(e) => {
            refuse(
                writer,
                ErrorCode::InvalidSetup,
                &format!("malformed SETUP: {e}"),
            )
            .await;
        }
    }
}

fn throttled(inner: &Inner, ip: IpAddr) -> bool {
    inner
        .throttle
        .lock()
        .map_or(true, |mut t| t.blocked(ip, Instant::now(), &inner.config))
}

/// Counts and logs a failed RESUME (or a SETUP naming a token in use).
fn resume_failed(inner: &Inner, ip: IpAddr, peer: Option<SocketAddr>, reason: &str) {
    let failures = inner.throttle.lock().map_or(u32::MAX, |mut t| {
        t.strike(ip, Instant::now(), &inner.config)
    });
    let max = inner.config.max_resume_failures;
    if failures == max {
        tracing::warn!(
            peer = ?peer,
            failures,
            window = ?inner.config.resume_failure_window,
            "failed resume attempts: further ones from this address are refused for the window"
        );
    } else if failures < max {
        tracing::info!(peer = ?peer, reason, failures, "resume refused");
    }
}

/// A RESUME: attaches the transport to the session it names if the session accepts it. A
/// RESUME that fails leaves the session alone (see `Session::accept_resume`).
async fn handle_resume(
    inner: &Arc<Inner>,
    reader: BoxReader,
    writer: BoxWriter,
    resume: ResumeFrame,
    ip: IpAddr,
    peer: Option<SocketAddr>,
) {
    if throttled(inner, ip) {
        tracing::debug!(peer = ?peer, "RESUME refused unexamined: too many failed attempts");
        refuse(
            writer,
            ErrorCode::RejectedResume,
            "too many failed resume attempts; retry later",
        )
        .await;
        return;
    }
    let key = TokenKey(resume.resume_token.clone());
    let session = inner
        .sessions
        .lock()
        .ok()
        .and_then(|s| s.map.get(&key).map(|e| e.attach.clone()));
    let Some(session) = session else {
        resume_failed(inner, ip, peer, "unknown resume token");
        refuse(writer, ErrorCode::RejectedResume, "unknown resume token").await;
        return;
    };
    let (outcome_tx, outcome_rx) = oneshot::channel();
    let attach = Attach::ServerResume {
        reader,
        writer,
        frame: resume,
        outcome: outcome_tx,
    };
    if let Err(mpsc::error::SendError(attach)) = session.send(attach).await {
        resume_failed(inner, ip, peer, "session expired");
        if let Attach::ServerResume { writer, .. } = attach {
            refuse(writer, ErrorCode::RejectedResume, "session expired").await;
        }
        return;
    }
    match tokio::time::timeout(inner.config.setup_timeout, outcome_rx).await {
        Ok(Ok(Ok(()))) => tracing::info!(peer = ?peer, "session resumed"),
        // The session answered REJECTED_RESUME itself.
        Ok(Ok(Err(reason))) => resume_failed(inner, ip, peer, &reason),
        _ => resume_failed(inner, ip, peer, "session ended"),
    }
}

/// Accounts a resumable session's detachments in the server's table.
struct ServerHooks {
    server: Weak<Inner>,
    key: TokenKey,
}

/// Room left in a detached session's resume buffer for frames queued while it is detached.
const DETACHED_HEADROOM: usize = 1024 * 1024;

impl SessionHooks for ServerHooks {
    fn detached(&mut self, session: &mut Session) -> bool {
        let Some(inner) = self.server.upgrade() else {
            return true;
        };
        let config = &inner.config;
        let headroom = config.resume_buffer_size.min(DETACHED_HEADROOM);
        let Some(bytes) = session.limit_detached_buffer(headroom) else {
            return false;
        };
        let Ok(mut guard) = inner.sessions.lock() else {
            return false;
        };
        let sessions = &mut *guard;
        if bytes > config.max_detached_bytes || config.max_detached_sessions == 0 {
            tracing::info!(
                bytes,
                "detached session ended: its resume buffer alone exceeds max_detached_bytes"
            );
            return false;
        }
        while sessions.detached_count + 1 > config.max_detached_sessions
            || sessions.detached_bytes + bytes > config.max_detached_bytes
        {
            let oldest = sessions
                .map
                .iter()
                .filter(|(k, _)| **k != self.key)
                .filter_map(|(k, e)| e.detached.map(|d| (d.seq, k.clone())))
                .min_by_key(|(seq, _)| *seq);
            let Some((_, victim)) = oldest else {
                break;
            };
            let Some(entry) = sessions.map.get_mut(&victim) else {
                break;
            };
            let evicted = entry.detached.take();
            // A full attach queue means RESUMEs are arriving for it; it ends with its window.
            let _ = entry.attach.try_send(Attach::Evict);
            if let Some(d) = evicted {
                sessions.forget_detached(d);
            }
            tracing::info!(
                detached = sessions.detached_count,
                bytes = sessions.detached_bytes,
                "evicting the oldest detached session to make room"
            );
        }
        let seq = sessions.next_seq;
        sessions.next_seq += 1;
        let Some(entry) = sessions.map.get_mut(&self.key) else {
            return true;
        };
        if let Some(old) = entry.detached.replace(Detached { seq, bytes }) {
            sessions.forget_detached(old);
        }
        sessions.detached_count += 1;
        sessions.detached_bytes += bytes;
        true
    }

    fn resumed(&mut self) {
        if let Some(inner) = self.server.upgrade()
            && let Ok(mut sessions) = inner.sessions.lock()
            && let Some(d) = sessions
                .map
                .get_mut(&self.key)
                .and_then(|e| e.detached.take())
        {
            sessions.forget_detached(d);
        }
    }
}

/// A client whose SETUP passed validation, waiting to be accepted or rejected.
pub struct Incoming {
    setup: SetupInfo,
    reader: BoxReader,
    writer: BoxWriter,
    server: Arc<Inner>,
    /// Held by the session once accepted.
    slot: Option<ConnectionSlot>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("setup", &self.setup)
            .finish_non_exhaustive()
    }
}

impl Incoming {
    /// The client's SETUP.
    pub fn setup(&self) -> &SetupInfo {
        &self.setup
    }

    /// Accepts the client: requests it sends go to `responder`; the returned [`Connection`]
    /// sends requests to the client.
    pub fn accept(self, responder: Arc<dyn RequestHandler>) -> Connection {
        let config = &self.server.config;
        let mut sc = SessionConfig::new(Side::Server);
        sc.keepalive_interval = self.setup.keepalive_interval;
        // The client asks; the server caps (see `ServerConfig::max_lifetime`).
        sc.max_lifetime = self.setup.max_lifetime.min(config.max_lifetime);
        sc.mtu = config.mtu;
        sc.max_reassembly = config.max_reassembly;
        sc.max_reassembly_total = config.max_connection_reassembly;
        sc.shared_reassembly = Some(self.server.reassembly.clone());
        sc.resume_buffer = self
            .setup
            .resume_token
            .as_ref()
            .map(|_| config.resume_buffer_size);
        sc.resume_window = config.resume_window;
        let limits = HandleLimits {
            max_in_flight: config.max_in_flight,
            command_queue: config.command_queue,
            stream_window: config.stream_window,
            max_responders: config.max_inbound_requests,
            max_pending: config.max_pending_inbound,
            overflow: config.inbound_overflow,
        };
        sc.max_inbound_streams = limits.session_inbound_cap();
        let session = Session::server(sc, tokio::time::Instant::now().into_std());
        let key = self.setup.resume_token.clone().map(TokenKey);
        let server = Arc::downgrade(&self.server);
        let exit_key = key.clone();
        let slot = self.slot;
        // Filled once the driver exists; the exit hook removes this session's entry only.
        let (mine_tx, mine_rx) = std::sync::mpsc::channel::<mpsc::Sender<Attach>>();
        let (connection, attach) = connection::spawn(DriverParts {
            session,
            responder,
            transport: Some((self.reader, self.writer)),
            limits,
            established: None,
            on_exit: Some(Box::new(move || {
                let _slot = slot;
                let mine = mine_rx.try_recv().ok();
                if let (Some(server), Some(key), Some(mine)) = (server.upgrade(), exit_key, mine)
                    && let Ok(mut sessions) = server.sessions.lock()
                    && sessions
                        .map
                        .get(&key)
                        .is_some_and(|e| e.attach.same_channel(&mine))
                    && let Some(entry) = sessions.map.remove(&key)
                    && let Some(d) = entry.detached
                {
                    sessions.forget_detached(d);
                }
            })),
            hooks: key.clone().map(|key| {
                Box::new(ServerHooks {
                    server: Arc::downgrade(&self.server),
                    key,
                }) as Box<dyn SessionHooks>
            }),
        });
        if let Some(key) = key
            && let Ok(mut sessions) = self.server.sessions.lock()
        {
            // Two SETUPs with one token can both pass the handshake's check; the first keeps it.
            if let std::collections::hash_map::Entry::Vacant(slot) = sessions.map.entry(key) {
                let _ = mine_tx.send(attach.clone());
                slot.insert(SessionEntry {
                    attach: attach.clone(),
                    detached: None,
                });
            }
            // A session that already ended (its transport died at once) leaves no entry.
            if attach.is_closed() {
                sessions.map.retain(|_, e| !e.attach.same_channel(&attach));
            }
        }
        connection
    }

    /// Refuses the client: sends ERROR(`code`, `message`) on stream 0 and closes the transport
    /// (in a task, within a short linger).
    pub fn reject(self, code: ErrorCode, message: impl Into<String>) {
        let message = message.into();
        let mut writer = self.writer;
        tokio::spawn(async move {
            let _ = send_error_and_close(&mut writer, code, &message).await;
        });
    }
}
