//! The server side: handshake, accept/reject, and the table of resumable sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::Payload;
use crate::connection::{
    self, Attach, Connection, DriverParts, HandleLimits, InboundOverflow, send_error_and_close,
};
use crate::frame::{ErrorCode, Frame, SetupFrame};
use crate::io::{BoxReader, BoxWriter, FrameReader, FrameTransport, MAX_FRAME_LEN};
use crate::protocol::{Session, SessionConfig, Side, check_setup};
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

struct Inner {
    config: ServerConfig,
    incoming_tx: Mutex<Option<mpsc::Sender<Incoming>>>,
    incoming_rx: tokio::sync::Mutex<mpsc::Receiver<Incoming>>,
    sessions: Mutex<HashMap<Bytes, mpsc::Sender<Attach>>>,
}

/// An RSocket server engine, fed with transports from any listener. Cheap to clone.
///
/// SETUPs reach the application through [`accept`](Server::accept); RESUMEs are handled inside
/// against the resumable sessions the server keeps.
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
        Server {
            inner: Arc::new(Inner {
                config,
                incoming_tx: Mutex::new(Some(tx)),
                incoming_rx: tokio::sync::Mutex::new(rx),
                sessions: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts the handshake on a new transport (in a task). Malformed or unsupported SETUPs are
    /// answered with INVALID_SETUP / UNSUPPORTED_SETUP without reaching [`accept`](Server::accept).
    pub fn serve_transport<T: FrameTransport>(&self, transport: T) {
        let inner = self.inner.clone();
        let (reader, writer) = connection::into_halves(transport);
        tokio::spawn(handshake(inner, reader, writer));
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
        self.inner.sessions.lock().map_or(0, |s| s.len())
    }
}

async fn handshake(inner: Arc<Inner>, mut reader: BoxReader, mut writer: BoxWriter) {
    let first = match tokio::time::timeout(inner.config.setup_timeout, reader.read_frame()).await {
        Ok(Ok(Some(frame))) => frame,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "transport failed before SETUP");
            return;
        }
        Err(_) => {
            let _ = send_error_and_close(
                &mut writer,
                ErrorCode::InvalidSetup,
                "no SETUP received in time",
            )
            .await;
            return;
        }
    };
    match Frame::decode(first) {
        Ok(Frame::Setup(setup)) => {
            if let Err(rejection) = check_setup(&setup, inner.config.resume_enabled) {
                let _ = send_error_and_close(&mut writer, rejection.code, &rejection.message).await;
                return;
            }
            if let Some(token) = &setup.resume_token {
                let in_use = inner
                    .sessions
                    .lock()
                    .map_or(true, |s| s.contains_key(token));
                if in_use {
                    let _ = send_error_and_close(
                        &mut writer,
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
            let session = inner
                .sessions
                .lock()
                .ok()
                .and_then(|s| s.get(&resume.resume_token).cloned());
            let Some(session) = session else {
                let _ = send_error_and_close(
                    &mut writer,
                    ErrorCode::RejectedResume,
                    "unknown resume token",
                )
                .await;
                return;
            };
            let attach = Attach::ServerResume {
                reader,
                writer,
                frame: resume,
            };
            if let Err(mpsc::error::SendError(Attach::ServerResume { mut writer, .. })) =
                session.send(attach).await
            {
                let _ =
                    send_error_and_close(&mut writer, ErrorCode::RejectedResume, "session expired")
                        .await;
            }
        }
        Ok(_) => {
            let _ = send_error_and_close(
                &mut writer,
                ErrorCode::InvalidSetup,
                "the first frame must be SETUP or RESUME",
            )
            .await;
        }
        Err(e) => {
            let _ = send_error_and_close(
                &mut writer,
                ErrorCode::InvalidSetup,
                &format!("malformed SETUP: {e}"),
            )
            .await;
        }
    }
}

/// A client whose SETUP passed validation, waiting to be accepted or rejected.
pub struct Incoming {
    setup: SetupInfo,
    reader: BoxReader,
    writer: BoxWriter,
    server: Arc<Inner>,
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
        sc.max_lifetime = self.setup.max_lifetime;
        sc.mtu = config.mtu;
        sc.max_reassembly = config.max_reassembly;
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
        let token = self.setup.resume_token.clone();
        let sessions = Arc::downgrade(&self.server);
        let exit_token = token.clone();
        let (connection, attach) = connection::spawn(DriverParts {
            session,
            responder,
            transport: Some((self.reader, self.writer)),
            limits,
            established: None,
            on_exit: Some(Box::new(move || {
                if let (Some(server), Some(token)) = (sessions.upgrade(), exit_token)
                    && let Ok(mut s) = server.sessions.lock()
                {
                    s.remove(&token);
                }
            })),
        });
        if let Some(token) = token
            && let Ok(mut s) = self.server.sessions.lock()
        {
            s.insert(token, attach);
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
