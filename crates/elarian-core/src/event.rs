//! Connection lifecycle events: a broadcast stream plus synchronous callbacks.
//!
//! The runtime never waits for a subscriber. The stream side is a bounded
//! [`tokio::sync::broadcast`] channel: a subscriber that falls more than its capacity behind skips
//! the events it missed (a `tracing` warning records how many). Callbacks run inline on the
//! runtime task, so they must be quick and must not block; a panicking callback is caught and
//! logged.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use futures_util::stream::BoxStream;
use tokio::sync::broadcast;

use crate::error::{ClientError, ConnectError};

/// How many events a slow [`EventStream`] subscriber may fall behind before it skips some.
pub(crate) const EVENT_CHANNEL_CAPACITY: usize = 256;

/// A change in the state of the client's connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The client was created and has not started connecting yet.
    Pending,
    /// A connection attempt (or a resumption) started.
    Connecting,
    /// The connection is up; commands flow.
    Connected,
    /// The connection is down; the next attempt starts after `delay`.
    Reconnecting {
        /// 1-based number of the coming attempt since the connection was last up.
        attempt: u32,
        /// How long the runtime waits before that attempt.
        delay: Duration,
    },
    /// The client stopped for good; no further events follow.
    Closed {
        /// Why it stopped.
        reason: StopReason,
    },
    /// Something went wrong; the client keeps running unless a `Closed` event follows.
    Error(ClientError),
}

/// Why a client stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// [`Client::disconnect`](crate::Client::disconnect) was called or every handle was dropped.
    Disconnected,
    /// The server rejected the SETUP (for example bad credentials).
    Rejected {
        /// The server's explanation.
        message: String,
    },
    /// The reconnect policy's attempt limit was reached, or the first connection did not come
    /// up within the initial connect timeout (`last` is then a [`ConnectError::Timeout`], with the last attempt's error as its source).
    GaveUp {
        /// The error of the last attempt.
        last: ConnectError,
    },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Disconnected => f.write_str("disconnected"),
            StopReason::Rejected { message } => write!(f, "rejected by the server: {message}"),
            StopReason::GaveUp { last } => write!(f, "gave up reconnecting: {last}"),
        }
    }
}

/// A callback receiving every [`ConnectionEvent`]. It runs on the runtime task: keep it short.
pub type EventCallback = Arc<dyn Fn(&ConnectionEvent) + Send + Sync + 'static>;

/// Fans a client's [`ConnectionEvent`]s out to stream subscribers and callbacks: the one event
/// path of the runtime.
///
/// Every [`Client`](crate::Client) has one. A layer above that outlives single clients (an app
/// object that connects, disconnects and connects again) makes its own and hands it to each
/// client with [`ClientConfigBuilder::event_hub`](crate::ClientConfigBuilder::event_hub), so
/// that its subscribers see the events of every connection through the same broadcast.
///
/// ```
/// use std::sync::Arc;
/// use elarian_core::{ConnectionEvent, EventHub};
/// use futures_util::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let hub = Arc::new(EventHub::new());
/// let mut events = hub.subscribe_all();
/// hub.emit(ConnectionEvent::Connecting);
/// assert_eq!(events.next().await, Some(ConnectionEvent::Connecting));
/// # }
/// ```
pub struct EventHub {
    sender: broadcast::Sender<ConnectionEvent>,
    callbacks: RwLock<Vec<EventCallback>>,
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new()
    }
}

impl fmt::Debug for EventHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventHub")
            .field("subscribers", &self.sender.receiver_count())
            .finish_non_exhaustive()
    }
}

impl EventHub {
    /// A hub with no subscriber and no callback.
    pub fn new() -> Self {
        EventHub::with_callbacks(Vec::new())
    }

