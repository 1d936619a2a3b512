//! The connection events of an app or simulator object, across its connections.
//!
//! The core client lives for one connection and emits [`ConnectionEvent`]s for it; an
//! [`Elarian`](crate::Elarian) (or a simulator) may connect, disconnect and connect again, and
//! callbacks may be registered before the first connection. A [`ConnectionHub`], created with the
//! object and kept for its whole life, fans the events of every connection out to callbacks and
//! streams; [`ConnectionEvents`] gives every object with a hub the same `on_connected`,
//! `on_error`, … methods.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use elarian_core::{ClientError, ConnectionEvent, EventHub, EventStream, StopReason};
use futures_core::Stream;
use futures_util::StreamExt;

use crate::handlers::NamedEvent;

/// Delivers connection events to registered callbacks and to any number of streams.
///
/// Apps and simulators use it through the [`ConnectionEvents`] methods (`on_connected`,
/// `on_error`, …, `connection_events()`). It is a view of the core runtime's [`EventHub`], which
/// every core client of the object emits into: one event path, one broadcast.
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
    pub(crate) fn core(&self) -> Arc<EventHub> {
        self.core.clone()
    }

    /// Registers a callback for every event.
    pub fn add(&self, callback: impl Fn(&ConnectionEvent) + Send + Sync + 'static) {
        self.core.add_callback(Arc::new(callback));
    }

    /// Delivers an event as if the connection had emitted it (for tests of code that reacts to
    /// connection events). A panicking callback is logged and does not stop the others.
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

/// The connection events of an object with a [`ConnectionHub`]: callbacks per kind of event and
/// a stream. [`Elarian`](crate::Elarian), [`WireClient`](crate::WireClient) and the simulator
/// crate's `Simulator` have them; callbacks may be registered before the first connection and
/// stay across reconnections.
///
/// ```
/// use elarian_sdk::{ClientConfig, ConnectionEvents, Elarian};
///
/// # fn main() -> Result<(), elarian_sdk::Error> {
/// let app = Elarian::new(ClientConfig::builder().org_id("o").app_id("a").api_key("k"))?;
/// app.on_connected(|| println!("connected"))
///     .on_error(|error| eprintln!("elarian: {error}"));
/// # Ok(()) }
/// ```
pub trait ConnectionEvents {
    /// The hub the object's connection events go to.
    fn connection_hub(&self) -> &ConnectionHub;

    /// Calls `callback` for every connection event.
    fn on_connection_event(
        &self,
        callback: impl Fn(&ConnectionEvent) + Send + Sync + 'static,
    ) -> &Self {
        self.connection_hub().add(callback);
        self
    }

    /// Calls `callback` for the connection events of `kind`: the spec's
    /// `on("connected", handler)` ([`NamedEvent::from_name`] maps the spec's names).
    fn on_connection(
        &self,
        kind: ConnectionEventKind,
        callback: impl Fn(&ConnectionEvent) + Send + Sync + 'static,
    ) -> &Self {
        self.connection_hub().add(move |event| {
            if ConnectionEventKind::of(event) == Some(kind) {
                callback(event)
            }
        });
        self
    }

    /// Calls `callback` when the object is created but not connecting yet.
    fn on_pending(&self, callback: impl Fn() + Send + Sync + 'static) -> &Self {
        self.connection_hub().add(move |event| {
            if matches!(event, ConnectionEvent::Pending) {
                callback()
            }
        });
        self
    }

    /// Calls `callback` when a connection attempt starts.
    fn on_connecting(&self, callback: impl Fn() + Send + Sync + 'static) -> &Self {
        self.connection_hub().add(move |event| {
            if matches!(event, ConnectionEvent::Connecting) {
                callback()
            }
        });
        self
    }

    /// Calls `callback` when the connection is up.
    fn on_connected(&self, callback: impl Fn() + Send + Sync + 'static) -> &Self {
        self.connection_hub().add(move |event| {
            if matches!(event, ConnectionEvent::Connected) {
                callback()
            }
        });
        self
    }

    /// Calls `callback(attempt, delay)` when the connection is down and will be retried.
    fn on_reconnecting(&self, callback: impl Fn(u32, Duration) + Send + Sync + 'static) -> &Self {
        self.connection_hub().add(move |event| {
            if let ConnectionEvent::Reconnecting { attempt, delay } = event {
                callback(*attempt, *delay)
            }
        });
        self
    }

    /// Calls `callback` when the connection stops for good.
    fn on_closed(&self, callback: impl Fn(&StopReason) + Send + Sync + 'static) -> &Self {
        self.connection_hub().add(move |event| {
            if let ConnectionEvent::Closed { reason } = event {
                callback(reason)
            }
        });
        self
    }

