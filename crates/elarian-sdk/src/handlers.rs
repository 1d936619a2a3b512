//! Events by name, and the registry that routes notifications to the handler of their event or,
//! failing that, to a bounded stream.
//!
//! [`Elarian`](crate::Elarian) routes app notifications ([`AppEvent`](crate::AppEvent)) and the
//! `elarian-simulator` crate's `Simulator` routes simulator notifications (its `SimulatorEvent`)
//! through the same [`HandlerRegistry`]; a client built on [`WireClient`](crate::WireClient) for
//! another role can do the same with events of its own.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Mutex, RwLock};
use std::task::{Context, Poll};

use futures_core::Stream;
use tokio::sync::mpsc;

use crate::dispatch::IncomingNotification;

/// A kind of event handlers are registered for, named as the Elarian spec and the JavaScript
/// client name it (`"receivedSms"`, `"sendMessage"`, `"connected"`).
///
/// [`from_name`](Self::from_name) is the counterpart of the spec's `on("receivedSms", handler)`:
///
/// ```
/// use elarian_sdk::{AppEvent, ConnectionEventKind, NamedEvent};
///
/// assert_eq!(AppEvent::from_name("receivedSms"), Some(AppEvent::ReceivedSms));
/// assert_eq!(AppEvent::from_name("received_sms"), Some(AppEvent::ReceivedSms));
/// assert_eq!(ConnectionEventKind::from_name("connected"), Some(ConnectionEventKind::Connected));
/// assert_eq!(AppEvent::ReceivedSms.name(), "receivedSms");
/// assert_eq!(AppEvent::from_name("nope"), None);
/// ```
pub trait NamedEvent: Copy + Eq + Hash + fmt::Debug + Send + Sync + 'static {
    /// Every event of this kind.
    const ALL: &'static [Self];

    /// The event's name as the JavaScript client spells it (camel case).
    fn name(self) -> &'static str;

    /// The event named `name`: as [`name`](Self::name) spells it or in snake case
    /// (`received_sms`), in any letter case.
    fn from_name(name: &str) -> Option<Self> {
        // Names differ only in case and underscores, so comparing squashed names is exact.
        let squash = |name: &str| -> String {
            name.chars()
                .filter(|c| *c != '_')
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        let wanted = squash(name);
        Self::ALL
            .iter()
            .copied()
            .find(|event| squash(event.name()) == wanted)
    }
}

/// The handlers registered per event `E` (of type `H`, typically an `Arc` of a closure), and the
/// one stream that takes the notifications (`T`) for which no handler is registered.
///
/// Shared by [`Elarian`](crate::Elarian) and the simulator crate; a dispatcher asks for the
/// [`handler`](Self::handler) of a notification's event and otherwise [`offer`](Self::offer)s
/// it to the stream. The stream is bounded: a full one gives the notification back, so the
/// dispatcher decides what an unclaimed notification means (a default reply, a warning).
pub struct HandlerRegistry<E, H, T> {
    handlers: RwLock<HashMap<E, H>>,
    stream: Mutex<Option<mpsc::Sender<T>>>,
    stream_capacity: usize,
}

impl<E: NamedEvent, H, T> fmt::Debug for HandlerRegistry<E, H, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let handlers = self.handlers.read().unwrap_or_else(|p| p.into_inner());
        let mut events: Vec<&'static str> = handlers.keys().map(|e| e.name()).collect();
        events.sort_unstable();
        f.debug_struct("HandlerRegistry")
            .field("handlers", &events)
            .field("stream_capacity", &self.stream_capacity)
            .finish_non_exhaustive()
    }
}

impl<E: NamedEvent, H: Clone, T> HandlerRegistry<E, H, T> {
    /// An empty registry whose stream holds up to `stream_capacity` notifications (at least
    /// one).
    pub fn new(stream_capacity: usize) -> Self {
        HandlerRegistry {
            handlers: RwLock::new(HashMap::new()),
            stream: Mutex::new(None),
            stream_capacity: stream_capacity.max(1),
        }
    }

    /// Registers `handler` for `event`, replacing any handler it had.
    pub fn set(&self, event: E, handler: H) {
        let mut handlers = self.handlers.write().unwrap_or_else(|p| p.into_inner());
        handlers.insert(event, handler);
    }

    /// Removes the handler of `event`; returns whether there was one.
    pub fn remove(&self, event: E) -> bool {
        let mut handlers = self.handlers.write().unwrap_or_else(|p| p.into_inner());
        handlers.remove(&event).is_some()
    }

    /// The handler registered for `event`, if any.
    pub fn handler(&self, event: E) -> Option<H> {
        let handlers = self.handlers.read().unwrap_or_else(|p| p.into_inner());
        handlers.get(&event).cloned()
    }

