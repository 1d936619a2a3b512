//! Starting and stopping an emulator: listeners, the RSocket server, delivery and the scheduler.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use elarian_transport::io::{
    Endpoint, TcpListener, TlsConfigError, TlsListener, TlsServerOptions, TransportError,
    WsListener,
};
use elarian_transport::{Server, ServerConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, EmulatorConfig};
use crate::delivery::{DeliveryLimits, DeliveryStats, Hub};
use crate::engine::Engine;
use crate::in_process::InProcessDialer;
use crate::server::{CommandLimits, handle_incoming};
use crate::store::StoreError;

/// Why an emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data dir could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A listener could not bind.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which listener (tcp, tls, ws).
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: TransportError,
    },
    /// The TLS certificate or key is unusable.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// No listener was configured (and [`EmulatorBuilder::in_process_only`] was not asked for).
    #[error("no listener configured: call tcp(), tls(), ws() or in_process_only()")]
    NoListener,
    /// The web console could not start.
    #[error(transparent)]
    Console(#[from] crate::console::ConsoleError),
}

impl From<TlsConfigError> for EmulatorError {
    fn from(e: TlsConfigError) -> Self {
        EmulatorError::Tls(e.to_string())
    }
}

#[derive(Clone)]
enum Certificate {
    SelfSigned,
    Pem { cert: Vec<u8>, key: Vec<u8> },
}

/// Configures and starts an emulator.
///
/// ```no_run
/// # async fn run() -> Result<(), elarian_emulator::EmulatorError> {
/// use elarian_emulator::Emulator;
///
/// let emulator = Emulator::builder()
///     .tcp(([127, 0, 0, 1], 0))
///     .tls(([127, 0, 0, 1], 0))
///     .start()
///     .await?;
/// println!("tcp at {:?}", emulator.endpoint());
/// emulator.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct EmulatorBuilder {
    tcp: Option<SocketAddr>,
    tls: Option<(SocketAddr, Certificate)>,
    ws: Option<SocketAddr>,
    in_process_only: bool,
    data_dir: Option<PathBuf>,
    config: EmulatorConfig,
    clock: Arc<dyn Clock>,
    delivery: DeliveryLimits,
    max_command_bytes: usize,
    max_concurrent_requests: usize,
    resume_window: Duration,
    console: Option<SocketAddr>,
    console_token: Option<String>,
    console_campaigns: Option<crate::console::CampaignsSource>,
}

/// Entry point: `Emulator::builder()`.
#[derive(Debug)]
pub struct Emulator;

impl Emulator {
    /// A builder with the specification's test configuration, in memory, no listeners yet.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder {
            tcp: None,
            tls: None,
            ws: None,
            in_process_only: false,
            data_dir: None,
            config: EmulatorConfig::default(),
            clock: Arc::new(SystemClock),
            delivery: DeliveryLimits::default(),
            max_command_bytes: 4 * 1024 * 1024,
            max_concurrent_requests: ServerConfig::default().max_inbound_requests,
            resume_window: Duration::from_secs(120),
            console: None,
            console_token: None,
            console_campaigns: None,
        }
    }
}

impl EmulatorBuilder {
    /// Listens for RSocket over plain TCP (24-bit length-prefixed frames).
    pub fn tcp(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.tcp = Some(addr.into());
        self
    }

    /// Listens for RSocket over TLS with a fresh self-signed certificate for `localhost` and
    /// `127.0.0.1` (see [`EmulatorHandle::tls_certificate_pem`]).
    pub fn tls(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.tls = Some((addr.into(), Certificate::SelfSigned));
        self
    }

    /// Listens for RSocket over TLS with the given PEM certificate chain and private key.
    pub fn tls_with_certificate(
        mut self,
        addr: impl Into<SocketAddr>,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls = Some((
            addr.into(),
            Certificate::Pem {
                cert: cert_pem.into(),
                key: key_pem.into(),
            },
        ));
        self
    }

    /// Listens for RSocket over WebSocket (one binary message per frame, any path).
    pub fn ws(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.ws = Some(addr.into());
        self
    }

    /// Lets [`start`](Self::start) succeed without any listener: clients in the same process
    /// then reach the emulator only through [`EmulatorHandle::in_process_dialer`]. Listeners
    /// configured as well are still bound. Without this, starting with no listener fails with
    /// [`EmulatorError::NoListener`], which usually means a forgotten `tcp(...)`.
    pub fn in_process_only(mut self) -> Self {
        self.in_process_only = true;
        self
    }

