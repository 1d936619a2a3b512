//! Where a client encodes its commands: one buffer that each command's bytes are split off.
//!
//! A command's bytes are kept for a retry after REJECTED while a copy goes to the transport.
//! Bytes made from a `Vec` allocate a shared header on their first clone; bytes split off a
//! shared buffer already have one, so that clone is a reference count, and the buffer is reused
//! in place once the commands split off it are dropped (the usual case when commands finish in
//! order). A command still in flight keeps its whole buffer alive, so the buffer is small: the
//! memory held is at most one buffer per command in flight.

use std::sync::{Mutex, PoisonError};

use bytes::{Bytes, BytesMut};

/// Bytes of one arena buffer: room for dozens of the usual commands (under 200 bytes).
const ARENA_BYTES: usize = 8 * 1024;
/// Room left below which a new buffer is taken before writing, for writers that do not say
/// how much they write (they may reserve it themselves, as a `BytesMut` grows anyway).
const MIN_ROOM: usize = 512;

/// The encoding buffer of one client.
#[derive(Debug, Default)]
pub(crate) struct CommandArena {
    buf: Mutex<BytesMut>,
}

impl CommandArena {
    /// The bytes `write` puts into a buffer with room for `len` bytes (a hint: it may write
    /// more or less).
    pub(crate) fn encode(&self, len: usize, write: impl FnOnce(&mut BytesMut)) -> Bytes {
        // Nothing panics while the lock is held but `write`, after which the buffer is cleared.
        let mut buf = self.buf.lock().unwrap_or_else(PoisonError::into_inner);
        buf.clear();
        if buf.capacity() < len.max(MIN_ROOM) {
            buf.reserve(len.max(ARENA_BYTES));
        }
        write(&mut buf);
        buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_their_own_bytes() {
        let arena = CommandArena::default();
        let a = arena.encode(3, |b| b.extend_from_slice(b"abc"));
        let b = arena.encode(2, |b| b.extend_from_slice(b"de"));
        let c = arena.encode(0, |b| b.extend_from_slice(&[7; 100]));
        assert_eq!(&a[..], b"abc");
        assert_eq!(&b[..], b"de");
        assert_eq!(&c[..], &[7; 100][..]);
        let empty = arena.encode(0, |_| {});
        assert!(empty.is_empty());
    }

    #[test]
    fn commands_larger_than_a_buffer_and_many_in_flight_stay_intact() {
        let arena = CommandArena::default();
        let mut kept = Vec::new();
        for i in 0..2_000u32 {
            let len = if i % 97 == 0 {
                ARENA_BYTES * 2 + 5
            } else {
                40 + (i as usize % 60)
            };
            let byte = (i % 251) as u8;
            let bytes = arena.encode(len, |b| b.extend(std::iter::repeat_n(byte, len)));
            assert_eq!(bytes.len(), len);
            // A clone shares the bytes (the retry copy).
            let retry = bytes.clone();
            assert_eq!(retry.as_ptr(), bytes.as_ptr());
            if i % 3 == 0 {
                kept.push((byte, bytes));
            }
        }
        // Buffers reused or replaced never overwrote the commands still held.
        for (byte, bytes) in kept {
            assert!(bytes.iter().all(|b| *b == byte));
        }
    }

    #[test]
    fn a_writer_that_panics_leaves_the_arena_usable() {
        let arena = CommandArena::default();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            arena.encode(4, |b| {
                b.extend_from_slice(b"half");
                panic!("writer failed");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(&arena.encode(2, |b| b.extend_from_slice(b"ok"))[..], b"ok");
    }
}