    /// Opens the stream of unhandled notifications, replacing (and so ending) any previous one.
    pub fn open_stream(&self) -> NotificationStream<T> {
        let (sender, receiver) = mpsc::channel(self.stream_capacity);
        *self.stream.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender);
        NotificationStream { receiver }
    }

    /// Hands `notification` to the open stream without waiting; gives it back when no stream
    /// is open (or it was dropped) or the stream is full.
    pub fn offer(&self, notification: T) -> Result<(), Unclaimed<T>> {
        let mut stream = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sender) = stream.as_ref() else {
            return Err(Unclaimed::NoStream(notification));
        };
        match sender.try_send(notification) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(notification)) => {
                Err(Unclaimed::StreamFull(notification))
            }
            Err(mpsc::error::TrySendError::Closed(notification)) => {
                *stream = None;
                Err(Unclaimed::NoStream(notification))
            }
        }
    }
}

/// A notification that [`HandlerRegistry::offer`] could not deliver, given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unclaimed<T> {
    /// No stream is open, or its receiver was dropped.
    NoStream(T),
    /// The stream is open but as many notifications as its capacity are waiting.
    StreamFull(T),
}

impl<T> Unclaimed<T> {
    /// The notification.
    pub fn into_inner(self) -> T {
        match self {
            Unclaimed::NoStream(n) | Unclaimed::StreamFull(n) => n,
        }
    }
}

/// A stream of the notifications that no handler took, from
/// [`Elarian::notifications`](crate::Elarian::notifications) (of [`IncomingNotification`]s) or a
/// simulator's `notifications()`. It ends when its registry opens a new stream or is dropped.
pub struct NotificationStream<T = IncomingNotification> {
    receiver: mpsc::Receiver<T>,
}

impl<T> fmt::Debug for NotificationStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationStream")
            .field("waiting", &self.receiver.len())
            .finish()
    }
}

impl<T> Stream for NotificationStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    enum Ev {
        SendMessage,
        Ping,
    }

    impl NamedEvent for Ev {
        const ALL: &'static [Self] = &[Ev::SendMessage, Ev::Ping];

        fn name(self) -> &'static str {
            match self {
                Ev::SendMessage => "sendMessage",
                Ev::Ping => "ping",
            }
        }
    }

    #[test]
    fn names_parse_in_camel_and_snake_case_and_any_letter_case() {
        for &event in Ev::ALL {
            assert_eq!(Ev::from_name(event.name()), Some(event));
        }
        assert_eq!(Ev::from_name("send_message"), Some(Ev::SendMessage));
        assert_eq!(Ev::from_name("SENDMESSAGE"), Some(Ev::SendMessage));
        assert_eq!(Ev::from_name("send"), None);
        assert_eq!(Ev::from_name(""), None);
    }

    #[test]
    fn handlers_are_set_replaced_and_removed_per_event() {
        let registry: HandlerRegistry<Ev, &'static str, u32> = HandlerRegistry::new(4);
        assert_eq!(registry.handler(Ev::Ping), None);
        registry.set(Ev::Ping, "first");
        registry.set(Ev::Ping, "second");
        assert_eq!(registry.handler(Ev::Ping), Some("second"));
        assert_eq!(registry.handler(Ev::SendMessage), None);
        assert!(format!("{registry:?}").contains("ping"));
        assert!(registry.remove(Ev::Ping));
        assert!(!registry.remove(Ev::Ping));
        assert_eq!(registry.handler(Ev::Ping), None);
    }

    #[tokio::test]
    async fn the_stream_is_bounded_replaceable_and_gives_back_what_it_cannot_take() {
        let registry: HandlerRegistry<Ev, (), u32> = HandlerRegistry::new(2);
        assert_eq!(registry.offer(1), Err(Unclaimed::NoStream(1)));

        let mut stream = registry.open_stream();
        assert_eq!(registry.offer(1), Ok(()));
        assert_eq!(registry.offer(2), Ok(()));
        assert_eq!(registry.offer(3), Err(Unclaimed::StreamFull(3)));
        assert_eq!(stream.next().await, Some(1));

        // A new stream replaces the old one, which ends after what it already holds.
        let mut newer = registry.open_stream();
        assert_eq!(registry.offer(4), Ok(()));
        assert_eq!(stream.next().await, Some(2));
        assert_eq!(stream.next().await, None);
        assert_eq!(newer.next().await, Some(4));

        drop(newer);
        assert_eq!(registry.offer(5).map_err(Unclaimed::into_inner), Err(5));
        assert_eq!(registry.offer(6), Err(Unclaimed::NoStream(6)));
    }

    #[test]
    fn a_zero_capacity_is_raised_to_one() {
        let registry: HandlerRegistry<Ev, (), u32> = HandlerRegistry::new(0);
        let _stream = registry.open_stream();
        assert_eq!(registry.offer(1), Ok(()));
        assert_eq!(registry.offer(2), Err(Unclaimed::StreamFull(2)));
    }
}
