//! The in-memory state of the emulator: customers per organization with their lookup indexes,
//! purses, transactions, auth tokens and the timer queue.
//!
//! Indexes map customer numbers, secondary ids and tags to customer slots. They are derived
//! data: rebuilt from the records on load and kept in step by [`Indexes::index`] /
//! [`Indexes::unindex`] around every change that touches them.

use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use elarian_proto::{
    CustomerIndex, CustomerNumber, CustomerNumberProvider, DataMapValue, IndexMapping,
};
use prost::Message;

use crate::clock::{Millis, from_timestamp};
use crate::config::OrgConfig;
use crate::record::{
    CustomerRecord, PurseRecord, ReminderRecord, TagReminderRecord, TokenRecord, TransactionRecord,
};
use crate::record_bytes;

/// Position of an organization in [`State::orgs`].
pub(crate) type OrgIdx = usize;

/// Lookup key of a customer number: provider (unspecified counts as cellular), number, partition,
/// in one string (`provider:partition length:partition number`) so that an index entry is a
/// pointer and a length rather than three fields of 40 bytes, with one allocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NumberKey(Box<str>);

impl NumberKey {
    pub(crate) fn of(n: &CustomerNumber) -> Self {
        let partition = n.partition.as_deref().unwrap_or("");
        // The partition's length keeps the key unambiguous whatever characters the number and
        // partition hold.
        // Looked up for every command that names a customer by number: the key is written
        // into one allocation of its exact size (`format!` grows its buffer as it writes, and
        // boxing it shrinks it once more).
        let mut head = [0u8; 48];
        let head_len = {
            use std::io::Write;
            let mut cursor = std::io::Cursor::new(&mut head[..]);
            // Two integers and two colons fit in 48 bytes: the write cannot fail.
            let _ = write!(
                cursor,
                "{}:{}:",
                normalized_provider(n.provider),
                partition.len()
            );
            usize::try_from(cursor.position()).unwrap_or(0)
        };
        let head = std::str::from_utf8(&head[..head_len]).unwrap_or_default();
        let mut key = String::with_capacity(head.len() + partition.len() + n.number.len());
        key.push_str(head);
        key.push_str(partition);
        key.push_str(&n.number);
        NumberKey(key.into_boxed_str())
    }
}

/// The provider used for indexing: the JavaScript client leaves it unspecified for phone numbers.
pub(crate) fn normalized_provider(provider: i32) -> i32 {
    if provider == CustomerNumberProvider::Unspecified as i32 {
        CustomerNumberProvider::Cellular as i32
    } else {
        provider
    }
}

/// Lookup key of a tag or secondary id: (key, value).
pub(crate) type MappingKey = (String, String);

pub(crate) fn mapping_key(m: &IndexMapping) -> MappingKey {
    (m.key.clone(), m.value.clone().unwrap_or_default())
}

/// The expiry of an index entry, if it has one. The published clients send `{seconds: 0}` when
/// there is none (the JavaScript client always fills the field), so an expiry at or before the
/// epoch means "never expires".
pub(crate) fn expiry(index: &CustomerIndex) -> Option<Millis> {
    index
        .expires_at
        .as_ref()
        .map(from_timestamp)
        .filter(|at| *at > 0)
}

/// True when an index entry has an expiry in the past.
pub(crate) fn expired(index: &CustomerIndex, now: Millis) -> bool {
    expiry(index).is_some_and(|at| at <= now)
}

/// An index entry as replies carry it: the published JavaScript client reads
/// `expiresAt.seconds` and `mapping.value.value` unconditionally, so both are always present,
/// `{0, 0}` standing for "never expires".
pub(crate) fn index_for_reply(mut index: CustomerIndex) -> CustomerIndex {
    if expiry(&index).is_none() {
        index.expires_at = Some(prost_types::Timestamp::default());
    }
    if let Some(m) = index.mapping.as_mut() {
        m.value.get_or_insert_with(String::new);
    }
    index
}

