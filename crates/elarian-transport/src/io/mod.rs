//! Frame transports: what carries whole RSocket frames between two peers.
//!
//! The protocol engine never sees sockets. It reads and writes *whole frames* (without the 24-bit
//! length prefix) through the two halves of a [`FrameTransport`]. Byte-stream transports (TCP, TLS)
//! add and strip the length prefix; the WebSocket transport maps one binary message to one frame.
//!
//! [`BoxTransport`] erases the concrete type so that a client can pick its transport at run time
//! (from an `Endpoint`) and a server can serve TCP, TLS and WebSocket peers through one engine.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

mod dial;
mod endpoint;
#[cfg(feature = "tcp")]
mod listener;
pub mod memory;
mod tcp;
mod tls;
#[cfg(feature = "websocket")]
mod ws;
#[cfg(feature = "websocket")]
mod ws_guard;

pub use self::dial::{DialFuture, Dialer};
pub use self::endpoint::{Endpoint, ParseError, Scheme, connect};
#[cfg(feature = "tls")]
pub use self::listener::TlsListener;
#[cfg(feature = "websocket")]
pub use self::listener::WsListener;
#[cfg(feature = "tcp")]
pub use self::listener::{ListenerConfig, TcpListener};
#[cfg(feature = "tcp")]
pub use self::tcp::TcpTransport;
pub use self::tcp::{
    FramingConfig, LengthPrefixed, LengthPrefixedReader, LengthPrefixedWriter,
    split_length_prefixed,
};
pub use self::tls::{TlsClientOptions, TlsConfigError};
#[cfg(feature = "tls")]
pub use self::tls::{TlsServerOptions, TlsStream};
#[cfg(feature = "websocket")]
pub use self::ws::{WsReader, WsTransport, WsWriter};
/// The rustls version behind [`TlsServerOptions::from_rustls_config`].
#[cfg(feature = "tls")]
pub use rustls;
/// The certificate and key types of the TLS options, re-exported so that callers need not depend
/// on `rustls-pki-types` themselves.
#[cfg(feature = "tls")]
pub use rustls_pki_types as pki_types;

/// Why a transport failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The operating system reported an I/O error.
    #[error("transport I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame was larger than the transport or the configured limit allows.
    #[error("frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Length of the offending frame.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The peer closed the stream in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    TruncatedFrame,
    /// Something the transport protocol (TLS handshake, WebSocket upgrade, …) rejected.
    #[error("{0}")]
    Protocol(String),
    /// The TCP connection to the endpoint could not be opened (refused, unreachable, no such
    /// host, …); the operating system's error is the [`source`](std::error::Error::source).
    #[error("cannot connect to {endpoint}")]
    Connect {
        /// The endpoint dialled.
        endpoint: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A TLS handshake or WebSocket upgrade failed. The [`source`](std::error::Error::source)
    /// says why: for TLS an [`std::io::Error`] whose
    /// [`get_ref`](std::io::Error::get_ref) is the `rustls::Error` (say, a certificate from an
    /// unknown issuer), for WebSocket the `tungstenite` error.
    #[error("{what} failed")]
    Handshake {
        /// Which handshake, with whom (`TLS handshake with `localhost``).
        what: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl TransportError {
    /// Whether the transport gave up waiting (a connect or handshake that timed out).
    pub fn is_timeout(&self) -> bool {
        self.io_error_kind() == Some(std::io::ErrorKind::TimedOut)
    }

    /// Whether the peer refused the TCP connection (nothing listens at the endpoint).
    pub fn is_refused(&self) -> bool {
        self.io_error_kind() == Some(std::io::ErrorKind::ConnectionRefused)
    }

    /// Whether a TLS handshake or WebSocket upgrade failed (an untrusted certificate, a
    /// refused upgrade, …).
    pub fn is_handshake(&self) -> bool {
        matches!(self, TransportError::Handshake { .. })
    }

    /// The kind of the operating system's error behind this one, if there is one.
    pub fn io_error_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            TransportError::Io(error) | TransportError::Connect { source: error, .. } => {
                Some(error.kind())
            }
            TransportError::Handshake { source, .. } => {
                source.downcast_ref::<std::io::Error>().map(|e| e.kind())
            }
            _ => None,
        }
    }
}

