//! The observation feed: what the console shows live, at nearly no cost while no console is open.
//!
//! The engine, delivery and the connection handler report here at a few central points (a
//! command's changes, a notification answered, a connection up or down). Every report first
//! reads one atomic, [`Feed::active`]: with no subscriber it returns at once, so an emulator
//! nobody watches pays one relaxed load per command. With subscribers, events are serialized
//! once to small JSON strings and broadcast on a bounded ring ([`FEED_CAPACITY`]): a browser that
//! reads too slowly lags, loses the oldest events and is told to resync from a snapshot, so no
//! subscriber can make the engine hold more memory than the ring.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use elarian_proto::{
    ServerToAppNotification, ServerToAppNotificationReply, ServerToSimulatorNotification,
    server_to_app_customer_notification::Entry as CustomerEntry,
    server_to_app_notification::Entry as AppEntry,
    server_to_simulator_notification::Entry as SimEntry,
};
use prost::Message;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::engine::{Effect, Identity};

/// Events the ring holds; a subscriber further behind than this resyncs from a snapshot.
pub(crate) const FEED_CAPACITY: usize = 512;
/// Customer ids one change event names; a command touching more (a tag command) says `many`.
const MAX_IDS: usize = 64;
/// Notifications the activity page's recent list keeps.
const RECENT_NOTIFICATIONS: usize = 200;
/// Longest reply summary kept for a notification, in characters.
const MAX_SUMMARY: usize = 200;
/// Connections listed in the activity snapshot (the rest are counted).
const MAX_LISTED_CONNECTIONS: usize = 1000;

/// One open app or simulator connection, for the activity page.
#[derive(Clone, Debug)]
struct ConnectionInfo {
    org: String,
    app: String,
    simulator: bool,
    simplex: bool,
    since: i64,
}

/// The feed and the small live registries the console reads.
pub(crate) struct Feed {
    tx: broadcast::Sender<Arc<str>>,
    subscribers: AtomicUsize,
    /// Commands applied while someone watched (the console turns it into commands per second).
    commands: AtomicU64,
    connections: Mutex<BTreeMap<u64, ConnectionInfo>>,
    recent: Mutex<VecDeque<Arc<str>>>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("subscribers", &self.subscribers.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            tx: broadcast::channel(FEED_CAPACITY).0,
            subscribers: AtomicUsize::new(0),
            commands: AtomicU64::new(0),
            connections: Mutex::new(BTreeMap::new()),
            recent: Mutex::new(VecDeque::new()),
        }
    }
}

/// A console's subscription; counts as a subscriber until dropped.
pub(crate) struct Subscription {
    pub rx: broadcast::Receiver<Arc<str>>,
    engine: Arc<crate::engine::Engine>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.engine
            .feed()
            .subscribers
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a command changed, collected under the state lock (only while observed).
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub org: String,
    pub source: &'static str,
    pub customers: Vec<String>,
    pub many: bool,
    pub payments: bool,
}

impl Changes {
    /// Adds a customer id, keeping at most [`MAX_IDS`].
    pub(crate) fn customer(&mut self, id: &str) {
        if self.customers.iter().any(|c| c == id) {
            return;
        }
        if self.customers.len() >= MAX_IDS {
            self.many = true;
        } else {
            self.customers.push(id.to_owned());
        }
    }

    /// Adds the customers the effects are about.
    pub(crate) fn effects<'a>(&mut self, effects: impl IntoIterator<Item = &'a Effect>) {
        for e in effects {
            match e {
                Effect::App(n) => {
                    if let Some(id) = &n.customer_id {
                        self.customer(id);
                    }
                }
                Effect::Simulator(n) => {
                    if let Some((_, Some(id))) = simulator_kind(&n.notification) {
                        self.customer(id);
                    }
                    if matches!(
                        n.notification.entry,
                        Some(
                            SimEntry::SendCustomerPayment(_)
                                | SimEntry::SendChannelPayment(_)
                                | SimEntry::CheckoutPayment(_)
                        )
                    ) {
                        self.payments = true;
                    }
                }
            }
        }
    }
}

impl Feed {
    /// Whether a console watches: the one check every hook makes first.
    #[inline]
    pub(crate) fn active(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0
    }

    /// Subscribes to the feed (see [`Subscription`]).
    pub(crate) fn subscribe(engine: &Arc<crate::engine::Engine>) -> Subscription {
        let feed = engine.feed();
        let rx = feed.tx.subscribe();
        feed.subscribers.fetch_add(1, Ordering::Relaxed);
        Subscription {
            rx,
            engine: engine.clone(),
        }
    }

    fn send(&self, event: Value) -> Arc<str> {
        let text: Arc<str> = event.to_string().into();
        // No receiver is not an error: the console closed between the check and the send.
        let _ = self.tx.send(text.clone());
        text
    }

