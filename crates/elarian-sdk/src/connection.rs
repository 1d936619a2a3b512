//! The connection of an app or simulator object, and its events.
//!
//! The core client lives for one connection and emits [`ConnectionEvent`]s for it; an
//! [`Elarian`](crate::Elarian) (or a simulator) may connect, disconnect and connect again, and
//! handlers may be registered before the first connection. [`ClientSlot`] holds the current core client
//! and a [`ConnectionHub`] that fans events out to callbacks and streams; both are created with the
//! app object and stay for its whole life.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use elarian_core::{
    Client, ClientConfig, ClientConfigBuilder, ClientError, ConnectionEvent, EventHub, EventStream,
    NotificationHandler, Role, StopReason,
};
use futures_core::Stream;
use futures_util::StreamExt;

use crate::error::Result;

/// Delivers connection events to registered callbacks and to any number of streams.
///
/// Used by [`Elarian`](crate::Elarian) and by the simulator crate; apps use it through their
/// `on_connected`, `on_error`, … methods and `connection_events()`. It is a view of the core
/// runtime's [`EventHub`], which every core client of the app object emits into: one event
/// path, one broadcast.
pub struct ConnectionHub {
    core: Arc<EventHub>,
}

impl Default for ConnectionHub {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ConnectionHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionHub").finish_non_exhaustive()
    }
}

impl ConnectionHub {
    /// An empty hub.
    pub fn new() -> Self {
        ConnectionHub {
            core: Arc::new(EventHub::new()),
        }
    }

    /// The core runtime's hub behind this one (handed to every core client).
    fn core(&self) -> Arc<EventHub> {
        self.core.clone()
    }

    /// Registers a callback for every event.
    pub fn add(&self, callback: impl Fn(&ConnectionEvent) + Send + Sync + 'static) {
        self.core.add_callback(Arc::new(callback));
    }

    /// Delivers an event. A panicking callback is logged and does not stop the others.
    pub fn emit(&self, event: &ConnectionEvent) {
        self.core.emit(event.clone());
    }

    /// A stream of the events emitted from now on.
    pub fn subscribe(&self) -> ConnectionEventStream {
        ConnectionEventStream {
            inner: self.core.subscribe_all(),
        }
    }
}

impl ConnectionHub {
    /// Calls `f` on `Pending` events.
    pub fn on_pending(&self, f: impl Fn() + Send + Sync + 'static) {
        self.add(move |e| {
            if matches!(e, ConnectionEvent::Pending) {
                f()
            }
        });
    }

    /// Calls `f` on `Connecting` events.
    pub fn on_connecting(&self, f: impl Fn() + Send + Sync + 'static) {
        self.add(move |e| {
            if matches!(e, ConnectionEvent::Connecting) {
                f()
            }
        });
    }

    /// Calls `f` on `Connected` events.
    pub fn on_connected(&self, f: impl Fn() + Send + Sync + 'static) {
        self.add(move |e| {
            if matches!(e, ConnectionEvent::Connected) {
                f()
            }
        });
    }

    /// Calls `f(attempt, delay)` on `Reconnecting` events.
    pub fn on_reconnecting(&self, f: impl Fn(u32, Duration) + Send + Sync + 'static) {
        self.add(move |e| {
            if let ConnectionEvent::Reconnecting { attempt, delay } = e {
                f(*attempt, *delay)
            }
        });
    }

    /// Calls `f` on `Closed` events.
    pub fn on_closed(&self, f: impl Fn(&StopReason) + Send + Sync + 'static) {
        self.add(move |e| {
            if let ConnectionEvent::Closed { reason } = e {
                f(reason)
            }
        });
    }

    /// Calls `f` on `Error` events.
    pub fn on_error(&self, f: impl Fn(&ClientError) + Send + Sync + 'static) {
        self.add(move |e| {
            if let ConnectionEvent::Error(error) = e {
                f(error)
            }
        });
    }
    /// Calls `f` on the events of `kind`.
    pub fn on_kind(
        &self,
        kind: ConnectionEventKind,
        f: impl Fn(&ConnectionEvent) + Send + Sync + 'static,
    ) {
        self.add(move |e| {
            if ConnectionEventKind::of(e) == Some(kind) {
                f(e)
            }
        });
    }
}

