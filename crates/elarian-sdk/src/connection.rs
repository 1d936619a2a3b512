//! Connection events: fan-out to callbacks and streams that outlive any single connection.
//!
//! The core client emits [`ConnectionEvent`]s per connection; an [`Elarian`](crate::Elarian) (or a
//! simulator) may connect, disconnect and connect again, and handlers may be registered before the
//! first connection. The hub is created with the app object and stays for its whole life.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use elarian_core::{ClientError, CloseReason, ConnectionEvent};
use futures_core::Stream;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;

/// How far a slow [`ConnectionEventStream`] may fall behind before it skips events.
const STREAM_CAPACITY: usize = 64;

type Callback = Arc<dyn Fn(&ConnectionEvent) + Send + Sync + 'static>;

/// Delivers connection events to registered callbacks and to any number of streams.
///
/// Used by [`Elarian`](crate::Elarian) and by the simulator crate; apps use it through their
/// `on_connected`, `on_error`, … methods and `connection_events()`.
pub struct ConnectionHub {
    callbacks: RwLock<Vec<Callback>>,
    sender: broadcast::Sender<ConnectionEvent>,
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
            callbacks: RwLock::new(Vec::new()),
            sender: broadcast::channel(STREAM_CAPACITY).0,
        }
    }

    /// Registers a callback for every event.
    pub fn add(&self, callback: impl Fn(&ConnectionEvent) + Send + Sync + 'static) {
        let mut callbacks = self.callbacks.write().unwrap_or_else(|p| p.into_inner());
        callbacks.push(Arc::new(callback));
    }

    /// Delivers an event. A panicking callback is logged and does not stop the others.
    pub fn emit(&self, event: &ConnectionEvent) {
        let callbacks = self
            .callbacks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for callback in callbacks {
            if catch_unwind(AssertUnwindSafe(|| callback(event))).is_err() {
                tracing::error!("a connection event callback panicked");
            }
        }
        // No subscriber is fine.
        let _ = self.sender.send(event.clone());
    }

    /// A stream of the events emitted from now on.
    pub fn subscribe(&self) -> ConnectionEventStream {
        ConnectionEventStream::new(self.sender.subscribe())
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
    pub fn on_closed(&self, f: impl Fn(&CloseReason) + Send + Sync + 'static) {
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
}

/// A stream of [`ConnectionEvent`]s. Unlike a single connection's events it does not end at
/// `Closed`, since the app may connect again; it ends when the app object is dropped. A subscriber
/// that falls behind skips the events it missed.
pub struct ConnectionEventStream {
    inner: BoxStream<'static, ConnectionEvent>,
}

impl ConnectionEventStream {
    fn new(receiver: broadcast::Receiver<ConnectionEvent>) -> Self {
        let inner = futures_util::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => return Some((event, receiver)),
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "connection event subscriber lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        ConnectionEventStream {
            inner: Box::pin(inner),
        }
    }
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
        self.inner.as_mut().poll_next(cx)
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
            reason: CloseReason::Disconnected,
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
}
