//! Where campaigns live: an ordered key-value store with atomic batches, on disk (redb, the
//! default) or in memory (tests, benchmarks).
//!
//! redb is already in the tree (the emulator's store): a pure-Rust, single-file, ACID store
//! whose commits are durable when they return, which is what "record the dispatch as attempted
//! before sending it" needs. Every write is one transaction; callers batch (a chunk of
//! dispatches, a window of status updates) so commits stay few.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, TableDefinition};

/// A store failure (I/O, corruption, a closed database).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("campaign store: {0}")]
pub struct StoreError(pub String);

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError(e.to_string())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Table {
    Meta,
    Messages,
    Sendings,
    SendingRecipients,
    Audiences,
    AudienceRecipients,
    Dispatches,
    MessageIds,
    /// Per sending, the index below which every dispatch was recorded as attempted.
    Attempts,
    /// Delivery reports received before their dispatch's outcome was recorded.
    Reports,
}

impl Table {
    const ALL: [Table; 10] = [
        Table::Meta,
        Table::Messages,
        Table::Sendings,
        Table::SendingRecipients,
        Table::Audiences,
        Table::AudienceRecipients,
        Table::Dispatches,
        Table::MessageIds,
        Table::Attempts,
        Table::Reports,
    ];

    fn definition(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(match self {
            Table::Meta => "meta",
            Table::Messages => "messages",
            Table::Sendings => "sendings",
            Table::SendingRecipients => "sending_recipients",
            Table::Audiences => "audiences",
            Table::AudienceRecipients => "audience_recipients",
            Table::Dispatches => "dispatches",
            Table::MessageIds => "message_ids",
            Table::Attempts => "attempts",
            Table::Reports => "reports",
        })
    }
}

/// One change of an atomic batch.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Put(Table, Vec<u8>, Vec<u8>),
    Delete(Table, Vec<u8>),
    /// Deletes the keys in `[start, end)`.
    DeleteRange(Table, Vec<u8>, Vec<u8>),
}

type Rows = Vec<(Vec<u8>, Vec<u8>)>;

trait Backend: Send + Sync + 'static {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` rows with keys in `[start, end)`, in key order.
    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Rows, StoreError>;
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError>;
    /// True when calls block on I/O and must leave the async workers.
    fn blocks(&self) -> bool;
    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|k| self.get(table, k)).collect()
    }
}

/// The campaigns' store. Cheap to clone; clones share the data (two [`crate::Campaigns`] opened on
/// clones of one in-memory store see the same campaigns, as a process restarted on the same
/// file would).
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// An in-memory store (lost when the last clone is dropped).
    pub fn memory() -> Self {
        Store {
            backend: Arc::new(Memory::default()),
        }
    }

    /// Opens or creates a redb file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError(e.to_string()))?;
        }
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        for table in Table::ALL {
            txn.open_table(table.definition())?;
        }
        txn.commit()?;
        Ok(Store {
            backend: Arc::new(Redb { db }),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Backend) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if !self.backend.blocks() {
            // In memory every call is a short critical section: a hand-off to the blocking
            // pool would cost more than the work, and every delivery report waits for one.
            return f(self.backend.as_ref());
        }
        let backend = self.backend.clone();
        // redb reads and commits block on file I/O: keep them off the async workers.
        tokio::task::spawn_blocking(move || f(backend.as_ref()))
            .await
            .map_err(|e| StoreError(format!("store task failed: {e}")))?
    }

    pub(crate) async fn get(
        &self,
        table: Table,
        key: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.blocking(move |b| b.get(table, &key)).await
    }

    pub(crate) async fn get_many(
        &self,
        table: Table,
        keys: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.blocking(move |b| b.get_many(table, &keys)).await
    }

    pub(crate) async fn scan(
        &self,
        table: Table,
        start: Vec<u8>,
        end: Vec<u8>,
        limit: usize,
    ) -> Result<Rows, StoreError> {
        self.blocking(move |b| b.scan(table, &start, &end, limit))
            .await
    }

    pub(crate) async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.blocking(move |b| b.write(ops)).await
    }
}

/// One table of the in-memory store.
///
/// Message ids are only looked up one at a time (a delivery report names its message) and
/// share a long prefix, which makes every comparison in an ordered map a long `memcmp`: that
/// table is hashed. A scan of a hashed table (tests only) sorts what it finds, so both kinds
/// answer alike.
enum MemTable {
    Ordered(BTreeMap<Vec<u8>, Vec<u8>>),
    Hashed(HashMap<Vec<u8>, Vec<u8>>),
}

