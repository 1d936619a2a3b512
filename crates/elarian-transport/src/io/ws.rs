//! RSocket over WebSocket (tokio-tungstenite): one binary message carries one frame. The
//! handshakes of this crate put a [`HeaderGuard`] under tungstenite, so a frame larger than the
//! reader's current limit is refused on its header, before its payload is buffered.
//!
//! TLS (`wss://`) is layered underneath by this crate's rustls setup, so tungstenite's own TLS
//! features (and with them native-tls/OpenSSL) stay off.

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::ws_guard::{AnnouncedTooLarge, FrameLimit, HeaderGuard, Side};
use super::{
    BoxTransport, FrameReader, FrameTransport, FrameWriter, FramingConfig, TransportError,
};

/// Room for WebSocket frame headers on top of buffered payloads.
const HEADER_ALLOWANCE: usize = 1024;

/// The tungstenite settings matching a framing configuration: the read and write buffers, and a
/// message limit equal to the frame limit. The write buffer is bounded too (tungstenite's own
/// default is unbounded).
pub(crate) fn ws_config(config: &FramingConfig) -> WebSocketConfig {
    let max = config.frame_len_limit();
    let write = config.flush_threshold();
    WebSocketConfig::default()
        .read_buffer_size(config.read_buffer_size())
        .write_buffer_size(write)
        .max_write_buffer_size(write + max + HEADER_ALLOWANCE)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// A WebSocket connection carrying RSocket frames.
///
/// Binary messages are frames; pings and pongs are answered by tungstenite and otherwise
/// ignored; a text message is a protocol error.
#[derive(Debug)]
pub struct WsTransport<S> {
    ws: WebSocketStream<S>,
    max_frame_len: usize,
    /// Set when the stream is a [`HeaderGuard`]: lets the reader lower the incoming limit.
    guard: Option<FrameLimit>,
}

impl<S> WsTransport<S> {
    /// Wraps an established WebSocket. The frame limit of `config` applies to outgoing frames; the
    /// incoming limit is the one `ws` was configured with.
    pub fn new(ws: WebSocketStream<S>, config: &FramingConfig) -> Self {
        WsTransport {
            ws,
            max_frame_len: config.frame_len_limit(),
            guard: None,
        }
    }
}

impl<S> WsTransport<HeaderGuard<S>> {
    fn guarded(
        ws: WebSocketStream<HeaderGuard<S>>,
        config: &FramingConfig,
        guard: FrameLimit,
    ) -> Self {
        WsTransport {
            ws,
            max_frame_len: config.frame_len_limit(),
            guard: Some(guard),
        }
    }
}

impl<S> FrameTransport for WsTransport<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Reader = WsReader<S>;
    type Writer = WsWriter<S>;

    fn split(self) -> (WsReader<S>, WsWriter<S>) {
        let (sink, stream) = self.ws.split();
        (
            WsReader {
                stream,
                guard: self.guard,
                max_frame_len: self.max_frame_len,
            },
            WsWriter {
                sink,
                max_frame_len: self.max_frame_len,
            },
        )
    }
}

/// The receiving half of a [`WsTransport`].
#[derive(Debug)]
pub struct WsReader<S> {
    stream: SplitStream<WebSocketStream<S>>,
    guard: Option<FrameLimit>,
    max_frame_len: usize,
}

impl<S> FrameReader for WsReader<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn read_frame(&mut self) -> Result<Option<Bytes>, TransportError> {
        loop {
            // `next` is cancel safe: tungstenite keeps partial messages in its own buffer.
            match self.stream.next().await {
                None => return Ok(None),
                Some(Ok(Message::Binary(frame))) => return Ok(Some(frame)),
                Some(Ok(Message::Text(_))) => {
                    return Err(TransportError::Protocol(
                        "WebSocket text message received; RSocket frames travel in binary messages"
                            .into(),
                    ));
                }
                Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Err(e)) => return read_error(e),
            }
        }
    }

    /// Enforced on frame headers as their bytes arrive, before tungstenite reserves room for the
    /// announced payload, when this transport came from this crate's handshakes.
    fn set_frame_limit(&mut self, limit: Option<usize>) {
        if let Some(guard) = &self.guard {
            guard.set(limit.unwrap_or(self.max_frame_len).min(self.max_frame_len));
        }
    }
}

