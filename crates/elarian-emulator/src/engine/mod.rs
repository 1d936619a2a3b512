//! The protocol-independent core: every app and simulator command with Elarian's semantics.
//!
//! The engine takes decoded commands and returns the reply plus *effects*: notifications to
//! deliver to apps or simulators. It never touches a socket, and reads time from an injectable
//! [`Clock`], so tests drive it directly and move time by hand:
//!
//! ```
//! use std::sync::Arc;
//! use elarian_emulator::clock::ManualClock;
//! use elarian_emulator::config::{EmulatorConfig, TEST_APP_ID, TEST_ORG_ID};
//! use elarian_emulator::engine::{Engine, Identity};
//! use elarian_proto::{app_to_server_command::Entry, AppToServerCommand, GenerateAuthTokenCommand};
//!
//! let engine = Engine::new(EmulatorConfig::default(), Arc::new(ManualClock::new(0)));
//! let app = Identity::app(TEST_ORG_ID, TEST_APP_ID);
//! let out = engine.app_command(&app, AppToServerCommand {
//!     entry: Some(Entry::GenerateAuthToken(GenerateAuthTokenCommand {})),
//! });
//! assert!(out.effects.is_empty());
//! ```

mod activity;
mod customers;
mod messaging;
mod payments;
mod reminders;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use elarian_proto::{
    AppConnectionMetadata, AppToServerCommand, AppToServerCommandReply, CustomerNumber,
    DataMapValue, IndexMapping, ServerToAppCustomerNotification, ServerToAppNotification,
    ServerToSimulatorNotification, SimulatorToServerCommand, SimulatorToServerCommandReply,
    app_to_server_command::Entry as AppEntry, app_to_server_command_reply::Entry as ReplyEntry,
    server_to_app_customer_notification::Entry as CustomerEntry,
    simulator_to_server_command::Entry as SimEntry,
};
use prost::Message;
use tokio::sync::{Notify, oneshot};

use crate::clock::{Clock, Millis, to_timestamp};
use crate::config::EmulatorConfig;
use crate::record::{
    CustomerRecord, PendingRecord, PurseRecord, TagReminderRecord, TokenRecord, TransactionRecord,
};
use crate::state::{OrgIdx, State, TimerKind};
use crate::store::{Store, StoreError, StoreOp, Table, org_key, pending_key, split_org_key};

pub use messaging::InboundExchange;

/// Who sent a command: the org and app a connection authenticated as, and its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Organization id.
    pub org_id: String,
    /// App id.
    pub app_id: String,
    /// True for simulator connections (`simulator_mode` in the SETUP).
    pub simulator: bool,
    /// True when the connection asked for no notifications (`simplex_mode`).
    pub simplex: bool,
}

impl Identity {
    /// An app (non-simulator, notification-enabled) identity.
    pub fn app(org_id: &str, app_id: &str) -> Self {
        Identity {
            org_id: org_id.into(),
            app_id: app_id.into(),
            simulator: false,
            simplex: false,
        }
    }

    /// A simulator identity.
    pub fn simulator(org_id: &str, app_id: &str) -> Self {
        Identity {
            simulator: true,
            simplex: true,
            ..Identity::app(org_id, app_id)
        }
    }
}

/// Why a SETUP was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an API key nor an auth token was given.
    #[error("missing credentials: an api_key or an auth_token is required")]
    MissingCredentials,
    /// The org id is not configured.
    #[error("unknown organization {0}")]
    UnknownOrg(String),
    /// The app id is not configured in the org.
    #[error("unknown app {app} in organization {org}")]
    UnknownApp {
        /// Org id.
        org: String,
        /// App id.
        app: String,
    },
    /// The API key is not one of the app's keys.
    #[error("invalid API key for app {0}")]
    InvalidApiKey(String),
    /// The auth token is unknown or issued to another app.
    #[error("invalid auth token")]
    InvalidToken,
    /// The auth token's lifetime is over.
    #[error("expired auth token")]
    ExpiredToken,
}

/// A notification for an app.
#[derive(Clone, Debug, PartialEq)]
pub struct AppNotice {
    /// Org id.
    pub org_id: String,
    /// App id.
    pub app_id: String,
    /// The customer the notification is about (for refreshing its app data at delivery).
    pub customer_id: Option<String>,
    /// With a data dir, the id of its durable pending record, which delivery settles once the
    /// notification is answered or refused.
    pub pending: Option<u64>,
    /// The notification.
    pub notification: ServerToAppNotification,
    /// True when the sender waits for the app's reply (a received message whose reply message
    /// goes back to the simulator).
    pub awaits_reply: bool,
}

/// A notification for the simulators of an org.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorNotice {
    /// Org id.
    pub org_id: String,
    /// With a data dir, the id of its durable pending record (see [`AppNotice::pending`]).
    pub pending: Option<u64>,
    /// The notification.
    pub notification: ServerToSimulatorNotification,
}