impl MemTable {
    fn for_table(table: Table) -> Self {
        match table {
            Table::MessageIds => MemTable::Hashed(HashMap::new()),
            _ => MemTable::Ordered(BTreeMap::new()),
        }
    }

    fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        match self {
            MemTable::Ordered(t) => t.get(key),
            MemTable::Hashed(t) => t.get(key),
        }
    }

    fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        match self {
            MemTable::Ordered(t) => {
                t.insert(key, value);
            }
            MemTable::Hashed(t) => {
                t.insert(key, value);
            }
        }
    }

    fn remove(&mut self, key: &[u8]) {
        match self {
            MemTable::Ordered(t) => {
                t.remove(key);
            }
            MemTable::Hashed(t) => {
                t.remove(key);
            }
        }
    }

    /// Up to `limit` rows with keys in `[start, end)` (`start < end`), in key order.
    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Rows {
        match self {
            MemTable::Ordered(t) => t
                .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            MemTable::Hashed(t) => {
                let mut rows: Rows = t
                    .iter()
                    .filter(|(k, _)| k.as_slice() >= start && k.as_slice() < end)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                rows.truncate(limit);
                rows
            }
        }
    }

    /// Deletes the keys in `[start, end)` (`start < end`).
    fn delete_range(&mut self, start: &[u8], end: &[u8]) {
        match self {
            MemTable::Ordered(t) => {
                let keys: Vec<Vec<u8>> = t
                    .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    t.remove(&k);
                }
            }
            MemTable::Hashed(t) => t.retain(|k, _| k.as_slice() < start || k.as_slice() >= end),
        }
    }
}

/// The in-memory tables, in the order of [`Table::ALL`].
struct Tables([MemTable; Table::ALL.len()]);

impl Default for Tables {
    fn default() -> Self {
        Tables(Table::ALL.map(MemTable::for_table))
    }
}

impl Tables {
    fn table(&self, table: Table) -> &MemTable {
        &self.0[table as usize]
    }

    fn table_mut(&mut self, table: Table) -> &mut MemTable {
        &mut self.0[table as usize]
    }
}

#[derive(Default)]
struct Memory {
    tables: Mutex<Tables>,
}

impl Memory {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        self.tables
            .lock()
            .map_err(|_| StoreError("in-memory store poisoned".into()))
    }
}

impl Backend for Memory {
    fn blocks(&self) -> bool {
        false
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock()?.table(table).get(key).cloned())
    }

    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let tables = self.lock()?;
        let t = tables.table(table);
        Ok(keys.iter().map(|k| t.get(k).cloned()).collect())
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Rows, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        Ok(self.lock()?.table(table).range(start, end, limit))
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let mut tables = self.lock()?;
        for op in ops {
            match op {
                Op::Put(table, k, v) => tables.table_mut(table).insert(k, v),
                Op::Delete(table, k) => tables.table_mut(table).remove(&k),
                Op::DeleteRange(table, start, end) => {
                    if start < end {
                        tables.table_mut(table).delete_range(&start, &end);
                    }
                }
            }
        }
        Ok(())
    }
}

struct Redb {
    db: Database,
}