/// The customers of an org: records in a slab addressed by a compact slot number, plus the
/// customer-id lookup. Indexes and timers hold slots (4 bytes) instead of id strings.
///
/// Records are kept *encoded* (the protobuf of [`CustomerRecord`], as the data dir stores it):
/// a decoded record is a tree of small allocations (the boxed [`CustomerExtra`] with its list
/// headers, app records, reminders, strings) several times the size of its encoding, and a
/// customer is used by a few commands of its flow and idle for the rest of the run. A record
/// being changed is decoded once and stays decoded while it is among the [`HOT_RECORDS`] most
/// recently changed ones, so that the several reads and writes of one command (and of the
/// commands that follow closely) decode and encode it once, not at every access.
#[derive(Default)]
pub(crate) struct Customers {
    slots: Vec<Option<Stored>>,
    free: Vec<u32>,
    by_id: HashMap<Box<str>, u32>,
    /// Slots made decoded, oldest first: when it is full the oldest is encoded again. A slot
    /// may appear more than once (decoded, encoded, decoded again); every decoded slot appears
    /// at least once after its latest decoding, so at most `HOT_RECORDS` slots are decoded.
    hot: VecDeque<u32>,
}

/// Records kept decoded at most (see [`Customers`]): enough for the customers of the commands
/// in flight to stay decoded across a command and its follow-ups, a few MB at most.
pub(crate) const HOT_RECORDS: usize = 1024;

/// A stored customer record.
enum Stored {
    /// Idle: the encoded record.
    Encoded(Box<[u8]>),
    /// Recently changed: the decoded record.
    Decoded(Box<CustomerRecord>),
}

/// The id alone of an encoded [`CustomerRecord`]: decoding it skips every other field, without
/// allocating for them.
#[derive(Clone, PartialEq, prost::Message)]
struct RecordId {
    #[prost(string, tag = "1")]
    id: String,
}

fn encode(rec: &CustomerRecord) -> Box<[u8]> {
    // `encode_to_vec` reserves the exact length, so the box takes the vector's buffer as is.
    rec.encode_to_vec().into_boxed_slice()
}

/// Records are encoded here and checked when a data dir is loaded ([`CustomerRecord::check`]),
/// so a stored record always decodes.
fn decode(bytes: &[u8]) -> Option<CustomerRecord> {
    CustomerRecord::decode(bytes).ok()
}

