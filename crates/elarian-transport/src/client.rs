//! The client side: SETUP, the session handle and resumption.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::connection::{
    self, Attach, Connection, DriverParts, HandleLimits, InboundOverflow, LinkState,
};
use crate::frame::MAX_FRAME_LEN;
use crate::frame::{MAX_U31, SetupFrame};
use crate::io::{FrameTransport, TransportError};
use crate::protocol::{Session, SessionConfig, Side};
use crate::responder::RequestHandler;
use crate::{CloseReason, Payload, ResumeError, SetupError};

/// Settings of a client connection.
#[derive(Clone)]
pub struct ClientSessionConfig {
    /// Interval between KEEPALIVE frames (default 1 s).
    pub keepalive_interval: Duration,
    /// The connection is dead after this long without a frame from the server (default 60 s):
    /// it closes with [`CloseReason::KeepaliveTimeout`], or, when resumable, detaches (see
    /// [`ClientSession::disconnected`]).
    pub max_lifetime: Duration,
    /// MIME type of data (default `application/octet-stream`).
    pub data_mime_type: String,
    /// MIME type of metadata (default `application/octet-stream`).
    pub metadata_mime_type: String,
    /// Payload of the SETUP frame (for Elarian: the connection metadata with credentials;
    /// never printed by `Debug`).
    pub setup_payload: Payload,
    /// Resume token; `Some` makes the session resumable (never printed by `Debug`).
    pub resume_token: Option<Bytes>,
    /// Largest frame to send; larger payloads are fragmented (default 16 MiB - 1).
    pub mtu: usize,
    /// Largest payload accepted through reassembly (default 16 MiB).
    pub max_reassembly: usize,
    /// Bytes of sent frames kept for resumption (default 16 MiB).
    pub resume_buffer_size: usize,
    /// How long a detached session may wait for [`ClientSession::resume`] (default 60 s).
    pub resume_window: Duration,
    /// How long `connect` waits for the server's answer, and `resume` for RESUME_OK (default 10 s).
    pub connect_timeout: Duration,
    /// Most requests of this side in flight at once; more wait (default 1024).
    pub max_in_flight: usize,
    /// Most requests from the server handled at once (default 1024); what happens beyond it is
    /// [`inbound_overflow`](ClientSessionConfig::inbound_overflow).
    pub max_inbound_requests: usize,
    /// Beyond `max_inbound_requests`: queue, then stop reading until a responder finishes (the
    /// default, [`InboundOverflow::PauseReading`]) or refuse with REJECTED.
    pub inbound_overflow: InboundOverflow,
    /// With [`InboundOverflow::PauseReading`], most requests from the server waiting for a
    /// responder slot (default 1024); once that many (or 64 MiB of payloads) wait, the
    /// connection stops reading.
    pub max_pending_inbound: usize,
    /// Capacity of the request queue into the connection task (default 1024).
    pub command_queue: usize,
    /// REQUEST_N window of request-streams (default 256).
    pub stream_window: u32,
}

impl Default for ClientSessionConfig {
    fn default() -> Self {
        ClientSessionConfig {
            keepalive_interval: Duration::from_secs(1),
            max_lifetime: Duration::from_secs(60),
            data_mime_type: "application/octet-stream".into(),
            metadata_mime_type: "application/octet-stream".into(),
            setup_payload: Payload::default(),
            resume_token: None,
            mtu: MAX_FRAME_LEN,
            max_reassembly: 16 * 1024 * 1024,
            resume_buffer_size: 16 * 1024 * 1024,
            resume_window: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_in_flight: 1024,
            max_inbound_requests: 1024,
            inbound_overflow: InboundOverflow::PauseReading,
            max_pending_inbound: 1024,
            command_queue: 1024,
            stream_window: 256,
        }
    }
}

impl std::fmt::Debug for ClientSessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSessionConfig")
            .field("keepalive_interval", &self.keepalive_interval)
            .field("max_lifetime", &self.max_lifetime)
            .field("data_mime_type", &self.data_mime_type)
            .field("metadata_mime_type", &self.metadata_mime_type)
            .field("setup_payload", &"<redacted>")
            .field(
                "resume_token",
                &self.resume_token.as_ref().map(|_| "<redacted>"),
            )
            .field("mtu", &self.mtu)
            .field("max_reassembly", &self.max_reassembly)
            .field("resume_buffer_size", &self.resume_buffer_size)
            .field("resume_window", &self.resume_window)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_inbound_requests", &self.max_inbound_requests)
            .field("inbound_overflow", &self.inbound_overflow)
            .field("max_pending_inbound", &self.max_pending_inbound)
            .field("command_queue", &self.command_queue)
            .field("stream_window", &self.stream_window)
            .finish()
    }
}

fn millis(d: Duration, what: &str) -> Result<u32, SetupError> {
    let ms = d.as_millis();
    if ms == 0 || ms > u128::from(MAX_U31) {
        return Err(SetupError::InvalidConfig(format!(
            "{what} must be between 1 ms and 2^31-1 ms"
        )));
    }
    Ok(ms as u32)
}

