//! The protocol's errors: why a session closed, why a request failed, and what a responder
//! answers instead of a payload. They name no transport: an I/O failure reaches them as a
//! [`LostCause`], which keeps the failure as an opaque `std::error::Error` source, so the sans-IO
//! core stays free of the I/O layer while callers still see the whole chain.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use crate::frame::ErrorCode;

/// Why a transport was lost: what the driver saw, and the underlying error (an I/O error, a TLS
/// alert, ...) as [`source`](StdError::source) when there is one.
///
/// ```
/// use std::error::Error;
/// use elarian_transport::protocol::LostCause;
///
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
/// let cause = LostCause::with_source("read failed", io);
/// assert_eq!(cause.to_string(), "read failed");
/// assert_eq!(cause.source().unwrap().to_string(), "reset by peer");
/// ```
#[derive(Clone)]
pub struct LostCause {
    what: Arc<str>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

impl LostCause {
    /// A cause with no underlying error (the peer closed, a resume buffer overflowed, ...).
    pub fn new(what: impl Into<Arc<str>>) -> Self {
        LostCause {
            what: what.into(),
            source: None,
        }
    }

    /// A cause whose underlying error stays reachable through [`source`](StdError::source).
    pub fn with_source(
        what: impl Into<Arc<str>>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        LostCause {
            what: what.into(),
            source: Some(Arc::new(source)),
        }
    }
}

impl From<&str> for LostCause {
    fn from(what: &str) -> Self {
        LostCause::new(what)
    }
}

impl fmt::Display for LostCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl fmt::Debug for LostCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("LostCause");
        d.field("what", &&*self.what);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for LostCause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Causes compare by what the driver saw: the underlying errors are not comparable.
impl PartialEq for LostCause {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what
    }
}

impl Eq for LostCause {}

/// Why a connection (or session) ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Connection::close`](crate::Connection::close) was called on this side.
    #[error("connection closed locally")]
    Local,
    /// A connection-level ERROR frame (stream 0) was sent or received.
    #[error("connection error {code}: {message}")]
    Error {
        /// The error code (INVALID_SETUP, REJECTED_RESUME, CONNECTION_ERROR, CONNECTION_CLOSE, …).
        code: ErrorCode,
        /// The error text (lossily decoded).
        message: String,
    },
    /// No frame arrived from the peer within the maximum lifetime.
    #[error("keepalive timeout: no frame from the peer within the max lifetime")]
    KeepaliveTimeout,
    /// The transport failed or closed and the session cannot be resumed; the cause keeps the
    /// underlying error as its [`source`](std::error::Error::source).
    #[error("transport lost: {0}")]
    TransportLost(#[source] LostCause),
    /// A detached resumable session was not resumed in time.
    #[error("the detached session was not resumed in time")]
    ResumeExpired,
}

/// Why a request failed, on the requesting side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The responder answered with an ERROR frame on the stream.
    #[error("remote error {code}: {message}")]
    Remote {
        /// APPLICATION_ERROR, REJECTED, CANCELED, INVALID or an extension code.
        code: ErrorCode,
        /// The error text (lossily decoded).
        message: String,
    },
    /// The connection closed before the request completed.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// The payload (request or reassembled response) exceeds a size limit.
    #[error("payload of {len} bytes exceeds the limit of {limit} bytes")]
    PayloadTooLarge {
        /// Size of the payload (or the part received so far).
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// All stream ids of this side were used up; open a new connection.
    #[error("stream ids exhausted")]
    StreamIdsExhausted,
    /// The peer violated the protocol on this stream (for example sent more items than requested).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// No answer came before the request's deadline
    /// ([`Connection::request_response_until`](crate::Connection::request_response_until)); the
    /// request was canceled (CANCEL sent if it had gone out) and a late answer is discarded.
    #[error("no answer before the deadline")]
    TimedOut,
}

/// The error a [`RequestHandler`](crate::RequestHandler) returns; sent to the requester as an ERROR frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct StreamError {
    /// The code to send, normally APPLICATION_ERROR, REJECTED, CANCELED or INVALID.
    pub code: ErrorCode,
    /// The text to send.
    pub message: String,
}

impl StreamError {
    /// An error with any code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        StreamError {
            code,
            message: message.into(),
        }
    }

    /// APPLICATION_ERROR: the application failed to handle the request.
    pub fn application(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ApplicationError, message)
    }

    /// REJECTED: the request was refused before any processing.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Rejected, message)
    }

    /// INVALID: the request is invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }
}
