//! Server-side listeners that turn incoming connections into [`BoxTransport`]s.
//!
//! TLS and WebSocket connections need a handshake before they carry frames. A peer that stalls its
//! handshake must not hold up the others, so those listeners run an accept loop in a background
//! task: every handshake runs in its own task under a timeout, at most a configured number at once,
//! and finished transports wait in a bounded queue for [`accept`](TlsListener::accept). Dropping
//! the listener stops the loop and every handshake in progress.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::ToSocketAddrs;

use super::{BoxTransport, FramingConfig, TcpTransport, TransportError};

/// Settings shared by all listeners.
///
/// ```
/// use std::time::Duration;
/// use elarian_transport::io::ListenerConfig;
///
/// let config = ListenerConfig::default()
///     .handshake_timeout(Duration::from_secs(5))
///     .max_concurrent_handshakes(64);
/// # let _ = config;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ListenerConfig {
    framing: FramingConfig,
    handshake_timeout: Duration,
    max_concurrent_handshakes: usize,
    accept_queue: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            framing: FramingConfig::default(),
            handshake_timeout: Duration::from_secs(10),
            max_concurrent_handshakes: 256,
            accept_queue: 64,
        }
    }
}

impl ListenerConfig {
    /// Framing limits for the accepted transports.
    pub fn framing(mut self, framing: FramingConfig) -> Self {
        self.framing = framing;
        self
    }

    /// A TLS or WebSocket handshake that takes longer is abandoned and its connection closed.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// At most this many handshakes run at once (at least 1); further connections wait in the
    /// operating system's backlog.
    pub fn max_concurrent_handshakes(mut self, n: usize) -> Self {
        self.max_concurrent_handshakes = n.max(1);
        self
    }

    /// At most this many handshaken transports wait for `accept` (at least 1).
    pub fn accept_queue(mut self, n: usize) -> Self {
        self.accept_queue = n.max(1);
        self
    }
}

/// Accepts plain TCP connections.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), elarian_transport::io::TransportError> {
/// use elarian_transport::io::TcpListener;
///
/// let mut listener = TcpListener::bind("127.0.0.1:0").await?;
/// println!("listening on {}", listener.local_addr()?);
/// # let _ = &mut listener;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TcpListener {
    inner: tokio::net::TcpListener,
    framing: FramingConfig,
}

impl TcpListener {
    /// Listens on `addr` with default settings.
    pub async fn bind(addr: impl ToSocketAddrs) -> Result<Self, TransportError> {
        Self::bind_with(addr, ListenerConfig::default()).await
    }

    /// Listens on `addr`.
    pub async fn bind_with(
        addr: impl ToSocketAddrs,
        config: ListenerConfig,
    ) -> Result<Self, TransportError> {
        let inner = tokio::net::TcpListener::bind(addr).await?;
        Ok(TcpListener {
            inner,
            framing: config.framing,
        })
    }

    /// Uses a socket that is already listening.
    pub fn from_tokio(listener: tokio::net::TcpListener, config: ListenerConfig) -> Self {
        TcpListener {
            inner: listener,
            framing: config.framing,
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
        Ok(self.inner.local_addr()?)
    }

    /// Waits for the next connection. Cancel safe. An error concerns one connection attempt (or a
    /// passing shortage such as running out of file descriptors); the listener stays usable.
    pub async fn accept(&mut self) -> Result<(BoxTransport, SocketAddr), TransportError> {
        let (stream, peer) = self.inner.accept().await?;
        let transport = TcpTransport::new(stream, self.framing)?;
        Ok((BoxTransport::new(transport), peer))
    }
}

#[cfg(any(feature = "tls", feature = "websocket"))]
use self::handshake::HandshakeQueue;

#[cfg(any(feature = "tls", feature = "websocket"))]
mod handshake {
    use std::future::Future;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::net::TcpStream;
    use tokio::sync::{Semaphore, mpsc};
    use tokio::task::{JoinHandle, JoinSet};

    use super::ListenerConfig;
    use crate::io::{BoxTransport, TransportError};

