//! [`WireClient`]: an Elarian client of any role, in wire types, across connect / disconnect
//! cycles.
//!
//! The core client lives for one connection; an app or simulator object may connect, disconnect
//! and connect again, and keeps its config and its [`ConnectionHub`] for its whole life. The
//! typed clients ([`Elarian`](crate::Elarian), the simulator crate's `Simulator`) are built on
//! this one.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use elarian_core::{
    Client, ClientConfig, ClientConfigBuilder, ConnectionEvent, FlowStats, NotificationHandler,
    Role,
};

use crate::connection::{ConnectionEvents, ConnectionHub};
use crate::error::Result;

/// An Elarian client of any [`Role`] that speaks the wire types ([`proto`](crate::proto)), kept
/// across connect / disconnect cycles, with its [`ConnectionEvents`].
///
/// [`Elarian`](crate::Elarian) is the typed app client built on one, and the
/// `elarian-simulator` crate's `Simulator` the typed simulator. Use one directly for what the
/// typed clients do not cover: notifications answered by your own [`NotificationHandler`]
/// (a tool that records or forwards them as they come) and commands sent as wire messages
/// through [`client`](Self::client).
///
/// ```no_run
/// use elarian_sdk::{ClientConfig, ConnectionEvents, NotificationHandler, Role, WireClient, proto};
///
/// /// Answers every notification with the default reply (the trait's default).
/// struct Ignore;
/// impl NotificationHandler for Ignore {}
///
/// # async fn run() -> Result<(), elarian_sdk::Error> {
/// let wire = WireClient::new(
///     ClientConfig::builder().org_id("el_org_eu_1SJ2jx").app_id("el_app_WZFQdt").api_key("el_k_test_…"),
///     Role::App,
/// )?;
/// wire.on_error(|error| eprintln!("elarian: {error}"));
/// wire.connect(Ignore).await?;
/// let command = proto::AppToServerCommand {
///     entry: Some(proto::app_to_server_command::Entry::GenerateAuthToken(
///         proto::GenerateAuthTokenCommand {},
///     )),
/// };
/// let reply = wire.client().ok_or(elarian_sdk::Error::NotConnected)?.send_app_command(command).await?;
/// println!("{reply:?}");
/// wire.disconnect().await;
/// # Ok(()) }
/// ```
pub struct WireClient {
    config: ClientConfig,
    client: RwLock<Option<Client>>,
    connect_lock: tokio::sync::Mutex<()>,
    hub: ConnectionHub,
    /// Set when the current client stopped by itself (rejected, gave up) or was disconnected.
    closed: Arc<AtomicBool>,
}

impl fmt::Debug for WireClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireClient")
            .field("config", &self.config)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl WireClient {
    /// Builds the config with `role`, routing the runtime's events to a new hub. Does not
    /// connect.
    pub fn new(config: ClientConfigBuilder, role: Role) -> Result<Self> {
        let hub = ConnectionHub::new();
        let closed = Arc::new(AtomicBool::new(false));
        let mark_closed = closed.clone();
        hub.add(move |event| {
            if matches!(event, ConnectionEvent::Closed { .. }) {
                mark_closed.store(true, Ordering::SeqCst);
            }
        });
        let config = config.role(role).event_hub(hub.core()).build()?;
        Ok(WireClient {
            config,
            client: RwLock::new(None),
            connect_lock: tokio::sync::Mutex::new(()),
            hub,
            closed,
        })
    }

    /// The configuration (credentials redacted in `Debug`).
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The current core client, if connected (or reconnecting): it sends wire commands.
    pub fn client(&self) -> Option<Client> {
        self.client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.client().is_some_and(|c| c.is_connected())
    }

    /// The flow-control counters of the current connection's client (commands retried after
    /// the server rejected them unprocessed, commands that waited for a slot, the window of
    /// commands in flight); `None` before the first [`connect`](Self::connect).
    pub fn flow_stats(&self) -> Option<FlowStats> {
        self.client().map(|client| client.flow_stats())
    }

    /// Connects with `handler` answering notifications, and resolves once the connection is up.
    /// Does nothing while a client is running.
    pub async fn connect(&self, handler: impl NotificationHandler) -> Result<()> {
        let _guard = self.connect_lock.lock().await;
        if self.client().is_some() && !self.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        // A client that stopped by itself (e.g. gave up reconnecting) is replaced.
        let stale = self
            .client
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(stale) = stale {
            stale.disconnect().await;
        }
        self.closed.store(false, Ordering::SeqCst);
        let client = Client::connect(self.config.clone(), handler).await?;
        *self.client.write().unwrap_or_else(|p| p.into_inner()) = Some(client);
        Ok(())
    }

    /// Disconnects gracefully (within the runtime's disconnect bound); `connect` may follow.
    pub async fn disconnect(&self) {
        let _guard = self.connect_lock.lock().await;
        let client = self
            .client
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(client) = client {
            client.disconnect().await;
        }
    }
}

impl ConnectionEvents for WireClient {
    fn connection_hub(&self) -> &ConnectionHub {
        &self.hub
    }
}