    /// Commands applied since start while observed.
    pub(crate) fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    /// A command or timer ran (called only while [`Feed::active`]).
    pub(crate) fn applied(&self, changes: Changes) {
        self.commands.fetch_add(1, Ordering::Relaxed);
        if changes.customers.is_empty() && !changes.payments && !changes.many {
            return;
        }
        self.send(json!({
            "type": "changed",
            "org": changes.org,
            "source": changes.source,
            "customers": changes.customers,
            "many": changes.many,
            "payments": changes.payments,
        }));
    }

    /// A connection was accepted.
    pub(crate) fn connection_up(&self, id: u64, who: &Identity, now: i64) {
        let info = ConnectionInfo {
            org: who.org_id.clone(),
            app: who.app_id.clone(),
            simulator: who.simulator,
            simplex: who.simplex,
            since: now,
        };
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.insert(id, info.clone());
        drop(connections);
        if self.active() {
            self.send(
                json!({"type": "connection", "up": true, "connection": connection_json(id, &info)}),
            );
        }
    }

    /// A connection closed.
    pub(crate) fn connection_down(&self, id: u64) {
        let info = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Some(info) = info
            && self.active()
        {
            self.send(json!({"type": "connection", "up": false, "connection": connection_json(id, &info)}));
        }
    }

    /// The open connections (at most [`MAX_LISTED_CONNECTIONS`]) and their total count.
    pub(crate) fn connections(&self) -> (Vec<Value>, usize) {
        let connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let listed = connections
            .iter()
            .take(MAX_LISTED_CONNECTIONS)
            .map(|(id, c)| connection_json(*id, c))
            .collect();
        (listed, connections.len())
    }

    /// The most recent notifications seen while observed, oldest first.
    pub(crate) fn recent(&self) -> Vec<Arc<str>> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A notification to an app was answered, failed or timed out (called only while active).
    pub(crate) fn app_notification(
        &self,
        notification: &ServerToAppNotification,
        org: &str,
        app: &str,
        latency: Duration,
        outcome: Result<&[u8], String>,
    ) {
        let (kind, customer) = app_kind(notification);
        let (ok, reply) = match outcome {
            Ok(bytes) => match ServerToAppNotificationReply::decode(bytes) {
                Ok(r) => (true, reply_summary(&r)),
                Err(e) => (false, format!("undecodable reply: {e}")),
            },
            Err(e) => (false, e),
        };
        self.notification(json!({
            "type": "notification",
            "to": "app",
            "org": org,
            "app": app,
            "kind": kind,
            "customer": customer,
            "latency_ms": latency.as_secs_f64() * 1000.0,
            "ok": ok,
            "reply": truncate(&reply),
        }));
    }

    /// A notification to the simulators was answered, failed or timed out (only while active).
    pub(crate) fn simulator_notification(
        &self,
        notification: &ServerToSimulatorNotification,
        org: &str,
        latency: Duration,
        outcome: Result<(), String>,
    ) {
        let (kind, customer) = simulator_kind(notification).unwrap_or(("unknown", None));
        let (ok, reply) = match outcome {
            Ok(()) => (true, String::new()),
            Err(e) => (false, e),
        };
        self.notification(json!({
            "type": "notification",
            "to": "simulators",
            "org": org,
            "app": Value::Null,
            "kind": kind,
            "customer": customer,
            "latency_ms": latency.as_secs_f64() * 1000.0,
            "ok": ok,
            "reply": truncate(&reply),
        }));
    }

    fn notification(&self, event: Value) {
        let text = self.send(event);
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= RECENT_NOTIFICATIONS {
            recent.pop_front();
        }
        recent.push_back(text);
    }
}

fn connection_json(id: u64, c: &ConnectionInfo) -> Value {
    json!({
        "id": id,
        "org": c.org,
        "app": c.app,
        "role": if c.simulator { "simulator" } else { "app" },
        "simplex": c.simplex,
        "since": c.since,
    })
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_SUMMARY) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// What an app's reply carried: its message (e.g. the next USSD menu) and whether it changed
/// the app data.
fn reply_summary(r: &ServerToAppNotificationReply) -> String {
    let mut parts = Vec::new();
    if let Some(m) = &r.message {
        parts.push(super::api::outbound_text(m));
    }
    if r.data_update.is_some() {
        parts.push("app data updated".into());
    }
    parts.join(" · ")
}

/// The kind of an app notification and the customer it is about.
pub(crate) fn app_kind(n: &ServerToAppNotification) -> (&'static str, Option<&str>) {
    match &n.entry {
        Some(AppEntry::Customer(c)) => {
            let kind = match &c.entry {
                Some(CustomerEntry::Reminder(_)) => "reminder",
                Some(CustomerEntry::MessagingSessionStarted(_)) => "messagingSessionStarted",
                Some(CustomerEntry::MessagingSessionRenewed(_)) => "messagingSessionRenewed",
                Some(CustomerEntry::MessagingSessionEnded(_)) => "messagingSessionEnded",
                Some(CustomerEntry::MessagingConsentUpdate(_)) => "messagingConsentUpdate",
                Some(CustomerEntry::ReceivedMessage(_)) => "receivedMessage",
                Some(CustomerEntry::MessageStatus(_)) => "messageStatus",
                Some(CustomerEntry::SentMessageReaction(_)) => "sentMessageReaction",
                Some(CustomerEntry::ReceivedPayment(_)) => "receivedPayment",
                Some(CustomerEntry::PaymentStatus(_)) => "paymentStatus",
                Some(CustomerEntry::CustomerActivity(_)) => "customerActivity",
                // A kind added to the schema later: the name is not known here yet.
                #[allow(unreachable_patterns)]
                Some(_) | None => "customer",
            };
            (kind, Some(c.customer_id.as_str()))
        }
        Some(AppEntry::Purse(_)) => ("purse", None),
        #[allow(unreachable_patterns)]
        Some(_) | None => ("unknown", None),
    }
}

