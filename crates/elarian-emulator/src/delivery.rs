//! Delivery of notifications to connections.
//!
//! Every route (one app of an org, or the simulators of an org) has a bounded queue and one
//! dispatcher task. The dispatcher waits while no connection of the route is up, then spreads
//! notifications round-robin over the route's connections, with a bounded number in flight per
//! connection. A notification whose connection drops before it is answered goes back to the
//! front of the route; one the app answers with an error or not at all is not retried (the app
//! saw it). App replies are applied: a `data_update` that differs from the app data the
//! notification carried is stored as the customer's app data (one equal to it means "unchanged",
//! see [`Engine::apply_reply_data_update`]), and a reply `message` is handed to whoever waits for
//! it (a simulator's received message).
//!
//! Each route has two lanes: the *command lane* for notifications a command causes (its caller
//! waits for them to be queued) and the *paced lane* for work nobody waits on (due reminders,
//! large tag commands, recovered notifications). The dispatcher takes the command lane first, so
//! a backlog of paced work never holds up a command, and the paced producers wait for room in
//! their own lane: they go at the apps' pace.
//!
//! A full queue is never a silent loss: a simulator command first reserves room for its
//! notification to the org's apps ([`Hub::reserve_app_room`]), waiting within its budget, and
//! is refused with RSocket REJECTED, *unprocessed*, when none frees up, so that its client can
//! send it again; commands wait for room within a budget and report what could not be queued
//! ([`Hub::deliver`]); work nobody waits on follows the apps' pace and logs what a stalled queue
//! refused ([`Hub::deliver_paced`]). Every refusal and every notification not answered in time
//! is counted ([`DeliveryStats`]). With a data dir every notification has a durable pending
//! record, settled here once it is answered or refused.
//!
//! Simplex connections and connections of the other role never receive notifications.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use elarian_proto::{
    DataMapValue, OutboundMessage, ServerToAppNotificationReply, server_to_app_notification,
};
use elarian_transport::{Connection, Payload, RequestError};
use prost::Message;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};

use crate::engine::{AppNotice, Effect, Engine, Identity, SimulatorNotice};

/// Counters of notification delivery since the emulator started: what was shed, and why. A
/// healthy run under any load shows zeros except `commands_rejected` (refused unprocessed,
/// which clients send again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryStats {
    /// Simulator commands refused with REJECTED, unprocessed, because the apps' notification
    /// queue stayed full for `enqueue_timeout` (their clients send them again).
    pub commands_rejected: u64,
    /// Notifications of processed commands that could not be queued within `enqueue_timeout`
    /// (each reported in its command's reply).
    pub refused_for_commands: u64,
    /// Notifications nobody waits on (reminders, tag commands) refused after a stall of
    /// `stall_timeout` (logged as errors).
    pub refused_paced: u64,
    /// Notifications sent but not answered within `answer_timeout`, or answered with an error.
    pub unanswered: u64,
    /// Simulator notifications (what the apps sent to customers) not kept because no simulator
    /// of the org was connected and its queue was full: nobody is there to play the phone, so
    /// the app's command is not held up for it.
    pub no_simulator: u64,
}

#[derive(Debug, Default)]
struct Counters {
    commands_rejected: AtomicU64,
    refused_for_commands: AtomicU64,
    refused_paced: AtomicU64,
    unanswered: AtomicU64,
    no_simulator: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Limits of notification delivery.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryLimits {
    /// Notifications waiting per route (app or simulators of an org) and lane (commands, paced
    /// work). A command whose notifications find it full waits up to `enqueue_timeout` for
    /// room, then is answered with a failure that says so (or, for a simulator command not yet
    /// processed, refused with REJECTED).
    pub queue: usize,
    /// Notifications in flight per connection.
    pub per_connection: usize,
    /// How long a connection may take to answer one notification.
    pub answer_timeout: Duration,
    /// How long a command waits for room in a full notification queue before it is answered
    /// with `status = false` (its state change stands; the description says which
    /// notifications were not delivered).
    pub enqueue_timeout: Duration,
    /// How long reminder firing and large tag commands, which no caller waits on, wait for a
    /// full queue that makes no progress before refusing the rest (logged as an error).
    pub stall_timeout: Duration,
}

impl Default for DeliveryLimits {
    fn default() -> Self {
        DeliveryLimits {
            queue: 10_000,
            per_connection: 64,
            answer_timeout: Duration::from_secs(30),
            enqueue_timeout: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(60),
        }
    }
}

/// Where a notification goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RouteKey {
    App { org: String, app: String },
    Simulators { org: String },
}

