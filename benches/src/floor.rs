//! The floor of a round trip on this machine: a raw TCP ping-pong between the client runtime
//! and the server runtime, with no protocol, no TLS and no work per message.
//!
//! With one command in flight, commands per second are one over the round-trip time, and a
//! round trip between two threads that sleep while they wait costs two kernel wake-ups whatever
//! the code above the socket does. This ping-pong measures that cost in the layout of the Rust
//! rows (the same two runtimes), so a run shows how close the SDK gets to it and the most any
//! client could reach.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::workload::Rate;
use crate::{BenchError, Result};

/// Bytes per message each way: about an SDK command's size on the wire.
pub const MESSAGE_BYTES: usize = 128;

/// Starts an echo server of fixed-size messages; call it on the server runtime (it spawns its
/// tasks there). It serves until the runtime shuts down.
pub async fn serve_echo() -> Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| BenchError::new(format!("echo server: bind: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BenchError::new(format!("echo server: local address: {e}")))?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut message = [0u8; MESSAGE_BYTES];
                // Ends when the client closes its side (read_exact fails) or a write fails.
                while stream.read_exact(&mut message).await.is_ok() {
                    if stream.write_all(&message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Sends `round_trips` messages one at a time to the echo server at `addr`, each after the
/// previous one came back, within `bound` in all.
pub async fn ping_pong(addr: SocketAddr, round_trips: u64, bound: Duration) -> Result<Rate> {
    let run = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::new(format!("ping-pong: connect: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| BenchError::new(format!("ping-pong: nodelay: {e}")))?;
        let mut message = [7u8; MESSAGE_BYTES];
        let io = |e: std::io::Error| BenchError::new(format!("ping-pong: {e}"));
        // Warm-up: the connection and both tasks' first wake-ups stay out of the figure.
        for _ in 0..round_trips.min(1_000) / 10 {
            stream.write_all(&message).await.map_err(io)?;
            stream.read_exact(&mut message).await.map_err(io)?;
        }
        let stopwatch = Rate::start();
        for _ in 0..round_trips {
            stream.write_all(&message).await.map_err(io)?;
            stream.read_exact(&mut message).await.map_err(io)?;
        }
        Ok(stopwatch.stop(round_trips))
    };
    tokio::time::timeout(bound, run)
        .await
        .map_err(|_| BenchError::new(format!("ping-pong did not finish within {bound:?}")))?
}