    /// How long the accept loop waits after the operating system refused an `accept` (for
    /// example when out of file descriptors), so that it does not spin while that lasts.
    const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

    type Accepted = Result<(BoxTransport, SocketAddr), TransportError>;

    /// The background accept loop shared by the listeners with a handshake.
    #[derive(Debug)]
    pub(super) struct HandshakeQueue {
        ready: mpsc::Receiver<Accepted>,
        pub(super) local_addr: SocketAddr,
        task: JoinHandle<()>,
    }

    impl Drop for HandshakeQueue {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl HandshakeQueue {
        pub(super) fn start<H, F>(
            listener: tokio::net::TcpListener,
            config: ListenerConfig,
            handshake: H,
        ) -> Result<Self, TransportError>
        where
            H: Fn(TcpStream) -> F + Send + Sync + 'static,
            F: Future<Output = Result<BoxTransport, TransportError>> + Send + 'static,
        {
            let local_addr = listener.local_addr()?;
            let (tx, ready) = mpsc::channel(config.accept_queue);
            let task = tokio::spawn(accept_loop(listener, config, handshake, tx));
            Ok(HandshakeQueue {
                ready,
                local_addr,
                task,
            })
        }

        pub(super) async fn accept(&mut self) -> Accepted {
            match self.ready.recv().await {
                Some(accepted) => accepted,
                // The loop only ends when this side is dropped, or if it panicked.
                None => Err(TransportError::Io(std::io::Error::other(
                    "listener accept loop stopped",
                ))),
            }
        }
    }

    async fn accept_loop<H, F>(
        listener: tokio::net::TcpListener,
        config: ListenerConfig,
        handshake: H,
        tx: mpsc::Sender<Accepted>,
    ) where
        H: Fn(TcpStream) -> F + Send + Sync + 'static,
        F: Future<Output = Result<BoxTransport, TransportError>> + Send + 'static,
    {
        let permits = Arc::new(Semaphore::new(config.max_concurrent_handshakes));
        // Owning the handshake tasks here means aborting this loop aborts them too.
        let mut handshakes = JoinSet::new();
        loop {
            while handshakes.try_join_next().is_some() {}
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        if tx.send(Err(e.into())).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                },
                () = tx.closed() => return,
            };
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "dropping connection: cannot set TCP_NODELAY");
                continue;
            }
            let shake = handshake(tcp);
            let tx = tx.clone();
            let timeout = config.handshake_timeout;
            handshakes.spawn(async move {
                // Held until the transport is queued, so a full queue also limits handshakes.
                let _permit = permit;
                match tokio::time::timeout(timeout, shake).await {
                    Ok(Ok(transport)) => {
                        tracing::debug!(%peer, "handshake complete");
                        let _ = tx.send(Ok((transport, peer))).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "handshake failed"),
                    Err(_) => tracing::debug!(%peer, ?timeout, "handshake timed out"),
                }
            });
        }
    }
}

#[cfg(feature = "tls")]
pub use self::tls_listener::TlsListener;

#[cfg(feature = "tls")]
mod tls_listener {
    use std::net::SocketAddr;

    use tokio::net::ToSocketAddrs;

    use super::{HandshakeQueue, ListenerConfig};
    use crate::io::{BoxTransport, LengthPrefixed, TlsServerOptions, TransportError};

    /// Accepts TLS-over-TCP connections.
    ///
    /// Handshakes run in background tasks, at most
    /// [`max_concurrent_handshakes`](ListenerConfig::max_concurrent_handshakes) at once and each
    /// within [`handshake_timeout`](ListenerConfig::handshake_timeout), so a slow peer does not
    /// hold up the others. A failed or timed-out handshake is logged at debug level and never
    /// reaches [`accept`](TlsListener::accept).
    #[derive(Debug)]
    pub struct TlsListener {
        queue: HandshakeQueue,
    }

    impl TlsListener {
        /// Listens on `addr` with default settings.
        pub async fn bind(
            addr: impl ToSocketAddrs,
            tls: TlsServerOptions,
        ) -> Result<Self, TransportError> {
            Self::bind_with(addr, tls, ListenerConfig::default()).await
        }