/// A notification on its way, with whoever waits for the app's reply message.
struct Item {
    notice: Notice,
    reply: Option<oneshot::Sender<Option<OutboundMessage>>>,
}

#[derive(Clone)]
enum Notice {
    App(AppNotice),
    Simulator(SimulatorNotice),
}

struct Member {
    id: u64,
    conn: Connection,
    permits: Arc<Semaphore>,
}

struct Route {
    /// The command lane.
    tx: mpsc::Sender<Item>,
    /// The paced lane (work nobody waits on).
    paced_tx: mpsc::Sender<Item>,
    members: Mutex<Vec<Arc<Member>>>,
    next: AtomicUsize,
    joined: Notify,
    dropped: AtomicU64,
}

impl Route {
    /// The next live connection, round-robin; drops closed ones on the way.
    fn pick(&self) -> Option<Arc<Member>> {
        let mut members = self.members.lock().unwrap_or_else(|p| p.into_inner());
        members.retain(|m| !m.conn.is_closed());
        if members.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % members.len();
        Some(members[i].clone())
    }

    fn has_members(&self) -> bool {
        self.members
            .lock()
            .map(|m| m.iter().any(|m| !m.conn.is_closed()))
            .unwrap_or(false)
    }
}

/// The registry of notification routes.
pub(crate) struct Hub {
    engine: Arc<Engine>,
    limits: DeliveryLimits,
    routes: Mutex<HashMap<RouteKey, Arc<Route>>>,
    /// Every open connection, notified or not, so that shutdown can close them all.
    open: Mutex<HashMap<u64, Connection>>,
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
    counters: Arc<Counters>,
}

impl Hub {
    pub(crate) fn new(
        engine: Arc<Engine>,
        limits: DeliveryLimits,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(Hub {
            engine,
            limits,
            routes: Mutex::new(HashMap::new()),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            shutdown,
            counters: Arc::default(),
        })
    }

