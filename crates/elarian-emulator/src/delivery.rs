//! Delivery of notifications to connections.
//!
//! Every route (one app of an org, or the simulators of an org) has a bounded queue and one
//! dispatcher task. The dispatcher waits while no connection of the route is up, then spreads
//! notifications round-robin over the route's connections, with a bounded number in flight per
//! connection. A notification whose connection drops before it is answered goes back to the
//! front of the route; one the app answers with an error or not at all is not retried (the app
//! saw it). App replies are applied: a `data_update` is stored as the customer's app data, and a
//! reply `message` is handed to whoever waits for it (a simulator's received message).
//!
//! Simplex connections and connections of the other role never receive notifications.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use elarian_proto::{OutboundMessage, ServerToAppNotificationReply, server_to_app_notification};
use elarian_transport::{Connection, Payload, RequestError};
use prost::Message;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};

use crate::engine::{AppNotice, Effect, Engine, Identity, SimulatorNotice};

/// Limits of notification delivery.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryLimits {
    /// Notifications waiting per route (app or simulators of an org); beyond it new ones are
    /// dropped with a warning.
    pub queue: usize,
    /// Notifications in flight per connection.
    pub per_connection: usize,
    /// How long a connection may take to answer one notification.
    pub answer_timeout: Duration,
}

impl Default for DeliveryLimits {
    fn default() -> Self {
        DeliveryLimits {
            queue: 10_000,
            per_connection: 64,
            answer_timeout: Duration::from_secs(30),
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
    tx: mpsc::Sender<Item>,
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
        })
    }

    fn route(&self, key: &RouteKey) -> Arc<Route> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = routes.get(key) {
            return r.clone();
        }
        let (tx, rx) = mpsc::channel(self.limits.queue.max(1));
        let route = Arc::new(Route {
            tx,
            members: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            joined: Notify::new(),
            dropped: AtomicU64::new(0),
        });
        routes.insert(key.clone(), route.clone());
        tokio::spawn(dispatch(
            key.clone(),
            route.clone(),
            rx,
            self.engine.clone(),
            self.limits,
            self.shutdown.clone(),
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

    fn enqueue(&self, key: RouteKey, item: Item) {
        let route = self.route(&key);
        if let Err(e) = route.tx.try_send(item) {
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "route closed",
            };
            let dropped = route.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // One line per power of two: a flood of drops must not flood the log too.
            if dropped.is_power_of_two() {
                tracing::warn!(?key, reason, dropped, "notifications dropped");
            }
        }
    }

    /// Queues notifications without waiting (commands must not stall on a slow app).
    pub(crate) fn dispatch(&self, effects: Vec<Effect>) {
        for effect in effects {
            let (key, item) = Self::item_of(effect);
            self.enqueue(key, item);
        }
    }

    /// Queues notifications; the one at `awaited` carries `reply`, which receives the app's
    /// reply message (or is dropped when there is none).
    pub(crate) fn dispatch_awaiting(
        &self,
        effects: Vec<Effect>,
        awaited: usize,
        reply: oneshot::Sender<Option<OutboundMessage>>,
    ) {
        let mut reply = Some(reply);
        for (i, effect) in effects.into_iter().enumerate() {
            let (key, mut item) = Self::item_of(effect);
            if i == awaited {
                item.reply = reply.take();
            }
            self.enqueue(key, item);
        }
    }

    /// Queues notifications, waiting for room while the route has a live connection to drain
    /// it (the reminder scheduler, so that a burst of due reminders follows the app's pace).
    pub(crate) async fn dispatch_paced(&self, effects: Vec<Effect>) {
        for effect in effects {
            let (key, mut item) = Self::item_of(effect);
            let route = self.route(&key);
            loop {
                if !route.has_members() {
                    self.enqueue(key, item);
                    break;
                }
                match route
                    .tx
                    .send_timeout(item, Duration::from_millis(500))
                    .await
                {
                    Ok(()) => break,
                    Err(mpsc::error::SendTimeoutError::Timeout(back)) => item = back,
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => break,
                }
            }
        }
    }
}

/// The dispatcher of one route.
async fn dispatch(
    key: RouteKey,
    route: Arc<Route>,
    mut rx: mpsc::Receiver<Item>,
    engine: Arc<Engine>,
    limits: DeliveryLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    // Retries are bounded by the notifications in flight, which the permits bound.
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<Item>();
    loop {
        let item = tokio::select! {
            biased;
            _ = shutdown.changed() => return,
            Some(item) = retry_rx.recv() => item,
            item = rx.recv() => match item {
                Some(item) => item,
                None => return,
            },
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
        tokio::spawn(async move {
            let payload = encode(&engine, &item.notice);
            let answer = tokio::time::timeout(
                limits.answer_timeout,
                member.conn.request_response(Payload {
                    data: payload,
                    metadata: None,
                }),
            )
            .await;
            drop(permit);
            match answer {
                Ok(Ok(reply)) => apply_reply(&engine, item, reply.data).await,
                Ok(Err(RequestError::Closed(reason))) => {
                    tracing::debug!(?key, %reason, "connection dropped mid-delivery; retrying");
                    let _ = retry_tx.send(item);
                }
                Ok(Err(e)) => tracing::warn!(?key, error = %e, "notification failed"),
                Err(_) => tracing::warn!(?key, "notification not answered in time"),
            }
        });
    }
}

fn encode(engine: &Engine, notice: &Notice) -> Bytes {
    match notice {
        Notice::App(n) => {
            let mut notification = n.notification.clone();
            // The app data sent is the stored one at delivery time, not at queueing time.
            if let (Some(customer_id), Some(server_to_app_notification::Entry::Customer(c))) =
                (&n.customer_id, notification.entry.as_mut())
            {
                c.app_data = engine.app_data(&n.org_id, &n.app_id, customer_id);
            }
            Bytes::from(notification.encode_to_vec())
        }
        Notice::Simulator(n) => Bytes::from(n.notification.encode_to_vec()),
    }
}

async fn apply_reply(engine: &Engine, item: Item, data: Bytes) {
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
        let durable =
            engine.apply_data_update(&notice.org_id, &notice.app_id, customer_id, update.data);
        if let Err(e) = durable.wait().await {
            tracing::error!(error = %e, "app data from a notification reply not persisted");
        }
    }
    if let Some(tx) = item.reply {
        let _ = tx.send(reply.message);
    }
}
