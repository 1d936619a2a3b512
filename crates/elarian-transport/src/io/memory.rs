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

/// One end of an in-memory connection.
#[derive(Debug)]
pub struct MemoryTransport {
    tx: mpsc::Sender<Bytes>,
    rx: mpsc::Receiver<Bytes>,
}

/// Two connected ends; each direction buffers at most `capacity` frames (at least 1).
///
/// Dropping (or closing the writer of) one end makes the other end read `Ok(None)`.
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
pub struct MemoryReader(mpsc::Receiver<Bytes>);

/// Sending half of a [`MemoryTransport`].
#[derive(Debug)]
pub struct MemoryWriter(Option<mpsc::Sender<Bytes>>);

impl FrameTransport for MemoryTransport {
    type Reader = MemoryReader;
    type Writer = MemoryWriter;
    fn split(self) -> (MemoryReader, MemoryWriter) {
        (MemoryReader(self.rx), MemoryWriter(Some(self.tx)))
    }
}

impl FrameReader for MemoryReader {
    async fn read_frame(&mut self) -> Result<Option<Bytes>, TransportError> {
        Ok(self.0.recv().await)
    }

    fn try_read_frame(&mut self) -> Option<Result<Option<Bytes>, TransportError>> {
        match self.0.try_recv() {
            Ok(frame) => Some(Ok(Some(frame))),
            Err(mpsc::error::TryRecvError::Empty) => None,
            Err(mpsc::error::TryRecvError::Disconnected) => Some(Ok(None)),
        }
    }
}

fn closed() -> TransportError {
    TransportError::Io(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "in-memory peer closed",
    ))
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
        if self.0.is_some() {
            Ok(())
        } else {
            Err(closed())
        }
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.0 = None;
        Ok(())
    }
}