impl Backend for Redb {
    fn blocks(&self) -> bool {
        true
    }

    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table.definition())?;
        keys.iter()
            .map(|k| Ok(redb::ReadableTable::get(&t, k.as_slice())?.map(|v| v.value().to_vec())))
            .collect()
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table.definition())?;
        Ok(redb::ReadableTable::get(&t, key)?.map(|v| v.value().to_vec()))
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Rows, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read()?;
        let t = txn.open_table(table.definition())?;
        let mut out = Vec::new();
        for row in redb::ReadableTable::range::<&[u8]>(&t, start..end)?.take(limit) {
            let (k, v) = row?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut tables = Vec::with_capacity(Table::ALL.len());
            for table in Table::ALL {
                tables.push(txn.open_table(table.definition())?);
            }
            let index = |t: Table| Table::ALL.iter().position(|x| *x == t).unwrap_or(0);
            for op in ops {
                match op {
                    Op::Put(table, k, v) => {
                        tables[index(table)].insert(k.as_slice(), v.as_slice())?;
                    }
                    Op::Delete(table, k) => {
                        tables[index(table)].remove(k.as_slice())?;
                    }
                    Op::DeleteRange(table, start, end) => {
                        if start < end {
                            tables[index(table)].retain_in::<&[u8], _>(
                                start.as_slice()..end.as_slice(),
                                |_, _| false,
                            )?;
                        }
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Big-endian id keys sort in id order.
pub(crate) fn id_key(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// `(owner id, index)` keys: a sending's dispatches and recipient chunks, an audience's chunks.
pub(crate) fn pair_key(owner: u64, index: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(12);
    k.extend_from_slice(&owner.to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// The owner part of a [`pair_key`].
pub(crate) fn pair_owner(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(0..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// The key range of everything `owner` has in a pair-keyed table.
pub(crate) fn owner_range(owner: u64) -> (Vec<u8>, Vec<u8>) {
    let end = match owner.checked_add(1) {
        Some(next) => pair_key(next, 0),
        None => vec![0xff; 13],
    };
    (pair_key(owner, 0), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise(store: Store) {
        store
            .write(vec![
                Op::Put(Table::Dispatches, pair_key(1, 0), b"a".to_vec()),
                Op::Put(Table::Dispatches, pair_key(1, 1), b"b".to_vec()),
                Op::Put(Table::Dispatches, pair_key(2, 0), b"c".to_vec()),
                Op::Put(Table::Meta, b"k".to_vec(), b"v".to_vec()),
            ])
            .await
            .unwrap();
        let (s, e) = owner_range(1);
        let rows = store
            .scan(Table::Dispatches, s.clone(), e.clone(), 10)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].0, pair_key(1, 1));
        assert_eq!(pair_owner(&rows[1].0), Some(1));
        assert_eq!(
            store
                .scan(Table::Dispatches, s.clone(), e.clone(), 1)
                .await
                .unwrap()
                .len(),
            1
        );
        store
            .write(vec![Op::DeleteRange(
                Table::Dispatches,
                s.clone(),
                e.clone(),
            )])
            .await
            .unwrap();
        assert!(
            store
                .scan(Table::Dispatches, s, e, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let (s2, e2) = owner_range(2);
        assert_eq!(
            store
                .scan(Table::Dispatches, s2, e2, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store.get(Table::Meta, b"k".to_vec()).await.unwrap(),
            Some(b"v".to_vec())
        );
        store
            .write(vec![Op::Delete(Table::Meta, b"k".to_vec())])
            .await
            .unwrap();
        assert_eq!(store.get(Table::Meta, b"k".to_vec()).await.unwrap(), None);

        // Message ids (hashed in memory) scan in key order and delete by range all the same.
        store
            .write(
                ["m-3", "m-1", "m-4", "m-2", "n-1"]
                    .iter()
                    .map(|k| {
                        Op::Put(
                            Table::MessageIds,
                            k.as_bytes().to_vec(),
                            k.as_bytes().to_vec(),
                        )
                    })
                    .collect(),
            )
            .await
            .unwrap();
        let keys = |rows: Rows| -> Vec<Vec<u8>> { rows.into_iter().map(|(k, _)| k).collect() };
        assert_eq!(
            keys(
                store
                    .scan(Table::MessageIds, b"m-2".to_vec(), b"n".to_vec(), 2)
                    .await
                    .unwrap()
            ),
            vec![b"m-2".to_vec(), b"m-3".to_vec()]
        );
        assert_eq!(
            store
                .get_many(Table::MessageIds, vec![b"m-4".to_vec(), b"m-5".to_vec()])
                .await
                .unwrap(),
            vec![Some(b"m-4".to_vec()), None]
        );
        store
            .write(vec![
                Op::DeleteRange(Table::MessageIds, b"m-2".to_vec(), b"m-4".to_vec()),
                Op::Delete(Table::MessageIds, b"n-1".to_vec()),
            ])
            .await
            .unwrap();
        assert_eq!(
            keys(
                store
                    .scan(Table::MessageIds, Vec::new(), vec![0xff], 10)
                    .await
                    .unwrap()
            ),
            vec![b"m-1".to_vec(), b"m-4".to_vec()]
        );
    }

    #[test]
    fn tables_are_listed_in_declaration_order() {
        // The in-memory store indexes its tables by `table as usize`.
        for (i, table) in Table::ALL.iter().enumerate() {
            assert_eq!(*table as usize, i);
        }
    }

    #[tokio::test]
    async fn memory_and_redb_behave_alike() {
        exercise(Store::memory()).await;
        let dir = std::env::temp_dir().join(format!("campaigns-store-{}", std::process::id()));
        let path = dir.join("campaigns.redb");
        let _ = std::fs::remove_file(&path);
        exercise(Store::open(&path).unwrap()).await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
