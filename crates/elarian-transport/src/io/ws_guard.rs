//! A byte-level watch on WebSocket frame headers, below tungstenite.
//!
//! tungstenite reserves a buffer of the length a frame header announces as soon as it has parsed
//! the header, up to its configured maximum. A server must refuse a large frame from a peer that
//! has not sent its SETUP yet *before* that reservation, so the limit has to be enforced on the
//! bytes as they arrive: [`HeaderGuard`] follows the framing of the incoming byte stream (the HTTP
//! upgrade message, then frame headers and payloads) and fails the read that carries a header
//! announcing more than the current limit. The limit is shared with the reader half
//! ([`FrameLimit`]) so that the server can lower it until the SETUP has arrived.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest WebSocket frame payload currently accepted, shared between the reader half of a
/// transport (which sets it) and the [`HeaderGuard`] under tungstenite (which enforces it).
#[derive(Clone, Debug)]
pub(crate) struct FrameLimit(Arc<AtomicUsize>);

impl FrameLimit {
    pub(crate) fn new(limit: usize) -> Self {
        FrameLimit(Arc::new(AtomicUsize::new(limit)))
    }

    pub(crate) fn set(&self, limit: usize) {
        self.0.store(limit, Ordering::Relaxed);
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// The error a guarded read fails with; [`super::ws`] turns it into
/// [`TransportError::FrameTooLarge`](super::TransportError::FrameTooLarge).
#[derive(Debug, thiserror::Error)]
#[error("WebSocket frame of {len} bytes announced, more than the limit of {limit}")]
pub(crate) struct AnnouncedTooLarge {
    pub(crate) len: usize,
    pub(crate) limit: usize,
}

/// Which end of the upgrade this stream is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// Reads a request, then frames. A client must wait for the response before sending frames
    /// (RFC 6455, section 4.1), so bytes following the request in the same read are refused:
    /// otherwise they would reach tungstenite's buffer while the limit for a peer without SETUP
    /// is not in force yet.
    Server,
    /// Reads a response, then frames; a server may send frames right behind its response.
    Client,
}

/// Where the incoming byte stream is.
#[derive(Debug)]
enum Scan {
    /// In the HTTP upgrade message; `matched` bytes of its CRLFCRLF terminator seen.
    Http { matched: usize },
    /// In a frame header; `have` bytes of it in `buf` (a header is at most 14 bytes).
    Header { buf: [u8; 14], have: usize },
    /// In a frame payload.
    Payload { remaining: u64 },
}

const TERMINATOR: &[u8; 4] = b"\r\n\r\n";

impl Scan {
    fn header() -> Self {
        Scan::Header {
            buf: [0; 14],
            have: 0,
        }
    }

    /// Follows `bytes`; fails on a header announcing more than `limit`, or on bytes a server
    /// must not receive yet.
    fn feed(&mut self, mut bytes: &[u8], limit: usize, side: Side) -> io::Result<()> {
        while let Some((&b, rest)) = bytes.split_first() {
            match self {
                Scan::Http { matched } => {
                    bytes = rest;
                    *matched = if b == TERMINATOR[*matched] {
                        *matched + 1
                    } else {
                        usize::from(b == b'\r')
                    };
                    if *matched == TERMINATOR.len() {
                        if side == Side::Server && !bytes.is_empty() {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "WebSocket data sent before the upgrade response",
                            ));
                        }
                        *self = Scan::header();
                    }
                }
                Scan::Header { buf, have } => {
                    bytes = rest;
                    buf[*have] = b;
                    *have += 1;
                    if *have < 2 {
                        continue;
                    }
                    let extended = match buf[1] & 0x7f {
                        126 => 2,
                        127 => 8,
                        _ => 0,
                    };
                    let mask = if buf[1] & 0x80 != 0 { 4 } else { 0 };
                    if *have < 2 + extended + mask {
                        continue;
                    }
                    let len = match extended {
                        0 => u64::from(buf[1] & 0x7f),
                        2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
                        _ => u64::from_be_bytes([
                            buf[2], buf[3], buf[4], buf[5], buf[6], buf[7], buf[8], buf[9],
                        ]),
                    };
                    if len > limit as u64 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            AnnouncedTooLarge {
                                len: usize::try_from(len).unwrap_or(usize::MAX),
                                limit,
                            },
                        ));
                    }
                    *self = if len == 0 {
                        Scan::header()
                    } else {
                        Scan::Payload { remaining: len }
                    };
                }
                Scan::Payload { remaining } => {
                    let n = bytes
                        .len()
                        .min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    bytes = &bytes[n..];
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        *self = Scan::header();
                    }
                }
            }
        }
        Ok(())
    }
}

