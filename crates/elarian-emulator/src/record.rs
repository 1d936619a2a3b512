//! Compact, protobuf-encoded records of what the emulator keeps per customer, purse, transaction
//! and auth token.
//!
//! The same encoding serves in memory and as the durable encoding in the store: the customers of
//! an org are kept as their encoded `CustomerRecord`s, decoded while a customer is in use (see
//! `state::Customers`); loading a data dir decodes and checks each record. Rarely used
//! parts of a customer live behind one boxed [`CustomerExtra`] so that a decoded record with a
//! reminder stays small.
//!
//! Within a decoded record, a customer's messaging channel states and its histories (messages,
//! completed sessions, activity) stay *encoded*, one protobuf message per entry, and are decoded
//! when read: a decoded `ChannelMessage` is several times its encoded size (every optional string
//! and nested message is a word-sized slot even when empty), and these lists are written far more
//! often than they are read. On disk the bytes of an entry are exactly the embedded message, so
//! the stored format is the one of a `repeated` message field.

use std::collections::HashMap;

use prost::Message;

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
    /// Metadata, shared by all apps of the org, one entry per key. A small list rather than a
    /// map: customers have a handful of keys, and a hash table costs several times their size.
    /// Stored as the entries of a protobuf `map<string, DataMapValue>`.
    #[prost(message, repeated, tag = "2")]
    pub metadata: Vec<MetadataEntry>,
    /// Consent and session state per (channel number, customer number): encoded
    /// `MessagingChannelState`s (see [`CustomerExtra::channels`]).
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub packed_channels: Vec<Vec<u8>>,
    /// Most recent messages in and out (bounded by the config's history limit): encoded
    /// `ChannelMessage`s (see [`CustomerExtra::messages`]).
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub packed_messages: Vec<Vec<u8>>,
    /// Completed messaging sessions (bounded): encoded `CompleteMessagingSession`s.
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub packed_sessions: Vec<Vec<u8>>,
    /// Wallets by wallet id.
    #[prost(map = "string, message", tag = "6")]
    pub wallets: HashMap<String, PaymentBalance>,
    /// Ids of the payment transactions this customer took part in (bounded).
    #[prost(string, repeated, tag = "7")]
    pub transactions: Vec<String>,
    /// Activity sessions (bounded): encoded `ActivitySessionState`s.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub packed_activity: Vec<Vec<u8>>,
    /// Payment channel numbers the customer used.
    #[prost(message, repeated, tag = "9")]
    pub payment_channels: Vec<PaymentChannelNumber>,
}

/// One metadata key and value (the wire form of a protobuf map entry).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct MetadataEntry {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value (absent stands for the default value, as in a protobuf map).
    #[prost(message, optional, tag = "2")]
    pub value: Option<DataMapValue>,
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
    /// Whether the entries kept encoded in memory decode: checked once when a data dir is
    /// loaded, so that a damaged record is refused there as a whole (as when everything was
    /// decoded at load) rather than losing entries later.
    pub(crate) fn check(&self) -> bool {
        self.extra.as_ref().is_none_or(|e| {
            all_decode::<MessagingChannelState>(&e.packed_channels)
                && all_decode::<ChannelMessage>(&e.packed_messages)
                && all_decode::<CompleteMessagingSession>(&e.packed_sessions)
                && all_decode::<ActivitySessionState>(&e.packed_activity)
        })
    }

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
                push_exact(
                    &mut self.apps,
                    AppRecord {
                        app_id: app_id.to_owned(),
                        ..Default::default()
                    },
                );
                let last = self.apps.len() - 1;
                &mut self.apps[last]
            }
        }
    }
}

/// Decodes the entries of a list kept encoded in memory. Entries are encoded by the emulator
/// itself and checked when a data dir is loaded ([`CustomerRecord::check`]), so none is
/// skipped in practice.
fn unpack<T: Message + Default>(packed: &[Vec<u8>]) -> Vec<T> {
    packed
        .iter()
        .filter_map(|b| T::decode(b.as_slice()).ok())
        .collect()
}

/// Whether every entry of a packed list decodes as `T`.
fn all_decode<T: Message + Default>(packed: &[Vec<u8>]) -> bool {
    packed.iter().all(|b| T::decode(b.as_slice()).is_ok())
}

/// Appends an entry to a bounded history, dropping the oldest beyond `limit`; returns how many
/// were dropped.
pub(crate) fn push_bounded<T: Message>(packed: &mut Vec<Vec<u8>>, item: &T, limit: usize) -> usize {
    push_exact(packed, item.encode_to_vec());
    trim_front(packed, limit)
}

/// Appends to a per-customer list without spare room: a `Vec`'s first push reserves four
/// entries, and lists of one or two entries held by a million customers pay for that unused
/// room a million times. The copy on each push is cheap for lists this short.
pub(crate) fn push_exact<T>(list: &mut Vec<T>, item: T) {
    list.reserve_exact(1);
    list.push(item);
}

/// Keeps the newest `limit` entries of a history list; returns how many were dropped.
pub(crate) fn trim_front<T>(list: &mut Vec<T>, limit: usize) -> usize {
    if list.len() > limit {
        let excess = list.len() - limit;
        list.drain(..excess);
        excess
    } else {
        0
    }
}