fn read_error(e: WsError) -> Result<Option<Bytes>, TransportError> {
    match e {
        // Closing without the WebSocket close handshake is how many peers end a connection; it is
        // what EOF at a frame boundary is for a byte stream.
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Ok(None),
        WsError::Io(e) => match e
            .get_ref()
            .and_then(|e| e.downcast_ref::<AnnouncedTooLarge>())
        {
            Some(too_large) => Err(TransportError::FrameTooLarge {
                len: too_large.len,
                limit: too_large.limit,
            }),
            None => Err(TransportError::Io(e)),
        },
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            Err(TransportError::FrameTooLarge {
                len: size,
                limit: max_size,
            })
        }
        other => Err(TransportError::Protocol(format!(
            "WebSocket error: {other}"
        ))),
    }
}

fn write_error(e: WsError) -> TransportError {
    match e {
        WsError::Io(e) => TransportError::Io(e),
        WsError::ConnectionClosed | WsError::AlreadyClosed => TransportError::Io(
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "WebSocket already closed"),
        ),
        other => TransportError::Protocol(format!("WebSocket error: {other}")),
    }
}

/// The sending half of a [`WsTransport`].
#[derive(Debug)]
pub struct WsWriter<S> {
    sink: SplitSink<WebSocketStream<S>, Message>,
    max_frame_len: usize,
}

impl<S> FrameWriter for WsWriter<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn write_frame(&mut self, frame: Bytes) -> Result<(), TransportError> {
        if frame.len() > self.max_frame_len {
            return Err(TransportError::FrameTooLarge {
                len: frame.len(),
                limit: self.max_frame_len,
            });
        }
        // `feed` only buffers (tungstenite writes out once its write buffer passes the threshold),
        // so consecutive frames share syscalls until `flush`.
        self.sink
            .feed(Message::Binary(frame))
            .await
            .map_err(write_error)
    }

    async fn flush(&mut self) -> Result<(), TransportError> {
        self.sink.flush().await.map_err(write_error)
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.sink.close().await.map_err(write_error)
    }
}

/// Runs the client side of the WebSocket upgrade for `url` over `stream`.
pub(crate) async fn client_handshake<S>(
    stream: S,
    url: &str,
    config: &FramingConfig,
) -> Result<BoxTransport, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let guard = FrameLimit::new(config.frame_len_limit());
    let stream = HeaderGuard::new(stream, guard.clone(), Side::Client);
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config(config)))
            .await
            .map_err(|e| match e {
                WsError::Io(e) => TransportError::Io(e),
                other => TransportError::Handshake {
                    what: format!("WebSocket upgrade to {url}"),
                    source: Box::new(other),
                },
            })?;
    Ok(BoxTransport::new(WsTransport::guarded(ws, config, guard)))
}

/// Runs the server side of the WebSocket upgrade over `stream`, whatever the request path.
pub(crate) async fn server_handshake<S>(
    stream: S,
    config: &FramingConfig,
) -> Result<BoxTransport, TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let guard = FrameLimit::new(config.frame_len_limit());
    let stream = HeaderGuard::new(stream, guard.clone(), Side::Server);
    let ws = tokio_tungstenite::accept_async_with_config(stream, Some(ws_config(config)))
        .await
        .map_err(|e| match e {
            WsError::Io(e) => TransportError::Io(e),
            other => TransportError::Handshake {
                what: "WebSocket upgrade".into(),
                source: Box::new(other),
            },
        })?;
    Ok(BoxTransport::new(WsTransport::guarded(ws, config, guard)))
}
