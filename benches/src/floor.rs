//! The floors of this machine: a raw TCP ping-pong (one message in flight) and a raw pipelined
//! echo (many in flight) between the client runtime and the server runtime, with no protocol,
//! no TLS and no work per message.
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

/// Starts an echo server; call it on the server runtime (it spawns its tasks there). It sends
/// back every byte it reads, as it reads them, so one read and one write serve all the
/// messages that arrived together: the least work an echo over TCP can do. It serves until the
/// runtime shuts down.
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
                let mut buf = vec![0u8; 64 * 1024];
                // Ends when the client closes its side, or on an error.
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    if stream.write_all(&buf[..n]).await.is_err() {
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

/// Sends `messages` messages to the echo server at `addr` keeping `in_flight` of them
/// outstanding: whenever answers arrive, as many new messages go out in one write. This is the
/// most any client could do at that concurrency in this layout, within `bound` in all.
pub async fn pipelined(
    addr: SocketAddr,
    messages: u64,
    in_flight: usize,
    bound: Duration,
) -> Result<Rate> {
    let run = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::new(format!("pipelined echo: connect: {e}")))?;
        stream
            .set_nodelay(true)
            .map_err(|e| BenchError::new(format!("pipelined echo: nodelay: {e}")))?;
        let batch = vec![7u8; MESSAGE_BYTES * in_flight.max(1)];
        let mut buf = vec![0u8; 64 * 1024];
        // Warm-up: the connection and both tasks' first wake-ups stay out of the figure.
        pipeline(
            &mut stream,
            &batch,
            &mut buf,
            in_flight,
            (messages / 10).max(1),
        )
        .await?;
        let stopwatch = Rate::start();
        pipeline(&mut stream, &batch, &mut buf, in_flight, messages).await?;
        Ok(stopwatch.stop(messages))
    };
    tokio::time::timeout(bound, run)
        .await
        .map_err(|_| BenchError::new(format!("pipelined echo did not finish within {bound:?}")))?
}

/// One pipelined run of `count` messages over `stream`; `batch` holds `in_flight` messages.
async fn pipeline(
    stream: &mut TcpStream,
    batch: &[u8],
    buf: &mut [u8],
    in_flight: usize,
    count: u64,
) -> Result<()> {
    let io = |e: std::io::Error| BenchError::new(format!("pipelined echo: {e}"));
    let message = MESSAGE_BYTES as u64;
    let first = count.min(in_flight.max(1) as u64);
    let mut sent = first;
    stream
        .write_all(&batch[..first as usize * MESSAGE_BYTES])
        .await
        .map_err(io)?;
    // Answers may arrive split anywhere: count whole messages from the bytes received.
    let mut received = 0u64;
    while received < count * message {
        let n = stream.read(buf).await.map_err(io)?;
        if n == 0 {
            return Err(BenchError::new("pipelined echo: the server closed early"));
        }
        let answered = (received + n as u64) / message - received / message;
        received += n as u64;
        let more = answered.min(count - sent);
        if more > 0 {
            stream
                .write_all(&batch[..more as usize * MESSAGE_BYTES])
                .await
                .map_err(io)?;
            sent += more;
        }
    }
    Ok(())
}