    fn route(&self, key: &RouteKey) -> Arc<Route> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = routes.get(key) {
            return r.clone();
        }
        let (tx, rx) = mpsc::channel(self.limits.queue.max(1));
        let (paced_tx, paced_rx) = mpsc::channel(self.limits.queue.max(1));
        let route = Arc::new(Route {
            tx,
            paced_tx,
            members: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            joined: Notify::new(),
            dropped: AtomicU64::new(0),
        });
        routes.insert(key.clone(), route.clone());
        tokio::spawn(dispatch(
            key.clone(),
            route.clone(),
            Lanes { rx, paced_rx },
            self.engine.clone(),
            self.limits,
            self.shutdown.clone(),
            self.counters.clone(),
        ));
        route
    }

    /// Tracks an accepted connection and adds it to the route its role implies: simulator
    /// connections get the org's simulator notifications, app connections the app's
    /// notifications unless they are simplex. Returns the id to pass to [`Hub::unregister`].
    pub(crate) fn register(&self, who: &Identity, conn: Connection) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, conn.clone());
        let key = if who.simulator {
            RouteKey::Simulators {
                org: who.org_id.clone(),
            }
        } else if who.simplex {
            return id;
        } else {
            RouteKey::App {
                org: who.org_id.clone(),
                app: who.app_id.clone(),
            }
        };
        let route = self.route(&key);
        route
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::new(Member {
                id,
                conn,
                permits: Arc::new(Semaphore::new(self.limits.per_connection.max(1))),
            }));
        route.joined.notify_waiters();
        id
    }

    /// Forgets a connection (it closed).
    pub(crate) fn unregister(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let routes: Vec<Arc<Route>> = self
            .routes
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        for route in routes {
            route
                .members
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|m| m.id != id);
        }
    }

    /// Closes every open connection (shutdown).
    pub(crate) fn close_all(&self) {
        let open: Vec<Connection> = self
            .open
            .lock()
            .map(|o| o.values().cloned().collect())
            .unwrap_or_default();
        for conn in open {
            conn.close();
        }
    }

    /// The delivery limits.
    pub(crate) fn limits(&self) -> DeliveryLimits {
        self.limits
    }

    /// The delivery counters.
    pub(crate) fn stats(&self) -> DeliveryStats {
        let c = &self.counters;
        DeliveryStats {
            commands_rejected: c.commands_rejected.load(Ordering::Relaxed),
            refused_for_commands: c.refused_for_commands.load(Ordering::Relaxed),
            refused_paced: c.refused_paced.load(Ordering::Relaxed),
            unanswered: c.unanswered.load(Ordering::Relaxed),
            no_simulator: c.no_simulator.load(Ordering::Relaxed),
        }
    }

    /// Reserves room in the command lane of every app route of `org` (the apps a simulator
    /// command notifies), waiting until `deadline`. `None` when a queue stayed full: the
    /// command must then be refused before it runs (counted), so that refusing it loses
    /// nothing. The reservation is spent by [`Hub::deliver`]; dropped, it frees the room.
    pub(crate) async fn reserve_app_room(
        &self,
        org: &str,
        deadline: tokio::time::Instant,
    ) -> Option<Reservation> {
        let routes: Vec<(RouteKey, mpsc::Sender<Item>)> = self
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(key, _)| matches!(key, RouteKey::App { org: o, .. } if o == org))
            .map(|(key, route)| (key.clone(), route.tx.clone()))
            .collect();
        let mut permits = Vec::with_capacity(routes.len());
        for (key, tx) in routes {
            match tokio::time::timeout_at(deadline, tx.reserve_owned()).await {
                Ok(Ok(permit)) => permits.push((key, permit)),
                // Shutting down: delivery reports it.
                Ok(Err(_closed)) => {}
                Err(_elapsed) => {
                    bump(&self.counters.commands_rejected);
                    return None;
                }
            }
        }
        Some(Reservation { permits })
    }

    fn item_of(effect: Effect) -> (RouteKey, Item) {
        match effect {
            Effect::App(n) => (
                RouteKey::App {
                    org: n.org_id.clone(),
                    app: n.app_id.clone(),
                },
                Item {
                    notice: Notice::App(n),
                    reply: None,
                },
            ),
            Effect::Simulator(n) => (
                RouteKey::Simulators {
                    org: n.org_id.clone(),
                },
                Item {
                    notice: Notice::Simulator(n),
                    reply: None,
                },
            ),
        }
    }

    /// Queues notifications, waiting for room in a full route queue until `deadline`; the
    /// effect at `awaited.0` carries `awaited.1`, which receives the app's reply message (or is
    /// dropped when there is none). Returns what could not be queued, so that the command that
    /// caused it can say so: nothing is dropped silently.
    pub(crate) async fn deliver(
        &self,
        effects: Vec<Effect>,
        awaited: Option<(usize, oneshot::Sender<Option<OutboundMessage>>)>,
        deadline: tokio::time::Instant,
        mut reserved: Reservation,
    ) -> Undelivered {
        let mut undelivered = Undelivered::default();
        let (awaited_at, mut reply) = match awaited {
            Some((i, tx)) => (Some(i), Some(tx)),
            None => (None, None),
        };
        for (i, effect) in effects.into_iter().enumerate() {
            let (key, mut item) = Self::item_of(effect);
            if Some(i) == awaited_at {
                item.reply = reply.take();
            }
            if let Some(at) = reserved.permits.iter().position(|(k, _)| *k == key) {
                let (_, permit) = reserved.permits.swap_remove(at);
                permit.send(item);
                continue;
            }
            let route = self.route(&key);
            if matches!(key, RouteKey::Simulators { .. }) && !route.has_members() {
                // No simulator plays this org's phones: keep what fits for one that connects
                // soon, but never make the app's command wait for a queue nobody drains.
                match route.tx.try_send(item) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(item)) => {
                        settle(&self.engine, &item);
                        let n = self.counters.no_simulator.fetch_add(1, Ordering::Relaxed) + 1;
                        if n.is_power_of_two() {
                            tracing::info!(
                                ?key,
                                not_kept = n,
                                "no simulator connected: its notifications are not kept"
                            );
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => undelivered.count(&key, true),
                }
                continue;
            }
            // Past the deadline this still takes free room at once: timeouts poll first.
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Err(e) = route.tx.send_timeout(item, wait).await {
                let closed = matches!(e, mpsc::error::SendTimeoutError::Closed(_));
                undelivered.count(&key, closed);
                bump(&self.counters.refused_for_commands);
                if let mpsc::error::SendTimeoutError::Timeout(item) = e {
                    // Refused and reported to the caller: nothing left to deliver later. (A
                    // notification refused by a shutdown stays pending for the next start.)
                    settle(&self.engine, &item);
                }
                let dropped = route.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // One line per power of two: a flood of refusals must not flood the log too.
                if dropped.is_power_of_two() {
                    tracing::warn!(?key, closed, dropped, "notification queue full: refused");
                }
            }
        }
        undelivered
    }

    /// Queues notifications at the pace the apps take them, for work no caller waits on (due
    /// reminders, large tag commands). While a route has a live connection this waits for room
    /// as long as the route makes progress; a route that stays full for `limits.stall_timeout`
    /// (its app is not connected, or stopped answering) gets the rest refused, counted and
    /// logged as an error.
    pub(crate) async fn deliver_paced(&self, effects: Vec<Effect>) {
        let mut refused: HashMap<RouteKey, u64> = HashMap::new();
        for effect in effects {
            let (key, mut item) = Self::item_of(effect);
            if refused.contains_key(&key) {
                settle(&self.engine, &item);
                bump(&self.counters.refused_paced);
                *refused.entry(key).or_default() += 1;
                continue;
            }
            let route = self.route(&key);
            // Without a connection nothing drains the queue: waiting long would only hold up
            // the scheduler's other routes.
            let patience = if route.has_members() {
                self.limits.stall_timeout
            } else {
                self.limits.enqueue_timeout
            };
            let stalled_at = crate::clock::deadline_after(patience);
            loop {
                let wait = stalled_at
                    .saturating_duration_since(tokio::time::Instant::now())
                    .min(Duration::from_millis(500));
                match route.paced_tx.send_timeout(item, wait).await {
                    Ok(()) => break,
                    Err(mpsc::error::SendTimeoutError::Timeout(back))
                        if tokio::time::Instant::now() < stalled_at =>
                    {
                        item = back;
                    }
                    Err(e) => {
                        if let mpsc::error::SendTimeoutError::Timeout(item) = e {
                            settle(&self.engine, &item);
                        }
                        bump(&self.counters.refused_paced);
                        *refused.entry(key).or_default() += 1;
                        break;
                    }
                }
            }
        }
        for (key, count) in refused {
            tracing::error!(
                ?key,
                count,
                "notification queue stayed full: notifications refused"
            );
        }
    }
}