    /// Keeps state durably in this directory (created if needed).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Uses this configuration instead of the test one.
    pub fn config(mut self, config: EmulatorConfig) -> Self {
        self.config = config;
        self
    }

    /// Most requests each connection may have the emulator handle at once (default 1024, the
    /// transport's default); beyond it requests are refused with RSocket REJECTED, unprocessed,
    /// which the Elarian clients send again. Tight limits exercise the clients' flow control.
    pub fn max_concurrent_requests(mut self, limit: usize) -> Self {
        self.max_concurrent_requests = limit.max(1);
        self
    }

    /// Reads time from this clock (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Limits of notification delivery.
    pub fn delivery_limits(mut self, limits: DeliveryLimits) -> Self {
        self.delivery = limits;
        self
    }

    /// Largest command accepted, in bytes (default 4 MiB); larger ones get REJECTED.
    pub fn max_command_bytes(mut self, bytes: usize) -> Self {
        self.max_command_bytes = bytes;
        self
    }

    /// How long a dropped resumable session is kept for RESUME (default 120 s).
    pub fn resume_window(mut self, window: Duration) -> Self {
        self.resume_window = window;
        self
    }

    /// Serves the web console (see `docs/emulator.md`) on this address, e.g. `127.0.0.1:5558`
    /// (port 0 picks a free one; see [`EmulatorHandle::console_url`]). A non-loopback address
    /// requires [`EmulatorBuilder::console_access_token`], else [`EmulatorBuilder::start`] fails
    /// with [`crate::ConsoleError::Exposed`].
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), elarian_emulator::EmulatorError> {
    /// use elarian_emulator::Emulator;
    ///
    /// let emulator = Emulator::builder()
    ///     .tcp(([127, 0, 0, 1], 0))
    ///     .console(([127, 0, 0, 1], 0))
    ///     .start()
    ///     .await?;
    /// println!("console at {}", emulator.console_url().expect("the console is on"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn console(mut self, addr: impl Into<SocketAddr>) -> Self {
        self.console = Some(addr.into());
        self
    }

    /// Shows the campaigns of a campaigns HTTP API on the console's campaigns page: its base
    /// URL (`http://host:port/`, plain HTTP) and the API key it expects. The console fetches
    /// messages, sendings and progress from it on the server, each fetch bounded in time and
    /// size; an unreachable API shows as an error on the page. A malformed URL or an empty key
    /// makes [`EmulatorBuilder::start`] fail.
    pub fn console_campaigns(mut self, url: impl Into<String>, api_key: impl Into<String>) -> Self {
        self.console_campaigns = Some(crate::console::CampaignsSource {
            url: url.into(),
            key: api_key.into(),
        });
        self
    }

    /// The access token the console asks for (required on a non-loopback address).
    pub fn console_access_token(mut self, token: impl Into<String>) -> Self {
        self.console_token = Some(token.into());
        self
    }

    /// Binds the listeners and starts serving.
    pub async fn start(self) -> Result<EmulatorHandle, EmulatorError> {
        if self.tcp.is_none() && self.tls.is_none() && self.ws.is_none() && !self.in_process_only {
            return Err(EmulatorError::NoListener);
        }
        self.config.validate()?;
        let reply_timeout = Duration::from_millis(self.config.notification_reply_timeout_ms);
        let engine = Arc::new(match &self.data_dir {
            Some(dir) => {
                let (config, clock, dir) = (self.config.clone(), self.clock.clone(), dir.clone());
                tokio::task::spawn_blocking(move || Engine::open(config, clock, &dir))
                    .await
                    .map_err(|e| StoreError::Open {
                        path: String::new(),
                        message: e.to_string(),
                    })??
            }
            None => Engine::new(self.config.clone(), self.clock.clone()),
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let hub = Hub::new(engine.clone(), self.delivery, shutdown_rx.clone());
        // ServerConfig is non-exhaustive: struct-update syntax is not available outside its crate.
        #[allow(clippy::field_reassign_with_default)]
        let server_config = {
            let mut c = ServerConfig::default();
            c.resume_window = self.resume_window;
            c.max_reassembly = self.max_command_bytes;
            let l = &self.config.limits;
            c.max_connections = l.max_connections;
            c.max_setup_frame_len = l.max_setup_frame_bytes;
            c.max_connection_reassembly = l.max_connection_reassembly_bytes;
            c.max_total_reassembly = l.max_total_reassembly_bytes;
            c.max_detached_sessions = l.max_detached_sessions;
            c.max_detached_bytes = l.max_detached_bytes;
            c.max_lifetime = Duration::from_secs(l.max_keepalive_lifetime_secs);
            c.max_resume_failures = l.max_resume_failures;
            c.resume_failure_window = Duration::from_secs(l.resume_failure_window_secs);
            c.max_inbound_requests = self.max_concurrent_requests;
            c
        };
        let server = Server::new(server_config);
        let limits = CommandLimits {
            max_command_bytes: self.max_command_bytes,
            reply_timeout,
        };
        let mut tasks = Vec::new();
        let mut handle = EmulatorHandle {
            console_addr: None,
            tcp_addr: None,
            tls_addr: None,
            ws_addr: None,
            certificate_pem: None,
            engine: engine.clone(),
            hub: hub.clone(),
            server: server.clone(),
            stopped: shutdown_rx.clone(),
            shutdown: shutdown_tx,
            tasks: Vec::new(),
        };

        macro_rules! serve {
            ($listener:expr, $what:literal) => {{
                let mut listener = $listener;
                let server = server.clone();
                let mut stop = shutdown_rx.clone();
                tasks.push(tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = stop.changed() => return,
                            accepted = listener.accept() => match accepted {
                                Ok((transport, peer)) => {
                                    tracing::debug!(%peer, listener = $what, "transport accepted");
                                    server.serve_transport_from(transport, peer);
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, listener = $what, "accept failed");
                                    // Errors like EMFILE repeat at once; do not spin on them.
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                }
                            },
                        }
                    }
                }));
            }};
        }

        if let Some(addr) = self.tcp {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| EmulatorError::Bind {
                    what: "tcp",
                    addr,
                    source,
                })?;
            handle.tcp_addr = Some(local(&listener.local_addr(), addr));
            serve!(listener, "tcp");
        }
        if let Some((addr, cert)) = self.tls.clone() {
            let (cert_pem, key_pem) = match cert {
                Certificate::Pem { cert, key } => (cert, key),
                Certificate::SelfSigned => {
                    let generated = rcgen::generate_simple_self_signed(vec![
                        "localhost".to_string(),
                        "127.0.0.1".to_string(),
                    ])
                    .map_err(|e| EmulatorError::Tls(e.to_string()))?;
                    (
                        generated.cert.pem().into_bytes(),
                        generated.signing_key.serialize_pem().into_bytes(),
                    )
                }
            };
            let options = TlsServerOptions::from_pem(&cert_pem, &key_pem)?;
            let listener =
                TlsListener::bind(addr, options)
                    .await
                    .map_err(|source| EmulatorError::Bind {
                        what: "tls",
                        addr,
                        source,
                    })?;
            handle.tls_addr = Some(local(&listener.local_addr(), addr));
            handle.certificate_pem = Some(String::from_utf8_lossy(&cert_pem).into_owned());
            serve!(listener, "tls");
        }
        if let Some(addr) = self.ws {
            let listener = WsListener::bind(addr)
                .await
                .map_err(|source| EmulatorError::Bind {
                    what: "ws",
                    addr,
                    source,
                })?;
            handle.ws_addr = Some(local(&listener.local_addr(), addr));
            serve!(listener, "ws");
        }

        if let Some(addr) = self.console {
            let (bound, task) = crate::console::start(
                addr,
                self.console_token.clone(),
                self.console_campaigns.clone(),
                engine.clone(),
                hub.clone(),
                limits,
                shutdown_rx.clone(),
            )
            .await?;
            handle.console_addr = Some(bound);
            tasks.push(task);
        }

        {
            let server = server.clone();
            let engine = engine.clone();
            let hub = hub.clone();
            let mut stop = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        incoming = server.accept() => match incoming {
                            Some(incoming) => handle_incoming(incoming, &engine, &hub, limits),
                            None => return,
                        },
                    }
                }
            }));
        }
        let recovered = engine.take_recovered();
        if !recovered.is_empty() {
            let hub = hub.clone();
            tasks.push(tokio::spawn(
                async move { hub.deliver_paced(recovered).await },
            ));
        }
        tasks.push(tokio::spawn(crate::scheduler::run(
            engine.clone(),
            hub.clone(),
            shutdown_rx.clone(),
        )));
        handle.tasks = tasks;
        tracing::info!(
            tcp = ?handle.tcp_addr,
            tls = ?handle.tls_addr,
            ws = ?handle.ws_addr,
            console = ?handle.console_addr,
            durable = self.data_dir.is_some(),
            "emulator started"
        );
        Ok(handle)
    }
}