impl Customers {
    pub(crate) fn slot_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    fn stored(&self, slot: u32) -> Option<&Stored> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// The record in `slot`: borrowed when decoded, else a decoded copy.
    pub(crate) fn at(&self, slot: u32) -> Option<Cow<'_, CustomerRecord>> {
        match self.stored(slot)? {
            Stored::Decoded(rec) => Some(Cow::Borrowed(rec)),
            Stored::Encoded(bytes) => decode(bytes).map(Cow::Owned),
        }
    }

    /// The app data `app_id` keeps for the customer `id`. Read for every notification the
    /// customer's app is sent, most often of a record gone cold meanwhile (a burst of due
    /// reminders), so only that app's data is decoded.
    pub(crate) fn app_data(&self, id: &str, app_id: &str) -> Option<DataMapValue> {
        match self.stored(self.slot_of(id)?)? {
            Stored::Decoded(rec) => rec.app(app_id)?.data.clone(),
            Stored::Encoded(bytes) => record_bytes::app_data(bytes, app_id),
        }
    }

    /// The reminder whose live timer is `seq` in the record in `slot`, with its app id. A cold
    /// record is searched in its encoding, without decoding it.
    pub(crate) fn reminder(&self, slot: u32, seq: u64) -> Option<(String, ReminderRecord)> {
        match self.stored(slot)? {
            Stored::Decoded(rec) => rec.apps.iter().find_map(|a| {
                let r = a.reminders.iter().find(|r| r.seq == seq)?;
                Some((a.app_id.clone(), r.clone()))
            }),
            Stored::Encoded(bytes) => {
                let found = record_bytes::find(bytes, seq)?;
                Some((found.app_id, found.reminder))
            }
        }
    }

    /// Replaces the reminder whose live timer is `seq` in the record in `slot` by `by`, or
    /// drops it for `None` (freeing its room, as most customers end with no reminder left);
    /// false when there is none. A cold record is changed in its encoding and stays cold: a
    /// burst of due reminders neither decodes the records it fires nor pushes the records in
    /// use out of the decoded ones.
    pub(crate) fn replace_reminder(
        &mut self,
        slot: u32,
        seq: u64,
        by: Option<ReminderRecord>,
    ) -> bool {
        let Some(Some(stored)) = self.slots.get_mut(slot as usize) else {
            return false;
        };
        match stored {
            Stored::Decoded(rec) => {
                let Some((a, i)) = rec.apps.iter().enumerate().find_map(|(ai, a)| {
                    a.reminders
                        .iter()
                        .position(|r| r.seq == seq)
                        .map(|ri| (ai, ri))
                }) else {
                    return false;
                };
                let list = &mut rec.apps[a].reminders;
                match by {
                    Some(r) => list[i] = r,
                    None => {
                        list.remove(i);
                        list.shrink_to_fit();
                    }
                }
                true
            }
            Stored::Encoded(bytes) => {
                let Some(found) = record_bytes::find(bytes, seq) else {
                    return false;
                };
                *bytes = record_bytes::replace(bytes, &found, by.as_ref());
                true
            }
        }
    }

    /// The id of the customer in `slot`, without decoding the rest of its record.
    pub(crate) fn id_at(&self, slot: u32) -> Option<String> {
        match self.stored(slot)? {
            Stored::Decoded(rec) => Some(rec.id.clone()),
            Stored::Encoded(bytes) => RecordId::decode(bytes.as_ref()).ok().map(|r| r.id),
        }
    }

    /// The record of `id`: borrowed when decoded, else a decoded copy (changes go through
    /// [`Customers::get_mut`]).
    pub(crate) fn get(&self, id: &str) -> Option<Cow<'_, CustomerRecord>> {
        self.at(self.slot_of(id)?)
    }

    /// Keeps the record of `id` decoded for the reads that follow, when the hot records have
    /// room and none has to be encoded again for it. A customer that is only read (its state
    /// asked for again and again) is then decoded once rather than at every read, while a scan
    /// of more customers than [`HOT_RECORDS`] still reads decoded copies, as before, instead of
    /// encoding a hot record for each one.
    pub(crate) fn warm(&mut self, id: &str) {
        if self.hot.len() < HOT_RECORDS
            && let Some(slot) = self.slot_of(id)
        {
            let _ = self.decoded(slot);
        }
    }

    /// The encoding of the record of `id`, for writing it to the data dir.
    pub(crate) fn encoded(&self, id: &str) -> Option<Vec<u8>> {
        match self.stored(self.slot_of(id)?)? {
            Stored::Decoded(rec) => Some(rec.encode_to_vec()),
            Stored::Encoded(bytes) => Some(bytes.to_vec()),
        }
    }

    /// The record of `id` for changing, decoded in place (and kept so while it is hot).
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut CustomerRecord> {
        let slot = self.slot_of(id)?;
        self.decoded(slot)
    }

    /// Makes the record in `slot` decoded, encoding the oldest hot one if there are too many.
    fn decoded(&mut self, slot: u32) -> Option<&mut CustomerRecord> {
        if let Some(Stored::Encoded(bytes)) = self.stored(slot) {
            let rec = decode(bytes)?;
            self.make_hot(slot);
            self.slots[slot as usize] = Some(Stored::Decoded(Box::new(rec)));
        }
        match self.slots.get_mut(slot as usize)? {
            Some(Stored::Decoded(rec)) => Some(rec),
            _ => None,
        }
    }

    /// Records that `slot` is about to hold a decoded record, making room first.
    fn make_hot(&mut self, slot: u32) {
        while self.hot.len() >= HOT_RECORDS {
            let Some(old) = self.hot.pop_front() else {
                break;
            };
            if let Some(stored) = self.slots.get_mut(old as usize)
                && let Some(Stored::Decoded(rec)) = stored
            {
                *stored = Some(Stored::Encoded(encode(rec)));
            }
        }
        self.hot.push_back(slot);
    }

    pub(crate) fn contains_key(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Number of slots (live and free), for scanning in chunks.
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Stores a record under its id (replacing one with the same id) and returns its slot. A
    /// new record goes in encoded: records inserted in bulk (a data dir loading) stay compact.
    fn insert(&mut self, rec: &CustomerRecord) -> u32 {
        let stored = Some(Stored::Encoded(encode(rec)));
        if let Some(slot) = self.slot_of(&rec.id) {
            self.slots[slot as usize] = stored;
            return slot;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = stored;
                slot
            }
            None => {
                self.slots.push(stored);
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_id.insert(rec.id.as_str().into(), slot);
        slot
    }

    fn remove(&mut self, id: &str) -> Option<(u32, CustomerRecord)> {
        let slot = self.by_id.remove(id)?;
        let rec = self.take(slot)?;
        self.free.push(slot);
        Some((slot, rec))
    }

    /// Takes a record out of its slot for a change that needs the rest of the state; the id
    /// keeps its slot until [`Customers::put_back`].
    pub(crate) fn take(&mut self, slot: u32) -> Option<CustomerRecord> {
        match self.slots.get_mut(slot as usize)?.take()? {
            Stored::Decoded(rec) => Some(*rec),
            Stored::Encoded(bytes) => decode(&bytes),
        }
    }

    /// Puts back a record taken out; it stays decoded while it is hot.
    pub(crate) fn put_back(&mut self, slot: u32, rec: CustomerRecord) {
        if (slot as usize) < self.slots.len() {
            self.make_hot(slot);
            self.slots[slot as usize] = Some(Stored::Decoded(Box::new(rec)));
        }
    }
}

/// An org's payment transactions by id, kept encoded in memory: one is written a few times
/// (initiated, settled) and read rarely (customer state, replays, the console), and a decoded
/// `PaymentTransaction` with its counterparties is several times its encoded size.
#[derive(Default)]
pub(crate) struct Transactions {
    by_id: HashMap<Box<str>, Box<[u8]>>,
}

impl Transactions {
    /// The transaction record, decoded. Records are encoded here and checked when a data dir
    /// is loaded, so a present id always decodes.
    pub(crate) fn get(&self, id: &str) -> Option<TransactionRecord> {
        TransactionRecord::decode(self.by_id.get(id)?.as_ref()).ok()
    }

    /// The stored encoding of a record, for writing it to the data dir as it is.
    pub(crate) fn encoded(&self, id: &str) -> Option<&[u8]> {
        self.by_id.get(id).map(AsRef::as_ref)
    }

    pub(crate) fn contains_key(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub(crate) fn insert(&mut self, id: &str, rec: &TransactionRecord) {
        self.by_id
            .insert(id.into(), rec.encode_to_vec().into_boxed_slice());
    }

    /// Changes a record in place (decoded, changed, encoded again); `None` for an unknown id.
    pub(crate) fn update<R>(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut TransactionRecord) -> R,
    ) -> Option<R> {
        let mut rec = self.get(id)?;
        let out = f(&mut rec);
        self.insert(id, &rec);
        Some(out)
    }

    /// Every record, decoded, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = TransactionRecord> + '_ {
        self.by_id
            .values()
            .filter_map(|b| TransactionRecord::decode(b.as_ref()).ok())
    }
}

