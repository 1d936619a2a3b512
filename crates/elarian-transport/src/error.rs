//! Errors of the tokio driver: connecting and resuming a client session. Unlike the protocol's
//! errors ([`crate::protocol`]) they may carry the transport's [`TransportError`].

use crate::frame::ErrorCode;
use crate::io::TransportError;
use crate::protocol::CloseReason;

/// Why [`ClientSession::connect`](crate::ClientSession::connect) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The server answered the SETUP with an ERROR (REJECTED_SETUP, UNSUPPORTED_SETUP, …).
    #[error("setup rejected with {code}: {message}")]
    Rejected {
        /// The error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The server did not answer within the connect timeout.
    #[error("timed out waiting for the server to accept the setup")]
    Timeout,
    /// The configuration cannot be encoded (MIME type too long, zero keepalive, …).
    #[error("invalid client configuration: {0}")]
    InvalidConfig(String),
    /// The transport failed during the handshake.
    #[error("transport error during setup: {0}")]
    Transport(#[from] TransportError),
    /// The connection closed during the handshake for another reason.
    #[error("connection closed during setup: {0}")]
    Closed(CloseReason),
}

/// Why [`ClientSession::resume`](crate::ClientSession::resume) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The server refused (unknown token, positions gone, session expired): connect afresh.
    #[error("resume rejected: {message}")]
    Rejected {
        /// The server's message.
        message: String,
    },
    /// The server did not answer within the timeout; the session stays detached and may be retried.
    #[error("timed out waiting for RESUME_OK")]
    Timeout,
    /// The session has no resume token or can no longer be resumed.
    #[error("the session is not resumable: {0}")]
    NotResumable(String),
    /// The session is closed.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The session is attached to a working transport; nothing to resume.
    #[error("the session is connected")]
    NotDetached,
}
