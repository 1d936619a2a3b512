//! Length-prefixed framing over byte streams, and the plain TCP transport built on it.
//!
//! RSocket over a byte stream puts a 24-bit big-endian length in front of every frame. The same
//! framing serves TCP, TLS and any other `AsyncRead + AsyncWrite` stream (for example an in-memory
//! duplex in tests), so it is generic here and TCP only adds socket setup.
//!
//! Reading is zero-copy: bytes land in one large [`BytesMut`] and each whole frame is split off as a
//! [`Bytes`] that shares that allocation. Writing coalesces: small frames are copied into one buffer
//! and large ones are queued by reference, and everything goes out in few vectored writes when the
//! caller flushes or the queue passes a threshold.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{FrameReader, FrameTransport, FrameWriter, TransportError};
use crate::frame::MAX_FRAME_LEN;

/// Size of the length prefix in front of every frame on a byte stream.
const PREFIX_LEN: usize = 3;

/// Frames up to this size are copied into the write buffer; larger ones are written from their own
/// allocation, which saves a copy that would cost more than the extra `IoSlice`.
const COPY_MAX: usize = 4 * 1024;

/// At most this many buffers go into one vectored write (Linux caps `IOV_MAX` at 1024).
const MAX_IOVECS: usize = 64;

/// Keeps a read from being issued with almost no room, which would cost one syscall per few bytes.
const MIN_READ_SPACE: usize = 4 * 1024;

/// The least a read buffer grows by for a frame still arriving (see [`split_length_prefixed`]).
const GROWTH_STEP: usize = 64 * 1024;

/// Tuning and limits for length-prefixed framing.
///
/// ```
/// use elarian_transport::io::FramingConfig;
///
/// let config = FramingConfig::default().max_frame_len(1 << 20).write_flush_threshold(32 * 1024);
/// assert_eq!(config.frame_len_limit(), 1 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingConfig {
    max_frame_len: usize,
    read_buffer_capacity: usize,
    write_flush_threshold: usize,
}

impl Default for FramingConfig {
    fn default() -> Self {
        FramingConfig {
            max_frame_len: MAX_FRAME_LEN,
            read_buffer_capacity: 64 * 1024,
            write_flush_threshold: 64 * 1024,
        }
    }
}

impl FramingConfig {
    /// The largest frame accepted in either direction. Values above [`MAX_FRAME_LEN`] (what a 24-bit
    /// prefix can express) are lowered to it.
    pub fn max_frame_len(mut self, len: usize) -> Self {
        self.max_frame_len = len.min(MAX_FRAME_LEN);
        self
    }

    /// How many bytes the reader asks the operating system for at a time (at least 4 KiB).
    pub fn read_buffer_capacity(mut self, bytes: usize) -> Self {
        self.read_buffer_capacity = bytes.max(MIN_READ_SPACE);
        self
    }

    /// Once this many bytes are queued, the writer writes them out without waiting for a flush.
    pub fn write_flush_threshold(mut self, bytes: usize) -> Self {
        self.write_flush_threshold = bytes.max(1);
        self
    }

    /// The largest frame accepted.
    pub fn frame_len_limit(&self) -> usize {
        self.max_frame_len
    }

    /// The read buffer capacity.
    pub fn read_buffer_size(&self) -> usize {
        self.read_buffer_capacity
    }

    /// The write flush threshold.
    pub fn flush_threshold(&self) -> usize {
        self.write_flush_threshold
    }
}

