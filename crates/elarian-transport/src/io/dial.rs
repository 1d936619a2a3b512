//! [`Dialer`]: a client's own way of opening a transport, instead of dialling an [`Endpoint`].
//!
//! [`Endpoint`]: super::Endpoint

use std::future::Future;
use std::pin::Pin;

use super::{BoxTransport, TransportError};

/// What [`Dialer::dial`] returns.
pub type DialFuture = Pin<Box<dyn Future<Output = Result<BoxTransport, TransportError>> + Send>>;

/// Opens a new transport to a server each time it is asked, for a client that does not reach
/// its server through an [`Endpoint`](super::Endpoint): a server in the same process (an
/// in-memory [`pair`](super::memory::pair)), a tunnel, a socket the application set up itself.
///
/// A client calls [`dial`](Dialer::dial) for its first connection and again for every
/// reconnection and resumption, so each call must yield a fresh transport ready for the RSocket
/// SETUP (or RESUME). The caller bounds the call with its connect timeout; an implementation
/// need not time out itself.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use elarian_transport::io::{BoxTransport, DialFuture, Dialer, memory};
///
/// /// Hands the far end of every new in-memory pair to a server task through a channel.
/// #[derive(Debug)]
/// struct Loopback(tokio::sync::mpsc::UnboundedSender<memory::MemoryTransport>);
///
/// impl Dialer for Loopback {
///     fn dial(&self) -> DialFuture {
///         let (near, far) = memory::pair(64);
///         let sent = self.0.send(far);
///         Box::pin(async move {
///             sent.map_err(|_| std::io::Error::from(std::io::ErrorKind::ConnectionRefused))?;
///             Ok(BoxTransport::new(near))
///         })
///     }
/// }
///
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let dialer: Arc<dyn Dialer> = Arc::new(Loopback(tx));
/// let _client_end = dialer.dial().await.unwrap();
/// assert!(rx.recv().await.is_some());
/// assert_eq!(dialer.describe(), "custom dialer");
/// # });
/// ```
pub trait Dialer: Send + Sync + 'static {
    /// Opens a new transport.
    fn dial(&self) -> DialFuture;

    /// What the dialer connects to, for logs and `Debug` output (default `custom dialer`).
    /// Must not contain secrets.
    fn describe(&self) -> String {
        "custom dialer".to_owned()
    }
}