    pub(crate) fn with_callbacks(callbacks: Vec<EventCallback>) -> Self {
        let (sender, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        EventHub {
            sender,
            callbacks: RwLock::new(callbacks),
        }
    }

    /// Registers a callback for every event emitted from now on. It runs on the emitting task:
    /// keep it short and non-blocking; a panic in it is caught and logged.
    pub fn add_callback(&self, callback: EventCallback) {
        // A poisoned lock only means a previous writer panicked; the list itself is intact.
        let mut callbacks = self.callbacks.write().unwrap_or_else(|e| e.into_inner());
        callbacks.push(callback);
    }

    /// A stream of the events emitted from now on, ending after the first `Closed`.
    pub fn subscribe(&self) -> EventStream {
        EventStream::new(self.sender.subscribe(), true)
    }

    /// A stream of the events emitted from now on that goes on after `Closed` (for a hub shared
    /// by successive clients); it ends when the hub is dropped.
    pub fn subscribe_all(&self) -> EventStream {
        EventStream::new(self.sender.subscribe(), false)
    }

    /// Delivers an event to the callbacks, then to the streams. Never waits: a stream that
    /// lags skips events.
    pub fn emit(&self, event: ConnectionEvent) {
        match &event {
            ConnectionEvent::Error(error) => tracing::warn!(%error, "elarian client error"),
            other => tracing::debug!(event = ?other, "elarian connection event"),
        }
        // Snapshot the list so a callback that registers another callback cannot deadlock.
        let callbacks: Vec<EventCallback> = self
            .callbacks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for callback in callbacks {
            if catch_unwind(AssertUnwindSafe(|| callback(&event))).is_err() {
                tracing::error!("an elarian event callback panicked; the panic was contained");
            }
        }
        // No receiver is fine: nobody is listening to the stream.
        let _ = self.sender.send(event);
    }
}

/// The stream of [`ConnectionEvent`]s returned by [`Client::events`](crate::Client::events).
///
/// It ends after the `Closed` event (unless it came from [`EventHub::subscribe_all`]). A
/// subscriber that lags skips the events it missed.
pub struct EventStream {
    inner: BoxStream<'static, ConnectionEvent>,
}

impl EventStream {
    fn new(receiver: broadcast::Receiver<ConnectionEvent>, end_at_closed: bool) -> Self {
        let inner = futures_util::stream::unfold(Some(receiver), move |receiver| async move {
            let mut receiver = receiver?;
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        let last = end_at_closed && matches!(event, ConnectionEvent::Closed { .. });
                        return Some((event, if last { None } else { Some(receiver) }));
                    }
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "event subscriber lagged; skipped events");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        EventStream {
            inner: Box::pin(inner),
        }
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl Stream for EventStream {
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
    async fn stream_and_callbacks_see_events_and_stream_ends_after_closed() {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let hub = EventHub::with_callbacks(vec![Arc::new(move |_: &ConnectionEvent| {
            counter.fetch_add(1, Ordering::SeqCst);
        })]);
        hub.add_callback(Arc::new(|_: &ConnectionEvent| panic!("bad callback")));
        let mut stream = hub.subscribe();
        hub.emit(ConnectionEvent::Connecting);
        hub.emit(ConnectionEvent::Closed {
            reason: StopReason::Disconnected,
        });
        hub.emit(ConnectionEvent::Connected);
        assert_eq!(stream.next().await, Some(ConnectionEvent::Connecting));
        assert!(matches!(
            stream.next().await,
            Some(ConnectionEvent::Closed { .. })
        ));
        assert_eq!(stream.next().await, None);
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn lagging_subscriber_skips_without_blocking_the_sender() {
        let hub = EventHub::new();
        let mut stream = hub.subscribe();
        for attempt in 0..(EVENT_CHANNEL_CAPACITY as u32 + 10) {
            hub.emit(ConnectionEvent::Reconnecting {
                attempt,
                delay: Duration::ZERO,
            });
        }
        // The oldest ten were overwritten; the stream resumes at the oldest kept one.
        assert_eq!(
            stream.next().await,
            Some(ConnectionEvent::Reconnecting {
                attempt: 10,
                delay: Duration::ZERO
            })
        );
    }

    #[tokio::test]
    async fn a_shared_hub_stream_goes_on_after_closed() {
        let hub = EventHub::new();
        let mut all = hub.subscribe_all();
        hub.emit(ConnectionEvent::Closed {
            reason: StopReason::Disconnected,
        });
        hub.emit(ConnectionEvent::Connected);
        assert!(matches!(
            all.next().await,
            Some(ConnectionEvent::Closed { .. })
        ));
        assert_eq!(all.next().await, Some(ConnectionEvent::Connected));
    }
}