/// A client session: a [`Connection`] ([`connection`](ClientSession::connection)) plus
/// resumption.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use elarian_transport::{ClientSessionConfig, ClientSession, Payload, RejectAll, Server, ServerConfig};
/// use elarian_transport::io::memory;
///
/// let server = Server::new(ServerConfig::default());
/// let (client_end, server_end) = memory::pair(64);
/// server.serve_transport(server_end);
/// let accept = tokio::spawn({
///     let server = server.clone();
///     async move { server.accept().await.unwrap().accept(Arc::new(RejectAll)) }
/// });
/// let session = ClientSession::connect(client_end, ClientSessionConfig::default(), Arc::new(RejectAll))
///     .await
///     .unwrap();
/// let _server_side = accept.await.unwrap();
/// // The server's responder refuses everything.
/// assert!(session.connection().request_response(Payload::new("hi")).await.is_err());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct ClientSession {
    connection: Connection,
    attach: mpsc::Sender<Attach>,
    resume_token: Option<Bytes>,
    connect_timeout: Duration,
}

impl ClientSession {
    /// Sends SETUP and a KEEPALIVE over `transport` and resolves when the server answers the
    /// KEEPALIVE, i.e. accepted the SETUP. A refused SETUP is [`SetupError::Rejected`].
    pub async fn connect<T: FrameTransport>(
        transport: T,
        config: ClientSessionConfig,
        responder: Arc<dyn RequestHandler>,
    ) -> Result<ClientSession, SetupError> {
        let setup = SetupFrame {
            major_version: 1,
            minor_version: 0,
            keepalive_ms: millis(config.keepalive_interval, "keepalive interval")?,
            max_lifetime_ms: millis(config.max_lifetime, "max lifetime")?,
            resume_token: config.resume_token.clone(),
            lease: false,
            metadata_mime: config.metadata_mime_type.clone(),
            data_mime: config.data_mime_type.clone(),
            metadata: config.setup_payload.metadata.clone(),
            data: config.setup_payload.data.clone(),
        };
        if config.resume_token.as_ref().is_some_and(Bytes::is_empty) {
            return Err(SetupError::InvalidConfig("empty resume token".into()));
        }
        let mut sc = SessionConfig::new(Side::Client);
        sc.mtu = config.mtu;
        sc.max_reassembly = config.max_reassembly;
        sc.resume_buffer = Some(config.resume_buffer_size);
        sc.resume_window = config.resume_window;
        sc.resume_timeout = config.connect_timeout;
        let limits = HandleLimits {
            max_in_flight: config.max_in_flight,
            command_queue: config.command_queue,
            stream_window: config.stream_window,
            max_responders: config.max_inbound_requests,
            max_pending: config.max_pending_inbound,
            overflow: config.inbound_overflow,
        };
        sc.max_inbound_streams = limits.session_inbound_cap();
        let now = tokio::time::Instant::now().into_std();
        let session = Session::client(sc, &setup, now)
            .map_err(|e| SetupError::InvalidConfig(e.to_string()))?;
        let (established_tx, established_rx) = oneshot::channel();
        let (connection, attach) = connection::spawn(DriverParts {
            session,
            responder,
            transport: Some(connection::into_halves(transport)),
            limits,
            established: Some(established_tx),
            on_exit: None,
            hooks: None,
        });
        match tokio::time::timeout(config.connect_timeout, established_rx).await {
            Ok(Ok(Ok(()))) => Ok(ClientSession {
                connection,
                attach,
                resume_token: config.resume_token,
                connect_timeout: config.connect_timeout,
            }),
            Ok(Ok(Err(CloseReason::Error { code, message }))) => {
                Err(SetupError::Rejected { code, message })
            }
            // The transport failed before the server answered: a transport error, so that
            // callers retry it like a failed dial.
            Ok(Ok(Err(CloseReason::TransportLost(cause)))) => {
                Err(SetupError::Transport(TransportError::Io(
                    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, cause),
                )))
            }
            Ok(Ok(Err(reason))) => Err(SetupError::Closed(reason)),
            Ok(Err(_)) => Err(SetupError::Closed(connection.closed().await)),
            Err(_) => {
                connection.close();
                Err(SetupError::Timeout)
            }
        }
    }

    /// The connection handle.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Waits until the transport is lost or the session closes. Then [`ClientSession::resume`]
    /// (if [`is_closed`](Connection::is_closed) is false) or connect afresh.
    pub async fn disconnected(&self) {
        self.connection.link_down().await
    }

    /// Whether the session is detached from its transport and waits for a resumption.
    pub fn is_detached(&self) -> bool {
        self.connection.link_state() == LinkState::Detached
    }

    /// Resumes a detached session over a new transport: sends RESUME and, on RESUME_OK,
    /// retransmits what the server had not received. Requests in flight stay pending across.
    ///
    /// [`ResumeError::Rejected`] means the server no longer knows the session: connect afresh
    /// (the pending requests of this session then fail). [`ResumeError::Timeout`] leaves the
    /// session detached, so another attempt may follow.
    pub async fn resume<T: FrameTransport>(&self, transport: T) -> Result<(), ResumeError> {
        let Some(token) = self.resume_token.clone() else {
            return Err(ResumeError::NotResumable(
                "no resume token was configured".into(),
            ));
        };
        if let LinkState::Closed(reason) = self.connection.link_state() {
            return Err(ResumeError::Closed(reason));
        }
        let (reader, writer) = connection::into_halves(transport);
        let (reply, rx) = oneshot::channel();
        self.attach
            .send(Attach::ClientResume {
                reader,
                writer,
                token,
                reply,
            })
            .await
            .map_err(|_| ResumeError::Closed(CloseReason::Local))?;
        // The session enforces the RESUME_OK timeout itself; this bound only guards the reply.
        match tokio::time::timeout(self.connect_timeout * 2, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(match self.connection.link_state() {
                LinkState::Closed(reason) => ResumeError::Closed(reason),
                _ => ResumeError::Timeout,
            }),
            Err(_) => Err(ResumeError::Timeout),
        }
    }
}