/// Room reserved in the command lanes of some routes (see [`Hub::reserve_app_room`]).
#[derive(Default)]
pub(crate) struct Reservation {
    permits: Vec<(RouteKey, mpsc::OwnedPermit<Item>)>,
}

/// Notifications a command could not queue.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Undelivered {
    /// For apps, because their queue stayed full.
    pub app: usize,
    /// For simulators, because their queue stayed full.
    pub simulator: usize,
    /// Because delivery is shutting down.
    pub closed: usize,
}

impl Undelivered {
    fn count(&mut self, key: &RouteKey, closed: bool) {
        match (closed, key) {
            (true, _) => self.closed += 1,
            (false, RouteKey::App { .. }) => self.app += 1,
            (false, RouteKey::Simulators { .. }) => self.simulator += 1,
        }
    }

    /// True when everything was queued.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Undelivered::default()
    }

    /// A description for the command's reply.
    pub(crate) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.app > 0 {
            parts.push(format!(
                "{} notification(s) not delivered: the app's notification queue is full",
                self.app
            ));
        }
        if self.simulator > 0 {
            parts.push(format!(
                "{} notification(s) not delivered: the simulators' notification queue is full",
                self.simulator
            ));
        }
        if self.closed > 0 {
            parts.push(format!(
                "{} notification(s) not delivered: the emulator is shutting down",
                self.closed
            ));
        }
        parts.join("; ")
    }
}

/// The receiving ends of a route's two lanes.
struct Lanes {
    rx: mpsc::Receiver<Item>,
    paced_rx: mpsc::Receiver<Item>,
}