/// Something to deliver as a consequence of a command or a timer.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// To the app's notification-enabled connections.
    App(AppNotice),
    /// To the org's simulator connections.
    Simulator(SimulatorNotice),
}

/// Completes when the changes of a command are durable (immediately without a data dir).
#[derive(Debug, Default)]
pub struct Durable(Option<oneshot::Receiver<Result<(), StoreError>>>);

impl Durable {
    /// Whether the changes are durable already (always without a data dir).
    pub fn is_done(&self) -> bool {
        self.0.is_none()
    }

    /// Waits for the commit.
    pub async fn wait(self) -> Result<(), StoreError> {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx.await.unwrap_or(Err(StoreError::Closed)),
        }
    }
}

/// The result of a command: its reply, the notifications it causes and its durability.
#[derive(Debug)]
pub struct Outcome<R> {
    /// The reply to send back.
    pub reply: R,
    /// Notifications to deliver, in order.
    pub effects: Vec<Effect>,
    /// Completes once the state change is committed; acknowledge only after it.
    pub durable: Durable,
}

/// The result of a simulator command.
#[derive(Debug)]
pub struct SimulatorOutcome {
    /// The reply, unless the command waits for the app (see `exchange`).
    pub reply: SimulatorToServerCommandReply,
    /// Notifications to deliver.
    pub effects: Vec<Effect>,
    /// Completes once the state change is committed.
    pub durable: Durable,
    /// For a received message: the effect index of the notification whose reply the simulator
    /// waits for, and the context to pass to [`Engine::inbound_reply`].
    pub exchange: Option<(usize, InboundExchange)>,
}

/// The emulator's engine. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Engine {
    state: Mutex<State>,
    config: Arc<EmulatorConfig>,
    clock: Arc<dyn Clock>,
    store: Option<Store>,
    timers_changed: Notify,
    /// Pending notifications read from the data dir at open, for delivery to pick up.
    recovered: Mutex<Vec<Effect>>,
    /// What the console watches (nearly free while no console is open).
    feed: crate::console::feed::Feed,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("durable", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

/// Per-command working context over the locked state.
pub(crate) struct Tx<'a> {
    pub st: &'a mut State,
    pub cfg: &'a EmulatorConfig,
    pub org: OrgIdx,
    pub app: &'a str,
    pub now: Millis,
    pub effects: Vec<Effect>,
}

impl Engine {
    /// An engine keeping everything in memory.
    pub fn new(config: EmulatorConfig, clock: Arc<dyn Clock>) -> Self {
        Engine {
            state: Mutex::new(State::new(config.orgs.clone())),
            config: Arc::new(config),
            clock,
            store: None,
            timers_changed: Notify::new(),
            recovered: Mutex::new(Vec::new()),
            feed: Default::default(),
        }
    }

