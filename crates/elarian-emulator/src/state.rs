//! The in-memory state of the emulator: customers per organization with their lookup indexes,
//! purses, transactions, auth tokens and the timer queue.
//!
//! Indexes map customer numbers, secondary ids and tags to customer slots. They are derived
//! data: rebuilt from the records on load and kept in step by [`Indexes::index`] /
//! [`Indexes::unindex`] around every change that touches them.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};

use elarian_proto::{CustomerIndex, CustomerNumber, CustomerNumberProvider, IndexMapping};
use prost::Message;

use crate::clock::{Millis, from_timestamp};
use crate::config::OrgConfig;
use crate::record::{
    CustomerRecord, PurseRecord, TagReminderRecord, TokenRecord, TransactionRecord,
};

/// Position of an organization in [`State::orgs`].
pub(crate) type OrgIdx = usize;

/// Lookup key of a customer number: provider (unspecified counts as cellular), number, partition.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct NumberKey {
    provider: i32,
    number: Box<str>,
    partition: Option<Box<str>>,
}

impl NumberKey {
    pub(crate) fn of(n: &CustomerNumber) -> Self {
        NumberKey {
            provider: normalized_provider(n.provider),
            number: n.number.as_str().into(),
            partition: n
                .partition
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(Into::into),
        }
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
/// Every record is kept *encoded* (the protobuf of [`CustomerRecord`], as the data dir stores
/// it) and decoded when used: a decoded record is a tree of small allocations (the boxed
/// [`CustomerExtra`] with its list headers, app records, reminders, strings) several times the
/// size of its encoding, and a customer is used for a few commands of its flow and idle for the
/// rest of the run. Readers get a decoded copy ([`Customers::get`]); writers a [`RecordMut`]
/// that encodes the record back when dropped.
#[derive(Default)]
pub(crate) struct Customers {
    slots: Vec<Option<Box<[u8]>>>,
    free: Vec<u32>,
    by_id: HashMap<Box<str>, u32>,
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

/// A customer record being changed: the decoded copy, encoded back into its slot when dropped
/// (unless it was only read).
pub(crate) struct RecordMut<'a> {
    slot: &'a mut Option<Box<[u8]>>,
    rec: CustomerRecord,
    changed: bool,
}

impl std::ops::Deref for RecordMut<'_> {
    type Target = CustomerRecord;

    fn deref(&self) -> &CustomerRecord {
        &self.rec
    }
}

impl std::ops::DerefMut for RecordMut<'_> {
    fn deref_mut(&mut self) -> &mut CustomerRecord {
        self.changed = true;
        &mut self.rec
    }
}

impl Drop for RecordMut<'_> {
    fn drop(&mut self) {
        if self.changed {
            *self.slot = Some(encode(&self.rec));
        }
    }
}

impl Customers {
    pub(crate) fn slot_of(&self, id: &str) -> Option<u32> {
        self.by_id.get(id).copied()
    }

    /// The stored encoding of the record in `slot`.
    fn bytes_at(&self, slot: u32) -> Option<&[u8]> {
        self.slots.get(slot as usize)?.as_deref()
    }

    /// The record in `slot`, decoded. Records are encoded here and checked when a data dir is
    /// loaded ([`CustomerRecord::check`]), so a live slot always decodes.
    pub(crate) fn at(&self, slot: u32) -> Option<CustomerRecord> {
        CustomerRecord::decode(self.bytes_at(slot)?).ok()
    }

    /// The id of the customer in `slot`, without decoding the rest of its record.
    pub(crate) fn id_at(&self, slot: u32) -> Option<String> {
        RecordId::decode(self.bytes_at(slot)?).ok().map(|r| r.id)
    }

    /// The record of `id`, decoded (a copy: changes go through [`Customers::get_mut`]).
    pub(crate) fn get(&self, id: &str) -> Option<CustomerRecord> {
        self.at(self.slot_of(id)?)
    }

    /// The stored encoding of the record of `id`, for writing it to the data dir as it is.
    pub(crate) fn encoded(&self, id: &str) -> Option<&[u8]> {
        self.bytes_at(self.slot_of(id)?)
    }

    /// The record of `id` for changing; the change is stored when the guard is dropped.
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<RecordMut<'_>> {
        let slot = self.slot_of(id)?;
        let stored = self.slots.get_mut(slot as usize)?;
        let rec = CustomerRecord::decode(stored.as_deref()?).ok()?;
        Some(RecordMut {
            slot: stored,
            rec,
            changed: false,
        })
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

    /// Stores a record under its id (replacing one with the same id) and returns its slot.
    fn insert(&mut self, rec: &CustomerRecord) -> u32 {
        let bytes = encode(rec);
        if let Some(slot) = self.slot_of(&rec.id) {
            self.slots[slot as usize] = Some(bytes);
            return slot;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(bytes);
                slot
            }
            None => {
                self.slots.push(Some(bytes));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.by_id.insert(rec.id.as_str().into(), slot);
        slot
    }

    fn remove(&mut self, id: &str) -> Option<(u32, CustomerRecord)> {
        let slot = self.by_id.remove(id)?;
        let bytes = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some((slot, CustomerRecord::decode(bytes.as_ref()).ok()?))
    }

    /// Takes a record out of its slot for a change that needs the rest of the state; the id
    /// keeps its slot until [`Customers::put_back`].
    pub(crate) fn take(&mut self, slot: u32) -> Option<CustomerRecord> {
        let bytes = self.slots.get_mut(slot as usize)?.take()?;
        CustomerRecord::decode(bytes.as_ref()).ok()
    }

    pub(crate) fn put_back(&mut self, slot: u32, rec: CustomerRecord) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = Some(encode(&rec));
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
        holds.then_some(rec.id)
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
                    .map(|c| c.id)
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
#[derive(Debug)]
pub(crate) struct Timer {
    pub due: Millis,
    pub seq: u64,
    pub org: u32,
    /// The customer's slot; a slot reused by another customer only meets stale `seq`s.
    pub slot: u32,
    pub kind: TimerKind,
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
            self.timers.push(Reverse(Timer {
                due,
                seq,
                org: u32::try_from(org).unwrap_or(u32::MAX),
                slot,
                kind,
            }));
        }
        seq
    }
}