/// Lookup indexes from numbers, secondary ids and tags to customer slots.
#[derive(Default)]
pub(crate) struct Indexes {
    pub by_number: HashMap<NumberKey, u32>,
    pub by_secondary: HashMap<MappingKey, u32>,
    pub by_tag: HashMap<MappingKey, HashSet<u32>>,
}

impl Indexes {
    /// Adds a record's numbers, secondary ids and tags.
    pub(crate) fn index(&mut self, slot: u32, rec: &CustomerRecord) {
        for n in &rec.numbers {
            self.by_number.insert(NumberKey::of(n), slot);
        }
        for t in &rec.tags {
            if let Some(m) = &t.mapping {
                self.by_tag.entry(mapping_key(m)).or_default().insert(slot);
            }
        }
        if let Some(extra) = &rec.extra {
            for s in &extra.secondary_ids {
                if let Some(m) = &s.mapping {
                    self.by_secondary.insert(mapping_key(m), slot);
                }
            }
        }
    }

    /// Removes a record's numbers, secondary ids and tags.
    pub(crate) fn unindex(&mut self, slot: u32, rec: &CustomerRecord) {
        for n in &rec.numbers {
            let key = NumberKey::of(n);
            if self.by_number.get(&key) == Some(&slot) {
                self.by_number.remove(&key);
            }
        }
        for t in &rec.tags {
            if let Some(m) = &t.mapping {
                let key = mapping_key(m);
                if let Some(set) = self.by_tag.get_mut(&key) {
                    set.remove(&slot);
                    if set.is_empty() {
                        self.by_tag.remove(&key);
                    }
                }
            }
        }
        if let Some(extra) = &rec.extra {
            for s in &extra.secondary_ids {
                if let Some(m) = &s.mapping {
                    let key = mapping_key(m);
                    if self.by_secondary.get(&key) == Some(&slot) {
                        self.by_secondary.remove(&key);
                    }
                }
            }
        }
    }
}

/// One organization's data.
pub(crate) struct OrgState {
    pub config: OrgConfig,
    pub customers: Customers,
    pub idx: Indexes,
    pub purses: HashMap<String, PurseRecord>,
    pub transactions: Transactions,
    /// Reminders set on tags, by [`TagReminderRecord::id`].
    pub tag_reminders: HashMap<String, TagReminderRecord>,
    /// Transaction ids by the id a simulator gave its payment (`ReceivePayment`), so that its
    /// `UpdatePaymentStatus` can name the payment either way. The newest payment wins an id.
    pub provider_txns: HashMap<String, String>,
}

