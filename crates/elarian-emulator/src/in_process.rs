//! Clients in the emulator's own process: connections through memory instead of sockets.
//!
//! An app or simulator embedded with the emulator (the examples, tests) can reach it over
//! loopback TCP, but then every frame costs system calls and wake-ups in the kernel on both
//! sides. [`InProcessDialer`] hands frames over through bounded in-memory channels instead
//! ([`memory::pair`]); the emulator's RSocket server serves its end of each pair exactly as it
//! serves an accepted TCP connection: same SETUP and authentication, same limits, same
//! accounting, closed the same way when the emulator stops.

use elarian_transport::Server;
use elarian_transport::io::{BoxTransport, DialFuture, Dialer, TransportError, memory};
use tokio::sync::watch;

/// Frames buffered in each direction of an in-process connection before the writer waits for
/// the reader, as a full socket buffer makes a TCP writer wait. Elarian frames are a few hundred
/// bytes, so this holds about what the kernel buffers of a loopback TCP connection hold; the
/// largest frame the transport accepts (16 MiB) bounds the worst case.
pub const IN_PROCESS_CHANNEL_FRAMES: usize = 512;

/// Opens in-process connections to a running emulator (from
/// [`EmulatorHandle::in_process_dialer`](crate::EmulatorHandle::in_process_dialer)); give it
/// to a client with `ClientConfigBuilder::dialer`.
///
/// Each [`dial`](Dialer::dial) makes a new [`memory::pair`] of
/// [`IN_PROCESS_CHANNEL_FRAMES`] frames each way and serves one end on the emulator. Once the
/// emulator stops, dialling fails with a refused connection, as dialling a closed port does.
#[derive(Clone)]
pub struct InProcessDialer {
    server: Server,
    stopped: watch::Receiver<bool>,
}

impl std::fmt::Debug for InProcessDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessDialer")
            .field("stopped", &*self.stopped.borrow())
            .finish_non_exhaustive()
    }
}

impl InProcessDialer {
    pub(crate) fn new(server: Server, stopped: watch::Receiver<bool>) -> Self {
        InProcessDialer { server, stopped }
    }
}

impl Dialer for InProcessDialer {
    fn dial(&self) -> DialFuture {
        let server = self.server.clone();
        let stopped = *self.stopped.borrow();
        // In the future rather than here: serving spawns a task, which needs the runtime the
        // caller polls the future on.
        Box::pin(async move {
            if stopped {
                return Err(TransportError::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "the in-process emulator has stopped",
                )));
            }
            let (client, served) = memory::pair(IN_PROCESS_CHANNEL_FRAMES);
            server.serve_transport(served);
            Ok(BoxTransport::new(client))
        })
    }

    fn describe(&self) -> String {
        "in-process emulator".to_owned()
    }
}
