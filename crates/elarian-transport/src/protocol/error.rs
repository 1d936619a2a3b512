//! The protocol's errors: why a session closed, why a request failed, and what a responder
//! answers instead of a payload. They name no transport: I/O failures reach them only as text
//! ([`CloseReason::TransportLost`]), so the sans-IO core stays free of the I/O layer.

use crate::frame::ErrorCode;

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
    /// The transport failed or closed and the session cannot be resumed.
    #[error("transport lost: {0}")]
    TransportLost(String),
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
