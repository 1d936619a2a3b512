//! Error types of the runtime.

use std::sync::Arc;
use std::time::Duration;

/// Why a command did not produce a successful reply.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The client was disconnected (or gave up reconnecting); no command is accepted any more.
    #[error("the client is not connected")]
    NotConnected,
    /// No reply arrived within the command timeout (including time spent waiting for a
    /// reconnection). The command may or may not have run on the server.
    #[error("the command timed out")]
    Timeout,
    /// The connection carrying the command was lost and could not be resumed. The command may
    /// have run on the server; it is never re-sent automatically.
    #[error("the connection was lost while the command was in flight")]
    ConnectionLost,
    /// The server answered with an RSocket ERROR frame.
    #[error("the server rejected the command (error code {code:#x}): {message}")]
    Rejected {
        /// RSocket error code (for example `0x201` APPLICATION_ERROR).
        code: u32,
        /// The server's explanation.
        message: String,
    },
    /// The reply could not be decoded as the expected protobuf message.
    #[error("undecodable reply: {0}")]
    Decode(#[source] prost::DecodeError),
    /// The server processed the command and reported failure (`status: false`).
    #[error("the command failed: {description}")]
    Failed {
        /// The server's description of the failure.
        description: String,
    },
    /// Too many commands are already waiting for a connection.
    #[error("too many commands are waiting for a connection")]
    QueueFull,
    /// The encoded command exceeds the configured maximum size.
    #[error("the command is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Size of the encoded command.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}

impl CommandError {
    /// Whether no reply came within the command timeout (the command may or may not have run).
    pub fn is_timeout(&self) -> bool {
        matches!(self, CommandError::Timeout)
    }

    /// Whether the connection was lost with the command in flight, or there was none.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            CommandError::ConnectionLost | CommandError::NotConnected
        )
    }
}

/// Why a connection (attempt) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The server refused the SETUP (bad credentials, unknown app, …). Retrying cannot help, so
    /// the runtime stops.
    #[error("the server rejected the connection: {message}")]
    Rejected {
        /// The server's explanation.
        message: String,
    },
    /// The attempt (or, from [`Client::connect`](crate::Client::connect), the whole initial
    /// connect) did not complete in time.
    #[error("the connection attempt timed out")]
    Timeout {
        /// Why the last attempt before the deadline failed, if one did (refused, certificate
        /// not trusted, …); also the error's [`source`](std::error::Error::source).
        #[source]
        last: Option<Box<ConnectError>>,
    },
    /// The transport (DNS, TCP, TLS, WebSocket) failed.
    #[error("transport error: {message}")]
    Transport {
        /// What went wrong.
        message: String,
        /// The transport's error (the `elarian_transport::io::TransportError`, whose own
        /// source is the operating system's or rustls' error), when there is one.
        #[source]
        source: Option<Cause>,
    },
    /// The peer violated the protocol during the handshake.
    #[error("protocol error: {message}")]
    Protocol {
        /// What went wrong.
        message: String,
    },
    /// The reconnect policy's attempt limit was reached.
    #[error("gave up after {attempts} attempts; last error: {last}")]
    AttemptsExhausted {
        /// Number of failed attempts.
        attempts: u32,
        /// The error of the last attempt.
        #[source]
        last: Box<ConnectError>,
    },
    /// The client was disconnected (or dropped) before a connection came up.
    #[error("the client was closed before it connected")]
    Closed,
}

impl ConnectError {
    /// A timeout with no known cause.
    pub(crate) fn timeout() -> Self {
        ConnectError::Timeout { last: None }
    }

    /// Whether connecting timed out (whatever the last attempt's error was).
    pub fn is_timeout(&self) -> bool {
        matches!(self, ConnectError::Timeout { .. })
    }

    /// Whether the server refused the credentials or the app: final, retrying cannot help.
    pub fn is_rejected(&self) -> bool {
        matches!(self, ConnectError::Rejected { .. })
    }

    /// The error of the last attempt behind a timeout or an exhausted policy, else `self`: the
    /// "why" to show a user (refused, certificate unknown, rejected setup).
    pub fn last_attempt(&self) -> &ConnectError {
        match self {
            ConnectError::Timeout { last: Some(last) }
            | ConnectError::AttemptsExhausted { last, .. } => last.last_attempt(),
            other => other,
        }
    }
}

/// An underlying error kept as the [`source`](std::error::Error::source) of an error of this
/// crate. Shared, so that errors stay `Clone` (they are broadcast as connection events); two
/// causes are equal when their messages are.
///
/// Its `Display` and `source` are the inner error's, so walking the chain reads as if the inner
/// error were there itself; [`get_ref`](Cause::get_ref) gives it for downcasting.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// Wraps an error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(error))
    }

    /// The inner error, e.g. to `downcast_ref` it.
    pub fn get_ref(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

/// The text of `error` and of every error in its source chain, joined by `: `.
pub(crate) fn chain_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let part = source.to_string();
        // Some errors repeat their source's text in their own; say each thing once.
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = source.source();
    }
    text
}

/// The error a [`NotificationHandler`](crate::NotificationHandler) returns.
///
/// The runtime answers the notification with the default reply and reports the error as an
/// [`ConnectionEvent::Error`](crate::ConnectionEvent::Error).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl HandlerError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by another error.
    pub fn from_source(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        HandlerError {
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What went wrong while answering a notification. The connection survives all of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotificationError {
    /// The notification was not a valid protobuf message; the server got an APPLICATION_ERROR.
    #[error("undecodable notification: {message}")]
    Decode {
        /// The decoder's message.
        message: String,
    },
    /// The handler returned an error; the default reply was sent.
    #[error("notification handler failed: {message}")]
    HandlerFailed {
        /// The handler's message.
        message: String,
    },
    /// The handler panicked; the default reply was sent.
    #[error("notification handler panicked: {message}")]
    HandlerPanicked {
        /// The panic message, when it was a string.
        message: String,
    },
    /// The handler did not finish within the notification timeout; the default reply was sent.
    #[error("notification handler did not answer within {timeout:?}")]
    Timeout {
        /// The notification timeout.
        timeout: Duration,
    },
}

/// An error reported through [`ConnectionEvent::Error`](crate::ConnectionEvent::Error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A connection attempt failed (the runtime retries unless the policy says otherwise).
    #[error(transparent)]
    Connect(ConnectError),
    /// The established connection broke (transport closed, keepalive timeout, …).
    #[error("connection lost: {reason}")]
    ConnectionLost {
        /// What broke.
        reason: String,
    },
    /// The server refused to resume the previous session; its in-flight commands failed with
    /// [`CommandError::ConnectionLost`] and a new session was opened.
    #[error("the session could not be resumed: {reason}")]
    SessionLost {
        /// Why the session could not be resumed.
        reason: String,
    },
    /// A notification could not be answered as the handler intended.
    #[error(transparent)]
    Notification(NotificationError),
}

/// An invalid [`ClientConfig`](crate::ClientConfig).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting was not given.
    #[error("missing required setting `{0}`")]
    Missing(&'static str),
    /// A setting has an invalid value.
    #[error("invalid setting `{field}`: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}