    /// An engine persisting to `data_dir` (created if needed), loaded with what it holds.
    pub fn open(
        config: EmulatorConfig,
        clock: Arc<dyn Clock>,
        data_dir: &Path,
    ) -> Result<Self, StoreError> {
        let (store, loaded) = Store::open(data_dir)?;
        let mut state = State::new(config.orgs.clone());
        state.persist = true;
        let mut skipped = 0usize;
        for (key, bytes) in loaded.customers {
            let Some((org, _)) = split_org_key(&key) else {
                skipped += 1;
                continue;
            };
            let (Some(idx), Ok(rec)) = (
                state.org_index(org),
                CustomerRecord::decode(bytes.as_slice()),
            ) else {
                skipped += 1;
                continue;
            };
            let slot = state.orgs[idx].add_customer(rec);
            reminders::reschedule_slot(&mut state, idx, slot);
        }
        for (key, bytes) in loaded.purses {
            match (
                split_org_key(&key).and_then(|(o, _)| state.org_index(o)),
                PurseRecord::decode(bytes.as_slice()),
            ) {
                (Some(idx), Ok(p)) => {
                    state.orgs[idx].purses.insert(p.id.clone(), p);
                }
                _ => skipped += 1,
            }
        }
        for (key, bytes) in loaded.transactions {
            match (
                split_org_key(&key).and_then(|(o, _)| state.org_index(o)),
                TransactionRecord::decode(bytes.as_slice()),
            ) {
                (Some(idx), Ok(t)) => {
                    let id = split_org_key(&key).map(|(_, id)| id.to_owned());
                    if let Some(id) = id {
                        payments::restore(&mut state, idx, &id, &t);
                        state.orgs[idx].transactions.insert(id, t);
                    }
                }
                _ => skipped += 1,
            }
        }
        for (key, bytes) in loaded.tag_reminders {
            match (
                split_org_key(&key).and_then(|(o, _)| state.org_index(o)),
                TagReminderRecord::decode(bytes.as_slice()),
            ) {
                (Some(idx), Ok(r)) => {
                    state.orgs[idx].tag_reminders.insert(r.id(), r);
                }
                _ => skipped += 1,
            }
        }
        let mut recovered = Vec::new();
        for (key, bytes) in loaded.pending {
            match (key.parse::<u64>(), PendingRecord::decode(bytes.as_slice())) {
                (Ok(id), Ok(rec)) => {
                    state.next_pending = state.next_pending.max(id.saturating_add(1));
                    match pending_effect(id, rec) {
                        Some(effect) => recovered.push(effect),
                        None => skipped += 1,
                    }
                }
                _ => skipped += 1,
            }
        }
        if !recovered.is_empty() {
            tracing::info!(
                count = recovered.len(),
                "notifications not answered before the last stop will be delivered"
            );
        }
        for (key, bytes) in loaded.tokens {
            match TokenRecord::decode(bytes.as_slice()) {
                Ok(t) => {
                    // Data dirs written before tokens were hashed at rest hold the token
                    // itself as the key: hash it, and rewrite the record at the next commit.
                    let key = if key.starts_with(crate::ids::AUTH_TOKEN_PREFIX) {
                        let hashed = crate::ids::token_key(&key);
                        state.dirty.tokens.push(key);
                        state.dirty.tokens.push(hashed.clone());
                        hashed
                    } else {
                        key
                    };
                    state.tokens.insert(key, t);
                }
                Err(_) => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(
                skipped,
                "records of unknown orgs or undecodable records were ignored"
            );
        }
        Ok(Engine {
            state: Mutex::new(state),
            config: Arc::new(config),
            clock,
            store: Some(store),
            timers_changed: Notify::new(),
            recovered: Mutex::new(recovered),
            feed: Default::default(),
        })
    }

    /// Commits queued writes and closes the data dir (blocking); later changes stay in memory
    /// and their [`Durable`] reports [`StoreError::Closed`].
    pub fn close(&self) {
        if let Some(store) = &self.store {
            store.close();
        }
    }

    /// Whether commands may have to wait for room in a write queue (with a data dir only).
    pub fn has_write_queue(&self) -> bool {
        self.store.is_some()
    }

    /// Waits, up to `timeout`, until the data dir's write queue has room (at once without a
    /// data dir). Await it before a command: commands hand their writes over under the state
    /// lock without blocking, so this is where a slow disk slows callers down, outside the lock
    /// and without holding a worker thread.
    pub async fn ready_for_writes(&self, timeout: std::time::Duration) -> Result<(), StoreError> {
        match &self.store {
            Some(store) => store.room(timeout).await,
            None => Ok(()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EmulatorConfig {
        &self.config
    }

    /// The current time of the engine's clock.
    pub fn now(&self) -> Millis {
        self.clock.now_millis()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state as consistent as the last completed
        // statement; serving on beats taking the whole emulator down.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a SETUP's credentials: an API key of the app, or an unexpired token issued to it.
    pub fn authenticate(&self, meta: &AppConnectionMetadata) -> Result<Identity, AuthError> {
        let org = self
            .config
            .org(&meta.org_id)
            .ok_or_else(|| AuthError::UnknownOrg(meta.org_id.clone()))?;
        let app = org.app(&meta.app_id).ok_or_else(|| AuthError::UnknownApp {
            org: meta.org_id.clone(),
            app: meta.app_id.clone(),
        })?;
        match (&meta.api_key, &meta.auth_token) {
            (Some(key), _) if !key.is_empty() => {
                // Compared in constant time: how long a refusal takes says nothing of how
                // much of a guessed key was right.
                let matches = |k: &String| crate::ids::secrets_equal(k, key);
                if !app.api_keys.iter().any(matches) {
                    return Err(AuthError::InvalidApiKey(app.id.clone()));
                }
            }
            (_, Some(token)) if !token.is_empty() => {
                let st = self.lock();
                // Tokens are kept by their hash (see `ids::token_key`).
                let rec = st
                    .tokens
                    .get(&crate::ids::token_key(token))
                    .ok_or(AuthError::InvalidToken)?;
                if rec.org_id != meta.org_id || rec.app_id != meta.app_id {
                    return Err(AuthError::InvalidToken);
                }
                if rec.expires_at <= self.now() {
                    return Err(AuthError::ExpiredToken);
                }
            }
            _ => return Err(AuthError::MissingCredentials),
        }
        Ok(Identity {
            org_id: meta.org_id.clone(),
            app_id: meta.app_id.clone(),
            simulator: meta.simulator_mode,
            simplex: meta.simplex_mode,
        })
    }

    /// Runs `f` in a transaction context and packages the outcome, persisting dirty records.
    fn with_tx<R>(&self, who: &Identity, f: impl FnOnce(&mut Tx<'_>) -> R) -> Outcome<R>
    where
        R: Default,
    {
        let now = self.now();
        let mut st = self.lock();
        let Some(org) = st.org_index(&who.org_id) else {
            // authenticate() guarantees a configured org; an unknown one gets the default reply.
            return Outcome {
                reply: R::default(),
                effects: Vec::new(),
                durable: Durable::default(),
            };
        };
        let earliest_before = st.earliest_due();
        let observed = self.feed.active();
        st.observe = observed;
        let mut tx = Tx {
            st: &mut st,
            cfg: &self.config,
            org,
            app: &who.app_id,
            now,
            effects: Vec::new(),
        };
        let reply = f(&mut tx);
        let mut effects = std::mem::take(&mut tx.effects);
        let changes = observed.then(|| observed_changes(&st, org, "command", &effects));
        self.track_pending(&mut st, &mut effects);
        let durable = self.flush(&mut st);
        let earliest_after = st.earliest_due();
        drop(st);
        if let Some(changes) = changes {
            self.feed.applied(changes);
        }
        if earliest_after.is_some() && earliest_after != earliest_before {
            self.timers_changed.notify_one();
        }
        Outcome {
            reply,
            effects,
            durable,
        }
    }

    /// With a data dir, gives each notification a pending record, written in the same commit
    /// as the change that caused it: a notification is durable exactly when its cause is.
    fn track_pending(&self, st: &mut State, effects: &mut [Effect]) {
        if self.store.is_none() {
            return;
        }
        for effect in effects {
            let id = st.next_pending;
            st.next_pending += 1;
            let rec = match effect {
                Effect::App(n) => {
                    n.pending = Some(id);
                    PendingRecord {
                        org_id: n.org_id.clone(),
                        app_id: n.app_id.clone(),
                        customer_id: n.customer_id.clone(),
                        notification: n.notification.encode_to_vec(),
                        simulator: false,
                        awaits_reply: n.awaits_reply,
                    }
                }
                Effect::Simulator(n) => {
                    n.pending = Some(id);
                    PendingRecord {
                        org_id: n.org_id.clone(),
                        notification: n.notification.encode_to_vec(),
                        simulator: true,
                        ..Default::default()
                    }
                }
            };
            st.dirty.pending.push((id, rec.encode_to_vec()));
        }
    }

    /// Forgets a pending notification: it was answered, or refused (and its cause told so).
    /// Not awaited: losing this write only means the notification is sent again after a
    /// restart.
    pub(crate) fn settle_pending(&self, id: u64) {
        if let Some(store) = &self.store {
            drop(store.submit(vec![StoreOp::Delete {
                table: Table::Pending,
                key: pending_key(id),
            }]));
        }
    }

    /// Takes the notifications that were pending when the data dir was last closed.
    pub(crate) fn take_recovered(&self) -> Vec<Effect> {
        std::mem::take(&mut *self.recovered.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Serializes the dirty records and hands them to the store.
    fn flush(&self, st: &mut State) -> Durable {
        let dirty = std::mem::take(&mut st.dirty);
        let Some(store) = &self.store else {
            return Durable::default();
        };
        if dirty.is_empty() {
            return Durable::default();
        }
        let mut ops = Vec::new();
        let mut customers = dirty.customers;
        customers.sort();
        customers.dedup();
        for (org, id) in customers {
            let o = &st.orgs[org];
            let key = org_key(&o.config.id, &id);
            ops.push(match o.customers.get(&id) {
                Some(rec) => StoreOp::Put {
                    table: Table::Customers,
                    key,
                    value: rec.encode_to_vec(),
                },
                None => StoreOp::Delete {
                    table: Table::Customers,
                    key,
                },
            });
        }
        let mut purses = dirty.purses;
        purses.sort();
        purses.dedup();
        for (org, id) in purses {
            let o = &st.orgs[org];
            if let Some(p) = o.purses.get(&id) {
                ops.push(StoreOp::Put {
                    table: Table::Purses,
                    key: org_key(&o.config.id, &id),
                    value: p.encode_to_vec(),
                });
            }
        }
        let mut txns = dirty.transactions;
        txns.sort();
        txns.dedup();
        for (org, id) in txns {
            let o = &st.orgs[org];
            if let Some(t) = o.transactions.get(&id) {
                ops.push(StoreOp::Put {
                    table: Table::Transactions,
                    key: org_key(&o.config.id, &id),
                    value: t.encode_to_vec(),
                });
            }
        }
        let mut tag_reminders = dirty.tag_reminders;
        tag_reminders.sort();
        tag_reminders.dedup();
        for (org, id) in tag_reminders {
            let o = &st.orgs[org];
            let key = org_key(&o.config.id, &id);
            ops.push(match o.tag_reminders.get(&id) {
                Some(r) => StoreOp::Put {
                    table: Table::TagReminders,
                    key,
                    value: r.encode_to_vec(),
                },
                None => StoreOp::Delete {
                    table: Table::TagReminders,
                    key,
                },
            });
        }
        for (id, value) in dirty.pending {
            ops.push(StoreOp::Put {
                table: Table::Pending,
                key: pending_key(id),
                value,
            });
        }
        for token in dirty.tokens {
            ops.push(match st.tokens.get(&token) {
                Some(t) => StoreOp::Put {
                    table: Table::Tokens,
                    key: token,
                    value: t.encode_to_vec(),
                },
                None => StoreOp::Delete {
                    table: Table::Tokens,
                    key: token,
                },
            });
        }
        Durable(Some(store.submit(ops)))
    }

    /// Executes an app command. Unknown (or absent) commands get an `UpdateCustomerState` reply
    /// with `status = false` and the description "unknown command".
    pub fn app_command(
        &self,
        who: &Identity,
        cmd: AppToServerCommand,
    ) -> Outcome<AppToServerCommandReply> {
        let token_lifetime = self.config.auth_token_lifetime();
        self.with_tx(who, |tx| {
            let entry = match cmd.entry {
                Some(entry) => entry,
                None => return failed_update("unknown command"),
            };
            let reply = match entry {
                AppEntry::GenerateAuthToken(_) => tx.generate_auth_token(token_lifetime),
                AppEntry::CreateCustomer(c) => tx.create_customer_cmd(c),
                AppEntry::GetCustomerState(c) => tx.get_customer_state(c),
                AppEntry::AdoptCustomerState(c) => tx.adopt_customer_state(c),
                AppEntry::AddCustomerReminder(c) => tx.add_customer_reminder(c),
                AppEntry::AddCustomerReminderTag(c) => tx.add_customer_reminder_tag(c),
                AppEntry::CancelCustomerReminder(c) => tx.cancel_customer_reminder(c),
                AppEntry::CancelCustomerReminderTag(c) => tx.cancel_customer_reminder_tag(c),
                AppEntry::UpdateCustomerTag(c) => tx.update_customer_tag(c),
                AppEntry::DeleteCustomerTag(c) => tx.delete_customer_tag(c),
                AppEntry::UpdateCustomerSecondaryId(c) => tx.update_customer_secondary_id(c),
                AppEntry::DeleteCustomerSecondaryId(c) => tx.delete_customer_secondary_id(c),
                AppEntry::UpdateCustomerMetadata(c) => tx.update_customer_metadata(c),
                AppEntry::DeleteCustomerMetadata(c) => tx.delete_customer_metadata(c),
                AppEntry::LeaseCustomerAppData(c) => tx.lease_customer_app_data(c),
                AppEntry::UpdateCustomerAppData(c) => tx.update_customer_app_data(c),
                AppEntry::DeleteCustomerAppData(c) => tx.delete_customer_app_data(c),
                AppEntry::SendMessage(c) => tx.send_message_cmd(c),
                AppEntry::SendMessageTag(c) => tx.send_message_tag(c),
                AppEntry::ReplyToMessage(c) => tx.reply_to_message(c),
                AppEntry::UpdateMessagingConsent(c) => tx.update_messaging_consent(c),
                AppEntry::InitiatePayment(c) => tx.initiate_payment(c),
                AppEntry::CustomerActivity(c) => tx.customer_activity(c),
                AppEntry::ReplayMessagingConsentUpdate(c) => tx.replay_messaging_consent_update(c),
                AppEntry::ReplayReceivedMessage(c) => tx.replay_received_message(c),
                AppEntry::ReplaySentMessage(c) => tx.replay_sent_message(c),
                AppEntry::ReplayMessageStatusUpdate(c) => tx.replay_message_status_update(c),
                AppEntry::ReplayMessageReactionUpdate(c) => tx.replay_message_reaction_update(c),
                AppEntry::ReplayMessagingSession(c) => tx.replay_messaging_session(c),
                AppEntry::ReplayPayment(c) => tx.replay_payment(c),
                AppEntry::ReplayPaymentStatusUpdate(c) => tx.replay_payment_status_update(c),
                AppEntry::DeleteCustomer(c) => tx.delete_customer(c.customer.map(Selector::from)),
            };
            AppToServerCommandReply { entry: Some(reply) }
        })
    }

    /// Executes a simulator command.
    pub fn simulator_command(
        &self,
        who: &Identity,
        cmd: SimulatorToServerCommand,
    ) -> SimulatorOutcome {
        let mut exchange = None;
        let out = self.with_tx(who, |tx| match cmd.entry {
            None => sim_reply(false, "unknown command"),
            Some(SimEntry::ReceiveMessage(c)) => match tx.receive_message(c) {
                Ok((idx, ex)) => {
                    exchange = Some((idx, ex));
                    sim_reply(true, "message received")
                }
                Err(description) => sim_reply(false, &description),
            },
            Some(SimEntry::ReceivePayment(c)) => tx.receive_payment(c),
            Some(SimEntry::UpdatePaymentStatus(c)) => tx.update_payment_status(c),
        });
        SimulatorOutcome {
            reply: out.reply,
            effects: out.effects,
            durable: out.durable,
            exchange,
        }
    }

    /// Applies the app's reply message to a received message (records it as sent, and ends a
    /// USSD session on a terminal menu). Returns the reply for the simulator.
    pub fn inbound_reply(
        &self,
        who: &Identity,
        exchange: &InboundExchange,
        message: Option<elarian_proto::OutboundMessage>,
    ) -> Outcome<SimulatorToServerCommandReply> {
        self.with_tx(who, |tx| tx.apply_inbound_reply(exchange, message))
    }

    /// Stores an app's `data_update` from a notification reply.
    pub fn apply_data_update(
        &self,
        org_id: &str,
        app_id: &str,
        customer_id: &str,
        data: Option<DataMapValue>,
    ) -> Durable {
        let who = Identity::app(org_id, app_id);
        self.with_tx(&who, |tx| {
            if tx.org().customers.contains_key(customer_id) {
                let app = tx.app.to_owned();
                let rec = tx.customer_mut(customer_id);
                if let Some(rec) = rec {
                    let a = rec.app_mut(&app);
                    a.data = data;
                    a.lease_until = 0;
                }
            }
        })
        .durable
    }

    /// Applies the `data_update` of an app's reply to a customer notification that carried
    /// `sent` as the customer's app data.
    ///
    /// The published clients echo the app data they received when the handler set none (and on
    /// their own notification timeout), so a `data_update` equal to `sent` means "unchanged" and
    /// is not written: a late reply to an older notification must not overwrite what a newer
    /// reply or command stored in the meantime. Any other value is a real change and is stored
    /// (the last change wins). Returns whether the data was written, and its durability.
    pub fn apply_reply_data_update(
        &self,
        org_id: &str,
        app_id: &str,
        customer_id: &str,
        sent: &Option<DataMapValue>,
        data: Option<DataMapValue>,
    ) -> (bool, Durable) {
        if &data == sent {
            return (false, Durable::default());
        }
        (
            true,
            self.apply_data_update(org_id, app_id, customer_id, data),
        )
    }

    /// The stored app data of a customer, for filling customer notifications at delivery.
    pub fn app_data(&self, org_id: &str, app_id: &str, customer_id: &str) -> Option<DataMapValue> {
        let st = self.lock();
        let org = st.org_index(org_id)?;
        st.orgs[org]
            .customers
            .get(customer_id)?
            .app(app_id)?
            .data
            .clone()
    }

    /// The earliest pending timer or payment settlement, epoch milliseconds.
    pub fn next_due(&self) -> Option<Millis> {
        self.lock().earliest_due()
    }

    /// Notified whenever a command scheduled a timer earlier than the previous earliest one.
    pub fn timers_changed(&self) -> &Notify {
        &self.timers_changed
    }

    /// Fires at most `limit` timers due at the clock's current time: reminders become
    /// `ReminderNotification`s (rescheduled when they repeat), expired sessions end, payments
    /// due to settle settle (`PaymentStatusNotification`s). The reply is the number of timers
    /// processed.
    pub fn fire_due(&self, limit: usize) -> Outcome<usize> {
        let now = self.now();
        let mut st = self.lock();
        let observed = self.feed.active();
        st.observe = observed;
        let mut effects = Vec::new();
        let mut processed = 0;
        while processed < limit {
            match st.timers.peek() {
                Some(t) if t.0.due <= now => {}
                _ => break,
            }
            let Some(std::cmp::Reverse(timer)) = st.timers.pop() else {
                break;
            };
            processed += 1;
            let org = timer.org as usize;
            let Some(customer) = st
                .orgs
                .get(org)
                .and_then(|o| o.customers.at(timer.slot))
                .map(|r| r.id.clone())
            else {
                continue;
            };
            let mut tx = Tx {
                st: &mut st,
                cfg: &self.config,
                org,
                app: "",
                now,
                effects: Vec::new(),
            };
            match timer.kind {
                TimerKind::Reminder => tx.fire_reminder(&customer, timer.seq),
                TimerKind::SessionExpiry => tx.expire_sessions(&customer),
            }
            effects.append(&mut tx.effects);
        }
        while processed < limit {
            match st.settlements.peek() {
                Some(s) if s.0.due <= now => {}
                _ => break,
            }
            let Some(std::cmp::Reverse(due)) = st.settlements.pop() else {
                break;
            };
            processed += 1;
            if due.org >= st.orgs.len() {
                continue;
            }
            let mut tx = Tx {
                st: &mut st,
                cfg: &self.config,
                org: due.org,
                app: "",
                now,
                effects: Vec::new(),
            };
            tx.settle_due(&due.txn);
            effects.append(&mut tx.effects);
        }
        let changes = (observed && processed > 0).then(|| {
            let orgs = st.orgs.len();
            (0..orgs)
                .map(|org| observed_changes(&st, org, "timer", &effects))
                .collect::<Vec<_>>()
        });
        self.track_pending(&mut st, &mut effects);
        let durable = self.flush(&mut st);
        drop(st);
        for changes in changes.into_iter().flatten() {
            self.feed.applied(changes);
        }
        Outcome {
            reply: processed,
            effects,
            durable,
        }
    }

    /// The console's observation feed.
    pub(crate) fn feed(&self) -> &crate::console::feed::Feed {
        &self.feed
    }

    /// Reads the state under the lock, for the console's snapshots (keep `f` short: commands
    /// wait meanwhile).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Number of customers of an org (for diagnostics and tests).
    pub fn customer_count(&self, org_id: &str) -> usize {
        let st = self.lock();
        st.org_index(org_id)
            .map(|i| st.orgs[i].customers.len())
            .unwrap_or(0)
    }

    /// Balance (available, actual) of a purse.
    pub fn purse_balance(&self, org_id: &str, purse_id: &str) -> Option<(f64, f64)> {
        let st = self.lock();
        let org = st.org_index(org_id)?;
        st.orgs[org]
            .purses
            .get(purse_id)
            .map(|p| (p.available, p.actual))
    }
}

impl Tx<'_> {
    pub(crate) fn org(&self) -> &crate::state::OrgState {
        &self.st.orgs[self.org]
    }

    pub(crate) fn org_mut(&mut self) -> &mut crate::state::OrgState {
        &mut self.st.orgs[self.org]
    }

    pub(crate) fn org_id(&self) -> String {
        self.org().config.id.clone()
    }

    /// A customer record for writing; marks it for persistence.
    pub(crate) fn customer_mut(&mut self, id: &str) -> Option<&mut CustomerRecord> {
        let org = self.org;
        // In memory nothing is marked, so the common path looks the id up once.
        if (self.st.persist || self.st.observe) && self.st.orgs[org].customers.contains_key(id) {
            self.st.mark_customer(org, id);
        }
        self.st.orgs[org].customers.get_mut(id)
    }

    pub(crate) fn mark_purse(&mut self, id: &str) {
        self.st.dirty.purses.push((self.org, id.to_owned()));
    }

    pub(crate) fn mark_transaction(&mut self, id: &str) {
        self.st.dirty.transactions.push((self.org, id.to_owned()));
    }

    /// Queues a customer notification for `app`.
    pub(crate) fn notify_customer(
        &mut self,
        app: &str,
        customer_id: &str,
        entry: CustomerEntry,
        awaits_reply: bool,
    ) -> usize {
        let app_data = self
            .org()
            .customers
            .get(customer_id)
            .and_then(|c| c.app(app))
            .and_then(|a| a.data.clone());
        let notification = ServerToAppNotification {
            entry: Some(elarian_proto::server_to_app_notification::Entry::Customer(
                ServerToAppCustomerNotification {
                    org_id: self.org_id(),
                    app_id: app.to_owned(),
                    customer_id: customer_id.to_owned(),
                    app_data,
                    created_at: Some(to_timestamp(self.now)),
                    entry: Some(entry),
                },
            )),
        };
        self.effects.push(Effect::App(AppNotice {
            org_id: self.org_id(),
            app_id: app.to_owned(),
            customer_id: Some(customer_id.to_owned()),
            pending: None,
            notification,
            awaits_reply,
        }));
        self.effects.len() - 1
    }

    /// Queues a notification for the org's simulators.
    pub(crate) fn notify_simulator(
        &mut self,
        entry: elarian_proto::server_to_simulator_notification::Entry,
    ) {
        self.effects.push(Effect::Simulator(SimulatorNotice {
            org_id: self.org_id(),
            pending: None,
            notification: ServerToSimulatorNotification { entry: Some(entry) },
        }));
    }

    fn generate_auth_token(&mut self, lifetime: std::time::Duration) -> ReplyEntry {
        let token = match crate::ids::auth_token() {
            Ok(token) => token,
            Err(e) => {
                tracing::error!(error = %e, "no auth token generated");
                // The reply type has no status field; an update reply with status=false is
                // how every other failure reaches the app.
                return ReplyEntry::UpdateCustomerState(elarian_proto::UpdateCustomerStateReply {
                    status: false,
                    description: format!("cannot generate an auth token: {e}"),
                    customer_id: None,
                });
            }
        };
        let millis = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
        let now = self.now;
        // Expired tokens are dropped here so the table does not grow without bound.
        let expired: Vec<String> = self
            .st
            .tokens
            .iter()
            .filter(|(_, t)| t.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.st.tokens.remove(&k);
            self.st.dirty.tokens.push(k);
        }
        // Kept (in memory and in the data dir) by its hash only; the app gets the token.
        let key = crate::ids::token_key(&token);
        self.st.tokens.insert(
            key.clone(),
            TokenRecord {
                org_id: self.org_id(),
                app_id: self.app.to_owned(),
                expires_at: now.saturating_add(millis),
            },
        );
        self.st.dirty.tokens.push(key);
        ReplyEntry::GenerateAuthToken(elarian_proto::GenerateAuthTokenReply {
            token,
            lifetime: Some(crate::clock::to_duration(millis)),
        })
    }
}

/// How a command names a customer: by id, by number or by secondary id.
#[derive(Clone, Debug)]
pub(crate) enum Selector {
    Id(String),
    Number(CustomerNumber),
    Secondary(IndexMapping),
}

macro_rules! selector_from {
    ($($module:ident),* $(,)?) => {$(
        impl From<elarian_proto::$module::Customer> for Selector {
            fn from(c: elarian_proto::$module::Customer) -> Self {
                use elarian_proto::$module::Customer as C;
                match c {
                    C::CustomerId(id) => Selector::Id(id),
                    C::CustomerNumber(n) => Selector::Number(n),
                    C::SecondaryId(m) => Selector::Secondary(m),
                }
            }
        }
    )*};
}

selector_from!(
    get_customer_state_command,
    add_customer_reminder_command,
    cancel_customer_reminder_command,
    update_customer_tag_command,
    delete_customer_tag_command,
    update_customer_secondary_id_command,
    delete_customer_secondary_id_command,
    update_customer_metadata_command,
    delete_customer_metadata_command,
    update_customer_app_data_command,
    delete_customer_app_data_command,
    lease_customer_app_data_command,
    delete_customer_command,
);

impl From<elarian_proto::adopt_customer_state_command::OtherCustomer> for Selector {
    fn from(c: elarian_proto::adopt_customer_state_command::OtherCustomer) -> Self {
        use elarian_proto::adopt_customer_state_command::OtherCustomer as C;
        match c {
            C::OtherCustomerId(id) => Selector::Id(id),
            C::OtherCustomerNumber(n) => Selector::Number(n),
            C::OtherSecondaryId(m) => Selector::Secondary(m),
        }
    }
}

/// What the current command (or timer batch) changed in `org`, for the console's feed: read
/// from the records it marked changed and the notifications it caused.
fn observed_changes(
    st: &State,
    org: OrgIdx,
    source: &'static str,
    effects: &[Effect],
) -> crate::console::feed::Changes {
    let org_id = st.orgs.get(org).map(|o| o.config.id.clone());
    let mut changes = crate::console::feed::Changes {
        org: org_id.clone().unwrap_or_default(),
        source,
        ..Default::default()
    };
    for (o, id) in &st.dirty.customers {
        if *o == org {
            changes.customer(id);
        }
    }
    changes.payments = st
        .dirty
        .purses
        .iter()
        .chain(&st.dirty.transactions)
        .any(|(o, _)| *o == org);
    changes.effects(effects.iter().filter(|e| match e {
        Effect::App(n) => Some(&n.org_id) == org_id.as_ref(),
        Effect::Simulator(n) => Some(&n.org_id) == org_id.as_ref(),
    }));
    changes
}

/// Rebuilds the effect of a pending record read back from the data dir.
fn pending_effect(id: u64, rec: PendingRecord) -> Option<Effect> {
    Some(if rec.simulator {
        Effect::Simulator(SimulatorNotice {
            org_id: rec.org_id,
            pending: Some(id),
            notification: ServerToSimulatorNotification::decode(rec.notification.as_slice())
                .ok()?,
        })
    } else {
        Effect::App(AppNotice {
            org_id: rec.org_id,
            app_id: rec.app_id,
            customer_id: rec.customer_id,
            pending: Some(id),
            notification: ServerToAppNotification::decode(rec.notification.as_slice()).ok()?,
            awaits_reply: rec.awaits_reply,
        })
    })
}

/// An `UpdateCustomerState` reply with `status = false`.
pub(crate) fn failed_update(description: &str) -> AppToServerCommandReply {
    AppToServerCommandReply {
        entry: Some(ReplyEntry::UpdateCustomerState(
            elarian_proto::UpdateCustomerStateReply {
                status: false,
                description: description.to_owned(),
                customer_id: None,
            },
        )),
    }
}

/// An `UpdateCustomerState` reply entry.
pub(crate) fn update_reply(result: Result<String, String>, ok: &str) -> ReplyEntry {
    ReplyEntry::UpdateCustomerState(match result {
        Ok(id) => elarian_proto::UpdateCustomerStateReply {
            status: true,
            description: ok.to_owned(),
            customer_id: Some(id),
        },
        Err(description) => elarian_proto::UpdateCustomerStateReply {
            status: false,
            description,
            customer_id: None,
        },
    })
}

pub(crate) fn sim_reply(status: bool, description: &str) -> SimulatorToServerCommandReply {
    SimulatorToServerCommandReply {
        status,
        description: description.to_owned(),
        message: None,
    }
}

/// Keeps the newest `limit` entries of a history list.
pub(crate) fn trim_front<T>(list: &mut Vec<T>, limit: usize) {
    if list.len() > limit {
        let excess = list.len() - limit;
        list.drain(..excess);
    }
}

#[cfg(test)]
mod tests;