/// The dispatcher of one route.
async fn dispatch(
    key: RouteKey,
    route: Arc<Route>,
    lanes: Lanes,
    engine: Arc<Engine>,
    limits: DeliveryLimits,
    mut shutdown: watch::Receiver<bool>,
    counters: Arc<Counters>,
) {
    let Lanes {
        mut rx,
        mut paced_rx,
    } = lanes;
    // Retries are bounded by the notifications in flight, which the permits bound.
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<Item>();
    loop {
        // Retries first, then what commands wait for, then paced work.
        let item = tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            Some(item) = retry_rx.recv() => item,
            item = rx.recv() => match item {
                Some(item) => item,
                None => return,
            },
            Some(item) = paced_rx.recv() => item,
        };
        let member = loop {
            if let Some(m) = route.pick() {
                break m;
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::timeout(Duration::from_millis(250), route.joined.notified()) => {}
            }
        };
        let Ok(permit) = member.permits.clone().acquire_owned().await else {
            let _ = retry_tx.send(item);
            continue;
        };
        let engine = engine.clone();
        let retry_tx = retry_tx.clone();
        let key = key.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            let mut item = item;
            let (payload, sent) = encode(&engine, &mut item.notice);
            // Timed only while a console watches.
            let started = engine.feed().active().then(std::time::Instant::now);
            let answer = tokio::time::timeout(
                limits.answer_timeout,
                member.conn.request_response(Payload {
                    data: payload,
                    metadata: None,
                }),
            )
            .await;
            drop(permit);
            if let Some(started) = started
                && engine.feed().active()
            {
                observe(&engine, &item.notice, started.elapsed(), &answer);
            }
            let pending = pending_of(&item);
            match answer {
                Ok(Ok(reply)) => apply_reply(&engine, item, sent, reply.data).await,
                Ok(Err(RequestError::Closed(reason))) => {
                    tracing::debug!(?key, %reason, "connection dropped mid-delivery; retrying");
                    let _ = retry_tx.send(item);
                    return;
                }
                Ok(Err(e)) => {
                    bump(&counters.unanswered);
                    tracing::warn!(?key, error = %e, "notification failed");
                }
                Err(_) => {
                    bump(&counters.unanswered);
                    tracing::warn!(?key, "notification not answered in time");
                }
            }
            // Answered, or failed in a way the app saw: it is not sent again, even after a
            // restart.
            if let Some(id) = pending {
                engine.settle_pending(id);
            }
        });
    }
}