/// The receiving half of a transport.
pub trait FrameReader: Send + 'static {
    /// Waits for the next whole frame. `Ok(None)` means the peer closed the transport cleanly.
    ///
    /// Cancel safety: dropping the future loses no data already received.
    fn read_frame(&mut self) -> impl Future<Output = Result<Option<Bytes>, TransportError>> + Send;

    /// Returns the next frame if it is already buffered, without waiting or doing I/O; `None`
    /// means [`read_frame`](FrameReader::read_frame) is needed.
    ///
    /// Optional (the default always says `None`): it lets [`BoxReader`] hand out buffered frames
    /// without allocating a future for each.
    fn try_read_frame(&mut self) -> Option<Result<Option<Bytes>, TransportError>> {
        None
    }

    /// One poll of [`read_frame`](FrameReader::read_frame) without a future, registering `cx`'s
    /// waker when it has to wait: `None` when the reader cannot do that.
    ///
    /// Optional (the default always says `None`): it lets [`BoxReader`] wait for a frame
    /// without allocating a future for each wait.
    fn poll_read_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Option<std::task::Poll<Result<Option<Bytes>, TransportError>>> {
        let _ = cx;
        None
    }

    /// Lowers the largest frame accepted to `limit` (`None`: back to the configured limit),
    /// before the bytes of a larger frame are buffered. A server sets a small limit until the
    /// SETUP has arrived, so that an unauthenticated peer cannot make it buffer a large frame.
    ///
    /// Optional: the default does nothing, and the server then checks the first frame's size
    /// once it is read.
    fn set_frame_limit(&mut self, limit: Option<usize>) {
        let _ = limit;
    }
}

/// The sending half of a transport.
pub trait FrameWriter: Send + 'static {
    /// Queues one whole frame. Implementations buffer and coalesce frames; bytes reach the peer at
    /// the latest on [`flush`](FrameWriter::flush).
    fn write_frame(
        &mut self,
        frame: Bytes,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Queues `frame` if that needs no I/O and gives it back (`Ok(Some(frame))`) if it needs
    /// [`write_frame`](FrameWriter::write_frame).
    ///
    /// Optional (the default always gives the frame back): it lets [`BoxWriter`] queue frames
    /// without allocating a future for each.
    fn try_write_frame(&mut self, frame: Bytes) -> Result<Option<Bytes>, TransportError> {
        Ok(Some(frame))
    }
    /// Writes out everything queued.
    fn flush(&mut self) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Writes out everything queued if that needs no waiting: `Some(result)` when it is done (or
    /// failed), `None` when [`flush`](FrameWriter::flush) is needed; whatever was written before
    /// `None` stays written.
    ///
    /// Optional (the default always says `None`): it lets [`BoxWriter`] flush a small batch
    /// into a socket with room without allocating a future for it.
    fn try_flush(&mut self) -> Option<Result<(), TransportError>> {
        None
    }
    /// Flushes and closes the sending direction.
    fn close(&mut self) -> impl Future<Output = Result<(), TransportError>> + Send;
}

/// A bidirectional transport of whole frames, split into independently driven halves.
pub trait FrameTransport: Send + 'static {
    /// The receiving half.
    type Reader: FrameReader;
    /// The sending half.
    type Writer: FrameWriter;
    /// Splits the transport so that reading and writing run concurrently.
    fn split(self) -> (Self::Reader, Self::Writer);
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe form of [`FrameReader`], used by [`BoxTransport`].
trait DynFrameReader: Send + 'static {
    fn read_frame_boxed(&mut self) -> BoxFut<'_, Result<Option<Bytes>, TransportError>>;
    fn try_read_frame_dyn(&mut self) -> Option<Result<Option<Bytes>, TransportError>>;
    fn poll_read_frame_dyn(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Option<std::task::Poll<Result<Option<Bytes>, TransportError>>>;
    fn set_frame_limit_dyn(&mut self, limit: Option<usize>);
}

impl<R: FrameReader> DynFrameReader for R {
    fn read_frame_boxed(&mut self) -> BoxFut<'_, Result<Option<Bytes>, TransportError>> {
        Box::pin(self.read_frame())
    }
    fn try_read_frame_dyn(&mut self) -> Option<Result<Option<Bytes>, TransportError>> {
        self.try_read_frame()
    }
    fn poll_read_frame_dyn(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Option<std::task::Poll<Result<Option<Bytes>, TransportError>>> {
        self.poll_read_frame(cx)
    }
    fn set_frame_limit_dyn(&mut self, limit: Option<usize>) {
        self.set_frame_limit(limit);
    }
}

/// Object-safe form of [`FrameWriter`], used by [`BoxTransport`].
trait DynFrameWriter: Send + 'static {
    fn write_frame_boxed(&mut self, frame: Bytes) -> BoxFut<'_, Result<(), TransportError>>;
    fn try_write_frame_dyn(&mut self, frame: Bytes) -> Result<Option<Bytes>, TransportError>;
    fn flush_boxed(&mut self) -> BoxFut<'_, Result<(), TransportError>>;
    fn try_flush_dyn(&mut self) -> Option<Result<(), TransportError>>;
    fn close_boxed(&mut self) -> BoxFut<'_, Result<(), TransportError>>;
}

