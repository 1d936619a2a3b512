//! Feeds arbitrary bytes to the byte-stream framing and to the RSocket frame decoder.
//!
//! Properties: neither panics; the length-prefix splitter never yields more bytes than it was
//! given nor a frame over its limit; every frame that decodes re-encodes, and decodes back to the
//! same frame.
#![no_main]

use bytes::{BufMut, BytesMut};
use elarian_transport::frame::Frame;
use elarian_transport::io::split_length_prefixed;
use libfuzzer_sys::fuzz_target;

/// A small limit so that the "too large" path is reached as often as the normal one.
const LIMIT: usize = 4096;

fn check_frame(bytes: bytes::Bytes) {
    if let Ok(frame) = Frame::decode(bytes) {
        let encoded = frame
            .to_bytes()
            .expect("a frame that decodes must encode again");
        let again = Frame::decode(encoded).expect("a re-encoded frame must decode");
        assert_eq!(frame, again, "decode(encode(frame)) must be the frame");
    }
}

fuzz_target!(|data: &[u8]| {
    // The whole input as one frame (how WebSocket delivers frames).
    check_frame(bytes::Bytes::copy_from_slice(data));

    // The input as a byte stream, fed in uneven chunks (how TCP and TLS deliver them).
    let mut buf = BytesMut::new();
    let mut consumed = 0usize;
    for chunk in data.chunks(7) {
        buf.put_slice(chunk);
        loop {
            match split_length_prefixed(&mut buf, LIMIT) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= LIMIT);
                    consumed += 3 + frame.len();
                    assert!(consumed <= data.len());
                    check_frame(frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
