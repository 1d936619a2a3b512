//! Persistence: loading a data dir at open, and handing each command's changes (and the
//! notifications they cause) to the store in one commit.

use std::path::Path;
use std::sync::{Arc, Mutex};

use elarian_proto::{ServerToAppNotification, ServerToSimulatorNotification};
use prost::Message;
use tokio::sync::{Notify, oneshot};

use crate::clock::Clock;
use crate::config::EmulatorConfig;
use crate::record::{
    CustomerRecord, PendingRecord, PurseRecord, TagReminderRecord, TokenRecord, TransactionRecord,
};
use crate::state::State;
use crate::store::{Store, StoreError, StoreOp, Table, org_key, pending_key, split_org_key};

use super::{AppNotice, Effect, Engine, SimulatorNotice, payments, reminders};

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

impl Engine {
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
            if !rec.check() {
                skipped += 1;
                continue;
            }
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
                        state.orgs[idx].transactions.insert(&id, &t);
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

    /// With a data dir, gives each notification a pending record, written in the same commit
    /// as the change that caused it: a notification is durable exactly when its cause is.
    pub(super) fn track_pending(&self, st: &mut State, effects: &mut [Effect]) {
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
    pub(super) fn flush(&self, st: &mut State) -> Durable {
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
            ops.push(match o.customers.encoded(&id) {
                Some(rec) => StoreOp::Put {
                    table: Table::Customers,
                    key,
                    value: rec,
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
            if let Some(t) = o.transactions.encoded(&id) {
                ops.push(StoreOp::Put {
                    table: Table::Transactions,
                    key: org_key(&o.config.id, &id),
                    value: t.to_vec(),
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