impl OrgState {
    pub(crate) fn new(config: OrgConfig) -> Self {
        let purses = config
            .purses
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    PurseRecord {
                        id: p.id.clone(),
                        currency: p.currency.clone(),
                        available: p.balance,
                        actual: p.balance,
                    },
                )
            })
            .collect();
        OrgState {
            config,
            customers: Customers::default(),
            idx: Indexes::default(),
            purses,
            transactions: Transactions::default(),
            tag_reminders: HashMap::new(),
            provider_txns: HashMap::new(),
        }
    }

    /// Stores and indexes a record; returns its slot.
    pub(crate) fn add_customer(&mut self, rec: CustomerRecord) -> u32 {
        if let Some(old) = self.customers.slot_of(&rec.id)
            && let Some(prev) = self.customers.take(old)
        {
            self.idx.unindex(old, &prev);
        }
        let slot = self.customers.insert(&rec);
        self.idx.index(slot, &rec);
        slot
    }

    /// Unindexes and removes a record.
    pub(crate) fn remove_customer(&mut self, id: &str) -> Option<CustomerRecord> {
        let (slot, rec) = self.customers.remove(id)?;
        self.idx.unindex(slot, &rec);
        Some(rec)
    }

    /// The id of the customer known by this number.
    pub(crate) fn id_by_number(&self, key: &NumberKey) -> Option<String> {
        self.customers.id_at(*self.idx.by_number.get(key)?)
    }

    /// The id of the customer holding this (unexpired) secondary id.
    pub(crate) fn id_by_secondary(&self, key: &MappingKey, now: Millis) -> Option<String> {
        let rec = self.customers.at(*self.idx.by_secondary.get(key)?)?;
        let holds = rec.extra.as_ref().is_some_and(|e| {
            e.secondary_ids.iter().any(|s| {
                s.mapping.as_ref().map(mapping_key).as_ref() == Some(key) && !expired(s, now)
            })
        });
        holds.then(|| rec.id.clone())
    }

    /// Ids of the customers carrying an unexpired tag, sorted for a stable order.
    pub(crate) fn tagged(&self, tag: &IndexMapping, now: Millis) -> Vec<String> {
        let key = mapping_key(tag);
        let mut ids: Vec<String> = self
            .idx
            .by_tag
            .get(&key)
            .map(|set| {
                set.iter()
                    .filter_map(|slot| self.customers.at(*slot))
                    .filter(|c| {
                        c.tags.iter().any(|t| {
                            t.mapping.as_ref().map(mapping_key).as_ref() == Some(&key)
                                && !expired(t, now)
                        })
                    })
                    .map(|c| c.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

/// What a timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// Fire the reminder whose record carries the same `seq`.
    Reminder,
    /// End the customer's messaging sessions that have expired.
    SessionExpiry,
}

/// An entry of the timer queue. Cancelled reminders are not removed from the heap: a popped
/// timer whose `seq` no longer matches a reminder record is simply skipped.
///
/// 24 bytes: the kind rides in the top bit of the org index (a fifth field would pad the entry
/// to 32 bytes, and the heap holds an entry per scheduled reminder of every customer).
#[derive(Debug)]
pub(crate) struct Timer {
    pub due: Millis,
    pub seq: u64,
    /// The customer's slot; a slot reused by another customer only meets stale `seq`s.
    pub slot: u32,
    org_kind: u32,
}

/// The bit of [`Timer::org_kind`] that marks a session expiry.
const SESSION_EXPIRY_BIT: u32 = 1 << 31;

impl Timer {
    pub(crate) fn new(due: Millis, seq: u64, org: OrgIdx, slot: u32, kind: TimerKind) -> Self {
        // An org index beyond 31 bits (there are as many as configured orgs) becomes one that
        // names no org, so that the timer is skipped rather than fired for another org.
        let org = u32::try_from(org)
            .ok()
            .filter(|o| *o < SESSION_EXPIRY_BIT)
            .unwrap_or(SESSION_EXPIRY_BIT - 1);
        let kind = match kind {
            TimerKind::Reminder => 0,
            TimerKind::SessionExpiry => SESSION_EXPIRY_BIT,
        };
        Timer {
            due,
            seq,
            slot,
            org_kind: org | kind,
        }
    }

    /// The org of the customer.
    pub(crate) fn org(&self) -> OrgIdx {
        (self.org_kind & !SESSION_EXPIRY_BIT) as OrgIdx
    }

    /// What the timer does.
    pub(crate) fn kind(&self) -> TimerKind {
        if self.org_kind & SESSION_EXPIRY_BIT == 0 {
            TimerKind::Reminder
        } else {
            TimerKind::SessionExpiry
        }
    }
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// A payment the emulator settles by itself at `due` (see `engine::payments`). A popped entry
/// whose transaction is no longer pending (a simulator settled it first) is skipped.
#[derive(Debug)]
pub(crate) struct Settlement {
    pub due: Millis,
    pub seq: u64,
    pub org: OrgIdx,
    pub txn: Box<str>,
}

impl PartialEq for Settlement {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Settlement {}
impl PartialOrd for Settlement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Settlement {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// Records changed by the current command, to persist before it is acknowledged.
#[derive(Default)]
pub(crate) struct Dirty {
    pub customers: Vec<(OrgIdx, String)>,
    pub purses: Vec<(OrgIdx, String)>,
    pub transactions: Vec<(OrgIdx, String)>,
    pub tokens: Vec<String>,
    pub tag_reminders: Vec<(OrgIdx, String)>,
    /// Notifications to record as pending, by id.
    pub pending: Vec<(u64, Vec<u8>)>,
}

impl Dirty {
    pub(crate) fn is_empty(&self) -> bool {
        self.customers.is_empty()
            && self.purses.is_empty()
            && self.transactions.is_empty()
            && self.tokens.is_empty()
            && self.tag_reminders.is_empty()
            && self.pending.is_empty()
    }
}

/// The whole mutable state, guarded by one mutex in the engine.
pub(crate) struct State {
    pub orgs: Vec<OrgState>,
    pub tokens: HashMap<String, TokenRecord>,
    pub timers: BinaryHeap<Reverse<Timer>>,
    /// Payments waiting for the emulator to settle them, earliest first; bounded by
    /// `payments.max_unsettled` of the config.
    pub settlements: BinaryHeap<Reverse<Settlement>>,
    pub next_seq: u64,
    /// Id of the next pending notification (data dir only).
    pub next_pending: u64,
    /// Whether changed customers are recorded in `dirty`: only with a data dir, since in
    /// memory nothing reads them and every command would pay for an id copy.
    pub persist: bool,
    /// Whether the console watches the current command: changed customers are then recorded
    /// in `dirty` as well (and reported before the flush clears them).
    pub observe: bool,
    pub dirty: Dirty,
    /// History entries dropped beyond `history_limit` (see `Engine::history_trimmed`).
    pub history_trimmed: u64,
}

impl State {
    pub(crate) fn new(orgs: Vec<OrgConfig>) -> Self {
        State {
            orgs: orgs.into_iter().map(OrgState::new).collect(),
            tokens: HashMap::new(),
            timers: BinaryHeap::new(),
            settlements: BinaryHeap::new(),
            next_seq: 1,
            next_pending: 1,
            persist: false,
            observe: false,
            dirty: Dirty::default(),
            history_trimmed: 0,
        }
    }

    /// Records that a customer changed, for the data dir (a no-op in memory).
    pub(crate) fn mark_customer(&mut self, org: OrgIdx, id: &str) {
        if self.persist || self.observe {
            self.dirty.customers.push((org, id.to_owned()));
        }
    }

    /// The earliest due time of a timer or a settlement.
    pub(crate) fn earliest_due(&self) -> Option<Millis> {
        let timer = self.timers.peek().map(|t| t.0.due);
        let settlement = self.settlements.peek().map(|s| s.0.due);
        match (timer, settlement) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Queues a payment for settlement at `due`.
    pub(crate) fn schedule_settlement(&mut self, due: Millis, org: OrgIdx, txn: &str) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.settlements.push(Reverse(Settlement {
            due,
            seq,
            org,
            txn: txn.into(),
        }));
    }

    pub(crate) fn org_index(&self, org_id: &str) -> Option<OrgIdx> {
        self.orgs.iter().position(|o| o.config.id == org_id)
    }

    /// Schedules a timer for a customer and returns its sequence number (also when the customer
    /// is unknown: such a timer simply finds nothing when it fires).
    pub(crate) fn schedule(
        &mut self,
        due: Millis,
        org: OrgIdx,
        customer: &str,
        kind: TimerKind,
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(slot) = self
            .orgs
            .get(org)
            .and_then(|o| o.customers.slot_of(customer))
        {
            self.timers
                .push(Reverse(Timer::new(due, seq, org, slot, kind)));
        }
        seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> CustomerRecord {
        CustomerRecord {
            id: id.to_owned(),
            created_at: 1,
            ..Default::default()
        }
    }

    fn decoded(c: &Customers) -> usize {
        c.slots
            .iter()
            .filter(|s| matches!(s, Some(Stored::Decoded(_))))
            .count()
    }

    fn number(provider: i32, number: &str, partition: Option<&str>) -> CustomerNumber {
        CustomerNumber {
            provider,
            number: number.into(),
            partition: partition.map(Into::into),
        }
    }

    #[test]
    fn number_keys_tell_numbers_apart_and_treat_unspecified_as_cellular() {
        let cellular = CustomerNumberProvider::Cellular as i32;
        let key = |p, n, part| NumberKey::of(&number(p, n, part));
        assert_eq!(
            key(CustomerNumberProvider::Unspecified as i32, "+254700", None),
            key(cellular, "+254700", None)
        );
        assert_eq!(
            key(cellular, "+254700", Some("")),
            key(cellular, "+254700", None)
        );
        assert_ne!(key(cellular, "a:b", None), key(cellular, "b", Some("a:")));
        assert_ne!(
            key(cellular, "1b", Some("a")),
            key(cellular, "b", Some("a1"))
        );
        assert_ne!(
            key(cellular, "+254700", None),
            key(CustomerNumberProvider::Telegram as i32, "+254700", None)
        );
        // Written once at its exact size, whatever the integers' widths.
        let long = key(i32::MIN, "+254700", Some("partition"));
        assert_eq!(&*long.0, "-2147483648:9:partition+254700");
        assert_eq!(
            &*key(cellular, "+254700", None).0,
            format!("{cellular}:0:+254700")
        );
    }

    #[test]
    fn timers_are_24_bytes_and_keep_their_org_and_kind() {
        assert_eq!(std::mem::size_of::<Timer>(), 24);
        for (org, kind) in [
            (0, TimerKind::Reminder),
            (3, TimerKind::SessionExpiry),
            (0x7fff_fffe, TimerKind::SessionExpiry),
        ] {
            let t = Timer::new(1, 2, org, 5, kind);
            assert_eq!((t.org(), t.kind(), t.slot), (org, kind, 5));
        }
        let beyond = Timer::new(1, 2, usize::MAX, 5, TimerKind::Reminder);
        assert_eq!(beyond.kind(), TimerKind::Reminder);
        assert_eq!(beyond.org(), 0x7fff_ffff);
    }

    #[test]
    fn a_read_record_stays_decoded_only_while_the_hot_records_have_room() {
        let mut c = Customers::default();
        for i in 0..=HOT_RECORDS {
            c.insert(&record(&format!("c{i}")));
        }
        c.get_mut("c0").unwrap().created_at = 7;
        let before = c.encoded("c0").unwrap();
        c.warm("c0");
        c.warm("c1");
        c.warm("c1");
        assert_eq!(decoded(&c), 2, "warming a decoded record changes nothing");
        assert_eq!(c.encoded("c0").unwrap(), before);
        assert!(matches!(c.get("c1").unwrap(), Cow::Borrowed(r) if r.id == "c1"));
        c.warm("unknown");
        for i in 2..HOT_RECORDS {
            c.warm(&format!("c{i}"));
        }
        assert_eq!(decoded(&c), HOT_RECORDS);
        let last = format!("c{HOT_RECORDS}");
        c.warm(&last);
        assert_eq!(decoded(&c), HOT_RECORDS, "a read evicts no hot record");
        assert!(matches!(c.get(&last).unwrap(), Cow::Owned(r) if r.id == last));
        assert_eq!(c.get("c0").unwrap().created_at, 7);
        // A change still makes room for itself by encoding the oldest.
        c.get_mut(&last).unwrap().created_at = 9;
        assert_eq!(decoded(&c), HOT_RECORDS);
        assert_eq!(c.get(&last).unwrap().created_at, 9);
        assert_eq!(c.get("c0").unwrap().created_at, 7);
    }

    #[test]
    fn changes_survive_the_records_going_cold_and_few_stay_decoded() {
        let mut c = Customers::default();
        let n = HOT_RECORDS + 50;
        let ids: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
        for id in &ids {
            c.insert(&record(id));
        }
        assert_eq!(decoded(&c), 0, "new records go in encoded");
        for (i, id) in ids.iter().enumerate() {
            c.get_mut(id).unwrap().created_at = i as i64 + 10;
            // Taken and put back, as a change to the indexes does, twice for some.
            if i % 3 == 0 {
                let slot = c.slot_of(id).unwrap();
                let mut rec = c.take(slot).unwrap();
                rec.created_at += 1;
                c.put_back(slot, rec);
            }
        }
        assert!(decoded(&c) <= HOT_RECORDS, "{} decoded", decoded(&c));
        for (i, id) in ids.iter().enumerate() {
            let want = i as i64 + 10 + i64::from(i % 3 == 0);
            assert_eq!(c.get(id).unwrap().created_at, want, "{id}");
            let slot = c.slot_of(id).unwrap();
            assert_eq!(c.id_at(slot).as_deref(), Some(id.as_str()));
            let stored = CustomerRecord::decode(c.encoded(id).unwrap().as_slice()).unwrap();
            assert_eq!(stored.created_at, want);
        }
        let (_, gone) = c.remove("c0").unwrap();
        assert_eq!(gone.created_at, 11);
        assert!(c.get("c0").is_none());
        assert_eq!(c.len(), n - 1);
    }

    #[test]
    fn app_data_reads_the_same_from_a_cold_record_as_from_a_hot_one() {
        let value = |s: &str| DataMapValue {
            value: Some(elarian_proto::data_map_value::Value::StringVal(s.into())),
        };
        let mut rec = record("cold");
        rec.app_mut("app_a").data = Some(value("a"));
        rec.app_mut("app_b").data = Some(value("b"));
        rec.app_mut("app_c");
        rec.extra_mut().metadata.push(crate::record::MetadataEntry {
            key: "name".into(),
            value: Some(value("Amina")),
        });
        let mut c = Customers::default();
        c.insert(&rec);
        let read =
            |c: &Customers| ["app_a", "app_b", "app_c", "app_x"].map(|app| c.app_data("cold", app));
        let want = [Some(value("a")), Some(value("b")), None, None];
        assert_eq!(decoded(&c), 0);
        assert_eq!(read(&c), want, "encoded");
        c.get_mut("cold").unwrap().created_at = 2;
        assert_eq!(decoded(&c), 1);
        assert_eq!(read(&c), want, "decoded");
        assert_eq!(c.app_data("nobody", "app_a"), None);
    }

    #[test]
    fn a_reminder_reads_and_changes_the_same_in_a_cold_record_as_in_a_hot_one() {
        let reminder = |key: &str, seq| ReminderRecord {
            reminder: Some(elarian_proto::CustomerReminder {
                key: key.into(),
                ..Default::default()
            }),
            origin: None,
            due: 10,
            seq,
        };
        let mut rec = record("r");
        rec.app_mut("app_a").reminders = vec![reminder("k1", 1), reminder("k2", 2)];
        rec.app_mut("app_b").reminders = vec![reminder("k3", 3)];
        let mut cold = Customers::default();
        let mut hot = Customers::default();
        let slot = cold.insert(&rec);
        hot.insert(&rec);
        hot.get_mut("r").unwrap();
        assert_eq!((decoded(&cold), decoded(&hot)), (0, 1));
        for c in [&cold, &hot] {
            assert_eq!(
                c.reminder(slot, 3),
                Some(("app_b".into(), reminder("k3", 3)))
            );
            assert_eq!(c.reminder(slot, 4), None);
        }
        let mut moved = reminder("k1", 9);
        moved.due = 20;
        for c in [&mut cold, &mut hot] {
            assert!(c.replace_reminder(slot, 1, Some(moved.clone())));
            assert!(c.replace_reminder(slot, 3, None));
            assert!(!c.replace_reminder(slot, 3, None));
            assert!(!c.replace_reminder(slot + 1, 2, None));
        }
        assert_eq!(decoded(&cold), 0, "changed where it is, still encoded");
        let want = {
            let mut r = rec.clone();
            r.apps[0].reminders[0] = moved;
            r.apps[1].reminders.clear();
            r
        };
        assert_eq!(cold.get("r").unwrap().into_owned(), want);
        assert_eq!(hot.get("r").unwrap().into_owned(), want);
        assert_eq!(cold.encoded("r"), hot.encoded("r"));
    }
}
