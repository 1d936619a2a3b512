//! Compact, protobuf-encoded records of what the emulator keeps per customer, purse, transaction
//! and auth token.
//!
//! The same structs serve as the in-memory representation and as the durable encoding in the
//! store, so loading a data dir is a decode and nothing else. Rarely used parts of a customer live
//! behind one boxed [`CustomerExtra`] so that a million customers with a reminder each stay small.

use std::collections::HashMap;

use elarian_proto::{
    ActivitySessionState, ChannelMessage, CompleteMessagingSession, CustomerIndex, CustomerNumber,
    CustomerReminder, DataMapValue, IndexMapping, MessagingChannelState, PaymentBalance,
    PaymentChannelNumber, PaymentTransaction,
};

/// Everything the emulator knows about one customer.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CustomerRecord {
    /// Customer id (`el_cst_…`).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Numbers the customer is known by (phone, Telegram, Messenger, email…).
    #[prost(message, repeated, tag = "2")]
    pub numbers: Vec<CustomerNumber>,
    /// Tags with optional expiry.
    #[prost(message, repeated, tag = "3")]
    pub tags: Vec<CustomerIndex>,
    /// Per-app data and reminders.
    #[prost(message, repeated, tag = "4")]
    pub apps: Vec<AppRecord>,
    /// Everything else, allocated on first use.
    #[prost(message, optional, boxed, tag = "5")]
    pub extra: Option<Box<CustomerExtra>>,
    /// Creation time, epoch milliseconds.
    #[prost(int64, tag = "6")]
    pub created_at: i64,
}

/// The less common parts of a customer record.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct CustomerExtra {
    /// Secondary ids (unique across the org) with optional expiry.
    #[prost(message, repeated, tag = "1")]
    pub secondary_ids: Vec<CustomerIndex>,
    /// Metadata, shared by all apps of the org.
    #[prost(map = "string, message", tag = "2")]
    pub metadata: HashMap<String, DataMapValue>,
    /// Consent and session state per (channel number, customer number).
    #[prost(message, repeated, tag = "3")]
    pub channels: Vec<MessagingChannelState>,
    /// Most recent messages in and out (bounded by the config's history limit).
    #[prost(message, repeated, tag = "4")]
    pub messages: Vec<ChannelMessage>,
    /// Completed messaging sessions (bounded).
    #[prost(message, repeated, tag = "5")]
    pub sessions: Vec<CompleteMessagingSession>,
    /// Wallets by wallet id.
    #[prost(map = "string, message", tag = "6")]
    pub wallets: HashMap<String, PaymentBalance>,
    /// Ids of the payment transactions this customer took part in (bounded).
    #[prost(string, repeated, tag = "7")]
    pub transactions: Vec<String>,
    /// Activity sessions (bounded).
    #[prost(message, repeated, tag = "8")]
    pub activity: Vec<ActivitySessionState>,
    /// Payment channel numbers the customer used.
    #[prost(message, repeated, tag = "9")]
    pub payment_channels: Vec<PaymentChannelNumber>,
}

/// One app's view of a customer: its app data, lease and reminders.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AppRecord {
    /// App id.
    #[prost(string, tag = "1")]
    pub app_id: String,
    /// The app data.
    #[prost(message, optional, tag = "2")]
    pub data: Option<DataMapValue>,
    /// Lease expiry, epoch milliseconds; 0 when not leased.
    #[prost(int64, tag = "3")]
    pub lease_until: i64,
    /// Reminders of this app for this customer.
    #[prost(message, repeated, tag = "4")]
    pub reminders: Vec<ReminderRecord>,
}

/// A scheduled reminder.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ReminderRecord {
    /// The reminder as the app gave it (`remind_at` is the next due time).
    #[prost(message, optional, tag = "1")]
    pub reminder: Option<CustomerReminder>,
    /// For reminders added by tag: the tag and work id (boxed: most reminders have none).
    #[prost(message, optional, boxed, tag = "2")]
    pub origin: Option<Box<TagOrigin>>,
    /// Next due time, epoch milliseconds.
    #[prost(int64, tag = "4")]
    pub due: i64,
    /// Scheduler sequence number; reassigned on load, so not meaningful on disk.
    #[prost(uint64, tag = "5")]
    pub seq: u64,
}

/// Where a reminder added by tag came from.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TagOrigin {
    /// The tag.
    #[prost(message, optional, tag = "1")]
    pub tag: Option<CustomerIndex>,
    /// The work id of the tag command.
    #[prost(string, tag = "2")]
    pub work_id: String,
}

/// A purse and its balance.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PurseRecord {
    /// Purse id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Currency code.
    #[prost(string, tag = "2")]
    pub currency: String,
    /// Balance available now (held amounts already subtracted).
    #[prost(double, tag = "3")]
    pub available: f64,
    /// Balance including amounts held for pending payments.
    #[prost(double, tag = "4")]
    pub actual: f64,
}