/// The kinds of [`ConnectionEvent`], named as in the Elarian SDK spec (`"connected"`, `"error"`,
/// …), for [`Elarian::on_connection`](crate::Elarian::on_connection): the counterpart of the
/// spec's `on("connected", handler)`.
///
/// ```
/// use elarian_sdk::connection::ConnectionEventKind;
///
/// assert_eq!(ConnectionEventKind::from_name("connected"), Some(ConnectionEventKind::Connected));
/// assert_eq!(ConnectionEventKind::Error.name(), "error");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionEventKind {
    /// [`ConnectionEvent::Pending`].
    Pending,
    /// [`ConnectionEvent::Connecting`].
    Connecting,
    /// [`ConnectionEvent::Connected`].
    Connected,
    /// [`ConnectionEvent::Reconnecting`] (not in the spec's list; the JavaScript SDK emits it).
    Reconnecting,
    /// [`ConnectionEvent::Closed`].
    Closed,
    /// [`ConnectionEvent::Error`].
    Error,
}

impl ConnectionEventKind {
    /// Every kind.
    pub const ALL: [ConnectionEventKind; 6] = [
        ConnectionEventKind::Pending,
        ConnectionEventKind::Connecting,
        ConnectionEventKind::Connected,
        ConnectionEventKind::Reconnecting,
        ConnectionEventKind::Closed,
        ConnectionEventKind::Error,
    ];

    /// The spec's name of the event.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionEventKind::Pending => "pending",
            ConnectionEventKind::Connecting => "connecting",
            ConnectionEventKind::Connected => "connected",
            ConnectionEventKind::Reconnecting => "reconnecting",
            ConnectionEventKind::Closed => "closed",
            ConnectionEventKind::Error => "error",
        }
    }

    /// The kind with the spec's name `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The kind of `event` (`None` for kinds a newer runtime may add).
    pub fn of(event: &ConnectionEvent) -> Option<Self> {
        Some(match event {
            ConnectionEvent::Pending => ConnectionEventKind::Pending,
            ConnectionEvent::Connecting => ConnectionEventKind::Connecting,
            ConnectionEvent::Connected => ConnectionEventKind::Connected,
            ConnectionEvent::Reconnecting { .. } => ConnectionEventKind::Reconnecting,
            ConnectionEvent::Closed { .. } => ConnectionEventKind::Closed,
            ConnectionEvent::Error(_) => ConnectionEventKind::Error,
            _ => return None,
        })
    }
}

impl fmt::Display for ConnectionEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The connection of one app or simulator object across connect / disconnect cycles: its
/// config, the current core [`Client`] and the [`ConnectionHub`] its events go to.
///
/// [`Elarian`](crate::Elarian) and the simulator crate's `Simulator` are built on it; apps do
/// not need it directly.
pub struct ClientSlot {
    config: ClientConfig,
    client: RwLock<Option<Client>>,
    connect_lock: tokio::sync::Mutex<()>,
    hub: Arc<ConnectionHub>,
    /// Set when the current client stopped by itself (rejected, gave up) or was disconnected.
    closed: Arc<AtomicBool>,
}