/// Splits whole frames out of a buffer of received bytes.
///
/// Returns `Ok(None)` when the buffer does not yet hold a whole frame; it then has room reserved for
/// more of that frame: as much again as has arrived (at least 64 KiB), never the whole
/// announced length at once, so that a peer announcing a large frame and sending little holds
/// little memory. A large frame still arrives in a few doublings.
///
/// This is the sans-IO core of [`LengthPrefixedReader`], public so that it can be fuzzed and reused.
///
/// ```
/// use bytes::BytesMut;
/// use elarian_transport::io::split_length_prefixed;
///
/// let mut buf = BytesMut::from(&[0, 0, 2, b'h', b'i', 0, 0][..]);
/// assert_eq!(split_length_prefixed(&mut buf, 1024).unwrap().as_deref(), Some(&b"hi"[..]));
/// assert_eq!(split_length_prefixed(&mut buf, 1024).unwrap(), None); // only 2 of 3 prefix bytes
/// ```
pub fn split_length_prefixed(
    buf: &mut BytesMut,
    max_frame_len: usize,
) -> Result<Option<Bytes>, TransportError> {
    if buf.len() < PREFIX_LEN {
        return Ok(None);
    }
    let len = (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
    if len > max_frame_len {
        return Err(TransportError::FrameTooLarge {
            len,
            limit: max_frame_len,
        });
    }
    let total = PREFIX_LEN + len;
    if buf.len() < total {
        let missing = total - buf.len();
        buf.reserve(missing.min(buf.len().max(GROWTH_STEP)));
        return Ok(None);
    }
    buf.advance(PREFIX_LEN);
    Ok(Some(buf.split_to(len).freeze()))
}

/// The receiving half of a length-prefixed byte stream.
#[derive(Debug)]
pub struct LengthPrefixedReader<R> {
    io: R,
    buf: BytesMut,
    /// The limit in force: `configured_max`, or lower while [`FrameReader::set_frame_limit`]
    /// says so.
    max_frame_len: usize,
    configured_max: usize,
    read_capacity: usize,
}

impl<R> LengthPrefixedReader<R> {
    /// Reads frames from `io` with the limits of `config`.
    pub fn new(io: R, config: &FramingConfig) -> Self {
        LengthPrefixedReader {
            io,
            buf: BytesMut::with_capacity(config.read_buffer_capacity),
            max_frame_len: config.max_frame_len,
            configured_max: config.max_frame_len,
            read_capacity: config.read_buffer_capacity,
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> FrameReader for LengthPrefixedReader<R> {
    fn set_frame_limit(&mut self, limit: Option<usize>) {
        self.max_frame_len = limit.map_or(self.configured_max, |l| l.min(self.configured_max));
    }

    fn try_read_frame(&mut self) -> Option<Result<Option<Bytes>, TransportError>> {
        split_length_prefixed(&mut self.buf, self.max_frame_len)
            .transpose()
            .map(|r| r.map(Some))
    }

    /// `read_frame` keeps all its progress in `self` (a read's bytes land in `self.buf` only
    /// once it completed), so polling a fresh one each time is the same as polling one future
    /// throughout; a pending read has registered `cx`'s waker.
    fn poll_read_frame(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Option<std::task::Poll<Result<Option<Bytes>, TransportError>>> {
        let read = std::pin::pin!(self.read_frame());
        Some(read.poll(cx))
    }

    async fn read_frame(&mut self) -> Result<Option<Bytes>, TransportError> {
        loop {
            if let Some(frame) = split_length_prefixed(&mut self.buf, self.max_frame_len)? {
                return Ok(Some(frame));
            }
            if self.buf.capacity() - self.buf.len() < MIN_READ_SPACE {
                // Frames already handed out keep the old allocation alive, so this usually
                // allocates afresh; when they are all gone, `reserve` reuses the memory.
                self.buf.reserve(self.read_capacity);
            }
            // `read_buf` is cancel safe: bytes are in `self.buf` only once the read completed.
            let n = self.io.read_buf(&mut self.buf).await?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(TransportError::TruncatedFrame)
                };
            }
        }
    }
}

/// The sending half of a length-prefixed byte stream.
#[derive(Debug)]
pub struct LengthPrefixedWriter<W> {
    io: W,
    /// Prefixes and small frames not yet moved to `queue`.
    staging: BytesMut,
    /// Chunks to write, in order; the front one may be partly written already.
    queue: VecDeque<Bytes>,
    /// Bytes in `staging` and `queue` together.
    queued: usize,
    max_frame_len: usize,
    flush_threshold: usize,
}

impl<W> LengthPrefixedWriter<W> {
    /// Writes frames to `io` with the limits of `config`.
    pub fn new(io: W, config: &FramingConfig) -> Self {
        LengthPrefixedWriter {
            io,
            staging: BytesMut::with_capacity(config.write_flush_threshold.min(1 << 20) + COPY_MAX),
            queue: VecDeque::new(),
            queued: 0,
            max_frame_len: config.max_frame_len,
            flush_threshold: config.write_flush_threshold,
        }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> LengthPrefixedWriter<W> {
    /// Writes everything queued to `io` (without flushing `io` itself). Cancel safe: progress is
    /// recorded in `self` after every write, so a later call carries on where this one stopped.
    async fn write_queued(&mut self) -> Result<(), TransportError> {
        if !self.staging.is_empty() {
            self.queue.push_back(self.staging.split().freeze());
        }
        while !self.queue.is_empty() {
            // The slices live only inside `poll`: held across an await they would make this
            // future (boxed once per frame by `BoxTransport`) over a kilobyte large.
            let (io, queue) = (&mut self.io, &self.queue);
            let mut written = std::future::poll_fn(|cx| {
                let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                let mut count = 0;
                for (slot, chunk) in slices.iter_mut().zip(queue.iter()) {
                    *slot = IoSlice::new(chunk);
                    count += 1;
                }
                Pin::new(&mut *io).poll_write_vectored(cx, &slices[..count])
            })
            .await?;
            if written == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            self.queued = self.queued.saturating_sub(written);
            while written > 0 {
                let Some(front) = self.queue.front_mut() else {
                    break;
                };
                if written >= front.len() {
                    written -= front.len();
                    self.queue.pop_front();
                } else {
                    front.advance(written);
                    written = 0;
                }
            }
        }
        self.queued = 0;
        Ok(())
    }
}

impl<W> LengthPrefixedWriter<W> {
    /// Appends `frame` to the queue (no I/O).
    fn enqueue(&mut self, frame: Bytes) -> Result<(), TransportError> {
        let len = frame.len();
        if len > self.max_frame_len {
            return Err(TransportError::FrameTooLarge {
                len,
                limit: self.max_frame_len,
            });
        }
        // `len <= MAX_FRAME_LEN` so the cast keeps every bit the prefix needs.
        let prefix = (len as u32).to_be_bytes();
        self.staging.put_slice(&prefix[1..]);
        if len <= COPY_MAX {
            self.staging.put_slice(&frame);
        } else {
            self.queue.push_back(self.staging.split().freeze());
            self.queue.push_back(frame);
        }
        self.queued += PREFIX_LEN + len;
        Ok(())
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> FrameWriter for LengthPrefixedWriter<W> {
    fn try_write_frame(&mut self, frame: Bytes) -> Result<Option<Bytes>, TransportError> {
        if self.queued + PREFIX_LEN + frame.len() >= self.flush_threshold {
            return Ok(Some(frame));
        }
        self.enqueue(frame).map(|()| None)
    }

    async fn write_frame(&mut self, frame: Bytes) -> Result<(), TransportError> {
        self.enqueue(frame)?;
        if self.queued >= self.flush_threshold {
            self.write_queued().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), TransportError> {
        self.write_queued().await?;
        self.io.flush().await?;
        Ok(())
    }

    /// One poll of [`flush`](FrameWriter::flush), which is cancel safe (progress is kept in
    /// `self`, see `write_queued`). The no-op waker is never woken: a flush that has to wait is
    /// dropped and the caller's [`flush`](FrameWriter::flush) registers its own waker.
    fn try_flush(&mut self) -> Option<Result<(), TransportError>> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let flush = std::pin::pin!(self.flush());
        match flush.poll(&mut cx) {
            std::task::Poll::Ready(done) => Some(done),
            std::task::Poll::Pending => None,
        }
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.write_queued().await?;
        self.io.shutdown().await?;
        Ok(())
    }
}

/// Any byte stream carrying length-prefixed frames, for example a TLS stream or an in-memory
/// [`tokio::io::duplex`] pipe.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), elarian_transport::io::TransportError> {
/// use bytes::Bytes;
/// use elarian_transport::io::{FrameReader, FrameTransport, FrameWriter, FramingConfig, LengthPrefixed};
///
/// let (a, b) = tokio::io::duplex(64 * 1024);
/// let (_, mut tx) = LengthPrefixed::new(a, FramingConfig::default()).split();
/// let (mut rx, _) = LengthPrefixed::new(b, FramingConfig::default()).split();
/// tx.write_frame(Bytes::from_static(b"hello")).await?;
/// tx.flush().await?;
/// assert_eq!(rx.read_frame().await?.as_deref(), Some(&b"hello"[..]));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LengthPrefixed<S> {
    stream: S,
    config: FramingConfig,
}

impl<S> LengthPrefixed<S> {
    /// Frames `stream` with the limits of `config`.
    pub fn new(stream: S, config: FramingConfig) -> Self {
        LengthPrefixed { stream, config }
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

impl<S> FrameTransport for LengthPrefixed<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Reader = LengthPrefixedReader<tokio::io::ReadHalf<S>>;
    type Writer = LengthPrefixedWriter<tokio::io::WriteHalf<S>>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        let (read, write) = tokio::io::split(self.stream);
        (
            LengthPrefixedReader::new(read, &self.config),
            LengthPrefixedWriter::new(write, &self.config),
        )
    }
}

#[cfg(feature = "tcp")]
pub use self::socket::TcpTransport;

#[cfg(feature = "tcp")]
mod socket {
    use std::net::SocketAddr;

    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
    use tokio::net::{TcpStream, ToSocketAddrs};

    use super::{FramingConfig, LengthPrefixedReader, LengthPrefixedWriter};
    use crate::io::{FrameTransport, TransportError};

    /// RSocket over plain TCP: a [`TcpStream`] with length-prefixed frames.
    ///
    /// Unlike [`LengthPrefixed`](super::LengthPrefixed) it splits the socket without a lock.
    #[derive(Debug)]
    pub struct TcpTransport {
        stream: TcpStream,
        config: FramingConfig,
    }

    impl TcpTransport {
        /// Wraps a connected socket. Turns Nagle's algorithm off: the writer already coalesces
        /// frames, and delaying small requests would only add latency.
        pub fn new(stream: TcpStream, config: FramingConfig) -> Result<Self, TransportError> {
            stream.set_nodelay(true)?;
            Ok(TcpTransport { stream, config })
        }

        /// Connects to `addr` (trying each resolved address in turn).
        ///
        /// This has no timeout of its own: wrap it in [`tokio::time::timeout`], or use
        /// [`crate::io::connect`].
        pub async fn connect(
            addr: impl ToSocketAddrs,
            config: FramingConfig,
        ) -> Result<Self, TransportError> {
            let stream = TcpStream::connect(addr).await?;
            Self::new(stream, config)
        }

        /// The address of the peer.
        pub fn peer_addr(&self) -> Result<SocketAddr, TransportError> {
            Ok(self.stream.peer_addr()?)
        }
    }

    impl FrameTransport for TcpTransport {
        type Reader = LengthPrefixedReader<OwnedReadHalf>;
        type Writer = LengthPrefixedWriter<OwnedWriteHalf>;

        fn split(self) -> (Self::Reader, Self::Writer) {
            let (read, write) = self.stream.into_split();
            (
                LengthPrefixedReader::new(read, &self.config),
                LengthPrefixedWriter::new(write, &self.config),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_grows_with_bytes_arrived_not_with_the_announced_length() {
        // A peer announces a 16 MiB frame and sends 100 bytes of it.
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff][..]);
        buf.extend_from_slice(&[0u8; 100]);
        assert!(
            split_length_prefixed(&mut buf, MAX_FRAME_LEN)
                .unwrap()
                .is_none()
        );
        assert!(
            buf.capacity() <= 2 * GROWTH_STEP,
            "reserved {}",
            buf.capacity()
        );
        // As bytes arrive, the room grows by doubling, up to the whole frame.
        let mut arrived = buf.len();
        while arrived < 1 << 20 {
            let room = buf.capacity() - buf.len();
            buf.extend_from_slice(&vec![0u8; room]);
            arrived = buf.len();
            assert!(
                split_length_prefixed(&mut buf, MAX_FRAME_LEN)
                    .unwrap()
                    .is_none()
            );
            assert!(buf.capacity() <= 2 * arrived + GROWTH_STEP);
        }
    }

    #[tokio::test]
    async fn a_frame_limit_is_enforced_before_the_frame_is_buffered() {
        let (a, mut b) = tokio::io::duplex(1024);
        let (mut rx, _) = LengthPrefixed::new(a, FramingConfig::default()).split();
        rx.set_frame_limit(Some(1000));
        tokio::io::AsyncWriteExt::write_all(&mut b, &[0x01, 0x00, 0x00, 1, 2, 3])
            .await
            .unwrap();
        assert!(matches!(
            rx.read_frame().await,
            Err(TransportError::FrameTooLarge {
                len: 65536,
                limit: 1000
            })
        ));
        rx.set_frame_limit(None);
        assert_eq!(rx.max_frame_len, MAX_FRAME_LEN);
    }

    fn prefixed(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            let len = f.len() as u32;
            out.extend_from_slice(&len.to_be_bytes()[1..]);
            out.extend_from_slice(f);
        }
        out
    }

    #[test]
    fn splits_whole_frames_and_waits_for_partial_ones() {
        let bytes = prefixed(&[b"abc", b"", b"defgh"]);
        let mut buf = BytesMut::from(&bytes[..bytes.len() - 1]);
        assert_eq!(
            split_length_prefixed(&mut buf, 100).unwrap().as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(
            split_length_prefixed(&mut buf, 100).unwrap().as_deref(),
            Some(&b""[..])
        );
        assert_eq!(split_length_prefixed(&mut buf, 100).unwrap(), None);
        assert!(
            buf.capacity() >= 3 + 5,
            "room reserved for the partial frame"
        );
        buf.put_u8(b'h');
        assert_eq!(
            split_length_prefixed(&mut buf, 100).unwrap().as_deref(),
            Some(&b"defgh"[..])
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_a_length_over_the_limit_before_buffering_it() {
        let mut buf = BytesMut::from(&[0x01, 0x00, 0x00][..]);
        match split_length_prefixed(&mut buf, 1000) {
            Err(TransportError::FrameTooLarge { len, limit }) => {
                assert_eq!((len, limit), (0x01_0000, 1000));
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        assert!(
            buf.capacity() < 0x01_0000,
            "nothing reserved for a rejected frame"
        );
    }

    proptest::proptest! {
        /// However the byte stream is cut into reads, the same frames come out, in order.
        #[test]
        fn any_chunking_yields_the_frames_sent(
            frames in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..600), 0..24),
            chunks in proptest::collection::vec(1usize..700, 1..8),
        ) {
            let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
            let stream = prefixed(&refs);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let mut pos = 0;
            for size in chunks.iter().cycle() {
                if pos >= stream.len() {
                    break;
                }
                let end = (pos + size).min(stream.len());
                buf.put_slice(&stream[pos..end]);
                pos = end;
                while let Some(frame) = split_length_prefixed(&mut buf, 1024).unwrap() {
                    out.push(frame.to_vec());
                }
            }
            proptest::prop_assert!(buf.is_empty());
            proptest::prop_assert_eq!(out, frames);
        }
    }

    #[test]
    fn config_clamps_the_limit_to_what_the_prefix_can_express() {
        let config = FramingConfig::default().max_frame_len(usize::MAX);
        assert_eq!(config.frame_len_limit(), MAX_FRAME_LEN);
    }

    #[tokio::test]
    async fn writer_coalesces_small_frames_and_passes_large_ones_through() {
        let (a, b) = tokio::io::duplex(4 << 20);
        let config = FramingConfig::default();
        let (_, mut tx) = LengthPrefixed::new(a, config).split();
        let (mut rx, _) = LengthPrefixed::new(b, config).split();
        let big = Bytes::from(vec![7u8; 200_000]);
        tx.write_frame(Bytes::from_static(b"one")).await.unwrap();
        tx.write_frame(big.clone()).await.unwrap();
        tx.write_frame(Bytes::from_static(b"two")).await.unwrap();
        tx.flush().await.unwrap();
        assert_eq!(rx.read_frame().await.unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(rx.read_frame().await.unwrap(), Some(big));
        assert_eq!(rx.read_frame().await.unwrap().as_deref(), Some(&b"two"[..]));
        tx.close().await.unwrap();
        assert_eq!(rx.read_frame().await.unwrap(), None);
    }

    /// `BoxTransport` boxes one of these futures per frame: a large one costs an allocation and
    /// a copy of that size on every write.
    #[test]
    fn per_frame_futures_stay_small() {
        let (a, _b) = tokio::io::duplex(1024);
        let (mut rx, mut tx) = LengthPrefixed::new(a, FramingConfig::default()).split();
        let write = tx.write_frame(Bytes::new());
        assert!(
            std::mem::size_of_val(&write) <= 256,
            "{}",
            std::mem::size_of_val(&write)
        );
        drop(write);
        let read = rx.read_frame();
        assert!(
            std::mem::size_of_val(&read) <= 256,
            "{}",
            std::mem::size_of_val(&read)
        );
    }

    #[tokio::test]
    async fn fast_paths_queue_and_hand_out_buffered_frames_without_io() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let config = FramingConfig::default().write_flush_threshold(100);
        let (_, mut tx) = LengthPrefixed::new(a, config).split();
        let (mut rx, _) = LengthPrefixed::new(b, config).split();
        assert_eq!(tx.try_write_frame(Bytes::from_static(b"a")).unwrap(), None);
        assert_eq!(tx.try_write_frame(Bytes::from_static(b"b")).unwrap(), None);
        // This one would pass the flush threshold, so it needs the async path.
        let big = Bytes::from(vec![1u8; 100]);
        assert_eq!(tx.try_write_frame(big.clone()).unwrap(), Some(big.clone()));
        assert!(rx.try_read_frame().is_none(), "nothing buffered yet");
        tx.write_frame(big.clone()).await.unwrap();
        tx.flush().await.unwrap();
        assert_eq!(rx.read_frame().await.unwrap().as_deref(), Some(&b"a"[..]));
        // The rest arrived with the same read: no I/O needed for them.
        assert_eq!(
            rx.try_read_frame().unwrap().unwrap().as_deref(),
            Some(&b"b"[..])
        );
        assert_eq!(rx.try_read_frame().unwrap().unwrap(), Some(big));
        assert!(rx.try_read_frame().is_none());
    }

    #[tokio::test]
    async fn a_boxed_read_dropped_unpolled_loses_no_frame() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (_, mut tx) =
            crate::io::BoxTransport::new(LengthPrefixed::new(a, FramingConfig::default())).split();
        let (mut rx, _) =
            crate::io::BoxTransport::new(LengthPrefixed::new(b, FramingConfig::default())).split();
        for frame in [&b"one"[..], b"two"] {
            tx.write_frame(Bytes::from_static(frame)).await.unwrap();
        }
        tx.flush().await.unwrap();
        assert_eq!(rx.read_frame().await.unwrap().as_deref(), Some(&b"one"[..]));
        // "two" is buffered now; a read future that is never polled must leave it there.
        drop(rx.read_frame());
        assert_eq!(rx.read_frame().await.unwrap().as_deref(), Some(&b"two"[..]));
    }

    #[tokio::test]
    async fn writer_rejects_a_frame_over_its_limit() {
        let (a, _b) = tokio::io::duplex(1024);
        let (_, mut tx) =
            LengthPrefixed::new(a, FramingConfig::default().max_frame_len(10)).split();
        let err = tx
            .write_frame(Bytes::from(vec![0u8; 11]))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            TransportError::FrameTooLarge { len: 11, limit: 10 }
        ));
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_a_truncated_frame() {
        let (mut a, b) = tokio::io::duplex(1024);
        let (mut rx, _) = LengthPrefixed::new(b, FramingConfig::default()).split();
        a.write_all(&[0, 0, 10, 1, 2, 3]).await.unwrap();
        drop(a);
        assert!(matches!(
            rx.read_frame().await,
            Err(TransportError::TruncatedFrame)
        ));
    }
}