        /// Listens on `addr`. Must be called within a tokio runtime, which runs the accept loop.
        pub async fn bind_with(
            addr: impl ToSocketAddrs,
            tls: TlsServerOptions,
            config: ListenerConfig,
        ) -> Result<Self, TransportError> {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let framing = config.framing;
            let queue = HandshakeQueue::start(listener, config, move |tcp| {
                let tls = tls.clone();
                async move {
                    let stream = tls.handshake(tcp).await?;
                    Ok(BoxTransport::new(LengthPrefixed::new(stream, framing)))
                }
            })?;
            Ok(TlsListener { queue })
        }

        /// The address the listener is bound to.
        pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
            Ok(self.queue.local_addr)
        }

        /// Waits for the next connection whose handshake succeeded. Cancel safe.
        pub async fn accept(&mut self) -> Result<(BoxTransport, SocketAddr), TransportError> {
            self.queue.accept().await
        }
    }
}

#[cfg(feature = "websocket")]
pub use self::ws_listener::WsListener;

#[cfg(feature = "websocket")]
mod ws_listener {
    use std::net::SocketAddr;

    use tokio::net::ToSocketAddrs;

    use super::{HandshakeQueue, ListenerConfig};
    use crate::io::ws::server_handshake;
    use crate::io::{BoxTransport, TransportError};

    /// Accepts WebSocket connections (`ws://`, or `wss://` with [`bind_tls`](WsListener::bind_tls)),
    /// whatever the request path.
    ///
    /// Handshakes run in background tasks, at most
    /// [`max_concurrent_handshakes`](ListenerConfig::max_concurrent_handshakes) at once and each
    /// within [`handshake_timeout`](ListenerConfig::handshake_timeout), so a slow peer does not
    /// hold up the others. A failed or timed-out handshake is logged at debug level and never
    /// reaches [`accept`](WsListener::accept).
    #[derive(Debug)]
    pub struct WsListener {
        queue: HandshakeQueue,
    }

    impl WsListener {
        /// Listens for plain WebSocket connections with default settings.
        pub async fn bind(addr: impl ToSocketAddrs) -> Result<Self, TransportError> {
            Self::bind_with(addr, ListenerConfig::default()).await
        }

        /// Listens for plain WebSocket connections. Must be called within a tokio runtime.
        pub async fn bind_with(
            addr: impl ToSocketAddrs,
            config: ListenerConfig,
        ) -> Result<Self, TransportError> {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let framing = config.framing;
            let queue = HandshakeQueue::start(listener, config, move |tcp| async move {
                server_handshake(tcp, &framing).await
            })?;
            Ok(WsListener { queue })
        }

        /// Listens for WebSocket-over-TLS connections with default settings.
        #[cfg(feature = "tls")]
        pub async fn bind_tls(
            addr: impl ToSocketAddrs,
            tls: crate::io::TlsServerOptions,
        ) -> Result<Self, TransportError> {
            Self::bind_tls_with(addr, tls, ListenerConfig::default()).await
        }

        /// Listens for WebSocket-over-TLS connections. Must be called within a tokio runtime.
        #[cfg(feature = "tls")]
        pub async fn bind_tls_with(
            addr: impl ToSocketAddrs,
            tls: crate::io::TlsServerOptions,
            config: ListenerConfig,
        ) -> Result<Self, TransportError> {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let framing = config.framing;
            let queue = HandshakeQueue::start(listener, config, move |tcp| {
                let tls = tls.clone();
                async move {
                    let stream = tls.handshake(tcp).await?;
                    server_handshake(stream, &framing).await
                }
            })?;
            Ok(WsListener { queue })
        }

        /// The address the listener is bound to.
        pub fn local_addr(&self) -> Result<SocketAddr, TransportError> {
            Ok(self.queue.local_addr)
        }

        /// Waits for the next connection whose handshakes succeeded. Cancel safe.
        pub async fn accept(&mut self) -> Result<(BoxTransport, SocketAddr), TransportError> {
            self.queue.accept().await
        }
    }
}