fn local(bound: &Result<SocketAddr, TransportError>, requested: SocketAddr) -> SocketAddr {
    bound.as_ref().copied().unwrap_or(requested)
}

/// A running emulator.
pub struct EmulatorHandle {
    console_addr: Option<SocketAddr>,
    tcp_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    ws_addr: Option<SocketAddr>,
    certificate_pem: Option<String>,
    engine: Arc<Engine>,
    hub: Arc<Hub>,
    server: Server,
    /// Follows `shutdown`, for the in-process dialers.
    stopped: watch::Receiver<bool>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("tcp_addr", &self.tcp_addr)
            .field("tls_addr", &self.tls_addr)
            .field("ws_addr", &self.ws_addr)
            .field("console_addr", &self.console_addr)
            .finish_non_exhaustive()
    }
}

/// The host clients should dial for a bound address (`0.0.0.0` means this machine).
fn dial_host(addr: SocketAddr) -> String {
    match addr.ip() {
        ip if ip.is_unspecified() => {
            if addr.is_ipv4() {
                "127.0.0.1".into()
            } else {
                "::1".into()
            }
        }
        ip => ip.to_string(),
    }
}

impl EmulatorHandle {
    /// Address of the TCP listener.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// Address of the TLS listener.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Address of the WebSocket listener.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
    }

    /// Address of the web console's listener.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console_addr
    }

    /// `http://host:port/` of the web console, to open in a browser.
    pub fn console_url(&self) -> Option<String> {
        self.console_addr.map(|a| {
            let host = dial_host(a);
            if host.contains(':') {
                format!("http://[{host}]:{}/", a.port())
            } else {
                format!("http://{host}:{}/", a.port())
            }
        })
    }

    /// The TLS listener's certificate (PEM), for clients to trust.
    pub fn tls_certificate_pem(&self) -> Option<&str> {
        self.certificate_pem.as_deref()
    }

    /// `tcp://host:port` of the TCP listener.
    pub fn endpoint(&self) -> Option<Endpoint> {
        self.tcp_addr.map(|a| Endpoint::tcp(dial_host(a), a.port()))
    }

    /// `tls://localhost:port` of the TLS listener (the self-signed certificate names
    /// `localhost`).
    pub fn tls_endpoint(&self) -> Option<Endpoint> {
        self.tls_addr.map(|a| Endpoint::tls("localhost", a.port()))
    }

    /// `ws://host:port/` of the WebSocket listener.
    pub fn ws_endpoint(&self) -> Option<Endpoint> {
        self.ws_addr
            .map(|a| Endpoint::ws(dial_host(a), a.port(), "/"))
    }

    /// A dialer for clients in this process (`ClientConfigBuilder::dialer`): each connection
    /// goes through memory rather than a socket, and is served exactly as an accepted TCP
    /// connection is (same SETUP and authentication, limits and accounting). It works with or
    /// without listeners (see [`EmulatorBuilder::in_process_only`]); once the emulator stops,
    /// its connections are closed and dialling fails with a refused connection.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), elarian_emulator::EmulatorError> {
    /// use std::sync::Arc;
    /// use elarian_emulator::Emulator;
    ///
    /// let emulator = Emulator::builder().in_process_only().start().await?;
    /// let dialer = Arc::new(emulator.in_process_dialer());
    /// // ClientConfig::builder().dialer(dialer)...
    /// # let _ = dialer;
    /// # Ok(())
    /// # }
    /// ```
    pub fn in_process_dialer(&self) -> InProcessDialer {
        InProcessDialer::new(self.server.clone(), self.stopped.clone())
    }

    /// What notification delivery shed or refused so far (see [`DeliveryStats`]).
    pub fn delivery_stats(&self) -> DeliveryStats {
        self.hub.stats()
    }

    /// Makes the scheduler look for due timers now, e.g. after a test moved a manual clock.
    pub fn wake_scheduler(&self) {
        self.engine.timers_changed().notify_one();
    }

    /// The engine, for inspecting state in tests.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stops listening, closes every connection, commits pending writes and closes the data dir.
    ///
    /// Dropping the handle also stops the emulator, without waiting and without closing the
    /// data dir before the last connection task ends.
    pub async fn shutdown(mut self) {
        self.stop();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        let engine = self.engine.clone();
        let _ = tokio::task::spawn_blocking(move || engine.close()).await;
        tracing::info!("emulator stopped");
    }

    fn stop(&self) {
        let _ = self.shutdown.send(true);
        self.server.stop_accepting();
        self.hub.close_all();
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.stop();
    }
}
