//! What the supervisor needs from an RSocket client session, at the level of payload bytes.
//!
//! Keeping the supervisor on this seam (rather than on the transport's types directly) keeps the
//! reconnection logic independent of how sessions are opened, and lets it be exercised with a
//! scripted link in unit tests. [`crate::rsocket`] implements it over `elarian-transport`.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::error::ConnectError;

/// Why a request on a link failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkRequestError {
    /// The peer answered with an ERROR frame.
    Remote { code: u32, message: String },
    /// The session ended while the request was in flight (or before it could be sent).
    Lost,
    /// No answer before the request's deadline; the request was canceled.
    TimedOut,
}

/// How a link went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkDown {
    /// The transport is gone but the session can be resumed; in-flight requests stay pending.
    Detached { reason: String },
    /// The session is over; its in-flight requests have failed.
    Closed { reason: String },
}

/// Why a resumption failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResumeFailure {
    /// The server no longer knows the session: connect afresh.
    Rejected { reason: String },
    /// The new transport could not be opened or failed during the exchange; try again later.
    Failed(ConnectError),
}

/// One established RSocket session.
pub(crate) trait Link: Send + Sync + 'static {
    /// Sends a REQUEST_RESPONSE with `data` and no metadata; fails with
    /// [`LinkRequestError::TimedOut`] (and cancels it) if unanswered at `deadline`.
    fn request(
        &self,
        data: Bytes,
        deadline: tokio::time::Instant,
    ) -> BoxFuture<'static, Result<Bytes, LinkRequestError>>;
    /// The RSocket connection under the link, when there is one: commands go to it directly,
    /// without the boxed future of [`request`](Link::request) (an allocation per command).
    fn connection(&self) -> Option<&elarian_transport::Connection> {
        None
    }
    /// Resolves when the transport is lost or the session closes.
    fn down(&self) -> BoxFuture<'static, LinkDown>;
    /// Opens a fresh transport and resumes this (detached) session over it.
    fn resume(&self) -> BoxFuture<'static, Result<(), ResumeFailure>>;
    /// Closes the session; pending requests fail.
    fn close(&self) -> BoxFuture<'static, ()>;
}

/// Opens new sessions.
pub(crate) trait Connector: Send + Sync + 'static {
    /// Opens a transport and performs SETUP; resolves once the server has accepted it.
    fn connect(&self) -> BoxFuture<'static, Result<Arc<dyn Link>, ConnectError>>;
}