/// A payment transaction and what to do when it settles.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TransactionRecord {
    /// The transaction as exposed in customer state.
    #[prost(message, optional, tag = "1")]
    pub transaction: Option<PaymentTransaction>,
    /// Customer on the debit side, if any.
    #[prost(string, optional, tag = "2")]
    pub debit_customer_id: Option<String>,
    /// Customer on the credit side, if any.
    #[prost(string, optional, tag = "3")]
    pub credit_customer_id: Option<String>,
    /// True once the debit party's funds were taken (held) for this transaction.
    #[prost(bool, tag = "4")]
    pub debit_held: bool,
    /// When the emulator settles the payment by itself (epoch milliseconds); 0 when it waits
    /// for a simulator (a checkout) or is settled already. Kept so that a restart with the data
    /// dir settles what was pending.
    #[prost(int64, tag = "5")]
    pub settle_at: i64,
    /// True for a payment a simulator reported (`ReceivePayment`), whose provider transaction
    /// id is the simulator's own id and names the payment in its `UpdatePaymentStatus`.
    #[prost(bool, tag = "6")]
    pub from_simulator: bool,
}

/// An issued auth token.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TokenRecord {
    /// Org the token was issued to.
    #[prost(string, tag = "1")]
    pub org_id: String,
    /// App the token was issued to.
    #[prost(string, tag = "2")]
    pub app_id: String,
    /// Expiry, epoch milliseconds.
    #[prost(int64, tag = "3")]
    pub expires_at: i64,
}

/// A reminder set on a tag (`AddCustomerReminderTag`): it applies to every customer holding the
/// tag, including customers tagged after it was set, until it is cancelled or, without an
/// interval, its time has passed.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct TagReminderRecord {
    /// The app that set it (and gets its notifications).
    #[prost(string, tag = "1")]
    pub app_id: String,
    /// The tag, key and value.
    #[prost(message, optional, tag = "2")]
    pub tag: Option<IndexMapping>,
    /// The reminder as set.
    #[prost(message, optional, tag = "3")]
    pub reminder: Option<CustomerReminder>,
    /// Its first due time, epoch milliseconds.
    #[prost(int64, tag = "4")]
    pub due: i64,
    /// The work id the command answered with, carried by every notification of it.
    #[prost(string, tag = "5")]
    pub work_id: String,
}

impl TagReminderRecord {
    /// Its id within the org: one per app, tag and reminder key.
    pub(crate) fn id(&self) -> String {
        let (key, value) = self
            .tag
            .as_ref()
            .map(|t| (t.key.as_str(), t.value.as_deref().unwrap_or("")))
            .unwrap_or(("", ""));
        let reminder = self.reminder.as_ref().map_or("", |r| r.key.as_str());
        // The unit separator cannot clash with the printable ids and keys apps use.
        format!("{}\u{1f}{key}\u{1f}{value}\u{1f}{reminder}", self.app_id)
    }
}

/// A notification handed to delivery and not answered yet (kept with a data dir, so that a
/// notification survives a restart or `kill -9` until an app or simulator answered it).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PendingRecord {
    /// Org id.
    #[prost(string, tag = "1")]
    pub org_id: String,
    /// App id (empty for a simulator notification).
    #[prost(string, tag = "2")]
    pub app_id: String,
    /// The customer of a customer notification (for its app data at delivery).
    #[prost(string, optional, tag = "3")]
    pub customer_id: Option<String>,
    /// The encoded `ServerToAppNotification` or `ServerToSimulatorNotification`.
    #[prost(bytes = "vec", tag = "4")]
    pub notification: Vec<u8>,
    /// True for a simulator notification.
    #[prost(bool, tag = "5")]
    pub simulator: bool,
    /// True when the sender waited for the app's reply message.
    #[prost(bool, tag = "6")]
    pub awaits_reply: bool,
}

impl CustomerRecord {
    /// The extra part, allocated if needed.
    pub(crate) fn extra_mut(&mut self) -> &mut CustomerExtra {
        self.extra.get_or_insert_with(Default::default)
    }

    /// The app record of `app_id`, if any.
    pub(crate) fn app(&self, app_id: &str) -> Option<&AppRecord> {
        self.apps.iter().find(|a| a.app_id == app_id)
    }

    /// The app record of `app_id`, created if needed.
    pub(crate) fn app_mut(&mut self, app_id: &str) -> &mut AppRecord {
        match self.apps.iter().position(|a| a.app_id == app_id) {
            Some(i) => &mut self.apps[i],
            None => {
                self.apps.push(AppRecord {
                    app_id: app_id.to_owned(),
                    ..Default::default()
                });
                let last = self.apps.len() - 1;
                &mut self.apps[last]
            }
        }
    }
}
