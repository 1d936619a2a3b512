//! The application side of a connection: how requests from the peer are answered.

use bytes::Bytes;
pub use futures_util::future::BoxFuture;
pub use futures_util::stream::BoxStream;

use crate::{Payload, StreamError};

/// Answers the requests the *peer* sends, on either side of a connection.
///
/// Object safe: connections hold an `Arc<dyn RequestHandler>`. Every method has a default that refuses
/// the request with REJECTED, so an implementation overrides only what it serves.
///
/// ```
/// use std::sync::Arc;
/// use elarian_transport::{Payload, RequestHandler, StreamError};
/// use elarian_transport::BoxFuture;
///
/// struct Echo;
/// impl RequestHandler for Echo {
///     fn request_response(&self, payload: Payload) -> BoxFuture<'static, Result<Payload, StreamError>> {
///         Box::pin(async move { Ok(payload) })
///     }
/// }
/// let _responder: Arc<dyn RequestHandler> = Arc::new(Echo);
/// ```
pub trait RequestHandler: Send + Sync + 'static {
    /// Answers a REQUEST_RESPONSE. An `Err` is sent to the requester as an ERROR frame.
    fn request_response(
        &self,
        payload: Payload,
    ) -> BoxFuture<'static, Result<Payload, StreamError>> {
        let _ = payload;
        Box::pin(async { Err(StreamError::rejected("request/response is not supported")) })
    }

    /// Handles a REQUEST_FNF. Must not block: spawn work that takes time.
    fn fire_and_forget(&self, payload: Payload) {
        let _ = payload;
        tracing::debug!("fire-and-forget dropped: not supported by this responder");
    }

    /// Answers a REQUEST_STREAM. Items are pulled only while the requester has granted credit.
    fn request_stream(&self, payload: Payload) -> BoxStream<'static, Result<Payload, StreamError>> {
        let _ = payload;
        Box::pin(futures_util::stream::once(async {
            Err(StreamError::rejected("request/stream is not supported"))
        }))
    }

    /// Handles METADATA_PUSH. Must not block.
    fn metadata_push(&self, metadata: Bytes) {
        let _ = metadata;
    }
}

/// A responder that refuses every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectAll;

impl RequestHandler for RejectAll {}
