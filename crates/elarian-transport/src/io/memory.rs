//! An in-memory transport pair, for tests and for running a client and a server in one process.
//!
//! ```
//! # tokio_test_block_on(async {
//! use bytes::Bytes;
//! use elarian_transport::io::{FrameReader, FrameTransport, FrameWriter, memory};
//!
//! let (a, b) = memory::pair(16);
//! let (_ra, mut wa) = a.split();
//! let (mut rb, _wb) = b.split();
//! wa.write_frame(Bytes::from_static(b"frame")).await.unwrap();
//! wa.flush().await.unwrap();
//! assert_eq!(rb.read_frame().await.unwrap().unwrap(), Bytes::from_static(b"frame"));
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{FrameReader, FrameTransport, FrameWriter, TransportError};
use crate::frame::MAX_FRAME_LEN;

/// One end of an in-memory connection.
#[derive(Debug)]
pub struct MemoryTransport {
    tx: mpsc::Sender<Bytes>,
    rx: mpsc::Receiver<Bytes>,
}

/// Two connected ends; each direction buffers at most `capacity` frames (at least 1).
///
/// Dropping (or closing the writer of) one end makes the other end read `Ok(None)`. Like the
/// byte-stream transports, a reader refuses a frame larger than [`MAX_FRAME_LEN`] (or the lower
/// limit set with [`FrameReader::set_frame_limit`]) with [`TransportError::FrameTooLarge`].
pub fn pair(capacity: usize) -> (MemoryTransport, MemoryTransport) {
    let capacity = capacity.max(1);
    let (tx_a, rx_b) = mpsc::channel(capacity);
    let (tx_b, rx_a) = mpsc::channel(capacity);
    (
        MemoryTransport { tx: tx_a, rx: rx_a },
        MemoryTransport { tx: tx_b, rx: rx_b },
    )
}

/// Receiving half of a [`MemoryTransport`].
#[derive(Debug)]
pub struct MemoryReader {
    rx: mpsc::Receiver<Bytes>,
    /// The largest frame accepted; a server lowers it until the SETUP has arrived.
    limit: usize,
}

impl MemoryReader {
    // The frame is already in memory, so the limit cannot save buffering it; it keeps a peer
    // in this process to the same frames a socket peer may send, so that what the engine
    // accepts does not depend on the transport.
    fn checked(&self, frame: Option<Bytes>) -> Result<Option<Bytes>, TransportError> {
        match frame {
            Some(frame) if frame.len() > self.limit => Err(TransportError::FrameTooLarge {
                len: frame.len(),
                limit: self.limit,
            }),
            frame => Ok(frame),
        }
    }
}

/// Sending half of a [`MemoryTransport`].
#[derive(Debug)]
pub struct MemoryWriter(Option<mpsc::Sender<Bytes>>);

impl FrameTransport for MemoryTransport {
    type Reader = MemoryReader;
    type Writer = MemoryWriter;
    fn split(self) -> (MemoryReader, MemoryWriter) {
        let reader = MemoryReader {
            rx: self.rx,
            limit: MAX_FRAME_LEN,
        };
        (reader, MemoryWriter(Some(self.tx)))
    }
}

impl FrameReader for MemoryReader {
    async fn read_frame(&mut self) -> Result<Option<Bytes>, TransportError> {
        let frame = self.rx.recv().await;
        self.checked(frame)
    }

    fn try_read_frame(&mut self) -> Option<Result<Option<Bytes>, TransportError>> {
        match self.rx.try_recv() {
            Ok(frame) => Some(self.checked(Some(frame))),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Ok(None)),
        }
    }

    fn poll_read_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Option<std::task::Poll<Result<Option<Bytes>, TransportError>>> {
        Some(self.rx.poll_recv(cx).map(|frame| self.checked(frame)))
    }

    fn set_frame_limit(&mut self, limit: Option<usize>) {
        self.limit = limit.unwrap_or(MAX_FRAME_LEN);
    }
}

fn closed() -> TransportError {
    TransportError::Io(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "in-memory peer closed",
    ))
}

impl MemoryWriter {
    fn flushed(&self) -> Result<(), TransportError> {
        if self.0.is_some() {
            Ok(())
        } else {
            Err(closed())
        }
    }
}

impl FrameWriter for MemoryWriter {
    async fn write_frame(&mut self, frame: Bytes) -> Result<(), TransportError> {
        match &self.0 {
            Some(tx) => tx.send(frame).await.map_err(|_| closed()),
            None => Err(closed()),
        }
    }

    fn try_write_frame(&mut self, frame: Bytes) -> Result<Option<Bytes>, TransportError> {
        match &self.0 {
            Some(tx) => match tx.try_send(frame) {
                Ok(()) => Ok(None),
                Err(mpsc::error::TrySendError::Full(frame)) => Ok(Some(frame)),
                Err(mpsc::error::TrySendError::Closed(_)) => Err(closed()),
            },
            None => Err(closed()),
        }
    }

    async fn flush(&mut self) -> Result<(), TransportError> {
        self.flushed()
    }

    // Every frame is with the peer once queued: there is never anything to wait for.
    fn try_flush(&mut self) -> Option<Result<(), TransportError>> {
        Some(self.flushed())
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.0 = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::BoxTransport;

    #[tokio::test]
    async fn frames_above_the_limit_are_refused_like_on_a_socket() {
        let (a, b) = pair(4);
        let (_ra, mut wa) = a.split();
        let (mut rb, _wb) = BoxTransport::new(b).split();
        rb.set_frame_limit(Some(8));
        wa.write_frame(Bytes::from_static(b"12345678"))
            .await
            .unwrap();
        wa.write_frame(Bytes::from_static(b"123456789"))
            .await
            .unwrap();
        assert_eq!(rb.read_frame().await.unwrap().unwrap().len(), 8);
        assert!(matches!(
            rb.read_frame().await,
            Err(TransportError::FrameTooLarge { len: 9, limit: 8 })
        ));
        // Back to the configured limit: a frame as large as a 24-bit length allows passes.
        rb.set_frame_limit(None);
        wa.write_frame(Bytes::from(vec![0; MAX_FRAME_LEN]))
            .await
            .unwrap();
        assert_eq!(rb.read_frame().await.unwrap().unwrap().len(), MAX_FRAME_LEN);
        wa.write_frame(Bytes::from(vec![0; MAX_FRAME_LEN + 1]))
            .await
            .unwrap();
        assert!(matches!(
            rb.read_frame().await,
            Err(TransportError::FrameTooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn a_boxed_reader_waits_for_frames_and_sees_the_close() {
        let (a, b) = pair(1);
        let (_ra, mut wa) = BoxTransport::new(a).split();
        let (mut rb, _wb) = BoxTransport::new(b).split();
        let reading = tokio::spawn(async move {
            let first = rb.read_frame().await.unwrap();
            let end = rb.read_frame().await.unwrap();
            (first, end)
        });
        tokio::task::yield_now().await;
        wa.write_frame(Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(wa.try_flush().map(|r| r.is_ok()), Some(true));
        wa.close().await.unwrap();
        assert!(wa.try_flush().is_some_and(|r| r.is_err()));
        let (first, end) = reading.await.unwrap();
        assert_eq!(first, Some(Bytes::from_static(b"x")));
        assert_eq!(end, None);
    }
}