impl CustomerExtra {
    /// The metadata as the protocol carries it.
    pub(crate) fn metadata_map(&self) -> HashMap<String, DataMapValue> {
        self.metadata
            .iter()
            .map(|e| (e.key.clone(), e.value.clone().unwrap_or_default()))
            .collect()
    }

    /// Sets a metadata key (replacing its value), or adds it unless `keep_existing`.
    pub(crate) fn set_metadata(&mut self, key: String, value: DataMapValue, keep_existing: bool) {
        match self.metadata.iter_mut().find(|e| e.key == key) {
            Some(_) if keep_existing => {}
            Some(e) => e.value = Some(value),
            None => push_exact(
                &mut self.metadata,
                MetadataEntry {
                    key,
                    value: Some(value),
                },
            ),
        }
    }

    /// Removes a metadata key.
    pub(crate) fn remove_metadata(&mut self, key: &str) {
        self.metadata.retain(|e| e.key != key);
    }

    /// The messaging channel states, decoded.
    pub(crate) fn channels(&self) -> Vec<MessagingChannelState> {
        unpack(&self.packed_channels)
    }

    /// Replaces the channel state at `index`, or appends it when `index` is `None`.
    pub(crate) fn set_channel(&mut self, index: Option<usize>, state: &MessagingChannelState) {
        let bytes = state.encode_to_vec();
        match index.and_then(|i| self.packed_channels.get_mut(i)) {
            Some(slot) => *slot = bytes,
            None => push_exact(&mut self.packed_channels, bytes),
        }
    }

    /// The message history, oldest first, decoded.
    pub(crate) fn messages(&self) -> Vec<ChannelMessage> {
        unpack(&self.packed_messages)
    }

    /// Replaces the message at `index` of the history.
    pub(crate) fn set_message(&mut self, index: usize, message: &ChannelMessage) {
        if let Some(slot) = self.packed_messages.get_mut(index) {
            *slot = message.encode_to_vec();
        }
    }

    /// The completed messaging sessions, oldest first, decoded.
    pub(crate) fn sessions(&self) -> Vec<CompleteMessagingSession> {
        unpack(&self.packed_sessions)
    }

    /// The activity sessions, decoded.
    pub(crate) fn activity(&self) -> Vec<ActivitySessionState> {
        unpack(&self.packed_activity)
    }

    /// Replaces the activity sessions.
    pub(crate) fn set_activity(&mut self, activity: &[ActivitySessionState]) {
        self.packed_activity = activity.iter().map(Message::encode_to_vec).collect();
    }
}

#[cfg(test)]
mod tests {
    use elarian_proto::{ReceivedMessage, channel_message};

    use super::*;

    /// `CustomerExtra`'s metadata, channel and message fields as they were declared before they
    /// were kept compact in memory: data dirs written then must load the same.
    #[derive(Clone, PartialEq, prost::Message)]
    struct DecodedExtra {
        #[prost(map = "string, message", tag = "2")]
        metadata: HashMap<String, DataMapValue>,
        #[prost(message, repeated, tag = "3")]
        channels: Vec<MessagingChannelState>,
        #[prost(message, repeated, tag = "4")]
        messages: Vec<ChannelMessage>,
    }

    fn received(id: &str) -> ChannelMessage {
        ChannelMessage {
            entry: Some(channel_message::Entry::Received(ReceivedMessage {
                message_id: id.into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn packed_lists_read_and_write_the_format_of_repeated_messages() {
        let old = DecodedExtra {
            metadata: HashMap::from([
                ("name".to_owned(), DataMapValue::default()),
                (
                    "amount".to_owned(),
                    DataMapValue {
                        value: Some(elarian_proto::data_map_value::Value::StringVal("9".into())),
                    },
                ),
            ]),
            channels: vec![MessagingChannelState::default()],
            messages: vec![received("a"), received("b")],
        };
        let extra = CustomerExtra::decode(old.encode_to_vec().as_slice()).unwrap();
        assert_eq!(extra.messages(), old.messages);
        assert_eq!(extra.channels(), old.channels);
        assert_eq!(extra.metadata_map(), old.metadata);
        assert_eq!(
            DecodedExtra::decode(extra.encode_to_vec().as_slice()).unwrap(),
            old
        );
    }

    #[test]
    fn bounded_histories_drop_the_oldest_and_say_how_many() {
        let mut extra = CustomerExtra::default();
        let dropped: usize = ["a", "b", "c", "d"]
            .iter()
            .map(|id| push_bounded(&mut extra.packed_messages, &received(id), 2))
            .sum();
        assert_eq!(dropped, 2);
        assert_eq!(extra.messages(), vec![received("c"), received("d")]);
    }

    #[test]
    fn a_record_with_an_undecodable_entry_fails_the_check() {
        let mut rec = CustomerRecord::default();
        assert!(rec.check());
        rec.extra_mut()
            .packed_messages
            .push(received("a").encode_to_vec());
        assert!(rec.check());
        // A length-delimited field whose length runs past the end.
        rec.extra_mut().packed_messages.push(vec![0x0a, 0x7f, 0x01]);
        assert!(!rec.check());
    }
}
