//! Error types of the runtime.

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
    /// The attempt did not complete within the connect timeout.
    #[error("the connection attempt timed out")]
    Timeout,
    /// The transport (DNS, TCP, TLS, WebSocket) failed.
    #[error("transport error: {message}")]
    Transport {
        /// What went wrong.
        message: String,
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
        last: Box<ConnectError>,
    },
    /// The client was disconnected (or dropped) before a connection came up.
    #[error("the client was closed before it connected")]
    Closed,
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