    /// Calls `callback` on connection errors and on notification handler failures.
    fn on_error(&self, callback: impl Fn(&ClientError) + Send + Sync + 'static) -> &Self {
        self.connection_hub().add(move |event| {
            if let ConnectionEvent::Error(error) = event {
                callback(error)
            }
        });
        self
    }

    /// A stream of connection events from now on (it outlives single connections).
    fn connection_events(&self) -> ConnectionEventStream {
        self.connection_hub().subscribe()
    }
}

/// A hub is its own source of connection events (tests drive the methods through
/// [`emit`](ConnectionHub::emit)).
impl ConnectionEvents for ConnectionHub {
    fn connection_hub(&self) -> &ConnectionHub {
        self
    }
}

/// The kinds of [`ConnectionEvent`], named as in the Elarian SDK spec (`"connected"`, `"error"`,
/// …) by [`NamedEvent`], for [`ConnectionEvents::on_connection`]: the counterpart of the spec's
/// `on("connected", handler)`.
///
/// ```
/// use elarian_sdk::{ConnectionEventKind, NamedEvent};
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

impl NamedEvent for ConnectionEventKind {
    const ALL: &'static [ConnectionEventKind] = &[
        ConnectionEventKind::Pending,
        ConnectionEventKind::Connecting,
        ConnectionEventKind::Connected,
        ConnectionEventKind::Reconnecting,
        ConnectionEventKind::Closed,
        ConnectionEventKind::Error,
    ];

    fn name(self) -> &'static str {
        match self {
            ConnectionEventKind::Pending => "pending",
            ConnectionEventKind::Connecting => "connecting",
            ConnectionEventKind::Connected => "connected",
            ConnectionEventKind::Reconnecting => "reconnecting",
            ConnectionEventKind::Closed => "closed",
            ConnectionEventKind::Error => "error",
        }
    }
}

impl ConnectionEventKind {
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
        for &kind in ConnectionEventKind::ALL {
            assert_eq!(ConnectionEventKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(ConnectionEventKind::from_name("receivedSms"), None);
        assert_eq!(
            ConnectionEventKind::from_name("Connected"),
            Some(ConnectionEventKind::Connected)
        );
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
    fn on_connection_sees_only_its_kind() {
        let hub = ConnectionHub::new();
        let closed = Arc::new(AtomicUsize::new(0));
        let seen = closed.clone();
        hub.on_connection(ConnectionEventKind::Closed, move |event| {
            assert!(matches!(event, ConnectionEvent::Closed { .. }));
            seen.fetch_add(1, Ordering::SeqCst);
        });
        hub.emit(&ConnectionEvent::Connected);
        hub.emit(&ConnectionEvent::Closed {
            reason: StopReason::Disconnected,
        });
        assert_eq!(closed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn each_typed_method_sees_only_its_kind_of_event() {
        let hub = ConnectionHub::new();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = |name: &'static str| {
            let seen = seen.clone();
            move || seen.lock().expect("not poisoned").push(name)
        };
        let (pending, connecting, connected) =
            (record("pending"), record("connecting"), record("connected"));
        let (reconnecting, closed, error, any) = (
            record("reconnecting"),
            record("closed"),
            record("error"),
            record("any"),
        );
        hub.on_pending(pending)
            .on_connecting(connecting)
            .on_connected(connected)
            .on_reconnecting(move |attempt, delay| {
                assert_eq!((attempt, delay), (3, Duration::from_secs(2)));
                reconnecting()
            })
            .on_closed(move |reason| {
                assert_eq!(*reason, StopReason::Disconnected);
                closed()
            })
            .on_error(move |_| error())
            .on_connection_event(move |_| any());
        let events = [
            ConnectionEvent::Pending,
            ConnectionEvent::Connecting,
            ConnectionEvent::Connected,
            ConnectionEvent::Reconnecting {
                attempt: 3,
                delay: Duration::from_secs(2),
            },
            ConnectionEvent::Closed {
                reason: StopReason::Disconnected,
            },
            ConnectionEvent::Error(ClientError::Notification(
                elarian_core::NotificationError::HandlerPanicked {
                    message: "x".into(),
                },
            )),
        ];
        for event in &events {
            hub.emit(event);
        }
        let seen = seen.lock().expect("not poisoned").clone();
        let typed: Vec<_> = seen
            .iter()
            .filter(|name| **name != "any")
            .copied()
            .collect();
        assert_eq!(
            typed,
            [
                "pending",
                "connecting",
                "connected",
                "reconnecting",
                "closed",
                "error"
            ]
        );
        assert_eq!(seen.len(), 2 * events.len());
    }
}
