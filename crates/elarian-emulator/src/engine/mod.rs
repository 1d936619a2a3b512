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
mod auth;
mod customers;
mod effects;
mod messaging;
mod payments;
mod persistence;
mod reminders;
mod transactions;

use std::sync::{Arc, Mutex, MutexGuard};

use elarian_proto::{
    AppToServerCommand, AppToServerCommandReply, CustomerNumber, DataMapValue, IndexMapping,
    SimulatorToServerCommand, SimulatorToServerCommandReply,
    app_to_server_command::Entry as AppEntry, app_to_server_command_reply::Entry as ReplyEntry,
    simulator_to_server_command::Entry as SimEntry,
};
use tokio::sync::Notify;

use crate::clock::{Clock, Millis};
use crate::config::EmulatorConfig;
use crate::state::{State, TimerKind};
use crate::store::Store;

pub use auth::AuthError;
pub use effects::{AppNotice, Effect, SimulatorNotice};
pub use messaging::InboundExchange;
pub use persistence::Durable;
pub(crate) use transactions::Tx;
use transactions::observed_changes;

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
                if let Some(rec) = tx.customer_mut(customer_id) {
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
        st.orgs[org].customers.app_data(customer_id, app_id)
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
            let org = timer.org();
            let Some(customer) = st.orgs.get(org).and_then(|o| o.customers.id_at(timer.slot))
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
            match timer.kind() {
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

    /// History entries (messages, sessions, transactions, activity) dropped so far because a
    /// customer had more than `history_limit` of them: trimming is bounded memory, not loss
    /// nobody can see.
    pub fn history_trimmed(&self) -> u64 {
        self.lock().history_trimmed
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

#[cfg(test)]
mod tests;