impl<W: FrameWriter> DynFrameWriter for W {
    fn write_frame_boxed(&mut self, frame: Bytes) -> BoxFut<'_, Result<(), TransportError>> {
        Box::pin(self.write_frame(frame))
    }
    fn try_write_frame_dyn(&mut self, frame: Bytes) -> Result<Option<Bytes>, TransportError> {
        self.try_write_frame(frame)
    }
    fn flush_boxed(&mut self) -> BoxFut<'_, Result<(), TransportError>> {
        Box::pin(self.flush())
    }
    fn try_flush_dyn(&mut self) -> Option<Result<(), TransportError>> {
        self.try_flush()
    }
    fn close_boxed(&mut self) -> BoxFut<'_, Result<(), TransportError>> {
        Box::pin(self.close())
    }
}

/// A transport whose concrete kind (TCP, TLS, WebSocket, in-memory) is chosen at run time.
pub struct BoxTransport {
    reader: BoxReader,
    writer: BoxWriter,
}

impl std::fmt::Debug for BoxTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxTransport").finish_non_exhaustive()
    }
}

impl BoxTransport {
    /// Erases the type of a transport.
    pub fn new<T: FrameTransport>(transport: T) -> Self {
        let (reader, writer) = transport.split();
        BoxTransport {
            reader: BoxReader(Box::new(reader)),
            writer: BoxWriter(Box::new(writer)),
        }
    }
}

/// The receiving half of a [`BoxTransport`].
pub struct BoxReader(Box<dyn DynFrameReader>);

/// The sending half of a [`BoxTransport`].
pub struct BoxWriter(Box<dyn DynFrameWriter>);

impl FrameReader for BoxReader {
    // Buffered frames skip the boxed future: one allocation per frame is measurable. Being an
    // `async fn`, the check runs on the first poll, so a future dropped unpolled (a losing
    // `select!` branch) takes no frame with it.
    async fn read_frame(&mut self) -> Result<Option<Bytes>, TransportError> {
        if let Some(ready) = self.0.try_read_frame_dyn() {
            return ready;
        }
        // A reader that can be polled waits without a future of its own; the boxed one would
        // be an allocation per wait (per command, with one command in flight).
        let polled = std::future::poll_fn(|cx| match self.0.poll_read_frame_dyn(cx) {
            Some(poll) => poll.map(Some),
            None => std::task::Poll::Ready(None),
        })
        .await;
        match polled {
            Some(done) => done,
            None => self.0.read_frame_boxed().await,
        }
    }
    fn try_read_frame(&mut self) -> Option<Result<Option<Bytes>, TransportError>> {
        self.0.try_read_frame_dyn()
    }
    fn poll_read_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Option<std::task::Poll<Result<Option<Bytes>, TransportError>>> {
        self.0.poll_read_frame_dyn(cx)
    }
    fn set_frame_limit(&mut self, limit: Option<usize>) {
        self.0.set_frame_limit_dyn(limit);
    }
}

impl FrameWriter for BoxWriter {
    async fn write_frame(&mut self, frame: Bytes) -> Result<(), TransportError> {
        match self.0.try_write_frame_dyn(frame)? {
            None => Ok(()),
            Some(frame) => self.0.write_frame_boxed(frame).await,
        }
    }
    fn try_write_frame(&mut self, frame: Bytes) -> Result<Option<Bytes>, TransportError> {
        self.0.try_write_frame_dyn(frame)
    }
    // As for reads: a flush that completes at once (a small batch, a socket with room) skips
    // the boxed future, one allocation per batch.
    async fn flush(&mut self) -> Result<(), TransportError> {
        match self.0.try_flush_dyn() {
            Some(done) => done,
            None => self.0.flush_boxed().await,
        }
    }
    fn try_flush(&mut self) -> Option<Result<(), TransportError>> {
        self.0.try_flush_dyn()
    }
    fn close(&mut self) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.0.close_boxed()
    }
}

impl FrameTransport for BoxTransport {
    type Reader = BoxReader;
    type Writer = BoxWriter;
    fn split(self) -> (BoxReader, BoxWriter) {
        (self.reader, self.writer)
    }
}