/// A stream whose incoming bytes are checked against a [`FrameLimit`] before tungstenite sees
/// them; writes pass through.
#[derive(Debug)]
pub(crate) struct HeaderGuard<S> {
    inner: S,
    limit: FrameLimit,
    side: Side,
    scan: Scan,
}

impl<S> HeaderGuard<S> {
    pub(crate) fn new(inner: S, limit: FrameLimit, side: Side) -> Self {
        HeaderGuard {
            inner,
            limit,
            side,
            scan: Scan::Http { matched: 0 },
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeaderGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let limit = this.limit.get();
        this.scan.feed(&buf.filled()[before..], limit, this.side)?;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeaderGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(chunks: &[&[u8]], limit: usize, side: Side) -> io::Result<Scan> {
        let mut scan = Scan::Http { matched: 0 };
        for chunk in chunks {
            scan.feed(chunk, limit, side)?;
        }
        Ok(scan)
    }

    fn too_large(e: &io::Error) -> Option<(usize, usize)> {
        e.get_ref()
            .and_then(|e| e.downcast_ref::<AnnouncedTooLarge>())
            .map(|e| (e.len, e.limit))
    }

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn follows_frames_of_every_length_form_split_anywhere() {
        // 5-byte masked frame, 300-byte unmasked frame (16-bit length), 70,000-byte masked frame
        // (64-bit length), then an empty frame.
        let mut stream = REQUEST.to_vec();
        stream.extend_from_slice(&[0x82, 0x85, 1, 2, 3, 4]);
        stream.extend_from_slice(&[0; 5]);
        stream.extend_from_slice(&[0x82, 126, 0x01, 0x2c]);
        stream.extend_from_slice(&[0; 300]);
        stream.extend_from_slice(&[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0x11, 0x70, 9, 9, 9, 9]);
        stream.extend_from_slice(&[0; 70_000]);
        stream.extend_from_slice(&[0x82, 0x00]);
        for split in [1, 2, 3, 7, 13, 4096] {
            let chunks: Vec<&[u8]> = stream.chunks(split).collect();
            let scan = scan_all(&chunks, 70_000, Side::Client).unwrap();
            assert!(
                matches!(scan, Scan::Header { have: 0, .. }),
                "split {split}: {scan:?}"
            );
        }
    }

    #[test]
    fn a_header_announcing_more_than_the_limit_fails_before_its_payload() {
        let mut stream = REQUEST.to_vec();
        stream.extend_from_slice(&[0x82, 0xff, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3, 4]);
        let e = scan_all(
            &[REQUEST, &stream[REQUEST.len()..]],
            16 * 1024,
            Side::Server,
        )
        .unwrap_err();
        assert_eq!(too_large(&e), Some((16 * 1024 * 1024, 16 * 1024)));
    }

    #[test]
    fn a_server_refuses_data_pipelined_behind_the_request() {
        let mut stream = REQUEST.to_vec();
        stream.extend_from_slice(&[0x82, 0x00]);
        let e = scan_all(&[&stream], 1024, Side::Server).unwrap_err();
        assert!(e.to_string().contains("before the upgrade response"), "{e}");
        // A client accepts frames right behind the response.
        scan_all(&[&stream], 1024, Side::Client).unwrap();
    }

    #[test]
    fn a_partial_terminator_does_not_end_the_http_message() {
        let scan = scan_all(
            &[b"GET / HTTP/1.1\r\nA: \r\r\n", b"\rB\r\n\r\n"],
            10,
            Side::Server,
        )
        .unwrap();
        assert!(matches!(scan, Scan::Header { have: 0, .. }), "{scan:?}");
    }
}