/// The kind of a simulator notification and the customer it is about.
fn simulator_kind(n: &ServerToSimulatorNotification) -> Option<(&'static str, Option<&str>)> {
    Some(match n.entry.as_ref()? {
        SimEntry::SendMessage(m) => ("sendMessage", Some(m.customer_id.as_str())),
        SimEntry::MakeVoiceCall(m) => ("makeVoiceCall", Some(m.customer_id.as_str())),
        SimEntry::SendCustomerPayment(m) => ("sendCustomerPayment", Some(m.customer_id.as_str())),
        SimEntry::SendChannelPayment(_) => ("sendChannelPayment", None),
        SimEntry::CheckoutPayment(m) => ("checkoutPayment", Some(m.customer_id.as_str())),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use elarian_proto::{
        AppToServerCommand, CreateCustomerCommand, CustomerNumber,
        app_to_server_command::Entry as E, app_to_server_command_reply::Entry as R,
    };

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::{EmulatorConfig, TEST_APP_ID, TEST_ORG_ID};
    use crate::engine::Engine;

    fn engine() -> Arc<Engine> {
        Arc::new(Engine::new(
            EmulatorConfig::default(),
            Arc::new(ManualClock::new(1_000)),
        ))
    }

    fn create(engine: &Engine, number: &str) -> String {
        let out = engine.app_command(
            &Identity::app(TEST_ORG_ID, TEST_APP_ID),
            AppToServerCommand {
                entry: Some(E::CreateCustomer(CreateCustomerCommand {
                    customer_number: Some(CustomerNumber {
                        number: number.into(),
                        ..Default::default()
                    }),
                })),
            },
        );
        let Some(R::UpdateCustomerState(r)) = out.reply.entry else {
            panic!("an update reply");
        };
        r.customer_id.expect("created")
    }

    #[test]
    fn unwatched_engine_records_nothing() {
        let engine = engine();
        assert!(!engine.feed().active());
        create(&engine, "+254700000001");
        assert_eq!(engine.feed().commands(), 0);
        assert!(engine.feed().recent().is_empty());
    }

    #[test]
    fn a_watched_command_names_the_customer_it_changed() {
        let engine = engine();
        let mut sub = Feed::subscribe(&engine);
        assert!(engine.feed().active());
        let id = create(&engine, "+254700000002");
        let event: Value = serde_json::from_str(&sub.rx.try_recv().unwrap()).unwrap();
        assert_eq!(event["type"], "changed");
        assert_eq!(event["org"], TEST_ORG_ID);
        assert_eq!(event["customers"], json!([id]));
        assert_eq!(engine.feed().commands(), 1);
        drop(sub);
        assert!(!engine.feed().active(), "a dropped console stops the feed");
    }

    #[test]
    fn a_slow_subscriber_lags_instead_of_growing_the_feed() {
        let engine = engine();
        let mut sub = Feed::subscribe(&engine);
        for i in 0..FEED_CAPACITY + 10 {
            create(&engine, &format!("+2547001{i:05}"));
        }
        // The ring kept its bound: the oldest events are gone and the reader is told so (the
        // console then tells the page to resync from a snapshot).
        match sub.rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(missed)) => assert_eq!(missed, 10),
            other => panic!("expected a lag, got {other:?}"),
        }
        assert!(sub.rx.try_recv().is_ok());
    }

    #[test]
    fn a_tag_sized_change_says_many_instead_of_listing_every_id() {
        let mut changes = Changes::default();
        for i in 0..MAX_IDS + 5 {
            changes.customer(&format!("el_cst_{i}"));
        }
        assert_eq!(changes.customers.len(), MAX_IDS);
        assert!(changes.many);
    }

    #[test]
    fn connections_are_listed_until_they_close() {
        let engine = engine();
        let who = Identity::app(TEST_ORG_ID, TEST_APP_ID);
        engine.feed().connection_up(7, &who, 5);
        let (listed, open) = engine.feed().connections();
        assert_eq!(open, 1);
        assert_eq!(listed[0]["app"], TEST_APP_ID);
        engine.feed().connection_down(7);
        assert_eq!(engine.feed().connections().1, 0);
    }

    #[test]
    fn long_replies_are_truncated() {
        let long = "x".repeat(MAX_SUMMARY * 2);
        assert_eq!(truncate(&long).chars().count(), MAX_SUMMARY + 1);
        assert_eq!(truncate("short"), "short");
    }
}