impl fmt::Debug for ClientSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSlot")
            .field("config", &self.config)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl ClientSlot {
    /// Builds the config with `role`, routing the runtime's events to a new hub. Does not
    /// connect.
    pub fn new(config: ClientConfigBuilder, role: Role) -> Result<Self> {
        let hub = Arc::new(ConnectionHub::new());
        let closed = Arc::new(AtomicBool::new(false));
        let mark_closed = closed.clone();
        hub.on_closed(move |_| mark_closed.store(true, Ordering::SeqCst));
        let config = config.role(role).event_hub(hub.core()).build()?;
        Ok(ClientSlot {
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

    /// The hub the connection's events go to.
    pub fn hub(&self) -> &Arc<ConnectionHub> {
        &self.hub
    }

    /// The current core client, if connected (or reconnecting).
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

/// Defines the connection-event methods (`on_connected`, `on_error`, …, `connection_events`)
/// on a type with a `fn link(&self) -> &ClientSlot` method, so that `Elarian` and `Simulator` offer the
/// same methods, written once. `$what` names the object in the docs.
#[doc(hidden)]
#[macro_export]
macro_rules! __connection_event_methods {
    ($what:literal) => {
        #[doc = concat!("Calls `callback` for every connection event of the ", $what, ".")]
        pub fn on_connection_event(
            &self,
            callback: impl Fn(&$crate::ConnectionEvent) + Send + Sync + 'static,
        ) -> &Self {
            self.link().hub().add(callback);
            self
        }

        /// Calls `callback` for the connection events of `kind`: the spec's
        /// `on("connected", handler)` (`ConnectionEventKind::from_name` maps the spec's names).
        pub fn on_connection(
            &self,
            kind: $crate::connection::ConnectionEventKind,
            callback: impl Fn(&$crate::ConnectionEvent) + Send + Sync + 'static,
        ) -> &Self {
            self.link().hub().on_kind(kind, callback);
            self
        }

        #[doc = concat!("Calls `callback` when the ", $what, " is created but not connecting yet.")]
        pub fn on_pending(&self, callback: impl Fn() + Send + Sync + 'static) -> &Self {
            self.link().hub().on_pending(callback);
            self
        }

        /// Calls `callback` when a connection attempt starts.
        pub fn on_connecting(&self, callback: impl Fn() + Send + Sync + 'static) -> &Self {
            self.link().hub().on_connecting(callback);
            self
        }

        /// Calls `callback` when the connection is up.
        pub fn on_connected(&self, callback: impl Fn() + Send + Sync + 'static) -> &Self {
            self.link().hub().on_connected(callback);
            self
        }

        /// Calls `callback(attempt, delay)` when the connection is down and will be retried.
        pub fn on_reconnecting(
            &self,
            callback: impl Fn(u32, ::std::time::Duration) + Send + Sync + 'static,
        ) -> &Self {
            self.link().hub().on_reconnecting(callback);
            self
        }

        /// Calls `callback` when the connection stops for good.
        pub fn on_closed(
            &self,
            callback: impl Fn(&$crate::StopReason) + Send + Sync + 'static,
        ) -> &Self {
            self.link().hub().on_closed(callback);
            self
        }

        /// Calls `callback` on connection errors and on notification handler failures.
        pub fn on_error(
            &self,
            callback: impl Fn(&$crate::ClientError) + Send + Sync + 'static,
        ) -> &Self {
            self.link().hub().on_error(callback);
            self
        }

        /// A stream of connection events from now on (it outlives single connections).
        pub fn connection_events(&self) -> $crate::connection::ConnectionEventStream {
            self.link().hub().subscribe()
        }
    };
}

/// A stream of [`ConnectionEvent`]s. Unlike a single connection's events it does not end at
/// `Closed`, since the app may connect again; it ends when the app object is dropped. A subscriber
/// that falls behind skips the events it missed.
pub struct ConnectionEventStream {
    inner: EventStream,
}

impl std::fmt::Debug for ConnectionEventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionEventStream")
            .finish_non_exhaustive()
    }
}

impl Stream for ConnectionEventStream {
    type Item = ConnectionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn callbacks_and_streams_receive_events_and_a_panicking_callback_is_contained() {
        let hub = ConnectionHub::new();
        let connected = Arc::new(AtomicUsize::new(0));
        let seen = connected.clone();
        hub.add(|_| panic!("bad callback"));
        hub.on_connected(move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        let mut stream = hub.subscribe();
        hub.emit(&ConnectionEvent::Connecting);
        hub.emit(&ConnectionEvent::Connected);
        hub.emit(&ConnectionEvent::Closed {
            reason: StopReason::Disconnected,
        });
        hub.emit(&ConnectionEvent::Connected);
        assert_eq!(connected.load(Ordering::SeqCst), 2);
        assert_eq!(stream.next().await, Some(ConnectionEvent::Connecting));
        assert_eq!(stream.next().await, Some(ConnectionEvent::Connected));
        assert!(matches!(
            stream.next().await,
            Some(ConnectionEvent::Closed { .. })
        ));
        // The stream outlives a close: the app may connect again.
        assert_eq!(stream.next().await, Some(ConnectionEvent::Connected));
    }

    #[test]
    fn kinds_have_the_spec_names_and_match_their_events() {
        for kind in ConnectionEventKind::ALL {
            assert_eq!(ConnectionEventKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(ConnectionEventKind::from_name("receivedSms"), None);
        let error = ConnectionEvent::Error(ClientError::Notification(
            elarian_core::NotificationError::HandlerPanicked {
                message: "x".into(),
            },
        ));
        assert_eq!(
            ConnectionEventKind::of(&error),
            Some(ConnectionEventKind::Error)
        );
        let reconnecting = ConnectionEvent::Reconnecting {
            attempt: 1,
            delay: Duration::from_secs(1),
        };
        assert_eq!(
            ConnectionEventKind::of(&reconnecting),
            Some(ConnectionEventKind::Reconnecting)
        );
    }

    #[test]
    fn on_kind_sees_only_its_kind() {
        let hub = ConnectionHub::new();
        let closed = Arc::new(AtomicUsize::new(0));
        let seen = closed.clone();
        hub.on_kind(ConnectionEventKind::Closed, move |event| {
            assert!(matches!(event, ConnectionEvent::Closed { .. }));
            seen.fetch_add(1, Ordering::SeqCst);
        });
        hub.emit(&ConnectionEvent::Connected);
        hub.emit(&ConnectionEvent::Closed {
            reason: StopReason::Disconnected,
        });
        assert_eq!(closed.load(Ordering::SeqCst), 1);
    }
}