/// Reports a delivered notification, its reply and latency to the console's feed.
fn observe(
    engine: &Engine,
    notice: &Notice,
    latency: Duration,
    answer: &Result<Result<Payload, RequestError>, tokio::time::error::Elapsed>,
) {
    let outcome = match answer {
        Ok(Ok(reply)) => Ok(reply.data.as_ref()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("not answered in time".to_owned()),
    };
    match notice {
        Notice::App(n) => {
            engine
                .feed()
                .app_notification(&n.notification, &n.org_id, &n.app_id, latency, outcome)
        }
        Notice::Simulator(n) => engine.feed().simulator_notification(
            &n.notification,
            &n.org_id,
            latency,
            outcome.map(|_| ()),
        ),
    }
}

fn pending_of(item: &Item) -> Option<u64> {
    match &item.notice {
        Notice::App(n) => n.pending,
        Notice::Simulator(n) => n.pending,
    }
}

/// Forgets the durable record of a notification that will not be delivered.
fn settle(engine: &Engine, item: &Item) {
    if let Some(id) = pending_of(item) {
        engine.settle_pending(id);
    }
}

/// Encodes a notification for the wire, and returns the customer's app data it carries (the
/// snapshot a reply's `data_update` is compared with). The notice keeps the app data it was
/// sent with (a retry refreshes it again), which spares a copy of every notification.
fn encode(engine: &Engine, notice: &mut Notice) -> (Bytes, Option<DataMapValue>) {
    match notice {
        Notice::App(n) => {
            let mut sent = None;
            if let Some(server_to_app_notification::Entry::Customer(c)) =
                n.notification.entry.as_mut()
            {
                // The app data sent is the stored one at delivery time, not at queueing time.
                if let Some(customer_id) = &n.customer_id {
                    c.app_data = engine.app_data(&n.org_id, &n.app_id, customer_id);
                }
                sent = c.app_data.clone();
            }
            (Bytes::from(n.notification.encode_to_vec()), sent)
        }
        Notice::Simulator(n) => (Bytes::from(n.notification.encode_to_vec()), None),
    }
}

async fn apply_reply(engine: &Engine, item: Item, sent: Option<DataMapValue>, data: Bytes) {
    let Notice::App(notice) = &item.notice else {
        return;
    };
    let reply = match ServerToAppNotificationReply::decode(data) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(app = %notice.app_id, error = %e, "undecodable notification reply ignored");
            return;
        }
    };
    if let (Some(update), Some(customer_id)) = (reply.data_update, &notice.customer_id) {
        let (_, durable) = engine.apply_reply_data_update(
            &notice.org_id,
            &notice.app_id,
            customer_id,
            &sent,
            update.data,
        );
        if let Err(e) = durable.wait().await {
            tracing::error!(error = %e, "app data from a notification reply not persisted");
        }
    }
    if let Some(tx) = item.reply {
        let _ = tx.send(reply.message);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use elarian_proto::{
        AppDataUpdate, AppToServerCommand, CreateCustomerCommand, CustomerNumber,
        ServerToAppNotification, app_to_server_command::Entry as E,
        app_to_server_command_reply::Entry as R, data_map_value::Value,
    };

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::{EmulatorConfig, TEST_APP_ID, TEST_ORG_ID};

    fn text(v: &str) -> Option<DataMapValue> {
        Some(DataMapValue {
            value: Some(Value::StringVal(v.into())),
        })
    }

    fn notice(customer_id: &str) -> Item {
        Item {
            notice: Notice::App(AppNotice {
                org_id: TEST_ORG_ID.into(),
                app_id: TEST_APP_ID.into(),
                customer_id: Some(customer_id.into()),
                pending: None,
                notification: ServerToAppNotification::default(),
                awaits_reply: false,
            }),
            reply: None,
        }
    }

    fn reply_with(data: Option<DataMapValue>) -> Bytes {
        Bytes::from(
            ServerToAppNotificationReply {
                data_update: Some(AppDataUpdate { data }),
                message: None,
            }
            .encode_to_vec(),
        )
    }

    #[tokio::test]
    async fn an_echoed_reply_does_not_overwrite_newer_app_data() {
        let engine = Engine::new(EmulatorConfig::default(), Arc::new(ManualClock::new(0)));
        let app = Identity::app(TEST_ORG_ID, TEST_APP_ID);
        let created = engine.app_command(
            &app,
            AppToServerCommand {
                entry: Some(E::CreateCustomer(CreateCustomerCommand {
                    customer_number: Some(CustomerNumber {
                        number: "+254700000001".into(),
                        ..Default::default()
                    }),
                })),
            },
        );
        let Some(R::UpdateCustomerState(r)) = created.reply.entry else {
            panic!("unexpected reply");
        };
        let id = r.customer_id.expect("customer id");
        let stored = || engine.app_data(TEST_ORG_ID, TEST_APP_ID, &id);
        // Step 1 of a USSD flow: the app stores "menu-1" in its reply.
        apply_reply(&engine, notice(&id), None, reply_with(text("menu-1"))).await;
        assert_eq!(stored(), text("menu-1"));
        // Two notifications went out carrying "menu-1"; the reply to the newer one stores
        // "menu-2", then the late reply to the older one echoes what it received.
        apply_reply(
            &engine,
            notice(&id),
            text("menu-1"),
            reply_with(text("menu-2")),
        )
        .await;
        apply_reply(
            &engine,
            notice(&id),
            text("menu-1"),
            reply_with(text("menu-1")),
        )
        .await;
        assert_eq!(stored(), text("menu-2"), "an echo is no change");
        // A real change in a late reply still applies: the last change wins.
        apply_reply(
            &engine,
            notice(&id),
            text("menu-1"),
            reply_with(text("end")),
        )
        .await;
        assert_eq!(stored(), text("end"));
        // Echoing "no data" does not clear data stored since.
        apply_reply(&engine, notice(&id), None, reply_with(None)).await;
        assert_eq!(stored(), text("end"));
    }
}
